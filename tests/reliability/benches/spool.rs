//! Spool append throughput: events/s and MB/s, with and without an fsync per
//! batch of 100 events, beside a raw sequential `write` of the same bytes (and
//! the same fsync cadence) in the same run. `spool/*` submits one event per call
//! (one write each); `spool_many/*` hands over 100 per call (one write per call).
//! With fsync, every 100 events a batch is formed (its fsync) and acknowledged.
//!
//! `cargo bench -p edrlink-reliability --bench spool`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use edrlink_core::spool::{Outbox, SpoolStorage};
use edrlink_core::spool_file::{FileSpool, Fsync};
use edrlink_core::telemetry::{Event, GenericEvent};
use std::io::Write;

const EVENTS: usize = 1000;
const BATCH: usize = 100;

fn event(n: usize) -> Event {
    Event::Generic(GenericEvent {
        time: "2026-11-23T12:00:00Z".into(),
        name: "process_start".into(),
        data: serde_json::json!({"n": n, "image": "/usr/bin/example-binary", "cmdline": "example --flag value --other-flag", "user": "alice", "pid": 4242 + n}),
    })
}

fn bench(c: &mut Criterion) {
    let events: Vec<Event> = (0..EVENTS).map(event).collect();
    let bytes: usize = events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap().len() + 25)
        .sum();
    let mut g = c.benchmark_group("spool_append_1000_events");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    let dir = tempfile::tempdir().unwrap();
    for (name, fsync_per_batch) in [("no_fsync", false), ("fsync_per_100", true)] {
        g.bench_function(format!("raw_write/{name}"), |b| {
            b.iter_batched(
                || std::fs::File::create(dir.path().join("raw.bin")).unwrap(),
                |mut f| {
                    for (i, e) in events.iter().enumerate() {
                        let json = serde_json::to_vec(e).unwrap();
                        f.write_all(&(json.len() as u32).to_le_bytes()).unwrap();
                        f.write_all(&json).unwrap();
                        if fsync_per_batch && i % BATCH == BATCH - 1 {
                            f.sync_data().unwrap();
                        }
                    }
                },
                BatchSize::PerIteration,
            )
        });
        g.bench_function(format!("spool/{name}"), |b| {
            b.iter_batched(
                || {
                    let d = dir.path().join("spool");
                    let _ = std::fs::remove_dir_all(&d);
                    let fsync = if fsync_per_batch {
                        Fsync::Batch
                    } else {
                        Fsync::Never
                    };
                    let spool = FileSpool::open(&d, fsync).unwrap();
                    Outbox::open(Box::new(spool) as Box<dyn SpoolStorage>, Default::default())
                        .unwrap()
                },
                |mut o| {
                    for (i, e) in events.iter().enumerate() {
                        o.push(e, 0).unwrap();
                        if fsync_per_batch && i % BATCH == BATCH - 1 {
                            // What a batch does before it is first sent.
                            o.begin_batch(BATCH, u64::MAX, format!("b{i}"), "t".into())
                                .unwrap();
                            o.ack_inflight(0).unwrap();
                        }
                    }
                },
                BatchSize::PerIteration,
            )
        });
        // The same events handed over 100 at a time (`submit_many`): one write each.
        g.bench_function(format!("spool_many/{name}"), |b| {
            b.iter_batched(
                || {
                    let d = dir.path().join("spool");
                    let _ = std::fs::remove_dir_all(&d);
                    let fsync = if fsync_per_batch {
                        Fsync::Batch
                    } else {
                        Fsync::Never
                    };
                    let spool = FileSpool::open(&d, fsync).unwrap();
                    Outbox::open(Box::new(spool) as Box<dyn SpoolStorage>, Default::default())
                        .unwrap()
                },
                |mut o| {
                    for (i, chunk) in events.chunks(BATCH).enumerate() {
                        assert_eq!(o.push_many(chunk, 0).unwrap(), 0);
                        if fsync_per_batch {
                            o.begin_batch(BATCH, u64::MAX, format!("b{i}"), "t".into())
                                .unwrap();
                            o.ack_inflight(0).unwrap();
                        }
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
