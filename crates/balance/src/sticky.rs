//! The stickiness layer: honour a session's cookie when its endpoint can still take it, otherwise
//! place the session anew with the backend's algorithm and hand back the cookie to set.
//!
//! A [`BackendBalancer`] is built once per snapshot for each backend and shared by every request;
//! picking allocates nothing except the new cookie value for new sessions.

use crate::algorithm::{ConsistentHash, RoundRobin};
use crate::cookie::{self, CookieKey, Pin, Session};
use model::{Affinity, AffinityMode, Backend, Endpoint};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// The outcome of a sticky pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyPick {
    /// Index into the backend's endpoints.
    pub endpoint: usize,
    /// The cookie value to set: `Some` when the session was placed anew (no cookie, or one that was
    /// garbage, forged, from another route, or named an endpoint that is gone), `None` when the
    /// client's cookie was honoured.
    pub new_cookie: Option<String>,
}

/// Keys drawn for a balanced session before falling back on pinning the endpoint itself.
const KEY_DRAWS: usize = 32;

/// Selection state for one backend.
#[derive(Debug)]
pub struct BackendBalancer {
    endpoints: Vec<Endpoint>,
    /// Endpoint id -> index, for endpoints that may still serve pinned sessions.
    by_id: HashMap<u64, usize>,
    round_robin: RoundRobin,
    /// Only built when a route to this backend uses balanced affinity or `upstream-hash-by`.
    ring: Option<ConsistentHash>,
    /// Sessions placed on each endpoint, halved by [`BackendBalancer::decay`]: the load that
    /// bounded placement compares against its mean.
    loads: Box<[AtomicU32]>,
    tag: u64,
}

impl BackendBalancer {
    /// `with_ring`: build the consistent-hash ring for balanced affinity. `rr_start` offsets round
    /// robin so that reloads do not all restart on the first endpoint. `previous`: the balancer of
    /// the same backend in the previous snapshot, whose endpoint loads carry over.
    pub fn new(
        backend: &Backend,
        with_ring: bool,
        rr_start: usize,
        previous: Option<&BackendBalancer>,
    ) -> Self {
        let endpoints = backend.endpoints.clone();
        let by_id = endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.accepts_pinned())
            .map(|(i, e)| (e.id.0, i))
            .collect();
        let ring = with_ring.then(|| {
            let ids: Vec<u64> = endpoints.iter().map(|e| e.id.0).collect();
            ConsistentHash::new(&ids)
        });
        let loads = endpoints
            .iter()
            .map(|e| {
                let carried = previous
                    .and_then(|p| Some(p.loads[*p.by_id.get(&e.id.0)?].load(Ordering::Relaxed)));
                AtomicU32::new(carried.unwrap_or(0))
            })
            .collect();
        Self {
            round_robin: RoundRobin::new(endpoints.len(), rr_start),
            endpoints,
            by_id,
            ring,
            loads,
            tag: cookie::backend_tag(&backend.name),
        }
    }

    /// Is `value` a session this backend issued (with `key`) for sessions of `affinity` (its
    /// scope), and not past the affinity's absolute timeout at `now`? Whether or not its endpoint
    /// still exists: canary stickiness and weighted backends ask which backend a session belongs
    /// to.
    pub fn recognizes(&self, key: &CookieKey, affinity: &Affinity, value: &str, now: u32) -> bool {
        self.session(key, affinity, value, now).is_some()
    }

    /// The tag of this backend's sessions of `affinity`: the backend's, with the affinity's scope
    /// folded in, so two Gateway API rules that send to the same backend never honour each
    /// other's sessions, while Ingress sessions (scope 0) keep the backend's own tag.
    fn tag_of(&self, affinity: &Affinity) -> u64 {
        self.tag ^ affinity.scope
    }

    /// The session a value stands for, if this backend issued it for `affinity` and it is not
    /// past the affinity's absolute timeout (Gateway API `absoluteTimeout`, judged from the
    /// value's own `issued`, whatever the cookie's attributes let the client keep).
    fn session(
        &self,
        key: &CookieKey,
        affinity: &Affinity,
        value: &str,
        now: u32,
    ) -> Option<Session> {
        let session = key.decode(self.tag_of(affinity), value).ok()?;
        let expired = affinity
            .absolute_timeout
            .is_some_and(|limit| u64::from(now.saturating_sub(session.issued)) > limit);
        (!expired).then_some(session)
    }

    /// Halve every endpoint's load, so that it reflects recent placements (called periodically).
    pub fn decay(&self) {
        for l in self.loads.iter() {
            let _ = l.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v / 2));
        }
    }

    /// Sessions placed on each endpoint (decayed), in endpoint order.
    pub fn loads(&self) -> Vec<u32> {
        self.loads
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect()
    }

    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// A pick for a request without affinity: round robin over ready endpoints.
    pub fn pick(&self) -> Option<usize> {
        self.pick_excluding(&[])
    }

    /// A pick for a request of a route that hashes (`upstream-hash-by`): the endpoint the ring maps
    /// `key` to among those that take new requests, so the same key keeps reaching the same pod
    /// while it exists; with `subset` (`upstream-hash-by-subset-size`), one of the `subset`
    /// endpoints the key maps to, at random. Round robin when the balancer has no ring.
    pub fn pick_hashed(&self, key: u64, subset: Option<u32>) -> Option<usize> {
        let allowed = |i: usize| self.endpoints[i].accepts_new();
        match (&self.ring, subset) {
            (Some(ring), None) => ring.select(key, &allowed),
            (Some(ring), Some(size)) => {
                ring.select_subset(key, size as usize, random_u64(), &allowed)
            }
            (None, _) => self.pick(),
        }
    }

    /// Same, avoiding the endpoints a failed request already tried.
    pub fn pick_excluding(&self, tried: &[usize]) -> Option<usize> {
        self.round_robin.select(0, &|i| {
            self.endpoints[i].accepts_new() && !tried.contains(&i)
        })
    }

    /// A pick for a request of a route with affinity. `values` are the session values the
    /// request carries, in the order the client sent them: every cookie with the route's name, or
    /// the values of its session header ([`crate::cookie::session_values`]). The first valid one
    /// whose endpoint can still take it wins.
    pub fn pick_sticky<'c>(
        &self,
        key: &CookieKey,
        affinity: &Affinity,
        values: impl Iterator<Item = &'c str>,
        now: u32,
    ) -> Option<StickyPick> {
        for value in values {
            if let Some(session) = self.session(key, affinity, value, now) {
                if let Some(endpoint) = self.pinned(session.pin) {
                    return Some(StickyPick {
                        endpoint,
                        new_cookie: self.slide(key, affinity, session, now),
                    });
                }
            }
        }
        self.place(key, affinity, now, &[])
    }

    /// Place a session anew, avoiding the endpoints a failed request already tried: failover. The
    /// new cookie names the new endpoint, so the session re-pins once instead of failing over on
    /// every request.
    pub fn repick_sticky(
        &self,
        key: &CookieKey,
        affinity: &Affinity,
        now: u32,
        tried: &[usize],
    ) -> Option<StickyPick> {
        self.place(key, affinity, now, tried)
    }

    /// Sliding expiry: a fresh cookie with the same pin when less than half the lifetime is left.
    /// Never with an absolute timeout, which counts from the session's first value.
    fn slide(&self, key: &CookieKey, a: &Affinity, session: Session, now: u32) -> Option<String> {
        let lifetime = a
            .lifetime()
            .filter(|_| a.sliding && a.absolute_timeout.is_none())?;
        let age = u64::from(now.saturating_sub(session.issued));
        (age > lifetime / 2).then(|| {
            key.encode(
                self.tag_of(a),
                &Session {
                    pin: session.pin,
                    issued: now,
                },
            )
        })
    }

    /// The highest load a new balanced session may join: `factor` times the mean load of the
    /// endpoints that may take it (counting the session being placed), at least 1.
    fn load_bound(&self, factor: u32, eligible: &impl Fn(usize) -> bool) -> u64 {
        let (mut total, mut n) = (1u64, 0u64);
        for (i, l) in self.loads.iter().enumerate() {
            if eligible(i) {
                total += u64::from(l.load(Ordering::Relaxed));
                n += 1;
            }
        }
        (total * u64::from(factor)).div_ceil(n.max(1) * 100).max(1)
    }

    fn place(
        &self,
        key: &CookieKey,
        affinity: &Affinity,
        now: u32,
        tried: &[usize],
    ) -> Option<StickyPick> {
        let eligible = |i: usize| self.endpoints[i].accepts_new() && !tried.contains(&i);
        let bound = match (affinity.mode, affinity.balance_factor) {
            (AffinityMode::Balanced, Some(f)) => self.load_bound(f, &eligible),
            _ => u64::MAX,
        };
        let allowed =
            |i: usize| eligible(i) && u64::from(self.loads[i].load(Ordering::Relaxed)) < bound;
        let (endpoint, pin) = match (affinity.mode, &self.ring) {
            (AffinityMode::Balanced, Some(ring)) => {
                // The key must lead to its endpoint on every later request too, where `pinned`
                // walks the ring over all serving endpoints. So rather than walking past an
                // endpoint that may not take this session (draining, or just failed), draw keys
                // until one lands on an endpoint that may: a few draws at most while most
                // endpoints are allowed. If none does, pin the endpoint itself.
                // With a load bound, the same draws also skip endpoints at the bound: consistent
                // hashing with bounded loads, keeping every key's mapping a plain ring lookup.
                let drawn = (0..KEY_DRAWS).find_map(|_| {
                    let k = random_u64();
                    let i = ring.select(k, &|i| self.endpoints[i].accepts_pinned())?;
                    allowed(i).then_some((i, Pin::Key(k)))
                });
                match drawn {
                    Some(d) => d,
                    None => {
                        let i = self
                            .round_robin
                            .select(0, &allowed)
                            .or_else(|| self.round_robin.select(0, &eligible))?;
                        (i, Pin::Endpoint(self.endpoints[i].id))
                    }
                }
            }
            _ => {
                let i = self.round_robin.select(0, &allowed)?;
                (i, Pin::Endpoint(self.endpoints[i].id))
            }
        };
        self.loads[endpoint].fetch_add(1, Ordering::Relaxed);
        let value = key.encode(self.tag_of(affinity), &Session { pin, issued: now });
        Some(StickyPick {
            endpoint,
            new_cookie: Some(value),
        })
    }

    /// Where an existing session goes, if anywhere. An endpoint pin holds while the endpoint still
    /// serves (also while it terminates); a key pin follows the ring, which skips endpoints that
    /// stopped serving.
    fn pinned(&self, pin: Pin) -> Option<usize> {
        match pin {
            Pin::Endpoint(id) => self.by_id.get(&id.0).copied(),
            Pin::Key(k) => self
                .ring
                .as_ref()?
                .select(k, &|i| self.endpoints[i].accepts_pinned()),
        }
    }
}

/// A random number: session keys (so that sessions spread evenly over the ring and cannot be
/// predicted) and canary weights. From a per-thread generator (BLAKE3 in keyed XOF mode over a
/// counter, the key drawn from the OS once per thread): no system call per new session.
pub fn random_u64() -> u64 {
    RNG.with_borrow_mut(Rng::next_u64)
}

thread_local! {
    static RNG: std::cell::RefCell<Rng> = std::cell::RefCell::new(Rng::seeded());
}

struct Rng {
    key: [u8; 32],
    counter: u64,
    out: [u8; 256],
    used: usize,
}

impl Rng {
    fn seeded() -> Self {
        let mut key = [0u8; 32];
        if getrandom::fill(&mut key).is_err() {
            // No entropy source at all: the clock and the thread still spread sessions (the
            // cookie's MAC, not the key, is what protects them).
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let thread = format!("{:?}", std::thread::current().id());
            key = *blake3::hash(format!("{t}/{thread}").as_bytes()).as_bytes();
        }
        Self {
            key,
            counter: 0,
            out: [0; 256],
            used: 256,
        }
    }

    fn next_u64(&mut self) -> u64 {
        if self.used + 8 > self.out.len() {
            let mut h = blake3::Hasher::new_keyed(&self.key);
            h.update(&self.counter.to_le_bytes());
            h.finalize_xof().fill(&mut self.out);
            self.counter += 1;
            self.used = 0;
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.out[self.used..self.used + 8]);
        self.used += 8;
        u64::from_le_bytes(v)
    }
}

#[cfg(test)]
mod tests;
