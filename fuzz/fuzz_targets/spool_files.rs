#![no_main]
//! A spool directory with a hostile segment file or `state.json` (torn,
//! corrupted or forged on disk): opening, reading and batching must give
//! typed errors or recover, never panic.
use edrlink_core::spool::{Limits, Outbox};
use edrlink_core::spool_file::{FileSpool, Fsync};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sel, rest) = data.split_first().unwrap_or((&0, &[]));
    let (a, b) = edrlink_fuzz::split(rest);
    let dir = tempfile::tempdir().unwrap();
    match sel % 3 {
        0 => std::fs::write(dir.path().join(format!("seg-{:020}.log", 0)), rest).unwrap(),
        1 => std::fs::write(dir.path().join("state.json"), rest).unwrap(),
        _ => {
            std::fs::write(dir.path().join("state.json"), a).unwrap();
            std::fs::write(dir.path().join(format!("seg-{:020}.log", 0)), b).unwrap();
        }
    }
    let Ok(spool) = FileSpool::open(dir.path(), Fsync::Never) else {
        return;
    };
    let Ok(mut outbox) = Outbox::open(Box::new(spool), Limits::default()) else {
        return;
    };
    let _ = outbox.read_all();
    if let Ok(Some(_)) = outbox.begin_batch(100, 1 << 20, "b".into(), "2027-01-15T08:00:00Z".into())
    {
        let _ = outbox.inflight_events();
        let _ = outbox.split_inflight("b2".into());
        let _ = outbox.ack_inflight(outbox.inflight().map_or(0, |i| i.seq));
    }
    let _ = outbox.snapshot();
});
