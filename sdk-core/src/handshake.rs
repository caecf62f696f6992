//! Inbound-flow handshake: a signed hello from the installation, answered by a
//! service-signed flow decision (`open`, `blocked` or `revoked`).

use crate::credential::Credential;
use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode, Result};
use crate::fresh::{check_fresh, check_nonce};
use crate::jws;
use crate::keys::{random_id, RandomSource, VerifyingKey};
use crate::policy::Policy;
use serde::{Deserialize, Serialize};

/// JOSE `typ` of the hello.
pub const HELLO_TYP: &str = "edrlink-hello+jwt";
/// JOSE `typ` of the flow decision.
pub const FLOW_TYP: &str = "edrlink-flow+jwt";
/// Lifetime of a flow session.
pub const SESSION_LIFETIME: i64 = 3600;

/// Whether the partner's sensor service is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    /// Running.
    #[default]
    Running,
    /// Stopped (the portal shows "Agent state").
    Stopped,
}

/// The service's decision about inbound flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowState {
    /// Send.
    Open,
    /// Integration toggled off: stop sending, keep data, re-handshake slowly.
    Blocked,
    /// Epoch changed or offboarded: a new token is required.
    Revoked,
}

/// Claims of the hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Installation id.
    pub installation_id: String,
    /// Nonce (echoed in the decision).
    pub nonce: String,
    /// Endpoint time.
    pub iat: UnixSeconds,
    /// Sensor service state.
    pub sensor: SensorState,
    /// Highest sequence number the endpoint has had acknowledged (0: none).
    pub last_seq: u64,
    /// Version of the policy the endpoint holds.
    pub policy_version: u64,
    /// Observed offset of the service clock minus the endpoint clock (s).
    pub clock_offset: i64,
    /// Events waiting in the endpoint's queue.
    pub queued_events: u64,
    /// Events dropped locally since the last acknowledged report, by reason.
    #[serde(default)]
    pub drops: std::collections::BTreeMap<String, u64>,
}

/// Claims of the flow decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowDecision {
    /// Installation id.
    pub installation_id: String,
    /// Echo of the hello nonce.
    pub nonce: String,
    /// Service time.
    pub iat: UnixSeconds,
    /// The decision.
    pub decision: FlowState,
    /// Why (for blocked/revoked): an error code name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ErrorCode>,
    /// Session id (open only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Session expiry, service time (open only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_exp: Option<UnixSeconds>,
    /// Current policy (open only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// Highest sequence number the service has stored for this installation.
    pub last_seq: u64,
    /// The service's current keyset: partners merge it into their pinned
    /// keyset by the overlap rule (PROTOCOL §7.3), so service keys rotate
    /// without re-enrolling the fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyset: Option<crate::keys::Keyset>,
}

/// Partner role: builds a signed hello. Returns (body, nonce).
pub fn hello(
    cred: &Credential,
    h: Hello,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(String, String)> {
    let (unsigned, nonce) = hello_unsigned(cred, h, now, rng)?;
    Ok((unsigned.sign(cred.signing_key()?)?, nonce))
}

/// [`hello`] up to the signature (for a key the host keeps). Returns
/// (unsigned JWS, nonce).
pub fn hello_unsigned(
    cred: &Credential,
    mut h: Hello,
    now: UnixSeconds,
    rng: &dyn RandomSource,
) -> Result<(jws::Unsigned, String)> {
    h.installation_id = cred.installation_id.clone();
    h.nonce = random_id(rng, 16)?;
    h.iat = now;
    let unsigned = jws::prepare(HELLO_TYP, &h, &cred.public_key()?, false)?;
    Ok((unsigned, h.nonce))
}

/// Partner role: verifies a decision against the pinned keyset and our nonce.
///
/// `now` is the endpoint clock plus the measured offset: a pinned key's
/// `not_after` is judged against it, never against the decision's own `iat`.
/// A carried `keyset` is not applied here; see [`crate::keys::Keyset::merge_signed`].
pub fn accept_decision(
    cred: &Credential,
    body: &str,
    nonce: &str,
    now: UnixSeconds,
) -> Result<FlowDecision> {
    let u = jws::parse(body, FLOW_TYP)?;
    let d: FlowDecision = u.claims()?;
    u.verify_with_keyset(&cred.service_keys, now)?;
    if d.nonce != nonce || d.installation_id != cred.installation_id {
        return Err(Error::new(
            ErrorCode::BadSignature,
            "flow decision does not answer our hello",
        ));
    }
    if d.decision == FlowState::Open
        && (d.session_id.is_none() || d.session_exp.is_none() || d.policy.is_none())
    {
        return Err(Error::malformed("open decision lacks session or policy"));
    }
    Ok(d)
}

/// Service role: reads the installation id (to look its key up) without trust.
pub fn peek_installation(body: &str) -> Result<String> {
    let u = jws::parse(body, HELLO_TYP)?;
    let h: Hello = u.claims()?;
    Ok(h.installation_id)
}

/// Service role: verifies the hello with the installation's key and freshness.
pub fn verify_hello(body: &str, key: &VerifyingKey, now: UnixSeconds) -> Result<Hello> {
    let u = jws::parse(body, HELLO_TYP)?;
    u.verify_with(key)?;
    let h: Hello = u.claims()?;
    check_nonce(&h.nonce)?;
    check_fresh(h.iat, now)?;
    Ok(h)
}
