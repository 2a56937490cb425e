//! The `spec.tls` section. TLS termination is not implemented yet: Ingresses with TLS are still
//! served, over plain HTTP, and say so.

use crate::annotations::IngressAnnotations;
use crate::objects::Ingress;
use crate::Diagnostics;
use model::ObjectRef;

pub fn check(ing: &Ingress, ann: &IngressAnnotations, object: &ObjectRef, diags: &mut Diagnostics) {
    if ing.spec.tls.is_empty() {
        return;
    }
    let secrets: Vec<&str> = ing
        .spec
        .tls
        .iter()
        .filter_map(|t| t.secret_name.as_deref())
        .collect();
    let redirect = if ann.ssl_redirect == Some(false) {
        ""
    } else {
        " and without the HTTP to HTTPS redirect"
    };
    diags.warn(
        object,
        format!(
            "TLS is not configured in this Remora (secrets: {}): its hosts are served over plain HTTP{redirect}",
            if secrets.is_empty() { "none".to_owned() } else { secrets.join(", ") }
        ),
    );
}
