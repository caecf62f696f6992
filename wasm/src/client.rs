//! `EdrlinkClient`: runs the core's operations (`PartnerClient::start` →
//! `op_status`, at the deadline `op_timed_out`) over `fetch` — the same loop
//! as the native Agent: ask the operation's status, send what
//! `poll_request` gives and hand the answer to `handle_response`, sleep until
//! `poll_timeout`. Whether an operation is done or failed is decided by the
//! core, never here.
//!
//! The state sits in an `Rc<RefCell<…>>` that is never borrowed across an
//! `await` (nor while a host callback runs), so `health()` and friends can be
//! called while an operation runs, and several operations may overlap (the
//! core keeps one request in flight; each operation's status is its own).
//!
//! Host keys and the credential store (`options.keys`, `options.store`) are
//! serviced by the same loop: when nothing is to be sent, the core's next
//! host request (`poll_host_request`: create a key, sign, delete a key) is
//! handed to the JS object and awaited for at most `signerTimeoutSecs`, and
//! the answer goes back to `handle_host_answer`; whatever it means (a
//! signature that does not verify, a failure, a timeout) is decided by the
//! core. The credential is loaded from the store before the first operation
//! and saved whenever it changed, before the next request or host call.

use crate::options::{KeysOption, OptionBag};
use crate::{err, global, js_error, json_text, now_secs, set, to_js, IntoJs};
use edrlink_core::client::{
    ClientConfig, ClientEvent, HostAnswer, HostRequest, HostRequestKind, OpHandle, OpOutcome,
    OpStatus, Operation, PartnerClient,
};
use edrlink_core::credential::Credential;
use edrlink_core::diag::{LogLevel, LogRecord};
use edrlink_core::error::{Error as CoreError, ErrorCode};
use edrlink_core::handshake::FlowState;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::SystemRandom;
use edrlink_core::signer::{HostKey, InstallationKey};
use edrlink_core::telemetry::Event;
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// File path reported by the EICAR test detection unless one is given.
pub(crate) const EICAR_PATH: &str = "/edrlink/eicar-test.com";

pub(crate) struct Inner {
    pub(crate) pc: RefCell<PartnerClient>,
    /// The configuration `pc` was built with (persist.rs rebuilds the client from a snapshot).
    pub(crate) cfg: ClientConfig,
    fetch: Option<Function>,
    on_event: Option<Function>,
    on_log: Option<Function>,
    /// Least severe level handed to `on_log`.
    log_level: LogLevel,
    /// The host's key store (`options.keys` or the browser default), if any.
    pub(crate) keys: Option<JsValue>,
    /// The host's credential store (`options.store`), if any.
    store: Option<JsValue>,
    /// Whether `store.load()` ran (it runs before the first operation).
    loaded: Cell<bool>,
    /// What the store holds as far as this client knows (`Some(None)`: nothing);
    /// `None` until loaded or saved once.
    saved: RefCell<Option<Option<String>>>,
    /// A save is running (another caller's change is picked up by its loop).
    saving: Cell<bool>,
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

fn flow_js(f: Option<FlowState>) -> JsValue {
    match f {
        None => JsValue::NULL,
        Some(FlowState::Open) => "open".into(),
        Some(FlowState::Blocked) => "blocked".into(),
        Some(FlowState::Revoked) => "revoked".into(),
    }
}

/// An operation resolved to another kind of outcome than its own: a bug.
fn unexpected(o: OpOutcome) -> JsValue {
    err(
        ErrorCode::Internal,
        format!("operation ended with an unexpected outcome: {o:?}"),
    )
}

/// Starts `op` now; its handle, or the error that needed no exchange.
fn start(inner: &Inner, op: Operation<'_>) -> Result<OpHandle, JsValue> {
    let r = inner.pc.borrow_mut().start(op, now_secs());
    pump(inner);
    r.js()
}

/// An operation with its inputs owned, so it can start after the credential
/// store was loaded.
enum Op {
    Enroll(String),
    EnrollWithPackage(String),
    Handshake,
    Flush,
    Rotate,
    Offboard(String),
}

impl Op {
    fn as_op(&self) -> Operation<'_> {
        match self {
            Op::Enroll(token) => Operation::Enroll { token },
            Op::EnrollWithPackage(p) => Operation::EnrollWithPackage { package_json: p },
            Op::Handshake => Operation::Handshake,
            Op::Flush => Operation::Flush,
            Op::Rotate => Operation::Rotate,
            Op::Offboard(reason) => Operation::Offboard { reason },
        }
    }
}

/// Starts `op` and drives it to its outcome. It starts at once (as before
/// stores existed) unless `options.store` was not loaded yet: then it starts
/// once the stored credential is in (a handshake or a rotation needs it).
fn run(
    inner: &Rc<Inner>,
    op: Op,
    timeout_secs: Option<f64>,
) -> impl std::future::Future<Output = Result<OpOutcome, JsValue>> {
    let inner = inner.clone();
    let early = (inner.store.is_none() || inner.loaded.get()).then(|| start(&inner, op.as_op()));
    async move {
        let h = match early {
            Some(h) => h?,
            None => {
                ensure_loaded(&inner).await?;
                start(&inner, op.as_op())?
            }
        };
        drive(&inner, &h, timeout_secs).await
    }
}

#[wasm_bindgen(js_class = EdrlinkClient)]
impl Client {
    /// Creates a client. `options.device` is required; every other option of
    /// the options schema (docs/OPTIONS.md) is accepted under its camelCase
    /// name with the schema's default, plus the JS-only `credential`, `fetch`,
    /// `onEvent`, `onLog` and `logLevel`. Values are checked by the core:
    /// `invalid_argument` naming the option (snake_case, as in the schema).
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
    ) -> Result<Client, JsValue> {
        let bag = OptionBag::parse(&options)?;
        if bag.cfg.gzip && !cfg!(feature = "gzip") {
            return Err(err(
                ErrorCode::InvalidArgument,
                "option gzip: this build of edrlink-wasm has no gzip support",
            ));
        }
        let log_level = match &bag.log_level {
            None => LogLevel::Info,
            Some(name) => LogLevel::from_name(name).ok_or_else(|| {
                err(
                    ErrorCode::InvalidArgument,
                    "option logLevel must be \"error\", \"warn\", \"info\", \"debug\" or \"trace\"",
                )
            })?,
        };
        let keys = match bag.keys {
            Some(KeysOption::Host(k)) => Some(k),
            Some(KeysOption::Software) => None,
            None => crate::default_keys(),
        };
        let mut pc = PartnerClient::new(bag.cfg.clone(), Box::new(SystemRandom));
        if keys.is_some() {
            pc.use_host_keys();
        }
        if let Some(c) = &bag.credential {
            let c = Credential::from_json(&json_text(c, "credential")?).js()?;
            adopt_credential(&mut pc, c).js()?;
        }
        let inner = Rc::new(Inner {
            pc: RefCell::new(pc),
            cfg: bag.cfg,
            fetch: bag.fetch,
            on_event: bag.on_event,
            on_log: bag.on_log,
            log_level,
            keys,
            store: bag.store,
            loaded: Cell::new(false),
            saved: RefCell::new(None),
            saving: Cell::new(false),
        });
        pump(&inner);
        Ok(Client { inner })
    }

    /// Redeems an access token and performs the first handshake. Resolves to
    /// the health report (its `flow` says whether data may flow). Rejects with
    /// the service's refusal (`token_expired`, `token_revoked`,
    /// `integration_disabled`, `wrong_region`, …) or, after `opTimeoutSecs`,
    /// with the last error (`transport`, `service_unavailable`, `rate_limited`).
    #[wasm_bindgen(unchecked_return_type = "Promise<HealthReport>")]
    pub fn enroll(&self, token: &str) -> Promise {
        let run = run(&self.inner, Op::Enroll(token.trim().to_owned()), None);
        future_to_promise(async move {
            match run.await? {
                OpOutcome::Enrolled(h) => to_js(&h),
                o => Err(unexpected(o)),
            }
        })
    }

    /// Down-level onboarding with an admin-issued onboarding package (object
    /// or JSON text; it holds the workspace key). Resolves to the health
    /// report. Rejects with `package_invalid`, `malformed` or the service's refusal.
    #[wasm_bindgen(js_name = enrollWithPackage, unchecked_return_type = "Promise<HealthReport>")]
    pub fn enroll_with_package(
        &self,
        #[wasm_bindgen(
            js_name = "onboardingPackage",
            unchecked_param_type = "object | string"
        )]
        package: JsValue,
    ) -> Promise {
        let run = json_text(&package, "package")
            .map(|p| run(&self.inner, Op::EnrollWithPackage(p), None));
        future_to_promise(async move {
            match run?.await? {
                OpOutcome::Enrolled(h) => to_js(&h),
                o => Err(unexpected(o)),
            }
        })
    }

    /// Asks the service for a fresh flow decision now. Resolves to the flow
    /// state: `"open"`, `"blocked"` (integration turned off: data is kept) or
    /// `"revoked"` (a new token is needed). Rejects with `invalid_state` when
    /// not enrolled.
    #[wasm_bindgen(unchecked_return_type = "Promise<FlowState>")]
    pub fn handshake(&self) -> Promise {
        let run = run(&self.inner, Op::Handshake, None);
        future_to_promise(async move {
            match run.await? {
                OpOutcome::Flow(f) => Ok(flow_js(Some(f))),
                o => Err(unexpected(o)),
            }
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
        let r = self.inner.pc.borrow_mut().submit(e, now_secs());
        pump(&self.inner);
        r.js()
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
        let r = self.inner.pc.borrow_mut().submit(e, now);
        pump(&self.inner);
        r.js()
    }

    /// Delivers everything queued (handshaking first if needed). Resolves to
    /// `{ delivered, queued }` once the queue is empty, or at the deadline
    /// (`timeoutSecs`, default `opTimeoutSecs`) with `queued > 0` while the
    /// client is merely backing off (the reason is in `health().last_error`).
    /// Rejects at once with `flow_blocked` when the integration is turned off,
    /// or with the reason a new token is needed (`revoked`, `epoch_mismatch`,
    /// `needs_reenroll`, …); events stay queued.
    #[wasm_bindgen(unchecked_return_type = "Promise<FlushOutcome>")]
    pub fn flush(
        &self,
        #[wasm_bindgen(js_name = "timeoutSecs")] timeout_secs: Option<f64>,
    ) -> Promise {
        let run = run(&self.inner, Op::Flush, timeout_secs);
        future_to_promise(async move {
            match run.await? {
                OpOutcome::Flushed(o) => to_js(&o),
                o => Err(unexpected(o)),
            }
        })
    }

    /// Rotates the installation key now (instead of at two thirds of the
    /// credential's lifetime). Resolves once the new key is in use
    /// (`credential_changed` and `credential_rotated` fire: persist the
    /// credential). Rejects with `invalid_state` when not enrolled or
    /// down-level, or with the refusal.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn rotate(&self) -> Promise {
        let run = run(&self.inner, Op::Rotate, None);
        future_to_promise(async move {
            match run.await? {
                OpOutcome::Rotated => Ok(JsValue::UNDEFINED),
                o => Err(unexpected(o)),
            }
        })
    }

    /// Partner-initiated offboarding (opt-out): tells the service, then wipes
    /// the credential (`credential_removed` event).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn offboard(&self, reason: Option<String>) -> Promise {
        let reason = reason.unwrap_or_else(|| "partner opt-out".to_owned());
        let run = run(&self.inner, Op::Offboard(reason), None);
        future_to_promise(async move {
            match run.await? {
                OpOutcome::Offboarded => Ok(JsValue::UNDEFINED),
                o => Err(unexpected(o)),
            }
        })
    }

    /// Applies an admin-issued offboarding package (JSON string): verifies it
    /// and wipes the credential (no exchange with the service). Throws
    /// `package_invalid`, `bad_signature`, `invalid_state` (not enrolled), …
    #[wasm_bindgen(js_name = applyOffboardingPackage)]
    pub fn apply_offboarding_package(
        &self,
        #[wasm_bindgen(js_name = "packageJson")] package: &str,
    ) -> Result<(), JsValue> {
        let h = start(
            &self.inner,
            Operation::OffboardWithPackage {
                package_json: package,
            },
        )?;
        let status = self.inner.pc.borrow().op_status(&h, now_secs());
        // The credential is gone: delete it from the store and the key from the host.
        persist_later(&self.inner);
        service_host_later(&self.inner);
        match status {
            OpStatus::Done(OpOutcome::Offboarded) => Ok(()),
            OpStatus::Done(o) => Err(unexpected(o)),
            OpStatus::Failed(e) => Err(js_error(&e)),
            OpStatus::Pending => Err(err(
                ErrorCode::Internal,
                "offboarding package applied but the credential is still present",
            )),
        }
    }

    /// The health report (plain object; times are Unix seconds; `last_error`
    /// is the error record or `null`).
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

    /// The credential as a JSON string, or `undefined` before enrollment. With
    /// a software key (Node's default, `keys: "software"`) it **holds the
    /// installation's private key**: store it where only this product can read
    /// it (extension storage, a 0600 file). With host keys it holds the key's
    /// handle and public key (`host_key`) and no secret key material.
    #[wasm_bindgen(js_name = exportCredential)]
    pub fn export_credential(&self) -> Option<String> {
        self.inner
            .pc
            .borrow()
            .credential()
            .map(|c| c.to_json().as_str().to_owned())
    }

    /// Restores a credential exported earlier (and saves it to `options.store`,
    /// if any). Throws `malformed` when it does not parse, `invalid_state` when
    /// it names a host key and the client has no `keys`. The next operation
    /// re-handshakes.
    #[wasm_bindgen(js_name = importCredential)]
    pub fn import_credential(&self, json: &str) -> Result<(), JsValue> {
        let c = Credential::from_json(json).js()?;
        adopt_credential(&mut self.inner.pc.borrow_mut(), c).js()?;
        self.inner.loaded.set(true);
        pump(&self.inner);
        persist_later(&self.inner);
        Ok(())
    }

    /// Loads the credential from `options.store` (once; operations do it
    /// themselves before their first step). Resolves to whether the client
    /// now holds a credential. Rejects with `storage` when the store fails,
    /// `malformed` when what it holds is not a credential, `invalid_state`
    /// when it names a host key and the client has no `keys`.
    #[wasm_bindgen(unchecked_return_type = "Promise<boolean>")]
    pub fn load(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            ensure_loaded(&inner).await?;
            Ok(JsValue::from_bool(inner.pc.borrow().credential().is_some()))
        })
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

/// Hands the client's queued state-change events to `onEvent` (the
/// contract's JSON objects) and its diagnostics to `onLog`, outside any
/// borrow: a callback may call back into the client. A callback that throws
/// does not stop the client.
pub(crate) fn pump(inner: &Inner) {
    let (events, logs): (Vec<ClientEvent>, Vec<LogRecord>) = {
        let mut pc = inner.pc.borrow_mut();
        let events = std::iter::from_fn(|| pc.poll_event()).collect();
        let logs = std::iter::from_fn(|| pc.poll_log()).collect();
        (events, logs)
    };
    if let Some(f) = &inner.on_event {
        for ev in &events {
            if let Ok(obj) = to_js(ev) {
                let _ = f.call1(&JsValue::UNDEFINED, &obj);
            }
        }
    }
    if let Some(f) = &inner.on_log {
        for rec in logs.iter().filter(|r| r.level.passes(inner.log_level)) {
            let _ = f.call2(
                &JsValue::UNDEFINED,
                &JsValue::from_str(rec.level.as_str()),
                &JsValue::from_str(&rec.message),
            );
        }
    }
}

enum Next {
    Finish(Result<OpOutcome, CoreError>),
    Send(HttpRequest),
    Host(HostRequest),
    Sleep(Option<i64>),
}

/// The loop over a started operation, as the native Agent runs it: ask its
/// status, send what is due, else hand the host what the core asks of it
/// (keys, signatures), else sleep until `poll_timeout` (at most 1 s at a
/// time: other calls may queue work meanwhile; never past the deadline).
/// Past the deadline it still sends one request if none went out yet (so
/// `flush(0)` makes progress) and then resolves with `op_timed_out`.
/// The credential is loaded from the store first and saved after each step
/// that changed it.
async fn drive(
    inner: &Rc<Inner>,
    h: &OpHandle,
    timeout_secs: Option<f64>,
) -> Result<OpOutcome, JsValue> {
    let timeout = timeout_secs
        .filter(|t| t.is_finite() && *t >= 0.0)
        .unwrap_or(inner.cfg.op_timeout_secs as f64);
    let deadline = js_sys::Date::now() + timeout * 1000.0;
    ensure_loaded(inner).await?;
    let mut sent = 0u64;
    loop {
        let past = js_sys::Date::now() >= deadline;
        let next = {
            let mut pc = inner.pc.borrow_mut();
            let now = now_secs();
            match pc.op_status(h, now) {
                OpStatus::Done(o) => Next::Finish(Ok(o)),
                OpStatus::Failed(e) => Next::Finish(Err(e)),
                OpStatus::Pending if past && sent > 0 => Next::Finish(pc.op_timed_out(h, now)),
                OpStatus::Pending => match pc.poll_request(now) {
                    Some(req) => Next::Send(req),
                    None => match pc.poll_host_request() {
                        Some(hr) => Next::Host(hr),
                        None if past => Next::Finish(pc.op_timed_out(h, now)),
                        None => Next::Sleep(pc.poll_timeout(now)),
                    },
                },
            }
        };
        pump(inner);
        let wake = match next {
            Next::Finish(r) => {
                // Saved before the host deletes a replaced key; then the
                // host work the outcome left (deleting a retired key).
                persist(inner).await?;
                service_host(inner).await;
                persist(inner).await?;
                return r.map_err(|e| js_error(&e));
            }
            Next::Send(req) => {
                sent += 1;
                let result = perform(inner, &req).await;
                {
                    let mut pc = inner.pc.borrow_mut();
                    match result {
                        Ok(resp) => pc.handle_response(req.id, &resp, now_secs()),
                        Err(msg) => pc.handle_transport_error(req.id, &msg, now_secs()),
                    }
                }
                pump(inner);
                persist(inner).await?;
                continue;
            }
            Next::Host(hr) => {
                answer_host(inner, hr).await;
                persist(inner).await?;
                continue;
            }
            Next::Sleep(wake) => wake,
        };
        // Nothing due: sleep until the client's next time (seconds), at least
        // to the next second when it says "now" but had nothing.
        let now_ms = js_sys::Date::now();
        let now = now_ms / 1000.0;
        let wake = wake.map_or(now + 1.0, |t| {
            if (t as f64) <= now {
                now.floor() + 1.0
            } else {
                t as f64
            }
        });
        let nap_ms = ((wake - now).clamp(0.01, 1.0) * 1000.0)
            .min(deadline - now_ms)
            .max(1.0);
        sleep(nap_ms).await?;
    }
}

// ---------------------------------------------------------------- host keys

/// Sets a loaded or imported credential. A credential whose key the host
/// keeps needs host keys to sign with (the contract's `invalid_state`).
pub(crate) fn adopt_credential(pc: &mut PartnerClient, c: Credential) -> Result<(), CoreError> {
    if matches!(c.installation_key(), Ok(InstallationKey::Host(_))) && !pc.uses_host_keys() {
        return Err(CoreError::new(
            ErrorCode::InvalidState,
            "the credential's key is kept by a host key store: pass options.keys",
        ));
    }
    pc.set_credential(c);
    Ok(())
}

/// Answers every host request queued now (e.g. deleting a key a finished
/// rotation or offboarding retired).
async fn service_host(inner: &Rc<Inner>) {
    for _ in 0..16 {
        let Some(hr) = inner.pc.borrow_mut().poll_host_request() else {
            return;
        };
        answer_host(inner, hr).await;
    }
}

/// `service_host` for the synchronous calls (`applyOffboardingPackage`).
fn service_host_later(inner: &Rc<Inner>) {
    let inner = inner.clone();
    wasm_bindgen_futures::spawn_local(async move { service_host(&inner).await });
}

/// Hands one host request to `options.keys` and its answer to the core.
async fn answer_host(inner: &Rc<Inner>, hr: HostRequest) {
    let answer = match &inner.keys {
        Some(keys) => ask_keys(keys, &hr.kind, inner.cfg.signer_timeout_secs).await,
        // The core asks only when told keys come from the host.
        None => Err(CoreError::new(
            ErrorCode::SignerFailed,
            "no host key store (options.keys)",
        )),
    };
    inner
        .pc
        .borrow_mut()
        .handle_host_answer(hr.id, answer, now_secs());
    pump(inner);
}

fn signer_failed(msg: String) -> CoreError {
    CoreError::new(ErrorCode::SignerFailed, msg)
}

/// Calls `keys.createKey()`, `keys.sign(handle, message)` or
/// `keys.deleteKey(handle)` and awaits it for at most `timeout_secs`. A
/// throw, a rejection, a timeout or an answer of the wrong shape is
/// `signer_failed` naming the call; the core checks the rest (handle rules,
/// signature form, verification against the public key).
async fn ask_keys(
    keys: &JsValue,
    kind: &HostRequestKind,
    timeout_secs: u64,
) -> Result<HostAnswer, CoreError> {
    let (method, args): (&str, Vec<JsValue>) = match kind {
        HostRequestKind::CreateKey => ("createKey", vec![]),
        HostRequestKind::Sign { handle, message } => (
            "sign",
            vec![
                JsValue::from_str(handle),
                Uint8Array::from(message.as_slice()).into(),
            ],
        ),
        HostRequestKind::DeleteKey { handle } => ("deleteKey", vec![JsValue::from_str(handle)]),
    };
    let p = call_method(keys, method, &args)
        .map_err(|e| signer_failed(format!("keys.{method} threw: {}", describe(&e))))?;
    let v = with_timeout(&Promise::resolve(&p), timeout_secs)
        .await
        .map_err(|e| signer_failed(format!("keys.{method} failed: {}", describe(&e))))?
        .ok_or_else(|| {
            signer_failed(format!(
                "keys.{method} did not answer within {timeout_secs} s (signerTimeoutSecs)"
            ))
        })?;
    match kind {
        HostRequestKind::CreateKey => {
            let handle = Reflect::get(&v, &"handle".into())
                .ok()
                .and_then(|h| h.as_string())
                .ok_or_else(|| signer_failed("keys.createKey() gave no string handle".into()))?;
            let public = Reflect::get(&v, &"publicKey".into())
                .ok()
                .and_then(|b| bytes_of(&b))
                .ok_or_else(|| signer_failed("keys.createKey() gave no publicKey bytes".into()))?;
            Ok(HostAnswer::Key(HostKey::from_host(handle, &public)?))
        }
        HostRequestKind::Sign { .. } => bytes_of(&v)
            .map(HostAnswer::Signature)
            .ok_or_else(|| signer_failed("keys.sign() gave no signature bytes".into())),
        HostRequestKind::DeleteKey { .. } => Ok(HostAnswer::Deleted),
    }
}

/// The bytes of a `Uint8Array` (or any typed array / `DataView`) or an `ArrayBuffer`.
fn bytes_of(v: &JsValue) -> Option<Vec<u8>> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Some(a.to_vec());
    }
    if v.is_instance_of::<js_sys::ArrayBuffer>() {
        return Some(Uint8Array::new(v).to_vec());
    }
    if js_sys::ArrayBuffer::is_view(v) {
        let buf = Reflect::get(v, &"buffer".into()).ok()?;
        let off = Reflect::get(v, &"byteOffset".into()).ok()?.as_f64()? as u32;
        let len = Reflect::get(v, &"byteLength".into()).ok()?.as_f64()? as u32;
        return Some(Uint8Array::new_with_byte_offset_and_length(&buf, off, len).to_vec());
    }
    None
}

/// `p`'s value, `Ok(None)` when it did not settle within `secs`, `Err` when it rejected.
async fn with_timeout(p: &Promise, secs: u64) -> Result<Option<JsValue>, JsValue> {
    let g = global();
    let set_timeout: Function = Reflect::get(&g, &"setTimeout".into())?.dyn_into()?;
    let timed_out: JsValue = Object::new().into();
    let timer = Rc::new(Cell::new(JsValue::UNDEFINED));
    let ms = (secs as f64 * 1000.0).min(2_147_483_647.0);
    let timeout = {
        let (timed_out, timer) = (timed_out.clone(), timer.clone());
        Promise::new(&mut |resolve, _| {
            if let Ok(id) = set_timeout.call2(
                &g,
                &resolve.bind1(&JsValue::NULL, &timed_out),
                &JsValue::from(ms),
            ) {
                timer.set(id);
            }
        })
    };
    let race = Promise::race(&js_sys::Array::of2(p, &timeout));
    let r = JsFuture::from(race).await;
    // The timer must not keep Node (or a worker) alive once the call answered.
    if let Ok(clear) =
        Reflect::get(&g, &"clearTimeout".into()).and_then(|f| f.dyn_into::<Function>())
    {
        let _ = clear.call1(&g, &timer.take());
    }
    let v = r?;
    Ok(if v == timed_out { None } else { Some(v) })
}

// ---------------------------------------------------------------- the credential store

fn storage_error(what: &str, e: &JsValue) -> JsValue {
    err(
        ErrorCode::Storage,
        format!("credential store {what} failed: {}", describe(e)),
    )
}

async fn call_store(store: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let p = call_method(store, method, args).map_err(|e| storage_error(method, &e))?;
    JsFuture::from(Promise::resolve(&p))
        .await
        .map_err(|e| storage_error(method, &e))
}

/// Loads the credential from `options.store` once, before the first
/// operation. A credential given in the options or imported wins (nothing
/// is loaded over it).
pub(crate) async fn ensure_loaded(inner: &Rc<Inner>) -> Result<(), JsValue> {
    let Some(store) = &inner.store else {
        return Ok(());
    };
    if inner.loaded.get() {
        return Ok(());
    }
    let v = call_store(store, "load", &[]).await?;
    if inner.loaded.replace(true) {
        return Ok(()); // another operation loaded meanwhile
    }
    let text = if v.is_null() || v.is_undefined() {
        None
    } else {
        Some(v.as_string().ok_or_else(|| {
            err(
                ErrorCode::Storage,
                "credential store load() must resolve to a JSON string or null",
            )
        })?)
    };
    let mut pc = inner.pc.borrow_mut();
    if pc.credential().is_none() {
        if let Some(t) = &text {
            adopt_credential(&mut pc, Credential::from_json(t).js()?).js()?;
        }
        *inner.saved.borrow_mut() = Some(text);
    }
    drop(pc);
    pump(inner);
    Ok(())
}

/// The credential JSON now (`None`: no credential).
fn current_credential(inner: &Inner) -> Option<String> {
    inner
        .pc
        .borrow()
        .credential()
        .map(|c| c.to_json().as_str().to_owned())
}

/// Saves the credential to `options.store` when it changed since the last
/// save (enrollment, rotation, a new keyset or policy), deletes it when it
/// is gone (offboarding). A failing store is `storage`; the client keeps
/// its state and the next step tries again.
pub(crate) async fn persist(inner: &Rc<Inner>) -> Result<(), JsValue> {
    let Some(store) = &inner.store else {
        return Ok(());
    };
    if inner.saving.replace(true) {
        return Ok(()); // the running save picks this change up
    }
    let r = async {
        loop {
            let cur = current_credential(inner);
            if inner.saved.borrow().as_ref() == Some(&cur) {
                return Ok(());
            }
            match &cur {
                Some(json) => call_store(store, "save", &[JsValue::from_str(json)]).await?,
                None => call_store(store, "delete", &[]).await?,
            };
            *inner.saved.borrow_mut() = Some(cur);
        }
    }
    .await;
    inner.saving.set(false);
    r
}

/// `persist` for the synchronous calls; a failure goes to `onLog`.
fn persist_later(inner: &Rc<Inner>) {
    if inner.store.is_none() {
        return;
    }
    let inner = inner.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(e) = persist(&inner).await {
            if let Some(f) = &inner.on_log {
                let detail = Reflect::get(&e, &"message".into())
                    .ok()
                    .and_then(|m| m.as_string())
                    .unwrap_or_default();
                let _ = f.call2(
                    &JsValue::UNDEFINED,
                    &"error".into(),
                    &JsValue::from_str(&detail),
                );
            }
        }
    });
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
    let out_headers = match Reflect::get(&resp, &"headers".into()) {
        Ok(h) if !h.is_undefined() && !h.is_null() => response_headers(&h),
        _ => Vec::new(),
    };
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

/// Every header of a response, lower-cased: the core reads what it needs
/// (`content-type`, `retry-after`, and `date`, from which it re-learns the
/// clock offset). A `Headers` object (or anything iterable over
/// `[name, value]` pairs, e.g. a `Map`) is iterated; a bare object with only
/// `get(name)` gets asked for the headers the protocol defines.
fn response_headers(h: &JsValue) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Some(iter)) = js_sys::try_iter(h) {
        for pair in iter.flatten() {
            let pair: js_sys::Array = match pair.dyn_into() {
                Ok(a) => a,
                Err(_) => continue,
            };
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.push((k.to_ascii_lowercase(), v));
            }
        }
        return out;
    }
    for name in ["content-type", "retry-after", "date"] {
        if let Some(v) = call_method(h, "get", &[name.into()])
            .ok()
            .and_then(|v| v.as_string())
        {
            out.push((name.to_owned(), v));
        }
    }
    out
}

async fn sleep(ms: f64) -> Result<(), JsValue> {
    let g = global();
    let set_timeout: Function = Reflect::get(&g, &"setTimeout".into())?.dyn_into()?;
    let p = Promise::new(&mut |resolve, _| {
        let _ = set_timeout.call2(&g, &resolve, &JsValue::from(ms.min(2_147_483_647.0)));
    });
    JsFuture::from(p).await.map(|_| ())
}
