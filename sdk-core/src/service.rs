//! The service role of the protocol, sans-IO: every decision the partner API
//! makes (redeem, handshake, ingest, offboard, rotate, down-level register and
//! ingest), as a function from an HTTP request, the stored state and `now` to
//! an HTTP response. The reference service only adds transport and storage.
//!
//! State lives behind [`ServiceStore`]; callers run each `handle` call inside
//! one store transaction, so a batch acknowledged with 200 is durable.

use crate::downlevel::{self, RegisterRequest, RegisterResponse};
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
}

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
    /// A token record by `jti`.
    fn token(&mut self, jti: &str) -> Result<Option<TokenRecord>>;
    /// Counts one redemption of a token.
    fn add_token_use(&mut self, jti: &str) -> Result<()>;
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
    /// Stores a session.
    fn put_session(&mut self, s: &Session) -> Result<()>;
    /// The sequence a batch id was stored with, if it was.
    fn batch_seq(&mut self, installation_id: &str, batch_id: &str) -> Result<Option<u64>>;
    /// Durably stores a batch, its alerts and the updated installation.
    fn store_batch(
        &mut self,
        inst: &Installation,
        batch: &Batch,
        alerts: &[Alert],
        now: UnixSeconds,
    ) -> Result<()>;
    /// A down-level workspace.
    fn workspace(&mut self, id: &str) -> Result<Option<Workspace>>;
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

/// An ingest request past its stateless checks: the envelope parsed, its
/// signature verified with the key its installation had when it was looked
/// up, its batch decompressed and validated (from
/// [`ServiceRole::prepare_ingest`], consumed by [`ServiceRole::commit_ingest`]).
#[derive(Debug)]
pub struct PreparedIngest {
    installation_id: String,
    key: VerifyingKey,
    batch: Batch,
}

impl PreparedIngest {
    /// The installation the verified envelope belongs to.
    pub fn installation_id(&self) -> &str {
        &self.installation_id
    }

    /// The verified batch.
    pub fn batch(&self) -> &Batch {
        &self.batch
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

    /// Issues an access token for an enabled integration (portal action).
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
        token::issue(&spec, self.key(), now, &*self.rng)
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
        let result = match (req.method.as_str(), path) {
            ("GET", "/v1/keys") => Ok(HttpResponse::json(200, &self.keyset())),
            ("POST", "/v1/redeem") => self.redeem(store, req, now),
            ("POST", "/v1/handshake") => self.handshake(store, req, now),
            ("POST", "/v1/ingest") => self.ingest(store, req, now),
            ("POST", "/v1/offboard") => self.offboard(store, req, now),
            ("POST", "/v1/rotate") => self.rotate(store, req, now),
            ("POST", "/v1/downlevel/register") => self.downlevel_register(store, req, now),
            ("POST", "/v1/downlevel/ingest") => self.downlevel_ingest(store, req, now),
            (
                _,
                "/v1/keys"
                | "/v1/redeem"
                | "/v1/handshake"
                | "/v1/ingest"
                | "/v1/offboard"
                | "/v1/rotate"
                | "/v1/downlevel/register"
                | "/v1/downlevel/ingest",
            ) => {
                return problem_with_status(
                    &Error::new(ErrorCode::InvalidArgument, "method not allowed"),
                    405,
                    None,
                );
            }
            _ => {
                return problem_with_status(
                    &Error::new(ErrorCode::InvalidArgument, "no such endpoint"),
                    404,
                    None,
                );
            }
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
        if !store.nonce_fresh(&format!("{scope}:{nonce}"), now + 2 * MESSAGE_WINDOW, now)? {
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
        self.fresh_nonce(store, "redeem", &claims.nonce, now)?;
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
        let mut inst = match existing {
            Some(i) => i,
            None => {
                if rec.uses >= rec.max_uses {
                    return Err(Error::new(
                        ErrorCode::TokenExhausted,
                        "token reached its maximum number of uses",
                    )
                    .into());
                }
                let twin = store
                    .installations_by_device(t, p, &claims.device.device_id)?
                    .into_iter()
                    .find(|i| !i.offboarded && i.public_key != Some(key));
                store.add_token_use(&tok.jti)?;
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
                    credential_exp: now + CREDENTIAL_LIFETIME,
                    last_seen: None,
                    sensor_running: true,
                    last_seq: 0,
                    missing_seq: 0,
                    reported_drops: 0,
                    offboarded: false,
                    possible_clone_of: twin.map(|i| i.id),
                }
            }
        };
        // A known installation presenting a newer token (re-applied after the
        // integration was toggled back on, or after offboarding) resumes.
        inst.epoch = tok.epoch;
        inst.offboarded = false;
        inst.device = claims.device.clone();
        inst.credential_exp = now + CREDENTIAL_LIFETIME;
        store.put_installation(&inst)?;
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

    /// Flow decision for an installation: offboarded or another epoch revokes;
    /// a disabled integration blocks (a toggle-off both blocks and bumps the
    /// epoch; while off, the endpoint is told "blocked" and keeps its data).
    fn flow_of<S: ServiceStore>(
        &self,
        store: &mut S,
        inst: &Installation,
    ) -> Result<(FlowState, Option<ErrorCode>)> {
        if inst.offboarded {
            return Ok((FlowState::Revoked, Some(ErrorCode::Offboarded)));
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

    fn flow_error(state: FlowState, reason: Option<ErrorCode>) -> Error {
        match (state, reason) {
            (FlowState::Blocked, _) => Error::new(
                ErrorCode::FlowBlocked,
                "inbound flow is blocked: the integration is turned off",
            ),
            (_, Some(ErrorCode::Offboarded)) => Error::new(
                ErrorCode::Revoked,
                "installation was offboarded: a new token is required",
            ),
            _ => Error::new(
                ErrorCode::Revoked,
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
        inst.reported_drops = inst.reported_drops.max(hello.drops.values().sum());
        store.put_installation(&inst)?;
        let (decision, reason) = self.flow_of(store, &inst)?;
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
                expires_at: now + self.cfg.session_lifetime,
            };
            store.put_session(&s)?;
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
            b.retain(|_, (_, at)| now - *at <= refill);
        }
        let (tokens, at) = b
            .entry(installation_id.to_owned())
            .or_insert((rl.burst, now));
        *tokens = (*tokens + (now - *at).max(0) as f64 * rl.per_second).min(rl.burst);
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
            batch,
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
            batch,
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
        let (state, reason) = self.flow_of(store, &inst)?;
        if state != FlowState::Open {
            return Err(Self::flow_error(state, reason).into());
        }
        let sid = batch
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
        self.accept_batch(store, &mut inst, batch, now)
    }

    fn accept_batch<S: ServiceStore>(
        &self,
        store: &mut S,
        inst: &mut Installation,
        batch: Batch,
        now: UnixSeconds,
    ) -> Handled {
        if batch.events.len() as u64 > u64::from(self.cfg.policy.max_batch_events) {
            return Err(Error::new(
                ErrorCode::BatchTooLarge,
                format!("more than {} events", self.cfg.policy.max_batch_events),
            )
            .into());
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
                Some(inst.last_seq + 1),
            ));
        }
        let gap = batch.seq - inst.last_seq - 1;
        inst.missing_seq += gap;
        inst.last_seq = batch.seq;
        inst.last_seen = Some(now);
        for e in &batch.events {
            if let Event::Heartbeat(h) = e {
                inst.sensor_running = h.sensor == SensorState::Running;
            }
        }
        let alerts = alerts_for(&batch.events);
        store.store_batch(inst, &batch, &alerts, now)?;
        Ok(HttpResponse::json(
            200,
            &IngestAck {
                status: "accepted".into(),
                batch_id: batch.batch_id,
                seq: batch.seq,
                events: batch.events.len() as u64,
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
        let (state, reason) = self.flow_of(store, &inst)?;
        if state == FlowState::Revoked {
            return Err(Self::flow_error(state, reason).into());
        }
        inst.public_key = Some(new_key);
        inst.credential_exp = now + CREDENTIAL_LIFETIME;
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
        Ok(ws)
    }

    fn workspace_flow<S: ServiceStore>(&self, store: &mut S, ws: &Workspace) -> Result<()> {
        match store.integration(&ws.tenant_id, &ws.partner_id)? {
            Some(i) if i.enabled && i.epoch == ws.epoch => Ok(()),
            Some(i) if i.enabled => Err(Error::new(
                ErrorCode::Revoked,
                "workspace key belongs to an old epoch: a new onboarding package is required",
            )),
            _ => Err(Error::new(
                ErrorCode::FlowBlocked,
                "inbound flow is blocked: the integration is turned off",
            )),
        }
    }

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
        let inst = match store.installation_by_enrollment(
            &ws.tenant_id,
            &ws.partner_id,
            &r.enrollment_id,
        )? {
            Some(i) if i.workspace_id.as_deref() == Some(ws.id.as_str()) => i,
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::PossibleClone,
                    "enrollment id belongs to another installation",
                )
                .into())
            }
            None => {
                let twin = store
                    .installations_by_device(&ws.tenant_id, &ws.partner_id, &r.device.device_id)?
                    .into_iter()
                    .find(|i| !i.offboarded);
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
                    credential_exp: now + CREDENTIAL_LIFETIME,
                    last_seen: Some(now),
                    sensor_running: true,
                    last_seq: 0,
                    missing_seq: 0,
                    reported_drops: 0,
                    offboarded: false,
                    possible_clone_of: twin.map(|i| i.id),
                };
                store.put_installation(&i)?;
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
        let ws = self.shared_key_auth(store, req, "/v1/downlevel/ingest", now)?;
        self.workspace_flow(store, &ws)?;
        let batch: Batch = parse_json(&req.body, telemetry::MAX_DECOMPRESSED, "batch")?;
        batch.validate()?;
        let mut inst = store
            .installation(&batch.installation_id)?
            .filter(|i| i.workspace_id.as_deref() == Some(ws.id.as_str()))
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::UnknownInstallation,
                    "installation is not registered in this workspace",
                )
            })?;
        if inst.offboarded {
            return Err(Error::new(ErrorCode::Revoked, "installation was offboarded").into());
        }
        self.accept_batch(store, &mut inst, batch, now)
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
