//! Phase 3, after the access checks, basic authentication (`auth-type: basic`), as nginx's
//! `auth_basic` runs in its access phase after `allow`/`deny`: a request without valid
//! credentials of one of the route's users gets 401 with `WWW-Authenticate: Basic
//! realm="<auth-realm>"`. Routes without it pay one branch. The credentials never reach the pod
//! (ingress-nginx's `proxy_set_header Authorization ""`): `upstream_request` drops them.

use super::Reject;
use crate::table::Matched;
use http::header;
use http::Request;

/// `Ok(true)`: the credentials are a user's; `Ok(false)`: the route has no basic authentication.
pub async fn check<B>(route: &Matched<'_>, req: &Request<B>) -> Result<bool, Reject> {
    let Some(auth) = route.runtime.basic_auth.as_deref() else {
        return Ok(false);
    };
    if auth.admits(req.headers().get(header::AUTHORIZATION)).await {
        Ok(true)
    } else {
        Err(Reject::Unauthorized(auth.challenge.clone()))
    }
}
