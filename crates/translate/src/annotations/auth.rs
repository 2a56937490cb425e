//! `satisfy`, accepted quietly (an invalid value with a warning), and the ConfigMap's
//! `global-auth-url` on the Ingress's locations: as ingress-nginx's `shouldApplyGlobalAuth`, on
//! every location without its own `auth-url`, unless `enable-global-auth: "false"`. Global
//! settings that cannot be used deny those locations (503): never served open, where ingress-nginx
//! drops the global authentication with a log line. Basic authentication is `basic_auth.rs`,
//! external authentication `external_auth.rs`, client certificates `auth_tls.rs`.

use super::Reader;
use crate::configmap::GlobalAuth;
use model::Location;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location, global: Option<&GlobalAuth>) {
    if let Some(v) = r.text("satisfy") {
        if v != "all" && v != "any" {
            r.warn(
                "satisfy",
                format!("invalid value \"{v}\" (expected all or any), ignored"),
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
