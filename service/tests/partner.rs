//! Partner API over real HTTP against the real service and SQLite: the full
//! story with sdk-core's `PartnerClient`, and every error the contract names
//! with hand-signed messages.

mod common;
use common::*;
use edrlink_core::client::ClientEvent;
use edrlink_core::eicar;
use edrlink_core::handshake::{FlowState, SensorState};
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::redeem::{self, RequestClaims};
use edrlink_core::service::RateLimit;
use edrlink_core::telemetry::{self, Event};
use edrlink_core::{dsse, jws, ErrorCode};
use serde_json::{json, Value};

#[test]
fn story_enroll_send_eicar_alert_health_rotate_offboard() {
    let s = Svc::start();
    s.setup("t1");
    let token = s.token_text("t1");
    let mut ep = Endpoint::new(&s, "a");
    ep.enroll(&token);
    let id = ep.installation_id();
    ep.pump();
    assert_eq!(ep.client.flow(), Some(FlowState::Open));
    let inst = s.installation("t1", &id);
    assert_eq!(
        (
            inst["hostname"].as_str(),
            inst["device_id"].as_str(),
            inst["os"].as_str(),
            inst["product"].as_str()
        ),
        (
            Some("host-a"),
            Some("dev-a"),
            Some("linux"),
            Some("Acme AV")
        )
    );
    assert_eq!(inst["health"], "Healthy");

    let now = s.now();
    let mut events = generic(now, 25);
    events.push(eicar::test_detection(now, "/tmp/eicar.com"));
    ep.send(events);
    assert!(ep.client.is_idle(), "{:?}", ep.client.health(s.now()));
    let sent = ep.client.health(s.now()).sent_events;
    assert!(sent >= 26, "sent {sent}"); // plus heartbeats
    assert_eq!(s.stats("t1").0, sent, "stored == sent");

    let alerts = s.alerts("t1");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["title"], "EICAR test file");
    assert_eq!(a["severity"], "informational");
    assert_eq!(a["test"], true);
    assert_eq!(a["sha256"], eicar::EICAR_SHA256);
    assert_eq!(a["installation_id"], id.as_str());
    assert_eq!(a["file_path"], "/tmp/eicar.com");

    // A real detection is titled by its threat and keeps its severity.
    let now = s.now();
    ep.send(vec![Event::Detection(telemetry::Detection {
        time: edrlink_core::encoding::rfc3339(now),
        threat_name: "Trojan.Generic".into(),
        file_path: "C:\\x.exe".into(),
        sha256: "ab".repeat(32),
        severity: telemetry::Severity::High,
        action: telemetry::Action::Quarantined,
        test: false,
        url: None,
    })]);
    let alerts = s.alerts("t1");
    assert_eq!(
        (
            alerts[1]["title"].as_str(),
            alerts[1]["severity"].as_str(),
            alerts[1]["test"].as_bool()
        ),
        (Some("Trojan.Generic detected"), Some("high"), Some(false))
    );

    // Sensor stopped → "Agent state".
    ep.client.set_sensor_state(SensorState::Stopped, s.now());
    ep.client.flush();
    ep.send(vec![]);
    assert_eq!(s.installation("t1", &id)["health"], "Agent state");
    assert_eq!(s.installation("t1", &id)["sensor_running"], false);
    ep.client.set_sensor_state(SensorState::Running, s.now());
    ep.send(vec![]);
    assert_eq!(s.installation("t1", &id)["health"], "Healthy");

    // Silence for 8 days → "Inactive".
    s.clock.advance(8 * 86_400);
    assert_eq!(s.installation("t1", &id)["health"], "Inactive");

    // Two thirds into the credential lifetime the client rotates its key (/v1/rotate)
    // and keeps delivering with the new key.
    s.clock.advance(53 * 86_400);
    let kid_before = ep
        .client
        .credential()
        .unwrap()
        .signing_key()
        .unwrap()
        .key_id();
    ep.send(generic(s.now(), 3));
    let kid_after = ep
        .client
        .credential()
        .unwrap()
        .signing_key()
        .unwrap()
        .key_id();
    assert_ne!(
        kid_before,
        kid_after,
        "credential was not rotated: {:?}",
        ep.client.health(s.now())
    );
    assert!(ep.events.contains(&ClientEvent::CredentialChanged));
    assert!(ep.client.is_idle());
    assert_eq!(s.stats("t1").0, ep.client.health(s.now()).sent_events);
    assert_eq!(s.installation("t1", &id)["health"], "Healthy");

    let cov = s.installations("t1")["coverage"].clone();
    assert_eq!(cov, json!({"onboarded": 1, "total": 1, "percent": 100.0}));

    // Partner-initiated offboarding (/v1/offboard).
    ep.client.offboard("uninstalled").unwrap();
    ep.pump();
    assert!(ep.client.credential().is_none());
    assert!(ep.events.contains(&ClientEvent::CredentialRemoved));
    let inst = s.installation("t1", &id);
    assert_eq!(
        (inst["offboarded"].as_bool(), inst["health"].as_str()),
        (Some(true), Some("Not onboarded"))
    );
    assert_eq!(
        s.installations("t1")["coverage"],
        json!({"onboarded": 0, "total": 1, "percent": 0.0})
    );
}

#[test]
fn redeem_errors() {
    let s = Svc::start();
    s.setup("t1");
    let now = s.now();

    // replay: the very same signed request twice.
    let token = s.token_text("t1");
    let r = Raw::new("replay");
    let body = r.redeem_body(&token, now);
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", body.clone())
            .status,
        200
    );
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", body)
            .problem(401),
        "replay"
    );

    // stale_message: iat outside ±300 s.
    let mut r = Raw::new("stale");
    assert_eq!(
        r.redeem(&s.http, &token, now - 400).problem(401),
        "stale_message"
    );
    assert_eq!(
        r.redeem(&s.http, &token, now + 400).problem(401),
        "stale_message"
    );

    // bad_signature: header and claims of one request, signature of another key.
    let r = Raw::new("badsig");
    let good = String::from_utf8(r.redeem_body(&token, now)).unwrap();
    let claims: RequestClaims = jws::parse(&good, redeem::REQUEST_TYP)
        .unwrap()
        .claims()
        .unwrap();
    let other = jws::sign(
        redeem::REQUEST_TYP,
        &claims,
        &SigningKey::generate(&SystemRandom).unwrap(),
        true,
    )
    .unwrap();
    let forged = format!(
        "{}.{}",
        good.rsplit_once('.').unwrap().0,
        other.rsplit_once('.').unwrap().1
    );
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", forged.into_bytes())
            .problem(401),
        "bad_signature"
    );
    // A token signed by another service key.
    let mut tampered = token.rsplit_once('.').unwrap().0.to_owned();
    tampered.push_str(&format!(".{}", other.rsplit_once('.').unwrap().1));
    assert_eq!(
        Raw::new("badtok")
            .redeem(&s.http, &tampered, now)
            .problem(401),
        "bad_signature"
    );

    // token_revoked.
    let t = s.token("t1", json!({}));
    s.admin_ok(
        "DELETE",
        &format!("/admin/tokens/{}", t["jti"].as_str().unwrap()),
        None,
    );
    assert_eq!(
        Raw::new("rev")
            .redeem(&s.http, t["token"].as_str().unwrap(), now)
            .problem(401),
        "token_revoked"
    );

    // token_exhausted: max_uses 1; the same endpoint may retry, another may not.
    let t1 = s.token("t1", json!({"max_uses": 1}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut first = Raw::new("ex1");
    assert_eq!(first.redeem(&s.http, &t1, now).status, 200);
    let inst = first.installation_id.clone();
    assert_eq!(
        first.redeem(&s.http, &t1, now).status,
        200,
        "idempotent retry by the same endpoint"
    );
    assert_eq!(first.installation_id, inst);
    assert_eq!(
        Raw::new("ex2").redeem(&s.http, &t1, now).problem(403),
        "token_exhausted"
    );

    // possible_clone: same enrollment id, another key.
    let mut clone = Raw::new("ex1");
    clone.enrollment_id = first.enrollment_id.clone();
    assert_eq!(
        clone.redeem(&s.http, &token, now).problem(409),
        "possible_clone"
    );

    // token_expired (service clock moved past exp).
    let short = s.token("t1", json!({"lifetime_secs": 60}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(61);
    let now = s.now();
    assert_eq!(
        Raw::new("exp").redeem(&s.http, &short, now).problem(401),
        "token_expired"
    );

    // integration_disabled, then epoch_mismatch once it is back on.
    let before_off = s.token_text("t1");
    s.set_integration("t1", false);
    assert_eq!(
        Raw::new("off")
            .redeem(&s.http, &before_off, now)
            .problem(403),
        "integration_disabled"
    );
    s.set_integration("t1", true);
    assert_eq!(
        Raw::new("epoch")
            .redeem(&s.http, &before_off, now)
            .problem(401),
        "epoch_mismatch"
    );
    assert_eq!(
        Raw::new("new")
            .redeem(&s.http, &s.token_text("t1"), now)
            .status,
        200,
        "a new token works"
    );

    // wrong_region: a tenant of another region on this (eu) service.
    s.tenant("t-us", "us");
    s.admin_ok(
        "PUT",
        &format!("/admin/tenants/t-us/integrations/{PARTNER}"),
        Some(json!({"enabled": true})),
    );
    let us = s.token_text("t-us");
    assert_eq!(
        edrlink_core::token::inspect(&us).unwrap().claims.region,
        "us"
    );
    assert_eq!(
        Raw::new("us").redeem(&s.http, &us, now).problem(421),
        "wrong_region"
    );

    // Garbage and oversized bodies.
    assert_eq!(
        s.http
            .post("/v1/redeem", "application/jose", b"not a jws".to_vec())
            .problem(400),
        "malformed"
    );
    let r = s
        .http
        .post("/v1/redeem", "application/jose", vec![b'a'; 200 * 1024]);
    assert_eq!(r.problem(413), "too_large");
    let r = s.http.post("/v1/nothing", "application/jose", vec![]);
    assert_eq!(r.status, 404);
}

#[test]
fn handshake_decisions_open_blocked_revoked() {
    let s = Svc::start();
    s.setup("t1");
    let now = s.now();
    let mut r = Raw::enroll(&s.http, &s.token_text("t1"), "h", now);
    let d = r.handshake(&s.http, now);
    assert_eq!(d.decision, FlowState::Open);
    assert!(d.session_id.is_some() && d.policy.is_some());

    s.set_integration("t1", false);
    let d = r.handshake(&s.http, now);
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Blocked, Some(ErrorCode::IntegrationDisabled))
    );
    assert!(d.session_id.is_none());

    s.set_integration("t1", true);
    let d = r.handshake(&s.http, now);
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Revoked, Some(ErrorCode::EpochMismatch))
    );

    // A hello replayed, stale, or from an unknown installation.
    let body = r.hello_body(now);
    assert_eq!(
        s.http
            .post("/v1/handshake", "application/jose", body.clone())
            .status,
        200
    );
    assert_eq!(
        s.http
            .post("/v1/handshake", "application/jose", body)
            .problem(401),
        "replay"
    );
    assert_eq!(
        s.http
            .post(
                "/v1/handshake",
                "application/jose",
                r.hello_body(now - 1000)
            )
            .problem(401),
        "stale_message"
    );
    let mut ghost = Raw::new("ghost");
    ghost.installation_id = "inst-ghost".into();
    assert_eq!(
        s.http
            .post("/v1/handshake", "application/jose", ghost.hello_body(now))
            .problem(401),
        "unknown_installation"
    );
    let mut imposter = Raw::new("imp");
    imposter.installation_id = r.installation_id.clone();
    assert_eq!(
        s.http
            .post(
                "/v1/handshake",
                "application/jose",
                imposter.hello_body(now)
            )
            .problem(401),
        "unknown_key"
    );
    let (h1, h2) = (
        String::from_utf8(r.hello_body(now)).unwrap(),
        String::from_utf8(r.hello_body(now)).unwrap(),
    );
    let forged = format!(
        "{}.{}",
        h1.rsplit_once('.').unwrap().0,
        h2.rsplit_once('.').unwrap().1
    );
    assert_eq!(
        s.http
            .post("/v1/handshake", "application/jose", forged.into_bytes())
            .problem(401),
        "bad_signature"
    );

    // Offboarded installation: revoked with reason offboarded.
    let mut ep = Endpoint::new(&s, "off");
    ep.enroll(&s.token_text("t1"));
    ep.pump();
    let id = ep.installation_id();
    let cred = ep.client.credential().unwrap().clone();
    ep.client.offboard("bye").unwrap();
    ep.pump();
    let mut raw = Raw::new("off");
    raw.key = cred.signing_key().unwrap().clone();
    raw.installation_id = id;
    let d = raw.handshake(&s.http, s.now());
    assert_eq!(
        (d.decision, d.reason),
        (FlowState::Revoked, Some(ErrorCode::Offboarded))
    );
}

#[test]
fn ingest_duplicates_gaps_regression_and_flow_errors() {
    let s = Svc::start();
    s.setup("t1");
    let now = s.now();
    let mut r = Raw::enroll(&s.http, &s.token_text("t1"), "i", now);

    let b1 = r.batch(1, "batch-1", generic(now, 10), now);
    let ack = r.ingest(&s.http, &b1);
    assert_eq!(ack.status, 200, "{}", ack.text());
    assert_eq!(
        ack.json(),
        json!({"status": "accepted", "batch_id": "batch-1", "seq": 1, "events": 10, "gap": 0})
    );
    // Duplicate: acknowledged as such, stored once.
    let dup = r.ingest(&s.http, &b1);
    assert_eq!(
        dup.json(),
        json!({"status": "duplicate", "batch_id": "batch-1", "seq": 1, "events": 0, "gap": 0})
    );
    assert_eq!(s.stats("t1"), (10, 1));

    // Gap: seq 4 after 1 → 2 missing, visible in the portal.
    let ack = r
        .ingest(&s.http, &r.batch(4, "batch-4", generic(now, 5), now))
        .json();
    assert_eq!(
        (ack["gap"].as_u64(), ack["status"].as_str()),
        (Some(2), Some("accepted"))
    );
    let inst = s.installation("t1", &r.installation_id);
    assert_eq!(
        (inst["last_seq"].as_u64(), inst["missing_seq"].as_u64()),
        (Some(4), Some(2))
    );

    // Regression: a new batch id with an old sequence.
    let reg = r.ingest(&s.http, &r.batch(3, "batch-3", generic(now, 1), now));
    assert_eq!(reg.problem(409), "sequence_regression");
    assert_eq!(reg.json()["expected_seq"], 5);
    assert_eq!(s.stats("t1"), (15, 2));

    // bad_signature: a valid envelope's signature over another payload.
    let a: Value = serde_json::from_slice(
        &telemetry::seal_batch(&r.batch(5, "b5", generic(now, 1), now), &r.key, false).unwrap(),
    )
    .unwrap();
    let mut b: Value = serde_json::from_slice(
        &telemetry::seal_batch(&r.batch(5, "b5x", generic(now, 2), now), &r.key, false).unwrap(),
    )
    .unwrap();
    b["signatures"] = a["signatures"].clone();
    let resp = s.http.post(
        "/v1/ingest",
        dsse::ENVELOPE_MEDIA_TYPE,
        serde_json::to_vec(&b).unwrap(),
    );
    assert_eq!(resp.problem(401), "bad_signature");
    // unknown key.
    let stranger = telemetry::seal_batch(
        &r.batch(5, "b5y", vec![], now),
        &SigningKey::generate(&SystemRandom).unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(
        s.http
            .post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, stranger)
            .problem(401),
        "unknown_key"
    );

    // Over 5 MiB: refused at the transport with batch_too_large.
    let huge = vec![b' '; edrlink_core::dsse::MAX_ENVELOPE_BYTES + 128 * 1024];
    assert_eq!(
        s.http
            .post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, huge)
            .problem(413),
        "batch_too_large"
    );
    // Over the policy's byte limit (1 MiB payload by default).
    let big = vec![Event::Generic(edrlink_core::telemetry::GenericEvent {
        time: edrlink_core::encoding::rfc3339(now),
        name: "blob".into(),
        data: json!("x".repeat(1100 * 1024)),
    })];
    assert_eq!(
        r.ingest(&s.http, &r.batch(5, "b5z", big, now)).problem(413),
        "batch_too_large"
    );

    // session_expired: no session, or the session's lifetime is over.
    let mut nosession = r.batch(5, "b5n", vec![], now);
    nosession.session_id = None;
    assert_eq!(
        r.ingest(&s.http, &nosession).problem(401),
        "session_expired"
    );
    s.clock
        .advance(edrlink_core::handshake::SESSION_LIFETIME + 5);
    let now = s.now();
    assert_eq!(
        r.ingest(&s.http, &r.batch(5, "b5e", generic(now, 1), now))
            .problem(401),
        "session_expired"
    );
    r.handshake(&s.http, now);
    assert_eq!(
        r.ingest(&s.http, &r.batch(5, "b5", generic(now, 1), now))
            .status,
        200
    );

    // flow_blocked while off (data kept by the endpoint); after on again the
    // credential is of the old epoch: epoch_mismatch (needs a new token).
    s.set_integration("t1", false);
    let b6 = r.batch(6, "b6", generic(now, 1), now);
    assert_eq!(r.ingest(&s.http, &b6).problem(403), "flow_blocked");
    s.set_integration("t1", true);
    assert_eq!(r.ingest(&s.http, &b6).problem(401), "epoch_mismatch");
    assert_eq!(s.stats("t1"), (16, 3));
}

#[test]
fn policy_event_limit_and_rate_limit() {
    let s = Svc::start_with(|st| {
        st.policy.max_batch_events = 5;
        st.rate_limit = RateLimit {
            burst: 3.0,
            per_second: 0.01,
        };
    });
    s.setup("t1");
    let now = s.now();
    let r = Raw::enroll(&s.http, &s.token_text("t1"), "rl", now);
    assert_eq!(
        r.ingest(&s.http, &r.batch(1, "big", generic(now, 6), now))
            .problem(413),
        "batch_too_large"
    );
    for i in 1..=3 {
        assert_eq!(
            r.ingest(&s.http, &r.batch(i, &format!("b{i}"), generic(now, 5), now))
                .status,
            200
        );
    }
    let limited = r.ingest(&s.http, &r.batch(4, "b4", generic(now, 1), now));
    assert_eq!(limited.problem(429), "rate_limited");
    let wait: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(wait >= 1);
    assert_eq!(limited.json()["retry_after"], wait);
    assert_eq!(s.stats("t1"), (15, 3));
}

#[test]
fn offboarding_package_is_accepted_by_the_named_endpoint_only() {
    let s = Svc::start();
    s.setup("t1");
    let token = s.token_text("t1");
    let mut a = Endpoint::new(&s, "a");
    a.enroll(&token);
    let mut b = Endpoint::new(&s, "b");
    b.enroll(&token);
    let pkg = s.admin_ok(
        "POST",
        &format!("/admin/tenants/t1/integrations/{PARTNER}/offboarding-package"),
        Some(json!({"installation_ids": [a.installation_id()]})),
    );
    let pkg = pkg["package"].as_str().unwrap();
    let err = b
        .client
        .apply_offboarding_package(pkg, s.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PackageInvalid);
    assert!(b.client.credential().is_some());
    a.client.apply_offboarding_package(pkg, s.now()).unwrap();
    assert!(a.client.credential().is_none());
    // Valid 30 days, not 31.
    let all = s.admin_ok(
        "POST",
        &format!("/admin/tenants/t1/integrations/{PARTNER}/offboarding-package"),
        Some(json!({})),
    )["package"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        b.client
            .apply_offboarding_package(&all, s.now() + 31 * 86_400)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    b.client
        .apply_offboarding_package(&all, s.now() + 29 * 86_400)
        .unwrap();
}

#[test]
fn envelopes_up_to_5_mib_pass_the_transport_in_memory_db() {
    let s = Svc::start_with(|st| {
        st.db_path = None; // private in-memory database
        st.policy.max_batch_bytes = 2_600_000;
    });
    s.setup("t1");
    let now = s.now();
    let r = Raw::enroll(&s.http, &s.token_text("t1"), "big", now);
    let blob = |n: usize| {
        vec![Event::Generic(telemetry::GenericEvent {
            time: edrlink_core::encoding::rfc3339(now),
            name: "blob".into(),
            data: json!("y".repeat(n)),
        })]
    };
    // ~2.5 MB payload → ~3.3 MB envelope: under 5 MiB, over axum's 2 MB default body limit.
    let b = r.batch(1, "big-1", blob(2_500_000), now);
    let env = telemetry::seal_batch(&b, &r.key, false).unwrap();
    assert!(
        env.len() > 3_000_000 && env.len() < dsse::MAX_ENVELOPE_BYTES,
        "{}",
        env.len()
    );
    let ack = s.http.post("/v1/ingest", dsse::ENVELOPE_MEDIA_TYPE, env);
    assert_eq!(ack.status, 200, "{}", ack.text());
    assert_eq!(s.stats("t1"), (1, 1));
    // Over the policy's bytes but under 5 MiB: the role refuses it.
    assert_eq!(
        r.ingest(&s.http, &r.batch(2, "big-2", blob(2_700_000), now))
            .problem(413),
        "batch_too_large"
    );
}
