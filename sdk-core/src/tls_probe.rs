//! TLS failure diagnostics: after a certificate error, a second, data-less
//! handshake records the certificate the server presented, so the error can
//! name its issuer ("issued by CN=Contoso Inspection CA" points at a
//! TLS-inspecting proxy at once). Nothing is ever sent over that connection,
//! and the real request has already failed: verification is never bypassed.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
struct Recorder {
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(end_entity.to_vec());
        // Stop the handshake here: we only wanted to see the certificate.
        Err(rustls::Error::General("diagnostic probe".into()))
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Connects directly to `host:port`, runs a TLS handshake up to the server
/// certificate and returns `(subject, issuer)` of the presented certificate.
pub fn presented_certificate(host: &str, port: u16, timeout: Duration) -> Option<(String, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rec = Arc::new(Recorder {
        seen: Mutex::new(None),
        provider: provider.clone(),
    });
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(rec.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).ok()?;
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut tcp = TcpStream::connect_timeout(&addr, timeout).ok()?;
    tcp.set_read_timeout(Some(timeout)).ok()?;
    tcp.set_write_timeout(Some(timeout)).ok()?;
    for _ in 0..16 {
        if rec.seen.lock().ok()?.is_some() {
            break;
        }
        if conn.wants_write() && conn.write_tls(&mut tcp).is_err() {
            break;
        }
        if conn.wants_read() {
            match conn.read_tls(&mut tcp) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if conn.process_new_packets().is_err() {
                        break;
                    }
                }
            }
        }
    }
    let _ = tcp.flush();
    let _ = tcp.read(&mut [0u8; 0]);
    let der = rec.seen.lock().ok()?.take()?;
    let (subject, issuer) = names(&der)?;
    Some((subject, issuer))
}

// --- a minimal DER walk: TBSCertificate → issuer and subject Names ----------

fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, hdr) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let body = b.get(hdr..hdr + len)?;
    Some((tag, body, &b[hdr + len..]))
}

fn names(der: &[u8]) -> Option<(String, String)> {
    let (_, cert, _) = tlv(der)?; // Certificate
    let (_, tbs, _) = tlv(cert)?; // TBSCertificate
    let mut rest = tbs;
    let (tag, _, r) = tlv(rest)?;
    if tag == 0xa0 {
        rest = r; // [0] version
    }
    let (_, _, r) = tlv(rest)?; // serialNumber
    let (_, _, r) = tlv(r)?; // signature algorithm
    let (_, issuer, r) = tlv(r)?;
    let (_, _, r) = tlv(r)?; // validity
    let (_, subject, _) = tlv(r)?;
    Some((dn(subject), dn(issuer)))
}

/// Renders the CN, O and OU attributes of a Name (`CN=…, O=…`).
fn dn(mut name: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((_, set, r)) = tlv(name) {
        name = r;
        let mut s = set;
        while let Some((_, atv, r2)) = tlv(s) {
            s = r2;
            let Some((_, oid, v)) = tlv(atv) else {
                continue;
            };
            let Some((_, value, _)) = tlv(v) else {
                continue;
            };
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{label}={}", String::from_utf8_lossy(value)));
        }
    }
    if parts.is_empty() {
        "(no CN/O)".into()
    } else {
        parts.join(", ")
    }
}
