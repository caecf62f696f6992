//! Test faults (`EDRLINK_TEST_FAULTS=1` only; never in production): the
//! shared scenarios (`tests/scenarios/`) make the real service answer a
//! partner route with a refusal (429, 503, … with `Retry-After`) or lose an
//! answer, so every language's client is tested against the same failures
//! over real HTTP.
//!
//! - `POST /admin/test/faults {"path","count","status","retry_after"}`: the
//!   next `count` requests to that partner route get that status and a
//!   problem body with the matching code, without being processed;
//! - `POST /admin/test/faults {"path","count","drop_answer":true}`: the next
//!   `count` requests are processed and committed, then the connection is
//!   closed without an answer (a lost answer);
//! - `DELETE /admin/test/faults` clears them.
//!
//! Without the setting the routes are not mounted (404) and the partner path
//! pays one `Option` check.

use edrlink_core::error::{Error, ErrorCode};
use edrlink_core::service::PartnerRoute;
use serde::Deserialize;
use std::sync::Mutex;

/// What a fault does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// Answer with this status and `Retry-After` without processing.
    Refuse {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Process and commit, then close the connection without an answer.
    DropAnswer,
}

#[derive(Debug)]
struct Fault {
    path: String,
    remaining: u32,
    kind: FaultKind,
}

/// The body of `POST /admin/test/faults`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    path: Option<String>,
    count: Option<u32>,
    status: Option<u16>,
    retry_after: Option<u64>,
    #[serde(default)]
    drop_answer: bool,
}

/// Most faults armed at once (a test arms a handful).
const MAX_FAULTS: usize = 64;

/// The armed faults, consumed in the order they were armed.
#[derive(Debug, Default)]
pub(crate) struct Faults(Mutex<Vec<Fault>>);

/// The error code a refusal with this status carries: the well-known ones
/// first, else the first code whose own status it is, else `internal`.
pub(crate) fn code_for_status(status: u16) -> ErrorCode {
    match status {
        429 => ErrorCode::RateLimited,
        502..=504 => ErrorCode::ServiceUnavailable,
        500 => ErrorCode::Internal,
        s => ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.http_status() == s)
            .unwrap_or(ErrorCode::Internal),
    }
}

impl Faults {
    /// Arms a fault; the request is checked here (typed `invalid_argument`).
    pub(crate) fn arm(&self, r: FaultRequest) -> Result<(), Error> {
        let bad = |m: &str| Error::new(ErrorCode::InvalidArgument, m.to_owned());
        let path = r.path.ok_or_else(|| bad("path is required"))?;
        if PartnerRoute::of_path(&path).is_none() {
            return Err(bad("path must be a partner route (e.g. /v1/ingest)"));
        }
        let count = r.count.unwrap_or(1);
        if count == 0 || count > 1000 {
            return Err(bad("count must be 1..=1000"));
        }
        let kind = match (r.drop_answer, r.status) {
            (true, None) if r.retry_after.is_none() => FaultKind::DropAnswer,
            (true, _) => return Err(bad("drop_answer takes no status or retry_after")),
            (false, Some(s)) if (400..=599).contains(&s) => FaultKind::Refuse {
                status: s,
                retry_after: r.retry_after,
            },
            (false, _) => return Err(bad("give a status (400..=599) or \"drop_answer\": true")),
        };
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= MAX_FAULTS {
            return Err(bad("too many faults armed: clear them first"));
        }
        v.push(Fault {
            path,
            remaining: count,
            kind,
        });
        Ok(())
    }

    /// Clears every fault.
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Takes one use of the first fault armed for this path.
    pub(crate) fn take(&self, path: &str) -> Option<FaultKind> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let i = v.iter().position(|f| f.path == path)?;
        let kind = v[i].kind;
        v[i].remaining -= 1;
        if v[i].remaining == 0 {
            v.remove(i);
        }
        Some(kind)
    }
}

/// The refusal a `Refuse` fault answers with.
pub(crate) fn refusal_error(status: u16, retry_after: Option<u64>) -> Error {
    let e = Error::new(
        code_for_status(status),
        format!("test fault: answered {status} without processing"),
    );
    match retry_after {
        Some(s) => e.with_retry_after(s),
        None => e,
    }
}

/// A response body that fails at once: hyper then closes the connection
/// without writing the response (its head is still buffered), which the
/// client sees as a transport error: a lost answer.
pub(crate) struct LostAnswer;

impl http_body::Body for LostAnswer {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "test fault: answer dropped",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: serde_json::Value) -> FaultRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn faults_are_taken_count_times_in_order_per_path() {
        let f = Faults::default();
        f.arm(req(
            serde_json::json!({"path": "/v1/ingest", "count": 2, "status": 429, "retry_after": 1}),
        ))
        .unwrap();
        f.arm(req(
            serde_json::json!({"path": "/v1/ingest", "drop_answer": true}),
        ))
        .unwrap();
        let refuse = FaultKind::Refuse {
            status: 429,
            retry_after: Some(1),
        };
        assert_eq!(f.take("/v1/handshake"), None);
        assert_eq!(f.take("/v1/ingest"), Some(refuse));
        assert_eq!(f.take("/v1/ingest"), Some(refuse));
        assert_eq!(f.take("/v1/ingest"), Some(FaultKind::DropAnswer));
        assert_eq!(f.take("/v1/ingest"), None);
        f.arm(req(
            serde_json::json!({"path": "/v1/redeem", "status": 503}),
        ))
        .unwrap();
        f.clear();
        assert_eq!(f.take("/v1/redeem"), None);
    }

    #[test]
    fn bad_fault_requests_are_refused() {
        let f = Faults::default();
        for v in [
            serde_json::json!({"count": 1, "status": 429}),
            serde_json::json!({"path": "/admin/tenants", "status": 429}),
            serde_json::json!({"path": "/v1/ingest", "count": 0, "status": 429}),
            serde_json::json!({"path": "/v1/ingest", "status": 200}),
            serde_json::json!({"path": "/v1/ingest"}),
            serde_json::json!({"path": "/v1/ingest", "drop_answer": true, "status": 503}),
        ] {
            let e = f.arm(req(v.clone())).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidArgument, "{v}");
        }
        assert_eq!(f.take("/v1/ingest"), None);
    }

    #[test]
    fn statuses_map_to_their_codes() {
        assert_eq!(code_for_status(429), ErrorCode::RateLimited);
        assert_eq!(code_for_status(503), ErrorCode::ServiceUnavailable);
        assert_eq!(code_for_status(500), ErrorCode::Internal);
        assert_eq!(code_for_status(413).http_status(), 413);
        let e = refusal_error(429, Some(1));
        assert_eq!(
            (e.code(), e.retry_after()),
            (ErrorCode::RateLimited, Some(1))
        );
    }
}
