//! Phase 2, redirect: a Gateway API `RequestRedirect` filter answers every request of its route
//! with a redirect. Each part of the `Location` the filter leaves out is the request's own; the
//! port as the Gateway API says (`HTTPRequestRedirectFilter.port`):
//!
//! - the filter's port, if it has one;
//! - else, when the filter sets a scheme, that scheme's well-known port (80, 443);
//! - else the port the request was sent to (its `Host`, or `:authority`), which is the
//!   listener's as the client sees it; none written means the scheme's default.
//!
//! A port that is the well-known one of the `Location`'s scheme is not written. The path is the
//! request's, or the filter's (`ReplaceFullPath`, or `ReplacePrefixMatch` of the route's prefix);
//! the query string is kept.

use super::Connection;
use crate::filters::modified_path;
use crate::headers::{http_host, request_host};
use crate::response::{self, Body};
use crate::table::Matched;
use http::{Request, Response, StatusCode};
use model::RequestRedirect;
use std::fmt::Write;

/// The redirect of a route with a `RequestRedirect` filter; `None`: the route has none (or the
/// `Location` is no valid header value).
pub fn answer<B>(
    route: &Matched<'_>,
    req: &Request<B>,
    conn: &Connection,
) -> Option<Response<Body>> {
    let redirect = route.location().filters.as_ref()?.redirect.as_ref()?;
    let uri = req.uri();
    let request = RequestUrl {
        scheme: conn.scheme(),
        host: &request_host(req),
        port: port_of(http_host(req)),
        path: uri.path(),
        query: uri.query(),
    };
    let status = StatusCode::from_u16(redirect.status)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::FOUND);
    response::redirect(status, &location(redirect, &request, route.path))
}

/// What of the request a redirect keeps.
struct RequestUrl<'a> {
    /// `http` or `https`, as the client connected.
    scheme: &'a str,
    /// Lowercase, without port.
    host: &'a str,
    /// The port of `Host` (or `:authority`), if it has one.
    port: Option<u16>,
    path: &'a str,
    query: Option<&'a str>,
}

/// The `Location` of a redirect of `request` on a route whose own path is `prefix`.
fn location(r: &RequestRedirect, request: &RequestUrl<'_>, prefix: &str) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(request.scheme);
    let host = r.hostname.as_deref().unwrap_or(request.host);
    let port = r.port.or_else(|| match &r.scheme {
        Some(s) => well_known_port(s),
        None => request.port,
    });
    let path = match &r.path {
        Some(modifier) => modified_path(modifier, prefix, request.path),
        None => request.path.into(),
    };
    let mut out = String::with_capacity(16 + host.len() + path.len());
    out.push_str(scheme);
    out.push_str("://");
    if host.contains(':') {
        // An IPv6 literal: bracketed in a URL.
        let _ = write!(out, "[{host}]");
    } else {
        out.push_str(host);
    }
    if let Some(port) = port.filter(|p| Some(*p) != well_known_port(scheme)) {
        let _ = write!(out, ":{port}");
    }
    out.push_str(&path);
    if let Some(q) = request.query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port of a `Host` value (`name:port`, `[v6]:port`); `None` without one, or when it is not a
/// port number.
fn port_of(host: &str) -> Option<u16> {
    let (name, port) = host.rsplit_once(':')?;
    if name.starts_with('[') && !name.ends_with(']') {
        // `[::1]`: the colon was inside the brackets.
        return None;
    }
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::PathModifier;

    fn redirect(scheme: Option<&str>, port: Option<u16>) -> RequestRedirect {
        RequestRedirect {
            scheme: scheme.map(Into::into),
            hostname: Some("example.org".into()),
            port,
            path: None,
            status: 302,
        }
    }

    fn request(scheme: &'static str, port: Option<u16>) -> RequestUrl<'static> {
        RequestUrl {
            scheme,
            host: "gw.example.com",
            port,
            path: "/scheme",
            query: None,
        }
    }

    /// `httproute-redirect-port-and-scheme`: listeners on 80 and 8080 (the client's `Host` says
    /// the port unless it is 80) and on 443 with TLS.
    #[test]
    fn port_and_scheme_as_the_conformance_test_expects() {
        let cases = [
            // http-listener-on-80
            (
                request("http", None),
                None,
                None,
                "http://example.org/scheme",
            ),
            (
                request("http", None),
                None,
                Some(80),
                "http://example.org/scheme",
            ),
            (
                request("http", None),
                None,
                Some(8080),
                "http://example.org:8080/scheme",
            ),
            (
                request("http", None),
                Some("https"),
                None,
                "https://example.org/scheme",
            ),
            (
                request("http", None),
                Some("https"),
                Some(443),
                "https://example.org/scheme",
            ),
            (
                request("http", None),
                Some("https"),
                Some(8443),
                "https://example.org:8443/scheme",
            ),
            // http-listener-on-8080
            (
                request("http", Some(8080)),
                None,
                None,
                "http://example.org:8080/scheme",
            ),
            (
                request("http", Some(8080)),
                None,
                Some(80),
                "http://example.org/scheme",
            ),
            (
                request("http", Some(8080)),
                Some("https"),
                None,
                "https://example.org/scheme",
            ),
            // https-listener-on-443
            (
                request("https", None),
                None,
                None,
                "https://example.org/scheme",
            ),
            (
                request("https", None),
                None,
                Some(443),
                "https://example.org/scheme",
            ),
            (
                request("https", None),
                None,
                Some(8443),
                "https://example.org:8443/scheme",
            ),
            (
                request("https", None),
                Some("http"),
                None,
                "http://example.org/scheme",
            ),
            (
                request("https", None),
                Some("http"),
                Some(80),
                "http://example.org/scheme",
            ),
            (
                request("https", None),
                Some("http"),
                Some(8080),
                "http://example.org:8080/scheme",
            ),
            // A scheme that is set keeps its well-known port, even when it does not change.
            (
                request("http", Some(8080)),
                Some("http"),
                None,
                "http://example.org/scheme",
            ),
            // The request's own port, written out when it is not the scheme's.
            (
                request("https", Some(80)),
                None,
                None,
                "https://example.org:80/scheme",
            ),
        ];
        for (req, scheme, port, want) in cases {
            assert_eq!(
                location(&redirect(scheme, port), &req, "/scheme"),
                want,
                "{}:{:?} scheme {scheme:?} port {port:?}",
                req.scheme,
                req.port
            );
        }
    }

    /// `httproute-redirect-port`, `-host-and-status`, `-path`: what is not set is the request's.
    #[test]
    fn host_path_and_query_kept_or_replaced() {
        let req = RequestUrl {
            scheme: "http",
            host: "gw.example.com",
            port: Some(8080),
            path: "/original-prefix/lemon",
            query: Some("a=1&b"),
        };
        let only_port = RequestRedirect {
            hostname: None,
            ..redirect(None, Some(8083))
        };
        assert_eq!(
            location(&only_port, &req, "/original-prefix"),
            "http://gw.example.com:8083/original-prefix/lemon?a=1&b"
        );
        let prefix = RequestRedirect {
            hostname: None,
            path: Some(PathModifier::Prefix("/replacement-prefix".into())),
            ..redirect(None, None)
        };
        assert_eq!(
            location(&prefix, &req, "/original-prefix"),
            "http://gw.example.com:8080/replacement-prefix/lemon?a=1&b"
        );
        let full = RequestRedirect {
            path: Some(PathModifier::Full("/full-path-replacement".into())),
            ..redirect(None, None)
        };
        assert_eq!(
            location(&full, &req, "/original-prefix"),
            "http://example.org:8080/full-path-replacement?a=1&b"
        );
        let v6 = RequestUrl { host: "::1", ..req };
        let keep_host = RequestRedirect {
            hostname: None,
            ..redirect(Some("https"), None)
        };
        assert_eq!(
            location(&keep_host, &v6, "/"),
            "https://[::1]/original-prefix/lemon?a=1&b"
        );
    }

    #[test]
    fn ports_of_host_values() {
        for (host, want) in [
            ("example.org", None),
            ("example.org:8080", Some(8080)),
            ("[::1]", None),
            ("[::1]:8443", Some(8443)),
            ("example.org:x", None),
            ("example.org:99999", None),
            ("", None),
        ] {
            assert_eq!(port_of(host), want, "{host}");
        }
    }
}
