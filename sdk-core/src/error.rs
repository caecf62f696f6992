//! One error type for the whole SDK, with stable codes.
//!
//! Every binding maps [`ErrorCode`] one to one: the snake_case string is what
//! travels on the wire (RFC 9457 problem details, field `code`) and what JS and
//! Python users match on; the number is what the C API returns. Both are part of
//! the public contract: codes are only ever added, never renumbered.

use core::fmt;
use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $num:literal, $name:literal, $status:literal; )*) => {
        /// Stable error codes. See docs/PROTOCOL.md, section "Error codes".
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order (used by bindings and tests).
            pub const ALL: &'static [ErrorCode] = &[ $(ErrorCode::$variant,)* ];

            /// The stable snake_case name used on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// The stable number used by the C API (grouped in ranges of 100).
            pub fn as_u32(self) -> u32 {
                match self { $(ErrorCode::$variant => $num,)* }
            }

            /// The HTTP status the service answers with for this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// Parses a wire name; unknown names are `None` (callers keep the raw text).
            pub fn from_name(name: &str) -> Option<ErrorCode> {
                match name { $($name => Some(ErrorCode::$variant),)* _ => None }
            }

            /// Looks a C number up.
            pub fn from_u32(n: u32) -> Option<ErrorCode> {
                match n { $($num => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    // 100..199: input that cannot be parsed or is not what the caller said it is.
    /// Input is not well-formed (bad JSON, bad base64, missing field, too large).
    Malformed = 100, "malformed", 400;
    /// An argument handed to the SDK is invalid (empty id, NULL, bad UTF-8, bad config).
    InvalidArgument = 101, "invalid_argument", 400;
    /// The message is of another type than expected (JWT `typ`, DSSE `payloadType`).
    WrongType = 102, "wrong_type", 400;
    /// Input exceeds a documented size cap.
    TooLarge = 103, "too_large", 413;

    // 200..299: cryptographic checks.
    /// A signature or MAC does not verify.
    BadSignature = 200, "bad_signature", 401;
    /// The signing key is not known / not pinned.
    UnknownKey = 201, "unknown_key", 401;
    /// An algorithm other than the pinned one was named.
    UnsupportedAlgorithm = 202, "unsupported_algorithm", 400;

    // 300..399: access tokens and redemption.
    /// The access token's `exp` has passed.
    TokenExpired = 300, "token_expired", 401;
    /// The access token's `nbf` is in the future.
    TokenNotYetValid = 301, "token_not_yet_valid", 401;
    /// The admin revoked the token.
    TokenRevoked = 302, "token_revoked", 401;
    /// The token was redeemed `max_uses` times already.
    TokenExhausted = 303, "token_exhausted", 403;
    /// The partner integration is turned off for this tenant.
    IntegrationDisabled = 304, "integration_disabled", 403;
    /// The token (or request) belongs to another data region.
    WrongRegion = 305, "wrong_region", 421;
    /// The integration epoch moved on (toggled off since): a new token is required.
    EpochMismatch = 306, "epoch_mismatch", 401;
    /// The endpoint presented the same device with another key (re-imaged or cloned).
    PossibleClone = 307, "possible_clone", 409;
    /// The installation's credential passed its `credential_exp` without being rotated: a new token is required.
    CredentialExpired = 308, "credential_expired", 401;

    // 400..499: message freshness and sessions.
    /// `iat`/`created` is outside the accepted window (±300 s).
    StaleMessage = 400, "stale_message", 401;
    /// The nonce was seen before.
    Replay = 401, "replay", 401;
    /// The flow session is unknown or expired: handshake again.
    SessionExpired = 402, "session_expired", 401;
    /// The installation is unknown to the service.
    UnknownInstallation = 403, "unknown_installation", 401;
    /// Generic authentication failure (down-level shared key, admin key).
    Unauthorized = 404, "unauthorized", 401;

    // 500..599: flow decisions.
    /// Inbound flow is blocked (integration toggled off): keep data, retry later.
    FlowBlocked = 500, "flow_blocked", 403;
    /// The credential is no longer valid (epoch changed or offboarded): new token needed.
    Revoked = 501, "revoked", 401;
    /// The installation was offboarded.
    Offboarded = 502, "offboarded", 401;
    /// Long run of authentication failures: the endpoint needs a new token.
    NeedsReenroll = 503, "needs_reenroll", 401;

    // 600..699: telemetry.
    /// The batch exceeds the policy's size or event limit.
    BatchTooLarge = 600, "batch_too_large", 413;
    /// Per-installation rate limit hit; honour `Retry-After`.
    RateLimited = 601, "rate_limited", 429;
    /// The batch sequence number went backwards with a new batch id.
    SequenceRegression = 602, "sequence_regression", 409;
    /// A policy with a lower version than the current one was offered.
    PolicyRollback = 603, "policy_rollback", 400;
    /// An offboarding package is expired or for another tenant.
    PackageInvalid = 604, "package_invalid", 400;
    /// The local queue is full and the host chose to refuse new events.
    QueueFull = 605, "queue_full", 507;

    // 700..799: the environment.
    /// The network or the HTTP exchange failed (connection, TLS, proxy, timeout).
    Transport = 700, "transport", 503;
    /// The service answered 5xx or something unexpected.
    ServiceUnavailable = 701, "service_unavailable", 503;
    /// Local storage (spool, credential file) failed.
    Storage = 702, "storage", 500;
    /// The call is not valid in the current state (e.g. send before redeem).
    InvalidState = 703, "invalid_state", 409;
    /// The host signer failed: it returned an error, a signature that does
    /// not verify with its public key (or of the wrong length), or took
    /// longer than `signer_timeout_secs`. Nothing queued is dropped.
    SignerFailed = 704, "signer_failed", 500;
    /// A bug: a panic was caught at an FFI boundary, or an invariant broke.
    Internal = 799, "internal", 500;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable [`ErrorCode`] and a human-readable message.
///
/// Messages never contain secrets (tokens, keys, workspace keys): constructors
/// take only static text or values the caller has vetted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    retry_after: Option<u64>,
}

impl Error {
    /// Creates an error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Attaches a retry delay in seconds (429, 503 with `Retry-After`).
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message (no secrets). Same text as [`detail`](Self::detail).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The human-readable detail (no secrets): the field every binding
    /// calls `detail`.
    pub fn detail(&self) -> &str {
        &self.message
    }

    /// The stable number (what the C API returns).
    pub fn number(&self) -> u32 {
        self.code.as_u32()
    }

    /// The HTTP status that goes with the code (RFC 9110 semantics).
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// The error as the plain record every binding exposes.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code,
            number: self.code.as_u32(),
            http_status: self.code.http_status(),
            retry_after: self.retry_after,
            detail: self.message.clone(),
        }
    }

    /// Seconds the service asked us to wait, if any.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        Error::new(ErrorCode::Malformed, msg)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

/// An error as plain data: the one shape every language sees (fields, not
/// text to parse). `HealthReport::last_error` carries it, JS and the C JSON
/// functions serialize it, uniffi mirrors it field by field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable snake_case name.
    pub code: ErrorCode,
    /// Stable number (C API).
    pub number: u32,
    /// HTTP status that goes with the code.
    pub http_status: u16,
    /// Seconds the service asked us to wait (`Retry-After`), if any.
    pub retry_after: Option<u64>,
    /// Human-readable detail (never a secret).
    pub detail: String,
}

impl From<&Error> for ErrorInfo {
    fn from(e: &Error) -> Self {
        e.info()
    }
}

impl From<ErrorInfo> for Error {
    fn from(i: ErrorInfo) -> Self {
        Error {
            code: i.code,
            message: i.detail,
            retry_after: i.retry_after,
        }
    }
}

impl fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut names = HashSet::new();
        let mut nums = HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(names.insert(c.as_str()), "duplicate name {c}");
            assert!(nums.insert(c.as_u32()), "duplicate number {c}");
            assert_eq!(ErrorCode::from_name(c.as_str()), Some(c));
            assert_eq!(ErrorCode::from_u32(c.as_u32()), Some(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert_eq!(ErrorCode::from_name("nope"), None);
        assert_eq!(ErrorCode::from_u32(0), None);
    }

    #[test]
    fn statuses_follow_http_semantics() {
        assert_eq!(ErrorCode::FlowBlocked.http_status(), 403);
        assert_eq!(ErrorCode::Revoked.http_status(), 401);
        assert_eq!(ErrorCode::BatchTooLarge.http_status(), 413);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
    }
}
