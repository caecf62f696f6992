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
///
/// `iat` comes from the sender (attacker-chosen on a hostile wire): the
/// difference saturates instead of overflowing, so `i64::MIN`/`i64::MAX` are
/// refused as stale rather than panicking (debug) or wrapping into the window
/// (release).
pub fn check_fresh(iat: UnixSeconds, now: UnixSeconds) -> Result<()> {
    let diff = iat.saturating_sub(now);
    if diff.unsigned_abs() > MESSAGE_WINDOW.unsigned_abs() {
        return Err(Error::new(
            ErrorCode::StaleMessage,
            format!(
                "message time is {diff}s away from the receiver's clock (window ±{MESSAGE_WINDOW}s)"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_times_are_stale_not_a_panic() {
        for (iat, now) in [
            (i64::MIN, 1_800_000_000),
            (i64::MAX, 1_800_000_000),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (0, i64::MIN),
        ] {
            assert_eq!(
                check_fresh(iat, now).unwrap_err().code(),
                ErrorCode::StaleMessage,
                "{iat} vs {now}"
            );
        }
        check_fresh(i64::MAX, i64::MAX).unwrap();
        check_fresh(i64::MIN + 300, i64::MIN).unwrap();
        check_fresh(1_800_000_300, 1_800_000_000).unwrap();
        assert!(check_fresh(1_800_000_301, 1_800_000_000).is_err());
    }
}
