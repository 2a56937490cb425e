//! Phase 5, the upstream request: the head the pod gets. Same method, path, query and body;
//! `rewrite-target` or a Gateway API `URLRewrite` path applied (its hostname is the pod's `Host`,
//! as `upstream-vhost`, see `table::RouteHeaders`); Host kept (from `:authority` for HTTP/2
//! clients); hop-by-hop headers dropped, but for a protocol switch (WebSocket), whose `Upgrade`
//! goes on to the pod; `connection-proxy-header`'s `Connection` set (HTTP/1 pods, not on a
//! protocol switch); the X-Forwarded family and X-Request-ID set; the credentials of basic
//! authentication dropped.
//!
//! Idempotent requests without a body to plain-HTTP pods (most traffic) take the lean HTTP/1
//! client, whose head is written straight from the client's; the others hyper's client, with the
//! head rewritten in place.

use super::Connection;
use crate::access_log::Outcome;
use crate::filters::{modified_path, with_query};
use crate::headers::{self, Forwarded};
use crate::table::Matched;
use crate::Shared;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use model::ConnectionHeader;

/// The request as it goes to the pod, its body apart.
pub struct UpstreamHead {
    /// The head for hyper's client (rewritten in place), or, with `lean`, the client's as it came.
    pub parts: Parts,
    /// The lean client's encoded head, when the request takes it.
    pub lean: Option<Vec<u8>>,
    /// The protocol an HTTP/1.1 client asks to switch to, and its side of the switch.
    pub upgrade: Option<(HeaderValue, OnUpgrade)>,
    /// The request's `Origin`, for the CORS headers of the response.
    pub origin: Option<HeaderValue>,
    /// A retry may send it again after the pod saw it (nginx's `proxy_next_upstream`).
    pub idempotent: bool,
}

static CLOSE: HeaderValue = HeaderValue::from_static("close");
static KEEP_ALIVE: HeaderValue = HeaderValue::from_static("keep-alive");

/// The head the pod gets, and the body that goes with it.
pub fn prepare(
    shared: &Shared,
    conn: &Connection,
    mut req: Request<Incoming>,
    route: &Matched<'_>,
    out: &mut Outcome<'_>,
) -> (UpstreamHead, Incoming) {
    let location = route.location();
    let upgrade = match headers::upgrade_request(req.headers()) {
        Some(protocol) if req.version() == Version::HTTP_11 => {
            Some((protocol, hyper::upgrade::on(&mut req)))
        }
        _ => None,
    };
    let grpc_trailers = location.protocol.http2() && headers::accepts_trailers(req.headers());
    let (mut parts, body) = req.into_parts();
    // ingress-nginx's `proxy_set_header Authorization ""` where basic or digest authentication
    // took them.
    if route.runtime.basic_auth.is_some() || route.runtime.digest_auth.is_some() {
        parts.headers.remove(header::AUTHORIZATION);
    }
    // CORS response headers depend on the request's `Origin` only.
    let origin = route
        .runtime
        .cors
        .as_ref()
        .and_then(|_| parts.headers.get(header::ORIGIN).cloned());
    // The Host the pod gets, taken before any rewrite.
    let host = upstream_host(&parts);
    if let (Some(target), Some(re)) = (&location.rewrite_target, &route.runtime.regex) {
        let rewritten = rewrite(target, re, parts.uri.path(), parts.uri.query());
        if let Some(uri) = rewritten.and_then(|p| Uri::try_from(p).ok()) {
            parts.uri = uri;
        }
    }
    let rewrite_path = location
        .filters
        .as_ref()
        .and_then(|f| f.rewrite.as_ref()?.path.as_ref());
    if let Some(modifier) = rewrite_path {
        let path = modified_path(modifier, route.path, parts.uri.path());
        if let Ok(uri) = Uri::try_from(with_query(&path, parts.uri.query())) {
            parts.uri = uri;
        }
    }
    let idempotent = is_idempotent(&parts.method);
    let underscores = route.policy.keep_underscores;
    let original_for = super::client::original_forwarded_for(&parts.headers, route.policy);
    let mut forwarded = conn.forwarded(host.as_ref(), &route.runtime.headers, original_for);
    forwarded.generate_request_id = route.policy.generate_request_id;
    // `connection-proxy-header` (HTTP/1 pods; a protocol switch keeps its `Connection: upgrade`):
    // `close` takes hyper's client, which then does not pool the connection.
    let connection = match location.connection_header {
        Some(_) if upgrade.is_some() || location.protocol.http2() => None,
        Some(ConnectionHeader::Close) => Some(&CLOSE),
        Some(ConnectionHeader::KeepAlive) => Some(&KEEP_ALIVE),
        None => None,
    };
    let lean = if !location.protocol.tls()
        && !location.protocol.http2()
        && upgrade.is_none()
        && idempotent
        && hyper::body::Body::is_end_stream(&body)
        && location.connection_header != Some(ConnectionHeader::Close)
    {
        let (head, request_id) = lean_head(&parts, &forwarded, underscores, connection);
        if shared.access_log.is_some() {
            out.request_id = request_id;
        }
        Some(head)
    } else {
        rewrite_head(&mut parts, &forwarded, underscores);
        if let Some(value) = connection {
            parts.headers.insert(header::CONNECTION, value.clone());
        }
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
    let head = UpstreamHead {
        parts,
        lean,
        upgrade,
        origin,
        idempotent,
    };
    (head, body)
}

impl UpstreamHead {
    /// The request for hyper's client to the pod at `authority`, with `body`; `None`: the URI
    /// cannot be made.
    pub fn to_pod<B>(&self, authority: &Authority, tls: bool, body: B) -> Option<Request<B>> {
        let mut request = Request::from_parts(clone_parts(&self.parts), body);
        let mut uri = std::mem::take(request.uri_mut()).into_parts();
        uri.scheme = Some(if tls { Scheme::HTTPS } else { Scheme::HTTP });
        uri.authority = Some(authority.clone());
        *request.uri_mut() = Uri::from_parts(uri).ok()?;
        Some(request)
    }
}

/// The `Host` sent upstream: the one that chose the route. The URI's authority (an absolute-form
/// target, whose `Host` a server must ignore, RFC 9112 3.2.2; HTTP/2 `:authority`), else the
/// client's `Host`.
fn upstream_host(parts: &Parts) -> Option<HeaderValue> {
    parts
        .uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .or_else(|| parts.headers.get(header::HOST).cloned())
}

/// Rewrite the client's request head for the upstream: HTTP/1.1, origin-form URI, hop-by-hop
/// headers dropped (and those with underscores, unless kept), Host, X-Forwarded-* and
/// X-Request-ID set (unless `generate-request-id` is off).
fn rewrite_head(parts: &mut Parts, forwarded: &Forwarded<'_>, underscores: bool) {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
    parts.version = Version::HTTP_11;
    headers::strip_hop_by_hop(&mut parts.headers);
    if !underscores {
        headers::drop_underscored(&mut parts.headers);
    }
    headers::set_forwarded(&mut parts.headers, forwarded);
    if forwarded.generate_request_id {
        headers::ensure_request_id(&mut parts.headers);
    }
}

/// The lean client's request head, written from the client's without rewriting it in place: the
/// same request line and headers `rewrite_head` would leave (see `headers::write_upstream`), and
/// the X-Request-ID it carries.
fn lean_head(
    parts: &Parts,
    forwarded: &Forwarded<'_>,
    underscores: bool,
    connection: Option<&HeaderValue>,
) -> (Vec<u8>, Option<HeaderValue>) {
    let mut head = Vec::with_capacity(320 + parts.headers.len() * 32);
    headers::request_line(&mut head, &parts.method, &parts.uri);
    let request_id = headers::write_upstream(&mut head, &parts.headers, forwarded, underscores);
    if let Some(value) = connection {
        headers::line(&mut head, &header::CONNECTION, value);
    }
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

/// nginx's `rewrite "<route regex>" <target> break;`: when the route's regex matches the path, the
/// upstream path becomes `target` with `$1`..`$9` replaced by its captures; the query string is
/// kept (after the target's own, if it has one).
fn rewrite(target: &str, re: &regex::Regex, path: &str, query: Option<&str>) -> Option<String> {
    let caps = re.captures(path)?;
    let mut out = String::with_capacity(target.len() + path.len());
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().and_then(|d| d.to_digit(10))) {
            ('$', Some(n)) => {
                chars.next();
                out.push_str(caps.get(n as usize).map_or("", |m| m.as_str()));
            }
            _ => out.push(c),
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    if let Some(q) = query {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests;
