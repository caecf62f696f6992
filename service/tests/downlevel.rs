//! Down-level agents over real HTTP against the real service and SQLite:
//! registration with the workspace key, ingest with each agent's own device
//! key, workspace key expiry and revocation, and the attacks a holder of the
//! workspace key could try.

mod common;
use common::*;
use edrlink_core::downlevel;
use edrlink_core::eicar;
use edrlink_core::encoding::{b64url, rfc3339};

fn package(s: &Svc, body: Option<serde_json::Value>) -> (String, downlevel::OnboardingPackage) {
    let r = s.admin(
        "POST",
        &format!("/admin/tenants/t1/integrations/{PARTNER}/onboarding-package"),
        body,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let text = r.text();
    let pkg = downlevel::OnboardingPackage::from_json(&text).unwrap();
    (text, pkg)
}

/// Signs and sends one SharedKey request (`key_id`: workspace id at
/// register, installation id at ingest).
fn post(s: &Svc, path: &str, body: &[u8], key_id: &str, key: &[u8], date: &str) -> Resp {
    let auth = downlevel::authorization(key_id, key, "POST", path, "application/json", date, body);
    s.http.send(
        "POST",
        path,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
            (downlevel::DATE_HEADER, date),
        ],
        Some(body.to_vec()),
    )
}

fn register_body(enrollment_id: &str, dev: &str, device_key: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&downlevel::RegisterRequest {
        enrollment_id: enrollment_id.into(),
        device: device(dev),
        device_key: b64url(device_key),
    })
    .unwrap()
}

fn batch(inst: &str, seq: u64, id: &str, now: i64) -> Vec<u8> {
    let mut b = Raw::new("x").batch(seq, id, generic(now, 2), now);
    b.installation_id = inst.to_owned();
    b.session_id = None;
    serde_json::to_vec(&b).unwrap()
}

#[test]
fn downlevel_client_registers_and_sends_with_its_device_key() {
    let s = Svc::start();
    s.setup("t1");
    let (pkg_json, pkg) = package(&s, None);
    let expires = pkg.expires.clone().expect("the package names its expiry");
    assert!(edrlink_core::encoding::parse_rfc3339(&expires).unwrap() > s.now());

    let mut ep = Endpoint::new(&s, "dl");
    ep.client.onboard_with_package(&pkg_json).unwrap();
    ep.pump();
    let cred = ep.client.credential().expect("registered").clone();
    assert!(cred.is_downlevel());
    // The stored credential holds the device key, never the workspace key.
    let stored = cred.to_json();
    assert!(
        !stored.contains(&pkg.workspace_key),
        "workspace key not stored"
    );
    assert!(stored.contains("\"device_key\""));
    let now = s.now();
    ep.send(vec![
        eicar::test_detection(now, "C:\\eicar.txt"),
        generic(now, 1).remove(0),
    ]);
    assert!(ep.client.is_idle(), "{:?}", ep.client.health(s.now()));
    let alerts = s.alerts("t1");
    assert_eq!(
        (alerts.len(), alerts[0]["title"].as_str()),
        (1, Some("EICAR test file"))
    );
    let inst = s.installation("t1", &cred.installation_id);
    assert_eq!(
        (inst["downlevel"].as_bool(), inst["health"].as_str()),
        (Some(true), Some("Healthy"))
    );
    assert_eq!(s.stats("t1").0, ep.client.health(s.now()).sent_events);
}

#[test]
fn hand_signed_register_and_ingest_errors() {
    let s = Svc::start();
    s.setup("t1");
    let (_, pkg) = package(&s, None);
    let ws_key = pkg.key_bytes().unwrap();
    let ws = pkg.workspace_id.as_str();
    let now = s.now();
    let date = rfc3339(now);
    let dev_key = [0x42u8; 32];
    let reg = register_body(&nonce(), "dl2", &dev_key);
    let ok = post(&s, "/v1/downlevel/register", &reg, ws, &ws_key, &date);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let inst = ok.json()["installation_id"].as_str().unwrap().to_owned();
    // A retry (same enrollment id, same device key) is idempotent.
    assert_eq!(
        post(&s, "/v1/downlevel/register", &reg, ws, &ws_key, &date).json()["installation_id"],
        inst.as_str()
    );
    // Wrong key → bad_signature; unknown workspace / no header → unauthorized; stale date.
    assert_eq!(
        post(&s, "/v1/downlevel/register", &reg, ws, &[7u8; 32], &date).problem(401),
        "bad_signature"
    );
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/register",
            &reg,
            "ws-unknown",
            &ws_key,
            &date
        )
        .problem(401),
        "unauthorized"
    );
    assert_eq!(
        s.http
            .post("/v1/downlevel/register", "application/json", reg.clone())
            .problem(401),
        "unauthorized"
    );
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/register",
            &reg,
            ws,
            &ws_key,
            &rfc3339(now - 1000)
        )
        .problem(401),
        "stale_message"
    );
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/register",
            &register_body(&nonce(), "dl3", b"short"),
            ws,
            &ws_key,
            &date
        )
        .problem(400),
        "malformed"
    );

    let b1 = batch(&inst, 1, "d1", now);
    let ingest =
        |body: &[u8], id: &str, key: &[u8]| post(&s, "/v1/downlevel/ingest", body, id, key, &date);
    assert_eq!(ingest(&b1, &inst, &dev_key).json()["status"], "accepted");
    assert_eq!(ingest(&b1, &inst, &dev_key).json()["status"], "duplicate");
    // Body changed after signing → bad_signature.
    let auth = downlevel::authorization(
        &inst,
        &dev_key,
        "POST",
        "/v1/downlevel/ingest",
        "application/json",
        &date,
        &b1,
    );
    let r = s.http.send(
        "POST",
        "/v1/downlevel/ingest",
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
            (downlevel::DATE_HEADER, &date),
        ],
        Some(batch(&inst, 2, "d2", now)),
    );
    assert_eq!(r.problem(401), "bad_signature");

    // Integration off → flow_blocked; on again (new epoch) → a new package is needed.
    s.set_integration("t1", false);
    assert_eq!(
        ingest(&batch(&inst, 2, "d2", now), &inst, &dev_key).problem(403),
        "flow_blocked"
    );
    s.set_integration("t1", true);
    let code = ingest(&batch(&inst, 2, "d2", now), &inst, &dev_key).problem(401);
    assert!(code == "revoked" || code == "epoch_mismatch", "{code}");
}

/// Attack: a holder of the workspace key (a leaked package) ingests for an
/// installation that is not its own. Refused: ingest needs that
/// installation's device key, which only the agent and the service know.
#[test]
fn workspace_key_holder_cannot_ingest_for_another_installation() {
    let s = Svc::start();
    s.setup("t1");
    let (_, pkg) = package(&s, None);
    let ws_key = pkg.key_bytes().unwrap();
    let ws = pkg.workspace_id.as_str();
    let now = s.now();
    let date = rfc3339(now);
    let victim_key = [0x11u8; 32];
    let victim = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&nonce(), "victim", &victim_key),
        ws,
        &ws_key,
        &date,
    )
    .json()["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The attacker registers its own agent (it holds the workspace key)...
    let own_key = [0x22u8; 32];
    let own = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&nonce(), "attacker", &own_key),
        ws,
        &ws_key,
        &date,
    )
    .json()["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = batch(&victim, 1, "forged", now);
    // ...and tries every key it has against the victim's installation.
    for (id, key, status, code) in [
        (ws, &ws_key[..], 401, "unauthorized"),
        (victim.as_str(), &ws_key[..], 401, "bad_signature"),
        (victim.as_str(), &own_key[..], 401, "bad_signature"),
        (own.as_str(), &own_key[..], 401, "bad_signature"),
    ] {
        assert_eq!(
            post(&s, "/v1/downlevel/ingest", &forged, id, key, &date).problem(status),
            code,
            "as {id}"
        );
    }
    assert_eq!(s.stats("t1").0, 0, "nothing stored for the victim");
    // The victim itself still sends.
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/ingest",
            &forged,
            &victim,
            &victim_key,
            &date
        )
        .json()["status"],
        "accepted"
    );
}

/// Attack: re-registering someone else's enrollment id (with the workspace
/// key) to take its installation over. Refused as `possible_clone`; the
/// victim keeps its installation and its device key.
#[test]
fn reregistering_another_agents_enrollment_id_is_refused() {
    let s = Svc::start();
    s.setup("t1");
    let (_, pkg) = package(&s, None);
    let ws_key = pkg.key_bytes().unwrap();
    let ws = pkg.workspace_id.as_str();
    let now = s.now();
    let date = rfc3339(now);
    let enrollment = nonce();
    let victim_key = [0x33u8; 32];
    let victim = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&enrollment, "victim", &victim_key),
        ws,
        &ws_key,
        &date,
    )
    .json()["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&enrollment, "victim", &[0x44u8; 32]),
        ws,
        &ws_key,
        &date,
    );
    assert_eq!(r.problem(409), "possible_clone");
    assert!(
        !r.text().contains(&victim),
        "the installation id is not disclosed"
    );
    // The attacker's key does not ingest for the victim; the victim's still does.
    let b = batch(&victim, 1, "b1", now);
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/ingest",
            &b,
            &victim,
            &[0x44u8; 32],
            &date
        )
        .problem(401),
        "bad_signature"
    );
    assert_eq!(
        post(&s, "/v1/downlevel/ingest", &b, &victim, &victim_key, &date).json()["status"],
        "accepted"
    );
}

/// Attack: using a revoked or an expired workspace key to register. Refused
/// (`token_revoked`, `token_expired`); agents registered before keep sending
/// with their device keys.
#[test]
fn revoked_or_expired_workspace_key_registers_nobody_but_registered_agents_keep_sending() {
    let s = Svc::start();
    s.setup("t1");
    let (_, pkg) = package(&s, None);
    let ws_key = pkg.key_bytes().unwrap();
    let ws = pkg.workspace_id.as_str();
    let date = rfc3339(s.now());
    let dev_key = [0x55u8; 32];
    let inst = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&nonce(), "early", &dev_key),
        ws,
        &ws_key,
        &date,
    )
    .json()["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = s.admin(
        "POST",
        &format!("/admin/tenants/t1/workspaces/{ws}/revoke"),
        None,
    );
    assert_eq!((r.status, r.json()["revoked"].as_bool()), (200, Some(true)));
    assert_eq!(
        s.admin("POST", "/admin/tenants/t1/workspaces/ws-nope/revoke", None)
            .status,
        404
    );
    assert_eq!(
        s.admin(
            "POST",
            &format!("/admin/tenants/t2/workspaces/{ws}/revoke"),
            None
        )
        .status,
        404,
        "another tenant's workspace is not found"
    );
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/register",
            &register_body(&nonce(), "late", &[0x66u8; 32]),
            ws,
            &ws_key,
            &date
        )
        .problem(401),
        "token_revoked"
    );
    let now = s.now();
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/ingest",
            &batch(&inst, 1, "b1", now),
            &inst,
            &dev_key,
            &date
        )
        .json()["status"],
        "accepted",
        "a registered agent keeps sending after the workspace key is revoked"
    );

    // Expiry: a package valid for 60 s.
    let (_, short) = package(&s, Some(serde_json::json!({"lifetime_secs": 60})));
    let short_key = short.key_bytes().unwrap();
    let dev2 = [0x77u8; 32];
    let inst2 = post(
        &s,
        "/v1/downlevel/register",
        &register_body(&nonce(), "in-time", &dev2),
        &short.workspace_id,
        &short_key,
        &rfc3339(s.now()),
    )
    .json()["installation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.clock.advance(61);
    let date = rfc3339(s.now());
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/register",
            &register_body(&nonce(), "too-late", &[0x78u8; 32]),
            &short.workspace_id,
            &short_key,
            &date
        )
        .problem(401),
        "token_expired"
    );
    assert_eq!(
        post(
            &s,
            "/v1/downlevel/ingest",
            &batch(&inst2, 1, "c1", s.now()),
            &inst2,
            &dev2,
            &date
        )
        .json()["status"],
        "accepted",
        "a registered agent keeps sending after the workspace key expired"
    );
    for bad in [0, -1, 365 * 86_400 + 1] {
        assert_eq!(
            s.admin(
                "POST",
                &format!("/admin/tenants/t1/integrations/{PARTNER}/onboarding-package"),
                Some(serde_json::json!({ "lifetime_secs": bad })),
            )
            .problem(400),
            "invalid_argument"
        );
    }
}
