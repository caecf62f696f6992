//! State that must outlive the JS context: MV3 extension service workers are
//! stopped after ~30 s idle and restarted on the next event, web pages reload.
//!
//! `exportState()` returns one JSON document holding the credential (with a
//! software key: **the installation's private key**; with host keys only the
//! key's handle and public key) and a snapshot of the outbox — queued
//! events, sequence numbers and the in-flight batch with its `batch_id`.
//! `EdrlinkClient.restore(options, state)` rebuilds the core client over that
//! outbox (`PartnerClient::with_outbox` + `Outbox::from_snapshot`), so a batch
//! that was in flight when the context died is re-sent with the *same*
//! `batch_id` and `seq`, which the service deduplicates: exactly once.
//!
//! The host must save the state after every state-changing call and before
//! every request that sends a batch (e.g. in its `fetch` wrapper): the core
//! forms a batch just before sending it, and a batch sent but never saved
//! would be re-formed under a new id after a restart.
//!
//! Also here: `urlDetectionEvent`, the core's detection event for a blocked
//! URL (web protection: browser extensions).

use crate::client::Client;
use crate::{err, now_or, to_js, IntoJs};
use edrlink_core::client::PartnerClient;
use edrlink_core::credential::Credential;
use edrlink_core::encoding::rfc3339;
use edrlink_core::error::ErrorCode;
use edrlink_core::keys::SystemRandom;
use edrlink_core::spool::{Outbox, Snapshot};
use edrlink_core::telemetry::{Action, Detection, Event, Severity};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_PERSIST: &'static str = r#"
/** The batch in flight (`EdrlinkClient.pendingBatch`): re-sent with the same id after a restore. */
export interface PendingBatch {
  batch_id: string;
  seq: number;
  /** Events in the batch. */
  events: number;
}
"#;

/// Format version of the exported state document.
const STATE_VERSION: u32 = 1;
/// Largest state document accepted by `restore` (the outbox is bounded by
/// `maxQueueBytes`; storage quotas bound it further).
const MAX_STATE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateDoc {
    v: u32,
    #[serde(default)]
    credential: Option<serde_json::Value>,
    #[serde(default)]
    outbox: Option<Snapshot>,
}

fn malformed(msg: impl Into<String>) -> JsValue {
    err(ErrorCode::Malformed, msg)
}

#[wasm_bindgen(js_class = EdrlinkClient)]
impl Client {
    /// The client's durable state as a JSON string: `{ v, credential, outbox }`
    /// (credential as `exportCredential()` gives it, or `null`; the outbox
    /// snapshot with queued events and the in-flight batch). With a software key
    /// it **holds the private key**: keep it where only the product can read it
    /// (`chrome.storage.local`); with host keys, only the key's handle.
    /// Save it after every state-changing call and before each batch is sent;
    /// restore with `EdrlinkClient.restore(options, state)`.
    /// Throws `invalid_state` if called re-entrantly while the client is busy.
    #[wasm_bindgen(js_name = exportState)]
    pub fn export_state(&self) -> Result<String, JsValue> {
        let mut pc = self
            .inner
            .pc
            .try_borrow_mut()
            .map_err(|_| err(ErrorCode::InvalidState, "client is busy"))?;
        let snap = pc.outbox_snapshot().js()?;
        let outbox =
            serde_json::to_string(&snap).map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
        let cred = pc.credential().map(|c| c.to_json());
        let cred = cred.as_ref().map_or("null", |c| c.as_str());
        Ok(format!(
            "{{\"v\":{STATE_VERSION},\"credential\":{cred},\"outbox\":{outbox}}}"
        ))
    }

    /// A client rebuilt from `exportState()` output: same options as the
    /// constructor, the credential and the outbox (queued events, sequence
    /// numbers, the in-flight batch with its id) taken from `state`. The next
    /// operation handshakes again and re-sends the in-flight batch first.
    /// Throws `malformed` when `state` does not parse (nothing is lost: the
    /// caller still holds the string), plus the constructor's errors.
    pub fn restore(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions")] options: JsValue,
        state: &str,
    ) -> Result<Client, JsValue> {
        let client = Client::new(options)?;
        if state.len() > MAX_STATE_BYTES {
            return Err(malformed("state document is too large"));
        }
        let doc: StateDoc = serde_json::from_str(state)
            .map_err(|e| malformed(format!("state is not an exportState() document: {e}")))?;
        if doc.v != STATE_VERSION {
            return Err(malformed(format!(
                "state version {} is not supported (expected {STATE_VERSION})",
                doc.v
            )));
        }
        let credential = match doc.credential.filter(|c| !c.is_null()) {
            Some(c) => Some(Credential::from_json(&c.to_string()).js()?),
            // No credential in the state: keep the one passed in the options, if any.
            None => client.inner.pc.borrow().credential().cloned(),
        };
        let cfg = client.inner.cfg.clone();
        let outbox =
            Outbox::from_snapshot(doc.outbox.unwrap_or_default(), PartnerClient::limits(&cfg))
                .js()?;
        let mut pc = PartnerClient::with_outbox(cfg, Box::new(SystemRandom), outbox);
        if client.inner.keys.is_some() {
            pc.use_host_keys();
        }
        if let Some(c) = credential {
            crate::client::adopt_credential(&mut pc, c).js()?;
        }
        *client.inner.pc.borrow_mut() = pc;
        Ok(client)
    }

    /// The batch in flight (formed, possibly sent, not yet acknowledged) as
    /// `{ batch_id, seq, events }`, or `null`. A restored client re-sends it first.
    #[wasm_bindgen(getter, js_name = pendingBatch, unchecked_return_type = "PendingBatch | null")]
    pub fn pending_batch(&self) -> Result<JsValue, JsValue> {
        let mut pc = self
            .inner
            .pc
            .try_borrow_mut()
            .map_err(|_| err(ErrorCode::InvalidState, "client is busy"))?;
        let snap = pc.outbox_snapshot().js()?;
        match snap.state.inflight {
            None => Ok(JsValue::NULL),
            Some(b) => {
                let events = snap
                    .records
                    .iter()
                    .filter(|(i, ..)| *i < b.upto && *i >= snap.state.acked_upto)
                    .count();
                to_js(&serde_json::json!({
                    "batch_id": b.batch_id,
                    "seq": b.seq,
                    "events": events,
                }))
            }
        }
    }
}

/// A web-protection detection: the core's detection event with `url` set,
/// action `blocked`, no file (`file_path` and `sha256` empty), `test: false`.
/// `severity` is `"informational" | "low" | "medium" | "high" | "critical"`
/// (default `"high"`). Submit it with `client.submit(...)`.
/// Throws `invalid_argument` for an unknown severity, `malformed` when the
/// event does not validate (e.g. an empty URL or threat name).
#[wasm_bindgen(js_name = urlDetectionEvent, unchecked_return_type = "DetectionEvent")]
pub fn url_detection_event(
    url: &str,
    threat_name: &str,
    #[wasm_bindgen(unchecked_param_type = "Severity")] severity: Option<String>,
    now: Option<f64>,
) -> Result<JsValue, JsValue> {
    let now = now_or(now)?;
    let sev = severity.as_deref().unwrap_or("high");
    let severity: Severity = serde_json::from_value(serde_json::Value::String(sev.to_owned()))
        .map_err(|_| {
            err(
                ErrorCode::InvalidArgument,
                format!("unknown severity {sev:?} (informational, low, medium, high, critical)"),
            )
        })?;
    let e = Event::Detection(Detection {
        time: rfc3339(now),
        threat_name: threat_name.to_owned(),
        file_path: String::new(),
        sha256: String::new(),
        severity,
        action: Action::Blocked,
        test: false,
        url: Some(url.to_owned()),
    });
    let text = serde_json::to_string(&e).map_err(|e| err(ErrorCode::Internal, e.to_string()))?;
    let e = Event::from_json(&text).js()?;
    to_js(&e)
}
