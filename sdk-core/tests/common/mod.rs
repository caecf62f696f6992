//! Helpers shared by the integration tests: deterministic randomness, hex,
//! fixed seeds and times, an in-process service world and a client driver.
#![allow(dead_code)]

use edrlink_core::client::PartnerClient;
use edrlink_core::encoding::{sha256, UnixSeconds};
use edrlink_core::http::{HttpRequest, HttpResponse};
use edrlink_core::keys::{RandomSource, SigningKey};
use edrlink_core::memory_store::MemoryStore;
use edrlink_core::policy::Policy;
use edrlink_core::redeem::DeviceFacts;
use edrlink_core::service::{Integration, RateLimit, ServiceConfig, ServiceRole};
use edrlink_core::Result;
use std::sync::atomic::{AtomicU64, Ordering};

/// 2026-11-23T12:00:00Z.
pub const NOW: UnixSeconds = 1_795_435_200;
pub const TENANT: &str = "tenant-1";
pub const PARTNER: &str = "acme-av";
pub const REGION: &str = "eu";
pub const ISSUER: &str = "https://edr.example.test";
pub const SERVICE_URL: &str = "https://edr.example.test";

/// Counter-based random source (tests/vectors/README.md, "Deterministic randomness"):
/// block k is SHA-256(label || k as u64 big-endian); each fill takes fresh blocks.
pub struct CounterRandom {
    label: String,
    k: AtomicU64,
}

impl CounterRandom {
    pub fn new(label: &str) -> Self {
        CounterRandom {
            label: label.to_owned(),
            k: AtomicU64::new(0),
        }
    }
    pub fn boxed(label: &str) -> Box<Self> {
        Box::new(Self::new(label))
    }
}

impl RandomSource for CounterRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        for chunk in dest.chunks_mut(32) {
            let k = self.k.fetch_add(1, Ordering::Relaxed);
            let mut input = self.label.as_bytes().to_vec();
            input.extend_from_slice(&k.to_be_bytes());
            let block = sha256(&input);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// A fixed seed: SHA-256 of a label.
pub fn seed(label: &str) -> [u8; 32] {
    sha256(label.as_bytes())
}

pub fn key(label: &str) -> SigningKey {
    SigningKey::from_seed(&seed(label)).unwrap()
}

pub fn hex(b: &[u8]) -> String {
    edrlink_core::encoding::hex(b)
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() & 1, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn device(id: &str) -> DeviceFacts {
    DeviceFacts {
        device_id: id.into(),
        hostname: format!("host-{id}"),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "Acme AV".into(),
        product_version: "1.0".into(),
    }
}

/// Service configuration used everywhere unless a test says otherwise.
pub fn service_config(seed_label: &str) -> ServiceConfig {
    ServiceConfig {
        issuer: ISSUER.into(),
        region: REGION.into(),
        service_url: SERVICE_URL.into(),
        keys: vec![key(seed_label)],
        policy: Policy::default(),
        rate_limit: RateLimit::default(),
        session_lifetime: 3600,
    }
}

/// A service role plus a store with one tenant and one enabled integration (epoch 1).
pub struct World {
    pub svc: ServiceRole,
    pub store: MemoryStore,
}

impl World {
    pub fn new() -> Self {
        Self::with_config(service_config("service"))
    }

    pub fn with_config(cfg: ServiceConfig) -> Self {
        let svc = ServiceRole::new(cfg, CounterRandom::boxed("service")).unwrap();
        let mut store = MemoryStore::default();
        store.tenants.insert(TENANT.into(), REGION.into());
        store.integrations.insert(
            (TENANT.into(), PARTNER.into()),
            Integration {
                tenant_id: TENANT.into(),
                partner_id: PARTNER.into(),
                enabled: true,
                epoch: 1,
            },
        );
        World { svc, store }
    }

    /// Issues a token through the service role (which stores its record, as the portal does).
    pub fn token(&mut self, lifetime: i64, max_uses: u32, now: UnixSeconds) -> String {
        let (tok, _) = self
            .svc
            .issue_token(&mut self.store, TENANT, PARTNER, lifetime, max_uses, now)
            .unwrap();
        tok
    }

    /// Toggles the integration through the service role: off bumps the epoch.
    pub fn set_enabled(&mut self, enabled: bool) {
        self.svc
            .set_integration(&mut self.store, TENANT, PARTNER, enabled, 0)
            .unwrap();
    }

    pub fn epoch(&self) -> u64 {
        self.store.integrations[&(TENANT.to_owned(), PARTNER.to_owned())].epoch
    }

    /// Sends a request to the service role (path taken from the URL).
    pub fn handle(&mut self, req: &HttpRequest, now: UnixSeconds) -> HttpResponse {
        let path = match req.url.find("://") {
            Some(i) => {
                let rest = &req.url[i + 3..];
                rest.find('/')
                    .map(|j| rest[j..].to_owned())
                    .unwrap_or_else(|| "/".into())
            }
            None => req.url.clone(),
        };
        let r = HttpRequest {
            url: path,
            ..req.clone()
        };
        self.svc.handle(&mut self.store, &r, now)
    }

    /// Drives a client until it has nothing more to do at `now` (at most `max` exchanges).
    /// Returns the responses seen.
    pub fn drive(
        &mut self,
        client: &mut PartnerClient,
        now: UnixSeconds,
        max: usize,
    ) -> Vec<HttpResponse> {
        let mut out = Vec::new();
        for _ in 0..max {
            let Some(req) = client.poll_request(now) else {
                break;
            };
            let resp = self.handle(&req, now);
            client.handle_response(req.id, &resp, now);
            out.push(resp);
        }
        out
    }
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

/// Error code of a problem response.
pub fn problem_code(resp: &HttpResponse) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
    v.get("code")?.as_str().map(str::to_owned)
}
