//! The blocking agent (feature `blocking`): drives a [`PartnerClient`] with
//! real time, real randomness, a [`Transport`] and a data directory. Every
//! protocol decision stays in [`crate::client`], including when an
//! operation is done or failed: each method here starts an [`Operation`]
//! and runs one loop — ask [`PartnerClient::op_status`], send what
//! `poll_request` gives through [`Transport::send`], feed the answer to
//! `handle_response`, sleep until `poll_timeout` — and at its deadline
//! resolves with [`PartnerClient::op_timed_out`]. The wasm client runs the
//! same loop over `fetch`.
//!
//! The credential lives in `data_dir/credential.json` (mode 0600, replaced
//! atomically: temporary file, fsync, rename, fsync of the directory); the
//! event queue in the durable spool `data_dir/spool/` ([`crate::spool_file`]),
//! so what one process could not deliver is sent by the next. Without a data
//! directory both stay in memory.
//!
//! Events and diagnostics: after every step the agent persists or deletes
//! the credential as the client's events say, then hands the events to the
//! [`EventSink`] and the log records ([`crate::diag`]) to the [`LogSink`] and
//! to `tracing` (target `edrlink`), outside its locks.
//!
//! Threads: [`Agent`] is `Send + Sync` and every method takes `&self`. The
//! client sits behind a mutex that is never held across I/O, sleeps or sink
//! calls; a second mutex lets one thread at a time drive the exchange (the
//! client has one request in flight at a time), so `submit`/`health` never
//! wait for the network.

pub use crate::client::FlushOutcome;
use crate::client::{
    ClientConfig, ClientEvent, HostAnswer, HostRequest, HostRequestKind, OpHandle, OpOutcome,
    OpStatus, Operation, PartnerClient,
};
use crate::credential::Credential;
pub use crate::diag::{LogLevel, LogRecord};
use crate::eicar;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{FlowState, SensorState};
use crate::health::HealthReport;
pub use crate::http::{HttpRequest, HttpResponse};
use crate::keys::SystemRandom;
use crate::signer::{HostKeys, InstallationKey};
use crate::telemetry::Event;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// File name of the stored credential inside the data directory.
pub const CREDENTIAL_FILE: &str = "credential.json";
/// How long `enroll`, `handshake`, `offboard` and `rotate` keep retrying by default.
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

/// Receives the agent's diagnostic records (see [`crate::diag`]). Called on
/// the thread that drives the agent, outside every agent lock: a sink may
/// call back into the agent (`health`, `submit`, …). Starting another
/// operation from a sink while one runs on the same thread is refused with
/// `invalid_state` rather than deadlocking.
pub trait LogSink: Send + Sync {
    /// One record at `level` (already filtered by the level given to
    /// [`Agent::set_log_sink`]). `message` never holds a secret.
    fn log(&self, level: LogLevel, message: &str);
}

/// Receives the client's state-change events ([`ClientEvent`]), under the
/// same rules as [`LogSink`]. The agent has already acted on them (the
/// credential is persisted before `credential_changed` reaches the sink).
pub trait EventSink: Send + Sync {
    /// One event; `event.to_json()` is the canonical JSON every binding uses.
    fn on_event(&self, event: &ClientEvent);
}

/// The sinks a host installed.
#[derive(Default)]
struct Sinks {
    log: Option<(Arc<dyn LogSink>, LogLevel)>,
    event: Option<Arc<dyn EventSink>>,
}

/// The blocking agent.
pub struct Agent {
    client: Mutex<PartnerClient>,
    driver: Mutex<()>,
    /// The thread that holds `driver`, so a sink that starts an operation
    /// while one runs on its own thread gets an error instead of a deadlock.
    driving: Mutex<Option<ThreadId>>,
    sinks: Mutex<Sinks>,
    transport: Box<dyn Transport>,
    data_dir: Option<PathBuf>,
    store: Option<Box<dyn CredentialStore>>,
    /// The host's key store, when the host keeps the installation key.
    keys: Option<Arc<dyn HostKeys>>,
    op_timeout: Duration,
    signer_timeout: Duration,
}

impl core::fmt::Debug for Agent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Agent")
            .field("data_dir", &self.data_dir)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> UnixSeconds {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn storage(what: &str, e: std::io::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("{what}: {e}"))
}

/// Sends a record to `tracing` (target `edrlink`) at the matching level.
fn trace_record(level: LogLevel, message: &str) {
    match level {
        LogLevel::Error => tracing::error!(target: "edrlink", "{message}"),
        LogLevel::Warn => tracing::warn!(target: "edrlink", "{message}"),
        LogLevel::Info => tracing::info!(target: "edrlink", "{message}"),
        LogLevel::Debug => tracing::debug!(target: "edrlink", "{message}"),
        LogLevel::Trace => tracing::trace!(target: "edrlink", "{message}"),
    }
}

/// Releases the driver when an operation ends (also on unwinding).
struct Driving<'a> {
    agent: &'a Agent,
    _driver: MutexGuard<'a, ()>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        *lock_ignoring_poison(&self.agent.driving) = None;
    }
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What one turn of the loop does next.
enum Next {
    Finish(Result<OpOutcome>),
    Send(HttpRequest),
    Host(HostRequest),
    Sleep(Option<UnixSeconds>),
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
        Agent::with_host(cfg, transport, store, None)
    }

    /// Like [`with_store`](Self::with_store), with the installation key kept
    /// by the host: with `keys`, enrollment and rotation ask the host to
    /// create the key ([`HostKeys::create_key`]), every signature comes from
    /// [`HostKeys::sign`] (verified before use), and the stored credential
    /// holds only the key's handle and public key — no private key byte ever
    /// reaches edrlink. A stored credential whose key the host keeps needs
    /// `keys` (`invalid_state` otherwise).
    pub fn with_host<T: Transport + 'static>(
        cfg: AgentConfig,
        transport: T,
        store: Option<Box<dyn CredentialStore>>,
        keys: Option<Arc<dyn HostKeys>>,
    ) -> Result<Agent> {
        let signer_timeout = Duration::from_secs(cfg.client.signer_timeout_secs.max(1));
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
            if keys.is_none()
                && matches!(
                    cred.auth,
                    crate::credential::CredentialAuth::Key(InstallationKey::Host(_))
                )
            {
                return Err(Error::new(
                    ErrorCode::InvalidState,
                    "the stored credential's key is kept by the host: pass its HostKeys",
                ));
            }
            client.set_credential(cred);
        }
        if keys.is_some() {
            client.use_host_keys();
        }
        Ok(Agent {
            client: Mutex::new(client),
            driver: Mutex::new(()),
            driving: Mutex::new(None),
            sinks: Mutex::new(Sinks::default()),
            transport: Box::new(transport),
            data_dir: cfg.data_dir,
            store,
            keys,
            op_timeout: DEFAULT_OP_TIMEOUT,
            signer_timeout,
        })
    }

    /// Sets how long `enroll`, `handshake`, `offboard` and `rotate` retry (default 30 s).
    pub fn set_op_timeout(&mut self, t: Duration) {
        self.op_timeout = t;
    }

    /// Installs (or with `None` removes) the log sink: it receives every
    /// record at `min` or more severe (`LogLevel::Debug` shows each request
    /// and answer). Records also go to `tracing` (target `edrlink`) whether
    /// or not a sink is set.
    pub fn set_log_sink(&self, sink: Option<Arc<dyn LogSink>>, min: LogLevel) {
        lock_ignoring_poison(&self.sinks).log = sink.map(|s| (s, min));
    }

    /// Installs (or with `None` removes) the event sink: it receives every
    /// [`ClientEvent`] (credential, flow, delivery, failure, needs-new-token,
    /// queue-full, drops, rotation) as it happens.
    pub fn set_event_sink(&self, sink: Option<Arc<dyn EventSink>>) {
        lock_ignoring_poison(&self.sinks).event = sink;
    }

    /// The data directory, if any.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, PartnerClient> {
        lock_ignoring_poison(&self.client)
    }

    /// Runs `f` on the client, then — still under the lock — acts on the
    /// events it caused (persists or deletes the credential) and takes the
    /// log records; after unlocking, hands both to the sinks and `tracing`.
    /// `Err` is a persistence failure (the stored credential is then stale).
    fn with_client<T>(&self, f: impl FnOnce(&mut PartnerClient) -> T) -> Result<T> {
        let (out, events, logs, persisted) = {
            let mut c = self.lock();
            let out = f(&mut c);
            let events: Vec<ClientEvent> = std::iter::from_fn(|| c.poll_event()).collect();
            let logs: Vec<LogRecord> = std::iter::from_fn(|| c.poll_log()).collect();
            let mut persisted = Ok(());
            for ev in &events {
                let r = match ev {
                    ClientEvent::CredentialChanged => match (&self.store, c.credential()) {
                        (Some(store), Some(cred)) => store.save(&cred.to_json()),
                        _ => Ok(()),
                    },
                    ClientEvent::CredentialRemoved => match &self.store {
                        Some(store) => store.delete(),
                        None => Ok(()),
                    },
                    _ => Ok(()),
                };
                if persisted.is_ok() {
                    persisted = r;
                }
            }
            (out, events, logs, persisted)
        };
        self.emit(&events, &logs);
        persisted.map(|()| out)
    }

    /// Hands events and records to the sinks and `tracing`, outside every lock.
    fn emit(&self, events: &[ClientEvent], logs: &[LogRecord]) {
        if events.is_empty() && logs.is_empty() {
            return;
        }
        let (log, event) = {
            let s = lock_ignoring_poison(&self.sinks);
            (s.log.clone(), s.event.clone())
        };
        for r in logs {
            trace_record(r.level, &r.message);
            if let Some((sink, min)) = &log {
                if r.level.passes(*min) {
                    sink.log(r.level, &r.message);
                }
            }
        }
        if let Some(sink) = &event {
            for ev in events {
                sink.on_event(ev);
            }
        }
    }

    /// Takes the driver (one operation at a time drives the exchange).
    fn drive_lock(&self) -> Result<Driving<'_>> {
        let me = std::thread::current().id();
        if *lock_ignoring_poison(&self.driving) == Some(me) {
            return Err(Error::new(
                ErrorCode::InvalidState,
                "an operation cannot be started from a sink while another runs on this thread",
            ));
        }
        let guard = lock_ignoring_poison(&self.driver);
        *lock_ignoring_poison(&self.driving) = Some(me);
        Ok(Driving {
            agent: self,
            _driver: guard,
        })
    }

    /// Starts `op` and drives it to its end (see [`PartnerClient::op_status`]).
    fn run(&self, op: Operation<'_>, timeout: Duration) -> Result<OpOutcome> {
        let _driving = self.drive_lock()?;
        let h = self.with_client(|c| c.start(op, unix_now()))??;
        self.drive(&h, timeout)
    }

    /// Redeems an access token and performs the first handshake. Refusals come
    /// back with their code (`token_expired`, `integration_disabled`, `epoch_mismatch`, …).
    /// Re-enrolling an onboarded agent keeps its key and queue (re-onboarding).
    pub fn enroll(&self, token: &str) -> Result<HealthReport> {
        match self.run(Operation::Enroll { token }, self.op_timeout)? {
            OpOutcome::Enrolled(h) => Ok(h),
            o => Err(unexpected(o)),
        }
    }

    /// Down-level onboarding with an onboarding package (workspace id + key).
    ///
    /// With a data directory, the registration's enrollment id and device key
    /// are written to `pending-registration.json` (0600) before the first
    /// attempt and removed once registered: a process killed mid-registration
    /// resumes the same installation on the next call with the same package.
    pub fn enroll_with_package(&self, package_json: &str) -> Result<HealthReport> {
        let ws = crate::downlevel::OnboardingPackage::from_json(package_json)?
            .workspace_id
            .clone();
        let saved = match &self.data_dir {
            Some(dir) => read_pending(dir, &ws)?,
            None => None,
        };
        let _driving = self.drive_lock()?;
        let op = match &saved {
            Some(p) => Operation::ResumeEnrollWithPackage {
                package_json,
                enrollment_id: &p.enrollment_id,
                device_key: &p.device_key,
            },
            None => Operation::EnrollWithPackage { package_json },
        };
        let (h, pending) = self.with_client(|c| {
            c.start(op, unix_now())
                .map(|h| (h, c.pending_registration()))
        })??;
        if let (Some(dir), Some((enrollment_id, device_key))) = (&self.data_dir, pending) {
            let p = PendingFile {
                workspace_id: ws,
                enrollment_id,
                device_key: device_key.to_string(),
            };
            let text = zeroize::Zeroizing::new(serde_json::to_vec(&p).expect("serializable"));
            write_atomic(dir, PENDING_REGISTRATION_FILE, &text)?;
        }
        let h = match self.drive(&h, self.op_timeout)? {
            OpOutcome::Enrolled(h) => h,
            o => return Err(unexpected(o)),
        };
        if let Some(dir) = &self.data_dir {
            remove_durably(dir, PENDING_REGISTRATION_FILE)?;
        }
        Ok(h)
    }

    /// Asks the service for a flow decision now and returns it (down-level
    /// agents have no handshake and report `Open`). Errors: `invalid_state`
    /// when not enrolled, the refusal, or the last error at the deadline.
    pub fn handshake(&self) -> Result<FlowState> {
        match self.run(Operation::Handshake, self.op_timeout)? {
            OpOutcome::Flow(f) => Ok(f),
            o => Err(unexpected(o)),
        }
    }

    /// Queues an event (delivered by [`flush`](Self::flush)). Errors:
    /// `malformed`/`invalid_argument` for a bad event, `queue_full` when the
    /// queue refuses it (the event sink then sees `queue_full` and
    /// `events_dropped`).
    pub fn submit(&self, event: Event) -> Result<()> {
        self.with_client(|c| c.submit(event, unix_now()))?
    }

    /// Queues events with one spool write; returns how many the queue bounds
    /// refused (counted as `queue_full` drops). One invalid event queues none.
    pub fn submit_many(&self, events: &[Event]) -> Result<usize> {
        self.with_client(|c| c.submit_many(events, unix_now()))?
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
    /// queue is empty, or at the deadline with `queued > 0` while merely
    /// backing off (kept for later; the reason, e.g. `rate_limited` with its
    /// `retry_after`, is in `health().last_error`).
    /// Errors, at once: the typed refusal when the flow is blocked
    /// (`flow_blocked`), revoked (`revoked`, `epoch_mismatch`, …) or a new
    /// token is needed (`needs_reenroll`), or a request failed for good;
    /// `invalid_state` when events are queued but the agent is not enrolled.
    /// Events stay queued in every case.
    pub fn flush(&self, timeout_secs: u64) -> Result<FlushOutcome> {
        match self.run(Operation::Flush, Duration::from_secs(timeout_secs))? {
            OpOutcome::Flushed(f) => Ok(f),
            o => Err(unexpected(o)),
        }
    }

    /// Forces a rotation of the installation key now (normally done at two
    /// thirds of the credential's lifetime) and waits for it; the new
    /// credential is persisted before this returns. Errors: `invalid_state`
    /// when not enrolled or down-level, the service's refusal
    /// (`flow_blocked`, …), or the last error at the deadline.
    pub fn rotate(&self) -> Result<()> {
        match self.run(Operation::Rotate, self.op_timeout)? {
            OpOutcome::Rotated => Ok(()),
            o => Err(unexpected(o)),
        }
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
        let op = match package {
            Some(p) => Operation::OffboardWithPackage { package_json: p },
            None => Operation::Offboard {
                reason: "partner opt-out",
            },
        };
        match self.run(op, self.op_timeout)? {
            OpOutcome::Offboarded => Ok(()),
            o => Err(unexpected(o)),
        }
    }

    /// The loop over a started operation: ask its status, send what is due,
    /// sleep until `poll_timeout` (bounded by the deadline). Past the deadline
    /// it still sends one request if none went out yet (so `flush(0)` makes
    /// progress) and then resolves with [`PartnerClient::op_timed_out`].
    /// Does one piece of host work through [`HostKeys`]. A call that took
    /// longer than `signer_timeout_secs` counts as failed (its result is
    /// not used: a signer that hangs must not stall the queue unnoticed).
    fn host_work(&self, kind: &HostRequestKind) -> Result<HostAnswer> {
        let Some(keys) = &self.keys else {
            return Err(Error::new(
                ErrorCode::InvalidState,
                "the installation key is kept by the host, but no HostKeys were given",
            ));
        };
        let started = Instant::now();
        let answer = match kind {
            HostRequestKind::CreateKey => keys.create_key().map(HostAnswer::Key),
            HostRequestKind::Sign { handle, message } => {
                keys.sign(handle, message).map(HostAnswer::Signature)
            }
            HostRequestKind::DeleteKey { handle } => {
                keys.delete_key(handle).map(|()| HostAnswer::Deleted)
            }
        };
        if started.elapsed() > self.signer_timeout {
            return Err(Error::new(
                ErrorCode::SignerFailed,
                format!(
                    "the host signer took longer than signer_timeout_secs ({} s)",
                    self.signer_timeout.as_secs()
                ),
            ));
        }
        answer
    }

    fn drive(&self, h: &OpHandle, timeout: Duration) -> Result<OpOutcome> {
        let deadline = Instant::now() + timeout;
        let mut sent = 0u64;
        loop {
            let past = Instant::now() >= deadline;
            let next = self.with_client(|c| {
                let now = unix_now();
                match c.op_status(h, now) {
                    OpStatus::Done(o) => return Next::Finish(Ok(o)),
                    OpStatus::Failed(e) => return Next::Finish(Err(e)),
                    OpStatus::Pending => {}
                }
                if past && sent > 0 {
                    return Next::Finish(c.op_timed_out(h, now));
                }
                match c.poll_request(now) {
                    Some(req) => Next::Send(req),
                    None => match c.poll_host_request() {
                        Some(work) => Next::Host(work),
                        None if past => Next::Finish(c.op_timed_out(h, now)),
                        None => Next::Sleep(c.poll_timeout(now)),
                    },
                }
            })?;
            let wake = match next {
                Next::Finish(r) => {
                    // Key deletions the operation left (after a rotation or
                    // offboarding) are done before returning.
                    while let Some(work) = self.with_client(|c| c.poll_host_request())? {
                        let answer = self.host_work(&work.kind);
                        self.with_client(|c| c.handle_host_answer(work.id, answer, unix_now()))?;
                    }
                    return r;
                }
                Next::Host(work) => {
                    // Outside the client lock: a host signer may take seconds.
                    let answer = self.host_work(&work.kind);
                    self.with_client(|c| c.handle_host_answer(work.id, answer, unix_now()))?;
                    continue;
                }
                Next::Send(req) => {
                    sent += 1;
                    let result = self.transport.send(&req);
                    self.with_client(|c| match result {
                        Ok(resp) => c.handle_response(req.id, &resp, unix_now()),
                        Err(e) => c.handle_transport_error(req.id, e.message(), unix_now()),
                    })?;
                    continue;
                }
                Next::Sleep(wake) => wake,
            };
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
}

/// An operation resolved to another kind of outcome than its own: a bug.
fn unexpected(o: OpOutcome) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("operation ended with an unexpected outcome: {o:?}"),
    )
}

/// File name of a down-level registration in progress inside the data directory.
pub const PENDING_REGISTRATION_FILE: &str = "pending-registration.json";

/// What `pending-registration.json` holds (secret: the device key).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingFile {
    workspace_id: String,
    enrollment_id: String,
    device_key: String,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.device_key.zeroize();
    }
}

/// The pending registration for workspace `ws`, if one was saved (another
/// workspace's or an unreadable file is ignored: a fresh registration starts).
fn read_pending(dir: &Path, ws: &str) -> Result<Option<PendingFile>> {
    let path = dir.join(PENDING_REGISTRATION_FILE);
    let text = match fs::read(&path) {
        Ok(t) => zeroize::Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage(&format!("reading {}", path.display()), e)),
    };
    Ok(serde_json::from_slice::<PendingFile>(&text)
        .ok()
        .filter(|p| p.workspace_id == ws))
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
