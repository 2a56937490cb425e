//! `satisfy`: `any` lets a request through that passes one of the access controls (source ranges,
//! basic or digest authentication, `auth-url`; the proxy's `handler/satisfy.rs`), `all` (the
//! default) needs each; an invalid value denies the Ingress (503), where ingress-nginx falls back
//! to `all`. And the ConfigMap's `global-auth-url` on the Ingress's locations: as ingress-nginx's
//! `shouldApplyGlobalAuth`, on every location without its own `auth-url`, unless
//! `enable-global-auth: "false"`. Global settings that cannot be used deny those locations (503):
//! never served open, where ingress-nginx drops the global authentication with a log line. Basic authentication is `basic_auth.rs`,
//! external authentication `external_auth.rs`, client certificates `auth_tls.rs`.

use super::Reader;
use crate::configmap::GlobalAuth;
use model::Location;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location, global: Option<&GlobalAuth>) {
    match r.text("satisfy").as_deref() {
        None | Some("all") => {}
        Some("any") => loc.satisfy_any = true,
        Some(v) => {
            let why = format!("invalid value \"{v}\" (expected all or any)");
            r.deny(
                loc,
                "satisfy",
                &why,
                "rather than guessing how its access controls combine",
            );
        }
    }
    let enabled = r.bool("enable-global-auth").unwrap_or(true);
    let Some(global) = global else { return };
    if !enabled || r.peek("auth-url").is_some_and(|u| !u.is_empty()) {
        return;
    }
    match global {
        GlobalAuth::Auth(auth) => loc.external_auth = Some(auth.clone()),
        GlobalAuth::Invalid(why) => {
            loc.denied
                .get_or_insert_with(|| format!("global-auth-url (ConfigMap): {why}"));
        }
    }
}
