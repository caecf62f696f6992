#![no_main]
//! The service role must answer any request with a status, never panic.
use edrlink_core::http::HttpRequest;
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::memory_store::MemoryStore;
use edrlink_core::service::{RateLimit, ServiceConfig, ServiceRole};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let role = ServiceRole::new(
        ServiceConfig {
            issuer: "fuzz".into(),
            region: "eu".into(),
            service_url: "http://fuzz".into(),
            keys: vec![SigningKey::from_seed(&[1; 32]).unwrap()],
            policy: Default::default(),
            rate_limit: RateLimit::default(),
            session_lifetime: 3600,
        },
        Box::new(SystemRandom),
    )
    .unwrap();
    let paths = ["/v1/redeem", "/v1/handshake", "/v1/ingest", "/v1/offboard", "/v1/rotate", "/v1/downlevel/register", "/v1/downlevel/ingest"];
    let path = paths[data.first().copied().unwrap_or(0) as usize % paths.len()];
    let req = HttpRequest { id: 0, method: "POST".into(), url: path.into(), headers: vec![("authorization".into(), "SharedKey a:b".into())], body: data.to_vec() };
    let resp = role.handle(&mut MemoryStore::default(), &req, 1_800_000_000);
    assert!(resp.status >= 200);
});
