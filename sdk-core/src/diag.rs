//! Diagnostics: what the client did, as short log records a host can route to
//! its own logging (the blocking agent's log sink and `tracing`, the C log
//! callback, JS `onLog`, …).
//!
//! The sans-IO client cannot log by itself (no I/O here), so it keeps the
//! records in a bounded queue ([`LOG_QUEUE_LEN`], oldest dropped) that the host
//! drains with [`PartnerClient::poll_log`](crate::client::PartnerClient::poll_log).
//!
//! A message never holds a secret: requests are logged by method and path
//! only (never bodies or headers), answers by status and error code, and no
//! record quotes a token, key, workspace key or credential.

use serde::{Deserialize, Serialize};

/// How many records the client keeps until the host drains them; when full,
/// the oldest record is dropped (a host that never drains loses nothing else).
pub const LOG_QUEUE_LEN: usize = 256;

/// Severity of a log record, most severe first (`Error < Warn < … < Trace` in
/// `Ord`), so "at least as severe as `min`" is `level <= min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Something failed for good (an operation cannot complete).
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

impl LogLevel {
    /// Every level, most severe first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The level's name as bindings spell it (`error`, `warn`, `info`, `debug`, `trace`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// Parses a level name (case-insensitive; `warning` is accepted for `warn`).
    pub fn from_name(name: &str) -> Option<LogLevel> {
        let n = name.trim().to_ascii_lowercase();
        match n.as_str() {
            "warning" => Some(LogLevel::Warn),
            _ => LogLevel::ALL.into_iter().find(|l| l.as_str() == n),
        }
    }

    /// Whether a record at this level passes a filter set to `min`.
    pub fn passes(self, min: LogLevel) -> bool {
        self <= min
    }
}

impl core::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One diagnostic record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// What happened, in one line (never a secret).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_by_severity() {
        for l in LogLevel::ALL {
            assert_eq!(LogLevel::from_name(l.as_str()), Some(l));
            assert_eq!(
                LogLevel::from_name(&l.as_str().to_ascii_uppercase()),
                Some(l)
            );
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{l}\""));
        }
        assert_eq!(LogLevel::from_name("warning"), Some(LogLevel::Warn));
        assert_eq!(LogLevel::from_name("verbose"), None);
        assert!(LogLevel::Error.passes(LogLevel::Warn));
        assert!(LogLevel::Warn.passes(LogLevel::Warn));
        assert!(!LogLevel::Info.passes(LogLevel::Warn));
        assert!(LogLevel::Trace.passes(LogLevel::Trace));
    }
}
