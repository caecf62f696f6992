//! The service URL rule: which base URL a request goes to (the host's
//! override, else the token's or package's, else the stored credential's) and
//! that it is `https://` or loopback `http://`. It sits in the sans-IO core so
//! that nothing a token, answer or package says can point any transport at
//! plain HTTP.

use super::PartnerClient;
use crate::error::{Error, ErrorCode, Result};

/// Checks a partner-API base URL before any request is built: `https://`
/// anywhere, plain `http://` only to a loopback host (`localhost`,
/// `127.0.0.0/8`, `[::1]`).
///
/// This lives in the sans-IO core, not in a transport, so that no token,
/// redemption answer, onboarding package, stored credential or override can
/// point a host-supplied transport at plain HTTP: the client refuses before
/// it asks the host to send anything. Error: `invalid_argument`.
pub fn check_service_url(url: &str) -> Result<()> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") && url.len() > "https://".len() {
        return Ok(());
    }
    if lower.starts_with("http://") {
        if is_loopback_http(url) {
            return Ok(());
        }
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("refusing plain http:// to a non-loopback host ({url}): the partner API must be reached over https"),
        ));
    }
    Err(Error::new(
        ErrorCode::InvalidArgument,
        format!("unsupported URL scheme in {url:?}: the partner API must be reached over https"),
    ))
}

fn is_loopback_http(url: &str) -> bool {
    let rest = &url["http://".len()..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(h) = host.strip_prefix('[') {
        match h.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        host.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl PartnerClient {
    pub(super) fn base_url(&self, from_token: Option<&str>) -> String {
        let base = self
            .cfg
            .service_url
            .as_deref()
            .or(from_token)
            .or(self.cred.as_ref().map(|c| c.service_url.as_str()))
            .unwrap_or("");
        base.trim_end_matches('/').to_owned()
    }
}
