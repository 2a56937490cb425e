//! Phase 3, limit: the route's request rate per client address (`limit-rps`, `limit-rpm`);
//! over it, 503 (ingress-nginx's `limit-req-status-code`). Before the access checks, as nginx's
//! `limit_req` runs in its preaccess phase.

use super::{Connection, Reject};
use crate::table::Matched;

pub fn check(route: &Matched<'_>, conn: &Connection) -> Result<(), Reject> {
    match &route.runtime.limiter {
        Some(limiter) if !limiter.admit(conn.remote) => Err(Reject::RateLimited),
        _ => Ok(()),
    }
}
