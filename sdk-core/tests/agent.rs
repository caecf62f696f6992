//! The blocking agent against the in-process service role, through a fake
//! transport that injects failures: nothing is lost, nothing is stored twice.
#![cfg(feature = "agent")]

use edrlink_core::agent::{
    Agent, AgentConfig, EventSink, FlushOutcome, LogLevel, LogSink, Transport,
};
use edrlink_core::client::{ClientConfig, ClientEvent};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::memory_store::MemoryStore;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::service::{Integration, ServiceConfig, ServiceRole};
use edrlink_core::telemetry::Event;
use edrlink_core::{Error, ErrorCode, Result};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const BASE: &str = "https://svc.test";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Connection refused: the service never sees the request.
    Refuse,
    /// The service handles (and stores) it, but the answer is lost.
    LoseAnswer,
    /// Like `LoseAnswer`, and the service goes down right after.
    LoseAnswerThenDown,
    /// 503 with `Retry-After: n`, not forwarded.
    Unavailable(u64),
}

struct FakeService {
    svc: Mutex<(ServiceRole, MemoryStore)>,
    faults: Mutex<VecDeque<(&'static str, Fault)>>,
    down: std::sync::atomic::AtomicBool,
    /// Every ingest is answered `session_expired` (a service that never settles).
    expire_sessions: std::sync::atomic::AtomicBool,
    sent: Mutex<Vec<String>>,
}

impl FakeService {
    fn new() -> Arc<Self> {
        let cfg = ServiceConfig {
            issuer: "test".into(),
            region: "eu".into(),
            service_url: BASE.into(),
            keys: vec![SigningKey::from_seed(&[7; 32]).unwrap()],
            policy: edrlink_core::policy::Policy::default(),
            rate_limit: edrlink_core::service::RateLimit::default(),
            session_lifetime: 3600,
        };
        let role = ServiceRole::new(cfg, Box::new(SystemRandom)).unwrap();
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
        Arc::new(FakeService {
            svc: Mutex::new((role, store)),
            faults: Mutex::new(VecDeque::new()),
            down: false.into(),
            expire_sessions: false.into(),
            sent: Mutex::new(vec![]),
        })
    }

    fn token(&self) -> String {
        let mut g = self.svc.lock().unwrap();
        let (role, store) = &mut *g;
        let (tok, _) = role
            .issue_token(store, "t1", "bd", 3600, 10, now())
            .unwrap();
        tok
    }

    /// Toggles the integration through the service role (off bumps the epoch).
    fn toggle(&self, enabled: bool) {
        let mut g = self.svc.lock().unwrap();
        let (role, store) = &mut *g;
        role.set_integration(store, "t1", "bd", enabled, now())
            .unwrap();
    }

    fn fault(&self, path: &'static str, f: Fault) {
        self.faults.lock().unwrap().push_back((path, f));
    }

    /// Stored events per installation, and the number of stored batches.
    fn stored(&self, inst: &str) -> (Vec<Event>, usize) {
        let g = self.svc.lock().unwrap();
        (
            g.1.events_of(inst),
            g.1.batches
                .values()
                .filter(|b| b.installation_id == inst)
                .count(),
        )
    }

    fn sent_paths(&self, path: &str) -> usize {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

impl Transport for FakeService {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        let path = req
            .url
            .strip_prefix(BASE)
            .expect("request goes to the service URL")
            .to_owned();
        self.sent.lock().unwrap().push(path.clone());
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorCode::Transport,
                "connection refused (service down)",
            ));
        }
        if path == "/v1/ingest" && self.expire_sessions.load(Ordering::SeqCst) {
            return Ok(edrlink_core::http::problem(
                &Error::new(ErrorCode::SessionExpired, "session expired"),
                None,
            ));
        }
        let fault = {
            let mut f = self.faults.lock().unwrap();
            f.iter()
                .position(|(p, _)| *p == path)
                .and_then(|i| f.remove(i))
                .map(|(_, f)| f)
        };
        let forward = |svc: &Mutex<(ServiceRole, MemoryStore)>| {
            let mut g = svc.lock().unwrap();
            let (role, store) = &mut *g;
            role.handle(
                store,
                &HttpRequest {
                    url: path.clone(),
                    ..req.clone()
                },
                now(),
            )
        };
        match fault {
            None => Ok(forward(&self.svc)),
            Some(Fault::Refuse) => Err(Error::new(ErrorCode::Transport, "connection refused")),
            Some(Fault::LoseAnswer) => {
                let _ = forward(&self.svc);
                Err(Error::new(
                    ErrorCode::Transport,
                    "connection reset after the request was sent",
                ))
            }
            Some(Fault::LoseAnswerThenDown) => {
                let _ = forward(&self.svc);
                self.down.store(true, Ordering::SeqCst);
                Err(Error::new(
                    ErrorCode::Transport,
                    "connection reset after the request was sent",
                ))
            }
            Some(Fault::Unavailable(s)) => {
                let mut r = HttpResponse::new(503, "text/plain", b"maintenance".to_vec());
                r.headers.push(("retry-after".into(), s.to_string()));
                Ok(r)
            }
        }
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

static DIRS: AtomicUsize = AtomicUsize::new(0);

fn data_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "edrlink-agent-test-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn agent(svc: &Arc<FakeService>, id: &str, dir: Option<PathBuf>) -> Agent {
    Agent::new(
        AgentConfig {
            client: ClientConfig::new(device(id)),
            data_dir: dir,
        },
        svc.clone(),
    )
    .unwrap()
}

fn generic(i: usize) -> String {
    format!(
        r#"{{"type":"generic","time":"{}","name":"process_start","data":{{"n":{i}}}}}"#,
        edrlink_core::encoding::rfc3339(now())
    )
}

/// Every event submitted is stored exactly once, in order.
fn assert_exactly_once(svc: &FakeService, a: &Agent, n: usize) {
    let inst = a.health().installation_id.unwrap();
    let (events, _) = svc.stored(&inst);
    let ns: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Generic(g) => g.data["n"].as_i64(),
            _ => None,
        })
        .collect();
    assert_eq!(
        ns,
        (0..n as i64).collect::<Vec<_>>(),
        "each event stored once, in order"
    );
    assert_eq!(
        events.len() as u64,
        a.health().sent_events,
        "stored == sent"
    );
}

#[test]
fn enroll_persists_credential_privately_and_reloads() {
    let svc = FakeService::new();
    let dir = data_dir();
    let a = agent(&svc, "d1", Some(dir.clone()));
    let h = a.enroll(&svc.token()).unwrap();
    assert!(h.onboarded && h.healthy, "{h:?}");
    assert_eq!(h.flow, Some(FlowState::Open));
    let file = dir.join("credential.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let inst = h.installation_id.unwrap();
    drop(a);
    // A new process: the credential is loaded, the handshake is repeated, data flows.
    let b = agent(&svc, "d1", Some(dir.clone()));
    assert_eq!(b.health().installation_id.as_deref(), Some(inst.as_str()));
    assert_eq!(b.handshake().unwrap(), FlowState::Open);
    b.submit_json(&generic(0)).unwrap();
    let out = b.flush(10).unwrap();
    assert_eq!(out.queued, 0);
    assert!(out.delivered >= 1);
    assert_exactly_once(&svc, &b, 1);
    // Opt-out: the service records it and the stored credential is gone.
    b.offboard(None).unwrap();
    assert!(!file.exists());
    assert!(svc.svc.lock().unwrap().1.installations[&inst].offboarded);
    // One process per data directory: the spool is locked while an agent holds it.
    let e = Agent::new(
        AgentConfig {
            client: ClientConfig::new(device("d1")),
            data_dir: Some(dir.clone()),
        },
        svc.clone(),
    )
    .err()
    .unwrap();
    assert_eq!(e.code(), ErrorCode::Storage);
    drop(b);
    assert!(!agent(&svc, "d1", Some(dir.clone())).health().onboarded);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn connection_error_then_success_loses_nothing() {
    let svc = FakeService::new();
    let a = agent(&svc, "d2", None);
    svc.fault("/v1/redeem", Fault::Refuse);
    a.enroll(&svc.token()).unwrap();
    for i in 0..20 {
        a.submit_json(&generic(i)).unwrap();
    }
    svc.fault("/v1/ingest", Fault::Refuse);
    let out = a.flush(30).unwrap();
    assert_eq!(
        out,
        FlushOutcome {
            delivered: 21,
            queued: 0
        },
        "20 events + 1 heartbeat"
    );
    assert_exactly_once(&svc, &a, 20);
    assert_eq!(svc.sent_paths("/v1/redeem"), 2);
}

#[test]
fn lost_answer_is_retried_and_stored_once() {
    let svc = FakeService::new();
    let a = agent(&svc, "d3", None);
    a.enroll(&svc.token()).unwrap();
    for i in 0..5 {
        a.submit_json(&generic(i)).unwrap();
    }
    // The service stores the batch but the acknowledgement never arrives.
    svc.fault("/v1/ingest", Fault::LoseAnswer);
    let out = a.flush(30).unwrap();
    assert_eq!(out.queued, 0);
    assert_eq!(
        svc.sent_paths("/v1/ingest"),
        2,
        "the same batch was sent again"
    );
    let (_, batches) = svc.stored(&a.health().installation_id.unwrap());
    assert_eq!(batches, 1, "the retry was recognised as a duplicate");
    assert_exactly_once(&svc, &a, 5);
}

#[test]
fn unavailable_with_retry_after_is_honoured() {
    let svc = FakeService::new();
    let a = agent(&svc, "d4", None);
    a.enroll(&svc.token()).unwrap();
    a.submit_json(&generic(0)).unwrap();
    svc.fault("/v1/ingest", Fault::Unavailable(2));
    let t = Instant::now();
    let out = a.flush(30).unwrap();
    assert!(t.elapsed().as_secs_f64() >= 1.0, "waited for Retry-After");
    assert_eq!(out.queued, 0);
    assert_exactly_once(&svc, &a, 1);
}

#[test]
fn deadline_keeps_everything_queued() {
    let svc = FakeService::new();
    let a = agent(&svc, "d5", None);
    a.enroll(&svc.token()).unwrap();
    for i in 0..3 {
        a.submit_json(&generic(i)).unwrap();
    }
    svc.down.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let out = a.flush(2).unwrap();
    // Proves flush gives up (it would retry forever otherwise); the bound is
    // far from the 2 s deadline so a loaded machine cannot fail it.
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    assert_eq!(out.delivered, 0);
    assert_eq!(out.queued, 4, "3 events + heartbeat stay queued");
    assert_eq!(a.health().last_error.unwrap().code, ErrorCode::Transport);
    svc.down.store(false, Ordering::SeqCst);
    let out = a.flush(30).unwrap();
    assert_eq!(
        out,
        FlushOutcome {
            delivered: 4,
            queued: 0
        }
    );
    assert_exactly_once(&svc, &a, 3);
}

#[test]
fn blocked_then_revoked_then_reenrolled_delivers_the_queue() {
    let svc = FakeService::new();
    let a = agent(&svc, "d6", None);
    let old = svc.token();
    a.enroll(&old).unwrap();
    a.submit_json(&generic(0)).unwrap();
    a.flush(10).unwrap();
    svc.toggle(false);
    for i in 1..4 {
        a.submit_json(&generic(i)).unwrap();
    }
    let e = a.flush(10).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FlowBlocked);
    assert_eq!(a.health().queued_events, 3);
    assert_eq!(a.handshake().unwrap(), FlowState::Blocked);
    // Turned back on: the epoch moved, the old credential is refused and the old token too.
    svc.toggle(true);
    assert_eq!(a.handshake().unwrap(), FlowState::Revoked);
    let e = a.flush(5).unwrap_err();
    assert!(
        matches!(e.code(), ErrorCode::EpochMismatch | ErrorCode::Revoked),
        "{e}"
    );
    assert!(a.health().needs_new_token);
    assert_eq!(a.enroll(&old).unwrap_err().code(), ErrorCode::EpochMismatch);
    // A new token re-onboards the same installation; the queue is delivered.
    let inst = a.health().installation_id.unwrap();
    let h = a.enroll(&svc.token()).unwrap();
    assert_eq!(h.installation_id.as_deref(), Some(inst.as_str()));
    let out = a.flush(10).unwrap();
    assert_eq!(out.queued, 0);
    assert_exactly_once(&svc, &a, 4);
}

#[test]
fn refused_tokens_keep_their_codes() {
    let svc = FakeService::new();
    let a = agent(&svc, "d7", None);
    assert_eq!(
        a.enroll("garbage").unwrap_err().code(),
        ErrorCode::Malformed
    );
    let tok = svc.token();
    svc.toggle(false);
    assert_eq!(
        a.enroll(&tok).unwrap_err().code(),
        ErrorCode::IntegrationDisabled
    );
    assert!(!a.health().onboarded);
    assert_eq!(
        a.flush(1).unwrap(),
        FlushOutcome::default(),
        "nothing to do"
    );
    a.submit_json(&generic(0)).unwrap();
    assert_eq!(
        a.flush(1).unwrap_err().code(),
        ErrorCode::InvalidState,
        "queued but not enrolled"
    );
    assert_eq!(a.health().queued_events, 1);
    assert_eq!(a.handshake().unwrap_err().code(), ErrorCode::InvalidState);
}

#[test]
fn submit_from_threads_while_flushing() {
    let svc = FakeService::new();
    let a = Arc::new(agent(&svc, "d8", None));
    a.enroll(&svc.token()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    a.submit_json(&generic(t * 25 + i)).unwrap();
                    if i % 10 == 0 {
                        a.flush(10).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.flush(10).unwrap().queued, 0);
    let inst = a.health().installation_id.unwrap();
    let (events, _) = svc.stored(&inst);
    let mut ns: Vec<i64> = events
        .iter()
        .filter_map(|e| {
            if let Event::Generic(g) = e {
                g.data["n"].as_i64()
            } else {
                None
            }
        })
        .collect();
    ns.sort();
    assert_eq!(ns, (0..100).collect::<Vec<_>>());
    assert_eq!(events.len() as u64, a.health().sent_events);
}

#[test]
fn eicar_test_detection_raises_an_alert() {
    let svc = FakeService::new();
    let a = agent(&svc, "d9", None);
    a.enroll(&svc.token()).unwrap();
    a.send_test_detection().unwrap();
    a.flush(10).unwrap();
    let g = svc.svc.lock().unwrap();
    assert_eq!(g.1.alerts.len(), 1);
    assert_eq!(
        g.1.alerts[0].1.title,
        edrlink_core::eicar::EICAR_ALERT_TITLE
    );
    assert!(g.1.alerts[0].1.test);
}

#[test]
fn undelivered_events_survive_a_restart() {
    let svc = FakeService::new();
    let dir = data_dir();
    let a = agent(&svc, "d10", Some(dir.clone()));
    a.enroll(&svc.token()).unwrap();
    for i in 0..5 {
        a.submit_json(&generic(i)).unwrap();
    }
    // The batch is stored by the service but its acknowledgement is lost, the
    // service stays unreachable, and the process ends before it could retry.
    svc.fault("/v1/ingest", Fault::LoseAnswerThenDown);
    let out = a.flush(1).unwrap();
    assert_eq!(
        out,
        FlushOutcome {
            delivered: 0,
            queued: 6
        },
        "5 events + heartbeat kept"
    );
    svc.down.store(false, Ordering::SeqCst);
    let inst = a.health().installation_id.unwrap();
    drop(a);
    let b = agent(&svc, "d10", Some(dir.clone()));
    assert_eq!(b.health().queued_events, 6);
    let out = b.flush(30).unwrap();
    assert_eq!(out.queued, 0);
    // The re-sent batch was recognised as a duplicate: every event once.
    assert_eq!(
        svc.stored(&inst).0.len(),
        7,
        "5 events + 2 heartbeats (one per process)"
    );
    assert_exactly_once(&svc, &b, 5);
    drop(b);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn flush_returns_at_the_deadline_even_if_the_service_never_settles() {
    let svc = FakeService::new();
    let a = agent(&svc, "d11", None);
    a.enroll(&svc.token()).unwrap();
    a.submit_json(&generic(0)).unwrap();
    svc.expire_sessions.store(true, Ordering::SeqCst);
    let t = Instant::now();
    let out = a.flush(1).unwrap();
    // Returns rather than hangs; not a speed bound (a loaded machine is slow).
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    assert_eq!(out.delivered, 0);
    assert!(out.queued >= 1);
    svc.expire_sessions.store(false, Ordering::SeqCst);
    assert_eq!(a.flush(10).unwrap().queued, 0);
    assert_exactly_once(&svc, &a, 1);
}

/// A host keystore stand-in: the credential lives only here.
#[derive(Default)]
struct Keystore(Mutex<Option<String>>, AtomicUsize);

impl edrlink_core::agent::CredentialStore for Keystore {
    fn load(&self) -> Result<Option<zeroize::Zeroizing<String>>> {
        Ok(self.0.lock().unwrap().clone().map(zeroize::Zeroizing::new))
    }
    fn save(&self, json: &str) -> Result<()> {
        self.1.fetch_add(1, Ordering::Relaxed);
        *self.0.lock().unwrap() = Some(json.to_owned());
        Ok(())
    }
    fn delete(&self) -> Result<()> {
        *self.0.lock().unwrap() = None;
        Ok(())
    }
}

#[test]
fn host_credential_store_replaces_the_file() {
    let svc = FakeService::new();
    let dir = data_dir();
    let ks = Arc::new(Keystore::default());
    let make = || {
        let cfg = AgentConfig {
            client: ClientConfig::new(device("ks")),
            data_dir: Some(dir.clone()),
        };
        Agent::with_store(cfg, svc.clone(), Some(Box::new(ks.clone()))).unwrap()
    };
    let a = make();
    let inst = a.enroll(&svc.token()).unwrap().installation_id.unwrap();
    assert!(
        ks.1.load(Ordering::Relaxed) >= 1,
        "saved through the host store"
    );
    assert!(
        !dir.join("credential.json").exists(),
        "no credential file beside the spool"
    );
    drop(a);
    let b = make();
    assert_eq!(
        b.health().installation_id.as_deref(),
        Some(inst.as_str()),
        "loaded from the host store"
    );
    b.submit_json(&generic(0)).unwrap();
    assert_eq!(b.flush(10).unwrap().queued, 0);
    b.offboard(None).unwrap();
    assert!(
        ks.0.lock().unwrap().is_none(),
        "offboarding deletes it from the host store"
    );
}

/// Records what the sinks receive; while `agent` is set, the event sink
/// calls back into the agent (as hosts do: read health, queue an event,
/// even try to start an operation).
#[derive(Default)]
struct Recorder {
    logs: Mutex<Vec<(LogLevel, String)>>,
    events: Mutex<Vec<ClientEvent>>,
    agent: Mutex<Option<std::sync::Weak<Agent>>>,
    reentry: Mutex<Vec<ErrorCode>>,
}

impl LogSink for Recorder {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_owned()));
    }
}

impl EventSink for Recorder {
    fn on_event(&self, event: &ClientEvent) {
        self.events.lock().unwrap().push(event.clone());
        let agent = self
            .agent
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|w| w.upgrade());
        if let Some(a) = agent {
            // Reading state and queueing from a sink must not deadlock.
            let _ = a.health();
            if matches!(event, ClientEvent::Delivered(_)) && a.health().sent_events < 3 {
                a.submit_json(&generic(1000)).unwrap();
            }
            // Starting an operation while one runs on this thread is refused.
            if *event == ClientEvent::CredentialChanged {
                if let Err(e) = a.flush(0) {
                    self.reentry.lock().unwrap().push(e.code());
                }
            }
        }
    }
}

#[test]
fn sinks_see_events_and_filtered_records_and_may_call_back() {
    let svc = FakeService::new();
    let a = Arc::new(agent(&svc, "sinks", None));
    let rec = Arc::new(Recorder::default());
    *rec.agent.lock().unwrap() = Some(Arc::downgrade(&a));
    a.set_log_sink(Some(rec.clone()), LogLevel::Info);
    a.set_event_sink(Some(rec.clone()));
    a.enroll(&svc.token()).unwrap();
    {
        let evs = rec.events.lock().unwrap();
        assert_eq!(
            evs.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
            [
                r#"{"type":"credential_changed"}"#,
                r#"{"type":"flow_changed","flow":"open"}"#
            ]
        );
        let logs = rec.logs.lock().unwrap();
        assert!(
            logs.iter()
                .any(|(l, m)| *l == LogLevel::Info && m == "flow is now open"),
            "{logs:?}"
        );
        assert!(
            logs.iter().all(|(l, _)| *l <= LogLevel::Info),
            "debug records are filtered: {logs:?}"
        );
    }
    assert_eq!(
        *rec.reentry.lock().unwrap(),
        [ErrorCode::InvalidState],
        "an operation started from a sink during one is refused, not deadlocked"
    );
    // The sink queued an event on delivery; the next flush takes it too.
    a.submit_json(&generic(0)).unwrap();
    a.flush(10).unwrap();
    assert_eq!(a.flush(10).unwrap().queued, 0);
    let inst = a.health().installation_id.unwrap();
    assert!(svc.stored(&inst).0.iter().any(|e| matches!(
        e,
        Event::Generic(g) if g.data["n"] == 1000
    )));
    assert!(rec
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ClientEvent::Delivered(_))));
    // Removing the sinks stops delivery to them.
    a.set_log_sink(None, LogLevel::Trace);
    a.set_event_sink(None);
    let (n_logs, n_events) = (
        rec.logs.lock().unwrap().len(),
        rec.events.lock().unwrap().len(),
    );
    a.handshake().unwrap();
    assert_eq!(rec.logs.lock().unwrap().len(), n_logs);
    assert_eq!(rec.events.lock().unwrap().len(), n_events);
}

#[test]
fn a_full_queue_reaches_the_event_sink_from_submit() {
    let svc = FakeService::new();
    let mut cfg = ClientConfig::new(device("full"));
    cfg.max_queue_events = 1;
    let a = Agent::new(
        AgentConfig {
            client: cfg,
            data_dir: None,
        },
        svc.clone(),
    )
    .unwrap();
    let rec = Arc::new(Recorder::default());
    a.set_event_sink(Some(rec.clone()));
    a.set_log_sink(Some(rec.clone()), LogLevel::Warn);
    a.submit_json(&generic(0)).unwrap();
    assert_eq!(
        a.submit_json(&generic(1)).unwrap_err().code(),
        ErrorCode::QueueFull
    );
    assert_eq!(
        *rec.events.lock().unwrap(),
        [
            ClientEvent::QueueFull,
            ClientEvent::EventsDropped {
                reason: "queue_full".into(),
                count: 1
            }
        ]
    );
    assert!(rec
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == LogLevel::Warn && m.contains("queue is full")));
}

#[test]
fn rotate_forces_a_new_key_and_persists_it() {
    let svc = FakeService::new();
    let dir = data_dir();
    let a = agent(&svc, "rot", Some(dir.clone()));
    let rec = Arc::new(Recorder::default());
    a.set_event_sink(Some(rec.clone()));
    let inst = a.enroll(&svc.token()).unwrap().installation_id.unwrap();
    let before = std::fs::read_to_string(dir.join("credential.json")).unwrap();
    let old_kid = a.credential().unwrap().signing_key().unwrap().key_id();
    rec.events.lock().unwrap().clear();
    a.rotate().unwrap();
    let new_kid = a.credential().unwrap().signing_key().unwrap().key_id();
    assert_ne!(new_kid, old_kid);
    let after = std::fs::read_to_string(dir.join("credential.json")).unwrap();
    assert_ne!(after, before, "the rotated credential was persisted");
    assert_eq!(
        edrlink_core::credential::Credential::from_json(&after)
            .unwrap()
            .signing_key()
            .unwrap()
            .key_id(),
        new_kid
    );
    assert_eq!(
        *rec.events.lock().unwrap(),
        [
            ClientEvent::CredentialChanged,
            ClientEvent::CredentialRotated
        ]
    );
    assert_eq!(
        svc.svc.lock().unwrap().1.installations[&inst]
            .public_key
            .unwrap()
            .key_id(),
        new_kid
    );
    a.submit_json(&generic(0)).unwrap();
    assert_eq!(a.flush(10).unwrap().queued, 0, "sends with the new key");
    // Refused while the integration is off: the code comes back and stays.
    svc.toggle(false);
    let e = a.rotate().unwrap_err();
    assert!(
        matches!(e.code(), ErrorCode::FlowBlocked | ErrorCode::EpochMismatch),
        "{e}"
    );
    drop(a);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A minimal `tracing` subscriber that keeps every event's target, level and message.
struct Collect(Arc<Mutex<Vec<(String, tracing::Level, String)>>>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Collect {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0.lock().unwrap().push((
            event.metadata().target().to_owned(),
            *event.metadata().level(),
            m.0,
        ));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn records_also_go_through_tracing() {
    let svc = FakeService::new();
    let a = agent(&svc, "tracing", None);
    let seen = Arc::new(Mutex::new(vec![]));
    let token = svc.token();
    tracing::subscriber::with_default(Collect(seen.clone()), || {
        a.enroll(&token).unwrap();
    });
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|(t, _, _)| t == "edrlink"),
        "target edrlink: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, l, m)| *l == tracing::Level::DEBUG && m.contains("POST /v1/redeem")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(_, l, m)| *l == tracing::Level::INFO && m == "flow is now open"),
        "{seen:?}"
    );
    assert!(
        seen.iter().all(|(_, _, m)| !m.contains(&token[..20])),
        "no token text"
    );
}
