//! External authentication: `auth-url` with `auth-method`, `auth-signin`,
//! `auth-signin-redirect-param`, `auth-response-headers`, `auth-request-redirect` and
//! `auth-always-set-cookie`, as ingress-nginx's `auth_request`. Active only when `auth-url` is
//! set. A URL that cannot be used denies the Ingress (503, as ingress-nginx's "location denied"),
//! never serves it open.
//!
//! `auth-cache-key`/`auth-cache-duration` are accepted and every request is asked (nothing is
//! cached: slower, never laxer); the keep-alive settings mean nothing here (connections to the
//! service are pooled anyway). `auth-proxy-set-headers` names a ConfigMap (`namespace/name`, or
//! `name` in the Ingress's namespace) whose data are headers set on the request to the service,
//! as ingress-nginx's `proxy_set_header` lines in its auth location: a name that is not letters,
//! digits, `-` and `_`, a missing ConfigMap (or one of another namespace, unless
//! `--allow-cross-namespace-resources`) or a value that cannot be a header deny the Ingress, as
//! ingress-nginx denies it. Values may use nginx variables, rendered per request as the
//! ConfigMap's `proxy-set-headers` are; ones Remora does not know are sent as written (warning).

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
    // An Ingress annotation only: ingress-nginx's ConfigMap has no `global-` key of it.
    let proxy_set_headers = if r.prefix == super::PREFIX {
        match proxy_set_headers(r) {
            Ok(headers) => headers,
            Err(why) => return deny(r, loc, "auth-proxy-set-headers", why),
        }
    } else {
        Vec::new()
    };
    loc.external_auth = Some(ExternalAuth {
        url,
        method,
        signin,
        signin_redirect_param,
        response_headers,
        request_redirect,
        always_set_cookie,
        proxy_set_headers,
    });
}

/// The headers of the ConfigMap `auth-proxy-set-headers` names, as ingress-nginx checks them,
/// sorted by name (its template sorts the lines).
fn proxy_set_headers(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, String> {
    let name = "auth-proxy-set-headers";
    let Some(value) = r.text(name) else {
        return Ok(Vec::new());
    };
    let ingress_namespace = r.object().namespace.clone();
    let Some((namespace, map)) = super::basic_auth::split_name(&value) else {
        return Err(format!(
            "invalid ConfigMap name \"{value}\" (expected namespace/name or name)"
        ));
    };
    let namespace = namespace.unwrap_or(&ingress_namespace).to_owned();
    let key = format!("{namespace}/{map}");
    if namespace != ingress_namespace && !r.options.allow_cross_namespace_resources {
        return Err(format!(
            "ConfigMap {key} is in another namespace, and cross-namespace resources are not allowed (--allow-cross-namespace-resources)"
        ));
    }
    let Some(config_map) = r.lookups.config_map(&namespace, map) else {
        return Err(format!("ConfigMap {key} not found"));
    };
    let mut headers = Vec::with_capacity(config_map.data.len());
    for (header, v) in &config_map.data {
        if !super::headers::valid_name(header)
            || http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(format!(
                "invalid header name \"{header}\" in ConfigMap {key}"
            ));
        }
        if http::HeaderValue::from_str(v).is_err() {
            return Err(format!(
                "invalid value of header {header} in ConfigMap {key}"
            ));
        }
        let unknown = Expr::parse(v).unknown;
        if !unknown.is_empty() {
            r.warn(
                name,
                format!(
                    "header {header}: variables not supported by Remora, sent as written: {}",
                    unknown.join(", ")
                ),
            );
        }
        headers.push((header.clone(), v.clone()));
    }
    Ok(headers)
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
