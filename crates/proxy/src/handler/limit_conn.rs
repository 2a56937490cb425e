//! Phase 3, limit_conn: the route's requests in flight per client address (`limit-connections`,
//! nginx's `limit_conn` keyed by `$binary_remote_addr`, which counts a client's requests being
//! processed); over it, the ConfigMap's `limit-conn-status-code` (503). The count is the route's
//! Ingress's (its zone, as the rate limits'), and a request stays in it until its response body
//! ends: the guard goes into the request's `Outcome`, and `handle` hands it to the response.

use super::{Connection, Reject};
use crate::limit::InFlightGuard;
use crate::table::Matched;
use http::StatusCode;

pub fn enter(route: &Matched<'_>, conn: &Connection) -> Result<Option<InFlightGuard>, Reject> {
    let Some(limiter) = &route.runtime.limiter else {
        return Ok(None);
    };
    limiter.enter(conn.remote).map_err(|()| {
        Reject::RateLimited(
            StatusCode::from_u16(route.location().limit_conn_status_code)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        )
    })
}
