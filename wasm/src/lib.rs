//! # edrlink-wasm
//!
//! edrlink for browsers, Node 20+ and MV3 extension service workers, built
//! with wasm-bindgen. A thin layer over `edrlink-core`: no protocol logic
//! lives here, only conversions between JS values and the core's types and
//! an async driver that runs the sans-IO [`PartnerClient`] over `fetch`.
//!
//! JS conventions (see wasm/README.md):
//! - data objects (token claims, health reports, events) are plain objects
//!   whose fields keep the protocol's snake_case JSON names; option bags and
//!   method names are camelCase;
//! - bytes are `Uint8Array`; async work returns a `Promise`;
//! - errors are thrown as `EdrlinkError` (a subclass of `Error` defined by the
//!   package's ESM wrapper) with the core's error record as properties:
//!   `.code` (stable snake_case name), `.number`, `.httpStatus`,
//!   `.retryAfter` (seconds or `null`) and `.detail`;
//! - nothing assumes `window`: `fetch`, `setTimeout` and the clock come from
//!   `globalThis`, and the glue uses no `eval`/`new Function`.
//! - device keys the host keeps (`options.keys`: `createKey` / `sign` /
//!   `deleteKey`, async) and the credential store (`options.store`: `load` /
//!   `save` / `delete`) are JS objects the client's driver calls when the core
//!   asks (`poll_host_request` → `handle_host_answer`); the browser entry
//!   defaults `keys` to non-extractable WebCrypto keys in IndexedDB
//!   (`js/hostkeys.mjs`), so a browser credential holds no private key.
//!
//! Times are Unix seconds (`number`); functions that need "now" take an
//! optional `now` and default to `Date.now()`.

#![warn(missing_docs)]

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod options;
#[cfg(feature = "client")]
mod persist;
mod types;

#[cfg(feature = "client")]
pub use client::Client;
#[cfg(feature = "client")]
pub use options::default_options;

use edrlink_core::dsse;
use edrlink_core::error::{Error as CoreError, ErrorCode};
use edrlink_core::keys::{self, Keyset, RandomSource, SystemRandom};
use edrlink_core::token;
use js_sys::{Array, Object, Reflect, Uint8Array};
use serde::Serialize;
use std::cell::RefCell;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `globalThis` (window, worker, service worker or Node global alike).
    /// Imported directly rather than through `js_sys::global()`, whose fallback
    /// path would put `new Function(...)` into the glue (MV3 CSP forbids it).
    #[wasm_bindgen(thread_local_v2, js_name = globalThis)]
    static GLOBAL: JsValue;
}

#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) fn global() -> JsValue {
    GLOBAL.with(JsValue::clone)
}

thread_local! {
    static ERROR_CLASS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Registers the `EdrlinkError` class errors are constructed with. Called once
/// by the package's ESM wrapper; without it errors are plain `Error`s named
/// `EdrlinkError` carrying the same properties.
#[wasm_bindgen(js_name = __registerErrorClass, skip_typescript)]
pub fn register_error_class(ctor: js_sys::Function) {
    ERROR_CLASS.with(|c| *c.borrow_mut() = Some(ctor));
}

#[cfg(feature = "client")]
thread_local! {
    static DEFAULT_KEYS: RefCell<Option<js_sys::Function>> = const { RefCell::new(None) };
}

/// Registers the factory of the default host key store (`ClientOptions.keys` when none
/// is given). The browser entry registers one that returns `webCryptoKeys()` where
/// `crypto.subtle` and `indexedDB` exist; the Node entry none (software keys).
#[cfg(feature = "client")]
#[wasm_bindgen(js_name = __registerDefaultKeys, skip_typescript)]
pub fn register_default_keys(factory: js_sys::Function) {
    DEFAULT_KEYS.with(|c| *c.borrow_mut() = Some(factory));
}

/// The default host key store, if a factory is registered and it gives one here.
#[cfg(feature = "client")]
pub(crate) fn default_keys() -> Option<JsValue> {
    let factory = DEFAULT_KEYS.with(|c| c.borrow().clone())?;
    factory
        .call0(&JsValue::UNDEFINED)
        .ok()
        .filter(|k| k.is_object())
}

fn set(obj: &JsValue, key: &str, value: &JsValue) {
    // Reflect.set only fails on non-objects / frozen objects, which we never pass.
    let _ = Reflect::set(obj, &JsValue::from_str(key), value);
}

/// Converts a core error into a thrown JS value (`EdrlinkError`): the one place
/// JS errors are made, so every error carries the core's `ErrorInfo` fields
/// (`code`, `number`, `httpStatus`, `retryAfter`, `detail`) taken from the
/// typed error itself, never parsed back out of a message.
pub(crate) fn js_error(e: &CoreError) -> JsValue {
    let info = e.info();
    let msg = JsValue::from_str(&e.to_string());
    let err = ERROR_CLASS
        .with(|c| {
            c.borrow()
                .as_ref()
                .and_then(|ctor| Reflect::construct(ctor, &Array::of1(&msg)).ok())
        })
        .unwrap_or_else(|| {
            let err = js_sys::Error::new(&e.to_string());
            err.set_name("EdrlinkError");
            err.into()
        });
    set(&err, "code", &JsValue::from_str(info.code.as_str()));
    set(&err, "number", &JsValue::from(info.number));
    set(&err, "httpStatus", &JsValue::from(info.http_status));
    let retry = info
        .retry_after
        .map_or(JsValue::NULL, |s| JsValue::from(s as f64));
    set(&err, "retryAfter", &retry);
    set(&err, "detail", &JsValue::from_str(&info.detail));
    err
}

pub(crate) fn err(code: ErrorCode, msg: impl Into<String>) -> JsValue {
    js_error(&CoreError::new(code, msg))
}

pub(crate) trait IntoJs<T> {
    fn js(self) -> Result<T, JsValue>;
}

impl<T> IntoJs<T> for edrlink_core::Result<T> {
    fn js(self) -> Result<T, JsValue> {
        self.map_err(|e| js_error(&e))
    }
}

/// Serializes to a plain object through JSON (maps as objects, `None` as `null`);
/// smaller than a serde-to-JsValue serializer and the shapes are the wire JSON.
pub(crate) fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
    // Cannot fail for the core's types (no maps with non-string keys); a static
    // message keeps serde_json's error formatting out of the module.
    let text = serde_json::to_string(v)
        .map_err(|_| err(ErrorCode::Internal, "value does not serialize as JSON"))?;
    js_sys::JSON::parse(&text)
}

/// The current time in Unix seconds (`Date.now()`).
pub(crate) fn now_secs() -> i64 {
    (js_sys::Date::now() / 1000.0).floor() as i64
}

pub(crate) fn now_or(now: Option<f64>) -> Result<i64, JsValue> {
    match now {
        None => Ok(now_secs()),
        Some(t) if t.is_finite() && t.abs() < 1e15 => Ok(t.floor() as i64),
        Some(_) => Err(err(
            ErrorCode::InvalidArgument,
            "now must be a finite number of Unix seconds",
        )),
    }
}

/// A JSON string as is, or any other value through `JSON.stringify`.
pub(crate) fn json_text(v: &JsValue, what: &str) -> Result<String, JsValue> {
    if let Some(s) = v.as_string() {
        return Ok(s);
    }
    if v.is_undefined() || v.is_null() {
        return Err(err(
            ErrorCode::InvalidArgument,
            [what, " is required"].concat(),
        ));
    }
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| {
            err(
                ErrorCode::InvalidArgument,
                [what, " must be a JSON string or a plain object"].concat(),
            )
        })
}

pub(crate) fn parse_keyset(v: &JsValue) -> Result<Keyset, JsValue> {
    Keyset::from_json(&json_text(v, "keyset")?).js()
}

/// The SDK version (the `edrlink-core` crate version).
#[wasm_bindgen]
pub fn version() -> String {
    edrlink_core::VERSION.to_owned()
}

/// Every stable error code with its number and the HTTP status the service uses.
#[wasm_bindgen(js_name = errorCodes, unchecked_return_type = "ErrorCodeInfo[]")]
pub fn error_codes() -> Result<JsValue, JsValue> {
    #[derive(Serialize)]
    struct Info {
        name: &'static str,
        number: u32,
        status: u16,
    }
    let all: Vec<Info> = ErrorCode::ALL
        .iter()
        .map(|c| Info {
            name: c.as_str(),
            number: c.as_u32(),
            status: c.http_status(),
        })
        .collect();
    to_js(&all)
}

// ---------------------------------------------------------------- tokens

/// Decodes an access token for display **without** checking its signature:
/// claims, key id, validity status and seconds left at `now` (default: now).
/// `status` is `"expires_soon"` when fewer than an hour is left.
/// Throws `malformed` / `wrong_type` for anything that is not an access token.
#[wasm_bindgen(js_name = inspectToken, unchecked_return_type = "TokenInspection")]
pub fn inspect_token(token: &str, now: Option<f64>) -> Result<JsValue, JsValue> {
    let now = now_or(now)?;
    to_js(&token::inspect_at(token, now).js()?)
}

/// Verifies an access token against a pinned service keyset (JWKS object or
/// JSON string): signature, type, audience and validity window with a clock
/// skew allowance (`skewSecs`, default 60, clamped to 300). Returns the claims.
/// Throws `bad_signature`, `unknown_key`, `token_expired`, `token_not_yet_valid`, …
#[wasm_bindgen(js_name = verifyToken, unchecked_return_type = "AccessTokenClaims")]
pub fn verify_token(
    token: &str,
    #[wasm_bindgen(unchecked_param_type = "Keyset | string")] keyset: JsValue,
    now: Option<f64>,
    #[wasm_bindgen(js_name = "skewSecs")] skew_secs: Option<f64>,
) -> Result<JsValue, JsValue> {
    let keys = parse_keyset(&keyset)?;
    let now = now_or(now)?;
    let skew = skew_secs.map_or(token::DEFAULT_SKEW, |s| {
        if s.is_finite() {
            s as i64
        } else {
            0
        }
    });
    let claims = token::verify(token.trim(), &keys, now, skew).js()?;
    to_js(&claims)
}

// ---------------------------------------------------------------- keys and envelopes

/// An Ed25519 private key (RFC 8032), held inside the module. Its seed never
/// leaves wasm memory except through `EdrlinkClient.exportCredential()`.
/// Call `free()` when done to zeroize it early (otherwise the finalizer does).
#[wasm_bindgen]
pub struct SigningKey {
    inner: keys::SigningKey,
}

#[wasm_bindgen]
impl SigningKey {
    /// A fresh key from the platform CSPRNG (`crypto.getRandomValues`).
    pub fn generate() -> Result<SigningKey, JsValue> {
        Ok(SigningKey {
            inner: keys::SigningKey::generate(&SystemRandom).js()?,
        })
    }

    /// A key from a 32-byte seed. Throws `invalid_argument` for any other
    /// length (the core's code, `SigningKey::from_seed_slice`).
    #[wasm_bindgen(js_name = fromSeed)]
    pub fn from_seed(seed: &[u8]) -> Result<SigningKey, JsValue> {
        Ok(SigningKey {
            inner: keys::SigningKey::from_seed_slice(seed).js()?,
        })
    }

    /// The raw 32-byte public key.
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.verifying_key().as_bytes().to_vec()
    }

    /// The derived key id (base64url of the first 16 bytes of SHA-256(public key)).
    #[wasm_bindgen(getter, js_name = keyId)]
    pub fn key_id(&self) -> String {
        self.inner.key_id()
    }

    /// A raw Ed25519 signature (64 bytes) over `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.inner.sign(message).to_vec()
    }

    /// Seals `payload` into a DSSE envelope (JSON bytes); same as `sealEnvelope`.
    pub fn seal(
        &self,
        #[wasm_bindgen(js_name = "payloadType")] payload_type: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, JsValue> {
        dsse::seal(payload_type, payload, &self.inner).js()
    }
}

fn verifying_key(public_key: &[u8]) -> Result<keys::VerifyingKey, JsValue> {
    keys::VerifyingKey::from_bytes(public_key).js()
}

/// The key id of a public key: 32 raw bytes (Ed25519) or the 65-byte
/// uncompressed point (ECDSA P-256, `04‖x‖y`, what WebCrypto's `exportKey("raw")` gives).
#[wasm_bindgen(js_name = keyIdOf)]
pub fn key_id_of(
    #[wasm_bindgen(js_name = "publicKey")] public_key: &[u8],
) -> Result<String, JsValue> {
    Ok(verifying_key(public_key)?.key_id())
}

/// Checks a signature in the JOSE form: Ed25519 (64 bytes) with a 32-byte key,
/// ECDSA P-256 over SHA-256 as raw `r‖s` (64 bytes, WebCrypto's form) with a
/// 65-byte uncompressed point. Returns `false` when it does not verify; throws
/// `malformed` when the public key is neither, and `unsupported_algorithm` for a
/// P-256 key in the lite module (which verifies Ed25519 only; the full client both).
#[wasm_bindgen(js_name = verifySignature)]
pub fn verify_signature(
    #[wasm_bindgen(js_name = "publicKey")] public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, JsValue> {
    // `false` only for a signature that does not verify; a key this module
    // cannot verify with (P-256 in the lite module) is an error, not a "no".
    match verifying_key(public_key)?.verify(message, signature) {
        Ok(()) => Ok(true),
        Err(e) if e.code() == ErrorCode::BadSignature => Ok(false),
        Err(e) => Err(js_error(&e)),
    }
}

/// The DSSE pre-authentication encoding (the bytes an envelope signature covers):
/// `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`.
#[wasm_bindgen]
pub fn pae(#[wasm_bindgen(js_name = "payloadType")] payload_type: &str, payload: &[u8]) -> Vec<u8> {
    dsse::pae(payload_type, payload)
}

/// Seals `payload` with `key` into a DSSE envelope (edrlink profile: one
/// Ed25519 signature with `keyid`) and returns the envelope's JSON bytes.
/// Throws `malformed` when `payloadType` is not 1..128 printable ASCII characters.
#[wasm_bindgen(js_name = sealEnvelope)]
pub fn seal_envelope(
    #[wasm_bindgen(js_name = "payloadType")] payload_type: &str,
    payload: &[u8],
    key: &SigningKey,
) -> Result<Vec<u8>, JsValue> {
    dsse::seal(payload_type, payload, &key.inner).js()
}

/// Verifies an envelope with a public key (32-byte Ed25519, or a 65-byte
/// P-256 point: DSSE P-256 signatures are DER), checks its payload
/// type equals `expectedType`, and returns the payload bytes.
/// Throws `malformed`, `wrong_type`, `unknown_key` (keyid names another key) or `bad_signature`.
#[wasm_bindgen(js_name = openEnvelope)]
pub fn open_envelope(
    envelope: &[u8],
    #[wasm_bindgen(js_name = "expectedType")] expected_type: &str,
    #[wasm_bindgen(js_name = "publicKey")] public_key: &[u8],
) -> Result<Vec<u8>, JsValue> {
    dsse::open(envelope, expected_type, &verifying_key(public_key)?).js()
}

/// Verifies an envelope with a public key (as `openEnvelope`) whatever its payload
/// type, and returns `{ payload_type, keyid, payload }` (payload as `Uint8Array`).
/// Throws like `openEnvelope` except for `wrong_type`.
#[wasm_bindgen(js_name = verifyEnvelope, unchecked_return_type = "EnvelopeContents")]
pub fn verify_envelope(
    envelope: &[u8],
    #[wasm_bindgen(js_name = "publicKey")] public_key: &[u8],
) -> Result<JsValue, JsValue> {
    let key = verifying_key(public_key)?;
    let parsed = dsse::parse(envelope).js()?;
    parsed.verify(&key).js()?;
    let out: JsValue = Object::new().into();
    set(
        &out,
        "payload_type",
        &JsValue::from_str(&parsed.payload_type),
    );
    set(&out, "keyid", &JsValue::from_str(&parsed.keyid));
    set(
        &out,
        "payload",
        &Uint8Array::from(parsed.payload.as_slice()).into(),
    );
    Ok(out)
}

// ---------------------------------------------------------------- events

/// The EICAR test detection event (`test: true`, SHA-256 of the EICAR file,
/// Informational), as the portal's detection test expects it. Submit it with
/// `client.submit(...)` or use `client.sendTestDetection()`.
#[cfg(feature = "client")]
#[wasm_bindgen(js_name = eicarTestEvent, unchecked_return_type = "DetectionEvent")]
pub fn eicar_test_event(
    #[wasm_bindgen(js_name = "filePath")] file_path: Option<String>,
    now: Option<f64>,
) -> Result<JsValue, JsValue> {
    let now = now_or(now)?;
    to_js(&edrlink_core::eicar::test_detection(
        now,
        file_path.as_deref().unwrap_or(client::EICAR_PATH),
    ))
}

/// Parses and validates one telemetry event (object or JSON string) the way
/// `client.submit` does, and returns it normalized. Throws `malformed`.
#[cfg(feature = "client")]
#[wasm_bindgen(js_name = validateEvent, unchecked_return_type = "EdrlinkEvent")]
pub fn validate_event(
    #[wasm_bindgen(unchecked_param_type = "EdrlinkEvent | string")] event: JsValue,
) -> Result<JsValue, JsValue> {
    let e = edrlink_core::telemetry::Event::from_json(&json_text(&event, "event")?).js()?;
    to_js(&e)
}

// ---------------------------------------------------------------- down-level signing

/// The header carrying the request date in SharedKey requests (`x-edrlink-date`).
#[wasm_bindgen(js_name = sharedKeyDateHeader)]
pub fn shared_key_date_header() -> String {
    edrlink_core::downlevel::DATE_HEADER.to_owned()
}

/// The string a SharedKey authorization signs (method, path, content type,
/// date and the body's SHA-256, one per line; see docs/PROTOCOL.md).
#[wasm_bindgen(js_name = sharedKeyStringToSign)]
pub fn shared_key_string_to_sign(
    method: &str,
    path: &str,
    #[wasm_bindgen(js_name = "contentType")] content_type: &str,
    date: &str,
    body: &[u8],
) -> String {
    edrlink_core::downlevel::string_to_sign(method, path, content_type, date, body)
}

/// The `Authorization` header value `SharedKey <workspaceId>:<base64 HMAC-SHA256>`
/// for a down-level request (`key`: the raw workspace key bytes; `date`: the
/// RFC 3339 value sent in `x-edrlink-date`). Computed by the core as is, as in
/// every binding: the service refuses a request signed with a wrong key.
#[wasm_bindgen(js_name = sharedKeyAuthorization)]
pub fn shared_key_authorization(
    #[wasm_bindgen(js_name = "workspaceId")] workspace_id: &str,
    key: &[u8],
    method: &str,
    path: &str,
    #[wasm_bindgen(js_name = "contentType")] content_type: &str,
    date: &str,
    body: &[u8],
) -> String {
    edrlink_core::downlevel::authorization(
        workspace_id,
        key,
        method,
        path,
        content_type,
        date,
        body,
    )
}

/// Random bytes from the platform CSPRNG, as base64url (ids, nonces).
#[wasm_bindgen(js_name = randomId)]
pub fn random_id(bytes: Option<u32>) -> Result<String, JsValue> {
    let n = bytes.unwrap_or(16) as usize;
    if n == 0 || n > 1024 {
        return Err(err(
            ErrorCode::InvalidArgument,
            "randomId takes 1..1024 bytes",
        ));
    }
    let rng: &dyn RandomSource = &SystemRandom;
    keys::random_id(rng, n).js()
}

#[cfg(test)]
mod tests {
    #[test]
    fn typescript_lists_every_error_code() {
        for c in edrlink_core::ErrorCode::ALL {
            assert!(
                crate::types::TS_TYPES.contains(&format!("\"{}\"", c.as_str())),
                "ErrorCode union lacks {c}"
            );
        }
    }
}
