//! Captures every log line (TRACE, all targets) during a full story and
//! checks that no secret appears: access tokens, the service signing seed,
//! workspace keys, endpoint keys, the admin key, Authorization headers.
//! (Own test binary: it installs the process-wide tracing subscriber.)

mod common;
use common::*;
use edrlink_core::encoding::{b64std, b64url, hex};
use edrlink_core::{downlevel, eicar};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_never_contain_secrets() {
    let buf = Buf::default();
    let w = buf.clone();
    // Everything at TRACE except the test's own HTTP client (ureq logs the
    // bytes it sends; it is not part of the service).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,ureq=off,ureq_proto=off",
        ))
        .with_ansi(false)
        .with_writer(move || w.clone())
        .init();

    let seed = [0x5au8; 32];
    let s = Svc::start_with(|st| st.signing_key_seed = Some(seed));
    s.setup("t1");
    let token = s.token_text("t1");
    let mut ep = Endpoint::new(&s, "a");
    ep.enroll(&token);
    let now = s.now();
    ep.send(vec![eicar::test_detection(now, "/tmp/eicar")]);
    assert_eq!(s.alerts("t1").len(), 1);
    let endpoint_seed = *ep
        .client
        .credential()
        .unwrap()
        .signing_key()
        .unwrap()
        .seed();

    // Down-level, including a refused signature.
    let pkg_json = s
        .admin(
            "POST",
            &format!("/admin/tenants/t1/integrations/{PARTNER}/onboarding-package"),
            None,
        )
        .text();
    let pkg = downlevel::OnboardingPackage::from_json(&pkg_json).unwrap();
    let mut dl = Endpoint::new(&s, "dl");
    dl.client.onboard_with_package(&pkg_json).unwrap();
    dl.pump();
    dl.send(vec![eicar::test_detection(now, "C:\\eicar")]);
    let body = b"{}".to_vec();
    let date = edrlink_core::encoding::rfc3339(now);
    let bad_auth = downlevel::authorization(
        &pkg.workspace_id,
        &[1u8; 32],
        "POST",
        "/v1/downlevel/register",
        "application/json",
        &date,
        &body,
    );
    let r = s.http.send(
        "POST",
        "/v1/downlevel/register",
        &[
            ("content-type", "application/json"),
            ("authorization", &bad_auth),
            (downlevel::DATE_HEADER, &date),
        ],
        Some(body),
    );
    assert_eq!(r.status, 401);

    // Failures that carry secrets in the request.
    assert_eq!(
        Raw::new("x").redeem(&s.http, &token, now - 1000).status,
        401
    );
    assert_eq!(
        s.http
            .send(
                "GET",
                "/admin/tenants",
                &[("authorization", "Bearer wrong-admin-key-value")],
                None
            )
            .status,
        401
    );
    let off = s.admin_ok(
        "POST",
        &format!("/admin/tenants/t1/integrations/{PARTNER}/offboarding-package"),
        Some(json!({})),
    );
    ep.client.offboard("bye").unwrap();
    ep.pump();
    drop(s);

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/v1/ingest")
            && logs.contains("/v1/redeem")
            && logs.contains("access token generated"),
        "expected request logs, got:\n{logs}"
    );
    let ws_key = pkg.key_bytes().unwrap();
    let sig = |t: &str| t.rsplit_once('.').unwrap().1.to_owned();
    let secrets = [
        ("access token", token.clone()),
        ("access token signature", sig(&token)),
        ("signing seed (hex)", hex(&seed)),
        ("signing seed (b64url)", b64url(&seed)),
        ("signing seed (b64)", b64std(&seed)),
        ("workspace key", pkg.workspace_key.clone()),
        ("workspace key (b64)", b64std(&ws_key)),
        ("workspace key (hex)", hex(&ws_key)),
        ("endpoint key", b64url(&endpoint_seed)),
        ("admin key", ADMIN.to_owned()),
        ("wrong admin key", "wrong-admin-key-value".to_owned()),
        ("SharedKey header", "SharedKey".to_owned()),
        ("Bearer header", "Bearer".to_owned()),
        (
            "offboarding package signature",
            sig(off["package"].as_str().unwrap()),
        ),
    ];
    for (what, secret) in secrets {
        if let Some(i) = logs.find(&secret) {
            panic!(
                "{what} appears in the logs: {}",
                &logs[i.saturating_sub(300)..(i + 200).min(logs.len())]
            );
        }
    }
    assert!(
        !logs.to_ascii_lowercase().contains("authorization"),
        "an Authorization header appears in the logs"
    );
}
