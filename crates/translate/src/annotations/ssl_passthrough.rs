//! `ssl-passthrough`: the TLS connections whose SNI names one of the Ingress's hosts are relayed
//! to the pods as they are (ingress-nginx's TCP proxy in front of nginx), only when Remora runs
//! with `--enable-ssl-passthrough`, as ingress-nginx needs its flag of that name. Which backend a
//! host's connections go to is the host's business (`ingress.rs`).

use super::{Reader, PREFIX, REMORA_PREFIX};

const NAME: &str = "ssl-passthrough";

/// Whether the Ingress's hosts are passthrough hosts: the annotation is `"true"` and the flag is
/// given. Without the flag, a warning that says to pass it (the annotation does nothing, as in
/// ingress-nginx, but silently ignoring it would surprise whoever moves a cluster over). With
/// it, an info line names the Ingress's other annotations, which apply to plain HTTP requests
/// only (ingress-nginx: passthrough "invalidates all the other annotations").
pub fn parse(r: &mut Reader<'_>) -> bool {
    // A canary Ingress makes no host of its own (ingress-nginx skips canaries when it marks
    // passthrough servers): only its split annotations count, quietly as for the others.
    if r.bool(NAME) != Some(true) || r.peek_bool("canary") == Some(true) {
        return false;
    }
    if !r.options.enable_ssl_passthrough {
        r.warn(
            NAME,
            "has no effect: Remora runs without --enable-ssl-passthrough (as ingress-nginx needs \
             its flag of that name); pass it to relay this Ingress's TLS connections to its pods",
        );
        return false;
    }
    let full = format!("{PREFIX}{NAME}");
    let annotations = r.annotations;
    let others: Vec<&str> = annotations
        .keys()
        .filter(|k| **k != full && (k.starts_with(PREFIX) || k.starts_with(REMORA_PREFIX)))
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        r.info(
            NAME,
            format!(
                "the TLS connections of its hosts are relayed to the pods as they are: over HTTPS \
                 these annotations do not apply (over plain HTTP they do): {}",
                others.join(", ")
            ),
        );
    }
    true
}
