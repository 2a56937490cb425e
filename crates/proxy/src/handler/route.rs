//! Phase 1, route: the virtual host and route a request belongs to, by host and path (and, for
//! Gateway API routes, method, headers and query parameters).

use super::Reject;
use crate::headers::request_host;
use crate::table::{Matched, Table};
use http::Request;

/// The route of a request; none: 404.
pub fn find<'t, B>(table: &'t Table, req: &Request<B>) -> Result<Matched<'t>, Reject> {
    table.route(&request_host(req), req).ok_or(Reject::NoRoute)
}
