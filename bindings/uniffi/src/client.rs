//! The partner client (wrapping `edrlink_core::agent::Agent`) and the
//! transport interface a host can implement with its own HTTP stack.

use crate::bytes::Bytes;
use crate::error::{invalid, EdrlinkError, ErrorInfo, TransportError};
use crate::hooks::{EventAdapter, EventSink, LogAdapter, LogLevel, LogSink};
use crate::host::{CredentialStore, HostKeys, KeysAdapter, StoreAdapter};
use crate::{unix_now, Result};
use edrlink_core::agent::{
    Agent, AgentConfig, CredentialStore as CoreStore, FileCredentialStore,
    Transport as CoreTransport,
};
use edrlink_core::handshake::FlowState as CoreFlow;
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::options;
use edrlink_core::signer::HostKeys as CoreHostKeys;
use edrlink_core::telemetry::{self, Event};
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_core::{Error, ErrorCode};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------
// Transport

/// One HTTP header (names are lower case in requests the SDK makes).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A request the SDK wants sent. Always `POST` today.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportRequest {
    /// HTTP method.
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers (content-type and, for down-level, authorization + date).
    pub headers: Vec<TransportHeader>,
    /// Body bytes.
    pub body: Bytes,
}

/// The response the host's HTTP stack received. Any status, including 4xx
/// and 5xx, is a response: the SDK reads its problem details.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportResponse {
    /// Status code.
    pub status: u16,
    /// Headers (any case; `retry-after` and `content-type` are read).
    pub headers: Vec<TransportHeader>,
    /// Body bytes.
    pub body: Bytes,
}

/// Performs one HTTP exchange for the SDK. Implement it to route the SDK's
/// traffic through the app's own HTTP stack (OkHttp, URLSession, requests, a
/// corporate proxy library); the default is the built-in native transport
/// (rustls, OS trust store). Called on the thread that called the client
/// method, one request at a time per client. Raise `TransportError.Failed`
/// (or any exception) when no response was received.
#[uniffi::export(with_foreign)]
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the response.
    fn send(
        &self,
        request: TransportRequest,
    ) -> core::result::Result<TransportResponse, TransportError>;
}

fn headers_out(h: &[(String, String)]) -> Vec<TransportHeader> {
    h.iter()
        .map(|(n, v)| TransportHeader {
            name: n.clone(),
            value: v.clone(),
        })
        .collect()
}

fn headers_in(h: Vec<TransportHeader>) -> Vec<(String, String)> {
    h.into_iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value))
        .collect()
}

/// Adapts a host (or native) [`Transport`] to the core's transport trait.
struct Adapter(Arc<dyn Transport>);

impl CoreTransport for Adapter {
    fn send(&self, req: &HttpRequest) -> edrlink_core::Result<HttpResponse> {
        let r = TransportRequest {
            method: req.method.clone(),
            url: req.url.clone(),
            headers: headers_out(&req.headers),
            body: Bytes(req.body.clone()),
        };
        match self.0.send(r) {
            Ok(resp) => Ok(HttpResponse {
                status: resp.status,
                headers: headers_in(resp.headers),
                body: resp.body.0,
            }),
            Err(TransportError::Failed { reason }) => Err(Error::new(ErrorCode::Transport, reason)),
        }
    }
}

/// Options of the built-in native transport: the `transport` scope of the
/// options schema (`docs/OPTIONS.md`), same names and defaults.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NativeTransportOptions {
    /// Proxy URL (`http://[user:pass@]host:port`, `socks5://…`); `None` uses
    /// `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` with `NO_PROXY`.
    #[uniffi(default = None)]
    pub proxy: Option<String>,
    /// Connect directly, ignoring `proxy` and the environment.
    #[uniffi(default = false)]
    pub no_proxy: bool,
    /// Extra trusted CA certificates (PEM; one string may hold several), e.g.
    /// a TLS-inspecting proxy's CA.
    #[uniffi(default = None)]
    pub extra_ca_pem: Option<String>,
    /// Trust only `extra_ca_pem`, not the OS store (opt-in pinning).
    #[uniffi(default = false)]
    pub pin_extra_ca: bool,
    /// Per-request timeout, seconds (1..=3600).
    #[uniffi(default = 30)]
    pub request_timeout_secs: u64,
    /// `User-Agent`; `None` = `edrlink/<version>` (not in the schema: a
    /// host detail, not a behaviour).
    #[uniffi(default = None)]
    pub user_agent: Option<String>,
}

impl Default for NativeTransportOptions {
    fn default() -> Self {
        NativeTransportOptions {
            proxy: None,
            no_proxy: false,
            extra_ca_pem: None,
            pin_extra_ca: false,
            request_timeout_secs: options::DEFAULT_REQUEST_TIMEOUT_SECS,
            user_agent: None,
        }
    }
}

fn native(opts: NativeTransportOptions) -> Result<HttpTransport> {
    // The core judges the value against its schema.
    options::check_integer("request_timeout_secs", opts.request_timeout_secs)?;
    let timeout = Duration::from_secs(opts.request_timeout_secs);
    let mut o = HttpOptions {
        connect_timeout: timeout.min(HttpOptions::default().connect_timeout),
        read_timeout: timeout,
        extra_ca_pem: opts.extra_ca_pem.into_iter().collect(),
        proxy: opts.proxy,
        no_proxy: opts.no_proxy,
        pin_extra_ca: opts.pin_extra_ca,
        ..HttpOptions::default()
    };
    if let Some(ua) = opts.user_agent {
        o.user_agent = ua;
    }
    Ok(HttpTransport::new(o)?)
}

struct NativeTransport(HttpTransport);

impl Transport for NativeTransport {
    fn send(
        &self,
        request: TransportRequest,
    ) -> core::result::Result<TransportResponse, TransportError> {
        let req = HttpRequest {
            id: 0,
            method: request.method,
            url: request.url,
            headers: headers_in(request.headers),
            body: request.body.0,
        };
        match self.0.send(&req) {
            Ok(r) => Ok(TransportResponse {
                status: r.status,
                headers: headers_out(&r.headers),
                body: Bytes(r.body),
            }),
            Err(e) => Err(TransportError::Failed {
                reason: e.message().to_owned(),
            }),
        }
    }
}

/// The built-in transport as a `Transport` object, so a host transport can
/// wrap (decorate) it, e.g. to log or meter requests.
#[uniffi::export(default(options = None))]
pub fn native_transport(options: Option<NativeTransportOptions>) -> Result<Arc<dyn Transport>> {
    Ok(Arc::new(NativeTransport(native(
        options.unwrap_or_default(),
    )?)))
}

// ---------------------------------------------------------------------------
// Records

/// Facts about the device, sent at enrollment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceInfo {
    /// Stable device id (machine-id, hardware UUID).
    pub device_id: String,
    /// Host name.
    pub hostname: String,
    /// `windows`, `macos`, `linux`, `android`, `ios`, `chromeos`, `browser`.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// Partner product name.
    pub product: String,
    /// Partner product version.
    pub product_version: String,
}

/// How the client is set up: every option of the `client`, `driver` and
/// `native` scopes of the options schema (`docs/OPTIONS.md`) with its name
/// and default. Values are checked by the core (`invalid_argument` naming
/// the option), not here.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// Device facts (required).
    pub device: DeviceInfo,
    /// Base URL of the partner API instead of the token's (https; http only to loopback).
    #[uniffi(default = None)]
    pub service_url: Option<String>,
    /// Service keyset (JWKS JSON) pinned out of band; `None`: trust is bound
    /// to the token's signer.
    #[uniffi(default = None)]
    pub pinned_keys: Option<String>,
    /// Compress batches with gzip.
    #[uniffi(default = false)]
    pub gzip: bool,
    /// Queue bound in events.
    #[uniffi(default = 100000)]
    pub max_queue_events: u64,
    /// Queue bound in bytes.
    #[uniffi(default = 104857600)]
    pub max_queue_bytes: u64,
    /// What a full queue does with a new event: `"refuse_new"` (`queue_full`;
    /// a detection still evicts telemetry) or `"drop_oldest"`. Text, not an
    /// enum, because uniffi cannot give an enum field a default.
    #[uniffi(default = "refuse_new")]
    pub when_full: String,
    /// Oldest queued event kept, seconds; older ones are dropped as `expired`.
    #[uniffi(default = 604800)]
    pub max_queue_age_secs: u64,
    /// Send a partial batch once its oldest event waited this long, seconds.
    #[uniffi(default = 5)]
    pub max_batch_delay_secs: u64,
    /// Re-handshake period while the flow is blocked, seconds.
    #[uniffi(default = 300)]
    pub blocked_recheck_secs: u64,
    /// Cap of the exponential backoff, seconds.
    #[uniffi(default = 300)]
    pub max_backoff_secs: u64,
    /// Random wait before draining after an outage, seconds.
    #[uniffi(default = 30)]
    pub recovery_jitter_secs: u64,
    /// Pacing while draining a large queue, batches per second.
    #[uniffi(default = 20)]
    pub max_batches_per_second: u64,
    /// How long enroll, handshake, offboard and rotate keep retrying, seconds.
    #[uniffi(default = 30)]
    pub op_timeout_secs: u64,
    /// How long one call of a host signer ([`crate::HostKeys`]) may take,
    /// seconds; a slower answer is `signer_failed` (the batch stays queued).
    #[uniffi(default = 10)]
    pub signer_timeout_secs: u64,
    /// Directory for the credential (0600; not used for it when a
    /// `credential_store` is given) and the durable spool; `None`: memory only.
    #[uniffi(default = None)]
    pub data_dir: Option<String>,
}

impl ClientOptions {
    /// The core's options, through its JSON form so that every value is
    /// checked once, by the core, with the option's name in the error.
    fn to_core(&self) -> Result<options::ClientOptions> {
        let d = &self.device;
        let mut v = serde_json::json!({
            "device": {
                "device_id": d.device_id, "hostname": d.hostname, "os": d.os,
                "os_version": d.os_version, "product": d.product,
                "product_version": d.product_version,
            },
            "service_url": self.service_url,
            "gzip": self.gzip,
            "max_queue_events": self.max_queue_events,
            "max_queue_bytes": self.max_queue_bytes,
            "when_full": self.when_full,
            "max_queue_age_secs": self.max_queue_age_secs,
            "max_batch_delay_secs": self.max_batch_delay_secs,
            "blocked_recheck_secs": self.blocked_recheck_secs,
            "max_backoff_secs": self.max_backoff_secs,
            "recovery_jitter_secs": self.recovery_jitter_secs,
            "max_batches_per_second": self.max_batches_per_second,
            "op_timeout_secs": self.op_timeout_secs,
            "signer_timeout_secs": self.signer_timeout_secs,
        });
        if let Some(keys) = &self.pinned_keys {
            // A keyset that is not JSON is the core's `malformed`, as in C.
            let parsed: serde_json::Value =
                edrlink_core::encoding::parse_json(keys.as_bytes(), 1 << 20, "pinned_keys")?;
            v["pinned_keys"] = parsed;
        }
        Ok(options::ClientOptions::from_json(&v.to_string())?)
    }
}

/// Parses the options' JSON form (an object with `device` and any option by
/// its schema name, e.g. from a config file) and returns the record. The core
/// checks everything: an unknown name or a value out of range is
/// `invalid_argument` naming the option, text that is not JSON `malformed`.
#[uniffi::export]
pub fn client_options_from_json(json: String) -> Result<ClientOptions> {
    let mut v: serde_json::Value =
        edrlink_core::encoding::parse_json(json.as_bytes(), 1 << 20, "options")?;
    // `data_dir` belongs to the native agent, not to the core's client options.
    let data_dir = match v.as_object_mut().and_then(|o| o.remove("data_dir")) {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(_) => return Err(invalid("option data_dir must be a string")),
    };
    let o = options::ClientOptions::from_json(&v.to_string())?;
    let d = o.device;
    Ok(ClientOptions {
        device: DeviceInfo {
            device_id: d.device_id,
            hostname: d.hostname,
            os: d.os,
            os_version: d.os_version,
            product: d.product,
            product_version: d.product_version,
        },
        service_url: o.service_url,
        pinned_keys: o
            .pinned_keys
            .map(|k| serde_json::to_string(&k))
            .transpose()
            .map_err(|e| EdrlinkError::new(ErrorCode::Internal, e.to_string()))?,
        gzip: o.gzip,
        max_queue_events: o.max_queue_events,
        max_queue_bytes: o.max_queue_bytes,
        when_full: options::when_full_name(o.when_full).to_owned(),
        max_queue_age_secs: o.max_queue_age_secs.max(0) as u64,
        max_batch_delay_secs: o.max_batch_delay_secs.max(0) as u64,
        blocked_recheck_secs: o.blocked_recheck_secs.max(0) as u64,
        max_backoff_secs: o.max_backoff_secs.max(0) as u64,
        recovery_jitter_secs: o.recovery_jitter_secs.max(0) as u64,
        max_batches_per_second: u64::from(o.max_batches_per_second),
        op_timeout_secs: o.op_timeout_secs,
        signer_timeout_secs: o.signer_timeout_secs,
        data_dir,
    })
}

/// The service's flow decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum FlowState {
    /// Send.
    Open,
    /// Integration turned off: data is kept, not sent.
    Blocked,
    /// A new access token is required.
    Revoked,
}

impl From<FlowState> for CoreFlow {
    fn from(f: FlowState) -> Self {
        match f {
            FlowState::Open => CoreFlow::Open,
            FlowState::Blocked => CoreFlow::Blocked,
            FlowState::Revoked => CoreFlow::Revoked,
        }
    }
}

impl From<CoreFlow> for FlowState {
    fn from(f: CoreFlow) -> Self {
        match f {
            CoreFlow::Open => FlowState::Open,
            CoreFlow::Blocked => FlowState::Blocked,
            CoreFlow::Revoked => FlowState::Revoked,
        }
    }
}

/// The partner-side health report.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Health {
    /// Onboarded, flow open, no recent error.
    pub healthy: bool,
    /// Holds a valid credential.
    pub onboarded: bool,
    /// Installation id, when onboarded.
    pub installation_id: Option<String>,
    /// Last flow decision.
    pub flow: Option<FlowState>,
    /// A new access token is needed.
    pub needs_new_token: bool,
    /// Last successful handshake (Unix seconds).
    pub last_handshake: Option<i64>,
    /// Last acknowledged send (Unix seconds).
    pub last_send: Option<i64>,
    /// Events waiting.
    pub queued_events: u64,
    /// Bytes waiting.
    pub queued_bytes: u64,
    /// Age of the oldest queued event, seconds.
    pub oldest_queued_age: Option<i64>,
    /// Events acknowledged since start.
    pub sent_events: u64,
    /// Events dropped, by `reason/category`.
    pub drops: HashMap<String, u64>,
    /// Service clock minus local clock, seconds.
    pub clock_offset: i64,
    /// Why the last attempt failed (e.g. `rate_limited` with `retry_after`),
    /// `None` after a success.
    pub last_error: Option<ErrorInfo>,
    /// Next retry (Unix seconds), when backing off.
    pub next_attempt: Option<i64>,
}

impl From<edrlink_core::health::HealthReport> for Health {
    fn from(h: edrlink_core::health::HealthReport) -> Self {
        Health {
            healthy: h.healthy,
            onboarded: h.onboarded,
            installation_id: h.installation_id,
            flow: h.flow.map(Into::into),
            needs_new_token: h.needs_new_token,
            last_handshake: h.last_handshake,
            last_send: h.last_send,
            queued_events: h.queued_events,
            queued_bytes: h.queued_bytes,
            oldest_queued_age: h.oldest_queued_age,
            sent_events: h.sent_events,
            drops: h.drops.into_iter().collect(),
            clock_offset: h.clock_offset,
            last_error: h.last_error.map(Into::into),
            next_attempt: h.next_attempt,
        }
    }
}

/// What a flush achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct FlushOutcome {
    /// Events acknowledged during the call.
    pub delivered: u64,
    /// Events still queued (kept for later).
    pub queued: u64,
}

/// Detection severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Severity {
    /// Informational.
    Informational,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// What the product did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DetectionAction {
    /// Only detected.
    Detected,
    /// Blocked.
    Blocked,
    /// Quarantined.
    Quarantined,
    /// Removed.
    Removed,
    /// Allowed by policy.
    Allowed,
}

/// A malware detection (typed alternative to `submit_json`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Detection {
    /// Threat name.
    pub threat_name: String,
    /// File path ("" for URL detections).
    pub file_path: String,
    /// SHA-256 of the file, hex ("" when there is no file).
    pub sha256: String,
    /// Severity.
    pub severity: Severity,
    /// Action taken.
    pub action: DetectionAction,
    /// Time (RFC 3339); `None` = now.
    #[uniffi(default = None)]
    pub time: Option<String>,
    /// Test detection.
    #[uniffi(default = false)]
    pub test: bool,
    /// URL, for web-protection detections.
    #[uniffi(default = None)]
    pub url: Option<String>,
}

impl From<Detection> for Event {
    fn from(d: Detection) -> Event {
        use telemetry::{Action as A, Severity as S};
        Event::Detection(telemetry::Detection {
            time: d
                .time
                .unwrap_or_else(|| edrlink_core::encoding::rfc3339(unix_now())),
            threat_name: d.threat_name,
            file_path: d.file_path,
            sha256: d.sha256.to_ascii_lowercase(),
            severity: match d.severity {
                Severity::Informational => S::Informational,
                Severity::Low => S::Low,
                Severity::Medium => S::Medium,
                Severity::High => S::High,
                Severity::Critical => S::Critical,
            },
            action: match d.action {
                DetectionAction::Detected => A::Detected,
                DetectionAction::Blocked => A::Blocked,
                DetectionAction::Quarantined => A::Quarantined,
                DetectionAction::Removed => A::Removed,
                DetectionAction::Allowed => A::Allowed,
            },
            test: d.test,
            url: d.url,
        })
    }
}

// ---------------------------------------------------------------------------
// The client

/// The partner client: enrolls the endpoint, keeps the credential, queues and
/// delivers telemetry. Thread-safe; every method blocks (call it off the UI
/// thread). Holds native resources: release them with Kotlin `use {}` /
/// `close()`, Python `with` / `close()`, Swift `shutdown()` (or let ARC free
/// it); calls after `shutdown()` raise `invalid_state`. Queued events that
/// were not flushed are lost then (the credential stays in `data_dir`).
#[derive(uniffi::Object)]
pub struct EdrlinkClient {
    agent: RwLock<Option<Arc<Agent>>>,
}

impl core::fmt::Debug for EdrlinkClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EdrlinkClient").finish_non_exhaustive()
    }
}

impl EdrlinkClient {
    fn agent(&self) -> Result<Arc<Agent>> {
        let g = self.agent.read().unwrap_or_else(|p| p.into_inner());
        g.clone()
            .ok_or_else(|| EdrlinkError::new(ErrorCode::InvalidState, "the client is shut down"))
    }
}

#[uniffi::export]
impl EdrlinkClient {
    /// Creates a client, loading the stored credential if present.
    ///
    /// `transport`: the host's HTTP stack; `None` = the built-in native one,
    /// set up with `transport_options` (which a host transport does not take:
    /// passing both is `invalid_argument`).
    ///
    /// `credential_store`: where the credential JSON is kept (Keychain,
    /// EncryptedSharedPreferences…); `None` = `data_dir/credential.json`, or
    /// memory only without a data directory. A store that raises on `load`
    /// fails the constructor with `storage`.
    ///
    /// `host_keys`: the device key held by the host (Secure Enclave, Android
    /// Keystore…); `None` = an Ed25519 key edrlink generates and keeps in the
    /// credential. With host keys the credential holds the key's handle and
    /// public key only; a stored credential made with host keys cannot be
    /// loaded without them (`invalid_state`).
    #[uniffi::constructor(default(
        transport = None,
        transport_options = None,
        credential_store = None,
        host_keys = None
    ))]
    pub fn new(
        options: ClientOptions,
        transport: Option<Arc<dyn Transport>>,
        transport_options: Option<NativeTransportOptions>,
        credential_store: Option<Arc<dyn CredentialStore>>,
        host_keys: Option<Arc<dyn HostKeys>>,
    ) -> Result<Arc<Self>> {
        let core = options.to_core()?;
        let op_timeout = Duration::from_secs(core.op_timeout_secs);
        let data_dir: Option<PathBuf> = options.data_dir.map(Into::into);
        let store: Option<Box<dyn CoreStore>> = match credential_store {
            Some(s) => Some(Box::new(StoreAdapter(s))),
            // The default store, as `Agent::new` chooses it.
            None => match &data_dir {
                Some(dir) => Some(Box::new(FileCredentialStore::new(dir)?)),
                None => None,
            },
        };
        let keys = host_keys.map(|k| Arc::new(KeysAdapter(k)) as Arc<dyn CoreHostKeys>);
        let agent_cfg = AgentConfig {
            client: core,
            data_dir,
        };
        let mut agent = match (transport, transport_options) {
            (Some(_), Some(_)) => return Err(invalid(
                "transport_options configure the built-in transport; a host transport was given",
            )),
            (Some(t), None) => Agent::with_host(agent_cfg, Adapter(t), store, keys)?,
            (None, o) => Agent::with_host(agent_cfg, native(o.unwrap_or_default())?, store, keys)?,
        };
        agent.set_op_timeout(op_timeout);
        Ok(Arc::new(EdrlinkClient {
            agent: RwLock::new(Some(Arc::new(agent))),
        }))
    }

    /// Redeems an access token and performs the first handshake. Errors carry
    /// the service's code: `token_expired`, `token_revoked`,
    /// `integration_disabled`, `epoch_mismatch`, `wrong_region`, `transport`…
    pub fn enroll(&self, token: String) -> Result<Health> {
        let token = Zeroizing::new(token);
        Ok(self.agent()?.enroll(&token)?.into())
    }

    /// Down-level enrollment with an onboarding package (workspace id + key).
    pub fn enroll_with_package(&self, package_json: String) -> Result<Health> {
        let package_json = Zeroizing::new(package_json);
        Ok(self.agent()?.enroll_with_package(&package_json)?.into())
    }

    /// Asks the service for a flow decision now.
    pub fn handshake(&self) -> Result<FlowState> {
        Ok(self.agent()?.handshake()?.into())
    }

    /// Queues one event given as JSON (validated; `malformed` when invalid).
    pub fn submit_json(&self, json: String) -> Result<()> {
        Ok(self.agent()?.submit_json(&json)?)
    }

    /// Queues a typed detection.
    pub fn submit_detection(&self, detection: Detection) -> Result<()> {
        Ok(self.agent()?.submit(detection.into())?)
    }

    /// Queues the EICAR test detection (the portal raises an "EICAR test file" alert).
    pub fn send_test_detection(&self) -> Result<()> {
        Ok(self.agent()?.send_test_detection()?)
    }

    /// Delivers what is queued for at most `timeout_secs`. Errors
    /// (`flow_blocked`, `revoked`, `epoch_mismatch`, `needs_reenroll`, …)
    /// leave the events queued.
    #[uniffi::method(default(timeout_secs = 30))]
    pub fn flush(&self, timeout_secs: u64) -> Result<FlushOutcome> {
        let o = self.agent()?.flush(timeout_secs)?;
        Ok(FlushOutcome {
            delivered: o.delivered,
            queued: o.queued,
        })
    }

    /// Forces a credential rotation now (a new installation key, signed
    /// with the old one); the client also rotates on its own before expiry.
    /// Errors: `invalid_state` when not enrolled or down-level, the
    /// service's refusal otherwise.
    pub fn rotate(&self) -> Result<()> {
        Ok(self.agent()?.rotate()?)
    }

    /// Routes the client's diagnostic records at `min_level` or more severe to
    /// `sink` (`None` removes it). Messages never hold a secret.
    pub fn set_log_sink(&self, sink: Option<Arc<dyn LogSink>>, min_level: LogLevel) -> Result<()> {
        let sink = sink.map(|s| Arc::new(LogAdapter(s)) as Arc<dyn edrlink_core::agent::LogSink>);
        self.agent()?.set_log_sink(sink, min_level.into());
        Ok(())
    }

    /// Delivers the client's state-change events to `sink` (`None` removes it).
    pub fn set_event_sink(&self, sink: Option<Arc<dyn EventSink>>) -> Result<()> {
        let sink =
            sink.map(|s| Arc::new(EventAdapter(s)) as Arc<dyn edrlink_core::agent::EventSink>);
        self.agent()?.set_event_sink(sink);
        Ok(())
    }

    /// The health report.
    pub fn health(&self) -> Result<Health> {
        Ok(self.agent()?.health().into())
    }

    /// Offboards: `None` = partner opt-out (asks the service); `Some(package)`
    /// applies an admin-issued offboarding package. The credential is deleted.
    #[uniffi::method(default(package = None))]
    pub fn offboard(&self, package: Option<String>) -> Result<()> {
        Ok(self.agent()?.offboard(package.as_deref())?)
    }

    /// Releases the native resources now (idempotent; calls in progress finish
    /// first). Named `shutdown` because Kotlin's `close()` (AutoCloseable) and
    /// Python's `close()` / `with` already exist and end in the same state.
    pub fn shutdown(&self) {
        let mut g = self.agent.write().unwrap_or_else(|p| p.into_inner());
        g.take();
    }

    /// Whether `shutdown()` (or Python's `close()`) was called.
    pub fn is_shut_down(&self) -> bool {
        self.agent
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }
}
