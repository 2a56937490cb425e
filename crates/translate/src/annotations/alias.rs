//! `server-alias`: a comma-separated list of extra host names for the Ingress's hosts.

use super::Reader;
use model::HostMatch;

pub fn parse(r: &mut Reader<'_>) -> Vec<HostMatch> {
    let Some(v) = r.get("server-alias").map(str::to_owned) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for alias in v.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        match model::HostMatch::parse(alias) {
            Ok(h) if !out.contains(&h) => out.push(h),
            Ok(_) => {}
            Err(why) => r.warn("server-alias", format!("alias \"{alias}\" {why}: skipped")),
        }
    }
    out
}
