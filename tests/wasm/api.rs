//! The JS-facing API of edrlink-wasm: tokens, envelopes, the async client
//! driver against the core's service role (through a `fetch` function).
#![cfg(target_arch = "wasm32")]

#[path = "common/mod.rs"]
mod common;

use common::*;
use edrlink_wasm::*;
use js_sys::{Function, Object, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
fn inspect_reports_status_and_seconds_left() {
    let svc = fake_service();
    let tok = issue_token(&svc, 7200);
    let t = now();
    let info = inspect_token(&format!("  {tok}\n"), Some(t as f64)).unwrap();
    assert_eq!(get(&info, "status").as_string().as_deref(), Some("valid"));
    assert_eq!(get(&info, "seconds_left").as_f64(), Some(7200.0));
    assert_eq!(
        get(&get(&info, "claims"), "tenant_id")
            .as_string()
            .as_deref(),
        Some(TENANT)
    );
    assert_eq!(
        get(&get(&info, "claims"), "service_url")
            .as_string()
            .as_deref(),
        Some(SERVICE_URL)
    );
    let soon = inspect_token(&tok, Some((t + 7200 - 600) as f64)).unwrap();
    assert_eq!(
        get(&soon, "status").as_string().as_deref(),
        Some("expires_soon")
    );
    assert_eq!(get(&soon, "seconds_left").as_f64(), Some(600.0));
    let gone = inspect_token(&tok, Some((t + 7300) as f64)).unwrap();
    assert_eq!(get(&gone, "status").as_string().as_deref(), Some("expired"));
    assert_eq!(get(&gone, "seconds_left").as_f64(), Some(-100.0));
    let early = inspect_token(&tok, Some((t - 10) as f64)).unwrap();
    assert_eq!(
        get(&early, "status").as_string().as_deref(),
        Some("not_yet_valid")
    );
    // Default "now" is Date.now().
    let live = inspect_token(&tok, None).unwrap();
    let left = get(&live, "seconds_left").as_f64().unwrap();
    assert!((7190.0..=7200.0).contains(&left), "{left}");
}

#[wasm_bindgen_test]
fn verify_token_with_keyset_object_or_string() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let keyset = svc.borrow().role.keyset().to_json();
    let claims = verify_token(&tok, keyset.clone().into(), None, None).unwrap();
    assert_eq!(
        get(&claims, "partner_id").as_string().as_deref(),
        Some(PARTNER)
    );
    let obj = js_sys::JSON::parse(&keyset).unwrap();
    verify_token(&tok, obj, None, None).unwrap();
    let e = verify_token(
        &tok,
        keyset.clone().into(),
        Some((now() + 3600 + 61) as f64),
        Some(60.0),
    )
    .unwrap_err();
    assert_eq!(code_of(&e), "token_expired");
    let other =
        edrlink_core::keys::Keyset::from_keys(&[edrlink_core::keys::SigningKey::from_seed(
            &[1; 32],
        )
        .unwrap()
        .verifying_key()]);
    assert_eq!(
        code_of(&verify_token(&tok, other.to_json().into(), None, None).unwrap_err()),
        "unknown_key"
    );
    assert_eq!(
        code_of(&verify_token(&tok, JsValue::UNDEFINED, None, None).unwrap_err()),
        "invalid_argument"
    );
    assert_eq!(
        code_of(&verify_token(&tok, "{".into(), None, None).unwrap_err()),
        "malformed"
    );
}

#[wasm_bindgen_test]
fn envelopes_round_trip_as_uint8array() {
    let key = SigningKey::from_seed(&[9u8; 32]).unwrap();
    let payload: Vec<u8> = (0..=255u8).collect();
    let env = seal_envelope("application/x-test", &payload, &key).unwrap();
    assert_eq!(
        env,
        key.seal("application/x-test", &payload).unwrap(),
        "deterministic signatures"
    );
    let pk = key.public_key();
    assert_eq!(pk.len(), 32);
    assert_eq!(key_id_of(&pk).unwrap(), key.key_id());
    assert_eq!(
        open_envelope(&env, "application/x-test", &pk).unwrap(),
        payload
    );
    let v = verify_envelope(&env, &pk).unwrap();
    assert_eq!(
        get(&v, "payload_type").as_string().as_deref(),
        Some("application/x-test")
    );
    assert_eq!(get(&v, "keyid").as_string(), Some(key.key_id()));
    assert!(get(&v, "payload").is_instance_of::<Uint8Array>());
    assert_eq!(Uint8Array::new(&get(&v, "payload")).to_vec(), payload);
    let sig = key.sign(b"msg");
    assert!(verify_signature(&pk, b"msg", &sig).unwrap());
    assert!(!verify_signature(&pk, b"msh", &sig).unwrap());
    let fresh = SigningKey::generate().unwrap();
    assert_ne!(fresh.public_key(), pk);
    assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
}

#[wasm_bindgen_test]
fn eicar_event_and_validation() {
    let e = eicar_test_event(Some("C:\\eicar.com".into()), Some(1_795_435_200.0)).unwrap();
    let j = json_of(&e);
    assert_eq!(j["type"], "detection");
    assert_eq!(j["test"], true);
    assert_eq!(j["sha256"], edrlink_core::eicar::EICAR_SHA256);
    assert_eq!(j["time"], "2026-11-23T12:00:00Z");
    assert_eq!(j["file_path"], "C:\\eicar.com");
    let back = validate_event(e).unwrap();
    assert_eq!(json_of(&back), j);
    assert_eq!(
        code_of(&validate_event(r#"{"type":"generic","time":"x","name":"n"}"#.into()).unwrap_err()),
        "malformed"
    );
    assert_eq!(random_id(Some(16)).unwrap().len(), 22);
    assert_eq!(version(), edrlink_core::VERSION);
}

#[wasm_bindgen_test]
async fn enroll_send_eicar_block_and_resume() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let events = Rc::new(RefCell::new(Vec::<String>::new()));
    let ev2 = events.clone();
    let on_event = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        let mut s = get(&e, "type").as_string().unwrap();
        if let Some(f) = get(&e, "flow").as_string() {
            s = format!("{s}:{f}");
        }
        ev2.borrow_mut().push(s);
    });
    let opts = client_options("d1", &service_fetch(&svc));
    set(&opts, "onEvent", on_event.as_ref());
    let c = Client::new(opts).unwrap();
    assert!(c.export_credential().is_none());
    // Nothing queued, nothing to do (as the native Agent); with events queued and
    // no credential, flush is invalid_state (tests/wasm/errors.rs).
    let out = json_of(&await_promise(c.flush(None)).await.unwrap());
    assert_eq!(out, serde_json::json!({"delivered": 0, "queued": 0}));

    let h = await_promise(c.enroll(&tok)).await.unwrap();
    assert_eq!(get(&h, "flow").as_string().as_deref(), Some("open"));
    assert_eq!(get(&h, "onboarded").as_bool(), Some(true));
    assert_eq!(c.flow().as_string().as_deref(), Some("open"));
    let inst = c.installation_id().unwrap();
    assert!(
        events.borrow().contains(&"credential_changed".to_string()),
        "{:?}",
        events.borrow()
    );
    assert!(events.borrow().contains(&"flow_changed:open".to_string()));

    c.send_test_detection(None).unwrap();
    let out = await_promise(c.flush(None)).await.unwrap();
    assert!(get(&out, "delivered").as_f64().unwrap() >= 1.0);
    assert_eq!(get(&out, "queued").as_f64(), Some(0.0));
    assert!(c.is_idle());
    {
        let s = svc.borrow();
        assert_eq!(s.store.alerts.len(), 1);
        assert_eq!(
            s.store.alerts[0].1.title,
            edrlink_core::eicar::EICAR_ALERT_TITLE
        );
        assert_eq!(s.store.alerts[0].0, inst);
    }
    let h = c.health().unwrap();
    assert_eq!(get(&h, "healthy").as_bool(), Some(true));
    assert!(get(&h, "drops").is_object());

    // The admin turns the integration off: the flush is refused, events stay queued.
    set_enabled(&svc, false);
    c.submit(
        r#"{"type":"generic","time":"2026-11-23T12:00:00Z","name":"e1","data":{"k":1}}"#.into(),
    )
    .unwrap();
    let e = await_promise(c.flush(None)).await.unwrap_err();
    assert_eq!(code_of(&e), "flow_blocked");
    assert_eq!(c.flow().as_string().as_deref(), Some("blocked"));
    let h = c.health().unwrap();
    assert!(get(&h, "queued_events").as_f64().unwrap() >= 1.0);
    // The health report's last error is the core's error record, not a string.
    let le = get(&h, "last_error");
    assert_eq!(
        get(&le, "code").as_string().as_deref(),
        Some("flow_blocked")
    );
    assert_eq!(get(&le, "number").as_f64(), Some(500.0));
    assert_eq!(get(&le, "http_status").as_f64(), Some(403.0));
    assert!(get(&le, "retry_after").is_null());
    assert!(get(&le, "detail").is_string());

    // The credential survives an export/import into a new client; on again, a new
    // token resumes the same installation and delivers what was queued.
    let cred = c.export_credential().unwrap();
    assert!(cred.contains("key_seed"));
    set_enabled(&svc, true);
    let tok2 = issue_token(&svc, 3600);
    let c2 = Client::new(client_options("d1", &service_fetch(&svc))).unwrap();
    c2.import_credential(&cred).unwrap();
    assert_eq!(c2.installation_id().as_deref(), Some(inst.as_str()));
    let flow = await_promise(c2.handshake()).await.unwrap();
    assert_eq!(
        flow.as_string().as_deref(),
        Some("revoked"),
        "epoch moved on"
    );
    let h = await_promise(c.enroll(&tok2)).await.unwrap();
    assert_eq!(get(&h, "flow").as_string().as_deref(), Some("open"));
    assert_eq!(c.installation_id().as_deref(), Some(inst.as_str()));
    await_promise(c.flush(None)).await.unwrap();
    let names: Vec<String> = svc
        .borrow()
        .store
        .events_of(&inst)
        .into_iter()
        .filter_map(|e| match e {
            edrlink_core::telemetry::Event::Generic(g) => Some(g.name),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["e1"]);

    // Opt-out wipes the credential.
    await_promise(c.offboard(None)).await.unwrap();
    assert!(c.export_credential().is_none());
    assert!(events.borrow().contains(&"credential_removed".to_string()));
}

#[wasm_bindgen_test]
async fn health_can_be_read_while_an_operation_runs() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let c = Client::new(client_options("d2", &service_fetch(&svc))).unwrap();
    let p = c.enroll(&tok);
    // The drive is suspended at its first await: the client is not borrowed.
    let h = c.health().unwrap();
    assert_eq!(get(&h, "onboarded").as_bool(), Some(false));
    await_promise(p).await.unwrap();
    // Two overlapping operations share the single in-flight slot.
    c.send_test_detection(Some("/tmp/eicar".into())).unwrap();
    let (a, b) = (c.flush(None), c.handshake());
    await_promise(a).await.unwrap();
    await_promise(b).await.unwrap();
    assert!(c.is_idle());
}

#[wasm_bindgen_test]
async fn options_are_checked() {
    let f: Function = failing_fetch();
    assert_eq!(
        code_of(&Client::new(JsValue::UNDEFINED).err().unwrap()),
        "invalid_argument"
    );
    assert_eq!(
        code_of(&Client::new(Object::new().into()).err().unwrap()),
        "invalid_argument"
    );
    let o = client_options("d", &f);
    set(&o, "whenFull", &"sometimes".into());
    assert_eq!(code_of(&Client::new(o).err().unwrap()), "invalid_argument");
    let o = client_options("d", &f);
    set(&o, "fetch", &"not a function".into());
    assert_eq!(code_of(&Client::new(o).err().unwrap()), "invalid_argument");
    let o = client_options("d", &f);
    set(&o, "credential", &"{}".into());
    assert_eq!(code_of(&Client::new(o).err().unwrap()), "malformed");
    let o = client_options("", &f);
    assert_eq!(code_of(&Client::new(o).err().unwrap()), "invalid_argument");
}

/// Every response header reaches the core: a service whose clock runs 1000 s
/// ahead says so in `Date`, the client learns the offset from the redemption
/// answer and signs its handshake with the service's time (which the service
/// would refuse as stale otherwise).
#[wasm_bindgen_test]
async fn date_header_reaches_the_core() {
    let svc = fake_service();
    let tok = issue_token(&svc, 7200);
    let c = Client::new(client_options("d-skew", &skewed_service_fetch(&svc, 1000))).unwrap();
    let h = await_promise(c.enroll(&tok)).await.unwrap();
    assert_eq!(get(&h, "flow").as_string().as_deref(), Some("open"));
    let off = get(&c.health().unwrap(), "clock_offset").as_f64().unwrap();
    assert!((995.0..=1005.0).contains(&off), "clock_offset {off}");
    let flow = await_promise(c.handshake()).await.unwrap();
    assert_eq!(flow.as_string().as_deref(), Some("open"));
}

/// The constructor takes every client and driver option of the shared schema
/// (tests/options-schema.json) by its camelCase name, with the schema's
/// default (`defaultOptions()`), and the core refuses a value out of range
/// with `invalid_argument` naming the option; native and transport options
/// do not apply in JS and are refused the same way.
#[wasm_bindgen_test]
fn every_option_of_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../options-schema.json")).unwrap();
    let defaults = json_of(&default_options().unwrap());
    let f = failing_fetch();
    let mut checked = 0;
    for o in schema["options"].as_array().unwrap() {
        let name = o["name"].as_str().unwrap();
        let camel: String = name
            .split('_')
            .enumerate()
            .map(|(i, w)| {
                if i == 0 {
                    w.to_owned()
                } else {
                    w[..1].to_uppercase() + &w[1..]
                }
            })
            .collect();
        let refused = |v: JsValue| {
            let opts = client_options("d-opt", &f);
            set(&opts, &camel, &v);
            let e = Client::new(opts)
                .err()
                .unwrap_or_else(|| panic!("{camel} accepted"));
            assert_eq!(code_of(&e), "invalid_argument", "{camel}");
            let detail = get(&e, "detail").as_string().unwrap();
            assert!(detail.contains(name), "{camel}: {detail}");
        };
        match o["scope"].as_str().unwrap() {
            "client" | "driver" if name == "device" => continue,
            "client" | "driver" => {
                assert_eq!(
                    defaults.get(&camel),
                    Some(&o["default"]),
                    "default of {camel}"
                );
                if o["type"] == "integer" {
                    let max = o["max"].as_f64().unwrap();
                    refused(JsValue::from(max + 1.0));
                    let min = o["min"].as_f64().unwrap();
                    if min > 0.0 {
                        refused(JsValue::from(min - 1.0));
                    }
                    // A value in range is taken.
                    let opts = client_options("d-opt", &f);
                    set(&opts, &camel, &JsValue::from(min));
                    Client::new(opts).unwrap_or_else(|_| panic!("{camel} = {min}"));
                }
                checked += 1;
            }
            _ => refused(JsValue::from_str("x")),
        }
    }
    assert_eq!(checked, defaults.as_object().unwrap().len());
    assert_eq!(defaults["opTimeoutSecs"], 30);
    // Unknown names are refused too, not silently ignored.
    let opts = client_options("d-opt", &f);
    set(&opts, "timeoutSecs", &JsValue::from(3));
    assert_eq!(
        code_of(&Client::new(opts).err().unwrap()),
        "invalid_argument"
    );
}

type Seen<T> = Rc<RefCell<Vec<T>>>;

/// Collects what the client's `onEvent` and `onLog` hooks receive.
fn hooked_options(
    dev: &str,
    fetch: &Function,
) -> (JsValue, Seen<serde_json::Value>, Seen<(String, String)>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let logs = Rc::new(RefCell::new(Vec::new()));
    let (e2, l2) = (events.clone(), logs.clone());
    let on_event =
        Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| e2.borrow_mut().push(json_of(&e)));
    let on_log = Closure::<dyn FnMut(JsValue, JsValue)>::new(move |l: JsValue, m: JsValue| {
        l2.borrow_mut()
            .push((l.as_string().unwrap(), m.as_string().unwrap()))
    });
    let o = client_options(dev, fetch);
    set(&o, "onEvent", &on_event.into_js_value());
    set(&o, "onLog", &on_log.into_js_value());
    set(&o, "logLevel", &"debug".into());
    (o, events, logs)
}

/// The hooks receive the contract's event objects and the core's diagnostics
/// (level + message, never the token or the key); `rotate()` forces a key
/// rotation that the service accepts and the events report.
#[wasm_bindgen_test]
async fn events_logs_and_rotate() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let (o, events, logs) = hooked_options("d-hooks", &service_fetch(&svc));
    let c = Client::new(o).unwrap();
    await_promise(c.enroll(&tok)).await.unwrap();
    {
        let ev = events.borrow();
        assert!(
            ev.contains(&serde_json::json!({"type": "credential_changed"})),
            "{ev:?}"
        );
        assert!(
            ev.contains(&serde_json::json!({"type": "flow_changed", "flow": "open"})),
            "{ev:?}"
        );
        let logs = logs.borrow();
        assert!(logs.iter().any(|(l, _)| l == "debug"), "{logs:?}");
        assert!(logs.iter().all(|(l, m)| {
            ["error", "warn", "info", "debug", "trace"].contains(&l.as_str()) && !m.contains(&tok)
        }));
    }
    let before = c.export_credential().unwrap();
    events.borrow_mut().clear();
    await_promise(c.rotate()).await.unwrap();
    let after = c.export_credential().unwrap();
    assert_ne!(before, after, "a new key");
    let ev = events.borrow().clone();
    assert!(
        ev.contains(&serde_json::json!({"type": "credential_rotated"})),
        "{ev:?}"
    );
    assert!(
        ev.contains(&serde_json::json!({"type": "credential_changed"})),
        "{ev:?}"
    );
    // The rotated credential keeps working.
    c.send_test_detection(None).unwrap();
    let out = json_of(&await_promise(c.flush(None)).await.unwrap());
    assert_eq!(out["queued"], 0);
    // No log record ever held a key seed.
    let seed = serde_json::from_str::<serde_json::Value>(&after).unwrap()["key_seed"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(logs.borrow().iter().all(|(_, m)| !m.contains(&seed)));
    // A level that does not exist is refused; without a credential rotate is invalid_state.
    let o = client_options("d-lvl", &failing_fetch());
    set(&o, "logLevel", &"loud".into());
    assert_eq!(code_of(&Client::new(o).err().unwrap()), "invalid_argument");
    let c2 = Client::new(client_options("d-rot", &failing_fetch())).unwrap();
    assert_eq!(
        code_of(&await_promise(c2.rotate()).await.unwrap_err()),
        "invalid_state"
    );
}

/// Flush while the service answers 429 with Retry-After: at the deadline it
/// resolves with the events still queued (nothing dropped), the reason is
/// the typed `last_error` with its `retry_after`; a blocked flow rejects at
/// once with `flow_blocked` and a `needs_new_token` event follows a toggle.
#[wasm_bindgen_test]
async fn flush_semantics_follow_the_core() {
    let svc = fake_service();
    let tok = issue_token(&svc, 3600);
    let limited = edrlink_core::http::problem(
        &edrlink_core::Error::new(edrlink_core::ErrorCode::RateLimited, "slow down")
            .with_retry_after(30),
        None,
    );
    let (o, events, _logs) =
        hooked_options("d-429", &intercepting_fetch(&svc, "/v1/ingest", limited));
    let c = Client::new(o).unwrap();
    await_promise(c.enroll(&tok)).await.unwrap();
    c.send_test_detection(None).unwrap();
    let out = json_of(&await_promise(c.flush(Some(0.0))).await.unwrap());
    // The detection (and the client's heartbeat) stay queued.
    assert!(out["queued"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(out["delivered"], 0, "{out}");
    let queued = out["queued"].as_f64();
    let le = json_of(&get(&c.health().unwrap(), "last_error"));
    assert_eq!(le["code"], "rate_limited");
    assert_eq!(le["retry_after"], 30);
    assert_eq!(le["http_status"], 429);
    // Blocked: rejected at once, events kept, the flow change reported.
    set_enabled(&svc, false);
    events.borrow_mut().clear();
    let e = await_promise(c.handshake()).await.unwrap();
    assert_eq!(e.as_string().as_deref(), Some("blocked"));
    assert!(events
        .borrow()
        .contains(&serde_json::json!({"type": "flow_changed", "flow": "blocked"})));
    let e = await_promise(c.flush(None)).await.unwrap_err();
    assert_eq!(code_of(&e), "flow_blocked");
    // Nothing dropped (a heartbeat may have joined the queue).
    let now_queued = get(&c.health().unwrap(), "queued_events").as_f64();
    assert!(now_queued >= queued, "{now_queued:?} < {queued:?}");
}
