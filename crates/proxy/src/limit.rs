//! Request rate limits per client address (`limit-rps`, `limit-rpm`), on atomics: no lock and no
//! allocation per request, shared by every worker.
//!
//! Each rate is a generic cell rate algorithm (GCRA), the leaky bucket of nginx's `limit_req`
//! with `burst` and `nodelay`: a client may send `burst` requests at once beyond the first, then
//! one per interval. Each client's state is one `AtomicU64` (its "theoretical arrival time") in a
//! fixed table of [`SLOTS`], found by a hash of its address; a tag of the hash tells clients that
//! share a slot apart, and a newcomer takes the slot over (an evicted client starts afresh, as
//! nginx's zone evicts its oldest entries when full).

use model::{Cidr, RateLimit};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Client slots per rate and Ingress: 128 KiB each.
const SLOTS: usize = 16 * 1024;
const TIME_BITS: u32 = 48;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// The limits of one Ingress (its zone), shared by its routes and carried across tables.
pub struct Limiter {
    allow: Vec<Cidr>,
    rates: Vec<Gcra>,
    /// `limit-connections`: requests in flight per client.
    connections: Option<InFlight>,
    /// Times are microseconds since this (48 bits: 8 years).
    epoch: Instant,
}

struct Gcra {
    /// Microseconds between two requests at the rate.
    interval: u64,
    /// How far ahead of now a client's arrival time may run: `burst` intervals.
    tolerance: u64,
    slots: Box<[AtomicU64]>,
}

impl Gcra {
    /// `rate` requests per `per_us` microseconds, `multiplier` times the rate at once.
    fn new(rate: u32, per_us: u64, multiplier: u32) -> Self {
        let interval = (per_us / u64::from(rate.max(1))).max(1);
        let burst = u64::from(rate) * u64::from(multiplier);
        Self {
            interval,
            tolerance: interval.saturating_mul(burst),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Count a request of the client hashed to `hash` at `now`, if it is within the rate.
    fn admit(&self, hash: u64, now: u64) -> bool {
        let slot = &self.slots[(hash as usize) & (SLOTS - 1)];
        let tag = hash >> TIME_BITS;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let mine = current >> TIME_BITS == tag;
            let arrival = if mine { current & TIME_MASK } else { 0 }.max(now);
            if arrival - now > self.tolerance {
                return false;
            }
            let next = (tag << TIME_BITS) | ((arrival + self.interval) & TIME_MASK);
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }
}

impl Limiter {
    pub fn new(limit: &RateLimit) -> Self {
        let mut rates = Vec::new();
        if limit.rps > 0 {
            rates.push(Gcra::new(limit.rps, 1_000_000, limit.burst_multiplier));
        }
        if limit.rpm > 0 {
            rates.push(Gcra::new(limit.rpm, 60_000_000, limit.burst_multiplier));
        }
        Self {
            allow: limit.allow.clone(),
            rates,
            connections: (limit.connections > 0).then(|| InFlight::new(limit.connections)),
            epoch: Instant::now(),
        }
    }

    /// Enter a request of `client` under `limit-connections`: `Ok(None)` when there is no such
    /// limit (or the client is allowed), `Ok(Some(guard))` counted until the guard drops,
    /// `Err(())` over the limit (not counted).
    pub fn enter(self: &Arc<Self>, client: IpAddr) -> Result<Option<InFlightGuard>, ()> {
        let Some(conns) = &self.connections else {
            return Ok(None);
        };
        if self.allow.iter().any(|net| net.contains(client)) {
            return Ok(None);
        }
        let slots = conns.slots(hash_of(client));
        if !conns.enter(slots) {
            return Err(());
        }
        Ok(Some(InFlightGuard {
            limiter: Arc::clone(self),
            slots,
        }))
    }

    /// Count a request of `client`; `false`: it is over a limit (and not counted against the
    /// limits after the one it is over).
    pub fn admit(&self, client: IpAddr) -> bool {
        if self.allow.iter().any(|net| net.contains(client)) {
            return true;
        }
        let hash = hash_of(client);
        let now = (self.epoch.elapsed().as_micros() as u64) & TIME_MASK;
        self.rates.iter().all(|rate| rate.admit(hash, now))
    }
}

/// The hash a client's state is found by (an IPv4-mapped address is its IPv4 one).
fn hash_of(client: IpAddr) -> u64 {
    let client = match client {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
        v4 => v4,
    };
    match client {
        IpAddr::V4(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
        IpAddr::V6(a) => xxhash_rust::xxh3::xxh3_64(&a.octets()),
    }
}

/// Counters of requests in flight per client, in a fixed table (bounded memory: a client's
/// counters go back to zero when its last request ends, nothing is kept per client). Each client
/// has two counters, found by two halves of its hash, and counts as the smaller (a count-min
/// sketch): never less than its own requests in flight, more only when both its counters are
/// shared with clients that have requests in flight at the same time.
struct InFlight {
    max: u32,
    counters: Box<[AtomicU32]>,
}

/// Counters per zone: 2 x 64 KiB.
const COUNTERS: usize = 32 * 1024;

impl InFlight {
    fn new(max: u32) -> Self {
        Self {
            max,
            counters: (0..COUNTERS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The client's two counters: one in each half of the table.
    fn slots(&self, hash: u64) -> [usize; 2] {
        let half = COUNTERS / 2;
        [
            (hash as usize) % half,
            half + ((hash >> 32) as usize) % half,
        ]
    }

    /// Count a request in; `false` (and not counted) when the client is at its limit.
    fn enter(&self, slots: [usize; 2]) -> bool {
        let mut seen = u32::MAX;
        for &s in &slots {
            seen = seen.min(self.counters[s].fetch_add(1, Ordering::AcqRel));
        }
        if seen < self.max {
            return true;
        }
        self.leave(slots);
        false
    }

    fn leave(&self, slots: [usize; 2]) {
        for &s in &slots {
            self.counters[s].fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A request counted under `limit-connections` until this drops (when its response body ends).
pub struct InFlightGuard {
    limiter: Arc<Limiter>,
    slots: [usize; 2],
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if let Some(conns) = &self.limiter.connections {
            conns.leave(self.slots);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(rps: u32, rpm: u32, burst_multiplier: u32, allow: &[&str]) -> RateLimit {
        RateLimit {
            zone: "default/web".into(),
            rps,
            rpm,
            connections: 0,
            burst_multiplier,
            allow: allow.iter().filter_map(|a| Cidr::parse(a)).collect(),
        }
    }

    #[test]
    fn a_burst_then_the_rate() {
        // 2 r/s with burst 2 x 1: the first request and two more at once, then one each 500 ms.
        let g = Gcra::new(2, 1_000_000, 1);
        let admitted = (0..10).filter(|_| g.admit(7, 0)).count();
        assert_eq!(admitted, 3);
        assert!(!g.admit(7, 499_999));
        assert!(g.admit(7, 500_000));
        assert!(!g.admit(7, 500_001));
        // Another client has its own budget.
        assert!(g.admit(8, 500_001));
        // After a quiet second the burst is back.
        assert_eq!((0..10).filter(|_| g.admit(7, 3_000_000)).count(), 3);
    }

    #[test]
    fn a_client_taking_over_a_slot_starts_afresh() {
        let g = Gcra::new(1, 1_000_000, 1);
        let a = 5;
        let b = 5 | (1 << 60);
        assert!(g.admit(a, 0) && g.admit(a, 0) && !g.admit(a, 0));
        assert!(g.admit(b, 0), "same slot, another tag");
    }

    #[test]
    fn allowed_networks_are_never_limited() {
        let l = Limiter::new(&limit(1, 0, 1, &["10.0.0.0/8"]));
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        assert!((0..100).all(|_| l.admit(inside)));
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!((0..100).filter(|_| l.admit(outside)).count(), 2);
    }

    #[test]
    fn requests_in_flight_per_client_and_back_to_zero() {
        let mut l = limit(0, 0, 1, &["10.0.0.0/8"]);
        l.connections = 2;
        let l = Arc::new(Limiter::new(&l));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = l.enter(a).unwrap().unwrap();
        let second = l.enter(a).unwrap().unwrap();
        assert!(l.enter(a).is_err(), "a third at once");
        assert!(l.enter(b).unwrap().is_some(), "another client has its own");
        drop(first);
        let third = l.enter(a).unwrap().unwrap();
        drop((second, third));
        let conns = l.connections.as_ref().unwrap();
        assert!(conns
            .counters
            .iter()
            .all(|c| c.load(Ordering::Relaxed) == 0));
        let inside: IpAddr = "10.1.2.3".parse().unwrap();
        assert!((0..10).all(|_| l.enter(inside).unwrap().is_none()));
    }

    #[test]
    fn per_minute_rates_count_too() {
        let l = Limiter::new(&limit(0, 60, 1, &[]));
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!((0..1000).filter(|_| l.admit(client)).count(), 61);
    }
}
