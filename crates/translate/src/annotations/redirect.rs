//! `temporal-redirect` (with `temporal-redirect-code`, default 302) and `permanent-redirect` (with
//! `permanent-redirect-code`, default 301): every request of the Ingress is answered with a
//! redirect, as ingress-nginx does; the temporal one wins when both are set.

use super::Reader;
use model::{Location, Redirect};

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    let temporal = redirect(r, "temporal-redirect", 300..=307, 302);
    let permanent = redirect(r, "permanent-redirect", 300..=308, 301);
    loc.redirect = temporal.or(permanent);
    loc.preserve_trailing_slash = r.bool("preserve-trailing-slash").unwrap_or(false);
}

/// The redirect of `name` and `name-code` (in `codes`, else `default`).
fn redirect(
    r: &mut Reader<'_>,
    name: &str,
    codes: std::ops::RangeInclusive<u32>,
    default: u16,
) -> Option<Redirect> {
    let code_name = format!("{name}-code");
    let Some(url) = r.text(name) else {
        // Without its URL the code means nothing (ingress-nginx does not read it either).
        r.get(&code_name);
        return None;
    };
    let expected = format!("an HTTP status from {} to {}", codes.start(), codes.end());
    let code = match r.uint::<u32>(&code_name, &expected) {
        Some(c) if codes.contains(&c) => c as u16,
        Some(c) => {
            r.warn(
                &code_name,
                format!(
                    "{c} is not a redirect status ({}-{}): using {default}",
                    codes.start(),
                    codes.end()
                ),
            );
            default
        }
        None => default,
    };
    let valid = url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/');
    if valid && !url.contains(char::is_whitespace) && http_header_safe(&url) {
        Some(Redirect { url, code })
    } else {
        r.warn(
            name,
            format!("\"{url}\" is not an http(s) URL or absolute path: ignored"),
        );
        None
    }
}

fn http_header_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b))
}
