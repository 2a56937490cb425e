//! `sessionPersistence` (GEP-1619) into the route's [`Affinity`], in both shapes the API has had:
//! the released one (`sessionName`, `cookieConfig.lifetimeType`) and the newer union (`cookie:
//! {name, path, lifetimeType}`, `header: {name}`).
//!
//! What GEP-1619 asks, and Remora's Ingress affinity already does the rest of (failover in the
//! same request, one re-pin, draining pods keep their sessions, bounded load):
//! - a `Session` cookie has no `Expires`/`Max-Age`, and its `absoluteTimeout` is enforced from
//!   the value itself; a `Permanent` one carries both, equal to `absoluteTimeout`;
//! - `Path` defaults to `/`; `HttpOnly`, `SameSite=Strict`, and `Secure` over HTTPS;
//! - with no name given, a name unique to the rule is generated;
//! - sessions are bound to their rule, so two rules sending to the same Service keep separate
//!   sessions.

use crate::objects::SessionPersistence;
use crate::{Diagnostics, Options};
use model::{Affinity, AffinityMode, ObjectRef, SameSite};

/// The affinity of a rule with `sessionPersistence`, whose sessions are scoped to `scope_name`
/// (the route and rule). `None` with a warning when it cannot be honoured.
pub fn affinity(
    sp: &SessionPersistence,
    scope_name: &str,
    options: &Options,
    object: &ObjectRef,
    label: &str,
    diags: &mut Diagnostics,
) -> Option<Affinity> {
    let warn = |diags: &mut Diagnostics, m: String| {
        diags.warn(object, format!("{label}: sessionPersistence: {m}"));
    };
    let scope = Affinity::scope_of(scope_name);
    let absolute = match sp.absolute_timeout.as_deref() {
        None => None,
        Some(d) => match d.parse::<gateway_api::Duration>() {
            Ok(d) if d.as_secs() > 0 => Some(d.as_secs()),
            Ok(_) => {
                warn(
                    diags,
                    format!("absoluteTimeout {d} is under a second: none"),
                );
                None
            }
            Err(e) => {
                warn(
                    diags,
                    format!("absoluteTimeout {d} is not a duration ({e}): none"),
                );
                None
            }
        },
    };
    if sp.idle_timeout.is_some() {
        warn(
            diags,
            "idleTimeout is not supported yet: sessions end only by absoluteTimeout".to_owned(),
        );
    }
    let cookie = sp.cookie.as_ref().or(sp.cookie_config.as_ref());
    let generated = format!("remora-session-{:012x}", scope >> 16);
    let mut a = Affinity::new(&generated, AffinityMode::Balanced);
    a.scope = scope;
    a.samesite = Some(SameSite::Strict);
    a.balance_factor = options.session_balance_factor;
    a.absolute_timeout = absolute;
    match sp.type_.as_deref().unwrap_or("Cookie") {
        "Cookie" => {
            let name = cookie
                .and_then(|c| c.name.as_deref())
                .or(sp.session_name.as_deref())
                .filter(|n| !n.is_empty());
            if let Some(name) = name {
                if !valid_token(name) {
                    warn(
                        diags,
                        format!("cookie name {name:?} is not a cookie name: not persistent"),
                    );
                    return None;
                }
                a.cookie_name = name.to_owned();
            }
            if let Some(path) = cookie
                .and_then(|c| c.path.as_deref())
                .filter(|p| !p.is_empty())
            {
                if !path.starts_with('/') || path.bytes().any(|b| b == b';' || b.is_ascii_control())
                {
                    warn(diags, format!("cookie path {path:?} is not a path: /"));
                } else {
                    a.path = path.to_owned();
                }
            }
            match cookie.and_then(|c| c.lifetime_type.as_deref()).unwrap_or("Session") {
                "Session" => {}
                "Permanent" => match absolute {
                    Some(t) => {
                        a.expires = Some(t);
                        a.max_age = Some(t);
                    }
                    None => warn(
                        diags,
                        "lifetimeType Permanent needs absoluteTimeout: the cookie lasts the browser session".to_owned(),
                    ),
                },
                other => warn(diags, format!("lifetimeType {other} is not Session or Permanent: Session")),
            }
        }
        "Header" => {
            let name = sp
                .header
                .as_ref()
                .and_then(|h| h.name.as_deref())
                .or(sp.session_name.as_deref())
                .filter(|n| !n.is_empty());
            let name = match name {
                Some(n) if valid_token(n) => n.to_ascii_lowercase(),
                Some(n) => {
                    warn(
                        diags,
                        format!("header name {n:?} is not a header name: not persistent"),
                    );
                    return None;
                }
                None => format!("x-{generated}"),
            };
            a.header = Some(name);
        }
        other => {
            warn(
                diags,
                format!("type {other} is not supported (Cookie and Header are): not persistent"),
            );
            return None;
        }
    }
    Some(a)
}

/// An RFC 7230 token: what both cookie and header names must be.
fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
