//! The `edrlink-service` binary as test runners use it: one stdout line
//! `listening on http://127.0.0.1:PORT`, admin key from EDRLINK_ADMIN_KEY
//! (generated and shown on stderr otherwise), graceful stop on SIGTERM.

mod common;
use common::Http;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

fn spawn(
    db: &std::path::Path,
    admin_key: Option<&str>,
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStdout>,
) {
    spawn_with(db, admin_key, None)
}

fn spawn_with(
    db: &std::path::Path,
    admin_key: Option<&str>,
    test_faults: Option<&str>,
) -> (
    std::process::Child,
    String,
    BufReader<std::process::ChildStdout>,
) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_edrlink-service"));
    cmd.args([
        "--db",
        db.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--region",
        "eu",
    ])
    .env("RUST_LOG", "info")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.env_remove("EDRLINK_ADMIN_KEY");
    cmd.env_remove("EDRLINK_TEST_FAULTS");
    if let Some(k) = admin_key {
        cmd.env("EDRLINK_ADMIN_KEY", k);
    }
    if let Some(v) = test_faults {
        cmd.env("EDRLINK_TEST_FAULTS", v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .expect("loopback URL")
        .parse()
        .unwrap();
    assert!(port > 0);
    (child, url, out)
}

fn stop(mut child: std::process::Child, mut out: BufReader<std::process::ChildStdout>) -> String {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout must hold exactly one line");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

#[test]
fn binary_prints_one_line_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("svc.db");
    let (child, url, out) = spawn(&db, Some("bin-admin-key-0123456789abcdefghijkl"));
    let http = Http::new(&url);
    assert_eq!(http.send("GET", "/healthz", &[], None).status, 200);
    let r = http.send(
        "POST",
        "/admin/tenants",
        &[
            (
                "authorization",
                "Bearer bin-admin-key-0123456789abcdefghijkl",
            ),
            ("content-type", "application/json"),
        ],
        Some(br#"{"tenant_id":"t1"}"#.to_vec()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let err = stop(child, out);
    assert!(
        err.contains("listening") && err.contains("service stopped"),
        "stderr: {err}"
    );
    assert!(!err.contains("bin-admin-key"));

    // Restart on the same file without a key: one is generated and shown on stderr only.
    let (child, url, out) = spawn(&db, None);
    let http = Http::new(&url);
    let err = stop(child, out);
    let key = err
        .lines()
        .find_map(|l| {
            l.split_once("generated admin key (set EDRLINK_ADMIN_KEY to choose one): ")
                .map(|(_, k)| k.trim().to_owned())
        })
        .expect("generated key printed");
    assert!(key.len() >= edrlink_service::MIN_ADMIN_KEY_LEN);
    drop(http);
}

/// `EDRLINK_TEST_FAULTS=1` (exactly) mounts the test-fault route; unset or
/// any other value leaves it absent (404), and the binary warns when it is on.
#[test]
fn test_faults_exist_only_with_the_environment_setting() {
    const KEY: &str = "bin-admin-key-0123456789abcdefghijkl";
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let arm = br#"{"path":"/v1/keys","count":1,"status":503,"retry_after":1}"#;
    for (setting, mounted) in [(None, false), (Some("0"), false), (Some("1"), true)] {
        let dir = tempfile::tempdir().unwrap();
        let (child, url, out) = spawn_with(&dir.path().join("svc.db"), Some(KEY), setting);
        let http = Http::new(&url);
        let r = http.send("POST", "/admin/test/faults", &headers, Some(arm.to_vec()));
        let keys = http.send("GET", "/v1/keys", &[], None);
        let err = stop(child, out);
        if mounted {
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(keys.problem(503), "service_unavailable");
            assert!(err.contains("test faults are on"), "stderr: {err}");
        } else {
            assert_eq!(r.status, 404, "{setting:?}: {}", r.text());
            assert_eq!(keys.status, 200);
            assert!(!err.contains("test faults are on"), "stderr: {err}");
        }
    }
}
