//! Deterministic hostile-input tests (the CI counterpart of `fuzz/`): random
//! bytes and single-byte mutations of valid messages go through every public
//! parser and the service role; none may panic, and a mutated signed message
//! must never verify as something else.

use crate::http::HttpRequest;
use crate::keys::{SigningKey, SystemRandom};
use crate::memory_store::MemoryStore;
use crate::service::{RateLimit, ServiceConfig, ServiceRole};
use crate::*;

/// A deterministic test PRNG (xorshift64), shared by the core's mutation tests.
pub(crate) struct XorShift(pub(crate) u64);
impl XorShift {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// A number below `n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
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

/// Signed messages carrying `i64::MIN`/`i64::MAX` times, checked at extreme
/// clocks: typed refusals (or acceptance), never an overflow panic.
#[test]
fn extreme_times_never_overflow() {
    let key = SigningKey::from_seed(&[6; 32]).unwrap();
    let keys = keys::Keyset::from_keys(&[key.verifying_key()]);
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
    let (_, base) = token::issue(&spec, &key, 1_800_000_000, &SystemRandom).unwrap();
    let extremes = [
        i64::MIN,
        i64::MIN + 1,
        -1,
        0,
        1_800_000_000,
        i64::MAX - 1,
        i64::MAX,
    ];
    for &iat in &extremes {
        for &nbf in &extremes {
            for &exp in &extremes {
                let mut c = base.clone();
                (c.iat, c.nbf, c.exp) = (iat, nbf, exp);
                let t = jws::sign(token::TYP, &c, &key, false).unwrap();
                crate::fuzzing::parse_everything(t.as_bytes());
                if let Ok(info) = token::inspect(&t) {
                    for &now in &extremes {
                        let _ = info.status(now);
                        let _ = info.seconds_left(now);
                    }
                }
                for &now in &extremes {
                    for skew in [i64::MIN, 0, 60, i64::MAX] {
                        let _ = token::verify(&t, &keys, now, skew);
                    }
                }
            }
        }
        for &now in &extremes {
            let _ = fresh::check_fresh(iat, now);
        }
    }
    // A keyset whose not_after sits at the extremes.
    for &na in &extremes {
        let mut ks = keys.clone();
        ks.keys[0].not_after = Some(na);
        for &now in &extremes {
            let _ = ks.find(&key.key_id(), now);
            let _ = keys.merge_signed(&ks, &key.key_id(), now);
        }
    }
    // Down-level requests dated at the ends of the calendar: stale, typed.
    let role = role();
    for date in [
        "9999-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
    ] {
        for path in ["/v1/downlevel/register", "/v1/downlevel/ingest"] {
            let req = HttpRequest {
                id: 0,
                method: "POST".into(),
                url: path.into(),
                headers: vec![
                    ("authorization".into(), "SharedKey ws:AAAA".into()),
                    ("x-edrlink-date".into(), date.into()),
                ],
                body: b"{}".to_vec(),
            };
            let resp = role.handle(&mut MemoryStore::default(), &req, 1_800_000_000);
            assert!(
                (400..500).contains(&resp.status),
                "{path} {date}: {}",
                resp.status
            );
        }
    }
}

/// P-256 material mutated byte by byte: DER signatures (what host signers
/// hand back), EC JWKs and ES256 messages never panic, and a mutated
/// signature or message never verifies.
#[test]
fn mutated_p256_material_never_verifies() {
    let key = crate::signer::EcdsaP256Key::generate().unwrap();
    let public = keys::Signer::public_key(&key);
    let msg = b"DSSEv1 10 text/plain 11 hello world";
    let raw: [u8; 64] = keys::Signer::sign_message(&key, msg)
        .unwrap()
        .try_into()
        .unwrap();
    let der = keys::ecdsa_p256_raw_to_der(&raw);
    public.verify_dsse(msg, &der).unwrap();
    let jwk = serde_json::to_vec(&public.to_jwk()).unwrap();
    let jws = jws::sign(
        "edrlink-hello+jwt",
        &serde_json::json!({"a": 1}),
        &key,
        false,
    )
    .unwrap();
    let mut r = XorShift(0x0bad_cafe_f00d_1234);
    for seed in [der.clone(), jwk, jws.clone().into_bytes()] {
        for _ in 0..400 {
            let mut m = seed.clone();
            let i = (r.next() as usize) % m.len();
            m[i] ^= (r.next() as u8) | 1;
            crate::fuzzing::parse_everything(&m);
            if seed == der {
                assert!(public.verify_dsse(msg, &m).is_err(), "mutated DER verified");
                assert!(
                    crate::signer::accept_host_signature(&public, msg, &m).is_err(),
                    "a mutated host signature was accepted"
                );
            }
            if seed == jws.as_bytes() {
                if let Ok(text) = core::str::from_utf8(&m) {
                    if let Ok(u) = jws::parse(text, "edrlink-hello+jwt") {
                        assert!(u.verify_with(&public).is_err(), "mutated JWS verified");
                    }
                }
            }
        }
    }
}
