//! Interoperability with independent implementations: access tokens against the
//! `jsonwebtoken` crate (EdDSA), DSSE envelopes and every JWS vector against
//! `ed25519-dalek` with a PAE written here from the DSSE specification.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::*;
use ed25519_dalek::{Signer, Verifier};
use edrlink_core::keys::Keyset;
use edrlink_core::token::{self, AccessTokenClaims, TokenSpec};
use edrlink_core::{dsse, telemetry, ErrorCode};
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde_json::Value;

fn spec() -> TokenSpec {
    TokenSpec {
        issuer: ISSUER.into(),
        partner_id: PARTNER.into(),
        tenant_id: TENANT.into(),
        region: REGION.into(),
        service_url: SERVICE_URL.into(),
        epoch: 4,
        lifetime: token::DEFAULT_LIFETIME,
        max_uses: 3,
    }
}

fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[token::AUDIENCE]);
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    v.validate_nbf = true;
    v
}

/// RFC 8410 PKCS#8 v1 wrapping of an Ed25519 seed (what jsonwebtoken's EncodingKey wants).
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = unhex("302e020100300506032b657004220420");
    der.extend_from_slice(seed);
    der
}

fn now_real() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn our_tokens_verify_with_jsonwebtoken_raw_key_and_jwk() {
    // jsonwebtoken checks exp/nbf against the real clock, so issue at real time.
    let now = now_real();
    let svc = key("service");
    let (tok, claims) =
        token::issue(&spec(), &svc, now, &CounterRandom::new("jwt-interop")).unwrap();

    let header = decode_header(&tok).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some(token::TYP));
    assert_eq!(header.kid.as_deref(), Some(svc.key_id().as_str()));

    // From the raw 32-byte public key.
    let by_raw = decode::<AccessTokenClaims>(
        &tok,
        &DecodingKey::from_ed_der(svc.verifying_key().as_bytes()),
        &validation(),
    )
    .unwrap();
    assert_eq!(by_raw.claims, claims);

    // From the JWK as published in our keyset.
    let ks: Value =
        serde_json::from_str(&Keyset::from_keys(&[svc.verifying_key()]).to_json()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(ks["keys"][0].clone()).unwrap();
    let by_jwk =
        decode::<AccessTokenClaims>(&tok, &DecodingKey::from_jwk(&jwk).unwrap(), &validation())
            .unwrap();
    assert_eq!(by_jwk.claims, claims);

    // Another key does not verify it; a tampered payload does not either.
    let other = key("service-2");
    assert!(decode::<AccessTokenClaims>(
        &tok,
        &DecodingKey::from_ed_der(other.verifying_key().as_bytes()),
        &validation()
    )
    .is_err());
    let parts: Vec<&str> = tok.split('.').collect();
    let mut c2 = claims.clone();
    c2.max_uses = 1000;
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c2).unwrap()),
        parts[2]
    );
    assert!(decode::<AccessTokenClaims>(
        &forged,
        &DecodingKey::from_ed_der(svc.verifying_key().as_bytes()),
        &validation()
    )
    .is_err());
}

#[test]
fn tokens_signed_by_jsonwebtoken_verify_in_the_core() {
    let now = NOW;
    let svc = key("service");
    let (_, claims) =
        token::issue(&spec(), &svc, now, &CounterRandom::new("jwt-interop-2")).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.typ = Some(token::TYP.into());
    h.kid = Some(svc.key_id());
    let tok = encode(
        &h,
        &claims,
        &EncodingKey::from_ed_der(&pkcs8(&seed("service"))),
    )
    .unwrap();
    let keys = Keyset::from_keys(&[svc.verifying_key()]);
    assert_eq!(token::verify(&tok, &keys, now, 0).unwrap(), claims);
    // Ed25519 is deterministic: same bytes as our own signer (modulo header field order).
    let ours = edrlink_core::jws::sign(token::TYP, &claims, &svc, false).unwrap();
    assert_eq!(tok.split('.').nth(1), ours.split('.').nth(1));

    // jsonwebtoken with HS256 over the public key bytes: refused by algorithm.
    let mut hs = Header::new(Algorithm::HS256);
    hs.typ = Some(token::TYP.into());
    hs.kid = Some(svc.key_id());
    let confused = encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(svc.verifying_key().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        token::verify(&confused, &keys, now, 0).unwrap_err().code(),
        ErrorCode::UnsupportedAlgorithm
    );
}

/// PAE written from the DSSE protocol text, independently of `dsse::pae`.
fn my_pae(t: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!("DSSEv1 {} {} {} ", t.len(), t, body.len()).into_bytes();
    v.extend_from_slice(body);
    v
}

fn dalek_verify_envelope(env: &[u8], pk: &[u8; 32]) -> Result<(String, Vec<u8>), String> {
    let v: Value = serde_json::from_slice(env).map_err(|e| e.to_string())?;
    let t = v["payloadType"].as_str().ok_or("no type")?;
    let body = STANDARD
        .decode(v["payload"].as_str().ok_or("no payload")?)
        .map_err(|e| e.to_string())?;
    let sigs = v["signatures"].as_array().ok_or("no signatures")?;
    let sig = STANDARD
        .decode(sigs[0]["sig"].as_str().ok_or("no sig")?)
        .map_err(|e| e.to_string())?;
    let sig = ed25519_dalek::Signature::from_slice(&sig).map_err(|e| e.to_string())?;
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk).map_err(|e| e.to_string())?;
    vk.verify_strict(&my_pae(t, &body), &sig)
        .map_err(|e| e.to_string())?;
    Ok((t.to_owned(), body))
}

#[test]
fn envelopes_verify_with_ed25519_dalek_and_back() {
    let k = key("endpoint");
    let pk: [u8; 32] = k.verifying_key().as_bytes().try_into().unwrap();
    for (t, body) in [
        ("text/plain", b"hello".to_vec()),
        (telemetry::BATCH_TYPE, br#"{"v":1}"#.to_vec()),
        ("application/octet-stream", (0..=255u8).collect()),
    ] {
        let env = dsse::seal(t, &body, &k).unwrap();
        assert_eq!(
            dalek_verify_envelope(&env, &pk).unwrap(),
            (t.to_owned(), body.clone())
        );
        // keyid is the derived kid.
        let v: Value = serde_json::from_slice(&env).unwrap();
        assert_eq!(v["signatures"][0]["keyid"], k.key_id());
    }
    // An envelope made entirely by dalek + our hand PAE opens in the core.
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed("endpoint"));
    assert_eq!(sk.verifying_key().to_bytes(), pk);
    let body = b"made elsewhere";
    let sig = sk.sign(&my_pae("text/plain", body));
    let env = serde_json::json!({"payload": STANDARD.encode(body), "payloadType": "text/plain", "signatures": [{"keyid": k.key_id(), "sig": STANDARD.encode(sig.to_bytes())}]});
    let opened = dsse::open(env.to_string().as_bytes(), "text/plain", &k.verifying_key()).unwrap();
    assert_eq!(opened, body);
}

fn vectors(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/vectors")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn every_sealed_envelope_vector_verifies_with_dalek() {
    let v = vectors("envelopes.json");
    let mut n = 0;
    for c in v["cases"].as_array().unwrap() {
        if c["kind"] != "envelope_seal" {
            continue;
        }
        let seed: [u8; 32] = unhex(c["input"]["seed_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let pk = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let (t, body) =
            dalek_verify_envelope(c["expect"]["envelope"].as_str().unwrap().as_bytes(), &pk)
                .unwrap();
        assert_eq!(t, c["input"]["payload_type"].as_str().unwrap());
        assert_eq!(hex(&body), c["input"]["payload_hex"].as_str().unwrap());
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn every_jws_vector_verifies_with_dalek() {
    let v = vectors("messages.json");
    let mut n = 0;
    for c in v["cases"].as_array().unwrap() {
        if c["kind"] != "jws_sign" {
            continue;
        }
        let seed: [u8; 32] = unhex(c["input"]["seed_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let jws = c["expect"]["jws"].as_str().unwrap();
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig =
            ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        sk.verifying_key().verify(input.as_bytes(), &sig).unwrap();
        // The header and payload are exactly the documented JSON texts.
        let (h, p) = input.split_once('.').unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.decode(h).unwrap(),
            c["expect"]["header_json"].as_str().unwrap().as_bytes()
        );
        assert_eq!(
            URL_SAFE_NO_PAD.decode(p).unwrap(),
            c["input"]["payload_json"].as_str().unwrap().as_bytes()
        );
        // And the same signature is what dalek produces (Ed25519 is deterministic).
        assert_eq!(sk.sign(input.as_bytes()), sig);
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn issued_token_vectors_verify_with_jsonwebtoken() {
    let v = vectors("tokens.json");
    for c in v["cases"].as_array().unwrap() {
        if c["kind"] != "token_issue" || c["expect"].get("error").is_some() {
            continue;
        }
        let seed: [u8; 32] = unhex(c["input"]["service_seed_hex"].as_str().unwrap())
            .try_into()
            .unwrap();
        let pk = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let mut val = validation();
        // The vectors are pinned in time: check the signature and claims, not the clock.
        val.validate_exp = false;
        val.validate_nbf = false;
        let d = decode::<Value>(
            c["expect"]["token"].as_str().unwrap(),
            &DecodingKey::from_ed_der(&pk),
            &val,
        )
        .unwrap();
        assert_eq!(d.claims, c["expect"]["claims"]);
    }
}
