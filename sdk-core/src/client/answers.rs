//! What the client does with an answer: accepting each success (credential,
//! flow decision, ack, rotation, offboarding), sorting refusals into retry,
//! fail or needs-new-token, ingest refusals (split, resync, drop), and
//! authentication failures with the lost-rotation recovery. Every state
//! change a host sees as an event starts here.

use super::requests::Op;
use super::PartnerClient;
use super::{ClientEvent, PendingRegister, REENROLL_AFTER_FAILURES, REENROLL_AFTER_SECONDS};
use crate::credential::{Credential, CredentialAuth};
use crate::diag::LogLevel;
use crate::downlevel::RegisterResponse;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{self, FlowState};
use crate::http::{error_from_response, HttpResponse};
use crate::keys::random_id;
use crate::service::IngestAck;
use crate::signer::InstallationKey;
use crate::{jws, offboard, rotate};

impl PartnerClient {
    /// Enters the needs-new-token state with its reason (once: the event and
    /// the warning fire on the transition only).
    pub(super) fn enter_needs_new_token(&mut self, err: Error) {
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

    /// A rotation whose answer was lost may have taken effect at the service:
    /// keep the new key so that, if the old one is refused, we switch to it
    /// instead of stranding the installation.
    pub(super) fn keep_rotation_candidate(&mut self, new_key: InstallationKey) {
        self.rotation_candidate = Some(new_key);
    }

    /// An operation failed for good: the `failed` event, the failure counter
    /// (ends pending operations) and `last_error`.
    pub(super) fn fail(&mut self, e: Error, _now: UnixSeconds) {
        self.events.push_back(ClientEvent::Failed(e.code()));
        self.log(LogLevel::Error, format!("operation failed: {}", e.code()));
        self.counters.failures += 1;
        self.last_failure = Some(e.clone());
        self.last_error = Some(e);
    }

    /// A 2xx answer to `op`: each kind of answer has its own step below.
    pub(super) fn on_success(
        &mut self,
        op: Op,
        resp: &HttpResponse,
        now: UnixSeconds,
    ) -> Result<()> {
        let text = core::str::from_utf8(&resp.body)
            .map_err(|_| Error::malformed("response is not UTF-8"))?;
        match op {
            Op::Redeem => self.accept_redeemed(text, now)?,
            Op::Register => self.accept_registered(text, now)?,
            Op::Handshake { nonce } => self.accept_flow_decision(text, &nonce, now)?,
            Op::Ingest => self.accept_ack(text, now)?,
            Op::Offboard { nonce } => self.accept_offboarded(text, &nonce, now)?,
            Op::Rotate { nonce, new_key } => self.accept_rotated(text, &nonce, new_key, now)?,
        }
        Ok(())
    }

    /// The credential a redemption answer carries (verified against the
    /// token's signer or the pinned keyset).
    fn accept_redeemed(&mut self, text: &str, now: UnixSeconds) -> Result<()> {
        let p = self
            .pending_redeem
            .take()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "no redemption pending"))?;
        let (cred, claims) = p.accept(text, self.cfg.pinned_keys.as_ref(), self.corrected(now))?;
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
        Ok(())
    }

    /// The down-level credential a registration answer carries: the device
    /// key, never the workspace key, signs from now on.
    fn accept_registered(&mut self, text: &str, now: UnixSeconds) -> Result<()> {
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
        Ok(())
    }

    /// A signed flow decision: keyset (overlap rule), policy (rollback
    /// rule), sequence, session and the flow state.
    fn accept_flow_decision(&mut self, text: &str, nonce: &str, now: UnixSeconds) -> Result<()> {
        let cred = self
            .cred
            .as_mut()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let at = now.saturating_add(self.clock_offset);
        let d = handshake::accept_decision(cred, text, nonce, at)?;
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
                self.next_handshake = Some(now.saturating_add(self.cfg.blocked_recheck_secs));
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
        Ok(())
    }

    /// An ingest acknowledgement: the in-flight batch leaves the outbox.
    fn accept_ack(&mut self, text: &str, now: UnixSeconds) -> Result<()> {
        let ack: IngestAck = crate::encoding::parse_json(text.as_bytes(), 64 * 1024, "ingest ack")?;
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
        Ok(())
    }

    /// The service acknowledged the opt-out: the credential is wiped.
    fn accept_offboarded(&mut self, text: &str, nonce: &str, now: UnixSeconds) -> Result<()> {
        let cred = self
            .cred
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        offboard::accept_response(cred, text, nonce, now.saturating_add(self.clock_offset))?;
        self.succeeded();
        self.wipe();
        Ok(())
    }

    /// The service took the new key: it replaces the old one.
    fn accept_rotated(
        &mut self,
        text: &str,
        nonce: &str,
        new_key: InstallationKey,
        now: UnixSeconds,
    ) -> Result<()> {
        let cred = self
            .cred
            .as_mut()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "not onboarded"))?;
        let at = now.saturating_add(self.clock_offset);
        let old = cred.installation_key()?.clone();
        rotate::accept(cred, new_key, text, nonce, at)?;
        self.retire_key(&old);
        self.succeeded();
        self.rotated("credential rotated");
        Ok(())
    }

    pub(super) fn on_error_status(
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
    pub(super) fn rotated(&mut self, what: &str) {
        self.force_rotate = false;
        self.counters.rotations += 1;
        self.events.push_back(ClientEvent::CredentialChanged);
        self.events.push_back(ClientEvent::CredentialRotated);
        self.log(LogLevel::Info, what.to_owned());
    }

    pub(super) fn set_flow(&mut self, f: FlowState) {
        if self.flow != Some(f) {
            self.emit_flow_changed(f);
        }
        self.flow = Some(f);
    }

    pub(super) fn on_ingest_refused(
        &mut self,
        err: Error,
        expected_seq: Option<u64>,
        now: UnixSeconds,
    ) {
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
    pub(super) fn auth_failure(&mut self, err: Error, now: UnixSeconds) {
        if let (Some(key), Some(cred)) = (self.rotation_candidate.take(), self.cred.as_mut()) {
            if matches!(
                err.code(),
                ErrorCode::BadSignature | ErrorCode::UnknownKey | ErrorCode::UnknownInstallation
            ) {
                let old = core::mem::replace(&mut cred.auth, CredentialAuth::Key(key));
                if let CredentialAuth::Key(old) = old {
                    self.retire_key(&old);
                }
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
}
