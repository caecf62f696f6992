//! The log hook, state-change events and `rotate`: the core's sinks
//! (`Agent::set_log_sink`, `Agent::set_event_sink`) forwarded to C function
//! pointers.
//!
//! Threads: the core calls a sink on the thread that drives the client (the
//! one inside `edrlink_client_enroll`, `…_flush`, …), outside every client
//! lock, so a callback may call back into the client (`edrlink_client_health`,
//! `…_submit_json`); starting another long operation from a callback while
//! one runs on the same thread is refused with `EDRLINK_INVALID_STATE`
//! instead of deadlocking. A panic inside the forwarding code never reaches
//! C (each callback is wrapped), and a C callback must not unwind.

use crate::client::{client_ref, edrlink_client};
use crate::edrlink_result::*;
use crate::{edrlink_error, edrlink_result, FfiError};
use edrlink_core::agent::{EventSink, LogSink};
use edrlink_core::client::ClientEvent;
use edrlink_core::diag::LogLevel;
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// Log level of `edrlink_client_set_log_callback`: something failed for good.
pub const EDRLINK_LOG_ERROR: u32 = 1;
/// Log level: a refusal, a drop, a new token needed — the host should look.
pub const EDRLINK_LOG_WARN: u32 = 2;
/// Log level: state changes (flow, backoff, rotation).
pub const EDRLINK_LOG_INFO: u32 = 3;
/// Log level: every request and answer (method, path, status, code).
pub const EDRLINK_LOG_DEBUG: u32 = 4;
/// Log level: finer detail than debug.
pub const EDRLINK_LOG_TRACE: u32 = 5;

/// A log callback: `level` is one of `EDRLINK_LOG_ERROR..EDRLINK_LOG_TRACE`,
/// `message` a NUL-terminated UTF-8 string valid during the call only (it
/// never holds a secret).
pub type edrlink_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, message: *const c_char)>;

/// An event callback: `event_json` is the event's canonical JSON (e.g.
/// `{"type":"flow_changed","flow":"blocked"}`), valid during the call only.
pub type edrlink_event_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event_json: *const c_char)>;

fn level_number(l: LogLevel) -> u32 {
    match l {
        LogLevel::Error => EDRLINK_LOG_ERROR,
        LogLevel::Warn => EDRLINK_LOG_WARN,
        LogLevel::Info => EDRLINK_LOG_INFO,
        LogLevel::Debug => EDRLINK_LOG_DEBUG,
        LogLevel::Trace => EDRLINK_LOG_TRACE,
    }
}

fn level_of(n: u32) -> Option<LogLevel> {
    LogLevel::ALL.into_iter().find(|l| level_number(*l) == n)
}

/// The host's userdata pointer. The host promises (header contract) that it
/// may be used from the threads that drive the client.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);
// SAFETY: the header documents that callbacks run on the driving threads and
// that userdata must be usable there; the library never dereferences it.
unsafe impl Send for UserData {}
// SAFETY: as above; the pointer is only passed back to the host.
unsafe impl Sync for UserData {}

struct CLogSink {
    cb: unsafe extern "C" fn(*mut c_void, u32, *const c_char),
    userdata: UserData,
}

impl LogSink for CLogSink {
    fn log(&self, level: LogLevel, message: &str) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let msg = CString::new(message.replace('\0', " ")).unwrap_or_default();
            // SAFETY: a host callback with the documented signature.
            unsafe { (self.cb)(self.userdata.0, level_number(level), msg.as_ptr()) };
        }));
    }
}

struct CEventSink {
    cb: unsafe extern "C" fn(*mut c_void, *const c_char),
    userdata: UserData,
}

impl EventSink for CEventSink {
    fn on_event(&self, event: &ClientEvent) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let json = CString::new(event.to_json()).unwrap_or_default();
            // SAFETY: a host callback with the documented signature.
            unsafe { (self.cb)(self.userdata.0, json.as_ptr()) };
        }));
    }
}

/// Routes the client's diagnostics to `cb`: every record at `min_level` or
/// more severe (`EDRLINK_LOG_ERROR` = 1 … `EDRLINK_LOG_TRACE` = 5;
/// `EDRLINK_LOG_DEBUG` shows each request and answer by method, path,
/// status and code). Messages never contain a secret (tokens, keys,
/// workspace keys). `cb` NULL removes the hook. Replaces a previous hook.
///
/// Threads: `cb` runs on the thread that is inside a client call (enroll,
/// handshake, flush, offboard, rotate, submit), outside every client lock:
/// it may call back into the client (`edrlink_client_health`, …); starting
/// another long operation from it while one runs on the same thread fails
/// with `EDRLINK_INVALID_STATE` (no deadlock). `userdata` must stay valid
/// until the hook is removed or the client is freed; the library never frees
/// or reads it.
///
/// Errors: `EDRLINK_NULL_POINTER` (client), `EDRLINK_INVALID_ARGUMENT`
/// (`min_level` not 1..5).
///
/// # Safety
/// `client` NULL or live; `cb` NULL or a function with this signature that
/// does not unwind; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_set_log_callback(
    client: *mut edrlink_client,
    cb: edrlink_log_callback,
    userdata: *mut c_void,
    min_level: u32,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        let min = level_of(min_level).ok_or_else(|| {
            FfiError::new(EDRLINK_INVALID_ARGUMENT, "min_level must be EDRLINK_LOG_ERROR (1) .. EDRLINK_LOG_TRACE (5)")
        })?;
        let sink = cb.map(|cb| Arc::new(CLogSink { cb, userdata: UserData(userdata) }) as Arc<dyn LogSink>);
        c.agent.set_log_sink(sink, min);
        Ok(())
    })
}

/// Delivers the client's state-change events to `cb` as canonical JSON, one
/// call per event: `{"type":"credential_changed"}`,
/// `{"type":"credential_removed"}`, `{"type":"flow_changed","flow":"open|blocked|revoked"}`,
/// `{"type":"delivered","count":n}`, `{"type":"failed","code":"…"}`,
/// `{"type":"needs_new_token","code":"revoked|offboarded|epoch_mismatch|credential_expired|needs_reenroll"}`,
/// `{"type":"queue_full"}`, `{"type":"events_dropped","reason":"…","count":n}`,
/// `{"type":"credential_rotated"}`. The client has already acted on an
/// event when it arrives (a changed credential is persisted). `cb` NULL
/// removes the hook. Threads and `userdata`: as
/// `edrlink_client_set_log_callback`.
///
/// # Safety
/// `client` NULL or live; `cb` NULL or a function with this signature that
/// does not unwind; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_set_event_callback(
    client: *mut edrlink_client,
    cb: edrlink_event_callback,
    userdata: *mut c_void,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        let c = client_ref(client)?;
        let sink = cb.map(|cb| Arc::new(CEventSink { cb, userdata: UserData(userdata) }) as Arc<dyn EventSink>);
        c.agent.set_event_sink(sink);
        Ok(())
    })
}

/// Rotates the installation key now (normally automatic at two thirds of the
/// credential's lifetime) and waits, up to `op_timeout_secs`, for the service
/// to accept it; the new credential is persisted before this returns and the
/// event hook sees `credential_changed` and `credential_rotated`.
///
/// Errors: `EDRLINK_INVALID_STATE` (not enrolled, or a down-level client),
/// the service's refusal (`EDRLINK_FLOW_BLOCKED`, `EDRLINK_REVOKED`, …), or
/// the last error at the deadline (`EDRLINK_TRANSPORT`, …).
///
/// # Safety
/// `client` NULL or live; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn edrlink_client_rotate(
    client: *mut edrlink_client,
    err: *mut *mut edrlink_error,
) -> edrlink_result {
    ffi_boundary!(err; {
        client_ref(client)?.agent.rotate()?;
        Ok(())
    })
}
