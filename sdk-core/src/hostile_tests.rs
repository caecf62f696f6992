//! Deterministic hostile-input tests (the CI counterpart of `fuzz/`): random
//! bytes and single-byte mutations of valid messages go through every public
//! parser and the service role; none may panic, and a mutated signed message
//! must never verify as something else.

use crate::http::HttpRequest;
use crate::keys::{SigningKey, SystemRandom};
use crate::memory_store::MemoryStore;
use crate::service::{RateLimit, ServiceConfig, ServiceRole};
use crate::*;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn role() -> ServiceRole {
    ServiceRole::new(
        ServiceConfig {
            issuer: "t".into(),
            region: "eu".into(),
            service_url: "http://t".into(),
            keys: vec![SigningKey::from_seed(&[1; 32]).unwrap()],
            policy: Default::default(),
            rate_limit: RateLimit::default(),
            session_lifetime: 3600,
        },
        Box::new(SystemRandom),
    )
    .unwrap()
}

#[test]
fn random_bytes_never_panic() {
    let mut r = XorShift(0x1234_5678_9abc_def1);
    let role = role();
    let paths = [
        "/v1/redeem",
        "/v1/handshake",
        "/v1/ingest",
        "/v1/offboard",
        "/v1/rotate",
        "/v1/downlevel/register",
        "/v1/downlevel/ingest",
        "/nope",
    ];
    for i in 0..3000 {
        let len = (r.next() % 600) as usize;
        let data = r.bytes(len);
        crate::fuzzing::parse_everything(&data);
        let req = HttpRequest {
            id: 0,
            method: "POST".into(),
            url: paths[i % paths.len()].into(),
            headers: vec![
                ("authorization".into(), "SharedKey ws:AAAA".into()),
                ("x-edrlink-date".into(), "2026-11-23T12:00:00Z".into()),
            ],
            body: data,
        };
        let resp = role.handle(&mut MemoryStore::default(), &req, 1_800_000_000);
        assert!(
            (400..500).contains(&resp.status),
            "garbage answered {}",
            resp.status
        );
    }
}

#[test]
fn mutated_token_and_envelope_never_verify() {
    let key = SigningKey::from_seed(&[5; 32]).unwrap();
    let spec = token::TokenSpec {
        issuer: "i".into(),
        partner_id: "p".into(),
        tenant_id: "t".into(),
        region: "eu".into(),
        service_url: "https://x".into(),
        epoch: 1,
        lifetime: 3600,
        max_uses: 1,
    };
    let (tok, _) = token::issue(&spec, &key, 1_800_000_000, &SystemRandom).unwrap();
    let keys = keys::Keyset::from_keys(&[key.verifying_key()]);
    let env = dsse::seal("application/x", b"payload", &key).unwrap();
    let mut r = XorShift(42);
    for _ in 0..2000 {
        let mut t = tok.clone().into_bytes();
        let i = (r.next() as usize) % t.len();
        let b = r.next() as u8;
        if t[i] == b {
            continue;
        }
        t[i] = b;
        if let Ok(s) = String::from_utf8(t) {
            // base64url has a few non-canonical trailing bits; anything that still
            // verifies must decode to exactly the original claims.
            if let Ok(c) = token::verify(&s, &keys, 1_800_000_000, 0) {
                assert_eq!(c, token::verify(&tok, &keys, 1_800_000_000, 0).unwrap());
            }
        }
        let mut e = env.clone();
        let i = (r.next() as usize) % e.len();
        e[i] ^= 1 + (r.next() as u8 % 255);
        if let Ok(p) = dsse::open(&e, "application/x", &key.verifying_key()) {
            assert_eq!(p, b"payload");
        }
    }
}
