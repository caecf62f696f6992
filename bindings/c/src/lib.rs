//! # edrlink C API
//!
//! A thin C layer over `edrlink-core` (the protocol lives there, nowhere else),
//! following the conventions of rustls-ffi:
//!
//! - Every fallible function returns an [`edrlink_result`] (`EDRLINK_OK` = 0;
//!   other values are exactly `edrlink_core::ErrorCode::as_u32()` numbers, plus
//!   a few FFI-only codes in the 900 range) and fills an optional
//!   `edrlink_error **` with a detailed message. `*err` is written only on
//!   failure; the caller frees it with `edrlink_error_free`.
//! - Out-parameters are written only on success.
//! - Handles are opaque, created by `*_new` and released by `*_free`;
//!   `*_free(NULL)` is a no-op.
//! - Strings returned by the library are freed with `edrlink_string_free`,
//!   byte buffers with `edrlink_bytes_free`.
//! - NULL pointers and invalid UTF-8 are reported (`EDRLINK_NULL_POINTER`,
//!   `EDRLINK_INVALID_UTF8`), never dereferenced blindly.
//! - No panic crosses the boundary: every exported body runs inside
//!   [`ffi_boundary!`], which turns a panic into `EDRLINK_INTERNAL`.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

use edrlink_core::error::ErrorInfo;
use edrlink_core::{Error as CoreError, ErrorCode};
use std::ffi::{c_char, CStr, CString};

/// The one panic boundary around every exported body.
///
/// - `ffi_boundary!(err; { ... })`: the body returns `FfiResult<()>`; the call
///   returns `edrlink_result`, storing failures (and caught panics, as
///   `EDRLINK_INTERNAL`) into the optional `edrlink_error **err`.
/// - `ffi_boundary!(default = value; { ... })`: for functions that cannot fail
///   (getters, `*_free`): the body's value, or `value` after a caught panic.
macro_rules! ffi_boundary {
    (default = $default:expr; $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(_) => $default,
        }
    }};
    ($err:expr; $body:block) => {{
        let err: *mut *mut $crate::edrlink_error = $err;
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::FfiResult<()> { $body },
        )) {
            Ok(Ok(())) => $crate::edrlink_result::EDRLINK_OK,
            // SAFETY: `err` is NULL or valid per every function's contract.
            Ok(Err(e)) => unsafe { $crate::set_error(err, e) },
            Err(_) => unsafe {
                $crate::set_error(
                    err,
                    $crate::FfiError::new(
                        $crate::edrlink_result::EDRLINK_INTERNAL,
                        "internal error: a panic was caught at the C API boundary",
                    ),
                )
            },
        }
    }};
}

mod client;
mod hooks;
mod host;
mod tools;
mod transport;

pub use client::*;
pub use hooks::*;
pub use host::*;
pub use tools::*;
pub use transport::*;

/// Result codes. `EDRLINK_OK` is 0; codes 100..799 are exactly the numbers of
/// `edrlink_core::ErrorCode` (stable, only ever added); 900..999 are C-API-only.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum edrlink_result {
    /// Success.
    EDRLINK_OK = 0,
    /// Input is not well-formed (bad JSON, bad base64, missing field, too large).
    EDRLINK_MALFORMED = 100,
    /// An argument handed to the SDK is invalid (empty id, bad config, wrong key length).
    EDRLINK_INVALID_ARGUMENT = 101,
    /// The message is of another type than expected (JWT `typ`, DSSE `payloadType`).
    EDRLINK_WRONG_TYPE = 102,
    /// Input exceeds a documented size cap.
    EDRLINK_TOO_LARGE = 103,
    /// A signature or MAC does not verify.
    EDRLINK_BAD_SIGNATURE = 200,
    /// The signing key is not known / not pinned.
    EDRLINK_UNKNOWN_KEY = 201,
    /// An algorithm other than the pinned one was named.
    EDRLINK_UNSUPPORTED_ALGORITHM = 202,
    /// The access token's `exp` has passed.
    EDRLINK_TOKEN_EXPIRED = 300,
    /// The access token's `nbf` is in the future.
    EDRLINK_TOKEN_NOT_YET_VALID = 301,
    /// The admin revoked the token.
    EDRLINK_TOKEN_REVOKED = 302,
    /// The token was redeemed `max_uses` times already.
    EDRLINK_TOKEN_EXHAUSTED = 303,
    /// The partner integration is turned off for this tenant.
    EDRLINK_INTEGRATION_DISABLED = 304,
    /// The token (or request) belongs to another data region.
    EDRLINK_WRONG_REGION = 305,
    /// The integration epoch moved on (toggled off since): a new token is required.
    EDRLINK_EPOCH_MISMATCH = 306,
    /// The endpoint presented the same device with another key (re-imaged or cloned).
    EDRLINK_POSSIBLE_CLONE = 307,
    /// The credential passed its `credential_exp` without being rotated: a new token is required.
    EDRLINK_CREDENTIAL_EXPIRED = 308,
    /// `iat`/`created` is outside the accepted window (±300 s).
    EDRLINK_STALE_MESSAGE = 400,
    /// The nonce was seen before.
    EDRLINK_REPLAY = 401,
    /// The flow session is unknown or expired: handshake again.
    EDRLINK_SESSION_EXPIRED = 402,
    /// The installation is unknown to the service.
    EDRLINK_UNKNOWN_INSTALLATION = 403,
    /// Generic authentication failure (down-level shared key, admin key).
    EDRLINK_UNAUTHORIZED = 404,
    /// Inbound flow is blocked (integration toggled off): keep data, retry later.
    EDRLINK_FLOW_BLOCKED = 500,
    /// The admin revoked this installation (or the credential is otherwise no longer valid): new token needed.
    EDRLINK_REVOKED = 501,
    /// The installation was offboarded.
    EDRLINK_OFFBOARDED = 502,
    /// Long run of authentication failures: the endpoint needs a new token.
    EDRLINK_NEEDS_REENROLL = 503,
    /// The batch exceeds the policy's size or event limit.
    EDRLINK_BATCH_TOO_LARGE = 600,
    /// Per-installation rate limit hit; honour the retry delay (`edrlink_error_retry_after`).
    EDRLINK_RATE_LIMITED = 601,
    /// The batch sequence number went backwards with a new batch id.
    EDRLINK_SEQUENCE_REGRESSION = 602,
    /// A policy with a lower version than the current one was offered.
    EDRLINK_POLICY_ROLLBACK = 603,
    /// An offboarding package is expired or for another tenant.
    EDRLINK_PACKAGE_INVALID = 604,
    /// The local queue is full and the host chose to refuse new events.
    EDRLINK_QUEUE_FULL = 605,
    /// The network or the HTTP exchange failed (connection, TLS, proxy, timeout, host transport).
    EDRLINK_TRANSPORT = 700,
    /// The service answered 5xx or something unexpected.
    EDRLINK_SERVICE_UNAVAILABLE = 701,
    /// Local storage (data directory, credential file) failed.
    EDRLINK_STORAGE = 702,
    /// The call is not valid in the current state (e.g. handshake before enroll).
    EDRLINK_INVALID_STATE = 703,
    /// The host signer (`edrlink_host_keys`) failed, returned a signature
    /// that does not verify or has the wrong length, or took longer than
    /// `signer_timeout_secs`; queued events are kept.
    EDRLINK_SIGNER_FAILED = 704,
    /// A bug: a panic was caught at the C boundary, or an invariant broke.
    EDRLINK_INTERNAL = 799,
    /// C API only: a required pointer argument was NULL.
    EDRLINK_NULL_POINTER = 900,
    /// C API only: a string argument is not valid UTF-8.
    EDRLINK_INVALID_UTF8 = 901,
    /// C API only: a caller-owned buffer is too small (the needed size is reported).
    EDRLINK_BUFFER_TOO_SMALL = 902,
}

use edrlink_result::*;

/// Every result code, in numeric order (Rust-side tests and lookups).
const ALL_RESULTS: &[edrlink_result] = &[
    EDRLINK_OK,
    EDRLINK_MALFORMED,
    EDRLINK_INVALID_ARGUMENT,
    EDRLINK_WRONG_TYPE,
    EDRLINK_TOO_LARGE,
    EDRLINK_BAD_SIGNATURE,
    EDRLINK_UNKNOWN_KEY,
    EDRLINK_UNSUPPORTED_ALGORITHM,
    EDRLINK_TOKEN_EXPIRED,
    EDRLINK_TOKEN_NOT_YET_VALID,
    EDRLINK_TOKEN_REVOKED,
    EDRLINK_TOKEN_EXHAUSTED,
    EDRLINK_INTEGRATION_DISABLED,
    EDRLINK_WRONG_REGION,
    EDRLINK_EPOCH_MISMATCH,
    EDRLINK_POSSIBLE_CLONE,
    EDRLINK_CREDENTIAL_EXPIRED,
    EDRLINK_STALE_MESSAGE,
    EDRLINK_REPLAY,
    EDRLINK_SESSION_EXPIRED,
    EDRLINK_UNKNOWN_INSTALLATION,
    EDRLINK_UNAUTHORIZED,
    EDRLINK_FLOW_BLOCKED,
    EDRLINK_REVOKED,
    EDRLINK_OFFBOARDED,
    EDRLINK_NEEDS_REENROLL,
    EDRLINK_BATCH_TOO_LARGE,
    EDRLINK_RATE_LIMITED,
    EDRLINK_SEQUENCE_REGRESSION,
    EDRLINK_POLICY_ROLLBACK,
    EDRLINK_PACKAGE_INVALID,
    EDRLINK_QUEUE_FULL,
    EDRLINK_TRANSPORT,
    EDRLINK_SERVICE_UNAVAILABLE,
    EDRLINK_STORAGE,
    EDRLINK_INVALID_STATE,
    EDRLINK_SIGNER_FAILED,
    EDRLINK_INTERNAL,
    EDRLINK_NULL_POINTER,
    EDRLINK_INVALID_UTF8,
    EDRLINK_BUFFER_TOO_SMALL,
];

impl edrlink_result {
    fn from_u32(n: u32) -> Option<edrlink_result> {
        ALL_RESULTS.iter().copied().find(|r| *r as u32 == n)
    }

    fn from_core(code: ErrorCode) -> edrlink_result {
        // Same numbers by contract; a core code this layer does not know yet
        // (ErrorCode is non_exhaustive) surfaces as INTERNAL, and the unit
        // test `every_core_code_has_a_result` fails first.
        match edrlink_result::from_u32(code.as_u32()) {
            Some(r) if r != EDRLINK_OK => r,
            _ => EDRLINK_INTERNAL,
        }
    }

    /// The stable snake_case name (the core's `ErrorCode::as_str`, checked by a unit test).
    fn name_c(self) -> &'static CStr {
        match self {
            EDRLINK_OK => c"ok",
            EDRLINK_MALFORMED => c"malformed",
            EDRLINK_INVALID_ARGUMENT => c"invalid_argument",
            EDRLINK_WRONG_TYPE => c"wrong_type",
            EDRLINK_TOO_LARGE => c"too_large",
            EDRLINK_BAD_SIGNATURE => c"bad_signature",
            EDRLINK_UNKNOWN_KEY => c"unknown_key",
            EDRLINK_UNSUPPORTED_ALGORITHM => c"unsupported_algorithm",
            EDRLINK_TOKEN_EXPIRED => c"token_expired",
            EDRLINK_TOKEN_NOT_YET_VALID => c"token_not_yet_valid",
            EDRLINK_TOKEN_REVOKED => c"token_revoked",
            EDRLINK_TOKEN_EXHAUSTED => c"token_exhausted",
            EDRLINK_INTEGRATION_DISABLED => c"integration_disabled",
            EDRLINK_WRONG_REGION => c"wrong_region",
            EDRLINK_EPOCH_MISMATCH => c"epoch_mismatch",
            EDRLINK_POSSIBLE_CLONE => c"possible_clone",
            EDRLINK_CREDENTIAL_EXPIRED => c"credential_expired",
            EDRLINK_STALE_MESSAGE => c"stale_message",
            EDRLINK_REPLAY => c"replay",
            EDRLINK_SESSION_EXPIRED => c"session_expired",
            EDRLINK_UNKNOWN_INSTALLATION => c"unknown_installation",
            EDRLINK_UNAUTHORIZED => c"unauthorized",
            EDRLINK_FLOW_BLOCKED => c"flow_blocked",
            EDRLINK_REVOKED => c"revoked",
            EDRLINK_OFFBOARDED => c"offboarded",
            EDRLINK_NEEDS_REENROLL => c"needs_reenroll",
            EDRLINK_BATCH_TOO_LARGE => c"batch_too_large",
            EDRLINK_RATE_LIMITED => c"rate_limited",
            EDRLINK_SEQUENCE_REGRESSION => c"sequence_regression",
            EDRLINK_POLICY_ROLLBACK => c"policy_rollback",
            EDRLINK_PACKAGE_INVALID => c"package_invalid",
            EDRLINK_QUEUE_FULL => c"queue_full",
            EDRLINK_TRANSPORT => c"transport",
            EDRLINK_SERVICE_UNAVAILABLE => c"service_unavailable",
            EDRLINK_STORAGE => c"storage",
            EDRLINK_INVALID_STATE => c"invalid_state",
            EDRLINK_SIGNER_FAILED => c"signer_failed",
            EDRLINK_INTERNAL => c"internal",
            EDRLINK_NULL_POINTER => c"null_pointer",
            EDRLINK_INVALID_UTF8 => c"invalid_utf8",
            EDRLINK_BUFFER_TOO_SMALL => c"buffer_too_small",
        }
    }

    /// The HTTP status that goes with the code: the core's for core codes;
    /// the C-only codes are caller mistakes (400); `EDRLINK_OK` is 200.
    fn http_status(self) -> u16 {
        match self {
            EDRLINK_OK => 200,
            EDRLINK_NULL_POINTER | EDRLINK_INVALID_UTF8 | EDRLINK_BUFFER_TOO_SMALL => 400,
            other => ErrorCode::from_u32(other as u32).map_or(500, ErrorCode::http_status),
        }
    }

    #[cfg(test)]
    fn name(self) -> &'static str {
        self.name_c().to_str().unwrap_or("internal")
    }

    fn description(self) -> &'static CStr {
        match self {
            EDRLINK_OK => c"success",
            EDRLINK_MALFORMED => c"input is not well-formed",
            EDRLINK_INVALID_ARGUMENT => c"an argument is invalid",
            EDRLINK_WRONG_TYPE => c"the message is of another type than expected",
            EDRLINK_TOO_LARGE => c"input exceeds a size limit",
            EDRLINK_BAD_SIGNATURE => c"a signature or MAC does not verify",
            EDRLINK_UNKNOWN_KEY => c"the signing key is not known",
            EDRLINK_UNSUPPORTED_ALGORITHM => c"unsupported algorithm",
            EDRLINK_TOKEN_EXPIRED => c"the access token has expired",
            EDRLINK_TOKEN_NOT_YET_VALID => c"the access token is not valid yet",
            EDRLINK_TOKEN_REVOKED => c"the access token was revoked",
            EDRLINK_TOKEN_EXHAUSTED => c"the access token was used up",
            EDRLINK_INTEGRATION_DISABLED => c"the partner integration is turned off",
            EDRLINK_WRONG_REGION => c"the token belongs to another data region",
            EDRLINK_EPOCH_MISMATCH => {
                c"the integration was toggled since the token was issued: a new token is required"
            }
            EDRLINK_POSSIBLE_CLONE => c"the same device was presented with another key",
            EDRLINK_CREDENTIAL_EXPIRED => {
                c"the credential expired without rotation: a new token is required"
            }
            EDRLINK_STALE_MESSAGE => c"the message time is outside the accepted window",
            EDRLINK_REPLAY => c"the nonce was seen before",
            EDRLINK_SESSION_EXPIRED => c"the flow session expired",
            EDRLINK_UNKNOWN_INSTALLATION => c"the installation is unknown to the service",
            EDRLINK_UNAUTHORIZED => c"authentication failed",
            EDRLINK_FLOW_BLOCKED => c"inbound flow is blocked: data is kept and retried later",
            EDRLINK_REVOKED => c"the credential is no longer valid: a new token is required",
            EDRLINK_OFFBOARDED => c"the installation was offboarded",
            EDRLINK_NEEDS_REENROLL => c"repeated authentication failures: a new token is required",
            EDRLINK_BATCH_TOO_LARGE => c"the batch exceeds the policy limits",
            EDRLINK_RATE_LIMITED => c"rate limited: retry later",
            EDRLINK_SEQUENCE_REGRESSION => c"the batch sequence number went backwards",
            EDRLINK_POLICY_ROLLBACK => c"a policy older than the current one was offered",
            EDRLINK_PACKAGE_INVALID => c"the offboarding package is expired or for another tenant",
            EDRLINK_QUEUE_FULL => c"the local event queue is full",
            EDRLINK_TRANSPORT => c"the network or HTTP exchange failed",
            EDRLINK_SERVICE_UNAVAILABLE => c"the service is unavailable",
            EDRLINK_STORAGE => c"local storage failed",
            EDRLINK_INVALID_STATE => c"the call is not valid in the current state",
            EDRLINK_SIGNER_FAILED => c"the host signer failed",
            EDRLINK_INTERNAL => c"internal error",
            EDRLINK_NULL_POINTER => c"a required pointer argument was NULL",
            EDRLINK_INVALID_UTF8 => c"a string argument is not valid UTF-8",
            EDRLINK_BUFFER_TOO_SMALL => c"the output buffer is too small",
        }
    }
}

/// A detailed error: the one error record of every edrlink binding (`code`
/// name, `number`, `http_status`, `retry_after`, `detail`), taken field by
/// field from the core's `ErrorInfo` (never parsed out of a message).
/// Created by the library on failure, freed by the caller with
/// `edrlink_error_free`. Immutable, so it may be read from any thread.
pub struct edrlink_error {
    code: edrlink_result,
    http_status: u16,
    message: CString,
    retry_after: Option<u64>,
}

/// The error type used inside this crate before it crosses the boundary.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) code: edrlink_result,
    pub(crate) http_status: u16,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl FfiError {
    /// An error raised by this layer for its own reasons (NULL pointer, bad
    /// UTF-8, a small buffer) or a core code without a core `Error` at hand.
    pub(crate) fn new(code: edrlink_result, message: impl Into<String>) -> Self {
        FfiError {
            code,
            http_status: code.http_status(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn null(what: &str) -> Self {
        FfiError::new(EDRLINK_NULL_POINTER, format!("{what} must not be NULL"))
    }
}

impl From<ErrorInfo> for FfiError {
    fn from(i: ErrorInfo) -> Self {
        FfiError {
            code: edrlink_result::from_core(i.code),
            http_status: i.http_status,
            message: i.detail,
            retry_after: i.retry_after,
        }
    }
}

impl From<CoreError> for FfiError {
    fn from(e: CoreError) -> Self {
        FfiError::from(e.info())
    }
}

impl edrlink_error {
    fn from_ffi(e: FfiError) -> Self {
        edrlink_error {
            code: e.code,
            http_status: e.http_status,
            message: CString::new(e.message.replace('\0', " ")).unwrap_or_default(),
            retry_after: e.retry_after,
        }
    }

    /// The error record as JSON, the shape of the core's `ErrorInfo`
    /// (`{"code","number","http_status","retry_after","detail"}`).
    fn to_json(&self) -> String {
        serde_json::json!({
            "code": self.code.name_c().to_str().unwrap_or("internal"),
            "number": self.code as u32,
            "http_status": self.http_status,
            "retry_after": self.retry_after,
            "detail": self.message.to_string_lossy(),
        })
        .to_string()
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

/// A library-owned `edrlink_error` (freed by `edrlink_error_free`).
pub(crate) fn error_into_raw(e: FfiError) -> *mut edrlink_error {
    Box::into_raw(Box::new(edrlink_error::from_ffi(e)))
}

/// Stores `e` into the caller's optional error out-parameter.
///
/// # Safety
/// `err` is NULL or valid for writing one pointer.
pub(crate) unsafe fn set_error(err: *mut *mut edrlink_error, e: FfiError) -> edrlink_result {
    let code = e.code;
    if !err.is_null() {
        let boxed = error_into_raw(e);
        // SAFETY: caller contract; checked non-NULL above.
        unsafe { *err = boxed };
    }
    code
}

// ---------------------------------------------------------------- helpers

/// Borrows a NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string that outlives the borrow.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, what: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: caller contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| FfiError::new(EDRLINK_INVALID_UTF8, format!("{what} is not valid UTF-8")))
}

/// Like [`arg_str`], but NULL means "absent".
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn arg_opt_str<'a>(p: *const c_char, what: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded.
        unsafe { arg_str(p, what) }.map(Some)
    }
}

/// Borrows a byte-buffer argument; `(NULL, 0)` is the empty buffer.
///
/// # Safety
/// `p` is NULL or valid for reading `len` bytes.
pub(crate) unsafe fn arg_bytes<'a>(p: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(FfiError::null(what))
        };
    }
    // SAFETY: caller contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Checks a required out-pointer before any work is done.
pub(crate) fn check_out<T>(p: *mut T, what: &str) -> FfiResult<()> {
    if p.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(())
    }
}

/// Copies a Rust string into a library-allocated C string (interior NULs are
/// an internal error: JSON output never contains them).
pub(crate) fn to_c_string(s: impl Into<Vec<u8>>) -> FfiResult<*mut c_char> {
    CString::new(s)
        .map(CString::into_raw)
        .map_err(|_| FfiError::new(EDRLINK_INTERNAL, "output contains a NUL byte"))
}

// ---------------------------------------------------------------- exported: version, codes, errors, memory

/// The library version (`"MAJOR.MINOR.PATCH"`, same as `EDRLINK_VERSION`).
/// Static storage: do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn edrlink_version() -> *const c_char {
    ffi_boundary!(default = std::ptr::null(); {
        static V: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("version has no NUL"),
        };
        V.as_ptr()
    })
}

/// The protocol version this library speaks (1 = `/v1`). Thread-safe.
#[no_mangle]
pub extern "C" fn edrlink_protocol_version() -> u32 {
    ffi_boundary!(default = 0; { edrlink_core::PROTOCOL_VERSION })
}

/// The stable snake_case name of a result code (`"ok"`, `"token_expired"`,
/// `"null_pointer"`, …; the same names travel on the wire). Unknown numbers
/// give `"unknown"`. Static storage: do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn edrlink_result_name(code: u32) -> *const c_char {
    ffi_boundary!(default = std::ptr::null(); {
        edrlink_result::from_u32(code).map_or(c"unknown", edrlink_result::name_c).as_ptr()
    })
}

/// A short English description of a result code. Unknown numbers give
/// `"unknown result code"`. Static storage: do not free. Thread-safe.
#[no_mangle]
pub extern "C" fn edrlink_result_message(code: u32) -> *const c_char {
    ffi_boundary!(default = std::ptr::null(); {
        edrlink_result::from_u32(code).map_or(c"unknown result code", edrlink_result::description).as_ptr()
    })
}

/// The result code of an error (`EDRLINK_NULL_POINTER` when `err` is NULL).
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_code(err: *const edrlink_error) -> edrlink_result {
    ffi_boundary!(default = EDRLINK_INTERNAL; {
        // SAFETY: NULL or a live error from this library.
        unsafe { err.as_ref() }.map_or(EDRLINK_NULL_POINTER, |e| e.code)
    })
}

/// The error's message (UTF-8, never contains secrets). Valid until
/// `edrlink_error_free(err)`; do not free it separately. `""` when `err` is NULL.
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_message(err: *const edrlink_error) -> *const c_char {
    ffi_boundary!(default = std::ptr::null(); {
        // SAFETY: NULL or a live error from this library.
        match unsafe { err.as_ref() } {
            Some(e) => e.message.as_ptr(),
            None => c"".as_ptr(),
        }
    })
}

/// Seconds the service asked to wait before retrying (`EDRLINK_RATE_LIMITED`,
/// `EDRLINK_SERVICE_UNAVAILABLE`), 0 when none or when `err` is NULL (tell
/// the two apart with `edrlink_error_has_retry_after`).
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_retry_after(err: *const edrlink_error) -> u64 {
    ffi_boundary!(default = 0; {
        // SAFETY: NULL or a live error from this library.
        unsafe { err.as_ref() }.and_then(|e| e.retry_after).unwrap_or(0)
    })
}

/// Whether the error carries a retry delay (`Retry-After`): tells "wait 0
/// seconds" from "no delay given", which `edrlink_error_retry_after` cannot.
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_has_retry_after(err: *const edrlink_error) -> bool {
    ffi_boundary!(default = false; {
        // SAFETY: NULL or a live error from this library.
        unsafe { err.as_ref() }.is_some_and(|e| e.retry_after.is_some())
    })
}

/// The error's stable snake_case code name (`"rate_limited"`,
/// `"null_pointer"`, …; the `code` field of every binding's error and of the
/// wire's problem bodies). Static storage: do not free. `"null_pointer"`
/// when `err` is NULL.
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_name(err: *const edrlink_error) -> *const c_char {
    ffi_boundary!(default = std::ptr::null(); {
        // SAFETY: NULL or a live error from this library.
        unsafe { err.as_ref() }.map_or(EDRLINK_NULL_POINTER, |e| e.code).name_c().as_ptr()
    })
}

/// The HTTP status that goes with the error's code (the core's table, e.g.
/// 429 for `EDRLINK_RATE_LIMITED`; 400 for the C-only codes). 0 when `err`
/// is NULL.
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_http_status(err: *const edrlink_error) -> u16 {
    ffi_boundary!(default = 0; {
        // SAFETY: NULL or a live error from this library.
        unsafe { err.as_ref() }.map_or(0, |e| e.http_status)
    })
}

/// The error's human-readable detail (the field every binding calls
/// `detail`; same text as `edrlink_error_message`). Never a secret. Valid
/// until `edrlink_error_free(err)`. `""` when `err` is NULL.
///
/// # Safety
/// `err` is NULL or an error from this library that was not freed.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_detail(err: *const edrlink_error) -> *const c_char {
    // SAFETY: forwarded contract.
    unsafe { edrlink_error_message(err) }
}

/// The whole error record as JSON, the same shape as the health report's
/// `last_error` and every binding's error:
/// `{"code":"rate_limited","number":601,"http_status":429,"retry_after":2,"detail":"…"}`
/// (`retry_after` is `null` when absent). Free with `edrlink_string_free`.
///
/// # Safety
/// `err` NULL or a live error from this library; `out_json` NULL or writable;
/// `out_err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_to_json(
    err: *const edrlink_error,
    out_json: *mut *mut c_char,
    out_err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(out_err; {
        check_out(out_json, "out_json")?;
        // SAFETY: NULL or a live error from this library.
        let e = unsafe { err.as_ref() }.ok_or_else(|| FfiError::null("err"))?;
        let s = to_c_string(e.to_json())?;
        // SAFETY: checked non-NULL.
        unsafe { *out_json = s };
        Ok(())
    })
}

/// The HTTP status that goes with a result code (the core's table; 400 for
/// the C-only codes, 200 for `EDRLINK_OK`, 0 for unknown numbers). Thread-safe.
#[no_mangle]
pub extern "C" fn edrlink_result_http_status(code: u32) -> u16 {
    ffi_boundary!(default = 0; {
        edrlink_result::from_u32(code).map_or(0, edrlink_result::http_status)
    })
}

/// Frees an error. NULL is a no-op. Freeing the same error twice is undefined
/// behaviour: set your pointer to NULL after freeing.
///
/// # Safety
/// `err` is NULL or an error from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn edrlink_error_free(err: *mut edrlink_error) {
    ffi_boundary!(default = (); {
        if !err.is_null() {
            // SAFETY: created by Box::into_raw in set_error, freed once.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}

/// Frees a string the library returned through a `char **` out-parameter.
/// The bytes are overwritten before release (they may hold claims or
/// envelopes). NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string returned by this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn edrlink_string_free(s: *mut c_char) {
    ffi_boundary!(default = (); {
        if !s.is_null() {
            // SAFETY: created by CString::into_raw in this library, freed once.
            let c = unsafe { CString::from_raw(s) };
            let mut bytes = c.into_bytes();
            zeroize::Zeroize::zeroize(&mut bytes);
        }
    })
}

/// Frees a byte buffer the library returned as `(uint8_t **out, size_t *out_len)`;
/// pass the same length back. The bytes are overwritten before release.
/// NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a buffer returned by this library with this `len`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn edrlink_bytes_free(ptr: *mut u8, len: usize) {
    ffi_boundary!(default = (); {
        if !ptr.is_null() {
            // SAFETY: created by Box<[u8]>::into_raw with this length, freed once.
            let mut b = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) };
            zeroize::Zeroize::zeroize(&mut b[..]);
        }
    })
}

/// Hands a byte vector to C as `(ptr, len)`.
pub(crate) fn to_c_bytes(v: Vec<u8>) -> (*mut u8, usize) {
    let b = v.into_boxed_slice();
    let len = b.len();
    (Box::into_raw(b) as *mut u8, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_code_has_a_result_with_the_same_number_and_name() {
        for &c in ErrorCode::ALL {
            let r = edrlink_result::from_core(c);
            assert_eq!(r as u32, c.as_u32(), "{c}");
            assert_eq!(r.name(), c.as_str());
        }
        // and the FFI-only ones are outside the core's ranges
        for r in [
            EDRLINK_NULL_POINTER,
            EDRLINK_INVALID_UTF8,
            EDRLINK_BUFFER_TOO_SMALL,
        ] {
            assert!(ErrorCode::from_u32(r as u32).is_none());
        }
        assert_eq!(ALL_RESULTS.len(), ErrorCode::ALL.len() + 4);
    }

    #[test]
    fn panic_boundary_turns_panics_into_internal() {
        let mut err: *mut edrlink_error = std::ptr::null_mut();
        let r = ffi_boundary!(&mut err; {
            if edrlink_protocol_version() == 1 {
                panic!("boom");
            }
            Ok(())
        });
        assert_eq!(r, EDRLINK_INTERNAL);
        // SAFETY: err was set by the boundary above.
        unsafe {
            assert_eq!(edrlink_error_code(err), EDRLINK_INTERNAL);
            edrlink_error_free(err);
        }
        let v: u32 = ffi_boundary!(default = 7; {
            if edrlink_protocol_version() == 1 {
                panic!("boom");
            }
            1
        });
        assert_eq!(v, 7);
    }

    #[test]
    fn error_record_is_the_core_error_info() {
        let core = CoreError::new(ErrorCode::RateLimited, "slow down").with_retry_after(2);
        let e = edrlink_error::from_ffi(FfiError::from(core.clone()));
        let ours: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(ours, serde_json::to_value(core.info()).unwrap());
        assert_eq!(e.code, EDRLINK_RATE_LIMITED);
        assert_eq!(e.http_status, 429);
        // a C-only error has the same fields, with its own code
        let n = edrlink_error::from_ffi(FfiError::null("x"));
        let v: serde_json::Value = serde_json::from_str(&n.to_json()).unwrap();
        assert_eq!(v["code"], "null_pointer");
        assert_eq!(v["number"], 900);
        assert_eq!(v["http_status"], 400);
        assert!(v["retry_after"].is_null());
    }

    #[test]
    fn version_matches_cargo() {
        let v = unsafe { CStr::from_ptr(edrlink_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
