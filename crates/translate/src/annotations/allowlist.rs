//! `allowlist-source-range` (and its older name `whitelist-source-range`): the client networks
//! allowed; other clients get 403. An invalid entry makes the route refuse every client until it
//! is fixed: failing open would expose what the list protects.

use super::Reader;
use model::{Cidr, Location};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let allow = r.text("allowlist-source-range");
    let white = r.text("whitelist-source-range");
    let (name, value) = match (allow, white) {
        (Some(a), _) => ("allowlist-source-range", a),
        (None, Some(w)) => ("whitelist-source-range", w),
        (None, None) => return,
    };
    let mut nets = Vec::new();
    let mut bad = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Cidr::parse(item) {
            Some(c) => nets.push(c),
            None => bad.push(item.to_owned()),
        }
    }
    if !bad.is_empty() {
        r.warn(
            name,
            format!(
                "invalid network(s) {}: every request of this Ingress gets 403 until the list is fixed",
                bad.join(", ")
            ),
        );
        nets.clear();
    }
    loc.allow_sources = Some(nets);
}
