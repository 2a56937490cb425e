//! Request rate limits: `limit-rps`, `limit-rpm`, `limit-burst-multiplier` and `limit-allowlist`
//! (or its older name `limit-whitelist`), as ingress-nginx's `limit_req zone=... burst=rate x
//! multiplier nodelay`: per client address, per replica, one zone per Ingress. An invalid
//! allow-list entry does not lift the limits (ingress-nginx drops them all): the list is ignored
//! and every client is limited. `limit-connections` (nginx's `limit_conn`, keyed by the client
//! address) is counted as requests in flight per client address, in the same zone and with the
//! same allow-list.

use super::allowlist::networks;
use super::Reader;
use model::{Location, RateLimit};

/// ingress-nginx's default `limit-burst-multiplier`.
const BURST_MULTIPLIER: u32 = 5;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let rate = "a number of requests";
    let rps: u32 = r.uint("limit-rps", rate).unwrap_or(0);
    let rpm: u32 = r.uint("limit-rpm", rate).unwrap_or(0);
    let connections: u32 = r
        .uint("limit-connections", "a number of connections")
        .unwrap_or(0);
    let burst_multiplier = r
        .uint("limit-burst-multiplier", "a whole number")
        .filter(|m| *m > 0)
        .unwrap_or(BURST_MULTIPLIER);
    let (name, list) = match (r.text("limit-allowlist"), r.text("limit-whitelist")) {
        (Some(a), _) => ("limit-allowlist", Some(a)),
        (None, Some(w)) => ("limit-whitelist", Some(w)),
        (None, None) => ("limit-allowlist", None),
    };
    if rps == 0 && rpm == 0 && connections == 0 {
        return;
    }
    let allow = match list.map(|l| networks(&l)) {
        None => Vec::new(),
        Some(Ok(nets)) => nets,
        Some(Err(bad)) => {
            r.warn(
                name,
                format!(
                    "invalid network(s) {}: the list is ignored, every client is limited",
                    bad.join(", ")
                ),
            );
            Vec::new()
        }
    };
    let object = r.object();
    loc.rate_limit = Some(RateLimit {
        zone: format!("{}/{}", object.namespace, object.name),
        rps,
        rpm,
        connections,
        burst_multiplier,
        allow,
    });
}
