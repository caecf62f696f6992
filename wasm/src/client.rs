//! `EdrlinkClient`: drives the core's sans-IO `PartnerClient` over `fetch`
//! (poll_request → fetch → handle_response, sleeping until poll_timeout).
//!
//! The state sits in an `Rc<RefCell<…>>` that is never borrowed across an
//! `await`, so `health()` and friends can be called while an operation runs,
//! and several operations may overlap (the core keeps one request in flight).

use crate::{
    err, from_js, global, js_error, json_text, now_secs, parse_keyset, set, to_js, IntoJs,
};
use edrlink_core::client::{ClientConfig, ClientEvent, PartnerClient, WhenFull};
use edrlink_core::credential::Credential;
use edrlink_core::error::{Error as CoreError, ErrorCode};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::SystemRandom;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::telemetry::Event;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// File path reported by the EICAR test detection unless one is given.
pub(crate) const EICAR_PATH: &str = "/edrlink/eicar-test.com";
const DEFAULT_TIMEOUT_SECS: f64 = 15.0;

pub(crate) struct Inner {
    pub(crate) pc: RefCell<PartnerClient>,
    /// The configuration `pc` was built with (persist.rs rebuilds the client from a snapshot).
    pub(crate) cfg: ClientConfig,
    fetch: Option<Function>,
    on_event: Option<Function>,
    timeout_secs: f64,
}

/// The partner client for one endpoint (a browser extension, a web app, a
/// Node service). Construct with `new EdrlinkClient({ device, ... })`.
///
/// Credential storage is the host's job: persist `exportCredential()` when the
/// `credential_changed` event fires (or after `enroll`), restore with
/// `importCredential()` / the `credential` option. The token itself is never kept.
#[wasm_bindgen(js_name = EdrlinkClient)]
pub struct Client {
    pub(crate) inner: Rc<Inner>,
}

fn opt(obj: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn opt_num(obj: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    match opt(obj, key) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(err(
                ErrorCode::InvalidArgument,
                format!("option {key} must be a non-negative number"),
            )),
        },
    }
}

fn opt_fn(obj: &JsValue, key: &str) -> Result<Option<Function>, JsValue> {
    match opt(obj, key) {
        None => Ok(None),
        Some(v) => v.dyn_into::<Function>().map(Some).map_err(|_| {
            err(
                ErrorCode::InvalidArgument,
                format!("option {key} must be a function"),
            )
        }),
    }
}

fn opt_str(obj: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    match opt(obj, key) {
        None => Ok(None),
        Some(v) => v.as_string().map(Some).ok_or_else(|| {
            err(
                ErrorCode::InvalidArgument,
                format!("option {key} must be a string"),
            )
        }),
    }
}

fn flow_js(f: Option<FlowState>) -> JsValue {
    match f {
        None => JsValue::NULL,
        Some(FlowState::Open) => "open".into(),
        Some(FlowState::Blocked) => "blocked".into(),
        Some(FlowState::Revoked) => "revoked".into(),
    }
}

/// The client's last error as a typed error (the health report carries it as
/// "code: message"), with `retry_after` = seconds until the client's next attempt
/// when it is backing off (the service's `Retry-After` when it sent one).
fn last_error(pc: &PartnerClient, fallback: ErrorCode, msg: &str) -> CoreError {
    let now = now_secs();
    let h = pc.health(now);
    let e = pc
        .last_error()
        .cloned()
        .unwrap_or_else(|| CoreError::new(fallback, msg.to_owned()));
    match h.next_attempt {
        Some(t) if t > now => e.with_retry_after((t - now) as u64),
        _ => e,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Goal {
    /// Credential present and a first flow decision (or a refusal).
    Enrolled,
    /// A flow decision.
    FlowKnown,
    /// Queue empty, nothing in flight.
    Idle,
    /// Credential gone.
    Offboarded,
}

#[derive(Default)]
struct Progress {
    delivered: u64,
    failed: Option<ErrorCode>,
    credential_changed: bool,
}

#[wasm_bindgen(js_class = EdrlinkClient)]
impl Client {
    /// Creates a client. `options.device` is required; see `ClientOptions`.
    /// Throws `invalid_argument` for bad options and `malformed` for a bad
    /// `credential` / `pinnedKeys`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<Client, JsValue> {
        if !options.is_object() {
            return Err(err(
                ErrorCode::InvalidArgument,
                "options must be an object with at least { device }",
            ));
        }
        let device_v = opt(&options, "device")
            .ok_or_else(|| err(ErrorCode::InvalidArgument, "options.device is required"))?;
        let device: DeviceFacts = from_js(&device_v, "options.device")
            .map_err(|_| err(ErrorCode::InvalidArgument, "options.device must be { device_id, hostname, os, os_version, product, product_version } (strings)"))?;
        device.validate().js()?;
        let mut cfg = ClientConfig::new(device);
        if let Some(k) = opt(&options, "pinnedKeys") {
            cfg.pinned_keys = Some(parse_keyset(&k)?);
        }
        cfg.service_url = opt_str(&options, "serviceUrl")?;
        if let Some(g) = opt(&options, "gzip") {
            cfg.gzip = g
                .as_bool()
                .ok_or_else(|| err(ErrorCode::InvalidArgument, "option gzip must be a boolean"))?;
            if cfg.gzip && !cfg!(feature = "gzip") {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    "this build of edrlink-wasm has no gzip support",
                ));
            }
        }
        if let Some(n) = opt_num(&options, "maxQueueEvents")? {
            cfg.max_queue_events = (n as u64).max(1);
        }
        if let Some(n) = opt_num(&options, "maxQueueBytes")? {
            cfg.max_queue_bytes = (n as u64).max(1);
        }
        if let Some(n) = opt_num(&options, "maxBatchDelaySecs")? {
            cfg.max_batch_delay_secs = n as i64;
        }
        match opt_str(&options, "whenFull")?.as_deref() {
            None | Some("refuse_new") => cfg.when_full = WhenFull::RefuseNew,
            Some("drop_oldest") => cfg.when_full = WhenFull::DropOldest,
            Some(_) => {
                return Err(err(
                    ErrorCode::InvalidArgument,
                    "option whenFull must be \"refuse_new\" or \"drop_oldest\"",
                ))
            }
        }
        let timeout_secs = opt_num(&options, "timeoutSecs")?.unwrap_or(DEFAULT_TIMEOUT_SECS);
        let mut pc = PartnerClient::new(cfg.clone(), Box::new(SystemRandom));
        if let Some(c) = opt(&options, "credential") {
            pc.set_credential(Credential::from_json(&json_text(&c, "credential")?).js()?);
        }
        Ok(Client {
            inner: Rc::new(Inner {
                pc: RefCell::new(pc),
                cfg,
                fetch: opt_fn(&options, "fetch")?,
                on_event: opt_fn(&options, "onEvent")?,
                timeout_secs,
            }),
        })
    }

    /// Redeems an access token and performs the first handshake. Resolves to
    /// the health report (its `flow` says whether data may flow). Rejects with
    /// the service's refusal (`token_expired`, `token_revoked`,
    /// `integration_disabled`, `wrong_region`, …) or `transport` /
    /// `service_unavailable` when the service cannot be reached in time.
    #[wasm_bindgen(unchecked_return_type = "Promise<HealthReport>")]
    pub fn enroll(&self, token: &str) -> Promise {
        let inner = self.inner.clone();
        let started = inner.pc.borrow_mut().redeem(token.trim());
        future_to_promise(async move {
            started.js()?;
            drive(&inner, Goal::Enrolled, None).await?;
            let h = inner.pc.borrow().health(now_secs());
            to_js(&h)
        })
    }

    /// Asks the service for a fresh flow decision now. Resolves to the flow
    /// state: `"open"`, `"blocked"` (integration turned off: data is kept) or
    /// `"revoked"` (a new token is needed).
    #[wasm_bindgen(unchecked_return_type = "Promise<FlowState>")]
    pub fn handshake(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            {
                let mut pc = inner.pc.borrow_mut();
                if pc.credential().is_none() {
                    return Err(err(
                        ErrorCode::InvalidState,
                        "not enrolled: redeem a token first",
                    ));
                }
                pc.handshake_now();
            }
            drive(&inner, Goal::FlowKnown, None).await?;
            let f = inner.pc.borrow().flow();
            Ok(flow_js(f))
        })
    }

    /// Queues a telemetry event (plain object or JSON string). Throws
    /// `malformed` for an invalid event and `queue_full` when the queue is full.
    /// Call `flush()` to deliver now; otherwise events wait for the batch delay
    /// and the next operation that drives the client.
    pub fn submit(
        &self,
        #[wasm_bindgen(unchecked_param_type = "EdrlinkEvent | string")] event: JsValue,
    ) -> Result<(), JsValue> {
        let e = Event::from_json(&json_text(&event, "event")?).js()?;
        self.inner.pc.borrow_mut().submit(e, now_secs()).js()
    }

    /// Queues the EICAR test detection (see `eicarTestEvent`); `flush()` sends it.
    #[wasm_bindgen(js_name = sendTestDetection)]
    pub fn send_test_detection(
        &self,
        #[wasm_bindgen(js_name = "filePath")] file_path: Option<String>,
    ) -> Result<(), JsValue> {
        let now = now_secs();
        let e =
            edrlink_core::eicar::test_detection(now, file_path.as_deref().unwrap_or(EICAR_PATH));
        self.inner.pc.borrow_mut().submit(e, now).js()
    }

    /// Delivers everything queued (handshaking first if needed). Resolves to
    /// `{ delivered, queued }`. Rejects with `flow_blocked` when the integration
    /// is turned off (events stay queued), `revoked` / `needs_reenroll` when a
    /// new token is needed, or the last error when `timeoutSecs` passes.
    #[wasm_bindgen(unchecked_return_type = "Promise<FlushOutcome>")]
    pub fn flush(
        &self,
        #[wasm_bindgen(js_name = "timeoutSecs")] timeout_secs: Option<f64>,
    ) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            {
                let mut pc = inner.pc.borrow_mut();
                if pc.credential().is_none() {
                    return Err(err(
                        ErrorCode::InvalidState,
                        "not enrolled: redeem a token first",
                    ));
                }
                pc.flush();
            }
            let p = drive(&inner, Goal::Idle, timeout_secs).await?;
            let out: JsValue = Object::new().into();
            set(&out, "delivered", &JsValue::from(p.delivered as f64));
            let queued = inner.pc.borrow().health(now_secs()).queued_events;
            set(&out, "queued", &JsValue::from(queued as f64));
            Ok(out)
        })
    }

    /// Partner-initiated offboarding (opt-out): tells the service, then wipes
    /// the credential (`credential_removed` event).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn offboard(&self, reason: Option<String>) -> Promise {
        let inner = self.inner.clone();
        let started = inner
            .pc
            .borrow_mut()
            .offboard(reason.as_deref().unwrap_or("partner opt-out"));
        future_to_promise(async move {
            started.js()?;
            drive(&inner, Goal::Offboarded, None).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Applies an admin-issued offboarding package (JSON string): verifies it
    /// and wipes the credential. Throws `package_invalid`, `bad_signature`, …
    #[wasm_bindgen(js_name = applyOffboardingPackage)]
    pub fn apply_offboarding_package(
        &self,
        #[wasm_bindgen(js_name = "packageJson")] package: &str,
    ) -> Result<(), JsValue> {
        let mut pc = self.inner.pc.borrow_mut();
        let r = pc.apply_offboarding_package(package, now_secs());
        drop(pc);
        emit_events(&self.inner, &mut Progress::default());
        r.js()
    }

    /// The health report (plain object; times are Unix seconds).
    #[wasm_bindgen(unchecked_return_type = "HealthReport")]
    pub fn health(&self) -> Result<JsValue, JsValue> {
        let h = self.inner.pc.borrow().health(now_secs());
        to_js(&h)
    }

    /// The last flow decision, or `null` before the first handshake.
    #[wasm_bindgen(getter, unchecked_return_type = "FlowState | null")]
    pub fn flow(&self) -> JsValue {
        flow_js(self.inner.pc.borrow().flow())
    }

    /// Whether nothing is queued or in flight.
    #[wasm_bindgen(getter, js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.inner.pc.borrow().is_idle()
    }

    /// The credential as a JSON string (**holds the installation's private
    /// key**), or `undefined` before enrollment. Store it where only this
    /// product can read it (extension storage, IndexedDB, a 0600 file).
    #[wasm_bindgen(js_name = exportCredential)]
    pub fn export_credential(&self) -> Option<String> {
        self.inner
            .pc
            .borrow()
            .credential()
            .map(|c| c.to_json().as_str().to_owned())
    }

    /// Restores a credential exported earlier. Throws `malformed` when it does
    /// not parse. The next operation re-handshakes.
    #[wasm_bindgen(js_name = importCredential)]
    pub fn import_credential(&self, json: &str) -> Result<(), JsValue> {
        let c = Credential::from_json(json).js()?;
        self.inner.pc.borrow_mut().set_credential(c);
        Ok(())
    }

    /// Installation id assigned by the service, once enrolled.
    #[wasm_bindgen(getter, js_name = installationId)]
    pub fn installation_id(&self) -> Option<String> {
        self.inner
            .pc
            .borrow()
            .credential()
            .map(|c| c.installation_id.clone())
    }
}

/// Hands queued client events to `onEvent` (outside any borrow: the callback
/// may call back into the client) and records what the driver needs.
fn emit_events(inner: &Inner, progress: &mut Progress) {
    let events: Vec<ClientEvent> = {
        let mut pc = inner.pc.borrow_mut();
        std::iter::from_fn(|| pc.poll_event()).collect()
    };
    for ev in events {
        let obj: JsValue = Object::new().into();
        match ev {
            ClientEvent::CredentialChanged => {
                progress.credential_changed = true;
                set(&obj, "type", &"credential_changed".into());
            }
            ClientEvent::CredentialRemoved => set(&obj, "type", &"credential_removed".into()),
            ClientEvent::FlowChanged(f) => {
                set(&obj, "type", &"flow_changed".into());
                set(&obj, "flow", &flow_js(Some(f)));
            }
            ClientEvent::Delivered(n) => {
                progress.delivered += n;
                set(&obj, "type", &"delivered".into());
                set(&obj, "count", &JsValue::from(n as f64));
            }
            ClientEvent::Failed(code) => {
                progress.failed = Some(code);
                set(&obj, "type", &"failed".into());
                set(&obj, "code", &code.as_str().into());
            }
            ClientEvent::NeedsNewToken(code) => {
                set(&obj, "type", &"needs_new_token".into());
                set(&obj, "code", &code.as_str().into());
            }
            ClientEvent::QueueFull => set(&obj, "type", &"queue_full".into()),
            ClientEvent::EventsDropped { reason, count } => {
                set(&obj, "type", &"events_dropped".into());
                set(&obj, "reason", &reason.as_str().into());
                set(&obj, "count", &JsValue::from(count as f64));
            }
            ClientEvent::CredentialRotated => set(&obj, "type", &"credential_rotated".into()),
        }
        if let Some(f) = &inner.on_event {
            let _ = f.call1(&JsValue::UNDEFINED, &obj);
        }
    }
}

enum Check {
    Done,
    Fail(CoreError),
    Continue,
}

fn check(inner: &Inner, goal: Goal, progress: &Progress) -> Check {
    let pc = inner.pc.borrow();
    let h = pc.health(now_secs());
    let failed = |fallback: ErrorCode, msg: &str| Check::Fail(last_error(&pc, fallback, msg));
    match goal {
        Goal::Enrolled => {
            if let Some(code) = progress.failed {
                return failed(code, "enrollment failed");
            }
            if progress.credential_changed && h.flow.is_some() {
                Check::Done
            } else {
                Check::Continue
            }
        }
        Goal::FlowKnown => {
            if h.flow.is_some() || h.needs_new_token {
                Check::Done
            } else if let Some(code) = progress.failed {
                failed(code, "handshake failed")
            } else {
                Check::Continue
            }
        }
        Goal::Idle => {
            if h.needs_new_token || h.flow == Some(FlowState::Revoked) {
                failed(ErrorCode::Revoked, "a new access token is required")
            } else if h.flow == Some(FlowState::Blocked) {
                failed(
                    ErrorCode::FlowBlocked,
                    "inbound flow is blocked by the service",
                )
            } else if pc.is_idle() {
                Check::Done
            } else {
                Check::Continue
            }
        }
        Goal::Offboarded => {
            if !h.onboarded {
                Check::Done
            } else if let Some(code) = progress.failed {
                failed(code, "offboarding failed")
            } else {
                Check::Continue
            }
        }
    }
}

/// Runs the client until `goal` is reached, it fails, or the timeout passes.
async fn drive(
    inner: &Rc<Inner>,
    goal: Goal,
    timeout_secs: Option<f64>,
) -> Result<Progress, JsValue> {
    let timeout = timeout_secs
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(inner.timeout_secs);
    let deadline = js_sys::Date::now() + timeout * 1000.0;
    let mut progress = Progress::default();
    loop {
        let now = now_secs();
        let req = inner.pc.borrow_mut().poll_request(now);
        emit_events(inner, &mut progress);
        if let Some(req) = &req {
            let result = perform(inner, req).await;
            let now = now_secs();
            {
                let mut pc = inner.pc.borrow_mut();
                match result {
                    Ok(resp) => pc.handle_response(req.id, &resp, now),
                    Err(msg) => pc.handle_transport_error(req.id, &msg, now),
                }
            }
            emit_events(inner, &mut progress);
        }
        match check(inner, goal, &progress) {
            Check::Done => return Ok(progress),
            Check::Fail(e) => return Err(js_error(&e)),
            Check::Continue => {}
        }
        if req.is_some() {
            continue;
        }
        // Nothing to send right now: wait until the core has something due.
        let now_ms = js_sys::Date::now();
        let wait_ms = match inner.pc.borrow().poll_timeout(now_secs()) {
            // Due now, but another operation holds the single in-flight slot.
            Some(t) => ((t * 1000) as f64 - now_ms).max(25.0),
            None if !inner.pc.borrow().is_idle() => 25.0,
            None => f64::INFINITY,
        };
        if now_ms + wait_ms > deadline {
            let pc = inner.pc.borrow();
            let e = last_error(
                &pc,
                ErrorCode::Transport,
                &format!("no answer from the service within {} s", timeout as u64),
            );
            return Err(js_error(&e));
        }
        sleep(wait_ms).await?;
    }
}

fn call_method(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = Reflect::get(target, &JsValue::from_str(name))?.dyn_into()?;
    match args {
        [] => f.call0(target),
        [a] => f.call1(target, a),
        [a, b] => f.call2(target, a, b),
        _ => unreachable!("at most two arguments"),
    }
}

fn describe(e: &JsValue) -> String {
    if let Some(e) = e.dyn_ref::<js_sys::Error>() {
        let msg: String = e.message().into();
        // fetch's TypeError("fetch failed") hides the reason in `cause`.
        if let Some(cause) = Reflect::get(e, &"cause".into())
            .ok()
            .filter(|c| !c.is_undefined())
        {
            return format!("{msg} ({})", describe(&cause));
        }
        return msg;
    }
    e.as_string().unwrap_or_else(|| "request failed".into())
}

/// One HTTP exchange through `options.fetch` or the global `fetch`.
/// `Err` = failure below HTTP (network, CORS, abort), reported as `transport`.
async fn perform(inner: &Inner, req: &HttpRequest) -> Result<HttpResponse, String> {
    let g = global();
    let fetch = match &inner.fetch {
        Some(f) => f.clone(),
        None => Reflect::get(&g, &"fetch".into())
            .ok()
            .and_then(|f| f.dyn_into::<Function>().ok())
            .ok_or("no fetch() in this environment: pass options.fetch")?,
    };
    let headers: JsValue = Object::new().into();
    for (k, v) in &req.headers {
        set(&headers, k, &JsValue::from_str(v));
    }
    let init: JsValue = Object::new().into();
    set(&init, "method", &JsValue::from_str(&req.method));
    set(&init, "headers", &headers);
    set(&init, "body", &Uint8Array::from(req.body.as_slice()).into());
    let this = if inner.fetch.is_some() {
        JsValue::UNDEFINED
    } else {
        g
    };
    let p = fetch
        .call2(&this, &JsValue::from_str(&req.url), &init)
        .map_err(|e| describe(&e))?;
    let resp = JsFuture::from(Promise::resolve(&p))
        .await
        .map_err(|e| format!("{}: {}", req.url, describe(&e)))?;
    let status = Reflect::get(&resp, &"status".into())
        .ok()
        .and_then(|s| s.as_f64())
        .ok_or("fetch returned no Response")? as u16;
    let mut out_headers = Vec::new();
    if let Ok(h) = Reflect::get(&resp, &"headers".into()) {
        for name in ["content-type", "retry-after"] {
            if let Some(v) = call_method(&h, "get", &[name.into()])
                .ok()
                .and_then(|v| v.as_string())
            {
                out_headers.push((name.to_owned(), v));
            }
        }
    }
    let body = call_method(&resp, "arrayBuffer", &[]).map_err(|e| describe(&e))?;
    let body = JsFuture::from(Promise::resolve(&body))
        .await
        .map_err(|e| describe(&e))?;
    Ok(HttpResponse {
        status,
        headers: out_headers,
        body: Uint8Array::new(&body).to_vec(),
    })
}

async fn sleep(ms: f64) -> Result<(), JsValue> {
    let g = global();
    let set_timeout: Function = Reflect::get(&g, &"setTimeout".into())?.dyn_into()?;
    let p = Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&g, &resolve, &JsValue::from(ms.min(2_147_483_647.0)));
    });
    JsFuture::from(p).await.map(|_| ())
}
