//! Fault scenarios against the real reference service on loopback. After each:
//! events stored by the service == events submitted, no duplicates, order kept.

use edrlink_core::handshake::FlowState;
use edrlink_core::service::RateLimit;
use edrlink_core::ErrorCode;
use edrlink_reliability::*;

fn names(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|n| format!("e{n}")).collect()
}

fn submit(a: &edrlink_core::agent::Agent, range: std::ops::Range<u64>) {
    for n in range {
        a.submit(event(n)).unwrap();
    }
}

fn installation(a: &edrlink_core::agent::Agent) -> String {
    a.credential().unwrap().installation_id
}

#[test]
fn service_down_then_up_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let a = agent(
        &dir.path().join("agent"),
        fast_config("down"),
        FaultTransport::new(),
    );
    a.enroll(&svc.token()).unwrap();
    svc.stop();
    submit(&a, 0..10);
    let out = a.flush(3).unwrap();
    assert!(
        out.queued >= 10,
        "held while the service is down (events + heartbeat): {}",
        out.queued
    );
    assert_eq!(a.health().last_error.unwrap().code.as_str(), "transport");
    svc.restart();
    let out = a.flush(30).unwrap();
    assert_eq!(out.queued, 0);
    assert_eq!(svc.stored_names(&installation(&a)), names(0..10));
}

#[test]
fn rate_limit_429_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |s| {
        s.rate_limit = RateLimit {
            burst: 2.0,
            per_second: 1.0,
        };
        s.policy.max_batch_events = 5;
    });
    svc.setup_tenant();
    let t = FaultTransport::new();
    let a = agent(&dir.path().join("agent"), fast_config("rl"), t.clone());
    a.enroll(&svc.token()).unwrap();
    submit(&a, 0..30);
    let out = a.flush(60).unwrap();
    assert_eq!(out.queued, 0);
    let ingests = t
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.ends_with("/v1/ingest"))
        .count();
    assert!(
        ingests > 7,
        "some sends were refused with 429 and retried ({ingests} ingests for 7 batches)"
    );
    assert_eq!(svc.stored_names(&installation(&a)), names(0..30));
}

#[test]
fn server_errors_and_resets_are_retried_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |s| s.policy.max_batch_events = 4);
    svc.setup_tenant();
    let t = FaultTransport::new();
    let a = agent(&dir.path().join("agent"), fast_config("err"), t.clone());
    a.enroll(&svc.token()).unwrap();
    for f in [
        Fault::Status(500),
        Fault::Status(503),
        Fault::LoseAnswer,
        Fault::Refuse,
        Fault::LoseAnswer,
        Fault::Status(502),
    ] {
        t.inject("/v1/ingest", f);
    }
    submit(&a, 0..20);
    let out = a.flush(60).unwrap();
    assert_eq!(out.queued, 0);
    assert!(t.script.lock().unwrap().is_empty(), "every fault was hit");
    assert_eq!(
        svc.stored_names(&installation(&a)),
        names(0..20),
        "stored once each, in order"
    );
}

#[test]
fn toggle_off_then_on_with_a_new_token_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let a = agent(
        &dir.path().join("agent"),
        fast_config("toggle"),
        FaultTransport::new(),
    );
    a.enroll(&svc.token()).unwrap();
    submit(&a, 0..3);
    a.flush(10).unwrap();
    let inst = installation(&a);

    svc.set_integration(false);
    submit(&a, 3..8);
    let err = a.flush(10).unwrap_err();
    assert_eq!(err.code(), ErrorCode::FlowBlocked);
    assert_eq!(a.health().flow, Some(FlowState::Blocked));
    assert!(a.health().queued_events >= 5, "kept while blocked");

    svc.set_integration(true);
    // The host's "check now" (instead of waiting out blocked_recheck): the
    // epoch changed while off, so the answer is revoked.
    assert_eq!(a.handshake().map_err(|e| e.code()), Ok(FlowState::Revoked));
    let err = a.flush(10).unwrap_err();
    assert!(
        matches!(err.code(), ErrorCode::Revoked | ErrorCode::EpochMismatch),
        "{err}"
    );
    assert!(a.health().needs_new_token);
    assert!(a.health().queued_events >= 5, "kept while revoked");

    a.enroll(&svc.token()).unwrap();
    assert_eq!(installation(&a), inst, "the same installation resumes");
    assert_eq!(a.flush(10).unwrap().queued, 0);
    assert_eq!(svc.stored_names(&inst), names(0..8));
}

#[test]
fn epoch_change_while_sending_needs_a_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let a = agent(
        &dir.path().join("agent"),
        fast_config("epoch"),
        FaultTransport::new(),
    );
    a.enroll(&svc.token()).unwrap();
    // Off and on again between two sends: the session is still open, the epoch moved.
    svc.set_integration(false);
    svc.set_integration(true);
    submit(&a, 0..4);
    let err = a.flush(10).unwrap_err();
    assert!(
        matches!(err.code(), ErrorCode::Revoked | ErrorCode::EpochMismatch),
        "{err}"
    );
    assert!(a.health().queued_events >= 4, "kept while revoked");
    a.enroll(&svc.token()).unwrap();
    a.flush(10).unwrap();
    assert_eq!(svc.stored_names(&installation(&a)), names(0..4));
}

#[test]
fn session_expiry_and_clock_jump_are_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let clock = edrlink_service::Clock::default();
    let svc = Service::start(dir.path(), |s| {
        s.clock = clock.clone();
        s.session_lifetime = 600;
    });
    svc.setup_tenant();
    let a = agent(
        &dir.path().join("agent"),
        fast_config("session"),
        FaultTransport::new(),
    );
    a.enroll(&svc.token()).unwrap();
    submit(&a, 0..2);
    a.flush(10).unwrap();
    // The service's clock runs 20 minutes ahead: the session expired, and our
    // signed messages are outside the ±300 s window until the offset is re-measured.
    clock.advance(1200);
    submit(&a, 2..5);
    assert_eq!(a.flush(20).unwrap().queued, 0);
    assert!(
        (a.health().clock_offset - 1200).abs() <= 2,
        "offset learned from Date: {}",
        a.health().clock_offset
    );
    assert_eq!(svc.stored_names(&installation(&a)), names(0..5));
}
