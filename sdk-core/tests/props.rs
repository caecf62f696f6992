//! Property tests: round trips, and "no single-byte change of a sealed envelope
//! or token ever verifies to something else".

mod common;

use common::*;
use edrlink_core::encoding::{parse_rfc3339, rfc3339};
use edrlink_core::keys::{Keyset, SigningKey};
use edrlink_core::token::{self, TokenSpec};
use edrlink_core::{downlevel, dsse};
use proptest::prelude::*;

fn signer(seed: [u8; 32]) -> SigningKey {
    SigningKey::from_seed(&seed).unwrap()
}

fn payload_type() -> impl Strategy<Value = String> {
    "[a-z]{1,12}/[a-z0-9.+-]{1,40}"
}

fn spec_strategy() -> impl Strategy<Value = TokenSpec> {
    (
        "[a-z0-9-]{1,20}",
        "[a-z0-9-]{1,20}",
        "[a-z]{2}",
        any::<u32>(),
        1..=token::MAX_LIFETIME,
        1..=u32::MAX,
    )
        .prop_map(
            |(partner, tenant, region, epoch, lifetime, max_uses)| TokenSpec {
                issuer: ISSUER.into(),
                partner_id: partner,
                tenant_id: tenant,
                region,
                service_url: SERVICE_URL.into(),
                epoch: epoch.into(),
                lifetime,
                max_uses,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trip(seed in any::<[u8; 32]>(), t in payload_type(), body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let k = signer(seed);
        let env = dsse::seal(&t, &body, &k).unwrap();
        prop_assert_eq!(dsse::open(&env, &t, &k.verifying_key()).unwrap(), body);
    }

    #[test]
    fn any_single_byte_change_of_an_envelope_never_yields_another_payload(
        seed in any::<[u8; 32]>(), body in proptest::collection::vec(any::<u8>(), 0..256), pos in any::<prop::sample::Index>(), delta in 1u8..=255,
    ) {
        let k = signer(seed);
        let env = dsse::seal("application/x", &body, &k).unwrap();
        let mut bad = env.clone();
        let i = pos.index(bad.len());
        bad[i] = bad[i].wrapping_add(delta);
        if let Ok(p) = dsse::open(&bad, "application/x", &k.verifying_key()) {
            prop_assert_eq!(p, body, "a change at {} verified to another payload", i);
        }
    }

    #[test]
    fn issue_verify_round_trip(seed in any::<[u8; 32]>(), spec in spec_strategy(), now in 0i64..4_000_000_000, skew in -1000i64..1000, label in "[a-z]{1,8}") {
        let k = signer(seed);
        let (tok, claims) = token::issue(&spec, &k, now, &CounterRandom::new(&label)).unwrap();
        let ks = Keyset::from_keys(&[k.verifying_key()]);
        prop_assert_eq!(&token::verify(&tok, &ks, now, skew).unwrap(), &claims);
        prop_assert_eq!(&token::inspect(&tok).unwrap().claims, &claims);
        let clamped = skew.clamp(0, token::MAX_SKEW);
        prop_assert!(token::verify(&tok, &ks, claims.exp + clamped, skew).is_err());
        prop_assert!(token::verify(&tok, &ks, claims.exp + clamped - 1, skew).is_ok());
        prop_assert!(token::verify(&tok, &ks, claims.nbf - clamped - 1, skew).is_err());
    }

    #[test]
    fn any_single_byte_change_of_a_token_never_yields_other_claims(seed in any::<[u8; 32]>(), pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
        let k = signer(seed);
        let spec = TokenSpec { issuer: ISSUER.into(), partner_id: PARTNER.into(), tenant_id: TENANT.into(), region: REGION.into(), service_url: SERVICE_URL.into(), epoch: 1, lifetime: 3600, max_uses: 5 };
        let (tok, claims) = token::issue(&spec, &k, NOW, &CounterRandom::new("p")).unwrap();
        let mut bad = tok.clone().into_bytes();
        let i = pos.index(bad.len());
        bad[i] = bad[i].wrapping_add(delta);
        let Ok(bad) = String::from_utf8(bad) else { return Ok(()) };
        if let Ok(c) = token::verify(&bad, &Keyset::from_keys(&[k.verifying_key()]), NOW, 60) {
            prop_assert_eq!(c, claims, "a change at {} verified to other claims", i);
        }
    }

    #[test]
    fn pae_is_the_spec_formula(t in "[ -~]{0,40}", body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut expect = format!("DSSEv1 {} {} {} ", t.len(), t, body.len()).into_bytes();
        expect.extend_from_slice(&body);
        prop_assert_eq!(dsse::pae(&t, &body), expect);
    }

    #[test]
    fn rfc3339_round_trip(t in -62_135_596_800i64..253_402_300_799) {
        prop_assert_eq!(parse_rfc3339(&rfc3339(t)).unwrap(), t);
    }

    #[test]
    fn shared_key_sign_verify(key in proptest::collection::vec(any::<u8>(), 1..64), body in proptest::collection::vec(any::<u8>(), 0..512), offset in -300i64..=300) {
        let date = rfc3339(NOW);
        let auth = downlevel::authorization("ws-p", &key, "POST", "/v1/downlevel/ingest", "application/json", &date, &body);
        prop_assert!(downlevel::verify(&auth, &key, "POST", "/v1/downlevel/ingest", "application/json", &date, &body, NOW + offset).is_ok());
        let mut other = body.clone();
        other.push(0);
        prop_assert!(downlevel::verify(&auth, &key, "POST", "/v1/downlevel/ingest", "application/json", &date, &other, NOW).is_err());
    }
}
