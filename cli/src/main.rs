//! `edrlink`: the partner-side agent commands over `edrlink_core::agent`, the
//! reference service (`edrlink service run`), and `edrlink demo`.
//!
//! Exit codes: 0 ok, 1 error, 2 usage, 3 flow blocked, 4 new token needed /
//! revoked, 5 token invalid or expired. Errors print as `error[code]: message`.

mod admin;
mod demo;
mod host;

use clap::{Parser, Subcommand};
use edrlink_core::agent::{Agent, AgentConfig};
use edrlink_core::client::ClientConfig;
use edrlink_core::encoding::rfc3339;
use edrlink_core::handshake::FlowState;
use edrlink_core::health::HealthReport;
use edrlink_core::token::{self, TokenStatus};
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_core::{Error, ErrorCode};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exit codes (documented in cli/README.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other error.
    pub const ERROR: u8 = 1;
    /// Usage error (clap).
    pub const USAGE: u8 = 2;
    /// Inbound flow blocked (integration turned off).
    pub const BLOCKED: u8 = 3;
    /// A new access token is needed (revoked, offboarded, epoch changed).
    pub const NEW_TOKEN: u8 = 4;
    /// The token is invalid, expired or refused.
    pub const TOKEN: u8 = 5;
}

#[derive(Parser)]
#[command(name = "edrlink", version, about = "edrlink partner agent, reference service and demo", after_help = EXIT_HELP)]
struct Cli {
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

const EXIT_HELP: &str = "Exit codes: 0 ok, 1 error, 2 usage, 3 flow blocked, 4 new token needed/revoked, 5 token invalid/expired";

#[derive(clap::Args, Clone)]
struct AgentArgs {
    /// Where the credential is kept.
    #[arg(long, env = "EDRLINK_DATA_DIR", default_value = "./edrlink-data")]
    data_dir: PathBuf,
    /// Use this partner API base URL instead of the one in the token/credential.
    #[arg(long)]
    service_url: Option<String>,
    /// Extra trusted CA certificate (PEM file; repeatable), e.g. a TLS-inspection CA.
    #[arg(long = "ca-file")]
    ca_files: Vec<PathBuf>,
    /// HTTP(S)/SOCKS proxy URL (default: HTTPS_PROXY/ALL_PROXY/NO_PROXY).
    #[arg(long)]
    proxy: Option<String>,
    /// Seconds to keep trying before giving up (what is not delivered stays queued).
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the reference service.
    Service {
        #[command(subcommand)]
        cmd: ServiceCmd,
    },
    /// Access tokens.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Onboard this host: redeem an access token (or apply a down-level onboarding package).
    Enroll {
        /// The access token generated in the portal.
        #[arg(
            long,
            conflicts_with = "onboarding_package",
            required_unless_present = "onboarding_package"
        )]
        token: Option<String>,
        /// A down-level onboarding package (JSON file).
        #[arg(long)]
        onboarding_package: Option<PathBuf>,
        #[command(flatten)]
        device: host::DeviceArgs,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Show this agent's health (asks the service for a flow decision unless --offline).
    Health {
        /// Do not contact the service.
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Send events from a JSON Lines file (one event per line; `-` = stdin).
    Send {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Deliver what is waiting in the spool (events earlier runs could not deliver).
    Flush {
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Send the EICAR test detection (raises an "EICAR test file" alert).
    TestAlert {
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Offboard: opt out (tell the service), or apply an admin-issued offboarding package.
    Offboard {
        /// The offboarding package (file).
        #[arg(long)]
        package: Option<PathBuf>,
        #[command(flatten)]
        agent: AgentArgs,
    },
    /// Walk the whole onboarding story against an embedded service.
    Demo {
        /// Keep the temporary directory (database, agents' data).
        #[arg(long)]
        keep: bool,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Start the service; prints `listening on URL` when ready. Admin key: $EDRLINK_ADMIN_KEY (generated if unset).
    Run {
        /// SQLite database file.
        #[arg(long, default_value = "edrlink-service.db")]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Region this service serves.
        #[arg(long, default_value = "eu")]
        region: String,
        /// Public partner-API base URL put in tokens (default: http://<listen addr>).
        #[arg(long)]
        public_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Decode a token for display (no signature check; `-` reads stdin).
    Inspect {
        /// The token.
        token: String,
    },
}

/// An error with its exit code.
struct Failure {
    err: Error,
    exit: u8,
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure {
            exit: exit_code(err.code()),
            err,
        }
    }
}

fn fail(code: ErrorCode, msg: impl Into<String>) -> Failure {
    Error::new(code, msg).into()
}

/// The documented mapping from error codes to exit codes.
fn exit_code(code: ErrorCode) -> u8 {
    use ErrorCode as C;
    match code {
        C::FlowBlocked | C::IntegrationDisabled => exit::BLOCKED,
        C::Revoked
        | C::Offboarded
        | C::NeedsReenroll
        | C::EpochMismatch
        | C::CredentialExpired
        | C::TokenRevoked
        | C::TokenExhausted => exit::NEW_TOKEN,
        C::TokenExpired | C::TokenNotYetValid | C::WrongRegion => exit::TOKEN,
        _ => exit::ERROR,
    }
}

/// Errors about the token text itself are "token invalid" (5).
fn token_failure(err: Error) -> Failure {
    let exit = match err.code() {
        ErrorCode::Malformed
        | ErrorCode::WrongType
        | ErrorCode::UnsupportedAlgorithm
        | ErrorCode::BadSignature
        | ErrorCode::UnknownKey => exit::TOKEN,
        c => exit_code(c),
    };
    Failure { err, exit }
}

type Out = Result<u8, Failure>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let json = cli.json;
    let r = match cli.cmd {
        Cmd::Service {
            cmd:
                ServiceCmd::Run {
                    db,
                    listen,
                    region,
                    public_url,
                },
        } => service_run(db, listen, region, public_url),
        Cmd::Token {
            cmd: TokenCmd::Inspect { token },
        } => token_inspect(&token, json),
        Cmd::Enroll {
            token,
            onboarding_package,
            device,
            agent,
        } => enroll(token, onboarding_package, &device, &agent, json),
        Cmd::Health { offline, agent } => health(offline, &agent, json),
        Cmd::Send { file, agent } => send(&file, &agent, json),
        Cmd::Flush { agent } => flush(&agent, json),
        Cmd::TestAlert { agent } => test_alert(&agent, json),
        Cmd::Offboard { package, agent } => offboard(package, &agent, json),
        Cmd::Demo { keep } => demo::run(keep, json),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error[{}]: {}", f.err.code(), f.err.message());
            if json {
                println!(
                    "{}",
                    json!({"error": {"code": f.err.code().as_str(), "number": f.err.code().as_u32(), "message": f.err.message()}})
                );
            }
            ExitCode::from(f.exit)
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// "2h 5m", "3d 4h", "45s".
pub fn human_duration(secs: i64) -> String {
    let s = secs.abs();
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {sec}s")
    } else {
        format!("{sec}s")
    }
}

fn print_facts(rows: &[(&str, String)]) {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$} : {v}");
    }
}

// ---- service run -------------------------------------------------------------

fn service_run(
    db: PathBuf,
    listen: std::net::SocketAddr,
    region: String,
    public_url: Option<String>,
) -> Out {
    let admin_key = std::env::var("EDRLINK_ADMIN_KEY").unwrap_or_default();
    let generated = admin_key.is_empty();
    let settings = edrlink_service::Settings {
        db_path: Some(db),
        listen,
        admin_key,
        region,
        public_url,
        ..edrlink_service::Settings::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(ErrorCode::Internal, format!("starting the runtime: {e}")))?;
    let r = rt.block_on(async move {
        let shutdown = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        };
        edrlink_service::serve(
            settings,
            |url, key| {
                if generated {
                    eprintln!("generated admin key (set EDRLINK_ADMIN_KEY to choose one): {key}");
                }
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "listening on {url}");
                let _ = out.flush();
            },
            shutdown,
        )
        .await
    });
    r.map(|_| exit::OK)
        .map_err(|e| fail(ErrorCode::Internal, format!("{e:#}")))
}

// ---- token inspect -------------------------------------------------------------

fn read_arg_or_stdin(v: &str) -> Result<String, Failure> {
    if v == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| fail(ErrorCode::InvalidArgument, format!("reading stdin: {e}")))?;
        Ok(s.trim().to_owned())
    } else {
        Ok(v.trim().to_owned())
    }
}

fn status_name(s: TokenStatus) -> &'static str {
    match s {
        TokenStatus::NotYetValid => "not yet valid",
        TokenStatus::Valid => "valid",
        TokenStatus::ExpiresSoon => "expires soon",
        TokenStatus::Expired => "expired",
    }
}

fn token_inspect(text: &str, json: bool) -> Out {
    let text = read_arg_or_stdin(text)?;
    let insp = token::inspect_at(&text, now()).map_err(token_failure)?;
    let c = &insp.claims;
    let (status, left) = (insp.status, insp.seconds_left);
    if json {
        let v = &insp;
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        let expiry = if left > 0 {
            format!("{} (in {})", rfc3339(c.exp), human_duration(left))
        } else {
            format!("{} ({} ago)", rfc3339(c.exp), human_duration(left))
        };
        print_facts(&[
            ("issuer", c.iss.clone()),
            ("partner", c.partner_id.clone()),
            ("tenant", c.tenant_id.clone()),
            ("region", c.region.clone()),
            ("service URL", c.service_url.clone()),
            ("epoch", c.epoch.to_string()),
            ("token id", c.jti.clone()),
            ("max uses", c.max_uses.to_string()),
            ("issued", rfc3339(c.iat)),
            ("expires", expiry),
            ("status", status_name(status).into()),
            ("note", "not verified: decoded without checking the signature; the service decides at redemption".into()),
        ]);
    }
    Ok(match status {
        TokenStatus::Valid | TokenStatus::ExpiresSoon => exit::OK,
        TokenStatus::Expired | TokenStatus::NotYetValid => exit::TOKEN,
    })
}

// ---- agent commands ------------------------------------------------------------------

fn transport(a: &AgentArgs) -> Result<HttpTransport, Failure> {
    let mut extra = Vec::new();
    for f in &a.ca_files {
        extra.push(std::fs::read_to_string(f).map_err(|e| {
            fail(
                ErrorCode::InvalidArgument,
                format!("reading {}: {e}", f.display()),
            )
        })?);
    }
    let opts = HttpOptions {
        extra_ca_pem: extra,
        proxy: a.proxy.clone(),
        ..HttpOptions::default()
    };
    Ok(HttpTransport::new(opts)?)
}

fn open_agent(a: &AgentArgs, device: &host::DeviceArgs) -> Result<Agent, Failure> {
    let mut client = ClientConfig::new(device.facts(&a.data_dir));
    client.service_url = a.service_url.clone();
    let mut agent = Agent::new(
        AgentConfig {
            client,
            data_dir: Some(a.data_dir.clone()),
        },
        transport(a)?,
    )?;
    agent.set_op_timeout(Duration::from_secs(a.timeout.max(1)));
    Ok(agent)
}

fn onboarded_agent(a: &AgentArgs) -> Result<Agent, Failure> {
    let agent = open_agent(a, &host::DeviceArgs::default())?;
    if agent.credential().is_none() {
        return Err(Failure {
            err: Error::new(
                ErrorCode::InvalidState,
                format!(
                    "not enrolled (no credential in {}): run `edrlink enroll --token <TOKEN>`",
                    a.data_dir.display()
                ),
            ),
            exit: exit::NEW_TOKEN,
        });
    }
    Ok(agent)
}

fn flow_name(f: Option<FlowState>) -> &'static str {
    match f {
        Some(FlowState::Open) => "open",
        Some(FlowState::Blocked) => "blocked",
        Some(FlowState::Revoked) => "revoked",
        None => "unknown",
    }
}

/// Why the endpoint needs a new token, from the last error's code, in the
/// words an operator acts on (`None` when no new token is needed).
pub(crate) fn revocation_reason(h: &HealthReport) -> Option<&'static str> {
    if !(h.needs_new_token || h.flow == Some(FlowState::Revoked)) {
        return None;
    }
    let code = h.last_error.as_ref()?.code.as_str();
    Some(match code {
        "revoked" => "revoked by the admin",
        "offboarded" => "offboarded",
        "credential_expired" => "credential expired (not rotated in time)",
        "epoch_mismatch" => "old epoch (the integration was turned off since)",
        "needs_reenroll" => "repeated authentication failures",
        _ => return None,
    })
}

/// The flow line: a revoked flow names its reason.
pub(crate) fn flow_line(h: &HealthReport) -> String {
    match revocation_reason(h) {
        Some(r) if h.flow == Some(FlowState::Revoked) => format!("revoked ({r})"),
        _ => flow_name(h.flow).into(),
    }
}

fn when(t: Option<i64>) -> String {
    match t {
        Some(t) => format!("{} ({} ago)", rfc3339(t), human_duration(now() - t)),
        None => "never".into(),
    }
}

fn print_health(h: &HealthReport, data_dir: &Path, json: bool) {
    if json {
        let mut v = serde_json::to_value(h).unwrap_or_default();
        v["licensed"] = json!(h.onboarded);
        v["revocation_reason"] = json!(revocation_reason(h));
        v["data_dir"] = json!(data_dir.display().to_string());
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    let drops: u64 = h.drops.values().sum();
    print_facts(&[
        ("healthy", h.healthy.to_string()),
        ("licensed", h.onboarded.to_string()),
        ("flow", flow_line(h)),
        (
            "installation",
            h.installation_id.clone().unwrap_or_else(|| "none".into()),
        ),
        (
            "new token needed",
            match revocation_reason(h) {
                Some(r) if h.needs_new_token => format!("true ({r})"),
                _ => h.needs_new_token.to_string(),
            },
        ),
        ("last handshake", when(h.last_handshake)),
        ("last send", when(h.last_send)),
        (
            "queued",
            format!("{} events ({} bytes)", h.queued_events, h.queued_bytes),
        ),
        ("sent", format!("{} events", h.sent_events)),
        ("dropped", drops.to_string()),
        ("clock offset", format!("{}s", h.clock_offset)),
        (
            "last error",
            h.last_error
                .as_ref()
                .map_or_else(|| "none".into(), |e| e.to_string()),
        ),
        ("data dir", data_dir.display().to_string()),
    ]);
}

/// The exit code a health state deserves.
fn health_exit(h: &HealthReport) -> u8 {
    match h.flow {
        _ if h.healthy => exit::OK,
        _ if !h.onboarded || h.needs_new_token || h.flow == Some(FlowState::Revoked) => {
            exit::NEW_TOKEN
        }
        Some(FlowState::Blocked) => exit::BLOCKED,
        _ => exit::ERROR,
    }
}

fn enroll(
    token: Option<String>,
    package: Option<PathBuf>,
    device: &host::DeviceArgs,
    a: &AgentArgs,
    json: bool,
) -> Out {
    let agent = open_agent(a, device)?;
    let h = match (token, package) {
        (Some(t), _) => {
            let t = read_arg_or_stdin(&t)?;
            token::inspect(&t).map_err(token_failure)?;
            agent.enroll(&t)?
        }
        (None, Some(p)) => {
            let text = std::fs::read_to_string(&p).map_err(|e| {
                fail(
                    ErrorCode::InvalidArgument,
                    format!("reading {}: {e}", p.display()),
                )
            })?;
            agent.enroll_with_package(&text)?
        }
        (None, None) => {
            return Err(fail(
                ErrorCode::InvalidArgument,
                "give --token or --onboarding-package",
            ))
        }
    };
    if !json {
        println!(
            "enrolled: installation {} (flow {})",
            h.installation_id.as_deref().unwrap_or("?"),
            flow_name(h.flow)
        );
    }
    print_health(&h, &a.data_dir, json);
    Ok(health_exit(&h))
}

fn health(offline: bool, a: &AgentArgs, json: bool) -> Out {
    let agent = open_agent(a, &host::DeviceArgs::default())?;
    if !offline && agent.credential().is_some() {
        // A failed handshake shows up in the report (last error), not as a failure.
        let _ = agent.handshake();
    }
    let h = agent.health();
    print_health(&h, &a.data_dir, json);
    Ok(health_exit(&h))
}

fn send(file: &Path, a: &AgentArgs, json: bool) -> Out {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| {
        fail(
            ErrorCode::InvalidArgument,
            format!("reading {}: {e}", file.display()),
        )
    })?;
    let agent = onboarded_agent(a)?;
    let (mut accepted, mut bad) = (0u64, Vec::new());
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match agent.submit_json(line) {
            Ok(()) => accepted += 1,
            Err(e) => {
                eprintln!("line {}: error[{}]: {}", i + 1, e.code(), e.message());
                bad.push(json!({"line": i + 1, "code": e.code().as_str(), "message": e.message()}));
            }
        }
    }
    deliver(&agent, a, json, Some((accepted, bad)))
}

/// Flushes and reports; undelivered events stay in the spool for the next run.
fn deliver(
    agent: &Agent,
    a: &AgentArgs,
    json: bool,
    submitted: Option<(u64, Vec<serde_json::Value>)>,
) -> Out {
    let r = agent.flush(a.timeout);
    let h = agent.health();
    let delivered = r.as_ref().map_or(0, |o| o.delivered);
    let queued = h.queued_events;
    let bad = submitted.as_ref().map_or(0, |(_, b)| b.len());
    if json {
        let mut v = json!({"delivered": delivered, "queued": queued, "error": r.as_ref().err().map(|e| json!({"code": e.code().as_str(), "message": e.message()}))});
        if let Some((accepted, lines)) = &submitted {
            v["accepted"] = json!(accepted);
            v["bad_lines"] = json!(lines);
        }
        println!("{v}");
    } else {
        if let Some((accepted, _)) = &submitted {
            print!("accepted {accepted} events, {bad} bad lines; ");
        }
        println!("delivered {delivered}, queued {queued}");
        if queued > 0 {
            println!("the {queued} queued events are kept in {} and sent by the next `edrlink flush`/`send`", a.data_dir.join("spool").display());
        }
    }
    let _ = r?;
    if queued > 0 {
        return Err(fail(
            ErrorCode::Transport,
            format!(
                "{queued} events not delivered within {}s: {}",
                a.timeout,
                h.last_error.map(|e| e.to_string()).unwrap_or_default()
            ),
        ));
    }
    Ok(if bad == 0 { exit::OK } else { exit::ERROR })
}

fn flush(a: &AgentArgs, json: bool) -> Out {
    let agent = onboarded_agent(a)?;
    deliver(&agent, a, json, None)
}

fn test_alert(a: &AgentArgs, json: bool) -> Out {
    let agent = onboarded_agent(a)?;
    agent.send_test_detection()?;
    let o = agent.flush(a.timeout)?;
    if json {
        println!(
            "{}",
            json!({"delivered": o.delivered, "queued": o.queued, "threat_name": edrlink_core::eicar::EICAR_THREAT_NAME, "alert_title": edrlink_core::eicar::EICAR_ALERT_TITLE})
        );
    } else if o.queued == 0 {
        println!(
            "EICAR test detection delivered: the portal shows an \"{}\" alert (Informational)",
            edrlink_core::eicar::EICAR_ALERT_TITLE
        );
    }
    if o.queued > 0 {
        return Err(fail(
            ErrorCode::Transport,
            format!(
                "the test detection is still queued after {}s: {}",
                a.timeout,
                agent
                    .health()
                    .last_error
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(exit::OK)
}

fn offboard(package: Option<PathBuf>, a: &AgentArgs, json: bool) -> Out {
    let agent = onboarded_agent(a)?;
    let inst = agent.health().installation_id.unwrap_or_default();
    match &package {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                fail(
                    ErrorCode::InvalidArgument,
                    format!("reading {}: {e}", p.display()),
                )
            })?;
            let text = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("package").and_then(|p| p.as_str()).map(str::to_owned))
                .unwrap_or_else(|| text.trim().to_owned());
            agent.offboard(Some(&text))?
        }
        None => agent.offboard(None)?,
    }
    if json {
        println!(
            "{}",
            json!({"offboarded": inst, "via": if package.is_some() { "package" } else { "opt-out" }})
        );
    } else {
        println!(
            "offboarded installation {inst}; the credential in {} was deleted",
            a.data_dir.display()
        );
    }
    Ok(exit::OK)
}
