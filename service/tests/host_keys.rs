//! Installation keys the host keeps, against the real reference service over
//! HTTP with its SQLite file: a P-256 and an Ed25519 host key enroll, send
//! signed batches and a detection, rotate (the host makes the new key and
//! is told to delete the old one), and keep sending after the service
//! restarts on the same database; stored == sent.

mod common;

use common::{device, Svc};
use edrlink_core::agent::{Agent, AgentConfig, FileCredentialStore};
use edrlink_core::client::ClientConfig;
use edrlink_core::encoding::rfc3339;
use edrlink_core::keys::KeyAlgorithm;
use edrlink_core::signer::{HostKeys, SoftwareKeys};
use edrlink_core::telemetry::Event;
use edrlink_core::transport::{HttpOptions, HttpTransport};
use std::path::Path;
use std::sync::Arc;

fn agent(url: &str, dir: &Path, keys: &Arc<SoftwareKeys>) -> Agent {
    let mut client = ClientConfig::new(device("hw-key"));
    client.service_url = Some(url.to_owned());
    let transport = HttpTransport::new(HttpOptions {
        no_proxy: true,
        ..Default::default()
    })
    .unwrap();
    let keys: Arc<dyn HostKeys> = keys.clone();
    Agent::with_host(
        AgentConfig {
            client,
            data_dir: Some(dir.to_owned()),
        },
        transport,
        Some(Box::new(FileCredentialStore::new(dir).unwrap())),
        Some(keys),
    )
    .unwrap()
}

fn generic(i: usize) -> Event {
    Event::from_json(&format!(
        r#"{{"type":"generic","time":"{}","name":"process_start","data":{{"n":{i}}}}}"#,
        rfc3339(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        )
    ))
    .unwrap()
}

fn story(alg: KeyAlgorithm) {
    let mut s = Svc::start();
    s.setup("t1");
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(SoftwareKeys::new(alg));
    let a = agent(&s.url(), dir.path(), &keys);
    let inst = a
        .enroll(&s.token_text("t1"))
        .unwrap()
        .installation_id
        .unwrap();
    let stored = std::fs::read_to_string(dir.path().join("credential.json")).unwrap();
    assert!(stored.contains("\"host_key\"") && !stored.contains("key_seed"));
    for i in 0..25 {
        a.submit(generic(i)).unwrap();
    }
    a.send_test_detection().unwrap();
    assert_eq!(a.flush(20).unwrap().queued, 0);
    assert_eq!(s.alerts("t1").len(), 1, "the EICAR test raised one alert");
    let before = keys.handles();
    a.rotate().unwrap();
    let after = keys.handles();
    assert_eq!(after.len(), 1, "the old key was deleted: {after:?}");
    assert_ne!(before, after);
    a.submit(generic(25)).unwrap();
    assert_eq!(a.flush(20).unwrap().queued, 0);
    let sent_a = a.health().sent_events;
    drop(a);

    // The service restarts on the same SQLite file (the registered P-256
    // key is read back from it); the agent finds its key through the host.
    s.restart_with(|_| {});
    let b = agent(&s.url(), dir.path(), &keys);
    b.submit(generic(26)).unwrap();
    assert_eq!(b.flush(20).unwrap().queued, 0);
    let (events, _) = s.stats("t1");
    assert_eq!(events, sent_a + b.health().sent_events, "stored == sent");
    let listed = s.installation("t1", &inst);
    assert_eq!(listed["health"], "Healthy", "{listed}");
}

#[test]
fn p256_host_key_against_the_real_service() {
    story(KeyAlgorithm::EcdsaP256);
}

#[test]
fn ed25519_host_key_against_the_real_service() {
    story(KeyAlgorithm::Ed25519);
}
