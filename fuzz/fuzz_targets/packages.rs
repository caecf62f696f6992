#![no_main]
//! Onboarding packages (JSON pasted by an admin) and offboarding packages
//! (compact JWS): parsing, onboarding with one and applying one to a
//! credential give typed errors, never panic.
use edrlink_core::client::{ClientConfig, PartnerClient};
use edrlink_core::downlevel::OnboardingPackage;
use edrlink_core::keys::SystemRandom;
use edrlink_core::offboard;
use edrlink_fuzz::{credential, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = OnboardingPackage::from_json(&text) {
        let _ = p.key_bytes();
        let _ = p.to_json();
    }
    let mut c = PartnerClient::new(
        ClientConfig::new(edrlink_fuzz::device()),
        Box::new(SystemRandom),
    );
    if c.onboard_with_package(&text).is_ok() {
        let _ = c.poll_request(NOW);
    }
    let _ = offboard::verify_package(&credential(), &text, NOW);
});
