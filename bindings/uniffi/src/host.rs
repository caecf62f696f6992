//! Keys that never leave the device: the host's credential store and the
//! host's signer, as foreign traits (Python classes, Kotlin interfaces, Swift
//! protocols) adapted to the core's `CredentialStore` and
//! `signer::HostKeys`.
//!
//! Everything about what a host answer means is decided by the core: it
//! checks the public key a host returns, normalizes and verifies every
//! signature against it, enforces `signer_timeout_secs`, keeps the batch
//! queued when signing fails and writes `host_key` (never a private key) into
//! the credential. This module only converts types and turns an exception
//! raised by host code into the core's error (`signer_failed` for the
//! signer, `storage` for the store) carrying the host's message.

use crate::bytes::Bytes;
use edrlink_core::agent::CredentialStore as CoreStore;
use edrlink_core::signer::{HostKey as CoreHostKey, HostKeys as CoreHostKeys};
use edrlink_core::{Error, ErrorCode};
use std::sync::Arc;
use zeroize::Zeroizing;

/// What host code raises from a [`CredentialStore`] or [`HostKeys`] method:
/// the platform refused (Keychain locked, key invalidated by a biometric
/// change, user cancelled). Any other exception is treated the same way. The
/// SDK reports it as an `EdrlinkError` with code `signer_failed` (signer) or
/// `storage` (store) and `reason` in its detail, so `reason` must not hold a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Error)]
pub enum HostError {
    /// The host operation failed.
    Failed {
        /// Why (a diagnostic; no secrets).
        reason: String,
    },
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostError::Failed { reason } => write!(f, "{reason}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostError::Failed {
            reason: format!("host code raised: {}", e.reason),
        }
    }
}

fn reason(e: HostError) -> String {
    let HostError::Failed { reason } = e;
    reason
}

/// Where the credential JSON is kept, implemented by the host: Keychain,
/// EncryptedSharedPreferences, DPAPI, a secrets service. The default (no
/// store given) is `data_dir/credential.json` (mode 0600), or memory only
/// without a data directory. The JSON is opaque: store and return it
/// byte for byte. With a [`HostKeys`] signer it holds the key's handle and
/// public key, never a private key; without one it holds the installation's
/// Ed25519 seed, so keep it where secrets go.
///
/// Called on the thread that called the client method (the constructor calls
/// `load`); never two calls at once for one client. Raise [`HostError`]
/// (or any exception) when the platform refuses: the client method then fails
/// with `storage`.
#[uniffi::export(with_foreign)]
pub trait CredentialStore: Send + Sync {
    /// The stored credential JSON, `None` when there is none.
    fn load(&self) -> Result<Option<String>, HostError>;
    /// Replaces the stored credential. Keep the old one until the new one is safe.
    fn save(&self, json: String) -> Result<(), HostError>;
    /// Deletes the stored credential (offboarding); deleting nothing is not an error.
    fn delete(&self) -> Result<(), HostError>;
}

pub(crate) struct StoreAdapter(pub(crate) Arc<dyn CredentialStore>);

fn storage(op: &str, e: HostError) -> Error {
    Error::new(
        ErrorCode::Storage,
        format!("host credential store ({op}): {}", reason(e)),
    )
}

impl CoreStore for StoreAdapter {
    fn load(&self) -> edrlink_core::Result<Option<Zeroizing<String>>> {
        Ok(self
            .0
            .load()
            .map_err(|e| storage("load", e))?
            .map(Zeroizing::new))
    }
    fn save(&self, credential_json: &str) -> edrlink_core::Result<()> {
        self.0
            .save(credential_json.to_owned())
            .map_err(|e| storage("save", e))
    }
    fn delete(&self) -> edrlink_core::Result<()> {
        self.0.delete().map_err(|e| storage("delete", e))
    }
}

/// A key pair the host made inside its platform (Secure Enclave, Android
/// Keystore, TPM, a non-extractable WebCrypto key).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HostKey {
    /// The host's own name for the key (Keychain label, keystore alias): not
    /// secret, at most 256 bytes of UTF-8. The SDK stores it in the
    /// credential and passes it back to `sign` and `delete_key`.
    pub handle: String,
    /// The public key: 32 bytes raw Ed25519, or 65 bytes uncompressed P-256
    /// (`04 ‖ x ‖ y`, SEC1 / X9.62, what `SecKeyCopyExternalRepresentation`
    /// and `cryptography`'s `X962 UncompressedPoint` give).
    pub public_key: Bytes,
}

/// The device key, held by the host: the SDK never sees a private key.
/// Ed25519 or ECDSA P-256 (the host chooses per key).
///
/// `sign` returns, for Ed25519, the 64-byte signature; for P-256, ECDSA over
/// SHA-256 of `message` (the host hashes: Java `SHA256withECDSA`, Apple
/// `.ecdsaSignatureMessageX962SHA256`), either DER (X9.62, what Java, Apple,
/// OpenSSL and `cryptography` return) or raw `r ‖ s` (64 bytes, WebCrypto).
/// The SDK verifies every signature against the key's public key before
/// using it; one that does not verify, an exception, or an answer slower
/// than the option `signer_timeout_secs` fails the operation with
/// `signer_failed`, and no queued event is lost (the batch is signed again
/// on the next attempt).
///
/// Called on the thread that called the client method (enroll, flush,
/// rotate, offboard…), one call at a time per client, so it must not need
/// the UI thread and must not call back into the same client. A call is not
/// interrupted: an answer that arrives after `signer_timeout_secs` is
/// discarded when it returns, and the operation fails then.
#[uniffi::export(with_foreign)]
pub trait HostKeys: Send + Sync {
    /// Makes a new key pair inside the platform; called at enrollment and at
    /// every rotation.
    fn create_key(&self) -> Result<HostKey, HostError>;
    /// Signs `message` with the key named `handle`.
    fn sign(&self, handle: String, message: Bytes) -> Result<Bytes, HostError>;
    /// Deletes the key named `handle` (best effort): called for the old key
    /// once a rotation is committed, and after offboarding.
    fn delete_key(&self, handle: String) -> Result<(), HostError>;
}

pub(crate) struct KeysAdapter(pub(crate) Arc<dyn HostKeys>);

fn signer_failed(op: &str, detail: impl core::fmt::Display) -> Error {
    Error::new(
        ErrorCode::SignerFailed,
        format!("host signer ({op}): {detail}"),
    )
}

impl CoreHostKeys for KeysAdapter {
    fn create_key(&self) -> edrlink_core::Result<CoreHostKey> {
        let k = self
            .0
            .create_key()
            .map_err(|e| signer_failed("create_key", reason(e)))?;
        // The core judges the public key (length, point on the curve) and the
        // handle; a bad one is the host signer's failure, in the core's words.
        CoreHostKey::from_host(k.handle, &k.public_key)
    }

    fn sign(&self, handle: &str, message: &[u8]) -> edrlink_core::Result<Vec<u8>> {
        self.0
            .sign(handle.to_owned(), Bytes(message.to_vec()))
            .map(|s| s.0)
            .map_err(|e| signer_failed("sign", reason(e)))
    }

    fn delete_key(&self, handle: &str) -> edrlink_core::Result<()> {
        self.0
            .delete_key(handle.to_owned())
            .map_err(|e| signer_failed("delete_key", reason(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edrlink_core::keys::{SigningKey, SystemRandom};

    /// A host signer implemented in Rust through the foreign trait (what
    /// generated Python/Kotlin/Swift code calls into), refusing or lying on demand.
    struct Host {
        key: SigningKey,
        refuse: bool,
        public_key: Option<Vec<u8>>,
    }

    impl HostKeys for Host {
        fn create_key(&self) -> Result<HostKey, HostError> {
            if self.refuse {
                return Err(HostError::Failed {
                    reason: "no secure hardware".into(),
                });
            }
            Ok(HostKey {
                handle: "k1".into(),
                public_key: Bytes(
                    self.public_key
                        .clone()
                        .unwrap_or_else(|| self.key.verifying_key().as_bytes().to_vec()),
                ),
            })
        }
        fn sign(&self, _handle: String, message: Bytes) -> Result<Bytes, HostError> {
            if self.refuse {
                return Err(HostError::Failed {
                    reason: "keystore locked".into(),
                });
            }
            Ok(Bytes(self.key.sign(&message).to_vec()))
        }
        fn delete_key(&self, _handle: String) -> Result<(), HostError> {
            Ok(())
        }
    }

    fn host(refuse: bool, public_key: Option<Vec<u8>>) -> KeysAdapter {
        KeysAdapter(Arc::new(Host {
            key: SigningKey::generate(&SystemRandom).unwrap(),
            refuse,
            public_key,
        }))
    }

    #[test]
    fn host_answers_reach_the_core_and_refusals_are_signer_failed() {
        let ok = host(false, None);
        let k = ok.create_key().unwrap();
        assert_eq!(k.handle, "k1");
        let sig = ok.sign("k1", b"m").unwrap();
        assert!(k.public_key.verify(b"m", &sig).is_ok());

        let e = host(true, None).create_key().unwrap_err();
        assert_eq!(e.code(), ErrorCode::SignerFailed);
        assert!(
            e.message().contains("no secure hardware"),
            "{}",
            e.message()
        );
        let e = host(true, None).sign("k1", b"m").unwrap_err();
        assert_eq!(e.code(), ErrorCode::SignerFailed);
        assert!(e.message().contains("keystore locked"));
    }

    #[test]
    fn a_bad_public_key_or_handle_from_the_host_is_signer_failed() {
        // (whether a 65-byte point lies on the curve is the core's check)
        for bad in [vec![5u8; 65], vec![4u8; 64], vec![1, 2, 3], vec![]] {
            let e = host(false, Some(bad)).create_key().unwrap_err();
            assert_eq!(e.code(), ErrorCode::SignerFailed);
        }
        struct LongHandle;
        impl HostKeys for LongHandle {
            fn create_key(&self) -> Result<HostKey, HostError> {
                Ok(HostKey {
                    handle: "h".repeat(257),
                    public_key: Bytes(vec![7; 32]),
                })
            }
            fn sign(&self, _: String, _: Bytes) -> Result<Bytes, HostError> {
                unreachable!()
            }
            fn delete_key(&self, _: String) -> Result<(), HostError> {
                Ok(())
            }
        }
        let e = KeysAdapter(Arc::new(LongHandle)).create_key().unwrap_err();
        assert_eq!(e.code(), ErrorCode::SignerFailed);
    }

    #[test]
    fn store_refusals_are_storage_with_the_hosts_reason() {
        struct Locked;
        impl CredentialStore for Locked {
            fn load(&self) -> Result<Option<String>, HostError> {
                Err(HostError::Failed {
                    reason: "keychain locked".into(),
                })
            }
            fn save(&self, _: String) -> Result<(), HostError> {
                self.load().map(|_| ())
            }
            fn delete(&self) -> Result<(), HostError> {
                self.load().map(|_| ())
            }
        }
        let s = StoreAdapter(Arc::new(Locked));
        for e in [
            s.load().map(|_| ()).unwrap_err(),
            s.save("{}").unwrap_err(),
            s.delete().unwrap_err(),
        ] {
            assert_eq!(e.code(), ErrorCode::Storage);
            assert!(e.message().contains("keychain locked"));
        }
    }

    #[test]
    fn an_unexpected_host_exception_keeps_its_text() {
        let e = HostError::from(uniffi::UnexpectedUniFFICallbackError::new(
            "RuntimeError('boom')",
        ));
        assert_eq!(
            e,
            HostError::Failed {
                reason: "host code raised: RuntimeError('boom')".into()
            }
        );
    }
}
