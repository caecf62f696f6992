//! The request pipeline: group commit (one transaction per group, one
//! savepoint per request, answers only after the commit), verification
//! outside the writer, flood limits (429 before the body is read), and
//! oversized bodies answered 413 in a way the client can read.

mod common;

use common::*;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{SigningKey, SystemRandom};
use edrlink_core::policy::Policy;
use edrlink_core::service::{RateLimit, ServiceConfig, ServiceRole};
use edrlink_core::{dsse, telemetry};
use edrlink_service::pipeline::{commit_group, Work};
use edrlink_service::FloodLimits;
use std::io::{BufReader, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;

const SEED: [u8; 32] = [7u8; 32];

// ---- helpers ------------------------------------------------------------------

fn ingest_req(r: &Raw, seq: u64, batch_id: &str, now: i64) -> HttpRequest {
    HttpRequest {
        id: 0,
        method: "POST".into(),
        url: "/v1/ingest".into(),
        headers: vec![("content-type".into(), dsse::ENVELOPE_MEDIA_TYPE.into())],
        body: telemetry::seal_batch(&r.batch(seq, batch_id, generic(now, 3), now), &r.key, false)
            .unwrap(),
    }
}

fn problem_code(r: &HttpResponse) -> String {
    serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["code"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// A service with a fixed signing key and one enrolled endpoint with an open
/// session; the service is stopped, so the test drives the database itself.
fn enrolled_db() -> (Svc, Raw, i64, String) {
    let mut s = Svc::start_with(|st| st.signing_key_seed = Some(SEED));
    s.setup("t1");
    let now = s.now();
    let r = Raw::enroll(&s.http, &s.token_text("t1"), "gc", now);
    let url = s.url();
    s.svc.take().unwrap().shutdown();
    (s, r, now, url)
}

/// The service role the stopped service ran (same key, region, policy).
fn role(url: &str) -> ServiceRole {
    ServiceRole::new(
        ServiceConfig {
            issuer: "edrlink-reference".into(),
            region: "eu".into(),
            service_url: url.into(),
            keys: vec![SigningKey::from_seed(&SEED).unwrap()],
            policy: Policy::default(),
            rate_limit: RateLimit::default(),
            session_lifetime: edrlink_core::handshake::SESSION_LIFETIME,
        },
        Box::new(SystemRandom),
    )
    .unwrap()
}

fn stored_batches(db: &Path, inst: &str) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT batch_id, seq FROM batches WHERE installation_id = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([inst], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn seq_state(db: &Path, inst: &str) -> (i64, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        "SELECT last_seq, missing_seq FROM installations WHERE id = ?1",
        [inst],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

// ---- group commit ----------------------------------------------------------------

/// A store error in one request of a group rolls back that request alone (its
/// installation update included); the others keep their answers and effects,
/// and all of them are on disk after the connection is closed and reopened.
#[test]
fn one_store_error_is_rolled_back_alone() {
    let (s, r, now, url) = enrolled_db();
    let role = role(&url);
    let mut conn = edrlink_service::db::open(Some(&s.db)).unwrap();
    // A real store error for one batch id: the insert aborts.
    conn.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON batches WHEN NEW.batch_id = 'poison'
         BEGIN SELECT RAISE(ABORT, 'injected store error'); END;",
    )
    .unwrap();
    // One request goes the two-phase way, verified before the group.
    let third = role
        .prepare_ingest(&ingest_req(&r, 3, "b3", now).body, |kid| {
            let tx = conn.unchecked_transaction().unwrap();
            use edrlink_core::service::ServiceStore as _;
            edrlink_service::db::SqliteStore { tx: &tx }.installation_by_key(kid)
        })
        .unwrap();
    let answers = commit_group(
        &mut conn,
        &role,
        vec![
            Work::Handle(ingest_req(&r, 1, "b1", now)),
            Work::Handle(ingest_req(&r, 2, "poison", now)),
            Work::Ingest(third),
        ],
        now,
    );
    drop(conn);
    let st: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(st, [200, 500, 200]);
    assert_eq!(problem_code(&answers[1]), "storage");
    let ack: serde_json::Value = serde_json::from_slice(&answers[2].body).unwrap();
    // seq 2 was rolled back with its savepoint: seq 3 follows seq 1 with a gap of 1.
    assert_eq!(ack["status"], "accepted");
    assert_eq!(ack["gap"], 1);
    assert!(answers.iter().all(|a| a.header("date").is_some()));
    assert_eq!(
        stored_batches(&s.db, &r.installation_id),
        [("b1".to_owned(), 1), ("b3".to_owned(), 3)]
    );
    assert_eq!(seq_state(&s.db, &r.installation_id), (3, 1));
}

/// Nothing is acknowledged before the group's commit succeeds: when the
/// commit itself fails (here a deferred constraint checked at COMMIT), every
/// request of the group is answered 5xx and nothing of it is stored.
#[test]
fn a_failed_commit_acknowledges_nothing() {
    let (s, r, now, url) = enrolled_db();
    let role = role(&url);
    let mut conn = edrlink_service::db::open(Some(&s.db)).unwrap();
    conn.execute_batch(
        "CREATE TABLE commit_guard (t TEXT REFERENCES tenants(tenant_id) DEFERRABLE INITIALLY DEFERRED);
         CREATE TRIGGER doom AFTER INSERT ON batches WHEN NEW.batch_id = 'doomed'
         BEGIN INSERT INTO commit_guard VALUES ('no-such-tenant'); END;",
    )
    .unwrap();
    let answers = commit_group(
        &mut conn,
        &role,
        vec![
            Work::Handle(ingest_req(&r, 1, "fine", now)),
            Work::Handle(ingest_req(&r, 2, "doomed", now)),
        ],
        now,
    );
    drop(conn);
    for a in &answers {
        assert_eq!(a.status, 500);
        assert_eq!(problem_code(a), "storage");
    }
    assert!(stored_batches(&s.db, &r.installation_id).is_empty());
    assert_eq!(seq_state(&s.db, &r.installation_id), (0, 0));
}

/// Attack: an envelope verified with the installation's key while a rotation
/// commits; the commit phase re-reads the installation and refuses a key it
/// no longer has (`unknown_key`), storing nothing.
#[test]
fn commit_refuses_a_key_replaced_after_verification() {
    let (s, r, now, url) = enrolled_db();
    let role = role(&url);
    let mut conn = edrlink_service::db::open(Some(&s.db)).unwrap();
    let prepared = role
        .prepare_ingest(&ingest_req(&r, 1, "raced", now).body, |kid| {
            let tx = conn.unchecked_transaction().unwrap();
            use edrlink_core::service::ServiceStore as _;
            edrlink_service::db::SqliteStore { tx: &tx }.installation_by_key(kid)
        })
        .unwrap();
    // A rotation commits in between: the installation now has another key.
    let new_key = SigningKey::generate(&SystemRandom).unwrap().verifying_key();
    conn.execute(
        "UPDATE installations SET public_key = ?1, key_id = ?2 WHERE id = ?3",
        rusqlite::params![
            new_key.as_bytes().to_vec(),
            new_key.key_id(),
            r.installation_id
        ],
    )
    .unwrap();
    let answers = commit_group(&mut conn, &role, vec![Work::Ingest(prepared)], now);
    assert_eq!(answers[0].status, 401);
    assert_eq!(problem_code(&answers[0]), "unknown_key");
    drop(conn);
    assert!(stored_batches(&s.db, &r.installation_id).is_empty());
}

/// Many endpoints ingesting at once over HTTP (their requests share groups):
/// every batch acknowledged 200 is in the database after the service stops
/// and the file is reopened, exactly once.
#[test]
fn every_acknowledged_batch_is_stored_after_a_restart() {
    let mut s = Svc::start();
    s.setup("t1");
    let now = s.now();
    let token = s.token_text("t1");
    let raws: Vec<Raw> = (0..8)
        .map(|i| Raw::enroll(&s.http, &token, &format!("dur-{i}"), now))
        .collect();
    let url = s.url();
    let handles: Vec<_> = raws
        .into_iter()
        .map(|r| {
            let http = Http::new(&url);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for seq in 1..=15u64 {
                    let id = format!("{}-{seq}", r.installation_id);
                    let resp = r.ingest(&http, &r.batch(seq, &id, generic(now, 5), now));
                    assert_eq!(resp.status, 200, "{}", resp.text());
                    acked.push((id, seq as i64));
                }
                (r.installation_id.clone(), acked)
            })
        })
        .collect();
    let acked: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    s.svc.take().unwrap().shutdown();
    for (inst, batches) in acked {
        assert_eq!(stored_batches(&s.db, &inst), batches);
    }
}

// ---- early 413 -------------------------------------------------------------------

/// Sends a request with a raw socket, writing the whole body before reading,
/// as simple clients do; returns the status line's code and the headers.
fn raw_exchange(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    chunked: bool,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    s.write_all(head.as_bytes())?;
    if chunked {
        for c in body.chunks(64 * 1024) {
            write!(s, "{:x}\r\n", c.len())?;
            s.write_all(c)?;
            s.write_all(b"\r\n")?;
        }
        s.write_all(b"0\r\n\r\n")?;
    } else {
        s.write_all(body)?;
    }
    read_answer(&mut BufReader::new(s))
}

fn read_answer(r: &mut impl std::io::BufRead) -> std::io::Result<(u16, String)> {
    let mut status = String::new();
    r.read_line(&mut status)?;
    let code = status
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" {
            break;
        }
        headers.push_str(&l.to_ascii_lowercase());
    }
    Ok((code, headers))
}

/// Regression (a flaky suite and clients retrying forever): a client that
/// writes a whole oversized body before reading gets the 413, never a broken
/// pipe or a reset — with `Content-Length` (refused before reading, then
/// drained) and chunked (refused past the limit, then drained). Repeated to
/// show it is not a race.
#[test]
fn oversized_bodies_get_a_readable_413() {
    let s = Svc::start_with(|st| st.flood = FloodLimits::off());
    let addr = s.svc.as_ref().unwrap().addr();
    let redeem = vec![b'x'; 1024 * 1024];
    let envelope = vec![b'x'; 8 * 1024 * 1024];
    for i in 0..20 {
        let (path, body, chunked, code) = match i % 3 {
            0 => ("/v1/redeem", &redeem, false, "too_large"),
            1 => ("/v1/ingest", &envelope, false, "batch_too_large"),
            _ => ("/v1/redeem", &redeem, true, "too_large"),
        };
        let len = if chunked {
            "transfer-encoding: chunked".to_owned()
        } else {
            format!("content-length: {}", body.len())
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/jose\r\n{len}\r\n\r\n"
        );
        let (status, headers) = raw_exchange(addr, &head, body, chunked)
            .unwrap_or_else(|e| panic!("round {i} ({path}, chunked {chunked}): {e}"));
        assert_eq!(status, 413, "round {i}: {headers}");
        assert!(headers.contains("application/problem+json"), "{headers}");
        let _ = code;
    }
    // The connection stays usable after a drained 413 (keep-alive).
    let mut c = TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/redeem HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        redeem.len()
    )
    .unwrap();
    c.write_all(&redeem).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let (status, headers) = read_answer(&mut r).unwrap();
    assert_eq!(status, 413);
    let n: usize = headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).unwrap();
    assert!(String::from_utf8_lossy(&body).contains("too_large"));
    c.write_all(b"GET /v1/keys HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_answer(&mut r).unwrap().0, 200);
}

/// `Expect: 100-continue` with a declared length over the limit: the 413
/// comes instead of `100 Continue`, and the body is never invited.
#[test]
fn expect_continue_gets_413_without_sending_the_body() {
    let s = Svc::start_with(|st| st.flood = FloodLimits::off());
    let addr = s.svc.as_ref().unwrap().addr();
    for path in ["/v1/ingest", "/v1/redeem", "/admin/tenants"] {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            c,
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
            64 * 1024 * 1024
        )
        .unwrap();
        let (status, headers) = read_answer(&mut BufReader::new(c)).unwrap();
        assert_eq!(status, 413, "{path}: {headers}");
        assert!(headers.contains("connection: close"), "{headers}");
    }
    // Within the limit, the body is invited and the request processed.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(
        b"POST /v1/redeem HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    assert_eq!(read_answer(&mut r).unwrap().0, 100);
    c.write_all(b"a.b.c").unwrap();
    let (status, _) = read_answer(&mut r).unwrap();
    assert!(status == 400 || status == 401, "{status}");
}

// ---- flood limits ------------------------------------------------------------------

/// A request from another loopback address (the limits are per address).
fn from_addr(
    from: IpAddr,
    to: SocketAddr,
    path: &str,
    body: &[u8],
) -> (u16, String, serde_json::Value) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt
        .block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(from, 0))?;
            sock.connect(to).await?.into_std()
        })
        .unwrap();
    s.set_nonblocking(false).unwrap();
    let mut w = s.try_clone().unwrap();
    write!(
        w,
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/jose\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    w.write_all(body).unwrap();
    let mut r = BufReader::new(s);
    let (status, headers) = read_answer(&mut r).unwrap();
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&rest).unwrap_or_default(),
    )
}

fn tight(per_address: f64, failures: f64) -> FloodLimits {
    FloodLimits {
        per_address: RateLimit {
            burst: per_address,
            per_second: 0.001,
        },
        per_route: RateLimit {
            burst: 1000.0,
            per_second: 1000.0,
        },
        failures: RateLimit {
            burst: failures,
            per_second: 0.001,
        },
        max_addresses: 1000,
    }
}

/// Attack: a flood of redeems from one address. Past its budget the address
/// gets 429 with `Retry-After` before anything is read or stored; another
/// address still redeems, and enrolled endpoints keep ingesting.
#[test]
fn redeem_flood_from_one_address_gets_429() {
    let s = Svc::start_with(|st| st.flood = tight(3.0, 1000.0));
    s.setup("t1");
    let now = s.now();
    let token = s.token_text("t1");
    let addr = s.svc.as_ref().unwrap().addr();
    let r = Raw::enroll(&s.http, &token, "legit", now); // one redeem from 127.0.0.1
    for _ in 0..2 {
        let resp = s
            .http
            .post("/v1/redeem", "application/jose", b"junk".to_vec());
        assert_eq!(resp.status, 400);
    }
    let resp = s.http.post(
        "/v1/redeem",
        "application/jose",
        Raw::new("late").redeem_body(&token, now),
    );
    assert_eq!(resp.problem(429), "rate_limited");
    let wait: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert!(resp.header("date").is_some());
    // Refused before processing: the late endpoint was not enrolled.
    assert_eq!(
        s.installations("t1")["installations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Another address has its own budget.
    let other: IpAddr = [127, 0, 0, 2].into();
    let (status, _, _) = from_addr(
        other,
        addr,
        "/v1/redeem",
        &Raw::new("other").redeem_body(&token, now),
    );
    assert_eq!(status, 200);
    // Signed routes are not under the redeem limit.
    let ok = r.ingest(&s.http, &r.batch(1, "after-flood", generic(now, 2), now));
    assert_eq!(ok.status, 200, "{}", ok.text());
}

/// Attack: junk envelopes (and other failed authentication) from one
/// address. After its failure budget, every partner request from it is
/// refused with 429 before its body is read — even a well-formed one — while
/// an endpoint on another address keeps ingesting.
#[test]
fn failed_auth_flood_shuts_out_that_address_only() {
    let s = Svc::start_with(|st| st.flood = tight(1000.0, 4.0));
    s.setup("t1");
    let now = s.now();
    let token = s.token_text("t1");
    let addr = s.svc.as_ref().unwrap().addr();
    let r = Raw::enroll(&s.http, &token, "legit", now);
    let attacker: IpAddr = [127, 0, 0, 3].into();
    let junk = format!(
        "{{\"payload\":\"{}\",\"payloadType\":\"{}\",\"signatures\":[{{\"keyid\":\"nobody\",\"sig\":\"AAAA\"}}]}}",
        "A".repeat(64 * 1024),
        telemetry::BATCH_TYPE
    );
    for _ in 0..4 {
        let (status, _, p) = from_addr(attacker, addr, "/v1/ingest", junk.as_bytes());
        assert_eq!(status, 401, "{p}");
    }
    let (status, headers, p) = from_addr(attacker, addr, "/v1/ingest", junk.as_bytes());
    assert_eq!(status, 429);
    assert_eq!(p["code"], "rate_limited");
    assert!(headers.contains("retry-after: "), "{headers}");
    // Even a valid redeem from the shut-out address is refused.
    let (status, _, _) = from_addr(
        attacker,
        addr,
        "/v1/redeem",
        &Raw::new("x").redeem_body(&token, now),
    );
    assert_eq!(status, 429);
    // The endpoint on 127.0.0.1 is unaffected.
    for seq in 1..=3 {
        let ok = r.ingest(
            &s.http,
            &r.batch(seq, &format!("b{seq}"), generic(now, 2), now),
        );
        assert_eq!(ok.status, 200, "{}", ok.text());
    }
}

/// Attack: redeems carrying a token the service never signed (well-formed,
/// signed by the requester's own key). They are refused before the writer
/// and leave nothing behind: no nonce row, no installation.
#[test]
fn forged_token_redeems_store_nothing() {
    let s = Svc::start();
    s.setup("t1");
    let now = s.now();
    let forger = SigningKey::generate(&SystemRandom).unwrap();
    let spec = edrlink_core::token::TokenSpec {
        issuer: "edrlink-reference".into(),
        partner_id: PARTNER.into(),
        tenant_id: "t1".into(),
        region: "eu".into(),
        service_url: s.url(),
        epoch: 1,
        lifetime: 3600,
        max_uses: 10,
    };
    let (forged, _) = edrlink_core::token::issue(&spec, &forger, now, &SystemRandom).unwrap();
    for i in 0..5 {
        let resp = s.http.post(
            "/v1/redeem",
            "application/jose",
            Raw::new(&format!("forged-{i}")).redeem_body(&forged, now),
        );
        assert_eq!(resp.status, 401, "{}", resp.text());
    }
    let c = rusqlite::Connection::open(&s.db).unwrap();
    let nonces: i64 = c
        .query_row("SELECT COUNT(*) FROM nonces", [], |r| r.get(0))
        .unwrap();
    let installs: i64 = c
        .query_row("SELECT COUNT(*) FROM installations", [], |r| r.get(0))
        .unwrap();
    assert_eq!((nonces, installs), (0, 0));
    // A genuine token still redeems.
    let mut r = Raw::new("genuine");
    assert_eq!(r.redeem(&s.http, &s.token_text("t1"), now).status, 200);
}
