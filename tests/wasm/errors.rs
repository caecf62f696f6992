//! Every ErrorCode reaches JS as an EdrlinkError with the right `.code`:
//! through the client driver (the service's problem details, transport
//! failures) and through local checks.
#![cfg(target_arch = "wasm32")]

#[path = "common/mod.rs"]
mod common;

use common::*;
use edrlink_core::error::{Error as CoreError, ErrorCode};
use edrlink_core::http::problem;
use edrlink_wasm::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
fn error_code_table_is_complete() {
    let list = js_sys::Array::from(&error_codes().unwrap());
    assert_eq!(list.length() as usize, ErrorCode::ALL.len());
    for (i, c) in ErrorCode::ALL.iter().enumerate() {
        let e = list.get(i as u32);
        assert_eq!(get(&e, "name").as_string().as_deref(), Some(c.as_str()));
        assert_eq!(get(&e, "number").as_f64(), Some(c.as_u32() as f64));
        assert_eq!(get(&e, "status").as_f64(), Some(c.http_status() as f64));
    }
}

/// The binding's code table is the shared vector file (tests/vectors/errors.json,
/// generated from the core): no code missing, none renumbered, and a thrown
/// error of each code carries that number and HTTP status.
#[wasm_bindgen_test]
fn error_codes_match_the_shared_vectors() {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("../vectors/errors.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    let ours = json_of(&error_codes().unwrap());
    assert_eq!(ours.as_array().unwrap().len(), cases.len());
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let mine = ours
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(mine["number"], c["expect"]["number"], "{name}");
        assert_eq!(mine["status"], c["expect"]["http_status"], "{name}");
    }
}

/// Each code the service can send, as an RFC 9457 problem, rejects `enroll`
/// with that code (non-retryable statuses at once, retryable ones when the
/// time limit passes during the backoff).
#[wasm_bindgen_test]
async fn every_service_error_code_reaches_js() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    for &code in ErrorCode::ALL {
        let mut err = CoreError::new(code, format!("test {code}"));
        if code == ErrorCode::RateLimited {
            err = err.with_retry_after(30);
        }
        let opts = client_options("d-err", &fixed_fetch(problem(&err, None)));
        set(&opts, "opTimeoutSecs", &JsValue::from(0));
        let c = Client::new(opts).unwrap();
        let e = await_promise(c.enroll(&tok)).await.unwrap_err();
        assert_eq!(code_of(&e), code.as_str(), "for {code}");
        let msg = get(&e, "message").as_string().unwrap();
        assert!(msg.contains(&format!("test {code}")), "{msg}");
        if code == ErrorCode::RateLimited {
            assert_eq!(get(&e, "retryAfter").as_f64(), Some(30.0));
            assert_eq!(get(&e, "httpStatus").as_f64(), Some(429.0));
        }
        assert!(c.export_credential().is_none(), "{code}: nothing stored");
    }
}

#[wasm_bindgen_test]
async fn transport_failures_and_garbage_answers() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let opts = client_options("d-net", &failing_fetch());
    set(&opts, "opTimeoutSecs", &JsValue::from(0));
    let c = Client::new(opts).unwrap();
    let e = await_promise(c.enroll(&tok)).await.unwrap_err();
    assert_eq!(code_of(&e), "transport");
    assert!(get(&e, "message")
        .as_string()
        .unwrap()
        .contains("fetch failed"));
    // A 200 that is not a signed answer.
    let junk =
        edrlink_core::http::HttpResponse::new(200, "application/jose", b"not a jws".to_vec());
    let c = Client::new(client_options("d-junk", &fixed_fetch(junk))).unwrap();
    assert_eq!(
        code_of(&await_promise(c.enroll(&tok)).await.unwrap_err()),
        "malformed"
    );
    // A 404 without problem details: the status decides.
    let nf = edrlink_core::http::HttpResponse::new(404, "text/plain", b"nope".to_vec());
    let c = Client::new(client_options("d-404", &fixed_fetch(nf))).unwrap();
    assert_eq!(
        code_of(&await_promise(c.enroll(&tok)).await.unwrap_err()),
        "malformed"
    );
}

#[wasm_bindgen_test]
async fn refusals_of_the_real_service_role() {
    let svc = fake_service();
    let c = Client::new(client_options("d-exp", &service_fetch(&svc))).unwrap();
    let soon = issue_token(&svc, 3600);
    // Disabled integration.
    set_enabled(&svc, false);
    assert_eq!(
        code_of(&await_promise(c.enroll(&soon)).await.unwrap_err()),
        "integration_disabled"
    );
    set_enabled(&svc, true);
    // Token from an older epoch: the integration was toggled since.
    let c = Client::new(client_options("d-epoch", &service_fetch(&svc))).unwrap();
    let e = await_promise(c.enroll(&soon)).await.unwrap_err();
    assert_eq!(code_of(&e), "epoch_mismatch");
}

#[wasm_bindgen_test]
async fn local_errors() {
    let svc = fake_service();
    assert_eq!(
        code_of(&inspect_token("not a token", None).unwrap_err()),
        "malformed"
    );
    assert_eq!(
        code_of(&inspect_token("a.b.c", None).unwrap_err()),
        "malformed"
    );
    assert_eq!(
        code_of(&inspect_token("x", Some(f64::NAN)).unwrap_err()),
        "invalid_argument"
    );
    assert_eq!(
        code_of(&SigningKey::from_seed(&[1; 31]).err().unwrap()),
        "invalid_argument"
    );
    // A public key of the wrong length is the core's `malformed`.
    assert_eq!(code_of(&key_id_of(&[0; 33]).unwrap_err()), "malformed");
    assert_eq!(
        code_of(&open_envelope(b"{}", "t", &[0; 32]).unwrap_err()),
        "malformed"
    );
    assert_eq!(
        code_of(&open_envelope(b"{}", "t", &[0; 31]).unwrap_err()),
        "malformed"
    );
    let k = SigningKey::from_seed(&[2; 32]).unwrap();
    assert_eq!(
        code_of(&seal_envelope("bad type", b"x", &k).unwrap_err()),
        "malformed"
    );
    let env = k.seal("a/b", b"x").unwrap();
    assert_eq!(
        code_of(&open_envelope(&env, "a/c", &k.public_key()).unwrap_err()),
        "wrong_type"
    );
    let other = SigningKey::from_seed(&[3; 32]).unwrap();
    assert_eq!(
        code_of(&open_envelope(&env, "a/b", &other.public_key()).unwrap_err()),
        "unknown_key"
    );
    assert_eq!(
        code_of(&random_id(Some(0)).unwrap_err()),
        "invalid_argument"
    );

    let c = Client::new(client_options("d-q", &service_fetch(&svc))).unwrap();
    assert_eq!(
        code_of(&await_promise(c.handshake()).await.unwrap_err()),
        "invalid_state"
    );
    assert_eq!(
        code_of(&await_promise(c.offboard(None)).await.unwrap_err()),
        "invalid_state"
    );
    c.send_test_detection(None).unwrap();
    assert_eq!(
        code_of(&await_promise(c.flush(Some(0.0))).await.unwrap_err()),
        "invalid_state"
    );
    assert_eq!(code_of(&c.submit("{".into()).unwrap_err()), "malformed");
    assert_eq!(
        code_of(&c.submit(JsValue::NULL).unwrap_err()),
        "invalid_argument"
    );
    assert_eq!(
        code_of(&c.import_credential("{\"v\":1}").unwrap_err()),
        "malformed"
    );
    assert_eq!(
        code_of(&c.apply_offboarding_package("{}").unwrap_err()),
        "invalid_state"
    );
    assert_eq!(
        code_of(&await_promise(c.enroll("garbage")).await.unwrap_err()),
        "malformed"
    );

    let o = client_options("d-full", &service_fetch(&svc));
    set(&o, "maxQueueEvents", &JsValue::from(1));
    let c = Client::new(o).unwrap();
    c.send_test_detection(None).unwrap();
    assert_eq!(
        code_of(&c.send_test_detection(None).unwrap_err()),
        "queue_full"
    );
    let h = c.health().unwrap();
    assert_eq!(
        get(&get(&h, "drops"), "queue_full/detection").as_f64(),
        Some(1.0)
    );
}
