//! The nginx expressions of [`model::expr`] evaluated on a request: compiled once per table
//! (header names parsed), then written out piece by piece, so `upstream-hash-by` hashes the
//! value without building it and `auth-url` renders it.

use crate::headers;
use balance::cookie;
use http::header::{self, HeaderName, HeaderValue};
use http::Request;
use model::expr::{Expr, Part, Var};
use std::net::IpAddr;

#[derive(Debug)]
enum Piece {
    Text(Box<str>),
    Var(Var),
    Header(HeaderName),
}

/// A compiled expression.
#[derive(Debug)]
pub struct Compiled {
    pieces: Vec<Piece>,
}

/// What a request gives the variables.
pub struct Cx<'a, B> {
    pub req: &'a Request<B>,
    pub remote: IpAddr,
    /// The same, as text (`$remote_addr`).
    pub client_ip: &'a HeaderValue,
    pub tls: bool,
}

impl Compiled {
    /// Translation reported unknown variables; they are text here.
    pub fn new(s: &str) -> Self {
        let pieces = Expr::parse(s)
            .parts
            .into_iter()
            .map(|p| match p {
                Part::Text(t) => Piece::Text(t.into()),
                Part::Var(Var::Header(h)) => match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(name) => Piece::Header(name),
                    Err(_) => Piece::Text(format!("$http_{h}").into()),
                },
                Part::Var(v) => Piece::Var(v),
            })
            .collect();
        Self { pieces }
    }

    /// Hand the value to `out`, piece by piece.
    pub fn each<B>(&self, cx: &Cx<'_, B>, out: &mut impl FnMut(&[u8])) {
        let uri = cx.req.uri();
        let request_uri = || uri.path_and_query().map_or("/", |p| p.as_str());
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out(t.as_bytes()),
                Piece::Header(name) => out(header_bytes(cx.req.headers().get(name))),
                Piece::Var(var) => match var {
                    Var::Host => out(headers::request_host(cx.req).as_bytes()),
                    Var::HttpHost => out(headers::http_host(cx.req).as_bytes()),
                    Var::Scheme => out(scheme(cx.tls).as_bytes()),
                    Var::RequestUri => out(request_uri().as_bytes()),
                    Var::EscapedRequestUri => escape(request_uri(), out),
                    Var::Uri => out(uri.path().as_bytes()),
                    Var::Args => out(uri.query().unwrap_or("").as_bytes()),
                    Var::RemoteAddr => out(cx.client_ip.as_bytes()),
                    Var::BinaryRemoteAddr => match cx.remote {
                        IpAddr::V4(a) => out(&a.octets()),
                        IpAddr::V6(a) => out(&a.octets()),
                    },
                    Var::RequestId => out(header_bytes(cx.req.headers().get("x-request-id"))),
                    Var::Header(_) => {}
                    Var::Arg(name) => out(query_arg(uri.query().unwrap_or(""), name).as_bytes()),
                    Var::Cookie(name) => {
                        let cookies = cx
                            .req
                            .headers()
                            .get_all(header::COOKIE)
                            .iter()
                            .map(HeaderValue::as_bytes);
                        out(cookie::find(cookies, name).next().unwrap_or("").as_bytes());
                    }
                },
            }
        }
    }

    /// The value as text (bytes that are not UTF-8 replaced).
    pub fn render<B>(&self, cx: &Cx<'_, B>) -> String {
        let mut bytes = Vec::with_capacity(128);
        self.each(cx, &mut |b| bytes.extend_from_slice(b));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The value's hash, without building it.
    pub fn hash<B>(&self, cx: &Cx<'_, B>) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        self.each(cx, &mut |b| h.update(b));
        h.digest()
    }
}

pub fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

fn header_bytes(v: Option<&HeaderValue>) -> &[u8] {
    v.map_or(&[], HeaderValue::as_bytes)
}

/// The value of query parameter `name` (empty when absent or without `=`).
fn query_arg<'q>(query: &'q str, name: &str) -> &'q str {
    query
        .split('&')
        .find_map(|kv| match kv.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if kv == name => Some(""),
            _ => None,
        })
        .unwrap_or("")
}

/// nginx's `set_escape_uri`: everything but unreserved characters percent-encoded.
pub fn escape(s: &str, out: &mut impl FnMut(&[u8])) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out(&[b]);
        } else {
            out(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

#[cfg(test)]
mod tests;
