//! Load benchmark (not a test): N simulated endpoints (one thread each) enroll
//! over loopback HTTP, then each sends E DSSE-signed envelopes of K events to
//! the reference service backed by SQLite (WAL, synchronous=FULL). Reports
//! envelopes/s, events/s, latency percentiles, and checks stored == sent.
//!
//! ```text
//! cargo run --release -p edrlink-service --example load -- --endpoints 200 --envelopes 50 --events 100
//! ```
//! Options: `--endpoints N --envelopes E --events K --gzip --db PATH`
//! (default: a temporary file, deleted afterwards).
//!
//! Each endpoint seals its E envelopes before the clock starts (real endpoints
//! sign on their own machines; here they would share the service's cores).
//! `--sign-inline` seals each one just before it is sent instead, as a
//! partner agent does, with the clients' signing on the same cores.
//!
//! Flood (issue: legitimate ingest while junk hits the service):
//! `--flood` adds, for the whole ingest phase, `--flood-redeems R` (default 4)
//! threads posting junk redeems (well-formed JWS, signed, with a bogus token)
//! and `--flood-envelopes J` (default 2) threads posting 4.9 MiB junk
//! envelopes (valid DSSE JSON, unknown key), back to back, ignoring
//! `Retry-After`, from `--flood-from ADDR` (default 127.0.0.2, another
//! loopback address than the endpoints'). `--no-flood-limits` turns the
//! service's per-address limits off (shows what the pipeline alone does).

use edrlink_core::dsse;
use edrlink_core::encoding::rfc3339;
use edrlink_core::handshake::{self, FlowState, Hello, SensorState};
use edrlink_core::jws;
use edrlink_core::keys::{random_id, SigningKey, SystemRandom};
use edrlink_core::redeem::{self, DeviceFacts, RequestClaims};
use edrlink_core::service::RateLimit;
use edrlink_core::telemetry::{self, Batch, Event, GenericEvent};
use edrlink_service::{FloodLimits, RunningService, Settings};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Args {
    endpoints: usize,
    envelopes: usize,
    events: usize,
    gzip: bool,
    db: Option<std::path::PathBuf>,
    flood: bool,
    flood_redeems: usize,
    flood_envelopes: usize,
    flood_from: std::net::IpAddr,
    flood_limits: bool,
    sign_inline: bool,
}

fn args() -> Args {
    let mut a = Args {
        endpoints: 200,
        envelopes: 50,
        events: 100,
        gzip: false,
        db: None,
        flood: false,
        flood_redeems: 4,
        flood_envelopes: 2,
        flood_from: [127, 0, 0, 2].into(),
        flood_limits: true,
        sign_inline: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("option needs a value");
        match k.as_str() {
            "--endpoints" => a.endpoints = v().parse().expect("number"),
            "--envelopes" => a.envelopes = v().parse().expect("number"),
            "--events" => a.events = v().parse().expect("number"),
            "--gzip" => a.gzip = true,
            "--db" => a.db = Some(v().into()),
            "--flood" => a.flood = true,
            "--flood-redeems" => a.flood_redeems = v().parse().expect("number"),
            "--flood-envelopes" => a.flood_envelopes = v().parse().expect("number"),
            "--flood-from" => a.flood_from = v().parse().expect("address"),
            "--no-flood-limits" => a.flood_limits = false,
            "--sign-inline" => a.sign_inline = true,
            "--bench" => {} // passed by `cargo bench`-style runners; ignored
            other => panic!("unknown option {other}"),
        }
    }
    a
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Not `timeout_global`: with it, ureq resolves every request's host
        // on a thread of its own (a thread spawned per request).
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, ct: &str, body: Vec<u8>) -> (u16, Vec<u8>, Option<u64>) {
    let mut r = agent
        .post(url)
        .header("content-type", ct)
        .send(&body[..])
        .expect("HTTP");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (
        r.status().as_u16(),
        r.body_mut().read_to_vec().expect("body"),
        retry,
    )
}

fn admin(
    agent: &ureq::Agent,
    base: &str,
    key: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Value {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .unwrap();
    let mut r = agent.run(req).expect("HTTP");
    let text = r.body_mut().read_to_string().unwrap();
    assert!(
        r.status().is_success(),
        "{method} {path}: {} {text}",
        r.status()
    );
    serde_json::from_str(&text).unwrap()
}

struct Result1 {
    latencies_us: Vec<u64>,
    /// CPU time (ns) this endpoint's thread spent in the timed phase.
    cpu_ns: u64,
    sent_events: u64,
    retries: u64,
}

fn endpoint(i: usize, base: &str, token: &str, a: &Args, start: &Barrier) -> Result1 {
    let http = agent();
    let rng = SystemRandom;
    let key = SigningKey::generate(&rng).unwrap();
    let now = || edrlink_service::unix_now();
    let device = DeviceFacts {
        device_id: format!("load-dev-{i}"),
        hostname: format!("load-{i}"),
        os: "linux".into(),
        os_version: "6.1".into(),
        product: "Load AV".into(),
        product_version: "1.0".into(),
    };
    let c = RequestClaims {
        token: token.into(),
        enrollment_id: random_id(&rng, 16).unwrap(),
        nonce: random_id(&rng, 16).unwrap(),
        iat: now(),
        device,
    };
    let redeem_body = jws::sign(redeem::REQUEST_TYP, &c, &key, true)
        .unwrap()
        .into_bytes();
    // Many endpoints enrolling at once from one address meet the service's
    // per-address redeem limit: wait as told (the request was not processed).
    let (st, body) = loop {
        let (st, body, retry) = post(
            &http,
            &format!("{base}/v1/redeem"),
            "application/jose",
            redeem_body.clone(),
        );
        if st != 429 {
            break (st, body);
        }
        std::thread::sleep(Duration::from_secs(retry.unwrap_or(1)));
    };
    assert_eq!(st, 200, "redeem: {}", String::from_utf8_lossy(&body));
    let rc: redeem::ResponseClaims =
        jws::parse(std::str::from_utf8(&body).unwrap(), redeem::RESPONSE_TYP)
            .unwrap()
            .claims()
            .unwrap();
    let inst = rc.installation_id;
    let handshake = || -> String {
        let h = Hello {
            installation_id: inst.clone(),
            nonce: random_id(&rng, 16).unwrap(),
            iat: now(),
            sensor: SensorState::Running,
            last_seq: 0,
            policy_version: 1,
            clock_offset: 0,
            queued_events: 0,
            drops: Default::default(),
        };
        let (st, body, _) = post(
            &http,
            &format!("{base}/v1/handshake"),
            "application/jose",
            jws::sign(handshake::HELLO_TYP, &h, &key, false)
                .unwrap()
                .into_bytes(),
        );
        assert_eq!(st, 200);
        let d: handshake::FlowDecision =
            jws::parse(std::str::from_utf8(&body).unwrap(), handshake::FLOW_TYP)
                .unwrap()
                .claims()
                .unwrap();
        assert_eq!(d.decision, FlowState::Open);
        d.session_id.unwrap()
    };
    let mut session = handshake();
    let make_batch = |seq: u64, session: &str| -> Batch {
        let t = rfc3339(now());
        let events: Vec<Event> = (0..a.events)
            .map(|k| {
                Event::Generic(GenericEvent {
                    time: t.clone(),
                    name: "process_start".into(),
                    data: json!({"pid": k, "image": "/usr/bin/true", "seq": seq}),
                })
            })
            .collect();
        Batch {
            v: 1,
            installation_id: inst.clone(),
            session_id: Some(session.to_owned()),
            batch_id: random_id(&rng, 16).unwrap(),
            seq,
            created: t.clone(),
            sent: t,
            policy_version: 1,
            events,
        }
    };
    // Endpoints are separate machines: what they spend building and signing
    // their batches is not the service's capacity. Unless told otherwise,
    // every envelope is sealed before the clock starts, so the two shared
    // cores measure the service (and the HTTP exchange), not the simulation.
    let mut presealed: Vec<Vec<u8>> = if a.sign_inline {
        Vec::new()
    } else {
        (1..=a.envelopes as u64)
            .map(|seq| telemetry::seal_batch(&make_batch(seq, &session), &key, a.gzip).unwrap())
            .collect()
    };
    presealed.reverse();
    start.wait();
    let cpu0 = own_cpu();
    let mut out = Result1 {
        cpu_ns: 0,
        latencies_us: Vec::with_capacity(a.envelopes),
        sent_events: 0,
        retries: 0,
    };
    for seq in 1..=a.envelopes as u64 {
        let mut env = match presealed.pop() {
            Some(env) => env,
            None => telemetry::seal_batch(&make_batch(seq, &session), &key, a.gzip).unwrap(),
        };
        loop {
            let t0 = Instant::now();
            let (st, body, retry) = post(
                &http,
                &format!("{base}/v1/ingest"),
                dsse::ENVELOPE_MEDIA_TYPE,
                std::mem::take(&mut env),
            );
            let us = t0.elapsed().as_micros() as u64;
            match st {
                200 => {
                    out.latencies_us.push(us);
                    out.sent_events += a.events as u64;
                    break;
                }
                429 => {
                    out.retries += 1;
                    std::thread::sleep(Duration::from_secs(retry.unwrap_or(1)));
                }
                401 if String::from_utf8_lossy(&body).contains("session_expired") => {
                    session = handshake();
                }
                _ => panic!("ingest: {st} {}", String::from_utf8_lossy(&body)),
            }
            // Refused, so not stored: the same sequence again, in a new
            // batch for the current session.
            env = telemetry::seal_batch(&make_batch(seq, &session), &key, a.gzip).unwrap();
        }
    }
    out.cpu_ns = own_cpu().saturating_sub(cpu0);
    out
}

/// CPU time used so far by the calling thread or by the whole process
/// (`CLOCK_THREAD_CPUTIME_ID` / `CLOCK_PROCESS_CPUTIME_ID`: exact, unlike
/// tick-sampled `/proc` figures), in nanoseconds.
fn cpu_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn own_cpu() -> u64 {
    cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn process_cpu() -> u64 {
    cpu_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The admin key of the service this benchmark starts (at least 32 characters,
/// as the service requires).
const ADMIN_KEY: &str = "load-admin-key-0123456789abcdefghijkl";

fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let db = a.db.clone().unwrap_or_else(|| dir.path().join("load.db"));
    let svc = RunningService::start(Settings {
        db_path: Some(db.clone()),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_key: ADMIN_KEY.into(),
        // The benchmark measures throughput, not the per-installation limiter.
        rate_limit: RateLimit {
            burst: 1e9,
            per_second: 1e9,
        },
        flood: if a.flood_limits {
            FloodLimits::default()
        } else {
            FloodLimits::off()
        },
        ..Settings::default()
    })
    .unwrap();
    let base = svc.url().to_owned();
    let http = agent();
    admin(
        &http,
        &base,
        ADMIN_KEY,
        "POST",
        "/admin/tenants",
        json!({"tenant_id": "load"}),
    );
    admin(
        &http,
        &base,
        ADMIN_KEY,
        "PUT",
        "/admin/tenants/load/integrations/acme",
        json!({"enabled": true}),
    );
    let tok = admin(
        &http,
        &base,
        ADMIN_KEY,
        "POST",
        "/admin/tenants/load/integrations/acme/tokens",
        json!({"max_uses": a.endpoints.max(1)}),
    );
    let token = tok["token"].as_str().unwrap().to_owned();

    eprintln!("enrolling {} endpoints…", a.endpoints);
    let a = Arc::new(a);
    let barrier = Arc::new(Barrier::new(a.endpoints + 1));
    let enroll_t0 = Instant::now();
    let handles: Vec<_> = (0..a.endpoints)
        .map(|i| {
            let (a, base, token, barrier) =
                (a.clone(), base.clone(), token.clone(), barrier.clone());
            std::thread::Builder::new()
                .name("endpoint".into())
                .stack_size(256 * 1024)
                .spawn(move || endpoint(i, &base, &token, &a, &barrier))
                .unwrap()
        })
        .collect();
    barrier.wait();
    let enroll_s = enroll_t0.elapsed().as_secs_f64();
    eprintln!("enrolled in {enroll_s:.1}s; sending…");
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let flood_stats = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let flooders: Vec<_> = if a.flood {
        let addr = svc.addr();
        (0..a.flood_redeems + a.flood_envelopes)
            .map(|k| {
                let (stop, stats, from) = (stop.clone(), flood_stats.clone(), a.flood_from);
                let envelope = k >= a.flood_redeems;
                std::thread::spawn(move || flood(addr, from, envelope, &stop, &stats))
            })
            .collect()
    } else {
        Vec::new()
    };
    let results: Vec<Result1> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu0);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }

    let mut lat: Vec<u64> = results
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let envelopes = lat.len() as f64;
    let sent: u64 = results.iter().map(|r| r.sent_events).sum();
    let retries: u64 = results.iter().map(|r| r.retries).sum();
    let stats = admin(
        &http,
        &base,
        ADMIN_KEY,
        "GET",
        "/admin/tenants/load/stats",
        json!({}),
    );
    let stored = stats["events"].as_u64().unwrap();
    let db_size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    svc.shutdown();

    println!(
        "endpoints={} envelopes/endpoint={} events/envelope={} gzip={} signing={}",
        a.endpoints,
        a.envelopes,
        a.events,
        a.gzip,
        if a.sign_inline {
            "inline"
        } else {
            "before the clock"
        }
    );
    println!(
        "enrollment (redeem + handshake, {} endpoints): {:.2}s",
        a.endpoints, enroll_s
    );
    println!(
        "ingest: {} envelopes, {} events in {:.2}s",
        envelopes, sent, secs
    );
    println!(
        "throughput: {:.0} envelopes/s, {:.0} events/s",
        envelopes / secs,
        sent as f64 / secs
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    // CPU time per envelope depends far less on what else the machine runs
    // than throughput does: it compares builds measured on a busy machine.
    // "service" is the process minus the endpoints' threads (the flood
    // threads, when on, count as service).
    let per_env = |ns: u64| ns as f64 / 1e3 / envelopes.max(1.0);
    let endpoints_ns: u64 = results.iter().map(|r| r.cpu_ns).sum();
    println!(
        "cpu per envelope: service {:.0} µs, endpoints {:.0} µs",
        per_env(cpu.saturating_sub(endpoints_ns)),
        per_env(endpoints_ns)
    );
    println!(
        "429 retries: {retries}; database size: {:.1} MiB",
        db_size as f64 / 1048576.0
    );
    println!(
        "stored events = {stored}, sent = {sent}: {}",
        if stored == sent {
            "OK (stored == sent)"
        } else {
            "MISMATCH"
        }
    );
    if a.flood {
        let st = flood_stats.lock().unwrap();
        let total: u64 = st.values().sum();
        println!(
            "flood from {} ({} redeem + {} envelope threads, limits {}): {total} junk requests ({:.0}/s), answers: {}",
            a.flood_from,
            a.flood_redeems,
            a.flood_envelopes,
            if a.flood_limits { "on" } else { "off" },
            total as f64 / secs,
            st.iter()
                .map(|(k, v)| format!("{k} × {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if stored != sent {
        std::process::exit(1);
    }
}

/// One flood thread: junk back to back from `from` until `stop`, ignoring
/// every answer (and `Retry-After`), counting answers by status line.
fn flood(
    addr: SocketAddr,
    from: IpAddr,
    envelope: bool,
    stop: &AtomicBool,
    stats: &Mutex<BTreeMap<String, u64>>,
) {
    let rng = SystemRandom;
    let (path, ct, bodies): (&str, &str, Vec<Vec<u8>>) = if envelope {
        // Valid DSSE JSON just under 5 MiB: the service decodes all of it
        // before it finds that no installation has this key.
        let payload = vec![b'A'; 4 * 1024 * 1024 + 900 * 1024];
        let env = format!(
            "{{\"payload\":\"{}\",\"payloadType\":\"{}\",\"signatures\":[{{\"keyid\":\"junk-{}\",\"sig\":\"{}\"}}]}}",
            std::str::from_utf8(&payload).unwrap(),
            telemetry::BATCH_TYPE,
            random_id(&rng, 8).unwrap(),
            "A".repeat(86)
        );
        (
            "/v1/ingest",
            dsse::ENVELOPE_MEDIA_TYPE,
            vec![env.into_bytes()],
        )
    } else {
        // Well-formed, signed redeem requests carrying a bogus token.
        let key = SigningKey::generate(&rng).unwrap();
        let bodies = (0..64)
            .map(|i| {
                let c = RequestClaims {
                    token: format!("junk.{}.token", random_id(&rng, 24).unwrap()),
                    enrollment_id: random_id(&rng, 16).unwrap(),
                    nonce: random_id(&rng, 16).unwrap(),
                    iat: edrlink_service::unix_now(),
                    device: DeviceFacts {
                        device_id: format!("junk-{i}"),
                        hostname: "junk".into(),
                        os: "linux".into(),
                        os_version: "6.1".into(),
                        product: "junk".into(),
                        product_version: "1".into(),
                    },
                };
                jws::sign(redeem::REQUEST_TYP, &c, &key, true)
                    .unwrap()
                    .into_bytes()
            })
            .collect();
        ("/v1/redeem", "application/jose", bodies)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut local: BTreeMap<String, u64> = BTreeMap::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let body = &bodies[i % bodies.len()];
        i += 1;
        let outcome = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4()?;
            sock.bind(SocketAddr::new(from, 0))?;
            let s = sock.connect(addr).await?;
            s.into_std()
        });
        let label = match outcome.and_then(|mut s| {
            s.set_nonblocking(false)?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(
                s,
                "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            )?;
            s.write_all(body)?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head)?;
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            Ok(String::from_utf8_lossy(&head[9..12]).into_owned())
        }) {
            Ok(status) => status,
            Err(e) => format!("{:?}", e.kind()),
        };
        *local.entry(label).or_default() += 1;
    }
    let mut st = stats.lock().unwrap();
    for (k, v) in local {
        *st.entry(k).or_default() += v;
    }
}
