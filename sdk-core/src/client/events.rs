//! What the client tells its host without being asked: [`ClientEvent`]s with
//! their canonical JSON (every binding delivers these shapes), diagnostic
//! records (bounded, never a secret) and the drop reports derived from the
//! outbox's counters. Kept apart so bindings have one place to read the
//! event contract from.

use super::PartnerClient;
use crate::diag::{LogLevel, LogRecord, LOG_QUEUE_LEN};
use crate::error::ErrorCode;
use crate::handshake::FlowState;
use std::collections::BTreeMap;

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

impl PartnerClient {
    pub(super) fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        if self.logs.len() >= LOG_QUEUE_LEN {
            self.logs.pop_front();
        }
        self.logs.push_back(LogRecord {
            level,
            message: message.into(),
        });
    }

    /// Reports what the outbox dropped since the last call: one
    /// `events_dropped` per reason (and `queue_full` once per episode).
    pub(super) fn note_drops(&mut self) {
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

    pub(super) fn emit_flow_changed(&mut self, f: FlowState) {
        self.events.push_back(ClientEvent::FlowChanged(f));
        let name = match f {
            FlowState::Open => "open",
            FlowState::Blocked => "blocked",
            FlowState::Revoked => "revoked",
        };
        self.log(LogLevel::Info, format!("flow is now {name}"));
    }
}
