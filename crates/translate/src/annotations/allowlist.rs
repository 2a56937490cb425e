//! Client networks: `allowlist-source-range` (and its older name `whitelist-source-range`), the
//! networks allowed, other clients get 403; `denylist-source-range`, networks that get 403 (checked
//! first, as nginx's `deny` lines come before its `allow` lines). An invalid entry never fails
//! open: in an allow-list it makes the route refuse every client (403), in a deny-list it denies
//! the route (503, as ingress-nginx), until it is fixed.

use super::Reader;
use model::{Cidr, Location};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    parse_allow(r, loc);
    parse_deny(r, loc);
}

/// The networks of a comma-separated list, or the entries that are none.
pub(crate) fn networks(value: &str) -> Result<Vec<Cidr>, Vec<String>> {
    let mut nets = Vec::new();
    let mut bad = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Cidr::parse(item) {
            Some(c) => nets.push(c),
            None => bad.push(item.to_owned()),
        }
    }
    if bad.is_empty() {
        Ok(nets)
    } else {
        Err(bad)
    }
}

fn parse_deny(r: &mut Reader<'_>, loc: &mut Location) {
    let name = "denylist-source-range";
    let Some(value) = r.text(name) else {
        return;
    };
    match networks(&value) {
        Ok(nets) => loc.deny_sources = Some(nets),
        Err(bad) => {
            let why = format!("invalid network(s) {}", bad.join(", "));
            r.deny(loc, name, &why, "until the list is fixed");
        }
    }
}

fn parse_allow(r: &mut Reader<'_>, loc: &mut Location) {
    let allow = r.text("allowlist-source-range");
    let white = r.text("whitelist-source-range");
    let (name, value) = match (allow, white) {
        (Some(a), _) => ("allowlist-source-range", a),
        (None, Some(w)) => ("whitelist-source-range", w),
        (None, None) => return,
    };
    let nets = match networks(&value) {
        Ok(nets) => nets,
        Err(bad) => {
            r.warn(
                name,
                format!(
                    "invalid network(s) {}: {} gets 403 until the list is fixed",
                    bad.join(", "),
                    crate::migrate::FAILS_CLOSED
                ),
            );
            Vec::new()
        }
    };
    loc.allow_sources = Some(nets);
}
