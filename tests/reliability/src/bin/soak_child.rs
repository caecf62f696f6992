//! Child process of the crash soak (`soak`): a partner client over a durable spool
//! with small segments (so segments rotate and are deleted often), driven by a
//! plain loop of submit → send → handle the answer, until the parent kills it.
//!
//! `soak_child <data dir> <first event number> <seed>`: submits `e<first>`, … in
//! calls of 1..16 events (`submit` or `submit_many`), sending after each call.
//! It prints `phase <name>` before each step (`submit`, `send`, `ack` — the answer
//! being applied —, `rotate` — a new segment being created —, `release` — a
//! segment deleted) and `submitted <n>` once events up to `e<n>` were accepted,
//! so the parent knows where each SIGKILL landed.
//!
//! `soak_child <data dir> drain` delivers what is queued and prints `drained`.

use edrlink_core::agent::{CredentialStore, FileCredentialStore, Transport};
use edrlink_core::client::{ClientEvent, PartnerClient};
use edrlink_core::credential::Credential;
use edrlink_core::keys::SystemRandom;
use edrlink_core::spool::Outbox;
use edrlink_core::spool_file::{FileSpool, Fsync, OsIo, SpoolFileIo, SpoolIo};
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_reliability::{event, fast_config};
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Segment size of the soak: a few dozen events per segment.
const SEGMENT_BYTES: u64 = 4096;

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The real file system, announcing segment creation and deletion.
struct Announcing(OsIo);

impl SpoolIo for Announcing {
    fn create_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        self.0.create_dir(dir)
    }
    fn lock(&mut self, dir: &Path) -> std::io::Result<Box<dyn Send>> {
        self.0.lock(dir)
    }
    fn list(&mut self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.0.list(dir)
    }
    fn open(&mut self, path: &Path, create: bool) -> std::io::Result<Box<dyn SpoolFileIo>> {
        if create && !path.exists() {
            say("phase rotate");
        }
        self.0.open(path, create)
    }
    fn read(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0.read(path)
    }
    fn remove(&mut self, path: &Path) -> std::io::Result<()> {
        say("phase release");
        self.0.remove(path)
    }
    fn sync_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        self.0.sync_dir(dir)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let drain = args.get(2).is_some_and(|a| a == "drain");
    let store = FileCredentialStore::new(dir).unwrap();
    let cred = Credential::from_json(&store.load().unwrap().expect("enrolled")).unwrap();
    let spool = FileSpool::open_on(
        Box::new(Announcing(OsIo)),
        dir.join("spool"),
        Fsync::Batch,
        SEGMENT_BYTES,
    )
    .expect("spool opens after a kill");
    let mut cfg = fast_config("soak");
    cfg.max_batches_per_second = 10_000;
    let limits = PartnerClient::limits(&cfg);
    let mut client = PartnerClient::with_outbox(
        cfg,
        Box::new(SystemRandom),
        Outbox::open(Box::new(spool), limits).unwrap(),
    );
    client.set_credential(cred);
    let transport = HttpTransport::new(HttpOptions::default()).unwrap();
    let (mut next, mut x): (u64, u64) = if drain {
        (0, 1)
    } else {
        (
            args[2].parse().unwrap(),
            args[3].parse::<u64>().unwrap() | 1,
        )
    };
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    say("ready");
    let mut idle_rounds = 0;
    loop {
        if !drain {
            let n = 1 + rnd(16);
            say("phase submit");
            if n == 1 {
                client.submit(event(next), now()).expect("submit");
            } else {
                let evs: Vec<_> = (next..next + n).map(event).collect();
                assert_eq!(client.submit_many(&evs, now()).expect("submit"), 0);
            }
            next += n;
            say(&format!("submitted {}", next - 1));
        }
        client.flush();
        // Send what is due (a handshake first in a new process), a few requests a round.
        let mut sent = 0;
        while sent < 4 {
            let Some(req) = client.poll_request(now()) else {
                break;
            };
            sent += 1;
            say("phase send");
            let r = transport.send(&req);
            say("phase ack");
            match r {
                Ok(resp) => client.handle_response(req.id, &resp, now()),
                Err(e) => client.handle_transport_error(req.id, e.message(), now()),
            }
            while let Some(ev) = client.poll_event() {
                if ev == ClientEvent::CredentialChanged {
                    let c = client.credential().expect("credential");
                    store.save(&c.to_json()).expect("credential saved");
                }
            }
        }
        if drain {
            if client.health(now()).queued_events == 0 && client.is_idle() {
                say("drained");
                return;
            }
            if sent == 0 {
                idle_rounds += 1;
                assert!(idle_rounds < 600, "drain makes no progress");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}
