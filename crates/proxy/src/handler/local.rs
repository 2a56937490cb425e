//! Phase 2, answer locally: what a route answers without a pod, in nginx's order. The redirect to
//! HTTPS (`ssl-redirect`), `from-to-www-redirect`, `app-root`, `temporal-redirect` or `permanent-redirect`, and the CORS
//! preflight.

use super::Connection;
use crate::headers::{http_host, request_host};
use crate::response::{self, Body};
use crate::table::Matched;
use crate::ProxyConfig;
use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Uri};

/// The proxy's own answer to this request, if the route gives one.
pub fn answer<B>(
    route: &Matched<'_>,
    req: &Request<B>,
    conn: &Connection,
    config: &ProxyConfig,
) -> Option<Response<Body>> {
    // The redirect points at the Ingress HTTPS port: the Ingress listeners only.
    if route.https_redirect && !conn.tls && conn.is_ingress() {
        let keep_slash = route.location().preserve_trailing_slash;
        let port = config.https_redirect_port;
        let code = route
            .policy
            .https_redirect_code
            .unwrap_or(StatusCode::PERMANENT_REDIRECT);
        if let Some(r) = https_redirect(&request_host(req), req.uri(), port, keep_slash, code) {
            return Some(r);
        }
    }
    // A canary answers in its primary's location.
    let location = route.location();
    if let Some(to) = &location.redirect_to_host {
        return www_redirect(to, req.uri(), conn);
    }
    if let Some(root) = &location.app_root {
        if req.uri().path() == "/" {
            let (scheme, host) = (conn.scheme(), http_host(req));
            return response::redirect(StatusCode::FOUND, &format!("{scheme}://{host}{root}"));
        }
    }
    if let Some(r) = &location.redirect {
        let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
        return response::redirect(code, &r.url);
    }
    if let Some(cors) = &route.runtime.cors {
        if req.method() == Method::OPTIONS {
            let mut r = Response::new(Body::Right(Default::default()));
            if cors.add(req.headers().get(header::ORIGIN), r.headers_mut()) {
                *r.status_mut() = StatusCode::NO_CONTENT;
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain charset=UTF-8"),
                );
                r.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                return Some(r);
            }
        }
    }
    None
}

/// The 308 (`http-redirect-code`) to the same URL over HTTPS (ingress-nginx's `ssl-redirect`), except for ACME HTTP-01
/// challenges, which must stay reachable over plain HTTP. `None`: no redirect.
/// A trailing `/` of the request URI is taken off unless `keep_slash` (ingress-nginx's
/// `preserve-trailing-slash`).
fn https_redirect(
    host: &str,
    uri: &Uri,
    port: u16,
    keep_slash: bool,
    code: StatusCode,
) -> Option<Response<Body>> {
    let path = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !keep_slash => trimmed,
        _ => path,
    };
    if host.is_empty() || uri.path().starts_with("/.well-known/acme-challenge/") {
        return None;
    }
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    response::redirect(code, &location)
}

/// ingress-nginx's `from-to-www-redirect` server: 308 to the same scheme, port and request URI on
/// the other name, a trailing `/` taken off (its `ngx_srv_redirect.lua`).
fn www_redirect(to: &str, uri: &Uri, conn: &Connection) -> Option<Response<Body>> {
    let scheme = conn.scheme();
    let port = conn.local_port.to_str().unwrap_or("80");
    let target = uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let target = target.strip_suffix('/').unwrap_or(target);
    response::redirect(
        StatusCode::PERMANENT_REDIRECT,
        &format!("{scheme}://{to}:{port}{target}"),
    )
}
