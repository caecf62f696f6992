//! Offboarding, both ways: the partner's signed opt-out message, and the
//! admin-issued offboarding package (valid 30 days) that makes an endpoint
//! wipe its credential.

use crate::credential::Credential;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::fresh::{check_fresh, check_nonce};
use crate::jws;
use crate::keys::{random_id, RandomSource, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// JOSE `typ` of the partner's opt-out.
pub const REQUEST_TYP: &str = "edrlink-offboard+jwt";
/// JOSE `typ` of the service's acknowledgement.
pub const RESPONSE_TYP: &str = "edrlink-offboard-resp+jwt";
/// JOSE `typ` of the admin-issued package.
pub const PACKAGE_TYP: &str = "edrlink-offboarding+jwt";
/// Offboarding packages are valid 30 days.
pub const PACKAGE_VALIDITY: i64 = 30 * 86_400;

/// Claims of an opt-out request (and, with `offboarded`, of its answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffboardClaims {
    /// Installation id.
    pub installation_id: String,
    /// Nonce (echoed in the answer).
    pub nonce: String,
    /// Sender time.
    pub iat: UnixSeconds,
    /// Free-text reason (request) — never secrets.
    #[serde(default)]
    pub reason: String,
}

/// Partner role: signs an opt-out. Returns (body, nonce).
pub fn request(
    cred: &Credential,
    reason: &str,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(String, String)> {
    let (unsigned, nonce) = request_unsigned(cred, reason, now, rng)?;
    Ok((unsigned.sign(cred.signing_key()?)?, nonce))
}

/// [`request`] up to the signature (for a key the host keeps). Returns
/// (unsigned JWS, nonce).
pub fn request_unsigned(
    cred: &Credential,
    reason: &str,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(jws::Unsigned, String)> {
    let c = OffboardClaims {
        installation_id: cred.installation_id.clone(),
        nonce: random_id(rng, 16)?,
        iat: now,
        reason: reason.chars().take(256).collect(),
    };
    Ok((
        jws::prepare(REQUEST_TYP, &c, &cred.public_key()?, false)?,
        c.nonce,
    ))
}

/// Service role: verifies an opt-out with the installation key.
pub fn verify_request(body: &str, key: &VerifyingKey, now: UnixSeconds) -> Result<OffboardClaims> {
    let u = jws::parse(body, REQUEST_TYP)?;
    u.verify_with(key)?;
    let c: OffboardClaims = u.claims()?;
    check_nonce(&c.nonce)?;
    check_fresh(c.iat, now)?;
    Ok(c)
}

/// Service role: reads the installation id without trust.
pub fn peek_installation(body: &str) -> Result<String> {
    Ok(jws::parse(body, REQUEST_TYP)?
        .claims::<OffboardClaims>()?
        .installation_id)
}

/// Service role: signs the acknowledgement.
pub fn respond(
    installation_id: &str,
    nonce: &str,
    key: &SigningKey,
    now: UnixSeconds,
) -> Result<String> {
    let c = OffboardClaims {
        installation_id: installation_id.into(),
        nonce: nonce.into(),
        iat: now,
        reason: "offboarded".into(),
    };
    jws::sign(RESPONSE_TYP, &c, key, false)
}

/// Partner role: verifies the acknowledgement. `now` is the endpoint clock
/// plus the measured offset (key `not_after` is judged against it, not
/// against the answer's `iat`).
pub fn accept_response(cred: &Credential, body: &str, nonce: &str, now: UnixSeconds) -> Result<()> {
    let u = jws::parse(body, RESPONSE_TYP)?;
    let c: OffboardClaims = u.claims()?;
    u.verify_with_keyset(&cred.service_keys, now)?;
    if c.nonce != nonce || c.installation_id != cred.installation_id {
        return Err(Error::new(
            ErrorCode::BadSignature,
            "offboard answer does not match our request",
        ));
    }
    Ok(())
}

/// Claims of an offboarding package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageClaims {
    /// Package id.
    pub jti: String,
    /// Tenant the package applies to.
    pub tenant_id: String,
    /// Partner the package applies to.
    pub partner_id: String,
    /// The integration epoch when the package was issued: a credential of a
    /// later epoch (re-enrolled after the package) refuses it, so an old
    /// package cannot be replayed against a re-enrolled endpoint.
    pub epoch: u64,
    /// Issued at.
    pub iat: UnixSeconds,
    /// Expires (iat + 30 days).
    pub exp: UnixSeconds,
    /// Restrict to these installations; absent = every installation of the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation_ids: Option<Vec<String>>,
}

/// Service role: issues an offboarding package.
pub fn issue_package(
    tenant_id: &str,
    partner_id: &str,
    epoch: u64,
    installation_ids: Option<Vec<String>>,
    key: &SigningKey,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(String, PackageClaims)> {
    let c = PackageClaims {
        jti: random_id(rng, 16)?,
        tenant_id: tenant_id.into(),
        partner_id: partner_id.into(),
        epoch,
        iat: now,
        exp: now.saturating_add(PACKAGE_VALIDITY),
        installation_ids,
    };
    Ok((jws::sign(PACKAGE_TYP, &c, key, false)?, c))
}

/// Partner role: checks a package applies to this credential and is valid now
/// (with the same bounded skew as tokens).
pub fn verify_package(cred: &Credential, package: &str, now: UnixSeconds) -> Result<PackageClaims> {
    let u = jws::parse(package, PACKAGE_TYP)?;
    let c: PackageClaims = u.claims()?;
    u.verify_with_keyset(&cred.service_keys, now)?;
    let skew = crate::token::DEFAULT_SKEW;
    if now.saturating_sub(skew) >= c.exp || now.saturating_add(skew) < c.iat {
        return Err(Error::new(
            ErrorCode::PackageInvalid,
            "offboarding package is expired or not yet valid",
        ));
    }
    if c.tenant_id != cred.tenant_id || c.partner_id != cred.partner_id {
        return Err(Error::new(
            ErrorCode::PackageInvalid,
            "offboarding package is for another tenant or partner",
        ));
    }
    if c.epoch < cred.epoch {
        return Err(Error::new(
            ErrorCode::PackageInvalid,
            format!(
                "offboarding package is of epoch {}, older than this credential's epoch {}",
                c.epoch, cred.epoch
            ),
        ));
    }
    if let Some(ids) = &c.installation_ids {
        if !ids.contains(&cred.installation_id) {
            return Err(Error::new(
                ErrorCode::PackageInvalid,
                "offboarding package does not name this installation",
            ));
        }
    }
    Ok(c)
}
