//! Phase 1, route: the virtual host and route a request belongs to, by the listener its connection
//! came in on, host and path (and, for Gateway API routes, method, headers and query parameters).

use super::{Connection, Reject};
use crate::headers::request_host;
use crate::table::{Matched, Table};
use http::Request;

/// The route of a request among its listener's virtual hosts; none: 404.
pub fn find<'t, B>(
    table: &'t Table,
    conn: &Connection,
    req: &Request<B>,
) -> Result<Matched<'t>, Reject> {
    table
        .route(conn.listener, &request_host(req), req)
        .ok_or(Reject::NoRoute)
}
