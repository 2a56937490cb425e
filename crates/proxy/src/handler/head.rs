//! Phase 0, the request head: what a server must refuse before anything is decided on it
//! (RFC 9112 3.2, RFC 9113 8.3.1). An HTTP/1.1 request without `Host`, or with more than one;
//! an HTTP/2 request whose `host` disagrees with its `:authority`. Each gets 400: routing on one
//! host while the pod reads another is how allow-lists are bypassed.

use super::Reject;
use http::{header, Request, Version};

pub fn check<B>(req: &Request<B>) -> Result<(), Reject> {
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
