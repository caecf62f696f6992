//! Test faults (`Settings::test_faults`, `EDRLINK_TEST_FAULTS=1` in the
//! binary): absent by default, refusals without processing, lost answers
//! after the commit, cleared on request.

mod common;

use common::*;
use edrlink_core::agent::Transport as _;
use edrlink_core::http::HttpRequest;
use edrlink_core::ErrorCode;
use serde_json::json;

fn faults_on() -> Svc {
    Svc::start_with(|s| s.test_faults = true)
}

#[test]
fn fault_routes_do_not_exist_by_default() {
    let s = Svc::start();
    let body = json!({"path": "/v1/keys", "count": 1, "status": 429, "retry_after": 1});
    let r = s.admin("POST", "/admin/test/faults", Some(body));
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(s.admin("DELETE", "/admin/test/faults", None).status, 404);
    // And nothing is armed: the partner route answers normally.
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
}

#[test]
fn fault_routes_need_the_admin_key() {
    let s = faults_on();
    let r = s.http.send(
        "POST",
        "/admin/test/faults",
        &[("content-type", "application/json")],
        Some(br#"{"path":"/v1/keys","count":1,"status":429}"#.to_vec()),
    );
    assert_eq!(r.status, 401);
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
}

#[test]
fn refusal_faults_answer_count_requests_with_the_status_code_and_retry_after() {
    let s = faults_on();
    let arm = json!({"path": "/v1/keys", "count": 2, "status": 429, "retry_after": 1});
    assert_eq!(
        s.admin_ok("POST", "/admin/test/faults", Some(arm)),
        json!({"armed": true})
    );
    for _ in 0..2 {
        let r = s.http.send("GET", "/v1/keys", &[], None);
        assert_eq!(r.problem(429), "rate_limited");
        assert_eq!(r.header("retry-after"), Some("1"));
        assert_eq!(r.json()["retry_after"], 1);
        assert!(r.header("date").is_some());
    }
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);

    let arm = json!({"path": "/v1/keys", "count": 1, "status": 503, "retry_after": 3});
    s.admin_ok("POST", "/admin/test/faults", Some(arm));
    let r = s.http.send("GET", "/v1/keys", &[], None);
    assert_eq!(r.problem(503), "service_unavailable");
    assert_eq!(r.header("retry-after"), Some("3"));

    // A refused request is not processed: a redeem refused by a fault
    // leaves no installation, and uses no token.
    s.setup("t1");
    let tok = s.token_text("t1");
    let arm = json!({"path": "/v1/redeem", "count": 1, "status": 503});
    s.admin_ok("POST", "/admin/test/faults", Some(arm));
    let raw = Raw::new("refused");
    let r = s.http.post(
        "/v1/redeem",
        "application/jose",
        raw.redeem_body(&tok, s.now()),
    );
    assert_eq!(r.problem(503), "service_unavailable");
    assert_eq!(r.header("retry-after"), None);
    assert_eq!(s.installations("t1")["installations"], json!([]));
}

#[test]
fn drop_answer_commits_then_closes_without_an_answer() {
    let s = faults_on();
    s.setup("t1");
    let tok = s.token_text("t1");
    let arm = json!({"path": "/v1/redeem", "count": 1, "drop_answer": true});
    s.admin_ok("POST", "/admin/test/faults", Some(arm));
    let transport =
        edrlink_core::transport::HttpTransport::new(edrlink_core::transport::HttpOptions {
            no_proxy: true,
            ..Default::default()
        })
        .unwrap();
    let raw = Raw::new("lost");
    let req = HttpRequest {
        id: 0,
        method: "POST".into(),
        url: format!("{}/v1/redeem", s.url()),
        headers: vec![("content-type".into(), "application/jose".into())],
        body: raw.redeem_body(&tok, s.now()),
    };
    let e = transport.send(&req).expect_err("the answer is lost");
    assert_eq!(e.code(), ErrorCode::Transport, "{e}");
    // The request's effect was committed: the installation exists.
    let list = s.installations("t1")["installations"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // Count 1: the next request is answered.
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
}

#[test]
fn clearing_disarms_and_bad_faults_are_refused() {
    let s = faults_on();
    let arm = json!({"path": "/v1/keys", "count": 5, "status": 429, "retry_after": 1});
    s.admin_ok("POST", "/admin/test/faults", Some(arm));
    assert_eq!(
        s.admin_ok("DELETE", "/admin/test/faults", None),
        json!({"cleared": true})
    );
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
    for bad in [
        json!({"path": "/admin/tenants", "count": 1, "status": 429}),
        json!({"path": "/v1/keys", "count": 1, "status": 200}),
        json!({"path": "/v1/keys", "count": 1}),
        json!({"path": "/v1/keys", "count": 1, "status": 429, "bogus": 1}),
    ] {
        let r = s.admin("POST", "/admin/test/faults", Some(bad.clone()));
        assert!(
            r.status == 400 || r.status == 422,
            "{bad}: {} {}",
            r.status,
            r.text()
        );
    }
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
}

/// A lost answer is lost entirely: not one byte of a status line reaches the
/// client (it cannot tell a processed request from an unprocessed one).
#[test]
fn drop_answer_sends_no_byte() {
    use std::io::{Read, Write};
    let s = faults_on();
    let arm = json!({"path": "/v1/keys", "count": 1, "drop_answer": true});
    s.admin_ok("POST", "/admin/test/faults", Some(arm));
    let addr = s.url().trim_start_matches("http://").to_owned();
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    tcp.write_all(b"GET /v1/keys HTTP/1.1\r\nhost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    // Closed (EOF) or reset: either way nothing was answered.
    let _ = tcp.read_to_end(&mut got);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(s.http.send("GET", "/v1/keys", &[], None).status, 200);
}
