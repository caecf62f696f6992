//! A strict compact-JWS profile (RFC 7515 + RFC 8037 / RFC 7518): `alg` is
//! `EdDSA`, or `ES256` for messages signed by a P-256 device key, and must
//! match the verifying key's type (never chosen by the message alone);
//! explicit `typ` (RFC 8725 §3.11), unknown header parameters rejected.
//!
//! Access tokens and every interactive message (redeem, handshake, offboard,
//! rotate and their signed answers) use this one implementation, so any JOSE
//! library configured for EdDSA can verify our bytes.

use crate::encoding::{b64url, b64url_decode, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{Jwk, KeyAlgorithm, Keyset, Signer, VerifyingKey};
use crate::strict_json::{self, put};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest compact JWS any parser accepts (tokens are far smaller).
pub const MAX_JWS_LEN: usize = 64 * 1024;

/// JOSE header. Field order is fixed so our bytes are reproducible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// Explicit type, e.g. `edrlink-access+jwt`.
    pub typ: String,
    /// Signing key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Embedded public key (only for the redemption request, as in ACME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Jwk>,
}

impl Header {
    /// Parses a header as serde would for this struct (unknown members
    /// refused), with the core's strict reader instead of serde_json: every
    /// JWS goes through here, including in modules that parse nothing else.
    pub fn from_json(json: &[u8]) -> Result<Header> {
        strict_json::parse(json, |r| {
            let (mut alg, mut typ, mut kid, mut jwk) = (None, None, None, None);
            r.object(true, |r, k| {
                match k {
                    "alg" => put(&mut alg, r.string()?)?,
                    "typ" => put(&mut typ, r.string()?)?,
                    "kid" => put(&mut kid, r.opt_string()?)?,
                    "jwk" => {
                        let v = if r.null()? { None } else { Some(Jwk::read(r)?) };
                        put(&mut jwk, v)?
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            Ok(Header {
                alg: alg.ok_or(())?,
                typ: typ.ok_or(())?,
                kid: kid.flatten(),
                jwk: jwk.flatten(),
            })
        })
        .map_err(|()| Error::malformed("JWS header: not a valid header object"))
    }
}

/// A parsed but not yet verified JWS.
#[derive(Debug, Clone)]
pub struct Unverified<'a> {
    /// The header.
    pub header: Header,
    /// Decoded payload bytes.
    pub payload: Vec<u8>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl Unverified<'_> {
    /// Deserializes the payload (no trust implied).
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.payload)
            .map_err(|e| Error::malformed(format!("JWS payload: {e}")))
    }

    /// The algorithm the header names (checked against the key on verify);
    /// `unsupported_algorithm` if the header was changed to another.
    pub fn algorithm(&self) -> Result<KeyAlgorithm> {
        KeyAlgorithm::from_jws_alg(&self.header.alg)
    }

    /// A key of another type than `alg` names is refused: the algorithm is
    /// the key's, never the message's choice (RFC 8725 §3.1).
    fn check_alg(&self, key: &VerifyingKey) -> Result<()> {
        if key.algorithm() != self.algorithm()? {
            return Err(Error::new(
                ErrorCode::UnsupportedAlgorithm,
                format!(
                    "JWS alg {} does not match the {} key",
                    self.header.alg,
                    key.algorithm().name()
                ),
            ));
        }
        Ok(())
    }

    /// Checks the signature with `key`.
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<()> {
        self.check_alg(key)?;
        if let Some(kid) = &self.header.kid {
            if *kid != key.key_id() {
                return Err(Error::new(
                    ErrorCode::UnknownKey,
                    "JWS kid does not name the expected key",
                ));
            }
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }

    /// Checks the signature with the keyset entry named by `kid`.
    pub fn verify_with_keyset(&self, keys: &Keyset, now: UnixSeconds) -> Result<VerifyingKey> {
        let kid = self
            .header
            .kid
            .as_deref()
            .ok_or_else(|| Error::malformed("JWS header lacks kid"))?;
        let key = keys.find(kid, now)?;
        self.check_alg(&key)?;
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        Ok(key)
    }
}

/// A JWS waiting for its signature: the signing input is fixed, so the
/// signature can come later (from a host signer that answers asynchronously).
#[derive(Debug, Clone)]
pub struct Unsigned {
    input: String,
}

impl Unsigned {
    /// The bytes the key signs (`base64url(header).base64url(payload)`).
    pub fn message(&self) -> &[u8] {
        self.input.as_bytes()
    }

    /// The compact JWS with `sig` (JOSE form: 64 bytes).
    pub fn finish(mut self, sig: &[u8]) -> String {
        self.input.push('.');
        self.input.push_str(&b64url(sig));
        self.input
    }

    /// Signs with `key` and finishes.
    pub fn sign(self, key: &dyn Signer) -> Result<String> {
        let sig = key.sign_message(self.message())?;
        Ok(self.finish(&sig))
    }
}

/// The signing input of a compact JWS with header `{alg, typ, kid}` (or
/// `jwk`) for `public`'s algorithm.
pub fn prepare<T: Serialize>(
    typ: &str,
    claims: &T,
    public: &VerifyingKey,
    embed_jwk: bool,
) -> Result<Unsigned> {
    let header = Header {
        alg: public.algorithm().jws_alg().into(),
        typ: typ.into(),
        kid: if embed_jwk {
            None
        } else {
            Some(public.key_id())
        },
        jwk: if embed_jwk {
            Some(public.to_jwk())
        } else {
            None
        },
    };
    let h =
        serde_json::to_vec(&header).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    let p =
        serde_json::to_vec(claims).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    let mut input = String::with_capacity((h.len() + p.len()) * 4 / 3 + 100);
    input.push_str(&b64url(&h));
    input.push('.');
    input.push_str(&b64url(&p));
    Ok(Unsigned { input })
}

/// Signs `claims` as a compact JWS with header `{alg, typ, kid}` (or `jwk`).
pub fn sign<T: Serialize>(
    typ: &str,
    claims: &T,
    key: &dyn Signer,
    embed_jwk: bool,
) -> Result<String> {
    prepare(typ, claims, &key.public_key(), embed_jwk)?.sign(key)
}

/// Parses a compact JWS, checking `alg` and `typ` but not the signature.
pub fn parse<'a>(compact: &'a str, expected_typ: &str) -> Result<Unverified<'a>> {
    if compact.len() > MAX_JWS_LEN {
        return Err(Error::new(ErrorCode::TooLarge, "JWS too large"));
    }
    let compact = compact.trim();
    let mut parts = compact.split('.');
    let (h, p, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => return Err(Error::malformed("JWS must have three dot-separated parts")),
    };
    let header = Header::from_json(&b64url_decode(h)?)?;
    KeyAlgorithm::from_jws_alg(&header.alg)?;
    if header.typ != expected_typ {
        return Err(Error::new(
            ErrorCode::WrongType,
            format!("expected typ {expected_typ}, got {}", header.typ),
        ));
    }
    let payload = b64url_decode(p)?;
    let signature = b64url_decode(s)?;
    // EdDSA and ES256 (r‖s, RFC 7518 §3.4) signatures are both 64 bytes.
    if signature.len() != 64 {
        return Err(Error::malformed("JWS signature must be 64 bytes"));
    }
    let signing_input = &compact[..h.len() + 1 + p.len()];
    Ok(Unverified {
        header,
        payload,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct C {
        a: u32,
    }

    #[test]
    fn round_trip_and_checks() {
        let k = SigningKey::from_seed(&[3u8; 32]).unwrap();
        let jws = sign("x+jwt", &C { a: 1 }, &k, false).unwrap();
        let u = parse(&jws, "x+jwt").unwrap();
        u.verify_with(&k.verifying_key()).unwrap();
        assert_eq!(u.claims::<C>().unwrap(), C { a: 1 });
        assert_eq!(
            parse(&jws, "y+jwt").unwrap_err().code(),
            ErrorCode::WrongType
        );
        let other = SigningKey::from_seed(&[4u8; 32]).unwrap();
        assert_eq!(
            u.verify_with(&other.verifying_key()).unwrap_err().code(),
            ErrorCode::UnknownKey
        );
        assert_eq!(
            parse("a.b", "x+jwt").unwrap_err().code(),
            ErrorCode::Malformed
        );
        // alg "none" is refused before anything else.
        let none = format!(
            "{}.{}.",
            b64url(br#"{"alg":"none","typ":"x+jwt"}"#),
            b64url(b"{}")
        );
        assert_eq!(
            parse(&none, "x+jwt").unwrap_err().code(),
            ErrorCode::UnsupportedAlgorithm
        );
        // Unknown header parameters (e.g. crit) are refused.
        let crit = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"EdDSA","typ":"x+jwt","crit":["b64"]}"#),
            b64url(b"{}"),
            b64url(&[0u8; 64])
        );
        assert_eq!(
            parse(&crit, "x+jwt").unwrap_err().code(),
            ErrorCode::Malformed
        );
    }

    #[test]
    fn es256_round_trip_and_algorithm_confusion() {
        let p = crate::signer::EcdsaP256Key::generate().unwrap();
        let jws = sign("x+jwt", &C { a: 2 }, &p, true).unwrap();
        let u = parse(&jws, "x+jwt").unwrap();
        assert_eq!(u.header.alg, "ES256");
        let key = u.header.jwk.as_ref().unwrap().to_key().unwrap();
        assert_eq!(key, p.public_key());
        u.verify_with(&key).unwrap();
        // An Ed25519 key never verifies an ES256 message, and the reverse.
        let ed = SigningKey::from_seed(&[3u8; 32]).unwrap();
        assert_eq!(
            u.verify_with(&ed.verifying_key()).unwrap_err().code(),
            ErrorCode::UnsupportedAlgorithm
        );
        let ed_jws = sign("x+jwt", &C { a: 2 }, &ed, false).unwrap();
        assert_eq!(
            parse(&ed_jws, "x+jwt")
                .unwrap()
                .verify_with(&key)
                .unwrap_err()
                .code(),
            ErrorCode::UnsupportedAlgorithm
        );
        // ES256 claimed by a message, checked against a service keyset
        // (Ed25519 only), is refused.
        let set = Keyset::from_keys(&[ed.verifying_key()]);
        let forged = format!(
            "{}.{}.{}",
            b64url(
                format!(r#"{{"alg":"ES256","typ":"x+jwt","kid":"{}"}}"#, ed.key_id()).as_bytes()
            ),
            b64url(b"{}"),
            b64url(&[1u8; 64])
        );
        assert_eq!(
            parse(&forged, "x+jwt")
                .unwrap()
                .verify_with_keyset(&set, 0)
                .unwrap_err()
                .code(),
            ErrorCode::UnsupportedAlgorithm
        );
    }
}
