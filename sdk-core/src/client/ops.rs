//! Long operations (enroll, handshake, flush, offboard, rotate) and their
//! status as a pure function of the client's state: drivers (the blocking
//! agent, the wasm client, bindings) are plain loops over
//! [`PartnerClient::start`] and [`PartnerClient::op_status`], so the
//! "done or failed?" rules exist once, here.

use super::PartnerClient;
use crate::diag::LogLevel;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::FlowState;
use crate::health::HealthReport;

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
pub(super) struct Counters {
    /// Credentials issued by redemption or registration.
    pub(super) enrollments: u64,
    /// Credentials wiped (offboarding).
    pub(super) removals: u64,
    /// Events acknowledged by the service.
    pub(super) delivered: u64,
    /// `failed` events.
    pub(super) failures: u64,
    /// Key rotations that took effect.
    pub(super) rotations: u64,
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

impl PartnerClient {
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

    pub(super) fn failure(&self) -> Error {
        self.last_failure
            .clone()
            .or_else(|| self.last_error.clone())
            .unwrap_or_else(|| Error::new(ErrorCode::Internal, "operation failed"))
    }

    pub(super) fn new_token_error(&self) -> Error {
        self.last_error
            .clone()
            .filter(|_| self.needs_new_token)
            .unwrap_or_else(|| {
                Error::new(ErrorCode::NeedsReenroll, "a new access token is required")
            })
    }

    pub(super) fn flush_outcome(&self, h: &OpHandle) -> FlushOutcome {
        FlushOutcome {
            delivered: self.counters.delivered.saturating_sub(h.base.delivered),
            queued: self.outbox.len() as u64,
        }
    }

    /// The flush rules; `at_deadline` ignores that a request is due (the
    /// driver stops sending at the deadline).
    pub(super) fn flush_status(
        &self,
        h: &OpHandle,
        now: UnixSeconds,
        at_deadline: bool,
    ) -> OpStatus {
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
}
