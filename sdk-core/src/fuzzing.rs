//! One entry point that feeds bytes to every public parser, shared by the
//! cargo-fuzz targets (`fuzz/`) and the deterministic hostile-input tests, so
//! both exercise the same list. Not part of the API.

use crate::*;

/// Runs `data` through every parser that takes bytes from outside; results are
/// ignored, panics are the bug being looked for.
pub fn parse_everything(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = token::inspect(&text);
    // The receiver's clock at the extremes too: time arithmetic must
    // saturate, whatever the message claims.
    for now in [0, i64::MIN, i64::MAX] {
        let _ = token::verify(&text, &keys::Keyset::default(), now, 60);
        let _ = redeem::verify_request(&text, now);
        let _ = fresh::check_fresh(now, 0);
        let _ = fresh::check_fresh(0, now);
    }
    let _ = dsse::parse(data);
    let _ = credential::Credential::from_json(&text);
    let _ = downlevel::OnboardingPackage::from_json(&text);
    let _ = telemetry::Event::from_json(&text);
    let _ = keys::Keyset::from_json(&text);
    let _ = encoding::parse_rfc3339(&text);
    let _ = http::parse_retry_after(&text, 0);
    let _ = http::parse_http_date(&text);
    let _ = handshake::peek_installation(&text);
    let _ = offboard::peek_installation(&text);
    let _ = rotate::peek_installation(&text);
    let _ = downlevel::workspace_of(&text);
}
