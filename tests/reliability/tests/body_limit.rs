//! A body limit in front of the service (a reverse proxy or load balancer
//! allowing less than the service does): it refuses an oversized request by
//! its headers — answers 413 `batch_too_large` and closes without reading the
//! body. The agent, over the real HTTP transport, must read that answer (not
//! see a broken pipe and retry the same batch forever), split the batch and
//! deliver every event exactly once, in order.

use edrlink_core::telemetry::{Event, GenericEvent};
use edrlink_core::transport::{HttpOptions, HttpTransport};
use edrlink_reliability::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the limiting proxy saw: (path, content length, refused).
type Seen = Arc<Mutex<Vec<(String, usize, bool)>>>;

/// Reads a request head (up to and including the blank line).
fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).ok()? != 1 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).ok()
}

/// One connection through the proxy: refuse by `Content-Length` above
/// `limit`, otherwise forward the request to `upstream` (with
/// `Connection: close`) and relay the answer.
fn serve(mut c: TcpStream, upstream: SocketAddr, limit: usize, seen: Seen) {
    let Some(head) = read_head(&mut c) else {
        return;
    };
    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let refused = len > limit;
    seen.lock().unwrap().push((path, len, refused));
    if refused {
        let p = format!(
            r#"{{"type":"urn:edrlink:error:batch_too_large","title":"request body over the proxy's {limit} byte limit","status":413,"code":"batch_too_large"}}"#
        );
        let _ = write!(
            c,
            "HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{p}",
            p.len()
        );
        return; // closed with the body unread
    }
    let mut body = vec![0u8; len];
    if c.read_exact(&mut body).is_err() {
        return;
    }
    let head: String = head
        .trim_end()
        .lines()
        .filter(|l| {
            !l.to_ascii_lowercase().starts_with("connection:")
                && !l.to_ascii_lowercase().starts_with("expect:")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    let Ok(mut u) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = u.write_all(format!("{head}connection: close\r\n\r\n").as_bytes());
    let _ = u.write_all(&body);
    let mut answer = Vec::new();
    let _ = u.read_to_end(&mut answer);
    let _ = c.write_all(&answer);
}

/// Serves the limiting proxy on `l` in front of `upstream`.
fn run_proxy(l: TcpListener, upstream: SocketAddr, limit: usize, seen: Seen) {
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let seen = seen.clone();
            std::thread::spawn(move || serve(c, upstream, limit, seen));
        }
    });
}

/// Incompressible text (gzip cannot shrink the batch under the limit).
fn noise(seed: u64, n: usize) -> String {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                    [(x % 64) as usize],
            )
        })
        .collect()
}

/// Sends 16 incompressible events of 100 KiB (one batch of ~2.2 MiB on the
/// wire) through a proxy refusing bodies over `limit`; checks that each event
/// is stored once, in order, with nothing dropped; returns the ingest
/// requests the proxy saw as (content length, refused).
fn deliver_through_limit(limit: usize) -> Vec<(usize, bool)> {
    let dir = tempfile::tempdir().unwrap();
    // Bound first: the service puts the proxy's URL in its tokens.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let seen = Seen::default();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let svc = Service::start(dir.path(), |s| {
        // The service itself accepts 4 MiB batches; the proxy in front does not.
        s.policy.max_batch_bytes = 4 * 1024 * 1024;
        s.public_url = Some(proxy_url.clone());
    });
    run_proxy(listener, svc.addr, limit, seen.clone());
    svc.setup_tenant();
    let a = agent(
        &dir.path().join("agent"),
        fast_config("limited"),
        HttpTransport::new(HttpOptions {
            no_proxy: true,
            ..HttpOptions::default()
        })
        .unwrap(),
    );
    a.enroll(&svc.token()).unwrap();
    // 16 events of 100 KiB: one batch of ~2.2 MiB on the wire (base64), over
    // the limit; each half (~1.1 MiB) fits.
    for n in 0..16u64 {
        a.submit(Event::Generic(GenericEvent {
            time: edrlink_core::encoding::rfc3339(1_800_000_000),
            name: format!("e{n}"),
            data: serde_json::json!({ "blob": noise(n + 1, 100 * 1024) }),
        }))
        .unwrap();
    }
    let out = a.flush(120).unwrap();
    assert_eq!(out.queued, 0, "{:?}", a.health().last_error);
    assert!(a.health().drops.is_empty(), "{:?}", a.health().drops);

    let installation = a.credential().unwrap().installation_id.clone();
    let want: Vec<String> = (0..16).map(|n| format!("e{n}")).collect();
    assert_eq!(
        svc.stored_names(&installation),
        want,
        "each event once, in order"
    );

    let seen = seen.lock().unwrap().clone();
    seen.into_iter()
        .filter(|(p, _, _)| p == "/v1/ingest")
        .map(|(_, len, refused)| (len, refused))
        .collect()
}

#[test]
fn batch_over_a_proxy_body_limit_is_split_and_delivered() {
    // Each half (~1.1 MiB) fits under 1.5 MiB.
    const LIMIT: usize = 1536 * 1024;
    let ingests = deliver_through_limit(LIMIT);
    // The proxy closes without reading the body, as nginx does: a client still
    // writing may get a reset instead of the 413 (TCP drops the unread answer),
    // which is a transport error it retries. So the whole batch may be refused
    // more than once; once the 413 is read, it is split and never sent whole again.
    let refused = ingests.iter().filter(|(_, r)| *r).count();
    assert!(refused >= 1, "the oversized batch was refused: {ingests:?}");
    assert!(
        ingests[..refused].iter().all(|(_, r)| *r) && ingests[refused..].iter().all(|(_, r)| !*r),
        "refusals come first, then only split halves: {ingests:?}"
    );
    assert!(
        ingests[0].1 && ingests[0].0 > LIMIT,
        "the first send was the whole batch: {ingests:?}"
    );
    assert!(
        ingests.len() <= 4,
        "split and sent, not retried over and over: {ingests:?}"
    );
}

#[test]
fn batch_four_times_over_a_body_limit_is_split_until_it_fits_and_nothing_is_dropped() {
    // A quarter of the batch (~550 KiB) fits under 600 KiB, a half does not:
    // splitting once and then dropping what still does not fit lost events.
    const LIMIT: usize = 600 * 1024;
    let ingests = deliver_through_limit(LIMIT);
    assert!(
        ingests.iter().all(|(len, r)| *r == (*len > LIMIT)),
        "only oversized requests were refused: {ingests:?}"
    );
    assert!(
        ingests.iter().filter(|(_, r)| !*r).count() >= 4,
        "the batch went in quarters: {ingests:?}"
    );
    assert!(
        ingests.len() <= 24,
        "bounded number of attempts, not a loop: {ingests:?}"
    );
}
