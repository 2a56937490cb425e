//! Custom error pages: `custom-http-errors`, the statuses whose responses the default backend
//! answers instead (the `default-backend` annotation's Service, else `--default-backend-service`;
//! the Service is resolved with the Ingress's backends), as ingress-nginx's
//! `proxy_intercept_errors` and `error_page` do. Also a ConfigMap key (the default of every
//! Ingress).

use super::Reader;
use model::Location;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let name = "custom-http-errors";
    let Some(value) = r.text(name) else {
        return;
    };
    let mut codes = Vec::new();
    let mut bad = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<u16>() {
            Ok(c) if (300..=599).contains(&c) => codes.push(c),
            _ => bad.push(item),
        }
    }
    if !bad.is_empty() {
        r.warn(
            name,
            format!(
                "invalid status(es) {}: expected HTTP statuses from 300 to 599, left out",
                bad.join(", ")
            ),
        );
    }
    codes.sort_unstable();
    codes.dedup();
    loc.custom_http_errors = codes;
}
