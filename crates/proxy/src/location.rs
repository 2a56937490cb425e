//! What a route's `Location` (its Ingress's annotations) does to a request besides proxying it, in
//! nginx's phase order: `app-root` and `permanent-redirect` answer at once, a CORS preflight is
//! answered, clients outside the allow-list get 403; then `rewrite-target` changes the upstream
//! path, and CORS headers are added to the response.

use crate::handler::{status, Body};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use model::{Cors, Location};
use std::net::IpAddr;

/// A route's CORS settings in their response-header form, built with its table.
pub struct CorsHeaders {
    /// `cors-allow-origin` is `*`.
    any_origin: bool,
    origins: Vec<String>,
    /// Every header but `Access-Control-Allow-Origin`, which depends on the request.
    fixed: Vec<(HeaderName, HeaderValue)>,
}

impl CorsHeaders {
    pub fn new(cors: &Cors) -> Self {
        let mut fixed = Vec::new();
        if cors.allow_credentials {
            fixed.push((
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        let mut put = |name: HeaderName, value: &str| {
            // Translation validated the values; one that still does not fit is left out.
            if let Ok(v) = HeaderValue::from_str(value) {
                fixed.push((name, v));
            }
        };
        put(header::ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods);
        put(header::ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers);
        if !cors.expose_headers.is_empty() {
            put(header::ACCESS_CONTROL_EXPOSE_HEADERS, &cors.expose_headers);
        }
        put(header::ACCESS_CONTROL_MAX_AGE, &cors.max_age.to_string());
        Self {
            any_origin: cors.allow_origin.iter().any(|o| o == "*"),
            origins: cors.allow_origin.clone(),
            fixed,
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request's `Origin`: `*`, or the origin when
    /// it is listed; `None`: no CORS headers for this request.
    fn allowed(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        if self.any_origin {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = origin?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| origin_matches(o, text))
            .then(|| origin.clone())
    }

    /// Add the CORS headers to a response for a request with this `Origin`, if it is allowed
    /// (then `true`).
    pub fn add(&self, origin: Option<&HeaderValue>, response: &mut HeaderMap) -> bool {
        let Some(allow) = self.allowed(origin) else {
            return false;
        };
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        for (name, value) in &self.fixed {
            response.insert(name, value.clone());
        }
        true
    }
}

/// A response the proxy gives itself instead of proxying, if the location says so.
pub fn respond<B>(
    loc: &Location,
    cors: Option<&CorsHeaders>,
    req: &Request<B>,
    client: IpAddr,
    tls: bool,
) -> Option<Response<Body>> {
    if let Some(root) = &loc.app_root {
        if req.uri().path() == "/" {
            let scheme = if tls { "https" } else { "http" };
            let host = req
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("");
            return redirect(StatusCode::FOUND, &format!("{scheme}://{host}{root}"));
        }
    }
    if let Some(r) = &loc.permanent_redirect {
        let code = StatusCode::from_u16(r.code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
        return redirect(code, &r.url);
    }
    if let Some(cors) = cors {
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
    if let Some(allowed) = &loc.allow_sources {
        if !allowed.iter().any(|net| net.contains(client)) {
            return Some(status(StatusCode::FORBIDDEN));
        }
    }
    None
}

/// A redirect answered by the proxy; `None` when `location` is no valid header value.
pub fn redirect(code: StatusCode, location: &str) -> Option<Response<Body>> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut r = status(code);
    r.headers_mut().insert(header::LOCATION, location);
    Some(r)
}

/// `https://a.com` matches itself (any case); `https://*.b.com` matches one more label.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    let Some((scheme, suffix)) = pattern.split_once("*.") else {
        return pattern.eq_ignore_ascii_case(origin);
    };
    // origin = scheme + label + "." + suffix
    let head = origin.get(..scheme.len());
    let tail = origin
        .len()
        .checked_sub(suffix.len())
        .and_then(|i| origin.get(i..));
    let label = origin
        .get(scheme.len()..origin.len().saturating_sub(suffix.len()))
        .and_then(|l| l.strip_suffix('.'));
    head.is_some_and(|h| h.eq_ignore_ascii_case(scheme))
        && tail.is_some_and(|t| t.eq_ignore_ascii_case(suffix))
        && label.is_some_and(|l| {
            !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
/// nginx's `rewrite "<route regex>" <target> break;`: when the route's regex matches the path, the
/// upstream path becomes `target` with `$1`..`$9` replaced by its captures; the query string is
/// kept (after the target's own, if it has one).
pub fn rewrite(target: &str, re: &regex::Regex, path: &str, query: Option<&str>) -> Option<String> {
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
mod tests {
    use super::*;

    #[test]
    fn rewrite_with_captures_and_query() {
        let re = regex::Regex::new(&model::regex_source("/something(/|$)(.*)")).unwrap();
        assert_eq!(
            rewrite("/$2", &re, "/something/new", None).as_deref(),
            Some("/new")
        );
        assert_eq!(
            rewrite("/$2", &re, "/something", None).as_deref(),
            Some("/")
        );
        assert_eq!(
            rewrite("/$2", &re, "/something/", Some("a=1")).as_deref(),
            Some("/?a=1")
        );
        assert_eq!(
            rewrite("/v2/$2?x=y", &re, "/SOMETHING/a/b", Some("a=1")).as_deref(),
            Some("/v2/a/b?x=y&a=1")
        );
        assert_eq!(
            rewrite("/$9$", &re, "/something/a", None).as_deref(),
            Some("/$")
        );
        assert_eq!(rewrite("/$2", &re, "/else", None), None);
    }

    #[test]
    fn origins() {
        assert!(origin_matches("https://a.com", "https://A.com"));
        assert!(!origin_matches("https://a.com", "http://a.com"));
        assert!(origin_matches("https://*.b.com", "https://x.b.com"));
        assert!(!origin_matches("https://*.b.com", "https://x.y.b.com"));
        assert!(!origin_matches("https://*.b.com", "https://b.com"));
        assert!(!origin_matches("https://*.b.com", "https://xb.com"));
    }
}
