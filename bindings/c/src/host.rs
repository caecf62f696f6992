//! Host-provided credential store and device keys: C structs of function
//! pointers plus userdata, in the style of `edrlink_transport`.
//!
//! - `edrlink_credential_store` is the core's `CredentialStore` (load, save,
//!   delete of the credential JSON): a host keeps the credential in the
//!   platform keystore instead of `data_dir/credential.json`.
//! - `edrlink_host_keys` is the core's `signer::HostKeys`: the device key is
//!   made and used inside the platform (TPM, PKCS#11 token, Secure Enclave);
//!   the SDK only ever sees its handle, its public key and its signatures.
//!
//! This layer converts buffers and return codes and nothing else: the core
//! checks every public key and verifies every signature before using it.
//! No panic reaches C (each forwarding body runs under `catch_unwind`), and
//! a C callback must not unwind.

use crate::edrlink_result::*;
use crate::FfiError;
use edrlink_core::agent::CredentialStore;
use edrlink_core::signer::{HostKey, HostKeys};
use edrlink_core::{Error as CoreError, ErrorCode};
use std::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Return value of a store's `load` callback: no credential is stored (the
/// client starts not enrolled).
pub const EDRLINK_STORE_NONE: c_int = 1;

/// Size of the buffer `load` first receives. A larger credential is asked
/// for again with the size `load` reports (`EDRLINK_BUFFER_TOO_SMALL`).
pub const EDRLINK_STORE_INITIAL_CAPACITY: usize = 4096;

/// The largest credential `load` may report (bytes): the core's limit for a
/// credential document.
pub const EDRLINK_STORE_MAX_CREDENTIAL: usize = 1 << 20;

/// Capacity of the handle buffer `create_key` fills: a handle is the host's
/// own name for the key, 1..256 bytes of UTF-8 (not secret).
pub const EDRLINK_HOST_KEY_HANDLE_MAX: usize = 256;

/// Capacity of the public-key buffer `create_key` fills: 32 bytes (Ed25519,
/// raw) or 65 bytes (ECDSA P-256, uncompressed SEC1 point `04‖x‖y`).
pub const EDRLINK_HOST_PUBLIC_KEY_MAX: usize = 65;

/// Capacity of the signature buffer `sign` fills: Ed25519 64 bytes; ECDSA
/// P-256 either DER (X9.62, at most 72 bytes) or raw `r‖s` (64 bytes).
pub const EDRLINK_HOST_SIGNATURE_MAX: usize = 72;

/// Reads the stored credential JSON into the library's buffer `buf` of
/// `buf_cap` bytes.
///
/// Return `0` with `*out_len` set to the JSON's length (1..`buf_cap` bytes,
/// no NUL needed); `EDRLINK_STORE_NONE` when nothing is stored;
/// `EDRLINK_BUFFER_TOO_SMALL` (902) with `*out_len` set to the size needed,
/// and the library calls again with a buffer that large (at most
/// `EDRLINK_STORE_MAX_CREDENTIAL`); any other value is a failure
/// (`EDRLINK_STORAGE`, the value in the detail).
pub type edrlink_store_load_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        buf: *mut u8,
        buf_cap: usize,
        out_len: *mut usize,
    ) -> c_int,
>;

/// Replaces the stored credential with `json` (`json_len` bytes; also
/// NUL-terminated at `json[json_len]`). Keep the old one until the new one
/// is safe (atomic replace). Return 0, or non-zero on failure
/// (`EDRLINK_STORAGE`, the value in the detail).
pub type edrlink_store_save_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, json: *const c_char, json_len: usize) -> c_int,
>;

/// Deletes the stored credential (offboarding). Deleting when nothing is
/// stored succeeds. Return 0, or non-zero on failure (`EDRLINK_STORAGE`).
pub type edrlink_store_delete_fn = Option<unsafe extern "C" fn(userdata: *mut c_void) -> c_int>;

/// Releases a host struct's userdata.
pub type edrlink_host_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A host credential store, handed to `edrlink_client_new_with_host` (which
/// copies the struct; NULL there keeps the default `data_dir/credential.json`).
/// The credential JSON is secret when the SDK holds the device key
/// (`key_seed`); with `edrlink_host_keys` it holds only the key's handle and
/// public key (`host_key`).
///
/// Threading: the callbacks run on the thread inside a client call (client
/// creation, enroll, handshake, flush, rotate, offboard), one at a time per
/// client. If one userdata serves several clients, the callbacks must be
/// safe to call concurrently. They must not call functions of the same client.
///
/// Buffers: everything passed to a callback is owned by the library and
/// valid only during the call; the buffer `load` fills is wiped afterwards.
///
/// Lifetime: as `edrlink_transport`: `userdata` stays valid until the client
/// is freed; `free_userdata` (optional) is called exactly once then, or when
/// `edrlink_client_new_with_host` fails after taking the struct.
#[repr(C)]
pub struct edrlink_credential_store {
    /// Passed back to the callbacks unchanged.
    pub userdata: *mut c_void,
    /// Required.
    pub load: edrlink_store_load_fn,
    /// Required.
    pub save: edrlink_store_save_fn,
    /// Required. (Not named `delete`: the header is also valid C++.)
    pub delete_credential: edrlink_store_delete_fn,
    /// Optional (NULL: the host manages userdata itself).
    pub free_userdata: edrlink_host_free_fn,
}

/// Makes a new device key pair inside the platform (Ed25519 or ECDSA P-256,
/// the host's choice); called at enrollment and at every rotation. Write
/// the key's handle (1..`handle_cap` bytes of UTF-8, no NUL needed) to
/// `handle_out` and its length to `*handle_len`; the public key (32 bytes
/// Ed25519 raw, or 65 bytes P-256 uncompressed `04‖x‖y`) to
/// `public_key_out` and its length to `*public_key_len`. The capacities are
/// `EDRLINK_HOST_KEY_HANDLE_MAX` and `EDRLINK_HOST_PUBLIC_KEY_MAX`.
/// Return 0, or non-zero on failure (`EDRLINK_SIGNER_FAILED`, the value in
/// the detail).
pub type edrlink_host_create_key_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        handle_out: *mut c_char,
        handle_cap: usize,
        handle_len: *mut usize,
        public_key_out: *mut u8,
        public_key_cap: usize,
        public_key_len: *mut usize,
    ) -> c_int,
>;

/// Signs `msg` (`msg_len` bytes) with the key named `handle` (`handle_len`
/// bytes, also NUL-terminated). Ed25519: the 64-byte signature. P-256: ECDSA
/// over SHA-256 of `msg`, DER (what OpenSSL, PKCS#11 wrappers and
/// CryptoKit's `derRepresentation` give) or raw `r‖s` (64 bytes). Write it
/// to `sig_out` (capacity `sig_cap` = `EDRLINK_HOST_SIGNATURE_MAX`) and its
/// length to `*sig_len`. Return 0, or non-zero on failure. The library
/// verifies every signature against the key's public key: a failure, a
/// signature that does not verify and a call that takes longer than the
/// option `signer_timeout_secs` are `EDRLINK_SIGNER_FAILED`, and no queued
/// event is dropped.
pub type edrlink_host_sign_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        handle: *const c_char,
        handle_len: usize,
        msg: *const u8,
        msg_len: usize,
        sig_out: *mut u8,
        sig_cap: usize,
        sig_len: *mut usize,
    ) -> c_int,
>;

/// Deletes the key named `handle` (best effort): called for the old key once
/// a rotation is committed, and after offboarding. Return 0, or non-zero
/// (logged; the operation still succeeds).
pub type edrlink_host_delete_key_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, handle: *const c_char, handle_len: usize) -> c_int,
>;

/// Device keys that never leave the platform, handed to
/// `edrlink_client_new_with_host` (which copies the struct). With keys set
/// the SDK never generates or stores a private key: the credential holds
/// `"host_key":{"handle":…,"jwk":{…}}` instead of `key_seed`.
///
/// Threading, buffers and lifetime: as `edrlink_credential_store`.
#[repr(C)]
pub struct edrlink_host_keys {
    /// Passed back to the callbacks unchanged.
    pub userdata: *mut c_void,
    /// Required.
    pub create_key: edrlink_host_create_key_fn,
    /// Required.
    pub sign: edrlink_host_sign_fn,
    /// Required.
    pub delete_key: edrlink_host_delete_key_fn,
    /// Optional (NULL: the host manages userdata itself).
    pub free_userdata: edrlink_host_free_fn,
}

/// The host's userdata and its release, shared by both host structs: freed
/// once, when the owner drops (after the last callback returned).
struct Owned {
    userdata: *mut c_void,
    free_userdata: edrlink_host_free_fn,
    /// One callback at a time per client, as documented.
    lock: Mutex<()>,
}

impl Owned {
    fn new(userdata: *mut c_void, free_userdata: edrlink_host_free_fn) -> Owned {
        Owned {
            userdata,
            free_userdata,
            lock: Mutex::new(()),
        }
    }

    /// Releases userdata now (a refused struct): the owner is forgotten.
    fn release(self) {
        drop(self);
    }

    /// Runs `f` with the userdata under the per-client lock, catching a panic
    /// of the forwarding code (reported as `what` failing with `code`).
    fn call<T>(
        &self,
        code: ErrorCode,
        what: &str,
        f: impl FnOnce(*mut c_void) -> edrlink_core::Result<T>,
    ) -> edrlink_core::Result<T> {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        catch_unwind(AssertUnwindSafe(|| f(self.userdata))).unwrap_or_else(|_| {
            Err(CoreError::new(
                code,
                format!("{what}: internal error in the C binding"),
            ))
        })
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(f) = self.free_userdata {
            // SAFETY: documented contract: called exactly once, when the
            // client is freed or its creation failed.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe { f(self.userdata) }));
        }
    }
}

// SAFETY: the documented contract of both host structs requires the
// callbacks and userdata to be usable from any thread; calls are serialized
// by `lock`.
unsafe impl Send for Owned {}
// SAFETY: as above.
unsafe impl Sync for Owned {}

/// Owns a copy of the host's credential store.
pub(crate) struct HostStore {
    owned: Owned,
    load: unsafe extern "C" fn(*mut c_void, *mut u8, usize, *mut usize) -> c_int,
    save: unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> c_int,
    delete: unsafe extern "C" fn(*mut c_void) -> c_int,
}

impl HostStore {
    /// Takes ownership of the userdata (released on drop, or now if refused).
    pub(crate) fn new(s: &edrlink_credential_store) -> Result<HostStore, FfiError> {
        let owned = Owned::new(s.userdata, s.free_userdata);
        match (s.load, s.save, s.delete_credential) {
            (Some(load), Some(save), Some(delete)) => Ok(HostStore {
                owned,
                load,
                save,
                delete,
            }),
            _ => {
                owned.release();
                Err(FfiError::new(
                    EDRLINK_INVALID_ARGUMENT,
                    "credential store: load, save and delete_credential must not be NULL",
                ))
            }
        }
    }
}

/// A length a callback reported, for an error detail. Lengths start as
/// `usize::MAX` so that one a callback never wrote shows as "(unset)".
fn shown(len: usize) -> String {
    if len == usize::MAX {
        "(unset)".to_owned()
    } else {
        len.to_string()
    }
}

fn storage(msg: String) -> CoreError {
    CoreError::new(ErrorCode::Storage, msg)
}

impl CredentialStore for HostStore {
    fn load(&self) -> edrlink_core::Result<Option<Zeroizing<String>>> {
        self.owned
            .call(ErrorCode::Storage, "host credential store load", |ud| {
                let mut cap = EDRLINK_STORE_INITIAL_CAPACITY;
                // A credential that grows between the calls is asked for again,
                // a few times at most.
                for _ in 0..4 {
                    let mut buf = Zeroizing::new(vec![0u8; cap]);
                    let mut len = usize::MAX;
                    // SAFETY: documented contract; `buf` is writable for `cap` bytes.
                    let rc = unsafe { (self.load)(ud, buf.as_mut_ptr(), cap, &mut len) };
                    match rc {
                        0 if len == 0 || len > cap => {
                            return Err(storage(format!(
                                "host credential store load returned 0 with a length of {} for a {cap}-byte buffer",
                                shown(len)
                            )))
                        }
                        0 => {
                            buf.truncate(len);
                            let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|e| {
                                let mut bytes = e.into_bytes();
                                zeroize::Zeroize::zeroize(&mut bytes);
                                storage("host credential store load: the credential is not UTF-8".into())
                            })?;
                            return Ok(Some(Zeroizing::new(text)));
                        }
                        EDRLINK_STORE_NONE => return Ok(None),
                        rc if rc == EDRLINK_BUFFER_TOO_SMALL as c_int => {
                            if len <= cap || len > EDRLINK_STORE_MAX_CREDENTIAL {
                                return Err(storage(format!(
                                    "host credential store load asked for {} bytes (more than the {cap}-byte buffer, at most {EDRLINK_STORE_MAX_CREDENTIAL})",
                                    shown(len)
                                )));
                            }
                            cap = len;
                        }
                        rc => {
                            return Err(storage(format!(
                                "host credential store load failed (rc {rc})"
                            )))
                        }
                    }
                }
                Err(storage(
                    "host credential store load kept asking for a larger buffer".into(),
                ))
            })
    }

    fn save(&self, credential_json: &str) -> edrlink_core::Result<()> {
        self.owned
            .call(ErrorCode::Storage, "host credential store save", |ud| {
                // NUL-terminated copy, wiped afterwards.
                let mut text = Zeroizing::new(Vec::with_capacity(credential_json.len() + 1));
                text.extend_from_slice(credential_json.as_bytes());
                text.push(0);
                // SAFETY: documented contract; `text` holds len bytes plus a NUL.
                let rc = unsafe { (self.save)(ud, text.as_ptr().cast(), credential_json.len()) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(storage(format!(
                        "host credential store save failed (rc {rc})"
                    )))
                }
            })
    }

    fn delete(&self) -> edrlink_core::Result<()> {
        self.owned
            .call(ErrorCode::Storage, "host credential store delete", |ud| {
                // SAFETY: documented contract.
                let rc = unsafe { (self.delete)(ud) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(storage(format!(
                        "host credential store delete_credential failed (rc {rc})"
                    )))
                }
            })
    }
}

/// Owns a copy of the host's key callbacks.
pub(crate) struct CHostKeys {
    owned: Owned,
    create_key: unsafe extern "C" fn(
        *mut c_void,
        *mut c_char,
        usize,
        *mut usize,
        *mut u8,
        usize,
        *mut usize,
    ) -> c_int,
    sign: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        usize,
        *const u8,
        usize,
        *mut u8,
        usize,
        *mut usize,
    ) -> c_int,
    delete_key: unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> c_int,
}

impl CHostKeys {
    /// Takes ownership of the userdata (released on drop, or now if refused).
    pub(crate) fn new(k: &edrlink_host_keys) -> Result<CHostKeys, FfiError> {
        let owned = Owned::new(k.userdata, k.free_userdata);
        match (k.create_key, k.sign, k.delete_key) {
            (Some(create_key), Some(sign), Some(delete_key)) => Ok(CHostKeys {
                owned,
                create_key,
                sign,
                delete_key,
            }),
            _ => {
                owned.release();
                Err(FfiError::new(
                    EDRLINK_INVALID_ARGUMENT,
                    "host keys: create_key, sign and delete_key must not be NULL",
                ))
            }
        }
    }
}

fn signer_failed(msg: String) -> CoreError {
    CoreError::new(ErrorCode::SignerFailed, msg)
}

/// A NUL-terminated copy of a handle for the callbacks.
fn c_handle(handle: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(handle.len() + 1);
    v.extend_from_slice(handle.as_bytes());
    v.push(0);
    v
}

impl HostKeys for CHostKeys {
    fn create_key(&self) -> edrlink_core::Result<HostKey> {
        self.owned
            .call(ErrorCode::SignerFailed, "host create_key", |ud| {
                let mut handle = [0u8; EDRLINK_HOST_KEY_HANDLE_MAX];
                let mut public = [0u8; EDRLINK_HOST_PUBLIC_KEY_MAX];
                let (mut handle_len, mut public_len) = (usize::MAX, usize::MAX);
                // SAFETY: documented contract; both buffers are writable for
                // the capacities passed.
                let rc = unsafe {
                    (self.create_key)(
                        ud,
                        handle.as_mut_ptr().cast(),
                        handle.len(),
                        &mut handle_len,
                        public.as_mut_ptr(),
                        public.len(),
                        &mut public_len,
                    )
                };
                if rc != 0 {
                    return Err(signer_failed(format!("host create_key failed (rc {rc})")));
                }
                if handle_len == 0 || handle_len > handle.len() {
                    return Err(signer_failed(format!(
                        "host create_key returned a handle length of {} (1..{EDRLINK_HOST_KEY_HANDLE_MAX})",
                        shown(handle_len)
                    )));
                }
                if public_len > public.len() {
                    return Err(signer_failed(format!(
                        "host create_key returned a public key length of {} (32 or 65)",
                        shown(public_len)
                    )));
                }
                let handle = std::str::from_utf8(&handle[..handle_len])
                    .map_err(|_| signer_failed("host create_key returned a handle that is not UTF-8".into()))?
                    .to_owned();
                // The core judges the key and the handle.
                HostKey::from_host(handle, &public[..public_len])
            })
    }

    fn sign(&self, handle: &str, message: &[u8]) -> edrlink_core::Result<Vec<u8>> {
        self.owned.call(ErrorCode::SignerFailed, "host sign", |ud| {
            let h = c_handle(handle);
            let mut sig = [0u8; EDRLINK_HOST_SIGNATURE_MAX];
            let mut sig_len = usize::MAX;
            // SAFETY: documented contract; `h` is NUL-terminated, `message`
            // readable, `sig` writable for its length.
            let rc = unsafe {
                (self.sign)(
                    ud,
                    h.as_ptr().cast(),
                    handle.len(),
                    message.as_ptr(),
                    message.len(),
                    sig.as_mut_ptr(),
                    sig.len(),
                    &mut sig_len,
                )
            };
            if rc != 0 {
                return Err(signer_failed(format!("host sign failed (rc {rc})")));
            }
            if sig_len > sig.len() {
                return Err(signer_failed(format!(
                    "host sign returned a signature length of {} (at most {EDRLINK_HOST_SIGNATURE_MAX})",
                    shown(sig_len)
                )));
            }
            // The core normalizes the signature and verifies it.
            Ok(sig[..sig_len].to_vec())
        })
    }

    fn delete_key(&self, handle: &str) -> edrlink_core::Result<()> {
        self.owned
            .call(ErrorCode::SignerFailed, "host delete_key", |ud| {
                let h = c_handle(handle);
                // SAFETY: documented contract; `h` is NUL-terminated.
                let rc = unsafe { (self.delete_key)(ud, h.as_ptr().cast(), handle.len()) };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(signer_failed(format!("host delete_key failed (rc {rc})")))
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// What the test store's `load` does, picked by the userdata.
    struct Script {
        rc: c_int,
        /// What `load` reports in `*out_len` (None: leaves it unset).
        len: Option<usize>,
        body: &'static [u8],
        calls: AtomicUsize,
        freed: AtomicUsize,
    }

    unsafe extern "C" fn load(
        ud: *mut c_void,
        buf: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> c_int {
        let s = unsafe { &*(ud as *const Script) };
        let call = s.calls.fetch_add(1, Ordering::SeqCst);
        if s.rc == EDRLINK_BUFFER_TOO_SMALL as c_int && call > 0 && s.len.is_some_and(|l| l <= cap)
        {
            // asked again with the size reported: the buffer is large enough now
            unsafe { std::ptr::copy_nonoverlapping(s.body.as_ptr(), buf, s.body.len()) };
            unsafe { *out_len = s.body.len() };
            return 0;
        }
        if s.rc == 0 && s.body.len() <= cap {
            unsafe { std::ptr::copy_nonoverlapping(s.body.as_ptr(), buf, s.body.len()) };
        }
        if let Some(l) = s.len {
            unsafe { *out_len = l };
        }
        s.rc
    }
    unsafe extern "C" fn save(_: *mut c_void, _: *const c_char, _: usize) -> c_int {
        9
    }
    unsafe extern "C" fn delete(_: *mut c_void) -> c_int {
        0
    }
    unsafe extern "C" fn free_ud(ud: *mut c_void) {
        let s = unsafe { &*(ud as *const Script) };
        s.freed.fetch_add(1, Ordering::SeqCst);
    }

    fn script(rc: c_int, len: Option<usize>, body: &'static [u8]) -> Script {
        Script {
            rc,
            len,
            body,
            calls: AtomicUsize::new(0),
            freed: AtomicUsize::new(0),
        }
    }

    fn store(s: &Script) -> HostStore {
        HostStore::new(&edrlink_credential_store {
            userdata: s as *const Script as *mut c_void,
            load: Some(load),
            save: Some(save),
            delete_credential: Some(delete),
            free_userdata: Some(free_ud),
        })
        .unwrap_or_else(|_| panic!("valid store refused"))
    }

    #[test]
    fn load_protocol() {
        let s = script(0, Some(2), b"{}");
        assert_eq!(
            store(&s).load().unwrap().as_deref().map(String::as_str),
            Some("{}")
        );
        assert_eq!(s.freed.load(Ordering::SeqCst), 1, "freed once on drop");

        let s = script(EDRLINK_STORE_NONE, None, b"");
        assert!(store(&s).load().unwrap().is_none());

        // too small: asked again with the reported size
        let big: &'static [u8] = Box::leak(
            format!("{{\"a\":\"{}\"}}", "x".repeat(5000))
                .into_bytes()
                .into_boxed_slice(),
        );
        let s = script(EDRLINK_BUFFER_TOO_SMALL as c_int, Some(big.len()), big);
        assert_eq!(store(&s).load().unwrap().unwrap().len(), big.len());
        assert_eq!(s.calls.load(Ordering::SeqCst), 2);

        // a host error, an unset or oversized length, an absurd request: storage, with the code
        for (rc, len) in [
            (77, None),
            (0, None),
            (0, Some(0)),
            (0, Some(EDRLINK_STORE_INITIAL_CAPACITY + 1)),
            (
                EDRLINK_BUFFER_TOO_SMALL as c_int,
                Some(EDRLINK_STORE_MAX_CREDENTIAL + 1),
            ),
            (EDRLINK_BUFFER_TOO_SMALL as c_int, Some(10)),
        ] {
            let s = script(rc, len, b"{}");
            let e = store(&s).load().unwrap_err();
            assert_eq!(e.code(), ErrorCode::Storage, "{rc} {len:?}");
            if rc == 77 {
                assert!(e.message().contains("77"), "{}", e.message());
            }
        }
        // not UTF-8
        let s = script(0, Some(2), b"\xff\xfe");
        assert_eq!(store(&s).load().unwrap_err().code(), ErrorCode::Storage);
        // save failure carries the code
        let s = script(0, Some(2), b"{}");
        let e = store(&s).save("{}").unwrap_err();
        assert!(e.code() == ErrorCode::Storage && e.message().contains('9'));
    }

    /// A host key whose callbacks misbehave as `Keys` says.
    struct Keys {
        handle: &'static [u8],
        handle_len: Option<usize>,
        public: Vec<u8>,
        rc: c_int,
        sig_len: Option<usize>,
    }

    unsafe extern "C" fn k_create(
        ud: *mut c_void,
        h: *mut c_char,
        h_cap: usize,
        h_len: *mut usize,
        p: *mut u8,
        p_cap: usize,
        p_len: *mut usize,
    ) -> c_int {
        let k = unsafe { &*(ud as *const Keys) };
        assert_eq!(
            (h_cap, p_cap),
            (EDRLINK_HOST_KEY_HANDLE_MAX, EDRLINK_HOST_PUBLIC_KEY_MAX)
        );
        unsafe {
            std::ptr::copy_nonoverlapping(k.handle.as_ptr(), h.cast(), k.handle.len().min(h_cap));
            std::ptr::copy_nonoverlapping(k.public.as_ptr(), p, k.public.len().min(p_cap));
            if let Some(l) = k.handle_len {
                *h_len = l;
            }
            *p_len = k.public.len();
        }
        k.rc
    }
    unsafe extern "C" fn k_sign(
        ud: *mut c_void,
        h: *const c_char,
        h_len: usize,
        _: *const u8,
        _: usize,
        _: *mut u8,
        cap: usize,
        sig_len: *mut usize,
    ) -> c_int {
        let k = unsafe { &*(ud as *const Keys) };
        // the handle arrives NUL-terminated
        assert_eq!(unsafe { *h.add(h_len) }, 0);
        assert_eq!(cap, EDRLINK_HOST_SIGNATURE_MAX);
        if let Some(l) = k.sig_len {
            unsafe { *sig_len = l };
        }
        k.rc
    }
    unsafe extern "C" fn k_delete(ud: *mut c_void, _: *const c_char, _: usize) -> c_int {
        unsafe { &*(ud as *const Keys) }.rc
    }

    fn keys(k: &Keys) -> CHostKeys {
        CHostKeys::new(&edrlink_host_keys {
            userdata: k as *const Keys as *mut c_void,
            create_key: Some(k_create),
            sign: Some(k_sign),
            delete_key: Some(k_delete),
            free_userdata: None,
        })
        .unwrap_or_else(|_| panic!("valid keys refused"))
    }

    #[test]
    fn host_key_callbacks() {
        let ed = edrlink_core::keys::SigningKey::from_seed_slice(&[7; 32]).unwrap();
        let public = ed.verifying_key().as_bytes().to_vec();
        let good = Keys {
            handle: b"tpm-key-1",
            handle_len: Some(9),
            public: public.clone(),
            rc: 0,
            sig_len: Some(64),
        };
        let k = keys(&good);
        let hk = k.create_key().unwrap();
        assert_eq!(hk.handle, "tpm-key-1");
        assert_eq!(hk.public_key.as_bytes(), &public[..]);
        assert_eq!(k.sign("tpm-key-1", b"m").unwrap().len(), 64);
        k.delete_key("tpm-key-1").unwrap();

        let signer_failed = |e: CoreError| {
            assert_eq!(e.code(), ErrorCode::SignerFailed, "{}", e.message());
            e.message().to_owned()
        };
        // the host's code reaches the detail
        let failing = Keys {
            rc: 4242,
            ..Keys {
                public: public.clone(),
                ..good
            }
        };
        let k = keys(&failing);
        assert!(signer_failed(k.create_key().unwrap_err()).contains("4242"));
        assert!(signer_failed(k.sign("h", b"m").unwrap_err()).contains("4242"));
        assert!(signer_failed(k.delete_key("h").unwrap_err()).contains("4242"));
        // lengths unset or past the buffers, a handle that is not UTF-8, a public key of a wrong size
        for bad in [
            Keys {
                handle_len: None,
                public: public.clone(),
                ..good
            },
            Keys {
                handle_len: Some(0),
                public: public.clone(),
                ..good
            },
            Keys {
                handle_len: Some(EDRLINK_HOST_KEY_HANDLE_MAX + 1),
                public: public.clone(),
                ..good
            },
            Keys {
                handle: b"\xff\xfe",
                handle_len: Some(2),
                public: public.clone(),
                ..good
            },
            Keys {
                handle: b"a\nb",
                handle_len: Some(3),
                public: public.clone(),
                ..good
            },
            Keys {
                public: vec![4; 33],
                ..good
            },
            Keys {
                public: vec![5; 65],
                ..good
            },
        ] {
            signer_failed(keys(&bad).create_key().unwrap_err());
        }
        for sig_len in [None, Some(EDRLINK_HOST_SIGNATURE_MAX + 1)] {
            let bad = Keys {
                sig_len,
                public: public.clone(),
                ..good
            };
            signer_failed(keys(&bad).sign("h", b"m").unwrap_err());
        }
    }

    #[test]
    fn null_callbacks_are_refused_and_userdata_released() {
        let s = script(0, None, b"");
        let r = HostStore::new(&edrlink_credential_store {
            userdata: &s as *const Script as *mut c_void,
            load: Some(load),
            save: None,
            delete_credential: Some(delete),
            free_userdata: Some(free_ud),
        });
        assert_eq!(r.err().map(|e| e.code), Some(EDRLINK_INVALID_ARGUMENT));
        assert_eq!(s.freed.load(Ordering::SeqCst), 1);
        let r = CHostKeys::new(&edrlink_host_keys {
            userdata: &s as *const Script as *mut c_void,
            create_key: None,
            sign: None,
            delete_key: None,
            free_userdata: Some(free_ud),
        });
        assert_eq!(r.err().map(|e| e.code), Some(EDRLINK_INVALID_ARGUMENT));
        assert_eq!(s.freed.load(Ordering::SeqCst), 2);
    }
}
