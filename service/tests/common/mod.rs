//! Shared test support: start the real service on 127.0.0.1:0 with a real
//! SQLite file, talk to it over real HTTP (ureq), and drive the partner side
//! with sdk-core (the sans-IO `PartnerClient`, or hand-signed messages).
#![allow(dead_code)]

use edrlink_core::client::{ClientConfig, ClientEvent, PartnerClient};
use edrlink_core::encoding::rfc3339;
use edrlink_core::handshake::{self, Hello, SensorState};
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{random_id, SigningKey, SystemRandom};
use edrlink_core::redeem::{self, DeviceFacts, RequestClaims};
use edrlink_core::telemetry::{self, Batch, Event, GenericEvent};
use edrlink_core::{dsse, jws};
use edrlink_service::{Clock, RunningService, Settings};
use serde_json::{json, Value};
use std::path::PathBuf;

pub const ADMIN: &str = "test-admin-key-0123456789abcdefghij";
pub const PARTNER: &str = "acme";

pub struct Svc {
    pub svc: Option<RunningService>,
    pub http: Http,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

pub fn settings(db: PathBuf, clock: Clock) -> Settings {
    Settings {
        db_path: Some(db),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_key: ADMIN.into(),
        region: "eu".into(),
        clock,
        ..Settings::default()
    }
}

impl Svc {
    pub fn start() -> Svc {
        Svc::start_with(|_| {})
    }

    pub fn start_with(f: impl FnOnce(&mut Settings)) -> Svc {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("edrlink.db");
        let clock = Clock::default();
        let mut s = settings(db.clone(), clock.clone());
        f(&mut s);
        let svc = RunningService::start(s).unwrap();
        let http = Http::new(svc.url());
        Svc {
            svc: Some(svc),
            http,
            clock,
            dir,
            db,
        }
    }

    pub fn url(&self) -> String {
        self.svc.as_ref().unwrap().url().to_owned()
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Stops the service and starts it again on the same database file.
    pub fn restart_with(&mut self, f: impl FnOnce(&mut Settings)) {
        self.svc.take().unwrap().shutdown();
        let mut s = settings(self.db.clone(), self.clock.clone());
        f(&mut s);
        let svc = RunningService::start(s).unwrap();
        self.http = Http::new(svc.url());
        self.svc = Some(svc);
    }

    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {ADMIN}");
        self.http.send(
            method,
            path,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            body.map(|b| b.to_string().into_bytes()),
        )
    }

    pub fn admin_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self.admin(method, path, body);
        assert!(
            r.status == 200 || r.status == 201,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }

    pub fn tenant(&self, t: &str, region: &str) {
        self.admin_ok(
            "POST",
            "/admin/tenants",
            Some(json!({"tenant_id": t, "region": region})),
        );
    }

    pub fn set_integration(&self, t: &str, enabled: bool) -> Value {
        self.admin_ok(
            "PUT",
            &format!("/admin/tenants/{t}/integrations/{PARTNER}"),
            Some(json!({"enabled": enabled})),
        )
    }

    /// Tenant + enabled integration.
    pub fn setup(&self, t: &str) {
        self.tenant(t, "eu");
        self.set_integration(t, true);
    }

    pub fn token(&self, t: &str, body: Value) -> Value {
        self.admin_ok(
            "POST",
            &format!("/admin/tenants/{t}/integrations/{PARTNER}/tokens"),
            Some(body),
        )
    }

    pub fn token_text(&self, t: &str) -> String {
        self.token(t, json!({}))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn installations(&self, t: &str) -> Value {
        self.admin_ok("GET", &format!("/admin/tenants/{t}/installations"), None)
    }

    pub fn installation(&self, t: &str, id: &str) -> Value {
        self.installations(t)["installations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("installation {id} not listed"))
    }

    pub fn alerts(&self, t: &str) -> Vec<Value> {
        self.admin_ok("GET", &format!("/admin/tenants/{t}/alerts"), None)["alerts"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn stats(&self, t: &str) -> (u64, u64) {
        let s = self.admin_ok("GET", &format!("/admin/tenants/{t}/stats"), None);
        (
            s["events"].as_u64().unwrap(),
            s["batches"].as_u64().unwrap(),
        )
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        if let Some(s) = self.svc.take() {
            s.shutdown();
        }
    }
}

// ---- HTTP --------------------------------------------------------------------

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The problem `code`, asserting an RFC 9457 body and the status.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["status"], status);
        assert_eq!(
            p["type"],
            format!("urn:edrlink:error:{}", p["code"].as_str().unwrap())
        );
        p["code"].as_str().unwrap().to_owned()
    }
    pub fn into_core(self) -> HttpResponse {
        HttpResponse {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// The test HTTP client: the SDK's own transport (ureq + rustls), which
/// returns an answer the service sent before reading the body (an early 413)
/// instead of the failed body write — a plain ureq agent flakes there.
#[derive(Clone)]
pub struct Http {
    pub base: String,
    transport: std::sync::Arc<edrlink_core::transport::HttpTransport>,
}

impl Http {
    pub fn new(base: &str) -> Http {
        let transport =
            edrlink_core::transport::HttpTransport::new(edrlink_core::transport::HttpOptions {
                no_proxy: true,
                ..Default::default()
            })
            .unwrap();
        Http {
            base: base.trim_end_matches('/').to_owned(),
            transport: std::sync::Arc::new(transport),
        }
    }

    /// Sends to `path` (relative to the base) or an absolute URL.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        use edrlink_core::agent::Transport as _;
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let req = HttpRequest {
            id: 0,
            method: method.to_owned(),
            url: url.clone(),
            // A fresh connection per request: the service closes a connection
            // after an answer given before the body was read (401, 413), and a
            // pooled one could race that close.
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .chain([("connection".to_owned(), "close".to_owned())])
                .collect(),
            body: body.unwrap_or_default(),
        };
        let r = self
            .transport
            .send(&req)
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        Resp {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }

    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.send("POST", path, &[("content-type", content_type)], Some(body))
    }

    /// Performs a core `HttpRequest` (absolute URL).
    pub fn perform(&self, req: &HttpRequest) -> HttpResponse {
        let headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.send(&req.method, &req.url, &headers, Some(req.body.clone()))
            .into_core()
    }
}

// ---- partner side ------------------------------------------------------------------

pub fn device(id: &str) -> DeviceFacts {
    DeviceFacts {
        device_id: format!("dev-{id}"),
        hostname: format!("host-{id}"),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "Acme AV".into(),
        product_version: "1.0".into(),
    }
}

/// A `PartnerClient` whose requests go over real HTTP.
pub struct Endpoint {
    pub client: PartnerClient,
    pub http: Http,
    pub clock: Clock,
    pub events: Vec<ClientEvent>,
}

impl Endpoint {
    pub fn new(svc: &Svc, id: &str) -> Endpoint {
        Endpoint {
            client: PartnerClient::new(ClientConfig::new(device(id)), Box::new(SystemRandom)),
            http: Http::new(&svc.url()),
            clock: svc.clock.clone(),
            events: Vec::new(),
        }
    }

    /// Performs every request the client wants now.
    pub fn pump(&mut self) {
        for _ in 0..100 {
            let now = self.clock.now();
            let Some(req) = self.client.poll_request(now) else {
                break;
            };
            let resp = self.http.perform(&req);
            self.client.handle_response(req.id, &resp, now);
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    pub fn enroll(&mut self, token: &str) {
        self.client.redeem(token).unwrap();
        self.pump();
        assert!(
            self.client.credential().is_some(),
            "enrollment failed: {:?}",
            self.client.health(self.clock.now()).last_error
        );
    }

    pub fn installation_id(&self) -> String {
        self.client.credential().unwrap().installation_id.clone()
    }

    pub fn send(&mut self, events: Vec<Event>) {
        let now = self.clock.now();
        for e in events {
            self.client.submit(e, now).unwrap();
        }
        self.client.flush();
        self.pump();
    }
}

pub fn generic(now: i64, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            Event::Generic(GenericEvent {
                time: rfc3339(now),
                name: "process_start".into(),
                data: json!({"pid": i}),
            })
        })
        .collect()
}

/// A hand-driven endpoint: signs every message itself with sdk-core's modules.
pub struct Raw {
    pub key: SigningKey,
    pub enrollment_id: String,
    pub device: DeviceFacts,
    pub installation_id: String,
    pub session_id: Option<String>,
}

pub fn nonce() -> String {
    random_id(&SystemRandom, 16).unwrap()
}

impl Raw {
    pub fn new(id: &str) -> Raw {
        Raw {
            key: SigningKey::generate(&SystemRandom).unwrap(),
            enrollment_id: nonce(),
            device: device(id),
            installation_id: String::new(),
            session_id: None,
        }
    }

    pub fn redeem_body(&self, token: &str, iat: i64) -> Vec<u8> {
        let c = RequestClaims {
            token: token.into(),
            enrollment_id: self.enrollment_id.clone(),
            nonce: nonce(),
            iat,
            device: self.device.clone(),
        };
        jws::sign(redeem::REQUEST_TYP, &c, &self.key, true)
            .unwrap()
            .into_bytes()
    }

    pub fn redeem(&mut self, http: &Http, token: &str, now: i64) -> Resp {
        let r = http.post(
            "/v1/redeem",
            "application/jose",
            self.redeem_body(token, now),
        );
        if r.status == 200 {
            let u =
                jws::parse(std::str::from_utf8(&r.body).unwrap(), redeem::RESPONSE_TYP).unwrap();
            let c: redeem::ResponseClaims = u.claims().unwrap();
            self.installation_id = c.installation_id;
        }
        r
    }

    pub fn hello_body(&self, iat: i64) -> Vec<u8> {
        let h = Hello {
            installation_id: self.installation_id.clone(),
            nonce: nonce(),
            iat,
            sensor: SensorState::Running,
            last_seq: 0,
            policy_version: 1,
            clock_offset: 0,
            queued_events: 0,
            drops: Default::default(),
        };
        jws::sign(handshake::HELLO_TYP, &h, &self.key, false)
            .unwrap()
            .into_bytes()
    }

    /// Handshakes; returns the decision claims.
    pub fn handshake(&mut self, http: &Http, now: i64) -> handshake::FlowDecision {
        let r = http.post("/v1/handshake", "application/jose", self.hello_body(now));
        assert_eq!(r.status, 200, "{}", r.text());
        let u = jws::parse(std::str::from_utf8(&r.body).unwrap(), handshake::FLOW_TYP).unwrap();
        let d: handshake::FlowDecision = u.claims().unwrap();
        if d.session_id.is_some() {
            self.session_id = d.session_id.clone();
        }
        d
    }

    pub fn batch(&self, seq: u64, batch_id: &str, events: Vec<Event>, now: i64) -> Batch {
        Batch {
            v: 1,
            installation_id: self.installation_id.clone(),
            session_id: self.session_id.clone(),
            batch_id: batch_id.into(),
            seq,
            created: rfc3339(now),
            sent: rfc3339(now),
            policy_version: 1,
            events,
        }
    }

    pub fn ingest(&self, http: &Http, b: &Batch) -> Resp {
        http.post(
            "/v1/ingest",
            dsse::ENVELOPE_MEDIA_TYPE,
            telemetry::seal_batch(b, &self.key, false).unwrap(),
        )
    }

    /// Redeems and opens a session.
    pub fn enroll(http: &Http, token: &str, id: &str, now: i64) -> Raw {
        let mut r = Raw::new(id);
        let resp = r.redeem(http, token, now);
        assert_eq!(resp.status, 200, "{}", resp.text());
        let d = r.handshake(http, now);
        assert_eq!(d.decision, handshake::FlowState::Open);
        r
    }
}
