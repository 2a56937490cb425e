//! Phase 4, pick: the canary or the primary target (as ingress-nginx decides), or one of a
//! Gateway API route's weighted backends (the one the request's session belongs to, else by
//! weight); then the endpoint: the sticky layer over the backend's balancer when the target has
//! affinity; else the ring, by the route's `upstream-hash-by` key (onto one endpoint, or with
//! `upstream-hash-by-subset` one of a subset); else round robin. On failover, [`Pick::fail_over`]
//! moves to another endpoint and re-pins the session.
//!
//! A session travels in a cookie, or, for a Gateway API header session (`Affinity::header`), in
//! that request header; a new or moved one goes back the same way (`respond`).

use super::{Connection, Reject};
use crate::access_log::Outcome;
use crate::stats::SessionOutcome;
use crate::table::{BackendRuntime, Matched, RouteRuntime, Table};
use crate::Shared;
use balance::{cookie, CookieKey};
use http::header::{self, HeaderValue};
use http::Request;
use model::{Affinity, Canary, Target, WeightedBackend};
use std::time::SystemTime;

/// Where a request goes, and the session cookie it sets.
pub struct Pick<'t> {
    pub backend: &'t BackendRuntime,
    pub affinity: Option<&'t Affinity>,
    /// The endpoint, by index in the backend.
    pub endpoint: usize,
    /// The session value of a new or moved session: a `Set-Cookie` value, or the value of the
    /// affinity's session header.
    pub set_cookie: Option<String>,
    /// The time sessions are judged by (only read for targets with affinity).
    pub now: SystemTime,
}

/// Pick the target and endpoint of a request; the session outcome and the canary's statistics go
/// to `out`. No backend, or no endpoint to pick: 503; a weighted backend that does not resolve
/// (or weights all 0): 500.
pub fn pick<'t, B>(
    shared: &Shared,
    table: &'t Table,
    route: &Matched<'t>,
    req: &Request<B>,
    conn: &Connection,
    out: &mut Outcome<'t>,
) -> Result<Pick<'t>, Reject> {
    let canary = match route.canary {
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
            out.compat = route.runtime.canary_compat.as_deref().or(out.compat);
            Some(c)
        }
        _ => None,
    };
    let target = canary.map_or(route.target, |c| &c.target);
    let affinity = target.affinity.as_deref();
    // The clock is only read for sessions (cookie times).
    let now = match affinity {
        Some(_) => SystemTime::now(),
        None => SystemTime::UNIX_EPOCH,
    };
    let backend = match (canary, route.backends) {
        // A Gateway API rule: the backend its session belongs to, else one by weight.
        (None, weighted @ [_, ..]) => {
            let key = &shared.config.cookie_key;
            let now = cookie::now_secs(now);
            match affinity.and_then(|a| session_backend(key, table, weighted, a, req, now)) {
                Some(b) => b,
                None => by_weight(table, weighted, balance::random_u64())?,
            }
        }
        _ => target
            .backend
            .and_then(|b| table.backends.get(b.0 as usize))
            .ok_or(Reject::NoBackend)?,
    };
    let Some(a) = affinity else {
        let endpoint = match &route.runtime.hash_key {
            Some(key) => backend.balancer.pick_hashed(
                key.hash(&conn.cx(req)),
                route.target.location.upstream_hash_subset,
            ),
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
    let p = backend
        .balancer
        .pick_sticky(
            &shared.config.cookie_key,
            a,
            sessions(a, req),
            cookie::now_secs(now),
        )
        .ok_or(Reject::NoEndpoint)?;
    out.session = match &p.new_cookie {
        None => SessionOutcome::Sticky,
        // A new value replaces one the client sent, or starts the session.
        Some(_) if sessions(a, req).next().is_some() => SessionOutcome::Repinned,
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

/// The session values a request carries for `affinity`: its cookies of the affinity's name, or
/// the values of its session header.
fn sessions<'r, B>(affinity: &'r Affinity, req: &'r Request<B>) -> impl Iterator<Item = &'r str> {
    let headers = req.headers();
    let cookies = headers.get_all(header::COOKIE).iter();
    let named = affinity
        .header
        .as_deref()
        .into_iter()
        .flat_map(|name| headers.get_all(name).iter());
    cookie::session_values(
        affinity,
        cookies.map(HeaderValue::as_bytes),
        named.map(HeaderValue::as_bytes),
    )
}

/// The weighted backend a request's session belongs to (whatever its weight, 0 included): the
/// first of its session values that one of the backends recognizes (issued by it, for this
/// route rule's scope, not past the absolute timeout). `None`: a new session, placed by weight.
fn session_backend<'t, B>(
    key: &CookieKey,
    table: &'t Table,
    weighted: &[WeightedBackend],
    affinity: &Affinity,
    req: &Request<B>,
    now: u32,
) -> Option<&'t BackendRuntime> {
    sessions(affinity, req).find_map(|value| {
        weighted
            .iter()
            .filter_map(|w| table.backends.get(w.backend?.0 as usize).map(|b| &**b))
            .find(|b| b.balancer.recognizes(key, affinity, value, now))
    })
}

/// The backend a draw `random` chooses among `weighted`, each with a chance of its weight in the
/// total. One that does not resolve, or weights that are all 0: 500, as the Gateway API asks.
fn by_weight<'t>(
    table: &'t Table,
    weighted: &[WeightedBackend],
    random: u64,
) -> Result<&'t BackendRuntime, Reject> {
    let chosen = choose_weighted(weighted, random).ok_or(Reject::InvalidBackend)?;
    chosen
        .backend
        .and_then(|b| table.backends.get(b.0 as usize))
        .map(|b| &**b)
        .ok_or(Reject::InvalidBackend)
}

/// The entry a draw `random` lands on, each entry with a chance of its weight in the total;
/// `None` when the weights are all 0. Weights are at most 1,000,000 each (the Gateway API's
/// limit), so the total fits in a `u64` and the modulo's bias is negligible.
fn choose_weighted(weighted: &[WeightedBackend], random: u64) -> Option<&WeightedBackend> {
    let total: u64 = weighted.iter().map(|w| u64::from(w.weight)).sum();
    if total == 0 {
        return None;
    }
    let mut point = random % total;
    weighted.iter().find(|w| {
        let weight = u64::from(w.weight);
        if point < weight {
            true
        } else {
            point -= weight;
            false
        }
    })
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
            for value in sessions(a, req) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use model::BackendId;

    fn weighted(weights: &[(Option<u32>, u32)]) -> Vec<WeightedBackend> {
        weights
            .iter()
            .map(|&(backend, weight)| WeightedBackend {
                backend: backend.map(BackendId),
                weight,
            })
            .collect()
    }

    /// Over a bounded sample of draws, each backend gets its share of the weight (within a
    /// tolerance far wider than the sample's spread), and weight 0 gets nothing.
    #[test]
    fn weighted_choice_follows_the_weights() {
        let w = weighted(&[(Some(0), 70), (Some(1), 20), (Some(2), 10), (Some(3), 0)]);
        let mut counts = [0u32; 4];
        const DRAWS: u32 = 20_000;
        for _ in 0..DRAWS {
            let chosen = choose_weighted(&w, balance::random_u64()).unwrap();
            counts[chosen.backend.unwrap().0 as usize] += 1;
        }
        let share = |i: usize| f64::from(counts[i]) / f64::from(DRAWS);
        assert!((share(0) - 0.70).abs() < 0.03, "{counts:?}");
        assert!((share(1) - 0.20).abs() < 0.03, "{counts:?}");
        assert!((share(2) - 0.10).abs() < 0.03, "{counts:?}");
        assert_eq!(counts[3], 0);
    }

    #[test]
    fn weighted_choice_walks_the_weights_in_order() {
        let w = weighted(&[(Some(0), 1), (None, 2), (Some(2), 0), (Some(3), 1)]);
        let at = |r| choose_weighted(&w, r).map(|w| w.backend);
        assert_eq!(at(0), Some(Some(BackendId(0))));
        assert_eq!(at(1), Some(None));
        assert_eq!(at(2), Some(None));
        assert_eq!(at(3), Some(Some(BackendId(3))));
        assert_eq!(at(4), Some(Some(BackendId(0))));
        assert_eq!(choose_weighted(&weighted(&[(Some(0), 0)]), 5), None);
        assert_eq!(choose_weighted(&[], 5), None);
        let max = weighted(&[(Some(0), u32::MAX), (Some(1), u32::MAX)]);
        assert!(choose_weighted(&max, u64::MAX).is_some());
    }
}

/// Which weighted backend a session belongs to, with a real table.
#[cfg(test)]
mod session_tests {
    use super::*;
    use model::{AffinityMode, Backend, BackendId, Endpoint, EndpointId, Snapshot};

    fn table() -> Table {
        let backend = |name: &str, first: u8| Backend {
            name: name.into(),
            endpoints: (0..2)
                .map(|i| Endpoint {
                    id: EndpointId(u64::from(first + i)),
                    addr: std::net::SocketAddr::from(([127, 0, 0, first + i], 80)),
                    ready: true,
                    serving: true,
                    terminating: false,
                    pod: None,
                })
                .collect(),
        };
        let snapshot = Snapshot {
            backends: vec![backend("default/v1:80", 1), backend("default/v2:80", 3)]
                .into_iter()
                .map(Into::into)
                .collect(),
            ..Snapshot::default()
        };
        Table::new(snapshot, Vec::new(), 1, None, None)
    }

    fn rule(scope: &str, header: Option<&str>) -> Affinity {
        Affinity {
            scope: Affinity::scope_of(scope),
            header: header.map(Into::into),
            ..Affinity::new("session", AffinityMode::Persistent)
        }
    }

    /// A new session's value, issued by backend `b` of the table at time 100.
    fn issued(t: &Table, b: usize, a: &Affinity) -> String {
        let pick = t.backends[b]
            .balancer
            .pick_sticky(&key(), a, std::iter::empty(), 100);
        pick.unwrap().new_cookie.unwrap()
    }

    fn key() -> CookieKey {
        CookieKey::from_secret(b"pick tests")
    }

    fn backend_of(
        t: &Table,
        weighted: &[WeightedBackend],
        a: &Affinity,
        name: &str,
        value: &str,
    ) -> Option<usize> {
        let req = Request::get("/").header(name, value).body(()).unwrap();
        let found = session_backend(&key(), t, weighted, a, &req, 150)?;
        t.backends.iter().position(|b| std::ptr::eq(&**b, found))
    }

    #[test]
    fn a_session_overrides_the_weights_within_its_rule_only() {
        let t = table();
        let weighted = [
            WeightedBackend {
                backend: Some(BackendId(0)),
                weight: 1,
            },
            WeightedBackend {
                backend: Some(BackendId(1)),
                weight: 0,
            },
        ];
        let a = rule("default/web/rule/0", None);
        let value = issued(&t, 1, &a);
        let cookie = format!("other=1; session={value}");
        assert_eq!(backend_of(&t, &weighted, &a, "cookie", &cookie), Some(1));
        let other_rule = rule("default/web/rule/1", None);
        assert_eq!(
            backend_of(&t, &weighted, &other_rule, "cookie", &cookie),
            None
        );
        assert_eq!(
            backend_of(&t, &weighted, &a, "cookie", "session=forged"),
            None
        );
        // A backend that is not among the rule's does not claim it.
        assert_eq!(backend_of(&t, &weighted[..1], &a, "cookie", &cookie), None);
        // Past the absolute timeout (issued at 100, judged at 150): placed anew, by weight.
        let limited = Affinity {
            absolute_timeout: Some(49),
            ..a.clone()
        };
        assert_eq!(backend_of(&t, &weighted, &limited, "cookie", &cookie), None);
    }

    #[test]
    fn header_sessions_are_found_in_their_header() {
        let t = table();
        let weighted = [
            WeightedBackend {
                backend: Some(BackendId(0)),
                weight: 0,
            },
            WeightedBackend {
                backend: None,
                weight: 0,
            },
            WeightedBackend {
                backend: Some(BackendId(1)),
                weight: 1,
            },
        ];
        let a = rule("default/web/rule/0", Some("x-session"));
        let value = issued(&t, 0, &a);
        assert_eq!(backend_of(&t, &weighted, &a, "x-session", &value), Some(0));
        let as_cookie = format!("session={value}");
        assert_eq!(backend_of(&t, &weighted, &a, "cookie", &as_cookie), None);
    }

    #[test]
    fn invalid_weighted_backends_answer_500() {
        let t = table();
        let broken = [WeightedBackend {
            backend: None,
            weight: 1,
        }];
        assert!(matches!(
            by_weight(&t, &broken, 0),
            Err(Reject::InvalidBackend)
        ));
        let zero = [WeightedBackend {
            backend: Some(BackendId(0)),
            weight: 0,
        }];
        assert!(matches!(
            by_weight(&t, &zero, 0),
            Err(Reject::InvalidBackend)
        ));
        let missing = [WeightedBackend {
            backend: Some(BackendId(7)),
            weight: 1,
        }];
        assert!(matches!(
            by_weight(&t, &missing, 0),
            Err(Reject::InvalidBackend)
        ));
        assert_eq!(
            Reject::InvalidBackend.status(),
            http::StatusCode::INTERNAL_SERVER_ERROR
        );
        let fine = [WeightedBackend {
            backend: Some(BackendId(1)),
            weight: 1,
        }];
        assert!(by_weight(&t, &fine, 0).is_ok_and(|b| std::ptr::eq(b, &*t.backends[1])));
    }
}
