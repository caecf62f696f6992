//! A strict compact-JWS profile (RFC 7515 + RFC 8037): `alg` pinned to `EdDSA`,
//! explicit `typ` (RFC 8725 §3.11), unknown header parameters rejected.
//!
//! Access tokens and every interactive message (redeem, handshake, offboard,
//! rotate and their signed answers) use this one implementation, so any JOSE
//! library configured for EdDSA can verify our bytes.

use crate::encoding::{b64url, b64url_decode, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{Jwk, Keyset, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest compact JWS any parser accepts (tokens are far smaller).
pub const MAX_JWS_LEN: usize = 64 * 1024;

/// JOSE header. Field order is fixed so our bytes are reproducible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `EdDSA`.
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

    /// Checks the signature with `key`.
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<()> {
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
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        Ok(key)
    }
}

/// Signs `claims` as a compact JWS with header `{alg, typ, kid}` (or `jwk`).
pub fn sign<T: Serialize>(
    typ: &str,
    claims: &T,
    key: &SigningKey,
    embed_jwk: bool,
) -> Result<String> {
    let header = Header {
        alg: "EdDSA".into(),
        typ: typ.into(),
        kid: if embed_jwk { None } else { Some(key.key_id()) },
        jwk: if embed_jwk {
            Some(key.verifying_key().to_jwk())
        } else {
            None
        },
    };
    let h =
        serde_json::to_vec(&header).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    let p =
        serde_json::to_vec(claims).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    let mut out = String::with_capacity((h.len() + p.len()) * 4 / 3 + 100);
    out.push_str(&b64url(&h));
    out.push('.');
    out.push_str(&b64url(&p));
    let sig = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&b64url(&sig));
    Ok(out)
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
    let header: Header = serde_json::from_slice(&b64url_decode(h)?)
        .map_err(|e| Error::malformed(format!("JWS header: {e}")))?;
    if header.alg != "EdDSA" {
        return Err(Error::new(
            ErrorCode::UnsupportedAlgorithm,
            "JWS alg must be EdDSA",
        ));
    }
    if header.typ != expected_typ {
        return Err(Error::new(
            ErrorCode::WrongType,
            format!("expected typ {expected_typ}, got {}", header.typ),
        ));
    }
    let payload = b64url_decode(p)?;
    let signature = b64url_decode(s)?;
    if signature.len() != 64 {
        return Err(Error::malformed("Ed25519 signature must be 64 bytes"));
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
}
