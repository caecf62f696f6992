//! Fixtures shared by the fuzz targets and the seed generator
//! (`cargo run --example seeds`): a fixed service role, a credential it
//! issued, and the fixed time every target runs at.

use edrlink_core::credential::{Credential, CredentialAuth};
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::service::{RateLimit, ServiceConfig, ServiceRole};

/// The time every target runs at.
pub const NOW: i64 = 1_800_000_000;
/// The partner API paths (the first input byte picks one).
pub const PATHS: [&str; 7] = [
    "/v1/redeem",
    "/v1/handshake",
    "/v1/ingest",
    "/v1/offboard",
    "/v1/rotate",
    "/v1/downlevel/register",
    "/v1/downlevel/ingest",
];

/// The service signing key of the fixtures.
pub fn service_key() -> SigningKey {
    SigningKey::from_seed(&[1; 32]).expect("fixed seed")
}

/// A service role with the fixed key.
pub fn role() -> ServiceRole {
    ServiceRole::new(
        ServiceConfig {
            issuer: "fuzz".into(),
            region: "eu".into(),
            service_url: "http://fuzz".into(),
            keys: vec![service_key()],
            policy: Default::default(),
            rate_limit: RateLimit::default(),
            session_lifetime: 3600,
        },
        Box::new(SystemRandom),
    )
    .expect("fixed config")
}

/// A credential pinned to [`role`]'s keys (what offboarding packages are checked against).
pub fn credential() -> Credential {
    Credential {
        installation_id: "inst-fuzz".into(),
        enrollment_id: "enroll-fuzz".into(),
        tenant_id: "t1".into(),
        partner_id: "acme".into(),
        region: "eu".into(),
        service_url: "http://fuzz".into(),
        epoch: 1,
        service_keys: role().keyset(),
        policy: Default::default(),
        issued_at: NOW - 60,
        expires_at: NOW + 86_400,
        auth: CredentialAuth::Key(SigningKey::from_seed(&[2; 32]).expect("fixed seed").into()),
    }
}

/// Device facts of the fixtures.
pub fn device() -> edrlink_core::redeem::DeviceFacts {
    edrlink_core::redeem::DeviceFacts {
        device_id: "dev-fuzz".into(),
        hostname: "host-fuzz".into(),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "Fuzz AV".into(),
        product_version: "1.0".into(),
    }
}

/// Splits `data` at its first NUL byte (two inputs from one).
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
