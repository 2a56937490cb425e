//! The access log (opt-in, `--access-log FILE` or `-` for stdout): one JSON object per request,
//! written by a background task. The request path only formats the line and hands it over without
//! waiting; when the writer falls behind, lines are dropped and counted
//! (`remora_access_log_dropped_total`), never requests delayed.

use crate::stats::{Global, RouteStats, SessionOutcome};
use http::uri::Authority;
use http::{HeaderValue, Request};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Lines waiting for the writer at most.
const QUEUE: usize = 8192;

/// What happened to a request, for its metrics and access log line: filled in by the phases as
/// they go.
pub struct Outcome<'t> {
    pub stats: Option<&'t RouteStats>,
    pub session: SessionOutcome,
    /// The endpoint that answered (or was tried last).
    pub upstream: Option<&'t Authority>,
    pub tries: u8,
    /// The `X-Request-ID` sent upstream (the client's, or the one made for it), when the access
    /// log is on.
    pub request_id: Option<HeaderValue>,
    /// The route keeps its requests out of the access log (`enable-access-log: "false"`).
    pub unlogged: bool,
    /// The response gets this `Strict-Transport-Security` (HTTPS, a host with a certificate).
    pub hsts: Option<&'t HeaderValue>,
    /// The route's `custom-headers`, set on the response whatever answers it.
    pub custom_headers: Option<&'t crate::filters::HeaderEditor>,
    /// The request counts under `limit-connections` while this lives.
    pub in_flight: Option<crate::limit::InFlightGuard>,
    /// The route's ingress-nginx series (`--metrics-compat ingress-nginx`).
    pub compat: Option<&'t crate::compat::CompatStats>,
    /// With those: how long after its try started the pod's response head came.
    pub upstream_header: Option<Duration>,
}

impl Default for Outcome<'_> {
    fn default() -> Self {
        Self {
            stats: None,
            session: SessionOutcome::None,
            upstream: None,
            tries: 0,
            request_id: None,
            unlogged: false,
            hsts: None,
            custom_headers: None,
            in_flight: None,
            compat: None,
            upstream_header: None,
        }
    }
}

pub struct AccessLog {
    tx: mpsc::Sender<String>,
}

/// What the log needs from the request, taken before the request is consumed.
pub struct RequestLine {
    time: SystemTime,
    client: HeaderValue,
    method: http::Method,
    host: Option<HeaderValue>,
    uri: http::Uri,
    request_id: Option<HeaderValue>,
}

impl RequestLine {
    pub fn of<B>(req: &Request<B>, client: &HeaderValue) -> Self {
        Self {
            time: SystemTime::now(),
            client: client.clone(),
            method: req.method().clone(),
            host: req.headers().get(http::header::HOST).cloned(),
            uri: req.uri().clone(),
            request_id: req.headers().get("x-request-id").cloned(),
        }
    }
}

fn text(v: Option<&HeaderValue>) -> &str {
    v.and_then(|v| v.to_str().ok()).unwrap_or("")
}

impl AccessLog {
    /// Start the writer: `-` is stdout, anything else a file appended to.
    pub async fn open(path: PathBuf) -> std::io::Result<AccessLog> {
        let mut out: Box<dyn tokio::io::AsyncWrite + Send + Unpin> = if path.as_os_str() == "-" {
            Box::new(tokio::io::stdout())
        } else {
            Box::new(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await?,
            )
        };
        let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(64 * 1024);
            while let Some(line) = rx.recv().await {
                buf.extend_from_slice(line.as_bytes());
                // Take what else is queued, then write it in one go.
                while buf.len() < 60 * 1024 {
                    match rx.try_recv() {
                        Ok(l) => buf.extend_from_slice(l.as_bytes()),
                        Err(_) => break,
                    }
                }
                if out.write_all(&buf).await.is_err() || out.flush().await.is_err() {
                    tracing::warn!("access log write failed; lines are lost until it recovers");
                }
                buf.clear();
            }
        });
        Ok(AccessLog { tx })
    }

    pub fn write(
        &self,
        line: RequestLine,
        out: &Outcome<'_>,
        status: u16,
        elapsed: Duration,
        global: &Global,
    ) {
        let (ingress, service) = out
            .stats
            .map_or(("", ""), |s| (s.ingress.as_str(), s.service.as_str()));
        let host = text(line.host.as_ref());
        let host = if host.is_empty() {
            line.uri.authority().map_or("", |a| a.as_str())
        } else {
            host
        };
        let json = serde_json::json!({
            "time": model::time::rfc3339(line.time),
            "client": line.client.to_str().unwrap_or(""),
            "method": line.method.as_str(),
            "host": host,
            "path": line.uri.path_and_query().map_or("/", |p| p.as_str()),
            "status": status,
            "duration_ms": (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "ingress": ingress,
            "service": service,
            "upstream": out.upstream.map(|a| a.as_str()),
            "tries": out.tries,
            "session": out.session.as_str(),
            "request_id": text(line.request_id.as_ref().or(out.request_id.as_ref())),
        });
        let mut s = json.to_string();
        s.push('\n');
        if self.tx.try_send(s).is_err() {
            global.access_log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
