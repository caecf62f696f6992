//! The one error type every binding sees, and the error the host's transport raises.

use edrlink_core::{Error, ErrorCode};

macro_rules! flat_error {
    ($( $variant:ident ),* $(,)?) => {
        /// Every failure of the SDK. One variant per stable `ErrorCode`; the
        /// message reads `"<code name>: <detail>"` (never a secret).
        ///
        /// Python: `edrlink.EdrlinkError.TokenExpired` (subclass of
        /// `EdrlinkError`, with `.code` added by the package). Kotlin:
        /// `EdrlinkException.TokenExpired` (+ `.code` extension). Swift:
        /// `EdrlinkError.TokenExpired(message:)` (+ `.code` extension).
        #[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
        #[uniffi(flat_error)]
        pub enum EdrlinkError {
            $(
                #[allow(missing_docs)]
                $variant(String),
            )*
        }

        impl EdrlinkError {
            /// The core code this error stands for.
            pub fn code(&self) -> ErrorCode {
                match self { $(EdrlinkError::$variant(_) => ErrorCode::$variant,)* }
            }

            /// The detail text (without the code prefix).
            pub fn detail(&self) -> &str {
                match self { $(EdrlinkError::$variant(m) => m,)* }
            }

            /// Builds the variant for `code` (unknown future codes become `Internal`).
            pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
                let detail = detail.into();
                #[allow(unreachable_patterns)]
                match code {
                    $(ErrorCode::$variant => EdrlinkError::$variant(detail),)*
                    _ => EdrlinkError::Internal(format!("{code}: {detail}")),
                }
            }
        }
    };
}

flat_error! {
    Malformed, InvalidArgument, WrongType, TooLarge,
    BadSignature, UnknownKey, UnsupportedAlgorithm,
    TokenExpired, TokenNotYetValid, TokenRevoked, TokenExhausted, IntegrationDisabled,
    WrongRegion, EpochMismatch, PossibleClone, CredentialExpired,
    StaleMessage, Replay, SessionExpired, UnknownInstallation, Unauthorized,
    FlowBlocked, Revoked, Offboarded, NeedsReenroll,
    BatchTooLarge, RateLimited, SequenceRegression, PolicyRollback, PackageInvalid, QueueFull,
    Transport, ServiceUnavailable, Storage, InvalidState, Internal,
}

impl core::fmt::Display for EdrlinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for EdrlinkError {}

impl From<Error> for EdrlinkError {
    fn from(e: Error) -> Self {
        let detail = match e.retry_after() {
            Some(s) => format!("{} (retry after {s} s)", e.message()),
            None => e.message().to_owned(),
        };
        EdrlinkError::new(e.code(), detail)
    }
}

/// Shorthand for an `invalid_argument` error.
pub(crate) fn invalid(msg: impl Into<String>) -> EdrlinkError {
    EdrlinkError::InvalidArgument(msg.into())
}

/// What a host-implemented [`crate::Transport`] raises when it got no HTTP
/// response at all (DNS, connection, TLS, timeout). Any other exception the
/// host code throws is treated the same way. HTTP error statuses are *not*
/// errors: return them as a `TransportResponse`. The SDK reports these
/// failures as `EdrlinkError.Transport`.
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
    fn every_core_code_has_its_own_variant() {
        for &c in ErrorCode::ALL {
            let e = EdrlinkError::from(Error::new(c, "x"));
            assert_eq!(e.code(), c, "{c} has no variant");
            assert_eq!(e.to_string(), format!("{}: x", c.as_str()));
        }
    }

    #[test]
    fn retry_after_is_kept_in_the_message() {
        let e =
            EdrlinkError::from(Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(7));
        assert_eq!(e.to_string(), "rate_limited: slow down (retry after 7 s)");
    }
}
