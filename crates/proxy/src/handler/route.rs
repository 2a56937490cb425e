//! Phase 1, route: the virtual host and route a request belongs to, by host and path.

use super::Reject;
use crate::table::{Matched, Table};
use http::{header, Request};
use std::borrow::Cow;

/// The route of a request; none: 404.
pub fn find<'t, B>(table: &'t Table, req: &Request<B>) -> Result<Matched<'t>, Reject> {
    table
        .route(&request_host(req), req.uri().path())
        .ok_or(Reject::NoRoute)
}

/// The request's host as routes match it (lowercase, without port or trailing dot): from the URI
/// (HTTP/2 `:authority`, absolute-form requests), else the `Host` header.
pub fn request_host<B>(req: &Request<B>) -> Cow<'_, str> {
    let raw = req
        .uri()
        .host()
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
        .unwrap_or("");
    model::host_name(raw)
}
