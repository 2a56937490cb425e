//! `--metrics-compat ingress-nginx`: the request series of ingress-nginx's collector
//! (`nginx_ingress_controller_requests`, `..._request_duration_seconds`, `..._header_duration_seconds`,
//! `..._request_size`, `..._response_size`) with its labels, and its reload gauges, so dashboards
//! and alerts written for ingress-nginx keep working.
//!
//! One [`CompatStats`] per Ingress route (host, path, Ingress, Service, canary), carried from table
//! to table like [`crate::stats::RouteStats`]. It holds a fixed array over the methods
//! ([`METHODS`]) whose rows, and in each row the series of a status slot (the slots of
//! [`crate::stats::CODES`]), are allocated the first time a request of that combination ends:
//! memory is bounded by what was seen, and a request allocates nothing after that. Nothing of it
//! exists without the flag.

use crate::stats::{slot, Hist, SLOTS};
use http::{HeaderMap, Method, Request, Response};
use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

/// The labels ingress-nginx adds to each of its series (its `constLabels`).
#[derive(Debug, Clone, Default)]
pub struct CompatConfig {
    /// `controller_namespace`: the pod's namespace (`POD_NAMESPACE`, else `default`, as
    /// ingress-nginx).
    pub controller_namespace: String,
    /// `controller_class`: the controller value of the IngressClasses served.
    pub controller_class: String,
    /// `controller_pod`: the pod's name (`POD_NAME`).
    pub controller_pod: String,
}

/// ingress-nginx's `--time-buckets` default (Prometheus' `DefBuckets`), seconds.
const TIME_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// ingress-nginx's `--length-buckets` default (`LinearBuckets(10, 10, 10)`), bytes.
const LENGTH_BUCKETS: [f64; 10] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0];

/// The `method` label values; any other method counts as `other`.
pub(crate) const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// The index of a method in [`METHODS`].
pub(crate) fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// The series of one (route, method, status slot).
#[derive(Debug, Default)]
struct Series {
    /// Its count is `nginx_ingress_controller_requests`.
    duration: Hist<{ TIME_BUCKETS.len() }>,
    header: Hist<{ TIME_BUCKETS.len() }>,
    request_size: Hist<{ LENGTH_BUCKETS.len() }>,
    response_size: Hist<{ LENGTH_BUCKETS.len() }>,
}

type Row = [OnceLock<Box<Series>>; SLOTS];

/// The labels of a route's series besides method and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompatLabels {
    /// The Ingress rule's host (`*.example.com` for a wildcard; `_`, nginx's catch-all server
    /// name, for rules without host).
    pub host: String,
    /// The Ingress path (`/` for a default backend).
    pub path: String,
    pub namespace: String,
    pub ingress: String,
    /// The Service's name.
    pub service: String,
    /// ingress-nginx's upstream name of the canary (`namespace-service-port`) for requests the
    /// canary took, else empty.
    pub canary: String,
}

/// The ingress-nginx series of one route.
#[derive(Debug)]
pub struct CompatStats {
    pub labels: CompatLabels,
    rows: [OnceLock<Box<Row>>; METHODS.len()],
}

/// What the end of a request adds.
pub struct Observation {
    pub method: usize,
    pub status: u16,
    pub elapsed: Duration,
    /// The pod's response head came this long after its try started (`None`: no pod answered).
    pub header: Option<Duration>,
    pub request_size: u64,
    pub response_size: u64,
}

impl CompatStats {
    pub fn new(labels: CompatLabels) -> Self {
        Self {
            labels,
            rows: Default::default(),
        }
    }

    /// Count a finished request; allocates only the first time its method and status slot are
    /// seen on this route.
    pub fn record(&self, o: &Observation) {
        let Some(row) = self.rows.get(o.method) else {
            return;
        };
        let row = row.get_or_init(|| Box::new(std::array::from_fn(|_| OnceLock::new())));
        let Some(series) = row.get(slot(o.status)) else {
            return;
        };
        let s = series.get_or_init(Box::default);
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        s.duration
            .observe(&TIME_BUCKETS, o.elapsed.as_secs_f64(), micros(o.elapsed));
        if let Some(h) = o.header {
            s.header.observe(&TIME_BUCKETS, h.as_secs_f64(), micros(h));
        }
        s.request_size
            .observe(&LENGTH_BUCKETS, o.request_size as f64, o.request_size);
        s.response_size
            .observe(&LENGTH_BUCKETS, o.response_size as f64, o.response_size);
    }

    /// The series seen: (method label, slot, series).
    fn seen(&self) -> impl Iterator<Item = (&'static str, usize, &Series)> {
        METHODS
            .iter()
            .zip(&self.rows)
            .filter_map(|(m, row)| Some((*m, row.get()?)))
            .flat_map(|(m, row)| {
                row.iter()
                    .enumerate()
                    .filter_map(move |(i, s)| Some((m, i, &**s.get()?)))
            })
    }
}

/// The length of a header section as HTTP/1.1 text (`name: value\r\n` each, and the blank line).
fn headers_len(headers: &HeaderMap) -> u64 {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().len() + v.len() + 4) as u64)
        .sum::<u64>()
        + 2
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// nginx's `$request_length`, as far as it is cheap: the request line and header section as
/// HTTP/1.1 text, plus the declared `Content-Length` (a body without one counts 0).
pub fn request_size<B>(req: &Request<B>) -> u64 {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let line = req.method().as_str().len() + target + " HTTP/1.1\r\n".len() + 1;
    line as u64 + headers_len(req.headers()) + content_length(req.headers()).unwrap_or(0)
}

/// nginx's `$bytes_sent`, as far as it is known when the head is: the status line and header
/// section as HTTP/1.1 text, plus the body's length when it is known (its exact size, else its
/// `Content-Length`); a body of unknown length counts 0.
pub fn response_size<B: hyper::body::Body>(resp: &Response<B>) -> u64 {
    let body = resp
        .body()
        .size_hint()
        .exact()
        .or_else(|| content_length(resp.headers()))
        .unwrap_or(0);
    "HTTP/1.1 200 OK\r\n".len() as u64 + headers_len(resp.headers()) + body
}

/// The upstream name ingress-nginx gives a Service port: `namespace-service-port`, from Remora's
/// backend name `namespace/service:port`.
pub fn upstream_name(backend: &str) -> String {
    backend.replacen('/', "-", 1).replacen(':', "-", 1)
}

/// The Service's name in a backend name `namespace/service:port`.
pub fn service_name(backend: &str) -> &str {
    let rest = backend.split_once('/').map_or(backend, |(_, r)| r);
    rest.rsplit_once(':').map_or(rest, |(s, _)| s)
}

/// What the scrape reads besides the routes' series.
pub struct Reloads {
    pub successful: bool,
    pub hash: u64,
    pub reloads: u64,
    pub errors: u64,
}

type Labels = Vec<(&'static str, String)>;

fn constant(config: &CompatConfig) -> Labels {
    vec![
        ("controller_class", config.controller_class.clone()),
        ("controller_namespace", config.controller_namespace.clone()),
        ("controller_pod", config.controller_pod.clone()),
    ]
}

/// ingress-nginx's labels, in its (sorted) order.
fn labels(config: &CompatConfig, l: &CompatLabels, method: &str, status: String) -> Labels {
    let mut v = vec![("canary", l.canary.clone())];
    v.extend(constant(config));
    v.extend([
        ("host", l.host.clone()),
        ("ingress", l.ingress.clone()),
        ("method", method.to_owned()),
        ("namespace", l.namespace.clone()),
        ("path", l.path.clone()),
        ("service", l.service.clone()),
        ("status", status),
    ]);
    v
}

/// Encode the ingress-nginx series. Its counters are named without `_total` (client_golang's
/// names), so they are written as `unknown`: the OpenMetrics encoder would add the suffix to a
/// counter, and queries written for ingress-nginx would no longer find them.
pub fn encode(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder,
    config: &CompatConfig,
    stats: &[std::sync::Arc<CompatStats>],
    reloads: &Reloads,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::gauge::ConstGauge;
    use prometheus_client::metrics::MetricType;
    let status = crate::stats::slot_label;
    let rows: Vec<(Labels, &Series)> = stats
        .iter()
        .flat_map(|s| {
            s.seen()
                .map(|(m, i, series)| (labels(config, &s.labels, m, status(i)), series))
        })
        .collect();
    {
        let mut metric = encoder.encode_descriptor(
            "nginx_ingress_controller_requests",
            "The total number of client requests",
            None,
            MetricType::Unknown,
        )?;
        for (l, s) in &rows {
            let n = s.duration.count.load(Ordering::Relaxed);
            ConstGauge::new(n).encode(metric.encode_family(l)?)?;
        }
    }
    type Pick = fn(&Series) -> (f64, u64, Vec<(f64, u64)>);
    let histograms: [(&str, &str, Pick); 4] = [
        (
            "nginx_ingress_controller_request_duration_seconds",
            "The request processing time in seconds (Remora: to the response head)",
            |s| s.duration.snapshot(&TIME_BUCKETS, 1e6),
        ),
        (
            "nginx_ingress_controller_header_duration_seconds",
            "The time spent on receiving first header from the upstream server",
            |s| s.header.snapshot(&TIME_BUCKETS, 1e6),
        ),
        (
            "nginx_ingress_controller_request_size",
            "The request length (including request line, header, and request body)",
            |s| s.request_size.snapshot(&LENGTH_BUCKETS, 1.0),
        ),
        (
            "nginx_ingress_controller_response_size",
            "The response length (including request line, header, and request body)",
            |s| s.response_size.snapshot(&LENGTH_BUCKETS, 1.0),
        ),
    ];
    for (name, help, pick) in histograms {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (l, s) in &rows {
            let (sum, count, buckets) = pick(s);
            // As ingress-nginx: a series only once it has an observation (no pod answered: no
            // header time).
            if count > 0 {
                metric
                    .encode_family(l)?
                    .encode_histogram::<Labels>(sum, count, &buckets, None)?;
            }
        }
    }
    let constant = constant(config);
    let gauge = |encoder: &mut prometheus_client::encoding::DescriptorEncoder,
                 name: &str,
                 help: &str,
                 kind: MetricType,
                 v: f64| {
        let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
        ConstGauge::new(v).encode(metric.encode_family(&constant)?)
    };
    gauge(
        encoder,
        "nginx_ingress_controller_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful",
        MetricType::Gauge,
        if reloads.successful { 1.0 } else { 0.0 },
    )?;
    gauge(
        encoder,
        "nginx_ingress_controller_config_hash",
        "Running configuration hash actually running",
        MetricType::Gauge,
        reloads.hash as f64,
    )?;
    {
        let mut metric = encoder.encode_descriptor(
            "nginx_ingress_controller_success",
            "Cumulative number of Ingress controller reload operations",
            None,
            MetricType::Unknown,
        )?;
        ConstGauge::new(reloads.reloads).encode(metric.encode_family(&constant)?)?;
    }
    let mut metric = encoder.encode_descriptor(
        "nginx_ingress_controller_errors",
        "Cumulative number of Ingress controller errors during reload operations",
        None,
        MetricType::Unknown,
    )?;
    ConstGauge::new(reloads.errors).encode(metric.encode_family(&constant)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ingress_nginx() {
        assert_eq!(upstream_name("default/web:80"), "default-web-80");
        assert_eq!(upstream_name("ns/api:http"), "ns-api-http");
        assert_eq!(service_name("default/web:80"), "web");
        assert_eq!(service_name("-"), "-");
    }

    #[test]
    fn series_are_made_when_first_seen() {
        let s = CompatStats::new(CompatLabels {
            host: "a".into(),
            path: "/".into(),
            namespace: "default".into(),
            ingress: "web".into(),
            service: "web".into(),
            canary: String::new(),
        });
        assert_eq!(s.seen().count(), 0);
        let o = Observation {
            method: method_index(&Method::POST),
            status: 418,
            elapsed: Duration::from_millis(20),
            header: None,
            request_size: 55,
            response_size: 120,
        };
        s.record(&o);
        s.record(&o);
        let seen: Vec<_> = s.seen().collect();
        assert_eq!(seen.len(), 1);
        let (m, i, series) = seen[0];
        assert_eq!((m, crate::stats::slot_label(i).as_str()), ("POST", "4xx"));
        assert_eq!(series.duration.count.load(Ordering::Relaxed), 2);
        assert_eq!(series.header.count.load(Ordering::Relaxed), 0);
        let (sum, count, buckets) = series.request_size.snapshot(&LENGTH_BUCKETS, 1.0);
        assert_eq!((sum, count), (110.0, 2));
        assert_eq!(buckets[5], (60.0, 2));
        let (_, _, buckets) = series.response_size.snapshot(&LENGTH_BUCKETS, 1.0);
        assert_eq!(buckets.last(), Some(&(f64::MAX, 2)), "above the last bound");
    }
}
