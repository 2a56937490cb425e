//! `enable-cors`: a route's CORS settings in their response-header form, built with its table;
//! the request path adds them to responses and answers preflights with them.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use model::Cors;

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

#[cfg(test)]
mod tests {
    use super::*;

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
