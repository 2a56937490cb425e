//! `permanent-redirect` and `permanent-redirect-code`: every request of the Ingress is answered
//! with a redirect, as ingress-nginx does.

use super::Reader;
use model::{Location, Redirect};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let code = match r.uint::<u32>("permanent-redirect-code", "an HTTP status from 300 to 308") {
        Some(c @ 300..=308) => c as u16,
        Some(c) => {
            r.warn(
                "permanent-redirect-code",
                format!("{c} is not a redirect status (300-308): using 301"),
            );
            301
        }
        None => 301,
    };
    let Some(url) = r.text("permanent-redirect") else {
        return;
    };
    let valid = url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/');
    if valid && !url.contains(char::is_whitespace) && http_header_safe(&url) {
        loc.permanent_redirect = Some(Redirect { url, code });
    } else {
        r.warn(
            "permanent-redirect",
            format!("\"{url}\" is not an http(s) URL or absolute path: ignored"),
        );
    }
}

fn http_header_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b))
}
