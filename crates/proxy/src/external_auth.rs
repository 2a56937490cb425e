//! What a route with `auth-url` needs at request time, prepared once per table: its URLs
//! (compiled nginx expressions), the headers to take from the service's answer and to set on the
//! request to it (`auth-proxy-set-headers`), and the client that asks it. The phase itself is
//! `handler/external_auth.rs`.

use crate::expr::{escape, Compiled};
use crate::filters::SetHeaders;
use crate::upstream::UpstreamClient;
use http::{HeaderName, HeaderValue, Method};
use model::ExternalAuth;

pub struct AuthRuntime {
    pub url: Compiled,
    pub method: Method,
    pub signin: Option<Compiled>,
    pub signin_redirect_param: String,
    /// Taken from the service's answer to the pod's request (a client's own are dropped).
    pub response_headers: Vec<HeaderName>,
    pub request_redirect: Option<HeaderValue>,
    pub always_set_cookie: bool,
    /// `auth-proxy-set-headers`: set on the request to the service.
    pub proxy_set_headers: Option<SetHeaders>,
    /// `None`: the table was built without clients (tests); every request then fails closed.
    pub client: Option<UpstreamClient>,
}

impl AuthRuntime {
    pub fn new(auth: &ExternalAuth, client: Option<UpstreamClient>) -> Self {
        Self {
            url: Compiled::new(&auth.url),
            // Translation checked the method and header names.
            method: Method::from_bytes(auth.method.as_bytes()).unwrap_or(Method::GET),
            signin: auth.signin.as_deref().map(Compiled::new),
            signin_redirect_param: auth.signin_redirect_param.clone(),
            response_headers: auth
                .response_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            request_redirect: auth
                .request_redirect
                .as_deref()
                .and_then(|v| HeaderValue::from_str(v).ok()),
            always_set_cookie: auth.always_set_cookie,
            proxy_set_headers: SetHeaders::new(&auth.proxy_set_headers),
            client,
        }
    }
}

/// ingress-nginx's `buildAuthSignURL`: the sign-in URL with the original URL
/// (`scheme://http_host` and the escaped request URI) in its redirect parameter, unless it already
/// carries that parameter.
pub fn signin_url(
    signin: &str,
    param: &str,
    scheme: &str,
    http_host: &str,
    request_uri: &str,
) -> String {
    let query = signin.split_once('?').map(|(_, q)| q);
    if query.is_some_and(|q| {
        q.split('&')
            .any(|kv| kv.split_once('=').map_or(kv, |(k, _)| k) == param)
    }) {
        return signin.to_owned();
    }
    let mut url = String::with_capacity(signin.len() + 64);
    url.push_str(signin);
    url.push(if query.is_some_and(|q| !q.is_empty()) {
        '&'
    } else {
        '?'
    });
    if query == Some("") {
        url.pop();
    }
    url.push_str(param);
    url.push('=');
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(http_host);
    let mut escaped = Vec::with_capacity(request_uri.len() * 2);
    escape(request_uri, &mut |b| escaped.extend_from_slice(b));
    url.push_str(&String::from_utf8_lossy(&escaped));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signin_urls_carry_the_original_url_as_ingress_nginx_builds_them() {
        let at = |signin: &str, param: &str| {
            signin_url(
                signin,
                param,
                "https",
                "Shop.example.com:8080",
                "/cart?id=1&x=a b",
            )
        };
        assert_eq!(
            at("https://login.example.com/start", "rd"),
            "https://login.example.com/start?rd=https://Shop.example.com:8080%2Fcart%3Fid%3D1%26x%3Da%20b"
        );
        assert_eq!(
            at("https://login.example.com/start?a=1", "rd"),
            "https://login.example.com/start?a=1&rd=https://Shop.example.com:8080%2Fcart%3Fid%3D1%26x%3Da%20b"
        );
        assert_eq!(
            at("https://login.example.com/start?rd=/here", "rd"),
            "https://login.example.com/start?rd=/here"
        );
        assert!(at("https://l/s", "next").starts_with("https://l/s?next=https://"));
    }
}
