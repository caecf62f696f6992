//! The client handle: `edrlink_core::agent::Agent` behind a C pointer.

use crate::edrlink_result::*;
use crate::host::{edrlink_credential_store, edrlink_host_keys, CHostKeys, HostStore};
use crate::transport::{edrlink_transport, HostTransport};
use crate::{
    arg_opt_str, arg_str, check_out, edrlink_error, edrlink_result, to_c_string, FfiError,
    FfiResult,
};
use edrlink_core::agent::{Agent, AgentConfig, CredentialStore, FileCredentialStore, Transport};
use edrlink_core::client::ClientConfig;
use edrlink_core::encoding::rfc3339;
use edrlink_core::handshake::FlowState;
use edrlink_core::health::HealthReport;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::signer::HostKeys;
use edrlink_core::telemetry::{Action, Detection, Event, Severity};
use std::ffi::c_char;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

/// A partner agent: enrollment, handshake, event queue, delivery, health,
/// offboarding. Wraps `edrlink_core::agent::Agent`.
///
/// Thread-safety: **fully thread-safe** (the agent is `Send + Sync`). Any
/// function may be called on one client from several threads at once:
/// `submit*` and `health*` never wait for the network; calls that talk to the
/// service (enroll, handshake, flush, offboard) take turns. Free it once, when
/// no other thread uses it any more.
pub struct edrlink_client {
    pub(crate) agent: Agent,
    /// The effective options as JSON (schema names, secrets redacted), for
    /// `edrlink_client_options_json`.
    effective: String,
}

/// Client settings for `edrlink_client_new`. Zero-initialise it
/// (`edrlink_client_options o = {0};`) and set what you need: NULL/0 fields
/// take the documented defaults. The library copies everything it keeps.
#[repr(C)]
pub struct edrlink_client_options {
    /// Base URL of the partner API, overriding the one in the token or
    /// credential (e.g. a proxy or a test service). NULL: use the token's.
    pub service_url: *const c_char,
    /// Directory for the credential file (created with mode 0700 if missing;
    /// the credential is written 0600, atomically). NULL: memory only (the
    /// endpoint must enroll again after a restart). Any bytes (not only UTF-8).
    pub data_dir: *const c_char,
    /// Stable device id (machine-id, hardware UUID). Required.
    pub device_id: *const c_char,
    /// Host name. Required.
    pub hostname: *const c_char,
    /// OS family: `windows`, `macos`, `linux`, `android`, `ios`, `chromeos`. Required.
    pub os: *const c_char,
    /// OS version. Required.
    pub os_version: *const c_char,
    /// Partner product name. Required.
    pub product: *const c_char,
    /// Partner product version. Required.
    pub product_version: *const c_char,
    /// How long enroll, handshake and offboard keep retrying, seconds. 0: 30.
    pub op_timeout_secs: u32,
    /// Queue bound in events (further telemetry is refused with
    /// `EDRLINK_QUEUE_FULL`; detections evict telemetry). 0: 100000.
    pub max_queue_events: u32,
    /// Compress batches with gzip.
    pub gzip: bool,
    /// Built-in transport only: proxy URL (`http://[user:pass@]host:port`,
    /// `socks5://…`; credentials become Basic proxy authentication). NULL:
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` with `NO_PROXY`.
    pub proxy: *const c_char,
    /// Built-in transport only: connect directly, ignoring `proxy` and the environment.
    pub no_proxy: bool,
    /// Built-in transport only: extra trusted CA certificates, PEM (one or
    /// more blocks), e.g. a corporate TLS-inspection CA. NULL: none.
    pub extra_ca_pem: *const c_char,
    /// Built-in transport only: trust only `extra_ca_pem` (opt-in pinning).
    pub pin_extra_ca: bool,
}

/// The service's decision about inbound flow.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum edrlink_flow_state {
    /// No decision yet (never handshaken).
    EDRLINK_FLOW_STATE_NONE = 0,
    /// Send.
    EDRLINK_FLOW_STATE_OPEN = 1,
    /// Integration toggled off: data is kept and re-checked slowly.
    EDRLINK_FLOW_STATE_BLOCKED = 2,
    /// Epoch changed or offboarded: a new token is required.
    EDRLINK_FLOW_STATE_REVOKED = 3,
}

impl From<Option<FlowState>> for edrlink_flow_state {
    fn from(f: Option<FlowState>) -> Self {
        match f {
            None => edrlink_flow_state::EDRLINK_FLOW_STATE_NONE,
            Some(FlowState::Open) => edrlink_flow_state::EDRLINK_FLOW_STATE_OPEN,
            Some(FlowState::Blocked) => edrlink_flow_state::EDRLINK_FLOW_STATE_BLOCKED,
            Some(FlowState::Revoked) => edrlink_flow_state::EDRLINK_FLOW_STATE_REVOKED,
        }
    }
}

/// Detection severity (values for `edrlink_detection.severity`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum edrlink_severity {
    /// Informational (the EICAR test).
    EDRLINK_SEVERITY_INFORMATIONAL = 0,
    /// Low.
    EDRLINK_SEVERITY_LOW = 1,
    /// Medium.
    EDRLINK_SEVERITY_MEDIUM = 2,
    /// High.
    EDRLINK_SEVERITY_HIGH = 3,
    /// Critical.
    EDRLINK_SEVERITY_CRITICAL = 4,
}

/// What the product did (values for `edrlink_detection.action`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum edrlink_action {
    /// Only detected.
    EDRLINK_ACTION_DETECTED = 0,
    /// Blocked (a download, a URL).
    EDRLINK_ACTION_BLOCKED = 1,
    /// Quarantined.
    EDRLINK_ACTION_QUARANTINED = 2,
    /// Removed.
    EDRLINK_ACTION_REMOVED = 3,
    /// Allowed by policy.
    EDRLINK_ACTION_ALLOWED = 4,
}

/// A malware detection for `edrlink_client_submit_detection`. Borrowed for the
/// duration of the call only.
#[repr(C)]
pub struct edrlink_detection {
    /// When it was detected, RFC 3339 (`2026-01-02T03:04:05Z`). NULL: now.
    pub time: *const c_char,
    /// Threat name (1..512 characters). Required.
    pub threat_name: *const c_char,
    /// File path. NULL: none (URL detections).
    pub file_path: *const c_char,
    /// SHA-256 of the file, 64 hex characters. NULL: none.
    pub sha256: *const c_char,
    /// An `edrlink_severity` value (other values: `EDRLINK_INVALID_ARGUMENT`).
    pub severity: u32,
    /// An `edrlink_action` value (other values: `EDRLINK_INVALID_ARGUMENT`).
    pub action: u32,
    /// A test detection.
    pub test: bool,
    /// URL, for web-protection detections. NULL: none.
    pub url: *const c_char,
}

/// Health snapshot (the scalar part of `edrlink_client_health_json`).
/// Times are Unix seconds, 0 when they never happened.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct edrlink_health {
    /// Onboarded, flow open, no recent error.
    pub healthy: bool,
    /// Holds a credential.
    pub onboarded: bool,
    /// A new access token is needed (revoked, offboarded, repeated 401s).
    pub needs_new_token: bool,
    /// Last flow decision.
    pub flow: edrlink_flow_state,
    /// Events waiting to be sent (including a batch in flight).
    pub queued_events: u64,
    /// Bytes waiting to be sent.
    pub queued_bytes: u64,
    /// Events acknowledged by the service since the client was created.
    pub sent_events: u64,
    /// Events dropped (all reasons; the JSON form breaks them down).
    pub dropped_events: u64,
    /// Last successful handshake.
    pub last_handshake: i64,
    /// Last acknowledged send.
    pub last_send: i64,
    /// Next retry when backing off.
    pub next_attempt: i64,
    /// Age of the oldest queued event in seconds (-1 when the queue is empty).
    pub oldest_queued_age: i64,
    /// Service clock minus local clock, seconds.
    pub clock_offset: i64,
    /// Code of the last error (`EDRLINK_OK` when none).
    pub last_error: edrlink_result,
}

impl From<&HealthReport> for edrlink_health {
    fn from(h: &HealthReport) -> Self {
        let last_error = h
            .last_error
            .as_ref()
            .map_or(EDRLINK_OK, |e| edrlink_result::from_core(e.code));
        edrlink_health {
            healthy: h.healthy,
            onboarded: h.onboarded,
            needs_new_token: h.needs_new_token,
            flow: h.flow.into(),
            queued_events: h.queued_events,
            queued_bytes: h.queued_bytes,
            sent_events: h.sent_events,
            dropped_events: h.drops.values().sum(),
            last_handshake: h.last_handshake.unwrap_or(0),
            last_send: h.last_send.unwrap_or(0),
            next_attempt: h.next_attempt.unwrap_or(0),
            oldest_queued_age: h.oldest_queued_age.unwrap_or(-1),
            clock_offset: h.clock_offset,
            last_error,
        }
    }
}

/// What `edrlink_client_flush` achieved.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct edrlink_flush_outcome {
    /// Events acknowledged by the service during this call.
    pub delivered: u64,
    /// Events still queued (kept for later; a timeout drops nothing).
    pub queued: u64,
}

/// A new built-in HTTPS transport. Each client owns one (its connection pool
/// is released with the client); nothing is kept in process-global state.
#[cfg(feature = "http")]
pub(crate) fn builtin_transport() -> FfiResult<Arc<dyn Transport>> {
    use edrlink_core::transport::{HttpOptions, HttpTransport};
    Ok(Arc::new(HttpTransport::new(HttpOptions::default())?))
}

/// The options outside the sans-IO client: the data directory (scope
/// `native`) and the built-in transport's settings (scope `transport`),
/// with the schema's names and defaults.
#[derive(Default)]
struct NativeOptions {
    data_dir: Option<std::path::PathBuf>,
    proxy: Option<String>,
    no_proxy: bool,
    extra_ca_pem: Option<String>,
    pin_extra_ca: bool,
    request_timeout_secs: Option<u64>,
}

impl NativeOptions {
    /// Takes the native and transport options out of the JSON object (what
    /// remains is the core's `ClientOptions` JSON). Type and range errors are
    /// `invalid_argument` naming the option; ranges come from the core schema.
    fn take_from(obj: &mut serde_json::Map<String, serde_json::Value>) -> FfiResult<Self> {
        use edrlink_core::options::{Scope, OPTIONS};
        let invalid = |m: String| FfiError::new(EDRLINK_INVALID_ARGUMENT, m);
        let mut n = NativeOptions::default();
        for s in OPTIONS
            .iter()
            .filter(|s| matches!(s.scope, Scope::Native | Scope::Transport))
        {
            let Some(v) = obj.remove(s.name) else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            let text = || {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("option {} must be a string", s.name)))
            };
            let flag = || {
                v.as_bool()
                    .ok_or_else(|| invalid(format!("option {} must be a boolean", s.name)))
            };
            match s.name {
                "data_dir" => {
                    let t = text()?;
                    if t.is_empty() {
                        return Err(invalid("option data_dir must not be empty".into()));
                    }
                    n.data_dir = Some(t.into());
                }
                "proxy" => n.proxy = Some(text()?),
                "no_proxy" => n.no_proxy = flag()?,
                "extra_ca_pem" => n.extra_ca_pem = Some(text()?),
                "pin_extra_ca" => n.pin_extra_ca = flag()?,
                "request_timeout_secs" => {
                    // The core judges the value against its schema.
                    n.request_timeout_secs =
                        Some(edrlink_core::options::integer("request_timeout_secs", &v)?);
                }
                other => {
                    return Err(invalid(format!(
                        "option {other} is not supported by the C API"
                    )))
                }
            }
        }
        Ok(n)
    }

    /// The effective values (proxy credentials redacted) for the options report.
    fn report(&self, out: &mut serde_json::Map<String, serde_json::Value>) {
        use serde_json::json;
        out.insert(
            "data_dir".into(),
            json!(self
                .data_dir
                .as_ref()
                .map(|p| p.to_string_lossy().into_owned())),
        );
        out.insert(
            "proxy".into(),
            json!(self
                .proxy
                .as_deref()
                .map(edrlink_core::options::redact_proxy)),
        );
        out.insert("no_proxy".into(), json!(self.no_proxy));
        out.insert("extra_ca_pem".into(), json!(self.extra_ca_pem));
        out.insert("pin_extra_ca".into(), json!(self.pin_extra_ca));
        let default_timeout = edrlink_core::options::DEFAULT_REQUEST_TIMEOUT_SECS;
        out.insert(
            "request_timeout_secs".into(),
            json!(self.request_timeout_secs.unwrap_or(default_timeout)),
        );
    }
}

/// The effective client options as JSON with the schema's names.
fn report_options(o: &ClientConfig, n: &NativeOptions) -> String {
    use serde_json::json;
    let mut m = serde_json::Map::new();
    m.insert(
        "device".into(),
        serde_json::to_value(&o.device).unwrap_or_default(),
    );
    m.insert("service_url".into(), json!(o.service_url));
    m.insert(
        "pinned_keys".into(),
        o.pinned_keys.as_ref().map_or(serde_json::Value::Null, |k| {
            serde_json::from_str(&k.to_json()).unwrap_or_default()
        }),
    );
    m.insert("gzip".into(), json!(o.gzip));
    m.insert("max_queue_events".into(), json!(o.max_queue_events));
    m.insert("max_queue_bytes".into(), json!(o.max_queue_bytes));
    m.insert(
        "when_full".into(),
        json!(edrlink_core::options::when_full_name(o.when_full)),
    );
    m.insert("max_queue_age_secs".into(), json!(o.max_queue_age_secs));
    m.insert("max_batch_delay_secs".into(), json!(o.max_batch_delay_secs));
    m.insert("blocked_recheck_secs".into(), json!(o.blocked_recheck_secs));
    m.insert("max_backoff_secs".into(), json!(o.max_backoff_secs));
    m.insert("recovery_jitter_secs".into(), json!(o.recovery_jitter_secs));
    m.insert(
        "max_batches_per_second".into(),
        json!(o.max_batches_per_second),
    );
    m.insert("op_timeout_secs".into(), json!(o.op_timeout_secs));
    m.insert("signer_timeout_secs".into(), json!(o.signer_timeout_secs));
    n.report(&mut m);
    serde_json::Value::Object(m).to_string()
}

/// The built-in transport configured from the transport options.
#[cfg(feature = "http")]
fn configured_transport(n: &NativeOptions) -> FfiResult<Arc<dyn Transport>> {
    use edrlink_core::transport::{HttpOptions, HttpTransport};
    let mut opts = HttpOptions {
        proxy: n.proxy.clone(),
        no_proxy: n.no_proxy,
        extra_ca_pem: n.extra_ca_pem.clone().into_iter().collect(),
        pin_extra_ca: n.pin_extra_ca,
        ..HttpOptions::default()
    };
    if let Some(t) = n.request_timeout_secs {
        opts.read_timeout = Duration::from_secs(t);
        opts.connect_timeout = opts.connect_timeout.min(opts.read_timeout);
    }
    Ok(Arc::new(HttpTransport::new(opts)?))
}

#[cfg(not(feature = "http"))]
fn configured_transport(_: &NativeOptions) -> FfiResult<Arc<dyn Transport>> {
    builtin_transport()
}

/// Creates the agent from core options plus the native ones: the one path
/// behind both `edrlink_client_new` and `edrlink_client_new_json`.
fn build_client(
    opts: ClientConfig,
    native: NativeOptions,
    host: Option<Box<HostTransport>>,
) -> FfiResult<*mut edrlink_client> {
    build_client_with_host(opts, native, host, None, None)
}

/// [`build_client`] with an optional host credential store and host keys
/// (`edrlink_client_new_with_host`). Without a host store the credential
/// stays in `data_dir/credential.json`, as with `edrlink_client_new`.
fn build_client_with_host(
    opts: ClientConfig,
    native: NativeOptions,
    host: Option<Box<HostTransport>>,
    store: Option<Box<dyn CredentialStore>>,
    keys: Option<Arc<dyn HostKeys>>,
) -> FfiResult<*mut edrlink_client> {
    opts.validate()?;
    let effective = report_options(&opts, &native);
    let op_timeout = Duration::from_secs(opts.op_timeout_secs);
    let store: Option<Box<dyn CredentialStore>> = match (store, &native.data_dir) {
        (Some(s), _) => Some(s),
        (None, Some(dir)) => Some(Box::new(FileCredentialStore::new(dir)?)),
        (None, None) => None,
    };
    let acfg = AgentConfig {
        client: opts,
        data_dir: native.data_dir.clone(),
    };
    let mut agent = match host {
        Some(h) => Agent::with_host(acfg, *h, store, keys)?,
        None => Agent::with_host(acfg, configured_transport(&native)?, store, keys)?,
    };
    agent.set_op_timeout(op_timeout);
    Ok(Box::into_raw(Box::new(edrlink_client { agent, effective })))
}

#[cfg(not(feature = "http"))]
pub(crate) fn builtin_transport() -> FfiResult<Arc<dyn Transport>> {
    Err(FfiError::new(
        EDRLINK_INVALID_STATE,
        "built without the built-in HTTP transport: pass a host transport",
    ))
}

pub(crate) fn client_ref<'a>(c: *const edrlink_client) -> FfiResult<&'a edrlink_client> {
    // SAFETY: NULL or a live client from edrlink_client_new.
    unsafe { c.as_ref() }.ok_or_else(|| FfiError::null("client"))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Creates a client. `transport` NULL selects the built-in HTTPS transport
/// (rustls, OS + webpki roots); otherwise the struct is copied and the client
/// owns its userdata from then on (see `edrlink_transport`), also when this
/// call fails. If `data_dir` holds a credential, the client starts enrolled.
/// On success `*out_client` receives the client; free it with
/// `edrlink_client_free`.
///
/// Errors: `EDRLINK_NULL_POINTER` (options, required fields, out_client),
/// `EDRLINK_INVALID_UTF8`, `EDRLINK_INVALID_ARGUMENT` (empty or oversized
/// device facts, `transport->send` NULL), `EDRLINK_STORAGE` (data directory
/// or stored credential unusable).
///
/// # Safety
/// `options` NULL or valid with NULL or NUL-terminated strings; `transport`
/// NULL or valid; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_new(
    options: *const edrlink_client_options,
    transport: *const edrlink_transport,
    out_client: *mut *mut edrlink_client,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        // Take the host transport first so its userdata is released on every failure path.
        // Boxed: the drop of `None` then tests one pointer only (with the
        // transport inline, optimised drop glue read the uninitialised
        // fields of `None`, which memcheck reports).
        // SAFETY: caller contract.
        let host = match unsafe { transport.as_ref() } {
            Some(t) => Some(Box::new(HostTransport::new(t)?)),
            None => None,
        };
        check_out(out_client, "out_client")?;
        // SAFETY: caller contract.
        let o = unsafe { options.as_ref() }.ok_or_else(|| FfiError::null("options"))?;
        // SAFETY (below): caller contract on the option strings.
        let device = DeviceFacts {
            device_id: unsafe { arg_str(o.device_id, "options.device_id") }?.to_owned(),
            hostname: unsafe { arg_str(o.hostname, "options.hostname") }?.to_owned(),
            os: unsafe { arg_str(o.os, "options.os") }?.to_owned(),
            os_version: unsafe { arg_str(o.os_version, "options.os_version") }?.to_owned(),
            product: unsafe { arg_str(o.product, "options.product") }?.to_owned(),
            product_version: unsafe { arg_str(o.product_version, "options.product_version") }?.to_owned(),
        };
        let mut cfg = ClientConfig::new(device);
        cfg.service_url = unsafe { arg_opt_str(o.service_url, "options.service_url") }?.map(str::to_owned);
        cfg.gzip = o.gzip;
        if o.max_queue_events > 0 {
            cfg.max_queue_events = o.max_queue_events.into();
        }
        if o.op_timeout_secs > 0 {
            cfg.op_timeout_secs = o.op_timeout_secs.into();
        }
        let data_dir = if o.data_dir.is_null() {
            None
        } else {
            // SAFETY: caller contract; paths are bytes on Unix.
            let bytes = unsafe { std::ffi::CStr::from_ptr(o.data_dir) }.to_bytes();
            if bytes.is_empty() {
                return Err(FfiError::new(EDRLINK_INVALID_ARGUMENT, "option data_dir must not be empty"));
            }
            #[cfg(unix)]
            let p = std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes));
            #[cfg(not(unix))]
            let p = std::path::PathBuf::from(
                std::str::from_utf8(bytes).map_err(|_| FfiError::new(EDRLINK_INVALID_UTF8, "options.data_dir is not valid UTF-8"))?,
            );
            Some(p)
        };
        let native = NativeOptions {
            data_dir,
            proxy: unsafe { arg_opt_str(o.proxy, "options.proxy") }?.map(str::to_owned),
            no_proxy: o.no_proxy,
            extra_ca_pem: unsafe { arg_opt_str(o.extra_ca_pem, "options.extra_ca_pem") }?.map(str::to_owned),
            pin_extra_ca: o.pin_extra_ca,
            request_timeout_secs: None,
        };
        let c = build_client(cfg, native, host)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_client = c };
        Ok(())
    })
}

/// Creates a client from the options' JSON form: an object with `device`
/// (`{device_id, hostname, os, os_version, product, product_version}`) and
/// any option of the schema (docs/OPTIONS.md, `tests/options-schema.json`)
/// by its snake_case name: `service_url`, `pinned_keys` (a JWKS object),
/// `gzip`, `max_queue_events`, `max_queue_bytes`, `when_full`
/// (`"refuse_new"`/`"drop_oldest"`), `max_queue_age_secs`,
/// `max_batch_delay_secs`, `blocked_recheck_secs`, `max_backoff_secs`,
/// `recovery_jitter_secs`, `max_batches_per_second`, `op_timeout_secs`,
/// `data_dir`, and the built-in transport's `proxy`, `no_proxy`,
/// `extra_ca_pem`, `pin_extra_ca`, `request_timeout_secs`. Absent or `null`
/// means the schema default. Every option is reachable here, including the
/// ones the `edrlink_client_options` struct has no field for. `transport`
/// and `out_client` as in `edrlink_client_new` (a host transport ignores the
/// transport options).
///
/// Errors: `EDRLINK_INVALID_ARGUMENT` naming the option (unknown name, wrong
/// type, out of range, bad device facts), `EDRLINK_MALFORMED` (not JSON),
/// `EDRLINK_STORAGE` (data directory unusable), `EDRLINK_NULL_POINTER`,
/// `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// `options_json` NULL or NUL-terminated; `transport` NULL or valid;
/// out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_new_json(
    options_json: *const c_char,
    transport: *const edrlink_transport,
    out_client: *mut *mut edrlink_client,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        // SAFETY: caller contract.
        let host = match unsafe { transport.as_ref() } {
            Some(t) => Some(Box::new(HostTransport::new(t)?)),
            None => None,
        };
        check_out(out_client, "out_client")?;
        // SAFETY: caller contract.
        let (cfg, native) = unsafe { options_from_json(options_json) }?;
        let c = build_client(cfg, native, host)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_client = c };
        Ok(())
    })
}

/// The options of `edrlink_client_new_json` and `_new_with_host`: parsed
/// once to split off the native/transport options; the core parses (and
/// judges) the rest.
///
/// # Safety
/// `options_json` NULL or NUL-terminated.
unsafe fn options_from_json(
    options_json: *const c_char,
) -> FfiResult<(ClientConfig, NativeOptions)> {
    // SAFETY: caller contract.
    let text = unsafe { arg_str(options_json, "options_json") }?;
    let mut v: serde_json::Value =
        edrlink_core::encoding::parse_json(text.as_bytes(), 1 << 20, "options")?;
    let native = match v.as_object_mut() {
        Some(obj) => NativeOptions::take_from(obj)?,
        None => NativeOptions::default(),
    };
    Ok((ClientConfig::from_json(&v.to_string())?, native))
}

/// Creates a client whose credential and device key stay with the host:
/// `edrlink_client_new_json` plus an optional host credential store and
/// optional host keys (each NULL: the default — `data_dir/credential.json`,
/// and a device key the SDK generates and keeps in the credential).
///
/// - `store`: the credential JSON goes through its callbacks (a platform
///   keystore); the event spool still lives in `data_dir` when one is given.
///   A stored credential is loaded now, so `load` runs during this call.
/// - `keys`: enrollment and every rotation call `create_key`; the SDK signs
///   through `sign` and never sees a private key; the credential holds
///   `host_key` (handle and public key) instead of `key_seed`. A stored
///   credential with `host_key` needs `keys` (`EDRLINK_INVALID_STATE`
///   otherwise). A slow `sign` is bounded by the option
///   `signer_timeout_secs` (default 10).
///
/// Every struct is copied. The client owns each non-NULL struct's userdata
/// from then on (`free_userdata` runs once at `edrlink_client_free`), also
/// when this call fails (then it runs before the call returns).
///
/// Errors: as `edrlink_client_new_json`, plus `EDRLINK_INVALID_ARGUMENT` for
/// a NULL callback in `transport`, `store` or `keys`, `EDRLINK_STORAGE` when
/// `load` fails, `EDRLINK_INVALID_STATE` for a `host_key` credential
/// without `keys`.
///
/// # Safety
/// `options_json` NULL or NUL-terminated; `transport`, `store`, `keys` NULL
/// or valid; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_new_with_host(
    options_json: *const c_char,
    transport: *const edrlink_transport,
    store: *const edrlink_credential_store,
    keys: *const edrlink_host_keys,
    out_client: *mut *mut edrlink_client,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        // Take every host struct before anything can fail, so each userdata
        // is released on every failure path (the taken ones drop on return).
        // SAFETY: caller contract.
        let host = unsafe { transport.as_ref() }.map(HostTransport::new);
        // SAFETY: caller contract.
        let store = unsafe { store.as_ref() }.map(HostStore::new);
        // SAFETY: caller contract.
        let keys = unsafe { keys.as_ref() }.map(CHostKeys::new);
        let host = host.transpose()?.map(Box::new);
        let store = store.transpose()?.map(|s| Box::new(s) as Box<dyn CredentialStore>);
        let keys = keys.transpose()?.map(|k| Arc::new(k) as Arc<dyn HostKeys>);
        check_out(out_client, "out_client")?;
        // SAFETY: caller contract.
        let (cfg, native) = unsafe { options_from_json(options_json) }?;
        let c = build_client_with_host(cfg, native, host, store, keys)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_client = c };
        Ok(())
    })
}

/// The client's effective options as JSON, every option of the schema by
/// its snake_case name with its value (defaults filled in; a proxy's
/// credentials redacted). Free with `edrlink_string_free`.
///
/// # Safety
/// `client` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_options_json(
    client: *const edrlink_client,
    out_json: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_json, "out_json")?;
        let s = to_c_string(client_ref(client)?.effective.as_str())?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = s };
        Ok(())
    })
}

/// Frees a client (and, through `free_userdata`, its host transport's
/// userdata). Queued events that were not flushed are lost. NULL is a no-op.
/// No other thread may be using the client.
///
/// # Safety
/// `client` is NULL or a client from `edrlink_client_new`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_free(client: *mut edrlink_client) {
    ffi_boundary!(default = (); {
        if !client.is_null() {
            // SAFETY: created by Box::into_raw in edrlink_client_new, freed once.
            drop(unsafe { Box::from_raw(client) });
        }
    })
}

fn write_health(h: &HealthReport, out: *mut edrlink_health) {
    if !out.is_null() {
        // SAFETY: checked non-NULL; caller contract says writable.
        unsafe { *out = edrlink_health::from(h) };
    }
}

/// Enrolls with an access token: redeems it for this endpoint's own
/// credential (stored in `data_dir`) and performs the first handshake,
/// retrying transient failures for up to `op_timeout_secs`. The token is
/// copied into a buffer wiped after use and never stored. `out_health`
/// (optional) receives the health afterwards.
///
/// Errors: the service's refusal (`EDRLINK_TOKEN_EXPIRED`,
/// `EDRLINK_TOKEN_REVOKED`, `EDRLINK_TOKEN_EXHAUSTED`,
/// `EDRLINK_INTEGRATION_DISABLED`, `EDRLINK_EPOCH_MISMATCH`,
/// `EDRLINK_BAD_SIGNATURE`, …), `EDRLINK_MALFORMED` for a token that does not
/// parse, `EDRLINK_TRANSPORT` when the service was unreachable until the timeout.
///
/// # Safety
/// `client` NULL or live; `token` NULL or NUL-terminated; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_enroll(
    client: *mut edrlink_client,
    token: *const c_char,
    out_health: *mut edrlink_health,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        // SAFETY: caller contract.
        let t = Zeroizing::new(unsafe { arg_str(token, "token") }?.to_owned());
        let h = c.agent.enroll(&t)?;
        write_health(&h, out_health);
        Ok(())
    })
}

/// Down-level enrollment with an onboarding package (JSON with workspace id
/// and key; sensitive: it is copied into a buffer wiped after use). Requests
/// are then signed with HMAC `SharedKey`; there is no handshake.
///
/// Errors: `EDRLINK_WRONG_TYPE`/`EDRLINK_MALFORMED` (not a package),
/// `EDRLINK_UNAUTHORIZED`/`EDRLINK_BAD_SIGNATURE` (key refused), `EDRLINK_TRANSPORT`.
///
/// # Safety
/// As `edrlink_client_enroll`.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_enroll_package(
    client: *mut edrlink_client,
    package_json: *const c_char,
    out_health: *mut edrlink_health,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        // SAFETY: caller contract.
        let p = Zeroizing::new(unsafe { arg_str(package_json, "package_json") }?.to_owned());
        let h = c.agent.enroll_with_package(&p)?;
        write_health(&h, out_health);
        Ok(())
    })
}

/// Asks the service for a flow decision now; `*out_flow` (optional) receives
/// it. A blocked flow is a successful answer (`EDRLINK_FLOW_STATE_BLOCKED` state,
/// `EDRLINK_OK` result). Down-level clients report `EDRLINK_FLOW_STATE_OPEN`.
///
/// Errors: `EDRLINK_INVALID_STATE` (not enrolled), `EDRLINK_REVOKED`,
/// `EDRLINK_EPOCH_MISMATCH`, `EDRLINK_OFFBOARDED`, `EDRLINK_TRANSPORT`.
///
/// # Safety
/// `client` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_handshake(
    client: *mut edrlink_client,
    out_flow: *mut edrlink_flow_state,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        let f = c.agent.handshake()?;
        if !out_flow.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { *out_flow = Some(f).into() };
        }
        Ok(())
    })
}

/// Queues one event given as JSON: `{"type": "detection" | "heartbeat" |
/// "generic", "time": RFC 3339, ...}` (see docs/PROTOCOL.md). Never waits
/// for the network; deliver with `edrlink_client_flush`.
///
/// Errors: `EDRLINK_MALFORMED` (bad JSON or fields), `EDRLINK_QUEUE_FULL`,
/// `EDRLINK_NULL_POINTER`, `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// `client` NULL or live; `event_json` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_submit_json(
    client: *mut edrlink_client,
    event_json: *const c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        // SAFETY: caller contract.
        c.agent.submit_json(unsafe { arg_str(event_json, "event_json") }?)?;
        Ok(())
    })
}

fn severity(n: u32) -> FfiResult<Severity> {
    Ok(match n {
        0 => Severity::Informational,
        1 => Severity::Low,
        2 => Severity::Medium,
        3 => Severity::High,
        4 => Severity::Critical,
        _ => {
            return Err(FfiError::new(
                EDRLINK_INVALID_ARGUMENT,
                "detection.severity is not an edrlink_severity value",
            ))
        }
    })
}

fn action(n: u32) -> FfiResult<Action> {
    Ok(match n {
        0 => Action::Detected,
        1 => Action::Blocked,
        2 => Action::Quarantined,
        3 => Action::Removed,
        4 => Action::Allowed,
        _ => {
            return Err(FfiError::new(
                EDRLINK_INVALID_ARGUMENT,
                "detection.action is not an edrlink_action value",
            ))
        }
    })
}

/// Queues a detection given as a struct (see `edrlink_detection`).
///
/// Errors: as `edrlink_client_submit_json`, plus `EDRLINK_INVALID_ARGUMENT`
/// for an unknown severity or action.
///
/// # Safety
/// `client` NULL or live; `detection` NULL or valid with NULL or
/// NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_submit_detection(
    client: *mut edrlink_client,
    detection: *const edrlink_detection,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        // SAFETY: caller contract.
        let d = unsafe { detection.as_ref() }.ok_or_else(|| FfiError::null("detection"))?;
        // SAFETY (below): caller contract on the struct's strings.
        let ev = Event::Detection(Detection {
            time: unsafe { arg_opt_str(d.time, "detection.time") }?.map_or_else(|| rfc3339(now()), str::to_owned),
            threat_name: unsafe { arg_str(d.threat_name, "detection.threat_name") }?.to_owned(),
            file_path: unsafe { arg_opt_str(d.file_path, "detection.file_path") }?.unwrap_or("").to_owned(),
            sha256: unsafe { arg_opt_str(d.sha256, "detection.sha256") }?.unwrap_or("").to_ascii_lowercase(),
            severity: severity(d.severity)?,
            action: action(d.action)?,
            test: d.test,
            url: unsafe { arg_opt_str(d.url, "detection.url") }?.map(str::to_owned),
        });
        c.agent.submit(ev)?;
        Ok(())
    })
}

/// Queues the EICAR test detection (the portal's detection test: the service
/// raises an Informational alert "EICAR test file"). Deliver with
/// `edrlink_client_flush`.
///
/// # Safety
/// `client` NULL or live.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_send_test_detection(
    client: *mut edrlink_client,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        client_ref(client)?.agent.send_test_detection()?;
        Ok(())
    })
}

/// Delivers what is queued, waiting at most `timeout_secs`. Returns
/// `EDRLINK_OK` when the queue emptied or the deadline passed (then
/// `queued > 0`; nothing is dropped); `*out_outcome` (optional) says how many
/// events were delivered and remain.
///
/// Errors: `EDRLINK_FLOW_BLOCKED` (integration off: events stay queued),
/// `EDRLINK_REVOKED`/`EDRLINK_EPOCH_MISMATCH`/`EDRLINK_NEEDS_REENROLL` (a new
/// token is needed), `EDRLINK_INVALID_STATE` (not enrolled). On error
/// `*out_outcome` is not written.
///
/// # Safety
/// `client` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_flush(
    client: *mut edrlink_client,
    timeout_secs: u32,
    out_outcome: *mut edrlink_flush_outcome,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let o = client_ref(client)?.agent.flush(timeout_secs.into())?;
        if !out_outcome.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { *out_outcome = edrlink_flush_outcome { delivered: o.delivered, queued: o.queued } };
        }
        Ok(())
    })
}

/// Health snapshot into `*out_health`. Never waits for the network.
///
/// # Safety
/// `client` NULL or live; `out_health` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_health(
    client: *const edrlink_client,
    out_health: *mut edrlink_health,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_health, "out_health")?;
        let h = client_ref(client)?.agent.health();
        write_health(&h, out_health);
        Ok(())
    })
}

/// The last error the client recorded (the health report's `last_error`)
/// as an `edrlink_error` with all its fields (`edrlink_error_name`,
/// `edrlink_error_http_status`, `edrlink_error_retry_after`, …): e.g. the
/// `EDRLINK_RATE_LIMITED` refusal with its `Retry-After` that a flush ended
/// on. `*out_error` receives NULL when there is none; free it with
/// `edrlink_error_free`. Never waits for the network.
///
/// # Safety
/// `client` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_last_error(
    client: *const edrlink_client,
    out_error: *mut *mut edrlink_error,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_error, "out_error")?;
        let last = client_ref(client)?.agent.health().last_error;
        let p = match last {
            Some(info) => crate::error_into_raw(FfiError::from(info)),
            None => std::ptr::null_mut(),
        };
        // SAFETY: checked non-NULL.
        unsafe { *out_error = p };
        Ok(())
    })
}

/// Full health report as JSON (`healthy`, `onboarded`, `installation_id`,
/// `flow`, `needs_new_token`, `last_handshake`, `last_send`, `queued_events`,
/// `queued_bytes`, `oldest_queued_age`, `sent_events`, `drops`,
/// `clock_offset`, `last_error`, `next_attempt`; absent values are `null`;
/// `last_error` is the error record `{"code","number","http_status",
/// "retry_after","detail"}`).
/// Free with `edrlink_string_free`. Never waits for the network.
///
/// # Safety
/// `client` NULL or live; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_health_json(
    client: *const edrlink_client,
    out_json: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_json, "out_json")?;
        let h = client_ref(client)?.agent.health();
        let s = to_c_string(serde_json::to_string(&h).map_err(|e| FfiError::new(EDRLINK_INTERNAL, e.to_string()))?)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = s };
        Ok(())
    })
}

/// Offboards. `offboarding_package` NULL: partner opt-out (asks the service and
/// waits for its answer). Otherwise applies an admin-issued offboarding
/// package (verified against the pinned service keys). Either way the stored
/// credential is deleted; the client stays usable for a new enrollment.
///
/// Errors: `EDRLINK_INVALID_STATE` (not enrolled), `EDRLINK_PACKAGE_INVALID`,
/// `EDRLINK_BAD_SIGNATURE`, `EDRLINK_MALFORMED`, `EDRLINK_TRANSPORT`.
///
/// # Safety
/// `client` NULL or live; `offboarding_package` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_offboard(
    client: *mut edrlink_client,
    offboarding_package: *const c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        // SAFETY: caller contract.
        let p = unsafe { arg_opt_str(offboarding_package, "offboarding_package") }?.map(|s| Zeroizing::new(s.to_owned()));
        c.agent.offboard(p.as_deref().map(String::as_str))?;
        Ok(())
    })
}
