//! External authentication: `auth-url` with `auth-method`, `auth-signin`,
//! `auth-signin-redirect-param`, `auth-response-headers`, `auth-request-redirect` and
//! `auth-always-set-cookie`, as ingress-nginx's `auth_request`. Active only when `auth-url` is
//! set. A URL that cannot be used denies the Ingress (503, as ingress-nginx's "location denied"),
//! never serves it open.
//!
//! `auth-cache-key`/`auth-cache-duration` are accepted and every request is asked (nothing is
//! cached: slower, never laxer); the keep-alive settings mean nothing here (connections to the
//! service are pooled anyway). `auth-proxy-set-headers` names a ConfigMap, which Remora does not
//! read: the request to the service goes without those headers, with a warning.

use super::Reader;
use model::expr::{Expr, Var};
use model::{ExternalAuth, Location};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let Some(url) = r.text("auth-url") else {
        return;
    };
    for quiet in [
        "auth-keepalive",
        "auth-keepalive-share-vars",
        "auth-keepalive-requests",
        "auth-keepalive-timeout",
    ] {
        r.get(quiet);
    }
    for name in ["auth-cache-key", "auth-cache-duration"] {
        if r.text(name).is_some() {
            r.info(
                name,
                "accepted: every request is asked of the service (no cache)",
            );
        }
    }
    if r.text("auth-proxy-set-headers").is_some() {
        r.warn(
            "auth-proxy-set-headers",
            "Remora reads no ConfigMap: the request to the authentication service goes without these headers",
        );
    }
    let deny = |r: &mut Reader<'_>, loc: &mut Location, name: &str, why: String| {
        r.deny(loc, name, &why, "until it is fixed");
    };
    if let Err(why) = check_url(&url) {
        return deny(r, loc, "auth-url", format!("\"{url}\" {why}"));
    }
    let method = r.text("auth-method").unwrap_or_else(|| "GET".to_owned());
    if http::Method::from_bytes(method.as_bytes()).is_err() {
        return deny(
            r,
            loc,
            "auth-method",
            format!("\"{method}\" is not an HTTP method"),
        );
    }
    let signin = r.text("auth-signin");
    if let Some(s) = &signin {
        if let Err(why) = check_url(s) {
            return deny(r, loc, "auth-signin", format!("\"{s}\" {why}"));
        }
    }
    let signin_redirect_param = r
        .text("auth-signin-redirect-param")
        .unwrap_or_else(|| "rd".to_owned());
    let mut response_headers = Vec::new();
    if let Some(list) = r.text("auth-response-headers") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if http::HeaderName::from_bytes(name.as_bytes()).is_ok() {
                response_headers.push(name.to_ascii_lowercase());
            } else {
                return deny(
                    r,
                    loc,
                    "auth-response-headers",
                    format!("\"{name}\" is not a header name"),
                );
            }
        }
    }
    let request_redirect = r.text("auth-request-redirect");
    if request_redirect
        .as_deref()
        .is_some_and(|v| http::HeaderValue::from_str(v).is_err())
    {
        return deny(
            r,
            loc,
            "auth-request-redirect",
            "is not a valid header value".to_owned(),
        );
    }
    let always_set_cookie = r.bool("auth-always-set-cookie").unwrap_or(false);
    loc.external_auth = Some(ExternalAuth {
        url,
        method,
        signin,
        signin_redirect_param,
        response_headers,
        request_redirect,
        always_set_cookie,
    });
}

/// An `http(s)://host...` URL, with only the variables the proxy fills in for it (`$host`,
/// `$http_host`, `$best_http_host`, `$scheme`, `$pass_access_scheme`, `$request_uri`,
/// `$escaped_request_uri`, `$request_id`).
fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("is not an http(s) URL")?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err("has no host");
    }
    if !url.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err("has spaces or characters a URL cannot carry");
    }
    let expr = Expr::parse(url);
    let known = |v: &Var| {
        matches!(
            v,
            Var::Host
                | Var::HttpHost
                | Var::Scheme
                | Var::RequestUri
                | Var::EscapedRequestUri
                | Var::RequestId
        )
    };
    if !expr.unknown.is_empty() || !expr.vars().all(known) {
        return Err("uses a variable Remora does not know");
    }
    Ok(())
}
