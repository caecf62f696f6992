#![no_main]
//! A hostile `credential.json` in the agent's data directory: opening the
//! agent must refuse it with a typed error (or load it), never panic.
use edrlink_core::agent::{Agent, AgentConfig, Transport};
use edrlink_core::client::ClientConfig;
use edrlink_core::http::{HttpRequest, HttpResponse};
use libfuzzer_sys::fuzz_target;

struct Offline;
impl Transport for Offline {
    fn send(&self, _: &HttpRequest) -> edrlink_core::Result<HttpResponse> {
        Err(edrlink_core::Error::new(
            edrlink_core::ErrorCode::Transport,
            "offline",
        ))
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = edrlink_core::credential::Credential::from_json(&String::from_utf8_lossy(data));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("credential.json"), data).unwrap();
    let cfg = AgentConfig {
        client: ClientConfig::new(edrlink_fuzz::device()),
        data_dir: Some(dir.path().to_path_buf()),
    };
    if let Ok(a) = Agent::new(cfg, Offline) {
        let _ = a.health();
        let _ = a.credential();
    }
});
