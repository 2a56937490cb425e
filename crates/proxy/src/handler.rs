//! The request path, top to bottom: find the route (one table load), pick the endpoint (sticky
//! layer over the backend's algorithm), forward, set the cookie on the way back.

use crate::headers;
use crate::Shared;
use balance::cookie;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::borrow::Cow;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

pub type Body = Either<Incoming, Full<Bytes>>;

/// What the request path needs to know about the client connection, computed once per connection.
pub struct Connection {
    /// The client's IP, as `X-Forwarded-For` / `X-Real-IP` value.
    client_ip: HeaderValue,
    /// The port the client connected to, as `X-Forwarded-Port` value.
    local_port: HeaderValue,
}

impl Connection {
    pub fn new(remote: SocketAddr, local_port: HeaderValue) -> Self {
        Self {
            client_ip: HeaderValue::from_str(&remote.ip().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            local_port,
        }
    }
}

pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    // 1. Route: one load of the current table; everything needed later is cloned out of it so
    //    that no guard is held across the upstream await.
    let (authority, set_cookie) = {
        let table = shared.table.load();
        let host = request_host(&req);
        let Some(target) = table.route(&host, req.uri().path()) else {
            return Ok(status(StatusCode::NOT_FOUND));
        };
        let Some(backend) = target
            .backend
            .and_then(|b| table.backends.get(b.0 as usize))
        else {
            return Ok(status(StatusCode::SERVICE_UNAVAILABLE));
        };
        // 2. Pick: sticky when the route has affinity, round robin otherwise.
        let (endpoint, set_cookie) = match &target.affinity {
            Some(affinity) => {
                let now = SystemTime::now();
                let cookies = cookie::find(
                    req.headers()
                        .get_all(header::COOKIE)
                        .iter()
                        .map(HeaderValue::as_bytes),
                    &affinity.cookie_name,
                );
                let pick = backend.balancer.pick_sticky(
                    &shared.config.cookie_key,
                    affinity.mode,
                    cookies,
                    cookie::now_secs(now),
                );
                let Some(pick) = pick else {
                    return Ok(status(StatusCode::SERVICE_UNAVAILABLE));
                };
                let set = pick
                    .new_cookie
                    .map(|v| cookie::set_cookie(affinity, &v, now));
                (pick.endpoint, set)
            }
            None => match backend.balancer.pick() {
                Some(i) => (i, None),
                None => return Ok(status(StatusCode::SERVICE_UNAVAILABLE)),
            },
        };
        let Some(authority) = backend.authorities.get(endpoint) else {
            return Ok(status(StatusCode::SERVICE_UNAVAILABLE));
        };
        (authority.clone(), set_cookie)
    };

    // 3. Forward: same method, path, query and body; Host kept; hop-by-hop headers dropped.
    let host_value = req.headers().get(header::HOST).cloned().or_else(|| {
        req.uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority);
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    let Ok(uri) = Uri::from_parts(parts) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    let headers = req.headers_mut();
    headers::strip_hop_by_hop(headers);
    headers::set_forwarded(
        headers,
        &conn.client_ip,
        host_value.as_ref(),
        &conn.local_port,
    );
    if let Some(h) = host_value {
        headers.insert(header::HOST, h);
    }

    let response =
        tokio::time::timeout(shared.config.response_timeout, shared.client.request(req)).await;
    let mut response = match response {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, upstream_error = ?std::error::Error::source(&e), "upstream request failed");
            return Ok(status(StatusCode::BAD_GATEWAY));
        }
        Err(_) => return Ok(status(StatusCode::GATEWAY_TIMEOUT)),
    };

    // 4. Respond: hop-by-hop headers dropped, the session cookie added for new sessions.
    headers::strip_hop_by_hop(response.headers_mut());
    if let Some(c) = set_cookie {
        if let Ok(v) = HeaderValue::from_str(&c) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response.map(Either::Left))
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
