//! Stateless functions: tokens, DSSE envelopes, keys, down-level signing, EICAR.
//! Every function here is thread-safe (no shared state).

use crate::edrlink_result::*;
use crate::{
    arg_bytes, arg_str, check_out, edrlink_error, edrlink_result, to_c_bytes, to_c_string,
    FfiError, FfiResult,
};
use edrlink_core::keys::{Keyset, SigningKey, VerifyingKey};
use edrlink_core::{downlevel, dsse, eicar, token};
use std::ffi::c_char;
use zeroize::Zeroizing;

/// Length of an Ed25519 private key seed and of a public key, in bytes.
pub const EDRLINK_KEY_LEN: usize = 32;

/// Builds the signing key from a caller seed; the core judges its length
/// (`SigningKey::from_seed_slice`: `invalid_argument` unless 32 bytes).
fn seed_key(seed: *const u8, seed_len: usize) -> FfiResult<SigningKey> {
    // SAFETY: caller contract (readable for seed_len bytes, or NULL).
    let bytes = unsafe { arg_bytes(seed, seed_len, "seed") }?;
    if seed.is_null() {
        return Err(FfiError::null("seed"));
    }
    Ok(SigningKey::from_seed_slice(bytes)?)
}

/// The public key argument, checked by the core (`malformed` unless 32 bytes).
fn public_key_arg(pk: *const u8, pk_len: usize) -> FfiResult<VerifyingKey> {
    if pk.is_null() {
        return Err(FfiError::null("public_key"));
    }
    // SAFETY: non-NULL, caller guarantees pk_len readable bytes.
    Ok(VerifyingKey::from_bytes(unsafe {
        std::slice::from_raw_parts(pk, pk_len)
    })?)
}

/// Decodes an access token for display, **without** checking its signature
/// (nothing in it is trusted). On success `*out_json` receives
/// `{"kid", "claims": {iss, aud, jti, iat, nbf, exp, partner_id, tenant_id,
/// region, service_url, epoch, max_uses}, "status", "seconds_left"}` where
/// `status` is `not_yet_valid`, `valid`, `expires_soon` or `expired` at `now`
/// (Unix seconds). Free it with `edrlink_string_free`.
///
/// Errors: `EDRLINK_MALFORMED`, `EDRLINK_WRONG_TYPE`, `EDRLINK_NULL_POINTER`,
/// `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// `token` is NULL or a NUL-terminated string; `out_json` is NULL or writable;
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_token_inspect(
    token: *const c_char,
    now: i64,
    out_json: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_json, "out_json")?;
        // SAFETY: caller contract.
        let t = Zeroizing::new(unsafe { arg_str(token, "token") }?.to_owned());
        let info = token::inspect_at(&t, now)?;
        let v = serde_json::to_string(&info).map_err(|e| FfiError::new(EDRLINK_INTERNAL, e.to_string()))?;
        let s = to_c_string(v)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = s };
        Ok(())
    })
}

/// Verifies an access token against a pinned keyset (JWKS JSON, as served at
/// `GET /v1/keys` or carried in an onboarding package's `service_keys`):
/// signature, type, audience and validity window at `now` (Unix seconds) with
/// `skew_secs` allowance (clamped to 0..300). On success, `*out_claims_json`
/// (optional, may be NULL) receives the verified claims as JSON.
///
/// Errors: `EDRLINK_BAD_SIGNATURE` (tampered), `EDRLINK_UNKNOWN_KEY`,
/// `EDRLINK_TOKEN_EXPIRED`, `EDRLINK_TOKEN_NOT_YET_VALID`, `EDRLINK_MALFORMED`,
/// `EDRLINK_WRONG_TYPE`, `EDRLINK_UNSUPPORTED_ALGORITHM`, `EDRLINK_NULL_POINTER`,
/// `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// String arguments are NULL or NUL-terminated; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_token_verify(
    token: *const c_char,
    keyset_json: *const c_char,
    now: i64,
    skew_secs: i64,
    out_claims_json: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        // SAFETY: caller contract.
        let t = Zeroizing::new(unsafe { arg_str(token, "token") }?.to_owned());
        // SAFETY: caller contract.
        let keys = Keyset::from_json(unsafe { arg_str(keyset_json, "keyset_json") }?)?;
        let claims = token::verify(&t, &keys, now, skew_secs)?;
        if !out_claims_json.is_null() {
            let s = to_c_string(serde_json::to_string(&claims).map_err(|e| FfiError::new(EDRLINK_INTERNAL, e.to_string()))?)?;
            // SAFETY: checked non-NULL.
            unsafe { *out_claims_json = s };
        }
        Ok(())
    })
}

/// Derives the 32-byte Ed25519 public key of a 32-byte private key seed into
/// `out_public_key` (32 writable bytes). The seed is copied into a buffer
/// that is wiped after use.
///
/// # Safety
/// `seed` readable for `seed_len` bytes; `out_public_key` NULL or 32 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn edrlink_public_key_from_seed(
    seed: *const u8,
    seed_len: usize,
    out_public_key: *mut u8,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_public_key, "out_public_key")?;
        let key = seed_key(seed, seed_len)?;
        // SAFETY: caller provides 32 writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(key.verifying_key().as_bytes().as_ptr(), out_public_key, 32) };
        Ok(())
    })
}

/// The key id (base64url of the first 16 bytes of SHA-256 of the key) of a
/// 32-byte public key, as used in DSSE `keyid` and JWT `kid`. Free with
/// `edrlink_string_free`.
///
/// # Safety
/// `public_key` readable for `public_key_len` bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_key_id(
    public_key: *const u8,
    public_key_len: usize,
    out_key_id: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_key_id, "out_key_id")?;
        let pk = public_key_arg(public_key, public_key_len)?;
        let s = to_c_string(pk.key_id())?;
        // SAFETY: checked non-NULL.
        unsafe { *out_key_id = s };
        Ok(())
    })
}

/// Seals `payload` into a DSSE envelope (edrlink profile: one Ed25519
/// signature with `keyid`) signed with the 32-byte private key `seed`.
/// `payload_type` is 1..128 printable ASCII characters. On success
/// `*out_envelope_json` receives the envelope JSON; free it with
/// `edrlink_string_free`. The seed is copied into a buffer wiped after use.
///
/// Errors: `EDRLINK_INVALID_ARGUMENT` (seed not 32 bytes), `EDRLINK_MALFORMED`
/// (bad payload type), `EDRLINK_NULL_POINTER`, `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// `seed` readable for `seed_len` bytes, `payload` for `payload_len` bytes
/// (`NULL, 0` is an empty payload); out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_envelope_seal(
    seed: *const u8,
    seed_len: usize,
    payload_type: *const c_char,
    payload: *const u8,
    payload_len: usize,
    out_envelope_json: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_envelope_json, "out_envelope_json")?;
        let key = seed_key(seed, seed_len)?;
        // SAFETY: caller contract.
        let ptype = unsafe { arg_str(payload_type, "payload_type") }?;
        // SAFETY: caller contract.
        let body = unsafe { arg_bytes(payload, payload_len, "payload") }?;
        let env = dsse::seal(ptype, body, &key)?;
        let s = to_c_string(env)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_envelope_json = s };
        Ok(())
    })
}

/// Opens a DSSE envelope: checks the profile, that `payloadType` equals
/// `expected_payload_type`, that `keyid` names `public_key` (32 bytes) and
/// that the signature verifies; then returns the payload in
/// `*out_payload`/`*out_payload_len` (free with `edrlink_bytes_free(ptr, len)`;
/// an empty payload still yields a non-NULL pointer).
///
/// Errors: `EDRLINK_MALFORMED`, `EDRLINK_WRONG_TYPE`, `EDRLINK_UNKNOWN_KEY`,
/// `EDRLINK_BAD_SIGNATURE`, `EDRLINK_TOO_LARGE`, `EDRLINK_NULL_POINTER`,
/// `EDRLINK_INVALID_UTF8`; `EDRLINK_MALFORMED` also for a key that is not 32 bytes.
///
/// # Safety
/// Strings NULL or NUL-terminated; `public_key` readable for `public_key_len`
/// bytes; out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_envelope_open(
    envelope_json: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    expected_payload_type: *const c_char,
    out_payload: *mut *mut u8,
    out_payload_len: *mut usize,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_payload, "out_payload")?;
        check_out(out_payload_len, "out_payload_len")?;
        // SAFETY: caller contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        // SAFETY: caller contract.
        let expected = unsafe { arg_str(expected_payload_type, "expected_payload_type") }?;
        let pk = public_key_arg(public_key, public_key_len)?;
        let payload = dsse::open(env.as_bytes(), expected, &pk)?;
        let (p, n) = to_c_bytes(payload);
        // SAFETY: checked non-NULL.
        unsafe {
            *out_payload = p;
            *out_payload_len = n;
        }
        Ok(())
    })
}

/// Verifies a DSSE envelope's signature with `public_key` (32 bytes) without
/// fixing the payload type; on success `*out_payload_type` (optional, may be
/// NULL) receives the payload type (free with `edrlink_string_free`).
///
/// Errors: as `edrlink_envelope_open`, without `EDRLINK_WRONG_TYPE`.
///
/// # Safety
/// As `edrlink_envelope_open`.
#[no_mangle]
pub unsafe extern "C" fn edrlink_envelope_verify(
    envelope_json: *const c_char,
    public_key: *const u8,
    public_key_len: usize,
    out_payload_type: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        // SAFETY: caller contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        let pk = public_key_arg(public_key, public_key_len)?;
        let parsed = dsse::parse(env.as_bytes())?;
        parsed.verify(&pk)?;
        if !out_payload_type.is_null() {
            let s = to_c_string(parsed.payload_type)?;
            // SAFETY: checked non-NULL.
            unsafe { *out_payload_type = s };
        }
        Ok(())
    })
}

/// Computes the down-level `Authorization` header value
/// (`SharedKey <workspace_id>:<base64 HMAC-SHA256>`) over METHOD, PATH,
/// content type, the `x-edrlink-date` value (RFC 3339) and the SHA-256 of the
/// body. `workspace_key` is the raw key (32 bytes, the base64url-decoded
/// `workspace_key` of the onboarding package); it is copied into a buffer
/// wiped after use. Free the result with `edrlink_string_free`.
///
/// Errors:
/// `EDRLINK_NULL_POINTER`, `EDRLINK_INVALID_UTF8`.
///
/// # Safety
/// Strings NULL or NUL-terminated; buffers readable for their lengths
/// (`NULL, 0` is an empty body); out-pointers NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_downlevel_authorization(
    workspace_id: *const c_char,
    workspace_key: *const u8,
    workspace_key_len: usize,
    method: *const c_char,
    path: *const c_char,
    content_type: *const c_char,
    date: *const c_char,
    body: *const u8,
    body_len: usize,
    out_authorization: *mut *mut c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        check_out(out_authorization, "out_authorization")?;
        // SAFETY (all below): caller contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        let key = Zeroizing::new(unsafe { arg_bytes(workspace_key, workspace_key_len, "workspace_key") }?.to_vec());
        let method = unsafe { arg_str(method, "method") }?;
        let path = unsafe { arg_str(path, "path") }?;
        let ct = unsafe { arg_str(content_type, "content_type") }?;
        let date = unsafe { arg_str(date, "date") }?;
        let body = unsafe { arg_bytes(body, body_len, "body") }?;
        let s = to_c_string(downlevel::authorization(ws, &key, method, path, ct, date, body))?;
        // SAFETY: checked non-NULL.
        unsafe { *out_authorization = s };
        Ok(())
    })
}

/// Size of a buffer holding a lower-case hex SHA-256 and its NUL (65).
pub const EDRLINK_SHA256_HEX_SIZE: usize = 65;

/// Writes the SHA-256 of the EICAR test file (64 lower-case hex characters and
/// a NUL) into the caller's buffer `buf` of `buf_len` bytes. `*out_needed`
/// (optional) always receives the size needed including the NUL (65), also on
/// `EDRLINK_BUFFER_TOO_SMALL`, so callers may probe with `buf = NULL, buf_len = 0`.
///
/// # Safety
/// `buf` NULL or writable for `buf_len` bytes; `out_needed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_eicar_sha256(
    buf: *mut c_char,
    buf_len: usize,
    out_needed: *mut usize,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let s = eicar::EICAR_SHA256.as_bytes();
        let needed = s.len() + 1;
        if !out_needed.is_null() {
            // SAFETY: checked non-NULL. (Written on BUFFER_TOO_SMALL too, by design.)
            unsafe { *out_needed = needed };
        }
        if buf_len < needed {
            return Err(FfiError::new(EDRLINK_BUFFER_TOO_SMALL, format!("buffer needs {needed} bytes")));
        }
        check_out(buf, "buf")?;
        // SAFETY: buf has at least `needed` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), buf as *mut u8, s.len());
            *buf.add(s.len()) = 0;
        }
        Ok(())
    })
}
