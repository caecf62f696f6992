//! Down-level onboarding for agents that cannot run the token flow: an
//! onboarding package (sensitive: it carries the workspace key) and
//! HMAC-SHA256 request signing modelled on the `SharedKey
//! <key-id>:<signature>` scheme of log-ingestion APIs.
//!
//! Two secrets, so that one leaked package cannot speak for the fleet: the
//! workspace key only *registers* (`SharedKey <workspace-id>:…`); at
//! registration each agent hands the service a random 32-byte device key it
//! generated itself, and every ingest is signed with that device key
//! (`SharedKey <installation-id>:…`). Holding the workspace key therefore
//! neither ingests for, nor takes over, an installation already registered.
//!
//! String to sign (each line ends with `\n` except the last):
//! `METHOD`, `PATH`, `content-type`, `x-edrlink-date` (RFC 3339), lower-case
//! hex SHA-256 of the body. The body hash (instead of only its length) binds
//! the whole body; the date is checked within ±300 s.

use crate::encoding::{
    b64_dsse_decode, b64std, b64url, b64url_decode, hex, parse_json, parse_rfc3339, rfc3339,
    sha256, UnixSeconds,
};
use crate::error::{Error, ErrorCode, Result};
use crate::fresh::check_fresh;
use crate::keys::{random_id, Keyset, RandomSource};
use ring::hmac;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Header carrying the signing date.
pub const DATE_HEADER: &str = "x-edrlink-date";
/// `type` field of an onboarding package.
pub const PACKAGE_TYPE: &str = "edrlink-onboarding-package";

/// The onboarding package. Sensitive: treat like a password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardingPackage {
    /// Always [`PACKAGE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Format version (1).
    pub v: u32,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Region.
    pub region: String,
    /// Partner API base URL.
    pub service_url: String,
    /// Service keys (to verify offboarding packages).
    pub service_keys: Keyset,
    /// Integration epoch the workspace key belongs to.
    pub epoch: u64,
    /// Workspace id.
    pub workspace_id: String,
    /// Workspace key, base64url (32 bytes).
    pub workspace_key: String,
    /// Issued at (RFC 3339).
    pub issued: String,
    /// After this (RFC 3339) the workspace key no longer registers agents
    /// (`token_expired`); agents already registered keep sending. Informative
    /// for the holder: the service enforces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl Drop for OnboardingPackage {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.workspace_key.zeroize();
    }
}

impl core::fmt::Debug for OnboardingPackage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OnboardingPackage")
            .field("tenant_id", &self.tenant_id)
            .field("partner_id", &self.partner_id)
            .field("region", &self.region)
            .field("workspace_id", &self.workspace_id)
            .field("workspace_key", &"<redacted>")
            .finish()
    }
}

impl OnboardingPackage {
    /// Service role: creates a package with a fresh 32-byte workspace key.
    #[allow(clippy::too_many_arguments)]
    pub fn issue(
        tenant_id: &str,
        partner_id: &str,
        region: &str,
        service_url: &str,
        service_keys: Keyset,
        epoch: u64,
        now: UnixSeconds,
        rng: &dyn RandomSource,
    ) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(&mut key[..])?;
        Ok(OnboardingPackage {
            kind: PACKAGE_TYPE.into(),
            v: 1,
            tenant_id: tenant_id.into(),
            partner_id: partner_id.into(),
            region: region.into(),
            service_url: service_url.into(),
            service_keys,
            epoch,
            workspace_id: format!("ws-{}", random_id(rng, 12)?),
            workspace_key: b64url(&key[..]),
            issued: rfc3339(now),
            expires: None,
        })
    }

    /// Parses and validates a package.
    pub fn from_json(json: &str) -> Result<Self> {
        let p: OnboardingPackage = parse_json(json.as_bytes(), 64 * 1024, "onboarding package")?;
        if p.kind != PACKAGE_TYPE || p.v != 1 {
            return Err(Error::new(
                ErrorCode::WrongType,
                "not an edrlink onboarding package v1",
            ));
        }
        if p.workspace_id.is_empty() || p.workspace_id.len() > 128 {
            return Err(Error::malformed("workspace_id must be 1..128 characters"));
        }
        if p.key_bytes()?.len() != 32 {
            return Err(Error::malformed("workspace_key must be 32 bytes"));
        }
        parse_rfc3339(&p.issued)?;
        if let Some(e) = &p.expires {
            parse_rfc3339(e)?;
        }
        Ok(p)
    }

    /// Serializes (contains the secret).
    pub fn to_json(&self) -> Zeroizing<String> {
        Zeroizing::new(serde_json::to_string_pretty(self).expect("package serializes"))
    }

    /// The workspace key bytes.
    pub fn key_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(b64url_decode(&self.workspace_key)?))
    }
}

/// The string to sign for a request.
pub fn string_to_sign(
    method: &str,
    path: &str,
    content_type: &str,
    date: &str,
    body: &[u8],
) -> String {
    format!(
        "{method}\n{path}\n{content_type}\n{date}\n{}",
        hex(&sha256(body))
    )
}

/// Computes the `Authorization` header value `SharedKey <key_id>:<mac>`:
/// `key_id` is the workspace id (register, workspace key) or the installation
/// id (ingest, device key).
pub fn authorization(
    workspace_id: &str,
    key: &[u8],
    method: &str,
    path: &str,
    content_type: &str,
    date: &str,
    body: &[u8],
) -> String {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(
        &k,
        string_to_sign(method, path, content_type, date, body).as_bytes(),
    );
    format!("SharedKey {workspace_id}:{}", b64std(tag.as_ref()))
}

/// Service role: splits an `Authorization` header into the key id (the
/// workspace id for registration, the installation id for ingest) and the
/// signature.
pub fn workspace_of(authorization: &str) -> Result<(&str, &str)> {
    let rest = authorization
        .strip_prefix("SharedKey ")
        .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "expected SharedKey authorization"))?;
    rest.split_once(':')
        .filter(|(id, sig)| !id.is_empty() && !sig.is_empty())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthorized,
                "SharedKey must be <workspace-id>:<signature>",
            )
        })
}

/// Service role: verifies the header in constant time and the date window.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    authorization: &str,
    key: &[u8],
    method: &str,
    path: &str,
    content_type: &str,
    date: &str,
    body: &[u8],
    now: UnixSeconds,
) -> Result<()> {
    let (_, sig) = workspace_of(authorization)?;
    let sig = b64_dsse_decode(sig)
        .map_err(|_| Error::new(ErrorCode::Unauthorized, "SharedKey signature is not base64"))?;
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(
        &k,
        string_to_sign(method, path, content_type, date, body).as_bytes(),
        &sig,
    )
    .map_err(|_| {
        Error::new(
            ErrorCode::BadSignature,
            "SharedKey signature does not verify",
        )
    })?;
    let t = parse_rfc3339(date)
        .map_err(|_| Error::new(ErrorCode::Unauthorized, "x-edrlink-date must be RFC 3339"))?;
    check_fresh(t, now)
}

/// Length of a device key in bytes.
pub const DEVICE_KEY_LEN: usize = 32;

/// A down-level agent's own secret: 32 random bytes it generates before its
/// first registration attempt and sends once, in the (workspace-key signed)
/// register body. The service keeps it per installation; it alone signs that
/// installation's ingest. Zeroized on drop, redacted in `Debug`, compared in
/// constant time.
#[derive(Clone)]
pub struct DeviceKey(Zeroizing<[u8; DEVICE_KEY_LEN]>);

impl DeviceKey {
    /// A fresh key from `rng`.
    pub fn generate(rng: &dyn RandomSource) -> Result<Self> {
        let mut k = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
        rng.fill(&mut k[..])?;
        Ok(DeviceKey(k))
    }

    /// From raw bytes (exactly [`DEVICE_KEY_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; DEVICE_KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::malformed("device_key must be 32 bytes"))?;
        Ok(DeviceKey(Zeroizing::new(arr)))
    }

    /// From its base64url wire form.
    pub fn from_b64url(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(b64url_decode(text)?);
        Self::from_bytes(&bytes)
    }

    /// The base64url wire form (a secret).
    pub fn to_b64url(&self) -> Zeroizing<String> {
        Zeroizing::new(b64url(&self.0[..]))
    }

    /// The raw bytes (a secret).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0[..]
    }
}

impl PartialEq for DeviceKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time: the comparison decides whether a re-registration
        // resumes an installation, so it must not leak a matching prefix.
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for DeviceKey {}

impl core::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

/// Body of `POST /v1/downlevel/register` (signed with the workspace key).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Client-generated enrollment id (idempotent retries).
    pub enrollment_id: String,
    /// Device facts.
    pub device: crate::redeem::DeviceFacts,
    /// The agent's device key, base64url (32 bytes). A retry carries the
    /// same one; another key under a known enrollment id is `possible_clone`.
    pub device_key: String,
}

impl Drop for RegisterRequest {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.device_key.zeroize();
    }
}

impl core::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("enrollment_id", &self.enrollment_id)
            .field("device", &self.device)
            .field("device_key", &"<redacted>")
            .finish()
    }
}

/// Answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// Installation id.
    pub installation_id: String,
    /// Epoch.
    pub epoch: u64,
    /// Policy.
    pub policy: crate::policy::Policy,
    /// Service time.
    pub server_time: UnixSeconds,
    /// Highest sequence stored for this installation.
    pub last_seq: u64,
}
