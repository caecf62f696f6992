//! The constructor's option bag → the core's [`ClientOptions`].
//!
//! One conversion, in one place: every key except the JS-only hooks is
//! renamed camelCase → snake_case and handed to `ClientOptions::from_json`,
//! so names, defaults and limits are the core's options schema
//! (`edrlink_core::options::OPTIONS`, docs/OPTIONS.md) and a bad value comes
//! back as the core's `invalid_argument` naming the option. Nothing is
//! range-checked here.

use crate::{err, set, IntoJs};
use edrlink_core::error::ErrorCode;
use edrlink_core::options::{ClientOptions, Scope, OPTIONS};
use js_sys::{Array, Function, Object};
use wasm_bindgen::prelude::*;

/// Options that configure the JS host glue rather than the client.
const JS_ONLY: [&str; 7] = [
    "credential",
    "fetch",
    "onEvent",
    "onLog",
    "logLevel",
    "keys",
    "store",
];

/// The methods a `keys` object must have (`HostKeys` in the .d.ts).
const KEYS_METHODS: [&str; 3] = ["createKey", "sign", "deleteKey"];
/// The methods a `store` object must have (`CredentialStore` in the .d.ts).
const STORE_METHODS: [&str; 3] = ["load", "save", "delete"];

/// What `options.keys` asked for.
pub(crate) enum KeysOption {
    /// A host key store (an object with `createKey`, `sign`, `deleteKey`).
    Host(JsValue),
    /// `"software"`: the SDK's own Ed25519 key, even where a default host store exists.
    Software,
}

/// What `new EdrlinkClient(options)` was given, split into the core's options
/// and the JS hooks.
pub(crate) struct OptionBag {
    pub(crate) cfg: ClientOptions,
    pub(crate) credential: Option<JsValue>,
    pub(crate) fetch: Option<Function>,
    pub(crate) on_event: Option<Function>,
    pub(crate) on_log: Option<Function>,
    pub(crate) log_level: Option<String>,
    pub(crate) keys: Option<KeysOption>,
    pub(crate) store: Option<JsValue>,
}

/// `maxQueueEvents` → `max_queue_events` (the schema's names are snake_case).
pub(crate) fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// `max_queue_events` → `maxQueueEvents`.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for ch in name.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `v` when it is an object with every method in `methods`; the error names the option.
fn host_object(v: JsValue, key: &str, methods: &[&str], shape: &str) -> Result<JsValue, JsValue> {
    let ok = v.is_object()
        && methods.iter().all(|m| {
            js_sys::Reflect::get(&v, &JsValue::from_str(m))
                .map(|f| f.is_function())
                .unwrap_or(false)
        });
    if ok {
        Ok(v)
    } else {
        Err(err(
            ErrorCode::InvalidArgument,
            format!("option {key} must be an object with {shape}"),
        ))
    }
}

fn function(v: JsValue, key: &str) -> Result<Function, JsValue> {
    v.dyn_into::<Function>().map_err(|_| {
        err(
            ErrorCode::InvalidArgument,
            format!("option {key} must be a function"),
        )
    })
}

/// A JS option value as JSON. `pinnedKeys` may be given as JWKS text: it is
/// read as the JSON it holds.
fn json_value(v: &JsValue, name: &str) -> Result<serde_json::Value, JsValue> {
    let text = if let (Some(s), "pinned_keys") = (v.as_string(), name) {
        s
    } else {
        js_sys::JSON::stringify(v)
            .ok()
            .and_then(|s| s.as_string())
            .ok_or_else(|| {
                err(
                    ErrorCode::InvalidArgument,
                    format!("option {name} must be a JSON value"),
                )
            })?
    };
    edrlink_core::encoding::parse_json(text.as_bytes(), 1 << 20, name).js()
}

impl OptionBag {
    pub(crate) fn parse(options: &JsValue) -> Result<OptionBag, JsValue> {
        if !options.is_object() {
            return Err(err(
                ErrorCode::InvalidArgument,
                "options must be an object with at least { device }",
            ));
        }
        let (mut credential, mut fetch, mut on_event, mut on_log, mut log_level) =
            (None, None, None, None, None);
        let (mut keys, mut store) = (None, None);
        let mut core = serde_json::Map::new();
        for entry in Object::entries(options.unchecked_ref()).iter() {
            let entry: Array = entry.unchecked_into();
            let (key, v) = (entry.get(0).as_string().unwrap_or_default(), entry.get(1));
            if v.is_undefined() || v.is_null() {
                continue;
            }
            match key.as_str() {
                "credential" => credential = Some(v),
                "fetch" => fetch = Some(function(v, &key)?),
                "onEvent" => on_event = Some(function(v, &key)?),
                "onLog" => on_log = Some(function(v, &key)?),
                "logLevel" => {
                    log_level = Some(v.as_string().ok_or_else(|| {
                        err(
                            ErrorCode::InvalidArgument,
                            "option logLevel must be a string",
                        )
                    })?)
                }
                "keys" if v.as_string().as_deref() == Some("software") => {
                    keys = Some(KeysOption::Software)
                }
                "keys" => {
                    keys = Some(KeysOption::Host(host_object(
                        v,
                        &key,
                        &KEYS_METHODS,
                        "createKey(), sign(handle, message) and deleteKey(handle), or \"software\"",
                    )?))
                }
                "store" => {
                    store = Some(host_object(
                        v,
                        &key,
                        &STORE_METHODS,
                        "load(), save(json) and delete()",
                    )?)
                }
                _ => {
                    let name = snake_case(&key);
                    let value = json_value(&v, &name)?;
                    core.insert(name, value);
                }
            }
        }
        debug_assert!(JS_ONLY.iter().all(|k| !core.contains_key(*k)));
        Ok(OptionBag {
            cfg: ClientOptions::from_json(&serde_json::Value::Object(core).to_string()).js()?,
            credential,
            fetch,
            on_event,
            on_log,
            log_level,
            keys,
            store,
        })
    }
}

/// The default of every option `new EdrlinkClient(options)` accepts from the
/// options schema (client and driver scopes; `device` has none), by its
/// camelCase name, e.g. `{ maxQueueEvents: 100000, opTimeoutSecs: 30, … }`
/// (`null` = unset).
#[wasm_bindgen(js_name = defaultOptions, unchecked_return_type = "ClientDefaults")]
pub fn default_options() -> Result<JsValue, JsValue> {
    let out: JsValue = Object::new().into();
    for spec in OPTIONS
        .iter()
        .filter(|s| matches!(s.scope, Scope::Client | Scope::Driver) && s.name != "device")
    {
        set(
            &out,
            &camel_case(spec.name),
            &js_sys::JSON::parse(spec.default)?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_both_ways() {
        for spec in OPTIONS {
            assert_eq!(snake_case(&camel_case(spec.name)), spec.name);
        }
        assert_eq!(camel_case("max_queue_events"), "maxQueueEvents");
        assert_eq!(snake_case("opTimeoutSecs"), "op_timeout_secs");
        assert!(JS_ONLY
            .iter()
            .all(|k| OPTIONS.iter().all(|s| camel_case(s.name) != *k)));
    }
}
