//! `upstream-hash-by`: the nginx expression whose value places a request on the ring (ingress-nginx's
//! `chash` balancer), compiled once per table and hashed straight from the request, without
//! building the string.

use balance::cookie;
use http::header::{self, HeaderName, HeaderValue};
use http::Request;
use std::net::IpAddr;
use xxhash_rust::xxh3::Xxh3;

#[derive(Debug)]
enum Part {
    Text(Box<str>),
    RequestUri,
    Uri,
    Args,
    Host,
    RemoteAddr,
    BinaryRemoteAddr,
    Scheme,
    RequestId,
    Header(HeaderName),
    Arg(Box<str>),
    Cookie(Box<str>),
}

/// A compiled `upstream-hash-by` expression.
#[derive(Debug)]
pub struct HashKey {
    parts: Vec<Part>,
}

impl HashKey {
    /// Translation checked the variables; an unknown one is hashed as text.
    pub fn parse(expr: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = expr;
        while let Some(i) = rest.find('$') {
            if i > 0 {
                parts.push(Part::Text(rest[..i].into()));
            }
            let at = &rest[i..];
            let len = at[1..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                .count()
                + 1;
            let var = &at[..len];
            let part = match var {
                "$request_uri" => Part::RequestUri,
                "$uri" => Part::Uri,
                "$args" | "$query_string" => Part::Args,
                "$host" => Part::Host,
                "$remote_addr" => Part::RemoteAddr,
                "$binary_remote_addr" => Part::BinaryRemoteAddr,
                "$scheme" => Part::Scheme,
                "$request_id" => Part::RequestId,
                _ => {
                    if let Some(name) = var.strip_prefix("$http_") {
                        match HeaderName::from_bytes(name.replace('_', "-").as_bytes()) {
                            Ok(h) => Part::Header(h),
                            Err(_) => Part::Text(var.into()),
                        }
                    } else if let Some(name) = var.strip_prefix("$arg_") {
                        Part::Arg(name.into())
                    } else if let Some(name) = var.strip_prefix("$cookie_") {
                        Part::Cookie(name.into())
                    } else {
                        Part::Text(var.into())
                    }
                }
            };
            parts.push(part);
            rest = &at[len..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.into()));
        }
        Self { parts }
    }

    /// The key of a request from `remote`.
    pub fn hash<B>(&self, req: &Request<B>, remote: IpAddr, tls: bool) -> u64 {
        let mut h = Xxh3::new();
        let uri = req.uri();
        for part in &self.parts {
            match part {
                Part::Text(t) => h.update(t.as_bytes()),
                Part::RequestUri => {
                    h.update(uri.path_and_query().map_or("/", |p| p.as_str()).as_bytes())
                }
                Part::Uri => h.update(uri.path().as_bytes()),
                Part::Args => h.update(uri.query().unwrap_or("").as_bytes()),
                Part::Host => {
                    let raw = uri
                        .host()
                        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
                        .unwrap_or("");
                    h.update(model::host_name(raw).as_bytes());
                }
                Part::RemoteAddr => h.update(remote.to_string().as_bytes()),
                Part::BinaryRemoteAddr => match remote {
                    IpAddr::V4(a) => h.update(&a.octets()),
                    IpAddr::V6(a) => h.update(&a.octets()),
                },
                Part::Scheme => h.update(if tls { b"https" } else { b"http" }),
                Part::RequestId => h.update(header_bytes(req.headers().get("x-request-id"))),
                Part::Header(name) => h.update(header_bytes(req.headers().get(name))),
                Part::Arg(name) => {
                    let value = uri
                        .query()
                        .unwrap_or("")
                        .split('&')
                        .find_map(|kv| match kv.split_once('=') {
                            Some((k, v)) if k == &**name => Some(v),
                            None if kv == &**name => Some(""),
                            _ => None,
                        })
                        .unwrap_or("");
                    h.update(value.as_bytes());
                }
                Part::Cookie(name) => {
                    let cookies = req
                        .headers()
                        .get_all(header::COOKIE)
                        .iter()
                        .map(HeaderValue::as_bytes);
                    let value = cookie::find(cookies, name).next().unwrap_or("");
                    h.update(value.as_bytes());
                }
            }
        }
        h.digest()
    }
}

fn header_bytes(v: Option<&HeaderValue>) -> &[u8] {
    v.map_or(&[], HeaderValue::as_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn keys_follow_the_expression_only() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let by_uri = HashKey::parse("$request_uri");
        let a = req("/a?x=1", &[("host", "h"), ("x-user", "u1")]);
        assert_eq!(by_uri.hash(&a, ip, false), by_uri.hash(&a, other, true));
        assert_ne!(
            by_uri.hash(&a, ip, false),
            by_uri.hash(&req("/a?x=2", &[]), ip, false)
        );
        let by_user = HashKey::parse("user:$http_x_user");
        let b = req("/other", &[("x-user", "u1")]);
        assert_eq!(by_user.hash(&a, ip, false), by_user.hash(&b, other, false));
        let by_arg = HashKey::parse("$arg_x-$cookie_sid");
        let c = req("/p?y=0&x=1", &[("cookie", "a=1; sid=s9")]);
        let d = req("/q?x=1", &[("cookie", "sid=s9")]);
        assert_eq!(by_arg.hash(&c, ip, false), by_arg.hash(&d, other, true));
        assert_ne!(
            by_arg.hash(&c, ip, false),
            by_arg.hash(&req("/q?x=1", &[("cookie", "sid=s8")]), ip, false)
        );
        let by_ip = HashKey::parse("$binary_remote_addr");
        assert_ne!(by_ip.hash(&a, ip, false), by_ip.hash(&a, other, false));
    }
}
