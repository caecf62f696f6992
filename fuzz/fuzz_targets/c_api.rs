#![no_main]
//! The C API functions that take bytes from the host (tokens, keysets,
//! envelopes, keys, down-level request parts), called through their
//! `extern "C"` entry points exactly as C does: every input gets a result
//! code (and an error object or output the caller frees), never a panic
//! across the boundary or a bad free.
use edrlink::*;
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, CString};
use std::ptr::null_mut;

fn cstr(b: &[u8]) -> CString {
    CString::new(b.iter().copied().filter(|c| *c != 0).collect::<Vec<u8>>()).unwrap()
}

/// Frees what a call handed out.
unsafe fn done(s: *mut c_char, e: *mut edrlink_error) {
    edrlink_string_free(s);
    edrlink_error_free(e);
}

fuzz_target!(|data: &[u8]| unsafe {
    let (a, b) = edrlink_fuzz::split(data);
    let (ca, cb) = (cstr(a), cstr(b));
    let mut out: *mut c_char = null_mut();
    let mut err: *mut edrlink_error = null_mut();

    edrlink_token_inspect(ca.as_ptr(), edrlink_fuzz::NOW, &mut out, &mut err);
    done(out, err);
    (out, err) = (null_mut(), null_mut());
    edrlink_token_verify(
        ca.as_ptr(),
        cb.as_ptr(),
        edrlink_fuzz::NOW,
        60,
        &mut out,
        &mut err,
    );
    done(out, err);
    (out, err) = (null_mut(), null_mut());
    edrlink_key_id(b.as_ptr(), b.len(), &mut out, &mut err);
    done(out, err);
    (out, err) = (null_mut(), null_mut());
    let mut pk = [0u8; 32];
    edrlink_public_key_from_seed(b.as_ptr(), b.len(), pk.as_mut_ptr(), &mut err);
    edrlink_error_free(err);
    err = null_mut();
    let mut payload: *mut u8 = null_mut();
    let mut payload_len = 0usize;
    edrlink_envelope_open(
        ca.as_ptr(),
        b.as_ptr(),
        b.len(),
        cb.as_ptr(),
        &mut payload,
        &mut payload_len,
        &mut err,
    );
    edrlink_bytes_free(payload, payload_len);
    edrlink_error_free(err);
    err = null_mut();
    edrlink_envelope_verify(ca.as_ptr(), pk.as_ptr(), pk.len(), &mut out, &mut err);
    done(out, err);
    (out, err) = (null_mut(), null_mut());
    edrlink_downlevel_authorization(
        ca.as_ptr(),
        b.as_ptr(),
        b.len(),
        c"POST".as_ptr(),
        cb.as_ptr(),
        c"application/json".as_ptr(),
        c"Thu, 15 Jan 2027 08:00:00 GMT".as_ptr(),
        a.as_ptr(),
        a.len(),
        &mut out,
        &mut err,
    );
    done(out, err);
});
