//! Phase 3, digest authentication (`auth-type: digest`), as ingress-nginx's `auth_digest`: a
//! request without a valid answer to a challenge of the route (one of its users' password, a
//! nonce Remora issued less than a minute ago, the request's own target) gets 401 with a fresh
//! `WWW-Authenticate: Digest ...` challenge (`stale="true"` when only the nonce is too old).
//! Routes without it pay one branch. The credentials never reach the pod: `upstream_request`
//! drops them, as ingress-nginx's `proxy_set_header Authorization ""`.

use super::Reject;
use crate::table::Matched;
use http::header;
use http::Request;

/// `Ok(true)`: the credentials are a user's; `Ok(false)`: the route has no digest
/// authentication.
pub fn check<B>(route: &Matched<'_>, req: &Request<B>) -> Result<bool, Reject> {
    let Some(auth) = route.runtime.digest_auth.as_deref() else {
        return Ok(false);
    };
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    match auth.check(
        req.method(),
        target,
        req.headers().get(header::AUTHORIZATION),
    ) {
        Ok(()) => Ok(true),
        Err(refusal) => Err(Reject::Unauthorized(auth.challenge(&refusal))),
    }
}
