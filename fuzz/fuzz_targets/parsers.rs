#![no_main]
//! Every parser that takes bytes from outside: none may panic, whatever the input.
use edrlink_core::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = token::inspect(&text);
    let _ = token::verify(&text, &keys::Keyset::default(), 0, 60);
    let _ = dsse::parse(data);
    let _ = credential::Credential::from_json(&text);
    let _ = downlevel::OnboardingPackage::from_json(&text);
    let _ = telemetry::Event::from_json(&text);
    let _ = keys::Keyset::from_json(&text);
    let _ = encoding::parse_rfc3339(&text);
    let _ = http::parse_retry_after(&text, 0);
    let _ = redeem::verify_request(&text, 0);
    let _ = handshake::peek_installation(&text);
});
