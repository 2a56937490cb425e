//! `enable-cors` and `cors-allow-origin`, `-allow-methods`, `-allow-headers`, `-expose-headers`,
//! `-allow-credentials`, `-max-age`, with ingress-nginx's defaults.

use super::Reader;
use model::{Cors, Location};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let enabled = r.bool("enable-cors").unwrap_or(false);
    let mut cors = Cors::default();
    if let Some(v) = r.text("cors-allow-origin") {
        let origins: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        let bad: Vec<&String> = origins
            .iter()
            .filter(|o| *o != "*" && !(o.starts_with("http://") || o.starts_with("https://")))
            .collect();
        if bad.is_empty() && !origins.is_empty() {
            cors.allow_origin = origins;
        } else {
            r.warn(
                "cors-allow-origin",
                format!("invalid origin list \"{v}\" (expected * or http(s)://host[:port], comma-separated): using *"),
            );
        }
    }
    if let Some(v) = token_list(r, "cors-allow-methods", b"", "using the default") {
        cors.allow_methods = v;
    }
    if let Some(v) = token_list(r, "cors-allow-headers", b"*", "using the default") {
        cors.allow_headers = v;
    }
    if let Some(v) = token_list(r, "cors-expose-headers", b"*", "ignored") {
        cors.expose_headers = v;
    }
    if let Some(b) = r.bool("cors-allow-credentials") {
        cors.allow_credentials = b;
    }
    if let Some(n) = r.uint("cors-max-age", "a number of seconds") {
        cors.max_age = n;
    }
    if enabled {
        loc.cors = Some(cors);
    }
}

/// A comma-separated list of methods or header names (letters, digits, ` ,-_` and `extra`); an
/// invalid one warns, saying what happens `instead`, and reads as absent.
fn token_list(r: &mut Reader<'_>, name: &str, extra: &[u8], instead: &str) -> Option<String> {
    let v = r.text(name)?;
    let valid = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" ,-_".contains(&b) || extra.contains(&b));
    if !valid {
        r.warn(name, format!("invalid value \"{v}\": {instead}"));
        return None;
    }
    Some(v)
}
