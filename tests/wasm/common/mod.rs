//! Shared helpers of the wasm-bindgen-test suites (Node and headless Chromium).
#![allow(dead_code)]

use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{RandomSource, SigningKey};
use edrlink_core::memory_store::MemoryStore;
use edrlink_core::service::{ServiceConfig, ServiceRole};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

pub const SERVICE_URL: &str = "https://svc.test";
pub const TENANT: &str = "t1";
pub const PARTNER: &str = "acme-av";

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn get(v: &JsValue, k: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(k)).expect("object")
}

pub fn set(v: &JsValue, k: &str, x: &JsValue) {
    Reflect::set(v, &JsValue::from_str(k), x).expect("object");
}

/// The `.code` of a thrown EdrlinkError (also checks it is an Error named EdrlinkError
/// carrying the core's error record: `number` and `httpStatus` of that code, a
/// `detail` string and `retryAfter` a number or `null`).
pub fn code_of(e: &JsValue) -> String {
    assert!(
        e.is_instance_of::<js_sys::Error>(),
        "thrown value is not an Error: {e:?}"
    );
    assert_eq!(get(e, "name").as_string().as_deref(), Some("EdrlinkError"));
    let code = get(e, "code").as_string().expect("code is a string");
    let c =
        edrlink_core::ErrorCode::from_name(&code).unwrap_or_else(|| panic!("unknown code {code}"));
    assert_eq!(get(e, "number").as_f64(), Some(c.as_u32() as f64));
    assert_eq!(get(e, "httpStatus").as_f64(), Some(c.http_status() as f64));
    let detail = get(e, "detail").as_string().expect("detail is a string");
    assert_eq!(
        get(e, "message").as_string().as_deref(),
        Some(format!("{code}: {detail}").as_str())
    );
    let retry = get(e, "retryAfter");
    assert!(retry.is_null() || retry.as_f64().is_some(), "{retry:?}");
    code
}

/// JS value → serde_json value (through JSON.stringify), for comparisons.
pub fn json_of(v: &JsValue) -> serde_json::Value {
    let s = js_sys::JSON::stringify(v)
        .expect("stringify")
        .as_string()
        .expect("string");
    serde_json::from_str(&s).expect("json")
}

pub fn device(id: &str) -> JsValue {
    let d: JsValue = Object::new().into();
    for (k, v) in [
        ("device_id", id),
        ("hostname", "host-wasm"),
        ("os", "browser"),
        ("os_version", "1"),
        ("product", "AV"),
        ("product_version", "1.0"),
    ] {
        set(&d, k, &v.into());
    }
    d
}

pub fn now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

struct Counter(Cell<u64>);
impl RandomSource for Counter {
    fn fill(&self, dest: &mut [u8]) -> edrlink_core::Result<()> {
        for chunk in dest.chunks_mut(8) {
            let n = self.0.get();
            self.0.set(n + 1);
            chunk.copy_from_slice(&n.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
// The core wants Send + Sync randomness; wasm is single-threaded.
unsafe impl Send for Counter {}
unsafe impl Sync for Counter {}

/// The core's service role over a MemoryStore, reachable through a `fetch`-like function.
pub struct FakeService {
    pub role: ServiceRole,
    pub store: MemoryStore,
    pub requests: u32,
}

pub type Shared = Rc<RefCell<FakeService>>;

pub fn fake_service() -> Shared {
    let cfg = ServiceConfig {
        issuer: "test".into(),
        region: "eu".into(),
        service_url: SERVICE_URL.into(),
        keys: vec![SigningKey::from_seed(&[42; 32]).unwrap()],
        policy: edrlink_core::policy::Policy::default(),
        rate_limit: edrlink_core::service::RateLimit::default(),
        session_lifetime: 3600,
    };
    let role = ServiceRole::new(cfg, Box::new(Counter(Cell::new(1 << 40)))).unwrap();
    let mut store = MemoryStore::default();
    store.tenants.insert(TENANT.into(), "eu".into());
    role.set_integration(&mut store, TENANT, PARTNER, true, now())
        .unwrap();
    Rc::new(RefCell::new(FakeService {
        role,
        store,
        requests: 0,
    }))
}

/// A token from the service role (which records it in the store).
pub fn issue_token(svc: &Shared, lifetime: i64) -> String {
    let s = &mut *svc.borrow_mut();
    s.role
        .issue_token(&mut s.store, TENANT, PARTNER, lifetime, 10, now())
        .unwrap()
        .0
}

/// The admin's integration toggle, through the service role (off bumps the epoch).
pub fn set_enabled(svc: &Shared, enabled: bool) {
    let s = &mut *svc.borrow_mut();
    s.role
        .set_integration(&mut s.store, TENANT, PARTNER, enabled, now())
        .unwrap();
}

fn response(resp: &HttpResponse) -> JsValue {
    let ctor = Reflect::get(&js_sys::global(), &"Response".into())
        .unwrap()
        .dyn_into::<Function>()
        .unwrap();
    let init: JsValue = Object::new().into();
    set(&init, "status", &JsValue::from(resp.status));
    let headers: JsValue = Object::new().into();
    for (k, v) in &resp.headers {
        set(&headers, k, &v.as_str().into());
    }
    set(&init, "headers", &headers);
    let body = Uint8Array::from(resp.body.as_slice());
    Reflect::construct(&ctor, &Array::of2(&body, &init)).unwrap()
}

fn request_of(url: &JsValue, init: &JsValue) -> HttpRequest {
    let url = url.as_string().unwrap();
    let path = url.strip_prefix(SERVICE_URL).unwrap_or(&url).to_owned();
    let hv = get(init, "headers");
    let headers = Object::entries(hv.unchecked_ref())
        .iter()
        .map(|e| {
            let e: Array = e.unchecked_into();
            (e.get(0).as_string().unwrap(), e.get(1).as_string().unwrap())
        })
        .collect();
    let body = Uint8Array::new(&get(init, "body")).to_vec();
    HttpRequest {
        id: 0,
        method: get(init, "method").as_string().unwrap(),
        url: path,
        headers,
        body,
    }
}

/// A `fetch` that hands requests to the fake service.
pub fn service_fetch(svc: &Shared) -> Function {
    skewed_service_fetch(svc, 0)
}

/// A `fetch` to a fake service whose clock is `skew` seconds ahead of ours
/// (its answers carry that time in `Date`).
pub fn skewed_service_fetch(svc: &Shared, skew: i64) -> Function {
    let svc = svc.clone();
    let f = Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(
        move |url: JsValue, init: JsValue| {
            let req = request_of(&url, &init);
            let s = &mut *svc.borrow_mut();
            s.requests += 1;
            let resp = s.role.handle(&mut s.store, &req, now() + skew);
            Promise::resolve(&response(&resp))
        },
    );
    f.into_js_value().unchecked_into()
}

/// A `fetch` that answers requests to paths ending in `suffix` with `resp`
/// and hands every other request to the fake service.
pub fn intercepting_fetch(svc: &Shared, suffix: &'static str, resp: HttpResponse) -> Function {
    let svc = svc.clone();
    let f = Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(
        move |url: JsValue, init: JsValue| {
            let req = request_of(&url, &init);
            if req.url.ends_with(suffix) {
                return Promise::resolve(&response(&resp));
            }
            let s = &mut *svc.borrow_mut();
            s.requests += 1;
            let resp = s.role.handle(&mut s.store, &req, now());
            Promise::resolve(&response(&resp))
        },
    );
    f.into_js_value().unchecked_into()
}

/// A `fetch` that answers every request with `resp`.
pub fn fixed_fetch(resp: HttpResponse) -> Function {
    let f =
        Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(move |_: JsValue, _: JsValue| {
            Promise::resolve(&response(&resp))
        });
    f.into_js_value().unchecked_into()
}

/// A `fetch` that fails like a refused connection.
pub fn failing_fetch() -> Function {
    let f =
        Closure::<dyn FnMut(JsValue, JsValue) -> Promise>::new(move |_: JsValue, _: JsValue| {
            Promise::reject(&js_sys::TypeError::new("fetch failed").into())
        });
    f.into_js_value().unchecked_into()
}

pub fn client_options(dev: &str, fetch: &Function) -> JsValue {
    let o: JsValue = Object::new().into();
    set(&o, "device", &device(dev));
    set(&o, "fetch", fetch);
    set(&o, "opTimeoutSecs", &JsValue::from(5));
    o
}

pub async fn await_promise(p: Promise) -> Result<JsValue, JsValue> {
    wasm_bindgen_futures::JsFuture::from(p).await
}
