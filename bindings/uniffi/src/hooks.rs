//! The log hook and the state-change events: foreign traits a host implements
//! to route edrlink's diagnostics into its logging (Python `logging`, Android
//! logcat, `os_log`) and to react to state changes, adapted to the core
//! agent's sinks. Which records and events exist is decided by the core.

use crate::client::FlowState;
use edrlink_core::agent::{EventSink as CoreEventSink, LogSink as CoreLogSink};
use edrlink_core::client::ClientEvent as CoreEvent;
use edrlink_core::diag::LogLevel as CoreLevel;
use edrlink_core::ErrorCode;
use std::sync::Arc;

/// Severity of a log record, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// An operation failed for good.
    Error,
    /// A refusal, a drop, a new token needed: the host should look.
    Warn,
    /// State changes: flow, backoff, rotation.
    Info,
    /// Every request and answer (method, path, status, code).
    Debug,
    /// Finer detail than debug.
    Trace,
}

impl From<CoreLevel> for LogLevel {
    fn from(l: CoreLevel) -> Self {
        match l {
            CoreLevel::Error => LogLevel::Error,
            CoreLevel::Warn => LogLevel::Warn,
            CoreLevel::Info => LogLevel::Info,
            CoreLevel::Debug => LogLevel::Debug,
            CoreLevel::Trace => LogLevel::Trace,
        }
    }
}

impl From<LogLevel> for CoreLevel {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => CoreLevel::Error,
            LogLevel::Warn => CoreLevel::Warn,
            LogLevel::Info => CoreLevel::Info,
            LogLevel::Debug => CoreLevel::Debug,
            LogLevel::Trace => CoreLevel::Trace,
        }
    }
}

/// A state change of the client, with the fields of the core's canonical
/// JSON (`client_event_to_json` gives that JSON).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ClientEvent {
    /// A credential was issued or changed (the agent persisted it already).
    CredentialChanged,
    /// The credential was wiped (offboarded).
    CredentialRemoved,
    /// The flow decision changed.
    FlowChanged {
        /// The new flow.
        flow: FlowState,
    },
    /// Events were acknowledged by the service.
    Delivered {
        /// How many.
        count: u64,
    },
    /// An operation failed for good.
    Failed {
        /// The error code.
        code: String,
    },
    /// Nothing is sent until a new access token is redeemed.
    NeedsNewToken {
        /// Why: `revoked`, `offboarded`, `epoch_mismatch`, `credential_expired`, `needs_reenroll`.
        code: String,
    },
    /// The queue is full (once per episode).
    QueueFull,
    /// Queued or submitted events were dropped.
    EventsDropped {
        /// Why (`queue_full`, `expired`, …; as in the health report's `drops`).
        reason: String,
        /// How many.
        count: u64,
    },
    /// The installation key was rotated.
    CredentialRotated,
}

impl From<&CoreEvent> for ClientEvent {
    fn from(e: &CoreEvent) -> Self {
        match e {
            CoreEvent::CredentialChanged => ClientEvent::CredentialChanged,
            CoreEvent::CredentialRemoved => ClientEvent::CredentialRemoved,
            CoreEvent::FlowChanged(f) => ClientEvent::FlowChanged { flow: (*f).into() },
            CoreEvent::Delivered(n) => ClientEvent::Delivered { count: *n },
            CoreEvent::Failed(c) => ClientEvent::Failed {
                code: c.as_str().to_owned(),
            },
            CoreEvent::NeedsNewToken(c) => ClientEvent::NeedsNewToken {
                code: c.as_str().to_owned(),
            },
            CoreEvent::QueueFull => ClientEvent::QueueFull,
            CoreEvent::EventsDropped { reason, count } => ClientEvent::EventsDropped {
                reason: reason.clone(),
                count: *count,
            },
            CoreEvent::CredentialRotated => ClientEvent::CredentialRotated,
        }
    }
}

fn code(name: &str) -> ErrorCode {
    ErrorCode::from_name(name).unwrap_or(ErrorCode::Internal)
}

impl From<ClientEvent> for CoreEvent {
    fn from(e: ClientEvent) -> Self {
        match e {
            ClientEvent::CredentialChanged => CoreEvent::CredentialChanged,
            ClientEvent::CredentialRemoved => CoreEvent::CredentialRemoved,
            ClientEvent::FlowChanged { flow } => CoreEvent::FlowChanged(flow.into()),
            ClientEvent::Delivered { count } => CoreEvent::Delivered(count),
            ClientEvent::Failed { code: c } => CoreEvent::Failed(code(&c)),
            ClientEvent::NeedsNewToken { code: c } => CoreEvent::NeedsNewToken(code(&c)),
            ClientEvent::QueueFull => CoreEvent::QueueFull,
            ClientEvent::EventsDropped { reason, count } => {
                CoreEvent::EventsDropped { reason, count }
            }
            ClientEvent::CredentialRotated => CoreEvent::CredentialRotated,
        }
    }
}

/// The core's canonical JSON of an event (`{"type":"flow_changed","flow":"blocked"}`),
/// the same text the C, JS and Rust APIs deliver.
#[uniffi::export]
pub fn client_event_to_json(event: ClientEvent) -> String {
    CoreEvent::from(event).to_json()
}

/// Receives edrlink's diagnostic records. Python: route into `logging`;
/// Android: `Log.println`; Apple: `os_log`. Called on the thread that called
/// the client method; `message` never holds a secret. An exception raised
/// here is swallowed (a broken log hook must not break the SDK).
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One record at `level` (at least as severe as the level it was installed with).
    fn log(&self, level: LogLevel, message: String);
}

/// Receives the client's state-change events, after the client acted on them.
/// Same threading and exception rules as [`LogSink`].
#[uniffi::export(with_foreign)]
pub trait EventSink: Send + Sync {
    /// One event.
    fn on_event(&self, event: ClientEvent);
}

/// A foreign callback that raised surfaces in Rust as a panic of the
/// generated glue; it is contained here so it never unwinds through the
/// agent or back across the FFI.
fn contained(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

pub(crate) struct LogAdapter(pub(crate) Arc<dyn LogSink>);

impl CoreLogSink for LogAdapter {
    fn log(&self, level: CoreLevel, message: &str) {
        let sink = &self.0;
        contained(|| sink.log(level.into(), message.to_owned()));
    }
}

pub(crate) struct EventAdapter(pub(crate) Arc<dyn EventSink>);

impl CoreEventSink for EventAdapter {
    fn on_event(&self, event: &CoreEvent) {
        let sink = &self.0;
        let e = ClientEvent::from(event);
        contained(|| sink.on_event(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_to_the_canonical_json() {
        let all = [
            CoreEvent::CredentialChanged,
            CoreEvent::CredentialRemoved,
            CoreEvent::FlowChanged(edrlink_core::handshake::FlowState::Blocked),
            CoreEvent::Delivered(3),
            CoreEvent::Failed(ErrorCode::TokenExpired),
            CoreEvent::NeedsNewToken(ErrorCode::EpochMismatch),
            CoreEvent::QueueFull,
            CoreEvent::EventsDropped {
                reason: "expired".into(),
                count: 2,
            },
            CoreEvent::CredentialRotated,
        ];
        for e in all {
            assert_eq!(client_event_to_json(ClientEvent::from(&e)), e.to_json());
        }
    }
}
