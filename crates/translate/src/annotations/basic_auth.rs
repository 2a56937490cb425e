//! `auth-type` (with `auth-secret`, `auth-secret-type`, `auth-realm`): basic and digest
//! authentication, which Remora cannot honour yet. The Ingress is denied (every request 503),
//! never served without the control; a warning names the annotation. Active only when
//! `auth-type` is set, as in ingress-nginx.

use super::Reader;
use model::Location;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    if r.text("auth-type").is_none() {
        return;
    }
    for name in ["auth-secret", "auth-secret-type", "auth-realm"] {
        r.get(name);
    }
    r.warn(
        "auth-type",
        "basic and digest authentication is not supported by Remora yet: every request of this Ingress gets 503 rather than being served without it",
    );
    loc.denied.get_or_insert_with(|| {
        "auth-type: basic and digest authentication is not supported".to_owned()
    });
}
