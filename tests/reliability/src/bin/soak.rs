//! Crash soak: a child process (`soak_child`) submits, sends, applies
//! acknowledgements and rotates spool segments against the real reference
//! service, and is killed with SIGKILL at a random moment, again and again.
//!
//! After **every** kill: the spool reopens; the service holds no event twice and
//! its events are in submission order; every event the child reported accepted
//! is stored or still spooled. At the end a last child drains the spool, and the
//! service must hold every submitted event exactly once, in order.
//!
//! ```text
//! cargo run --release -p edrlink-reliability --bin soak -- [--kills N] [--max-seconds S] [--seed X]
//! ```
//! Defaults: 100 kills, 600 s. Exits non-zero on the first violation, or if the
//! kills did not all happen within the time bound.

use edrlink_core::spool::{Limits, Outbox};
use edrlink_core::spool_file::{FileSpool, Fsync};
use edrlink_core::telemetry::Event;
use edrlink_reliability::{agent, fast_config, FaultTransport, Service};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn fail(msg: String) -> ! {
    eprintln!("soak: FAILED: {msg}");
    std::process::exit(1);
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse().unwrap_or_else(|_| fail(format!("bad {name}")))
        })
}

/// Event numbers still in the spool (which the child left unlocked by dying).
fn spooled(dir: &Path) -> Vec<u64> {
    let spool = FileSpool::open(dir.join("spool"), Fsync::Batch)
        .unwrap_or_else(|e| fail(format!("spool does not reopen after SIGKILL: {e}")));
    let mut o = Outbox::open(Box::new(spool), Limits::default())
        .unwrap_or_else(|e| fail(format!("outbox does not reopen: {e}")));
    o.read_all()
        .unwrap_or_else(|e| fail(format!("spooled events unreadable: {e}")))
        .into_iter()
        .filter_map(|e| match e {
            Event::Generic(g) => g.name.strip_prefix('e')?.parse().ok(),
            _ => None,
        })
        .collect()
}

/// What the parent learned from a child's output.
#[derive(Default)]
struct Seen {
    ready: bool,
    /// Events up to this number were accepted.
    accepted_upto: Option<u64>,
    /// The last step the child began.
    phase: String,
    rotations: u64,
    releases: u64,
}

fn child_exe() -> std::path::PathBuf {
    let me = std::env::current_exe().unwrap();
    me.with_file_name(format!("soak_child{}", std::env::consts::EXE_SUFFIX))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kills_wanted = arg(&args, "--kills", 100);
    let max_seconds = arg(&args, "--max-seconds", 600);
    let mut x = arg(&args, "--seed", 0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let svc = Service::start(tmp.path(), |s| {
        s.policy.max_batch_events = 7;
        s.rate_limit.burst = 1e9;
        s.rate_limit.per_second = 1e9;
    });
    svc.setup_tenant();
    let data = tmp.path().join("agent");
    let installation = {
        let a = agent(&data, fast_config("soak"), FaultTransport::new());
        a.enroll(&svc.token()).unwrap();
        a.credential().unwrap().installation_id
    };
    let mut stored: Vec<u64> = Vec::new();
    let mut stored_set: HashSet<u64> = HashSet::new();
    let mut last_seq = 0;
    let mut next: u64 = 0; // first event number the next child submits
    let mut kills = 0u64;
    let mut phases: BTreeMap<String, u64> = BTreeMap::new();
    let (mut rotations, mut releases) = (0u64, 0u64);
    while kills < kills_wanted {
        if started.elapsed() > Duration::from_secs(max_seconds) {
            fail(format!(
                "only {kills} of {kills_wanted} kills within {max_seconds} s"
            ));
        }
        let mut child = Command::new(child_exe())
            .args([
                data.to_str().unwrap(),
                &next.to_string(),
                &rnd(u64::MAX).to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| fail(format!("cannot start soak_child: {e}")));
        let stdout = child.stdout.take().unwrap();
        let seen = Arc::new(Mutex::new(Seen {
            phase: "start".into(),
            ..Seen::default()
        }));
        let reader = {
            let seen = seen.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut s = seen.lock().unwrap();
                    if line == "ready" {
                        s.ready = true;
                    } else if let Some(n) = line.strip_prefix("submitted ") {
                        s.accepted_upto = Some(n.parse().unwrap());
                    } else if let Some(p) = line.strip_prefix("phase ") {
                        s.rotations += (p == "rotate") as u64;
                        s.releases += (p == "release") as u64;
                        s.phase = p.to_owned();
                    }
                }
            })
        };
        // Kill at a random moment 0..150 ms after the child is up (its first
        // round is a handshake; later ones submit, send and acknowledge).
        let t0 = Instant::now();
        while !seen.lock().unwrap().ready {
            if child.try_wait().unwrap().is_some() || t0.elapsed() > Duration::from_secs(30) {
                fail("soak_child did not start".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rnd(150_000)));
        if child.try_wait().unwrap().is_some() {
            fail("soak_child exited on its own (it runs until killed)".into());
        }
        child.kill().unwrap(); // SIGKILL
        let phase = seen.lock().unwrap().phase.clone();
        child.wait().unwrap();
        reader.join().unwrap();
        kills += 1;
        *phases.entry(phase).or_default() += 1;
        let (accepted_upto, rot, rel) = {
            let s = seen.lock().unwrap();
            (s.accepted_upto, s.rotations, s.releases)
        };
        rotations += rot;
        releases += rel;

        // The invariant, after every kill.
        let (new, seq) = svc.stored_numbers_since(&installation, last_seq);
        last_seq = seq;
        for n in new {
            if !stored_set.insert(n) {
                fail(format!("kill {kills}: e{n} stored twice"));
            }
            if stored.last().is_some_and(|&l| l >= n) {
                fail(format!(
                    "kill {kills}: e{n} stored after e{}",
                    stored.last().unwrap()
                ));
            }
            stored.push(n);
        }
        let in_spool = spooled(&data);
        let spool_set: HashSet<u64> = in_spool.iter().copied().collect();
        if let Some(upto) = accepted_upto {
            for n in next..=upto {
                if !stored_set.contains(&n) && !spool_set.contains(&n) {
                    fail(format!(
                        "kill {kills}: e{n} was accepted but is neither stored nor spooled"
                    ));
                }
            }
        }
        // Accepted but not yet reported when the child died: continue after them.
        let highest = [
            accepted_upto.map(|n| n + 1),
            stored.last().map(|n| n + 1),
            in_spool.iter().max().map(|n| n + 1),
        ];
        next = highest.into_iter().flatten().fold(next, u64::max);
    }
    let kill_time = started.elapsed();

    // Recovery: a last child delivers the rest.
    let out = Command::new(child_exe())
        .args([data.to_str().unwrap(), "drain"])
        .output()
        .unwrap();
    if !String::from_utf8_lossy(&out.stdout).contains("drained") {
        fail(format!(
            "the drain did not finish: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (new, _) = svc.stored_numbers_since(&installation, last_seq);
    for n in new {
        if !stored_set.insert(n) {
            fail(format!("drain: e{n} stored twice"));
        }
        stored.push(n);
    }
    let expected: Vec<u64> = (0..next).collect();
    if stored != expected {
        let missing: Vec<u64> = expected
            .iter()
            .filter(|n| !stored_set.contains(n))
            .take(20)
            .copied()
            .collect();
        fail(format!(
            "after the drain the service holds {} events, expected e0..e{} once in order (missing, first 20: {missing:?})",
            stored.len(),
            next.saturating_sub(1)
        ));
    }
    let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p} {n}")).collect();
    println!(
        "soak: {kills} SIGKILLs in {:.1} s ({:.1} s with the drain), {next} events submitted, all delivered exactly once, in order; {rotations} segment rotations, {releases} segment deletions; kill points (last step begun): {}",
        kill_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        phases.join(", ")
    );
}
