//! Service hardening, attacked over real HTTP where the attack is on the
//! wire: admin-key guessing is throttled per client address, short admin keys
//! are refused at start, database details never reach unauthenticated
//! callers, the database file is owner-only and keeps no retired seeds.

mod common;
use common::*;
use edrlink_service::{RunningService, MIN_ADMIN_KEY_LEN};

/// One raw HTTP/1.1 request from a chosen loopback source address.
fn get_from(source: &str, url: &str, path: &str, auth: &str) -> (u16, String) {
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // tokio's socket can bind the source address before connecting; the
    // exchange itself is plain blocking std I/O.
    let stream = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{source}:0").parse().unwrap()).unwrap();
        sock.connect(addr).await.unwrap().into_std().unwrap()
    });
    use std::io::{Read as _, Write as _};
    let mut s = stream;
    s.set_nonblocking(false).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {auth}\r\nconnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

#[test]
fn failed_admin_attempts_are_throttled_per_client_address() {
    let s = Svc::start();
    let guess = |key: &str| {
        s.http.send(
            "GET",
            "/admin/tenants",
            &[("authorization", &format!("Bearer {key}"))],
            None,
        )
    };
    let mut refused = 0;
    let throttled = loop {
        let r = guess(&format!("guess-{refused:040}"));
        if r.status == 429 {
            break r;
        }
        assert_eq!(r.problem(401), "unauthorized");
        refused += 1;
        assert!(refused <= 30, "no throttling after {refused} wrong keys");
    };
    assert_eq!(refused, 30);
    assert_eq!(throttled.problem(429), "rate_limited");
    let wait: i64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    // While throttled, even the right key is not checked from this address.
    assert_eq!(guess(ADMIN).problem(429), "rate_limited");
    // Another client address is not affected.
    let (status, text) = get_from("127.0.0.2", &s.url(), "/admin/tenants", ADMIN);
    assert_eq!(status, 200, "{text}");
    // Once the wait has passed, the right key works again.
    s.clock.advance(wait);
    assert_eq!(guess(ADMIN).status, 200);
}

#[test]
fn admin_key_shorter_than_32_characters_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let short = "k".repeat(MIN_ADMIN_KEY_LEN - 1);
    let mut st = settings(dir.path().join("a.db"), Default::default());
    st.admin_key = short;
    let err = RunningService::start(st).err().expect("short key refused");
    assert!(err.to_string().contains("32 characters"), "{err}");
    let mut st = settings(dir.path().join("b.db"), Default::default());
    st.admin_key = "k".repeat(MIN_ADMIN_KEY_LEN);
    RunningService::start(st).unwrap().shutdown();
    // No key: a long random one is generated.
    let mut st = settings(dir.path().join("c.db"), Default::default());
    st.admin_key = String::new();
    let svc = RunningService::start(st).unwrap();
    assert!(svc.admin_key().len() >= MIN_ADMIN_KEY_LEN);
}

#[test]
fn database_error_text_never_reaches_unauthenticated_callers() {
    let s = Svc::start();
    s.setup("t1");
    let tok = s.token_text("t1");
    let mut r = Raw::new("x");
    assert_eq!(r.redeem(&s.http, &tok, s.now()).status, 200);
    // Break the schema under the running service.
    let c = rusqlite::Connection::open(&s.db).unwrap();
    c.execute_batch("DROP TABLE sessions").unwrap();
    drop(c);
    let resp = s
        .http
        .post("/v1/handshake", "application/jose", r.hello_body(s.now()));
    assert_eq!(resp.status, 500, "{}", resp.text());
    let body = resp.text();
    assert!(body.contains("\"code\":\"storage\""), "{body}");
    for leak in ["sessions", "no such table", "SQL", "sqlite"] {
        assert!(
            !body.to_lowercase().contains(&leak.to_lowercase()),
            "{leak} in {body}"
        );
    }
}

#[cfg(unix)]
#[test]
fn database_file_and_its_wal_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let s = Svc::start();
    s.setup("t1");
    let _ = s.token_text("t1");
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", s.db.display()));
        assert!(p.exists(), "{}", p.display());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    // A file created earlier with a wider mode is tightened at start.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let svc = RunningService::start(settings(db.clone(), Default::default())).unwrap();
    assert_eq!(mode(&db), 0o600);
    svc.shutdown();
}

#[test]
fn retired_signing_seeds_are_purged_from_the_database() {
    let seed = |b: u8| Some([b; 32]);
    let mut s = Svc::start_with(|st| st.signing_key_seed = seed(1));
    s.restart_with(|st| st.signing_key_seed = seed(2));
    s.restart_with(|st| st.signing_key_seed = seed(3));
    let keys = s.http.send("GET", "/v1/keys", &[], None).json();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    let c = rusqlite::Connection::open(&s.db).unwrap();
    let mut st = c
        .prepare("SELECT seed FROM signing_keys ORDER BY seq")
        .unwrap();
    let seeds: Vec<Vec<u8>> = st
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seeds, vec![vec![2u8; 32], vec![3u8; 32]]);
}
