//! The blocking agent (feature `blocking`): drives a [`PartnerClient`] with
//! real time, real randomness, a [`Transport`] and a data directory. Every
//! protocol decision stays in [`crate::client`]; this module only loops
//! `poll_request` → [`Transport::send`] → `handle_response`, sleeps until
//! `poll_timeout`, and persists the credential when the client says so.
//!
//! The credential lives in `data_dir/credential.json` (mode 0600, replaced
//! atomically: temporary file, fsync, rename, fsync of the directory); the
//! event queue in the durable spool `data_dir/spool/` ([`crate::spool_file`]),
//! so what one process could not deliver is sent by the next. Without a data
//! directory both stay in memory.
//!
//! Threads: [`Agent`] is `Send + Sync` and every method takes `&self`. The
//! client sits behind a mutex that is never held across I/O or sleeps; a
//! second mutex lets one thread at a time drive the exchange (the client has
//! one request in flight at a time), so `submit`/`health` never wait for the
//! network.

use crate::client::{ClientConfig, ClientEvent, PartnerClient};
use crate::credential::Credential;
use crate::eicar;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{FlowState, SensorState};
use crate::health::HealthReport;
pub use crate::http::{HttpRequest, HttpResponse};
use crate::keys::SystemRandom;
use crate::telemetry::Event;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// File name of the stored credential inside the data directory.
pub const CREDENTIAL_FILE: &str = "credential.json";
/// How long `enroll`, `handshake` and `offboard` keep retrying by default.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Performs one HTTP exchange. Non-2xx statuses are responses, not errors;
/// `Err` (code `transport`) means no response: connection, TLS, timeout.
pub trait Transport: Send + Sync {
    /// Sends `req` and returns the response (header names in lower case).
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        (**self).send(req)
    }
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        (**self).send(req)
    }
}

/// Agent configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The client configuration (device facts, queue bounds, …).
    pub client: ClientConfig,
    /// Where the credential is kept; `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
}

/// What [`Agent::flush`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushOutcome {
    /// Events acknowledged by the service during this call.
    pub delivered: u64,
    /// Events still queued (including a batch in flight); nothing is dropped by a timeout.
    pub queued: u64,
}

/// Where the credential is kept. The default is a 0600 file in the data
/// directory ([`FileCredentialStore`]); hosts with a platform keystore
/// (Keychain, Android Keystore, DPAPI) implement this instead.
pub trait CredentialStore: Send + Sync {
    /// The stored credential JSON, if any.
    fn load(&self) -> Result<Option<zeroize::Zeroizing<String>>>;
    /// Replaces the stored credential (atomically: the old one stays until the new one is safe).
    fn save(&self, credential_json: &str) -> Result<()>;
    /// Deletes the stored credential (offboarding).
    fn delete(&self) -> Result<()>;
}

impl<S: CredentialStore + ?Sized> CredentialStore for std::sync::Arc<S> {
    fn load(&self) -> Result<Option<zeroize::Zeroizing<String>>> {
        (**self).load()
    }
    fn save(&self, credential_json: &str) -> Result<()> {
        (**self).save(credential_json)
    }
    fn delete(&self) -> Result<()> {
        (**self).delete()
    }
}

/// The default store: `dir/credential.json`, mode 0600, written atomically
/// (write, fsync, rename, fsync directory).
#[derive(Debug, Clone)]
pub struct FileCredentialStore {
    dir: PathBuf,
}

impl FileCredentialStore {
    /// A store in `dir` (created 0700 if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        create_private_dir(&dir)?;
        Ok(FileCredentialStore { dir })
    }
}

impl CredentialStore for FileCredentialStore {
    fn load(&self) -> Result<Option<zeroize::Zeroizing<String>>> {
        let path = self.dir.join(CREDENTIAL_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(zeroize::Zeroizing::new(text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(&format!("reading {}", path.display()), e)),
        }
    }
    fn save(&self, credential_json: &str) -> Result<()> {
        write_atomic(&self.dir, CREDENTIAL_FILE, credential_json.as_bytes())
    }
    fn delete(&self) -> Result<()> {
        remove_durably(&self.dir, CREDENTIAL_FILE)
    }
}

/// The blocking agent.
pub struct Agent {
    client: Mutex<PartnerClient>,
    driver: Mutex<()>,
    transport: Box<dyn Transport>,
    data_dir: Option<PathBuf>,
    store: Option<Box<dyn CredentialStore>>,
    op_timeout: Duration,
}

impl core::fmt::Debug for Agent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Agent")
            .field("data_dir", &self.data_dir)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

/// What happened while driving, for the stop conditions.
#[derive(Default)]
struct Seen {
    requests: u64,
    delivered: u64,
    credential_changed: bool,
    credential_removed: bool,
    failed: Option<ErrorCode>,
}

/// Where a drive stands when its stop condition is asked.
struct Step<'a> {
    client: &'a mut PartnerClient,
    seen: &'a Seen,
    /// `poll_request` had nothing to send right now.
    nothing_due: bool,
    /// The deadline passed.
    timed_out: bool,
}

fn unix_now() -> UnixSeconds {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn storage(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("{what}: {e}"))
}

fn last_error(c: &PartnerClient, fallback: ErrorCode, msg: &str) -> Error {
    c.last_error()
        .cloned()
        .unwrap_or_else(|| Error::new(fallback, msg.to_owned()))
}

impl Agent {
    /// Creates the agent, loading `data_dir/credential.json` when present
    /// (the directory is created, mode 0700, if missing).
    pub fn new<T: Transport + 'static>(cfg: AgentConfig, transport: T) -> Result<Agent> {
        let store: Option<Box<dyn CredentialStore>> = match &cfg.data_dir {
            Some(dir) => Some(Box::new(FileCredentialStore::new(dir)?)),
            None => None,
        };
        Agent::with_store(cfg, transport, store)
    }

    /// Like [`new`](Self::new), with the credential kept in `store` (e.g. the
    /// platform keystore) instead of `data_dir/credential.json`; the event
    /// spool still lives in `data_dir` when one is given.
    pub fn with_store<T: Transport + 'static>(
        cfg: AgentConfig,
        transport: T,
        store: Option<Box<dyn CredentialStore>>,
    ) -> Result<Agent> {
        let mut client = match &cfg.data_dir {
            // Events wait in the durable spool (data_dir/spool): nothing handed to
            // the agent is lost across restarts or crashes.
            Some(dir) => {
                create_private_dir(dir)?;
                let limits = PartnerClient::limits(&cfg.client);
                let spool = crate::spool_file::FileSpool::open(
                    dir.join("spool"),
                    crate::spool_file::Fsync::Batch,
                )?;
                PartnerClient::with_outbox(
                    cfg.client,
                    Box::new(SystemRandom),
                    crate::spool::Outbox::open(Box::new(spool), limits)?,
                )
            }
            None => PartnerClient::new(cfg.client, Box::new(SystemRandom)),
        };
        if let Some(text) = store.as_ref().map(|s| s.load()).transpose()?.flatten() {
            let cred = Credential::from_json(&text).map_err(|e| {
                Error::new(
                    ErrorCode::Storage,
                    format!("the stored credential is unreadable: {}", e.message()),
                )
            })?;
            client.set_credential(cred);
        }
        Ok(Agent {
            client: Mutex::new(client),
            driver: Mutex::new(()),
            transport: Box::new(transport),
            data_dir: cfg.data_dir,
            store,
            op_timeout: DEFAULT_OP_TIMEOUT,
        })
    }

    /// Sets how long `enroll`, `handshake` and `offboard` retry (default 30 s).
    pub fn set_op_timeout(&mut self, t: Duration) {
        self.op_timeout = t;
    }

    /// The data directory, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, PartnerClient> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Redeems an access token and performs the first handshake. Refusals come
    /// back with their code (`token_expired`, `integration_disabled`, `epoch_mismatch`, …).
    /// Re-enrolling an onboarded agent keeps its key and queue (re-onboarding).
    pub fn enroll(&self, token: &str) -> Result<HealthReport> {
        self.lock().redeem(token)?;
        self.until_enrolled()
    }

    /// Down-level onboarding with an onboarding package (workspace id + key).
    pub fn enroll_with_package(&self, package_json: &str) -> Result<HealthReport> {
        self.lock().onboard_with_package(package_json)?;
        self.until_enrolled()
    }

    fn until_enrolled(&self) -> Result<HealthReport> {
        self.drive(self.op_timeout, |s| {
            if s.seen.credential_changed && s.client.flow().is_some() {
                return Some(Ok(s.client.health(unix_now())));
            }
            s.timed_out.then(|| {
                Err(last_error(
                    s.client,
                    ErrorCode::Transport,
                    "enrollment timed out",
                ))
            })
        })
    }

    /// Asks the service for a flow decision now and returns it (down-level
    /// agents have no handshake and report `Open`).
    pub fn handshake(&self) -> Result<FlowState> {
        {
            let mut c = self.lock();
            if c.credential().is_none() {
                return Err(Error::new(ErrorCode::InvalidState, "not enrolled"));
            }
            c.handshake_now();
        }
        self.drive(self.op_timeout, |s| {
            if let Some(f) = s.client.flow() {
                return Some(Ok(f));
            }
            s.timed_out.then(|| {
                Err(last_error(
                    s.client,
                    ErrorCode::Transport,
                    "handshake timed out",
                ))
            })
        })
    }

    /// Queues an event (delivered by [`flush`](Self::flush)).
    pub fn submit(&self, event: Event) -> Result<()> {
        self.lock().submit(event, unix_now())
    }

    /// Queues events with one spool write; returns how many the queue bounds
    /// refused (counted as `queue_full` drops). One invalid event queues none.
    pub fn submit_many(&self, events: &[Event]) -> Result<usize> {
        self.lock().submit_many(events, unix_now())
    }

    /// Parses, validates and queues one JSON event.
    pub fn submit_json(&self, json: &str) -> Result<()> {
        self.submit(Event::from_json(json)?)
    }

    /// Queues the EICAR test detection (call [`flush`](Self::flush) to deliver it).
    pub fn send_test_detection(&self) -> Result<()> {
        let path = std::env::temp_dir().join("eicar.com");
        self.submit(eicar::test_detection(unix_now(), &path.to_string_lossy()))
    }

    /// Delivers what is queued, for at most `timeout_secs`. Returns when the
    /// queue is empty, or at the deadline with `queued > 0` (kept for later).
    /// Errors: the client's last error when the flow is blocked (`flow_blocked`),
    /// revoked (`revoked`, `epoch_mismatch`, …) or a new token is needed
    /// (`needs_reenroll`); events stay queued in every case.
    pub fn flush(&self, timeout_secs: u64) -> Result<FlushOutcome> {
        self.lock().flush();
        self.drive(Duration::from_secs(timeout_secs), |s| {
            let outcome = |c: &PartnerClient| FlushOutcome {
                delivered: s.seen.delivered,
                queued: c.health(unix_now()).queued_events,
            };
            // Keep sending while something is due; past the deadline only until one
            // request went out (so `flush(0)` still makes progress, and a service
            // that keeps asking for more cannot hold the caller beyond it).
            let past_deadline = s.timed_out && s.seen.requests > 0;
            if !(s.nothing_due || past_deadline) {
                return None;
            }
            if s.client.is_idle() {
                return Some(Ok(outcome(s.client)));
            }
            let h = s.client.health(unix_now());
            if matches!(h.flow, Some(FlowState::Blocked | FlowState::Revoked)) || h.needs_new_token
            {
                return Some(Err(last_error(
                    s.client,
                    ErrorCode::FlowBlocked,
                    "inbound flow is not open",
                )));
            }
            if !h.onboarded {
                return Some(Err(Error::new(
                    ErrorCode::InvalidState,
                    "not enrolled: events stay queued",
                )));
            }
            s.timed_out.then(|| Ok(outcome(s.client)))
        })
    }

    /// The health report.
    pub fn health(&self) -> HealthReport {
        self.lock().health(unix_now())
    }

    /// Reports the sensor service state (sent with the next hello/heartbeat;
    /// the portal shows "Agent state" while it is stopped).
    pub fn set_sensor_state(&self, state: SensorState) {
        self.lock().set_sensor_state(state, unix_now());
    }

    /// A copy of the current credential (holds secrets: do not log it).
    pub fn credential(&self) -> Option<Credential> {
        self.lock().credential().cloned()
    }

    /// Offboards: `None` asks the service (partner opt-out) and waits for its
    /// answer; `Some(package)` applies an admin-issued offboarding package.
    /// Either way the stored credential is deleted.
    pub fn offboard(&self, package: Option<&str>) -> Result<()> {
        {
            let mut c = self.lock();
            match package {
                Some(p) => c.apply_offboarding_package(p, unix_now())?,
                None => c.offboard("partner opt-out")?,
            }
        }
        self.drive(self.op_timeout, |s| {
            if s.seen.credential_removed {
                return Some(Ok(()));
            }
            s.timed_out.then(|| {
                Err(last_error(
                    s.client,
                    ErrorCode::Transport,
                    "offboarding timed out",
                ))
            })
        })
    }

    /// The loop: pump client events, ask `stop`, send what is due, sleep until
    /// `poll_timeout` (bounded by the deadline). A `Failed` event ends any drive.
    fn drive<T>(
        &self,
        timeout: Duration,
        mut stop: impl FnMut(Step<'_>) -> Option<Result<T>>,
    ) -> Result<T> {
        let _driver = self.driver.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + timeout;
        let mut seen = Seen::default();
        loop {
            let (req, wake) = {
                let mut c = self.lock();
                self.pump(&mut c, &mut seen)?;
                if seen.failed.is_some() {
                    return Err(last_error(
                        &c,
                        seen.failed.unwrap_or(ErrorCode::Internal),
                        "operation failed",
                    ));
                }
                let timed_out = Instant::now() >= deadline;
                if let Some(r) = stop(Step {
                    client: &mut c,
                    seen: &seen,
                    nothing_due: false,
                    timed_out,
                }) {
                    return r;
                }
                let now = unix_now();
                match c.poll_request(now) {
                    Some(req) => (Some(req), None),
                    None => {
                        self.pump(&mut c, &mut seen)?;
                        if seen.failed.is_some() {
                            continue;
                        }
                        if let Some(r) = stop(Step {
                            client: &mut c,
                            seen: &seen,
                            nothing_due: true,
                            timed_out,
                        }) {
                            return r;
                        }
                        (None, c.poll_timeout(now))
                    }
                }
            };
            if let Some(req) = req {
                seen.requests += 1;
                let result = self.transport.send(&req);
                let mut c = self.lock();
                match result {
                    Ok(resp) => c.handle_response(req.id, &resp, unix_now()),
                    Err(e) => c.handle_transport_error(req.id, e.message(), unix_now()),
                }
                continue;
            }
            // Nothing due: sleep until the client's next time (seconds), at least
            // to the next second when it says "now" but had nothing, at most 1 s
            // at a time (other threads may submit), never past the deadline.
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let wake = wake.map_or(now + 1.0, |t| {
                if (t as f64) <= now {
                    now.floor() + 1.0
                } else {
                    t as f64
                }
            });
            let left = deadline.saturating_duration_since(Instant::now());
            let nap = Duration::from_secs_f64((wake - now).clamp(0.01, 1.0)).min(left);
            std::thread::sleep(nap.max(Duration::from_millis(1)));
        }
    }

    /// Handles the client's events: persistence, delivery counts, failures.
    fn pump(&self, c: &mut PartnerClient, seen: &mut Seen) -> Result<()> {
        while let Some(ev) = c.poll_event() {
            match ev {
                ClientEvent::CredentialChanged => {
                    seen.credential_changed = true;
                    if let (Some(store), Some(cred)) = (&self.store, c.credential()) {
                        store.save(&cred.to_json())?;
                    }
                }
                ClientEvent::CredentialRemoved => {
                    seen.credential_removed = true;
                    if let Some(store) = &self.store {
                        store.delete()?;
                    }
                }
                ClientEvent::Delivered(n) => seen.delivered += n,
                ClientEvent::Failed(code) => seen.failed = Some(code),
                ClientEvent::FlowChanged(_) => {}
            }
        }
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| storage(&format!("creating {}", dir.display()), e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage(&format!("syncing {}", dir.display()), e))?;
    let _ = dir;
    Ok(())
}

/// Writes `name` in `dir` atomically with mode 0600: temp file, fsync, rename, fsync dir.
fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let io = |e| storage(&format!("writing {}", path.display()), e);
    let _ = fs::remove_file(&tmp);
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(&tmp).map_err(io)?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(io)?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io)?;
    sync_dir(dir)
}

fn remove_durably(dir: &Path, name: &str) -> Result<()> {
    match fs::remove_file(dir.join(name)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(storage(
            &format!("deleting {}", dir.join(name).display()),
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn agent_is_send_and_sync() {
        _assert_send_sync::<Agent>();
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_is_private_and_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("edrlink-agent-unit-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        write_atomic(&dir, "f.json", b"one").unwrap();
        write_atomic(&dir, "f.json", b"two").unwrap();
        assert_eq!(fs::read(dir.join("f.json")).unwrap(), b"two");
        assert_eq!(
            fs::metadata(dir.join("f.json"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert!(!dir.join(".f.json.tmp").exists());
        remove_durably(&dir, "f.json").unwrap();
        remove_durably(&dir, "f.json").unwrap();
        assert!(!dir.join("f.json").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
