//! Responses the proxy writes itself (status pages, redirects) and the body type of every
//! response it gives: a pod's, or one of its own.

use crate::h1::H1Body;
use crate::timeout::ResponseBodyTimeout;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

/// What the proxy answers with: a pod's response body (from hyper's client, or the lean HTTP/1
/// client's), or one of its own.
pub type Body = Either<UpstreamBody, Full<Bytes>>;

/// A pod's response body, from hyper's client (timed between reads here) or the lean client's
/// (which times itself).
pub type UpstreamBody = Either<ResponseBodyTimeout<Incoming>, H1Body>;

/// A short plain-text status page, like ingress-nginx's default pages.
pub fn status(code: StatusCode) -> Response<Body> {
    let reason = match code {
        // nginx's page says so (and ingress-nginx's tests look for it).
        StatusCode::UNAUTHORIZED => "Authorization Required",
        _ => code.canonical_reason().unwrap_or(""),
    };
    let text = format!("{} {reason}\n", code.as_u16());
    let mut r = Response::new(Either::Right(Full::new(Bytes::from(text))));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A redirect to `location` with its status page; `None` when `location` is no valid header value.
pub fn redirect(code: StatusCode, location: &str) -> Option<Response<Body>> {
    let location = HeaderValue::from_str(location).ok()?;
    let mut r = status(code);
    r.headers_mut().insert(header::LOCATION, location);
    Some(r)
}

/// A response with a fixed body and no other header.
pub fn fixed(code: StatusCode, body: &'static [u8]) -> Response<Body> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(body))));
    *r.status_mut() = code;
    r
}
