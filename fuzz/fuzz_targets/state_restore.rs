#![no_main]
//! The durable state a browser host keeps (the wasm client's `exportState()`
//! document, `{v, credential, outbox}`, in IndexedDB / chrome.storage) and
//! hands back to `restore` after a restart. This mirrors `restore` in the
//! core's terms: credential, outbox snapshot, a client over them, which then
//! rebuilds and re-sends the in-flight batch. Hostile or corrupted state must
//! be refused with a typed error or restored, never a panic.
use edrlink_core::client::{ClientConfig, PartnerClient};
use edrlink_core::credential::Credential;
use edrlink_core::keys::SystemRandom;
use edrlink_core::spool::{Outbox, Snapshot};
use edrlink_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

#[derive(serde::Deserialize)]
struct StateDoc {
    #[allow(dead_code)]
    v: u32,
    credential: Option<serde_json::Value>,
    outbox: Option<Snapshot>,
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<StateDoc>(data) else {
        return;
    };
    let cfg = ClientConfig::new(edrlink_fuzz::device());
    let Ok(mut outbox) =
        Outbox::from_snapshot(doc.outbox.unwrap_or_default(), PartnerClient::limits(&cfg))
    else {
        return;
    };
    let _ = outbox.snapshot();
    let mut pc = PartnerClient::with_outbox(cfg, Box::new(SystemRandom), outbox);
    if let Some(c) = doc.credential.filter(|c| !c.is_null()) {
        match Credential::from_json(&c.to_string()) {
            Ok(c) => pc.set_credential(c),
            Err(_) => return,
        }
    }
    for _ in 0..4 {
        let Some(req) = pc.poll_request(NOW) else {
            break;
        };
        let resp = edrlink_core::http::HttpResponse {
            status: 503,
            headers: vec![],
            body: vec![],
        };
        pc.handle_response(req.id, &resp, NOW);
    }
    let _ = pc.health(NOW);
    let _ = pc.outbox_snapshot();
});
