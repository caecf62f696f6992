//! Credential rotation, acquire-then-replace: the request is signed by the
//! current key and carries the new public key plus a proof made with the new
//! key; the endpoint switches keys only after the service's signed answer.

use crate::credential::Credential;
use crate::encoding::{b64url, b64url_decode, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::fresh::{check_fresh, check_nonce};
use crate::jws;
use crate::keys::{random_id, Jwk, RandomSource, Signer, VerifyingKey};
use crate::signer::InstallationKey;
use serde::{Deserialize, Serialize};

/// JOSE `typ` of the request.
pub const REQUEST_TYP: &str = "edrlink-rotate+jwt";
/// JOSE `typ` of the answer.
pub const RESPONSE_TYP: &str = "edrlink-rotate-resp+jwt";

/// Claims of a rotation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateClaims {
    /// Installation id.
    pub installation_id: String,
    /// Nonce.
    pub nonce: String,
    /// Endpoint time.
    pub iat: UnixSeconds,
    /// The new public key.
    pub new_jwk: Jwk,
    /// base64url Ed25519 signature by the new key over [`proof_input`].
    pub new_key_proof: String,
}

/// Claims of the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateResponse {
    /// Installation id.
    pub installation_id: String,
    /// Echo of the nonce.
    pub nonce: String,
    /// Service time.
    pub iat: UnixSeconds,
    /// Key id now registered.
    pub key_id: String,
    /// New credential expiry.
    pub credential_exp: UnixSeconds,
}

/// What the new key signs: `edrlink-rotate-v1:<installation_id>:<nonce>`.
pub fn proof_input(installation_id: &str, nonce: &str) -> Vec<u8> {
    format!("edrlink-rotate-v1:{installation_id}:{nonce}").into_bytes()
}

/// Partner role: builds a request for `new_key`. Returns (body, nonce).
pub fn request(
    cred: &Credential,
    new_key: &dyn Signer,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(String, String)> {
    let p = Unsigned::new(cred, &new_key.public_key(), now, rng)?;
    let nonce = p.nonce().to_owned();
    let proof = new_key.sign_message(&p.proof_message())?;
    Ok((p.with_proof(&proof)?.sign(cred.signing_key()?)?, nonce))
}

/// A rotation request in two signing steps, for keys the host keeps: the
/// new key signs [`proof_message`](Self::proof_message), then the current
/// key signs the JWS that carries that proof.
#[derive(Debug, Clone)]
pub struct Unsigned {
    claims: RotateClaims,
    current: VerifyingKey,
}

impl Unsigned {
    /// Starts a request registering `new_key` (fresh nonce, `iat` = `now`).
    pub fn new(
        cred: &Credential,
        new_key: &VerifyingKey,
        now: UnixSeconds,
        rng: &dyn RandomSource,
    ) -> Result<Self> {
        Ok(Unsigned {
            claims: RotateClaims {
                installation_id: cred.installation_id.clone(),
                nonce: random_id(rng, 16)?,
                iat: now,
                new_jwk: new_key.to_jwk(),
                new_key_proof: String::new(),
            },
            current: cred.public_key()?,
        })
    }

    /// The request's nonce.
    pub fn nonce(&self) -> &str {
        &self.claims.nonce
    }

    /// What the new key signs ([`proof_input`]).
    pub fn proof_message(&self) -> Vec<u8> {
        proof_input(&self.claims.installation_id, &self.claims.nonce)
    }

    /// The JWS for the current key to sign, carrying `proof` (JOSE form).
    pub fn with_proof(mut self, proof: &[u8]) -> Result<jws::Unsigned> {
        self.claims.new_key_proof = b64url(proof);
        jws::prepare(REQUEST_TYP, &self.claims, &self.current, false)
    }
}

/// Service role: verifies with the current key and the proof of the new key.
pub fn verify_request(
    body: &str,
    current: &VerifyingKey,
    now: UnixSeconds,
) -> Result<(RotateClaims, VerifyingKey)> {
    let u = jws::parse(body, REQUEST_TYP)?;
    u.verify_with(current)?;
    let c: RotateClaims = u.claims()?;
    check_nonce(&c.nonce)?;
    check_fresh(c.iat, now)?;
    let new_key = c.new_jwk.to_key()?;
    new_key.verify(
        &proof_input(&c.installation_id, &c.nonce),
        &b64url_decode(&c.new_key_proof)?,
    )?;
    Ok((c, new_key))
}

/// Service role: reads the installation id without trust.
pub fn peek_installation(body: &str) -> Result<String> {
    Ok(jws::parse(body, REQUEST_TYP)?
        .claims::<RotateClaims>()?
        .installation_id)
}

/// Partner role: accepts the answer and swaps the key into the credential.
///
/// `now` is the endpoint clock plus the measured offset (service keys'
/// `not_after` is judged against it, not against the answer's `iat`).
pub fn accept(
    cred: &mut Credential,
    new_key: InstallationKey,
    body: &str,
    nonce: &str,
    now: UnixSeconds,
) -> Result<()> {
    let u = jws::parse(body, RESPONSE_TYP)?;
    let r: RotateResponse = u.claims()?;
    u.verify_with_keyset(&cred.service_keys, now)?;
    if r.nonce != nonce || r.installation_id != cred.installation_id || r.key_id != new_key.key_id()
    {
        return Err(Error::new(
            ErrorCode::BadSignature,
            "rotation answer does not match our request",
        ));
    }
    cred.auth = crate::credential::CredentialAuth::Key(new_key);
    cred.issued_at = r.iat;
    cred.expires_at = r.credential_exp;
    Ok(())
}
