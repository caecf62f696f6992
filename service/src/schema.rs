//! The HTTP bodies of the service, as types: the admin handlers deserialize
//! their requests into these very types, and `openapi.rs` derives the
//! published schemas from them (utoipa), so the contract and what the
//! handlers accept cannot drift apart. Every object is closed
//! (`additionalProperties: false`, i.e. `deny_unknown_fields`); optional
//! fields may be left out but are never `null` (see [`present`]).
//!
//! Response types mirror what the handlers (and the core, for the partner
//! API) write; the schemathesis run in `scripts/test-all.sh` checks every
//! answer against them.

#![allow(dead_code)] // response mirrors are read by the schema derive only

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Tenant, partner and region ids (what `valid_id` accepts).
pub const ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// A compact JWS (`header.payload.signature`, base64url without padding).
pub const JWS_PATTERN: &str = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$";

/// An optional field that, when present, must hold a value: `null` is
/// refused like any other wrong type (the schema says non-null), absence
/// gives `None` (with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Like [`present`] for integers, also taking an integral JSON number
/// written with a fraction (`5.0`): JSON Schema's `integer` includes it, so
/// the handlers accept what the published schema allows.
fn present_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(d)?;
    let v = match (n.as_i64(), n.as_f64()) {
        (Some(i), _) => i,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => return Err(D::Error::custom(format!("{n} is not an integer in range"))),
    };
    T::try_from(v)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

// ---- admin requests -----------------------------------------------------------

/// `POST /admin/tenants`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Tenant id, 1..64 characters of `[A-Za-z0-9._-]`.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub tenant_id: String,
    /// Data region; default: the service's own region. Fixed once created.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub region: Option<String>,
}

/// `PUT /admin/tenants/{tenant}/integrations/{partner}`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetIntegration {
    /// On or off. Turning off bumps the integration epoch: every credential
    /// and token of the old epoch stops working.
    #[serde(default, deserialize_with = "present")]
    #[schema(required = true, nullable = false)]
    pub enabled: Option<bool>,
}

/// `POST /admin/tenants/{tenant}/integrations/{partner}/tokens`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateToken {
    /// Validity in seconds (default 24 h, at most 7 days).
    #[serde(default, deserialize_with = "present_int")]
    #[schema(nullable = false, minimum = 1, maximum = 604800)]
    pub lifetime_secs: Option<i64>,
    /// How many endpoints may redeem it (default 10000).
    #[serde(default, deserialize_with = "present_int")]
    #[schema(nullable = false, minimum = 1, maximum = 4294967295_u32)]
    pub max_uses: Option<u32>,
}

/// `POST /admin/tenants/{tenant}/integrations/{partner}/offboarding-package`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffboardingRequest {
    /// The installations the package offboards; absent: all of the integration's.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, min_items = 1, max_items = 10000)]
    pub installation_ids: Option<Vec<String>>,
}

/// `POST /admin/tenants/{tenant}/integrations/{partner}/onboarding-package`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardingRequest {
    /// How long the workspace key registers agents, in seconds (default 30
    /// days, at most 365 days). Agents registered with it keep their own
    /// device keys after it expires.
    #[serde(default, deserialize_with = "present_int")]
    #[schema(nullable = false, minimum = 1, maximum = 31536000)]
    pub lifetime_secs: Option<i64>,
}

/// `POST /admin/tenants/{tenant}/installations/revoke`.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The installations to revoke (1..1000); one unknown id refuses the
    /// whole request and changes nothing.
    #[serde(default, deserialize_with = "present")]
    #[schema(required = true, nullable = false, min_items = 1, max_items = 1000)]
    pub installation_ids: Option<Vec<String>>,
}

// ---- admin responses --------------------------------------------------------------

/// A tenant (created or already there with the same region).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub tenant_id: String,
    pub region: String,
    /// `true` with 201, `false` with 200 (it existed).
    pub created: bool,
}

/// One tenant in the list.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSummary {
    pub tenant_id: String,
    pub region: String,
}

/// `GET /admin/tenants`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantList {
    pub tenants: Vec<TenantSummary>,
}

/// A partner integration of a tenant.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Integration {
    pub tenant_id: String,
    pub partner_id: String,
    pub enabled: bool,
    /// Bumped each time the integration is turned off.
    #[schema(minimum = 0)]
    pub epoch: i64,
}

/// `GET /admin/tenants/{tenant}/integrations`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationList {
    pub integrations: Vec<Integration>,
}

/// A generated access token (shown once).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratedToken {
    /// The token to paste into the partner product.
    #[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
    pub token: String,
    pub jti: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    #[schema(minimum = 1)]
    pub max_uses: u32,
    #[schema(minimum = 0)]
    pub epoch: i64,
}

/// `DELETE /admin/tokens/{jti}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokedToken {
    pub jti: String,
    pub revoked: bool,
}

/// A service signing key (JWK, Ed25519).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    #[schema(pattern = "^OKP$")]
    pub kty: String,
    #[schema(pattern = "^Ed25519$")]
    pub crv: String,
    pub x: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub kid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, pattern = "^EdDSA$")]
    pub alg: Option<String>,
    /// Unix seconds after which the key is no longer accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub not_after: Option<i64>,
}

/// The service's public signing keys.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Keyset {
    pub keys: Vec<Jwk>,
}

/// A down-level onboarding package (holds the workspace key: shown once).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OnboardingPackage {
    #[serde(rename = "type")]
    #[schema(pattern = "^edrlink-onboarding-package$")]
    pub kind: String,
    #[schema(minimum = 1, maximum = 1)]
    pub v: u32,
    pub tenant_id: String,
    pub partner_id: String,
    pub region: String,
    pub service_url: String,
    pub service_keys: Keyset,
    #[schema(minimum = 0)]
    pub epoch: u64,
    pub workspace_id: String,
    pub workspace_key: String,
    /// RFC 3339.
    pub issued: String,
    /// RFC 3339: after this the workspace key registers nobody.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires: Option<String>,
}

/// An offboarding package (compact JWS signed by the service).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffboardingPackage {
    #[schema(pattern = "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$")]
    pub package: String,
    pub jti: String,
    pub exp: i64,
    pub expires_at: String,
    /// The integration epoch the package belongs to.
    #[schema(minimum = 0)]
    pub epoch: u64,
    /// How many installations the package marked offboarded on the service.
    #[schema(minimum = 0)]
    pub offboarded: u64,
}

/// A revoked workspace key (`POST /admin/tenants/{tenant}/workspaces/{workspace}/revoke`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokedWorkspace {
    pub workspace_id: String,
    pub revoked: bool,
}

/// Installations revoked or reinstated.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokedInstallations {
    pub tenant_id: String,
    pub installation_ids: Vec<String>,
    /// `true` after a revoke, `false` after a reinstate.
    pub revoked: bool,
}

/// Lifecycle state of an installation on the service.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InstallationState {
    Active,
    Revoked,
    Offboarded,
    Expired,
}

/// Portal health of an installation.
#[derive(Serialize, ToSchema)]
pub enum Health {
    Revoked,
    Healthy,
    Inactive,
    #[serde(rename = "Agent state")]
    AgentState,
    #[serde(rename = "Not onboarded")]
    NotOnboarded,
}

/// An installation (one endpoint) of a tenant.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Installation {
    pub id: String,
    pub partner_id: String,
    pub hostname: String,
    pub device_id: String,
    pub os: String,
    pub os_version: String,
    pub product: String,
    pub product_version: String,
    pub health: Health,
    /// RFC 3339; `null` before the first message.
    pub last_seen: Option<String>,
    pub last_seq: i64,
    pub missing_seq: i64,
    pub reported_drops: i64,
    pub offboarded: bool,
    /// Revoked by the admin.
    pub revoked: bool,
    pub state: InstallationState,
    /// RFC 3339: when the credential expires unless rotated.
    pub credential_exp: String,
    /// Another installation with the same device id (a cloned image).
    pub possible_clone_of: Option<String>,
    pub sensor_running: bool,
    pub downlevel: bool,
    pub epoch: i64,
}

/// Onboarded share of a tenant's installations.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    #[schema(minimum = 0)]
    pub onboarded: u64,
    #[schema(minimum = 0)]
    pub total: u64,
    pub percent: f64,
}

/// `GET /admin/tenants/{tenant}/installations`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallationList {
    pub installations: Vec<Installation>,
    pub coverage: Coverage,
}

/// Alert severity.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

/// An alert raised from a detection.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub id: i64,
    pub installation_id: String,
    pub title: String,
    pub severity: Severity,
    pub threat_name: String,
    pub file_path: String,
    pub sha256: String,
    pub url: Option<String>,
    pub test: bool,
    pub time: String,
}

/// `GET /admin/tenants/{tenant}/alerts`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
}

/// `GET /admin/tenants/{tenant}/stats`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub events: i64,
    pub batches: i64,
    pub alerts: i64,
    pub installations: i64,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Healthz {
    #[schema(pattern = "^ok$")]
    pub status: String,
    pub region: String,
    pub schema_version: i64,
}

// ---- partner API ----------------------------------------------------------------

/// RFC 9457 problem details with edrlink's stable `code` (every error).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// `urn:edrlink:error:<code>`.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:edrlink:error:[a-z_]+$")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The `ErrorCode` name (snake_case).
    #[schema(pattern = "^[a-z_]+$")]
    pub code: String,
    /// `sequence_regression`: the next sequence number the service expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expected_seq: Option<u64>,
    /// 429: seconds to wait (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
}

/// Answer to an accepted (or already stored) telemetry batch.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestAck {
    #[schema(pattern = "^(accepted|duplicate)$")]
    pub status: String,
    pub batch_id: String,
    pub seq: u64,
    pub events: u64,
    /// Sequence numbers skipped before this batch.
    pub gap: u64,
}

/// Answer to a down-level registration.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterResponse {
    pub installation_id: String,
    pub epoch: u64,
    /// The policy the endpoint applies (see PROTOCOL.md).
    pub policy: serde_json::Value,
    pub server_time: i64,
    pub last_seq: u64,
}

/// A DSSE envelope (`application/vnd.dsse.envelope.v1+json`) as the
/// profile in PROTOCOL.md accepts it: one signature with a key id.
#[derive(Serialize, ToSchema)]
pub struct DsseEnvelope {
    /// `application/vnd.edrlink.batch.v1+json` (or `+gzip`).
    #[serde(rename = "payloadType")]
    #[schema(pattern = "^[!-~]{1,128}$")]
    pub payload_type: String,
    /// Base64 of the batch.
    #[schema(pattern = "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")]
    pub payload: String,
    #[schema(min_items = 1, max_items = 1)]
    pub signatures: Vec<DsseSignature>,
}

/// The DSSE signature.
#[derive(Serialize, ToSchema)]
pub struct DsseSignature {
    /// The installation id (the key that signed).
    #[schema(min_length = 1)]
    pub keyid: String,
    /// Base64 of the 64-byte Ed25519 signature.
    #[schema(pattern = "^[A-Za-z0-9+/]{86}==$")]
    pub sig: String,
}
