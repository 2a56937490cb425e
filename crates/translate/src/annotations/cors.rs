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
    let token_list = |s: &str, extra: &str| {
        s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b" ,-_".contains(&b) || extra.as_bytes().contains(&b)
        })
    };
    if let Some(v) = r.text("cors-allow-methods") {
        if token_list(&v, "") {
            cors.allow_methods = v;
        } else {
            r.warn(
                "cors-allow-methods",
                format!("invalid value \"{v}\": using the default"),
            );
        }
    }
    if let Some(v) = r.text("cors-allow-headers") {
        if token_list(&v, "*") {
            cors.allow_headers = v;
        } else {
            r.warn(
                "cors-allow-headers",
                format!("invalid value \"{v}\": using the default"),
            );
        }
    }
    if let Some(v) = r.text("cors-expose-headers") {
        if token_list(&v, "*") {
            cors.expose_headers = v;
        } else {
            r.warn(
                "cors-expose-headers",
                format!("invalid value \"{v}\": ignored"),
            );
        }
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
