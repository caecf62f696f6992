//! HTTP layer: the route table, the partner-API bridge to `ServiceRole`, the
//! admin API, the portal page, `/openapi.json` and `/healthz`.

use crate::body::{self, BodyRefusal};
use crate::db::{self, SqliteStore};
use crate::faults::{self, FaultKind, FaultRequest};
use crate::limits::RouteClass;
use crate::pipeline::Work;
use crate::schema::{
    CreateTenant, GenerateToken, OffboardingRequest, OnboardingRequest, RevokeRequest,
    SetIntegration,
};
use crate::App;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use edrlink_core::downlevel::OnboardingPackage;
use edrlink_core::encoding::rfc3339;
use edrlink_core::error::{Error, ErrorCode};
use edrlink_core::health::{classify, Activity, Coverage, INACTIVE_AFTER};
use edrlink_core::http::{problem, problem_with_status, HttpRequest, HttpResponse};
use edrlink_core::service::{Workspace, PARTNER_ROUTES};
use edrlink_core::{offboard, token};
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use zeroize::Zeroizing;

/// The OpenAPI 3.1 document served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
/// The portal page served at `/`.
pub const PORTAL_HTML: &str = include_str!("portal.html");

/// Largest `/v1/ingest` and `/v1/downlevel/ingest` body: a 5 MiB envelope plus slack.
pub const INGEST_BODY_LIMIT: usize = edrlink_core::dsse::MAX_ENVELOPE_BYTES + 64 * 1024;
/// Largest body of every other partner request (a JWS is at most 64 KiB).
pub const PARTNER_BODY_LIMIT: usize = edrlink_core::jws::MAX_JWS_LEN + 1024;
/// Largest admin request body.
pub const ADMIN_BODY_LIMIT: usize = 64 * 1024;

type AppState = Arc<App>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Public,
    Admin,
}

fn method_filter(m: &str) -> MethodFilter {
    match m {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        other => panic!("unsupported method {other} in route table"),
    }
}

fn routes() -> Vec<(&'static str, &'static str, Access, MethodRouter<AppState>)> {
    let f = |m: &'static str, h: MethodRouter<AppState>| (m, h);
    let mut v: Vec<(&'static str, &'static str, Access, MethodRouter<AppState>)> = Vec::new();
    let mut add =
        |path: &'static str, access: Access, (m, h): (&'static str, MethodRouter<AppState>)| {
            v.push((m, path, access, h))
        };
    add("/", Access::Public, f("GET", on(MethodFilter::GET, portal)));
    add(
        "/healthz",
        Access::Public,
        f("GET", on(MethodFilter::GET, healthz)),
    );
    add(
        "/openapi.json",
        Access::Public,
        f("GET", on(MethodFilter::GET, openapi)),
    );
    // The partner routes are the service role's own table (what `handle` dispatches on).
    for (m, p, _) in PARTNER_ROUTES {
        add(p, Access::Public, f(m, on(method_filter(m), partner)));
    }
    add(
        "/admin/tenants",
        Access::Admin,
        f("POST", on(MethodFilter::POST, create_tenant)),
    );
    add(
        "/admin/tenants",
        Access::Admin,
        f("GET", on(MethodFilter::GET, list_tenants)),
    );
    add(
        "/admin/tenants/{tenant}/integrations",
        Access::Admin,
        f("GET", on(MethodFilter::GET, list_integrations)),
    );
    add(
        "/admin/tenants/{tenant}/integrations/{partner}",
        Access::Admin,
        f("PUT", on(MethodFilter::PUT, set_integration)),
    );
    add(
        "/admin/tenants/{tenant}/integrations/{partner}/tokens",
        Access::Admin,
        f("POST", on(MethodFilter::POST, generate_token)),
    );
    add(
        "/admin/tokens/{jti}",
        Access::Admin,
        f("DELETE", on(MethodFilter::DELETE, revoke_token)),
    );
    add(
        "/admin/tenants/{tenant}/integrations/{partner}/onboarding-package",
        Access::Admin,
        f("POST", on(MethodFilter::POST, onboarding_package)),
    );
    add(
        "/admin/tenants/{tenant}/workspaces/{workspace}/revoke",
        Access::Admin,
        f("POST", on(MethodFilter::POST, revoke_workspace)),
    );
    add(
        "/admin/tenants/{tenant}/integrations/{partner}/offboarding-package",
        Access::Admin,
        f("POST", on(MethodFilter::POST, offboarding_package)),
    );
    add(
        "/admin/tenants/{tenant}/installations",
        Access::Admin,
        f("GET", on(MethodFilter::GET, installations)),
    );
    add(
        "/admin/tenants/{tenant}/installations/revoke",
        Access::Admin,
        f("POST", on(MethodFilter::POST, revoke_installations)),
    );
    add(
        "/admin/tenants/{tenant}/installations/{id}/revoke",
        Access::Admin,
        f("POST", on(MethodFilter::POST, revoke_installation)),
    );
    add(
        "/admin/tenants/{tenant}/installations/{id}/reinstate",
        Access::Admin,
        f("POST", on(MethodFilter::POST, reinstate_installation)),
    );
    add(
        "/admin/tenants/{tenant}/alerts",
        Access::Admin,
        f("GET", on(MethodFilter::GET, alerts)),
    );
    add(
        "/admin/tenants/{tenant}/stats",
        Access::Admin,
        f("GET", on(MethodFilter::GET, stats)),
    );
    v
}

/// Every `(method, path)` the router serves, path templates in OpenAPI form.
pub fn route_table() -> Vec<(&'static str, &'static str)> {
    routes().into_iter().map(|(m, p, _, _)| (m, p)).collect()
}

pub(crate) fn router(app: AppState) -> Router {
    let mut public: Router<AppState> = Router::new();
    let mut admin: Router<AppState> = Router::new();
    for (_, path, access, h) in routes() {
        match access {
            Access::Public => public = public.route(path, h),
            Access::Admin => admin = admin.route(path, h),
        }
    }
    if app.faults.is_some() {
        admin = admin.route(
            "/admin/test/faults",
            on(MethodFilter::POST, arm_fault).on(MethodFilter::DELETE, clear_faults),
        );
    }
    let admin = admin.route_layer(middleware::from_fn_with_state(app.clone(), require_admin));
    let timeout = app.timeout;
    public
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            app.clone(),
            early_size_limit,
        ))
        .layer(middleware::from_fn(access_log))
        .layer(middleware::from_fn(partner_cors))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(app)
}

/// CORS for the partner API only: partner web consoles and browser extensions
/// call `/v1/*` from their own origin. Requests there authenticate by
/// signature (never cookies), so any origin may call; the admin API stays
/// same-origin (the portal page).
async fn partner_cors(req: Request, next: middleware::Next) -> Response {
    let is_partner = req.uri().path().starts_with("/v1/");
    if is_partner && req.method() == axum::http::Method::OPTIONS {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("content-type, authorization, x-edrlink-date"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        return r;
    }
    let mut r = next.run(req).await;
    if is_partner {
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        h.insert(
            "access-control-expose-headers",
            HeaderValue::from_static("retry-after, date"),
        );
    }
    r
}

// ---- responses -------------------------------------------------------------

fn to_axum(r: HttpResponse) -> Response {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in r.headers {
        if let (Ok(name), Ok(val)) = (header::HeaderName::try_from(k), HeaderValue::try_from(v)) {
            resp.headers_mut().append(name, val);
        }
    }
    resp
}

/// An admin-API failure: a typed error, optionally with another status than the code's.
struct ApiError(Error, Option<u16>);

impl ApiError {
    fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError(Error::new(code, msg), None)
    }
    fn not_found(msg: impl Into<String>) -> Self {
        ApiError(Error::new(ErrorCode::InvalidArgument, msg), Some(404))
    }
    fn conflict(msg: impl Into<String>) -> Self {
        ApiError(Error::new(ErrorCode::InvalidState, msg), Some(409))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e, None)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError(db::storage(e), None)
    }
}

fn problem_response(e: &Error, status: Option<u16>) -> Response {
    let mut r = problem(e, None);
    if let Some(s) = status {
        r.status = s;
        if let Ok(mut p) = serde_json::from_slice::<Value>(&r.body) {
            p["status"] = json!(s);
            r.body = serde_json::to_vec(&p).unwrap_or_default();
        }
    }
    to_axum(r)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        label(problem_response(&self.0, self.1), self.0.code())
    }
}

fn json_response(status: u16, v: &Value) -> Response {
    let mut r = to_axum(HttpResponse::json(status, v));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn not_found() -> Response {
    problem_response(
        &Error::new(ErrorCode::InvalidArgument, "no such endpoint"),
        Some(404),
    )
}

async fn method_not_allowed() -> Response {
    problem_response(
        &Error::new(ErrorCode::InvalidArgument, "method not allowed"),
        Some(405),
    )
}

// ---- middleware --------------------------------------------------------------

/// Logs method, path, status, error code and latency. Never headers, query
/// strings or bodies (they may carry tokens, keys or signatures).
async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let code = resp
        .extensions()
        .get::<ErrorLabel>()
        .map(|l| l.0)
        .unwrap_or("");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, code, ms, "request");
    } else {
        tracing::info!(%method, %path, status, code, ms, "request");
    }
    resp
}

/// The error code of a problem response, for the access log.
#[derive(Clone, Copy)]
struct ErrorLabel(&'static str);

/// Failed admin-key guesses allowed per client address before throttling.
pub(crate) const ADMIN_FAILURE_BURST: f64 = 30.0;
/// Seconds for one more allowed guess once the burst is spent.
pub(crate) const ADMIN_FAILURE_REFILL_SECS: f64 = 2.0;
/// Addresses tracked at most (the oldest full buckets are forgotten first).
const ADMIN_THROTTLE_ADDRS: usize = 10_000;

/// Failed admin attempts per client address (token bucket over the
/// service clock). A throttled address gets 429 + Retry-After without its key
/// being checked, so guessing cannot go faster than the refill.
#[derive(Default)]
pub(crate) struct AdminThrottle(std::sync::Mutex<std::collections::HashMap<IpAddr, (f64, i64)>>);

impl AdminThrottle {
    fn refill(tokens: f64, at: i64, now: i64) -> f64 {
        let elapsed = now.saturating_sub(at).max(0) as f64;
        (tokens + elapsed / ADMIN_FAILURE_REFILL_SECS).min(ADMIN_FAILURE_BURST)
    }

    /// Seconds to wait when the address has no guess left.
    fn blocked(&self, ip: IpAddr, now: i64) -> Option<u64> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let &(tokens, at) = map.get(&ip)?;
        let t = Self::refill(tokens, at, now);
        (t < 1.0).then(|| ((1.0 - t) * ADMIN_FAILURE_REFILL_SECS).ceil().max(1.0) as u64)
    }

    /// Counts one failed attempt.
    fn failed(&self, ip: IpAddr, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ADMIN_THROTTLE_ADDRS && !map.contains_key(&ip) {
            let full = (ADMIN_FAILURE_BURST * ADMIN_FAILURE_REFILL_SECS).ceil() as i64;
            map.retain(|_, (_, at)| now.saturating_sub(*at) < full);
            if map.len() >= ADMIN_THROTTLE_ADDRS {
                return;
            }
        }
        let e = map.entry(ip).or_insert((ADMIN_FAILURE_BURST, now));
        e.0 = (Self::refill(e.0, e.1, now) - 1.0).max(0.0);
        e.1 = now;
    }
}

async fn require_admin(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let now = app.clock.now();
    if let Some(wait) = app.admin_throttle.blocked(ip, now) {
        let mut r = problem_response(
            &Error::new(
                ErrorCode::RateLimited,
                "too many failed admin attempts from this address",
            )
            .with_retry_after(wait),
            None,
        );
        r.extensions_mut().insert(ErrorLabel("rate_limited"));
        return r;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(k) if !k.is_empty() && app.admin_ok(k.as_bytes()) => next.run(req).await,
        other => {
            // A presented (wrong) key is a guess; a request without one is not.
            if other.is_some_and(|k| !k.is_empty()) {
                app.admin_throttle.failed(ip, now);
            }
            let mut r = problem_response(
                &Error::new(ErrorCode::Unauthorized, "admin API key missing or wrong"),
                None,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"edrlink-admin\""),
            );
            r.extensions_mut().insert(ErrorLabel("unauthorized"));
            r
        }
    }
}

// ---- DB helpers ----------------------------------------------------------------

/// Runs `f` in one immediate transaction on the blocking pool; commits on Ok.
async fn with_tx<T: Send + 'static>(
    app: &AppState,
    f: impl FnOnce(&App, &Transaction, i64) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let now = app.clock.now();
        let mut conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&app, &tx, now)?;
        tx.commit()?;
        Ok(out)
    })
    .await
    .map_err(|_| ApiError::new(ErrorCode::Internal, "request task failed"))?
}

async fn read_body(req: Request, limit: usize) -> Result<axum::body::Bytes, Error> {
    to_bytes(req.into_body(), limit).await.map_err(|_| {
        Error::new(
            ErrorCode::TooLarge,
            format!("request body exceeds {limit} bytes"),
        )
    })
}

async fn json_body<T: serde::de::DeserializeOwned + Default>(req: Request) -> Result<T, ApiError> {
    let b = read_body(req, ADMIN_BODY_LIMIT).await?;
    // No body is the same as `{}` (the schemas mark such bodies optional);
    // anything else must be JSON, whitespace alone included.
    if b.is_empty() {
        return Ok(T::default());
    }
    let malformed =
        |e: serde_json::Error| ApiError::new(ErrorCode::Malformed, format!("request body: {e}"));
    // Every admin body is a JSON object (serde would also take a struct
    // from an array).
    let v: Value = serde_json::from_slice(&b).map_err(malformed)?;
    if !v.is_object() {
        return Err(ApiError::new(
            ErrorCode::Malformed,
            "request body must be a JSON object",
        ));
    }
    T::deserialize(v).map_err(malformed)
}

fn valid_id(what: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("{what} must be 1..64 characters of [A-Za-z0-9._-]"),
        ));
    }
    Ok(())
}

fn tenant_region(tx: &Transaction, t: &str) -> Result<String, ApiError> {
    tx.query_row(
        "SELECT region FROM tenants WHERE tenant_id = ?1",
        [t],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("unknown tenant"))
}

fn integration_row(tx: &Transaction, t: &str, p: &str) -> Result<Option<(bool, i64)>, ApiError> {
    Ok(tx
        .query_row(
            "SELECT enabled, epoch FROM integrations WHERE tenant_id = ?1 AND partner_id = ?2",
            [t, p],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

fn enabled_integration(tx: &Transaction, t: &str, p: &str) -> Result<i64, ApiError> {
    tenant_region(tx, t)?;
    match integration_row(tx, t, p)? {
        Some((true, epoch)) => Ok(epoch),
        _ => Err(ApiError::new(
            ErrorCode::IntegrationDisabled,
            "turn the partner integration on first",
        )),
    }
}

// ---- public handlers -------------------------------------------------------------

async fn portal() -> Response {
    let mut r = Response::new(Body::from(PORTAL_HTML));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn healthz(State(app): State<AppState>) -> Response {
    let ok = with_tx(&app, |_, tx, _| {
        Ok(tx.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)
    })
    .await;
    match ok {
        Ok(_) => json_response(
            200,
            &json!({"status": "ok", "region": app.region, "schema_version": db::SCHEMA_VERSION}),
        ),
        Err(e) => e.into_response(),
    }
}

async fn openapi() -> Response {
    let mut r = Response::new(Body::from(OPENAPI_JSON));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The client's address (the TCP peer), for the flood limits.
fn peer_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The largest body a route takes.
fn body_limit(path: &str) -> usize {
    if is_ingest(path) {
        INGEST_BODY_LIMIT
    } else if path.starts_with("/v1/") {
        PARTNER_BODY_LIMIT
    } else {
        ADMIN_BODY_LIMIT
    }
}

fn is_ingest(path: &str) -> bool {
    path == "/v1/ingest" || path == "/v1/downlevel/ingest"
}

fn too_large(app: &App, path: &str, limit: usize) -> Response {
    let msg = format!("request body exceeds {limit} bytes");
    let e = if is_ingest(path) {
        Error::new(ErrorCode::BatchTooLarge, msg)
    } else {
        Error::new(ErrorCode::TooLarge, msg)
    };
    role_answer(app.role.refusal(&e, app.clock.now()))
}

/// Refuses a body declared larger than its route's limit before reading it,
/// in a way the client can read (`Expect: 100-continue` honoured, otherwise
/// drained up to a bound; see `body.rs`).
async fn early_size_limit(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let limit = body_limit(path);
    if !body::declared_over(&req, limit) {
        return next.run(req).await;
    }
    if path.starts_with("/v1/") {
        app.limits.failed(peer_ip(&req));
    }
    let resp = too_large(&app, path, limit);
    body::refuse(req, resp, body::DRAIN_LIMIT).await
}

/// The partner API. Flood limits first (before the body is read); ingest
/// envelopes are then parsed and verified outside the writer
/// (`ServiceRole::prepare_ingest`, key looked up on a read-only connection);
/// everything that touches state goes to the writer, which commits requests
/// in groups and answers each only after its group's commit (`pipeline.rs`).
async fn partner(State(app): State<AppState>, req: Request) -> Response {
    let fault = app.faults.as_ref().and_then(|f| f.take(req.uri().path()));
    match fault {
        None => partner_answer(app, req).await,
        Some(FaultKind::Refuse {
            status,
            retry_after,
        }) => {
            let e = faults::refusal_error(status, retry_after);
            let mut resp = problem_with_status(&e, status, None);
            resp.headers.push((
                "date".into(),
                edrlink_core::http::format_http_date(app.clock.now()),
            ));
            body::refuse(req, role_answer(resp), body::DRAIN_LIMIT).await
        }
        Some(FaultKind::DropAnswer) => {
            // Processed and committed (the writer answers only after its
            // commit); then the answer is lost.
            let _ = partner_answer(app, req).await;
            Response::new(Body::new(faults::LostAnswer))
        }
    }
}

async fn partner_answer(app: AppState, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let ip = peer_ip(&req);
    if let Err(wait) = app.limits.admit(ip, RouteClass::of(&path)) {
        let e = Error::new(
            ErrorCode::RateLimited,
            "too many requests from this address",
        )
        .with_retry_after(wait);
        let resp = role_answer(app.role.refusal(&e, app.clock.now()));
        return body::refuse(req, resp, PARTNER_BODY_LIMIT as u64).await;
    }
    let url = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let method = req.method().as_str().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_ascii_lowercase(), v.to_owned()))
        })
        .collect();
    let limit = body_limit(&path);
    let body = match body::read_limited(req, limit).await {
        Ok(b) => b,
        Err((BodyRefusal::TooLarge, rest)) => {
            app.limits.failed(ip);
            let resp = too_large(&app, &path, limit);
            return body::finish(rest, resp, body::DRAIN_LIMIT).await;
        }
        Err((BodyRefusal::Broken, _)) => {
            let e = Error::new(ErrorCode::Malformed, "request body could not be read");
            return role_answer(app.role.refusal(&e, app.clock.now()));
        }
    };
    let resp = if path == "/v1/ingest" && method == "POST" {
        ingest(&app, body).await
    } else if let Some(refused) = precheck_redeem(&app, &path, &body).await {
        refused
    } else {
        let hreq = HttpRequest {
            id: 0,
            method,
            url,
            headers,
            body: body.to_vec(),
        };
        app.writer.submit(Work::Handle(hreq)).await
    };
    if matches!(resp.status, 400 | 401 | 413) {
        app.limits.failed(ip);
    }
    role_answer(resp)
}

/// `POST /v1/redeem`: the stateless checks (signatures, freshness, token,
/// region) run outside the writer, so junk never costs a database write;
/// `Some` is the refusal.
async fn precheck_redeem(
    app: &AppState,
    path: &str,
    body: &axum::body::Bytes,
) -> Option<HttpResponse> {
    if path != "/v1/redeem" {
        return None;
    }
    let Ok(_permit) = app.verifiers.acquire().await else {
        return None;
    };
    let (app2, body) = (app.clone(), body.clone());
    let now = app.clock.now();
    let checked = tokio::task::spawn_blocking(move || app2.role.precheck_redeem(&body, now)).await;
    match checked {
        Ok(Err(e)) => Some(app.role.refusal(&e, now)),
        _ => None,
    }
}

/// Largest ingest body verified on the request's own worker thread.
const INLINE_VERIFY_MAX: usize = 64 * 1024;

/// `POST /v1/ingest`: verify outside the writer (bounded concurrency), commit in it.
async fn ingest(app: &AppState, body: axum::body::Bytes) -> HttpResponse {
    let Ok(_permit) = app.verifiers.acquire().await else {
        return problem(
            &Error::new(ErrorCode::ServiceUnavailable, "the service is stopping"),
            None,
        );
    };
    let prepare = |app: &AppState, body: &[u8]| {
        // A panic (a bug) fails this request only, as on the blocking pool.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            app.role
                .prepare_ingest(body, |kid| app.readers.installation_by_key(kid))
        }))
        .map_err(|_| ())
    };
    // A usual batch (tens of KiB) takes a few hundred microseconds to verify:
    // done on this worker, it saves two thread hand-offs per request. Large
    // envelopes (up to 5 MiB) go to the blocking pool so they never hold up
    // the workers that read every other request.
    let prepared = if body.len() <= INLINE_VERIFY_MAX {
        prepare(app, &body)
    } else {
        let app2 = app.clone();
        tokio::task::spawn_blocking(move || prepare(&app2, &body))
            .await
            .unwrap_or(Err(()))
    };
    drop(_permit);
    match prepared {
        Ok(Ok(p)) => app.writer.submit(Work::Ingest(p)).await,
        Ok(Err(e)) => app.role.refusal(&e, app.clock.now()),
        Err(()) => app.role.refusal(
            &Error::new(ErrorCode::Internal, "request task failed"),
            app.clock.now(),
        ),
    }
}

/// A `ServiceRole` answer as an axum response, labelled with its error code for the access log.
fn role_answer(resp: HttpResponse) -> Response {
    let code = if resp.status >= 400 {
        serde_json::from_slice::<edrlink_core::http::Problem>(&resp.body)
            .ok()
            .and_then(|p| ErrorCode::from_name(&p.code))
    } else {
        None
    };
    let r = to_axum(resp);
    match code {
        Some(c) => label(r, c),
        None => r,
    }
}

fn label(mut r: Response, code: ErrorCode) -> Response {
    r.extensions_mut().insert(ErrorLabel(code.as_str()));
    r
}

// ---- admin handlers ----------------------------------------------------------------
// Request bodies: crate::schema (the OpenAPI document is derived from them).

async fn create_tenant(State(app): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let b: CreateTenant = json_body(req).await?;
    valid_id("tenant_id", &b.tenant_id)?;
    let region = b.region.unwrap_or_else(|| app.region.clone());
    valid_id("region", &region)?;
    with_tx(&app, move |_, tx, now| {
        let existing: Option<String> = tx
            .query_row(
                "SELECT region FROM tenants WHERE tenant_id = ?1",
                [&b.tenant_id],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(r) if r == region => Ok(json_response(
                200,
                &json!({"tenant_id": b.tenant_id, "region": r, "created": false}),
            )),
            Some(_) => Err(ApiError::conflict(
                "tenant exists with another region (a tenant's region is fixed)",
            )),
            None => {
                tx.execute(
                    "INSERT INTO tenants (tenant_id, region, created_at) VALUES (?1, ?2, ?3)",
                    params![b.tenant_id, region, now],
                )?;
                tracing::info!(tenant = %b.tenant_id, %region, "tenant created");
                Ok(json_response(
                    201,
                    &json!({"tenant_id": b.tenant_id, "region": region, "created": true}),
                ))
            }
        }
    })
    .await
}

async fn list_tenants(State(app): State<AppState>) -> Result<Response, ApiError> {
    with_tx(&app, |_, tx, _| {
        let mut st = tx.prepare("SELECT tenant_id, region FROM tenants ORDER BY tenant_id")?;
        let rows = st
            .query_map([], |r| {
                Ok(json!({"tenant_id": r.get::<_, String>(0)?, "region": r.get::<_, String>(1)?}))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(json_response(200, &json!({"tenants": rows})))
    })
    .await
}

async fn list_integrations(
    State(app): State<AppState>,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, _| {
        tenant_region(tx, &t)?;
        let mut st = tx.prepare("SELECT partner_id, enabled, epoch FROM integrations WHERE tenant_id = ?1 ORDER BY partner_id")?;
        let rows = st
            .query_map([&t], |r| Ok(json!({"tenant_id": t, "partner_id": r.get::<_, String>(0)?, "enabled": r.get::<_, bool>(1)?, "epoch": r.get::<_, i64>(2)?})))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(json_response(200, &json!({"integrations": rows})))
    })
    .await
}

async fn set_integration(
    State(app): State<AppState>,
    Path((t, p)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let b: SetIntegration = json_body(req).await?;
    let enabled = b
        .enabled
        .ok_or_else(|| ApiError::new(ErrorCode::Malformed, "body must be {\"enabled\": bool}"))?;
    valid_id("partner_id", &p)?;
    with_tx(&app, move |app, tx, now| {
        tenant_region(tx, &t)?;
        let i = app
            .role
            .set_integration(&mut SqliteStore { tx }, &t, &p, enabled, now)?;
        tracing::info!(tenant = %t, partner = %p, enabled, epoch = i.epoch, "integration set");
        Ok(json_response(
            200,
            &json!({"tenant_id": t, "partner_id": p, "enabled": i.enabled, "epoch": i.epoch}),
        ))
    })
    .await
}

async fn generate_token(
    State(app): State<AppState>,
    Path((t, p)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let b: GenerateToken = json_body(req).await?;
    let lifetime = b.lifetime_secs.unwrap_or(token::DEFAULT_LIFETIME);
    if lifetime <= 0 || lifetime > token::MAX_LIFETIME {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("lifetime_secs must be 1..={}", token::MAX_LIFETIME),
        ));
    }
    let max_uses = b.max_uses.unwrap_or(token::DEFAULT_MAX_USES);
    with_tx(&app, move |app, tx, now| {
        enabled_integration(tx, &t, &p)?;
        let (text, claims) = app.role.issue_token(&mut SqliteStore { tx }, &t, &p, lifetime, max_uses, now)?;
        let text = Zeroizing::new(text);
        tracing::info!(tenant = %t, partner = %p, jti = %claims.jti, exp = claims.exp, "access token generated");
        Ok(json_response(
            201,
            &json!({"token": &*text, "jti": claims.jti, "exp": claims.exp, "expires_at": rfc3339(claims.exp), "max_uses": claims.max_uses, "epoch": claims.epoch}),
        ))
    })
    .await
}

/// `POST /admin/test/faults` (mounted only with test faults on).
async fn arm_fault(State(app): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let b: FaultRequest = json_body(req).await?;
    let faults = app
        .faults
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    faults.arm(b)?;
    tracing::warn!("test fault armed");
    Ok(json_response(200, &json!({"armed": true})))
}

/// `DELETE /admin/test/faults` (mounted only with test faults on).
async fn clear_faults(State(app): State<AppState>) -> Result<Response, ApiError> {
    let faults = app
        .faults
        .as_ref()
        .ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    faults.clear();
    Ok(json_response(200, &json!({"cleared": true})))
}

async fn revoke_token(
    State(app): State<AppState>,
    Path(jti): Path<String>,
) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, _| {
        let n = tx.execute("UPDATE tokens SET revoked = 1 WHERE jti = ?1", [&jti])?;
        if n == 0 {
            return Err(ApiError::not_found("unknown token id"));
        }
        tracing::info!(%jti, "access token revoked");
        Ok(json_response(200, &json!({"jti": jti, "revoked": true})))
    })
    .await
}

/// Default lifetime of a workspace key for registrations: 30 days.
const WORKSPACE_DEFAULT_LIFETIME: i64 = 30 * 86_400;
/// Longest lifetime an admin may give a workspace key: 365 days.
const WORKSPACE_MAX_LIFETIME: i64 = 365 * 86_400;

async fn onboarding_package(
    State(app): State<AppState>,
    Path((t, p)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let b: OnboardingRequest = json_body(req).await?;
    let lifetime = b.lifetime_secs.unwrap_or(WORKSPACE_DEFAULT_LIFETIME);
    if lifetime <= 0 || lifetime > WORKSPACE_MAX_LIFETIME {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("lifetime_secs must be 1..={WORKSPACE_MAX_LIFETIME}"),
        ));
    }
    with_tx(&app, move |app, tx, now| {
        let region = tenant_region(tx, &t)?;
        let epoch = enabled_integration(tx, &t, &p)?;
        let role = &app.role;
        let expires_at = now.checked_add(lifetime).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidArgument, "lifetime_secs overflows")
        })?;
        let mut pkg = OnboardingPackage::issue(
            &t,
            &p,
            &region,
            &role.config().service_url,
            role.keyset(),
            epoch as u64,
            now,
            role.rng(),
        )?;
        pkg.expires = Some(rfc3339(expires_at));
        let ws = Workspace {
            id: pkg.workspace_id.clone(),
            tenant_id: t.clone(),
            partner_id: p.clone(),
            key: pkg.key_bytes()?,
            epoch: epoch as u64,
            expires_at: Some(expires_at),
            revoked: false,
        };
        db::insert_workspace(tx, &ws, now)?;
        tracing::info!(tenant = %t, partner = %p, workspace = %ws.id, expires_at, "onboarding package issued");
        let body = pkg.to_json();
        let mut r = Response::new(Body::from(body.as_bytes().to_vec()));
        *r.status_mut() = StatusCode::CREATED;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    })
    .await
}

/// Revokes a workspace key: it registers no more agents (`token_revoked`);
/// agents already registered keep sending with their own device keys.
async fn revoke_workspace(
    State(app): State<AppState>,
    Path((t, ws)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, _| {
        if !db::revoke_workspace(tx, &t, &ws)? {
            return Err(ApiError::not_found("unknown workspace"));
        }
        tracing::info!(tenant = %t, workspace = %ws, "workspace key revoked");
        Ok(json_response(
            200,
            &json!({"workspace_id": ws, "revoked": true}),
        ))
    })
    .await
}

async fn offboarding_package(
    State(app): State<AppState>,
    Path((t, p)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let b: OffboardingRequest = json_body(req).await?;
    with_tx(&app, move |app, tx, now| {
        tenant_region(tx, &t)?;
        let Some((_, epoch)) = integration_row(tx, &t, &p)? else {
            return Err(ApiError::not_found("unknown partner integration"));
        };
        if let Some(ids) = &b.installation_ids {
            if ids.is_empty() || ids.len() > 10_000 {
                return Err(ApiError::new(ErrorCode::InvalidArgument, "installation_ids must name 1..10000 installations"));
            }
            for id in ids {
                let known: Option<i64> =
                    tx.query_row("SELECT 1 FROM installations WHERE id = ?1 AND tenant_id = ?2 AND partner_id = ?3", [id, &t, &p], |r| r.get(0)).optional()?;
                if known.is_none() {
                    return Err(ApiError::not_found(format!("installation {id} is not an installation of this integration")));
                }
            }
        }
        let key = &app.role.config().keys[0];
        let (package, claims) = offboard::issue_package(&t, &p, epoch as u64, b.installation_ids.clone(), key, now, app.role.rng())?;
        tx.execute(
            "INSERT INTO offboarding_packages (jti, tenant_id, partner_id, installation_ids, exp, created_at, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![claims.jti, t, p, b.installation_ids.as_ref().map(|v| serde_json::to_string(v).unwrap_or_default()), claims.exp, now, epoch],
        )?;
        // The service stops serving the named installations at once: it does
        // not wait for an endpoint to apply the package (a stolen copy of
        // the key never would).
        let marked = db::mark_offboarded(tx, &t, &p, b.installation_ids.as_deref())?;
        tracing::info!(tenant = %t, partner = %p, jti = %claims.jti, epoch, marked, "offboarding package issued");
        Ok(json_response(201, &json!({"package": package, "jti": claims.jti, "exp": claims.exp, "expires_at": rfc3339(claims.exp), "epoch": epoch, "offboarded": marked})))
    })
    .await
}

async fn installations(
    State(app): State<AppState>,
    Path(t): Path<String>,
) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, now| {
        tenant_region(tx, &t)?;
        let list = db::installations_of(tx, &t)?;
        let onboarded = list.iter().filter(|i| !i.offboarded && !i.revoked).count() as u64;
        let rows: Vec<Value> = list
            .iter()
            .map(|i| {
                let health = classify(Activity { onboarded: !i.offboarded, revoked: i.revoked, last_seen: i.last_seen, sensor_running: i.sensor_running }, now, INACTIVE_AFTER);
                let state = installation_state(i, now);
                json!({
                    "id": i.id,
                    "partner_id": i.partner_id,
                    "hostname": i.device.hostname,
                    "device_id": i.device.device_id,
                    "os": i.device.os,
                    "os_version": i.device.os_version,
                    "product": i.device.product,
                    "product_version": i.device.product_version,
                    "health": health.as_str(),
                    "last_seen": i.last_seen.map(rfc3339),
                    "last_seq": i.last_seq,
                    "missing_seq": i.missing_seq,
                    "reported_drops": i.reported_drops,
                    "offboarded": i.offboarded,
                    "revoked": i.revoked,
                    "state": state,
                    "credential_exp": rfc3339(i.credential_exp),
                    "possible_clone_of": i.possible_clone_of,
                    "sensor_running": i.sensor_running,
                    "downlevel": i.workspace_id.is_some(),
                    "epoch": i.epoch,
                })
            })
            .collect();
        Ok(json_response(200, &json!({"installations": rows, "coverage": Coverage::new(onboarded, list.len() as u64)})))
    })
    .await
}

/// The portal's state column: `revoked` (admin), `offboarded`, `expired`
/// (credential past `credential_exp`, token installations only), else `active`.
fn installation_state(i: &edrlink_core::service::Installation, now: i64) -> &'static str {
    if i.revoked {
        "revoked"
    } else if i.offboarded {
        "offboarded"
    } else if i.public_key.is_some() && now > i.credential_exp {
        "expired"
    } else {
        "active"
    }
}

/// Most installation ids one revoke request may name.
const MAX_REVOKE_IDS: usize = 1000;

/// Revokes (or reinstates) installations of a tenant; unknown ids refuse the
/// whole request (404) and change nothing.
async fn set_revoked(
    app: &AppState,
    t: String,
    ids: Vec<String>,
    revoked: bool,
) -> Result<Response, ApiError> {
    if ids.is_empty() || ids.len() > MAX_REVOKE_IDS {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            format!("installation_ids must name 1..{MAX_REVOKE_IDS} installations"),
        ));
    }
    // An id that cannot be an installation id is simply not one of the
    // tenant's installations: 404 like any other unknown id (the published
    // schema constrains the list, not the shape of each id).
    if ids
        .iter()
        .any(|id| valid_id("installation id", id).is_err())
    {
        return Err(ApiError::not_found(
            "installation_ids names something that is not an installation of this tenant",
        ));
    }
    with_tx(app, move |_, tx, _| {
        tenant_region(tx, &t)?;
        let missing = db::set_revoked(tx, &t, &ids, revoked)?;
        if let Some(id) = missing.first() {
            return Err(ApiError::not_found(format!(
                "installation {id} is not an installation of this tenant"
            )));
        }
        let action = if revoked { "revoked" } else { "reinstated" };
        tracing::info!(tenant = %t, count = ids.len(), action, "installations {action}");
        Ok(json_response(
            200,
            &json!({"tenant_id": t, "installation_ids": ids, "revoked": revoked}),
        ))
    })
    .await
}

async fn revoke_installations(
    State(app): State<AppState>,
    Path(t): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let b: RevokeRequest = json_body(req).await?;
    let ids = b.installation_ids.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Malformed,
            "body must be {\"installation_ids\": [...]}",
        )
    })?;
    set_revoked(&app, t, ids, true).await
}

async fn revoke_installation(
    State(app): State<AppState>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_revoked(&app, t, vec![id], true).await
}

async fn reinstate_installation(
    State(app): State<AppState>,
    Path((t, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    set_revoked(&app, t, vec![id], false).await
}

async fn alerts(State(app): State<AppState>, Path(t): Path<String>) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, _| {
        tenant_region(tx, &t)?;
        let rows: Vec<Value> = db::alerts_of(tx, &t)?
            .into_iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "installation_id": a.installation_id,
                    "title": a.alert.title,
                    "severity": a.alert.severity,
                    "threat_name": a.alert.threat_name,
                    "file_path": a.alert.file_path,
                    "sha256": a.alert.sha256,
                    "url": a.alert.url,
                    "test": a.alert.test,
                    "time": a.alert.time,
                })
            })
            .collect();
        Ok(json_response(200, &json!({"alerts": rows})))
    })
    .await
}

async fn stats(State(app): State<AppState>, Path(t): Path<String>) -> Result<Response, ApiError> {
    with_tx(&app, move |_, tx, _| {
        tenant_region(tx, &t)?;
        let (events, batches): (i64, i64) = tx.query_row("SELECT COALESCE(SUM(event_count), 0), COUNT(*) FROM batches WHERE tenant_id = ?1", [&t], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let alerts: i64 = tx.query_row("SELECT COUNT(*) FROM alerts WHERE tenant_id = ?1", [&t], |r| r.get(0))?;
        let installations: i64 = tx.query_row("SELECT COUNT(*) FROM installations WHERE tenant_id = ?1", [&t], |r| r.get(0))?;
        Ok(json_response(200, &json!({"events": events, "batches": batches, "alerts": alerts, "installations": installations})))
    })
    .await
}
