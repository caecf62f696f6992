//! Flood limits for the partner API, checked before a request body is read.
//!
//! Signed routes are limited per installation by the core (`rate_limited`).
//! What an unauthenticated client can do is limited here, by the TCP peer
//! address (IPv6 by /64, since one host usually owns a whole /64):
//! - `POST /v1/redeem` and `POST /v1/downlevel/register` (no credential yet):
//!   a token bucket per address and route, and one per route for all
//!   addresses together (a flood from many addresses still cannot take more
//!   than the route's share);
//! - failed authentication anywhere on `/v1` (answers 400, 401 and 413 are what
//!   junk gets): each one takes a token from the address's failure bucket;
//!   while it is empty, every partner request from that address is refused
//!   before its body is read. Authenticated successes cost nothing, so a
//!   fleet behind the same address as a flood is refused only while the
//!   flood keeps failing, and a working fleet alone never is.
//!
//! Refusals are `rate_limited` (429) with `Retry-After`. Memory is bounded:
//! at most [`FloodLimits::max_addresses`] buckets per table; when full, idle
//! (refilled) buckets are forgotten, and addresses beyond the bound share one
//! overflow bucket.

use edrlink_core::service::RateLimit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The flood limits of the partner API (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    /// Per client address and route, for `/v1/redeem` and `/v1/downlevel/register`.
    pub per_address: RateLimit,
    /// Per route (all addresses together), for the same routes.
    pub per_route: RateLimit,
    /// Failed requests (400, 401, 413) per client address; while empty, every
    /// partner request from that address is refused.
    pub failures: RateLimit,
    /// Most addresses tracked per table.
    pub max_addresses: usize,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            // A site enrolling many endpoints at once behind one NAT gets
            // through at 20 per second (clients honour Retry-After).
            per_address: RateLimit {
                burst: 100.0,
                per_second: 20.0,
            },
            per_route: RateLimit {
                burst: 1000.0,
                per_second: 200.0,
            },
            failures: RateLimit {
                burst: 100.0,
                per_second: 10.0,
            },
            max_addresses: 65_536,
        }
    }
}

impl FloodLimits {
    /// No limits (benchmarks that measure something else).
    pub fn off() -> Self {
        let wide = RateLimit {
            burst: 1e12,
            per_second: 1e12,
        };
        FloodLimits {
            per_address: wide,
            per_route: wide,
            failures: wide,
            max_addresses: 1,
        }
    }
}

/// Which limits a partner route is under.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) enum RouteClass {
    /// `POST /v1/redeem`.
    Redeem,
    /// `POST /v1/downlevel/register`.
    Register,
    /// Every other partner route (signed: limited per installation by the core).
    Signed,
}

impl RouteClass {
    pub(crate) fn of(path: &str) -> RouteClass {
        match path {
            "/v1/redeem" => RouteClass::Redeem,
            "/v1/downlevel/register" => RouteClass::Register,
            _ => RouteClass::Signed,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rl: RateLimit, now: Instant) -> Self {
        Bucket {
            tokens: rl.burst,
            at: now,
        }
    }

    fn refill(&mut self, rl: RateLimit, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rl.per_second).min(rl.burst);
        self.at = now;
    }

    /// Seconds until one token is there (at least 1: `Retry-After` is whole seconds).
    fn wait(&self, rl: RateLimit) -> u64 {
        let w = ((1.0 - self.tokens) / rl.per_second).ceil();
        if w.is_finite() {
            (w as u64).clamp(1, 86_400)
        } else {
            86_400
        }
    }
}

/// Address key: IPv4 as is, IPv6 by its /64 (v4-mapped as IPv4).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct AddrKey(u128);

impl AddrKey {
    fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(v4) => AddrKey(u32::from(v4) as u128),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey(u32::from(v4) as u128),
                None => AddrKey((u128::from(v6) & !0u128 << 64) | 1),
            },
        }
    }
}

/// One bounded table of buckets keyed by address (and route).
struct Table {
    rl: RateLimit,
    max: usize,
    buckets: HashMap<(AddrKey, RouteClass), Bucket>,
    overflow: Bucket,
}

impl Table {
    fn new(rl: RateLimit, max: usize, now: Instant) -> Self {
        Table {
            rl,
            max: max.max(1),
            buckets: HashMap::new(),
            overflow: Bucket::full(rl, now),
        }
    }

    fn bucket(&mut self, key: (AddrKey, RouteClass), now: Instant) -> &mut Bucket {
        let rl = self.rl;
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max {
            // Forget buckets that are full again: forgetting them changes nothing.
            self.buckets.retain(|_, b| {
                b.refill(rl, now);
                b.tokens < rl.burst
            });
            if self.buckets.len() >= self.max {
                self.overflow.refill(rl, now);
                return &mut self.overflow;
            }
        }
        let b = self
            .buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(rl, now));
        b.refill(rl, now);
        b
    }
}

struct Inner {
    per_address: Table,
    per_route: HashMap<RouteClass, Bucket>,
    failures: Table,
}

/// The limiter of a running service.
pub(crate) struct Limiter {
    cfg: FloodLimits,
    inner: Mutex<Inner>,
}

impl Limiter {
    pub(crate) fn new(cfg: FloodLimits) -> Self {
        let now = Instant::now();
        Limiter {
            cfg,
            inner: Mutex::new(Inner {
                per_address: Table::new(cfg.per_address, cfg.max_addresses, now),
                per_route: HashMap::new(),
                failures: Table::new(cfg.failures, cfg.max_addresses, now),
            }),
        }
    }

    /// Admits a request before its body is read, or says how many seconds to wait.
    pub(crate) fn admit(&self, ip: IpAddr, route: RouteClass) -> Result<(), u64> {
        let now = Instant::now();
        let addr = AddrKey::of(ip);
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let f = g.failures.bucket((addr, RouteClass::Signed), now);
        if f.tokens < 1.0 {
            return Err(f.wait(self.cfg.failures));
        }
        if route == RouteClass::Signed {
            return Ok(());
        }
        let a = g.per_address.bucket((addr, route), now);
        if a.tokens < 1.0 {
            return Err(a.wait(self.cfg.per_address));
        }
        let rl = self.cfg.per_route;
        let r = g
            .per_route
            .entry(route)
            .or_insert_with(|| Bucket::full(rl, now));
        r.refill(rl, now);
        if r.tokens < 1.0 {
            return Err(r.wait(rl));
        }
        r.tokens -= 1.0;
        g.per_address.bucket((addr, route), now).tokens -= 1.0;
        Ok(())
    }

    /// Counts a failed request (400, 401, 413) of this address.
    pub(crate) fn failed(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let b = g
            .failures
            .bucket((AddrKey::of(ip), RouteClass::Signed), now);
        b.tokens = (b.tokens - 1.0).max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(burst: f64, per_second: f64) -> RateLimit {
        RateLimit { burst, per_second }
    }

    fn limits() -> FloodLimits {
        FloodLimits {
            per_address: rl(3.0, 0.001),
            per_route: rl(5.0, 0.001),
            failures: rl(2.0, 0.001),
            max_addresses: 4,
        }
    }

    #[test]
    fn per_address_then_per_route() {
        let l = Limiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.admit(a, RouteClass::Redeem).is_ok());
        }
        let wait = l.admit(a, RouteClass::Redeem).unwrap_err();
        assert!(wait >= 1);
        // Another route of the same address has its own bucket; signed routes none.
        assert!(l.admit(a, RouteClass::Register).is_ok());
        assert!(l.admit(a, RouteClass::Signed).is_ok());
        // The route's global bucket (5) is shared: b gets the 2 left.
        assert!(l.admit(b, RouteClass::Redeem).is_ok());
        assert!(l.admit(b, RouteClass::Redeem).is_ok());
        assert!(l.admit(b, RouteClass::Redeem).is_err());
    }

    #[test]
    fn failures_shut_the_address_out_and_no_other() {
        let l = Limiter::new(limits());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        l.failed(a);
        assert!(l.admit(a, RouteClass::Signed).is_ok());
        l.failed(a);
        assert!(l.admit(a, RouteClass::Signed).is_err());
        assert!(l.admit(a, RouteClass::Redeem).is_err());
        assert!(l.admit(b, RouteClass::Signed).is_ok());
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        let l = Limiter::new(limits());
        l.failed("2001:db8::1".parse().unwrap());
        l.failed("2001:db8::ffff:2".parse().unwrap());
        assert!(l
            .admit("2001:db8::3".parse().unwrap(), RouteClass::Signed)
            .is_err());
        assert!(l
            .admit("2001:db8:0:1::3".parse().unwrap(), RouteClass::Signed)
            .is_ok());
    }

    #[test]
    fn memory_is_bounded_and_overflow_shares_one_bucket() {
        let l = Limiter::new(limits());
        for i in 0..1000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.admit(ip, RouteClass::Redeem);
            l.failed(ip);
        }
        let g = l.inner.lock().unwrap();
        assert!(g.per_address.buckets.len() <= 4);
        assert!(g.failures.buckets.len() <= 4);
        // The overflow bucket was drained by the addresses beyond the bound.
        assert!(g.failures.overflow.tokens < 1.0);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_capped() {
        let b = Bucket {
            tokens: 0.0,
            at: Instant::now(),
        };
        assert_eq!(b.wait(rl(1.0, 2.0)), 1);
        assert_eq!(b.wait(rl(1.0, 0.1)), 10);
        assert_eq!(b.wait(rl(1.0, 0.0)), 86_400);
    }
}
