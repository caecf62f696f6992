//! [`HttpTransport`] (feature `http`): the agent's [`Transport`] over ureq
//! with rustls (ring provider). Trust: the OS root store (falling back to the
//! Mozilla/webpki roots when the OS has none) plus any extra CA certificates
//! given in PEM, e.g. a corporate TLS-inspection CA. There is no switch to
//! turn verification off. Plain `http://` is allowed to loopback hosts only
//! (the rule is enforced by the core before a request exists; checked here again).
//!
//! Failures below HTTP (DNS, connection, proxy, TLS, timeouts) become
//! [`ErrorCode::Transport`] errors with a diagnostic message; any HTTP status,
//! including 4xx/5xx, is returned as an [`HttpResponse`].
//!
//! An answer sent before the request body was read (a 413 from a service or
//! proxy body limit, a 401) is returned as that response even when the peer
//! then closes and our body write fails: see [`EarlyAnswerConnector`].

use crate::agent::Transport;
use crate::error::{Error, ErrorCode, Result};
use crate::http::{HttpRequest, HttpResponse};
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    TcpConnector, Transport as UreqTransport,
};

/// Largest response body read (the partner API answers are small).
pub const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// A host's proxy decision for one URL (e.g. from the OS's PAC/WPAD resolver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Use this proxy (`http://[user:pass@]host:port`, `socks5://…`).
    Use(String),
    /// Connect directly.
    Direct,
    /// No opinion: fall back to the environment.
    Default,
}

/// A host callback that picks the proxy for a URL.
pub type ProxyResolver = std::sync::Arc<dyn Fn(&str) -> ProxyChoice + Send + Sync>;

/// Options of [`HttpTransport`].
///
/// Proxy precedence: `no_proxy` (explicitly direct), then `proxy` (explicit
/// URL), then `proxy_resolver` (host callback), then `HTTPS_PROXY` /
/// `HTTP_PROXY` / `ALL_PROXY` with `NO_PROXY`. Credentials in the proxy URL
/// are sent as Basic proxy authentication (CONNECT for https).
#[derive(Clone)]
pub struct HttpOptions {
    /// TCP (and proxy) connect timeout.
    pub connect_timeout: Duration,
    /// Timeout for sending the request and receiving the whole response.
    pub read_timeout: Duration,
    /// Extra trusted CA certificates, PEM (each string may hold several).
    pub extra_ca_pem: Vec<String>,
    /// Proxy URL (`http://host:port`, `socks5://…`); `None` uses `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY`.
    pub proxy: Option<String>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Connect directly, ignoring `proxy`, the resolver and the environment.
    pub no_proxy: bool,
    /// Host callback consulted when no explicit proxy is set.
    pub proxy_resolver: Option<ProxyResolver>,
    /// Opt-in pinning: trust only the CAs in `extra_ca_pem` (not the OS store).
    pub pin_extra_ca: bool,
}

impl core::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("extra_ca_pem", &self.extra_ca_pem.len())
            .field("proxy", &self.proxy.as_deref().map(redact_proxy))
            .field("user_agent", &self.user_agent)
            .field("no_proxy", &self.no_proxy)
            .field("proxy_resolver", &self.proxy_resolver.is_some())
            .field("pin_extra_ca", &self.pin_extra_ca)
            .finish()
    }
}

pub use crate::options::redact_proxy;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            extra_ca_pem: Vec::new(),
            proxy: None,
            user_agent: format!("edrlink/{}", crate::VERSION),
            no_proxy: false,
            proxy_resolver: None,
            pin_extra_ca: false,
        }
    }
}

/// Blocking HTTPS transport (ureq + rustls/ring).
pub struct HttpTransport {
    opts: HttpOptions,
    tls: TlsConfig,
    // One ureq agent (connection pool) per proxy choice: `None` = environment.
    agents: std::sync::Mutex<std::collections::HashMap<Option<String>, ureq::Agent>>,
}

impl core::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpTransport").finish_non_exhaustive()
    }
}

/// Sits between the TCP socket and TLS in the connector chain (so it works
/// for `https://` and through CONNECT proxies alike).
///
/// A server or proxy that refuses a request by its headers (a body over its
/// limit: 413) may answer at once and close without reading the body. Our
/// body write then fails with `EPIPE`/`ECONNRESET` although the answer is
/// already in the socket's receive buffer. ureq would report the write error,
/// the client would see a transport failure and retry the same batch forever
/// instead of splitting it. This transport instead swallows the failed write
/// (discarding the rest of the body, which the peer will never read), lets
/// ureq read the answer the peer sent, and reports the original write error
/// only if no answer comes. A connection whose write failed is never reused.
#[derive(Debug)]
struct EarlyAnswerConnector;

impl<In: UreqTransport> Connector<In> for EarlyAnswerConnector {
    type Out = EarlyAnswer<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| EarlyAnswer {
            inner,
            write_failed: None,
        }))
    }
}

/// The transport made by [`EarlyAnswerConnector`].
#[derive(Debug)]
struct EarlyAnswer<T> {
    inner: T,
    /// The write error swallowed so the peer's answer can still be read.
    write_failed: Option<std::io::Error>,
}

/// Write errors that mean "the peer closed" (it may have answered first).
fn peer_closed(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(e, ureq::Error::Io(io) if matches!(io.kind(), K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted))
}

impl<T: UreqTransport> UreqTransport for EarlyAnswer<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> std::result::Result<(), ureq::Error> {
        if self.write_failed.is_some() {
            // The peer stopped reading: drop the rest of the body.
            return Ok(());
        }
        match self.inner.transmit_output(amount, timeout) {
            Err(e) if peer_closed(&e) => {
                if let ureq::Error::Io(io) = e {
                    self.write_failed = Some(io);
                }
                Ok(())
            }
            r => r,
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        match self.inner.await_input(timeout) {
            Ok(true) => Ok(true),
            // No answer after all: the write failure is the real cause.
            r => match self.write_failed.take() {
                Some(io) => Err(ureq::Error::Io(io)),
                None => r,
            },
        }
    }

    fn is_open(&mut self) -> bool {
        self.write_failed.is_none() && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// First in the chain: refuses a SOCKS proxy (this build has no SOCKS
/// support) instead of letting the HTTP connectors misuse it.
#[derive(Debug)]
struct NoSocks;

impl Connector<()> for NoSocks {
    type Out = ();

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> std::result::Result<Option<()>, ureq::Error> {
        use ureq::ProxyProtocol as P;
        if let Some(p) = details.config.proxy() {
            let socks = matches!(
                p.protocol(),
                P::Socks4 | P::Socks4A | P::Socks5 | P::Socks5h
            );
            if socks && !p.is_no_proxy(details.uri) {
                return Err(ureq::Error::ConnectProxyFailed(
                    "SOCKS proxies are not supported by this build: use an HTTP proxy".into(),
                ));
            }
        }
        Ok(chained)
    }
}

fn transport_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::Transport, msg)
}

fn roots(extra_pem: &[String], pin: bool) -> Result<RootCerts> {
    let mut extra = Vec::new();
    for (i, pem) in extra_pem.iter().enumerate() {
        let before = extra.len();
        for item in ureq::tls::parse_pem(pem.as_bytes()) {
            match item {
                Ok(PemItem::Certificate(c)) => extra.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::new(
                        ErrorCode::InvalidArgument,
                        format!("extra CA #{}: not valid PEM: {e}", i + 1),
                    ))
                }
            }
        }
        if extra.len() == before {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("extra CA #{}: no CERTIFICATE block found", i + 1),
            ));
        }
    }
    if pin {
        if extra.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                "pinning needs at least one extra CA certificate",
            ));
        }
        return Ok(RootCerts::from(extra));
    }
    let native: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if native.is_empty() && extra.is_empty() {
        return Ok(RootCerts::WebPki);
    }
    let mut all = if native.is_empty() {
        webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    } else {
        native
    };
    all.extend(extra);
    Ok(RootCerts::from(all))
}

/// Checks the URL scheme: `https://` anywhere, `http://` to loopback only.
///
/// The rule itself lives in the sans-IO core
/// ([`check_service_url`](crate::client::check_service_url)), which refuses
/// before any request is built, whatever transport the host uses; this
/// transport checks again (defense in depth) and reports `transport`.
pub fn check_url(url: &str) -> Result<()> {
    crate::client::check_service_url(url).map_err(|e| transport_err(e.message().to_owned()))
}

fn tls_diagnostic(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let hint = match e {
        rustls::Error::InvalidCertificate(C::Expired | C::NotValidYet | C::ExpiredContext { .. } | C::NotValidYetContext { .. }) => {
            "the certificate is outside its validity period: check this machine's clock (clock skew) and the server's certificate"
        }
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the certificate is not issued by a trusted CA: a TLS-inspecting proxy or firewall may be intercepting the connection; add its CA as an extra CA PEM rather than disabling verification"
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the certificate does not name this host: check the service URL, or a proxy may be intercepting the connection"
        }
        rustls::Error::InvalidCertificate(_) => "the server certificate was rejected: check the clock, the service URL and any TLS-inspecting proxy",
        _ => "the TLS handshake failed: a proxy or middlebox may be interfering with the connection",
    };
    format!("TLS failure ({e}): {hint}")
}

fn describe(e: ureq::Error, url: &str) -> Error {
    let msg = match e {
        ureq::Error::Timeout(t) => format!("timed out ({t}) talking to {url}"),
        ureq::Error::HostNotFound => format!("host not found (DNS) for {url}"),
        ureq::Error::ConnectionFailed => {
            format!("could not connect to {url} (refused or unreachable)")
        }
        // 407 is the standard answer; some proxies (tinyproxy) answer 401.
        ureq::Error::ConnectProxyFailed(m) if m.contains("407") || m.contains("401") => {
            format!("proxy authentication failed (HTTP 407) on CONNECT for {url}: check the proxy user name and password")
        }
        ureq::Error::ConnectProxyFailed(m) => format!("proxy CONNECT failed for {url}: {m}"),
        ureq::Error::InvalidProxyUrl => "the proxy URL is invalid".to_owned(),
        ureq::Error::Rustls(r) => tls_diagnostic(&r),
        ureq::Error::Tls(m) => format!("TLS failure: {m}"),
        ureq::Error::BodyExceedsLimit(n) => format!("response from {url} exceeds {n} bytes"),
        ureq::Error::Io(io) => {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                tls_diagnostic(r)
            } else {
                match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => {
                        format!("connection refused by {url}: is the service running?")
                    }
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!("timed out talking to {url}")
                    }
                    std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof => {
                        format!("connection to {url} was closed unexpectedly ({io}): a proxy or firewall may be interfering")
                    }
                    _ => format!("I/O error talking to {url}: {io}"),
                }
            }
        }
        other => format!("HTTP exchange with {url} failed: {other}"),
    };
    transport_err(msg)
}

impl HttpTransport {
    /// Builds the transport. Errors: `invalid_argument` for a bad extra CA or proxy URL.
    pub fn new(opts: HttpOptions) -> Result<Self> {
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(roots(&opts.extra_ca_pem, opts.pin_extra_ca)?)
            .build();
        let t = HttpTransport {
            opts,
            tls,
            agents: Default::default(),
        };
        if let Some(p) = t.opts.proxy.clone() {
            t.agent_for(Some(p))?; // validate the explicit proxy URL now
        }
        Ok(t)
    }

    /// The proxy for `url` by the documented precedence (`None`: environment;
    /// `Some("")`: direct).
    fn proxy_for(&self, url: &str) -> Option<String> {
        if self.opts.no_proxy {
            return Some(String::new());
        }
        if let Some(p) = &self.opts.proxy {
            return Some(p.clone());
        }
        match self.opts.proxy_resolver.as_ref().map(|r| r(url)) {
            Some(ProxyChoice::Use(p)) => Some(p),
            Some(ProxyChoice::Direct) => Some(String::new()),
            Some(ProxyChoice::Default) | None => None,
        }
    }

    /// Subject and issuer of the certificate `url`'s server presents (direct
    /// connections only; behind a proxy the probe would see the proxy).
    fn presented(&self, url: &str) -> Option<String> {
        if self.proxy_for(url).is_some_and(|p| !p.is_empty()) {
            return None;
        }
        let rest = url.strip_prefix("https://")?;
        let authority = rest.split(['/', '?', '#']).next()?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.trim_matches(['[', ']']), p.parse().ok()?)
            }
            _ => (authority, 443),
        };
        let (subject, issuer) =
            crate::tls_probe::presented_certificate(host, port, self.opts.connect_timeout)?;
        Some(format!(
            "presented certificate: subject {subject}, issued by {issuer}"
        ))
    }

    fn agent_for(&self, proxy: Option<String>) -> Result<ureq::Agent> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = agents.get(&proxy) {
            return Ok(a.clone());
        }
        let o = &self.opts;
        let b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(o.connect_timeout))
            .timeout_send_request(Some(o.read_timeout))
            .timeout_send_body(Some(o.read_timeout))
            .timeout_recv_response(Some(o.read_timeout))
            .timeout_recv_body(Some(o.read_timeout))
            .user_agent(o.user_agent.as_str())
            .tls_config(self.tls.clone());
        let b = match proxy.as_deref() {
            None => b.proxy(ureq::Proxy::try_from_env()),
            Some("") => b.proxy(None),
            Some(p) => b.proxy(Some(ureq::Proxy::new(p).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidArgument,
                    format!("proxy {}: {e}", redact_proxy(p)),
                )
            })?)),
        };
        // ureq's default chain, with EarlyAnswerConnector between TCP and TLS.
        let connector = NoSocks
            .chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(EarlyAnswerConnector)
            .chain(RustlsConnector::default());
        let agent = ureq::Agent::with_parts(b.build(), connector, DefaultResolver::default());
        agents.insert(proxy, agent.clone());
        Ok(agent)
    }
}

impl Transport for HttpTransport {
    fn send(&self, req: &HttpRequest) -> Result<HttpResponse> {
        check_url(&req.url)?;
        let mut builder = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(req.url.as_str());
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder.body(req.body.clone()).map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("bad request for {}: {e}", req.url),
            )
        })?;
        let proxy = self.proxy_for(&req.url);
        let agent = self.agent_for(proxy.clone())?;
        let mut resp = agent.run(request).map_err(|e| {
            let err = describe(e, &req.url);
            // A certificate problem: name what the server presented.
            if err.message().starts_with("TLS failure") && err.message().contains("certificate") {
                if let Some(what) = self.presented(&req.url) {
                    return transport_err(format!("{} [{what}]", err.message()));
                }
            }
            err
        })?;
        let status = resp.status().as_u16();
        if status == 407 {
            // The proxy, not the service, refused us: say so instead of passing
            // a 4xx to the protocol (which would drop the batch).
            let which = proxy.filter(|p| !p.is_empty()).map_or_else(
                || "the proxy from the environment".to_owned(),
                |p| redact_proxy(&p),
            );
            return Err(transport_err(format!("proxy authentication failed (HTTP 407) at {which}: check the proxy user name and password")));
        }
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|e| describe(e, &req.url))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://edr.example/v1",
            "http://127.0.0.1:8080/v1/redeem",
            "http://localhost/x",
            "http://[::1]:9/x",
            "HTTP://127.0.0.2/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://edr.example/v1",
            "http://127.0.0.1.evil.example/",
            "http://user@10.0.0.1/",
            "ftp://x/",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                check_url(bad).unwrap_err().code(),
                ErrorCode::Transport,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_extra_ca_is_invalid_argument() {
        let o = HttpOptions {
            extra_ca_pem: vec!["not a pem".into()],
            ..HttpOptions::default()
        };
        assert_eq!(
            HttpTransport::new(o).unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    /// A one-shot TCP server answering `reply` to the first connection.
    fn one_shot(reply: &'static [u8]) -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply);
            }
        });
        port
    }

    #[test]
    fn error_statuses_are_responses_with_lower_case_headers() {
        let port = one_shot(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nX-Edrlink-Test: A\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno");
        let t = HttpTransport::new(HttpOptions::default()).unwrap();
        let req = HttpRequest {
            id: 1,
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/v1/ingest"),
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        };
        let r = t.send(&req).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, b"no");
        assert!(
            r.headers
                .iter()
                .all(|(k, _)| k.chars().all(|c| !c.is_ascii_uppercase())),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("retry-after"), Some("7"));
        assert_eq!(r.header("x-edrlink-test"), Some("A"));
    }

    /// A peer with a body limit: reads the request headers only, then
    /// answers `reply` (if any) and closes without reading the body — as a
    /// service or proxy refusing an oversized body by its headers does.
    /// Returns the port and a receiver of the request heads it saw.
    fn refuses_unread(reply: Option<&'static [u8]>) -> (u16, std::sync::mpsc::Receiver<String>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            if let Some(r) = reply {
                let _ = s.write_all(r);
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
            // Dropped with the body unread: the kernel resets the connection.
        });
        (port, rx)
    }

    fn big_post(port: u16) -> HttpRequest {
        HttpRequest {
            id: 1,
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/v1/ingest"),
            headers: vec![("content-type".into(), "application/json".into())],
            // Far more than the socket buffers hold: the write must fail.
            body: vec![b' '; 32 * 1024 * 1024],
        }
    }

    #[test]
    fn early_413_is_returned_although_the_body_write_fails() {
        const PROBLEM: &str = r#"{"type":"urn:edrlink:error:batch_too_large","title":"batch too large","status":413,"code":"batch_too_large"}"#;
        let reply: &'static [u8] = Box::leak(
            format!(
                "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{PROBLEM}",
                PROBLEM.len()
            )
            .into_bytes()
            .into_boxed_slice(),
        );
        let t = HttpTransport::new(HttpOptions::default()).unwrap();
        for _ in 0..3 {
            let (port, heads) = refuses_unread(Some(reply));
            let r = t.send(&big_post(port)).unwrap();
            assert_eq!(r.status, 413);
            assert_eq!(r.header("content-type"), Some("application/problem+json"));
            assert_eq!(r.body, PROBLEM.as_bytes());
            assert!(heads.recv().unwrap().contains("content-length: 33554432"));
        }
    }

    #[test]
    fn peer_closing_without_an_answer_is_still_a_transport_error() {
        let t = HttpTransport::new(HttpOptions::default()).unwrap();
        let (port, _heads) = refuses_unread(None);
        let e = t.send(&big_post(port)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transport);
        assert!(e.message().contains(&format!("127.0.0.1:{port}")), "{e}");
    }

    #[test]
    fn socks_proxy_is_refused_not_bypassed() {
        let t = HttpTransport::new(HttpOptions {
            proxy: Some("socks5://127.0.0.1:9".into()),
            ..HttpOptions::default()
        })
        .unwrap();
        let e = t.send(&big_post(9)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transport);
        assert!(e.message().contains("SOCKS"), "{e}");
    }

    #[test]
    fn untrusted_certificate_names_its_issuer() {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        use std::sync::Arc;
        // An "interception" CA that the client does not trust, and a leaf it signed.
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(vec![]).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "Contoso TLS Inspection CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".into()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
        let server = Arc::new(server);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(2) {
                let Ok(mut s) = s else { continue };
                let mut conn = rustls::ServerConnection::new(server.clone()).unwrap();
                let _ = conn.complete_io(&mut s);
            }
        });
        let t = HttpTransport::new(HttpOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        })
        .unwrap();
        let req = HttpRequest {
            id: 1,
            method: "POST".into(),
            url: format!("https://localhost:{port}/v1/handshake"),
            headers: vec![],
            body: vec![],
        };
        let e = t.send(&req).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transport);
        assert!(e.message().contains("not issued by a trusted CA"), "{e}");
        assert!(
            e.message()
                .contains("issued by CN=Contoso TLS Inspection CA"),
            "{e}"
        );
        assert!(e.message().contains("subject CN=localhost"), "{e}");
    }

    #[test]
    fn tls_failure_is_named() {
        // A plain-HTTP server where TLS is expected: the handshake fails.
        let port = one_shot(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let t = HttpTransport::new(HttpOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        })
        .unwrap();
        let req = HttpRequest {
            id: 1,
            method: "POST".into(),
            url: format!("https://127.0.0.1:{port}/v1/handshake"),
            headers: vec![],
            body: vec![],
        };
        let e = t.send(&req).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transport);
        assert!(e.message().contains("TLS"), "{e}");
    }

    #[test]
    fn connection_refused_is_transport() {
        // Bind then drop to get a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = HttpTransport::new(HttpOptions::default()).unwrap();
        let req = HttpRequest {
            id: 1,
            method: "POST".into(),
            url: format!("http://127.0.0.1:{port}/v1/handshake"),
            headers: vec![],
            body: vec![],
        };
        let e = t.send(&req).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Transport);
        assert!(e.message().contains("127.0.0.1"), "{e}");
    }
}
