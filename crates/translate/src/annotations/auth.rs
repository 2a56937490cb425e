//! `satisfy` and `enable-global-auth`: they change nothing without an authentication family
//! (Remora reads no `global-auth-url`), so they are accepted quietly, an invalid `satisfy` with a
//! warning. Basic authentication is `basic_auth.rs`, external authentication `external_auth.rs`,
//! client certificates `auth_tls.rs`.

use super::Reader;

pub fn parse(r: &mut Reader<'_>) {
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
