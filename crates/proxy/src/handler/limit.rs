//! Phase 3, limit: the route's request rate per client address (`limit-rps`, `limit-rpm`);
//! over it, the ConfigMap's `limit-req-status-code` (503). Before the access checks, as nginx's
//! `limit_req` runs in its preaccess phase.

use super::{Connection, Reject};
use crate::table::Matched;
use http::StatusCode;

pub fn check(route: &Matched<'_>, conn: &Connection) -> Result<(), Reject> {
    match &route.runtime.limiter {
        Some(limiter) if !limiter.admit(conn.remote) => Err(Reject::RateLimited(
            StatusCode::from_u16(route.location().limit_req_status_code)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
        )),
        _ => Ok(()),
    }
}
