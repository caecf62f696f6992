//! The partner role as a sans-IO state machine, in the style of quinn-proto
//! and Glean's uploader: the host asks [`PartnerClient::poll_request`] what to
//! send, performs it with whatever HTTP stack it has, and feeds the answer to
//! [`PartnerClient::handle_response`] (or [`PartnerClient::handle_transport_error`]).
//! [`PartnerClient::poll_timeout`] says when to ask again. Time is always passed in.
//!
//! One request is outstanding at a time; that keeps ordering per installation
//! trivially correct and is plenty for an endpoint.
//!
//! This file holds the [`PartnerClient`] state, its construction and the
//! public calls a host makes; each concern behind them has its own file, so a
//! change to one rule touches one place:
//!
//! | file | job |
//! |---|---|
//! | `url.rs` | the service URL rule: which base URL, and https-or-loopback only |
//! | `events.rs` | [`ClientEvent`] and its canonical JSON, the log queue, drop reports |
//! | `ops.rs` | [`Operation`]s and their status ([`PartnerClient::start`], [`PartnerClient::op_status`]) |
//! | `schedule.rs` | what is due when: handshake timing, rotation, heartbeats, pacing, backoff, recovery jitter, [`PartnerClient::poll_timeout`] |
//! | `requests.rs` | building the signed requests (redeem, register, hello, rotate, offboard) and the one gate every request passes |
//! | `batching.rs` | forming, rebuilding and sealing batches; the ingest request |
//! | `answers.rs` | success and refusal answers, auth failures, the rotation candidate |
//! | `tests.rs` | unit tests against the in-process service role |

mod answers;
mod batching;
mod events;
mod host;
mod ops;
mod requests;
mod schedule;
mod url;

#[cfg(test)]
mod tests;

pub use events::ClientEvent;
pub use host::{HostAnswer, HostRequest, HostRequestKind};
pub use ops::{FlushOutcome, OpHandle, OpKind, OpOutcome, OpStatus, Operation};
pub use url::check_service_url;

use crate::credential::{Credential, CredentialAuth};
use crate::diag::{LogLevel, LogRecord};
use crate::downlevel::{DeviceKey, OnboardingPackage};
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{FlowState, SensorState};
use crate::health::HealthReport;
use crate::http::{HttpRequest, HttpResponse};
use crate::keys::{random_id, RandomSource};
use crate::offboard;
use crate::redeem::PendingRedeem;
use crate::signer::InstallationKey;
use crate::telemetry::{Batch, Event};
use ops::Counters;
use requests::Op;
use std::collections::{BTreeMap, VecDeque};

pub use crate::spool::WhenFull;
use crate::spool::{Limits, Outbox};

pub use crate::options::ClientOptions;

/// The former name of [`ClientOptions`].
pub type ClientConfig = ClientOptions;

/// A down-level registration in progress. The enrollment id and the device
/// key are made before the first attempt and reused by every retry, so a
/// retry resumes the installation its lost answer created.
struct PendingRegister {
    package: OnboardingPackage,
    enrollment_id: String,
    device_key: DeviceKey,
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
    rotation_candidate: Option<InstallationKey>,
    /// A new key the host made for the next rotation (not sent yet).
    rotation_new: Option<InstallationKey>,
    /// New installation keys come from the host ([`PartnerClient::use_host_keys`]).
    host_keys: bool,
    /// Host work not yet handed out ([`PartnerClient::poll_host_request`]).
    host_queue: VecDeque<HostRequest>,
    /// The host request an operation waits for, and why.
    host_waiting: Option<(u64, host::Waiting)>,
    /// A request finished with a host signature, for the next poll.
    ready: Option<HttpRequest>,
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
            rotation_new: None,
            host_keys: false,
            host_queue: VecDeque::new(),
            host_waiting: None,
            ready: None,
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
        let key = match key {
            Some(k) => Some(k),
            None if self.host_keys => None,
            None => Some(InstallationKey::Software(
                crate::keys::SigningKey::generate(&*self.rng)?,
            )),
        };
        let p =
            PendingRedeem::with_key(token, self.cfg.device.clone(), key, enrollment, &*self.rng)?;
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
        if let Some(CredentialAuth::Key(k)) = self.cred.take().map(|c| c.auth.clone()) {
            self.retire_key(&k);
        }
        if let Some(k) = self.rotation_new.take() {
            self.retire_key(&k);
        }
        self.rotation_candidate = None;
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

    /// The next request to perform, if one is due at `now`.
    pub fn poll_request(&mut self, now: UnixSeconds) -> Option<HttpRequest> {
        if let Some(r) = self.ready.take() {
            return Some(r);
        }
        let r = self.poll_request_inner(now);
        self.note_drops();
        r
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
        self.outbox.is_empty() && self.op.is_none() && !self.waiting_for_host()
    }
}
