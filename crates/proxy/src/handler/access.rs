//! Phase 3, authorize and limit: whether this client may send this request to the route at all.
//! `allowlist-source-range` (403), then `proxy-body-size` for a declared length (413; a body that
//! declares none is cut when it grows past the limit, see `body.rs`).

use super::{Connection, Reject};
use crate::headers;
use http::Request;
use model::Location;

pub fn check<B>(location: &Location, req: &Request<B>, conn: &Connection) -> Result<(), Reject> {
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
