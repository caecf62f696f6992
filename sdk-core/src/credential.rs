//! The credential an endpoint holds after onboarding: its installation id,
//! what it pinned about the service, and its private key (or, for down-level
//! agents, its own device key: never the workspace key, which only registers).
//!
//! Serializable so the host can store it; secrets are redacted in `Debug` and
//! zeroized on drop, and the JSON form comes back in a [`Zeroizing`] string.

use crate::encoding::{b64url, b64url_decode, parse_json, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::keys::{Jwk, Keyset, SigningKey, VerifyingKey};
use crate::policy::Policy;
use crate::signer::{HostKey, InstallationKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Documented credential lifetime: 90 days.
pub const CREDENTIAL_LIFETIME: i64 = 90 * 86_400;

/// How the endpoint authenticates.
#[derive(Clone)]
pub enum CredentialAuth {
    /// The installation key (token onboarding): a software Ed25519 key, or a
    /// key the host keeps (only its handle and public key are here).
    Key(InstallationKey),
    /// Down-level onboarding (HMAC-SHA256): the workspace the agent
    /// registered in and its per-device key, which signs its ingest as
    /// `SharedKey <installation-id>:…`.
    SharedKey {
        /// Workspace id (where the agent registered).
        workspace_id: String,
        /// The device key bytes (32), not the workspace key.
        key: Zeroizing<Vec<u8>>,
    },
}

impl core::fmt::Debug for CredentialAuth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CredentialAuth::Key(k) => f.debug_tuple("Key").field(k).finish(),
            CredentialAuth::SharedKey { workspace_id, .. } => f
                .debug_struct("SharedKey")
                .field("workspace_id", workspace_id)
                .field("key", &"<redacted>")
                .finish(),
        }
    }
}

/// An endpoint's credential.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Installation id assigned by the service.
    pub installation_id: String,
    /// Client-generated enrollment id (idempotent redemption).
    pub enrollment_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Region (data location).
    pub region: String,
    /// Partner API base URL.
    pub service_url: String,
    /// Integration epoch the credential belongs to.
    pub epoch: u64,
    /// Pinned service keyset.
    pub service_keys: Keyset,
    /// Last good policy.
    pub policy: Policy,
    /// Issued at (service time).
    pub issued_at: UnixSeconds,
    /// Expires at (service time); rotate at two thirds.
    pub expires_at: UnixSeconds,
    /// The secret part.
    pub auth: CredentialAuth,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u32,
    installation_id: String,
    enrollment_id: String,
    tenant_id: String,
    partner_id: String,
    region: String,
    service_url: String,
    epoch: u64,
    service_keys: Keyset,
    policy: Policy,
    issued_at: i64,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_seed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host_key: Option<StoredHostKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_key: Option<String>,
}

/// A host-kept key as stored: its handle and public JWK (no private part).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredHostKey {
    handle: String,
    jwk: Jwk,
}

impl Drop for Stored {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key_seed.zeroize();
        self.device_key.zeroize();
    }
}

impl Credential {
    /// The installation key, for token-onboarded credentials.
    pub fn installation_key(&self) -> Result<&InstallationKey> {
        match &self.auth {
            CredentialAuth::Key(k) => Ok(k),
            CredentialAuth::SharedKey { .. } => Err(Error::new(
                ErrorCode::InvalidState,
                "down-level credential has no signing key",
            )),
        }
    }

    /// The software signing key; `invalid_state` for a down-level credential
    /// or a key the host keeps (sign through the host then).
    pub fn signing_key(&self) -> Result<&SigningKey> {
        match self.installation_key()? {
            InstallationKey::Software(k) => Ok(k),
            InstallationKey::Host(_) => Err(Error::new(
                ErrorCode::InvalidState,
                "the installation key is kept by the host signer",
            )),
        }
    }

    /// The installation's public key (token-onboarded credentials).
    pub fn public_key(&self) -> Result<VerifyingKey> {
        Ok(self.installation_key()?.public_key())
    }

    /// Whether this is a down-level (workspace key) credential.
    pub fn is_downlevel(&self) -> bool {
        matches!(self.auth, CredentialAuth::SharedKey { .. })
    }

    /// When proactive rotation should start (two thirds of the lifetime).
    pub fn rotate_after(&self) -> UnixSeconds {
        // Saturating: the times come from the service's answers.
        let life = self.expires_at.saturating_sub(self.issued_at);
        self.issued_at
            .saturating_add(life / 3 * 2 + life % 3 * 2 / 3)
    }

    /// Serializes for storage. The result holds secrets.
    pub fn to_json(&self) -> Zeroizing<String> {
        let (key_seed, host_key, workspace_id, device_key) = match &self.auth {
            CredentialAuth::Key(InstallationKey::Software(k)) => {
                (Some(b64url(k.seed())), None, None, None)
            }
            CredentialAuth::Key(InstallationKey::Host(h)) => (
                None,
                Some(StoredHostKey {
                    handle: h.handle.clone(),
                    jwk: h.public_key.to_jwk(),
                }),
                None,
                None,
            ),
            CredentialAuth::SharedKey { workspace_id, key } => {
                (None, None, Some(workspace_id.clone()), Some(b64url(key)))
            }
        };
        let s = Stored {
            v: 1,
            installation_id: self.installation_id.clone(),
            enrollment_id: self.enrollment_id.clone(),
            tenant_id: self.tenant_id.clone(),
            partner_id: self.partner_id.clone(),
            region: self.region.clone(),
            service_url: self.service_url.clone(),
            epoch: self.epoch,
            service_keys: self.service_keys.clone(),
            policy: self.policy.clone(),
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            key_seed,
            host_key,
            workspace_id,
            device_key,
        };
        Zeroizing::new(serde_json::to_string(&s).expect("credential serializes"))
    }

    /// Parses a stored credential.
    pub fn from_json(json: &str) -> Result<Credential> {
        let s: Stored = parse_json(json.as_bytes(), 256 * 1024, "credential")?;
        if s.v != 1 {
            return Err(Error::malformed("unsupported credential version"));
        }
        let auth = match (&s.key_seed, &s.workspace_id, &s.device_key) {
            _ if s.host_key.is_some() && (s.key_seed.is_some() || s.workspace_id.is_some() || s.device_key.is_some()) => {
                return Err(Error::malformed(
                    "credential must hold exactly one of key_seed, host_key or workspace_id + device_key",
                ))
            }
            (None, None, None) if s.host_key.is_some() => {
                let h = s.host_key.as_ref().expect("checked");
                let key = HostKey::new(h.handle.clone(), h.jwk.to_key()?)
                    .map_err(|_| Error::malformed("credential host_key handle is invalid"))?;
                CredentialAuth::Key(InstallationKey::Host(key))
            }
            (Some(seed), None, None) => {
                let bytes = Zeroizing::new(b64url_decode(seed)?);
                let seed: &[u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::malformed("key seed must be 32 bytes"))?;
                CredentialAuth::Key(InstallationKey::Software(SigningKey::from_seed(seed)?))
            }
            (None, Some(id), Some(key)) => {
                let key = Zeroizing::new(b64url_decode(key)?);
                if key.len() != crate::downlevel::DEVICE_KEY_LEN {
                    return Err(Error::malformed("device_key must be 32 bytes"));
                }
                CredentialAuth::SharedKey {
                    workspace_id: id.clone(),
                    key,
                }
            }
            _ => {
                return Err(Error::malformed(
                    "credential must hold exactly one of key_seed, host_key or workspace_id + device_key",
                ))
            }
        };
        Ok(Credential {
            installation_id: s.installation_id.clone(),
            enrollment_id: s.enrollment_id.clone(),
            tenant_id: s.tenant_id.clone(),
            partner_id: s.partner_id.clone(),
            region: s.region.clone(),
            service_url: s.service_url.clone(),
            epoch: s.epoch,
            service_keys: s.service_keys.clone(),
            policy: s.policy.clone(),
            issued_at: s.issued_at,
            expires_at: s.expires_at,
            auth,
        })
    }
}
