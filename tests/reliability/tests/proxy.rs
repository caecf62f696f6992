//! Through a real forward proxy on loopback (tinyproxy, installed by
//! scripts/install-deps.sh): Basic proxy authentication, a clear error when it
//! fails, explicit "no proxy", and the host's proxy callback.

use edrlink_core::transport::{HttpOptions, HttpTransport, ProxyChoice};
use edrlink_core::ErrorCode;
use edrlink_reliability::*;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Tinyproxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tinyproxy(dir: &std::path::Path) -> Tinyproxy {
    let bin = ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("tinyproxy is not installed: run scripts/install-deps.sh");
    // tinyproxy cannot take an inherited socket: pick a free port, and if
    // another process takes it before tinyproxy binds (tinyproxy then exits),
    // try again with a new one instead of failing.
    for _attempt in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("tinyproxy-{port}.log"));
        let conf = dir.join(format!("tinyproxy-{port}.conf"));
        std::fs::write(
            &conf,
            format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\nBasicAuth edr s3cret\nLogFile \"{}\"\nLogLevel Info\nDisableViaHeader Yes\n", log.display()),
        )
        .unwrap();
        let mut child = Command::new(bin)
            .args(["-d", "-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A bound against hanging forever, not a speed requirement.
        let t0 = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break; // could not bind: next port
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Tinyproxy { child, port, log };
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "tinyproxy did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("tinyproxy could not bind a port in 5 attempts")
}

fn through(opts: HttpOptions) -> HttpTransport {
    HttpTransport::new(opts).unwrap()
}

#[test]
fn enroll_and_send_through_an_authenticating_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let proxy = tinyproxy(dir.path());
    let url = format!("http://edr:s3cret@127.0.0.1:{}", proxy.port);
    let a = agent(
        &dir.path().join("a"),
        fast_config("proxy"),
        through(HttpOptions {
            proxy: Some(url),
            ..HttpOptions::default()
        }),
    );
    a.enroll(&svc.token()).unwrap();
    a.submit(event(1)).unwrap();
    assert_eq!(a.flush(10).unwrap().queued, 0);
    assert_eq!(
        svc.stored_names(&a.credential().unwrap().installation_id),
        ["e1"]
    );
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    assert!(
        log.contains(&format!("CONNECT 127.0.0.1:{}", svc.addr.port())),
        "requests were tunnelled through the proxy:\n{log}"
    );
}

#[test]
fn wrong_proxy_password_is_a_clear_transport_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let proxy = tinyproxy(dir.path());
    let token = svc.token();
    let url = format!("http://edr:wrong@127.0.0.1:{}", proxy.port);
    let mut a = agent(
        &dir.path().join("a"),
        fast_config("badproxy"),
        through(HttpOptions {
            proxy: Some(url),
            ..HttpOptions::default()
        }),
    );
    a.set_op_timeout(Duration::from_secs(3));
    let err = a.enroll(&token).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Transport, "{err}");
    assert!(
        err.message().contains("proxy authentication failed"),
        "{err}"
    );
    assert!(
        !err.message().contains("wrong"),
        "the password is not echoed: {err}"
    );
    drop(a);
    // Same data dir, right password: nothing was lost or consumed.
    let url = format!("http://edr:s3cret@127.0.0.1:{}", proxy.port);
    let a = agent(
        &dir.path().join("a"),
        fast_config("badproxy"),
        through(HttpOptions {
            proxy: Some(url),
            ..HttpOptions::default()
        }),
    );
    a.enroll(&token).unwrap();
}

#[test]
fn explicit_no_proxy_and_host_callback() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), |_| {});
    svc.setup_tenant();
    let proxy = tinyproxy(dir.path());
    // Explicitly direct: a broken proxy setting is ignored.
    let direct = through(HttpOptions {
        no_proxy: true,
        proxy: Some("http://127.0.0.1:1".into()),
        ..HttpOptions::default()
    });
    let a = agent(&dir.path().join("direct"), fast_config("direct"), direct);
    a.enroll(&svc.token()).unwrap();
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    let tunnel = format!("CONNECT 127.0.0.1:{}", svc.addr.port());
    assert!(!log.contains(&tunnel), "no_proxy went direct:\n{log}");
    // The host's resolver picks the proxy (e.g. from PAC).
    let p = format!("http://edr:s3cret@127.0.0.1:{}", proxy.port);
    let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let asked2 = asked.clone();
    let resolver: edrlink_core::transport::ProxyResolver = Arc::new(move |_url: &str| {
        asked2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ProxyChoice::Use(p.clone())
    });
    let via = through(HttpOptions {
        proxy_resolver: Some(resolver),
        ..HttpOptions::default()
    });
    let b = agent(&dir.path().join("via"), fast_config("via"), via);
    b.enroll(&svc.token()).unwrap();
    assert!(asked.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    let log = std::fs::read_to_string(&proxy.log).unwrap_or_default();
    assert!(
        log.contains(&tunnel),
        "the resolver's proxy was used:\n{log}"
    );
}
