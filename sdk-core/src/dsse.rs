//! DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1):
//! `{"payload": b64, "payloadType": "...", "signatures": [{"keyid", "sig"}]}`
//! signed over the pre-authentication encoding (PAE).
//!
//! edrlink's profile: exactly one signature, `keyid` always present, ASCII
//! `payloadType`. The signature is Ed25519 (64 bytes) or, for a P-256 device
//! key, ECDSA P-256 SHA-256 DER-encoded (X9.62 `ECDSA-Sig-Value`, as
//! securesystemslib, sigstore and `cryptography` write it); which one is
//! decided by the verifying key, never by the envelope. Verification happens on the raw payload bytes before
//! anything interprets them (decompression included).

use crate::encoding::b64_dsse_decode;
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{ecdsa_p256_raw_to_der, KeyAlgorithm, Signer, VerifyingKey};
use crate::strict_json::{self, put};
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
    let mut out = pae_header(payload_type, payload.len(), payload.len());
    out.extend_from_slice(payload);
    out
}

/// The PAE up to (not including) the body, in a buffer with room for `room`
/// more bytes: sealing appends the payload, opening decodes base64 straight
/// into the tail, so the signed message is built in one allocation.
fn pae_header(payload_type: &str, body_len: usize, room: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + 48 + room);
    out.extend_from_slice(b"DSSEv1 ");
    push_decimal(&mut out, payload_type.len());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    push_decimal(&mut out, body_len);
    out.push(b' ');
    out
}

/// ASCII decimal without `core::fmt` (cheaper, and keeps formatting machinery
/// out of size-sensitive builds).
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

fn check_payload_type(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > 128 || !t.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(Error::malformed(
            "payloadType must be 1..128 printable ASCII characters",
        ));
    }
    Ok(())
}

/// Appends `s` as a JSON string exactly as `serde_json` writes it. The common
/// case (nothing to escape) is a plain copy; anything else is left to
/// serde_json itself so the bytes cannot drift from the serde form.
fn push_json_str(out: &mut Vec<u8>, s: &str) -> Result<()> {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))
    }
}

/// Appends standard base64 (with padding) of `bytes`, encoded in place.
fn push_b64(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = out.len();
    let n = base64::encoded_len(bytes.len(), true).expect("payload size is bounded by memory");
    out.resize(start + n, 0);
    let written = STANDARD
        .encode_slice(bytes, &mut out[start..])
        .expect("buffer sized by encoded_len");
    debug_assert_eq!(written, n);
}

/// An envelope waiting for its signature: the PAE (which ends with the
/// payload, so the payload is kept once) and what the JSON needs besides.
/// The signature can come later, from a host signer that answers
/// asynchronously.
#[derive(Debug, Clone)]
pub struct Unsigned {
    pae: Vec<u8>,
    header_len: usize,
    payload_type: String,
    public: VerifyingKey,
}

/// The PAE for `payload` under `payload_type`, to be signed by `public`'s key.
pub fn prepare(payload_type: &str, payload: &[u8], public: &VerifyingKey) -> Result<Unsigned> {
    check_payload_type(payload_type)?;
    let mut pae = pae_header(payload_type, payload.len(), payload.len());
    let header_len = pae.len();
    pae.extend_from_slice(payload);
    Ok(Unsigned {
        pae,
        header_len,
        payload_type: payload_type.to_owned(),
        public: *public,
    })
}

impl Unsigned {
    /// The bytes the key signs (the PAE).
    pub fn message(&self) -> &[u8] {
        &self.pae
    }

    /// The envelope's JSON with `sig` in the JOSE form (Ed25519 or P-256
    /// `r‖s`, 64 bytes; P-256 is written DER-encoded).
    ///
    /// The JSON is written directly (base64 needs no escaping) in the field
    /// order serde would use for [`Envelope`], so the bytes are identical to
    /// `serde_json::to_vec(&Envelope{..})` (the vectors and a unit test check
    /// it) without building the intermediate strings.
    pub fn finish(self, sig: &[u8]) -> Result<Vec<u8>> {
        let der;
        let sig = match (self.public.algorithm(), <&[u8; 64]>::try_from(sig)) {
            (KeyAlgorithm::Ed25519, _) => sig,
            (KeyAlgorithm::EcdsaP256, Ok(raw)) => {
                der = ecdsa_p256_raw_to_der(raw);
                &der
            }
            (KeyAlgorithm::EcdsaP256, Err(_)) => {
                return Err(Error::new(
                    ErrorCode::Internal,
                    "a P-256 signature in the JOSE form is 64 bytes",
                ))
            }
        };
        let payload = &self.pae[self.header_len..];
        let kid = self.public.key_id();
        let b64_len = base64::encoded_len(payload.len(), true)
            .ok_or_else(|| Error::new(ErrorCode::TooLarge, "payload too large"))?;
        let mut out = Vec::with_capacity(b64_len + 2 * self.payload_type.len() + kid.len() + 160);
        out.extend_from_slice(b"{\"payload\":\"");
        push_b64(&mut out, payload);
        out.extend_from_slice(b"\",\"payloadType\":");
        push_json_str(&mut out, &self.payload_type)?;
        out.extend_from_slice(b",\"signatures\":[{\"keyid\":");
        push_json_str(&mut out, &kid)?;
        out.extend_from_slice(b",\"sig\":\"");
        push_b64(&mut out, sig);
        out.extend_from_slice(b"\"}]}");
        Ok(out)
    }

    /// Signs with `key` and finishes.
    pub fn sign(self, key: &dyn Signer) -> Result<Vec<u8>> {
        let sig = key.sign_message(self.message())?;
        self.finish(&sig)
    }
}

/// Seals `payload` and returns the envelope's JSON bytes.
pub fn seal(payload_type: &str, payload: &[u8], key: &dyn Signer) -> Result<Vec<u8>> {
    prepare(payload_type, payload, &key.public_key())?.sign(key)
}

/// The envelope as parsed, borrowing the (long) base64 text from the input
/// instead of copying it into owned strings (a JSON escape makes it owned).
/// Read by [`EnvelopeRef::from_json`]; serde's derive is kept for the tests
/// that prove that reader accepts what serde_json accepts.
#[cfg_attr(test, derive(Deserialize))]
struct EnvelopeRef<'a> {
    #[cfg_attr(test, serde(borrow))]
    payload: Cow<'a, str>,
    #[cfg_attr(test, serde(rename = "payloadType", borrow))]
    payload_type: Cow<'a, str>,
    #[cfg_attr(test, serde(borrow))]
    signatures: Vec<SignatureRef<'a>>,
}

#[cfg_attr(test, derive(Deserialize))]
struct SignatureRef<'a> {
    #[cfg_attr(test, serde(default, borrow))]
    keyid: Cow<'a, str>,
    #[cfg_attr(test, serde(borrow))]
    sig: Cow<'a, str>,
}

impl<'a> EnvelopeRef<'a> {
    /// Parses an envelope as serde would for this struct (unknown members
    /// skipped, `keyid` optional), with the core's strict reader.
    fn from_json(json: &'a [u8]) -> Result<EnvelopeRef<'a>> {
        strict_json::parse(json, |r| {
            let (mut payload, mut payload_type, mut signatures) = (None, None, None);
            r.object(false, |r, k| {
                match k {
                    "payload" => put(&mut payload, r.str_cow()?)?,
                    "payloadType" => put(&mut payload_type, r.str_cow()?)?,
                    "signatures" => {
                        let mut list = Vec::new();
                        r.array(|r| {
                            let (mut keyid, mut sig) = (None, None);
                            r.object(false, |r, k| {
                                match k {
                                    "keyid" => put(&mut keyid, r.str_cow()?)?,
                                    "sig" => put(&mut sig, r.str_cow()?)?,
                                    _ => return Ok(false),
                                }
                                Ok(true)
                            })?;
                            list.push(SignatureRef {
                                keyid: keyid.unwrap_or_default(),
                                sig: sig.ok_or(())?,
                            });
                            Ok(())
                        })?;
                        put(&mut signatures, list)?
                    }
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
            Ok(EnvelopeRef {
                payload: payload.ok_or(())?,
                payload_type: payload_type.ok_or(())?,
                signatures: signatures.ok_or(())?,
            })
        })
        .map_err(|()| Error::malformed("envelope: not a DSSE envelope object"))
    }
}

/// Structure checks shared by [`parse`] and [`open`]: the profile (one
/// signature, with keyid, 64 bytes or DER-shaped) and the payload type.
fn check_profile(env: EnvelopeRef<'_>) -> Result<(EnvelopeRef<'_>, Vec<u8>)> {
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
    // Ed25519: 64 bytes; P-256: DER, 8..=72 bytes. The key decides which.
    let der_shaped = (8..=72).contains(&signature.len()) && signature[0] == 0x30;
    if signature.len() != 64 && !der_shaped {
        return Err(Error::new(
            ErrorCode::BadSignature,
            "signature must be 64 bytes (Ed25519) or DER (ECDSA P-256)",
        ));
    }
    Ok((env, signature))
}

/// Runs `f` on the envelope in `json`.
///
/// An envelope in exactly the form [`seal`] writes (that field order, no
/// whitespace, no escapes) is split without a JSON parser: for a 64 KiB
/// payload, serde_json's string scan alone cost about a third of the
/// allowance over a bare signature check. Those strings are then the values
/// serde_json would produce, provided the base64 fields hold only base64
/// characters, which their decoding checks; any `malformed` outcome on that
/// path is therefore re-run through serde_json, which decides (a `\/`
/// escape in the payload, for example, is valid JSON). Other outcomes
/// (`wrong_type`, `unknown_key`, `bad_signature`, success) are the same on
/// both paths.
fn with_envelope<T>(json: &[u8], f: impl Fn(EnvelopeRef<'_>) -> Result<T>) -> Result<T> {
    if json.len() > MAX_ENVELOPE_BYTES {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("envelope exceeds {MAX_ENVELOPE_BYTES} bytes"),
        ));
    }
    if let Some(env) = split_canonical(json) {
        match f(env) {
            Err(e) if e.code() == ErrorCode::Malformed => {}
            done => return done,
        }
    }
    f(EnvelopeRef::from_json(json)?)
}

/// The four strings of an envelope written exactly as [`seal`] writes it, or
/// `None` for any other spelling. `payloadType` and `keyid` must be free of
/// escapes and control characters here (they are short); `payload` and `sig`
/// are checked by their base64 decoding.
fn split_canonical(json: &[u8]) -> Option<EnvelopeRef<'_>> {
    fn string(s: &[u8], clean: bool) -> Option<(&str, &[u8])> {
        let end = memchr::memchr(b'"', s)?;
        let body = &s[..end];
        if clean && body.iter().any(|&b| b < 0x20 || b == b'\\') {
            return None;
        }
        Some((std::str::from_utf8(body).ok()?, &s[end + 1..]))
    }
    let rest = json.strip_prefix(b"{\"payload\":\"")?;
    let (payload, rest) = string(rest, false)?;
    let rest = rest.strip_prefix(b",\"payloadType\":\"")?;
    let (payload_type, rest) = string(rest, true)?;
    let rest = rest.strip_prefix(b",\"signatures\":[{\"keyid\":\"")?;
    let (keyid, rest) = string(rest, true)?;
    let rest = rest.strip_prefix(b",\"sig\":\"")?;
    let (sig, rest) = string(rest, false)?;
    (rest == b"}]}").then(|| EnvelopeRef {
        payload: Cow::Borrowed(payload),
        payload_type: Cow::Borrowed(payload_type),
        signatures: vec![SignatureRef {
            keyid: Cow::Borrowed(keyid),
            sig: Cow::Borrowed(sig),
        }],
    })
}

/// Decodes DSSE base64 (standard or URL-safe alphabet, padding required, the
/// same acceptance as [`b64_dsse_decode`]) and appends it to `out`.
fn decode_b64_into(text: &str, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    #[cfg(target_arch = "x86_64")]
    if simd_b64::decode_standard(text.as_bytes(), out) {
        return Ok(());
    }
    out.truncate(start);
    if STANDARD.decode_vec(text, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    if URL_SAFE.decode_vec(text, out).is_ok() {
        return Ok(());
    }
    out.truncate(start);
    Err(Error::malformed("invalid base64 in envelope"))
}

/// SSSE3 decoding of the standard base64 alphabet, 16 characters per step
/// (W. Muła and D. Lemire, "Faster Base64 Encoding and Decoding using AVX2
/// Instructions", 2018, the SSE variant). Opening a 64 KiB envelope spent more
/// time in scalar base64 than the signature check allowed for.
///
/// Only the body is decoded here: every 16-character block before the last
/// quantum, each validated exactly (any byte outside `A-Za-z0-9+/`, including
/// `=`, makes the whole call return `false` so the scalar decoder decides
/// and reports). The last 4..19 characters, with the padding and the
/// canonical-trailing-bits check, always go through the `base64` crate, so
/// what is accepted is exactly what `STANDARD` accepts (a unit test compares
/// both on every byte value at every block position).
#[cfg(target_arch = "x86_64")]
mod simd_b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use core::arch::x86_64::*;

    /// Appends the decoding of `input` to `out` and returns `true`, or
    /// returns `false` (with `out` possibly extended: the caller truncates)
    /// when SSSE3 is missing or the input is not valid standard base64.
    pub(super) fn decode_standard(input: &[u8], out: &mut Vec<u8>) -> bool {
        if input.len() < 20 || !input.len().is_multiple_of(4) || !is_x86_feature_detected!("ssse3")
        {
            return false;
        }
        let blocks = (input.len() - 4) / 16;
        out.reserve(blocks * 12 + 4 + (input.len() - blocks * 16) / 4 * 3);
        // SAFETY: SSSE3 is present (checked above); the capacity reserved
        // covers 12 bytes per block plus the 4 bytes each 16-byte store
        // writes past them, which `set_len` never exposes.
        let ok = unsafe { decode_blocks(&input[..blocks * 16], out) };
        ok && STANDARD.decode_vec(&input[blocks * 16..], out).is_ok()
    }

    #[target_feature(enable = "ssse3")]
    unsafe fn decode_blocks(input: &[u8], out: &mut Vec<u8>) -> bool {
        debug_assert_eq!(input.len() % 16, 0);
        let lut_lo = _mm_setr_epi8(
            0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B,
            0x1B, 0x1A,
        );
        let lut_hi = _mm_setr_epi8(
            0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
            0x10, 0x10,
        );
        let lut_roll = _mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
        let mask_2f = _mm_set1_epi8(0x2F);
        let pack = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
        let merge_ab_bc = _mm_set1_epi32(0x0140_0140);
        let merge_abc = _mm_set1_epi32(0x0001_1000);
        let mut len = out.len();
        assert!(out.capacity() - len >= input.len() / 16 * 12 + 4);
        let dst = out.as_mut_ptr();
        for block in input.chunks_exact(16) {
            // SAFETY: `block` is 16 readable bytes; unaligned load.
            let s = unsafe { _mm_loadu_si128(block.as_ptr().cast()) };
            let hi_nibbles = _mm_and_si128(_mm_srli_epi32(s, 4), mask_2f);
            let lo_nibbles = _mm_and_si128(s, mask_2f);
            let hi = _mm_shuffle_epi8(lut_hi, hi_nibbles);
            let lo = _mm_shuffle_epi8(lut_lo, lo_nibbles);
            if _mm_movemask_epi8(_mm_cmpgt_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128())) != 0 {
                return false;
            }
            let eq_2f = _mm_cmpeq_epi8(s, mask_2f);
            let roll = _mm_shuffle_epi8(lut_roll, _mm_add_epi8(eq_2f, hi_nibbles));
            let sextets = _mm_add_epi8(s, roll);
            let pairs = _mm_maddubs_epi16(sextets, merge_ab_bc);
            let triples = _mm_madd_epi16(pairs, merge_abc);
            let bytes = _mm_shuffle_epi8(triples, pack);
            // SAFETY: `len + 16 <= capacity` (asserted above: 12 per block + 4 slack).
            unsafe { _mm_storeu_si128(dst.add(len).cast(), bytes) };
            len += 12;
        }
        // SAFETY: bytes up to `len` were written by the stores above.
        unsafe { out.set_len(len) };
        true
    }
}

/// The exact decoded length of padded base64 `text`, if its shape allows one
/// (the decoder re-checks every character).
fn padded_b64_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take(2).take_while(|&&c| c == b'=').count();
    Some(b.len() / 4 * 3 - pad)
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
        check_keyid(&self.keyid, key)?;
        key.verify_dsse(&pae(&self.payload_type, &self.payload), &self.signature)
    }
}

fn check_keyid(keyid: &str, key: &VerifyingKey) -> Result<()> {
    if keyid != key.key_id() {
        return Err(Error::new(
            ErrorCode::UnknownKey,
            "envelope keyid does not name the expected key",
        ));
    }
    Ok(())
}

/// Parses an envelope's JSON, enforcing the profile (one signature with keyid).
pub fn parse(json: &[u8]) -> Result<Parsed> {
    with_envelope(json, |env| {
        let (env, signature) = check_profile(env)?;
        let mut payload = Vec::new();
        decode_b64_into(&env.payload, &mut payload)?;
        let EnvelopeRef {
            payload_type,
            mut signatures,
            ..
        } = env;
        let sig = signatures.pop().expect("check_profile found one signature");
        Ok(Parsed {
            payload_type: payload_type.into_owned(),
            payload,
            keyid: sig.keyid.into_owned(),
            signature,
        })
    })
}

/// Parses and verifies in one step, checking the payload type too.
///
/// Same checks, in the same order, as [`parse`] then [`Parsed::verify`], but
/// the payload's base64 is decoded straight into the PAE buffer that is
/// verified, and the payload is then moved down in place: one allocation and
/// no copy of the payload besides the decode.
pub fn open(json: &[u8], expected_type: &str, key: &VerifyingKey) -> Result<Vec<u8>> {
    with_envelope(json, |env| {
        let (env, signature) = check_profile(env)?;
        let body_len = padded_b64_len(&env.payload)
            .ok_or_else(|| Error::malformed("invalid base64 in envelope"))?;
        let mut buf = pae_header(&env.payload_type, body_len, body_len);
        let header = buf.len();
        decode_b64_into(&env.payload, &mut buf)?;
        if buf.len() - header != body_len {
            return Err(Error::malformed("invalid base64 in envelope"));
        }
        if env.payload_type != expected_type {
            return Err(Error::new(
                ErrorCode::WrongType,
                format!("unexpected payloadType {}", env.payload_type),
            ));
        }
        check_keyid(&env.signatures[0].keyid, key)?;
        key.verify_dsse(&buf, &signature)?;
        buf.drain(..header);
        Ok(buf)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    /// The hand-written JSON must equal what serde_json writes for [`Envelope`],
    /// including payload types that need escaping and every base64 tail length.
    #[test]
    fn seal_is_byte_identical_to_the_serde_form() {
        let k = SigningKey::from_seed(&[3u8; 32]).unwrap();
        for t in [
            "application/x",
            "a\"b\\c",
            "application/vnd.edrlink.batch.v1+json",
        ] {
            for n in [0usize, 1, 2, 3, 4, 5, 1024, 4097] {
                let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 256) as u8).collect();
                let env = Envelope {
                    payload: crate::encoding::b64std(&payload),
                    payload_type: t.to_owned(),
                    signatures: vec![Signature {
                        keyid: k.key_id(),
                        sig: crate::encoding::b64std(&k.sign(&pae(t, &payload))),
                    }],
                };
                let sealed = seal(t, &payload, &k).unwrap();
                assert_eq!(
                    sealed,
                    serde_json::to_vec(&env).unwrap(),
                    "type {t:?}, {n} bytes"
                );
                assert_eq!(open(&sealed, t, &k.verifying_key()).unwrap(), payload);
                assert_eq!(parse(&sealed).unwrap().payload, payload);
            }
        }
    }

    /// `open` decodes into the PAE buffer; inputs that serde accepts in other
    /// spellings (JSON escapes, URL-safe base64, reordered fields, whitespace)
    /// must still open, and a payload whose base64 length lies must not.
    #[test]
    fn open_accepts_equivalent_spellings_and_refuses_bad_base64() {
        let k = SigningKey::from_seed(&[4u8; 32]).unwrap();
        let vk = k.verifying_key();
        let payload = [0xfbu8, 0xff, 0xbf, 1, 2];
        let sealed = seal("application/x", &payload, &k).unwrap();
        let env: Envelope = serde_json::from_slice(&sealed).unwrap();
        assert!(env.payload.contains('+') || env.payload.contains('/'));
        let reordered = format!(
            "{{ \"signatures\" : [ {{\"sig\":\"{}\",\"keyid\":\"{}\"}} ], \"payloadType\":\"application\\/x\", \"payload\":\"{}\" }}",
            env.signatures[0].sig.replace('/', "\\/"),
            env.signatures[0].keyid,
            env.payload.replace('+', "-").replace('/', "_"),
        );
        assert_eq!(
            open(reordered.as_bytes(), "application/x", &vk).unwrap(),
            payload
        );
        assert_eq!(parse(reordered.as_bytes()).unwrap().payload, payload);
        for bad in ["AAA", "A===", "AA=A", "AAAA-+==", "@@@@"] {
            let forged = sealed_with_payload_text(&sealed, &env.payload, bad);
            assert_eq!(
                open(&forged, "application/x", &vk).unwrap_err().code(),
                ErrorCode::Malformed,
                "{bad}"
            );
            assert_eq!(parse(&forged).unwrap_err().code(), ErrorCode::Malformed);
        }
        // A well-formed payload swapped in fails the signature, not the decoder.
        let swapped = sealed_with_payload_text(&sealed, &env.payload, "AAAA");
        assert_eq!(
            open(&swapped, "application/x", &vk).unwrap_err().code(),
            ErrorCode::BadSignature
        );
    }

    /// The SSSE3 body decoder must accept and produce exactly what the
    /// scalar decoders (`base64` crate) do: every byte value at every
    /// position of a block, and bad padding or trailing bits at the end.
    #[test]
    fn fast_base64_decoder_agrees_with_the_reference() {
        use base64::Engine;
        // The documented acceptance: standard alphabet, else URL-safe, padded.
        let reference = |t: &[u8]| {
            std::str::from_utf8(t)
                .ok()
                .and_then(|s| b64_dsse_decode(s).ok())
        };
        let fast = |t: &[u8]| {
            let mut v = vec![7u8];
            match std::str::from_utf8(t) {
                Ok(s) if decode_b64_into(s, &mut v).is_ok() => Some(v[1..].to_vec()),
                _ => None,
            }
        };
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 151 % 256) as u8).collect();
        for n in [0usize, 1, 2, 3, 13, 14, 15, 16, 17, 29, 45, 46, 47, 48, 300] {
            let good = STANDARD.encode(&payload[..n]).into_bytes();
            assert_eq!(fast(&good), reference(&good), "{n}");
            assert_eq!(fast(&good).as_deref(), Some(&payload[..n]));
            for pos in 0..good.len() {
                for b in 0..=255u8 {
                    let mut t = good.clone();
                    t[pos] = b;
                    if std::str::from_utf8(&t).is_ok() {
                        assert_eq!(fast(&t), reference(&t), "len {n} pos {pos} byte {b}");
                    }
                }
            }
        }
        // Non-canonical trailing bits in the last quantum are refused by both.
        let t = b"AAAAAAAAAAAAAAAAAAAAAAAAAAB=";
        assert_eq!(reference(t), None);
        assert_eq!(fast(t), None);
    }

    /// Envelopes in the field order `seal` writes but with JSON escapes or
    /// raw control characters take the serde_json path and get its answer.
    #[test]
    fn canonical_layout_with_escapes_is_decided_by_serde_json() {
        let k = SigningKey::from_seed(&[5u8; 32]).unwrap();
        let vk = k.verifying_key();
        let payload: Vec<u8> = (0..200u32).map(|i| (i * 37 % 256) as u8).collect();
        let sealed = seal("application/x", &payload, &k).unwrap();
        let text = String::from_utf8(sealed.clone()).unwrap();
        let env: Envelope = serde_json::from_slice(&sealed).unwrap();
        assert!(env.payload.contains('/'));
        let escaped = text.replacen(&env.payload, &env.payload.replace('/', "\\/"), 1);
        assert_eq!(
            open(escaped.as_bytes(), "application/x", &vk).unwrap(),
            payload
        );
        assert_eq!(parse(escaped.as_bytes()).unwrap().payload, payload);
        let escaped_type = text.replacen("application/x", "application\\/x", 1);
        assert_eq!(
            open(escaped_type.as_bytes(), "application/x", &vk).unwrap(),
            payload
        );
        let control = text.replacen(&env.payload[..4], "AA\nA", 1);
        assert_eq!(
            open(control.as_bytes(), "application/x", &vk)
                .unwrap_err()
                .code(),
            ErrorCode::Malformed
        );
        let trailing = format!("{text} ");
        assert_eq!(
            open(trailing.as_bytes(), "application/x", &vk).unwrap(),
            payload
        );
        let truncated = &sealed[..sealed.len() - 1];
        assert_eq!(
            open(truncated, "application/x", &vk).unwrap_err().code(),
            ErrorCode::Malformed
        );
    }

    fn sealed_with_payload_text(sealed: &[u8], old: &str, new: &str) -> Vec<u8> {
        String::from_utf8(sealed.to_vec())
            .unwrap()
            .replacen(old, new, 1)
            .into_bytes()
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

    /// The envelope reader accepts what serde_json accepts for [`EnvelopeRef`]
    /// (valid envelopes in other spellings and thousands of mutations).
    #[test]
    fn envelope_reader_matches_serde() {
        type Fields = (String, String, Vec<(String, String)>);
        fn fields(e: EnvelopeRef<'_>) -> Fields {
            let sigs = e.signatures.iter();
            let sigs = sigs.map(|s| (s.keyid.to_string(), s.sig.to_string()));
            (
                e.payload.into_owned(),
                e.payload_type.into_owned(),
                sigs.collect(),
            )
        }
        let k = SigningKey::from_seed(&[9u8; 32]).unwrap();
        let sealed = seal("application/x", b"hello", &k).unwrap();
        let docs: &[&[u8]] = &[
            &sealed,
            br#" {"signatures":[{"sig":"AA==","x":1},{"keyid":"k","sig":"A\/"}],"payloadType":"t\u0041","payload":"","zz":null} "#,
        ];
        let (ok, bad) = crate::strict_json::tests::differential(
            docs,
            &["signatures"],
            |d| EnvelopeRef::from_json(d).ok().map(fields),
            |d| {
                serde_json::from_slice::<EnvelopeRef<'_>>(d)
                    .ok()
                    .map(fields)
            },
        );
        assert!(ok > 300 && bad > 3000, "{ok} accepted, {bad} refused");
    }
}
