#![no_main]
//! The service role must answer any request with a status, never panic.
use edrlink_core::http::HttpRequest;
use edrlink_core::memory_store::MemoryStore;
use edrlink_fuzz::{role, NOW, PATHS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let role = role();
    let path = PATHS[data.first().copied().unwrap_or(0) as usize % PATHS.len()];
    let body = data.get(1..).unwrap_or_default().to_vec();
    let req = HttpRequest {
        id: 0,
        method: "POST".into(),
        url: path.into(),
        headers: vec![("authorization".into(), "SharedKey a:b".into())],
        body,
    };
    let resp = role.handle(&mut MemoryStore::default(), &req, NOW);
    assert!(resp.status >= 200);
});
