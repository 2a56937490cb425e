//! Cookie session affinity: `affinity`, `affinity-mode`, `session-cookie-*`.
//!
//! Same names, defaults and validation as ingress-nginx's `sessionaffinity` parser. An invalid value
//! is reported and the default used; the Ingress is always served.

use super::Reader;
use model::{AffinityMode, SameSite, DEFAULT_COOKIE_NAME};

/// Affinity as annotated on an Ingress. The cookie path is resolved per route (it defaults to the
/// route's path), so it stays optional here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffinitySpec {
    pub cookie_name: String,
    pub mode: AffinityMode,
    pub expires: Option<u64>,
    pub max_age: Option<u64>,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub secure: bool,
    pub samesite: Option<SameSite>,
    pub conditional_samesite_none: bool,
    pub change_on_failure: bool,
    pub balance_factor: Option<u32>,
    pub sliding: bool,
}

/// ingress-nginx accepts cookie names matching `^[/\-._~a-zA-Z0-9:]*$`.
fn valid_cookie_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-._~:".contains(c))
}

/// `remora.dev/session-balance-factor`: a number from 1 to 100 (`1.25`), or `0`/`off` for no
/// bound. Absent: the `--session-balance-factor` default.
fn balance_factor(r: &mut Reader<'_>) -> Option<u32> {
    let default = r.options.session_balance_factor;
    let Some(v) = r.get_remora("session-balance-factor").map(str::to_owned) else {
        return default;
    };
    if v == "off" || v == "0" {
        return None;
    }
    match v.parse::<f64>() {
        Ok(f) if (1.0..=100.0).contains(&f) => Some((f * 100.0).round() as u32),
        _ => {
            r.warn_full(
                "remora.dev/session-balance-factor",
                format!("invalid value \"{v}\": expected a factor from 1 to 100 (e.g. 1.25) or \"off\"; using the default"),
            );
            default
        }
    }
}

pub fn parse(r: &mut Reader<'_>) -> Option<AffinitySpec> {
    // Read every family member first, so none of them is reported as unsupported when affinity is
    // off, and values are validated whether or not affinity is on.
    let kind = r.get("affinity").map(str::to_owned);
    let cookie_name = match r.get("session-cookie-name").map(str::to_owned) {
        None => DEFAULT_COOKIE_NAME.to_owned(),
        Some(n) if n.is_empty() => DEFAULT_COOKIE_NAME.to_owned(),
        Some(n) if valid_cookie_name(&n) => n,
        Some(n) => {
            r.warn(
                "session-cookie-name",
                format!(
                    "invalid cookie name \"{n}\" (allowed: letters, digits and /-._~:), using {DEFAULT_COOKIE_NAME}"
                ),
            );
            DEFAULT_COOKIE_NAME.to_owned()
        }
    };
    let mode = match r.get("affinity-mode").map(str::to_owned) {
        None => AffinityMode::Balanced,
        Some(m) => match m.as_str() {
            "" | "balanced" => AffinityMode::Balanced,
            "persistent" => AffinityMode::Persistent,
            other => {
                r.warn(
                    "affinity-mode",
                    format!(
                        "invalid affinity mode \"{other}\" (expected balanced or persistent), using balanced"
                    ),
                );
                AffinityMode::Balanced
            }
        },
    };
    let expires = r.uint::<u64>("session-cookie-expires", "a number of seconds");
    let max_age = r.uint::<u64>("session-cookie-max-age", "a number of seconds");
    let path = match r.get("session-cookie-path").map(str::to_owned) {
        None => None,
        Some(p) if p.is_empty() => None,
        Some(p) if p.starts_with('/') && !p.contains(';') && !p.contains(char::is_whitespace) => {
            Some(p)
        }
        Some(p) => {
            r.warn(
                "session-cookie-path",
                format!("invalid cookie path \"{p}\": must start with / and contain no ; or spaces, using the route path"),
            );
            None
        }
    };
    let domain = match r.get("session-cookie-domain").map(str::to_owned) {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) if valid_cookie_name(&d) => Some(d),
        Some(d) => {
            r.warn(
                "session-cookie-domain",
                format!("invalid domain \"{d}\" (allowed: letters, digits and /-._~:), no Domain attribute"),
            );
            None
        }
    };
    let secure = r.bool("session-cookie-secure").unwrap_or(false);
    // ingress-nginx accepts any case here but then drops values that are not capitalised; Remora
    // capitalises them.
    let samesite = match r
        .get("session-cookie-samesite")
        .map(str::to_ascii_lowercase)
    {
        None => None,
        Some(v) => match v.as_str() {
            "" => None,
            "none" => Some(SameSite::None),
            "lax" => Some(SameSite::Lax),
            "strict" => Some(SameSite::Strict),
            _ => {
                r.warn(
                    "session-cookie-samesite",
                    format!("invalid value \"{v}\" (expected None, Lax or Strict), no SameSite attribute"),
                );
                None
            }
        },
    };
    let conditional_samesite_none = r
        .bool("session-cookie-conditional-samesite-none")
        .unwrap_or(false);
    // ingress-nginx defaults to false and then retries the dead pod (#4035); Remora re-pins unless
    // told explicitly to keep the cookie.
    let change_on_failure = r.bool("session-cookie-change-on-failure").unwrap_or(true);
    // Only balanced placement is bounded; persistent placement is round robin, even already.
    let balance_factor = balance_factor(r).filter(|_| mode == AffinityMode::Balanced);
    let sliding = r.bool_remora("session-cookie-sliding").unwrap_or(false);
    if sliding && expires.is_none() && max_age.is_none() {
        r.warn_full(
            "remora.dev/session-cookie-sliding",
            "has no effect without session-cookie-expires or session-cookie-max-age: the cookie already lasts for the browser session",
        );
    }
    if r.get("session-cookie-hash").is_some() {
        r.info(
            "session-cookie-hash",
            "ignored: the cookie value is an opaque MAC'd endpoint reference (ingress-nginx also ignores it since 0.24)",
        );
    }
    let use_regex = r.peek_bool("use-regex") == Some(true);
    if kind.as_deref() == Some("cookie") && use_regex && path.is_none() {
        // ingress-nginx's words: with regex paths, the route path is no usable cookie Path.
        r.warn(
            "session-cookie-path",
            "session-cookie-path should be set when use-regex is true",
        );
    }
    match kind.as_deref() {
        None | Some("") => None,
        Some("cookie") => Some(AffinitySpec {
            cookie_name,
            mode,
            expires,
            max_age,
            path,
            domain,
            secure,
            samesite,
            conditional_samesite_none,
            change_on_failure,
            balance_factor,
            sliding,
        }),
        Some(other) => {
            r.warn(
                "affinity",
                format!("unsupported affinity type \"{other}\" (only \"cookie\"), affinity is off"),
            );
            None
        }
    }
}
