//! # edrlink-service
//!
//! The reference cloud side of edrlink: an HTTP service (tokio + axum) with
//! - the **partner API** (`/v1/*`), where every protocol decision is made by
//!   [`edrlink_core::service::ServiceRole`]: ingest envelopes are parsed and
//!   verified outside the writer (`prepare_ingest`), and one writer thread
//!   commits queued requests in groups, each request in its own savepoint, one
//!   transaction per group (see [`pipeline`]); a batch acknowledged with 200 is
//!   committed with `synchronous=FULL` before the answer leaves; unauthenticated
//!   routes are limited per client address ([`limits`]);
//! - the **admin/portal API** (`/admin/*`, bearer admin key) and a small
//!   portal page at `/`;
//! - `/openapi.json` and `/healthz`.
//!
//! ```no_run
//! let svc = edrlink_service::RunningService::start(edrlink_service::Settings {
//!     db_path: Some("edrlink.db".into()),
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     admin_key: "an-admin-key-of-at-least-32-characters".into(),
//!     ..edrlink_service::Settings::default()
//! }).unwrap();
//! println!("{}", svc.url());
//! svc.shutdown();
//! ```
#![warn(missing_docs)]

mod api;
mod body;
pub mod db;
mod faults;
pub mod limits;
mod openapi;
pub mod pipeline;
mod schema;

use anyhow::Context as _;
use edrlink_core::keys::{RandomSource, SigningKey, SystemRandom};
use edrlink_core::policy::Policy;
use edrlink_core::service::{RateLimit, ServiceConfig, ServiceRole};
use ring::hmac;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zeroize::Zeroizing;

pub use api::{route_table, OPENAPI_JSON, PORTAL_HTML};
pub use limits::FloodLimits;
pub use pipeline::Pipeline;

/// Current Unix time in seconds (wall clock).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The service's clock: wall time plus an adjustable offset. Tests share a
/// `Clock` with the service and [`advance`](Clock::advance) it to reach
/// expiry without sleeping; production leaves the offset at zero.
#[derive(Clone, Default, Debug)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        unix_now() + self.0.load(Ordering::Relaxed)
    }

    /// Moves the clock forward (or back, with a negative value).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

/// Service settings.
#[derive(Clone)]
pub struct Settings {
    /// SQLite file; `None` = a private in-memory database (unit tests).
    pub db_path: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Admin API key, at least [`MIN_ADMIN_KEY_LEN`] characters; empty =
    /// generate a random one (see [`RunningService::admin_key`]).
    pub admin_key: String,
    /// The region this service serves (tokens for other regions get `wrong_region`).
    pub region: String,
    /// Issuer id put in tokens.
    pub issuer: String,
    /// Public base URL of the partner API put in tokens; `None` = `http://<bound addr>`.
    pub public_url: Option<String>,
    /// Seed of the service signing key; `None` = the one stored in the database
    /// (generated and stored on first start).
    pub signing_key_seed: Option<[u8; 32]>,
    /// Per-installation rate limit.
    pub rate_limit: RateLimit,
    /// Policy handed out to endpoints.
    pub policy: Policy,
    /// Flow session lifetime (seconds).
    pub session_lifetime: i64,
    /// Per-request timeout (answers 408 when exceeded).
    pub request_timeout: Duration,
    /// The clock (tests may advance it).
    pub clock: Clock,
    /// Per-address and per-route limits of the unauthenticated partner routes.
    pub flood: FloodLimits,
    /// Group commit and verification tuning.
    pub pipeline: Pipeline,
    /// Mounts `POST`/`DELETE /admin/test/faults` (refusals and lost answers
    /// on partner routes, for the shared scenarios; docs/ADMIN-API.md "Test
    /// faults"). The binary sets it from `EDRLINK_TEST_FAULTS=1`. Never in
    /// production: an admin could make the service lose answers.
    pub test_faults: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            db_path: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_key: String::new(),
            region: "eu".into(),
            issuer: "edrlink-reference".into(),
            public_url: None,
            signing_key_seed: None,
            rate_limit: RateLimit::default(),
            policy: Policy::default(),
            session_lifetime: edrlink_core::handshake::SESSION_LIFETIME,
            request_timeout: Duration::from_secs(30),
            clock: Clock::default(),
            flood: FloodLimits::default(),
            pipeline: Pipeline::default(),
            test_faults: false,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("db_path", &self.db_path)
            .field("listen", &self.listen)
            .field("admin_key", &"<redacted>")
            .field("region", &self.region)
            .field("issuer", &self.issuer)
            .field("public_url", &self.public_url)
            .field(
                "signing_key_seed",
                &self.signing_key_seed.map(|_| "<redacted>"),
            )
            .field("rate_limit", &self.rate_limit)
            .field("policy", &self.policy)
            .field("session_lifetime", &self.session_lifetime)
            .field("flood", &self.flood)
            .field("pipeline", &self.pipeline)
            .field("test_faults", &self.test_faults)
            .finish()
    }
}

/// Shortest admin key the service starts with: a short key could be guessed
/// within the failed-attempt throttle's budget.
pub const MIN_ADMIN_KEY_LEN: usize = 32;

/// Shared state of a running service.
pub(crate) struct App {
    pub(crate) role: Arc<ServiceRole>,
    /// The write connection: the writer's between groups, admin transactions' otherwise.
    pub(crate) db: Arc<Mutex<rusqlite::Connection>>,
    /// Commits partner requests in groups.
    pub(crate) writer: pipeline::Writer,
    /// Read-only lookups for the verification phase.
    pub(crate) readers: pipeline::Readers,
    /// Flood limits of the unauthenticated routes.
    pub(crate) limits: limits::Limiter,
    /// Bounds the ingest envelopes verified at once.
    pub(crate) verifiers: tokio::sync::Semaphore,
    admin_mac: hmac::Key,
    admin_tag: hmac::Tag,
    pub(crate) admin_throttle: api::AdminThrottle,
    pub(crate) region: String,
    pub(crate) clock: Clock,
    pub(crate) timeout: Duration,
    /// Armed test faults (`Some` only with [`Settings::test_faults`]).
    pub(crate) faults: Option<faults::Faults>,
}

impl App {
    /// Constant-time admin key check (compares HMACs under a per-process key).
    pub(crate) fn admin_ok(&self, presented: &[u8]) -> bool {
        hmac::verify(&self.admin_mac, presented, self.admin_tag.as_ref()).is_ok()
    }
}

/// What [`prepare`] builds before serving.
struct Prepared {
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    url: String,
    admin_key: Zeroizing<String>,
}

async fn prepare(settings: Settings) -> anyhow::Result<Prepared> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let url = settings
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("http://{addr}"));
    let rng = SystemRandom;
    let mut conn = db::open(settings.db_path.as_deref()).context("opening the database")?;
    let seeds = db::signing_seeds(
        &mut conn,
        settings.signing_key_seed,
        || {
            let mut s = Zeroizing::new([0u8; 32]);
            rng.fill(&mut s[..]).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(s)
        },
        2,
    )?;
    let keys = seeds
        .iter()
        .map(|s| SigningKey::from_seed(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if !settings.admin_key.is_empty() && settings.admin_key.chars().count() < MIN_ADMIN_KEY_LEN {
        anyhow::bail!(
            "the admin key is shorter than {MIN_ADMIN_KEY_LEN} characters: choose a longer one, or leave it unset to have one generated"
        );
    }
    let admin_key = if settings.admin_key.is_empty() {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill(&mut b[..]).map_err(|e| anyhow::anyhow!("{e}"))?;
        Zeroizing::new(edrlink_core::encoding::b64url(&b[..]))
    } else {
        Zeroizing::new(settings.admin_key.clone())
    };
    let mut mac_key = Zeroizing::new([0u8; 32]);
    rng.fill(&mut mac_key[..])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let admin_mac = hmac::Key::new(hmac::HMAC_SHA256, &mac_key[..]);
    let admin_tag = hmac::sign(&admin_mac, admin_key.as_bytes());
    let role = ServiceRole::new(
        ServiceConfig {
            issuer: settings.issuer.clone(),
            region: settings.region.clone(),
            service_url: url.clone(),
            keys,
            policy: settings.policy.clone(),
            rate_limit: settings.rate_limit,
            session_lifetime: settings.session_lifetime,
        },
        Box::new(SystemRandom),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if settings.test_faults {
        tracing::warn!(
            "test faults are on (EDRLINK_TEST_FAULTS): never use this service in production"
        );
    }
    tracing::info!(kid = %role.keyset().keys.first().and_then(|k| k.kid.clone()).unwrap_or_default(), region = %settings.region, "service signing key loaded");
    let role = Arc::new(role);
    let db = Arc::new(Mutex::new(conn));
    let writer = pipeline::Writer::start(
        db.clone(),
        role.clone(),
        settings.clock.clone(),
        settings.pipeline,
    )
    .context("starting the writer")?;
    let app = Arc::new(App {
        role,
        readers: pipeline::Readers::new(settings.db_path.clone(), db.clone()),
        db,
        writer,
        limits: limits::Limiter::new(settings.flood),
        verifiers: tokio::sync::Semaphore::new(settings.pipeline.verifiers.max(1)),
        admin_mac,
        admin_tag,
        admin_throttle: api::AdminThrottle::default(),
        region: settings.region.clone(),
        clock: settings.clock.clone(),
        timeout: settings.request_timeout,
        faults: settings.test_faults.then(faults::Faults::default),
    });
    Ok(Prepared {
        app,
        listener,
        addr,
        url,
        admin_key,
    })
}

async fn run(
    p: Prepared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cleanup_app = p.app.clone();
    let cleaner = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let app = cleanup_app.clone();
            let _ = tokio::task::spawn_blocking(move || {
                let conn = app.db.lock().unwrap_or_else(|e| e.into_inner());
                match db::cleanup(&conn, app.clock.now()) {
                    Ok(n) if n > 0 => {
                        tracing::debug!(removed = n, "expired nonces/sessions removed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cleanup failed"),
                }
            })
            .await;
        }
    });
    let router = api::router(p.app.clone());
    let r = axum::serve(
        p.listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    cleaner.abort();
    // Answer what is queued, then stop the writer (every answer already sent
    // was committed first).
    let app = p.app.clone();
    let _ = tokio::task::spawn_blocking(move || app.writer.close()).await;
    tracing::info!("service stopped");
    r.context("serving")
}

/// Runs the service until `shutdown` resolves (the binary uses Ctrl-C/SIGTERM).
/// `on_ready` is called once listening, with `http://<bound addr>` and the admin key.
pub async fn serve(
    settings: Settings,
    on_ready: impl FnOnce(&str, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let p = prepare(settings).await?;
    tracing::info!(addr = %p.addr, "listening");
    on_ready(&format!("http://{}", p.addr), &p.admin_key);
    run(p, shutdown).await
}

/// A service running on its own tokio runtime thread.
pub struct RunningService {
    url: String,
    addr: SocketAddr,
    admin_key: Zeroizing<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl RunningService {
    /// Starts the service; returns once it is listening.
    pub fn start(settings: Settings) -> anyhow::Result<RunningService> {
        let (ready_tx, ready_rx) =
            std::sync::mpsc::channel::<anyhow::Result<(String, SocketAddr, Zeroizing<String>)>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("edrlink-service".into())
            .spawn(move || -> anyhow::Result<()> {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("edrlink-service-rt")
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let p = match prepare(settings).await {
                        Ok(p) => p,
                        Err(e) => {
                            let msg = format!("{e:#}");
                            let _ = ready_tx.send(Err(e));
                            anyhow::bail!(msg);
                        }
                    };
                    let _ = ready_tx.send(Ok((p.url.clone(), p.addr, p.admin_key.clone())));
                    run(p, async {
                        let _ = stop_rx.await;
                    })
                    .await
                })
            })?;
        match ready_rx.recv() {
            Ok(Ok((url, addr, admin_key))) => Ok(RunningService {
                url,
                addr,
                admin_key,
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let r = thread.join();
                Err(anyhow::anyhow!(
                    "service thread ended before listening: {:?}",
                    r.map(|r| r.err().map(|e| e.to_string()))
                ))
            }
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:PORT` (also the `service_url` in tokens unless `public_url` is set).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin key (the generated one when the settings left it empty).
    pub fn admin_key(&self) -> &str {
        &self.admin_key
    }

    /// Graceful shutdown: stops accepting, finishes in-flight requests, closes the database.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Err(e)) => tracing::warn!(error = %e, "service ended with an error"),
                Err(_) => tracing::error!("service thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.stop_now();
    }
}
