//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1):
//! `{"payload": b64, "payloadType": "...", "signatures": [{"keyid", "sig"}]}`
//! signed over the pre-authentication encoding (PAE).
//!
//! edrlink's profile: exactly one Ed25519 signature, `keyid` always present,
//! ASCII `payloadType`. Verification happens on the raw payload bytes before
//! anything interprets them (decompression included).

use crate::encoding::{b64_dsse_decode, b64std, parse_json};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Hard cap on an envelope's serialized size (5 MiB).
pub const MAX_ENVELOPE_BYTES: usize = 5 * 1024 * 1024;

/// Media type of the envelope itself, for `Content-Type`.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE envelope as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// base64 payload.
    pub payload: String,
    /// Payload media type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Signatures (edrlink: exactly one).
    pub signatures: Vec<Signature>,
}

/// One DSSE signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// Key id of the signer (required in edrlink's profile).
    #[serde(default)]
    pub keyid: String,
    /// base64 signature over PAE.
    pub sig: String,
}

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

fn check_payload_type(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > 128 || !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::malformed(
            "payloadType must be 1..128 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Seals `payload` and returns the envelope's JSON bytes.
pub fn seal(payload_type: &str, payload: &[u8], key: &SigningKey) -> Result<Vec<u8>> {
    check_payload_type(payload_type)?;
    let sig = key.sign(&pae(payload_type, payload));
    let env = Envelope {
        payload: b64std(payload),
        payload_type: payload_type.to_owned(),
        signatures: vec![Signature {
            keyid: key.key_id(),
            sig: b64std(&sig),
        }],
    };
    serde_json::to_vec(&env).map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))
}

/// An envelope whose structure is valid but whose signature is not checked yet.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The payload type.
    pub payload_type: String,
    /// The decoded payload.
    pub payload: Vec<u8>,
    /// The signer's key id.
    pub keyid: String,
    signature: Vec<u8>,
}

impl Parsed {
    /// Verifies the signature with `key` (whose id must match `keyid`).
    pub fn verify(&self, key: &VerifyingKey) -> Result<()> {
        if self.keyid != key.key_id() {
            return Err(Error::new(
                ErrorCode::UnknownKey,
                "envelope keyid does not name the expected key",
            ));
        }
        key.verify(&pae(&self.payload_type, &self.payload), &self.signature)
    }
}

/// Parses an envelope's JSON, enforcing the profile (one signature with keyid).
pub fn parse(json: &[u8]) -> Result<Parsed> {
    let env: Envelope = parse_json(json, MAX_ENVELOPE_BYTES, "envelope")?;
    check_payload_type(&env.payload_type)?;
    let [sig] = env.signatures.as_slice() else {
        return Err(Error::malformed(
            "envelope must carry exactly one signature",
        ));
    };
    if sig.keyid.is_empty() {
        return Err(Error::malformed("envelope signature lacks keyid"));
    }
    let signature = b64_dsse_decode(&sig.sig)?;
    if signature.len() != 64 {
        return Err(Error::new(
            ErrorCode::BadSignature,
            "Ed25519 signature must be 64 bytes",
        ));
    }
    Ok(Parsed {
        payload_type: env.payload_type,
        payload: b64_dsse_decode(&env.payload)?,
        keyid: sig.keyid.clone(),
        signature,
    })
}

/// Parses and verifies in one step, checking the payload type too.
pub fn open(json: &[u8], expected_type: &str, key: &VerifyingKey) -> Result<Vec<u8>> {
    let p = parse(json)?;
    if p.payload_type != expected_type {
        return Err(Error::new(
            ErrorCode::WrongType,
            format!("unexpected payloadType {}", p.payload_type),
        ));
    }
    p.verify(key)?;
    Ok(p.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn seal_open() {
        let k = SigningKey::from_seed(&[9u8; 32]).unwrap();
        let env = seal("application/x", b"abc", &k).unwrap();
        assert_eq!(
            open(&env, "application/x", &k.verifying_key()).unwrap(),
            b"abc"
        );
        assert_eq!(
            open(&env, "application/y", &k.verifying_key())
                .unwrap_err()
                .code(),
            ErrorCode::WrongType
        );
        let other = SigningKey::from_seed(&[8u8; 32]).unwrap();
        assert_eq!(
            open(&env, "application/x", &other.verifying_key())
                .unwrap_err()
                .code(),
            ErrorCode::UnknownKey
        );
        assert_eq!(parse(b"{}").unwrap_err().code(), ErrorCode::Malformed);
    }
}
