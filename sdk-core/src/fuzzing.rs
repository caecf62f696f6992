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
    // Device keys and what host signers hand back.
    let _ = keys::ecdsa_p256_to_raw(data);
    if let Ok(jwk) = serde_json::from_str::<keys::Jwk>(&text) {
        let _ = jwk.to_key();
    }
    for key in [
        keys::VerifyingKey::Ed25519([9; 32]),
        keys::VerifyingKey::P256(P256_POINT),
    ] {
        let _ = signer::accept_host_signature(&key, b"m", data);
        let _ = key.verify_dsse(b"m", data);
        if let Ok(u) = jws::parse(&text, "edrlink-hello+jwt") {
            let _ = u.verify_with(&key);
        }
    }
}

/// A valid P-256 public key (the vectors' key), for feeding signatures to.
const P256_POINT: [u8; 65] = [
    0x04, 0x30, 0x18, 0x99, 0x34, 0x91, 0x77, 0xf0, 0xba, 0x2e, 0x14, 0xff, 0x60, 0x2a, 0xf4, 0x2c,
    0xa6, 0xcf, 0xef, 0xfb, 0x8f, 0xf8, 0xae, 0xfc, 0x7c, 0x4a, 0x0a, 0xec, 0xe8, 0x10, 0xc8, 0xf4,
    0x44, 0x52, 0x1b, 0x44, 0x53, 0x53, 0x6b, 0xb6, 0xef, 0x67, 0x3d, 0xac, 0xa2, 0x1b, 0x23, 0x10,
    0x0a, 0x48, 0x3d, 0xf3, 0xa5, 0xa4, 0x48, 0x5e, 0xa1, 0x04, 0xa9, 0xc8, 0x8a, 0xfe, 0xd3, 0xca,
    0xff,
];
