//! What a route with `auth-url` needs at request time, prepared once per table: its URLs as
//! templates over nginx's variables, the headers to take from the service's answer, and the
//! client that asks it. The phase itself is `handler/external_auth.rs`.

use crate::upstream::UpstreamClient;
use http::{HeaderName, HeaderValue, Method};
use model::ExternalAuth;

pub struct AuthRuntime {
    pub url: Template,
    pub method: Method,
    pub signin: Option<Template>,
    pub signin_redirect_param: String,
    /// Taken from the service's answer to the pod's request (a client's own are dropped).
    pub response_headers: Vec<HeaderName>,
    pub request_redirect: Option<HeaderValue>,
    pub always_set_cookie: bool,
    /// `None`: the table was built without clients (tests); every request then fails closed.
    pub client: Option<UpstreamClient>,
}

impl AuthRuntime {
    pub fn new(auth: &ExternalAuth, client: Option<UpstreamClient>) -> Self {
        Self {
            url: Template::parse(&auth.url),
            // Translation checked the method and header names.
            method: Method::from_bytes(auth.method.as_bytes()).unwrap_or(Method::GET),
            signin: auth.signin.as_deref().map(Template::parse),
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
            client,
        }
    }
}

/// The values of the variables for one request.
pub struct Vars<'a> {
    /// `$host`: lowercase, without port.
    pub host: &'a str,
    /// `$http_host`, `$best_http_host`: the `Host` as sent.
    pub http_host: &'a str,
    /// `$scheme`, `$pass_access_scheme`.
    pub scheme: &'a str,
    /// `$request_uri`: path and query as sent.
    pub request_uri: &'a str,
    pub request_id: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Host,
    HttpHost,
    Scheme,
    RequestUri,
    EscapedRequestUri,
    RequestId,
}

/// nginx's names, longest first where one is a prefix of another.
const NAMES: [(&str, Var); 8] = [
    ("$host", Var::Host),
    ("$http_host", Var::HttpHost),
    ("$best_http_host", Var::HttpHost),
    ("$scheme", Var::Scheme),
    ("$pass_access_scheme", Var::Scheme),
    ("$request_uri", Var::RequestUri),
    ("$escaped_request_uri", Var::EscapedRequestUri),
    ("$request_id", Var::RequestId),
];

#[derive(Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A URL with nginx variables in it.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    pub fn parse(s: &str) -> Self {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            let at = &rest[i..];
            let found = NAMES.iter().find(|(name, _)| {
                at.starts_with(name)
                    && !at[name.len()..]
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            match found {
                Some((name, var)) => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(Part::Var(*var));
                    rest = &at[name.len()..];
                }
                None => {
                    text.push('$');
                    rest = &at[1..];
                }
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Self { parts }
    }

    pub fn render(&self, vars: &Vars<'_>) -> String {
        let mut out = String::with_capacity(128);
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(Var::Host) => out.push_str(vars.host),
                Part::Var(Var::HttpHost) => out.push_str(vars.http_host),
                Part::Var(Var::Scheme) => out.push_str(vars.scheme),
                Part::Var(Var::RequestUri) => out.push_str(vars.request_uri),
                Part::Var(Var::EscapedRequestUri) => escape_into(&mut out, vars.request_uri),
                Part::Var(Var::RequestId) => out.push_str(vars.request_id),
            }
        }
        out
    }
}

/// nginx's `set_escape_uri`: everything but unreserved characters percent-encoded.
pub fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// ingress-nginx's `buildAuthSignURL`: the sign-in URL with the original URL in its redirect
/// parameter, unless it already carries that parameter.
pub fn signin_url(signin: &str, param: &str, vars: &Vars<'_>) -> String {
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
    url.push_str(vars.scheme);
    url.push_str("://");
    url.push_str(vars.http_host);
    escape_into(&mut url, vars.request_uri);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars<'static> {
        Vars {
            host: "shop.example.com",
            http_host: "Shop.example.com:8080",
            scheme: "https",
            request_uri: "/cart?id=1&x=a b",
            request_id: "abc",
        }
    }

    #[test]
    fn templates_fill_nginx_variables() {
        let t = Template::parse("https://$host/oauth2/auth?u=$escaped_request_uri&r=$request_id");
        assert_eq!(
            t.render(&vars()),
            "https://shop.example.com/oauth2/auth?u=%2Fcart%3Fid%3D1%26x%3Da%20b&r=abc"
        );
        let t = Template::parse("http://auth.svc/check$request_uri?s=$scheme&h=$http_host$hostx");
        assert_eq!(
            t.render(&vars()),
            "http://auth.svc/check/cart?id=1&x=a b?s=https&h=Shop.example.com:8080$hostx"
        );
    }

    #[test]
    fn signin_urls_carry_the_original_url_as_ingress_nginx_builds_them() {
        let v = vars();
        assert_eq!(
            signin_url("https://login.example.com/start", "rd", &v),
            "https://login.example.com/start?rd=https://Shop.example.com:8080%2Fcart%3Fid%3D1%26x%3Da%20b"
        );
        assert_eq!(
            signin_url("https://login.example.com/start?a=1", "rd", &v),
            "https://login.example.com/start?a=1&rd=https://Shop.example.com:8080%2Fcart%3Fid%3D1%26x%3Da%20b"
        );
        assert_eq!(
            signin_url("https://login.example.com/start?rd=/here", "rd", &v),
            "https://login.example.com/start?rd=/here"
        );
        assert!(signin_url("https://l/s", "next", &v).starts_with("https://l/s?next=https://"));
    }
}
