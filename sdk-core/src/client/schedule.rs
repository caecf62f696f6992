//! What is due when: the order in which [`PartnerClient::poll_request`]
//! considers onboarding, opt-out, handshakes, rotation, heartbeats and
//! telemetry; pacing and recovery jitter; backoff after failures; the clock
//! offset; and [`PartnerClient::poll_timeout`], which must agree with all of it
//! (a host sleeps until then).

use super::host::Waiting;
use super::HostRequestKind;
use super::PartnerClient;
use crate::diag::LogLevel;
use crate::encoding::{rfc3339, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::FlowState;
use crate::http::HttpRequest;
use crate::telemetry::{Event, Heartbeat};

/// Largest clock offset the client believes (about 50 years): offsets come
/// from `Date` headers and signed `iat`s, and bounding them keeps every
/// `now + offset` far from overflow.
const MAX_CLOCK_OFFSET: i64 = 50 * 366 * 86_400;

pub(super) fn clamp_offset(v: i64) -> i64 {
    v.clamp(-MAX_CLOCK_OFFSET, MAX_CLOCK_OFFSET)
}

impl PartnerClient {
    /// Records the service's clock offset, logging when it moves.
    pub(super) fn set_clock_offset(&mut self, v: i64) {
        let v = clamp_offset(v);
        if v != self.clock_offset {
            self.clock_offset = v;
            self.log(
                LogLevel::Debug,
                format!("clock offset to the service: {v} s"),
            );
        }
    }

    /// [`build_request`](Self::build_request) with its failure handled: the
    /// `failed` event, and a wait before retrying a refused configuration.
    pub(super) fn poll_request_inner(&mut self, now: UnixSeconds) -> Option<HttpRequest> {
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

    /// The next request, in a fixed order of precedence: an onboarding in
    /// progress, an opt-out, a handshake, a rotation, then telemetry (after
    /// a heartbeat if one is due, within the pacing limit). Everything after
    /// the onboarding needs a credential and no pending new-token state.
    pub(super) fn build_request(&mut self, now: UnixSeconds) -> Result<Option<HttpRequest>> {
        if self.op.is_some()
            || self.waiting_for_host()
            || self.next_attempt.is_some_and(|t| now < t)
        {
            return Ok(None);
        }
        if let Some(p) = self.pending_redeem.take() {
            if p.key().is_none() {
                // The host makes the installation key first.
                self.pending_redeem = Some(p);
                self.ask_host(HostRequestKind::CreateKey, Some(Waiting::EnrollKey));
                return Ok(None);
            }
            return self.redeem_request(p, now);
        }
        if self.pending_register.is_some() {
            return self.register_request(now);
        }
        let Some(cred) = self.cred.as_ref() else {
            return Ok(None);
        };
        if self.needs_new_token {
            return Ok(None);
        }
        if let Some(reason) = self.want_offboard.clone() {
            return self.offboard_request(&reason, now);
        }
        let downlevel = cred.is_downlevel();
        if !downlevel {
            if self.handshake_due(now) {
                return self.hello_request(now);
            }
            if self.rotation_due(now) {
                return self.rotate_request(now);
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
        self.heartbeat_if_due(now);
        self.outbox.expire(now)?;
        if self.paced(now) {
            return Ok(None);
        }
        if !self.batch_ready(now)? {
            return Ok(None);
        }
        self.count_send(now);
        self.ingest_request(now)
    }

    /// Whether a hello is due: no flow decision yet, an open flow whose
    /// session ends within 30 s, or a blocked flow whose re-check time came.
    /// A revoked flow never handshakes (it needs a new token).
    fn handshake_due(&self, now: UnixSeconds) -> bool {
        let session_ok = self
            .session
            .as_ref()
            .is_some_and(|(_, exp)| now.saturating_add(30) < exp.saturating_sub(self.clock_offset));
        match self.flow {
            None => true,
            Some(FlowState::Open) => !session_ok,
            Some(FlowState::Blocked) => self.next_handshake.is_none_or(|t| now >= t),
            Some(FlowState::Revoked) => false,
        }
    }

    /// Whether a key rotation is due: the flow is open and the host asked for
    /// one, or two thirds of the credential's lifetime (service time) passed.
    fn rotation_due(&self, now: UnixSeconds) -> bool {
        self.flow == Some(FlowState::Open)
            && self
                .cred
                .as_ref()
                .is_some_and(|c| self.force_rotate || self.corrected(now) >= c.rotate_after())
    }

    /// Queues a heartbeat when the policy's interval passed since the last
    /// one (or the sensor state changed), so an idle endpoint still shows up.
    fn heartbeat_if_due(&mut self, now: UnixSeconds) {
        let Some(interval) = self
            .cred
            .as_ref()
            .map(|c| c.policy.heartbeat_interval as i64)
        else {
            return;
        };
        if self.last_heartbeat.is_none_or(|t| now >= t + interval) {
            self.last_heartbeat = Some(now);
            let hb = Event::Heartbeat(Heartbeat {
                time: rfc3339(now),
                sensor: self.sensor,
            });
            let _ = self.submit(hb, now);
        }
    }

    /// Whether telemetry must wait: recovery jitter after an outage, or
    /// `max_batches_per_second` already reached in this second.
    fn paced(&mut self, now: UnixSeconds) -> bool {
        if self.send_not_before.is_some_and(|t| now < t) {
            return true;
        }
        if self.pace.0 == now && self.pace.1 >= self.cfg.max_batches_per_second.max(1) {
            self.send_not_before = Some(now + 1);
            return true;
        }
        false
    }

    /// Counts a batch sent in this second (for [`paced`](Self::paced)).
    fn count_send(&mut self, now: UnixSeconds) {
        self.pace = if self.pace.0 == now {
            (now, self.pace.1 + 1)
        } else {
            (now, 1)
        };
    }

    /// The local clock corrected by the measured offset to the service's
    /// clock (saturating: the offset comes from answers).
    pub(super) fn corrected(&self, now: UnixSeconds) -> UnixSeconds {
        now.saturating_add(self.clock_offset)
    }

    /// When [`poll_request`](Self::poll_request) may next have something to do.
    pub fn poll_timeout(&self, now: UnixSeconds) -> Option<UnixSeconds> {
        if self.ready.is_some() || !self.host_queue.is_empty() {
            return Some(now);
        }
        if self.op.is_some() || self.waiting_for_host() {
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

    pub(super) fn backoff(&mut self, e: Error, now: UnixSeconds) {
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

    pub(super) fn succeeded(&mut self) {
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
}
