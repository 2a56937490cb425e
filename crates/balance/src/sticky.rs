//! The stickiness layer: honour a session's cookie when its endpoint can still take it, otherwise
//! place the session anew with the backend's algorithm and hand back the cookie to set.
//!
//! A [`BackendBalancer`] is built once per snapshot for each backend and shared by every request;
//! picking allocates nothing except the new cookie value for new sessions.

use crate::algorithm::{ConsistentHash, RoundRobin, Selection};
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
    /// Only built when a route to this backend uses balanced affinity.
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

    /// Is `value` a cookie this backend issued (with `key`)? Whether or not its endpoint still
    /// exists: canary stickiness asks which side a session belongs to.
    pub fn recognizes(&self, key: &CookieKey, value: &str) -> bool {
        key.decode(self.tag, value).is_ok()
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

    /// Same, avoiding the endpoints a failed request already tried.
    pub fn pick_excluding(&self, tried: &[usize]) -> Option<usize> {
        self.round_robin.select(0, &|i| {
            self.endpoints[i].accepts_new() && !tried.contains(&i)
        })
    }

    /// A pick for a request of a route with cookie affinity. `cookies` are the values of every
    /// cookie with the route's name, in the order the client sent them.
    pub fn pick_sticky<'c>(
        &self,
        key: &CookieKey,
        affinity: &Affinity,
        cookies: impl Iterator<Item = &'c str>,
        now: u32,
    ) -> Option<StickyPick> {
        for value in cookies {
            if let Ok(session) = key.decode(self.tag, value) {
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
    fn slide(&self, key: &CookieKey, a: &Affinity, session: Session, now: u32) -> Option<String> {
        let lifetime = a.lifetime().filter(|_| a.sliding)?;
        let age = u64::from(now.saturating_sub(session.issued));
        (age > lifetime / 2).then(|| {
            key.encode(
                self.tag,
                &Session {
                    pin: session.pin,
                    issued: now,
                },
            )
        })
    }

    /// The highest load a new balanced session may join: `factor` times the mean load of the
    /// endpoints that may take it (counting the session being placed), at least 1.
    fn load_bound(&self, factor: u32, eligible: &dyn Fn(usize) -> bool) -> u64 {
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
        let value = key.encode(self.tag, &Session { pin, issued: now });
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
mod tests {
    use super::*;

    #[test]
    fn random_numbers_are_distinct_balanced_and_differ_between_threads() {
        let draws: Vec<u64> = (0..10_000).map(|_| random_u64()).collect();
        let distinct: std::collections::HashSet<_> = draws.iter().collect();
        assert_eq!(distinct.len(), draws.len());
        for bit in [0, 31, 63] {
            let ones = draws.iter().filter(|v| *v >> bit & 1 == 1).count();
            assert!((4_500..5_500).contains(&ones), "bit {bit}: {ones} of 10000");
        }
        let other = std::thread::spawn(|| (0..100).map(|_| random_u64()).collect::<Vec<_>>())
            .join()
            .unwrap();
        assert!(other.iter().all(|v| !distinct.contains(v)));
    }
    use model::EndpointId;
    use std::net::SocketAddr;

    fn endpoint(i: u64, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        Endpoint {
            id: EndpointId(i * 1000 + 7),
            addr: SocketAddr::from(([127, 0, 0, 10 + i as u8], 8080)),
            ready,
            serving,
            terminating,
            pod: None,
        }
    }

    fn backend(endpoints: Vec<Endpoint>) -> Backend {
        Backend {
            name: "default/web:80".into(),
            endpoints,
        }
    }

    fn ready(n: u64) -> Vec<Endpoint> {
        (0..n).map(|i| endpoint(i, true, true, false)).collect()
    }

    fn key() -> CookieKey {
        CookieKey::from_secret(b"k")
    }

    fn aff(mode: AffinityMode) -> Affinity {
        Affinity::new("c", mode)
    }

    #[test]
    fn sliding_expiry_reissues_past_half_life_only() {
        let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
        for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
            let a = Affinity {
                max_age: Some(100),
                sliding: true,
                ..aff(mode)
            };
            let first = b.pick_sticky(&key(), &a, std::iter::empty(), 1000).unwrap();
            let c = first.new_cookie.unwrap();
            let young = b
                .pick_sticky(&key(), &a, std::iter::once(c.as_str()), 1050)
                .unwrap();
            assert_eq!((young.endpoint, young.new_cookie), (first.endpoint, None));
            let old = b
                .pick_sticky(&key(), &a, std::iter::once(c.as_str()), 1051)
                .unwrap();
            assert_eq!(old.endpoint, first.endpoint);
            let renewed = old.new_cookie.expect("re-issued");
            let s = key().decode(b.tag, &renewed).unwrap();
            assert_eq!(
                (s.pin, s.issued),
                (key().decode(b.tag, &c).unwrap().pin, 1051)
            );
            let not_sliding = Affinity {
                sliding: false,
                ..a.clone()
            };
            let p = b
                .pick_sticky(&key(), &not_sliding, std::iter::once(c.as_str()), 5000)
                .unwrap();
            assert_eq!(p.new_cookie, None);
        }
    }

    fn first_pick(b: &BackendBalancer, mode: AffinityMode) -> StickyPick {
        b.pick_sticky(&key(), &aff(mode), std::iter::empty(), 100)
            .unwrap()
    }

    #[test]
    fn new_session_gets_cookie_and_returning_session_sticks() {
        for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
            let b = BackendBalancer::new(&backend(ready(5)), true, 0, None);
            let first = first_pick(&b, mode);
            let cookie = first.new_cookie.clone().unwrap();
            for _ in 0..20 {
                let again = b
                    .pick_sticky(&key(), &aff(mode), std::iter::once(cookie.as_str()), 200)
                    .unwrap();
                assert_eq!(again.endpoint, first.endpoint);
                assert_eq!(again.new_cookie, None);
            }
        }
    }

    #[test]
    fn garbage_and_foreign_cookies_get_a_new_pick() {
        let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
        let other = BackendBalancer::new(
            &Backend {
                name: "default/other:80".into(),
                endpoints: ready(3),
            },
            true,
            0,
            None,
        );
        let foreign = first_pick(&other, AffinityMode::Persistent)
            .new_cookie
            .unwrap();
        for bad in ["", "garbage", &foreign[..20], &foreign] {
            let p = b
                .pick_sticky(
                    &key(),
                    &aff(AffinityMode::Persistent),
                    std::iter::once(bad),
                    1,
                )
                .unwrap();
            assert!(p.new_cookie.is_some(), "{bad:?} was honoured");
        }
    }

    #[test]
    fn first_valid_cookie_of_several_wins() {
        let b = BackendBalancer::new(&backend(ready(3)), false, 0, None);
        let good = first_pick(&b, AffinityMode::Persistent);
        let cookie = good.new_cookie.unwrap();
        let p = b
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                ["junk", cookie.as_str()].into_iter(),
                1,
            )
            .unwrap();
        assert_eq!((p.endpoint, p.new_cookie), (good.endpoint, None));
    }

    /// Persistent sessions survive any scaling as long as their endpoint exists.
    #[test]
    fn persistent_survives_scale_out_and_in() {
        let five = BackendBalancer::new(&backend(ready(5)), false, 0, None);
        let sessions: Vec<_> = (0..50)
            .map(|_| first_pick(&five, AffinityMode::Persistent))
            .collect();
        let eight = BackendBalancer::new(&backend(ready(8)), false, 3, None);
        let mut three = ready(5);
        three.truncate(3);
        let three = BackendBalancer::new(&backend(three), false, 1, None);
        for s in &sessions {
            let c = s.new_cookie.as_deref().unwrap();
            let p = eight
                .pick_sticky(
                    &key(),
                    &aff(AffinityMode::Persistent),
                    std::iter::once(c),
                    1,
                )
                .unwrap();
            assert_eq!((p.endpoint, p.new_cookie), (s.endpoint, None));
            let p = three
                .pick_sticky(
                    &key(),
                    &aff(AffinityMode::Persistent),
                    std::iter::once(c),
                    1,
                )
                .unwrap();
            if s.endpoint < 3 {
                assert_eq!((p.endpoint, p.new_cookie), (s.endpoint, None));
            } else {
                assert!(p.endpoint < 3 && p.new_cookie.is_some());
            }
        }
    }

    /// Terminating endpoints that still serve keep their sessions but get no new ones; endpoints
    /// that do not serve get nothing.
    #[test]
    fn draining_and_not_serving_endpoints() {
        let b = BackendBalancer::new(&backend(ready(2)), false, 0, None);
        let on_zero = (0..4)
            .map(|_| first_pick(&b, AffinityMode::Persistent))
            .find(|p| p.endpoint == 0)
            .unwrap()
            .new_cookie
            .unwrap();
        let draining = BackendBalancer::new(
            &backend(vec![
                endpoint(0, false, true, true),
                endpoint(1, true, true, false),
            ]),
            false,
            0,
            None,
        );
        let p = draining
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                std::iter::once(on_zero.as_str()),
                1,
            )
            .unwrap();
        assert_eq!((p.endpoint, p.new_cookie), (0, None));
        for _ in 0..5 {
            assert_eq!(first_pick(&draining, AffinityMode::Persistent).endpoint, 1);
            assert_eq!(draining.pick(), Some(1));
        }
        let gone = BackendBalancer::new(
            &backend(vec![
                endpoint(0, false, false, true),
                endpoint(1, true, true, false),
            ]),
            false,
            0,
            None,
        );
        let p = gone
            .pick_sticky(
                &key(),
                &aff(AffinityMode::Persistent),
                std::iter::once(on_zero.as_str()),
                1,
            )
            .unwrap();
        assert_eq!(p.endpoint, 1);
        assert!(p.new_cookie.is_some());
    }

    /// A new balanced session never lands on a draining endpoint, not even on its later requests.
    #[test]
    fn balanced_new_sessions_avoid_draining_endpoints_for_good() {
        let b = BackendBalancer::new(
            &backend(vec![
                endpoint(0, false, true, true),
                endpoint(1, true, true, false),
                endpoint(2, true, true, false),
            ]),
            true,
            0,
            None,
        );
        for _ in 0..300 {
            let p = first_pick(&b, AffinityMode::Balanced);
            assert_ne!(p.endpoint, 0);
            let c = p.new_cookie.unwrap();
            let again = b
                .pick_sticky(
                    &key(),
                    &aff(AffinityMode::Balanced),
                    std::iter::once(c.as_str()),
                    1,
                )
                .unwrap();
            assert_eq!((again.endpoint, again.new_cookie), (p.endpoint, None));
        }
    }

    /// Failover: a re-pick avoids the endpoints tried, and its cookie keeps leading there.
    #[test]
    fn repick_avoids_tried_endpoints_and_sticks() {
        for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
            let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
            for _ in 0..50 {
                let p = b.repick_sticky(&key(), &aff(mode), 1, &[0, 2]).unwrap();
                assert_eq!(p.endpoint, 1);
                let c = p.new_cookie.unwrap();
                let again = b
                    .pick_sticky(&key(), &aff(mode), std::iter::once(c.as_str()), 1)
                    .unwrap();
                assert_eq!((again.endpoint, again.new_cookie), (1, None));
            }
            assert_eq!(b.repick_sticky(&key(), &aff(mode), 1, &[0, 1, 2]), None);
            assert_eq!(b.pick_excluding(&[0, 1]), Some(2));
        }
    }

    #[test]
    fn no_ready_endpoints_no_pick() {
        let b = BackendBalancer::new(
            &backend(vec![endpoint(0, false, false, false)]),
            true,
            0,
            None,
        );
        assert_eq!(b.pick(), None);
        for mode in [AffinityMode::Persistent, AffinityMode::Balanced] {
            assert_eq!(
                b.pick_sticky(&key(), &aff(mode), std::iter::empty(), 1),
                None
            );
        }
        let empty = BackendBalancer::new(&backend(vec![]), true, 0, None);
        assert_eq!(empty.pick(), None);
    }

    /// Max/mean sessions per endpoint over 100k new balanced sessions, without and with the load
    /// bound: ring arcs are not equal, and the bound caps the busiest endpoint.
    #[test]
    fn bounded_load_caps_the_busiest_endpoint() {
        let n = 100_000;
        for endpoints in [5u64, 50] {
            for factor in [None, Some(125), Some(105)] {
                let b = BackendBalancer::new(&backend(ready(endpoints)), true, 0, None);
                let a = Affinity {
                    balance_factor: factor,
                    ..aff(AffinityMode::Balanced)
                };
                let mut counts = vec![0u32; endpoints as usize];
                for _ in 0..n {
                    let p = b.pick_sticky(&key(), &a, std::iter::empty(), 1).unwrap();
                    counts[p.endpoint] += 1;
                }
                let mean = n as f64 / endpoints as f64;
                let ratio = *counts.iter().max().unwrap() as f64 / mean;
                println!(
                    "100k new balanced sessions, {endpoints} endpoints, bound {}: max/mean = {ratio:.3}",
                    factor.map_or("none".to_owned(), |f| format!("{:.2}", f as f64 / 100.0))
                );
                if let Some(f) = factor {
                    assert!(ratio <= f as f64 / 100.0 + 0.01, "{factor:?}: {counts:?}");
                }
                assert_eq!(b.loads(), counts);
            }
        }
    }

    #[test]
    fn loads_carry_over_and_decay() {
        let b = BackendBalancer::new(&backend(ready(3)), true, 0, None);
        for _ in 0..30 {
            first_pick(&b, AffinityMode::Balanced);
        }
        let before = b.loads();
        assert_eq!(before.iter().sum::<u32>(), 30);
        let mut four = ready(4);
        four.rotate_left(1); // a different order: loads follow ids, not positions
        let next = BackendBalancer::new(&backend(four), true, 0, Some(&b));
        let by_id = |bb: &BackendBalancer| {
            let mut v: Vec<(u64, u32)> = bb
                .endpoints()
                .iter()
                .map(|e| e.id.0)
                .zip(bb.loads())
                .collect();
            v.sort();
            v
        };
        let carried = by_id(&next);
        assert_eq!(carried.iter().map(|x| x.1).sum::<u32>(), 30);
        assert_eq!(&carried[..3], &by_id(&b)[..]);
        next.decay();
        assert_eq!(
            next.loads().iter().sum::<u32>(),
            before.iter().map(|v| v / 2).sum::<u32>()
        );
    }

    /// Balanced sessions: scaling 5 -> 6 moves about 1/6 of them, 6 -> 5 moves back only those.
    #[test]
    fn balanced_moves_few_sessions_on_scaling() {
        let five = BackendBalancer::new(&backend(ready(5)), true, 0, None);
        let six = BackendBalancer::new(&backend(ready(6)), true, 0, None);
        let n = 3000;
        let sessions: Vec<_> = (0..n)
            .map(|_| first_pick(&five, AffinityMode::Balanced))
            .collect();
        let mut moved = 0;
        for s in &sessions {
            let c = s.new_cookie.as_deref().unwrap();
            let p = six
                .pick_sticky(&key(), &aff(AffinityMode::Balanced), std::iter::once(c), 1)
                .unwrap();
            assert_eq!(p.new_cookie, None, "a valid balanced cookie is kept");
            if p.endpoint != s.endpoint {
                assert_eq!(p.endpoint, 5);
                moved += 1;
            }
            let back = five
                .pick_sticky(&key(), &aff(AffinityMode::Balanced), std::iter::once(c), 1)
                .unwrap();
            assert_eq!(back.endpoint, s.endpoint);
        }
        let f = moved as f64 / n as f64;
        println!("balanced 5 -> 6: {:.1}% of sessions moved", f * 100.0);
        assert!((0.08..0.26).contains(&f), "{f}");
    }
}
