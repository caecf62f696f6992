//! Reading request bodies under a limit, and refusing a request (413, 429)
//! in a way every HTTP/1.1 client can read.
//!
//! Answering before the body is read and then closing the connection makes
//! the kernel reset it (unread data in the receive buffer): a client still
//! writing its body then fails with `Broken pipe` or `Connection reset` and
//! never sees the answer — it would retry forever instead of splitting a
//! batch on 413. So a refusal:
//! - with `Expect: 100-continue` is answered at once, *without* inviting the
//!   body (no `100 Continue` is sent) and the client never sends it;
//! - otherwise reads and discards the body up to a bound (the client's write
//!   completes, then it reads the answer); only a body declared larger than
//!   the bound is refused without draining, with `Connection: close`.
//!
//! A body larger than the route's limit is refused on `Content-Length` before
//! anything is read; a chunked body is refused as soon as it passes the limit.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use http_body_util::BodyExt as _;

/// Most bytes read and discarded to let a refused client finish writing
/// (a bit more than the largest route limit, so a slightly oversized
/// ingest body is always drained).
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Why a body was not read.
pub(crate) enum BodyRefusal {
    /// Larger than the limit (answer 413).
    TooLarge,
    /// The connection failed or timed out while reading.
    Broken,
}

fn content_length(req: &Request) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

fn expects_continue(req: &Request) -> bool {
    req.headers()
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// True when the declared length exceeds `limit` (refuse before reading).
pub(crate) fn declared_over(req: &Request, limit: usize) -> bool {
    content_length(req).is_some_and(|n| n > limit as u64)
}

/// Reads the whole body if it is at most `limit` bytes.
pub(crate) async fn read_limited(req: Request, limit: usize) -> Result<Bytes, (BodyRefusal, Body)> {
    let hint = content_length(&req).unwrap_or(0).min(limit as u64) as usize;
    let mut body = req.into_body();
    let mut buf: Vec<u8> = Vec::with_capacity(hint);
    loop {
        match body.frame().await {
            None => return Ok(Bytes::from(buf)),
            Some(Err(_)) => return Err((BodyRefusal::Broken, Body::empty())),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    if buf.len() + d.len() > limit {
                        return Err((BodyRefusal::TooLarge, body));
                    }
                    buf.extend_from_slice(&d);
                }
            }
        }
    }
}

/// Reads and discards up to `bound` more bytes; true when the body ended.
async fn drain(mut body: Body, bound: u64) -> bool {
    let mut seen = 0u64;
    while seen <= bound {
        match body.frame().await {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    seen += d.len() as u64;
                }
            }
        }
    }
    false
}

fn close(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Sends `resp` instead of reading `req`'s body, so that the client reads it
/// (see the module documentation); `bound` is the most bytes drained.
pub(crate) async fn refuse(req: Request, resp: Response, bound: u64) -> Response {
    if expects_continue(&req) {
        // The body was never invited; the client must not send it on this
        // connection any more.
        return close(resp);
    }
    match content_length(&req) {
        Some(0) => return resp,
        Some(n) if n > bound => return close(resp),
        _ => {}
    }
    finish(req.into_body(), resp, bound).await
}

/// Drains the rest of a body that was partly read, then answers `resp`.
pub(crate) async fn finish(body: Body, resp: Response, bound: u64) -> Response {
    if drain(body, bound).await {
        resp
    } else {
        close(resp)
    }
}
