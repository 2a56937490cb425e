//! Selection algorithms over an immutable set of endpoints, built once per snapshot.
//!
//! An algorithm sees endpoints as indices `0..n` into the backend's endpoint list plus a predicate
//! saying which of them may be chosen right now; it never sees addresses or cookies. Both expose
//! the same `select(key, allowed)`, as inherent methods: the sticky layer holds one of each and
//! calls them directly, so a pick is a static call with the predicate inlined.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Round robin over the endpoints, skipping those not allowed. The default for routes without
/// affinity and for new sessions in persistent mode, as in ingress-nginx.
#[derive(Debug)]
pub struct RoundRobin {
    len: usize,
    next: AtomicUsize,
}

impl RoundRobin {
    /// `start` offsets the first pick, so that replicas and reloads do not all begin on endpoint 0.
    pub fn new(len: usize, start: usize) -> Self {
        Self {
            len,
            next: AtomicUsize::new(start),
        }
    }

    /// The next endpoint in turn that `allowed` accepts. `_key` is ignored; it is there so that
    /// both algorithms are called alike.
    pub fn select(&self, _key: u64, allowed: &impl Fn(usize) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.len)
            .map(|i| (start.wrapping_add(i)) % self.len)
            .find(|&i| allowed(i))
    }
}

/// Points per endpoint on the ring. 160 is ketama's figure: spread within a few percent for the
/// endpoint counts of real Services, at 800 bytes per endpoint (5 bytes a point) for Services of
/// up to 256 endpoints.
pub const POINTS_PER_ENDPOINT: u32 = 160;

/// A consistent-hash ring (ketama style) placed by stable endpoint ids, so that every Remora
/// replica builds the same ring from the same endpoints, and adding or removing one endpoint moves
/// only the keys of its own arcs (about 1/n of them).
#[derive(Debug, Clone)]
pub struct ConsistentHash {
    /// The points, sorted. A point is the high 32 bits of a hash.
    points: Box<[u32]>,
    /// The endpoint of each point, in the narrowest width that holds the endpoint count: 100,000
    /// endpoints in Services of up to 256 take 80 MB rather than 128 (8 bytes a point) or 256.
    owners: Owners,
}

/// The endpoint of each point of a ring.
#[derive(Debug, Clone)]
enum Owners {
    Narrow(Box<[u8]>),
    Medium(Box<[u16]>),
    Wide(Box<[u32]>),
}

impl Owners {
    fn new(ring: &[(u32, u32)], endpoints: usize) -> Self {
        let owners = ring.iter().map(|&(_, e)| e);
        if endpoints <= usize::from(u8::MAX) + 1 {
            Self::Narrow(owners.map(|e| e as u8).collect())
        } else if endpoints <= usize::from(u16::MAX) + 1 {
            Self::Medium(owners.map(|e| e as u16).collect())
        } else {
            Self::Wide(owners.collect())
        }
    }

    #[inline]
    fn get(&self, at: usize) -> u32 {
        match self {
            Self::Narrow(o) => u32::from(o[at]),
            Self::Medium(o) => u32::from(o[at]),
            Self::Wide(o) => o[at],
        }
    }
}

/// A point on the ring.
fn point(bytes: &[u8]) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(bytes) >> 32) as u32
}

/// The `n`th point of the endpoint of stable id `id`.
fn endpoint_point(id: u64, n: u32) -> u32 {
    let mut buf = [0u8; 12];
    buf[..8].copy_from_slice(&id.to_le_bytes());
    buf[8..].copy_from_slice(&n.to_le_bytes());
    point(&buf)
}

impl ConsistentHash {
    /// `ids[i]` is the stable id of endpoint `i`.
    pub fn new(ids: &[u64]) -> Self {
        let mut ring = Vec::with_capacity(ids.len() * POINTS_PER_ENDPOINT as usize);
        for (i, id) in ids.iter().enumerate() {
            for n in 0..POINTS_PER_ENDPOINT {
                ring.push((endpoint_point(*id, n), i as u32));
            }
        }
        // Ties (rare) are broken by endpoint index, so every replica builds the same ring.
        ring.sort_unstable();
        Self {
            points: ring.iter().map(|&(p, _)| p).collect(),
            owners: Owners::new(&ring, ids.len()),
        }
    }

    /// The endpoint `i` points clockwise from `start` (wrapping).
    #[inline]
    fn owner(&self, start: usize, i: usize) -> u32 {
        self.owners.get((start + i) % self.points.len())
    }

    /// The first endpoint clockwise from `key`'s point that `allowed` accepts.
    pub fn select(&self, key: u64, allowed: &impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let at = point(&key.to_le_bytes());
        let start = self.points.partition_point(|&p| p < at);
        (0..self.points.len())
            .map(|i| self.owner(start, i) as usize)
            .find(|&i| allowed(i))
    }

    /// ingress-nginx's `chashsubset`: `key` chooses a subset of `size` endpoints, the first
    /// distinct ones clockwise from its point that `allowed` accepts (fewer when fewer are), and
    /// `draw` one of them. So the same key reaches at most `size` endpoints; an endpoint that goes
    /// (or is not allowed) is replaced in the subsets it was in by the next one on the ring,
    /// leaving the others in place. (ingress-nginx cuts the endpoint list into consecutive
    /// subsets and hashes onto those, so one endpoint more or less reshuffles most subsets.)
    pub fn select_subset(
        &self,
        key: u64,
        size: usize,
        draw: u64,
        allowed: &impl Fn(usize) -> bool,
    ) -> Option<usize> {
        if self.points.is_empty() || size == 0 {
            return None;
        }
        // The subset found so far: on the stack for the usual sizes.
        let mut inline = [0u32; 16];
        let mut heap = Vec::new();
        let subset: &mut [u32] = if size <= inline.len() {
            &mut inline[..size]
        } else {
            heap.resize(size, 0);
            &mut heap
        };
        let at = point(&key.to_le_bytes());
        let start = self.points.partition_point(|&p| p < at);
        let mut found = 0;
        for i in 0..self.points.len() {
            let e = self.owner(start, i);
            if !subset[..found].contains(&e) && allowed(e as usize) {
                subset[found] = e;
                found += 1;
                if found == size {
                    break;
                }
            }
        }
        (found > 0).then(|| subset[(draw % found as u64) as usize] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: usize) -> bool {
        true
    }

    #[test]
    fn round_robin_cycles_and_skips() {
        let rr = RoundRobin::new(3, 0);
        let picks: Vec<_> = (0..6).map(|_| rr.select(0, &all).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let no_one = |i: usize| i == 1;
        assert_eq!(rr.select(0, &no_one), Some(1));
        assert_eq!(rr.select(0, &|_| false), None);
        assert_eq!(RoundRobin::new(0, 0).select(0, &all), None);
    }

    fn ids(n: u64) -> Vec<u64> {
        (1..=n)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect()
    }

    /// Scaling 5 -> 6 moves about 1/6 of the keys, and only onto the new endpoint.
    #[test]
    fn ring_moves_about_one_in_n_plus_one_on_scale_out() {
        let five = ConsistentHash::new(&ids(5));
        let six = ConsistentHash::new(&ids(6));
        let keys = 20_000u64;
        let mut moved = 0;
        for k in 0..keys {
            let a = five.select(k, &all).unwrap();
            let b = six.select(k, &all).unwrap();
            if a != b {
                assert_eq!(b, 5, "a key moved between two old endpoints");
                moved += 1;
            }
        }
        let fraction = moved as f64 / keys as f64;
        println!(
            "balanced 5 -> 6: {:.1}% of sessions moved (ideal 16.7%)",
            fraction * 100.0
        );
        assert!((0.10..0.24).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn ring_spreads_keys_evenly() {
        let ring = ConsistentHash::new(&ids(5));
        let mut counts = [0u32; 5];
        for k in 0..50_000u64 {
            counts[ring.select(k.wrapping_mul(31), &all).unwrap()] += 1;
        }
        let mean = 10_000.0;
        for c in counts {
            assert!((c as f64 - mean).abs() / mean < 0.2, "{counts:?}");
        }
    }

    #[test]
    fn ring_skips_disallowed_but_keeps_others_in_place() {
        let ring = ConsistentHash::new(&ids(4));
        for k in 0..1000u64 {
            let first = ring.select(k, &all).unwrap();
            let without_two = ring.select(k, &|i| i != 2).unwrap();
            assert_ne!(without_two, 2);
            if first != 2 {
                assert_eq!(first, without_two);
            }
        }
        assert_eq!(ConsistentHash::new(&[]).select(1, &all), None);
    }

    /// The ring answers as a plain sorted list of (point, endpoint) pairs would, whatever width
    /// its endpoint indices are kept in.
    #[test]
    fn ring_picks_the_first_point_clockwise_in_every_width() {
        for n in [1u64, 5, 256, 257, 300] {
            let ids = ids(n);
            let ring = ConsistentHash::new(&ids);
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                for n in 0..POINTS_PER_ENDPOINT {
                    pairs.push((endpoint_point(*id, n), i as u32));
                }
            }
            pairs.sort_unstable();
            for k in 0..2_000u64 {
                let at = point(&k.to_le_bytes());
                let want = pairs.iter().find(|&&(p, _)| p >= at).unwrap_or(&pairs[0]).1;
                assert_eq!(ring.select(k, &all), Some(want as usize), "{n} endpoints");
            }
        }
        let wide = Owners::new(&[(1, 0), (2, 70_000), (3, 69_999)], 70_001);
        assert!(matches!(wide, Owners::Wide(_)));
        assert_eq!([wide.get(0), wide.get(1), wide.get(2)], [0, 70_000, 69_999]);
        let medium = Owners::new(&[(1, 256), (2, 0)], 257);
        assert!(matches!(medium, Owners::Medium(_)));
        assert_eq!([medium.get(0), medium.get(1)], [256, 0]);
        assert!(matches!(Owners::new(&[(1, 255)], 256), Owners::Narrow(_)));
    }

    /// A key reaches exactly `size` endpoints over many draws, the first of them the one plain
    /// hashing picks; keys spread over every endpoint.
    #[test]
    fn subset_is_size_endpoints_per_key() {
        let ring = ConsistentHash::new(&ids(6));
        let mut everyone = std::collections::BTreeSet::new();
        for k in 0..200u64 {
            let reached: std::collections::BTreeSet<usize> = (0..300u64)
                .map(|d| ring.select_subset(k, 3, d, &all).unwrap())
                .collect();
            assert_eq!(reached.len(), 3, "key {k}: {reached:?}");
            assert!(reached.contains(&ring.select(k, &all).unwrap()));
            everyone.extend(reached);
        }
        assert_eq!(everyone.len(), 6);
        // Larger than the endpoints: all of them; larger than the inline buffer too.
        let all_six: std::collections::BTreeSet<usize> = (0..300u64)
            .map(|d| ring.select_subset(7, 40, d, &all).unwrap())
            .collect();
        assert_eq!(all_six.len(), 6);
    }

    /// An endpoint not allowed is replaced by the next one; the rest of the subset stays.
    #[test]
    fn subset_replaces_only_what_is_not_allowed() {
        let ring = ConsistentHash::new(&ids(8));
        for k in 0..200u64 {
            let subset = |allowed: &dyn Fn(usize) -> bool| -> std::collections::BTreeSet<usize> {
                (0..300u64)
                    .map(|d| ring.select_subset(k, 3, d, &allowed).unwrap())
                    .collect()
            };
            let before = subset(&|_| true);
            let gone = *before.iter().next().unwrap();
            let after = subset(&|i| i != gone);
            assert_eq!(after.len(), 3);
            assert!(!after.contains(&gone));
            assert_eq!(
                before.intersection(&after).count(),
                2,
                "{before:?} {after:?}"
            );
        }
        assert_eq!(ring.select_subset(1, 3, 0, &|_| false), None);
        assert_eq!(ConsistentHash::new(&[]).select_subset(1, 3, 0, &all), None);
        assert_eq!(ring.select_subset(1, 0, 0, &all), None);
    }
}
