//! The service role of the protocol, sans-IO: every decision the partner API
//! makes (redeem, handshake, ingest, offboard, rotate, down-level register and
//! ingest), as a function from an HTTP request, the stored state and `now` to
//! an HTTP response. The reference service only adds transport and storage.
//!
//! State lives behind [`ServiceStore`]; callers run each `handle` call inside
//! one store transaction, so a batch acknowledged with 200 is durable.

use crate::downlevel::{self, DeviceKey, RegisterRequest, RegisterResponse};
use crate::dsse;
use crate::encoding::{parse_json, UnixSeconds};
use crate::error::{Error, ErrorCode, Result};
use crate::handshake::{self, FlowDecision, FlowState, SensorState};
use crate::http::{problem, problem_with_status, HttpRequest, HttpResponse, JOSE};
use crate::jws;
use crate::keys::{random_id, Keyset, RandomSource, SigningKey, VerifyingKey};
use crate::policy::Policy;
use crate::redeem::{self, DeviceFacts, ResponseClaims};
use crate::telemetry::{self, Batch, Event, Severity};
use crate::{
    credential::CREDENTIAL_LIFETIME, eicar, fresh::MESSAGE_WINDOW, offboard, rotate, token,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// One partner-API route: what [`ServiceRole::handle`] dispatches on and what
/// a service's router mounts, so the two cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartnerRoute {
    /// `GET /v1/keys`.
    Keys,
    /// `POST /v1/redeem`.
    Redeem,
    /// `POST /v1/handshake`.
    Handshake,
    /// `POST /v1/ingest`.
    Ingest,
    /// `POST /v1/offboard`.
    Offboard,
    /// `POST /v1/rotate`.
    Rotate,
    /// `POST /v1/downlevel/register`.
    DownlevelRegister,
    /// `POST /v1/downlevel/ingest`.
    DownlevelIngest,
}

/// Every partner route as `(method, path, route)`: the one table.
pub const PARTNER_ROUTES: &[(&str, &str, PartnerRoute)] = &[
    ("GET", "/v1/keys", PartnerRoute::Keys),
    ("POST", "/v1/redeem", PartnerRoute::Redeem),
    ("POST", "/v1/handshake", PartnerRoute::Handshake),
    ("POST", "/v1/ingest", PartnerRoute::Ingest),
    ("POST", "/v1/offboard", PartnerRoute::Offboard),
    ("POST", "/v1/rotate", PartnerRoute::Rotate),
    (
        "POST",
        "/v1/downlevel/register",
        PartnerRoute::DownlevelRegister,
    ),
    (
        "POST",
        "/v1/downlevel/ingest",
        PartnerRoute::DownlevelIngest,
    ),
];

impl PartnerRoute {
    /// The route a path names (any method), from [`PARTNER_ROUTES`].
    pub fn of_path(path: &str) -> Option<PartnerRoute> {
        PARTNER_ROUTES
            .iter()
            .find(|(_, p, _)| *p == path)
            .map(|(_, _, r)| *r)
    }

    /// The route a request line names, from [`PARTNER_ROUTES`].
    pub fn of(method: &str, path: &str) -> Option<PartnerRoute> {
        PARTNER_ROUTES
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, r)| *r)
    }

    /// The route's method.
    pub fn method(self) -> &'static str {
        self.entry().0
    }

    /// The route's path.
    pub fn path(self) -> &'static str {
        self.entry().1
    }

    fn entry(self) -> (&'static str, &'static str) {
        PARTNER_ROUTES
            .iter()
            .find(|(_, _, r)| *r == self)
            .map(|(m, p, _)| (*m, *p))
            .unwrap_or(("", ""))
    }
}

/// A partner integration of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integration {
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Turned on.
    pub enabled: bool,
    /// Current epoch.
    pub epoch: u64,
}

/// A token as the service records it (by id, never the token text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// `jti`.
    pub jti: String,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Epoch it was issued in.
    pub epoch: u64,
    /// Expiry.
    pub exp: UnixSeconds,
    /// Allowed uses.
    pub max_uses: u32,
    /// Uses so far.
    pub uses: u32,
    /// Revoked by the admin.
    pub revoked: bool,
}

/// An installation (one enrolled endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Client enrollment id.
    pub enrollment_id: String,
    /// Device facts.
    pub device: DeviceFacts,
    /// Installation key (token onboarding).
    pub public_key: Option<VerifyingKey>,
    /// Workspace (down-level onboarding).
    pub workspace_id: Option<String>,
    /// Epoch the credential belongs to.
    pub epoch: u64,
    /// Created.
    pub created_at: UnixSeconds,
    /// Credential expiry.
    pub credential_exp: UnixSeconds,
    /// Last hello or batch.
    pub last_seen: Option<UnixSeconds>,
    /// Sensor state last reported.
    pub sensor_running: bool,
    /// Highest stored sequence.
    pub last_seq: u64,
    /// Sequence numbers skipped so far (data-loss signal).
    pub missing_seq: u64,
    /// Events the endpoint reported dropping locally.
    pub reported_drops: u64,
    /// Offboarded.
    pub offboarded: bool,
    /// Another installation with the same device id and another key.
    pub possible_clone_of: Option<String>,
    // ---- revocation (admin action) ----
    /// Revoked by the admin: refused on every partner route (and at
    /// redemption) until the admin reinstates it.
    pub revoked: bool,
}

/// At most this many live flow sessions per installation: opening another
/// drops the oldest, so a hello flood cannot grow the session table.
pub const MAX_SESSIONS_PER_INSTALLATION: usize = 4;

/// A flow session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Id.
    pub id: String,
    /// Installation.
    pub installation_id: String,
    /// Expiry.
    pub expires_at: UnixSeconds,
}

/// A down-level workspace.
#[derive(Clone)]
pub struct Workspace {
    /// Id.
    pub id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Partner.
    pub partner_id: String,
    /// Key.
    pub key: Zeroizing<Vec<u8>>,
    /// Epoch it belongs to.
    pub epoch: u64,
    // Lifetime of the workspace key (PROTOCOL §14): it only registers agents,
    // and only until it expires or the admin revokes it; agents already
    // registered keep sending with their own device keys.
    /// After this (service time) registration answers `token_expired`.
    pub expires_at: Option<UnixSeconds>,
    /// Revoked by the admin: registration answers `token_revoked`.
    pub revoked: bool,
}

/// An alert raised by a detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Title ("EICAR test file" for the test).
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Threat name.
    pub threat_name: String,
    /// File path.
    pub file_path: String,
    /// SHA-256.
    pub sha256: String,
    /// URL (web detections).
    pub url: Option<String>,
    /// Test detection.
    pub test: bool,
    /// Detection time (RFC 3339).
    pub time: String,
}

/// Storage the service role needs. Implementations run each
/// [`ServiceRole::handle`] call in one transaction.
pub trait ServiceStore {
    /// Region of a tenant.
    fn tenant_region(&mut self, tenant_id: &str) -> Result<Option<String>>;
    /// A partner integration.
    fn integration(&mut self, tenant_id: &str, partner_id: &str) -> Result<Option<Integration>>;
    /// Inserts or updates an integration (from [`ServiceRole::set_integration`]).
    fn put_integration(&mut self, integ: &Integration, now: UnixSeconds) -> Result<()>;
    /// A token record by `jti`.
    fn token(&mut self, jti: &str) -> Result<Option<TokenRecord>>;
    /// Records a newly issued token (from [`ServiceRole::issue_token`]).
    fn put_token(&mut self, rec: &TokenRecord, now: UnixSeconds) -> Result<()>;
    /// Whether this token was already counted for this installation.
    fn token_used_by(&mut self, jti: &str, installation_id: &str) -> Result<bool>;
    /// Counts one redemption of a token by an installation (the pair is
    /// recorded, so a retry of the same redemption is not counted twice).
    fn add_token_use(&mut self, jti: &str, installation_id: &str) -> Result<()>;
    /// Records a nonce; `false` if it was seen and has not expired yet.
    fn nonce_fresh(
        &mut self,
        nonce: &str,
        expires_at: UnixSeconds,
        now: UnixSeconds,
    ) -> Result<bool>;
    /// An installation by id.
    fn installation(&mut self, id: &str) -> Result<Option<Installation>>;
    /// An installation by its key id.
    fn installation_by_key(&mut self, key_id: &str) -> Result<Option<Installation>>;
    /// An installation by enrollment id.
    fn installation_by_enrollment(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        enrollment_id: &str,
    ) -> Result<Option<Installation>>;
    /// Installations with this device id.
    fn installations_by_device(
        &mut self,
        tenant_id: &str,
        partner_id: &str,
        device_id: &str,
    ) -> Result<Vec<Installation>>;
    /// Inserts or updates an installation.
    fn put_installation(&mut self, inst: &Installation) -> Result<()>;
    /// A session.
    fn session(&mut self, id: &str) -> Result<Option<Session>>;
    /// Stores a session, then drops the installation's oldest sessions
    /// beyond `keep`.
    fn put_session(&mut self, s: &Session, keep: usize) -> Result<()>;
    /// Drops every session of an installation (revoked or offboarded).
    fn drop_sessions(&mut self, installation_id: &str) -> Result<()>;
    /// The sequence a batch id was stored with, if it was.
    fn batch_seq(&mut self, installation_id: &str, batch_id: &str) -> Result<Option<u64>>;
    /// Durably stores a batch (its events as JSON), its alerts and the
    /// installation's ingest state (`last_seq`, `missing_seq`, `last_seen`,
    /// `sensor_running`: the only fields an accepted batch changes). The
    /// record is made before the writer (outside it on the pipelined route),
    /// so a store only writes.
    fn store_batch(
        &mut self,
        inst: &Installation,
        batch: &BatchRecord,
        now: UnixSeconds,
    ) -> Result<()>;
    /// A down-level workspace.
    fn workspace(&mut self, id: &str) -> Result<Option<Workspace>>;
    /// The device key a down-level installation registered with.
    fn device_key(&mut self, installation_id: &str) -> Result<Option<DeviceKey>>;
    /// Records a down-level installation's device key (at its registration;
    /// the installation is stored first).
    fn put_device_key(&mut self, installation_id: &str, key: &DeviceKey) -> Result<()>;
}

/// Per-installation rate limit (token bucket).
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Bucket size (requests).
    pub burst: f64,
    /// Refill rate (requests per second).
    pub per_second: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            burst: 200.0,
            per_second: 50.0,
        }
    }
}

/// Service configuration.
pub struct ServiceConfig {
    /// Issuer id in tokens.
    pub issuer: String,
    /// The region this service serves.
    pub region: String,
    /// Public base URL of the partner API.
    pub service_url: String,
    /// Signing keys, current first; older ones verify during rotation overlap.
    pub keys: Vec<SigningKey>,
    /// Policy handed out.
    pub policy: Policy,
    /// Rate limit per installation.
    pub rate_limit: RateLimit,
    /// Session lifetime.
    pub session_lifetime: i64,
}

/// The service role.
pub struct ServiceRole {
    cfg: ServiceConfig,
    rng: Box<dyn RandomSource + Send + Sync>,
    buckets: Mutex<HashMap<String, (f64, UnixSeconds)>>,
}

struct Reject(Error, Option<u64>);

impl From<Error> for Reject {
    fn from(e: Error) -> Self {
        Reject(e, None)
    }
}

type Handled = core::result::Result<HttpResponse, Reject>;

/// Acknowledgement of an ingested batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestAck {
    /// `accepted` or `duplicate`.
    pub status: String,
    /// Batch id.
    pub batch_id: String,
    /// Sequence.
    pub seq: u64,
    /// Events stored (0 for duplicates).
    pub events: u64,
    /// Sequence numbers found missing before this batch.
    pub gap: u64,
}

/// What the service keeps of a verified batch: its header fields, what its
/// events decide (alerts, the sensor state of its last heartbeat) and the
/// events as the JSON array it stores. Made where the batch is verified
/// (outside the writer on the pipelined route), so the parsed events — a
/// hundred small allocations each — are built and freed in parallel and
/// never reach the single writer.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRecord {
    /// Installation id the batch names.
    pub installation_id: String,
    /// Unique batch id (deduplication key).
    pub batch_id: String,
    /// Flow session id (absent for down-level ingest).
    pub session_id: Option<String>,
    /// Sequence number.
    pub seq: u64,
    /// Number of events.
    pub event_count: u64,
    /// The events as a JSON array (what a store that keeps JSON stores).
    pub events_json: Vec<u8>,
    /// Alerts the batch raises ([`alerts_for`]).
    pub alerts: Vec<Alert>,
    /// Whether the sensor runs, by the batch's last heartbeat (`None`: no heartbeat).
    pub sensor_running: Option<bool>,
}

impl BatchRecord {
    /// Summarizes a validated batch, consuming it.
    pub fn of(batch: Batch) -> Result<Self> {
        let events_json = serde_json::to_vec(&batch.events)
            .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
        let sensor_running = batch.events.iter().rev().find_map(|e| match e {
            Event::Heartbeat(h) => Some(h.sensor == SensorState::Running),
            _ => None,
        });
        let alerts = alerts_for(&batch.events);
        Ok(BatchRecord {
            event_count: batch.events.len() as u64,
            installation_id: batch.installation_id,
            batch_id: batch.batch_id,
            session_id: batch.session_id,
            seq: batch.seq,
            events_json,
            alerts,
            sensor_running,
        })
    }

    /// The stored events, parsed back (for stores and tests that read them).
    pub fn events(&self) -> Result<Vec<Event>> {
        parse_json(&self.events_json, telemetry::MAX_DECOMPRESSED, "events")
    }
}

/// An ingest request past its stateless checks: the envelope parsed, its
/// signature verified with the key its installation had when it was looked
/// up, its batch decompressed and validated (from
/// [`ServiceRole::prepare_ingest`], consumed by [`ServiceRole::commit_ingest`]).
#[derive(Debug)]
pub struct PreparedIngest {
    installation_id: String,
    key: VerifyingKey,
    record: BatchRecord,
}

impl PreparedIngest {
    /// The installation the verified envelope belongs to.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    /// What is kept of the verified batch.
    pub fn record(&self) -> &BatchRecord {
        &self.record
    }
}

impl ServiceRole {
    /// Creates the role. `rng` supplies ids and nonces.
    pub fn new(cfg: ServiceConfig, rng: Box<dyn RandomSource + Send + Sync>) -> Result<Self> {
        if cfg.keys.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "service needs at least one signing key",
            ));
        }
        Ok(ServiceRole {
            cfg,
            rng,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServiceConfig {
        &self.cfg
    }

    /// The published keyset (`GET /v1/keys`).
    pub fn keyset(&self) -> Keyset {
        Keyset::from_keys(
            &self
                .cfg
                .keys
                .iter()
                .map(|k| k.verifying_key())
                .collect::<Vec<_>>(),
        )
    }

    fn key(&self) -> &SigningKey {
        &self.cfg.keys[0]
    }

    /// The randomness source.
    pub fn rng(&self) -> &dyn RandomSource {
        &*self.rng
    }

    /// Turns a partner integration on or off (portal action), creating it
    /// (epoch 1) on first use. Turning an enabled integration off bumps its
    /// epoch (PROTOCOL §18.3): every credential, token and package of the old
    /// epoch stops working, and turning it on again does not restore them.
    /// Setting the state it already has changes nothing.
    pub fn set_integration<S: ServiceStore>(
        &self,
        store: &mut S,
        tenant_id: &str,
        partner_id: &str,
        enabled: bool,
        now: UnixSeconds,
    ) -> Result<Integration> {
        if store.tenant_region(tenant_id)?.is_none() {
            return Err(Error::new(ErrorCode::InvalidArgument, "unknown tenant"));
        }
        let integ = match store.integration(tenant_id, partner_id)? {
            None => Integration {
                tenant_id: tenant_id.into(),
                partner_id: partner_id.into(),
                enabled,
                epoch: 1,
            },
            Some(mut i) => {
                if i.enabled && !enabled {
                    i.epoch = i.epoch.saturating_add(1);
                }
                i.enabled = enabled;
                i
            }
        };
        store.put_integration(&integ, now)?;
        Ok(integ)
    }

    /// Issues an access token for an enabled integration (portal action) and
    /// records it in the store (by `jti`, never the text): redemption refuses
    /// a token the store does not know.
    pub fn issue_token<S: ServiceStore>(
        &self,
        store: &mut S,
        tenant_id: &str,
        partner_id: &str,
        lifetime: i64,
        max_uses: u32,
        now: UnixSeconds,
    ) -> Result<(String, token::AccessTokenClaims)> {
        let integ = store
            .integration(tenant_id, partner_id)?
            .filter(|i| i.enabled)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::IntegrationDisabled,
                    "turn the integration on before generating a token",
                )
            })?;
        let region = store
            .tenant_region(tenant_id)?
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "unknown tenant"))?;
        let spec = token::TokenSpec {
            issuer: self.cfg.issuer.clone(),
            partner_id: partner_id.into(),
            tenant_id: tenant_id.into(),
            region,
            service_url: self.cfg.service_url.clone(),
            epoch: integ.epoch,
            lifetime,
            max_uses,
        };
        let (text, claims) = token::issue(&spec, self.key(), now, &*self.rng)?;
        store.put_token(
            &TokenRecord {
                jti: claims.jti.clone(),
                tenant_id: claims.tenant_id.clone(),
                partner_id: claims.partner_id.clone(),
                epoch: claims.epoch,
                exp: claims.exp,
                max_uses: claims.max_uses,
                uses: 0,
                revoked: false,
            },
            now,
        )?;
        Ok((text, claims))
    }

    /// Handles one partner-API request. Every answer carries the service's
    /// clock in `Date`, from which partners keep their clock offset.
    pub fn handle<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> HttpResponse {
        let mut resp = self.route(store, req, now);
        resp.headers
            .push(("date".into(), crate::http::format_http_date(now)));
        resp
    }

    fn route<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> HttpResponse {
        let path = req.url.split('?').next().unwrap_or("");
        let Some(route) = PartnerRoute::of(req.method.as_str(), path) else {
            let (status, msg) = if PartnerRoute::of_path(path).is_some() {
                (405, "method not allowed")
            } else {
                (404, "no such endpoint")
            };
            return problem_with_status(&Error::new(ErrorCode::InvalidArgument, msg), status, None);
        };
        let result = match route {
            PartnerRoute::Keys => Ok(HttpResponse::json(200, &self.keyset())),
            PartnerRoute::Redeem => self.redeem(store, req, now),
            PartnerRoute::Handshake => self.handshake(store, req, now),
            PartnerRoute::Ingest => self.ingest(store, req, now),
            PartnerRoute::Offboard => self.offboard(store, req, now),
            PartnerRoute::Rotate => self.rotate(store, req, now),
            PartnerRoute::DownlevelRegister => self.downlevel_register(store, req, now),
            PartnerRoute::DownlevelIngest => self.downlevel_ingest(store, req, now),
        };
        match result {
            Ok(r) => r,
            Err(Reject(e, seq)) => problem(&e, seq),
        }
    }

    fn body_text<'a>(&self, req: &'a HttpRequest) -> Result<&'a str> {
        if req.body.len() > jws::MAX_JWS_LEN {
            return Err(Error::new(ErrorCode::TooLarge, "message too large"));
        }
        core::str::from_utf8(&req.body).map_err(|_| Error::malformed("body is not UTF-8"))
    }

    fn fresh_nonce<S: ServiceStore>(
        &self,
        store: &mut S,
        scope: &str,
        nonce: &str,
        now: UnixSeconds,
    ) -> Result<()> {
        let expires = now.saturating_add(2 * MESSAGE_WINDOW);
        if !store.nonce_fresh(&format!("{scope}:{nonce}"), expires, now)? {
            return Err(Error::new(ErrorCode::Replay, "nonce already used"));
        }
        Ok(())
    }

    fn signed(&self, typ: &str, claims: &impl Serialize) -> Handled {
        Ok(HttpResponse::new(
            200,
            JOSE,
            jws::sign(typ, claims, self.key(), false)?.into_bytes(),
        ))
    }

    fn redeem<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let (claims, key) = redeem::verify_request(self.body_text(req)?, now)?;
        // Everything is checked before anything is stored (the nonce
        // included): a flood of redeems with bad tokens writes nothing.
        let tok = token::verify(&claims.token, &self.keyset(), now, 0)?;
        if tok.region != self.cfg.region {
            return Err(Error::new(
                ErrorCode::WrongRegion,
                format!(
                    "this service serves region {}, the token is for {}",
                    self.cfg.region, tok.region
                ),
            )
            .into());
        }
        let integ = store
            .integration(&tok.tenant_id, &tok.partner_id)?
            .filter(|i| i.enabled)
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::IntegrationDisabled,
                    "the partner integration is turned off",
                )
            })?;
        if integ.epoch != tok.epoch {
            return Err(Error::new(
                ErrorCode::EpochMismatch,
                "the integration was toggled off since this token was issued: generate a new token",
            )
            .into());
        }
        let rec = store.token(&tok.jti)?.ok_or_else(|| {
            Error::new(ErrorCode::TokenRevoked, "token is not known to the service")
        })?;
        if rec.revoked {
            return Err(Error::new(ErrorCode::TokenRevoked, "token was revoked").into());
        }
        let kid = key.key_id();
        let (t, p) = (tok.tenant_id.as_str(), tok.partner_id.as_str());
        let existing = match store.installation_by_enrollment(t, p, &claims.enrollment_id)? {
            Some(i) if i.public_key != Some(key) => {
                return Err(Error::new(
                    ErrorCode::PossibleClone,
                    "enrollment id reused with another key",
                )
                .into());
            }
            Some(i) => Some(i),
            None => store
                .installation_by_key(&kid)?
                .filter(|i| i.tenant_id == t && i.partner_id == p),
        };
        // A revoked or offboarded installation resumes only after the admin
        // reinstated it: a copy of its key plus any valid token is not enough.
        if let Some(i) = &existing {
            if i.revoked {
                return Err(Error::new(
                    ErrorCode::Revoked,
                    "installation was revoked by the admin: it must be reinstated first",
                )
                .into());
            }
            if i.offboarded {
                return Err(Error::new(
                    ErrorCode::Offboarded,
                    "installation was offboarded: the admin must reinstate it first",
                )
                .into());
            }
        }
        // Every redemption counts, once per (token, installation): a retry of
        // the same redemption is free, resuming a known installation is not.
        let counted = match &existing {
            Some(i) => store.token_used_by(&tok.jti, &i.id)?,
            None => false,
        };
        if !counted && rec.uses >= rec.max_uses {
            return Err(Error::new(
                ErrorCode::TokenExhausted,
                "token reached its maximum number of uses",
            )
            .into());
        }
        self.fresh_nonce(store, "redeem", &claims.nonce, now)?;
        let credential_exp = now.saturating_add(CREDENTIAL_LIFETIME);
        let mut inst = match existing {
            Some(i) => i,
            None => {
                let twin = store
                    .installations_by_device(t, p, &claims.device.device_id)?
                    .into_iter()
                    .find(|i| !i.offboarded && !i.revoked && i.public_key != Some(key));
                Installation {
                    id: format!("inst-{}", random_id(&*self.rng, 12)?),
                    tenant_id: t.into(),
                    partner_id: p.into(),
                    enrollment_id: claims.enrollment_id.clone(),
                    device: claims.device.clone(),
                    public_key: Some(key),
                    workspace_id: None,
                    epoch: tok.epoch,
                    created_at: now,
                    credential_exp,
                    last_seen: None,
                    sensor_running: true,
                    last_seq: 0,
                    missing_seq: 0,
                    reported_drops: 0,
                    offboarded: false,
                    possible_clone_of: twin.map(|i| i.id),
                    revoked: false,
                }
            }
        };
        // A known installation in good standing presenting a newer token
        // (re-applied after the integration was toggled back on) resumes.
        inst.epoch = tok.epoch;
        inst.device = claims.device.clone();
        inst.credential_exp = credential_exp;
        store.put_installation(&inst)?;
        if !counted {
            store.add_token_use(&tok.jti, &inst.id)?;
        }
        let resp = ResponseClaims {
            installation_id: inst.id.clone(),
            enrollment_id: claims.enrollment_id.clone(),
            nonce: claims.nonce.clone(),
            iat: now,
            tenant_id: inst.tenant_id.clone(),
            partner_id: inst.partner_id.clone(),
            region: self.cfg.region.clone(),
            service_url: self.cfg.service_url.clone(),
            epoch: inst.epoch,
            keyset: self.keyset(),
            policy: self.cfg.policy.clone(),
            credential_exp: inst.credential_exp,
            possible_clone_of: inst.possible_clone_of.clone(),
        };
        self.signed(redeem::RESPONSE_TYP, &resp)
    }

    fn keyed_installation<S: ServiceStore>(
        &self,
        store: &mut S,
        id: &str,
    ) -> Result<(Installation, VerifyingKey)> {
        let inst = store
            .installation(id)?
            .ok_or_else(|| Error::new(ErrorCode::UnknownInstallation, "unknown installation"))?;
        let key = inst.public_key.ok_or_else(|| {
            Error::new(
                ErrorCode::Unauthorized,
                "installation has no key (down-level)",
            )
        })?;
        Ok((inst, key))
    }

    /// Flow decision for an installation, first match: admin-revoked,
    /// offboarded and an expired credential revoke (each with its reason); a
    /// missing or disabled integration blocks (a toggle-off both blocks and
    /// bumps the epoch; while off, endpoints are told "blocked" and keep their
    /// data); a credential of another epoch revokes; else open.
    fn flow_of<S: ServiceStore>(
        &self,
        store: &mut S,
        inst: &Installation,
        now: UnixSeconds,
    ) -> Result<(FlowState, Option<ErrorCode>)> {
        if let Some(reason) = Self::standing(inst, now) {
            return Ok((FlowState::Revoked, Some(reason)));
        }
        match store.integration(&inst.tenant_id, &inst.partner_id)? {
            Some(i) if !i.enabled => Ok((FlowState::Blocked, Some(ErrorCode::IntegrationDisabled))),
            None => Ok((FlowState::Blocked, Some(ErrorCode::IntegrationDisabled))),
            Some(i) if i.epoch != inst.epoch => {
                Ok((FlowState::Revoked, Some(ErrorCode::EpochMismatch)))
            }
            Some(_) => Ok((FlowState::Open, None)),
        }
    }

    /// Why an installation is out of good standing on its own (regardless of
    /// the integration): revoked, offboarded or credential expired.
    fn standing(inst: &Installation, now: UnixSeconds) -> Option<ErrorCode> {
        if inst.revoked {
            Some(ErrorCode::Revoked)
        } else if inst.offboarded {
            Some(ErrorCode::Offboarded)
        } else if now > inst.credential_exp {
            Some(ErrorCode::CredentialExpired)
        } else {
            None
        }
    }

    /// The error a refused request gets for a non-open flow: the specific
    /// reason (all 401 and meaning "new token needed"), or `flow_blocked`.
    fn flow_error(state: FlowState, reason: Option<ErrorCode>) -> Error {
        match (state, reason) {
            (FlowState::Blocked, _) => Error::new(
                ErrorCode::FlowBlocked,
                "inbound flow is blocked: the integration is turned off",
            ),
            (_, Some(ErrorCode::Revoked)) => Error::new(
                ErrorCode::Revoked,
                "installation was revoked by the admin: a new token and reinstatement are required",
            ),
            (_, Some(ErrorCode::Offboarded)) => Error::new(
                ErrorCode::Offboarded,
                "installation was offboarded: a new token is required",
            ),
            (_, Some(ErrorCode::CredentialExpired)) => Error::new(
                ErrorCode::CredentialExpired,
                "the credential passed its credential_exp without rotation: a new token is required",
            ),
            _ => Error::new(
                ErrorCode::EpochMismatch,
                "credential belongs to an old integration epoch: a new token is required",
            ),
        }
    }

    fn handshake<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let body = self.body_text(req)?;
        let (mut inst, key) =
            self.keyed_installation(store, &handshake::peek_installation(body)?)?;
        let hello = handshake::verify_hello(body, &key, now)?;
        self.fresh_nonce(store, &inst.id, &hello.nonce, now)?;
        inst.last_seen = Some(now);
        inst.sensor_running = hello.sensor == SensorState::Running;
        let drops = hello.drops.values().fold(0u64, |a, b| a.saturating_add(*b));
        inst.reported_drops = inst.reported_drops.max(drops);
        store.put_installation(&inst)?;
        let (decision, reason) = self.flow_of(store, &inst, now)?;
        let mut d = FlowDecision {
            installation_id: inst.id.clone(),
            nonce: hello.nonce,
            iat: now,
            decision,
            reason,
            session_id: None,
            session_exp: None,
            policy: None,
            last_seq: inst.last_seq,
            keyset: Some(self.keyset()),
        };
        if decision == FlowState::Open {
            let s = Session {
                id: format!("sess-{}", random_id(&*self.rng, 12)?),
                installation_id: inst.id.clone(),
                expires_at: now.saturating_add(self.cfg.session_lifetime),
            };
            store.put_session(&s, MAX_SESSIONS_PER_INSTALLATION)?;
            d.session_id = Some(s.id);
            d.session_exp = Some(s.expires_at);
            d.policy = Some(self.cfg.policy.clone());
        }
        self.signed(handshake::FLOW_TYP, &d)
    }

    fn rate_check(&self, installation_id: &str, now: UnixSeconds) -> Result<()> {
        let rl = self.cfg.rate_limit;
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 10_000 {
            // Idle buckets are full again; forgetting them changes nothing.
            let refill = (rl.burst / rl.per_second).ceil() as i64 + 1;
            b.retain(|_, (_, at)| now.saturating_sub(*at) <= refill);
        }
        let (tokens, at) = b
            .entry(installation_id.to_owned())
            .or_insert((rl.burst, now));
        *tokens = (*tokens + now.saturating_sub(*at).max(0) as f64 * rl.per_second).min(rl.burst);
        *at = now;
        if *tokens < 1.0 {
            let wait = ((1.0 - *tokens) / rl.per_second).ceil().max(1.0) as u64;
            return Err(
                Error::new(ErrorCode::RateLimited, "per-installation rate limit")
                    .with_retry_after(wait),
            );
        }
        *tokens -= 1.0;
        Ok(())
    }

    fn ingest<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let prepared = self.prepare_ingest(&req.body, |kid| store.installation_by_key(kid))?;
        self.commit_prepared(store, prepared, now)
    }

    /// First phase of `POST /v1/ingest`, meant to run *outside* the writer
    /// transaction (it is where a 5 MiB envelope's cost is): size checks, DSSE
    /// parse, the installation key by the envelope's `keyid` (`key_lookup`, any
    /// read-only view of the store), the policy's payload size, signature
    /// verification, decompression and batch validation (section 9.4 steps
    /// 1–6). Nothing is written. [`commit_ingest`](Self::commit_ingest)
    /// finishes the request inside the writer transaction; `handle` runs both
    /// phases back to back, so the decisions are the same code either way.
    pub fn prepare_ingest(
        &self,
        body: &[u8],
        key_lookup: impl FnOnce(&str) -> Result<Option<Installation>>,
    ) -> Result<PreparedIngest> {
        if body.len() > dsse::MAX_ENVELOPE_BYTES {
            return Err(Error::new(
                ErrorCode::BatchTooLarge,
                "envelope exceeds 5 MiB",
            ));
        }
        let parsed = dsse::parse(body)?;
        let inst = key_lookup(&parsed.keyid)?.ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownKey,
                "envelope keyid names no installation key",
            )
        })?;
        let key = inst
            .public_key
            .ok_or_else(|| Error::new(ErrorCode::UnknownKey, "installation has no key"))?;
        // Cheap policy check first: the payload size as sent.
        if parsed.payload.len() as u64 > self.cfg.policy.max_batch_bytes {
            return Err(Error::new(
                ErrorCode::BatchTooLarge,
                format!(
                    "payload exceeds the policy's {} bytes",
                    self.cfg.policy.max_batch_bytes
                ),
            ));
        }
        let batch = telemetry::open_batch(&parsed, &key)?;
        if batch.installation_id != inst.id {
            return Err(Error::new(
                ErrorCode::BadSignature,
                "batch names another installation",
            ));
        }
        Ok(PreparedIngest {
            installation_id: inst.id,
            key,
            record: BatchRecord::of(batch)?,
        })
    }

    /// Second phase of `POST /v1/ingest`, inside the writer transaction:
    /// re-reads the installation and refuses with `unknown_key` unless it still
    /// has the key that verified the envelope (a rotation or a re-key may have
    /// committed since [`prepare_ingest`](Self::prepare_ingest)), then flow,
    /// session, rate limit, deduplication, sequence and storage exactly as
    /// `handle` does (section 9.4 steps 7–13). The answer carries `Date`.
    pub fn commit_ingest<S: ServiceStore>(
        &self,
        store: &mut S,
        prepared: PreparedIngest,
        now: UnixSeconds,
    ) -> HttpResponse {
        let mut resp = match self.commit_prepared(store, prepared, now) {
            Ok(r) => r,
            Err(Reject(e, seq)) => problem(&e, seq),
        };
        resp.headers
            .push(("date".into(), crate::http::format_http_date(now)));
        resp
    }

    /// A refusal decided outside [`handle`](Self::handle) (a failed
    /// [`prepare_ingest`](Self::prepare_ingest), a size or rate limit of the
    /// transport), rendered like every other answer: a problem with `Date`.
    pub fn refusal(&self, err: &Error, now: UnixSeconds) -> HttpResponse {
        let mut resp = problem(err, None);
        resp.headers
            .push(("date".into(), crate::http::format_http_date(now)));
        resp
    }

    /// Stateless checks of a `POST /v1/redeem` body, for a caller that wants
    /// junk refused before it reaches the writer: size, the request's
    /// proof-of-possession signature and freshness, and the token's signature,
    /// validity and region. Passing decides nothing (`handle` still runs every
    /// check, in its order); a request refused here is one `handle` refuses
    /// too (with another code only when it has several faults), and nothing
    /// is stored for it.
    pub fn precheck_redeem(&self, body: &[u8], now: UnixSeconds) -> Result<()> {
        if body.len() > jws::MAX_JWS_LEN {
            return Err(Error::new(ErrorCode::TooLarge, "message too large"));
        }
        let text = core::str::from_utf8(body).map_err(|_| Error::malformed("body is not UTF-8"))?;
        let (claims, _) = redeem::verify_request(text, now)?;
        let tok = token::verify(&claims.token, &self.keyset(), now, 0)?;
        if tok.region != self.cfg.region {
            return Err(Error::new(
                ErrorCode::WrongRegion,
                format!(
                    "this service serves region {}, the token is for {}",
                    self.cfg.region, tok.region
                ),
            ));
        }
        Ok(())
    }

    fn commit_prepared<S: ServiceStore>(
        &self,
        store: &mut S,
        prepared: PreparedIngest,
        now: UnixSeconds,
    ) -> Handled {
        let PreparedIngest {
            installation_id,
            key,
            record,
        } = prepared;
        let mut inst = store
            .installation(&installation_id)?
            .filter(|i| i.public_key == Some(key))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnknownKey,
                    "envelope keyid names no installation key",
                )
            })?;
        let (state, reason) = self.flow_of(store, &inst, now)?;
        if state != FlowState::Open {
            return Err(Self::flow_error(state, reason).into());
        }
        let sid = record
            .session_id
            .as_deref()
            .ok_or_else(|| Error::new(ErrorCode::SessionExpired, "batch carries no session"))?;
        match store.session(sid)? {
            Some(s) if s.installation_id == inst.id && now <= s.expires_at => {}
            _ => {
                return Err(Error::new(
                    ErrorCode::SessionExpired,
                    "flow session unknown or expired: handshake again",
                )
                .into())
            }
        }
        self.accept_batch(store, &mut inst, record, now)
    }

    fn accept_batch<S: ServiceStore>(
        &self,
        store: &mut S,
        inst: &mut Installation,
        batch: BatchRecord,
        now: UnixSeconds,
    ) -> Handled {
        if batch.event_count > u64::from(self.cfg.policy.max_batch_events) {
            return Err(Error::new(
                ErrorCode::BatchTooLarge,
                format!("more than {} events", self.cfg.policy.max_batch_events),
            )
            .into());
        }
        // Both ingest routes end here: an installation the admin revoked or
        // that was offboarded never stores another batch.
        if inst.revoked {
            return Err(Self::flow_error(FlowState::Revoked, Some(ErrorCode::Revoked)).into());
        }
        if inst.offboarded {
            return Err(Self::flow_error(FlowState::Revoked, Some(ErrorCode::Offboarded)).into());
        }
        self.rate_check(&inst.id, now)?;
        if let Some(seq) = store.batch_seq(&inst.id, &batch.batch_id)? {
            return Ok(HttpResponse::json(
                200,
                &IngestAck {
                    status: "duplicate".into(),
                    batch_id: batch.batch_id,
                    seq,
                    events: 0,
                    gap: 0,
                },
            ));
        }
        if batch.seq <= inst.last_seq {
            return Err(Reject(
                Error::new(
                    ErrorCode::SequenceRegression,
                    format!("sequence {} is not after {}", batch.seq, inst.last_seq),
                ),
                inst.last_seq.checked_add(1),
            ));
        }
        // batch.seq > last_seq here, so this cannot underflow.
        let gap = batch.seq - inst.last_seq - 1;
        inst.missing_seq = inst.missing_seq.saturating_add(gap);
        inst.last_seq = batch.seq;
        inst.last_seen = Some(now);
        if let Some(running) = batch.sensor_running {
            inst.sensor_running = running;
        }
        store.store_batch(inst, &batch, now)?;
        Ok(HttpResponse::json(
            200,
            &IngestAck {
                status: "accepted".into(),
                batch_id: batch.batch_id,
                seq: batch.seq,
                events: batch.event_count,
                gap,
            },
        ))
    }

    fn offboard<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let body = self.body_text(req)?;
        let (mut inst, key) =
            self.keyed_installation(store, &offboard::peek_installation(body)?)?;
        let c = offboard::verify_request(body, &key, now)?;
        self.fresh_nonce(store, &inst.id, &c.nonce, now)?;
        inst.offboarded = true;
        store.put_installation(&inst)?;
        store.drop_sessions(&inst.id)?;
        Ok(HttpResponse::new(
            200,
            JOSE,
            offboard::respond(&inst.id, &c.nonce, self.key(), now)?.into_bytes(),
        ))
    }

    fn rotate<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let body = self.body_text(req)?;
        let (mut inst, key) = self.keyed_installation(store, &rotate::peek_installation(body)?)?;
        let (c, new_key) = rotate::verify_request(body, &key, now)?;
        self.fresh_nonce(store, &inst.id, &c.nonce, now)?;
        self.good_standing(store, &inst, now)?;
        inst.public_key = Some(new_key);
        inst.credential_exp = now.saturating_add(CREDENTIAL_LIFETIME);
        store.put_installation(&inst)?;
        let r = rotate::RotateResponse {
            installation_id: inst.id.clone(),
            nonce: c.nonce,
            iat: now,
            key_id: new_key.key_id(),
            credential_exp: inst.credential_exp,
        };
        self.signed(rotate::RESPONSE_TYP, &r)
    }

    /// Rotation (the only renewal of `credential_exp`) needs good standing:
    /// not revoked, offboarded or expired, the integration's epoch (compared
    /// before the integration's state, so an old-epoch credential cannot
    /// rotate while the integration is off), and the integration on.
    fn good_standing<S: ServiceStore>(
        &self,
        store: &mut S,
        inst: &Installation,
        now: UnixSeconds,
    ) -> Result<()> {
        if let Some(reason) = Self::standing(inst, now) {
            return Err(Self::flow_error(FlowState::Revoked, Some(reason)));
        }
        match store.integration(&inst.tenant_id, &inst.partner_id)? {
            Some(i) if i.epoch != inst.epoch => Err(Self::flow_error(
                FlowState::Revoked,
                Some(ErrorCode::EpochMismatch),
            )),
            Some(i) if i.enabled => Ok(()),
            _ => Err(Self::flow_error(
                FlowState::Blocked,
                Some(ErrorCode::IntegrationDisabled),
            )),
        }
    }

    /// Authenticates a registration: `SharedKey <workspace-id>:…` with the
    /// workspace key, which must be neither revoked nor expired (checked after
    /// the MAC, so only the key's holder learns its state).
    fn shared_key_auth<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        path: &str,
        now: UnixSeconds,
    ) -> Result<Workspace> {
        let auth = req
            .header("authorization")
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "missing Authorization"))?;
        let (ws_id, _) = downlevel::workspace_of(auth)?;
        let ws = store
            .workspace(ws_id)?
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "unknown workspace"))?;
        let date = req
            .header(downlevel::DATE_HEADER)
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "missing x-edrlink-date"))?;
        let ct = req.header("content-type").unwrap_or("");
        downlevel::verify(auth, &ws.key, &req.method, path, ct, date, &req.body, now)?;
        if ws.revoked {
            return Err(Error::new(
                ErrorCode::TokenRevoked,
                "workspace key was revoked: a new onboarding package is required",
            ));
        }
        if ws.expires_at.is_some_and(|t| now > t) {
            return Err(Error::new(
                ErrorCode::TokenExpired,
                "workspace key has expired: a new onboarding package is required",
            ));
        }
        Ok(ws)
    }

    fn workspace_flow<S: ServiceStore>(&self, store: &mut S, ws: &Workspace) -> Result<()> {
        match store.integration(&ws.tenant_id, &ws.partner_id)? {
            Some(i) if i.enabled && i.epoch == ws.epoch => Ok(()),
            Some(i) if i.enabled => Err(Error::new(
                ErrorCode::EpochMismatch,
                "workspace key belongs to an old epoch: a new onboarding package is required",
            )),
            _ => Err(Error::new(
                ErrorCode::FlowBlocked,
                "inbound flow is blocked: the integration is turned off",
            )),
        }
    }

    /// Registration: the workspace key admits the agent once; the agent's own
    /// device key (in the body) is what authenticates it from then on. A
    /// retry with the same enrollment id and device key returns the same
    /// installation; a known enrollment id with any other device key (or from
    /// another workspace) is `possible_clone`, so holding the workspace key
    /// does not let anyone take over a registered installation.
    fn downlevel_register<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        let ws = self.shared_key_auth(store, req, "/v1/downlevel/register", now)?;
        self.workspace_flow(store, &ws)?;
        let r: RegisterRequest = parse_json(&req.body, 64 * 1024, "register request")?;
        r.device
            .validate()
            .map_err(|e| Error::malformed(e.message().to_owned()))?;
        if r.enrollment_id.is_empty() || r.enrollment_id.len() > 128 {
            return Err(Error::malformed("enrollment_id must be 1..128 characters").into());
        }
        let device_key = DeviceKey::from_b64url(&r.device_key)
            .map_err(|_| Error::malformed("device_key must be 32 bytes, base64url"))?;
        let clone = || {
            Error::new(
                ErrorCode::PossibleClone,
                "enrollment id belongs to another installation",
            )
        };
        let inst = match store.installation_by_enrollment(
            &ws.tenant_id,
            &ws.partner_id,
            &r.enrollment_id,
        )? {
            Some(i) if i.workspace_id.as_deref() == Some(ws.id.as_str()) => {
                match store.device_key(&i.id)? {
                    Some(k) if k == device_key => {}
                    _ => return Err(clone().into()),
                }
                // A revoked or offboarded installation stays so.
                let (state, reason) = self.flow_of(store, &i, now)?;
                if state == FlowState::Revoked {
                    return Err(Self::flow_error(state, reason).into());
                }
                i
            }
            Some(_) => return Err(clone().into()),
            None => {
                let twin = store
                    .installations_by_device(&ws.tenant_id, &ws.partner_id, &r.device.device_id)?
                    .into_iter()
                    .find(|i| !i.offboarded);
                let credential_exp = now.checked_add(CREDENTIAL_LIFETIME).ok_or_else(|| {
                    Error::new(ErrorCode::Internal, "credential expiry overflows")
                })?;
                let i = Installation {
                    id: format!("inst-{}", random_id(&*self.rng, 12)?),
                    tenant_id: ws.tenant_id.clone(),
                    partner_id: ws.partner_id.clone(),
                    enrollment_id: r.enrollment_id.clone(),
                    device: r.device.clone(),
                    public_key: None,
                    workspace_id: Some(ws.id.clone()),
                    epoch: ws.epoch,
                    created_at: now,
                    credential_exp,
                    last_seen: Some(now),
                    sensor_running: true,
                    last_seq: 0,
                    missing_seq: 0,
                    reported_drops: 0,
                    offboarded: false,
                    possible_clone_of: twin.map(|i| i.id),
                    revoked: false,
                };
                store.put_installation(&i)?;
                store.put_device_key(&i.id, &device_key)?;
                i
            }
        };
        Ok(HttpResponse::json(
            200,
            &RegisterResponse {
                installation_id: inst.id,
                epoch: inst.epoch,
                policy: self.cfg.policy.clone(),
                server_time: now,
                last_seq: inst.last_seq,
            },
        ))
    }

    /// Down-level ingest: `SharedKey <installation-id>:…` signed with that
    /// installation's device key (the workspace key is not accepted), for a
    /// batch naming that same installation. The workspace key's own state
    /// (revoked, expired) does not matter here: registered agents keep
    /// sending. The installation's flow decides as for token onboarding, and
    /// an accepted batch renews the installation's `credential_exp` (the
    /// down-level counterpart of rotation, in good standing only).
    fn downlevel_ingest<S: ServiceStore>(
        &self,
        store: &mut S,
        req: &HttpRequest,
        now: UnixSeconds,
    ) -> Handled {
        if req.body.len() as u64 > self.cfg.policy.max_batch_bytes {
            return Err(
                Error::new(ErrorCode::BatchTooLarge, "batch exceeds the policy's size").into(),
            );
        }
        let path = "/v1/downlevel/ingest";
        let auth = req
            .header("authorization")
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "missing Authorization"))?;
        let (inst_id, _) = downlevel::workspace_of(auth)?;
        let unknown = || {
            Error::new(
                ErrorCode::Unauthorized,
                "SharedKey names no registered down-level installation",
            )
        };
        let key = store.device_key(inst_id)?.ok_or_else(unknown)?;
        let date = req
            .header(downlevel::DATE_HEADER)
            .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "missing x-edrlink-date"))?;
        let ct = req.header("content-type").unwrap_or("");
        downlevel::verify(
            auth,
            key.as_bytes(),
            &req.method,
            path,
            ct,
            date,
            &req.body,
            now,
        )?;
        let mut inst = store
            .installation(inst_id)?
            .filter(|i| i.workspace_id.is_some())
            .ok_or_else(unknown)?;
        let batch: Batch = parse_json(&req.body, telemetry::MAX_DECOMPRESSED, "batch")?;
        batch.validate()?;
        if batch.installation_id != inst.id {
            return Err(
                Error::new(ErrorCode::BadSignature, "batch names another installation").into(),
            );
        }
        let (state, reason) = self.flow_of(store, &inst, now)?;
        if state != FlowState::Open {
            return Err(Self::flow_error(state, reason).into());
        }
        if let Some(exp) = now.checked_add(CREDENTIAL_LIFETIME) {
            inst.credential_exp = exp;
        }
        self.accept_batch(store, &mut inst, BatchRecord::of(batch)?, now)
    }
}

/// Alerts raised by a batch: every detection, the EICAR test titled as such.
pub fn alerts_for(events: &[Event]) -> Vec<Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Detection(d) => Some(Alert {
                title: if eicar::is_eicar(d) {
                    eicar::EICAR_ALERT_TITLE.into()
                } else {
                    format!("{} detected", d.threat_name)
                },
                severity: if eicar::is_eicar(d) {
                    Severity::Informational
                } else {
                    d.severity
                },
                threat_name: d.threat_name.clone(),
                file_path: d.file_path.clone(),
                sha256: d.sha256.clone(),
                url: d.url.clone(),
                test: d.test || eicar::is_eicar(d),
                time: d.time.clone(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SystemRandom;
    use crate::memory_store::MemoryStore;

    const NOW: UnixSeconds = 1_795_435_200;

    fn role() -> ServiceRole {
        ServiceRole::new(
            ServiceConfig {
                issuer: "iss".into(),
                region: "eu".into(),
                service_url: "https://svc.example".into(),
                keys: vec![SigningKey::from_seed(&[7u8; 32]).unwrap()],
                policy: Policy::default(),
                rate_limit: RateLimit::default(),
                session_lifetime: 3600,
            },
            Box::new(SystemRandom),
        )
        .unwrap()
    }

    fn store() -> MemoryStore {
        let mut s = MemoryStore::default();
        s.tenants.insert("t1".into(), "eu".into());
        s
    }

    #[test]
    fn set_integration_creates_and_off_bumps_the_epoch_once() {
        let (r, mut s) = (role(), store());
        let i = r.set_integration(&mut s, "t1", "p", true, NOW).unwrap();
        assert_eq!((i.enabled, i.epoch), (true, 1));
        assert_eq!(s.integration("t1", "p").unwrap(), Some(i));
        // On again: nothing changes.
        assert_eq!(
            r.set_integration(&mut s, "t1", "p", true, NOW)
                .unwrap()
                .epoch,
            1
        );
        // Off bumps; off again does not bump twice; on keeps the new epoch.
        let off = r.set_integration(&mut s, "t1", "p", false, NOW).unwrap();
        assert_eq!((off.enabled, off.epoch), (false, 2));
        assert_eq!(
            r.set_integration(&mut s, "t1", "p", false, NOW)
                .unwrap()
                .epoch,
            2
        );
        let on = r.set_integration(&mut s, "t1", "p", true, NOW).unwrap();
        assert_eq!((on.enabled, on.epoch), (true, 2));
        assert_eq!(s.integration("t1", "p").unwrap(), Some(on));
        // A new integration created off starts at epoch 1.
        let other = r.set_integration(&mut s, "t1", "q", false, NOW).unwrap();
        assert_eq!((other.enabled, other.epoch), (false, 1));
        // Unknown tenant: refused, nothing stored.
        let e = r
            .set_integration(&mut s, "nope", "p", true, NOW)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument);
        assert!(s.integration("nope", "p").unwrap().is_none());
    }

    #[test]
    fn issue_token_records_the_token_in_the_current_epoch() {
        let (r, mut s) = (role(), store());
        let e = r.issue_token(&mut s, "t1", "p", 3600, 2, NOW).unwrap_err();
        assert_eq!(e.code(), ErrorCode::IntegrationDisabled);
        assert!(s.tokens.is_empty());
        r.set_integration(&mut s, "t1", "p", true, NOW).unwrap();
        r.set_integration(&mut s, "t1", "p", false, NOW).unwrap();
        let e = r.issue_token(&mut s, "t1", "p", 3600, 2, NOW).unwrap_err();
        assert_eq!(e.code(), ErrorCode::IntegrationDisabled);
        r.set_integration(&mut s, "t1", "p", true, NOW).unwrap();
        let (text, c) = r.issue_token(&mut s, "t1", "p", 3600, 2, NOW).unwrap();
        let rec = s.token(&c.jti).unwrap().expect("token recorded");
        assert_eq!(
            rec,
            TokenRecord {
                jti: c.jti.clone(),
                tenant_id: "t1".into(),
                partner_id: "p".into(),
                epoch: 2,
                exp: NOW + 3600,
                max_uses: 2,
                uses: 0,
                revoked: false,
            }
        );
        // The record holds the id, never the token text.
        assert!(!serde_json::to_string(&rec).unwrap().contains(&text));
    }

    #[test]
    fn handle_dispatches_exactly_the_route_table() {
        let (r, mut s) = (role(), store());
        let req = |m: &str, p: &str| HttpRequest {
            id: 0,
            method: m.into(),
            url: p.into(),
            headers: vec![],
            body: vec![],
        };
        for (m, p, route) in PARTNER_ROUTES {
            assert_eq!(PartnerRoute::of(m, p), Some(*route));
            assert_eq!((route.method(), route.path()), (*m, *p));
            let resp = r.handle(&mut s, &req(m, p), NOW);
            assert!(
                !matches!(resp.status, 404 | 405),
                "{m} {p}: {}",
                resp.status
            );
            let other = if *m == "GET" { "POST" } else { "GET" };
            assert_eq!(
                r.handle(&mut s, &req(other, p), NOW).status,
                405,
                "{other} {p}"
            );
        }
        assert_eq!(r.handle(&mut s, &req("GET", "/v1/nope"), NOW).status, 404);
        assert_eq!(PartnerRoute::of_path("/v1/nope"), None);
    }
}
