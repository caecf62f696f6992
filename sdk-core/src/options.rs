//! The one options schema of the partner client: names, defaults and limits,
//! defined once here and exposed by every binding under the same names
//! (snake_case in Rust, C and Python; camelCase in Kotlin, Swift and JS).
//!
//! [`OPTIONS`] is the table the bindings, the docs (`docs/OPTIONS.md`) and the
//! shared vector `tests/vectors/options.json` are generated from or checked
//! against, so a default cannot drift between languages. Validation happens
//! here, once: bindings pass values through and report the core's error.

use crate::error::{Error, ErrorCode, Result};
use crate::keys::Keyset;
use crate::redeem::DeviceFacts;
pub use crate::spool::WhenFull;
use serde::Serialize;

/// Default queue bound in events.
pub const DEFAULT_MAX_QUEUE_EVENTS: u64 = crate::spool::DEFAULT_MAX_EVENTS;
/// Default queue bound in bytes (100 MiB).
pub const DEFAULT_MAX_QUEUE_BYTES: u64 = 100 * 1024 * 1024;
/// Default oldest queued event kept, seconds (7 days).
pub const DEFAULT_MAX_QUEUE_AGE_SECS: i64 = 7 * 86_400;
/// Default wait before a partial batch is sent, seconds.
pub const DEFAULT_MAX_BATCH_DELAY_SECS: i64 = 5;
/// Default re-handshake period while the flow is blocked, seconds.
pub const DEFAULT_BLOCKED_RECHECK_SECS: i64 = 300;
/// Default cap of the exponential backoff, seconds.
pub const DEFAULT_MAX_BACKOFF_SECS: i64 = 300;
/// Default recovery jitter after an outage, seconds.
pub const DEFAULT_RECOVERY_JITTER_SECS: i64 = 30;
/// Default pacing while draining, batches per second.
pub const DEFAULT_MAX_BATCHES_PER_SECOND: u32 = 20;
/// Default time a blocking/awaited operation (enroll, handshake, offboard,
/// rotate) keeps retrying, seconds.
pub const DEFAULT_OP_TIMEOUT_SECS: u64 = 30;
/// Default of `signer_timeout_secs`: a platform signer asking the user
/// (biometry) or a busy TPM answers within seconds.
pub const DEFAULT_SIGNER_TIMEOUT_SECS: u64 = 10;
/// Default HTTP request timeout of the built-in native transport, seconds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// Client options. Build with [`ClientOptions::new`] (every default) and set
/// fields, or parse the JSON form with [`ClientOptions::from_json`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Facts about this device (required).
    pub device: DeviceFacts,
    /// Use this base URL instead of the one in the token or credential.
    pub service_url: Option<String>,
    /// Service keyset pinned out of band; otherwise trust is bound to the token.
    pub pinned_keys: Option<Keyset>,
    /// Compress batches with gzip.
    pub gzip: bool,
    /// Queue bound in events.
    pub max_queue_events: u64,
    /// Queue bound in bytes.
    pub max_queue_bytes: u64,
    /// What a full queue does with a new event.
    pub when_full: WhenFull,
    /// Oldest queued event kept (seconds); older ones are dropped as `expired`.
    pub max_queue_age_secs: i64,
    /// Send a partial batch once its oldest event waited this long (seconds).
    pub max_batch_delay_secs: i64,
    /// Re-handshake period while the flow is blocked (seconds).
    pub blocked_recheck_secs: i64,
    /// Cap of the exponential backoff (seconds).
    pub max_backoff_secs: i64,
    /// After an outage (3 or more failed attempts in a row) ends, wait a random
    /// 0..=this many seconds before draining, so a fleet coming back at once
    /// does not stampede the service.
    pub recovery_jitter_secs: i64,
    /// Steady pacing while draining a large queue: at most this many batches a second.
    pub max_batches_per_second: u32,
    /// How long enroll, handshake, offboard and rotate keep retrying (driver option).
    pub op_timeout_secs: u64,
    /// How long a host signer may take for one key creation or signature
    /// before the operation fails with `signer_failed` (driver option).
    pub signer_timeout_secs: u64,
}

impl ClientOptions {
    /// Every default, for a device.
    pub fn new(device: DeviceFacts) -> Self {
        ClientOptions {
            device,
            service_url: None,
            pinned_keys: None,
            gzip: false,
            max_queue_events: DEFAULT_MAX_QUEUE_EVENTS,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            when_full: WhenFull::RefuseNew,
            max_queue_age_secs: DEFAULT_MAX_QUEUE_AGE_SECS,
            max_batch_delay_secs: DEFAULT_MAX_BATCH_DELAY_SECS,
            blocked_recheck_secs: DEFAULT_BLOCKED_RECHECK_SECS,
            max_backoff_secs: DEFAULT_MAX_BACKOFF_SECS,
            recovery_jitter_secs: DEFAULT_RECOVERY_JITTER_SECS,
            max_batches_per_second: DEFAULT_MAX_BATCHES_PER_SECOND,
            op_timeout_secs: DEFAULT_OP_TIMEOUT_SECS,
            signer_timeout_secs: DEFAULT_SIGNER_TIMEOUT_SECS,
        }
    }

    /// Parses the JSON form: an object with `device` and any option of
    /// [`OPTIONS`] by its snake_case name (absent or `null` = default).
    /// Errors: `invalid_argument` naming the option (unknown name, wrong
    /// type, out of range); `malformed` for text that is not JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        let v: serde_json::Value =
            crate::encoding::parse_json(json.as_bytes(), 1 << 20, "options")?;
        let obj = v
            .as_object()
            .ok_or_else(|| invalid("options must be a JSON object"))?;
        let device = obj
            .get("device")
            .ok_or_else(|| invalid("option device is required"))?;
        let device: DeviceFacts = serde_json::from_value(device.clone()).map_err(|_| {
            invalid("option device must be { device_id, hostname, os, os_version, product, product_version } (strings)")
        })?;
        device.validate()?;
        let mut o = ClientOptions::new(device);
        for (k, val) in obj {
            if k == "device" || val.is_null() {
                continue;
            }
            o.set(k, val)?;
        }
        Ok(o)
    }

    /// Sets one option by its snake_case name from a JSON value, with the
    /// limits of [`OPTIONS`]. Native-only options (`data_dir`, transport
    /// settings) are not client options: `invalid_argument`.
    pub fn set(&mut self, name: &str, val: &serde_json::Value) -> Result<()> {
        let spec = spec(name).ok_or_else(|| invalid(format!("unknown option {name}")))?;
        if spec.scope != Scope::Client && spec.scope != Scope::Driver {
            return Err(invalid(format!(
                "option {name} belongs to the native driver or transport, not the client"
            )));
        }
        match name {
            "service_url" => {
                let s = string(name, val)?;
                crate::client::check_service_url(s.trim_end_matches('/'))
                    .map_err(|e| invalid(format!("option service_url: {}", e.detail())))?;
                self.service_url = Some(s);
            }
            "pinned_keys" => {
                self.pinned_keys = Some(Keyset::from_json(&val.to_string())?);
            }
            "gzip" => {
                self.gzip = val
                    .as_bool()
                    .ok_or_else(|| invalid("option gzip must be a boolean"))?
            }
            "when_full" => self.when_full = parse_when_full(&string(name, val)?)?,
            "max_queue_events" => self.max_queue_events = number(spec, val)?,
            "max_queue_bytes" => self.max_queue_bytes = number(spec, val)?,
            "max_queue_age_secs" => self.max_queue_age_secs = number(spec, val)? as i64,
            "max_batch_delay_secs" => self.max_batch_delay_secs = number(spec, val)? as i64,
            "blocked_recheck_secs" => self.blocked_recheck_secs = number(spec, val)? as i64,
            "max_backoff_secs" => self.max_backoff_secs = number(spec, val)? as i64,
            "recovery_jitter_secs" => self.recovery_jitter_secs = number(spec, val)? as i64,
            "max_batches_per_second" => self.max_batches_per_second = number(spec, val)? as u32,
            "op_timeout_secs" => self.op_timeout_secs = number(spec, val)?,
            "signer_timeout_secs" => self.signer_timeout_secs = number(spec, val)?,
            _ => return Err(invalid(format!("unknown option {name}"))),
        }
        Ok(())
    }

    /// Checks every numeric option against its limits (bindings that fill the
    /// struct field by field call this once instead of checking themselves).
    pub fn validate(&self) -> Result<()> {
        self.device.validate()?;
        if let Some(u) = &self.service_url {
            crate::client::check_service_url(u.trim_end_matches('/'))?;
        }
        let nums: [(&str, u64); 10] = [
            ("max_queue_events", self.max_queue_events),
            ("max_queue_bytes", self.max_queue_bytes),
            ("max_queue_age_secs", self.max_queue_age_secs.max(0) as u64),
            (
                "max_batch_delay_secs",
                self.max_batch_delay_secs.max(0) as u64,
            ),
            (
                "blocked_recheck_secs",
                self.blocked_recheck_secs.max(0) as u64,
            ),
            ("max_backoff_secs", self.max_backoff_secs.max(0) as u64),
            (
                "recovery_jitter_secs",
                self.recovery_jitter_secs.max(0) as u64,
            ),
            ("max_batches_per_second", self.max_batches_per_second as u64),
            ("op_timeout_secs", self.op_timeout_secs),
            ("signer_timeout_secs", self.signer_timeout_secs),
        ];
        for (name, v) in nums {
            let s = spec(name).expect("every numeric option has a spec");
            check_range(s, v)?;
        }
        for (name, v) in [
            ("max_queue_age_secs", self.max_queue_age_secs),
            ("max_batch_delay_secs", self.max_batch_delay_secs),
            ("blocked_recheck_secs", self.blocked_recheck_secs),
            ("max_backoff_secs", self.max_backoff_secs),
            ("recovery_jitter_secs", self.recovery_jitter_secs),
        ] {
            if v < 0 {
                return Err(invalid(format!("option {name} must not be negative")));
            }
        }
        Ok(())
    }
}

/// Parses `"refuse_new"` / `"drop_oldest"`.
pub fn parse_when_full(s: &str) -> Result<WhenFull> {
    match s {
        "refuse_new" => Ok(WhenFull::RefuseNew),
        "drop_oldest" => Ok(WhenFull::DropOldest),
        _ => Err(invalid(
            "option when_full must be \"refuse_new\" or \"drop_oldest\"",
        )),
    }
}

/// The wire name of a [`WhenFull`].
pub fn when_full_name(w: WhenFull) -> &'static str {
    match w {
        WhenFull::RefuseNew => "refuse_new",
        WhenFull::DropOldest => "drop_oldest",
    }
}

/// Who reads an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The sans-IO client (every platform, wasm included).
    Client,
    /// The driver loop (the blocking agent of C/uniffi/Rust, the JS client).
    Driver,
    /// The native agent only (files).
    Native,
    /// The built-in native HTTP transport only.
    Transport,
}

/// One row of the options schema.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OptionSpec {
    /// snake_case name (camelCase in Kotlin, Swift and JS).
    pub name: &'static str,
    /// `bool`, `integer`, `string`, `enum`, `keyset`, `device`, `path`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The default, as JSON text (`null` = unset).
    pub default: &'static str,
    /// Smallest accepted value (integers).
    pub min: Option<u64>,
    /// Largest accepted value (integers).
    pub max: Option<u64>,
    /// Who reads it.
    pub scope: Scope,
    /// One line for the docs.
    pub doc: &'static str,
}

const fn int(
    name: &'static str,
    default: &'static str,
    min: u64,
    max: u64,
    scope: Scope,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        kind: "integer",
        default,
        min: Some(min),
        max: Some(max),
        scope,
        doc,
    }
}

const fn other(
    name: &'static str,
    kind: &'static str,
    default: &'static str,
    scope: Scope,
    doc: &'static str,
) -> OptionSpec {
    OptionSpec {
        name,
        kind,
        default,
        min: None,
        max: None,
        scope,
        doc,
    }
}

/// The options schema: every option of every binding, its default and limits.
/// A test checks the defaults here against [`ClientOptions::new`] and the
/// native ones against the agent and the transport.
pub const OPTIONS: &[OptionSpec] = &[
    other("device", "device", "null", Scope::Client, "Facts about this device (required): device_id, hostname, os, os_version, product, product_version."),
    other("service_url", "string", "null", Scope::Client, "Base URL of the partner API instead of the token's (https; http only to loopback)."),
    other("pinned_keys", "keyset", "null", Scope::Client, "Service keyset (JWKS) pinned out of band; unset: trust is bound to the token's signer."),
    other("gzip", "bool", "false", Scope::Client, "Compress batches with gzip."),
    int("max_queue_events", "100000", 1, 100_000_000, Scope::Client, "Queue bound in events."),
    int("max_queue_bytes", "104857600", 1024, 1 << 40, Scope::Client, "Queue bound in bytes."),
    other("when_full", "enum", "\"refuse_new\"", Scope::Client, "Full queue: \"refuse_new\" (queue_full; a detection still evicts telemetry) or \"drop_oldest\"."),
    int("max_queue_age_secs", "604800", 60, 366 * 86_400, Scope::Client, "Oldest queued event kept; older ones are dropped as expired."),
    int("max_batch_delay_secs", "5", 0, 86_400, Scope::Client, "Send a partial batch once its oldest event waited this long."),
    int("blocked_recheck_secs", "300", 1, 86_400, Scope::Client, "Re-handshake period while the flow is blocked."),
    int("max_backoff_secs", "300", 1, 86_400, Scope::Client, "Cap of the exponential backoff."),
    int("recovery_jitter_secs", "30", 0, 3_600, Scope::Client, "Random wait before draining after an outage."),
    int("max_batches_per_second", "20", 1, 10_000, Scope::Client, "Pacing while draining a large queue."),
    int("op_timeout_secs", "30", 0, 86_400, Scope::Driver, "How long enroll, handshake, offboard and rotate keep retrying."),
    int("signer_timeout_secs", "10", 1, 600, Scope::Driver, "How long a host signer may take to create a key or sign before the operation fails with signer_failed."),
    other("data_dir", "path", "null", Scope::Native, "Directory for the credential (0600) and the durable spool; unset: memory only."),
    other("proxy", "string", "null", Scope::Transport, "Proxy URL (http://[user:pass@]host:port, socks5://); unset: HTTPS_PROXY/HTTP_PROXY/ALL_PROXY with NO_PROXY."),
    other("no_proxy", "bool", "false", Scope::Transport, "Connect directly, ignoring proxy settings and the environment."),
    other("extra_ca_pem", "string", "null", Scope::Transport, "Extra trusted CA certificates (PEM), e.g. a TLS-inspection CA."),
    other("pin_extra_ca", "bool", "false", Scope::Transport, "Trust only extra_ca_pem (opt-in pinning)."),
    int("request_timeout_secs", "30", 1, 3_600, Scope::Transport, "Per-request timeout of the built-in transport."),
];

/// Checks an integer option of any scope (the native transport's
/// `request_timeout_secs` included) against the schema's limits, so no
/// binding range-checks anything itself. Error: `invalid_argument` naming it.
pub fn check_integer(name: &str, value: u64) -> Result<()> {
    let s = spec(name)
        .filter(|s| s.kind == "integer")
        .ok_or_else(|| invalid(format!("unknown integer option {name}")))?;
    check_range(s, value)
}

/// Reads an integer option of any scope from its JSON value, with the
/// schema's limits (see [`check_integer`]).
pub fn integer(name: &str, value: &serde_json::Value) -> Result<u64> {
    let s = spec(name)
        .filter(|s| s.kind == "integer")
        .ok_or_else(|| invalid(format!("unknown integer option {name}")))?;
    number(s, value)
}

/// A proxy URL with its password hidden, for logs, errors and option reports
/// (always built: hosts report the `proxy` option without the native transport).
pub fn redact_proxy(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The spec of option `name`.
pub fn spec(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|s| s.name == name)
}

/// The schema as JSON (what `tests/vectors/options.json` holds).
pub fn schema_json() -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "description": "The one options schema of the edrlink partner client (sdk-core/src/options.rs). Names are snake_case; Kotlin, Swift and JS use camelCase. default is JSON (null = unset).",
        "options": OPTIONS.iter().map(|s| {
            let mut v = serde_json::to_value(s).expect("serializable");
            v["default"] = serde_json::from_str(s.default).expect("defaults are JSON");
            v
        }).collect::<Vec<_>>(),
    }))
    .expect("serializable")
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, msg)
}

fn string(name: &str, v: &serde_json::Value) -> Result<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("option {name} must be a string")))
}

fn check_range(s: &OptionSpec, n: u64) -> Result<()> {
    let (min, max) = (s.min.unwrap_or(0), s.max.unwrap_or(u64::MAX));
    if n < min || n > max {
        return Err(invalid(format!(
            "option {} must be between {min} and {max}",
            s.name
        )));
    }
    Ok(())
}

fn number(s: &OptionSpec, v: &serde_json::Value) -> Result<u64> {
    let n = v
        .as_u64()
        .ok_or_else(|| invalid(format!("option {} must be a non-negative integer", s.name)))?;
    check_range(s, n)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> serde_json::Value {
        serde_json::json!({"device_id":"d","hostname":"h","os":"linux","os_version":"6","product":"p","product_version":"1"})
    }

    #[test]
    fn schema_defaults_are_the_struct_defaults() {
        let o =
            ClientOptions::from_json(&serde_json::json!({"device": device()}).to_string()).unwrap();
        let get =
            |n: &str| serde_json::from_str::<serde_json::Value>(spec(n).unwrap().default).unwrap();
        assert_eq!(get("max_queue_events"), o.max_queue_events);
        assert_eq!(get("max_queue_bytes"), o.max_queue_bytes);
        assert_eq!(get("max_queue_age_secs"), o.max_queue_age_secs);
        assert_eq!(get("max_batch_delay_secs"), o.max_batch_delay_secs);
        assert_eq!(get("blocked_recheck_secs"), o.blocked_recheck_secs);
        assert_eq!(get("max_backoff_secs"), o.max_backoff_secs);
        assert_eq!(get("recovery_jitter_secs"), o.recovery_jitter_secs);
        assert_eq!(get("max_batches_per_second"), o.max_batches_per_second);
        assert_eq!(get("op_timeout_secs"), o.op_timeout_secs);
        assert_eq!(get("gzip"), o.gzip);
        assert_eq!(get("when_full"), when_full_name(o.when_full));
        assert_eq!(get("request_timeout_secs"), DEFAULT_REQUEST_TIMEOUT_SECS);
        o.validate().unwrap();
    }

    #[test]
    fn bad_options_name_the_option() {
        let bad = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"device": device()});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            ClientOptions::from_json(&v.to_string()).unwrap_err()
        };
        let e = bad(serde_json::json!({"max_queue_events": 0}));
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(e.detail().contains("max_queue_events"), "{e}");
        assert!(bad(serde_json::json!({"nope": 1}))
            .detail()
            .contains("nope"));
        assert!(bad(serde_json::json!({"when_full": "sometimes"}))
            .detail()
            .contains("when_full"));
        assert!(bad(serde_json::json!({"gzip": "yes"}))
            .detail()
            .contains("gzip"));
        assert!(bad(serde_json::json!({"data_dir": "/tmp"}))
            .detail()
            .contains("data_dir"));
        assert!(
            bad(serde_json::json!({"service_url": "http://example.com"}))
                .detail()
                .contains("http")
        );
        assert_eq!(
            ClientOptions::from_json("{").unwrap_err().code(),
            ErrorCode::Malformed
        );
        assert_eq!(
            ClientOptions::from_json("{}").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn every_default_is_json_and_in_range() {
        for s in OPTIONS {
            let v: serde_json::Value = serde_json::from_str(s.default).unwrap();
            if let Some(n) = v.as_u64() {
                check_range(s, n).unwrap();
            }
        }
        let j: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        assert_eq!(j["options"].as_array().unwrap().len(), OPTIONS.len());
    }
}
