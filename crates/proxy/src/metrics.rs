//! Counters and histograms the request path updates with plain atomics (no lock, no allocation),
//! and their Prometheus exposition through a `prometheus-client` collector that reads them at
//! scrape time.
//!
//! Statistics belong to a route target, keyed by (Ingress, Service port), and are carried over from
//! one table to the next, so counters only ever grow while the process lives.

use crate::table::Table;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Status codes counted one by one; others are counted by class (`2xx`...).
const CODES: [u16; 24] = [
    200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 413, 429,
    499, 500, 502, 503, 504,
];
const SLOTS: usize = CODES.len() + 5;

/// Latency buckets, seconds (upper bounds).
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram of durations on atomics.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts) as `prometheus-client` encodes them (it makes
    /// them cumulative); the `+Inf` bucket holds what is above the last bound.
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let count = self.count.load(Ordering::Relaxed);
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = BUCKETS
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
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count,
            buckets,
        )
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
const COUNTED: [SessionOutcome; 3] = [
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
    codes: [AtomicU64; SLOTS],
    latency: Histogram,
    sessions: [AtomicU64; COUNTED.len()],
    connect_errors: AtomicU64,
    retries: AtomicU64,
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
        }
    }

    /// A finished request: its status and the time to its response head.
    pub fn request(&self, status: u16, elapsed: Duration, session: SessionOutcome) {
        let slot = CODES
            .iter()
            .position(|c| *c == status)
            .unwrap_or_else(|| CODES.len() + usize::from((status / 100).clamp(1, 5) - 1));
        self.codes[slot].fetch_add(1, Ordering::Relaxed);
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

    fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ingress", self.ingress.clone()),
            ("service", self.service.clone()),
        ]
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
}

/// The `/metrics` text for the current table.
pub fn render(table: Arc<Table>, global: Arc<Global>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition { table, global }));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}

struct Exposition {
    table: Arc<Table>,
    global: Arc<Global>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exposition(generation {})", self.table.generation)
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (Vec<(&'static str, String)>, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter without labels.
fn single_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.table.route_stats();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut encoder,
            "remora_requests",
            "Requests by Ingress, Service and status",
            stats.iter().flat_map(|s| {
                let named = CODES.iter().map(|c| c.to_string());
                let classes = (1..=5).map(|c| format!("{c}xx"));
                named
                    .chain(classes)
                    .zip(&s.codes)
                    .filter(|(_, n)| load(n) > 0)
                    .map(|(status, n)| {
                        let mut l = s.labels();
                        l.push(("status", status));
                        (l, load(n))
                    })
                    .collect::<Vec<_>>()
            }),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "remora_request_duration_seconds",
                "Time from the request to the response head, by Ingress and Service",
                None,
                MetricType::Histogram,
            )?;
            for s in &stats {
                let (sum, count, buckets) = s.latency.snapshot();
                let labels = s.labels();
                metric
                    .encode_family(&labels)?
                    .encode_histogram::<Vec<(&str, String)>>(sum, count, &buckets, None)?;
            }
        }
        counter(
            &mut encoder,
            "remora_sessions",
            "Requests of routes with affinity by session outcome: new (placed, cookie set), sticky (cookie honoured), repinned (cookie replaced)",
            stats.iter().flat_map(|s| {
                COUNTED
                    .iter()
                    .zip(&s.sessions)
                    .map(|(o, n)| {
                        let mut l = s.labels();
                        l.push(("outcome", o.as_str().to_owned()));
                        (l, load(n))
                    })
                    .collect::<Vec<_>>()
            }),
        )?;
        counter(
            &mut encoder,
            "remora_upstream_connect_errors",
            "Connections to pods that failed (refused, timed out)",
            stats.iter().map(|s| (s.labels(), load(&s.connect_errors))),
        )?;
        counter(
            &mut encoder,
            "remora_upstream_retries",
            "Requests sent again to another pod",
            stats.iter().map(|s| (s.labels(), load(&s.retries))),
        )?;
        let snapshot = &self.table.snapshot;
        gauge(
            &mut encoder,
            "remora_endpoint_sessions",
            "Sessions recently placed on each endpoint (halved every 5 minutes): the load balanced placement bounds",
            snapshot
                .backends
                .iter()
                .zip(&self.table.backends)
                .flat_map(|(b, rt)| {
                    b.endpoints
                        .iter()
                        .zip(rt.balancer.loads())
                        .map(|(e, load)| {
                            let l = vec![
                                ("service", b.name.clone()),
                                ("endpoint", e.addr.to_string()),
                                ("pod", e.pod.clone().unwrap_or_default()),
                            ];
                            (l, i64::from(load))
                        })
                        .collect::<Vec<_>>()
                }),
        )?;
        gauge(
            &mut encoder,
            "remora_endpoint_ready",
            "Endpoint conditions: 1 when ready (takes new sessions), with serving and terminating as labels",
            snapshot.backends.iter().flat_map(|b| {
                b.endpoints
                    .iter()
                    .map(|e| {
                        let l = vec![
                            ("service", b.name.clone()),
                            ("endpoint", e.addr.to_string()),
                            ("pod", e.pod.clone().unwrap_or_default()),
                            ("serving", e.serving.to_string()),
                            ("terminating", e.terminating.to_string()),
                        ];
                        (l, i64::from(e.ready))
                    })
                    .collect::<Vec<_>>()
            }),
        )?;
        let g = &self.global;
        single_counter(
            &mut encoder,
            "remora_config_reloads",
            "Configurations published",
            load(&g.config_reloads),
        )?;
        single_counter(
            &mut encoder,
            "remora_config_reload_errors",
            "Configuration sources that failed to load (the last good version kept serving)",
            load(&g.config_reload_errors),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "remora_config_build_seconds",
                "Time to translate the objects and build the routing table",
                None,
                MetricType::Histogram,
            )?;
            let (sum, count, buckets) = g.config_build.snapshot();
            metric.encode_histogram::<Vec<(&str, String)>>(sum, count, &buckets, None)?;
        }
        single_counter(
            &mut encoder,
            "remora_access_log_dropped",
            "Access log lines dropped because the writer fell behind",
            load(&g.access_log_dropped),
        )?;
        ConstGauge::new(self.table.generation as i64).encode(encoder.encode_descriptor(
            "remora_config_generation",
            "Generation of the configuration served",
            None,
            MetricType::Gauge,
        )?)?;
        Ok(())
    }
}
