//! Freshness of interactive messages: `iat` within ±[`MESSAGE_WINDOW`] of the
//! receiver's clock, plus a nonce the receiver has not seen in that window.
//!
//! Telemetry does not use this (spooled data may be days old); it relies on
//! batch ids and sequence numbers instead.

use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};

/// Accepted clock difference for interactive messages, in seconds.
pub const MESSAGE_WINDOW: i64 = 300;

/// Checks `iat` against `now`.
pub fn check_fresh(iat: UnixSeconds, now: UnixSeconds) -> Result<()> {
    if (iat - now).abs() > MESSAGE_WINDOW {
        return Err(Error::new(
            ErrorCode::StaleMessage,
            format!(
                "message time is {}s away from the receiver's clock (window ±{MESSAGE_WINDOW}s)",
                iat - now
            ),
        ));
    }
    Ok(())
}

/// Checks a nonce's shape (base64url, 16..=128 characters).
pub fn check_nonce(nonce: &str) -> Result<()> {
    if nonce.len() < 16
        || nonce.len() > 128
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::malformed(
            "nonce must be 16..128 base64url characters",
        ));
    }
    Ok(())
}
