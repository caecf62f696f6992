//! Device keys the SDK never sees: the host keeps the private key (Keychain
//! and the Secure Enclave, Android Keystore, a TPM or PKCS#11 token, a
//! non-extractable WebCrypto key) and signs when asked.
//!
//! The host implements [`HostKeys`]; a credential then holds only the key's
//! handle and public key ([`HostKey`]). Every signature a host returns is
//! normalized to the wire form and **verified against the public key before
//! it is used**: a host that returns an error, garbage, a signature of the
//! wrong length or by the wrong key fails the operation with
//! `signer_failed`, and nothing queued is dropped (the batch is sealed again
//! on the next attempt).
//!
//! The sans-IO client asks for host work through
//! [`PartnerClient::poll_host_request`](crate::client::PartnerClient::poll_host_request),
//! so a driver whose host signs asynchronously (WebCrypto) answers later;
//! the blocking agent answers at once through this trait.

use crate::error::{Error, ErrorCode, Result};
use crate::keys::{ecdsa_p256_to_raw, KeyAlgorithm, Signer, SigningKey, VerifyingKey};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Longest key handle the SDK keeps (it is stored in the credential).
pub const MAX_HANDLE_LEN: usize = 256;

/// A key the host keeps: its handle (the host's own name for it — a
/// Keychain label, a keystore alias, an IndexedDB id; not secret) and its
/// public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// The host's name for the key.
    pub handle: String,
    /// The public key (Ed25519 or P-256).
    pub public_key: VerifyingKey,
}

impl HostKey {
    /// Checks what a host returned from `create_key`: a non-empty handle of
    /// at most [`MAX_HANDLE_LEN`] bytes without control characters.
    pub fn new(handle: impl Into<String>, public_key: VerifyingKey) -> Result<Self> {
        let handle = handle.into();
        if handle.is_empty()
            || handle.len() > MAX_HANDLE_LEN
            || handle.chars().any(char::is_control)
        {
            return Err(Error::new(
                ErrorCode::SignerFailed,
                "the host returned a key handle that is empty, too long or has control characters",
            ));
        }
        Ok(HostKey { handle, public_key })
    }

    /// What a binding received from the host's `create_key`: a handle and
    /// the public key's bytes (32 bytes Ed25519, or the 65-byte uncompressed
    /// P-256 point). Anything unusable is the host signer's failure,
    /// `signer_failed`, in the core's words.
    pub fn from_host(handle: impl Into<String>, public_key: &[u8]) -> Result<Self> {
        let public_key = VerifyingKey::from_bytes(public_key).map_err(|e| {
            Error::new(
                ErrorCode::SignerFailed,
                format!(
                    "the host's create_key returned an unusable public key: {}",
                    e.message()
                ),
            )
        })?;
        HostKey::new(handle, public_key)
    }
}

/// What a host that keeps device keys implements (C callbacks, a uniffi
/// foreign trait, a JS object). Called on the thread driving the agent.
pub trait HostKeys: Send + Sync {
    /// Creates a new key pair inside the platform (Ed25519 or P-256, the host
    /// chooses) and returns its handle and public key. Called at enrollment
    /// and at every rotation.
    fn create_key(&self) -> Result<HostKey>;
    /// Signs `message` with the key named `handle`. Ed25519: the 64-byte
    /// signature. P-256: ECDSA over SHA-256 of `message`, DER-encoded or raw
    /// `r‖s` (64 bytes).
    fn sign(&self, handle: &str, message: &[u8]) -> Result<Vec<u8>>;
    /// Deletes the key (after a rotation is committed, or offboarding). Best
    /// effort: a failure is logged, not retried.
    fn delete_key(&self, handle: &str) -> Result<()>;
}

impl<K: HostKeys + ?Sized> HostKeys for std::sync::Arc<K> {
    fn create_key(&self) -> Result<HostKey> {
        (**self).create_key()
    }
    fn sign(&self, handle: &str, message: &[u8]) -> Result<Vec<u8>> {
        (**self).sign(handle, message)
    }
    fn delete_key(&self, handle: &str) -> Result<()> {
        (**self).delete_key(handle)
    }
}

/// Turns what a host signer returned into the JOSE form (64 bytes) and
/// verifies it against `key` over `message`. Any failure is `signer_failed`.
pub fn accept_host_signature(key: &VerifyingKey, message: &[u8], sig: &[u8]) -> Result<Vec<u8>> {
    let raw = match key.algorithm() {
        KeyAlgorithm::Ed25519 => {
            if sig.len() != 64 {
                return Err(Error::new(
                    ErrorCode::SignerFailed,
                    format!(
                        "the host signer returned {} bytes; an Ed25519 signature is 64",
                        sig.len()
                    ),
                ));
            }
            sig.to_vec()
        }
        KeyAlgorithm::EcdsaP256 => ecdsa_p256_to_raw(sig)
            .map_err(|_| {
                Error::new(
                    ErrorCode::SignerFailed,
                    format!(
                        "the host signer returned {} bytes that are neither a DER nor a raw P-256 signature",
                        sig.len()
                    ),
                )
            })?
            .to_vec(),
    };
    key.verify(message, &raw).map_err(|_| {
        Error::new(
            ErrorCode::SignerFailed,
            "the host signer's signature does not verify with its public key",
        )
    })?;
    Ok(raw)
}

/// The key an installation signs with: a software Ed25519 key the SDK keeps
/// in its credential, or a key the host keeps.
#[derive(Debug, Clone)]
pub enum InstallationKey {
    /// An Ed25519 key generated and stored by the SDK (the default).
    Software(SigningKey),
    /// A key the host keeps; only its handle and public key are known here.
    Host(HostKey),
}

impl From<SigningKey> for InstallationKey {
    fn from(k: SigningKey) -> Self {
        InstallationKey::Software(k)
    }
}

impl InstallationKey {
    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        match self {
            InstallationKey::Software(k) => k.verifying_key(),
            InstallationKey::Host(h) => h.public_key,
        }
    }

    /// The derived key id.
    pub fn key_id(&self) -> String {
        self.public_key().key_id()
    }
}

/// A software P-256 key (ring), for Rust hosts and tests. Its PKCS#8 form
/// is zeroized on drop and never shown by `Debug`.
pub struct EcdsaP256Key {
    pair: ring::signature::EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: VerifyingKey,
}

impl EcdsaP256Key {
    /// Generates a key with the system randomness.
    pub fn generate() -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .map_err(|_| Error::new(ErrorCode::Internal, "P-256 key generation failed"))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// From a PKCS#8 document (with its public key).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|_| Error::new(ErrorCode::InvalidArgument, "not a P-256 PKCS#8 key"))?;
        use ring::signature::KeyPair;
        let public = VerifyingKey::from_bytes(pair.public_key().as_ref())?;
        Ok(EcdsaP256Key {
            pair,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            public,
        })
    }

    /// The PKCS#8 document. Handle with care.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }
}

impl core::fmt::Debug for EcdsaP256Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EcdsaP256Key")
            .field("kid", &self.public.key_id())
            .field("private", &"<redacted>")
            .finish()
    }
}

impl Signer for EcdsaP256Key {
    fn public_key(&self) -> VerifyingKey {
        self.public
    }
    fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>> {
        self.pair
            .sign(&ring::rand::SystemRandom::new(), msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| Error::new(ErrorCode::Internal, "P-256 signing failed"))
    }
}

/// An in-memory [`HostKeys`] with software keys (Ed25519 or P-256), for
/// Rust hosts, examples and tests. P-256 signatures come back DER-encoded,
/// as most platform signers return them.
#[derive(Debug)]
pub struct SoftwareKeys {
    algorithm: KeyAlgorithm,
    keys: Mutex<HashMap<String, SoftwareKey>>,
    next: Mutex<u64>,
}

#[derive(Debug)]
enum SoftwareKey {
    Ed25519(SigningKey),
    P256(EcdsaP256Key),
}

impl SoftwareKeys {
    /// Keys of `algorithm`.
    pub fn new(algorithm: KeyAlgorithm) -> Self {
        SoftwareKeys {
            algorithm,
            keys: Mutex::new(HashMap::new()),
            next: Mutex::new(0),
        }
    }

    /// The handles of the keys it holds now.
    pub fn handles(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.keys).keys().cloned().collect();
        v.sort();
        v
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HostKeys for SoftwareKeys {
    fn create_key(&self) -> Result<HostKey> {
        let (key, public) = match self.algorithm {
            KeyAlgorithm::Ed25519 => {
                let k = SigningKey::generate(&crate::keys::SystemRandom)?;
                let p = k.verifying_key();
                (SoftwareKey::Ed25519(k), p)
            }
            KeyAlgorithm::EcdsaP256 => {
                let k = EcdsaP256Key::generate()?;
                let p = k.public;
                (SoftwareKey::P256(k), p)
            }
        };
        let handle = {
            let mut n = lock(&self.next);
            *n += 1;
            format!("{}-{}", self.algorithm.name(), *n)
        };
        lock(&self.keys).insert(handle.clone(), key);
        HostKey::new(handle, public)
    }

    fn sign(&self, handle: &str, message: &[u8]) -> Result<Vec<u8>> {
        match lock(&self.keys).get(handle) {
            Some(SoftwareKey::Ed25519(k)) => Ok(k.sign(message).to_vec()),
            Some(SoftwareKey::P256(k)) => {
                let raw: [u8; 64] = k
                    .sign_message(message)?
                    .try_into()
                    .map_err(|_| Error::new(ErrorCode::Internal, "P-256 signature length"))?;
                Ok(crate::keys::ecdsa_p256_raw_to_der(&raw))
            }
            None => Err(Error::new(ErrorCode::SignerFailed, "no such key")),
        }
    }

    fn delete_key(&self, handle: &str) -> Result<()> {
        lock(&self.keys).remove(handle);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{ecdsa_p256_raw_to_der, ecdsa_p256_to_raw};

    #[test]
    fn host_signatures_are_normalized_and_verified() {
        for alg in [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256] {
            let keys = SoftwareKeys::new(alg);
            let k = keys.create_key().unwrap();
            let sig = keys.sign(&k.handle, b"msg").unwrap();
            let raw = accept_host_signature(&k.public_key, b"msg", &sig).unwrap();
            assert_eq!(raw.len(), 64);
            k.public_key.verify(b"msg", &raw).unwrap();
            // The raw form is accepted too (WebCrypto returns it).
            assert_eq!(
                accept_host_signature(&k.public_key, b"msg", &raw).unwrap(),
                raw
            );
            for bad in [
                accept_host_signature(&k.public_key, b"other", &sig),
                accept_host_signature(&k.public_key, b"msg", &sig[..sig.len() - 1]),
                accept_host_signature(&k.public_key, b"msg", &[]),
                accept_host_signature(&k.public_key, b"msg", &[0u8; 64]),
            ] {
                assert_eq!(bad.unwrap_err().code(), ErrorCode::SignerFailed, "{alg:?}");
            }
        }
    }

    #[test]
    fn der_round_trips_and_rejects_non_minimal_forms() {
        let keys = SoftwareKeys::new(KeyAlgorithm::EcdsaP256);
        let k = keys.create_key().unwrap();
        for _ in 0..50 {
            let der = keys.sign(&k.handle, b"m").unwrap();
            let raw = ecdsa_p256_to_raw(&der).unwrap();
            assert_eq!(ecdsa_p256_raw_to_der(&raw), der);
        }
        // Small integers keep their minimal encoding.
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        let der = ecdsa_p256_raw_to_der(&raw);
        assert_eq!(der[..5], [0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(ecdsa_p256_to_raw(&der).unwrap(), raw);
        // A padded integer is not DER.
        let padded = [0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01];
        assert!(ecdsa_p256_to_raw(&padded).is_err());
        assert!(ecdsa_p256_to_raw(&[0x30, 0x80]).is_err());
    }

    #[test]
    fn host_keys_from_a_binding_are_checked() {
        let pk = SigningKey::from_seed(&[1; 32]).unwrap().verifying_key();
        assert_eq!(
            HostKey::from_host("k", pk.as_bytes()).unwrap(),
            HostKey::new("k", pk).unwrap()
        );
        for bad in [&[5u8; 65][..], &[4u8; 64], &[1, 2, 3], &[]] {
            assert_eq!(
                HostKey::from_host("k", bad).unwrap_err().code(),
                ErrorCode::SignerFailed
            );
        }
    }

    #[test]
    fn host_key_handles_are_checked() {
        let pk = SigningKey::from_seed(&[1; 32]).unwrap().verifying_key();
        assert!(HostKey::new("keychain:edrlink", pk).is_ok());
        for bad in ["", "a\nb", &"x".repeat(MAX_HANDLE_LEN + 1)] {
            assert_eq!(
                HostKey::new(bad, pk).unwrap_err().code(),
                ErrorCode::SignerFailed
            );
        }
    }

    #[test]
    fn debug_never_shows_private_keys() {
        let k = EcdsaP256Key::generate().unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&crate::encoding::b64url(k.pkcs8())));
    }
}
