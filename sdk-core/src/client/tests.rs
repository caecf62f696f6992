//! Unit tests of the client against the in-process service role (no I/O):
//! whole stories (redeem, send, block, resume), lost answers and key
//! rotation, where a bug would only show across several exchanges.

use super::*;
use crate::encoding::rfc3339;
use crate::keys::SigningKey;
use crate::memory_store::MemoryStore;
use crate::redeem::DeviceFacts;
use crate::service::{Integration, ServiceConfig, ServiceRole, TokenRecord};
use crate::telemetry;
use std::sync::atomic::{AtomicU64, Ordering};

/// Deterministic randomness for tests.
struct Counter(AtomicU64);
impl RandomSource for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        for chunk in dest.chunks_mut(8) {
            let n = self.0.fetch_add(1, Ordering::Relaxed).to_le_bytes();
            chunk.copy_from_slice(&n[..chunk.len()]);
        }
        Ok(())
    }
}

fn device(id: &str) -> DeviceFacts {
    DeviceFacts {
        device_id: id.into(),
        hostname: format!("host-{id}"),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "AV".into(),
        product_version: "1.0".into(),
    }
}

fn setup() -> (ServiceRole, MemoryStore) {
    let cfg = ServiceConfig {
        issuer: "test".into(),
        region: "eu".into(),
        service_url: "https://svc.test".into(),
        keys: vec![SigningKey::from_seed(&[42; 32]).unwrap()],
        policy: crate::policy::Policy::default(),
        rate_limit: crate::service::RateLimit::default(),
        session_lifetime: 3600,
    };
    let role = ServiceRole::new(cfg, Box::new(Counter(AtomicU64::new(1 << 40)))).unwrap();
    let mut store = MemoryStore::default();
    store.tenants.insert("t1".into(), "eu".into());
    store.integrations.insert(
        ("t1".into(), "bd".into()),
        Integration {
            tenant_id: "t1".into(),
            partner_id: "bd".into(),
            enabled: true,
            epoch: 1,
        },
    );
    (role, store)
}

fn token(role: &ServiceRole, store: &mut MemoryStore, now: i64) -> String {
    let (tok, c) = role.issue_token(store, "t1", "bd", 3600, 10, now).unwrap();
    store.tokens.insert(
        c.jti.clone(),
        TokenRecord {
            jti: c.jti,
            tenant_id: "t1".into(),
            partner_id: "bd".into(),
            epoch: c.epoch,
            exp: c.exp,
            max_uses: 10,
            uses: 0,
            revoked: false,
        },
    );
    tok
}

/// Drives the client against the in-process service until nothing is due.
fn pump(c: &mut PartnerClient, role: &ServiceRole, store: &mut MemoryStore, now: i64) {
    for _ in 0..100 {
        let Some(req) = c.poll_request(now) else {
            return;
        };
        let path = req.url.strip_prefix("https://svc.test").unwrap().to_owned();
        let resp = role.handle(
            store,
            &HttpRequest {
                url: path,
                ..req.clone()
            },
            now,
        );
        c.handle_response(req.id, &resp, now);
    }
    panic!("client did not settle");
}

#[test]
fn story_redeem_send_block_resume() {
    let (role, mut store) = setup();
    let now = 1_800_000_000;
    let tok = token(&role, &mut store, now);
    let mut c = PartnerClient::new(
        ClientConfig::new(device("d1")),
        Box::new(Counter(AtomicU64::new(1))),
    );
    c.redeem(&tok).unwrap();
    pump(&mut c, &role, &mut store, now);
    assert_eq!(c.flow(), Some(FlowState::Open));
    let inst = c.credential().unwrap().installation_id.clone();
    c.submit(crate::eicar::test_detection(now, "/tmp/eicar.com"), now)
        .unwrap();
    c.flush();
    pump(&mut c, &role, &mut store, now);
    assert!(c.is_idle());
    assert_eq!(store.alerts.len(), 1);
    assert_eq!(store.alerts[0].1.title, "EICAR test file");

    // Toggle off: blocks and bumps the epoch. Events stay queued.
    let integ = store
        .integrations
        .get_mut(&("t1".into(), "bd".into()))
        .unwrap();
    integ.enabled = false;
    integ.epoch += 1;
    for i in 0..3 {
        c.submit(
            Event::Generic(telemetry::GenericEvent {
                time: rfc3339(now),
                name: format!("e{i}"),
                data: serde_json::Value::Null,
            }),
            now,
        )
        .unwrap();
    }
    c.flush();
    pump(&mut c, &role, &mut store, now + 10);
    assert_eq!(c.flow(), Some(FlowState::Blocked));
    assert_eq!(c.health(now + 10).queued_events, 3);

    // Toggle on: the old credential is revoked; a new token resumes delivery.
    store
        .integrations
        .get_mut(&("t1".into(), "bd".into()))
        .unwrap()
        .enabled = true;
    pump(&mut c, &role, &mut store, now + 400);
    assert_eq!(c.flow(), Some(FlowState::Revoked));
    assert!(c.health(now + 400).needs_new_token);
    let tok2 = token(&role, &mut store, now + 400);
    c.redeem(&tok2).unwrap();
    c.flush();
    pump(&mut c, &role, &mut store, now + 401);
    assert_eq!(
        c.credential().unwrap().installation_id,
        inst,
        "same installation resumes"
    );
    assert!(c.is_idle());
    let names: Vec<String> = store
        .events_of(&inst)
        .into_iter()
        .filter_map(|e| match e {
            Event::Generic(g) => Some(g.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["e0", "e1", "e2"], "delivered once, in order");
}

#[test]
fn file_samples_leave_only_when_the_policy_allows() {
    let (role, mut store) = setup();
    let now = 1_800_000_000;
    let tok = token(&role, &mut store, now);
    let mut c = PartnerClient::new(
        ClientConfig::new(device("d3")),
        Box::new(Counter(AtomicU64::new(99))),
    );
    c.redeem(&tok).unwrap();
    pump(&mut c, &role, &mut store, now);
    let content = crate::encoding::b64std(crate::eicar::EICAR);
    let sample = Event::FileSample(telemetry::FileSample {
        time: rfc3339(now),
        sha256: crate::eicar::EICAR_SHA256.into(),
        file_name: "eicar.com".into(),
        content,
    });
    c.submit(sample.clone(), now).unwrap();
    c.submit(crate::eicar::test_detection(now, "/x"), now)
        .unwrap();
    c.flush();
    pump(&mut c, &role, &mut store, now);
    let inst = c.credential().unwrap().installation_id.clone();
    let stored = store.events_of(&inst);
    assert!(
        stored.iter().all(|e| !matches!(e, Event::FileSample(_))),
        "policy `none` keeps samples home"
    );
    assert!(stored.iter().any(|e| matches!(e, Event::Detection(_))));
    assert_eq!(
        c.health(now).drops.get("samples_not_allowed/telemetry"),
        Some(&1)
    );
    let bad = telemetry::FileSample {
        time: rfc3339(now),
        sha256: "00".repeat(32),
        file_name: "x".into(),
        content: crate::encoding::b64std(b"abc"),
    };
    assert_eq!(
        c.submit(Event::FileSample(bad), now).unwrap_err().code(),
        ErrorCode::Malformed
    );
}

#[test]
fn lost_rotation_answer_does_not_strand_the_installation() {
    let (role, mut store) = setup();
    let now = 1_800_000_000;
    let tok = token(&role, &mut store, now);
    let mut c = PartnerClient::new(
        ClientConfig::new(device("rot")),
        Box::new(Counter(AtomicU64::new(5))),
    );
    c.redeem(&tok).unwrap();
    pump(&mut c, &role, &mut store, now);
    let old_kid = c.credential().unwrap().signing_key().unwrap().key_id();
    // Two thirds into the credential's lifetime the client rotates; the
    // service switches keys but the answer is lost.
    let later = now + 61 * 86_400;
    let mut rotated = false;
    for _ in 0..10 {
        let Some(req) = c.poll_request(later) else {
            break;
        };
        let resp = role.handle(
            &mut store,
            &HttpRequest {
                url: req.url.replace("https://svc.test", ""),
                ..req.clone()
            },
            later,
        );
        if req.url.ends_with("/v1/rotate") {
            assert_eq!(resp.status, 200);
            c.handle_transport_error(req.id, "connection reset", later);
            rotated = true;
            break;
        }
        c.handle_response(req.id, &resp, later);
    }
    assert!(rotated, "rotation was attempted");
    c.submit(crate::eicar::test_detection(later, "/r"), later)
        .unwrap();
    c.flush();
    pump(&mut c, &role, &mut store, later + 400);
    assert!(c.is_idle(), "{:?}", c.health(later + 400));
    assert_ne!(
        c.credential().unwrap().signing_key().unwrap().key_id(),
        old_kid,
        "switched to the key the service registered"
    );
    assert!(!c.health(later + 400).needs_new_token);
    assert_eq!(store.alerts.len(), 1);
}

fn role_with_keys(keys: Vec<SigningKey>) -> ServiceRole {
    let cfg = ServiceConfig {
        issuer: "test".into(),
        region: "eu".into(),
        service_url: "https://svc.test".into(),
        keys,
        policy: crate::policy::Policy::default(),
        rate_limit: crate::service::RateLimit::default(),
        session_lifetime: 600,
    };
    ServiceRole::new(cfg, Box::new(Counter(AtomicU64::new(1 << 41)))).unwrap()
}

#[test]
fn service_key_rotation_reaches_the_fleet_through_handshakes() {
    let (a, b) = (
        SigningKey::from_seed(&[42; 32]).unwrap(),
        SigningKey::from_seed(&[43; 32]).unwrap(),
    );
    let (role, mut store) = setup();
    let now = 1_800_000_000;
    let tok = token(&role, &mut store, now);
    let mut c = PartnerClient::new(
        ClientConfig::new(device("keys")),
        Box::new(Counter(AtomicU64::new(11))),
    );
    c.redeem(&tok).unwrap();
    pump(&mut c, &role, &mut store, now);
    assert_eq!(c.credential().unwrap().service_keys.keys.len(), 1);
    // Phase 1: the new key B is published (A still signs); a handshake carries it.
    let phase1 = role_with_keys(vec![a.clone(), b.clone()]);
    pump(&mut c, &phase1, &mut store, now + 3600);
    assert_eq!(
        c.credential().unwrap().service_keys.keys.len(),
        2,
        "keyset refreshed"
    );
    assert!(
        std::iter::from_fn(|| c.poll_event()).any(|e| e == ClientEvent::CredentialChanged),
        "host is told to persist"
    );
    // Phase 2: B signs; the endpoint already trusts it, no re-enrollment.
    let phase2 = role_with_keys(vec![b, a]);
    pump(&mut c, &phase2, &mut store, now + 7200);
    assert_eq!(c.flow(), Some(FlowState::Open));
    assert!(
        c.health(now + 7200).last_error.is_none(),
        "{:?}",
        c.health(now + 7200)
    );
}

#[test]
fn lost_ack_is_retried_without_double_store() {
    let (role, mut store) = setup();
    let now = 1_800_000_000;
    let tok = token(&role, &mut store, now);
    let mut c = PartnerClient::new(
        ClientConfig::new(device("d2")),
        Box::new(Counter(AtomicU64::new(7))),
    );
    c.redeem(&tok).unwrap();
    pump(&mut c, &role, &mut store, now);
    c.submit(crate::eicar::test_detection(now, "/x"), now)
        .unwrap();
    c.flush();
    // Deliver the envelope but lose the answer.
    let req = c.poll_request(now).unwrap();
    let _ = role.handle(
        &mut store,
        &HttpRequest {
            url: "/v1/ingest".into(),
            ..req.clone()
        },
        now,
    );
    c.handle_transport_error(req.id, "connection reset", now);
    assert_eq!(
        c.health(now).queued_events,
        2,
        "heartbeat + detection still held"
    );
    c.flush();
    pump(&mut c, &role, &mut store, now + 400);
    assert!(c.is_idle(), "{:?}", c.health(now + 400));
    assert_eq!(store.alerts.len(), 1, "stored once");
    let inst = c.credential().unwrap().installation_id.clone();
    let detections = store
        .events_of(&inst)
        .into_iter()
        .filter(|e| matches!(e, Event::Detection(_)))
        .count();
    assert_eq!(detections, 1);
}
