//! The partner client (`PartnerClient`, sans-IO) driven against the service role
//! in-process: poll_request → ServiceRole::handle → handle_response.

mod common;

use common::*;
use edrlink_core::client::{
    ClientConfig, ClientEvent, PartnerClient, REENROLL_AFTER_FAILURES, REENROLL_AFTER_SECONDS,
};
use edrlink_core::encoding::{rfc3339, UnixSeconds};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::HttpResponse;
use edrlink_core::policy::Policy;
use edrlink_core::telemetry::{Event, GenericEvent};
use edrlink_core::{eicar, offboard, ErrorCode};
use std::collections::BTreeMap;

fn client(label: &str) -> PartnerClient {
    PartnerClient::new(
        ClientConfig::new(device("device-1")),
        CounterRandom::boxed(label),
    )
}

fn ev(n: u64, now: UnixSeconds) -> Event {
    Event::Generic(GenericEvent {
        time: rfc3339(now),
        name: "file_write".into(),
        data: serde_json::json!({"n": n}),
    })
}

fn events(c: &mut PartnerClient) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// How many times each generic event number was stored for an installation.
fn stored_numbers(w: &World, inst: &str) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for e in w.store.events_of(inst) {
        if let Event::Generic(g) = e {
            *m.entry(g.data["n"].as_u64().unwrap()).or_insert(0) += 1;
        }
    }
    m
}

fn enrolled(w: &mut World, c: &mut PartnerClient, now: UnixSeconds) -> String {
    let tok = w.token(3600, 10, now);
    c.redeem(&tok).unwrap();
    w.drive(c, now, 10);
    assert_eq!(c.flow(), Some(FlowState::Open), "{:?}", c.health(now));
    c.credential().unwrap().installation_id.clone()
}

#[test]
fn full_story_toggle_off_and_back_loses_nothing() {
    let mut w = World::new();
    let mut c = client("story");
    let mut now = NOW;

    // 1. Redeem + handshake.
    let tok = w.token(3600, 10, now);
    c.redeem(&tok).unwrap();
    let resps = w.drive(&mut c, now, 10);
    assert!(resps.iter().all(|r| r.status == 200));
    let inst = c.credential().unwrap().installation_id.clone();
    let evs = events(&mut c);
    assert!(evs.contains(&ClientEvent::CredentialChanged), "{evs:?}");
    assert!(
        evs.contains(&ClientEvent::FlowChanged(FlowState::Open)),
        "{evs:?}"
    );
    assert!(c.health(now).healthy);

    // 2. Telemetry and the EICAR test detection.
    for n in 0..5 {
        c.submit(ev(n, now), now).unwrap();
    }
    c.submit(eicar::test_detection(now, "/tmp/eicar.com"), now)
        .unwrap();
    c.flush();
    w.drive(&mut c, now, 10);
    assert_eq!(stored_numbers(&w, &inst).len(), 5);
    assert_eq!(w.store.alerts.len(), 1);
    assert_eq!(w.store.alerts[0].0, inst);
    assert_eq!(w.store.alerts[0].1.title, eicar::EICAR_ALERT_TITLE);
    assert!(c.is_idle(), "{:?}", c.health(now));

    // 3. The admin turns the integration off (epoch + 1): the client is blocked
    //    and keeps everything it is given meanwhile.
    w.set_enabled(false);
    assert_eq!(w.epoch(), 2);
    now += 10;
    for n in 5..25 {
        c.submit(ev(n, now), now).unwrap();
    }
    c.flush();
    w.drive(&mut c, now, 10);
    assert_eq!(c.flow(), Some(FlowState::Blocked));
    let h = c.health(now);
    assert_eq!(h.queued_events, 20, "nothing lost while blocked: {h:?}");
    assert!(!h.healthy && !h.needs_new_token);
    assert_eq!(stored_numbers(&w, &inst).len(), 5);
    // While blocked it re-checks slowly, not at every poll.
    assert!(c.poll_request(now + 1).is_none());
    let recheck = c.poll_timeout(now + 1).unwrap();
    assert!(recheck >= now + 60, "re-check is slow: {recheck}");
    now = recheck;
    let r = w.drive(&mut c, now, 10);
    assert!(!r.is_empty());
    assert_eq!(c.flow(), Some(FlowState::Blocked));

    // 4. Turned back on: the old credential's epoch is gone → revoked, needs a token.
    w.set_enabled(true);
    now = c.poll_timeout(now).unwrap();
    w.drive(&mut c, now, 10);
    assert_eq!(c.flow(), Some(FlowState::Revoked));
    assert!(c.health(now).needs_new_token);
    assert!(
        c.poll_request(now + 10_000).is_none(),
        "a revoked client sends nothing"
    );

    // 5. A new token: same installation resumes, the queue is delivered exactly once.
    now += 60;
    let tok2 = w.token(3600, 10, now);
    c.redeem(&tok2).unwrap();
    c.flush();
    for _ in 0..5 {
        w.drive(&mut c, now, 20);
        now += 6;
    }
    assert_eq!(
        c.credential().unwrap().installation_id,
        inst,
        "same installation"
    );
    assert_eq!(c.credential().unwrap().epoch, 2);
    assert_eq!(w.store.installations.len(), 1);
    assert_eq!(c.flow(), Some(FlowState::Open));
    let stored = stored_numbers(&w, &inst);
    assert_eq!(stored.len(), 25, "{stored:?}");
    assert!(stored.values().all(|&k| k == 1), "exactly once: {stored:?}");
    assert_eq!(w.store.alerts.len(), 1);
    let h = c.health(now);
    assert_eq!(h.queued_events, 0, "{h:?}");
    assert!(h.healthy, "{h:?}");
    let inst_rec = &w.store.installations[&inst];
    assert_eq!(inst_rec.missing_seq, 0, "no gaps");
}

#[test]
fn redemption_refused_reports_failure_and_keeps_nothing_pending() {
    let mut w = World::new();
    let mut c = client("refused");
    let tok = w.token(3600, 10, NOW);
    w.set_enabled(false);
    c.redeem(&tok).unwrap();
    w.drive(&mut c, NOW, 5);
    assert!(c.credential().is_none());
    assert!(events(&mut c).contains(&ClientEvent::Failed(ErrorCode::IntegrationDisabled)));
    assert!(c.poll_request(NOW + 1000).is_none());
    assert!(c.health(NOW).last_error.unwrap().code.as_str() == "integration_disabled");
}

#[test]
fn repeated_401s_lead_to_needs_reenroll_without_deleting_the_credential() {
    let mut w = World::new();
    let mut c = client("401");
    let inst = enrolled(&mut w, &mut c, NOW);
    // The service no longer knows the key (e.g. its state was restored from backup).
    w.store.installations.get_mut(&inst).unwrap().public_key =
        Some(key("someone-else").verifying_key());
    c.handshake_now();
    let mut now = NOW;
    let mut failures = 0;
    for _ in 0..200 {
        let Some(req) = c.poll_request(now) else {
            now = c.poll_timeout(now).unwrap_or(now + 1).max(now + 1);
            if c.health(now).needs_new_token {
                break;
            }
            continue;
        };
        let resp = w.handle(&req, now);
        assert_eq!(resp.status, 401);
        failures += 1;
        c.handle_response(req.id, &resp, now);
        if c.health(now).needs_new_token {
            break;
        }
    }
    let h = c.health(now);
    assert!(h.needs_new_token, "{h:?}");
    assert!(failures >= REENROLL_AFTER_FAILURES as usize);
    assert!(
        now - NOW >= REENROLL_AFTER_SECONDS,
        "spread over at least 30 min: {}",
        now - NOW
    );
    assert!(h.last_error.unwrap().code.as_str() == "needs_reenroll");
    assert!(
        c.credential().is_some(),
        "a 401 never deletes the credential"
    );
}

#[test]
fn transport_errors_and_retry_after_back_off() {
    let mut w = World::new();
    let mut c = client("backoff");
    enrolled(&mut w, &mut c, NOW);
    c.submit(ev(1, NOW), NOW).unwrap();
    c.flush();
    let inst = c.credential().unwrap().installation_id.clone();
    let req = c.poll_request(NOW).unwrap();
    c.handle_transport_error(req.id, "connection refused", NOW);
    let h = c.health(NOW);
    assert!(h.last_error.unwrap().code.as_str() == "transport");
    let next = h.next_attempt.unwrap();
    assert!(
        next > NOW && next <= NOW + 2,
        "first backoff is short: {next}"
    );
    assert!(c.poll_request(next - 1).is_none());
    // A 503 with Retry-After is honoured exactly.
    let req = c.poll_request(next).unwrap();
    let mut resp = HttpResponse::new(503, "text/plain", b"busy".to_vec());
    resp.headers.push(("retry-after".into(), "120".into()));
    c.handle_response(req.id, &resp, next);
    assert_eq!(c.health(next).next_attempt, Some(next + 120));
    assert!(c.poll_request(next + 119).is_none());
    let req = c.poll_request(next + 120).unwrap();
    let resp = w.handle(&req, next + 120);
    c.handle_response(req.id, &resp, next + 120);
    assert_eq!(stored_numbers(&w, &inst).get(&1), Some(&1));
    assert!(
        c.health(next + 120).next_attempt.is_none(),
        "success resets the backoff"
    );
}

#[test]
fn session_expiry_leads_to_a_new_handshake_before_sending() {
    let mut w = World::new();
    let mut c = client("session");
    let inst = enrolled(&mut w, &mut c, NOW);
    let sessions_before = w.store.sessions.len();
    let later = NOW + 3600;
    c.submit(ev(1, later), later).unwrap();
    c.flush();
    let req = c.poll_request(later).unwrap();
    assert!(
        req.url.ends_with("/v1/handshake"),
        "session about to expire: handshake first ({})",
        req.url
    );
    let resp = w.handle(&req, later);
    c.handle_response(req.id, &resp, later);
    w.drive(&mut c, later, 10);
    assert_eq!(w.store.sessions.len(), sessions_before + 1);
    assert_eq!(stored_numbers(&w, &inst).len(), 1);
}

#[test]
fn policy_rollback_from_the_service_is_refused_and_last_good_kept() {
    let mut w = World::new();
    let mut c = client("policy");
    enrolled(&mut w, &mut c, NOW);
    let mut cred =
        edrlink_core::credential::Credential::from_json(&c.credential().unwrap().to_json())
            .unwrap();
    cred.policy = Policy {
        policy_version: 7,
        heartbeat_interval: 900,
        ..Policy::default()
    };
    c.set_credential(cred);
    w.drive(&mut c, NOW + 1, 5);
    let cred = c.credential().unwrap();
    assert_eq!(cred.policy.policy_version, 7);
    assert_eq!(cred.policy.heartbeat_interval, 900);
    assert!(c.health(NOW + 1).last_error.unwrap().code.as_str() == "policy_rollback");
    assert_eq!(
        c.flow(),
        Some(FlowState::Open),
        "a refused policy does not stop the flow"
    );
}

#[test]
fn client_offboarding_both_ways() {
    let mut w = World::new();
    let mut c = client("offboard");
    let inst = enrolled(&mut w, &mut c, NOW);
    events(&mut c);
    c.offboard("product uninstalled").unwrap();
    w.drive(&mut c, NOW + 1, 5);
    assert!(c.credential().is_none());
    assert!(events(&mut c).contains(&ClientEvent::CredentialRemoved));
    assert!(w.store.installations[&inst].offboarded);

    // Admin package: verified against the pinned service keys, then wiped.
    let mut c2 = PartnerClient::new(
        ClientConfig::new(device("device-2")),
        CounterRandom::boxed("offboard-2"),
    );
    let inst2 = enrolled(&mut w, &mut c2, NOW);
    let (other, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec!["inst-other".into()]),
        &key("service"),
        NOW,
        &CounterRandom::new("p1"),
    )
    .unwrap();
    assert_eq!(
        c2.apply_offboarding_package(&other, NOW)
            .unwrap_err()
            .code(),
        ErrorCode::PackageInvalid
    );
    assert!(c2.credential().is_some());
    let (pkg, _) = offboard::issue_package(
        TENANT,
        PARTNER,
        1,
        Some(vec![inst2]),
        &key("service"),
        NOW,
        &CounterRandom::new("p2"),
    )
    .unwrap();
    c2.apply_offboarding_package(&pkg, NOW).unwrap();
    assert!(c2.credential().is_none());
}

#[test]
fn client_rotates_at_two_thirds_of_the_lifetime() {
    let mut w = World::new();
    let mut c = client("rotate");
    let inst = enrolled(&mut w, &mut c, NOW);
    let old_kid = c.credential().unwrap().signing_key().unwrap().key_id();
    let at = c.credential().unwrap().rotate_after();
    assert_eq!(
        at,
        NOW + edrlink_core::credential::CREDENTIAL_LIFETIME * 2 / 3
    );
    events(&mut c);
    w.drive(&mut c, at - 10, 10);
    assert_eq!(
        c.credential().unwrap().signing_key().unwrap().key_id(),
        old_kid,
        "not before two thirds"
    );
    w.drive(&mut c, at, 10);
    let new_kid = c.credential().unwrap().signing_key().unwrap().key_id();
    assert_ne!(new_kid, old_kid);
    assert!(events(&mut c).contains(&ClientEvent::CredentialChanged));
    assert_eq!(
        w.store.installations[&inst].public_key.unwrap().key_id(),
        new_kid
    );
    // And it keeps sending with the new key.
    c.submit(ev(9, at), at).unwrap();
    c.flush();
    w.drive(&mut c, at + 1, 10);
    assert_eq!(stored_numbers(&w, &inst).get(&9), Some(&1));
}

#[test]
fn downlevel_client_registers_and_sends() {
    let mut w = World::new();
    let pkg = edrlink_core::downlevel::OnboardingPackage::issue(
        TENANT,
        PARTNER,
        REGION,
        SERVICE_URL,
        w.svc.keyset(),
        1,
        NOW,
        &CounterRandom::new("ws"),
    )
    .unwrap();
    w.store.workspaces.insert(
        pkg.workspace_id.clone(),
        edrlink_core::service::Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            key: pkg.key_bytes().unwrap(),
            epoch: 1,
            expires_at: None,
            revoked: false,
        },
    );
    let mut c = client("downlevel");
    c.onboard_with_package(&pkg.to_json()).unwrap();
    w.drive(&mut c, NOW, 5);
    let cred = c.credential().unwrap();
    assert!(cred.is_downlevel());
    let inst = cred.installation_id.clone();
    c.submit(eicar::test_detection(NOW, "C:\\eicar.com"), NOW)
        .unwrap();
    c.submit(ev(1, NOW), NOW).unwrap();
    c.flush();
    w.drive(&mut c, NOW, 10);
    assert_eq!(stored_numbers(&w, &inst).len(), 1);
    assert_eq!(w.store.alerts.len(), 1);
    assert!(!c.credential().unwrap().to_json().is_empty());
    assert!(!format!("{:?}", c.credential().unwrap()).contains(&pkg.workspace_key));
}

#[test]
fn gzip_client_and_rate_limit_are_transparent() {
    let mut cfg_s = service_config("service");
    cfg_s.rate_limit = edrlink_core::service::RateLimit {
        burst: 1.0,
        per_second: 1.0,
    };
    cfg_s.policy.max_batch_events = 2;
    let mut w = World::with_config(cfg_s);
    let mut cfg = ClientConfig::new(device("device-1"));
    cfg.gzip = true;
    let mut c = PartnerClient::new(cfg, CounterRandom::boxed("gzip"));
    let inst = enrolled(&mut w, &mut c, NOW);
    for n in 0..6 {
        c.submit(ev(n, NOW), NOW).unwrap();
    }
    c.flush();
    let mut now = NOW;
    let mut saw_429 = false;
    for _ in 0..60 {
        if let Some(req) = c.poll_request(now) {
            let resp = w.handle(&req, now);
            saw_429 |= resp.status == 429;
            c.handle_response(req.id, &resp, now);
        } else {
            now += 1;
        }
    }
    assert!(saw_429, "the bucket of 1 must have refused something");
    let stored = stored_numbers(&w, &inst);
    assert_eq!(stored.len(), 6, "{stored:?}");
    assert!(stored.values().all(|&k| k == 1));
}

#[test]
fn downlevel_client_recovers_after_the_integration_is_back_on() {
    let mut w = World::new();
    let pkg = edrlink_core::downlevel::OnboardingPackage::issue(
        TENANT,
        PARTNER,
        REGION,
        SERVICE_URL,
        w.svc.keyset(),
        1,
        NOW,
        &CounterRandom::new("ws"),
    )
    .unwrap();
    w.store.workspaces.insert(
        pkg.workspace_id.clone(),
        edrlink_core::service::Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            key: pkg.key_bytes().unwrap(),
            epoch: 1,
            expires_at: None,
            revoked: false,
        },
    );
    let mut c = client("downlevel-blocked");
    c.onboard_with_package(&pkg.to_json()).unwrap();
    w.drive(&mut c, NOW, 5);
    let inst = c.credential().unwrap().installation_id.clone();
    // Blocked while the integration is off (without an epoch change here: a brief
    // switch-off of the ingestion only)...
    w.store
        .integrations
        .get_mut(&(TENANT.to_owned(), PARTNER.to_owned()))
        .unwrap()
        .enabled = false;
    c.submit(ev(1, NOW), NOW).unwrap();
    c.flush();
    w.drive(&mut c, NOW, 5);
    assert_eq!(c.flow(), Some(FlowState::Blocked));
    // ...and when it is back, the client tries again by itself and delivers.
    w.store
        .integrations
        .get_mut(&(TENANT.to_owned(), PARTNER.to_owned()))
        .unwrap()
        .enabled = true;
    let mut now = NOW;
    for _ in 0..20 {
        now = c.poll_timeout(now).unwrap_or(now + 60).max(now + 1);
        w.drive(&mut c, now, 5);
    }
    assert_eq!(
        stored_numbers(&w, &inst).get(&1),
        Some(&1),
        "{:?}",
        c.health(now)
    );
}
