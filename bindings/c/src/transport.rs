//! Host-provided HTTP transport: a C struct of function pointers plus userdata.

use crate::edrlink_result::*;
use crate::{arg_bytes, arg_str, edrlink_error, edrlink_result, FfiError};
use edrlink_core::agent::{HttpRequest, HttpResponse, Transport};
use edrlink_core::{Error as CoreError, ErrorCode};
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::Mutex;

/// One HTTP header (name in lower case). Borrowed: valid only during the
/// `send` callback.
#[repr(C)]
pub struct edrlink_http_header {
    /// Header name, lower case, NUL-terminated.
    pub name: *const c_char,
    /// Header value, NUL-terminated.
    pub value: *const c_char,
}

/// A request the library asks the host transport to perform. Everything it
/// points to is owned by the library and valid only during the `send`
/// callback; copy what you need to keep.
#[repr(C)]
pub struct edrlink_http_request {
    /// `"POST"` or `"GET"`.
    pub method: *const c_char,
    /// Absolute URL (`http://` or `https://`).
    pub url: *const c_char,
    /// Headers (`headers_len` entries), names in lower case.
    pub headers: *const edrlink_http_header,
    /// Number of headers.
    pub headers_len: usize,
    /// Body bytes (`body_len`; may be NULL when empty).
    pub body: *const u8,
    /// Body length.
    pub body_len: usize,
}

/// The response being filled by the host transport's `send` callback, with
/// `edrlink_http_response_set_status`, `edrlink_http_response_add_header` and
/// `edrlink_http_response_set_body` (each copies its arguments). Owned by the
/// library; valid only during the callback.
pub struct edrlink_http_response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Performs one HTTP exchange for the host. Return 0 when a response (any
/// status, 4xx and 5xx included) was received and stored into `resp`;
/// non-zero when there is none (connection, TLS, timeout): the library then
/// treats it as `EDRLINK_TRANSPORT` and retries with backoff.
pub type edrlink_transport_send_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        req: *const edrlink_http_request,
        resp: *mut edrlink_http_response,
    ) -> c_int,
>;

/// Releases the transport's userdata.
pub type edrlink_transport_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A host HTTP transport, handed to `edrlink_client_new` (which copies the
/// struct; pass NULL there for the built-in HTTPS transport).
///
/// Threading: `send` is called from whichever thread is inside a client
/// function that talks to the service (enroll, handshake, flush, offboard):
/// possibly different threads over time, but never concurrently for one
/// client (the library serializes calls per client). If one userdata is shared
/// by several clients, `send` must be safe to call concurrently.
/// `send` must not call functions of the same client (it would deadlock).
///
/// Lifetime: `userdata` must stay valid until the client is freed. If
/// `free_userdata` is not NULL, the library calls it exactly once with
/// `userdata` when the client is freed, or when `edrlink_client_new` fails
/// after taking the transport.
#[repr(C)]
pub struct edrlink_transport {
    /// Passed back to the callbacks unchanged.
    pub userdata: *mut c_void,
    /// Required.
    pub send: edrlink_transport_send_fn,
    /// Optional (NULL: the host manages userdata itself).
    pub free_userdata: edrlink_transport_free_fn,
}

/// Owns a copy of the host's transport struct.
pub(crate) struct HostTransport {
    userdata: *mut c_void,
    send: unsafe extern "C" fn(
        *mut c_void,
        *const edrlink_http_request,
        *mut edrlink_http_response,
    ) -> c_int,
    free_userdata: edrlink_transport_free_fn,
    /// Serializes `send` per client, as documented.
    lock: Mutex<()>,
}

// SAFETY: the documented contract of `edrlink_transport` requires `send` to be
// callable from any thread and `userdata` to be usable from any thread; calls
// are serialized by `lock`.
unsafe impl Send for HostTransport {}
// SAFETY: as above.
unsafe impl Sync for HostTransport {}

impl HostTransport {
    /// Takes ownership of userdata (from here on, `free_userdata` runs on drop).
    pub(crate) fn new(t: &edrlink_transport) -> Result<HostTransport, FfiError> {
        match t.send {
            Some(send) => Ok(HostTransport {
                userdata: t.userdata,
                send,
                free_userdata: t.free_userdata,
                lock: Mutex::new(()),
            }),
            None => {
                if let Some(f) = t.free_userdata {
                    // SAFETY: contract: called once when creation fails after taking the transport.
                    unsafe { f(t.userdata) };
                }
                Err(FfiError::new(
                    EDRLINK_INVALID_ARGUMENT,
                    "transport.send must not be NULL",
                ))
            }
        }
    }
}

impl Drop for HostTransport {
    fn drop(&mut self) {
        if let Some(f) = self.free_userdata {
            // SAFETY: contract: called exactly once, when the client is freed.
            unsafe { f(self.userdata) };
        }
    }
}

fn transport_err(msg: impl Into<String>) -> CoreError {
    CoreError::new(ErrorCode::Transport, msg)
}

impl Transport for HostTransport {
    fn send(&self, req: &HttpRequest) -> edrlink_core::Result<HttpResponse> {
        let c = |s: &str| CString::new(s).map_err(|_| transport_err("request contains a NUL byte"));
        let method = c(&req.method)?;
        let url = c(&req.url)?;
        let names_values = req
            .headers
            .iter()
            .map(|(k, v)| Ok((c(k)?, c(v)?)))
            .collect::<edrlink_core::Result<Vec<_>>>()?;
        let headers: Vec<edrlink_http_header> = names_values
            .iter()
            .map(|(k, v)| edrlink_http_header {
                name: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        let creq = edrlink_http_request {
            method: method.as_ptr(),
            url: url.as_ptr(),
            headers: headers.as_ptr(),
            headers_len: headers.len(),
            body: req.body.as_ptr(),
            body_len: req.body.len(),
        };
        let mut resp = edrlink_http_response {
            status: 0,
            headers: Vec::new(),
            body: Vec::new(),
        };
        let rc = {
            let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            // SAFETY: documented contract of edrlink_transport; all pointers
            // stay valid for the duration of the call.
            unsafe { (self.send)(self.userdata, &creq, &mut resp) }
        };
        if rc != 0 {
            return Err(transport_err(format!("host transport failed (rc {rc})")));
        }
        if !(100..=599).contains(&resp.status) {
            return Err(transport_err(
                "host transport returned 0 but set no valid status",
            ));
        }
        Ok(HttpResponse {
            status: resp.status,
            headers: resp.headers,
            body: resp.body,
        })
    }
}

fn resp_mut<'a>(
    resp: *mut edrlink_http_response,
) -> Result<&'a mut edrlink_http_response, FfiError> {
    // SAFETY: NULL or the live response passed to the `send` callback.
    unsafe { resp.as_mut() }.ok_or_else(|| FfiError::null("resp"))
}

/// Sets the response status (100..599). Call from inside `send` only.
///
/// # Safety
/// `resp` is NULL or the response passed to the running `send` callback.
#[no_mangle]
pub unsafe extern "C" fn edrlink_http_response_set_status(
    resp: *mut edrlink_http_response,
    status: u16,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let r = resp_mut(resp)?;
        if !(100..=599).contains(&status) {
            return Err(FfiError::new(EDRLINK_INVALID_ARGUMENT, "HTTP status must be 100..599"));
        }
        r.status = status;
        Ok(())
    })
}

/// Adds a response header (the name is lower-cased; both are copied). Call
/// from inside `send` only.
///
/// # Safety
/// `resp` as for `edrlink_http_response_set_status`; strings NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn edrlink_http_response_add_header(
    resp: *mut edrlink_http_response,
    name: *const c_char,
    value: *const c_char,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let r = resp_mut(resp)?;
        // SAFETY: caller contract.
        let n = unsafe { arg_str(name, "name") }?.to_ascii_lowercase();
        // SAFETY: caller contract.
        let v = unsafe { arg_str(value, "value") }?.trim().to_owned();
        r.headers.push((n, v));
        Ok(())
    })
}

/// Sets (replaces) the response body; the bytes are copied. Call from inside
/// `send` only; may be called again (e.g. after reading more).
///
/// # Safety
/// `resp` as above; `body` readable for `body_len` bytes (`NULL, 0` = empty).
#[no_mangle]
pub unsafe extern "C" fn edrlink_http_response_set_body(
    resp: *mut edrlink_http_response,
    body: *const u8,
    body_len: usize,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let r = resp_mut(resp)?;
        // SAFETY: caller contract.
        r.body = unsafe { arg_bytes(body, body_len, "body") }?.to_vec();
        Ok(())
    })
}

/// Performs `req` with the library's built-in HTTP(S) transport and stores the
/// answer into `resp`: lets a host transport wrap the built-in one (count,
/// log, add headers). Each call uses a fresh built-in transport (its own
/// connection, no pooling across calls; nothing is kept afterwards).
/// Returns `EDRLINK_TRANSPORT` when no response came back.
/// Without the `http` feature this returns `EDRLINK_INVALID_STATE`.
/// Thread-safe.
///
/// # Safety
/// `req` is NULL or a valid request (as passed to `send`); `resp` as above.
#[no_mangle]
pub unsafe extern "C" fn edrlink_builtin_transport_send(
    req: *const edrlink_http_request,
    resp: *mut edrlink_http_response,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let r = resp_mut(resp)?;
        // SAFETY: caller contract.
        let q = unsafe { req.as_ref() }.ok_or_else(|| FfiError::null("req"))?;
        // SAFETY (below): the fields follow edrlink_http_request's contract.
        let method = unsafe { arg_str(q.method, "req.method") }?.to_owned();
        let url = unsafe { arg_str(q.url, "req.url") }?.to_owned();
        let body = unsafe { arg_bytes(q.body, q.body_len, "req.body") }?.to_vec();
        let hs: &[edrlink_http_header] = if q.headers_len == 0 {
            &[]
        } else if q.headers.is_null() {
            return Err(FfiError::null("req.headers"));
        } else {
            unsafe { std::slice::from_raw_parts(q.headers, q.headers_len) }
        };
        let mut headers = Vec::with_capacity(hs.len());
        for h in hs {
            headers.push((unsafe { arg_str(h.name, "header name") }?.to_owned(), unsafe { arg_str(h.value, "header value") }?.to_owned()));
        }
        let out = crate::client::builtin_transport()?.send(&HttpRequest { id: 0, method, url, headers, body })?;
        r.status = out.status;
        r.headers = out.headers;
        r.body = out.body;
        Ok(())
    })
}
