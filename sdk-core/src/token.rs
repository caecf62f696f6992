//! Access tokens: the string an admin generates in the portal and pastes into
//! the partner product. A JWT (RFC 7519) in the strict JWS profile of
//! [`crate::jws`], `typ` = `edrlink-access+jwt`.
//!
//! Partner side: [`inspect`] (offline, for display; no trust implied) and
//! [`verify`] (pinned keyset, bounded skew). Service side: [`issue`].

use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::jws;
use crate::keys::{random_id, Keyset, RandomSource, SigningKey};
use crate::strict_json::{self, put};
use serde::{Deserialize, Serialize};

/// JOSE `typ` of access tokens.
pub const TYP: &str = "edrlink-access+jwt";
/// `aud` of access tokens: the partner API.
pub const AUDIENCE: &str = "edrlink-partner-api";
/// Default token lifetime: 24 hours.
pub const DEFAULT_LIFETIME: i64 = 24 * 3600;
/// Maximum token lifetime: 7 days.
pub const MAX_LIFETIME: i64 = 7 * 24 * 3600;
/// Default uses per token (one pasted token enrolls a fleet).
pub const DEFAULT_MAX_USES: u32 = 10_000;
/// Default clock-skew allowance for client-side checks.
pub const DEFAULT_SKEW: i64 = 60;
/// The allowance is clamped to this.
pub const MAX_SKEW: i64 = 300;
/// Consoles warn when fewer seconds than this are left.
pub const EXPIRY_WARNING: i64 = 3600;

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// Issuer: the service's identifier.
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Unique token id (revocation, use counting).
    pub jti: String,
    /// Issued at.
    pub iat: UnixSeconds,
    /// Not before.
    pub nbf: UnixSeconds,
    /// Expires at.
    pub exp: UnixSeconds,
    /// Partner the integration is for, e.g. `bitdefender`.
    pub partner_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Data location of the tenant (fixed at tenant creation).
    pub region: String,
    /// Base URL of the partner API.
    pub service_url: String,
    /// Integration epoch; bumped when the admin toggles the integration off.
    pub epoch: u64,
    /// How many endpoints may redeem this token.
    pub max_uses: u32,
}

impl AccessTokenClaims {
    /// Parses claims as serde would for this struct (unknown members skipped),
    /// with the core's strict reader instead of serde_json, so a module that
    /// only inspects and verifies tokens carries no serde_json deserializer.
    pub fn from_json(json: &[u8]) -> Result<AccessTokenClaims> {
        let mut s: [Option<String>; 7] = Default::default();
        let mut t: [Option<UnixSeconds>; 3] = [None; 3];
        let (mut epoch, mut max_uses) = (None, None);
        strict_json::parse(json, |r| {
            r.object(false, |r, k| {
                const STR: [&str; 7] = [
                    "iss",
                    "aud",
                    "jti",
                    "partner_id",
                    "tenant_id",
                    "region",
                    "service_url",
                ];
                if let Some(i) = STR.iter().position(|n| *n == k) {
                    put(&mut s[i], r.string()?)?;
                } else if let Some(i) = ["iat", "nbf", "exp"].iter().position(|n| *n == k) {
                    put(&mut t[i], r.i64()?)?;
                } else if k == "epoch" {
                    put(&mut epoch, r.u64()?)?;
                } else if k == "max_uses" {
                    put(&mut max_uses, r.u32()?)?;
                } else {
                    return Ok(false);
                }
                Ok(true)
            })
        })
        .and_then(|()| {
            let [iss, aud, jti, partner_id, tenant_id, region, service_url] =
                s.map(|v| v.ok_or(()));
            let [iat, nbf, exp] = t.map(|v| v.ok_or(()));
            Ok(AccessTokenClaims {
                iss: iss?,
                aud: aud?,
                jti: jti?,
                iat: iat?,
                nbf: nbf?,
                exp: exp?,
                partner_id: partner_id?,
                tenant_id: tenant_id?,
                region: region?,
                service_url: service_url?,
                epoch: epoch.ok_or(())?,
                max_uses: max_uses.ok_or(())?,
            })
        })
        .map_err(|()| Error::malformed("JWS payload: not valid access token claims"))
    }
}

/// Validity of a token at a given time, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Not valid yet.
    NotYetValid,
    /// Valid.
    Valid,
    /// Valid, but fewer than [`EXPIRY_WARNING`] seconds left.
    ExpiresSoon,
    /// Expired.
    Expired,
}

/// What [`inspect`] tells about a token: no signature was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Signing key id named by the token.
    pub kid: String,
    /// The claims as written in the token (untrusted).
    pub claims: AccessTokenClaims,
}

impl TokenInfo {
    /// Seconds until `exp` (negative when expired).
    pub fn seconds_left(&self, now: UnixSeconds) -> i64 {
        self.claims.exp.saturating_sub(now)
    }

    /// Status at `now`, with no skew allowance (advisory only).
    pub fn status(&self, now: UnixSeconds) -> TokenStatus {
        if now < self.claims.nbf {
            TokenStatus::NotYetValid
        } else if now >= self.claims.exp {
            TokenStatus::Expired
        } else if self.claims.exp.saturating_sub(now) < EXPIRY_WARNING {
            TokenStatus::ExpiresSoon
        } else {
            TokenStatus::Valid
        }
    }
}

/// The one token-inspection shape every binding and the CLI return (C and
/// the CLI as this JSON, JS as this object, uniffi as a record with these
/// fields): what a console shows next to a pasted token. No signature was
/// checked; `status` is computed here so no UI re-codes the thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInspection {
    /// Signing key id named by the token.
    pub kid: String,
    /// The claims as written in the token (untrusted).
    pub claims: AccessTokenClaims,
    /// Validity at `checked_at` (no skew allowance).
    pub status: TokenStatus,
    /// Seconds until `exp` at `checked_at` (negative when expired).
    pub seconds_left: i64,
    /// `exp` as RFC 3339 (UTC).
    pub expires_at: String,
    /// Below this many seconds left the status is `expires_soon`.
    pub expiry_warning_secs: i64,
    /// The time the status was computed for (Unix seconds).
    pub checked_at: UnixSeconds,
    /// Always `false`: inspection reads, [`verify`] checks.
    pub verified: bool,
}

/// Decodes a token for display at `now` without checking its signature
/// (surrounding whitespace from a paste is ignored).
pub fn inspect_at(token: &str, now: UnixSeconds) -> Result<TokenInspection> {
    let info = inspect(token.trim())?;
    Ok(TokenInspection {
        status: info.status(now),
        seconds_left: info.seconds_left(now),
        expires_at: crate::encoding::rfc3339(info.claims.exp),
        expiry_warning_secs: EXPIRY_WARNING,
        checked_at: now,
        verified: false,
        kid: info.kid,
        claims: info.claims,
    })
}

/// Decodes a token for display without checking its signature.
pub fn inspect(token: &str) -> Result<TokenInfo> {
    let u = jws::parse(token, TYP)?;
    let kid = u
        .header
        .kid
        .clone()
        .ok_or_else(|| Error::malformed("token header lacks kid"))?;
    let claims = AccessTokenClaims::from_json(&u.payload)?;
    check_shape(&claims)?;
    Ok(TokenInfo { kid, claims })
}

fn check_shape(c: &AccessTokenClaims) -> Result<()> {
    if c.aud != AUDIENCE {
        return Err(Error::new(
            ErrorCode::WrongType,
            "token audience is not the partner API",
        ));
    }
    for (name, v) in [
        ("partner_id", &c.partner_id),
        ("tenant_id", &c.tenant_id),
        ("region", &c.region),
        ("jti", &c.jti),
        ("iss", &c.iss),
    ] {
        if v.is_empty() || v.len() > 256 {
            return Err(Error::malformed(format!(
                "token claim {name} must be 1..256 characters"
            )));
        }
    }
    if !(c.service_url.starts_with("https://") || c.service_url.starts_with("http://")) {
        return Err(Error::malformed("token service_url must be an http(s) URL"));
    }
    // Attacker-chosen times: saturate, never overflow (i64::MIN `iat`).
    if c.exp <= c.nbf || c.nbf < c.iat.saturating_sub(MAX_SKEW) {
        return Err(Error::malformed("token validity window is inconsistent"));
    }
    Ok(())
}

/// Verifies signature (pinned keyset), type, audience and validity window with
/// a skew allowance clamped to [`MAX_SKEW`].
pub fn verify(
    token: &str,
    keys: &Keyset,
    now: UnixSeconds,
    skew: i64,
) -> Result<AccessTokenClaims> {
    let skew = skew.clamp(0, MAX_SKEW);
    let u = jws::parse(token, TYP)?;
    u.verify_with_keyset(keys, now)?;
    let claims = AccessTokenClaims::from_json(&u.payload)?;
    check_shape(&claims)?;
    if now.saturating_add(skew) < claims.nbf {
        return Err(Error::new(
            ErrorCode::TokenNotYetValid,
            "token is not valid yet",
        ));
    }
    if now.saturating_sub(skew) >= claims.exp {
        return Err(Error::new(ErrorCode::TokenExpired, "token has expired"));
    }
    Ok(claims)
}

/// What the portal asks for when it generates a token.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    /// Issuer id of the service.
    pub issuer: String,
    /// Partner id.
    pub partner_id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant region.
    pub region: String,
    /// Partner API base URL.
    pub service_url: String,
    /// Current integration epoch.
    pub epoch: u64,
    /// Lifetime in seconds (1..=[`MAX_LIFETIME`]).
    pub lifetime: i64,
    /// Redemptions allowed.
    pub max_uses: u32,
}

/// Issues (signs) a token. Service role.
pub fn issue(
    spec: &TokenSpec,
    key: &SigningKey,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(String, AccessTokenClaims)> {
    if spec.lifetime <= 0 || spec.lifetime > MAX_LIFETIME {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("token lifetime must be 1..={MAX_LIFETIME} seconds"),
        ));
    }
    if spec.max_uses == 0 {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            "max_uses must be at least 1",
        ));
    }
    let claims = AccessTokenClaims {
        iss: spec.issuer.clone(),
        aud: AUDIENCE.into(),
        jti: random_id(rng, 16)?,
        iat: now,
        nbf: now,
        exp: now
            .checked_add(spec.lifetime)
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "token expiry overflows"))?,
        partner_id: spec.partner_id.clone(),
        tenant_id: spec.tenant_id.clone(),
        region: spec.region.clone(),
        service_url: spec.service_url.clone(),
        epoch: spec.epoch,
        max_uses: spec.max_uses,
    };
    check_shape(&claims)?;
    Ok((jws::sign(TYP, &claims, key, false)?, claims))
}
