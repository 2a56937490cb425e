//! Phase 7, respond: what Remora makes of the pod's response. The pod's `Server` and the
//! ConfigMap's `hide-headers` dropped; CORS
//! headers; a protocol switch the
//! pod accepted becomes a tunnel between the two connections; hop-by-hop headers dropped; the
//! pod's `Location`, `Refresh` and `Set-Cookie` rewritten (`proxy-redirect-*`, `proxy-cookie-*`,
//! `replace.rs`); the Gateway API `ResponseHeaderModifier` edits; the session cookie (or session header) for new and
//! moved sessions; the authentication service's cookies.

use super::external_auth::Grant;
use super::forward::read_timeout;
use super::pick::Pick;
use super::upstream_request::UpstreamHead;
use super::Connection;
use crate::headers;
use crate::response::{Body, UpstreamBody};
use crate::table::Matched;
use balance::cookie;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Either;
use model::Affinity;
use std::time::SystemTime;

pub fn respond(
    mut response: Response<UpstreamBody>,
    route: &Matched<'_>,
    head: UpstreamHead,
    pick: Pick<'_>,
    conn: &Connection,
    grant: Option<Grant>,
) -> Response<Body> {
    if !route.policy.backend_server_header {
        // nginx hides the upstream's `Server` (proxy_hide_header's default).
        response.headers_mut().remove(header::SERVER);
    }
    // `hide-headers` (nginx's `proxy_hide_header`, the ConfigMap's): Ingress routes.
    if conn.is_ingress() {
        for name in route.policy.hide_headers.iter() {
            response.headers_mut().remove(name);
        }
    }
    if let Some(cors) = &route.runtime.cors {
        cors.add(head.origin.as_ref(), response.headers_mut());
    }
    let switched = match head.upgrade {
        Some((_, downstream)) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let protocol = response.headers().get(header::UPGRADE).cloned();
            let upstream = hyper::upgrade::on(&mut response);
            // nginx closes a WebSocket idle for `proxy-read-timeout`; so does Remora.
            let idle = read_timeout(route.location());
            tokio::spawn(crate::tunnel::run(downstream, upstream, idle));
            protocol
        }
        _ => None,
    };
    headers::strip_hop_by_hop(response.headers_mut());
    if let Some(protocol) = switched {
        headers::set_upgrade(response.headers_mut(), protocol);
    }
    // `proxy-redirect-*`, `proxy-cookie-*`: the pod's own headers, not Remora's cookies below.
    crate::replace::response(route.location(), response.headers_mut());
    super::header_filter::response(route, response.headers_mut());
    if let (Some(a), Some(value)) = (pick.affinity, pick.set_cookie) {
        let traits = cookie::RequestTraits {
            tls: conn.tls,
            user_agent: head
                .parts
                .headers
                .get(header::USER_AGENT)
                .map(HeaderValue::as_bytes),
        };
        set_session(response.headers_mut(), a, &value, pick.now, traits);
    }
    if let Some(grant) = grant {
        if grant.sets_cookies_on(response.status()) {
            for cookie in grant.cookies {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
        }
    }
    response.map(Either::Left)
}

/// A new or moved session's value: in the affinity's session header as it is (a Gateway API
/// header session), else in a `Set-Cookie` with the affinity's attributes.
fn set_session(
    headers: &mut HeaderMap,
    a: &Affinity,
    value: &str,
    now: SystemTime,
    traits: cookie::RequestTraits<'_>,
) {
    match &a.header {
        Some(name) => {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        None => {
            if let Ok(v) = HeaderValue::from_str(&cookie::set_cookie(a, value, now, traits)) {
                headers.append(header::SET_COOKIE, v);
            }
        }
    }
}
