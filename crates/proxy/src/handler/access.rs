//! Phase 3 (after the rate limit), access: whether this client may send this request to the route
//! at all. A denied route (a security annotation Remora cannot honour) answers 503 to everyone;
//! then `proxy-body-size` for a declared length (413, nginx's `client_max_body_size`, checked
//! before its access phase; a body that declares none is cut when it grows past the limit, see
//! `body.rs`). [`sources`]: `denylist-source-range`, then `allowlist-source-range` (403), one of
//! the checks [`super::satisfy`] combines.

use super::{Connection, Reject};
use crate::headers;
use http::Request;
use model::Location;

pub fn check<B>(location: &Location, req: &Request<B>) -> Result<(), Reject> {
    if location.denied.is_some() {
        return Err(Reject::Denied);
    }
    if let (Some(limit), Some(length)) =
        (location.body_limit, headers::content_length(req.headers()))
    {
        if length > limit {
            return Err(Reject::BodyTooLarge);
        }
    }
    Ok(())
}

/// nginx's `deny` lines (the deny-list), then its `allow` lines and `deny all` (the allow-list):
/// the first that matches the client decides. `Ok(true)`: allowed by the allow-list;
/// `Ok(false)`: no line matched (no allow-list, not denied).
pub fn sources(location: &Location, conn: &Connection) -> Result<bool, Reject> {
    if let Some(denied) = &location.deny_sources {
        if denied.iter().any(|net| net.contains(conn.remote)) {
            return Err(Reject::SourceNotAllowed);
        }
    }
    match &location.allow_sources {
        Some(allowed) if allowed.iter().any(|net| net.contains(conn.remote)) => Ok(true),
        Some(_) => Err(Reject::SourceNotAllowed),
        None => Ok(false),
    }
}
