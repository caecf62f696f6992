//! The partner side of the trust model, attack by attack: every answer is
//! bound to the token that started it, the pinned keyset changes by overlap
//! only, plain HTTP never leaves the core for a non-loopback host, and
//! attacker-chosen sequence numbers do not wrap. Each test performs the
//! attack against the real client state machine and shows it refused.

mod common;
use common::*;
use edrlink_core::client::{check_service_url, ClientConfig, ClientEvent, PartnerClient};
use edrlink_core::credential::Credential;
use edrlink_core::downlevel::{self, OnboardingPackage, RegisterResponse};
use edrlink_core::encoding::{rfc3339, UnixSeconds};
use edrlink_core::handshake::{self, FlowDecision, FlowState, Hello};
use edrlink_core::http::{HttpRequest, HttpResponse, JOSE};
use edrlink_core::keys::{Keyset, SigningKey, VerifyingKey, MAX_PINNED_KEYS};
use edrlink_core::policy::Policy;
use edrlink_core::redeem::{self, ResponseClaims};
use edrlink_core::service::Workspace;
use edrlink_core::telemetry::Batch;
use edrlink_core::{eicar, jws, token, ErrorCode};

fn client(label: &str) -> PartnerClient {
    PartnerClient::new(
        ClientConfig::new(device("device-1")),
        CounterRandom::boxed(label),
    )
}

fn events(c: &mut PartnerClient) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn kids(ks: &Keyset) -> Vec<String> {
    ks.keys
        .iter()
        .map(|j| j.to_key().unwrap().key_id())
        .collect()
}

// ---------------------------------------------------------------------------
// 1. The redemption answer is bound to the token.

/// Starts a redemption and lets the real service answer it; returns the
/// request id and the service's (genuine) answer claims.
fn intercepted_redeem(w: &mut World, c: &mut PartnerClient) -> (u64, ResponseClaims) {
    let tok = w.token(3600, 10, NOW);
    c.redeem(&tok).unwrap();
    let req = c.poll_request(NOW).unwrap();
    let real = w.handle(&req, NOW);
    assert_eq!(real.status, 200);
    let claims = jws::parse(
        std::str::from_utf8(&real.body).unwrap(),
        redeem::RESPONSE_TYP,
    )
    .unwrap()
    .claims()
    .unwrap();
    (req.id, claims)
}

fn answer(c: &mut PartnerClient, id: u64, claims: &ResponseClaims, signer: &SigningKey) {
    let body = jws::sign(redeem::RESPONSE_TYP, claims, signer, false).unwrap();
    c.handle_response(id, &HttpResponse::new(200, JOSE, body.into_bytes()), NOW);
}

fn assert_refused(c: &mut PartnerClient, code: ErrorCode) {
    assert!(c.credential().is_none(), "nothing stored, nothing pinned");
    assert_eq!(c.last_error().map(|e| e.code()), Some(code));
    let ev = events(c);
    assert!(ev.contains(&ClientEvent::Failed(code)), "{ev:?}");
    assert!(!ev.contains(&ClientEvent::CredentialChanged), "{ev:?}");
}

/// Attack: a TLS-intercepting proxy (or a host transport) answers the
/// redemption with `[attacker key, real key]`, signed by the attacker key,
/// hoping to get its key pinned and its `service_url` stored. The real key in
/// the keyset does verify the token, which the old check accepted.
#[test]
fn interceptor_answer_signed_by_its_own_key_is_refused() {
    let mut w = World::new();
    let mut c = client("mitm");
    let (id, real) = intercepted_redeem(&mut w, &mut c);
    let attacker = key("attacker");
    let mut forged = real.clone();
    forged.keyset = Keyset::from_keys(&[attacker.verifying_key(), key("service").verifying_key()]);
    forged.service_url = "https://attacker.example".into();
    answer(&mut c, id, &forged, &attacker);
    assert_refused(&mut c, ErrorCode::BadSignature);

    // Same, keeping the genuine service_url: the signer is what gives it away.
    let mut c = client("mitm-2");
    let (id, real) = intercepted_redeem(&mut w, &mut c);
    let mut forged = real.clone();
    forged.keyset = Keyset::from_keys(&[attacker.verifying_key(), key("service").verifying_key()]);
    answer(&mut c, id, &forged, &attacker);
    assert_refused(&mut c, ErrorCode::BadSignature);

    // The genuine answer, for contrast, is accepted and pins only what the
    // token's key vouched for.
    let mut c = client("genuine");
    let (id, real) = intercepted_redeem(&mut w, &mut c);
    answer(&mut c, id, &real, &key("service"));
    let cred = c.credential().expect("genuine answer accepted");
    assert_eq!(kids(&cred.service_keys), [key("service").key_id()]);
}

/// Attack: an answer correctly signed by the token's key but naming another
/// tenant, partner, region, epoch or service URL (a replayed or crossed
/// answer from the same service). Each is refused; nothing is stored.
#[test]
fn correctly_signed_answer_naming_other_claims_than_the_token_is_refused() {
    type Mutation = fn(&mut ResponseClaims);
    let cases: [(&str, Mutation); 6] = [
        ("service_url", |r| {
            r.service_url = "https://other.example".into()
        }),
        ("service_url http", |r| {
            r.service_url = "http://edr.example.test".into()
        }),
        ("tenant", |r| r.tenant_id = "tenant-2".into()),
        ("partner", |r| r.partner_id = "partner-2".into()),
        ("region", |r| r.region = "us".into()),
        ("epoch", |r| r.epoch += 1),
    ];
    let mut w = World::new();
    for (i, (name, mutate)) in cases.iter().enumerate() {
        let mut c = client(&format!("claims-{i}"));
        let (id, mut r) = intercepted_redeem(&mut w, &mut c);
        mutate(&mut r);
        answer(&mut c, id, &r, &key("service"));
        assert!(c.credential().is_none(), "{name}: nothing stored");
        assert_eq!(
            c.last_error().map(|e| e.code()),
            Some(ErrorCode::BadSignature),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. The pinned keyset changes by overlap only.

/// An enrolled client whose pinned keyset is the service's single key.
fn enrolled(w: &mut World, label: &str) -> PartnerClient {
    let mut c = client(label);
    let tok = w.token(3600, 10, NOW);
    c.redeem(&tok).unwrap();
    w.drive(&mut c, NOW, 10);
    assert_eq!(c.flow(), Some(FlowState::Open));
    assert_eq!(
        kids(&c.credential().unwrap().service_keys),
        [key("service").key_id()]
    );
    events(&mut c);
    c
}

/// Asks for a handshake at `now` and answers it by hand: an open decision
/// signed by `signer`, carrying `keyset`, claiming `iat`.
fn decide(
    c: &mut PartnerClient,
    now: UnixSeconds,
    signer: &SigningKey,
    keyset: Keyset,
    iat: UnixSeconds,
) {
    c.handshake_now();
    let req = c.poll_request(now).expect("a hello");
    assert!(req.url.ends_with("/v1/handshake"), "{}", req.url);
    let hello: Hello = jws::parse(
        std::str::from_utf8(&req.body).unwrap(),
        handshake::HELLO_TYP,
    )
    .unwrap()
    .claims()
    .unwrap();
    let d = FlowDecision {
        installation_id: hello.installation_id,
        nonce: hello.nonce,
        iat,
        decision: FlowState::Open,
        reason: None,
        session_id: Some("session-1".into()),
        session_exp: Some(now + 3600),
        policy: Some(Policy::default()),
        last_seq: 0,
        keyset: Some(keyset),
    };
    let body = jws::sign(handshake::FLOW_TYP, &d, signer, false).unwrap();
    c.handle_response(
        req.id,
        &HttpResponse::new(200, JOSE, body.into_bytes()),
        now,
    );
}

fn ks(keys: &[&SigningKey]) -> Keyset {
    Keyset::from_keys(
        &keys
            .iter()
            .map(|k| k.verifying_key())
            .collect::<Vec<VerifyingKey>>(),
    )
}

/// Attack (and the rotation it must not break): a decision carrying a keyset
/// used to replace the pinned set wholesale. Now a new key is added when a
/// pinned key vouches for it, and the old key is retired only once its
/// successor has signed; after that, the retired key is refused.
#[test]
fn flow_decision_never_replaces_the_pinned_keyset_wholesale() {
    let mut w = World::new();
    let mut c = enrolled(&mut w, "overlap");
    let (a, b) = (key("service"), key("service-next"));
    // Signed by A, carrying only B: B is added, A is kept (it signed).
    decide(&mut c, NOW + 10, &a, ks(&[&b]), NOW + 10);
    assert_eq!(
        kids(&c.credential().unwrap().service_keys),
        [b.key_id(), a.key_id()]
    );
    assert!(events(&mut c).contains(&ClientEvent::CredentialChanged));
    // Signed by B, carrying only B: A is retired (its successor has signed).
    decide(&mut c, NOW + 20, &b, ks(&[&b]), NOW + 20);
    assert_eq!(kids(&c.credential().unwrap().service_keys), [b.key_id()]);
    // A retired key stays retired: its answers are refused.
    decide(&mut c, NOW + 30, &a, ks(&[&a, &b]), NOW + 30);
    assert_eq!(
        c.last_error().map(|e| e.code()),
        Some(ErrorCode::UnknownKey)
    );
    assert_eq!(kids(&c.credential().unwrap().service_keys), [b.key_id()]);
}

/// Attack: an answer signed by a key that is not pinned, carrying that key
/// next to the real one, tries to get itself added. Refused; nothing changes.
#[test]
fn keys_are_added_only_when_a_pinned_key_signed_the_answer() {
    let mut w = World::new();
    let mut c = enrolled(&mut w, "add-only-signed");
    let x = key("attacker");
    decide(&mut c, NOW + 10, &x, ks(&[&x, &key("service")]), NOW + 10);
    assert_eq!(
        c.last_error().map(|e| e.code()),
        Some(ErrorCode::UnknownKey)
    );
    assert_eq!(
        kids(&c.credential().unwrap().service_keys),
        [key("service").key_id()]
    );
    assert!(!events(&mut c).contains(&ClientEvent::CredentialChanged));
}

/// Attack: a key past its `not_after` signs an answer whose own `iat` is
/// set (or replayed) to a time when the key was still valid. Validity is
/// judged against the local clock plus the measured offset, so it is
/// refused; the old code judged it at the answer's `iat` and accepted it.
#[test]
fn expired_key_is_not_resurrected_by_an_old_iat() {
    let mut w = World::new();
    let mut c = enrolled(&mut w, "not-after");
    let (a, b) = (key("service"), key("service-next"));
    let mut announce = ks(&[&b, &a]);
    announce.keys[1].not_after = Some(NOW + 100);
    decide(&mut c, NOW + 10, &a, announce, NOW + 10);
    let pinned = c.credential().unwrap().service_keys.clone();
    assert_eq!(kids(&pinned), [b.key_id(), a.key_id()]);
    assert_eq!(pinned.keys[1].not_after, Some(NOW + 100));
    // Later than not_after on our clock, with an iat from A's valid days.
    decide(&mut c, NOW + 500, &a, ks(&[&a, &b]), NOW + 50);
    assert_eq!(
        c.last_error().map(|e| e.code()),
        Some(ErrorCode::UnknownKey)
    );
    // A not_after can move earlier, never later.
    let mut extend = ks(&[&b, &a]);
    extend.keys[1].not_after = Some(NOW + 10_000);
    decide(&mut c, NOW + 60, &b, extend, NOW + 60);
    let pinned = c.credential().unwrap().service_keys.clone();
    assert!(
        pinned
            .keys
            .iter()
            .all(|j| j.not_after.is_none_or(|t| t <= NOW + 100)),
        "{pinned:?}"
    );
}

/// Attack: an answer (signed by a pinned key) carrying a flood of keys.
/// At most MAX_PINNED_KEYS stay pinned, the signer always among them.
#[test]
fn pinned_keyset_is_capped() {
    let mut w = World::new();
    let mut c = enrolled(&mut w, "cap");
    let many: Vec<SigningKey> = (0..20).map(|i| key(&format!("flood-{i}"))).collect();
    let refs: Vec<&SigningKey> = many.iter().collect();
    decide(&mut c, NOW + 10, &key("service"), ks(&refs), NOW + 10);
    let pinned = kids(&c.credential().unwrap().service_keys);
    assert_eq!(pinned.len(), MAX_PINNED_KEYS);
    assert!(
        pinned.contains(&key("service").key_id()),
        "the signer stays"
    );
}

/// The merge rule itself, including an answer signed by the key it omits.
#[test]
fn overlap_rule_unit() {
    let (a, b, x) = (key("a"), key("b"), key("x"));
    let pinned = ks(&[&a, &b]);
    // Signed by A, omitting A: A stays (not yet succeeded), B is retired
    // (omitted, and another pinned key signed).
    let next = pinned
        .merge_signed(&ks(&[&x]), &a.key_id(), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(kids(&next), [x.key_id(), a.key_id()]);
    // Signer not pinned: refused.
    assert_eq!(
        pinned
            .merge_signed(&ks(&[&x]), &x.key_id(), NOW)
            .unwrap_err()
            .code(),
        ErrorCode::UnknownKey
    );
    // Nothing new: no change.
    assert!(pinned
        .merge_signed(&pinned, &a.key_id(), NOW)
        .unwrap()
        .is_none());
    // A carried key already past not_after (on our clock) is not added.
    let mut dead = ks(&[&a, &x]);
    dead.keys[1].not_after = Some(NOW - 1);
    let next = pinned
        .merge_signed(&dead, &a.key_id(), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(kids(&next), [a.key_id()]);
}

// ---------------------------------------------------------------------------
// 3. Plain HTTP only to loopback, enforced by the core.

fn http_token(w: &mut World, url: &str) -> String {
    let spec = token::TokenSpec {
        issuer: ISSUER.into(),
        partner_id: PARTNER.into(),
        tenant_id: TENANT.into(),
        region: REGION.into(),
        service_url: url.into(),
        epoch: w.epoch(),
        lifetime: 3600,
        max_uses: 10,
    };
    token::issue(&spec, &key("service"), NOW, &CounterRandom::new("t"))
        .unwrap()
        .0
}

fn package(url: &str) -> String {
    let mut p = OnboardingPackage::issue(
        TENANT,
        PARTNER,
        REGION,
        url,
        Keyset::from_keys(&[key("service").verifying_key()]),
        1,
        NOW,
        &CounterRandom::new("ws"),
    )
    .unwrap();
    p.service_url = url.into();
    p.to_json().to_string()
}

/// Attack: a token (or a package, or a configured override) names a
/// plain-HTTP, non-loopback service URL, so that a host-supplied transport
/// would send the token and telemetry in clear text. The core refuses before
/// building a request: the host is asked to send nothing.
#[test]
fn host_transport_is_never_asked_to_send_plain_http_off_loopback() {
    let mut w = World::new();
    let bad = "http://edr.example.test";
    let mut c = client("http-token");
    assert_eq!(
        c.redeem(&http_token(&mut w, bad)).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(c.poll_request(NOW).is_none());

    let mut c = client("http-package");
    assert_eq!(
        c.onboard_with_package(&package(bad)).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(c.poll_request(NOW).is_none());

    let mut cfg = ClientConfig::new(device("d"));
    cfg.service_url = Some("http://proxy.example.test/".into());
    let mut c = PartnerClient::new(cfg, CounterRandom::boxed("http-override"));
    let tok = w.token(3600, 10, NOW);
    assert_eq!(
        c.redeem(&tok).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(c.poll_request(NOW).is_none());

    // A stored credential edited to point at plain HTTP: nothing is sent,
    // and the client waits instead of spinning.
    let mut c = enrolled(&mut w, "http-stored");
    let mut cred: Credential = c.credential().unwrap().clone();
    cred.service_url = bad.into();
    c.set_credential(cred);
    c.submit(eicar::test_detection(NOW, "/e"), NOW).unwrap();
    c.flush();
    assert!(c.poll_request(NOW + 1).is_none());
    assert_eq!(
        c.last_error().map(|e| e.code()),
        Some(ErrorCode::InvalidArgument)
    );
    assert!(c.poll_timeout(NOW + 1).is_some_and(|t| t > NOW + 1));
    assert!(c.poll_request(NOW + 1).is_none());

    // Loopback stays allowed (development, tests).
    let mut c = client("loopback");
    c.redeem(&http_token(&mut w, "http://127.0.0.1:8080"))
        .unwrap();
    let req = c.poll_request(NOW).unwrap();
    assert_eq!(req.url, "http://127.0.0.1:8080/v1/redeem");
}

#[test]
fn service_url_rule() {
    for ok in [
        "https://edr.example/v1",
        "http://127.0.0.1:8080",
        "http://localhost/x",
        "http://[::1]:9/x",
        "HTTP://127.0.0.2/",
    ] {
        check_service_url(ok).unwrap();
    }
    for bad in [
        "http://edr.example/v1",
        "http://127.0.0.1.evil.example/",
        "http://user@10.0.0.1/",
        "http://[::1].evil/",
        "http://[::1]evil/",
        "https://",
        "ftp://x/",
        "file:///etc/passwd",
        "",
    ] {
        assert_eq!(
            check_service_url(bad).unwrap_err().code(),
            ErrorCode::InvalidArgument,
            "{bad}"
        );
    }
}

#[cfg(feature = "agent")]
mod agent {
    use super::*;
    use edrlink_core::agent::{Agent, AgentConfig, Transport};
    use std::sync::{Arc, Mutex};

    /// Records what it is asked to send and answers nothing useful.
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<HttpRequest>>>);
    impl Transport for Recorder {
        fn send(&self, req: &HttpRequest) -> edrlink_core::Result<HttpResponse> {
            self.0.lock().unwrap().push(req.clone());
            Ok(HttpResponse::new(400, "text/plain", b"no".to_vec()))
        }
    }

    /// The same attack through the blocking agent and a host transport.
    #[test]
    fn agent_asks_its_transport_nothing_for_plain_http() {
        let mut w = World::new();
        let rec = Recorder::default();
        let agent = Agent::new(
            AgentConfig {
                client: ClientConfig::new(device("agent")),
                data_dir: None,
            },
            rec.clone(),
        )
        .unwrap();
        let bad = "http://edr.example.test";
        assert_eq!(
            agent.enroll(&http_token(&mut w, bad)).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            agent.enroll_with_package(&package(bad)).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert!(rec.0.lock().unwrap().is_empty(), "asked nothing");
    }

    /// Forwards to the in-process service; while `lose` is set, the service
    /// handles each request but the answer is lost (a crash-like outage).
    struct Forward {
        world: Arc<Mutex<World>>,
        lose: Arc<std::sync::atomic::AtomicBool>,
    }
    impl Transport for Forward {
        fn send(&self, req: &HttpRequest) -> edrlink_core::Result<HttpResponse> {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let resp = self.world.lock().unwrap().handle(req, now);
            if self.lose.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(edrlink_core::Error::new(
                    ErrorCode::Transport,
                    "answer lost",
                ));
            }
            Ok(resp)
        }
    }

    /// The device key and enrollment id are persisted before the first
    /// register attempt: a process that dies after the service registered it
    /// (answer lost) resumes the same installation on the next run, and does
    /// not leave an orphan behind.
    #[test]
    fn registration_survives_a_lost_answer_across_processes() {
        let mut w = World::new();
        let pkg = workspace(&mut w);
        let world = Arc::new(Mutex::new(w));
        let lose = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let dir = std::env::temp_dir().join(format!(
            "edrlink-trust-pending-{}-{}",
            std::process::id(),
            NOW
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = || AgentConfig {
            client: ClientConfig::new(device("dl-agent")),
            data_dir: Some(dir.clone()),
        };
        let mk = || Forward {
            world: world.clone(),
            lose: lose.clone(),
        };
        let mut first = Agent::new(cfg(), mk()).unwrap();
        first.set_op_timeout(std::time::Duration::from_millis(300));
        assert!(first.enroll_with_package(&pkg.to_json()).is_err());
        drop(first);
        let pending = dir.join(edrlink_core::agent::PENDING_REGISTRATION_FILE);
        assert!(pending.exists(), "saved before the first attempt");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&pending).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let created: Vec<String> = world
            .lock()
            .unwrap()
            .store
            .installations
            .keys()
            .cloned()
            .collect();
        assert_eq!(created.len(), 1, "the service registered it once");

        lose.store(false, std::sync::atomic::Ordering::SeqCst);
        let second = Agent::new(cfg(), mk()).unwrap();
        second.enroll_with_package(&pkg.to_json()).unwrap();
        assert_eq!(
            second.credential().unwrap().installation_id,
            created[0],
            "same installation resumed"
        );
        assert_eq!(
            world.lock().unwrap().store.installations.len(),
            1,
            "no orphan"
        );
        assert!(!pending.exists(), "removed once registered");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

// ---------------------------------------------------------------------------
// 4. Down-level: per-device keys on the client; checked sequence arithmetic.

fn workspace(w: &mut World) -> OnboardingPackage {
    let pkg = OnboardingPackage::issue(
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
        Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: TENANT.into(),
            partner_id: PARTNER.into(),
            key: pkg.key_bytes().unwrap(),
            epoch: 1,
            expires_at: None,
            revoked: false,
        },
    );
    pkg
}

/// The client registers with a device key it generated, keeps only that key
/// (not the workspace key), signs its ingest `SharedKey <installation-id>:…`
/// with it, and resumes the same installation when re-onboarded with the
/// same package.
#[test]
fn downlevel_client_keeps_its_device_key_not_the_workspace_key() {
    let mut w = World::new();
    let pkg = workspace(&mut w);
    let mut c = client("dl-device-key");
    c.onboard_with_package(&pkg.to_json()).unwrap();
    let req = c.poll_request(NOW).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    let dk = body["device_key"].as_str().unwrap().to_owned();
    assert_eq!(
        edrlink_core::encoding::b64url_decode(&dk).unwrap().len(),
        32
    );
    let resp = w.handle(&req, NOW);
    c.handle_response(req.id, &resp, NOW);
    let cred = c.credential().unwrap().clone();
    let stored = cred.to_json();
    assert!(stored.contains(&dk) && !stored.contains(&pkg.workspace_key));
    assert!(
        !format!("{cred:?}").contains(&dk),
        "Debug redacts the device key"
    );
    assert_eq!(
        Credential::from_json(&stored).unwrap().to_json().as_str(),
        stored.as_str()
    );

    c.submit(eicar::test_detection(NOW, "/e"), NOW).unwrap();
    c.flush();
    let req = c.poll_request(NOW).unwrap();
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap();
    assert!(
        auth.1
            .starts_with(&format!("SharedKey {}:", cred.installation_id)),
        "{}",
        auth.1
    );
    let resp = w.handle(&req, NOW);
    c.handle_response(req.id, &resp, NOW);
    assert!(c.is_idle());
    assert_eq!(w.store.alerts.len(), 1);

    // Re-onboarding with the same package resumes the same installation.
    c.onboard_with_package(&pkg.to_json()).unwrap();
    w.drive(&mut c, NOW + 1, 5);
    assert_eq!(
        c.credential().unwrap().installation_id,
        cred.installation_id
    );
}

/// Attack: a register answer (or a flow decision) claiming `last_seq =
/// u64::MAX`, so that `last_seq + 1` wraps to 0 and the client reuses
/// sequence numbers. Refused as malformed; nothing stored.
#[test]
fn sequence_at_u64_max_is_refused_not_wrapped() {
    let mut w = World::new();
    let pkg = workspace(&mut w);
    let mut c = client("dl-max");
    c.onboard_with_package(&pkg.to_json()).unwrap();
    let req = c.poll_request(NOW).unwrap();
    let r = RegisterResponse {
        installation_id: "inst-x".into(),
        epoch: 1,
        policy: Policy::default(),
        server_time: NOW,
        last_seq: u64::MAX,
    };
    c.handle_response(req.id, &HttpResponse::json(200, &r), NOW);
    assert!(c.credential().is_none());
    assert_eq!(c.last_error().map(|e| e.code()), Some(ErrorCode::Malformed));

    // The service: a batch at u64::MAX is stored; the next one is a
    // sequence regression without an (overflowing) expected number.
    let mut c = client("dl-max-2");
    c.onboard_with_package(&pkg.to_json()).unwrap();
    w.drive(&mut c, NOW, 3);
    let cred = c.credential().unwrap().clone();
    let key = match &cred.auth {
        edrlink_core::credential::CredentialAuth::SharedKey { key, .. } => key.clone(),
        _ => unreachable!(),
    };
    let send = |w: &mut World, seq: u64, id: &str| {
        let b = Batch {
            v: 1,
            installation_id: cred.installation_id.clone(),
            session_id: None,
            batch_id: id.into(),
            seq,
            created: rfc3339(NOW),
            sent: rfc3339(NOW),
            policy_version: 1,
            events: vec![eicar::test_detection(NOW, "/x")],
        };
        let body = serde_json::to_vec(&b).unwrap();
        let date = rfc3339(NOW);
        let auth = downlevel::authorization(
            &cred.installation_id,
            &key,
            "POST",
            "/v1/downlevel/ingest",
            "application/json",
            &date,
            &body,
        );
        w.handle(
            &HttpRequest {
                id: 0,
                method: "POST".into(),
                url: "/v1/downlevel/ingest".into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("authorization".into(), auth),
                    (downlevel::DATE_HEADER.into(), date),
                ],
                body,
            },
            NOW,
        )
    };
    assert_eq!(send(&mut w, u64::MAX, "max").status, 200);
    let r = send(&mut w, 1, "after-max");
    assert_eq!(problem_code(&r).as_deref(), Some("sequence_regression"));
    let p: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(p.get("expected_seq").is_none_or(|v| v.is_null()), "{p}");
}
