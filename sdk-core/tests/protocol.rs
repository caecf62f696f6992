//! Every rule of docs/PROTOCOL.md, exercised in-process against the service role
//! (`ServiceRole::handle` over a `MemoryStore`) with messages built by the core.

mod common;

use common::*;
use edrlink_core::credential::{Credential, CredentialAuth, CREDENTIAL_LIFETIME};
use edrlink_core::encoding::{b64url, rfc3339, UnixSeconds};
use edrlink_core::handshake::{self, FlowDecision, FlowState, Hello, SensorState};
use edrlink_core::health::{classify, Activity, Coverage, HealthClass};
use edrlink_core::http::{self, HttpRequest, HttpResponse, Problem};
use edrlink_core::keys::{Keyset, SigningKey};
use edrlink_core::policy::{FileSampleSharing, Policy};
use edrlink_core::redeem::{PendingRedeem, ResponseClaims};
use edrlink_core::service::{IngestAck, Workspace};
use edrlink_core::telemetry::{self, Batch, Event, GenericEvent, Heartbeat};
use edrlink_core::token::{self, TokenStatus};
use edrlink_core::{downlevel, dsse, eicar, fresh, offboard, rotate, ErrorCode};

fn post(path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        id: 0,
        method: "POST".into(),
        url: path.into(),
        headers: vec![("content-type".into(), content_type.into())],
        body: body.into(),
    }
}

fn code(r: &HttpResponse) -> ErrorCode {
    assert!(
        r.status >= 400,
        "expected an error, got {} {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.header("content-type"), Some(http::PROBLEM_JSON));
    let p: Problem = serde_json::from_slice(&r.body).unwrap();
    let c = ErrorCode::from_name(&p.code).unwrap();
    assert_eq!(p.kind, format!("urn:edrlink:error:{}", p.code));
    assert_eq!(p.title, p.code);
    assert_eq!(p.status, r.status);
    c
}

fn text(r: &HttpResponse) -> &str {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    std::str::from_utf8(&r.body).unwrap()
}

struct Enrolled {
    cred: Credential,
    claims: ResponseClaims,
}

fn redeem_with(
    w: &mut World,
    tok: &str,
    key_label: &str,
    enrollment: &str,
    device_id: &str,
    now: UnixSeconds,
) -> Result<Enrolled, ErrorCode> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rng = CounterRandom::new(&format!("redeem-{key_label}-{enrollment}-{now}-{n}"));
    let mut p = PendingRedeem::new(
        tok,
        device(device_id),
        Some(key(key_label)),
        Some(enrollment.into()),
        &rng,
    )
    .unwrap();
    let body = p.request(now, &rng).unwrap();
    let r = w.handle(&post("/v1/redeem", http::JOSE, body), now);
    if r.status != 200 {
        return Err(code(&r));
    }
    let (cred, claims) = p.accept(text(&r), None, now).unwrap();
    Ok(Enrolled { cred, claims })
}

fn enroll(w: &mut World, now: UnixSeconds) -> Enrolled {
    let tok = w.token(token::DEFAULT_LIFETIME, 10, now);
    redeem_with(w, &tok, "endpoint", "enroll-1", "device-1", now).unwrap()
}

fn hello_body(cred: &Credential, now: UnixSeconds, label: &str) -> (String, String) {
    let h = Hello {
        installation_id: String::new(),
        nonce: String::new(),
        iat: 0,
        sensor: SensorState::Running,
        last_seq: 0,
        policy_version: 1,
        clock_offset: 0,
        queued_events: 0,
        drops: Default::default(),
    };
    handshake::hello(cred, h, now, &CounterRandom::new(label)).unwrap()
}

fn handshake_at(
    w: &mut World,
    cred: &Credential,
    now: UnixSeconds,
    label: &str,
) -> Result<FlowDecision, ErrorCode> {
    let (body, nonce) = hello_body(cred, now, label);
    let r = w.handle(&post("/v1/handshake", http::JOSE, body), now);
    if r.status != 200 {
        return Err(code(&r));
    }
    Ok(handshake::accept_decision(cred, text(&r), &nonce, now).unwrap())
}

fn generic(n: u32, now: UnixSeconds) -> Event {
    Event::Generic(GenericEvent {
        time: rfc3339(now),
        name: "process_start".into(),
        data: serde_json::json!({"n": n}),
    })
}

fn batch(
    cred: &Credential,
    session: Option<&str>,
    seq: u64,
    id: &str,
    events: Vec<Event>,
    now: UnixSeconds,
) -> Batch {
    Batch {
        v: 1,
        installation_id: cred.installation_id.clone(),
        session_id: session.map(str::to_owned),
        batch_id: id.into(),
        seq,
        created: rfc3339(now),
        sent: rfc3339(now),
        policy_version: 1,
        events,
    }
}

fn ingest(
    w: &mut World,
    cred: &Credential,
    b: &Batch,
    gzip: bool,
    now: UnixSeconds,
) -> HttpResponse {
    let env = telemetry::seal_batch(b, cred.signing_key().unwrap(), gzip).unwrap();
    w.handle(&post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, env), now)
}

fn ack(r: &HttpResponse) -> IngestAck {
    serde_json::from_str(text(r)).unwrap()
}

// ---------------------------------------------------------------------------
// Tokens.

#[test]
fn token_defaults_are_the_documented_ones() {
    assert_eq!(token::DEFAULT_LIFETIME, 24 * 3600);
    assert_eq!(token::MAX_LIFETIME, 7 * 86_400);
    assert_eq!(token::DEFAULT_SKEW, 60);
    assert_eq!(token::MAX_SKEW, 300);
    assert_eq!(token::EXPIRY_WARNING, 3600);
    assert_eq!(token::DEFAULT_MAX_USES, 10_000);
    assert_eq!(token::TYP, "edrlink-access+jwt");
    assert_eq!(token::AUDIENCE, "edrlink-partner-api");
    assert_eq!(fresh::MESSAGE_WINDOW, 300);
    assert_eq!(CREDENTIAL_LIFETIME, 90 * 86_400);
    assert_eq!(offboard::PACKAGE_VALIDITY, 30 * 86_400);
    assert_eq!(handshake::SESSION_LIFETIME, 3600);
    assert_eq!(telemetry::TARGET_BATCH_BYTES, 1 << 20);
    assert_eq!(dsse::MAX_ENVELOPE_BYTES, 5 << 20);
    assert_eq!(telemetry::MAX_DECOMPRESSED, 20 << 20);
}

#[test]
fn token_issue_limits_and_status() {
    let mut w = World::new();
    assert_eq!(
        w.svc
            .issue_token(
                &mut w.store,
                TENANT,
                PARTNER,
                token::MAX_LIFETIME + 1,
                1,
                NOW
            )
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        w.svc
            .issue_token(&mut w.store, TENANT, PARTNER, 0, 1, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        w.svc
            .issue_token(&mut w.store, TENANT, PARTNER, 60, 0, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::InvalidArgument
    );
    let (tok, c) = w
        .svc
        .issue_token(&mut w.store, TENANT, PARTNER, token::MAX_LIFETIME, 1, NOW)
        .unwrap();
    assert_eq!(c.exp - c.iat, token::MAX_LIFETIME);
    assert_eq!((c.iat, c.nbf), (NOW, NOW));
    assert_eq!(c.epoch, 1);
    assert_eq!(c.region, REGION);
    assert_eq!(c.service_url, SERVICE_URL);
    let info = token::inspect(&tok).unwrap();
    assert_eq!(info.kid, key("service").key_id());
    assert_eq!(info.status(NOW - 1), TokenStatus::NotYetValid);
    assert_eq!(info.status(NOW), TokenStatus::Valid);
    assert_eq!(info.status(c.exp - 3600), TokenStatus::Valid);
    assert_eq!(info.status(c.exp - 3599), TokenStatus::ExpiresSoon);
    assert_eq!(info.status(c.exp), TokenStatus::Expired);
    assert_eq!(info.seconds_left(c.exp - 10), 10);
    // Tokens are only issued for an enabled integration.
    w.set_enabled(false);
    assert_eq!(
        w.svc
            .issue_token(&mut w.store, TENANT, PARTNER, 60, 1, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::IntegrationDisabled
    );
}

#[test]
fn token_verify_skew_is_clamped() {
    let svc = key("service");
    let mut w = World::new();
    let (tok, c) = w
        .svc
        .issue_token(&mut w.store, TENANT, PARTNER, 3600, 1, NOW)
        .unwrap();
    let ks = Keyset::from_keys(&[svc.verifying_key()]);
    let v = |now, skew| {
        token::verify(&tok, &ks, now, skew)
            .map(|_| ())
            .map_err(|e| e.code())
    };
    assert_eq!(v(c.exp - 1, 0), Ok(()));
    assert_eq!(v(c.exp, 0), Err(ErrorCode::TokenExpired));
    assert_eq!(v(c.exp + 299, i64::MAX), Ok(()));
    assert_eq!(v(c.exp + 300, i64::MAX), Err(ErrorCode::TokenExpired));
    assert_eq!(v(c.exp, i64::MIN), Err(ErrorCode::TokenExpired));
    assert_eq!(v(c.nbf - 300, 300), Ok(()));
    assert_eq!(v(c.nbf - 301, 10_000), Err(ErrorCode::TokenNotYetValid));
}

#[test]
fn service_redeem_allows_no_skew_on_token_expiry() {
    let mut w = World::new();
    let tok = w.token(600, 10, NOW);
    assert_eq!(
        redeem_with(&mut w, &tok, "endpoint", "e1", "d1", NOW + 600).err(),
        Some(ErrorCode::TokenExpired)
    );
    assert!(redeem_with(&mut w, &tok, "endpoint", "e1", "d1", NOW + 599).is_ok());
}

// ---------------------------------------------------------------------------
// Redemption.

#[test]
fn redemption_is_idempotent_per_enrollment_id() {
    let mut w = World::new();
    let tok = w.token(3600, 10, NOW);
    let a = redeem_with(&mut w, &tok, "endpoint", "enroll-1", "device-1", NOW).unwrap();
    let b = redeem_with(&mut w, &tok, "endpoint", "enroll-1", "device-1", NOW + 30).unwrap();
    assert_eq!(a.cred.installation_id, b.cred.installation_id);
    assert_eq!(w.store.installations.len(), 1);
    assert_eq!(
        w.store.tokens.values().next().unwrap().uses,
        1,
        "a retry does not consume a use"
    );
    assert_eq!(a.claims.possible_clone_of, None);
    assert_eq!(a.claims.credential_exp, NOW + CREDENTIAL_LIFETIME);
    assert_eq!(a.cred.epoch, 1);
    assert_eq!(a.cred.service_keys, w.svc.keyset());
    assert_eq!(a.cred.rotate_after(), NOW + CREDENTIAL_LIFETIME * 2 / 3);
}

#[test]
fn same_device_with_another_key_is_flagged_as_possible_clone() {
    let mut w = World::new();
    let tok = w.token(3600, 10, NOW);
    let a = redeem_with(&mut w, &tok, "endpoint", "enroll-1", "device-1", NOW).unwrap();
    let b = redeem_with(&mut w, &tok, "endpoint-2", "enroll-2", "device-1", NOW).unwrap();
    assert_ne!(a.cred.installation_id, b.cred.installation_id);
    assert_eq!(
        b.claims.possible_clone_of.as_deref(),
        Some(a.cred.installation_id.as_str())
    );
    assert_eq!(
        w.store.installations[&b.cred.installation_id]
            .possible_clone_of
            .as_deref(),
        Some(a.cred.installation_id.as_str())
    );
    // Reusing an enrollment id with another key is refused outright.
    assert_eq!(
        redeem_with(&mut w, &tok, "endpoint-3", "enroll-1", "device-1", NOW).err(),
        Some(ErrorCode::PossibleClone)
    );
    assert_eq!(ErrorCode::PossibleClone.http_status(), 409);
}

#[test]
fn token_use_limits_and_admin_state() {
    let mut w = World::new();
    let tok = w.token(3600, 1, NOW);
    redeem_with(&mut w, &tok, "endpoint", "e1", "d1", NOW).unwrap();
    assert_eq!(
        redeem_with(&mut w, &tok, "endpoint-2", "e2", "d2", NOW).err(),
        Some(ErrorCode::TokenExhausted)
    );
    // The already enrolled endpoint may still retry.
    redeem_with(&mut w, &tok, "endpoint", "e1", "d1", NOW + 1).unwrap();

    let tok2 = w.token(3600, 10, NOW);
    let jti = token::inspect(&tok2).unwrap().claims.jti;
    w.store.tokens.get_mut(&jti).unwrap().revoked = true;
    assert_eq!(
        redeem_with(&mut w, &tok2, "endpoint-2", "e2", "d2", NOW).err(),
        Some(ErrorCode::TokenRevoked)
    );
    w.store.tokens.remove(&jti);
    assert_eq!(
        redeem_with(&mut w, &tok2, "endpoint-2", "e2", "d2", NOW).err(),
        Some(ErrorCode::TokenRevoked)
    );

    let tok3 = w.token(3600, 10, NOW);
    w.set_enabled(false);
    assert_eq!(
        redeem_with(&mut w, &tok3, "endpoint-2", "e2", "d2", NOW).err(),
        Some(ErrorCode::IntegrationDisabled)
    );
    w.set_enabled(true);
    assert_eq!(w.epoch(), 2);
    assert_eq!(
        redeem_with(&mut w, &tok3, "endpoint-2", "e2", "d2", NOW).err(),
        Some(ErrorCode::EpochMismatch)
    );
    let tok4 = w.token(3600, 10, NOW);
    assert_eq!(
        redeem_with(&mut w, &tok4, "endpoint-2", "e2", "d2", NOW)
            .unwrap()
            .cred
            .epoch,
        2
    );
}

#[test]
fn wrong_region_is_refused_with_421() {
    let mut eu = World::new();
    let tok = eu.token(3600, 10, NOW);
    let mut cfg = service_config("service");
    cfg.region = "us".into();
    let mut us = World::with_config(cfg);
    us.store.tokens = eu.store.tokens.clone();
    assert_eq!(
        redeem_with(&mut us, &tok, "endpoint", "e1", "d1", NOW).err(),
        Some(ErrorCode::WrongRegion)
    );
    assert_eq!(ErrorCode::WrongRegion.http_status(), 421);
}

#[test]
fn redemption_request_must_be_fresh_once_and_self_signed() {
    let mut w = World::new();
    let tok = w.token(3600, 10, NOW);
    let rng = CounterRandom::new("r");
    let mut p = PendingRedeem::new(
        &tok,
        device("d1"),
        Some(key("endpoint")),
        Some("e1".into()),
        &rng,
    )
    .unwrap();
    for (iat, ok) in [
        (NOW - 301, false),
        (NOW + 301, false),
        (NOW - 300, true),
        (NOW + 300, true),
    ] {
        let body = p.request(iat, &rng).unwrap();
        let r = w.handle(&post("/v1/redeem", http::JOSE, body.clone()), NOW);
        if ok {
            assert_eq!(r.status, 200);
            let r2 = w.handle(&post("/v1/redeem", http::JOSE, body), NOW);
            assert_eq!(code(&r2), ErrorCode::Replay);
        } else {
            assert_eq!(code(&r), ErrorCode::StaleMessage);
        }
    }
}

#[test]
fn client_binds_trust_to_the_token_issuer() {
    // A response signed by an impostor carrying its own keyset is refused: the
    // carried keyset must also verify the token we sent.
    let mut w = World::new();
    let tok = w.token(3600, 10, NOW);
    let rng = CounterRandom::new("r");
    let mut p = PendingRedeem::new(
        &tok,
        device("d1"),
        Some(key("endpoint")),
        Some("e1".into()),
        &rng,
    )
    .unwrap();
    let body = p.request(NOW, &rng).unwrap();
    let mut impostor = World::with_config(service_config("impostor"));
    impostor.store.tokens = w.store.tokens.clone();
    // The impostor cannot even verify the token…
    assert_eq!(
        code(&impostor.handle(&post("/v1/redeem", http::JOSE, body.clone()), NOW)),
        ErrorCode::UnknownKey
    );
    // …and a forged answer signed with its key is refused by the client.
    let real = w.handle(&post("/v1/redeem", http::JOSE, body), NOW);
    let claims: ResponseClaims =
        edrlink_core::jws::parse(text(&real), edrlink_core::redeem::RESPONSE_TYP)
            .unwrap()
            .claims()
            .unwrap();
    let mut forged = claims.clone();
    forged.keyset = Keyset::from_keys(&[key("impostor").verifying_key()]);
    let forged = edrlink_core::jws::sign(
        edrlink_core::redeem::RESPONSE_TYP,
        &forged,
        &key("impostor"),
        false,
    )
    .unwrap();
    let p2 = p;
    assert_eq!(
        p2.accept(&forged, None, NOW).unwrap_err().code(),
        ErrorCode::BadSignature,
        "not signed by the key that signed the token"
    );
}

#[test]
fn redemption_answer_must_echo_the_nonce() {
    let mut w = World::new();
    let tok = w.token(3600, 10, NOW);
    let rng = CounterRandom::new("r");
    let mut p = PendingRedeem::new(
        &tok,
        device("d1"),
        Some(key("endpoint")),
        Some("e1".into()),
        &rng,
    )
    .unwrap();
    let first = p.request(NOW, &rng).unwrap();
    let r = w.handle(&post("/v1/redeem", http::JOSE, first), NOW);
    let _second = p.request(NOW, &rng).unwrap(); // new nonce: the old answer no longer matches
    assert_eq!(
        p.accept(text(&r), None, NOW).unwrap_err().code(),
        ErrorCode::BadSignature
    );
}

// ---------------------------------------------------------------------------
// Handshake.

#[test]
fn handshake_open_blocked_revoked() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW + 1, "h1").unwrap();
    assert_eq!(d.decision, FlowState::Open);
    assert_eq!(d.reason, None);
    assert_eq!(d.session_exp, Some(NOW + 1 + 3600));
    assert!(d.session_id.as_deref().unwrap().starts_with("sess-"));
    assert_eq!(d.policy, Some(Policy::default()));
    assert_eq!(d.last_seq, 0);

    w.set_enabled(false);
    let d = handshake_at(&mut w, &e.cred, NOW + 2, "h2").unwrap();
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Blocked, Some(ErrorCode::IntegrationDisabled))
    );
    assert_eq!((d.session_id, d.session_exp, d.policy), (None, None, None));

    w.set_enabled(true);
    let d = handshake_at(&mut w, &e.cred, NOW + 3, "h3").unwrap();
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Revoked, Some(ErrorCode::EpochMismatch))
    );
    assert!(d.session_id.is_none());
}

#[test]
fn handshake_replay_stale_and_foreign_key() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let (body, _) = hello_body(&e.cred, NOW, "h");
    assert_eq!(
        w.handle(&post("/v1/handshake", http::JOSE, body.clone()), NOW)
            .status,
        200
    );
    assert_eq!(
        code(&w.handle(&post("/v1/handshake", http::JOSE, body.clone()), NOW + 1)),
        ErrorCode::Replay
    );
    // Nonces are remembered for 2 × 300 s; after that the iat check refuses it anyway.
    assert_eq!(
        code(&w.handle(&post("/v1/handshake", http::JOSE, body), NOW + 301)),
        ErrorCode::StaleMessage
    );
    for (iat, label, ok) in [
        (NOW - 301, "h2", false),
        (NOW + 301, "h3", false),
        (NOW - 300, "h4", true),
        (NOW + 300, "h5", true),
    ] {
        let (body, _) = hello_body(&e.cred, iat, label);
        let r = w.handle(&post("/v1/handshake", http::JOSE, body), NOW);
        if ok {
            assert_eq!(r.status, 200);
        } else {
            assert_eq!(code(&r), ErrorCode::StaleMessage);
        }
    }
    let mut forged = Credential::from_json(&e.cred.to_json()).unwrap();
    forged.auth = CredentialAuth::Key(key("endpoint-2").into());
    assert_eq!(
        handshake_at(&mut w, &forged, NOW, "h4").err(),
        Some(ErrorCode::UnknownKey)
    );
    forged.installation_id = "inst-nope".into();
    assert_eq!(
        handshake_at(&mut w, &forged, NOW, "h5").err(),
        Some(ErrorCode::UnknownInstallation)
    );
}

#[test]
fn flow_decision_must_answer_our_hello() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let (body, _nonce) = hello_body(&e.cred, NOW, "h");
    let r = w.handle(&post("/v1/handshake", http::JOSE, body), NOW);
    assert_eq!(
        handshake::accept_decision(&e.cred, text(&r), "another-nonce-xxxxxx", NOW)
            .unwrap_err()
            .code(),
        ErrorCode::BadSignature
    );
}

#[test]
fn hello_reports_sensor_state_and_drops() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let h = Hello {
        installation_id: String::new(),
        nonce: String::new(),
        iat: 0,
        sensor: SensorState::Stopped,
        last_seq: 0,
        policy_version: 1,
        clock_offset: 0,
        queued_events: 5,
        drops: [
            ("queue_full/telemetry".to_owned(), 3u64),
            ("expired/detection".to_owned(), 1),
        ]
        .into_iter()
        .collect(),
    };
    let (body, _) = handshake::hello(&e.cred, h, NOW, &CounterRandom::new("x")).unwrap();
    assert_eq!(
        w.handle(&post("/v1/handshake", http::JOSE, body), NOW)
            .status,
        200
    );
    let inst = &w.store.installations[&e.cred.installation_id];
    assert!(!inst.sensor_running);
    assert_eq!(inst.reported_drops, 4);
    assert_eq!(inst.last_seen, Some(NOW));
}

// ---------------------------------------------------------------------------
// Telemetry.

#[test]
fn ingest_dedup_gap_regression_and_alerts() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let sid = d.session_id.as_deref();
    let b1 = batch(
        &e.cred,
        sid,
        1,
        "b1",
        vec![
            generic(1, NOW),
            eicar::test_detection(NOW, "/tmp/eicar.com"),
        ],
        NOW,
    );
    let a = ack(&ingest(&mut w, &e.cred, &b1, false, NOW));
    assert_eq!(
        (a.status.as_str(), a.seq, a.events, a.gap),
        ("accepted", 1, 2, 0)
    );
    assert_eq!(w.store.alerts.len(), 1);
    let alert = &w.store.alerts[0].1;
    assert_eq!(alert.title, eicar::EICAR_ALERT_TITLE);
    assert!(alert.test);
    assert_eq!(alert.sha256, eicar::EICAR_SHA256);

    // The same batch again (even re-sealed later, gzip this time) is a duplicate: nothing stored twice.
    let a = ack(&ingest(&mut w, &e.cred, &b1, true, NOW + 5));
    assert_eq!((a.status.as_str(), a.seq, a.events), ("duplicate", 1, 0));
    assert_eq!(w.store.alerts.len(), 1);
    assert_eq!(w.store.events_of(&e.cred.installation_id).len(), 2);

    // A gap is recorded, not refused.
    let b4 = batch(&e.cred, sid, 4, "b4", vec![generic(4, NOW)], NOW);
    let a = ack(&ingest(&mut w, &e.cred, &b4, false, NOW + 6));
    assert_eq!((a.status.as_str(), a.gap), ("accepted", 2));
    assert_eq!(
        w.store.installations[&e.cred.installation_id].missing_seq,
        2
    );
    assert_eq!(w.store.installations[&e.cred.installation_id].last_seq, 4);

    // Going backwards with a new batch id is refused with the expected sequence.
    let b3 = batch(&e.cred, sid, 3, "b3", vec![generic(3, NOW)], NOW);
    let r = ingest(&mut w, &e.cred, &b3, false, NOW + 7);
    assert_eq!(code(&r), ErrorCode::SequenceRegression);
    let p: Problem = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(p.expected_seq, Some(5));
    assert_eq!(r.status, 409);

    // A later handshake reports the stored sequence.
    assert_eq!(
        handshake_at(&mut w, &e.cred, NOW + 8, "h2")
            .unwrap()
            .last_seq,
        4
    );
}

#[test]
fn ingest_needs_a_live_session_of_this_installation() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let tok2 = w.token(3600, 10, NOW);
    let other = redeem_with(&mut w, &tok2, "endpoint-2", "e2", "d2", NOW).unwrap();
    let b = batch(&e.cred, None, 1, "b1", vec![generic(1, NOW)], NOW);
    assert_eq!(
        code(&ingest(&mut w, &e.cred, &b, false, NOW)),
        ErrorCode::SessionExpired
    );
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let d_other = handshake_at(&mut w, &other.cred, NOW, "h-other").unwrap();
    let stolen = batch(
        &e.cred,
        d_other.session_id.as_deref(),
        1,
        "b1",
        vec![generic(1, NOW)],
        NOW,
    );
    assert_eq!(
        code(&ingest(&mut w, &e.cred, &stolen, false, NOW)),
        ErrorCode::SessionExpired
    );
    let b = batch(
        &e.cred,
        d.session_id.as_deref(),
        1,
        "b1",
        vec![generic(1, NOW)],
        NOW,
    );
    let exp = d.session_exp.unwrap();
    assert_eq!(
        code(&ingest(&mut w, &e.cred, &b, false, exp + 1)),
        ErrorCode::SessionExpired
    );
    assert_eq!(
        ack(&ingest(&mut w, &e.cred, &b, false, exp)).status,
        "accepted"
    );
    assert_eq!(ErrorCode::SessionExpired.http_status(), 401);
}

#[test]
fn ingest_refuses_batches_naming_another_installation() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let mut b = batch(
        &e.cred,
        d.session_id.as_deref(),
        1,
        "b1",
        vec![generic(1, NOW)],
        NOW,
    );
    b.installation_id = "inst-someone-else".into();
    assert_eq!(
        code(&ingest(&mut w, &e.cred, &b, false, NOW)),
        ErrorCode::BadSignature
    );
}

#[test]
fn ingest_size_limits_and_gzip_bomb() {
    let mut cfg = service_config("service");
    cfg.policy.max_batch_events = 3;
    let mut w = World::with_config(cfg);
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let sid = d.session_id.as_deref();
    let b = batch(
        &e.cred,
        sid,
        1,
        "b1",
        (0..4).map(|n| generic(n, NOW)).collect(),
        NOW,
    );
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::BatchTooLarge, 413));

    // Over the policy's max_batch_bytes (1 MiB, as sent).
    let big = Event::Generic(GenericEvent {
        time: rfc3339(NOW),
        name: "blob".into(),
        data: serde_json::json!("x".repeat(1_100_000)),
    });
    let b = batch(&e.cred, sid, 1, "b2", vec![big.clone()], NOW);
    assert_eq!(
        code(&ingest(&mut w, &e.cred, &b, false, NOW)),
        ErrorCode::BatchTooLarge
    );
    // …but the same events compressed fit.
    assert_eq!(
        ack(&ingest(&mut w, &e.cred, &b, true, NOW)).status,
        "accepted"
    );

    // Envelope over 5 MiB: refused before parsing.
    let huge = vec![b' '; dsse::MAX_ENVELOPE_BYTES + 1];
    assert_eq!(
        code(&w.handle(&post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, huge), NOW)),
        ErrorCode::BatchTooLarge
    );

    // A gzip bomb: a small, validly signed payload that inflates past 20 MiB.
    let inner = {
        let mut v = br#"{"v":1,"installation_id":""#.to_vec();
        v.extend(std::iter::repeat_n(b'a', telemetry::MAX_DECOMPRESSED + 1));
        v
    };
    let gz = {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&inner).unwrap();
        enc.finish().unwrap()
    };
    assert!(
        gz.len() < 1 << 20,
        "bomb is small on the wire: {}",
        gz.len()
    );
    let env = dsse::seal(
        telemetry::BATCH_TYPE_GZIP,
        &gz,
        e.cred.signing_key().unwrap(),
    )
    .unwrap();
    let r = w.handle(&post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, env), NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::TooLarge, 413));
    // The same bomb signed by someone else is refused before any decompression.
    let mut forged: serde_json::Value = serde_json::from_slice(
        &dsse::seal(telemetry::BATCH_TYPE_GZIP, &gz, &key("endpoint-2")).unwrap(),
    )
    .unwrap();
    forged["signatures"][0]["keyid"] = serde_json::json!(e.cred.signing_key().unwrap().key_id());
    let r = w.handle(
        &post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, forged.to_string()),
        NOW,
    );
    assert_eq!(code(&r), ErrorCode::BadSignature);
}

#[test]
fn rate_limit_answers_429_with_retry_after() {
    let mut cfg = service_config("service");
    cfg.rate_limit = edrlink_core::service::RateLimit {
        burst: 2.0,
        per_second: 0.5,
    };
    let mut w = World::with_config(cfg);
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let sid = d.session_id.as_deref();
    for seq in 1..=2 {
        let b = batch(
            &e.cred,
            sid,
            seq,
            &format!("b{seq}"),
            vec![generic(seq as u32, NOW)],
            NOW,
        );
        assert_eq!(
            ack(&ingest(&mut w, &e.cred, &b, false, NOW)).status,
            "accepted"
        );
    }
    let b3 = batch(&e.cred, sid, 3, "b3", vec![generic(3, NOW)], NOW);
    let r = ingest(&mut w, &e.cred, &b3, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::RateLimited, 429));
    assert_eq!(r.header("retry-after"), Some("2"));
    let p: Problem = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(p.retry_after, Some(2));
    let (err, _) = http::error_from_response(&r, NOW);
    assert_eq!(
        (err.code(), err.retry_after()),
        (ErrorCode::RateLimited, Some(2))
    );
    // Nothing was stored; after waiting it goes through.
    assert_eq!(w.store.installations[&e.cred.installation_id].last_seq, 2);
    assert_eq!(
        ack(&ingest(&mut w, &e.cred, &b3, false, NOW + 2)).status,
        "accepted"
    );
}

#[test]
fn blocked_and_revoked_installations_cannot_ingest() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let b = batch(
        &e.cred,
        d.session_id.as_deref(),
        1,
        "b1",
        vec![generic(1, NOW)],
        NOW,
    );
    w.set_enabled(false);
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::FlowBlocked, 403));
    w.set_enabled(true);
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::EpochMismatch, 401));
    assert!(
        w.store.batches.is_empty(),
        "nothing stored while blocked or revoked"
    );
    // Each per-installation reason answers its own code, whatever the
    // integration's state, and nothing is stored.
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h2").unwrap();
    let b = batch(
        &e.cred,
        d.session_id.as_deref(),
        1,
        "b1",
        vec![generic(1, NOW)],
        NOW,
    );
    let id = e.cred.installation_id.clone();
    let set = |w: &mut World, f: &dyn Fn(&mut edrlink_core::service::Installation)| {
        f(w.store.installations.get_mut(&id).unwrap())
    };
    set(&mut w, &|i| i.credential_exp = NOW - 1);
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::CredentialExpired, 401));
    set(&mut w, &|i| i.offboarded = true);
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::Offboarded, 401));
    set(&mut w, &|i| i.revoked = true);
    let r = ingest(&mut w, &e.cred, &b, false, NOW);
    assert_eq!((code(&r), r.status), (ErrorCode::Revoked, 401));
    assert!(w.store.batches.is_empty());
}

// ---------------------------------------------------------------------------
// Down-level.

fn workspace(w: &mut World, epoch: u64) -> downlevel::OnboardingPackage {
    let pkg = downlevel::OnboardingPackage::issue(
        TENANT,
        PARTNER,
        REGION,
        SERVICE_URL,
        w.svc.keyset(),
        epoch,
        NOW,
        &CounterRandom::new("ws"),
    )
    .unwrap();
    w.store.workspaces.insert(
        pkg.workspace_id.clone(),
        Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            key: pkg.key_bytes().unwrap(),
            epoch,
            expires_at: None,
            revoked: false,
        },
    );
    pkg
}

fn shared_key_post(
    key_id: &str,
    key: &[u8],
    path: &str,
    body: &[u8],
    date: UnixSeconds,
) -> HttpRequest {
    let d = rfc3339(date);
    let mut r = post(path, http::JSON, body.to_vec());
    r.headers.push((
        "authorization".into(),
        downlevel::authorization(key_id, key, "POST", path, http::JSON, &d, body),
    ));
    r.headers.push((downlevel::DATE_HEADER.into(), d));
    r
}

#[test]
fn downlevel_register_and_ingest() {
    let mut w = World::new();
    let pkg = workspace(&mut w, 1);
    let text = pkg.to_json();
    let parsed = downlevel::OnboardingPackage::from_json(&text).unwrap();
    assert_eq!(parsed.workspace_id, pkg.workspace_id);
    assert!(
        !format!("{parsed:?}").contains(&pkg.workspace_key),
        "Debug redacts the workspace key"
    );
    let key = pkg.key_bytes().unwrap();
    assert_eq!(key.len(), 32);

    let device_key = [0x5Du8; 32];
    let reg = serde_json::to_vec(&downlevel::RegisterRequest {
        enrollment_id: "dl-1".into(),
        device: device("dl-dev"),
        device_key: b64url(&device_key),
    })
    .unwrap();
    let ws = pkg.workspace_id.as_str();
    let r = w.handle(
        &shared_key_post(ws, &key, "/v1/downlevel/register", &reg, NOW),
        NOW,
    );
    let rr: downlevel::RegisterResponse = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((rr.epoch, rr.server_time, rr.last_seq), (1, NOW, 0));
    // Idempotent.
    let r2 = w.handle(
        &shared_key_post(ws, &key, "/v1/downlevel/register", &reg, NOW + 1),
        NOW + 1,
    );
    assert_eq!(
        serde_json::from_slice::<downlevel::RegisterResponse>(&r2.body)
            .unwrap()
            .installation_id,
        rr.installation_id
    );

    let b = Batch {
        v: 1,
        installation_id: rr.installation_id.clone(),
        session_id: None,
        batch_id: "dl-b1".into(),
        seq: 1,
        created: rfc3339(NOW),
        sent: rfc3339(NOW),
        policy_version: 1,
        events: vec![eicar::test_detection(NOW, "/tmp/e")],
    };
    let body = serde_json::to_vec(&b).unwrap();
    let inst = rr.installation_id.as_str();
    let r = w.handle(
        &shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW),
        NOW,
    );
    assert_eq!(
        serde_json::from_slice::<IngestAck>(&r.body).unwrap().status,
        "accepted"
    );
    assert_eq!(w.store.alerts.len(), 1);
    let r = w.handle(
        &shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW + 1),
        NOW + 1,
    );
    assert_eq!(
        serde_json::from_slice::<IngestAck>(&r.body).unwrap().status,
        "duplicate"
    );

    // Wrong key, stale date, wrong path in the MAC, unknown installation, missing header.
    assert_eq!(
        code(&w.handle(
            &shared_key_post(inst, &[7u8; 32], "/v1/downlevel/ingest", &body, NOW),
            NOW
        )),
        ErrorCode::BadSignature
    );
    assert_eq!(
        code(&w.handle(
            &shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW - 301),
            NOW
        )),
        ErrorCode::StaleMessage
    );
    let mut wrong_path = shared_key_post(inst, &device_key, "/v1/downlevel/register", &body, NOW);
    wrong_path.url = "/v1/downlevel/ingest".into();
    assert_eq!(code(&w.handle(&wrong_path, NOW)), ErrorCode::BadSignature);
    let mut no_auth = shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW);
    no_auth.headers.retain(|(k, _)| k != "authorization");
    assert_eq!(code(&w.handle(&no_auth, NOW)), ErrorCode::Unauthorized);
    assert_eq!(
        code(&w.handle(
            &shared_key_post(
                "inst-unknown",
                &device_key,
                "/v1/downlevel/ingest",
                &body,
                NOW
            ),
            NOW
        )),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(&w.handle(
            &shared_key_post("ws-unknown", &key, "/v1/downlevel/register", &reg, NOW),
            NOW
        )),
        ErrorCode::Unauthorized
    );

    // Toggle off blocks; back on (new epoch) the old credential is revoked.
    w.set_enabled(false);
    assert_eq!(
        code(&w.handle(
            &shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW),
            NOW
        )),
        ErrorCode::FlowBlocked
    );
    w.set_enabled(true);
    assert!(matches!(
        code(&w.handle(
            &shared_key_post(inst, &device_key, "/v1/downlevel/ingest", &body, NOW),
            NOW
        )),
        ErrorCode::Revoked | ErrorCode::EpochMismatch
    ));
    assert_eq!(
        code(&w.handle(
            &shared_key_post(ws, &key, "/v1/downlevel/register", &reg, NOW),
            NOW
        )),
        ErrorCode::EpochMismatch,
        "the old epoch's workspace key registers nobody"
    );
}

#[test]
fn shared_key_string_to_sign_is_documented_form() {
    let s = downlevel::string_to_sign(
        "POST",
        "/v1/downlevel/ingest",
        "application/json",
        "2026-11-23T12:00:00Z",
        b"",
    );
    assert_eq!(s, "POST\n/v1/downlevel/ingest\napplication/json\n2026-11-23T12:00:00Z\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    let auth = downlevel::authorization(
        "ws-1",
        b"key",
        "POST",
        "/p",
        "application/json",
        "2026-11-23T12:00:00Z",
        b"x",
    );
    assert!(auth.starts_with("SharedKey ws-1:"));
    assert_eq!(
        auth.len(),
        "SharedKey ws-1:".len() + 44,
        "standard base64 of 32 bytes, padded"
    );
}

// ---------------------------------------------------------------------------
// Offboarding and rotation.

#[test]
fn partner_offboard_revokes_and_a_new_token_resumes() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let (body, nonce) =
        offboard::request(&e.cred, "uninstall", NOW, &CounterRandom::new("o")).unwrap();
    let r = w.handle(&post("/v1/offboard", http::JOSE, body.clone()), NOW);
    offboard::accept_response(&e.cred, text(&r), &nonce, NOW).unwrap();
    assert!(w.store.installations[&e.cred.installation_id].offboarded);
    assert_eq!(
        code(&w.handle(&post("/v1/offboard", http::JOSE, body), NOW)),
        ErrorCode::Replay
    );
    let d = handshake_at(&mut w, &e.cred, NOW + 1, "h").unwrap();
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Revoked, Some(ErrorCode::Offboarded))
    );
    // Re-enrolling the same key + enrollment id is refused until the admin
    // reinstates the installation; then it resumes the same installation.
    let tok = w.token(3600, 10, NOW);
    let err = redeem_with(&mut w, &tok, "endpoint", "enroll-1", "device-1", NOW + 2).err();
    assert_eq!(err, Some(ErrorCode::Offboarded));
    w.store
        .installations
        .get_mut(&e.cred.installation_id)
        .unwrap()
        .offboarded = false;
    let again = redeem_with(&mut w, &tok, "endpoint", "enroll-1", "device-1", NOW + 3).unwrap();
    assert_eq!(again.cred.installation_id, e.cred.installation_id);
    assert!(!w.store.installations[&e.cred.installation_id].offboarded);
}

#[test]
fn offboarding_package_rules() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let svc = key("service");
    let rng = CounterRandom::new("pkg");
    let (p, c) = offboard::issue_package(TENANT, PARTNER, 1, None, &svc, NOW, &rng).unwrap();
    assert_eq!(c.exp, NOW + 30 * 86_400);
    assert!(offboard::verify_package(&e.cred, &p, NOW).is_ok());
    assert!(
        offboard::verify_package(&e.cred, &p, c.exp + 59).is_ok(),
        "60 s skew"
    );
    assert_eq!(
        offboard::verify_package(&e.cred, &p, c.exp + 60)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    assert_eq!(
        offboard::verify_package(&e.cred, &p, NOW - 61)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    let (named, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec![e.cred.installation_id.clone()]),
        &svc,
        NOW,
        &rng,
    )
    .unwrap();
    assert!(offboard::verify_package(&e.cred, &named, NOW).is_ok());
    let (others, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec!["inst-other".into()]),
        &svc,
        NOW,
        &rng,
    )
    .unwrap();
    assert_eq!(
        offboard::verify_package(&e.cred, &others, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    let (tenant2, _) =
        offboard::issue_package("tenant-2", PARTNER, 1, None, &svc, NOW, &rng).unwrap();
    assert_eq!(
        offboard::verify_package(&e.cred, &tenant2, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    // A package of an older epoch than the credential (issued before a
    // re-enrollment) is refused: replaying it cannot wipe the new credential.
    let (old, _) = offboard::issue_package(TENANT, PARTNER, 0, None, &svc, NOW, &rng).unwrap();
    assert_eq!(
        offboard::verify_package(&e.cred, &old, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    let (forged, _) =
        offboard::issue_package(TENANT, PARTNER, 1, None, &key("impostor"), NOW, &rng).unwrap();
    assert_eq!(
        offboard::verify_package(&e.cred, &forged, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::UnknownKey
    );
}

#[test]
fn rotation_acquires_then_replaces() {
    let mut w = World::new();
    let mut e = enroll(&mut w, NOW);
    let old = e.cred.signing_key().unwrap().clone();
    let new_key = key("endpoint-rotated");
    let t = NOW + CREDENTIAL_LIFETIME * 2 / 3;
    let (body, nonce) = rotate::request(&e.cred, &new_key, t, &CounterRandom::new("rot")).unwrap();
    // A proof by a key other than the announced one is refused (and nothing changes).
    let (bad, _) = {
        let mut c: rotate::RotateClaims = edrlink_core::jws::parse(&body, rotate::REQUEST_TYP)
            .unwrap()
            .claims()
            .unwrap();
        c.new_key_proof =
            b64url(&key("endpoint-2").sign(&rotate::proof_input(&c.installation_id, &c.nonce)));
        c.nonce = format!("{}x", c.nonce);
        (
            edrlink_core::jws::sign(rotate::REQUEST_TYP, &c, &old, false).unwrap(),
            (),
        )
    };
    assert_eq!(
        code(&w.handle(&post("/v1/rotate", http::JOSE, bad), t)),
        ErrorCode::BadSignature
    );
    assert_eq!(
        w.store.installations[&e.cred.installation_id].public_key,
        Some(old.verifying_key())
    );

    let r = w.handle(&post("/v1/rotate", http::JOSE, body), t);
    // Until the answer is accepted the endpoint still holds its old key.
    assert_eq!(e.cred.signing_key().unwrap().key_id(), old.key_id());
    rotate::accept(&mut e.cred, new_key.clone().into(), text(&r), &nonce, t).unwrap();
    assert_eq!(e.cred.signing_key().unwrap().key_id(), new_key.key_id());
    assert_eq!(
        (e.cred.issued_at, e.cred.expires_at),
        (t, t + CREDENTIAL_LIFETIME)
    );
    assert!(handshake_at(&mut w, &e.cred, t + 1, "after").is_ok());
    let mut stale = Credential::from_json(&e.cred.to_json()).unwrap();
    stale.auth = CredentialAuth::Key(old.into());
    assert_eq!(
        handshake_at(&mut w, &stale, t + 2, "old").err(),
        Some(ErrorCode::UnknownKey)
    );
}

#[test]
fn rotation_answer_must_name_the_new_key() {
    let mut w = World::new();
    let mut e = enroll(&mut w, NOW);
    let new_key = key("endpoint-rotated");
    let (body, nonce) =
        rotate::request(&e.cred, &new_key, NOW, &CounterRandom::new("rot")).unwrap();
    let r = w.handle(&post("/v1/rotate", http::JOSE, body), NOW);
    let before = e.cred.signing_key().unwrap().key_id();
    assert_eq!(
        rotate::accept(&mut e.cred, key("endpoint-2").into(), text(&r), &nonce, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::BadSignature
    );
    assert_eq!(
        e.cred.signing_key().unwrap().key_id(),
        before,
        "key unchanged on a bad answer"
    );
}

// ---------------------------------------------------------------------------
// Policy, credential, health, HTTP.

#[test]
fn policy_rollback_is_refused() {
    let mut p = Policy {
        policy_version: 3,
        ..Policy::default()
    };
    let older = Policy {
        policy_version: 2,
        file_samples: FileSampleSharing::All,
        ..Policy::default()
    };
    assert_eq!(
        p.accept_update(&older).unwrap_err().code(),
        ErrorCode::PolicyRollback
    );
    assert_eq!(p.file_samples, FileSampleSharing::None);
    let zero = Policy {
        policy_version: 4,
        max_batch_events: 0,
        ..Policy::default()
    };
    assert_eq!(
        p.accept_update(&zero).unwrap_err().code(),
        ErrorCode::Malformed
    );
    assert_eq!(p.policy_version, 3);
}

#[test]
fn credential_round_trips_and_redacts() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let json = e.cred.to_json();
    let back = Credential::from_json(&json).unwrap();
    assert_eq!(back.to_json().as_str(), json.as_str());
    assert_eq!(back.installation_id, e.cred.installation_id);
    assert_eq!(
        back.signing_key().unwrap().key_id(),
        e.cred.signing_key().unwrap().key_id()
    );
    let seed_b64 = b64url(&seed("endpoint"));
    assert!(json.contains(&seed_b64), "stored form holds the seed");
    let dbg = format!("{:?}", back);
    assert!(
        !dbg.contains(&seed_b64) && dbg.contains("redacted"),
        "{dbg}"
    );

    let dl = Credential {
        auth: CredentialAuth::SharedKey {
            workspace_id: "ws-1".into(),
            key: zeroize::Zeroizing::new(vec![0xAB; 32]),
        },
        ..back
    };
    let j = dl.to_json();
    let dl2 = Credential::from_json(&j).unwrap();
    assert!(dl2.is_downlevel());
    assert_eq!(
        dl2.signing_key().unwrap_err().code(),
        ErrorCode::InvalidState
    );
    assert!(!format!("{dl2:?}").contains(&b64url(&[0xAB; 32])));

    for bad in [
        "{}",
        "not json",
        &json.replace("\"v\":1", "\"v\":2"),
        &json.replace("\"installation_id\"", "\"extra\":1,\"installation_id\""),
    ] {
        assert_eq!(
            Credential::from_json(bad).unwrap_err().code(),
            ErrorCode::Malformed,
            "{bad}"
        );
    }
    let debug_key = format!("{:?}", SigningKey::from_seed(&seed("endpoint")).unwrap());
    assert!(!debug_key.contains(&seed_b64));
}

#[test]
fn health_classes() {
    let a = |onboarded, last_seen, sensor_running| Activity {
        onboarded,
        revoked: false,
        last_seen,
        sensor_running,
    };
    let p = edrlink_core::health::INACTIVE_AFTER;
    assert_eq!(p, 7 * 86_400);
    assert_eq!(
        classify(a(true, Some(NOW), true), NOW, p),
        HealthClass::Healthy
    );
    assert_eq!(
        classify(a(true, Some(NOW - p), true), NOW, p),
        HealthClass::Healthy
    );
    assert_eq!(
        classify(a(true, Some(NOW - p - 1), true), NOW, p),
        HealthClass::Inactive
    );
    assert_eq!(
        classify(a(true, Some(NOW - p - 1), false), NOW, p),
        HealthClass::Inactive
    );
    assert_eq!(
        classify(a(true, Some(NOW), false), NOW, p),
        HealthClass::AgentState
    );
    assert_eq!(
        classify(a(true, None, true), NOW, p),
        HealthClass::NotOnboarded
    );
    assert_eq!(
        classify(a(false, Some(NOW), true), NOW, p),
        HealthClass::NotOnboarded
    );
    let revoked = Activity {
        revoked: true,
        ..a(true, Some(NOW), true)
    };
    assert_eq!(classify(revoked, NOW, p), HealthClass::Revoked);
    for (c, s) in [
        (HealthClass::Revoked, "Revoked"),
        (HealthClass::Healthy, "Healthy"),
        (HealthClass::Inactive, "Inactive"),
        (HealthClass::AgentState, "Agent state"),
        (HealthClass::NotOnboarded, "Not onboarded"),
    ] {
        assert_eq!(c.as_str(), s);
        assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
    }
    assert_eq!(Coverage::new(2, 3).percent, 66.7);
}

#[test]
fn http_surface() {
    let mut w = World::new();
    let get = |path: &str| HttpRequest {
        id: 0,
        method: "GET".into(),
        url: path.into(),
        headers: vec![],
        body: vec![],
    };
    let r = w.handle(&get("/v1/keys"), NOW);
    assert_eq!(r.status, 200);
    assert_eq!(
        Keyset::from_json(std::str::from_utf8(&r.body).unwrap()).unwrap(),
        w.svc.keyset()
    );
    let r = w.handle(&get("/v1/redeem"), NOW);
    assert_eq!((r.status, code(&r)), (405, ErrorCode::InvalidArgument));
    let r = w.handle(&get("/v2/anything"), NOW);
    assert_eq!((r.status, code(&r)), (404, ErrorCode::InvalidArgument));
    let r = w.handle(&get("/v1/keys?x=1"), NOW);
    assert_eq!(r.status, 200, "query strings are ignored");
    let r = w.handle(
        &post(
            "/v1/handshake",
            http::JOSE,
            vec![b'a'; edrlink_core::jws::MAX_JWS_LEN + 1],
        ),
        NOW,
    );
    assert_eq!((code(&r), r.status), (ErrorCode::TooLarge, 413));
    let r = w.handle(&post("/v1/handshake", http::JOSE, vec![0xff, 0xfe]), NOW);
    assert_eq!(code(&r), ErrorCode::Malformed);
    // Retry-After in both forms.
    assert_eq!(http::parse_retry_after("7", NOW), Some(7));
    assert_eq!(
        http::parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", NOW),
        Some(30)
    );
}

#[test]
fn error_code_table_is_stable() {
    // Ranges by family, and every status is a real HTTP error status.
    for &c in ErrorCode::ALL {
        let n = c.as_u32();
        assert!((100..800).contains(&n));
        assert!((400..600).contains(&c.http_status()), "{c}");
    }
    let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), 37);
    let mut sorted = ErrorCode::ALL
        .iter()
        .map(|c| c.as_u32())
        .collect::<Vec<_>>();
    sorted.sort();
    assert_eq!(
        sorted,
        ErrorCode::ALL
            .iter()
            .map(|c| c.as_u32())
            .collect::<Vec<_>>(),
        "ALL is in numeric order"
    );
}

#[test]
fn heartbeats_update_sensor_state() {
    let mut w = World::new();
    let e = enroll(&mut w, NOW);
    let d = handshake_at(&mut w, &e.cred, NOW, "h").unwrap();
    let hb = Event::Heartbeat(Heartbeat {
        time: rfc3339(NOW),
        sensor: SensorState::Stopped,
    });
    let b = batch(&e.cred, d.session_id.as_deref(), 1, "b1", vec![hb], NOW);
    ack(&ingest(&mut w, &e.cred, &b, false, NOW));
    assert!(!w.store.installations[&e.cred.installation_id].sensor_running);
}
