//! Shared pieces of the reliability tests: the real reference service on
//! loopback, a small admin client, a fault-injecting transport, and a reader
//! of what the service stored (straight from its SQLite file).

use edrlink_core::agent::{Agent, AgentConfig, Transport};
use edrlink_core::client::ClientConfig;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::telemetry::{Event, GenericEvent};
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_core::{Error, ErrorCode, Result};
use edrlink_service::{RunningService, Settings};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The admin key every test service uses.
pub const ADMIN_KEY: &str = "reliability-admin-key-0123456789abcdef";
/// Tenant and partner of the tests.
pub const TENANT: &str = "t-rel";
/// Partner id.
pub const PARTNER: &str = "bitdefender";

/// A reference service on a SQLite file, restartable on the same address.
pub struct Service {
    /// The running instance (None while "down").
    pub running: Option<RunningService>,
    /// Its database file.
    pub db: PathBuf,
    /// Its address (kept across restarts).
    pub addr: SocketAddr,
    settings: Settings,
}

impl Service {
    /// Starts a service on 127.0.0.1:0 with a database in `dir`.
    pub fn start(dir: &Path, tweak: impl FnOnce(&mut Settings)) -> Service {
        let mut settings = Settings {
            db_path: Some(dir.join("service.db")),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_key: ADMIN_KEY.into(),
            ..Settings::default()
        };
        tweak(&mut settings);
        let running = RunningService::start(settings.clone()).expect("service starts");
        let addr = running.addr();
        settings.listen = addr;
        Service {
            running: Some(running),
            db: dir.join("service.db"),
            addr,
            settings,
        }
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the service (graceful).
    pub fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }

    /// Starts it again on the same address and file.
    pub fn restart(&mut self) {
        self.stop();
        for _ in 0..50 {
            match RunningService::start(self.settings.clone()) {
                Ok(r) => {
                    self.running = Some(r);
                    return;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        }
        panic!("service did not restart on {}", self.addr);
    }

    fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let url = format!("{}{path}", self.url());
        let auth = format!("Bearer {ADMIN_KEY}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let resp = match (method, body) {
            ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
            ("DELETE", _) => agent.delete(&url).header("authorization", &auth).call(),
            ("PUT", Some(b)) => agent.put(&url).header("authorization", &auth).send_json(b),
            (_, b) => agent
                .post(&url)
                .header("authorization", &auth)
                .send_json(b.unwrap_or(serde_json::json!({}))),
        };
        let mut resp = resp.expect("admin API reachable");
        let status = resp.status().as_u16();
        let v: serde_json::Value = resp
            .body_mut()
            .read_json()
            .unwrap_or(serde_json::Value::Null);
        assert!(status < 300, "admin {method} {path} answered {status}: {v}");
        v
    }

    /// Creates the test tenant and turns the integration on.
    pub fn setup_tenant(&self) {
        self.admin(
            "POST",
            "/admin/tenants",
            Some(serde_json::json!({"tenant_id": TENANT, "region": "eu"})),
        );
        self.set_integration(true);
    }

    /// Turns the integration on or off.
    pub fn set_integration(&self, enabled: bool) {
        self.admin(
            "PUT",
            &format!("/admin/tenants/{TENANT}/integrations/{PARTNER}"),
            Some(serde_json::json!({"enabled": enabled})),
        );
    }

    /// Generates an access token.
    pub fn token(&self) -> String {
        let v = self.admin(
            "POST",
            &format!("/admin/tenants/{TENANT}/integrations/{PARTNER}/tokens"),
            Some(serde_json::json!({})),
        );
        v["token"].as_str().expect("token").to_owned()
    }

    /// Numbers `n` of the test events `e<n>` in the batches stored for an
    /// installation with a sequence number above `after_seq`, in sequence order,
    /// and the highest sequence number read (for reading only what is new).
    pub fn stored_numbers_since(&self, installation_id: &str, after_seq: u64) -> (Vec<u64>, u64) {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open service db");
        let mut st = conn
            .prepare(
                "SELECT seq, events_json FROM batches WHERE installation_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .unwrap();
        let rows = st
            .query_map(rusqlite::params![installation_id, after_seq as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .unwrap();
        let mut out = Vec::new();
        let mut last = after_seq;
        for r in rows {
            let (seq, json) = r.unwrap();
            last = last.max(seq as u64);
            let events: Vec<Event> = serde_json::from_slice(&json).expect("stored events parse");
            out.extend(events.into_iter().filter_map(|e| match e {
                Event::Generic(g) => g.name.strip_prefix('e')?.parse::<u64>().ok(),
                _ => None,
            }));
        }
        (out, last)
    }

    /// Names of the generic events stored for an installation, in sequence order.
    pub fn stored_names(&self, installation_id: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open service db");
        let mut st = conn
            .prepare("SELECT events_json FROM batches WHERE installation_id = ?1 ORDER BY seq")
            .unwrap();
        let rows = st
            .query_map([installation_id], |r| r.get::<_, Vec<u8>>(0))
            .unwrap();
        let mut out = Vec::new();
        for r in rows {
            let events: Vec<Event> =
                serde_json::from_slice(&r.unwrap()).expect("stored events parse");
            out.extend(events.into_iter().filter_map(|e| match e {
                Event::Generic(g) => Some(g.name),
                _ => None,
            }));
        }
        out
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A test event named `e<n>`.
pub fn event(n: u64) -> Event {
    Event::Generic(GenericEvent {
        time: edrlink_core::encoding::rfc3339(1_800_000_000),
        name: format!("e{n}"),
        data: serde_json::json!({"n": n}),
    })
}

/// Device facts for test endpoint `id`.
pub fn device(id: &str) -> DeviceFacts {
    DeviceFacts {
        device_id: id.into(),
        hostname: format!("host-{id}"),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "Reliability AV".into(),
        product_version: "1.0".into(),
    }
}

/// Client settings for fast tests (short delays, no recovery jitter).
pub fn fast_config(id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(device(id));
    c.max_batch_delay_secs = 0;
    c.recovery_jitter_secs = 0;
    c.max_backoff_secs = 2;
    c.blocked_recheck_secs = 1;
    c
}

/// One scripted fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Fail before sending (connection refused).
    Refuse,
    /// Send, then drop the answer (connection reset mid-request: the ack is lost).
    LoseAnswer,
    /// Answer this status without sending.
    Status(u16),
}

/// A transport that injects scripted faults in front of the real HTTP transport.
#[derive(Clone)]
pub struct FaultTransport {
    inner: Arc<HttpTransport>,
    /// Faults applied to the next requests whose path matches, in order.
    pub script: Arc<Mutex<VecDeque<(String, Fault)>>>,
    /// Requests seen (path).
    pub log: Arc<Mutex<Vec<String>>>,
}

impl FaultTransport {
    /// A pass-through transport.
    pub fn new() -> FaultTransport {
        FaultTransport {
            inner: Arc::new(HttpTransport::new(HttpOptions::default()).unwrap()),
            script: Default::default(),
            log: Default::default(),
        }
    }

    /// Schedules `fault` for the next request to a path ending with `path`.
    pub fn inject(&self, path: &str, fault: Fault) {
        self.script
            .lock()
            .unwrap()
            .push_back((path.to_owned(), fault));
    }
}

impl Default for FaultTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for FaultTransport {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        let path = req
            .url
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        self.log.lock().unwrap().push(path.clone());
        let fault = {
            let mut s = self.script.lock().unwrap();
            match s.iter().position(|(p, _)| path.ends_with(p.as_str())) {
                Some(i) => s.remove(i).map(|(_, f)| f),
                None => None,
            }
        };
        match fault {
            None => self.inner.send(req),
            Some(Fault::Refuse) => Err(Error::new(
                ErrorCode::Transport,
                "injected: connection refused",
            )),
            Some(Fault::LoseAnswer) => {
                let _ = self.inner.send(req);
                Err(Error::new(
                    ErrorCode::Transport,
                    "injected: connection reset by peer",
                ))
            }
            Some(Fault::Status(code)) => {
                Ok(HttpResponse::new(code, "text/plain", b"injected".to_vec()))
            }
        }
    }
}

/// An agent with a durable spool in `dir`.
pub fn agent(dir: &Path, cfg: ClientConfig, transport: impl Transport + 'static) -> Agent {
    Agent::new(
        AgentConfig {
            client: cfg,
            data_dir: Some(dir.to_path_buf()),
        },
        transport,
    )
    .expect("agent opens")
}
