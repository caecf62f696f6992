//! Per-installation revocation and the trust rules around it, attacked over
//! real HTTP: a copy of a revoked or offboarded host's key, an exhausted
//! token, an old-epoch rotation, an expired credential, a hello flood, a
//! redeem flood with bad tokens, admin-key guessing, and database details
//! leaking to unauthenticated callers.

mod common;
use common::*;
use edrlink_core::credential::CREDENTIAL_LIFETIME;
use edrlink_core::encoding::b64url;
use edrlink_core::handshake::{self, FlowState, Hello, SensorState};
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::redeem::{self, RequestClaims};
use edrlink_core::{jws, rotate, ErrorCode};
use serde_json::json;

const T: &str = "t1";

fn revoke(s: &Svc, id: &str) {
    s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/installations/{id}/revoke"),
        None,
    );
}

fn reinstate(s: &Svc, id: &str) {
    s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/installations/{id}/reinstate"),
        None,
    );
}

fn rotate_body(r: &Raw, new_key: &SigningKey, now: i64) -> Vec<u8> {
    let n = nonce();
    let c = rotate::RotateClaims {
        installation_id: r.installation_id.clone(),
        nonce: n.clone(),
        iat: now,
        new_jwk: new_key.verifying_key().to_jwk(),
        new_key_proof: b64url(&new_key.sign(&rotate::proof_input(&r.installation_id, &n))),
    };
    jws::sign(rotate::REQUEST_TYP, &c, &r.key, false)
        .unwrap()
        .into_bytes()
}

fn rotate(s: &Svc, r: &Raw) -> Resp {
    let new_key = SigningKey::generate(&SystemRandom).unwrap();
    s.http.post(
        "/v1/rotate",
        "application/jose",
        rotate_body(r, &new_key, s.now()),
    )
}

fn send(s: &Svc, r: &Raw, seq: u64) -> Resp {
    let now = s.now();
    r.ingest(&s.http, &r.batch(seq, &nonce(), generic(now, 2), now))
}

/// Redeem body with a chosen nonce (to see whether a refused redeem stored it).
fn redeem_body_with_nonce(r: &Raw, token: &str, nonce: &str, iat: i64) -> Vec<u8> {
    let c = RequestClaims {
        token: token.into(),
        enrollment_id: r.enrollment_id.clone(),
        nonce: nonce.into(),
        iat,
        device: r.device.clone(),
    };
    jws::sign(redeem::REQUEST_TYP, &c, &r.key, true)
        .unwrap()
        .into_bytes()
}

#[test]
fn revoked_host_key_copy_is_refused_at_once_on_every_route_and_others_keep_sending() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    // The victim host; its key was copied by the attacker, who holds a
    // session opened before the revoke.
    let stolen = Raw::enroll(&s.http, &tok, "victim", s.now());
    let other = Raw::enroll(&s.http, &tok, "other", s.now());
    assert_eq!(send(&s, &stolen, 1).status, 200);
    revoke(&s, &stolen.installation_id);

    // Ingest with the session opened before the revoke: refused.
    assert_eq!(send(&s, &stolen, 2).problem(401), "revoked");
    // Hello: decision revoked, reason revoked, no session.
    let mut again = Raw {
        key: stolen.key.clone(),
        enrollment_id: stolen.enrollment_id.clone(),
        device: stolen.device.clone(),
        installation_id: stolen.installation_id.clone(),
        session_id: None,
    };
    let d = again.handshake(&s.http, s.now());
    assert_eq!(
        (d.decision, d.reason, d.session_id),
        (FlowState::Revoked, Some(ErrorCode::Revoked), None)
    );
    // Rotation (which would renew the credential): refused.
    assert_eq!(rotate(&s, &stolen).problem(401), "revoked");
    // Redeeming a fresh valid token with the stolen key: refused.
    let fresh = s.token_text(T);
    assert_eq!(
        again.redeem(&s.http, &fresh, s.now()).problem(401),
        "revoked"
    );
    // The other endpoint keeps sending.
    assert_eq!(send(&s, &other, 1).status, 200);

    // The portal shows it distinctly.
    let i = s.installation(T, &stolen.installation_id);
    assert_eq!(
        (i["state"].as_str(), i["health"].as_str()),
        (Some("revoked"), Some("Revoked"))
    );
    assert_eq!(i["revoked"], true);
    let o = s.installation(T, &other.installation_id);
    assert_eq!(o["state"], "active");
    assert_eq!(s.installations(T)["coverage"]["onboarded"], 1);

    // Reinstated by the admin, the installation resumes (the credential is
    // still in its epoch and lifetime).
    reinstate(&s, &stolen.installation_id);
    let d = again.handshake(&s.http, s.now());
    assert_eq!(d.decision, FlowState::Open);
    assert_eq!(send(&s, &again, 2).status, 200);
    assert_eq!(
        s.installation(T, &stolen.installation_id)["state"],
        "active"
    );
}

#[test]
fn bulk_revoke_validates_its_list_and_changes_nothing_on_error() {
    let s = Svc::start();
    s.setup(T);
    s.setup("t2");
    let tok = s.token_text(T);
    let a = Raw::enroll(&s.http, &tok, "a", s.now());
    let b = Raw::enroll(&s.http, &tok, "b", s.now());
    let c = Raw::enroll(&s.http, &tok, "c", s.now());
    let path = format!("/admin/tenants/{T}/installations/revoke");
    let r = s.admin("POST", &path, Some(json!({"installation_ids": []})));
    assert_eq!(r.problem(400), "invalid_argument");
    let many: Vec<String> = (0..1001).map(|i| format!("inst-{i}")).collect();
    let r = s.admin("POST", &path, Some(json!({"installation_ids": many})));
    assert_eq!(r.problem(400), "invalid_argument");
    let r = s.admin("POST", &path, Some(json!({})));
    assert_eq!(r.problem(400), "malformed");
    // One unknown id: 404, and the known one is not revoked either.
    let r = s.admin(
        "POST",
        &path,
        Some(json!({"installation_ids": [a.installation_id, "inst-nope"]})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // An id that cannot be an installation id (found by schemathesis) is
    // unknown too: 404, nothing revoked.
    let r = s.admin(
        "POST",
        &path,
        Some(json!({"installation_ids": [a.installation_id, ""]})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(send(&s, &a, 1).status, 200);
    // Another tenant's admin path cannot name these installations.
    let r = s.admin(
        "POST",
        &format!(
            "/admin/tenants/t2/installations/{}/revoke",
            a.installation_id
        ),
        None,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // A list revokes exactly the named ones.
    s.admin_ok(
        "POST",
        &path,
        Some(json!({"installation_ids": [a.installation_id, b.installation_id]})),
    );
    assert_eq!(send(&s, &a, 2).problem(401), "revoked");
    assert_eq!(send(&s, &b, 1).problem(401), "revoked");
    assert_eq!(send(&s, &c, 1).status, 200);
}

#[test]
fn offboarding_package_cuts_off_the_named_host_on_the_service_at_once() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let gone = Raw::enroll(&s.http, &tok, "gone", s.now());
    let stays = Raw::enroll(&s.http, &tok, "stays", s.now());
    let v = s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/integrations/{PARTNER}/offboarding-package"),
        Some(json!({"installation_ids": [gone.installation_id]})),
    );
    assert_eq!(
        (v["epoch"].as_u64(), v["offboarded"].as_u64()),
        (Some(1), Some(1))
    );
    let claims: edrlink_core::offboard::PackageClaims = jws::parse(
        v["package"].as_str().unwrap(),
        edrlink_core::offboard::PACKAGE_TYP,
    )
    .unwrap()
    .claims()
    .unwrap();
    assert_eq!(claims.epoch, 1);
    // The endpoint never applied the package: a copy of its key, with the
    // session opened before, is refused anyway.
    assert_eq!(send(&s, &gone, 1).problem(401), "offboarded");
    let mut copy = Raw {
        key: gone.key.clone(),
        enrollment_id: gone.enrollment_id.clone(),
        device: gone.device.clone(),
        installation_id: gone.installation_id.clone(),
        session_id: None,
    };
    let d = copy.handshake(&s.http, s.now());
    assert_eq!(
        (d.decision, d.reason, d.session_id),
        (FlowState::Revoked, Some(ErrorCode::Offboarded), None)
    );
    // Resuming with a fresh token needs the admin to reinstate it.
    let fresh = s.token_text(T);
    assert_eq!(
        copy.redeem(&s.http, &fresh, s.now()).problem(401),
        "offboarded"
    );
    assert_eq!(send(&s, &stays, 1).status, 200);
    let i = s.installation(T, &gone.installation_id);
    assert_eq!(
        (i["state"].as_str(), i["offboarded"].as_bool()),
        (Some("offboarded"), Some(true))
    );
    reinstate(&s, &gone.installation_id);
    assert_eq!(copy.redeem(&s.http, &fresh, s.now()).status, 200);

    // A whole-integration package offboards every installation of it.
    let v = s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/integrations/{PARTNER}/offboarding-package"),
        Some(json!({})),
    );
    assert_eq!(v["offboarded"], 2);
    assert_eq!(send(&s, &stays, 2).problem(401), "offboarded");
}

#[test]
fn exhausted_token_cannot_resume_a_known_installation() {
    let s = Svc::start();
    s.setup(T);
    let first = s.token_text(T);
    let mut known = Raw::enroll(&s.http, &first, "known", s.now());
    // A one-use token, spent by another endpoint.
    let one = s.token(T, json!({"max_uses": 1}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut spender = Raw::new("spender");
    assert_eq!(spender.redeem(&s.http, &one, s.now()).status, 200);
    // A retry of that same redemption is not counted twice.
    assert_eq!(spender.redeem(&s.http, &one, s.now()).status, 200);
    // The known installation resuming with the spent token: refused.
    assert_eq!(
        known.redeem(&s.http, &one, s.now()).problem(403),
        "token_exhausted"
    );
    // Resuming counts one use: a two-use token lets the known installation
    // resume and one more endpoint enroll, then nobody.
    let two = s.token(T, json!({"max_uses": 2}))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(known.redeem(&s.http, &two, s.now()).status, 200);
    assert_eq!(Raw::new("n1").redeem(&s.http, &two, s.now()).status, 200);
    assert_eq!(
        Raw::new("n2").redeem(&s.http, &two, s.now()).problem(403),
        "token_exhausted"
    );
}

#[test]
fn old_epoch_credential_cannot_rotate_while_the_integration_is_off() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let r = Raw::enroll(&s.http, &tok, "old", s.now());
    // In good standing, rotation works.
    let new_key = SigningKey::generate(&SystemRandom).unwrap();
    let resp = s.http.post(
        "/v1/rotate",
        "application/jose",
        rotate_body(&r, &new_key, s.now()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = Raw { key: new_key, ..r };
    // Toggled off: the epoch moves on and this credential is of the old one.
    s.set_integration(T, false);
    assert_eq!(rotate(&s, &r).problem(401), "epoch_mismatch");
    // Still refused once the integration is back on.
    s.set_integration(T, true);
    assert_eq!(rotate(&s, &r).problem(401), "epoch_mismatch");
}

#[test]
fn expired_credential_is_refused_at_hello_ingest_and_rotation() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let mut r = Raw::enroll(&s.http, &tok, "exp", s.now());
    assert_eq!(send(&s, &r, 1).status, 200);
    s.clock.advance(CREDENTIAL_LIFETIME + 1);
    assert_eq!(send(&s, &r, 2).problem(401), "credential_expired");
    let d = r.handshake(&s.http, s.now());
    assert_eq!(
        (d.decision, d.reason, d.session_id),
        (FlowState::Revoked, Some(ErrorCode::CredentialExpired), None)
    );
    assert_eq!(rotate(&s, &r).problem(401), "credential_expired");
    let i = s.installation(T, &r.installation_id);
    assert_eq!(i["state"], "expired");
    // A new token renews it (same installation).
    let tok = s.token_text(T);
    let before = r.installation_id.clone();
    assert_eq!(r.redeem(&s.http, &tok, s.now()).status, 200);
    assert_eq!(r.installation_id, before);
    assert_eq!(r.handshake(&s.http, s.now()).decision, FlowState::Open);
    assert_eq!(send(&s, &r, 2).status, 200);
}

#[test]
fn expired_credential_client_reports_the_reason_and_keeps_its_queue() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let mut e = Endpoint::new(&s, "client");
    e.enroll(&tok);
    e.send(generic(s.now(), 1));
    s.clock.advance(CREDENTIAL_LIFETIME + 1);
    let now = s.now();
    for ev in generic(now, 3) {
        e.client.submit(ev, now).unwrap();
    }
    e.client.flush();
    e.pump();
    let h = e.client.health(s.now());
    assert_eq!(h.flow, Some(FlowState::Revoked));
    assert!(h.needs_new_token);
    assert!(
        h.last_error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::CredentialExpired),
        "{h:?}"
    );
    assert!(h.queued_events >= 3, "{h:?}");
}

#[test]
fn a_redeem_refused_for_its_token_stores_nothing_not_even_its_nonce() {
    let s = Svc::start();
    s.setup(T);
    let v = s.token(T, json!({}));
    let revoked_tok = v["token"].as_str().unwrap().to_owned();
    s.admin_ok(
        "DELETE",
        &format!("/admin/tokens/{}", v["jti"].as_str().unwrap()),
        None,
    );
    let good = s.token_text(T);
    let r = Raw::new("flood");
    for (bad, code) in [
        (revoked_tok.as_str(), "token_revoked"),
        ("not-a-token", "malformed"),
    ] {
        let n = nonce();
        let resp = s.http.post(
            "/v1/redeem",
            "application/jose",
            redeem_body_with_nonce(&r, bad, &n, s.now()),
        );
        assert_eq!(resp.status / 100, 4, "{}", resp.text());
        assert_eq!(resp.json()["code"], code);
        // Had the refused request stored its nonce, this would be a replay.
        let ok = s.http.post(
            "/v1/redeem",
            "application/jose",
            redeem_body_with_nonce(&r, &good, &n, s.now()),
        );
        assert_eq!(ok.status, 200, "{}", ok.text());
        // And the nonce is now spent.
        let replay = s.http.post(
            "/v1/redeem",
            "application/jose",
            redeem_body_with_nonce(&r, &good, &n, s.now()),
        );
        assert_eq!(replay.problem(401), "replay");
    }
    assert!(
        s.installations(T)["installations"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );
}

#[test]
fn at_most_four_live_sessions_per_installation() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let mut r = Raw::enroll(&s.http, &tok, "flood", s.now());
    let mut sessions = vec![r.session_id.clone().unwrap()];
    for _ in 0..5 {
        r.handshake(&s.http, s.now());
        sessions.push(r.session_id.clone().unwrap());
    }
    let mut seq = 0;
    for (n, sid) in sessions.iter().enumerate() {
        r.session_id = Some(sid.clone());
        seq += 1;
        let resp = send(&s, &r, seq);
        if n < 2 {
            assert_eq!(resp.problem(401), "session_expired", "session {n}");
            seq -= 1;
        } else {
            assert_eq!(resp.status, 200, "session {n}: {}", resp.text());
        }
    }
}

#[test]
fn sequence_and_drop_counts_at_the_u64_limit_do_not_overflow() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let r = Raw::enroll(&s.http, &tok, "max", s.now());
    assert_eq!(send(&s, &r, u64::MAX).status, 200);
    let resp = send(&s, &r, 5);
    assert_eq!(resp.problem(409), "sequence_regression");
    assert!(resp.json()["expected_seq"].is_null(), "{}", resp.text());
    // Hello reporting drops that sum past u64::MAX.
    let h = Hello {
        installation_id: r.installation_id.clone(),
        nonce: nonce(),
        iat: s.now(),
        sensor: SensorState::Running,
        last_seq: 0,
        policy_version: 1,
        clock_offset: 0,
        queued_events: 0,
        drops: [("a".to_owned(), u64::MAX), ("b".to_owned(), u64::MAX)]
            .into_iter()
            .collect(),
    };
    let body = jws::sign(handshake::HELLO_TYP, &h, &r.key, false).unwrap();
    let resp = s
        .http
        .post("/v1/handshake", "application/jose", body.into_bytes());
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        s.installation(T, &r.installation_id)["reported_drops"].as_u64(),
        Some(u64::MAX)
    );
}

#[test]
fn replayed_old_epoch_offboarding_package_is_refused_after_reenrollment() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let mut e = Endpoint::new(&s, "replay");
    e.enroll(&tok);
    let id = e.installation_id();
    // The admin offboards the whole integration at epoch 1; an attacker keeps
    // a copy of the package (the endpoint never applied it).
    let old = s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/integrations/{PARTNER}/offboarding-package"),
        Some(json!({})),
    )["package"]
        .as_str()
        .unwrap()
        .to_owned();
    // Later: integration toggled (epoch 2), the host reinstated and
    // re-enrolled with a new token.
    s.set_integration(T, false);
    s.set_integration(T, true);
    reinstate(&s, &id);
    let tok = s.token_text(T);
    e.client.redeem(&tok).unwrap();
    e.pump();
    assert_eq!(e.client.credential().unwrap().epoch, 2);
    assert_eq!(e.installation_id(), id);
    // The replayed epoch-1 package is refused and the credential kept.
    let err = e
        .client
        .apply_offboarding_package(&old, s.now())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PackageInvalid);
    assert!(e.client.credential().is_some());
    e.send(generic(s.now(), 2));
    assert_eq!(e.client.health(s.now()).queued_events, 0);
    // A package of the current epoch is accepted.
    let cur = s.admin_ok(
        "POST",
        &format!("/admin/tenants/{T}/integrations/{PARTNER}/offboarding-package"),
        Some(json!({"installation_ids": [id]})),
    )["package"]
        .as_str()
        .unwrap()
        .to_owned();
    e.client.apply_offboarding_package(&cur, s.now()).unwrap();
    assert!(e.client.credential().is_none());
}

#[test]
fn partner_client_answers_every_revocation_reason_by_needing_a_new_token() {
    let s = Svc::start();
    s.setup(T);
    let tok = s.token_text(T);
    let mut e = Endpoint::new(&s, "c");
    e.enroll(&tok);
    e.send(generic(s.now(), 1));
    revoke(&s, &e.installation_id());
    let now = s.now();
    for ev in generic(now, 2) {
        e.client.submit(ev, now).unwrap();
    }
    e.client.flush();
    e.pump();
    let h = e.client.health(s.now());
    assert_eq!(h.flow, Some(FlowState::Revoked));
    assert!(h.needs_new_token);
    assert!(
        h.last_error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::Revoked),
        "{h:?}"
    );
    assert!(h.queued_events >= 2);
}
