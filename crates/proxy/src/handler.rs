//! The request path, top to bottom: find the route (one table load), pick the endpoint (sticky
//! layer over the backend's algorithm), forward (failing over to another endpoint when the chosen
//! one cannot be reached), set the cookie on the way back.

use crate::body::{Limits, Phase, Progress, ReadTimeout, TooLarge, UpstreamBody};
use crate::h1::{self, H1Body};
use crate::headers;
use crate::metrics::{RouteStats, SessionOutcome};
use crate::table::Table;
use crate::table::{BackendRuntime, RouteRuntime};
use crate::Shared;
use balance::cookie;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::Authority;
use http::uri::{PathAndQuery, Scheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use model::{Affinity, Canary, Target};
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use std::time::{Instant, SystemTime};

/// What the proxy answers with: a pod's response body (from hyper's client, or the lean HTTP/1
/// client's), or one of its own.
pub type Body = Either<UpstreamResponse, Full<Bytes>>;
type UpstreamResponse = Either<ReadTimeout<Incoming>, H1Body>;

/// Endpoints tried for one request at most (ingress-nginx `proxy-next-upstream-tries`).
const MAX_TRIES: usize = 3;

/// What the request path needs to know about the client connection, computed once per connection.
pub struct Connection {
    /// The client's IP (for `allowlist-source-range`).
    remote: IpAddr,
    /// The same, as `X-Forwarded-For` / `X-Real-IP` value.
    client_ip: HeaderValue,
    /// The port the client connected to, as `X-Forwarded-Port` value.
    local_port: HeaderValue,
    /// The connection is TLS (the HTTPS listener).
    tls: bool,
}

impl Connection {
    /// What Remora tells the pod of a request on this connection whose Host is `host`.
    fn forwarded<'a>(&'a self, host: Option<&'a HeaderValue>) -> headers::Forwarded<'a> {
        headers::Forwarded {
            host,
            client_ip: &self.client_ip,
            port: &self.local_port,
            tls: self.tls,
        }
    }

    pub fn new(remote: SocketAddr, local_port: HeaderValue, tls: bool) -> Self {
        Self {
            remote: remote.ip(),
            client_ip: HeaderValue::from_str(&remote.ip().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            local_port,
            tls,
        }
    }
}

/// What happened to a request, for its metrics and access log line.
pub struct Outcome<'t> {
    pub stats: Option<&'t RouteStats>,
    pub session: SessionOutcome,
    /// The endpoint that answered (or was tried last).
    pub upstream: Option<&'t Authority>,
    pub tries: u8,
    /// The `X-Request-ID` sent upstream (the client's, or the one made for it), when the access
    /// log is on.
    pub request_id: Option<HeaderValue>,
}

pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    // One load of the current table, kept for the whole request.
    let table = shared.table.load_full();
    let line = shared
        .access_log
        .as_ref()
        .map(|_| crate::access_log::RequestLine::of(&req, &conn.client_ip));
    let mut out = Outcome {
        stats: None,
        session: SessionOutcome::None,
        upstream: None,
        tries: 0,
        request_id: None,
    };
    let response = forward(&shared, &conn, req, &table, &mut out).await;
    let elapsed = started.elapsed();
    let code = response.status().as_u16();
    if let Some(stats) = out.stats {
        stats.request(code, elapsed, out.session);
    }
    if let (Some(log), Some(line)) = (&shared.access_log, line) {
        log.write(line, &out, code, elapsed, &shared.global);
    }
    Ok(response)
}

async fn forward<'t>(
    shared: &Arc<Shared>,
    conn: &Connection,
    mut req: Request<Incoming>,
    table: &'t Table,
    out: &mut Outcome<'t>,
) -> Response<Body> {
    // 1. Route.
    let host = request_host(&req);
    let Some(matched) = table.route(&host, req.uri().path()) else {
        return status(StatusCode::NOT_FOUND);
    };
    let route = matched.runtime;
    out.stats = Some(&route.stats);
    if matched.https_redirect && !conn.tls {
        if let Some(r) = https_redirect(&host, req.uri(), shared.config.https_redirect_port) {
            return r;
        }
    }
    drop(host);
    // The location's own answers (app-root, permanent-redirect, CORS preflight, allow-list), then
    // its body size limit. A canary answers in its primary's location.
    let location = &*matched.target.location;
    if let Some(r) =
        crate::location::respond(location, route.cors.as_ref(), &req, conn.remote, conn.tls)
    {
        return r;
    }
    if let (Some(limit), Some(length)) =
        (location.body_limit, headers::content_length(req.headers()))
    {
        if length > limit {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    let target = match matched.canary {
        Some(c) if to_canary(shared, table, route, matched.target, c, &req) => {
            out.stats = route.canary_stats.as_deref().or(out.stats);
            &c.target
        }
        _ => matched.target,
    };
    let Some(backend) = target
        .backend
        .and_then(|b| table.backends.get(b.0 as usize))
    else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let affinity = target.affinity.as_deref();

    // 2. Pick: sticky when the route has affinity, round robin otherwise.
    // The clock is only read for sessions (cookie times).
    let now = if affinity.is_some() {
        SystemTime::now()
    } else {
        SystemTime::UNIX_EPOCH
    };
    let (mut endpoint, mut set_cookie) = match affinity {
        Some(a) => {
            let cookies = || {
                cookie::find(
                    req.headers()
                        .get_all(header::COOKIE)
                        .iter()
                        .map(HeaderValue::as_bytes),
                    &a.cookie_name,
                )
            };
            let pick = backend.balancer.pick_sticky(
                &shared.config.cookie_key,
                a,
                cookies(),
                cookie::now_secs(now),
            );
            match pick {
                Some(p) => {
                    out.session = match &p.new_cookie {
                        None => SessionOutcome::Sticky,
                        // A new cookie replaces one the client sent, or starts the session.
                        Some(_) if cookies().next().is_some() => SessionOutcome::Repinned,
                        Some(_) => SessionOutcome::New,
                    };
                    (p.endpoint, p.new_cookie)
                }
                None => return status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        None => match backend.balancer.pick() {
            Some(i) => (i, None),
            None => return status(StatusCode::SERVICE_UNAVAILABLE),
        },
    };

    // 3. Forward: same method, path, query and body; Host kept; hop-by-hop headers dropped, but
    // for a protocol switch (WebSocket), whose `Upgrade` goes on to the upstream.
    let upgrade = match headers::upgrade_request(req.headers()) {
        Some(protocol) if req.version() == Version::HTTP_11 => {
            Some((protocol, hyper::upgrade::on(&mut req)))
        }
        _ => None,
    };
    let grpc_trailers = location.protocol.http2() && headers::accepts_trailers(req.headers());
    let (mut parts, body) = req.into_parts();
    // CORS response headers depend on the request's `Origin` only.
    let origin = route
        .cors
        .as_ref()
        .and_then(|_| parts.headers.get(header::ORIGIN).cloned());
    // The Host the pod gets (from `:authority` for HTTP/2 clients), taken before any rewrite.
    let host = upstream_host(&parts);
    if let (Some(target), Some(re)) = (&location.rewrite_target, &route.regex) {
        let rewritten = crate::location::rewrite(target, re, parts.uri.path(), parts.uri.query());
        if let Some(uri) = rewritten.and_then(|p| Uri::try_from(p).ok()) {
            parts.uri = uri;
        }
    }
    let read_timeout = Duration::from_secs(u64::from(location.read_timeout_secs.max(1)));
    let idempotent = is_idempotent(&parts.method);
    // Idempotent requests without a body to plain-HTTP pods (most traffic) take the lean HTTP/1
    // client, whose head is written straight from the client's; the others hyper's client, with
    // the head rewritten in place.
    let lean = if !location.protocol.tls()
        && !location.protocol.http2()
        && upgrade.is_none()
        && idempotent
        && hyper::body::Body::is_end_stream(&body)
    {
        let (head, request_id) = lean_head(&parts, conn, host.as_ref());
        if shared.access_log.is_some() {
            out.request_id = Some(request_id);
        }
        Some(head)
    } else {
        prepare(&mut parts, conn, host.as_ref());
        if shared.access_log.is_some() {
            out.request_id = parts.headers.get("x-request-id").cloned();
        }
        if let Some((protocol, _)) = &upgrade {
            headers::set_upgrade(&mut parts.headers, protocol.clone());
        }
        if location.protocol.http2() {
            parts.version = Version::HTTP_2;
            if grpc_trailers {
                parts
                    .headers
                    .insert(header::TE, HeaderValue::from_static("trailers"));
            }
        }
        None
    };
    let client = route.client.as_ref();
    if client.is_none() && lean.is_none() {
        return status(StatusCode::BAD_GATEWAY);
    }
    let timeouts = h1::Timeouts {
        connect: Duration::from_secs(u64::from(location.connect_timeout_secs.max(1))),
        read: read_timeout,
    };
    let limits = Limits {
        client_body: shared.config.server.client_body_timeout,
        send: Duration::from_secs(u64::from(location.send_timeout_secs.max(1))),
        read: read_timeout,
    };
    let (body, slot) = UpstreamBody::new(body, location.body_limit, limits);
    let mut too_large = false;
    let mut body = Some(body);
    let mut tried = [usize::MAX; MAX_TRIES];
    let mut response = None;
    for attempt in 0..MAX_TRIES {
        tried[attempt] = endpoint;
        let Some(authority) = backend.authorities.get(endpoint) else {
            break;
        };
        out.upstream = Some(authority);
        out.tries = attempt as u8 + 1;
        let Some(this_body) = body.take() else {
            break;
        };
        let sent = match (&lean, client, backend.addrs.get(endpoint)) {
            (Some(head), _, Some(&addr)) => {
                let exchange = h1::send(shared.h1, addr, &parts.method, head, timeouts);
                match within(exchange, None, &limits).await {
                    Ok(Ok(r)) => Ok(Ok(r.map(Either::Right))),
                    Ok(Err(e)) => Ok(Err(UpstreamError::Lean(e))),
                    Err(stalled) => Err(stalled),
                }
            }
            (_, Some(client), _) => {
                let mut upstream = Request::from_parts(clone_parts(&parts), this_body);
                let mut uri = std::mem::take(upstream.uri_mut()).into_parts();
                uri.scheme = Some(if location.protocol.tls() {
                    Scheme::HTTPS
                } else {
                    Scheme::HTTP
                });
                uri.authority = Some(authority.clone());
                match Uri::from_parts(uri) {
                    Ok(u) => *upstream.uri_mut() = u,
                    Err(_) => return status(StatusCode::BAD_REQUEST),
                }
                let progress = upstream.body().progress();
                let exchange = client.request(upstream);
                match within(exchange, progress, &limits).await {
                    Ok(Ok(r)) => Ok(Ok(
                        r.map(|b| Either::Left(ReadTimeout::new(b, read_timeout)))
                    )),
                    Ok(Err(e)) => Ok(Err(UpstreamError::Hyper(e))),
                    Err(stalled) => Err(stalled),
                }
            }
            _ => break,
        };
        let error = match sent {
            Ok(Ok(r)) => {
                response = Some(r);
                break;
            }
            Ok(Err(e)) => {
                too_large = matches!(&e, UpstreamError::Hyper(e) if TooLarge::caused(e));
                e
            }
            Err(stalled) => {
                tracing::warn!(upstream = %authority, "{stalled}");
                return status(match stalled {
                    Stalled::Client(_) => StatusCode::REQUEST_TIMEOUT,
                    Stalled::Upstream(_) | Stalled::Response(_) => StatusCode::GATEWAY_TIMEOUT,
                });
            }
        };
        // Failover. A connection that never happened is safe to retry for any method: the body
        // was not read and comes back through the slot. Other errors (the upstream closed or reset
        // the connection) are retried only for idempotent requests without a body, as nginx's
        // `proxy_next_upstream error` does.
        let retry_body = if error.is_connect() {
            if let Some(stats) = out.stats {
                stats.connect_error();
            }
            match &slot {
                None => Some(UpstreamBody::Empty),
                Some(slot) => slot
                    .lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .map(|b| UpstreamBody::new(b, location.body_limit, limits).0),
            }
        } else if idempotent && slot.is_none() {
            Some(UpstreamBody::Empty)
        } else {
            None
        };
        tracing::warn!(
            upstream = %authority,
            error = %error,
            cause = ?error.cause(),
            retry = retry_body.is_some(),
            "upstream request failed"
        );
        let Some(retry_body) = retry_body else {
            break;
        };
        let next = repick(shared, backend, affinity, now, &tried[..=attempt]);
        let Some((next_endpoint, next_cookie)) = next else {
            break;
        };
        if let Some(stats) = out.stats {
            stats.retry();
        }
        endpoint = next_endpoint;
        if next_cookie.is_some() {
            set_cookie = next_cookie;
            out.session = SessionOutcome::Repinned;
        }
        body = Some(retry_body);
    }
    let Some(mut response) = response else {
        if too_large {
            return status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        return status(StatusCode::BAD_GATEWAY);
    };
    if let Some(cors) = &route.cors {
        cors.add(origin.as_ref(), response.headers_mut());
    }

    // 4. Respond: hop-by-hop headers dropped, the session cookie added for new sessions. A switch
    // of protocols accepted by the upstream becomes a tunnel between the two connections.
    let switched = match upgrade {
        Some((_, downstream)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let protocol = response.headers().get(header::UPGRADE).cloned();
            let upstream = hyper::upgrade::on(&mut response);
            // nginx closes a WebSocket idle for `proxy-read-timeout`; so does Remora.
            tokio::spawn(crate::tunnel::run(downstream, upstream, read_timeout));
            protocol
        }
        _ => None,
    };
    headers::strip_hop_by_hop(response.headers_mut());
    if let Some(protocol) = switched {
        headers::set_upgrade(response.headers_mut(), protocol);
    }
    if let (Some(a), Some(value)) = (affinity, set_cookie) {
        let traits = cookie::RequestTraits {
            tls: conn.tls,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .map(HeaderValue::as_bytes),
        };
        if let Ok(v) = HeaderValue::from_str(&cookie::set_cookie(a, &value, now, traits)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response.map(Either::Left)
}

/// Which step stalled, for how long.
#[derive(Debug, thiserror::Error)]
enum Stalled {
    #[error("the client sent no more of the request body for {0:?}")]
    Client(Duration),
    #[error("the pod took no more of the request for {0:?}")]
    Upstream(Duration),
    #[error("no response in time ({0:?})")]
    Response(Duration),
}

impl Stalled {
    fn in_phase(phase: Phase, limits: &Limits) -> Self {
        let limit = limits.of(phase);
        match phase {
            Phase::Client => Stalled::Client(limit),
            Phase::Upstream => Stalled::Upstream(limit),
            Phase::Sent => Stalled::Response(limit),
        }
    }
}

/// Await `exchange` (a request to a pod) while its body keeps moving: each phase has its own
/// limit from its own start. Without a body (`progress` is `None`) the response head is awaited
/// for the read timeout.
async fn within<F: std::future::Future>(
    exchange: F,
    progress: Option<tokio::sync::watch::Receiver<Progress>>,
    limits: &Limits,
) -> Result<F::Output, Stalled> {
    let Some(mut progress) = progress else {
        return tokio::time::timeout(limits.read, exchange)
            .await
            .map_err(|_| Stalled::Response(limits.read));
    };
    tokio::pin!(exchange);
    let sleep = tokio::time::sleep_until(progress.borrow().deadline);
    tokio::pin!(sleep);
    // The body wakes us when a deadline comes sooner; once it is gone, its last word stands.
    let mut watching = true;
    loop {
        tokio::select! {
            output = &mut exchange => return Ok(output),
            changed = progress.changed(), if watching => {
                watching = changed.is_ok();
                sleep.as_mut().reset(progress.borrow().deadline);
            }
            () = &mut sleep => {
                // Progress moves the deadline later without a wake-up: look again.
                let current = *progress.borrow();
                if current.deadline <= tokio::time::Instant::now() {
                    return Err(Stalled::in_phase(current.phase, limits));
                }
                sleep.as_mut().reset(current.deadline);
            }
        }
    }
}

/// Why an upstream request failed, from either client.
enum UpstreamError {
    Hyper(hyper_util::client::legacy::Error),
    Lean(h1::Error),
}

impl UpstreamError {
    /// The connection never happened: nothing of the request reached the pod.
    fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Hyper(e) => e.is_connect(),
            UpstreamError::Lean(e) => e.is_connect(),
        }
    }

    fn cause(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpstreamError::Hyper(e) => std::error::Error::source(e),
            UpstreamError::Lean(e) => std::error::Error::source(e),
        }
    }
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Hyper(e) => e.fmt(f),
            UpstreamError::Lean(e) => e.fmt(f),
        }
    }
}

/// Does this request of a route with a canary go to the canary? As ingress-nginx decides: the
/// header (`always`/`never`, or its configured value or pattern), then the cookie
/// (`always`/`never`), then, with sticky behaviour, the side the session cookie belongs to, then
/// the weight.
fn to_canary(
    shared: &Shared,
    table: &Table,
    route: &RouteRuntime,
    primary: &Target,
    canary: &Canary,
    req: &Request<Incoming>,
) -> bool {
    if let Some(name) = &canary.header {
        if let Some(v) = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
        {
            if let Some(want) = &canary.header_value {
                if v == want {
                    return true;
                }
            } else if canary.header_pattern.is_some() {
                if route
                    .canary_pattern
                    .as_ref()
                    .is_some_and(|re| re.is_match(v))
                {
                    return true;
                }
            } else if v == "always" {
                return true;
            } else if v == "never" {
                return false;
            }
        }
    }
    let cookies = || {
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
    };
    if let Some(name) = &canary.cookie {
        match cookie::find(cookies(), name).next() {
            Some("always") => return true,
            Some("never") => return false,
            _ => {}
        }
    }
    if canary.sticky {
        if let Some(a) = &primary.affinity {
            let balancer = |t: &Target| {
                t.backend
                    .and_then(|b| table.backends.get(b.0 as usize))
                    .map(|b| &b.balancer)
            };
            let key = &shared.config.cookie_key;
            for value in cookie::find(cookies(), &a.cookie_name) {
                if balancer(primary).is_some_and(|b| b.recognizes(key, value)) {
                    return false;
                }
                if balancer(&canary.target).is_some_and(|b| b.recognizes(key, value)) {
                    return true;
                }
            }
        }
    }
    canary.weight > 0
        && balance::random_u64() % u64::from(canary.weight_total.max(1)) < u64::from(canary.weight)
}

/// Another endpoint for a request whose endpoint failed, and the cookie that re-pins its session
/// there (unless the route keeps cookies on failure).
fn repick(
    shared: &Shared,
    backend: &BackendRuntime,
    affinity: Option<&Affinity>,
    now: SystemTime,
    tried: &[usize],
) -> Option<(usize, Option<String>)> {
    match affinity {
        Some(a) => {
            let p = backend.balancer.repick_sticky(
                &shared.config.cookie_key,
                a,
                cookie::now_secs(now),
                tried,
            )?;
            Some((p.endpoint, p.new_cookie.filter(|_| a.change_on_failure)))
        }
        None => backend.balancer.pick_excluding(tried).map(|i| (i, None)),
    }
}

/// The `Host` sent upstream: the client's, or the URI's authority (HTTP/2 `:authority`,
/// absolute-form requests).
fn upstream_host(parts: &Parts) -> Option<HeaderValue> {
    parts.headers.get(header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    })
}

/// Rewrite the client's request head for the upstream: HTTP/1.1, origin-form URI, `host` as
/// `Host`, hop-by-hop headers dropped, X-Forwarded-* and X-Request-ID set.
fn prepare(parts: &mut Parts, conn: &Connection, host: Option<&HeaderValue>) {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
    parts.version = Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::set_forwarded(&mut parts.headers, &conn.forwarded(host));
    headers::ensure_request_id(&mut parts.headers);
}

/// The lean client's request head, written from the client's without rewriting it in place: the
/// same request line and headers `prepare` would leave (see `headers::write_upstream`), and the
/// X-Request-ID it carries.
fn lean_head(
    parts: &Parts,
    conn: &Connection,
    host: Option<&HeaderValue>,
) -> (Vec<u8>, HeaderValue) {
    let mut head = Vec::with_capacity(320 + parts.headers.len() * 32);
    headers::request_line(&mut head, &parts.method, &parts.uri);
    let request_id = headers::write_upstream(&mut head, &parts.headers, &conn.forwarded(host));
    head.extend_from_slice(b"\r\n");
    (head, request_id)
}

/// The parts of a request head that are sent upstream (extensions stay behind).
fn clone_parts(p: &Parts) -> Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.method = p.method.clone();
    parts.uri = p.uri.clone();
    parts.version = p.version;
    parts.headers = p.headers.clone();
    parts
}

fn is_idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The request's host, lowercase, without port or trailing dot: from the URI (HTTP/2 `:authority`,
/// absolute-form requests), else the `Host` header.
fn request_host(req: &Request<Incoming>) -> Cow<'_, str> {
    let raw = req
        .uri()
        .host()
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
        .unwrap_or("");
    let host = match raw.strip_prefix('[') {
        // IPv6 literal: keep the brackets off, drop the port.
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The 308 to the same URL over HTTPS (ingress-nginx's `ssl-redirect`), except for ACME HTTP-01
/// challenges, which must stay reachable over plain HTTP. `None`: no redirect.
fn https_redirect(host: &str, uri: &Uri, port: u16) -> Option<Response<Body>> {
    let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    if host.is_empty() || uri.path().starts_with("/.well-known/acme-challenge/") {
        return None;
    }
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    crate::location::redirect(StatusCode::PERMANENT_REDIRECT, &location)
}

/// A short plain-text error response, like ingress-nginx's default pages.
pub fn status(code: StatusCode) -> Response<Body> {
    let text = format!(
        "{} {}\n",
        code.as_u16(),
        code.canonical_reason().unwrap_or("")
    );
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request line and sorted header lines of a head; a generated X-Request-ID (not `keep`) is
    /// replaced by `ID`.
    fn lines(head: &[u8], keep: Option<&str>) -> (String, Vec<String>) {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(head).unwrap().is_complete());
        let line = format!("{} {}", req.method.unwrap(), req.path.unwrap());
        let mut out: Vec<String> = req
            .headers
            .iter()
            .map(|h| {
                let name = h.name.to_ascii_lowercase();
                let value = String::from_utf8_lossy(h.value).into_owned();
                match keep {
                    None if name == "x-request-id" => format!("{name}: ID"),
                    _ => format!("{name}: {value}"),
                }
            })
            .collect();
        out.sort();
        (line, out)
    }

    #[test]
    fn the_lean_head_carries_what_prepare_makes_of_the_request() {
        let conn = Connection::new(
            "127.0.0.9:5555".parse().unwrap(),
            HeaderValue::from_static("8080"),
            false,
        );
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/a?b=1",
                vec![("host", "shop.example.com"), ("accept", "*/*")],
            ),
            (
                "/hop",
                vec![
                    ("host", "shop.example.com"),
                    ("connection", "keep-alive, x-secret"),
                    ("x-secret", "1"),
                    ("keep-alive", "timeout=5"),
                    ("proxy-connection", "keep-alive"),
                    ("te", "trailers"),
                    ("upgrade", "h2c"),
                    ("accept", "text/html"),
                    ("accept", "*/*"),
                ],
            ),
            (
                "/spoof",
                vec![
                    ("host", "shop.example.com"),
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-real-ip", "6.6.6.6"),
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-scheme", "https"),
                    ("x-forwarded-host", "evil.example.com"),
                    ("x-forwarded-port", "1"),
                    ("x-request-id", "from-client"),
                ],
            ),
            (
                "http://h2.example.com:8443/p?q=1",
                vec![("user-agent", "t")],
            ),
            (
                "/listed-id",
                vec![
                    ("host", "a.example.com"),
                    ("connection", "x-request-id"),
                    ("x-request-id", "dropped"),
                ],
            ),
        ];
        for (uri, headers) in cases {
            let mut req = Request::builder().uri(uri);
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            let (parts, ()) = req.body(()).unwrap().into_parts();
            let host = upstream_host(&parts);
            let (lean, id) = lean_head(&parts, &conn, host.as_ref());
            let mut prepared = clone_parts(&parts);
            prepare(&mut prepared, &conn, host.as_ref());
            let kept = headers
                .iter()
                .any(|(k, v)| *k == "x-request-id" && *v == "from-client")
                .then_some("from-client");
            assert_eq!(
                lines(&lean, kept),
                lines(&headers::encode_head(&prepared), kept),
                "{uri}"
            );
            assert!(lines(&lean, Some(""))
                .1
                .contains(&format!("x-request-id: {}", id.to_str().unwrap())));
        }
    }
}
