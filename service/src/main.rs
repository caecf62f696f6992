//! `edrlink-service --db PATH --listen ADDR [--region R] [--public-url URL]`
//!
//! Admin key from `EDRLINK_ADMIN_KEY` (generated and printed to stderr when
//! unset). `EDRLINK_TEST_FAULTS=1` mounts the test-fault admin routes (test
//! suites only; docs/ADMIN-API.md). Prints exactly one line `listening on http://HOST:PORT` to stdout
//! once ready; logs go to stderr (filter with `RUST_LOG`).

use std::io::Write as _;
use std::path::PathBuf;

fn usage() -> ! {
    eprintln!("usage: edrlink-service [--db PATH | --memory] [--listen ADDR] [--region REGION] [--public-url URL] [--issuer ID]\n  env: EDRLINK_ADMIN_KEY (admin API key), RUST_LOG (log filter),\n       EDRLINK_TEST_FAULTS=1 (test faults for test suites; never in production)");
    std::process::exit(2);
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut s = edrlink_service::Settings {
        db_path: Some(PathBuf::from("edrlink-service.db")),
        ..Default::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--db" => s.db_path = Some(PathBuf::from(val())),
            "--memory" => s.db_path = None,
            "--listen" => s.listen = val().parse().unwrap_or_else(|_| usage()),
            "--region" => s.region = val(),
            "--public-url" => s.public_url = Some(val()),
            "--issuer" => s.issuer = val(),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    s.admin_key = std::env::var("EDRLINK_ADMIN_KEY").unwrap_or_default();
    s.test_faults = std::env::var("EDRLINK_TEST_FAULTS").is_ok_and(|v| v == "1");
    let generated = s.admin_key.is_empty();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Register the signal handlers before announcing readiness, so a
        // SIGTERM right after the "listening" line is a graceful stop.
        let shutdown = shutdown_signal()?;
        edrlink_service::serve(
            s,
            |url, admin_key| {
                if generated {
                    eprintln!(
                        "generated admin key (set EDRLINK_ADMIN_KEY to choose one): {admin_key}"
                    );
                }
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "listening on {url}");
                let _ = out.flush();
            },
            shutdown,
        )
        .await
    })
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
    })
}
