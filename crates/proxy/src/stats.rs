//! Per-route statistics the request path updates with plain atomics (no lock, no allocation):
//! status codes, latency, session outcomes, connect errors and retries; and the process-wide
//! counters. [`crate::metrics`] reads them at scrape time.
//!
//! Statistics belong to a route target, keyed by (Ingress, Service port), and are carried over from
//! one table to the next, so counters only ever grow while the process lives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Status codes counted one by one; others are counted by class (`2xx`...).
pub(crate) const CODES: [u16; 24] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 413, 429,
    499, 500, 502, 503, 504,
];
pub(crate) const SLOTS: usize = CODES.len() + 5;

/// The slot a status is counted in: its own, else its class's.
pub(crate) fn slot(status: u16) -> usize {
    CODES
        .iter()
        .position(|c| *c == status)
        .unwrap_or_else(|| CODES.len() + usize::from((status / 100).clamp(1, 5) - 1))
}

/// The `status` label of a slot: the code, or the class (`4xx`).
pub(crate) fn slot_label(slot: usize) -> String {
    match CODES.get(slot) {
        Some(c) => c.to_string(),
        None => format!("{}xx", slot.saturating_sub(CODES.len()) + 1),
    }
}

/// Latency buckets, seconds (upper bounds).
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram on atomics over fixed bounds; the sum is kept in integer units (microseconds,
/// bytes) and scaled at scrape time.
#[derive(Debug)]
pub(crate) struct Hist<const N: usize> {
    buckets: [AtomicU64; N],
    pub(crate) count: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Default for Hist<N> {
    fn default() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Hist<N> {
    /// `value` in the bounds' unit, `units` the same in the sum's.
    pub(crate) fn observe(&self, bounds: &[f64; N], value: f64, units: u64) {
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(units, Ordering::Relaxed);
    }

    /// (sum, count, buckets) as `prometheus-client` encodes them (it makes them cumulative);
    /// the sum in the bounds' unit, `per_unit` of the sum's making one.
    pub(crate) fn snapshot(&self, bounds: &[f64; N], per_unit: f64) -> (f64, u64, Vec<(f64, u64)>) {
        let count = self.count.load(Ordering::Relaxed);
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = bounds
            .iter()
            .zip(&self.buckets)
            .map(|(b, n)| {
                let n = n.load(Ordering::Relaxed);
                below += n;
                (*b, n)
            })
            .collect();
        // `f64::MAX` is how the encoder spells `+Inf`.
        buckets.push((f64::MAX, count.saturating_sub(below)));
        (
            self.sum.load(Ordering::Relaxed) as f64 / per_unit,
            count,
            buckets,
        )
    }
}

/// A histogram of durations on atomics (the sum in microseconds).
#[derive(Debug, Default)]
pub struct Histogram(Hist<{ BUCKETS.len() }>);

impl Histogram {
    pub fn observe(&self, d: Duration) {
        self.0
            .observe(&BUCKETS, d.as_secs_f64(), d.as_micros() as u64);
    }

    /// (sum in seconds, count, per-bucket counts) as `prometheus-client` encodes them (it makes
    /// them cumulative); the `+Inf` bucket holds what is above the last bound.
    pub(crate) fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        self.0.snapshot(&BUCKETS, 1e6)
    }
}

/// How a request's session went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// The route has no affinity.
    None,
    /// No cookie: placed, cookie set.
    New,
    /// The cookie was honoured.
    Sticky,
    /// The cookie could not be honoured (garbage, gone, failed): placed again, new cookie.
    Repinned,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::None => "none",
            SessionOutcome::New => "new",
            SessionOutcome::Sticky => "sticky",
            SessionOutcome::Repinned => "repinned",
        }
    }
}

/// The session outcomes counted, in the order of [`RouteStats::sessions`].
pub(crate) const COUNTED: [SessionOutcome; 3] = [
    SessionOutcome::New,
    SessionOutcome::Sticky,
    SessionOutcome::Repinned,
];

/// Statistics of one route target.
#[derive(Debug)]
pub struct RouteStats {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// The backend (`namespace/service:port`), `-` when it does not resolve.
    pub service: String,
    pub(crate) codes: [AtomicU64; SLOTS],
    pub(crate) latency: Histogram,
    pub(crate) sessions: [AtomicU64; COUNTED.len()],
    pub(crate) connect_errors: AtomicU64,
    pub(crate) retries: AtomicU64,
    /// TLS connections relayed to the pods as they are (`ssl-passthrough`; the statistics of
    /// the host's location `/`).
    pub(crate) passthrough: AtomicU64,
}

impl RouteStats {
    pub fn new(ingress: String, service: String) -> Self {
        Self {
            ingress,
            service,
            codes: Default::default(),
            latency: Histogram::default(),
            sessions: Default::default(),
            connect_errors: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            passthrough: AtomicU64::new(0),
        }
    }

    /// A finished request: its status and the time to its response head.
    pub fn request(&self, status: u16, elapsed: Duration, session: SessionOutcome) {
        self.codes[slot(status)].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(elapsed);
        if let Some(i) = COUNTED.iter().position(|o| *o == session) {
            self.sessions[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn connect_error(&self) {
        self.connect_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A TLS connection is relayed to a pod (`ssl-passthrough`).
    pub fn passthrough(&self) {
        self.passthrough.fetch_add(1, Ordering::Relaxed);
    }
}

/// Process-wide statistics.
#[derive(Debug, Default)]
pub struct Global {
    pub config_reloads: AtomicU64,
    pub config_reload_errors: AtomicU64,
    /// Translation plus table build, per configuration.
    pub config_build: Histogram,
    pub access_log_dropped: AtomicU64,
    /// The last reload attempt had a configuration source that failed to load
    /// (`nginx_ingress_controller_config_last_reload_successful`).
    pub last_reload_failed: std::sync::atomic::AtomicBool,
}
