//! Redemption: an endpoint trades the pasted access token for its own
//! credential, proving possession of a key it generated itself.
//!
//! Request: JWS `edrlink-redeem+jwt` signed by the new endpoint key, with the
//! public key embedded as `jwk` (the ACME pattern). Response: JWS
//! `edrlink-redeem-resp+jwt` signed by the service, echoing the nonce.

use crate::credential::{Credential, CredentialAuth};
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::fresh::{check_fresh, check_nonce};
use crate::jws;
use crate::keys::{random_id, Keyset, RandomSource, SigningKey, VerifyingKey};
use crate::policy::Policy;
use crate::signer::{HostKey, InstallationKey};
use crate::token;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// JOSE `typ` of the request.
pub const REQUEST_TYP: &str = "edrlink-redeem+jwt";
/// JOSE `typ` of the response.
pub const RESPONSE_TYP: &str = "edrlink-redeem-resp+jwt";

/// Facts about the device, reported at redemption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceFacts {
    /// Stable device id (e.g. machine-id, hardware UUID).
    pub device_id: String,
    /// Host name.
    pub hostname: String,
    /// OS family: `windows`, `macos`, `linux`, `android`, `ios`, `chromeos`, `browser`.
    pub os: String,
    /// OS version.
    pub os_version: String,
    /// Partner product name.
    pub product: String,
    /// Partner product version.
    pub product_version: String,
}

impl DeviceFacts {
    /// Checks that every field is present and reasonably sized.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("device_id", &self.device_id),
            ("hostname", &self.hostname),
            ("os", &self.os),
            ("os_version", &self.os_version),
            ("product", &self.product),
            ("product_version", &self.product_version),
        ] {
            if v.is_empty() || v.len() > 256 || v.chars().any(char::is_control) {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!("device {name} must be 1..256 printable characters"),
                ));
            }
        }
        Ok(())
    }
}

/// Claims of the redemption request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestClaims {
    /// The access token (never persisted by either side after this exchange).
    pub token: String,
    /// Client-generated, persisted before the first attempt: retries are idempotent.
    pub enrollment_id: String,
    /// Request nonce.
    pub nonce: String,
    /// Creation time (endpoint clock).
    pub iat: UnixSeconds,
    /// Device facts.
    pub device: DeviceFacts,
}

/// Claims of the signed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseClaims {
    /// Installation id.
    pub installation_id: String,
    /// Echo of the request's enrollment id.
    pub enrollment_id: String,
    /// Echo of the request nonce (binds response to request).
    pub nonce: String,
    /// Service time.
    pub iat: UnixSeconds,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Region.
    pub region: String,
    /// Partner API base URL.
    pub service_url: String,
    /// Integration epoch.
    pub epoch: u64,
    /// Service keys to pin.
    pub keyset: Keyset,
    /// Initial policy.
    pub policy: Policy,
    /// When the credential expires (rotate at two thirds).
    pub credential_exp: UnixSeconds,
    /// Set when another installation with the same device id and another key exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub possible_clone_of: Option<String>,
}

/// A redemption in progress: everything needed to retry it idempotently and to
/// accept its answer. The host may persist `enrollment_id` and the key seed.
pub struct PendingRedeem {
    token: Zeroizing<String>,
    /// Enrollment id (persist before the first attempt for idempotent retries).
    pub enrollment_id: String,
    /// `None` until the host created its key ([`PendingRedeem::new_for_host`]).
    key: Option<InstallationKey>,
    device: DeviceFacts,
    nonce: String,
    service_url: String,
}

impl core::fmt::Debug for PendingRedeem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingRedeem")
            .field("enrollment_id", &self.enrollment_id)
            .field("kid", &self.key.as_ref().map(|k| k.key_id()))
            .field("token", &"<redacted>")
            .finish()
    }
}

impl PendingRedeem {
    /// Starts a redemption. `key` and `enrollment_id` come from a previous
    /// attempt when retrying; otherwise pass `None` to generate them.
    pub fn new(
        token_text: &str,
        device: DeviceFacts,
        key: Option<SigningKey>,
        enrollment_id: Option<String>,
        rng: &dyn RandomSource,
    ) -> Result<Self> {
        let key = match key {
            Some(k) => k,
            None => SigningKey::generate(rng)?,
        };
        Self::with_key(
            token_text,
            device,
            Some(InstallationKey::Software(key)),
            enrollment_id,
            rng,
        )
    }

    /// Starts a redemption whose key the host will create and keep: set it
    /// with [`set_host_key`](Self::set_host_key) before the first request.
    pub fn new_for_host(
        token_text: &str,
        device: DeviceFacts,
        enrollment_id: Option<String>,
        rng: &dyn RandomSource,
    ) -> Result<Self> {
        Self::with_key(token_text, device, None, enrollment_id, rng)
    }

    /// Starts a redemption with `key` (software or host-kept; `None` until
    /// the host created one, see [`set_host_key`](Self::set_host_key)).
    pub fn with_key(
        token_text: &str,
        device: DeviceFacts,
        key: Option<InstallationKey>,
        enrollment_id: Option<String>,
        rng: &dyn RandomSource,
    ) -> Result<Self> {
        device.validate()?;
        // Fail early on something that is not a token at all (advisory; the service decides).
        let info = token::inspect(token_text)?;
        let enrollment_id = match enrollment_id {
            Some(e) => e,
            None => random_id(rng, 16)?,
        };
        Ok(PendingRedeem {
            token: Zeroizing::new(token_text.trim().to_owned()),
            enrollment_id,
            key,
            device,
            nonce: String::new(),
            service_url: info.claims.service_url,
        })
    }

    /// The service URL named by the token (untrusted until the answer verifies).
    pub fn service_url(&self) -> &str {
        &self.service_url
    }

    /// The endpoint key being enrolled (`None` while a host creates it).
    pub fn key(&self) -> Option<&InstallationKey> {
        self.key.as_ref()
    }

    /// The key the host created for this enrollment.
    pub fn set_host_key(&mut self, key: HostKey) {
        self.key = Some(InstallationKey::Host(key));
    }

    /// Builds a (fresh-nonce) signed request body (software key).
    pub fn request(&mut self, now: UnixSeconds, rng: &dyn RandomSource) -> Result<String> {
        let unsigned = self.request_unsigned(now, rng)?;
        match &self.key {
            Some(InstallationKey::Software(k)) => unsigned.sign(k),
            _ => Err(Error::new(
                ErrorCode::InvalidState,
                "the enrollment key is kept by the host: sign request_unsigned's message there",
            )),
        }
    }

    /// The (fresh-nonce) request up to its signature by [`key`](Self::key).
    pub fn request_unsigned(
        &mut self,
        now: UnixSeconds,
        rng: &dyn RandomSource,
    ) -> Result<jws::Unsigned> {
        let public = self
            .key
            .as_ref()
            .ok_or_else(|| Error::new(ErrorCode::InvalidState, "no enrollment key yet"))?
            .public_key();
        self.nonce = random_id(rng, 16)?;
        let claims = RequestClaims {
            token: self.token.to_string(),
            enrollment_id: self.enrollment_id.clone(),
            nonce: self.nonce.clone(),
            iat: now,
            device: self.device.clone(),
        };
        jws::prepare(REQUEST_TYP, &claims, &public, true)
    }

    /// Verifies the service's answer and builds the credential.
    ///
    /// Trust, so that nobody but the issuer of our token can answer (a
    /// TLS-intercepting proxy or a host transport could otherwise answer with
    /// `[attacker key, real key]`, sign with its own key and get pinned):
    /// - with `pinned`, the answer must verify against the pinned keyset, and
    ///   the keyset it carries is merged by the overlap rule
    ///   ([`Keyset::merge_signed`]), never adopted wholesale;
    /// - without, the answer must be signed by the very key (`kid`) that
    ///   signed the token, and that key (taken from the carried keyset, where
    ///   the derived `kid` binds it to its bytes) must verify the token; the
    ///   carried keyset is then merged onto that single key by the same rule.
    ///
    /// In both cases `tenant_id`, `partner_id`, `region`, `epoch` and
    /// `service_url` must equal the token's claims. Any mismatch is
    /// `bad_signature` (the answer does not come from whoever issued the
    /// token) and nothing is returned, so nothing is pinned or stored.
    ///
    /// `now` is the endpoint's clock corrected by the measured offset: key
    /// validity (`not_after`) is judged against it, never against the answer's
    /// own `iat`.
    pub fn accept(
        self,
        response: &str,
        pinned: Option<&Keyset>,
        now: UnixSeconds,
    ) -> Result<(Credential, ResponseClaims)> {
        let u = jws::parse(response, RESPONSE_TYP)?;
        let claims: ResponseClaims = u.claims()?;
        let tok = jws::parse(&self.token, token::TYP)?;
        let tok_claims = token::AccessTokenClaims::from_json(&tok.payload)?;
        let (signer, base) = match pinned {
            Some(keys) => (u.verify_with_keyset(keys, now)?, keys.clone()),
            None => {
                let token_kid = tok
                    .header
                    .kid
                    .as_deref()
                    .ok_or_else(|| Error::malformed("token header lacks kid"))?;
                if u.header.kid.as_deref() != Some(token_kid) {
                    return Err(Error::new(
                        ErrorCode::BadSignature,
                        "redemption answer is not signed by the key that signed the token",
                    ));
                }
                let key = tok.verify_with_keyset(&claims.keyset, now)?;
                u.verify_with(&key)?;
                // The one key trusted so far: the token's, as the answer lists it
                // (with its `not_after`, if any).
                let jwk = claims
                    .keyset
                    .keys
                    .iter()
                    .find(|j| j.to_key().ok() == Some(key))
                    .cloned()
                    .unwrap_or_else(|| key.to_jwk());
                (key, Keyset { keys: vec![jwk] })
            }
        };
        let same_url = claims.service_url.trim_end_matches('/')
            == tok_claims.service_url.trim_end_matches('/');
        if claims.tenant_id != tok_claims.tenant_id
            || claims.partner_id != tok_claims.partner_id
            || claims.region != tok_claims.region
            || claims.epoch != tok_claims.epoch
            || !same_url
        {
            return Err(Error::new(
                ErrorCode::BadSignature,
                "redemption answer names another tenant, partner, region, epoch or service URL than the token",
            ));
        }
        if claims.nonce != self.nonce || claims.enrollment_id != self.enrollment_id {
            return Err(Error::new(
                ErrorCode::BadSignature,
                "redemption response does not answer our request",
            ));
        }
        let service_keys = base
            .merge_signed(&claims.keyset, &signer.key_id(), now)?
            .unwrap_or(base);
        let cred = Credential {
            installation_id: claims.installation_id.clone(),
            enrollment_id: claims.enrollment_id.clone(),
            tenant_id: claims.tenant_id.clone(),
            partner_id: claims.partner_id.clone(),
            region: claims.region.clone(),
            service_url: claims.service_url.clone(),
            epoch: claims.epoch,
            service_keys,
            policy: claims.policy.clone(),
            issued_at: claims.iat,
            expires_at: claims.credential_exp,
            auth: CredentialAuth::Key(
                self.key
                    .ok_or_else(|| Error::new(ErrorCode::InvalidState, "no enrollment key"))?,
            ),
        };
        Ok((cred, claims))
    }
}

/// Service role: parses and authenticates a redemption request (signature by
/// the embedded key, freshness, shape). Token and state checks follow in
/// [`crate::service`].
pub fn verify_request(body: &str, now: UnixSeconds) -> Result<(RequestClaims, VerifyingKey)> {
    let u = jws::parse(body, REQUEST_TYP)?;
    let jwk = u
        .header
        .jwk
        .as_ref()
        .ok_or_else(|| Error::malformed("redeem request must embed its jwk"))?;
    let key = jwk.to_key()?;
    u.verify_with(&key)?;
    let claims: RequestClaims = u.claims()?;
    check_nonce(&claims.nonce)?;
    if claims.enrollment_id.is_empty() || claims.enrollment_id.len() > 128 {
        return Err(Error::malformed("enrollment_id must be 1..128 characters"));
    }
    claims
        .device
        .validate()
        .map_err(|e| Error::malformed(e.message().to_owned()))?;
    check_fresh(claims.iat, now)?;
    Ok((claims, key))
}
