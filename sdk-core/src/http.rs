//! Plain HTTP message values for the sans-IO core, RFC 9457 problem details,
//! and `Retry-After` parsing (delta-seconds or HTTP-date, RFC 9110 §10.2.3).

use crate::encoding::UnixSeconds;
use crate::error::{Error, ErrorCode};
use serde::{Deserialize, Serialize};

/// Media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Media type of compact JWS bodies.
pub const JOSE: &str = "application/jose";
/// JSON.
pub const JSON: &str = "application/json";

/// An HTTP request the core wants sent (partner role) or received (service role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Correlates the response (partner role).
    pub id: u64,
    /// `GET` or `POST`.
    pub method: String,
    /// Absolute URL (partner role) or path (service role).
    pub url: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A response with a content type.
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body,
        }
    }

    /// A JSON response.
    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        HttpResponse::new(
            status,
            JSON,
            serde_json::to_vec(value).expect("serializable"),
        )
    }

    /// First header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// RFC 9457 problem details with edrlink's `code` extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:edrlink:error:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The code name.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Human-readable detail (no secrets).
    pub detail: String,
    /// Stable error code.
    pub code: String,
    /// For `sequence_regression`: the next sequence the service expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_seq: Option<u64>,
    /// For 429/503: seconds to wait (also in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// Renders an error as a problem response (status from the code).
pub fn problem(err: &Error, expected_seq: Option<u64>) -> HttpResponse {
    problem_with_status(err, err.code().http_status(), expected_seq)
}

/// Renders an error as a problem response with an explicit HTTP status (404,
/// 405), keeping the body's `status` member equal to it (RFC 9457 §3.1.2).
pub fn problem_with_status(err: &Error, status: u16, expected_seq: Option<u64>) -> HttpResponse {
    let p = Problem {
        kind: format!("urn:edrlink:error:{}", err.code()),
        title: err.code().as_str().into(),
        status,
        detail: err.message().into(),
        code: err.code().as_str().into(),
        expected_seq,
        retry_after: err.retry_after(),
    };
    let mut r = HttpResponse::new(
        status,
        PROBLEM_JSON,
        serde_json::to_vec(&p).expect("serializable"),
    );
    if let Some(s) = err.retry_after() {
        r.headers.push(("retry-after".into(), s.to_string()));
    }
    r
}

/// Partner role: turns a non-2xx response into an [`Error`] (and the problem, if any).
pub fn error_from_response(resp: &HttpResponse, now: UnixSeconds) -> (Error, Option<Problem>) {
    let parsed: Option<Problem> = serde_json::from_slice(&resp.body).ok();
    let code = parsed
        .as_ref()
        .and_then(|p| ErrorCode::from_name(&p.code))
        .unwrap_or(match resp.status {
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::FlowBlocked,
            413 => ErrorCode::BatchTooLarge,
            429 => ErrorCode::RateLimited,
            400..=499 => ErrorCode::Malformed,
            _ => ErrorCode::ServiceUnavailable,
        });
    let detail = parsed
        .as_ref()
        .map(|p| p.detail.clone())
        .unwrap_or_else(|| format!("HTTP {}", resp.status));
    let mut err = Error::new(code, detail);
    if let Some(s) = resp
        .header("retry-after")
        .and_then(|v| parse_retry_after(v, now))
    {
        err = err.with_retry_after(s);
    }
    (err, parsed)
}

/// Parses `Retry-After`: delta-seconds or an IMF-fixdate, into seconds from `now`
/// (capped at one day; a date in the past gives 0).
pub fn parse_retry_after(v: &str, now: UnixSeconds) -> Option<u64> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(s.min(86_400));
    }
    let t = parse_http_date(v)?;
    Some((t - now).clamp(0, 86_400) as u64)
}

/// Formats an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 §5.6.7).
pub fn format_http_date(t: UnixSeconds) -> String {
    let iso = crate::encoding::rfc3339(t); // YYYY-MM-DDTHH:MM:SSZ
    let (y, m, d) = (
        &iso[0..4],
        iso[5..7].parse::<usize>().unwrap_or(1),
        &iso[8..10],
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    let wd = DAYS[t.div_euclid(86_400).rem_euclid(7) as usize];
    format!("{wd}, {d} {} {y} {} GMT", MONTHS[m - 1], &iso[11..19])
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn parse_http_date(v: &str) -> Option<UnixSeconds> {
    let rest = v.get(5..)?; // skip "Sun, "
    let mut it = rest.split(' ');
    let day: i64 = it.next()?.parse().ok()?;
    let mon_name = it.next()?;
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == mon_name)? as i64
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let hms = it.next()?;
    if it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    let iso = format!("{year:04}-{mon:02}-{day:02}T{hms}Z");
    crate::encoding::parse_rfc3339(&iso).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0), Some(120));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 10),
            Some(10)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 + 10),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("999999999", 0), Some(86_400));
        assert_eq!(
            format_http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            parse_http_date(&format_http_date(1_795_435_200)),
            Some(1_795_435_200)
        );
    }

    #[test]
    fn problem_round_trip() {
        let e = Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(7);
        let r = problem(&e, None);
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("7"));
        let (back, p) = error_from_response(&r, 0);
        assert_eq!(back.code(), ErrorCode::RateLimited);
        assert_eq!(back.retry_after(), Some(7));
        assert_eq!(p.unwrap().kind, "urn:edrlink:error:rate_limited");
    }
}
