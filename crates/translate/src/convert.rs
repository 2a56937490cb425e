//! Ingresses into Gateway API objects (`remora convert`): the road off ingress-nginx that keeps
//! sessions sticky. Pure, like translation: the served Ingresses in, manifest documents out, each
//! with the notes a reader needs (what was approximated, what was left out).
//!
//! Per namespace with Ingresses, one Gateway (listener `http` on 80; one `https-N` on 443 per TLS
//! host, with its Secret); per Ingress and host, one HTTPRoute whose rules are its paths:
//! - `Exact` paths stay `Exact`, `Prefix` and `ImplementationSpecific` become `PathPrefix`, paths
//!   of `use-regex` Ingresses `RegularExpression` (noted: nginx matches them case-insensitively,
//!   from the start only);
//! - cookie `affinity` becomes `sessionPersistence`: `session-cookie-name` (ingress-nginx's
//!   default `INGRESSCOOKIE`) the `sessionName`, `session-cookie-max-age` (else `-expires`) the
//!   `absoluteTimeout` of a `Permanent` cookie; without them a `Session` cookie;
//! - a `canary-weight` canary becomes a second `backendRef` of the primary's rule, the weights
//!   splitting as the annotations did; other canaries are noted;
//! - a TLS host that `ssl-redirect` (or `force-ssl-redirect`) sends to HTTPS gets its routes on
//!   the HTTPS listener and a route on `http` that answers 308 to `https`, as ingress-nginx does.
//!
//! Every other annotation of the Ingress is named in a note: the Gateway API has no field for it
//! (or Remora does not convert it yet).

use crate::annotations::{self, IngressAnnotations};
use crate::objects::{Ingress, IngressBackend, IntOrString, Objects};
use crate::{class, configmap, Diagnostics, Options};
use model::{ObjectRef, PathType};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// The annotations whose meaning the converted objects carry.
const CONVERTED: &[&str] = &[
    "affinity",
    "affinity-mode",
    "session-cookie-name",
    "session-cookie-max-age",
    "session-cookie-expires",
    "ssl-redirect",
    "force-ssl-redirect",
    "canary",
    "canary-weight",
    "canary-weight-total",
    "use-regex",
];

/// One manifest document and the notes to print above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub notes: Vec<String>,
    pub object: Value,
}

/// The Gateway API objects that serve what the Ingresses of `objects` serve. `gateway_name`:
/// the name of the Gateway made in each namespace; `class`: its GatewayClass (made too, for
/// `controller`).
pub fn to_gateway_api(
    objects: &Objects,
    options: &Options,
    gateway_name: &str,
    class: &str,
    controller: &str,
) -> Vec<Document> {
    let mut diags = Diagnostics::default();
    let lookups = crate::lookup::Lookups::new(objects);
    let defaults = configmap::read(&lookups, options, &mut diags);
    let served = class::served_ingresses(objects, options, &mut diags);
    let mut out = vec![Document {
        notes: vec![format!(
            "The class of the Gateways below: Remora serves it (--gateway-controller-name {controller})."
        )],
        object: json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": class},
            "spec": {"controllerName": controller},
        }),
    }];
    // Per namespace: TLS hosts and their Secret (the first Ingress listing a host wins).
    let mut tls: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut parsed = Vec::new();
    for ing in &served {
        let ns = ing.metadata.namespace().to_owned();
        let object = ObjectRef::new("Ingress", &ns, &ing.metadata.name);
        let ann = annotations::parse(
            &ing.metadata.annotations,
            &object,
            options,
            &lookups,
            &defaults,
            &mut diags,
        );
        for t in &ing.spec.tls {
            if let Some(secret) = t.secret_name.as_deref().filter(|s| !s.is_empty()) {
                for h in &t.hosts {
                    tls.entry(ns.clone())
                        .or_default()
                        .entry(h.to_ascii_lowercase())
                        .or_insert_with(|| secret.to_owned());
                }
            }
        }
        parsed.push((*ing, ann));
    }
    let namespaces: BTreeSet<String> = served
        .iter()
        .map(|i| i.metadata.namespace().to_owned())
        .collect();
    for ns in &namespaces {
        let mut listeners = vec![json!({"name": "http", "protocol": "HTTP", "port": 80})];
        for (i, (host, secret)) in tls.get(ns).into_iter().flatten().enumerate() {
            listeners.push(json!({
                "name": format!("https-{i}"),
                "protocol": "HTTPS",
                "port": 443,
                "hostname": host,
                "tls": {"certificateRefs": [{"name": secret}]},
            }));
        }
        out.push(Document {
            notes: Vec::new(),
            object: json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "Gateway",
                "metadata": {"name": gateway_name, "namespace": ns},
                "spec": {"gatewayClassName": class, "listeners": listeners},
            }),
        });
    }
    // Canaries by (namespace, host, path): the backend and weight they add.
    let mut canaries: BTreeMap<(String, String, String), (Value, u32, u32)> = BTreeMap::new();
    for (ing, ann) in &parsed {
        let Some(c) = &ann.canary else { continue };
        if c.header.is_some() || c.cookie.is_some() {
            out[0].notes.push(format!(
                "Ingress {}/{}: a canary by header or cookie is not converted (an HTTPRoute rule with a header match does it: add one by hand)",
                ing.metadata.namespace(),
                ing.metadata.name
            ));
        }
        if c.weight == 0 {
            continue;
        }
        for (host, path, backend) in paths(ing) {
            if let Ok(b) = backend_ref(ing, objects, backend) {
                canaries.insert(
                    (ing.metadata.namespace().to_owned(), host, path),
                    (b, c.weight, c.weight_total.max(1)),
                );
            }
        }
    }
    for (ing, ann) in &parsed {
        if ann.canary.is_none() {
            out.extend(routes(
                ing,
                ann,
                objects,
                gateway_name,
                tls.get(ing.metadata.namespace()),
                (defaults.ssl_redirect, defaults.force_ssl_redirect),
                &canaries,
            ));
        }
    }
    out
}

/// Every path of an Ingress: (host or `""`, path, backend).
fn paths(ing: &Ingress) -> Vec<(String, String, &IngressBackend)> {
    let mut out = Vec::new();
    for rule in &ing.spec.rules {
        let host = rule.host.clone().unwrap_or_default().to_ascii_lowercase();
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
            out.push((host.clone(), path, &p.backend));
        }
    }
    out
}

/// An Ingress backend as a `backendRef`: the Service and its port number (a named port is looked
/// up in the Service), or why not.
fn backend_ref(ing: &Ingress, objects: &Objects, b: &IngressBackend) -> Result<Value, String> {
    let ns = ing.metadata.namespace();
    let (name, port) = match (&b.service, &b.service_name) {
        (Some(s), _) => (
            s.name.as_str(),
            s.port.as_ref().and_then(|p| match (&p.number, &p.name) {
                (Some(n), _) => Some(IntOrString::Int(*n)),
                (None, Some(n)) => Some(IntOrString::String(n.clone())),
                _ => None,
            }),
        ),
        (None, Some(n)) => (n.as_str(), b.service_port.clone()),
        (None, None) => {
            return Err("a resource backend, which the Gateway API has no form of".to_owned())
        }
    };
    let number = match port {
        Some(IntOrString::Int(n)) => n,
        Some(IntOrString::String(named)) => objects
            .services
            .iter()
            .find(|s| s.metadata.namespace() == ns && s.metadata.name == name)
            .and_then(|s| {
                s.spec
                    .ports
                    .iter()
                    .find(|p| p.name.as_deref() == Some(&named))
            })
            .map(|p| p.port)
            .ok_or_else(|| {
                format!("Service {name} port \"{named}\" is not in the manifests: write its number")
            })?,
        None => return Err(format!("Service {name} without port")),
    };
    Ok(json!({"name": name, "port": number}))
}

/// The HTTPRoutes of one (primary) Ingress: one per host, and the redirect routes of its TLS
/// hosts.
fn routes(
    ing: &Ingress,
    ann: &IngressAnnotations,
    objects: &Objects,
    gateway: &str,
    tls: Option<&BTreeMap<String, String>>,
    (ssl_default, force_default): (bool, bool),
    canaries: &BTreeMap<(String, String, String), (Value, u32, u32)>,
) -> Vec<Document> {
    let ns = ing.metadata.namespace();
    let mut notes = Vec::new();
    for key in ing.metadata.annotations.keys() {
        if let Some(name) = key.strip_prefix(PREFIX) {
            if !CONVERTED.contains(&name) {
                notes.push(format!("{key} is not converted: the Gateway API has no field for it here; review by hand"));
            }
        }
    }
    if let Some(a) = &ann.affinity {
        if a.mode == model::AffinityMode::Persistent {
            notes.push("affinity-mode persistent: sessionPersistence has no mode; Remora places new sessions balanced (existing ones stay while their pod lives)".to_owned());
        }
    }
    let mut by_host: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (host, path, backend) in paths(ing) {
        let path_type = ing
            .spec
            .rules
            .iter()
            .filter(|r| r.host.as_deref().unwrap_or("").eq_ignore_ascii_case(&host))
            .flat_map(|r| r.http.iter().flat_map(|h| &h.paths))
            .find(|p| p.path.as_deref().unwrap_or("/") == path)
            .and_then(|p| p.path_type.clone());
        let (kind, value) = if ann.use_regex {
            notes.push(format!("path {path}: a use-regex path becomes a RegularExpression match of {path}.* (the whole path); it is case-sensitive where nginx's is not"));
            (PathType::RegularExpression, format!("{path}.*"))
        } else if path_type.as_deref() == Some("Exact") {
            (PathType::Exact, path.clone())
        } else {
            (PathType::Prefix, path.clone())
        };
        let mut rule = json!({
            "matches": [{"path": {
                "type": match kind { PathType::Exact => "Exact", PathType::Prefix => "PathPrefix", _ => "RegularExpression" },
                "value": value,
            }}],
        });
        match backend_ref(ing, objects, backend) {
            Ok(mut b) => {
                let mut refs = Vec::new();
                if let Some((c, w, total)) =
                    canaries.get(&(ns.to_owned(), host.clone(), path.clone()))
                {
                    let w = (*w).min(*total);
                    b["weight"] = json!(total - w);
                    let mut c = c.clone();
                    c["weight"] = json!(w);
                    refs.push(b);
                    refs.push(c);
                } else {
                    refs.push(b);
                }
                rule["backendRefs"] = json!(refs);
            }
            Err(why) => notes.push(format!("path {path}: {why}")),
        }
        if let Some(a) = &ann.affinity {
            let mut sp = json!({"sessionName": a.cookie_name, "type": "Cookie"});
            match a.max_age.or(a.expires) {
                Some(secs) => {
                    sp["absoluteTimeout"] = json!(duration(secs));
                    sp["cookieConfig"] = json!({"lifetimeType": "Permanent"});
                }
                None => sp["cookieConfig"] = json!({"lifetimeType": "Session"}),
            }
            rule["sessionPersistence"] = sp;
        }
        by_host.entry(host).or_default().push(rule);
    }
    let redirect = ann.ssl.redirect.unwrap_or(ssl_default);
    let force = ann.ssl.force.unwrap_or(force_default);
    let single = by_host.len() == 1;
    let mut out = Vec::new();
    for (host, rules) in by_host {
        let name = if single || host.is_empty() {
            ing.metadata.name.clone()
        } else {
            format!(
                "{}-{}",
                ing.metadata.name,
                host.replace(['.', '*'], "-").trim_matches('-')
            )
        };
        let https = tls.and_then(|t| {
            t.keys()
                .position(|h| *h == host)
                .map(|i| format!("https-{i}"))
        });
        let to_https = (redirect && https.is_some()) || force;
        let mut parents = Vec::new();
        if !to_https {
            parents.push(json!({"name": gateway, "sectionName": "http"}));
        }
        if let Some(s) = &https {
            parents.push(json!({"name": gateway, "sectionName": s}));
        }
        let hostnames: Vec<&str> = if host.is_empty() {
            Vec::new()
        } else {
            vec![host.as_str()]
        };
        let mut spec = json!({"parentRefs": parents, "rules": rules});
        if !hostnames.is_empty() {
            spec["hostnames"] = json!(hostnames);
        }
        out.push(Document {
            notes: std::mem::take(&mut notes),
            object: json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": ns},
                "spec": spec,
            }),
        });
        if to_https {
            let mut spec = json!({
                "parentRefs": [{"name": gateway, "sectionName": "http"}],
                "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 308}}]}],
            });
            if !hostnames.is_empty() {
                spec["hostnames"] = json!(hostnames);
            }
            out.push(Document {
                notes: vec![format!("ssl-redirect: plain HTTP requests for {} get a 308 to HTTPS, as ingress-nginx answers them", if host.is_empty() { "any host" } else { host.as_str() })],
                object: json!({
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "HTTPRoute",
                    "metadata": {"name": format!("{name}-https-redirect"), "namespace": ns},
                    "spec": spec,
                }),
            });
        }
    }
    out
}

/// Seconds as a Gateway API duration (GEP-2257: at most five digits per unit): `48h`, `1h1m1s`.
fn duration(secs: u64) -> String {
    let (h, m, s) = ((secs / 3600).min(99_999), secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_are_gateway_api_durations() {
        assert_eq!(duration(172_800), "48h");
        assert_eq!(duration(3661), "1h1m1s");
        assert_eq!(duration(90), "1m30s");
        assert_eq!(duration(0), "0s");
        for d in [172_800, 3661, 90, u64::MAX] {
            assert!(duration(d).parse::<gateway_api::Duration>().is_ok(), "{d}");
        }
    }
}
