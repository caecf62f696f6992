//! The `edrlink` binary, run as a user would: exit codes, output shapes, and
//! the agent commands against a service started in-process on 127.0.0.1:0.

use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::token::{self, TokenSpec};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const ADMIN_KEY: &str = "test-admin-key-0123456789abcdefghij";

fn edrlink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edrlink"))
        .args(args)
        .env_remove("EDRLINK_DATA_DIR")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .output()
        .expect("runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "edrlink-cli-test-{tag}-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A token signed by some key (the CLI only decodes it).
fn token_with(iat: i64, lifetime: i64) -> String {
    let spec = TokenSpec {
        issuer: "edrlink-test".into(),
        partner_id: "acme-av".into(),
        tenant_id: "contoso".into(),
        region: "eu".into(),
        service_url: "https://edr.example".into(),
        epoch: 3,
        lifetime,
        max_uses: 5,
    };
    token::issue(
        &spec,
        &SigningKey::from_seed(&[9; 32]).unwrap(),
        iat,
        &SystemRandom,
    )
    .unwrap()
    .0
}

#[test]
fn demo_walks_the_story_and_exits_0() {
    let o = edrlink(&["demo"]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(
        out.contains("✔ all 16 steps behaved as the story says"),
        "{out}"
    );
    assert!(!out.contains('✘'), "{out}");
    for needle in [
        "EICAR test file",
        "error[flow_blocked]",
        "error[epoch_mismatch]",
        "flow revoked",
        "same as before: true",
        // Revoking one endpoint while the other keeps sending.
        "state revoked · health Revoked",
        "error[revoked] · flow revoked (revoked by the admin)",
        "endpoint-3 keeps sending",
    ] {
        assert!(out.contains(needle), "demo output lacks {needle:?}:\n{out}");
    }
}

#[test]
fn demo_json_reports_every_step() {
    let o = edrlink(&["demo", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["passed"], v["total"]);
    assert!(v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["ok"] == true));
}

#[test]
fn token_inspect_valid_text_and_json() {
    let t = token_with(now(), 7200);
    let o = edrlink(&["token", "inspect", &t]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "issuer",
        "edrlink-test",
        "partner",
        "acme-av",
        "tenant",
        "contoso",
        "region",
        "service URL",
        "https://edr.example",
        "epoch",
        "expires",
        "status      : valid",
        "not verified",
    ] {
        assert!(out.contains(needle), "lacks {needle:?}:\n{out}");
    }
    let o = edrlink(&["token", "inspect", &t, "--json"]);
    assert_eq!(code(&o), 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The one inspection shape of every binding (token::TokenInspection).
    assert_eq!(v["verified"], false);
    assert_eq!(v["claims"]["tenant_id"], "contoso");
    assert_eq!(v["claims"]["partner_id"], "acme-av");
    assert_eq!(v["claims"]["region"], "eu");
    assert_eq!(v["claims"]["epoch"], 3);
    assert_eq!(v["status"], "valid");
    assert_eq!(v["expiry_warning_secs"], 3600);
    assert!(v["seconds_left"].as_i64().unwrap() > 7000);
    for k in ["expires_at", "kid", "checked_at"] {
        assert!(!v[k].is_null(), "json lacks {k}");
    }
    for k in ["iss", "service_url", "jti", "exp", "max_uses"] {
        assert!(!v["claims"][k].is_null(), "json lacks claims.{k}");
    }
}

#[test]
fn token_inspect_expired_and_garbage_exit_5() {
    let o = edrlink(&[
        "token",
        "inspect",
        &token_with(now() - 7200, 3600),
        "--json",
    ]);
    assert_eq!(code(&o), 5);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "expired");
    assert!(v["seconds_left"].as_i64().unwrap() < 0);

    let o = edrlink(&["token", "inspect", "not-a-token"]);
    assert_eq!(code(&o), 5);
    assert!(
        stderr(&o).starts_with("error[malformed]: "),
        "{}",
        stderr(&o)
    );
    let o = edrlink(&["token", "inspect", "not-a-token", "--json"]);
    assert_eq!(code(&o), 5);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["error"]["code"], "malformed");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&edrlink(&["frobnicate"])), 2);
    assert_eq!(
        code(&edrlink(&["enroll"])),
        2,
        "enroll needs --token or --onboarding-package"
    );
    assert_eq!(code(&edrlink(&["--help"])), 0);
}

struct Svc {
    svc: edrlink_service::RunningService,
    admin: ureq::Agent,
}

impl Svc {
    fn start(dir: &Path) -> Svc {
        Svc::start_with_clock(dir, edrlink_service::Clock::default())
    }

    fn start_with_clock(dir: &Path, clock: edrlink_service::Clock) -> Svc {
        let svc = edrlink_service::RunningService::start(edrlink_service::Settings {
            db_path: Some(dir.join("service.db")),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_key: ADMIN_KEY.into(),
            region: "eu".into(),
            clock,
            ..edrlink_service::Settings::default()
        })
        .unwrap();
        let admin = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .build()
            .into();
        let s = Svc { svc, admin };
        s.call(
            "POST",
            "/admin/tenants",
            json!({"tenant_id": "contoso", "region": "eu"}),
        );
        s.toggle(true);
        s
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.svc.url());
        let auth = format!("Bearer {ADMIN_KEY}");
        let mut r = match method {
            "GET" => self.admin.get(&url).header("authorization", &auth).call(),
            "PUT" => self
                .admin
                .put(&url)
                .header("authorization", &auth)
                .send_json(body),
            _ => self
                .admin
                .post(&url)
                .header("authorization", &auth)
                .send_json(body),
        }
        .unwrap();
        assert!(r.status().is_success(), "{method} {path}: {}", r.status());
        r.body_mut().read_json().unwrap()
    }

    fn toggle(&self, enabled: bool) {
        self.call(
            "PUT",
            "/admin/tenants/contoso/integrations/acme-av",
            json!({"enabled": enabled}),
        );
    }

    fn token(&self) -> String {
        self.call(
            "POST",
            "/admin/tenants/contoso/integrations/acme-av/tokens",
            json!({}),
        )
        .get("token")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
    }

    fn stats(&self) -> Value {
        self.call("GET", "/admin/tenants/contoso/stats", Value::Null)
    }
}

fn health_json(dd: &str) -> (i32, Value) {
    let o = edrlink(&["health", "--json", "--data-dir", dd]);
    (
        code(&o),
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o))),
    )
}

#[test]
fn enroll_send_health_offboard_against_the_service() {
    let dir = temp_dir("agent");
    let svc = Svc::start(&dir);
    let data = dir.join("agent");
    let dd = data.to_str().unwrap();
    let first = svc.token();

    let o = edrlink(&[
        "enroll",
        "--token",
        &first,
        "--data-dir",
        dd,
        "--device-id",
        "dev-1",
        "--hostname",
        "laptop-1",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("healthy"), "{}", stdout(&o));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("credential.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let o = edrlink(&["health", "--data-dir", dd]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "healthy          : true",
        "licensed         : true",
        "flow             : open",
        "queued           : 0 events",
    ] {
        assert!(out.contains(line), "lacks {line:?}:\n{out}");
    }
    let (c, v) = health_json(dd);
    assert_eq!(c, 0);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["licensed"], true);
    assert_eq!(v["flow"], "open");
    let inst = v["installation_id"].as_str().unwrap().to_owned();

    // Three good lines, one bad one (line 2): the good ones are delivered.
    let events = dir.join("events.jsonl");
    let t = edrlink_core::encoding::rfc3339(now());
    std::fs::write(
        &events,
        format!(
            "{}\n{{not json\n\n{}\n{}\n",
            json!({"type": "generic", "time": t, "name": "process_start", "data": {"pid": 1}}),
            json!({"type": "generic", "time": t, "name": "process_start", "data": {"pid": 2}}),
            json!({"type": "detection", "time": t, "threat_name": "Trojan.Test", "file_path": "/tmp/x", "sha256": "", "severity": "high", "action": "quarantined"}),
        ),
    )
    .unwrap();
    let o = edrlink(&["send", events.to_str().unwrap(), "--data-dir", dd, "--json"]);
    assert_eq!(
        code(&o),
        1,
        "a bad line makes the run fail…\n{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("line 2: error[malformed]"),
        "{}",
        stderr(&o)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["queued"], 0, "…but the good ones are delivered");
    assert_eq!(v["bad_lines"][0]["line"], 2);
    let stored = svc.stats()["events"].as_u64().unwrap();
    assert!(stored >= 3, "{stored}");

    let o = edrlink(&["test-alert", "--data-dir", dd]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let alerts = svc.call("GET", "/admin/tenants/contoso/alerts", Value::Null);
    let titles: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"EICAR test file"), "{titles:?}");

    // Integration off: sends are blocked (exit 3) and kept in the spool.
    svc.toggle(false);
    let o = edrlink(&["send", events.to_str().unwrap(), "--data-dir", dd]);
    assert_eq!(code(&o), 3, "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("error[flow_blocked]"), "{}", stderr(&o));
    let (c, v) = health_json(dd);
    assert_eq!(c, 3);
    assert_eq!(v["flow"], "blocked");
    assert!(
        v["queued_events"].as_u64().unwrap() >= 3,
        "kept across processes: {v}"
    );

    // Back on: the credential of the old epoch is revoked (exit 4), the old token too.
    svc.toggle(true);
    let (c, v) = health_json(dd);
    assert_eq!(c, 4, "{v}");
    assert_eq!(v["flow"], "revoked");
    assert_eq!(v["needs_new_token"], true);
    let o = edrlink(&["enroll", "--token", &first, "--data-dir", dd]);
    assert_eq!(code(&o), 4);
    assert!(
        stderr(&o).contains("error[epoch_mismatch]"),
        "{}",
        stderr(&o)
    );

    // A new token: same installation, the spooled events are delivered.
    let o = edrlink(&[
        "enroll",
        "--token",
        &svc.token(),
        "--data-dir",
        dd,
        "--json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["installation_id"], inst.as_str());
    let before = svc.stats()["events"].as_u64().unwrap();
    let o = edrlink(&["flush", "--data-dir", dd, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["queued"], 0);
    assert!(svc.stats()["events"].as_u64().unwrap() >= before + 3);

    // Offboard (opt-out): the credential is gone, health says a new token is needed.
    let o = edrlink(&["offboard", "--data-dir", dd]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!data.join("credential.json").exists());
    let (c, v) = health_json(dd);
    assert_eq!(c, 4);
    assert_eq!(v["licensed"], false);
    let inst_row = svc.call("GET", "/admin/tenants/contoso/installations", Value::Null);
    let row = inst_row["installations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == inst.as_str())
        .unwrap()
        .clone();
    assert_eq!(row["offboarded"], true);
    let o = edrlink(&["send", events.to_str().unwrap(), "--data-dir", dd]);
    assert_eq!(code(&o), 4, "not enrolled");
    assert!(
        stderr(&o).contains("error[invalid_state]"),
        "{}",
        stderr(&o)
    );

    svc.svc.shutdown();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn health_names_why_a_new_token_is_needed_revoked_or_expired() {
    let dir = temp_dir("reason");
    let clock = edrlink_service::Clock::default();
    let svc = Svc::start_with_clock(&dir, clock.clone());
    let enroll = |dd: &str, dev: &str| {
        let o = edrlink(&[
            "enroll",
            "--token",
            &svc.token(),
            "--data-dir",
            dd,
            "--device-id",
            dev,
        ]);
        assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
        health_json(dd).1["installation_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let revoked = dir.join("revoked");
    let revoked = revoked.to_str().unwrap();
    let expired = dir.join("expired");
    let expired = expired.to_str().unwrap();
    let inst = enroll(revoked, "dev-r");
    enroll(expired, "dev-e");

    // Revoked by the admin: exit 4, the reason in text and JSON.
    svc.call(
        "POST",
        &format!("/admin/tenants/contoso/installations/{inst}/revoke"),
        Value::Null,
    );
    let o = edrlink(&["health", "--data-dir", revoked]);
    assert_eq!(code(&o), 4, "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("flow             : revoked (revoked by the admin)"),
        "{out}"
    );
    assert!(
        out.contains("new token needed : true (revoked by the admin)"),
        "{out}"
    );
    let (c, v) = health_json(revoked);
    assert_eq!((c, v["flow"].as_str()), (4, Some("revoked")));
    assert_eq!(v["revocation_reason"], "revoked by the admin");

    // Credential past credential_exp (the service's clock moved on): its own reason.
    clock.advance(edrlink_core::credential::CREDENTIAL_LIFETIME + 1);
    let (c, v) = health_json(expired);
    assert_eq!(c, 4, "{v}");
    assert_eq!(v["flow"], "revoked");
    assert_eq!(
        v["revocation_reason"], "credential expired (not rotated in time)",
        "{v}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn offboarding_package_and_unreachable_service() {
    let dir = temp_dir("pkg");
    let svc = Svc::start(&dir);
    let dd = dir.join("agent");
    let dd = dd.to_str().unwrap();
    let o = edrlink(&[
        "enroll",
        "--token",
        &svc.token(),
        "--data-dir",
        dd,
        "--device-id",
        "dev-2",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (_, v) = health_json(dd);
    let inst = v["installation_id"].as_str().unwrap().to_owned();
    let pkg = svc.call(
        "POST",
        "/admin/tenants/contoso/integrations/acme-av/offboarding-package",
        json!({"installation_ids": [inst]}),
    );
    let file = dir.join("offboard.json");
    std::fs::write(&file, pkg.to_string()).unwrap();
    let url = svc.svc.url().to_owned();
    svc.svc.shutdown();

    // The service is gone: health reports a transport error (exit 1), nothing crashes.
    let o = edrlink(&["health", "--data-dir", dd, "--timeout", "2"]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("last error       : transport"),
        "{}",
        stdout(&o)
    );
    let _ = url;

    // The offboarding package works offline.
    let o = edrlink(&[
        "offboard",
        "--package",
        file.to_str().unwrap(),
        "--data-dir",
        dd,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!Path::new(dd).join("credential.json").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[cfg(unix)]
#[test]
fn service_run_announces_itself_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = temp_dir("svc");
    let db = dir.join("svc.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_edrlink"))
        .args([
            "service",
            "run",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("EDRLINK_ADMIN_KEY", ADMIN_KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    assert_eq!(
        agent
            .get(&format!("{url}/healthz"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let unauth = agent
        .get(&format!("{url}/admin/tenants"))
        .call()
        .unwrap()
        .status();
    assert_eq!(unauth, 401);
    let ok = agent
        .get(&format!("{url}/admin/tenants"))
        .header("authorization", &format!("Bearer {ADMIN_KEY}"))
        .call()
        .unwrap()
        .status();
    assert_eq!(ok, 200);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful stop");
    assert!(db.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
