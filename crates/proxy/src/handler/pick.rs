//! Phase 4, pick: the canary or the primary target (as ingress-nginx decides), then the endpoint:
//! the sticky layer over the backend's balancer when the target has affinity; else the ring, by
//! the route's `upstream-hash-by` key; else round robin. On failover, [`Pick::fail_over`] moves to another endpoint and re-pins the session.

use super::{Connection, Reject};
use crate::access_log::Outcome;
use crate::stats::SessionOutcome;
use crate::table::{BackendRuntime, Matched, RouteRuntime, Table};
use crate::Shared;
use balance::{cookie, CookieKey};
use http::header::{self, HeaderValue};
use http::Request;
use model::{Affinity, Canary, Target};
use std::time::SystemTime;

/// Where a request goes, and the session cookie it sets.
pub struct Pick<'t> {
    pub backend: &'t BackendRuntime,
    pub affinity: Option<&'t Affinity>,
    /// The endpoint, by index in the backend.
    pub endpoint: usize,
    /// The `Set-Cookie` value of a new or moved session.
    pub set_cookie: Option<String>,
    /// The time sessions are judged by (only read for targets with affinity).
    pub now: SystemTime,
}

/// Pick the target and endpoint of a request; the session outcome and the canary's statistics go
/// to `out`. No backend, or no endpoint to pick: 503.
pub fn pick<'t, B>(
    shared: &Shared,
    table: &'t Table,
    route: &Matched<'t>,
    req: &Request<B>,
    conn: &Connection,
    out: &mut Outcome<'t>,
) -> Result<Pick<'t>, Reject> {
    let target = match route.canary {
        Some(c)
            if to_canary(
                &shared.config.cookie_key,
                table,
                route.runtime,
                route.target,
                c,
                req,
            ) =>
        {
            out.stats = route.runtime.canary_stats.as_deref().or(out.stats);
            &c.target
        }
        _ => route.target,
    };
    let backend = target
        .backend
        .and_then(|b| table.backends.get(b.0 as usize))
        .ok_or(Reject::NoBackend)?;
    let affinity = target.affinity.as_deref();
    let Some(a) = affinity else {
        let endpoint = match &route.runtime.hash_key {
            Some(key) => backend.balancer.pick_hashed(key.hash(&conn.cx(req))),
            None => backend.balancer.pick(),
        }
        .ok_or(Reject::NoEndpoint)?;
        return Ok(Pick {
            backend,
            affinity,
            endpoint,
            set_cookie: None,
            now: SystemTime::UNIX_EPOCH,
        });
    };
    // The clock is only read for sessions (cookie times).
    let now = SystemTime::now();
    let cookies = || {
        cookie::find(
            req.headers()
                .get_all(header::COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
            &a.cookie_name,
        )
    };
    let p = backend
        .balancer
        .pick_sticky(
            &shared.config.cookie_key,
            a,
            cookies(),
            cookie::now_secs(now),
        )
        .ok_or(Reject::NoEndpoint)?;
    out.session = match &p.new_cookie {
        None => SessionOutcome::Sticky,
        // A new cookie replaces one the client sent, or starts the session.
        Some(_) if cookies().next().is_some() => SessionOutcome::Repinned,
        Some(_) => SessionOutcome::New,
    };
    Ok(Pick {
        backend,
        affinity,
        endpoint: p.endpoint,
        set_cookie: p.new_cookie,
        now,
    })
}

impl Pick<'_> {
    /// Move to an endpoint not `tried` yet after the current one failed; the session is re-pinned
    /// there unless the route keeps cookies on failure. `None`: no other endpoint; else whether
    /// the session moved.
    pub fn fail_over(&mut self, key: &CookieKey, tried: &[usize]) -> Option<bool> {
        match self.affinity {
            Some(a) => {
                let p = self.backend.balancer.repick_sticky(
                    key,
                    a,
                    cookie::now_secs(self.now),
                    tried,
                )?;
                self.endpoint = p.endpoint;
                match p.new_cookie.filter(|_| a.change_on_failure) {
                    Some(c) => {
                        self.set_cookie = Some(c);
                        Some(true)
                    }
                    None => Some(false),
                }
            }
            None => {
                self.endpoint = self.backend.balancer.pick_excluding(tried)?;
                Some(false)
            }
        }
    }
}

/// Does this request of a route with a canary go to the canary? As ingress-nginx decides: the
/// header (`always`/`never`, or its configured value or pattern), then the cookie
/// (`always`/`never`), then, with sticky behaviour, the side the session cookie belongs to, then
/// the weight.
fn to_canary<B>(
    key: &CookieKey,
    table: &Table,
    route: &RouteRuntime,
    primary: &Target,
    canary: &Canary,
    req: &Request<B>,
) -> bool {
    if let Some(name) = &canary.header {
        if let Some(v) = req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
        {
            if let Some(want) = &canary.header_value {
                if v == want {
                    return true;
                }
            } else if canary.header_pattern.is_some() {
                if route
                    .canary_pattern
                    .as_ref()
                    .is_some_and(|re| re.is_match(v))
                {
                    return true;
                }
            } else if v == "always" {
                return true;
            } else if v == "never" {
                return false;
            }
        }
    }
    let cookies = || {
        req.headers()
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
    };
    if let Some(name) = &canary.cookie {
        match cookie::find(cookies(), name).next() {
            Some("always") => return true,
            Some("never") => return false,
            _ => {}
        }
    }
    if canary.sticky {
        if let Some(a) = &primary.affinity {
            let balancer = |t: &Target| {
                t.backend
                    .and_then(|b| table.backends.get(b.0 as usize))
                    .map(|b| &b.balancer)
            };
            let now = cookie::now_secs(SystemTime::now());
            for value in cookie::find(cookies(), &a.cookie_name) {
                if balancer(primary).is_some_and(|b| b.recognizes(key, a, value, now)) {
                    return false;
                }
                if balancer(&canary.target).is_some_and(|b| b.recognizes(key, a, value, now)) {
                    return true;
                }
            }
        }
    }
    canary.weight > 0
        && balance::random_u64() % u64::from(canary.weight_total.max(1)) < u64::from(canary.weight)
}
