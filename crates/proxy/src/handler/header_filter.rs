//! Header edits of the request and response. Gateway API header modifiers: `RequestHeaderModifier` edits the client's request headers before
//! the upstream head is made of them (phase 4b, so the lean head and the rewritten one carry the
//! same edits), `ResponseHeaderModifier` the pod's response headers (in `respond`, before the
//! session cookie, which the edits cannot drop). The edits are parsed once per table
//! (`filters::HeaderEditor`); a route without them costs one `None` check.
//!
//! The headers Remora sets itself (`Host`, the X-Forwarded family, `X-Request-ID` when missing)
//! are set after the request edits, so these stay Remora's, as with ingress-nginx's
//! `proxy_set_header`; a URL rewrite's hostname is the way to change the pod's `Host`.

use super::Connection;
use crate::table::Matched;
use http::HeaderMap;

/// The route's `RequestHeaderModifier`, on the client's request headers.
pub fn request(route: &Matched<'_>, headers: &mut HeaderMap) {
    if let Some(edits) = &route.runtime.request_headers {
        edits.apply(headers);
    }
}

/// The ConfigMap's `proxy-set-headers` (an Ingress route's requests: the Ingress listeners'), on
/// the client's request headers as `RequestHeaderModifier` is, so the lean and the rewritten head
/// both carry them and Remora's own headers stay Remora's.
pub fn proxy_set<B>(route: &Matched<'_>, conn: &Connection, req: &mut http::Request<B>) {
    if let Some(set) = &route.policy.proxy_set_headers {
        if conn.is_ingress() {
            set.apply(conn, req);
        }
    }
}

/// The route's `ResponseHeaderModifier`, on the pod's response headers.
pub fn response(route: &Matched<'_>, headers: &mut HeaderMap) {
    if let Some(edits) = &route.runtime.response_headers {
        edits.apply(headers);
    }
}
