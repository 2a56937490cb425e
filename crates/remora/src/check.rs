//! `remora check`: the seeds' `curl --cookie cookie.txt --cookie-jar cookie.txt` loop, for many
//! sessions at once, against any server (Remora, ingress-nginx, anything that sets a cookie).
//!
//! Each session has its own cookie jar and sends M requests; the backend that answered is read from
//! the response body (what-is-my-pod and the demo's pods print their pod name) or from a header.
//! A session that saw more than one backend moved. The exit code says whether every session stuck.

use anyhow::{bail, Context};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// The URL to check, e.g. http://127.0.0.1:8080/
    pub url: String,
    /// Number of independent sessions (cookie jars).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub sessions: usize,
    /// Requests per session.
    #[arg(long, default_value_t = 10, value_name = "M")]
    pub requests: usize,
    /// Connect to ADDR for HOST:PORT, like curl's --resolve. Repeatable.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Identify the backend by this response header instead of the response body.
    #[arg(long, value_name = "NAME")]
    pub by_header: Option<String>,
    /// Sessions run at the same time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: usize,
    /// Seconds before a request is given up.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
}

/// Where requests go and how backends are told apart; shared by all sessions.
struct Target {
    client: Client<HttpConnector, Empty<Bytes>>,
    uri: Uri,
    host: HeaderValue,
    by_header: Option<header::HeaderName>,
    timeout: Duration,
}

#[derive(Default)]
struct SessionResult {
    /// Backend seen by each successful request, in order.
    backends: Vec<String>,
    failures: Vec<String>,
    got_cookie: bool,
}

impl SessionResult {
    fn distinct(&self) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for b in &self.backends {
            *m.entry(b.as_str()).or_insert(0) += 1;
        }
        m
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.sessions == 0 || args.requests == 0 {
        bail!("--sessions and --requests must be at least 1");
    }
    let target = std::sync::Arc::new(target(&args)?);
    println!(
        "checking {} with {} sessions of {} requests",
        args.url, args.sessions, args.requests
    );
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut tasks = Vec::new();
    for _ in 0..args.sessions {
        let target = target.clone();
        let semaphore = semaphore.clone();
        let requests = args.requests;
        tasks.push(tokio::spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            session(&target, requests).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.context("a session task failed")?);
    }
    Ok(report(&results, args.requests))
}

fn target(args: &Args) -> anyhow::Result<Target> {
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("{} is not a URL", args.url))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!("https URLs are not supported by check yet; use http://"),
        _ => bail!("{} must start with http://", args.url),
    }
    let authority = uri
        .authority()
        .with_context(|| format!("{} has no host", args.url))?
        .clone();
    let host = HeaderValue::from_str(authority.as_str())?;
    let port = authority.port_u16().unwrap_or(80);
    let mut connect_to = authority.clone();
    for r in &args.resolve {
        let (host_port, addr) = r
            .split_once(':')
            .and_then(|(h, rest)| {
                let (p, a) = rest.split_once(':')?;
                Some(((h, p), a))
            })
            .with_context(|| format!("--resolve {r}: expected HOST:PORT:ADDR"))?;
        let wanted_port: u16 = host_port
            .1
            .parse()
            .with_context(|| format!("--resolve {r}: bad port"))?;
        if host_port.0.eq_ignore_ascii_case(authority.host()) && wanted_port == port {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = addr
                .parse()
                .with_context(|| format!("--resolve {r}: {addr} is not an IP address"))?;
            connect_to = std::net::SocketAddr::new(ip, port).to_string().parse()?;
        }
    }
    let mut parts = uri.into_parts();
    parts.authority = Some(connect_to);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some("/".parse()?);
    }
    let by_header = args
        .by_header
        .as_deref()
        .map(|h| header::HeaderName::from_bytes(h.as_bytes()))
        .transpose()
        .context("--by-header is not a valid header name")?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(args.timeout)));
    Ok(Target {
        client: Client::builder(TokioExecutor::new()).build(connector),
        uri: Uri::from_parts(parts)?,
        host,
        by_header,
        timeout: Duration::from_secs(args.timeout),
    })
}

/// One cookie jar, `requests` requests.
async fn session(target: &Target, requests: usize) -> SessionResult {
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let mut result = SessionResult::default();
    for _ in 0..requests {
        let mut req = Request::get(target.uri.clone()).header(header::HOST, target.host.clone());
        if !jar.is_empty() {
            let cookie = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(header::COOKIE, cookie);
        }
        let Ok(req) = req.body(Empty::new()) else {
            result
                .failures
                .push("could not build the request".to_owned());
            continue;
        };
        match tokio::time::timeout(target.timeout, exchange(target, req, &mut jar)).await {
            Ok(Ok((status, backend))) if status.is_success() || status.is_redirection() => {
                result.backends.push(backend);
            }
            Ok(Ok((status, _))) => result.failures.push(format!("HTTP {}", status.as_u16())),
            Ok(Err(e)) => result.failures.push(format!("{e:#}")),
            Err(_) => result.failures.push("timed out".to_owned()),
        }
    }
    result.got_cookie = !jar.is_empty();
    result
}

async fn exchange(
    target: &Target,
    req: Request<Empty<Bytes>>,
    jar: &mut BTreeMap<String, String>,
) -> anyhow::Result<(http::StatusCode, String)> {
    let resp = target.client.request(req).await?;
    for sc in resp.headers().get_all(header::SET_COOKIE) {
        let Ok(sc) = sc.to_str() else { continue };
        let mut attrs = sc.split(';');
        let Some((name, value)) = attrs.next().and_then(|nv| nv.split_once('=')) else {
            continue;
        };
        let expired = attrs.any(|a| {
            a.trim().split_once('=').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("max-age") && v.trim().starts_with(['-', '0'])
            })
        });
        if expired {
            jar.remove(name.trim());
        } else {
            jar.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    let status = resp.status();
    let from_header = target.by_header.as_ref().map(|h| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("(no {h} header)"))
    });
    let body = Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?
        .to_bytes();
    let backend = from_header.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body);
        let text = text.trim();
        let mut short: String = text.chars().take(100).collect();
        if short.len() < text.len() {
            short.push('…');
        }
        short
    });
    Ok((status, backend))
}

fn report(results: &[SessionResult], requests: usize) -> ExitCode {
    let mut moved = 0;
    let mut failed_requests = 0;
    let mut per_backend: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        let distinct = r.distinct();
        failed_requests += r.failures.len();
        let mut line = format!("session {:>3}: ", i + 1);
        match distinct.len() {
            0 => line.push_str("no successful request"),
            1 => {
                let (b, n) = distinct.iter().next().map_or(("", 0), |(b, n)| (*b, *n));
                let _ = write!(line, "{n}/{requests} on {b}  sticky");
            }
            _ => {
                moved += 1;
                let seen: Vec<String> = distinct.iter().map(|(b, n)| format!("{b} x{n}")).collect();
                let _ = write!(
                    line,
                    "MOVED over {} backends: {}",
                    distinct.len(),
                    seen.join(", ")
                );
            }
        }
        if !r.failures.is_empty() {
            let _ = write!(line, "  ({} failed: {})", r.failures.len(), r.failures[0]);
        }
        println!("{line}");
        if let Some(first) = r.backends.first() {
            *per_backend.entry(first.as_str()).or_insert(0) += 1;
        }
    }
    println!();
    println!("sessions per backend (where each session started):");
    let max = per_backend.values().copied().max().unwrap_or(0).max(1);
    let width = per_backend
        .keys()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0);
    for (b, n) in &per_backend {
        let bar = "█".repeat((n * 40).div_ceil(max));
        println!("  {b:<width$}  {bar} {n}");
    }
    let sticky = results.len() - moved;
    println!();
    println!(
        "{sticky}/{} sessions sticky, {moved} moved, {failed_requests} failed requests, {} backends",
        results.len(),
        per_backend.len()
    );
    if results.iter().all(|r| !r.got_cookie) {
        println!("note: the server set no cookie, so nothing can keep a session on one backend");
    }
    if moved == 0 && failed_requests == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
