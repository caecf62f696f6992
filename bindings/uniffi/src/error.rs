//! The one error type every binding sees, and the error the host's transport raises.

use edrlink_core::{Error, ErrorCode};

/// Every failure of the SDK, carrying the core's error fields (never parsed
/// out of a message, never derived from a class name).
///
/// uniffi generates exceptions only from enums, so this is an enum with one
/// variant; hosts use the fields through the base type:
/// Python `except EdrlinkError as e: e.code, e.number, e.http_status,
/// e.retry_after, e.detail`; Kotlin `catch (e: EdrlinkException) { e.code;
/// e.httpStatus; e.retryAfter }` (base-type properties in
/// `EdrlinkExtensions.kt`); Swift `catch let e as EdrlinkError { e.code }`
/// (`EdrlinkExtensions.swift`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum EdrlinkError {
    /// The one shape of an SDK error.
    Failure {
        /// Stable snake_case code name, e.g. `"flow_blocked"` (see `error_codes()`).
        code: String,
        /// Stable number of the code (what the C API returns).
        number: u32,
        /// HTTP status that goes with the code.
        http_status: u16,
        /// Seconds the service asked the client to wait (`Retry-After`), if any.
        retry_after: Option<u64>,
        /// Human-readable detail (never a secret).
        detail: String,
    },
}

impl EdrlinkError {
    /// Builds the error for `code` with the core's number and status.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Error::new(code, detail).into()
    }

    /// The core code this error stands for (`Internal` for a name this build
    /// does not know, which cannot happen for errors it made itself).
    pub fn code(&self) -> ErrorCode {
        let EdrlinkError::Failure { code, .. } = self;
        ErrorCode::from_name(code).unwrap_or(ErrorCode::Internal)
    }

    /// The detail text.
    pub fn detail(&self) -> &str {
        let EdrlinkError::Failure { detail, .. } = self;
        detail
    }

    /// Seconds to wait before retrying, when the service said so.
    pub fn retry_after(&self) -> Option<u64> {
        let EdrlinkError::Failure { retry_after, .. } = self;
        *retry_after
    }
}

impl core::fmt::Display for EdrlinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let EdrlinkError::Failure { code, detail, .. } = self;
        write!(f, "{code}: {detail}")
    }
}

impl std::error::Error for EdrlinkError {}

impl From<Error> for EdrlinkError {
    fn from(e: Error) -> Self {
        ErrorInfo::from(e.info()).into()
    }
}

impl From<ErrorInfo> for EdrlinkError {
    fn from(i: ErrorInfo) -> Self {
        EdrlinkError::Failure {
            code: i.code,
            number: i.number,
            http_status: i.http_status,
            retry_after: i.retry_after,
            detail: i.detail,
        }
    }
}

/// An error as a record, with the fields of [`EdrlinkError`]: what
/// `Health.last_error` holds (the reason of the last failed attempt).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ErrorInfo {
    /// Stable snake_case code name.
    pub code: String,
    /// Stable number of the code.
    pub number: u32,
    /// HTTP status that goes with the code.
    pub http_status: u16,
    /// Seconds the service asked the client to wait, if any.
    pub retry_after: Option<u64>,
    /// Human-readable detail (never a secret).
    pub detail: String,
}

impl From<edrlink_core::error::ErrorInfo> for ErrorInfo {
    fn from(i: edrlink_core::error::ErrorInfo) -> Self {
        ErrorInfo {
            code: i.code.as_str().to_owned(),
            number: i.number,
            http_status: i.http_status,
            retry_after: i.retry_after,
            detail: i.detail,
        }
    }
}

/// Shorthand for an `invalid_argument` error raised by the binding itself.
pub(crate) fn invalid(msg: impl Into<String>) -> EdrlinkError {
    EdrlinkError::new(ErrorCode::InvalidArgument, msg)
}

/// What a host-implemented [`crate::Transport`] raises when it got no HTTP
/// response at all (DNS, connection, TLS, timeout). Any other exception the
/// host code throws is treated the same way. HTTP error statuses are *not*
/// errors: return them as a `TransportResponse`. The SDK reports these
/// failures as an `EdrlinkError` with code `transport`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum TransportError {
    /// The exchange failed; `reason` is a diagnostic (no secrets).
    Failed {
        /// Why.
        reason: String,
    },
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransportError::Failed { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for TransportError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Failed {
            reason: format!("host transport raised: {}", e.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_keeps_its_fields() {
        for &c in ErrorCode::ALL {
            let e = EdrlinkError::from(Error::new(c, "x"));
            assert_eq!(e.code(), c);
            let EdrlinkError::Failure {
                code,
                number,
                http_status,
                retry_after,
                detail,
            } = &e;
            assert_eq!(
                (
                    code.as_str(),
                    *number,
                    *http_status,
                    *retry_after,
                    detail.as_str()
                ),
                (c.as_str(), c.as_u32(), c.http_status(), None, "x")
            );
            assert_eq!(e.to_string(), format!("{}: x", c.as_str()));
        }
    }

    #[test]
    fn retry_after_is_a_field_not_text() {
        let e =
            EdrlinkError::from(Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(7));
        assert_eq!(e.retry_after(), Some(7));
        assert_eq!(e.detail(), "slow down");
    }
}
