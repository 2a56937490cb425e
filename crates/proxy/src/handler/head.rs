//! Phase 0, the request head: what a server must refuse before anything is decided on it
//! (RFC 9112 3.2, RFC 9113 8.3.1). An HTTP/1.1 request without `Host`, or with more than one;
//! an HTTP/2 request whose `host` disagrees with its `:authority`. Each gets 400: routing on one
//! host while the pod reads another is how allow-lists are bypassed.
//!
//! As nginx's `large_client_header_buffers`, the request line must fit in one buffer (else 414)
//! and so must each header line (else 400); the head as a whole is bounded by the server (431).

use super::Reject;
use http::{header, Request, Version};

/// ingress-nginx's `large-client-header-buffers` size (8k).
pub const DEFAULT_HEADER_LINE: usize = 8 * 1024;

pub fn check<B>(req: &Request<B>, max_line: usize) -> Result<(), Reject> {
    // `METHOD SP target SP HTTP/1.1 CRLF`.
    let uri = req.uri();
    let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(1, |p| p.as_str().len());
    if req.method().as_str().len() + target + 12 > max_line {
        return Err(Reject::UriTooLong);
    }
    // `name: value CRLF`.
    if req
        .headers()
        .iter()
        .any(|(name, value)| name.as_str().len() + value.len() + 4 > max_line)
    {
        return Err(Reject::BadHead(
            "a header line longer than large-client-header-buffers' size",
        ));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::BadHead("more than one Host header"));
    }
    match req.version() {
        Version::HTTP_11 if host.is_none() && req.uri().authority().is_none() => {
            Err(Reject::BadHead("HTTP/1.1 request without Host"))
        }
        Version::HTTP_2 => match (host, req.uri().authority()) {
            (Some(host), Some(authority))
                if !host
                    .as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes()) =>
            {
                Err(Reject::BadHead("host and :authority disagree"))
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}
