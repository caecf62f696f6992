//! Keys (ring): Ed25519 signing keys, Ed25519 and ECDSA P-256 public keys,
//! key ids, JWKs (RFC 8037 OKP, RFC 7518 EC) and service keysets, plus the
//! randomness source trait.
//!
//! Device keys may be Ed25519 or P-256 (the Secure Enclave, most TPMs and
//! older Android Keystores only offer P-256); token and service keys are
//! always Ed25519.
//!
//! Private key material is held so that it is zeroized on drop and never shown
//! by `Debug`.

use crate::encoding::{b64url, b64url_decode, sha256, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::strict_json::{self, put};
use core::mem::ManuallyDrop;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
#[cfg(feature = "p256")]
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Randomness comes in through this trait so the core stays sans-IO and tests
/// can be deterministic.
pub trait RandomSource {
    /// Fills `dest` with cryptographically secure random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<()>;
}

/// The operating system's CSPRNG (via ring; `crypto.getRandomValues` in wasm).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<()> {
        use ring::rand::SecureRandom;
        ring::rand::SystemRandom::new()
            .fill(dest)
            .map_err(|_| Error::new(ErrorCode::Internal, "system randomness unavailable"))
    }
}

/// `n` random bytes as base64url: used for nonces, ids and `jti`s.
pub fn random_id(rng: &dyn RandomSource, n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    rng.fill(&mut buf)?;
    Ok(b64url(&buf))
}

/// Key id: base64url of the first 16 bytes of SHA-256 over the public key's
/// bytes (the raw 32 bytes for Ed25519, the 65-byte uncompressed SEC1 point
/// for P-256). Derived, so both sides agree without a registry.
pub fn key_id(public_key: &[u8]) -> String {
    b64url(&sha256(public_key)[..16])
}

/// The signature algorithm of a device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8032); JWS `EdDSA`. The default for software keys.
    Ed25519,
    /// ECDSA over P-256 with SHA-256; JWS `ES256`.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The name used in options, credentials and bindings.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        }
    }

    /// The JWS `alg` (RFC 8037 / RFC 7518).
    pub fn jws_alg(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "EdDSA",
            KeyAlgorithm::EcdsaP256 => "ES256",
        }
    }

    /// The algorithm a JWS `alg` names; anything else is `unsupported_algorithm`.
    pub fn from_jws_alg(alg: &str) -> Result<Self> {
        match alg {
            "EdDSA" => Ok(KeyAlgorithm::Ed25519),
            "ES256" => Ok(KeyAlgorithm::EcdsaP256),
            _ => Err(Error::new(
                ErrorCode::UnsupportedAlgorithm,
                "JWS alg must be EdDSA or ES256",
            )),
        }
    }
}

/// Something that signs with a device key in the JOSE signature form
/// (Ed25519: 64 bytes; P-256: `r‖s`, 64 bytes). The protocol functions take
/// this, so a software key and a key the host keeps are used the same way.
pub trait Signer {
    /// The public half.
    fn public_key(&self) -> VerifyingKey;
    /// Signs `msg`.
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>>;
}

impl Signer for SigningKey {
    fn public_key(&self) -> VerifyingKey {
        self.public
    }
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>> {
        Ok(self.sign(msg).to_vec())
    }
}

/// An Ed25519 private key. Zeroized on drop, redacted in `Debug`.
pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    // ring's key pair holds the expanded private scalar but does not zeroize it;
    // we keep it (re-deriving it on every signature would double the cost) and
    // wipe its bytes ourselves in `Drop`.
    pair: ManuallyDrop<Ed25519KeyPair>,
    public: VerifyingKey,
}

impl SigningKey {
    /// Builds a key from a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| Error::new(ErrorCode::InvalidArgument, "invalid Ed25519 seed"))?;
        let mut pk = [0u8; 32];
        pk.copy_from_slice(pair.public_key().as_ref());
        Ok(SigningKey {
            seed: Zeroizing::new(*seed),
            pair: ManuallyDrop::new(pair),
            public: VerifyingKey::Ed25519(pk),
        })
    }

    /// Builds a key from a seed of any length: anything but 32 bytes is
    /// `invalid_argument`, as [`SigningKey::from_seed`] reports a seed it
    /// cannot use, so every binding reports a bad seed with this one code.
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self> {
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(seed.try_into().map_err(|_| {
            Error::new(
                ErrorCode::InvalidArgument,
                "Ed25519 private key seed must be 32 bytes",
            )
        })?);
        SigningKey::from_seed(&seed)
    }

    /// Generates a fresh key from `rng`.
    pub fn generate(rng: &dyn RandomSource) -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut seed[..])?;
        SigningKey::from_seed(&seed)
    }

    /// The seed, for serializing a credential. Handle with care.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// The derived key id.
    pub fn key_id(&self) -> String {
        self.public.key_id()
    }

    /// Signs `msg` (pure Ed25519, RFC 8032).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(msg);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        SigningKey::from_seed(&self.seed).expect("seed was valid when first parsed")
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        // SAFETY: `Ed25519KeyPair` is plain inline data (byte arrays and limbs,
        // no pointers, no Drop impl); it sits in a ManuallyDrop and is never
        // used again after this, so overwriting its bytes is sound.
        unsafe {
            let p = &mut *self.pair as *mut Ed25519KeyPair as *mut u8;
            core::slice::from_raw_parts_mut(p, core::mem::size_of::<Ed25519KeyPair>()).zeroize();
        }
    }
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.key_id())
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// A device, token or service public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum VerifyingKey {
    /// Ed25519, the raw 32 bytes.
    Ed25519([u8; 32]),
    /// ECDSA P-256, the uncompressed SEC1 point `04‖x‖y` (65 bytes). Whether
    /// the point is on the curve is checked by every verification (an
    /// off-curve point verifies nothing).
    P256([u8; 65]),
}

impl VerifyingKey {
    /// From raw bytes: 32 bytes are an Ed25519 key, 65 bytes starting with
    /// `04` a P-256 point; anything else is `malformed`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        match bytes.len() {
            32 => Ok(VerifyingKey::Ed25519(bytes.try_into().expect("32 bytes"))),
            65 if bytes[0] == 4 => Ok(VerifyingKey::P256(bytes.try_into().expect("65 bytes"))),
            _ => Err(Error::malformed(
                "public key must be 32 bytes (Ed25519) or a 65-byte uncompressed P-256 point",
            )),
        }
    }

    /// The key's bytes (see [`VerifyingKey::from_bytes`]).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            VerifyingKey::Ed25519(b) => b,
            VerifyingKey::P256(b) => b,
        }
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            VerifyingKey::Ed25519(_) => KeyAlgorithm::Ed25519,
            VerifyingKey::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The derived key id.
    pub fn key_id(&self) -> String {
        key_id(self.as_bytes())
    }

    /// Verifies a signature in the JOSE form (Ed25519: 64 bytes; P-256:
    /// `r‖s`, 64 bytes — RFC 7518 §3.4), as JWS and the rotation proof use.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        let ok = match self {
            VerifyingKey::Ed25519(k) => UnparsedPublicKey::new(&ED25519, k).verify(msg, sig),
            VerifyingKey::P256(k) => p256_verify(P256Sig::Fixed, k, msg, sig)?,
        };
        ok.map_err(|_| Error::new(ErrorCode::BadSignature, "signature does not verify"))
    }

    /// Verifies a DSSE signature: Ed25519 as in [`verify`](Self::verify);
    /// P-256 DER-encoded (X9.62 `ECDSA-Sig-Value`), the form DSSE tools
    /// (securesystemslib, sigstore, `cryptography`) produce and expect.
    pub fn verify_dsse(&self, msg: &[u8], sig: &[u8]) -> Result<()> {
        match self {
            VerifyingKey::Ed25519(_) => self.verify(msg, sig),
            VerifyingKey::P256(k) => p256_verify(P256Sig::Der, k, msg, sig)?
                .map_err(|_| Error::new(ErrorCode::BadSignature, "signature does not verify")),
        }
    }

    /// As a JWK: RFC 8037 `OKP`/`Ed25519`, or RFC 7518 `EC`/`P-256`.
    pub fn to_jwk(&self) -> Jwk {
        let (kty, crv, x, y) = match self {
            VerifyingKey::Ed25519(k) => ("OKP", "Ed25519", b64url(k), None),
            VerifyingKey::P256(k) => ("EC", "P-256", b64url(&k[1..33]), Some(b64url(&k[33..]))),
        };
        Jwk {
            kty: kty.into(),
            crv: crv.into(),
            x,
            y,
            kid: Some(self.key_id()),
            alg: Some(self.algorithm().jws_alg().into()),
            not_after: None,
        }
    }
}

impl core::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "VerifyingKey({} {})",
            self.algorithm().name(),
            self.key_id()
        )
    }
}

/// How a P-256 signature is encoded: JOSE `r‖s` or DER (X9.62).
#[derive(Clone, Copy)]
enum P256Sig {
    Fixed,
    Der,
}

/// One P-256 verification: `Ok(ring's answer)`, or `unsupported_algorithm`
/// in a build without the `p256` feature (the wasm lite module), which then
/// holds none of ring's P-256 code.
#[cfg(feature = "p256")]
fn p256_verify(
    form: P256Sig,
    key: &[u8; 65],
    msg: &[u8],
    sig: &[u8],
) -> Result<core::result::Result<(), ring::error::Unspecified>> {
    let alg = match form {
        P256Sig::Fixed => &ECDSA_P256_SHA256_FIXED,
        P256Sig::Der => &ECDSA_P256_SHA256_ASN1,
    };
    Ok(UnparsedPublicKey::new(alg, key).verify(msg, sig))
}

#[cfg(not(feature = "p256"))]
fn p256_verify(
    _: P256Sig,
    _: &[u8; 65],
    _: &[u8],
    _: &[u8],
) -> Result<core::result::Result<(), ring::error::Unspecified>> {
    Err(Error::new(
        ErrorCode::UnsupportedAlgorithm,
        "this build does not verify P-256 signatures (the wasm lite module; the full client does)",
    ))
}

/// The JOSE form (`r‖s`, 64 bytes) of an ECDSA P-256 signature given either
/// DER-encoded (what Java, Apple, OpenSSL and `cryptography` return) or
/// already raw (what WebCrypto returns). Strict DER: a 64-byte input that
/// is not a complete DER signature is taken as raw; the result is verified
/// by the caller anyway, so a misreading cannot pass.
pub fn ecdsa_p256_to_raw(sig: &[u8]) -> Result<[u8; 64]> {
    if let Some(raw) = der_to_raw(sig) {
        return Ok(raw);
    }
    sig.try_into()
        .map_err(|_| Error::malformed("ECDSA P-256 signature is neither DER nor 64 bytes r‖s"))
}

fn der_to_raw(sig: &[u8]) -> Option<[u8; 64]> {
    // SEQUENCE { INTEGER r, INTEGER s }, short-form lengths (at most 72 bytes).
    let (&tag, rest) = sig.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || len as usize != body.len() || len >= 0x80 {
        return None;
    }
    let mut out = [0u8; 64];
    let mut body = body;
    for half in out.chunks_mut(32) {
        let (&t, rest) = body.split_first()?;
        let (&l, rest) = rest.split_first()?;
        let l = l as usize;
        if t != 0x02 || l == 0 || l > 33 || rest.len() < l {
            return None;
        }
        let (int, rest) = rest.split_at(l);
        // Minimal encoding: a leading zero only before a high bit.
        if int.len() > 1 && int[0] == 0 && int[1] & 0x80 == 0 {
            return None;
        }
        if int[0] & 0x80 != 0 {
            return None;
        }
        let int = if int.len() == 33 {
            if int[0] != 0 {
                return None;
            }
            &int[1..]
        } else {
            int
        };
        half[32 - int.len()..].copy_from_slice(int);
        body = rest;
    }
    body.is_empty().then_some(out)
}

/// DER-encodes a raw `r‖s` P-256 signature (the DSSE form).
pub fn ecdsa_p256_raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1);
        let v = &v[start..];
        let pad = v[0] & 0x80 != 0;
        out.push(0x02);
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
    }
    let mut body = Vec::with_capacity(72);
    int(&mut body, &raw[..32]);
    int(&mut body, &raw[32..]);
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(0x30);
    out.push(body.len() as u8);
    out.extend_from_slice(&body);
    out
}

/// A public key as a JWK (RFC 7517: RFC 8037 `OKP`/`Ed25519`, or RFC 7518
/// `EC`/`P-256` for device keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// base64url public key (Ed25519) or x coordinate (P-256).
    pub x: String,
    /// base64url y coordinate (P-256 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Key id (derived; checked on parse when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `EdDSA` / `ES256` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// For service keysets: the key is not trusted after this time (rotation overlap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<UnixSeconds>,
}

impl Jwk {
    /// Reads a JWK as serde would (unknown members skipped), without serde_json.
    pub(crate) fn read(r: &mut strict_json::Reader<'_>) -> strict_json::Res<Jwk> {
        let (mut kty, mut crv, mut x) = (None, None, None);
        let (mut y, mut kid, mut alg, mut not_after) = (None, None, None, None);
        r.object(false, |r, k| {
            match k {
                "kty" => put(&mut kty, r.string()?)?,
                "crv" => put(&mut crv, r.string()?)?,
                "x" => put(&mut x, r.string()?)?,
                "y" => put(&mut y, r.opt_string()?)?,
                "kid" => put(&mut kid, r.opt_string()?)?,
                "alg" => put(&mut alg, r.opt_string()?)?,
                "not_after" => put(&mut not_after, r.opt_i64()?)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Jwk {
            kty: kty.ok_or(())?,
            crv: crv.ok_or(())?,
            x: x.ok_or(())?,
            y: y.flatten(),
            kid: kid.flatten(),
            alg: alg.flatten(),
            not_after: not_after.flatten(),
        })
    }

    /// Validates and converts to a [`VerifyingKey`] (Ed25519 or P-256).
    pub fn to_key(&self) -> Result<VerifyingKey> {
        let key = match (self.kty.as_str(), self.crv.as_str(), &self.y) {
            ("OKP", "Ed25519", None) => {
                let x = b64url_decode(&self.x)?;
                if x.len() != 32 {
                    return Err(Error::malformed("Ed25519 public key must be 32 bytes"));
                }
                VerifyingKey::from_bytes(&x)?
            }
            ("EC", "P-256", Some(y)) => {
                let (x, y) = (b64url_decode(&self.x)?, b64url_decode(y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(Error::malformed("P-256 coordinates must be 32 bytes each"));
                }
                let mut p = [0u8; 65];
                p[0] = 4;
                p[1..33].copy_from_slice(&x);
                p[33..].copy_from_slice(&y);
                VerifyingKey::P256(p)
            }
            ("OKP", "Ed25519", Some(_)) | ("EC", "P-256", None) => {
                return Err(Error::malformed("JWK coordinates do not fit its curve"))
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::UnsupportedAlgorithm,
                    "only OKP/Ed25519 and EC/P-256 keys are accepted",
                ))
            }
        };
        if let Some(alg) = &self.alg {
            if *alg != key.algorithm().jws_alg() {
                return Err(Error::new(
                    ErrorCode::UnsupportedAlgorithm,
                    "JWK alg does not match its key type",
                ));
            }
        }
        if let Some(kid) = &self.kid {
            if *kid != key.key_id() {
                return Err(Error::malformed("JWK kid does not match its key"));
            }
        }
        Ok(key)
    }

    /// Like [`to_key`](Self::to_key), for token and service keys, which are
    /// always Ed25519: a P-256 key in a service keyset is `unsupported_algorithm`.
    pub fn to_service_key(&self) -> Result<VerifyingKey> {
        let key = self.to_key()?;
        if key.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(Error::new(
                ErrorCode::UnsupportedAlgorithm,
                "service and token keys are Ed25519",
            ));
        }
        Ok(key)
    }
}

/// Most service keys an endpoint pins at once: a service rotating with overlap
/// needs two or three; the cap bounds what any answer can make us keep.
pub const MAX_PINNED_KEYS: usize = 8;

/// The service's signing keys (a JWKS), so service keys can rotate with overlap
/// without re-enrolling the fleet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyset {
    /// Keys, current first.
    pub keys: Vec<Jwk>,
}

impl Keyset {
    /// A keyset from public keys (current first).
    pub fn from_keys(keys: &[VerifyingKey]) -> Self {
        Keyset {
            keys: keys.iter().map(|k| k.to_jwk()).collect(),
        }
    }

    /// Finds the key for `kid` that is valid at `now`.
    pub fn find(&self, kid: &str, now: UnixSeconds) -> Result<VerifyingKey> {
        for jwk in &self.keys {
            let key = jwk.to_service_key()?;
            if key.key_id() == kid {
                if jwk.not_after.is_some_and(|t| now > t) {
                    return Err(Error::new(
                        ErrorCode::UnknownKey,
                        "service key is past its not_after",
                    ));
                }
                return Ok(key);
            }
        }
        Err(Error::new(
            ErrorCode::UnknownKey,
            "no pinned key with this kid",
        ))
    }

    /// The overlap rule: what the pinned keyset (`self`) becomes after an
    /// answer that carried `carried` and was verified with the pinned key
    /// `signer_kid`. `Ok(None)` when nothing changes. Never a wholesale
    /// replacement:
    /// - a carried key not pinned yet is added (the answer was signed by a key
    ///   we already trust, so that key vouches for its successor);
    /// - a pinned key the carried keyset omits is retired only when the answer
    ///   was signed by *another* pinned key (its successor has been seen
    ///   signing); an answer signed by the omitted key itself keeps it;
    /// - a kept key's `not_after` can move earlier, never later;
    /// - keys past `not_after` at `now` are dropped and never added;
    /// - at most [`MAX_PINNED_KEYS`] are kept (the signer first, then the
    ///   carried order, current first).
    ///
    /// `now` is the local clock plus the measured offset, never the answer's
    /// `iat`: a replayed or attacker-chosen `iat` cannot make an expired key
    /// look valid. A retired key is gone from the set; only a later answer
    /// signed by a pinned key can bring it back.
    pub fn merge_signed(
        &self,
        carried: &Keyset,
        signer_kid: &str,
        now: UnixSeconds,
    ) -> Result<Option<Keyset>> {
        if carried.keys.len() > 4 * MAX_PINNED_KEYS {
            return Err(Error::malformed("carried keyset has too many keys"));
        }
        let pinned: Vec<(VerifyingKey, &Jwk)> = self
            .keys
            .iter()
            .map(|j| j.to_service_key().map(|k| (k, j)))
            .collect::<Result<_>>()?;
        if !pinned.iter().any(|(k, _)| k.key_id() == signer_kid) {
            return Err(Error::new(
                ErrorCode::UnknownKey,
                "the answer was not signed by a pinned key",
            ));
        }
        let alive = |j: &Jwk| j.not_after.is_none_or(|t| now <= t);
        let mut out: Vec<(VerifyingKey, Jwk)> = Vec::new();
        for j in &carried.keys {
            let k = j.to_service_key()?;
            if out.iter().any(|(o, _)| *o == k) {
                continue;
            }
            let mut entry = k.to_jwk();
            entry.not_after = j.not_after;
            if let Some((_, p)) = pinned.iter().find(|(pk, _)| *pk == k) {
                entry.not_after = match (p.not_after, j.not_after) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if alive(&entry) {
                out.push((k, entry));
            }
        }
        for (k, p) in &pinned {
            if out.iter().any(|(o, _)| o == k) {
                continue;
            }
            // Omitted by the carried keyset: retired unless it signed this answer.
            if k.key_id() == signer_kid && alive(p) {
                out.push((*k, (*p).clone()));
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        let has_signer = out.iter().any(|(k, _)| k.key_id() == signer_kid);
        let mut room = MAX_PINNED_KEYS - usize::from(has_signer);
        let keys: Vec<Jwk> = out
            .into_iter()
            .filter(|(k, _)| {
                if k.key_id() == signer_kid {
                    true
                } else if room > 0 {
                    room -= 1;
                    true
                } else {
                    false
                }
            })
            .map(|(_, j)| j)
            .collect();
        let next = Keyset { keys };
        Ok((next != *self).then_some(next))
    }

    /// Parses a keyset from JSON.
    ///
    /// The JSON is read by the core's own strict reader of this shape (the
    /// documents serde would accept for [`Keyset`], unknown members skipped),
    /// which keeps serde_json out of modules that only verify tokens.
    pub fn from_json(json: &str) -> Result<Self> {
        const MAX: usize = 64 * 1024;
        if json.len() > MAX {
            return Err(Error::new(
                ErrorCode::TooLarge,
                "keyset exceeds 65536 bytes",
            ));
        }
        let set = Self::read_json(json.as_bytes())?;
        for k in &set.keys {
            k.to_service_key()?;
        }
        Ok(set)
    }

    /// The strict parse alone (no key checks).
    pub(crate) fn read_json(json: &[u8]) -> Result<Self> {
        strict_json::parse(json, |r| {
            let mut keys = None;
            r.object(false, |r, k| {
                if k != "keys" {
                    return Ok(false);
                }
                let mut list = Vec::new();
                r.array(|r| {
                    list.push(Jwk::read(r)?);
                    Ok(())
                })?;
                put(&mut keys, list)?;
                Ok(true)
            })?;
            Ok(Keyset {
                keys: keys.ok_or(())?,
            })
        })
        .map_err(|()| Error::malformed("keyset: not a JWKS object ({\"keys\": [JWK, ...]})"))
    }

    /// Serializes to JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("keyset serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_public_key_lengths_have_one_code_each() {
        let k = SigningKey::from_seed_slice(&[7u8; 32]).unwrap();
        assert_eq!(
            k.verifying_key(),
            SigningKey::from_seed(&[7u8; 32]).unwrap().verifying_key()
        );
        for n in [0usize, 31, 33, 64] {
            let e = SigningKey::from_seed_slice(&vec![7u8; n]).err().unwrap();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "seed of {n} bytes");
            assert_eq!(
                VerifyingKey::from_bytes(&vec![7u8; n]).unwrap_err().code(),
                ErrorCode::Malformed,
                "public key of {n} bytes"
            );
        }
    }

    #[test]
    fn sign_verify_and_kid() {
        let k = SigningKey::from_seed(&[7u8; 32]).unwrap();
        let sig = k.sign(b"hello");
        k.verifying_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            k.verifying_key().verify(b"hellp", &sig).unwrap_err().code(),
            ErrorCode::BadSignature
        );
        assert_eq!(k.key_id().len(), 22);
        assert!(!format!("{k:?}").contains(&b64url(k.seed())));
        let jwk = k.verifying_key().to_jwk();
        assert_eq!(jwk.to_service_key().unwrap(), k.verifying_key());
        let mut bad = jwk.clone();
        bad.kid = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
        assert!(bad.to_key().is_err());
    }

    #[test]
    fn keyset_respects_not_after() {
        let k = SigningKey::from_seed(&[1u8; 32]).unwrap();
        let mut set = Keyset::from_keys(&[k.verifying_key()]);
        set.keys[0].not_after = Some(100);
        assert!(set.find(&k.key_id(), 100).is_ok());
        assert_eq!(
            set.find(&k.key_id(), 101).unwrap_err().code(),
            ErrorCode::UnknownKey
        );
        assert_eq!(
            set.find("other", 0).unwrap_err().code(),
            ErrorCode::UnknownKey
        );
    }
}
