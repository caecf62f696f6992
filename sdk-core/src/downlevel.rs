//! Down-level onboarding for agents that cannot run the token flow: an
//! onboarding package (sensitive: it carries the workspace key) and
//! HMAC-SHA256 request signing modelled on the `SharedKey
//! <workspace-id>:<signature>` scheme of log-ingestion APIs.
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

/// Computes the `Authorization` header value.
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

/// Service role: extracts the workspace id from an `Authorization` header.
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

/// Body of `POST /v1/downlevel/register`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Client-generated enrollment id (idempotent retries).
    pub enrollment_id: String,
    /// Device facts.
    pub device: crate::redeem::DeviceFacts,
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
