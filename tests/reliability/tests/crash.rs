//! Crash test: a child process appends and sends while this test kills it with
//! SIGKILL at random points. After each kill: every event the service stored is
//! there exactly once, and every event the child had submitted is either stored
//! or still in the spool. At the end everything is delivered exactly once, in order.

use edrlink_core::spool::{Limits, Outbox};
use edrlink_core::spool_file::{FileSpool, Fsync};
use edrlink_core::telemetry::Event;
use edrlink_reliability::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ITERATIONS: u64 = 30;
/// More than a child can submit before it is killed: every run ends in SIGKILL.
const PER_RUN: u64 = 1_000_000;

fn spooled_names(dir: &std::path::Path) -> Vec<String> {
    let spool =
        FileSpool::open(dir.join("spool"), Fsync::Batch).expect("spool reopens after SIGKILL");
    let mut o = Outbox::open(Box::new(spool), Limits::default()).unwrap();
    o.read_all()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Generic(g) => Some(g.name),
            _ => None,
        })
        .collect()
}

#[test]
fn sigkill_at_random_points_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = Service::start(tmp.path(), |s| s.policy.max_batch_events = 7);
    svc.setup_tenant();
    let data = tmp.path().join("agent");
    let installation = {
        let a = agent(&data, fast_config("crash"), FaultTransport::new());
        a.enroll(&svc.token()).unwrap();
        a.credential().unwrap().installation_id
    };
    // A cheap deterministic generator for kill delays.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut submitted: u64 = 0;
    let mut kills = 0;
    for _ in 0..ITERATIONS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spool_child"))
            .args([
                data.to_str().unwrap(),
                &submitted.to_string(),
                &(submitted + PER_RUN).to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line.strip_prefix("submitted ") {
                    last = Some(n.parse::<u64>().unwrap());
                }
            }
            last
        });
        let deadline = Instant::now() + Duration::from_millis(150 + rnd(900));
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        if let Some(last) = reader.join().unwrap() {
            submitted = last + 1;
        }
        let stored = svc.stored_names(&installation);
        let unique: HashSet<&String> = stored.iter().collect();
        assert_eq!(unique.len(), stored.len(), "no event stored twice");
        let spooled: HashSet<String> = spooled_names(&data).into_iter().collect();
        for n in 0..submitted {
            let name = format!("e{n}");
            assert!(
                unique.contains(&name) || spooled.contains(&name),
                "e{n} was accepted but is neither stored nor spooled"
            );
        }
    }
    assert_eq!(kills, ITERATIONS, "every run was killed mid-way");
    assert!(
        submitted > ITERATIONS,
        "the children got work done ({submitted} events)"
    );
    // Recovery: a normal run delivers the rest.
    let a = agent(&data, fast_config("crash"), FaultTransport::new());
    assert_eq!(a.flush(60).unwrap().queued, 0);
    let expected: Vec<String> = (0..submitted).map(|n| format!("e{n}")).collect();
    assert_eq!(
        svc.stored_names(&installation),
        expected,
        "everything delivered exactly once, in order"
    );
    println!("crash test: {ITERATIONS} iterations, {kills} SIGKILLs, {submitted} events, all delivered once");
}
