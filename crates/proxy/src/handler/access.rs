//! Phase 3 (after the rate limit), access: whether this client may send this request to the route at all.
//! A denied route (a security annotation Remora cannot honour) answers 503 to everyone;
//! `denylist-source-range`, then `allowlist-source-range` (403); then `proxy-body-size` for a
//! declared length (413; a body that declares none is cut when it grows past the limit, see
//! `body.rs`).

use super::{Connection, Reject};
use crate::headers;
use http::Request;
use model::Location;

pub fn check<B>(location: &Location, req: &Request<B>, conn: &Connection) -> Result<(), Reject> {
    if location.denied.is_some() {
        return Err(Reject::Denied);
    }
    if let Some(denied) = &location.deny_sources {
        if denied.iter().any(|net| net.contains(conn.remote)) {
            return Err(Reject::SourceNotAllowed);
        }
    }
    if let Some(allowed) = &location.allow_sources {
        if !allowed.iter().any(|net| net.contains(conn.remote)) {
            return Err(Reject::SourceNotAllowed);
        }
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
