//! Installation keys the host keeps (`HostKeys`): Ed25519 and P-256 keys
//! that never reach edrlink, answered synchronously (the agent) and later
//! (the sans-IO client, as an async WebCrypto host does); failing, lying and
//! slow signers; and the proof that no private key byte passes through.
#![cfg(feature = "agent")]

mod common;

use common::{device, World};
use edrlink_core::agent::{Agent, AgentConfig, CredentialStore, LogLevel, LogSink, Transport};
use edrlink_core::client::{ClientConfig, HostAnswer, HostRequestKind, PartnerClient};
use edrlink_core::encoding::{b64std, b64url, rfc3339};
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{KeyAlgorithm, Signer, SigningKey, SystemRandom, VerifyingKey};
use edrlink_core::signer::{EcdsaP256Key, HostKey, HostKeys};
use edrlink_core::telemetry::Event;
use edrlink_core::{ErrorCode, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn generic(i: usize) -> Event {
    Event::from_json(&format!(
        r#"{{"type":"generic","time":"{}","name":"process_start","data":{{"n":{i}}}}}"#,
        rfc3339(now())
    ))
    .unwrap()
}

/// How the test signer behaves on its next signatures.
const OK: u8 = 0;
const FAIL: u8 = 1;
const WRONG_LENGTH: u8 = 2;
const OTHER_KEY: u8 = 3;
const SLOW: u8 = 4;

/// A private key as the test keeps it (the secret bytes, to scan for) and its signer.
type Kept = (Vec<u8>, Box<dyn Signer + Send + Sync>);

/// A host key store whose private keys the test can see (to prove edrlink
/// never does): Ed25519 seeds or P-256 PKCS#8 documents.
struct TestKeys {
    alg: KeyAlgorithm,
    keys: Mutex<HashMap<String, Kept>>,
    created: AtomicUsize,
    deleted: Mutex<Vec<String>>,
    mode: AtomicU8,
}

impl TestKeys {
    fn new(alg: KeyAlgorithm) -> Arc<Self> {
        Arc::new(TestKeys {
            alg,
            keys: Mutex::new(HashMap::new()),
            created: AtomicUsize::new(0),
            deleted: Mutex::new(vec![]),
            mode: AtomicU8::new(OK),
        })
    }

    /// Every private key this host ever made, in the forms it could leak in.
    fn secrets(&self) -> Vec<Vec<u8>> {
        self.keys
            .lock()
            .unwrap()
            .values()
            .map(|(s, _)| s.clone())
            .collect()
    }
}

impl HostKeys for TestKeys {
    fn create_key(&self) -> Result<HostKey> {
        let n = self.created.fetch_add(1, Ordering::SeqCst) + 1;
        let (secret, signer): Kept = match self.alg {
            KeyAlgorithm::Ed25519 => {
                let k = SigningKey::generate(&SystemRandom).unwrap();
                (k.seed().to_vec(), Box::new(k))
            }
            KeyAlgorithm::EcdsaP256 => {
                let k = EcdsaP256Key::generate().unwrap();
                // The private scalar sits inside the PKCS#8 document.
                (k.pkcs8().to_vec(), Box::new(k))
            }
        };
        let public = signer.public_key();
        let handle = format!("platform-key-{n}");
        self.keys
            .lock()
            .unwrap()
            .insert(handle.clone(), (secret, signer));
        HostKey::new(handle, public)
    }

    fn sign(&self, handle: &str, message: &[u8]) -> Result<Vec<u8>> {
        let keys = self.keys.lock().unwrap();
        let (_, k) = keys.get(handle).expect("edrlink names a key it was given");
        let sig = k.sign_message(message)?;
        let der = |raw: &[u8]| edrlink_core::keys::ecdsa_p256_raw_to_der(raw.try_into().unwrap());
        Ok(match self.mode.load(Ordering::SeqCst) {
            FAIL => {
                return Err(edrlink_core::Error::new(
                    ErrorCode::Internal,
                    "the keystore is locked",
                ))
            }
            WRONG_LENGTH => sig[..40].to_vec(),
            OTHER_KEY => {
                let other = SigningKey::generate(&SystemRandom).unwrap();
                other.sign(message).to_vec()
            }
            SLOW => {
                std::thread::sleep(Duration::from_millis(1300));
                sig
            }
            // Platform signers hand P-256 signatures back DER-encoded.
            _ if self.alg == KeyAlgorithm::EcdsaP256 => der(&sig),
            _ => sig,
        })
    }

    fn delete_key(&self, handle: &str) -> Result<()> {
        self.deleted.lock().unwrap().push(handle.to_owned());
        Ok(())
    }
}

/// The reference service role behind a transport that keeps every request.
struct Service {
    world: Mutex<World>,
    seen: Mutex<Vec<u8>>,
}

impl Transport for Service {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        {
            let mut seen = self.seen.lock().unwrap();
            seen.extend_from_slice(req.url.as_bytes());
            for (k, v) in &req.headers {
                seen.extend_from_slice(k.as_bytes());
                seen.extend_from_slice(v.as_bytes());
            }
            seen.extend_from_slice(&req.body);
        }
        Ok(self.world.lock().unwrap().handle(req, now()))
    }
}

#[derive(Default)]
struct Store {
    current: Mutex<Option<String>>,
    seen: Mutex<Vec<u8>>,
}

impl CredentialStore for Store {
    fn load(&self) -> Result<Option<zeroize::Zeroizing<String>>> {
        Ok(self
            .current
            .lock()
            .unwrap()
            .clone()
            .map(zeroize::Zeroizing::new))
    }
    fn save(&self, json: &str) -> Result<()> {
        self.seen.lock().unwrap().extend_from_slice(json.as_bytes());
        *self.current.lock().unwrap() = Some(json.to_owned());
        Ok(())
    }
    fn delete(&self) -> Result<()> {
        *self.current.lock().unwrap() = None;
        Ok(())
    }
}

#[derive(Default)]
struct Logs(Mutex<Vec<u8>>);

impl LogSink for Logs {
    fn log(&self, _level: LogLevel, message: &str) {
        self.0.lock().unwrap().extend_from_slice(message.as_bytes());
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Neither `secret` nor any encoding of it appears in `hay`.
fn assert_absent(hay: &[u8], secret: &[u8], what: &str) {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for form in [
        secret.to_vec(),
        b64url(secret).into_bytes(),
        b64std(secret).into_bytes(),
        hex.into_bytes(),
    ] {
        assert!(!contains(hay, &form), "a private key reached {what}");
    }
}

/// The private scalar of a P-256 PKCS#8 document made by ring (the 32
/// bytes after the ECPrivateKey's `04 20`), or an Ed25519 seed as is.
fn private_part(secret: &[u8]) -> Vec<u8> {
    if secret.len() == 32 {
        return secret.to_vec();
    }
    let i = secret
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("ECPrivateKey v1 with a 32-byte scalar");
    secret[i + 5..i + 37].to_vec()
}

fn agent(svc: &Arc<Service>, store: &Arc<Store>, keys: &Arc<TestKeys>, timeout: u64) -> Agent {
    let mut client = ClientConfig::new(device("hk"));
    client.signer_timeout_secs = timeout;
    // Retries after a signer failure come within two seconds.
    client.max_backoff_secs = 2;
    // No recovery jitter after the signer's outage (it would delay the drain).
    client.recovery_jitter_secs = 0;
    let cfg = AgentConfig {
        client,
        data_dir: None,
    };
    let keys: Arc<dyn HostKeys> = keys.clone();
    Agent::with_host(cfg, svc.clone(), Some(Box::new(store.clone())), Some(keys)).unwrap()
}

fn stored_ns(svc: &Service, inst: &str) -> Vec<i64> {
    svc.world
        .lock()
        .unwrap()
        .store
        .events_of(inst)
        .iter()
        .filter_map(|e| match e {
            Event::Generic(g) => g.data["n"].as_i64(),
            _ => None,
        })
        .collect()
}

fn whole_story(alg: KeyAlgorithm) {
    let svc = Arc::new(Service {
        world: Mutex::new(World::new()),
        seen: Mutex::new(vec![]),
    });
    let store = Arc::new(Store::default());
    let keys = TestKeys::new(alg);
    let logs = Arc::new(Logs::default());
    let a = agent(&svc, &store, &keys, 1);
    a.set_log_sink(Some(logs.clone()), LogLevel::Trace);
    let token = svc.world.lock().unwrap().token(3600, 10, now());
    let inst = a.enroll(&token).unwrap().installation_id.unwrap();
    let registered = |svc: &Service| {
        svc.world.lock().unwrap().store.installations[&inst]
            .public_key
            .unwrap()
    };
    assert_eq!(registered(&svc).algorithm(), alg);
    let saved = store.current.lock().unwrap().clone().unwrap();
    assert!(saved.contains("\"host_key\"") && !saved.contains("key_seed"));

    // Signed batches.
    for i in 0..30 {
        a.submit(generic(i)).unwrap();
    }
    assert_eq!(a.flush(10).unwrap().queued, 0);

    // A signer that fails, lies or hangs: signer_failed, nothing lost.
    for mode in [FAIL, WRONG_LENGTH, OTHER_KEY, SLOW] {
        keys.mode.store(mode, Ordering::SeqCst);
        a.submit(generic(100 + mode as usize)).unwrap();
        let e = a.flush(10).unwrap_err();
        assert_eq!(e.code(), ErrorCode::SignerFailed, "mode {mode}: {e}");
        assert_eq!(
            a.health().queued_events,
            1 + (mode as u64 - 1),
            "mode {mode}"
        );
        assert_eq!(a.health().last_error.unwrap().code, ErrorCode::SignerFailed);
    }
    keys.mode.store(OK, Ordering::SeqCst);
    let f = a.flush(10).unwrap();
    assert_eq!(f.queued, 0, "the signer recovered: everything is delivered");

    // Rotation asks the host for a new key and retires the old one.
    let first = registered(&svc);
    a.rotate().unwrap();
    assert_eq!(keys.created.load(Ordering::SeqCst), 2);
    assert_eq!(*keys.deleted.lock().unwrap(), ["platform-key-1"]);
    assert_ne!(registered(&svc), first);
    a.submit(generic(200)).unwrap();
    assert_eq!(a.flush(10).unwrap().queued, 0);
    let sent_before = a.health().sent_events;
    drop(a);

    // A restart finds the key through the store and the host.
    let b = agent(&svc, &store, &keys, 1);
    b.submit(generic(201)).unwrap();
    assert_eq!(b.flush(10).unwrap().queued, 0);
    let mut want: Vec<i64> = (0..30).collect();
    want.extend([101, 102, 103, 104, 200, 201]);
    assert_eq!(stored_ns(&svc, &inst), want, "stored == sent, once each");
    assert_eq!(
        (sent_before + b.health().sent_events) as usize,
        svc.world.lock().unwrap().store.events_of(&inst).len(),
        "every event sent was stored once (heartbeats included)"
    );

    // Without the host's keys, the stored credential is refused plainly.
    let e = Agent::with_host(
        AgentConfig {
            client: ClientConfig::new(device("hk")),
            data_dir: None,
        },
        svc.clone(),
        Some(Box::new(store.clone())),
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState);

    // No private key byte reached the store, the wire or the log.
    for secret in keys.secrets() {
        let private = private_part(&secret);
        assert_absent(&store.seen.lock().unwrap(), &private, "the store");
        assert_absent(&svc.seen.lock().unwrap(), &private, "the transport");
        assert_absent(&logs.0.lock().unwrap(), &private, "the log");
    }
}

#[test]
fn ed25519_host_key_enrolls_sends_rotates_and_survives_a_bad_signer() {
    whole_story(KeyAlgorithm::Ed25519);
}

#[test]
fn p256_host_key_enrolls_sends_rotates_and_survives_a_bad_signer() {
    whole_story(KeyAlgorithm::EcdsaP256);
}

/// The sans-IO client with a host that answers later (as WebCrypto does):
/// requests wait, parked with their signing input fixed, and finish when
/// the signature comes.
#[test]
fn sans_io_client_waits_for_an_asynchronous_host() {
    let mut w = World::new();
    let t = now();
    let keys = TestKeys::new(KeyAlgorithm::EcdsaP256);
    let mut c = PartnerClient::new(ClientConfig::new(device("async")), Box::new(SystemRandom));
    c.use_host_keys();
    c.redeem(&w.token(3600, 10, t)).unwrap();
    c.submit(generic(0), t).unwrap();
    c.flush();
    let mut parked = 0;
    let mut deferred = Vec::new();
    for _ in 0..100 {
        if let Some(req) = c.poll_request(t) {
            let resp = w.handle(&req, t);
            c.handle_response(req.id, &resp, t);
            continue;
        }
        // Answer the previous round's host work only now.
        for (id, kind) in deferred.drain(..) {
            let answer = match kind {
                HostRequestKind::CreateKey => keys.create_key().map(HostAnswer::Key),
                HostRequestKind::Sign { handle, message } => {
                    keys.sign(&handle, &message).map(HostAnswer::Signature)
                }
                HostRequestKind::DeleteKey { handle } => {
                    keys.delete_key(&handle).map(|()| HostAnswer::Deleted)
                }
            };
            c.handle_host_answer(id, answer, t);
        }
        while let Some(h) = c.poll_host_request() {
            assert!(
                c.poll_request(t).is_none(),
                "nothing is sent while the host signs"
            );
            parked += 1;
            deferred.push((h.id, h.kind));
        }
        if deferred.is_empty() && c.poll_host_request().is_none() && c.is_idle() {
            break;
        }
    }
    assert!(c.is_idle(), "everything delivered");
    // Create, then sign redeem, hello, ingest.
    assert!(parked >= 4, "{parked}");
    let inst = c.health(t).installation_id.unwrap();
    let generic = w
        .store
        .events_of(&inst)
        .into_iter()
        .filter(|e| matches!(e, Event::Generic(_)))
        .count();
    assert_eq!(generic, 1);
    let cred = c.credential().unwrap();
    assert!(matches!(cred.public_key().unwrap(), VerifyingKey::P256(_)));
    assert_eq!(
        cred.signing_key().unwrap_err().code(),
        ErrorCode::InvalidState
    );
}
