//! The EICAR anti-malware test file, and the test detection built from it.
//!
//! The portal's "detection test" is an endpoint reporting that it detected the
//! EICAR file; the service turns it into an Informational alert titled
//! "EICAR test file".

use crate::encoding::{hex, rfc3339, sha256, UnixSeconds};
use crate::telemetry::{Action, Detection, Event, Severity};

/// The canonical 68-byte EICAR test string.
pub const EICAR: &[u8; 68] =
    b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// Its SHA-256.
pub const EICAR_SHA256: &str = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f";
/// The threat name used for the test detection.
pub const EICAR_THREAT_NAME: &str = "EICAR-Test-File";
/// The alert title the service gives it.
pub const EICAR_ALERT_TITLE: &str = "EICAR test file";

/// Builds the test detection event (`test: true`).
pub fn test_detection(now: UnixSeconds, file_path: &str) -> Event {
    debug_assert_eq!(hex(&sha256(EICAR)), EICAR_SHA256);
    Event::Detection(Detection {
        time: rfc3339(now),
        threat_name: EICAR_THREAT_NAME.into(),
        file_path: file_path.into(),
        sha256: EICAR_SHA256.into(),
        severity: Severity::Informational,
        action: Action::Quarantined,
        test: true,
        url: None,
    })
}

/// Whether a detection is the EICAR test.
pub fn is_eicar(d: &Detection) -> bool {
    d.sha256.eq_ignore_ascii_case(EICAR_SHA256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eicar_digest_is_the_published_one() {
        assert_eq!(EICAR.len(), 68);
        assert_eq!(hex(&sha256(EICAR)), EICAR_SHA256);
    }
}
