//! The Prometheus exposition of the statistics ([`crate::stats`]) and of the current table's
//! endpoints, through a `prometheus-client` collector that reads the atomics at scrape time.

use crate::compat::CompatConfig;
use crate::stats::{slot_label, Global, RouteStats, COUNTED};
use crate::table::Table;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The `/metrics` text for the current table.
/// `compat`: ingress-nginx's series too (`--metrics-compat ingress-nginx`).
pub fn render(table: Arc<Table>, global: Arc<Global>, compat: Option<&CompatConfig>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Exposition {
        table,
        global,
        compat: compat.cloned(),
    }));
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}

/// The labels of a route's series.
fn labels(s: &RouteStats) -> Vec<(&'static str, String)> {
    vec![
        ("ingress", s.ingress.clone()),
        ("service", s.service.clone()),
    ]
}

struct Exposition {
    table: Arc<Table>,
    global: Arc<Global>,
    compat: Option<CompatConfig>,
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
                (0..s.codes.len())
                    .map(slot_label)
                    .zip(&s.codes)
                    .filter(|(_, n)| load(n) > 0)
                    .map(|(status, n)| {
                        let mut l = labels(s);
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
                let labels = labels(s);
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
                        let mut l = labels(s);
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
            stats.iter().map(|s| (labels(s), load(&s.connect_errors))),
        )?;
        counter(
            &mut encoder,
            "remora_upstream_retries",
            "Requests sent again to another pod",
            stats.iter().map(|s| (labels(s), load(&s.retries))),
        )?;
        counter(
            &mut encoder,
            "remora_ssl_passthrough_connections",
            "TLS connections relayed to the pods as they are (ssl-passthrough), by the Ingress and Service of the host's location /",
            stats
                .iter()
                .filter(|s| load(&s.passthrough) > 0)
                .map(|s| (labels(s), load(&s.passthrough))),
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
        if let Some(config) = &self.compat {
            let reloads = crate::compat::Reloads {
                successful: !g.last_reload_failed.load(Ordering::Relaxed),
                hash: self.table.config_hash,
                reloads: load(&g.config_reloads),
                errors: load(&g.config_reload_errors),
            };
            crate::compat::encode(&mut encoder, config, &self.table.compat_stats(), &reloads)?;
        }
        Ok(())
    }
}
