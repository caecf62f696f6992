//! The partner role as a sans-IO state machine, in the style of quinn-proto
//! and Glean's uploader: the host asks [`PartnerClient::poll_request`] what to
//! send, performs it with whatever HTTP stack it has, and feeds the answer to
//! [`PartnerClient::handle_response`] (or [`PartnerClient::handle_transport_error`]).
//! [`PartnerClient::poll_timeout`] says when to ask again. Time is always passed in.
//!
//! One request is outstanding at a time; that keeps ordering per installation
//! trivially correct and is plenty for an endpoint.

use crate::credential::{Credential, CredentialAuth};
use crate::diag::{LogLevel, LogRecord, LOG_QUEUE_LEN};
use crate::downlevel::{self, DeviceKey, OnboardingPackage, RegisterRequest, RegisterResponse};
use crate::encoding::{rfc3339, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{self, FlowState, Hello, SensorState};
use crate::health::HealthReport;
use crate::http::{error_from_response, HttpRequest, HttpResponse, JOSE, JSON};
use crate::keys::{random_id, RandomSource, SigningKey};
use crate::redeem::PendingRedeem;
use crate::service::IngestAck;
use crate::telemetry::{self, Batch, Event, Heartbeat};
use crate::{dsse, jws, offboard, rotate};
use std::collections::{BTreeMap, VecDeque};

pub use crate::spool::WhenFull;
use crate::spool::{Limits, Outbox};

pub use crate::options::ClientOptions;

/// The former name of [`ClientOptions`].
pub type ClientConfig = ClientOptions;

/// Things the host should act on (persist the credential, show a state).
///
/// Canonical JSON ([`to_json`](Self::to_json), also the `Serialize` form):
/// `{"type":"credential_changed"}`, `{"type":"credential_removed"}`,
/// `{"type":"flow_changed","flow":"open|blocked|revoked"}`,
/// `{"type":"delivered","count":n}`, `{"type":"failed","code":"…"}`,
/// `{"type":"needs_new_token","code":"…"}`, `{"type":"queue_full"}`,
/// `{"type":"events_dropped","reason":"…","count":n}`,
/// `{"type":"credential_rotated"}`. Every binding hands hosts these shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A credential was issued or changed (rotation, re-enrollment, a
    /// refreshed service keyset): persist it.
    CredentialChanged,
    /// The credential was wiped (offboarded): delete the stored copy.
    CredentialRemoved,
    /// The flow state changed.
    FlowChanged(FlowState),
    /// Events were acknowledged by the service.
    Delivered(u64),
    /// An operation failed for good (e.g. redemption refused); the error is
    /// the client's `last_error`.
    Failed(ErrorCode),
    /// The client just entered the needs-new-token state, with the reason
    /// (`revoked`, `offboarded`, `epoch_mismatch`, `credential_expired`,
    /// `needs_reenroll`): nothing is sent until a new token is redeemed.
    NeedsNewToken(ErrorCode),
    /// The event queue is full: a submit was refused, or queued events were
    /// dropped to make room. Sent once per episode (again only after a
    /// delivery made room).
    QueueFull,
    /// Queued or submitted events were dropped (one event per reason and call).
    EventsDropped {
        /// Why (`queue_full`, `expired`, `too_large`, `samples_not_allowed`,
        /// `rejected_<code>`), as in the health report's `drops`.
        reason: String,
        /// How many.
        count: u64,
    },
    /// The installation key was rotated (follows a `CredentialChanged`).
    CredentialRotated,
}

impl ClientEvent {
    /// The event's `type` in the canonical JSON (`credential_changed`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientEvent::CredentialChanged => "credential_changed",
            ClientEvent::CredentialRemoved => "credential_removed",
            ClientEvent::FlowChanged(_) => "flow_changed",
            ClientEvent::Delivered(_) => "delivered",
            ClientEvent::Failed(_) => "failed",
            ClientEvent::NeedsNewToken(_) => "needs_new_token",
            ClientEvent::QueueFull => "queue_full",
            ClientEvent::EventsDropped { .. } => "events_dropped",
            ClientEvent::CredentialRotated => "credential_rotated",
        }
    }

    /// The canonical JSON text (`"type"` first), as every binding delivers it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serializes")
    }
}

impl serde::Serialize for ClientEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.type_name())?;
        match self {
            ClientEvent::FlowChanged(f) => m.serialize_entry("flow", f)?,
            ClientEvent::Delivered(n) => m.serialize_entry("count", n)?,
            ClientEvent::Failed(c) | ClientEvent::NeedsNewToken(c) => {
                m.serialize_entry("code", c.as_str())?
            }
            ClientEvent::EventsDropped { reason, count } => {
                m.serialize_entry("reason", reason)?;
                m.serialize_entry("count", count)?;
            }
            ClientEvent::CredentialChanged
            | ClientEvent::CredentialRemoved
            | ClientEvent::QueueFull
            | ClientEvent::CredentialRotated => {}
        }
        m.end()
    }
}

/// A long operation the host asks the client to carry out; see
/// [`PartnerClient::start`]. Borrowed arguments: the client keeps what it
/// needs (never the token beyond its exchange), the caller keeps the rest.
#[derive(Clone, Copy)]
pub enum Operation<'a> {
    /// Redeem an access token and perform the first handshake.
    Enroll {
        /// The access token (a secret: never logged).
        token: &'a str,
    },
    /// Down-level onboarding with an onboarding package (JSON).
    EnrollWithPackage {
        /// The onboarding package (holds the workspace key: never logged).
        package_json: &'a str,
    },
    /// Down-level onboarding resuming a registration whose enrollment id and
    /// device key the host persisted before its first attempt.
    ResumeEnrollWithPackage {
        /// The onboarding package.
        package_json: &'a str,
        /// The saved enrollment id.
        enrollment_id: &'a str,
        /// The saved device key (base64url, 32 bytes; a secret).
        device_key: &'a str,
    },
    /// A fresh flow decision now.
    Handshake,
    /// Deliver what is queued.
    Flush,
    /// Partner-initiated offboarding (opt-out), with a reason for the service.
    Offboard {
        /// Why (e.g. `partner opt-out`, `product uninstalled`).
        reason: &'a str,
    },
    /// Apply an admin-issued offboarding package.
    OffboardWithPackage {
        /// The package (JWS text).
        package_json: &'a str,
    },
    /// Rotate the installation key now.
    Rotate,
}

impl core::fmt::Debug for Operation<'_> {
    /// Names the operation only: its arguments are secrets or large.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Operation::Enroll { .. } => "Enroll",
            Operation::EnrollWithPackage { .. } => "EnrollWithPackage",
            Operation::ResumeEnrollWithPackage { .. } => "ResumeEnrollWithPackage",
            Operation::Handshake => "Handshake",
            Operation::Flush => "Flush",
            Operation::Offboard { .. } => "Offboard",
            Operation::OffboardWithPackage { .. } => "OffboardWithPackage",
            Operation::Rotate => "Rotate",
        })
    }
}

/// Which operation an [`OpHandle`] tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Token enrollment (done once a credential and a flow decision are in).
    Enroll,
    /// Package (down-level) enrollment, fresh or resumed.
    EnrollWithPackage,
    /// Handshake (done with a flow decision).
    Handshake,
    /// Flush (done when the queue is empty).
    Flush,
    /// Offboarding, opt-out or package (done when the credential is gone).
    Offboard,
    /// Rotation (done when the key was rotated).
    Rotate,
}

/// Monotonic counters the client keeps; an operation's status compares them
/// with the values at its start, so it needs no event pumping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    /// Credentials issued by redemption or registration.
    enrollments: u64,
    /// Credentials wiped (offboarding).
    removals: u64,
    /// Events acknowledged by the service.
    delivered: u64,
    /// `failed` events.
    failures: u64,
    /// Key rotations that took effect.
    rotations: u64,
}

/// A started operation: pass it to [`PartnerClient::op_status`]. It holds no
/// secret and no borrow, so a single-threaded async host can keep it across
/// `await`s while other calls use the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpHandle {
    kind: OpKind,
    started: UnixSeconds,
    base: Counters,
}

impl OpHandle {
    /// The operation.
    pub fn kind(&self) -> OpKind {
        self.kind
    }

    /// When it was started (the `now` given to [`PartnerClient::start`]).
    pub fn started_at(&self) -> UnixSeconds {
        self.started
    }
}

/// What a flush achieved (the blocking agent's `flush` returns it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FlushOutcome {
    /// Events acknowledged by the service during this operation.
    pub delivered: u64,
    /// Events still queued (including a batch in flight); nothing is dropped by a timeout.
    pub queued: u64,
}

/// What a completed operation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// Enrolled (token or package): the health report at completion.
    Enrolled(HealthReport),
    /// The flow decision (down-level credentials report `Open`).
    Flow(FlowState),
    /// Flushed.
    Flushed(FlushOutcome),
    /// The credential is gone.
    Offboarded,
    /// The key was rotated.
    Rotated,
}

/// Where an operation stands; a pure function of the client's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpStatus {
    /// Keep driving: send what [`PartnerClient::poll_request`] gives, wait
    /// until [`PartnerClient::poll_timeout`], ask again.
    Pending,
    /// Finished.
    Done(OpOutcome),
    /// Failed for good, with the typed error (the refusal, with its
    /// `retry_after` when the service sent one).
    Failed(Error),
}

#[derive(Debug)]
enum Op {
    Redeem,
    Register,
    Handshake { nonce: String },
    Ingest,
    Offboard { nonce: String },
    Rotate { nonce: String, new_key: SigningKey },
}

impl Op {
    /// The request's path, for diagnostics.
    fn path(&self, downlevel: bool) -> &'static str {
        match self {
            Op::Redeem => "/v1/redeem",
            Op::Register => "/v1/downlevel/register",
            Op::Handshake { .. } => "/v1/handshake",
            Op::Ingest if downlevel => "/v1/downlevel/ingest",
            Op::Ingest => "/v1/ingest",
            Op::Offboard { .. } => "/v1/offboard",
            Op::Rotate { .. } => "/v1/rotate",
        }
    }
}

/// A down-level registration in progress. The enrollment id and the device
/// key are made before the first attempt and reused by every retry, so a
/// retry resumes the installation its lost answer created.
struct PendingRegister {
    package: OnboardingPackage,
    enrollment_id: String,
    device_key: DeviceKey,
}

/// Checks a partner-API base URL before any request is built: `https://`
/// anywhere, plain `http://` only to a loopback host (`localhost`,
/// `127.0.0.0/8`, `[::1]`).
///
/// This lives in the sans-IO core, not in a transport, so that no token,
/// redemption answer, onboarding package, stored credential or override can
/// point a host-supplied transport at plain HTTP: the client refuses before
/// it asks the host to send anything. Error: `invalid_argument`.
pub fn check_service_url(url: &str) -> Result<()> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    if lower.starts_with("http://") {
        if is_loopback_http(url) {
            return Ok(());
        }
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("refusing plain http:// to a non-loopback host ({url}): the partner API must be reached over https"),
        ));
    }
    Err(Error::new(
        ErrorCode::InvalidArgument,
        format!("unsupported URL scheme in {url:?}: the partner API must be reached over https"),
    ))
}

fn is_loopback_http(url: &str) -> bool {
    let rest = &url["http://".len()..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(h) = host.strip_prefix('[') {
        match h.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The partner client.
pub struct PartnerClient {
    cfg: ClientConfig,
    rng: Box<dyn RandomSource + Send>,
    cred: Option<Credential>,
    pending_redeem: Option<PendingRedeem>,
    pending_register: Option<PendingRegister>,
    flow: Option<FlowState>,
    session: Option<(String, UnixSeconds)>,
    outbox: Outbox,
    /// The in-flight batch as last built (rebuilt from the outbox after a restart).
    inflight: Option<Batch>,
    op: Option<(u64, Op)>,
    next_id: u64,
    want_offboard: Option<String>,
    flush: bool,
    next_attempt: Option<UnixSeconds>,
    attempts: u32,
    /// Telemetry waits until then (recovery jitter, pacing); other requests do not.
    send_not_before: Option<UnixSeconds>,
    pace: (UnixSeconds, u32),
    samples_counted: Option<String>,
    rotation_candidate: Option<SigningKey>,
    next_handshake: Option<UnixSeconds>,
    last_heartbeat: Option<UnixSeconds>,
    sensor: SensorState,
    clock_offset: i64,
    last_handshake: Option<UnixSeconds>,
    last_send: Option<UnixSeconds>,
    last_error: Option<Error>,
    sent_events: u64,
    reported_drops: BTreeMap<String, u64>,
    auth_failures: (u32, Option<UnixSeconds>),
    needs_new_token: bool,
    events: VecDeque<ClientEvent>,
    /// Diagnostics for the host (bounded: [`crate::diag::LOG_QUEUE_LEN`]).
    logs: VecDeque<LogRecord>,
    counters: Counters,
    /// The error of the last `failed` event (what a failed operation reports).
    last_failure: Option<Error>,
    /// The host asked for a rotation now ([`PartnerClient::rotate_now`]).
    force_rotate: bool,
    /// `queue_full` was signalled and no delivery made room since.
    queue_full_signalled: bool,
    /// The outbox's drop totals already reported as `events_dropped`.
    drops_seen: BTreeMap<String, u64>,
}

/// Consecutive authentication failures before `needs_reenroll`…
pub const REENROLL_AFTER_FAILURES: u32 = 5;
/// …spread over at least this many seconds.
pub const REENROLL_AFTER_SECONDS: i64 = 1800;

impl PartnerClient {
    /// A client with no credential yet and an in-memory outbox.
    pub fn new(cfg: ClientConfig, rng: Box<dyn RandomSource + Send>) -> Self {
        let outbox = Outbox::in_memory(Self::limits(&cfg));
        Self::with_outbox(cfg, rng, outbox)
    }

    /// The outbox bounds this configuration asks for.
    pub fn limits(cfg: &ClientConfig) -> Limits {
        Limits {
            max_bytes: cfg.max_queue_bytes,
            max_events: cfg.max_queue_events,
            max_age: cfg.max_queue_age_secs,
            when_full: cfg.when_full,
        }
    }

    /// A client over a given outbox (e.g. the durable spool of `spool_file`):
    /// events, the in-flight batch and sequence numbers survive restarts.
    pub fn with_outbox(
        cfg: ClientConfig,
        rng: Box<dyn RandomSource + Send>,
        outbox: Outbox,
    ) -> Self {
        let drops_seen = outbox.drops_total().clone();
        PartnerClient {
            cfg,
            rng,
            cred: None,
            pending_redeem: None,
            pending_register: None,
            flow: None,
            session: None,
            outbox,
            inflight: None,
            op: None,
            next_id: 1,
            want_offboard: None,
            flush: false,
            next_attempt: None,
            attempts: 0,
            send_not_before: None,
            pace: (0, 0),
            samples_counted: None,
            rotation_candidate: None,
            next_handshake: None,
            last_heartbeat: None,
            sensor: SensorState::Running,
            clock_offset: 0,
            last_handshake: None,
            last_send: None,
            last_error: None,
            sent_events: 0,
            reported_drops: BTreeMap::new(),
            auth_failures: (0, None),
            needs_new_token: false,
            events: VecDeque::new(),
            logs: VecDeque::new(),
            counters: Counters::default(),
            last_failure: None,
            force_rotate: false,
            queue_full_signalled: false,
            drops_seen,
        }
    }

    /// Restores a stored credential.
    pub fn set_credential(&mut self, cred: Credential) {
        self.flow = if cred.is_downlevel() {
            Some(FlowState::Open)
        } else {
            None
        };
        self.cred = Some(cred);
        self.session = None;
        self.needs_new_token = false;
    }

    /// The current credential (persist it on [`ClientEvent::CredentialChanged`]).
    pub fn credential(&self) -> Option<&Credential> {
        self.cred.as_ref()
    }

    /// Starts redeeming an access token. The token is held only until the
    /// exchange ends and is never persisted.
    ///
    /// Re-redeeming with a credential present (a new token after the integration
    /// was toggled back on) keeps the installation key and enrollment id, so the
    /// service resumes the same installation and the queue is delivered.
    pub fn redeem(&mut self, token: &str) -> Result<()> {
        let (key, enrollment) = match &self.cred {
            Some(c) => match &c.auth {
                CredentialAuth::Key(k) => (Some(k.clone()), Some(c.enrollment_id.clone())),
                CredentialAuth::SharedKey { .. } => (None, None),
            },
            None => (None, None),
        };
        let p = PendingRedeem::new(token, self.cfg.device.clone(), key, enrollment, &*self.rng)?;
        check_service_url(&self.base_url(Some(p.service_url())))?;
        self.pending_redeem = Some(p);
        self.next_attempt = None;
        self.attempts = 0;
        Ok(())
    }

    /// Starts down-level onboarding with an onboarding package.
    ///
    /// The enrollment id and the device key are generated here, before the
    /// first attempt (re-onboarding in the same workspace keeps the ones the
    /// stored credential holds, so the same installation resumes). Hosts that
    /// can crash mid-registration persist [`pending_registration`](Self::pending_registration)
    /// now and pass it to [`resume_onboarding`](Self::resume_onboarding) after a restart.
    pub fn onboard_with_package(&mut self, package_json: &str) -> Result<()> {
        self.start_register(package_json, None)
    }

    /// Like [`onboard_with_package`](Self::onboard_with_package), resuming a
    /// registration whose enrollment id and device key (base64url, 32 bytes)
    /// the host persisted before its first attempt: a lost answer then
    /// resumes the same installation instead of creating another.
    pub fn resume_onboarding(
        &mut self,
        package_json: &str,
        enrollment_id: &str,
        device_key: &str,
    ) -> Result<()> {
        if enrollment_id.is_empty() || enrollment_id.len() > 128 {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "enrollment_id must be 1..128 characters",
            ));
        }
        let key = DeviceKey::from_b64url(device_key)
            .map_err(|_| Error::new(ErrorCode::InvalidArgument, "device_key must be 32 bytes"))?;
        self.start_register(package_json, Some((enrollment_id.to_owned(), key)))
    }

    /// The down-level registration in progress: its enrollment id and device
    /// key (base64url; a secret: store it like the credential).
    pub fn pending_registration(&self) -> Option<(String, zeroize::Zeroizing<String>)> {
        self.pending_register
            .as_ref()
            .map(|p| (p.enrollment_id.clone(), p.device_key.to_b64url()))
    }

    fn start_register(
        &mut self,
        package_json: &str,
        resume: Option<(String, DeviceKey)>,
    ) -> Result<()> {
        let package = OnboardingPackage::from_json(package_json)?;
        check_service_url(&self.base_url(Some(&package.service_url)))?;
        let resumed = resume.or_else(|| {
            self.cred.as_ref().and_then(|c| match &c.auth {
                CredentialAuth::SharedKey { workspace_id, key }
                    if *workspace_id == package.workspace_id =>
                {
                    DeviceKey::from_bytes(key)
                        .ok()
                        .map(|k| (c.enrollment_id.clone(), k))
                }
                _ => None,
            })
        });
        let (enrollment_id, device_key) = match resumed {
            Some(r) => r,
            None => (random_id(&*self.rng, 16)?, DeviceKey::generate(&*self.rng)?),
        };
        self.pending_register = Some(PendingRegister {
            package,
            enrollment_id,
            device_key,
        });
        self.next_attempt = None;
        Ok(())
    }

    /// Reports the sensor service state (sent with the next hello/heartbeat).
    pub fn set_sensor_state(&mut self, s: SensorState, now: UnixSeconds) {
        if s != self.sensor {
            self.sensor = s;
            self.last_heartbeat = None;
            let _ = now;
        }
    }

    /// Queues an event. Errors: `invalid_argument`/`malformed` for bad events,
    /// `queue_full` when full and the policy refuses.
    pub fn submit(&mut self, event: Event, now: UnixSeconds) -> Result<()> {
        event.validate()?;
        let r = self.outbox.push(&event, now);
        self.note_drops();
        r
    }

    /// Queues events with one spool write. All are validated first (one bad
    /// event queues none); returns how many the bounds refused (`queue_full`,
    /// counted as drops).
    pub fn submit_many(&mut self, events: &[Event], now: UnixSeconds) -> Result<usize> {
        events.iter().try_for_each(|e| e.validate())?;
        let r = self.outbox.push_many(events, now);
        self.note_drops();
        r
    }

    /// Sends whatever is queued without waiting for the batch delay.
    pub fn flush(&mut self) {
        self.flush = true;
        if self.next_attempt.is_some() && self.attempts == 0 {
            self.next_attempt = None;
        }
    }

    /// Forgets the last flow decision and asks again at the next poll (a host's
    /// "check now", e.g. after the admin turned the integration back on while
    /// the client waits for its blocked re-check). The flow reads `None` until
    /// the answer arrives. No effect for down-level credentials (no handshake)
    /// or when a new token is needed.
    pub fn handshake_now(&mut self) {
        if self.needs_new_token || self.cred.as_ref().is_none_or(|c| c.is_downlevel()) {
            return;
        }
        self.flow = None;
        self.session = None;
        self.next_handshake = None;
        self.next_attempt = None;
    }

    /// Asks the service to offboard this installation (partner-initiated opt-out).
    pub fn offboard(&mut self, reason: &str) -> Result<()> {
        let c = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        if c.is_downlevel() {
            self.wipe();
            return Ok(());
        }
        self.want_offboard = Some(reason.to_owned());
        self.next_attempt = None;
        Ok(())
    }

    /// Applies an admin-issued offboarding package: verifies it and wipes the
    /// credential (also telling the service, best effort, if reachable).
    pub fn apply_offboarding_package(&mut self, package: &str, now: UnixSeconds) -> Result<()> {
        let c = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        offboard::verify_package(c, package, now + self.clock_offset)?;
        self.wipe();
        Ok(())
    }

    fn wipe(&mut self) {
        self.cred = None;
        self.session = None;
        self.flow = None;
        self.want_offboard = None;
        self.force_rotate = false;
        self.counters.removals += 1;
        self.events.push_back(ClientEvent::CredentialRemoved);
        self.log(LogLevel::Info, "offboarded: the credential was removed");
    }

    /// Next event for the host.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Next diagnostic record for the host (oldest first). The client keeps
    /// the last [`LOG_QUEUE_LEN`] records; messages never hold a secret.
    pub fn poll_log(&mut self) -> Option<LogRecord> {
        self.logs.pop_front()
    }

    fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        if self.logs.len() >= LOG_QUEUE_LEN {
            self.logs.pop_front();
        }
        self.logs.push_back(LogRecord {
            level,
            message: message.into(),
        });
    }

    /// Makes the next poll send a key rotation (once the flow is open),
    /// instead of waiting for two thirds of the credential's lifetime.
    /// Errors: `invalid_state` without a credential, for a down-level
    /// credential (no installation key to rotate) or while a new token is needed.
    pub fn rotate_now(&mut self) -> Result<()> {
        match &self.cred {
            None => Err(Error::new(ErrorCode::InvalidState, "not enrolled")),
            Some(c) if c.is_downlevel() => Err(Error::new(
                ErrorCode::InvalidState,
                "a down-level credential has no installation key to rotate",
            )),
            Some(_) if self.needs_new_token => Err(self.last_error.clone().unwrap_or_else(|| {
                Error::new(
                    ErrorCode::NeedsReenroll,
                    "a new access token is required before rotating",
                )
            })),
            Some(_) => {
                self.force_rotate = true;
                self.next_attempt = None;
                Ok(())
            }
        }
    }

    /// Starts a long operation and returns its handle; drive the client
    /// (`poll_request` → send → `handle_response`, wait until `poll_timeout`)
    /// and ask [`op_status`](Self::op_status) after every step until it is not
    /// `Pending`, or give up at a deadline with [`op_timed_out`](Self::op_timed_out).
    ///
    /// Errors that need no exchange come back at once: a malformed token or
    /// package (`malformed`), a plain-http URL (`invalid_argument`), a
    /// handshake, rotation or opt-out without a credential (`invalid_state`),
    /// a refused offboarding package (`package_invalid`, `bad_signature`, …).
    ///
    /// Several operations may be pending at once (the client keeps one
    /// request in flight); each status is computed on its own.
    pub fn start(&mut self, op: Operation<'_>, now: UnixSeconds) -> Result<OpHandle> {
        let base = self.counters;
        let kind = match op {
            Operation::Enroll { token } => {
                self.redeem(token)?;
                OpKind::Enroll
            }
            Operation::EnrollWithPackage { package_json } => {
                self.onboard_with_package(package_json)?;
                OpKind::EnrollWithPackage
            }
            Operation::ResumeEnrollWithPackage {
                package_json,
                enrollment_id,
                device_key,
            } => {
                self.resume_onboarding(package_json, enrollment_id, device_key)?;
                OpKind::EnrollWithPackage
            }
            Operation::Handshake => {
                if self.cred.is_none() {
                    return Err(Error::new(ErrorCode::InvalidState, "not enrolled"));
                }
                self.handshake_now();
                OpKind::Handshake
            }
            Operation::Flush => {
                self.flush();
                OpKind::Flush
            }
            Operation::Offboard { reason } => {
                self.offboard(reason)?;
                OpKind::Offboard
            }
            Operation::OffboardWithPackage { package_json } => {
                self.apply_offboarding_package(package_json, now)?;
                OpKind::Offboard
            }
            Operation::Rotate => {
                self.rotate_now()?;
                OpKind::Rotate
            }
        };
        self.log(LogLevel::Debug, format!("operation started: {kind:?}"));
        Ok(OpHandle {
            kind,
            started: now,
            base,
        })
    }

    /// Where operation `h` stands at `now`: a pure function of the client's
    /// state (no event pumping). The rules:
    ///
    /// - every operation fails with the refusal when a `failed` event
    ///   happened since it started (a redemption refused, an opt-out refused…);
    /// - enroll: done once a credential was issued since the start and a flow
    ///   decision is known (down-level: at once);
    /// - handshake: done with the flow decision; fails with the reason when a
    ///   new token is needed and no decision is known;
    /// - offboard: done once the credential was removed;
    /// - rotate: done once a rotation took effect; fails when a new token is
    ///   needed, the flow is blocked (and no re-check is due) or the
    ///   credential is gone;
    /// - flush: pending while a request is due now; then done when nothing is
    ///   queued or in flight; fails with the typed refusal (`flow_blocked`,
    ///   `revoked`, `epoch_mismatch`, `needs_reenroll`, …) when the flow is
    ///   blocked or revoked or a new token is needed, with `invalid_state`
    ///   when events are queued but there is no credential. Events stay
    ///   queued in every case; backing off (`rate_limited`, `transport`) stays
    ///   pending until the deadline (see [`op_timed_out`](Self::op_timed_out)).
    pub fn op_status(&self, h: &OpHandle, now: UnixSeconds) -> OpStatus {
        if self.counters.failures > h.base.failures {
            return OpStatus::Failed(self.failure());
        }
        match h.kind {
            OpKind::Enroll | OpKind::EnrollWithPackage => {
                if self.counters.enrollments > h.base.enrollments && self.flow.is_some() {
                    return OpStatus::Done(OpOutcome::Enrolled(self.health(now)));
                }
            }
            OpKind::Handshake => {
                if let Some(f) = self.flow {
                    return OpStatus::Done(OpOutcome::Flow(f));
                }
                if self.needs_new_token {
                    return OpStatus::Failed(self.new_token_error());
                }
            }
            OpKind::Offboard => {
                if self.counters.removals > h.base.removals {
                    return OpStatus::Done(OpOutcome::Offboarded);
                }
            }
            OpKind::Rotate => {
                if self.counters.rotations > h.base.rotations {
                    return OpStatus::Done(OpOutcome::Rotated);
                }
                if self.cred.is_none() {
                    return OpStatus::Failed(Error::new(
                        ErrorCode::InvalidState,
                        "the credential was removed before the rotation",
                    ));
                }
                if self.needs_new_token {
                    return OpStatus::Failed(self.new_token_error());
                }
                // Rotation needs an open flow: a blocked one (nothing due
                // until its re-check) cannot rotate now.
                let due = self.poll_timeout(now).is_some_and(|t| t <= now);
                if !due && self.flow == Some(FlowState::Blocked) {
                    return OpStatus::Failed(self.last_error.clone().unwrap_or_else(|| {
                        Error::new(ErrorCode::FlowBlocked, "inbound flow is blocked")
                    }));
                }
            }
            OpKind::Flush => return self.flush_status(h, now, false),
        }
        OpStatus::Pending
    }

    /// What operation `h` resolves to when its deadline passed while
    /// `Pending`: a flush returns what it achieved (`queued > 0`: kept for
    /// later; the reason, e.g. `rate_limited`, is in `health().last_error`),
    /// every other operation fails with [`op_timeout_error`](Self::op_timeout_error).
    /// A status that is already final is returned as it is.
    pub fn op_timed_out(&self, h: &OpHandle, now: UnixSeconds) -> Result<OpOutcome> {
        let status = match self.op_status(h, now) {
            OpStatus::Pending if h.kind == OpKind::Flush => self.flush_status(h, now, true),
            s => s,
        };
        match status {
            OpStatus::Done(o) => Ok(o),
            OpStatus::Failed(e) => Err(e),
            OpStatus::Pending if h.kind == OpKind::Flush => {
                Ok(OpOutcome::Flushed(self.flush_outcome(h)))
            }
            OpStatus::Pending => Err(self.op_timeout_error(h, now)),
        }
    }

    /// The error an operation that ran out of time reports: the last error
    /// (typed, e.g. the service's `rate_limited` with its `retry_after`, or
    /// the last `transport` failure), else `transport` "no answer within …".
    pub fn op_timeout_error(&self, h: &OpHandle, now: UnixSeconds) -> Error {
        self.last_error.clone().unwrap_or_else(|| {
            Error::new(
                ErrorCode::Transport,
                format!(
                    "no answer from the service within {} s",
                    now.saturating_sub(h.started).max(0)
                ),
            )
        })
    }

    fn failure(&self) -> Error {
        self.last_failure
            .clone()
            .or_else(|| self.last_error.clone())
            .unwrap_or_else(|| Error::new(ErrorCode::Internal, "operation failed"))
    }

    fn new_token_error(&self) -> Error {
        self.last_error
            .clone()
            .filter(|_| self.needs_new_token)
            .unwrap_or_else(|| {
                Error::new(ErrorCode::NeedsReenroll, "a new access token is required")
            })
    }

    fn flush_outcome(&self, h: &OpHandle) -> FlushOutcome {
        FlushOutcome {
            delivered: self.counters.delivered.saturating_sub(h.base.delivered),
            queued: self.outbox.len() as u64,
        }
    }

    /// The flush rules; `at_deadline` ignores that a request is due (the
    /// driver stops sending at the deadline).
    fn flush_status(&self, h: &OpHandle, now: UnixSeconds, at_deadline: bool) -> OpStatus {
        let due = self.poll_timeout(now).is_some_and(|t| t <= now);
        if due && !at_deadline {
            return OpStatus::Pending;
        }
        if self.is_idle() {
            return OpStatus::Done(OpOutcome::Flushed(self.flush_outcome(h)));
        }
        if matches!(self.flow, Some(FlowState::Blocked | FlowState::Revoked))
            || self.needs_new_token
        {
            return OpStatus::Failed(self.last_error.clone().unwrap_or_else(|| {
                Error::new(ErrorCode::FlowBlocked, "inbound flow is not open")
            }));
        }
        if self.cred.is_none() {
            return OpStatus::Failed(Error::new(
                ErrorCode::InvalidState,
                "not enrolled: events stay queued",
            ));
        }
        OpStatus::Pending
    }

    /// Reports what the outbox dropped since the last call: one
    /// `events_dropped` per reason (and `queue_full` once per episode).
    fn note_drops(&mut self) {
        let total = self.outbox.drops_total();
        let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, v) in total {
            let seen = self.drops_seen.get(k).copied().unwrap_or(0);
            if *v > seen {
                let reason = k.rsplit_once('/').map_or(k.as_str(), |(r, _)| r);
                *by_reason.entry(reason).or_default() += v - seen;
            }
        }
        if by_reason.is_empty() {
            return;
        }
        let by_reason: Vec<(String, u64)> = by_reason
            .into_iter()
            .map(|(r, n)| (r.to_owned(), n))
            .collect();
        self.drops_seen = total.clone();
        if !self.queue_full_signalled && by_reason.iter().any(|(r, _)| r == "queue_full") {
            self.queue_full_signalled = true;
            self.events.push_back(ClientEvent::QueueFull);
            self.log(LogLevel::Warn, "the event queue is full");
        }
        for (reason, count) in by_reason {
            self.log(
                LogLevel::Warn,
                format!("dropped {count} event(s): {reason}"),
            );
            self.events
                .push_back(ClientEvent::EventsDropped { reason, count });
        }
    }

    /// Enters the needs-new-token state with its reason (once: the event and
    /// the warning fire on the transition only).
    fn enter_needs_new_token(&mut self, err: Error) {
        if !self.needs_new_token {
            self.needs_new_token = true;
            self.events
                .push_back(ClientEvent::NeedsNewToken(err.code()));
            self.log(
                LogLevel::Warn,
                format!("a new access token is needed ({})", err.code()),
            );
        }
        self.last_error = Some(err);
    }

    /// Records the service's clock offset, logging when it moves.
    fn set_clock_offset(&mut self, v: i64) {
        let v = clamp_offset(v);
        if v != self.clock_offset {
            self.clock_offset = v;
            self.log(
                LogLevel::Debug,
                format!("clock offset to the service: {v} s"),
            );
        }
    }

    fn emit_flow_changed(&mut self, f: FlowState) {
        self.events.push_back(ClientEvent::FlowChanged(f));
        let name = match f {
            FlowState::Open => "open",
            FlowState::Blocked => "blocked",
            FlowState::Revoked => "revoked",
        };
        self.log(LogLevel::Info, format!("flow is now {name}"));
    }

    fn base_url(&self, from_token: Option<&str>) -> String {
        let base = self
            .cfg
            .service_url
            .as_deref()
            .or(from_token)
            .or(self.cred.as_ref().map(|c| c.service_url.as_str()))
            .unwrap_or("");
        base.trim_end_matches('/').to_owned()
    }

    fn request(
        &mut self,
        op: Op,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        extra: Vec<(String, String)>,
        base: Option<&str>,
    ) -> Result<HttpRequest> {
        // The last gate before the host is asked to send anything.
        let base = self.base_url(base);
        check_service_url(&base)?;
        let id = self.next_id;
        self.next_id += 1;
        self.op = Some((id, op));
        // Method and path only: bodies and headers carry tokens, keys and MACs.
        self.log(LogLevel::Debug, format!("request #{id}: POST {path}"));
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(extra);
        Ok(HttpRequest {
            id,
            method: "POST".into(),
            url: format!("{base}{path}"),
            headers,
            body,
        })
    }

    /// The next request to perform, if one is due at `now`.
    pub fn poll_request(&mut self, now: UnixSeconds) -> Option<HttpRequest> {
        let r = self.poll_request_inner(now);
        self.note_drops();
        r
    }

    fn poll_request_inner(&mut self, now: UnixSeconds) -> Option<HttpRequest> {
        match self.build_request(now) {
            Ok(r) => r,
            Err(e) => {
                if e.code() == ErrorCode::InvalidArgument {
                    // A refused URL (or package) does not get better by asking
                    // again: drop a pending onboarding; otherwise wait (no
                    // busy loop) until the host fixes its configuration.
                    self.pending_redeem = None;
                    self.pending_register = None;
                    self.fail(e, now);
                    self.next_attempt = Some(now.saturating_add(self.cfg.max_backoff_secs.max(1)));
                } else {
                    self.fail(e, now);
                }
                None
            }
        }
    }

    fn build_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        if self.op.is_some() || self.next_attempt.is_some_and(|t| now < t) {
            return Ok(None);
        }
        if let Some(mut p) = self.pending_redeem.take() {
            let url = p.service_url().to_owned();
            let body = p.request(self.corrected(now), &*self.rng);
            self.pending_redeem = Some(p);
            return self
                .request(
                    Op::Redeem,
                    "/v1/redeem",
                    JOSE,
                    body?.into_bytes(),
                    vec![],
                    Some(&url),
                )
                .map(Some);
        }
        if let Some(p) = &self.pending_register {
            let body = zeroize::Zeroizing::new(
                serde_json::to_vec(&RegisterRequest {
                    enrollment_id: p.enrollment_id.clone(),
                    device: self.cfg.device.clone(),
                    device_key: p.device_key.to_b64url().to_string(),
                })
                .expect("serializable"),
            );
            let (ws, key, url) = (
                p.package.workspace_id.clone(),
                p.package.key_bytes()?,
                p.package.service_url.clone(),
            );
            let headers = shared_key_headers(
                &ws,
                &key,
                "/v1/downlevel/register",
                &body,
                self.corrected(now),
            );
            return self
                .request(
                    Op::Register,
                    "/v1/downlevel/register",
                    JSON,
                    body.to_vec(),
                    headers,
                    Some(&url),
                )
                .map(Some);
        }
        let Some(cred) = self.cred.as_ref() else {
            return Ok(None);
        };
        if self.needs_new_token {
            return Ok(None);
        }
        if let Some(reason) = self.want_offboard.clone() {
            let (body, nonce) = offboard::request(cred, &reason, self.corrected(now), &*self.rng)?;
            return self
                .request(
                    Op::Offboard { nonce },
                    "/v1/offboard",
                    JOSE,
                    body.into_bytes(),
                    vec![],
                    None,
                )
                .map(Some);
        }
        let downlevel = cred.is_downlevel();
        if !downlevel {
            let session_ok = self.session.as_ref().is_some_and(|(_, exp)| {
                now.saturating_add(30) < exp.saturating_sub(self.clock_offset)
            });
            let due = match self.flow {
                None => true,
                Some(FlowState::Open) => !session_ok,
                Some(FlowState::Blocked) => self.next_handshake.is_none_or(|t| now >= t),
                Some(FlowState::Revoked) => false,
            };
            if due {
                let h = Hello {
                    installation_id: String::new(),
                    nonce: String::new(),
                    iat: 0,
                    sensor: self.sensor,
                    last_seq: self.outbox.next_seq().saturating_sub(1),
                    policy_version: cred.policy.policy_version,
                    clock_offset: self.clock_offset,
                    queued_events: self.outbox.len() as u64,
                    drops: self.outbox.drops().clone(),
                };
                self.reported_drops = h.drops.clone();
                let (body, nonce) = handshake::hello(cred, h, self.corrected(now), &*self.rng)?;
                return self
                    .request(
                        Op::Handshake { nonce },
                        "/v1/handshake",
                        JOSE,
                        body.into_bytes(),
                        vec![],
                        None,
                    )
                    .map(Some);
            }
            if self.flow == Some(FlowState::Open)
                && (self.force_rotate || self.corrected(now) >= cred.rotate_after())
            {
                let new_key = SigningKey::generate(&*self.rng)?;
                let (body, nonce) =
                    rotate::request(cred, &new_key, self.corrected(now), &*self.rng)?;
                return self
                    .request(
                        Op::Rotate { nonce, new_key },
                        "/v1/rotate",
                        JOSE,
                        body.into_bytes(),
                        vec![],
                        None,
                    )
                    .map(Some);
            }
        }
        // Down-level agents have no handshake: after `flow_blocked` they retry
        // the ingest itself on the slow schedule, which also tells them when
        // the workspace key was revoked.
        if downlevel
            && self.flow == Some(FlowState::Blocked)
            && self.next_handshake.is_none_or(|t| now >= t)
        {
            self.flow = Some(FlowState::Open);
        }
        if self.flow != Some(FlowState::Open) {
            return Ok(None);
        }
        let interval = cred.policy.heartbeat_interval as i64;
        if self.last_heartbeat.is_none_or(|t| now >= t + interval) {
            self.last_heartbeat = Some(now);
            let hb = Event::Heartbeat(Heartbeat {
                time: rfc3339(now),
                sensor: self.sensor,
            });
            let _ = self.submit(hb, now);
        }
        self.outbox.expire(now)?;
        if self.send_not_before.is_some_and(|t| now < t) {
            return Ok(None);
        }
        if self.pace.0 == now && self.pace.1 >= self.cfg.max_batches_per_second.max(1) {
            self.send_not_before = Some(now + 1);
            return Ok(None);
        }
        if self.inflight.is_none() {
            if self.outbox.inflight().is_some() {
                self.rebuild_inflight()?;
            } else if !self.batch_due(now) {
                return Ok(None);
            } else {
                self.form_batch(now)?;
            }
        }
        if self.inflight.is_none() {
            return Ok(None);
        }
        self.pace = if self.pace.0 == now {
            (now, self.pace.1 + 1)
        } else {
            (now, 1)
        };
        self.ingest_request(now).map(Some)
    }

    /// The local clock corrected by the measured offset to the service's
    /// clock (saturating: the offset comes from answers).
    fn corrected(&self, now: UnixSeconds) -> UnixSeconds {
        now.saturating_add(self.clock_offset)
    }

    fn batch_due(&self, now: UnixSeconds) -> bool {
        let Some(first) = self.outbox.oldest_waiting() else {
            return false;
        };
        let limit = self
            .cred
            .as_ref()
            .map_or(1000, |c| c.policy.max_batch_events as usize);
        self.flush || self.outbox.waiting() >= limit || now >= first + self.cfg.max_batch_delay_secs
    }

    fn form_batch(&mut self, now: UnixSeconds) -> Result<()> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let max_events = cred.policy.max_batch_events.max(1) as usize;
        // Leave room for the batch header and base64 growth of the envelope.
        let max_bytes = (cred.policy.max_batch_bytes.saturating_sub(1024) * 3 / 4).max(1);
        let batch_id = random_id(&*self.rng, 16)?;
        if self
            .outbox
            .begin_batch(max_events, max_bytes, batch_id, rfc3339(now))?
            .is_some()
        {
            self.rebuild_inflight()?;
        }
        if self.outbox.waiting() == 0 {
            self.flush = false;
        }
        Ok(())
    }

    /// Builds the in-flight batch from what the outbox recorded (same batch id,
    /// sequence and events as before a restart, so the service deduplicates).
    fn rebuild_inflight(&mut self) -> Result<()> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let Some(rec) = self.outbox.inflight().cloned() else {
            return Ok(());
        };
        let mut events = self.outbox.inflight_events()?;
        if cred.policy.file_samples != crate::policy::FileSampleSharing::All {
            // Samples leave the endpoint only when the admin's policy says `all`.
            let before = events.len();
            events.retain(|e| !matches!(e, Event::FileSample(_)));
            if self.samples_counted.as_deref() != Some(rec.batch_id.as_str()) {
                for _ in events.len()..before {
                    self.outbox.record_drop(
                        "samples_not_allowed",
                        crate::telemetry::Category::Telemetry,
                    )?;
                }
                self.samples_counted = Some(rec.batch_id.clone());
            }
        }
        self.inflight = Some(Batch {
            v: 1,
            installation_id: cred.installation_id.clone(),
            session_id: None,
            batch_id: rec.batch_id,
            seq: rec.seq,
            created: rec.created.clone(),
            sent: rec.created,
            policy_version: cred.policy.policy_version,
            events,
        });
        Ok(())
    }

    fn ingest_request(&mut self, now: UnixSeconds) -> Result<HttpRequest> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let inflight = self.inflight.as_mut().expect("caller formed a batch");
        inflight.sent = rfc3339(now);
        match &cred.auth {
            CredentialAuth::Key(k) => {
                inflight.session_id = self.session.as_ref().map(|(s, _)| s.clone());
                let body = telemetry::seal_batch(inflight, k, self.cfg.gzip)?;
                self.request(
                    Op::Ingest,
                    "/v1/ingest",
                    dsse::ENVELOPE_MEDIA_TYPE,
                    body,
                    vec![],
                    None,
                )
            }
            CredentialAuth::SharedKey { key, .. } => {
                inflight.session_id = None;
                let body = serde_json::to_vec(&*inflight).expect("serializable");
                // Signed with this agent's own device key, named by its
                // installation id: the workspace key does not ingest.
                let headers = shared_key_headers(
                    &cred.installation_id,
                    key,
                    "/v1/downlevel/ingest",
                    &body,
                    now.saturating_add(self.clock_offset),
                );
                self.request(
                    Op::Ingest,
                    "/v1/downlevel/ingest",
                    JSON,
                    body,
                    headers,
                    None,
                )
            }
        }
    }

    /// When [`poll_request`](Self::poll_request) may next have something to do.
    pub fn poll_timeout(&self, now: UnixSeconds) -> Option<UnixSeconds> {
        if self.op.is_some() {
            return None;
        }
        if let Some(t) = self.next_attempt {
            return Some(t.max(now));
        }
        if self.pending_redeem.is_some() || self.pending_register.is_some() {
            return Some(now);
        }
        let cred = self.cred.as_ref()?;
        if self.needs_new_token {
            return None;
        }
        let mut t: Option<UnixSeconds> = None;
        let mut at = |x: UnixSeconds| t = Some(t.map_or(x, |y| y.min(x)));
        match self.flow {
            None => at(now),
            Some(FlowState::Blocked) => at(self.next_handshake.unwrap_or(now)),
            Some(FlowState::Revoked) => return None,
            Some(FlowState::Open) => {
                if let Some((_, exp)) = &self.session {
                    at(exp.saturating_sub(self.clock_offset).saturating_sub(30));
                } else if !cred.is_downlevel() {
                    at(now);
                }
                at(self
                    .last_heartbeat
                    .map_or(now, |h| h + cred.policy.heartbeat_interval as i64));
                if let Some(t) = self.send_not_before.filter(|t| *t > now) {
                    at(t);
                } else if self.outbox.inflight().is_some()
                    || (self.flush && self.outbox.waiting() > 0)
                {
                    at(now);
                } else if let Some(t) = self.outbox.oldest_waiting() {
                    at(t + self.cfg.max_batch_delay_secs);
                }
            }
        }
        t.map(|x| x.max(now))
    }

    /// Feeds the answer to request `id`.
    ///
    /// Hosts must pass **every** response header (names in any case): the
    /// client reads `Date` to re-learn its clock offset to the service (so
    /// signed messages stay inside the freshness window on a wrong local
    /// clock) and `Retry-After` to wait exactly as long as the service asks
    /// (kept as `retry_after` on `last_error`). A transport that drops headers
    /// gets stale-message refusals and guessed backoffs instead.
    pub fn handle_response(&mut self, id: u64, resp: &HttpResponse, now: UnixSeconds) {
        let Some((op_id, op)) = self.op.take() else {
            return;
        };
        if op_id != id {
            self.op = Some((op_id, op));
            return;
        }
        // Every answer carries the service's clock (`Date`, RFC 9110): keep the
        // offset current so signed messages stay inside the ±300 s window even
        // when the local clock is wrong.
        if let Some(t) = resp.header("date").and_then(crate::http::parse_http_date) {
            self.set_clock_offset(t.saturating_sub(now));
        }
        let r = if (200..300).contains(&resp.status) {
            let path = op.path(self.is_downlevel());
            self.log(
                LogLevel::Debug,
                format!("answer #{id}: {} to {path}", resp.status),
            );
            self.on_success(op, resp, now)
        } else {
            self.on_error_status(id, op, resp, now)
        };
        if let Err(e) = r {
            self.fail(e, now);
        }
        self.note_drops();
    }

    fn is_downlevel(&self) -> bool {
        self.cred.as_ref().is_some_and(|c| c.is_downlevel())
    }

    /// Reports that request `id` failed below HTTP (connection, TLS, timeout).
    pub fn handle_transport_error(&mut self, id: u64, message: &str, now: UnixSeconds) {
        if self.op.as_ref().is_some_and(|(i, _)| *i == id) {
            if let Some((_, op)) = self.op.take() {
                let path = op.path(self.is_downlevel());
                // The transport's text is kept in last_error only: it may
                // name a proxy with its credentials.
                self.log(LogLevel::Debug, format!("no answer #{id} to {path}"));
                if let Op::Rotate { new_key, .. } = op {
                    self.keep_rotation_candidate(new_key);
                }
            }
            self.backoff(Error::new(ErrorCode::Transport, message.to_owned()), now);
        }
    }

    /// A rotation whose answer was lost may have taken effect at the service:
    /// keep the new key so that, if the old one is refused, we switch to it
    /// instead of stranding the installation.
    fn keep_rotation_candidate(&mut self, new_key: SigningKey) {
        self.rotation_candidate = Some(new_key);
    }

    /// An operation failed for good: the `failed` event, the failure counter
    /// (ends pending operations) and `last_error`.
    fn fail(&mut self, e: Error, _now: UnixSeconds) {
        self.events.push_back(ClientEvent::Failed(e.code()));
        self.log(LogLevel::Error, format!("operation failed: {}", e.code()));
        self.counters.failures += 1;
        self.last_failure = Some(e.clone());
        self.last_error = Some(e);
    }

    fn backoff(&mut self, e: Error, now: UnixSeconds) {
        self.attempts = self.attempts.saturating_add(1);
        let delay = match e.retry_after() {
            Some(s) => s as i64,
            None => {
                // Exponential backoff with full jitter, capped.
                let ceiling = (1i64 << self.attempts.min(20))
                    .min(self.cfg.max_backoff_secs)
                    .max(1);
                let mut b = [0u8; 4];
                let _ = self.rng.fill(&mut b);
                (u32::from_le_bytes(b) as i64 % (ceiling + 1)).max(1)
            }
        };
        self.next_attempt = Some(now + delay);
        let source = if e.retry_after().is_some() {
            " (the service's Retry-After)"
        } else {
            ""
        };
        self.log(
            LogLevel::Info,
            format!("backing off {delay} s after {}{source}", e.code()),
        );
        // The refusal itself stays the last error, with its `retry_after`.
        self.last_error = Some(e);
    }

    fn succeeded(&mut self) {
        if self.attempts >= 3 && self.cfg.recovery_jitter_secs > 0 {
            let mut b = [0u8; 4];
            let _ = self.rng.fill(&mut b);
            let delay = u32::from_le_bytes(b) as i64 % (self.cfg.recovery_jitter_secs + 1);
            self.send_not_before = Some(self.next_attempt.unwrap_or(0).max(self.pace.0) + delay);
        }
        self.attempts = 0;
        self.next_attempt = None;
        self.auth_failures = (0, None);
    }

    fn on_success(&mut self, op: Op, resp: &HttpResponse, now: UnixSeconds) -> Result<()> {
        let text = core::str::from_utf8(&resp.body)
            .map_err(|_| Error::malformed("response is not UTF-8"))?;
        match op {
            Op::Redeem => {
                let p = self
                    .pending_redeem
                    .take()
                    .ok_or_else(|| Error::new(ErrorCode::Internal, "no redemption pending"))?;
                let (cred, claims) =
                    p.accept(text, self.cfg.pinned_keys.as_ref(), self.corrected(now))?;
                self.set_clock_offset(claims.iat.saturating_sub(now));
                self.cred = Some(cred);
                self.flow = None;
                self.session = None;
                self.needs_new_token = false;
                // Rebuilt from the outbox (same batch id and sequence) under
                // the installation this credential names.
                self.inflight = None;
                self.succeeded();
                self.counters.enrollments += 1;
                self.events.push_back(ClientEvent::CredentialChanged);
                self.log(LogLevel::Info, "enrolled: credential issued");
            }
            Op::Register => {
                let r: RegisterResponse =
                    crate::encoding::parse_json(text.as_bytes(), 64 * 1024, "register response")?;
                let PendingRegister {
                    package: pkg,
                    enrollment_id: enrollment,
                    device_key,
                } = self
                    .pending_register
                    .take()
                    .ok_or_else(|| Error::new(ErrorCode::Internal, "no registration pending"))?;
                if r.installation_id.is_empty() || r.installation_id.len() > 128 {
                    return Err(Error::malformed(
                        "installation_id must be 1..128 characters",
                    ));
                }
                let next_seq = r.last_seq.checked_add(1).ok_or_else(|| {
                    Error::malformed("register answer: last_seq leaves no next sequence number")
                })?;
                self.set_clock_offset(r.server_time.saturating_sub(now));
                self.cred = Some(Credential {
                    installation_id: r.installation_id,
                    enrollment_id: enrollment,
                    tenant_id: pkg.tenant_id.clone(),
                    partner_id: pkg.partner_id.clone(),
                    region: pkg.region.clone(),
                    service_url: pkg.service_url.clone(),
                    epoch: r.epoch,
                    service_keys: pkg.service_keys.clone(),
                    policy: r.policy,
                    issued_at: r.server_time,
                    expires_at: r
                        .server_time
                        .saturating_add(crate::credential::CREDENTIAL_LIFETIME),
                    // The device key, not the workspace key: the package can
                    // be thrown away once registration succeeded.
                    auth: CredentialAuth::SharedKey {
                        workspace_id: pkg.workspace_id.clone(),
                        key: zeroize::Zeroizing::new(device_key.as_bytes().to_vec()),
                    },
                });
                self.outbox.resync_seq(next_seq)?;
                self.flow = Some(FlowState::Open);
                // A new package after a revocation: sending resumes, and the
                // held batch is rebuilt for the (possibly new) installation.
                self.needs_new_token = false;
                self.inflight = None;
                self.succeeded();
                self.counters.enrollments += 1;
                self.events.push_back(ClientEvent::CredentialChanged);
                self.log(LogLevel::Info, "registered: down-level credential issued");
                self.emit_flow_changed(FlowState::Open);
            }
            Op::Handshake { nonce } => {
                let cred = self
                    .cred
                    .as_mut()
                    .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
                let at = now.saturating_add(self.clock_offset);
                let d = handshake::accept_decision(cred, text, &nonce, at)?;
                let next_seq = d.last_seq.checked_add(1).ok_or_else(|| {
                    Error::malformed("flow decision: last_seq leaves no next sequence number")
                })?;
                if let Some(ks) = &d.keyset {
                    // Overlap rule, never a wholesale replacement: new keys
                    // only when vouched for by a pinned key, a pinned key
                    // retired only once another pinned key signed.
                    let signer = jws::parse(text, handshake::FLOW_TYP)?
                        .header
                        .kid
                        .unwrap_or_default();
                    if let Some(next) = cred.service_keys.merge_signed(ks, &signer, at)? {
                        cred.service_keys = next;
                        self.events.push_back(ClientEvent::CredentialChanged);
                    }
                }
                let iat = d.iat;
                let policy_refused = match &d.policy {
                    Some(p) => cred.policy.accept_update(p).err(),
                    None => None,
                };
                self.set_clock_offset(iat.saturating_sub(now));
                self.last_handshake = Some(now);
                if let Some(e) = policy_refused {
                    self.log(
                        LogLevel::Warn,
                        format!("policy update refused: {}", e.code()),
                    );
                    self.last_error = Some(e);
                }
                // The service is ahead (e.g. our state was restored from an old
                // backup): continue after its sequence. An in-flight batch keeps
                // its number: it may be the one the service stored.
                if self.outbox.inflight().is_none() {
                    self.outbox.resync_seq(next_seq)?;
                }
                let reported = self.reported_drops.clone();
                self.outbox.clear_reported_drops(&reported)?;
                self.session = d.session_id.clone().zip(d.session_exp);
                if self.flow != Some(d.decision) {
                    self.emit_flow_changed(d.decision);
                }
                self.flow = Some(d.decision);
                self.attempts = 0;
                self.next_attempt = None;
                self.auth_failures = (0, None);
                match d.decision {
                    FlowState::Open => self.next_handshake = None,
                    FlowState::Blocked => {
                        self.next_handshake =
                            Some(now.saturating_add(self.cfg.blocked_recheck_secs));
                        self.last_error = Some(Error::new(
                            ErrorCode::FlowBlocked,
                            "inbound flow is blocked by the service (integration turned off)",
                        ));
                    }
                    FlowState::Revoked => {
                        let code = d.reason.unwrap_or(ErrorCode::Revoked);
                        self.enter_needs_new_token(Error::new(
                            code,
                            "credential revoked by the service: a new access token is required",
                        ));
                    }
                }
            }
            Op::Ingest => {
                let ack: IngestAck =
                    crate::encoding::parse_json(text.as_bytes(), 64 * 1024, "ingest ack")?;
                let inflight = self
                    .inflight
                    .as_ref()
                    .ok_or_else(|| Error::new(ErrorCode::Internal, "no batch in flight"))?;
                if ack.batch_id != inflight.batch_id {
                    return Err(Error::malformed("ack names another batch"));
                }
                self.inflight = None;
                let n = self.outbox.ack_inflight(ack.seq)?;
                self.sent_events += n;
                self.counters.delivered += n;
                self.last_send = Some(now);
                self.succeeded();
                self.last_error = None;
                // A delivery made room: a later overflow is a new episode.
                self.queue_full_signalled = false;
                self.events.push_back(ClientEvent::Delivered(n));
            }
            Op::Offboard { nonce } => {
                let cred = self
                    .cred
                    .as_ref()
                    .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
                offboard::accept_response(
                    cred,
                    text,
                    &nonce,
                    now.saturating_add(self.clock_offset),
                )?;
                self.succeeded();
                self.wipe();
            }
            Op::Rotate { nonce, new_key } => {
                let cred = self
                    .cred
                    .as_mut()
                    .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
                let at = now.saturating_add(self.clock_offset);
                rotate::accept(cred, new_key, text, &nonce, at)?;
                self.succeeded();
                self.rotated("credential rotated");
            }
        }
        Ok(())
    }

    fn on_error_status(
        &mut self,
        id: u64,
        op: Op,
        resp: &HttpResponse,
        now: UnixSeconds,
    ) -> Result<()> {
        let (err, problem) = error_from_response(resp, now);
        // Status and code only: a problem's detail is the service's text.
        let path = op.path(self.is_downlevel());
        self.log(
            LogLevel::Debug,
            format!("answer #{id}: {} to {path} ({})", resp.status, err.code()),
        );
        // A stale-message refusal is retried at once: the offset was just
        // re-measured from the answer's `Date` header.
        let retryable = matches!(resp.status, 408 | 429 | 500..=599)
            || (err.code() == ErrorCode::StaleMessage && self.attempts < 3);
        if !retryable {
            self.log(
                LogLevel::Warn,
                format!("{path} refused: {} (HTTP {})", err.code(), resp.status),
            );
        }
        match op {
            Op::Redeem | Op::Register if !retryable => {
                // Refused for good (expired, revoked, exhausted, disabled, region…).
                self.pending_redeem = None;
                self.pending_register = None;
                self.fail(err, now);
            }
            Op::Ingest if !retryable => {
                self.on_ingest_refused(err, problem.and_then(|p| p.expected_seq), now)
            }
            Op::Rotate { new_key, .. } if retryable => {
                self.keep_rotation_candidate(new_key);
                self.backoff(err, now);
            }
            _ if retryable => self.backoff(err, now),
            _ if resp.status == 401 => self.auth_failure(err, now),
            op => {
                // Refused for good (a hello, rotation or opt-out the service
                // will not take): the `failed` event ends the operation that
                // asked, the refusal stays the last error (with its
                // `retry_after`), and the request is retried on the backoff
                // schedule — a forced rotation is not.
                if matches!(op, Op::Rotate { .. }) {
                    self.force_rotate = false;
                }
                self.fail(err.clone(), now);
                self.backoff(err, now);
            }
        }
        Ok(())
    }

    /// The installation key changed by rotation (answered, or recovered
    /// after a lost answer).
    fn rotated(&mut self, what: &str) {
        self.force_rotate = false;
        self.counters.rotations += 1;
        self.events.push_back(ClientEvent::CredentialChanged);
        self.events.push_back(ClientEvent::CredentialRotated);
        self.log(LogLevel::Info, what.to_owned());
    }

    fn set_flow(&mut self, f: FlowState) {
        if self.flow != Some(f) {
            self.emit_flow_changed(f);
        }
        self.flow = Some(f);
    }

    fn on_ingest_refused(&mut self, err: Error, expected_seq: Option<u64>, now: UnixSeconds) {
        match err.code() {
            ErrorCode::FlowBlocked => {
                self.set_flow(FlowState::Blocked);
                self.next_handshake = Some(now.saturating_add(self.cfg.blocked_recheck_secs));
                self.last_error = Some(err);
            }
            ErrorCode::SessionExpired => {
                self.session = None;
                if self.cred.as_ref().is_some_and(|c| !c.is_downlevel()) {
                    self.flow = None;
                }
            }
            ErrorCode::Revoked
            | ErrorCode::Offboarded
            | ErrorCode::EpochMismatch
            | ErrorCode::CredentialExpired => {
                self.set_flow(FlowState::Revoked);
                self.enter_needs_new_token(err);
            }
            ErrorCode::SequenceRegression => {
                if let Some(exp) = expected_seq {
                    if let Err(e) = self.outbox.resync_seq(exp) {
                        self.last_error = Some(e);
                        return;
                    }
                    self.inflight = None;
                }
                self.last_error = Some(err);
            }
            ErrorCode::BatchTooLarge => {
                // Split: the first half goes again under the same sequence
                // number (the refused batch was never stored), the rest waits;
                // a half that is still refused is split again. Only a single
                // event that no request can carry is dropped.
                self.inflight = None;
                let r = random_id(&*self.rng, 16)
                    .and_then(|id| self.outbox.split_inflight(id))
                    .and_then(|split| {
                        if split {
                            Ok(0)
                        } else {
                            self.outbox.drop_inflight("too_large")
                        }
                    });
                self.last_error = Some(r.err().unwrap_or(err));
            }
            ErrorCode::Unauthorized
            | ErrorCode::BadSignature
            | ErrorCode::UnknownKey
            | ErrorCode::UnknownInstallation => self.auth_failure(err, now),
            _ => {
                self.inflight = None;
                let r = self
                    .outbox
                    .drop_inflight(&format!("rejected_{}", err.code()));
                self.last_error = Some(r.err().unwrap_or(err));
            }
        }
    }

    /// A 401 never deletes the credential: back off, re-handshake (which
    /// re-measures the clock offset), and only after a long run of failures
    /// report `needs_reenroll`.
    fn auth_failure(&mut self, err: Error, now: UnixSeconds) {
        if let (Some(key), Some(cred)) = (self.rotation_candidate.take(), self.cred.as_mut()) {
            if matches!(
                err.code(),
                ErrorCode::BadSignature | ErrorCode::UnknownKey | ErrorCode::UnknownInstallation
            ) {
                cred.auth = CredentialAuth::Key(key);
                self.rotated("credential rotated: the service took the key whose answer was lost");
                self.session = None;
                self.flow = None;
                self.inflight = None;
                return;
            }
        }
        let (n, first) = self.auth_failures;
        let first = first.unwrap_or(now);
        self.auth_failures = (n + 1, Some(first));
        self.session = None;
        // Re-handshake next (down-level agents have none: they stay open and
        // retry the ingest after the backoff).
        if self.flow == Some(FlowState::Open) && !self.is_downlevel() {
            self.flow = None;
        }
        if n + 1 >= REENROLL_AFTER_FAILURES && now - first >= REENROLL_AFTER_SECONDS {
            self.enter_needs_new_token(Error::new(
                ErrorCode::NeedsReenroll,
                format!(
                    "authentication failed {} times over {}s: a new access token is required",
                    n + 1,
                    now - first
                ),
            ));
        } else {
            self.backoff(err, now);
        }
    }

    /// The health report.
    pub fn health(&self, now: UnixSeconds) -> HealthReport {
        let onboarded = self.cred.is_some();
        HealthReport {
            healthy: onboarded
                && self.flow == Some(FlowState::Open)
                && !self.needs_new_token
                && self.attempts == 0,
            onboarded,
            installation_id: self.cred.as_ref().map(|c| c.installation_id.clone()),
            flow: self.flow,
            needs_new_token: self.needs_new_token,
            last_handshake: self.last_handshake,
            last_send: self.last_send,
            queued_events: self.outbox.len() as u64,
            queued_bytes: self.outbox.bytes(),
            oldest_queued_age: self.outbox.oldest().map(|t| now - t),
            sent_events: self.sent_events,
            drops: self.outbox.drops_total().clone(),
            clock_offset: self.clock_offset,
            last_error: self.last_error.as_ref().map(|e| e.info()),
            next_attempt: self.next_attempt,
        }
    }

    /// The last error (what [`HealthReport::last_error`] shows), typed.
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// A snapshot of the outbox for hosts without a durable spool (wasm):
    /// persist it after each call that changes state, restore it with
    /// [`spool::Outbox::from_snapshot`](crate::spool::Outbox::from_snapshot) and
    /// [`with_outbox`](Self::with_outbox).
    pub fn outbox_snapshot(&mut self) -> Result<crate::spool::Snapshot> {
        self.outbox.snapshot()
    }

    /// The current flow state.
    pub fn flow(&self) -> Option<FlowState> {
        self.flow
    }

    /// Whether nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.outbox.is_empty() && self.op.is_none()
    }
}

/// Largest clock offset the client believes (about 50 years): offsets come
/// from `Date` headers and signed `iat`s, and bounding them keeps every
/// `now + offset` far from overflow.
const MAX_CLOCK_OFFSET: i64 = 50 * 366 * 86_400;

fn clamp_offset(v: i64) -> i64 {
    v.clamp(-MAX_CLOCK_OFFSET, MAX_CLOCK_OFFSET)
}

fn shared_key_headers(
    workspace_id: &str,
    key: &[u8],
    path: &str,
    body: &[u8],
    now: UnixSeconds,
) -> Vec<(String, String)> {
    let date = rfc3339(now);
    let auth = downlevel::authorization(workspace_id, key, "POST", path, JSON, &date, body);
    vec![
        ("authorization".into(), auth),
        (downlevel::DATE_HEADER.into(), date),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory_store::MemoryStore;
    use crate::redeem::DeviceFacts;
    use crate::service::{Integration, ServiceConfig, ServiceRole, TokenRecord};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Deterministic randomness for tests.
    struct Counter(AtomicU64);
    impl RandomSource for Counter {
        fn fill(&self, dest: &mut [u8]) -> Result<()> {
            for chunk in dest.chunks_mut(8) {
                let n = self.0.fetch_add(1, Ordering::Relaxed).to_le_bytes();
                chunk.copy_from_slice(&n[..chunk.len()]);
            }
            Ok(())
        }
    }

    fn device(id: &str) -> DeviceFacts {
        DeviceFacts {
            device_id: id.into(),
            hostname: format!("host-{id}"),
            os: "linux".into(),
            os_version: "6.1".into(),
            product: "AV".into(),
            product_version: "1.0".into(),
        }
    }

    fn setup() -> (ServiceRole, MemoryStore) {
        let cfg = ServiceConfig {
            issuer: "test".into(),
            region: "eu".into(),
            service_url: "https://svc.test".into(),
            keys: vec![SigningKey::from_seed(&[42; 32]).unwrap()],
            policy: crate::policy::Policy::default(),
            rate_limit: crate::service::RateLimit::default(),
            session_lifetime: 3600,
        };
        let role = ServiceRole::new(cfg, Box::new(Counter(AtomicU64::new(1 << 40)))).unwrap();
        let mut store = MemoryStore::default();
        store.tenants.insert("t1".into(), "eu".into());
        store.integrations.insert(
            ("t1".into(), "bd".into()),
            Integration {
                tenant_id: "t1".into(),
                partner_id: "bd".into(),
                enabled: true,
                epoch: 1,
            },
        );
        (role, store)
    }

    fn token(role: &ServiceRole, store: &mut MemoryStore, now: i64) -> String {
        let (tok, c) = role.issue_token(store, "t1", "bd", 3600, 10, now).unwrap();
        store.tokens.insert(
            c.jti.clone(),
            TokenRecord {
                jti: c.jti,
                tenant_id: "t1".into(),
                partner_id: "bd".into(),
                epoch: c.epoch,
                exp: c.exp,
                max_uses: 10,
                uses: 0,
                revoked: false,
            },
        );
        tok
    }

    /// Drives the client against the in-process service until nothing is due.
    fn pump(c: &mut PartnerClient, role: &ServiceRole, store: &mut MemoryStore, now: i64) {
        for _ in 0..100 {
            let Some(req) = c.poll_request(now) else {
                return;
            };
            let path = req.url.strip_prefix("https://svc.test").unwrap().to_owned();
            let resp = role.handle(
                store,
                &HttpRequest {
                    url: path,
                    ..req.clone()
                },
                now,
            );
            c.handle_response(req.id, &resp, now);
        }
        panic!("client did not settle");
    }

    #[test]
    fn story_redeem_send_block_resume() {
        let (role, mut store) = setup();
        let now = 1_800_000_000;
        let tok = token(&role, &mut store, now);
        let mut c = PartnerClient::new(
            ClientConfig::new(device("d1")),
            Box::new(Counter(AtomicU64::new(1))),
        );
        c.redeem(&tok).unwrap();
        pump(&mut c, &role, &mut store, now);
        assert_eq!(c.flow(), Some(FlowState::Open));
        let inst = c.credential().unwrap().installation_id.clone();
        c.submit(crate::eicar::test_detection(now, "/tmp/eicar.com"), now)
            .unwrap();
        c.flush();
        pump(&mut c, &role, &mut store, now);
        assert!(c.is_idle());
        assert_eq!(store.alerts.len(), 1);
        assert_eq!(store.alerts[0].1.title, "EICAR test file");

        // Toggle off: blocks and bumps the epoch. Events stay queued.
        let integ = store
            .integrations
            .get_mut(&("t1".into(), "bd".into()))
            .unwrap();
        integ.enabled = false;
        integ.epoch += 1;
        for i in 0..3 {
            c.submit(
                Event::Generic(telemetry::GenericEvent {
                    time: rfc3339(now),
                    name: format!("e{i}"),
                    data: serde_json::Value::Null,
                }),
                now,
            )
            .unwrap();
        }
        c.flush();
        pump(&mut c, &role, &mut store, now + 10);
        assert_eq!(c.flow(), Some(FlowState::Blocked));
        assert_eq!(c.health(now + 10).queued_events, 3);

        // Toggle on: the old credential is revoked; a new token resumes delivery.
        store
            .integrations
            .get_mut(&("t1".into(), "bd".into()))
            .unwrap()
            .enabled = true;
        pump(&mut c, &role, &mut store, now + 400);
        assert_eq!(c.flow(), Some(FlowState::Revoked));
        assert!(c.health(now + 400).needs_new_token);
        let tok2 = token(&role, &mut store, now + 400);
        c.redeem(&tok2).unwrap();
        c.flush();
        pump(&mut c, &role, &mut store, now + 401);
        assert_eq!(
            c.credential().unwrap().installation_id,
            inst,
            "same installation resumes"
        );
        assert!(c.is_idle());
        let names: Vec<String> = store
            .events_of(&inst)
            .into_iter()
            .filter_map(|e| match e {
                Event::Generic(g) => Some(g.name),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["e0", "e1", "e2"], "delivered once, in order");
    }

    #[test]
    fn file_samples_leave_only_when_the_policy_allows() {
        let (role, mut store) = setup();
        let now = 1_800_000_000;
        let tok = token(&role, &mut store, now);
        let mut c = PartnerClient::new(
            ClientConfig::new(device("d3")),
            Box::new(Counter(AtomicU64::new(99))),
        );
        c.redeem(&tok).unwrap();
        pump(&mut c, &role, &mut store, now);
        let content = crate::encoding::b64std(crate::eicar::EICAR);
        let sample = Event::FileSample(telemetry::FileSample {
            time: rfc3339(now),
            sha256: crate::eicar::EICAR_SHA256.into(),
            file_name: "eicar.com".into(),
            content,
        });
        c.submit(sample.clone(), now).unwrap();
        c.submit(crate::eicar::test_detection(now, "/x"), now)
            .unwrap();
        c.flush();
        pump(&mut c, &role, &mut store, now);
        let inst = c.credential().unwrap().installation_id.clone();
        let stored = store.events_of(&inst);
        assert!(
            stored.iter().all(|e| !matches!(e, Event::FileSample(_))),
            "policy `none` keeps samples home"
        );
        assert!(stored.iter().any(|e| matches!(e, Event::Detection(_))));
        assert_eq!(
            c.health(now).drops.get("samples_not_allowed/telemetry"),
            Some(&1)
        );
        let bad = telemetry::FileSample {
            time: rfc3339(now),
            sha256: "00".repeat(32),
            file_name: "x".into(),
            content: crate::encoding::b64std(b"abc"),
        };
        assert_eq!(
            c.submit(Event::FileSample(bad), now).unwrap_err().code(),
            ErrorCode::Malformed
        );
    }

    #[test]
    fn lost_rotation_answer_does_not_strand_the_installation() {
        let (role, mut store) = setup();
        let now = 1_800_000_000;
        let tok = token(&role, &mut store, now);
        let mut c = PartnerClient::new(
            ClientConfig::new(device("rot")),
            Box::new(Counter(AtomicU64::new(5))),
        );
        c.redeem(&tok).unwrap();
        pump(&mut c, &role, &mut store, now);
        let old_kid = c.credential().unwrap().signing_key().unwrap().key_id();
        // Two thirds into the credential's lifetime the client rotates; the
        // service switches keys but the answer is lost.
        let later = now + 61 * 86_400;
        let mut rotated = false;
        for _ in 0..10 {
            let Some(req) = c.poll_request(later) else {
                break;
            };
            let resp = role.handle(
                &mut store,
                &HttpRequest {
                    url: req.url.replace("https://svc.test", ""),
                    ..req.clone()
                },
                later,
            );
            if req.url.ends_with("/v1/rotate") {
                assert_eq!(resp.status, 200);
                c.handle_transport_error(req.id, "connection reset", later);
                rotated = true;
                break;
            }
            c.handle_response(req.id, &resp, later);
        }
        assert!(rotated, "rotation was attempted");
        c.submit(crate::eicar::test_detection(later, "/r"), later)
            .unwrap();
        c.flush();
        pump(&mut c, &role, &mut store, later + 400);
        assert!(c.is_idle(), "{:?}", c.health(later + 400));
        assert_ne!(
            c.credential().unwrap().signing_key().unwrap().key_id(),
            old_kid,
            "switched to the key the service registered"
        );
        assert!(!c.health(later + 400).needs_new_token);
        assert_eq!(store.alerts.len(), 1);
    }

    fn role_with_keys(keys: Vec<SigningKey>) -> ServiceRole {
        let cfg = ServiceConfig {
            issuer: "test".into(),
            region: "eu".into(),
            service_url: "https://svc.test".into(),
            keys,
            policy: crate::policy::Policy::default(),
            rate_limit: crate::service::RateLimit::default(),
            session_lifetime: 600,
        };
        ServiceRole::new(cfg, Box::new(Counter(AtomicU64::new(1 << 41)))).unwrap()
    }

    #[test]
    fn service_key_rotation_reaches_the_fleet_through_handshakes() {
        let (a, b) = (
            SigningKey::from_seed(&[42; 32]).unwrap(),
            SigningKey::from_seed(&[43; 32]).unwrap(),
        );
        let (role, mut store) = setup();
        let now = 1_800_000_000;
        let tok = token(&role, &mut store, now);
        let mut c = PartnerClient::new(
            ClientConfig::new(device("keys")),
            Box::new(Counter(AtomicU64::new(11))),
        );
        c.redeem(&tok).unwrap();
        pump(&mut c, &role, &mut store, now);
        assert_eq!(c.credential().unwrap().service_keys.keys.len(), 1);
        // Phase 1: the new key B is published (A still signs); a handshake carries it.
        let phase1 = role_with_keys(vec![a.clone(), b.clone()]);
        pump(&mut c, &phase1, &mut store, now + 3600);
        assert_eq!(
            c.credential().unwrap().service_keys.keys.len(),
            2,
            "keyset refreshed"
        );
        assert!(
            std::iter::from_fn(|| c.poll_event()).any(|e| e == ClientEvent::CredentialChanged),
            "host is told to persist"
        );
        // Phase 2: B signs; the endpoint already trusts it, no re-enrollment.
        let phase2 = role_with_keys(vec![b, a]);
        pump(&mut c, &phase2, &mut store, now + 7200);
        assert_eq!(c.flow(), Some(FlowState::Open));
        assert!(
            c.health(now + 7200).last_error.is_none(),
            "{:?}",
            c.health(now + 7200)
        );
    }

    #[test]
    fn lost_ack_is_retried_without_double_store() {
        let (role, mut store) = setup();
        let now = 1_800_000_000;
        let tok = token(&role, &mut store, now);
        let mut c = PartnerClient::new(
            ClientConfig::new(device("d2")),
            Box::new(Counter(AtomicU64::new(7))),
        );
        c.redeem(&tok).unwrap();
        pump(&mut c, &role, &mut store, now);
        c.submit(crate::eicar::test_detection(now, "/x"), now)
            .unwrap();
        c.flush();
        // Deliver the envelope but lose the answer.
        let req = c.poll_request(now).unwrap();
        let _ = role.handle(
            &mut store,
            &HttpRequest {
                url: "/v1/ingest".into(),
                ..req.clone()
            },
            now,
        );
        c.handle_transport_error(req.id, "connection reset", now);
        assert_eq!(
            c.health(now).queued_events,
            2,
            "heartbeat + detection still held"
        );
        c.flush();
        pump(&mut c, &role, &mut store, now + 400);
        assert!(c.is_idle(), "{:?}", c.health(now + 400));
        assert_eq!(store.alerts.len(), 1, "stored once");
        let inst = c.credential().unwrap().installation_id.clone();
        let detections = store
            .events_of(&inst)
            .into_iter()
            .filter(|e| matches!(e, Event::Detection(_)))
            .count();
        assert_eq!(detections, 1);
    }
}
