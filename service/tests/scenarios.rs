//! The Rust runner of the shared scenarios (`tests/scenarios/*.json`, format
//! in `tests/scenarios/README.md`): starts the real reference service (SQLite
//! file in a temporary directory, test faults on) on 127.0.0.1:0 and drives
//! `edrlink_core::agent::Agent` with the built-in HTTP transport, one fresh
//! data directory per client. Thin on purpose: each step is one public call,
//! its outcome compared with the scenario's expectations. The Agent's event
//! and log sinks collect what each step emitted (`events`, `no_events`, `log`
//! expectations, and the secret check on every log message).
//!
//! Prints one line per scenario and then exactly
//! `scenarios: N passed, M failed`; exits non-zero when anything failed or
//! when N is not the number of scenario files. A non-option argument runs
//! only the scenarios whose file name contains it.

use edrlink_core::agent::{Agent, AgentConfig, EventSink, LogSink, Transport as _};
use edrlink_core::client::ClientEvent;
use edrlink_core::diag::LogLevel;
use edrlink_core::error::{Error, ErrorCode, ErrorInfo};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::HttpRequest;
use edrlink_core::keys::{RandomSource as _, SigningKey, SystemRandom};
use edrlink_core::options::ClientOptions;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::telemetry::Event;
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_core::{dsse, encoding, token};
use edrlink_service::{RunningService, Settings};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARTNER: &str = "acme-av";

fn main() {
    let started = Instant::now();
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| {
            filter.as_ref().is_none_or(|f| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(f.as_str()))
            })
        })
        .collect();
    files.sort();

    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut key = [0u8; 24];
    SystemRandom.fill(&mut key).expect("random admin key");
    let admin_key = format!("scenario-admin-{}", encoding::b64url(&key));
    let svc = RunningService::start(Settings {
        db_path: Some(tmp.path().join("edrlink.db")),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_key: admin_key.clone(),
        region: "eu".into(),
        test_faults: true,
        ..Settings::default()
    })
    .expect("the reference service starts");
    let runner = Runner {
        url: svc.url().to_owned(),
        admin_key,
        http: transport(),
        tmp: tmp.path().to_owned(),
    };

    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.run(f)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(format!("panicked: {msg}"))
            });
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("ok   {name} ({} ms)", t.elapsed().as_millis());
            }
            Err(why) => {
                failed += 1;
                println!("FAIL {name}: {why}");
            }
        }
    }
    drop(svc);
    println!("scenarios: {passed} passed, {failed} failed");
    eprintln!("(ran in {:.1} s)", started.elapsed().as_secs_f64());
    if files.is_empty() || failed > 0 || passed != files.len() {
        std::process::exit(1);
    }
}

fn transport() -> HttpTransport {
    HttpTransport::new(HttpOptions {
        no_proxy: true,
        ..Default::default()
    })
    .expect("HTTP transport")
}

struct Runner {
    url: String,
    admin_key: String,
    http: HttpTransport,
    tmp: PathBuf,
}

/// Events and log records a client's hooks received during the current step.
#[derive(Default)]
struct Seen {
    events: Mutex<Vec<Value>>,
    logs: Mutex<Vec<(LogLevel, String)>>,
}

impl EventSink for Seen {
    fn on_event(&self, event: &ClientEvent) {
        let v = serde_json::from_str(&event.to_json()).unwrap_or(Value::Null);
        self.events.lock().unwrap().push(v);
    }
}

impl LogSink for Seen {
    fn log(&self, level: LogLevel, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_owned()));
    }
}

struct Client {
    agent: Agent,
    seen: Arc<Seen>,
}

/// One run of one scenario.
struct Run<'a> {
    r: &'a Runner,
    name: String,
    vars: BTreeMap<String, Value>,
    clients: BTreeMap<String, Client>,
    /// Secrets the scenario has seen (never in a log or an error detail).
    secrets: Vec<String>,
}

type Outcome = Result<Value, ErrorInfo>;

impl Runner {
    fn run(&self, file: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let sc: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
        let name = sc["name"].as_str().ok_or("no name")?.to_owned();
        if sc["story"].as_str().is_none_or(str::is_empty) {
            return Err("no story".into());
        }
        let steps = sc["steps"].as_array().ok_or("no steps")?;
        let mut id = [0u8; 6];
        SystemRandom.fill(&mut id).map_err(|e| e.to_string())?;
        let tenant = format!("scn-{}", hex(&id));
        let mut run = Run {
            r: self,
            name,
            vars: BTreeMap::from([
                ("tenant".into(), json!(tenant)),
                ("partner".into(), json!(PARTNER)),
                ("service_url".into(), json!(self.url)),
            ]),
            clients: BTreeMap::new(),
            secrets: Vec::new(),
        };
        let (s, b) = self.admin(
            "POST",
            "/admin/tenants",
            Some(json!({"tenant_id": tenant, "region": "eu"})),
        )?;
        if s != 201 {
            return Err(format!("setup: creating the tenant answered {s}: {b}"));
        }
        let (s, b) = self.admin(
            "PUT",
            &format!("/admin/tenants/{tenant}/integrations/{PARTNER}"),
            Some(json!({"enabled": true})),
        )?;
        if s != 200 {
            return Err(format!(
                "setup: turning the integration on answered {s}: {b}"
            ));
        }
        for (i, step) in steps.iter().enumerate() {
            run.step(step)
                .map_err(|e| format!("{} step {i} ({}): {e}", run.name, step["do"]))?;
        }
        Ok(())
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
        let req = HttpRequest {
            id: 0,
            method: method.into(),
            url: format!("{}{path}", self.url),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.admin_key)),
                ("content-type".into(), "application/json".into()),
                // The service closes a connection after some refusals; a
                // fresh connection per admin call cannot race that close.
                ("connection".into(), "close".into()),
            ],
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        };
        let resp = self
            .http
            .send(&req)
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let v = if resp.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&resp.body)
                .map_err(|e| format!("{method} {path}: answer is not JSON ({e})"))?
        };
        Ok((resp.status, v))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn err(code: ErrorCode, msg: &str) -> ErrorInfo {
    Error::new(code, msg.to_owned()).info()
}

/// Text of a JSON argument that is an object or JSON text.
fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("serializable")
}

impl Run<'_> {
    fn step(&mut self, raw: &Value) -> Result<(), String> {
        let step = self.subst(raw)?;
        let kind = step["do"].as_str().ok_or("no \"do\"")?.to_owned();
        let expect = step.get("expect").cloned().unwrap_or(json!({}));
        let expect = expect.as_object().ok_or("expect is not an object")?.clone();
        for k in expect.keys() {
            if !matches!(
                k.as_str(),
                "error"
                    | "retry_after"
                    | "http_status"
                    | "number"
                    | "status"
                    | "result"
                    | "events"
                    | "no_events"
                    | "log"
            ) {
                return Err(format!("unknown expectation {k}"));
            }
        }
        let client_name = step["client"].as_str().unwrap_or("a").to_owned();
        if let Some(c) = self.clients.get(&client_name) {
            c.seen.events.lock().unwrap().clear();
            c.seen.logs.lock().unwrap().clear();
        }

        let mut admin_status = None;
        let outcome: Outcome = match kind.as_str() {
            "admin" => {
                let method = step["method"].as_str().ok_or("admin: no method")?;
                let path = step["path"].as_str().ok_or("admin: no path")?;
                let (status, body) = self.r.admin(method, path, step.get("body").cloned())?;
                admin_status = Some(status);
                self.collect_admin_secrets(&body, false);
                Ok(body)
            }
            "client" => self.new_client(&client_name, &step),
            "inspect_token" => {
                let tok = step["token"].as_str().ok_or("inspect_token: no token")?;
                let now = step["now"]
                    .as_i64()
                    .unwrap_or_else(edrlink_service::unix_now);
                token::inspect_at(tok, now)
                    .map(|i| to_value(&i))
                    .map_err(|e| e.info())
            }
            "verify_envelope" => {
                let env = step["envelope"]
                    .as_str()
                    .ok_or("verify_envelope: no envelope")?;
                let pk = step["public_key"]
                    .as_str()
                    .ok_or("verify_envelope: no public_key")?;
                (|| {
                    let pk = encoding::b64url_decode(pk)?;
                    let key = edrlink_core::keys::VerifyingKey::from_bytes(&pk)?;
                    let p = dsse::parse(env.as_bytes())?;
                    p.verify(&key)?;
                    Ok(json!({"payload_type": p.payload_type, "keyid": p.keyid}))
                })()
                .map_err(|e: Error| e.info())
            }
            "public_key_from_seed" => {
                let seed = step["seed"]
                    .as_str()
                    .ok_or("public_key_from_seed: no seed")?;
                (|| {
                    let seed = zeroize::Zeroizing::new(encoding::b64url_decode(seed)?);
                    let k = SigningKey::from_seed_slice(&seed)?;
                    Ok(json!({"public_key": encoding::b64url(k.verifying_key().as_bytes())}))
                })()
                .map_err(|e: Error| e.info())
            }
            _ => {
                let c = self
                    .clients
                    .get(&client_name)
                    .ok_or_else(|| format!("no client {client_name} (add a \"client\" step)"))?;
                client_step(&c.agent, &kind, &step)?
            }
        };

        // Secrets first: a failed expectation must not hide a leak.
        self.check_secrets(&client_name, &outcome)?;

        match (&outcome, expect.get("error")) {
            (Ok(_), Some(code)) => {
                return Err(format!("succeeded, expected error {code}"));
            }
            (Err(e), None) => {
                return Err(format!(
                    "failed with {} ({}), expected success",
                    e.code.as_str(),
                    e.detail
                ));
            }
            (Err(e), Some(code)) => {
                if Some(e.code.as_str()) != code.as_str() {
                    return Err(format!(
                        "failed with {} ({}), expected {code}",
                        e.code.as_str(),
                        e.detail
                    ));
                }
                if let Some(ra) = expect.get("retry_after") {
                    let got = e.retry_after.map_or(Value::Null, |r| json!(r));
                    if !json_eq(&got, ra) {
                        return Err(format!("retry_after {got}, expected {ra}"));
                    }
                }
                for (k, got) in [
                    ("http_status", json!(e.http_status)),
                    ("number", json!(e.number)),
                ] {
                    if let Some(want) = expect.get(k) {
                        if !json_eq(&got, want) {
                            return Err(format!("{k} {got}, expected {want}"));
                        }
                    }
                }
            }
            (Ok(_), None) => {}
        }
        if let Some(want) = expect.get("status") {
            let got = admin_status.ok_or("status is an expectation of admin steps")?;
            if !json_eq(&json!(got), want) {
                return Err(format!(
                    "HTTP status {got}, expected {want}: {:?}",
                    outcome.as_ref().ok()
                ));
            }
        } else if let Some(s) = admin_status {
            if !(200..300).contains(&s) {
                return Err(format!(
                    "HTTP status {s}: {}",
                    outcome.as_ref().map(|v| v.to_string()).unwrap_or_default()
                ));
            }
        }
        let result = outcome.as_ref().ok().cloned().unwrap_or(Value::Null);
        if let Some(want) = expect.get("result") {
            let want = want.as_object().ok_or("expect.result is not an object")?;
            for (path, v) in want {
                match get_path(&result, path) {
                    Some(got) if json_eq(&got, v) => {}
                    got => {
                        return Err(format!(
                            "{path} = {}, expected {v} (result {result})",
                            got.map_or("<absent>".into(), |g| g.to_string())
                        ))
                    }
                }
            }
        }
        if let Some(save) = step.get("save") {
            for (var, path) in save.as_object().ok_or("save is not an object")? {
                let path = path.as_str().ok_or("save: path is not a string")?;
                let v = get_path(&result, path)
                    .ok_or_else(|| format!("save: {path} is absent in {result}"))?;
                if is_secret_name(var) {
                    collect_strings(&v, &mut self.secrets);
                }
                self.vars.insert(var.clone(), v);
            }
        }
        self.check_hooks(&client_name, &expect)
    }

    fn check_hooks(&self, client: &str, expect: &Map<String, Value>) -> Result<(), String> {
        let wants_hooks = ["events", "no_events", "log"]
            .iter()
            .any(|k| expect.contains_key(*k));
        if !wants_hooks {
            return Ok(());
        }
        let c = self
            .clients
            .get(client)
            .ok_or("events/log expectations need a client")?;
        let events = c.seen.events.lock().unwrap().clone();
        let matches = |want: &str| {
            let (ty, sub) = match want.split_once(':') {
                Some((t, s)) => (t, Some(s)),
                None => (want, None),
            };
            events.iter().any(|e| {
                e["type"] == ty
                    && sub.is_none_or(|s| {
                        e.as_object().is_some_and(|o| {
                            o.iter().any(|(k, v)| k != "type" && v.as_str() == Some(s))
                        })
                    })
            })
        };
        for w in expect
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let w = w.as_str().ok_or("events: not a string")?;
            if !matches(w) {
                return Err(format!("event {w} not received (got {events:?})"));
            }
        }
        for w in expect
            .get("no_events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let w = w.as_str().ok_or("no_events: not a string")?;
            if matches(w) {
                return Err(format!("event {w} received (got {events:?})"));
            }
        }
        if let Some(level) = expect.get("log") {
            let want = level_of(level.as_str().ok_or("log: not a string")?)?;
            let logs = c.seen.logs.lock().unwrap();
            // `LogLevel` orders the most severe first.
            if !logs.iter().any(|(l, _)| *l <= want) {
                return Err(format!(
                    "no log record at {want:?} or more severe (got {logs:?})"
                ));
            }
        }
        Ok(())
    }

    fn new_client(&mut self, name: &str, step: &Value) -> Outcome {
        let device_id = step["device_id"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{}-{name}", self.vars["tenant"].as_str().unwrap_or("")));
        let device = DeviceFacts {
            device_id,
            hostname: format!("host-{name}"),
            os: "linux".into(),
            os_version: "6.1".into(),
            product: "scenario".into(),
            product_version: "1.0".into(),
        };
        let mut opts = ClientOptions::new(device);
        if let Some(o) = step.get("options") {
            let o = o
                .as_object()
                .ok_or_else(|| err(ErrorCode::InvalidArgument, "options must be an object"))?;
            for (k, v) in o {
                opts.set(k, v).map_err(|e| e.info())?;
            }
        }
        opts.validate().map_err(|e| e.info())?;
        let op_timeout = Duration::from_secs(opts.op_timeout_secs);
        let mut id = [0u8; 6];
        SystemRandom.fill(&mut id).map_err(|e| e.info())?;
        let data_dir = self.r.tmp.join(format!("client-{}", hex(&id)));
        let mut agent = Agent::new(
            AgentConfig {
                client: opts,
                data_dir: Some(data_dir),
            },
            transport(),
        )
        .map_err(|e| e.info())?;
        agent.set_op_timeout(op_timeout);
        let seen = Arc::new(Seen::default());
        agent.set_event_sink(Some(seen.clone()));
        agent.set_log_sink(Some(seen.clone()), LogLevel::Debug);
        self.clients.insert(name.to_owned(), Client { agent, seen });
        Ok(Value::Null)
    }

    /// Substitutes `${name}` everywhere in a step.
    fn subst(&self, v: &Value) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) => {
                if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                    if !name.contains("${") && !name.contains('}') {
                        return self
                            .vars
                            .get(name)
                            .cloned()
                            .ok_or_else(|| format!("unknown variable {name}"));
                    }
                }
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(i) = rest.find("${") {
                    out.push_str(&rest[..i]);
                    let after = &rest[i + 2..];
                    let j = after
                        .find('}')
                        .ok_or_else(|| format!("unclosed ${{ in {s}"))?;
                    let name = &after[..j];
                    let val = self
                        .vars
                        .get(name)
                        .ok_or_else(|| format!("unknown variable {name}"))?;
                    out.push_str(&json_text(val));
                    rest = &after[j + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            Value::Array(a) => {
                Value::Array(a.iter().map(|x| self.subst(x)).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), self.subst(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// Every string under a `token`, `workspace_key` or `package` field.
    fn collect_admin_secrets(&mut self, v: &Value, under_secret: bool) {
        match v {
            Value::String(s) if under_secret => self.secrets.push(s.clone()),
            Value::Array(a) => a
                .iter()
                .for_each(|x| self.collect_admin_secrets(x, under_secret)),
            Value::Object(o) => {
                for (k, x) in o {
                    let secret =
                        under_secret || matches!(k.as_str(), "token" | "workspace_key" | "package");
                    self.collect_admin_secrets(x, secret);
                }
            }
            _ => {}
        }
    }

    /// No log record and no error detail holds a secret seen so far.
    fn check_secrets(&self, client: &str, outcome: &Outcome) -> Result<(), String> {
        let mut texts: Vec<String> = Vec::new();
        match outcome {
            Err(e) => texts.push(e.detail.clone()),
            Ok(v) => {
                if let Some(d) = get_path(v, "last_error.detail") {
                    texts.push(json_text(&d));
                }
            }
        }
        if let Some(c) = self.clients.get(client) {
            texts.extend(c.seen.logs.lock().unwrap().iter().map(|(_, m)| m.clone()));
            if let Some(e) = c.agent.health().last_error {
                texts.push(e.detail);
            }
        }
        for s in self.secrets.iter().filter(|s| s.len() >= 12) {
            if texts.iter().any(|t| t.contains(s.as_str())) {
                return Err("a secret appeared in a log message or an error detail".into());
            }
        }
        Ok(())
    }
}

fn is_secret_name(var: &str) -> bool {
    var.starts_with("token") || var.starts_with("package") || var.contains("key")
}

/// Secret strings of a saved value: the value itself when it is a string,
/// else every string under a `token`, `workspace_key` or `package` field.
fn collect_strings(v: &Value, out: &mut Vec<String>) {
    fn walk(v: &Value, under: bool, out: &mut Vec<String>) {
        match v {
            Value::String(s) if under => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, under, out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                walk(
                    x,
                    under || matches!(k.as_str(), "token" | "workspace_key" | "package"),
                    out,
                )
            }),
            _ => {}
        }
    }
    walk(v, v.is_string(), out);
}

fn level_of(s: &str) -> Result<LogLevel, String> {
    Ok(match s {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        other => return Err(format!("unknown log level {other}")),
    })
}

/// One partner-side step on an existing client.
fn client_step(agent: &Agent, kind: &str, step: &Value) -> Result<Outcome, String> {
    let info = |e: Error| e.info();
    Ok(match kind {
        "enroll" => {
            let tok = step["token"].as_str().ok_or("enroll: no token")?;
            agent.enroll(tok).map(|h| to_value(&h)).map_err(info)
        }
        "enroll_package" => {
            let p = step.get("package").ok_or("enroll_package: no package")?;
            agent
                .enroll_with_package(&json_text(p))
                .map(|h| to_value(&h))
                .map_err(info)
        }
        "handshake" => agent
            .handshake()
            .map(|f| json!({"flow": flow_name(f)}))
            .map_err(info),
        "submit" => {
            let ev = step.get("event").ok_or("submit: no event")?;
            let ev: Result<Event, Error> = Event::from_json(&ev.to_string());
            ev.and_then(|e| agent.submit(e))
                .map(|()| Value::Null)
                .map_err(info)
        }
        "submit_json" => {
            let text = step["json"].as_str().ok_or("submit_json: no json")?;
            agent.submit_json(text).map(|()| Value::Null).map_err(info)
        }
        "send_test_detection" => agent
            .send_test_detection()
            .map(|()| Value::Null)
            .map_err(info),
        "flush" => {
            let t = step["timeout_secs"].as_u64().unwrap_or(10);
            agent
                .flush(t)
                .map(|o| json!({"delivered": o.delivered, "queued": o.queued}))
                .map_err(info)
        }
        "offboard" => {
            let p = step.get("package").map(json_text);
            agent
                .offboard(p.as_deref())
                .map(|()| Value::Null)
                .map_err(info)
        }
        "rotate" => agent.rotate().map(|()| Value::Null).map_err(info),
        "health" => Ok(to_value(&agent.health())),
        other => return Err(format!("unknown step kind {other}")),
    })
}

fn flow_name(f: FlowState) -> &'static str {
    match f {
        FlowState::Open => "open",
        FlowState::Blocked => "blocked",
        FlowState::Revoked => "revoked",
    }
}

/// A dot path into a result; a trailing `#` is the length there.
fn get_path(v: &Value, path: &str) -> Option<Value> {
    let (path, len) = match path.strip_suffix('#') {
        Some(p) => (p, true),
        None => (path, false),
    };
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = match cur {
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            Value::Object(o) => o.get(seg)?,
            _ => return None,
        };
    }
    if len {
        return match cur {
            Value::Array(a) => Some(json!(a.len())),
            Value::Object(o) => Some(json!(o.len())),
            _ => None,
        };
    }
    Some(cur.clone())
}

/// JSON equality with numbers compared by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}
