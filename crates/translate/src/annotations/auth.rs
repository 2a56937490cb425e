//! Authentication annotations Remora cannot honour yet: client certificates (`auth-tls-secret`).
//! Basic authentication is `basic_auth.rs`, external authentication `external_auth.rs`. An Ingress that asks for one of them is denied (every request 503, as
//! ingress-nginx answers a location it cannot configure), never served without the control;
//! a warning names the annotation.
//!
//! Each family is active only when its key annotation is set, as in ingress-nginx (whose parsers
//! skip the family otherwise): the companions of an inactive family are reported as unsupported
//! with the other unknown annotations. `satisfy` and `enable-global-auth` change nothing without
//! an active family (and Remora reads no `global-auth-url`), so they are accepted quietly.

use super::Reader;
use model::Location;

/// A family: its key annotation, what it does, and the companions read with it.
struct Family {
    key: &'static str,
    what: &'static str,
    companions: &'static [&'static str],
}

const FAMILIES: [Family; 1] = [Family {
    key: "auth-tls-secret",
    what: "client certificate authentication",
    companions: &[
        "auth-tls-verify-client",
        "auth-tls-verify-depth",
        "auth-tls-error-page",
        "auth-tls-pass-certificate-to-upstream",
        "auth-tls-match-cn",
    ],
}];

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    for family in &FAMILIES {
        if r.text(family.key).is_none() {
            continue;
        }
        for name in family.companions {
            r.get(name);
        }
        // `auth-tls-verify-client: off` asks for no verification: nothing is enforced.
        if family.key == "auth-tls-secret"
            && r.peek("auth-tls-verify-client")
                .is_some_and(|v| v.eq_ignore_ascii_case("off"))
        {
            r.warn(
                family.key,
                "client certificates are not supported by Remora; with auth-tls-verify-client \"off\" nothing was enforced, so the Ingress is served",
            );
            continue;
        }
        r.warn(
            family.key,
            format!(
                "{} is not supported by Remora yet: every request of this Ingress gets 503 rather than being served without it",
                family.what
            ),
        );
        loc.denied
            .get_or_insert_with(|| format!("{}: {} is not supported", family.key, family.what));
    }
    if let Some(v) = r.text("satisfy") {
        if v != "all" && v != "any" {
            r.warn(
                "satisfy",
                format!("invalid value \"{v}\" (expected all or any), ignored"),
            );
        }
    }
    r.get("enable-global-auth");
}
