//! The Gateway API into the same snapshot as Ingress: Remora's GatewayClasses, their Gateways'
//! listeners (one [`model::Listener`] per port), and the HTTPRoutes attached to them, as routes
//! of the listeners' virtual hosts.
//!
//! Modules: `listeners` (a Gateway's listeners, their certificates, conflicts and
//! `allowedRoutes`), `attach` (which listeners and host names a route's `parentRefs` reach),
//! `rules` (a rule's matches, filters and `backendRefs` into routes), `session`
//! (`sessionPersistence` into the route's [`model::Affinity`]), `refs` (ReferenceGrants).
//!
//! Routes are taken oldest first (then by namespace and name), so when two rules are equally
//! specific the older route's wins, as the Gateway API's precedence says; within a host, routes are
//! then ordered by that precedence: Exact path, longest prefix, method, most headers, most query
//! parameters.

mod attach;
mod listeners;
mod refs;
mod rules;
mod session;

use crate::backends::Backends;
use crate::objects::Objects;
use crate::tls::Certificates;
use crate::{Diagnostics, Options};
use model::{Conditions, HostMatch, HostTls, Listener, ObjectRef, Route, VirtualHost};
use std::cmp::Reverse;
use std::collections::BTreeMap;

pub use listeners::DEFAULT_CONTROLLER_NAME;

/// The timestamp and name an object is ordered by (older first).
fn age(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, String, String) {
    (
        meta.creation_timestamp
            .as_ref()
            .map(|t| t.0.to_rfc3339())
            .unwrap_or_default(),
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// An object's namespace (`default` when left out, as `kubectl apply` would) and name.
fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("default"),
        meta.name.as_deref().unwrap_or(""),
    )
}

/// The virtual hosts of one port under construction.
#[derive(Default)]
struct Port {
    tls: bool,
    hosts: BTreeMap<HostMatch, HostEntry>,
}

#[derive(Default)]
struct HostEntry {
    routes: Vec<Route>,
    tls: Option<HostTls>,
    /// Cookie names of sessions on this host, and the rule (scope) that has each.
    cookies: BTreeMap<String, u64>,
}

/// Translate the Gateway API objects: the listeners to serve, each with its hosts and routes.
pub fn translate(
    objects: &Objects,
    options: &Options,
    backends: &mut Backends<'_>,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> Vec<Listener> {
    let grants = refs::Grants::new(objects);
    let listeners = listeners::collect(objects, options, &grants, certificates, diags);
    let mut ports: BTreeMap<u16, Port> = BTreeMap::new();
    for l in &listeners {
        let port = ports.entry(l.port).or_default();
        port.tls = l.tls;
        // An HTTPS listener presents its certificate for its host name even before a route
        // attaches (the requests then get 404).
        if let Some(cert) = l.certificate {
            let host = l.hostname.clone().unwrap_or(HostMatch::Any);
            let entry = port.hosts.entry(host).or_default();
            entry.tls.get_or_insert(HostTls::Certificate(cert));
        }
    }
    let namespaces = attach::NamespaceLabels::new(objects);
    let mut routes: Vec<_> = objects.http_routes.iter().collect();
    routes.sort_by_key(|r| age(&r.route.metadata));
    for route in routes {
        let (ns, name) = ns_name(&route.route.metadata);
        let object = ObjectRef::new("HTTPRoute", ns, name);
        let attachments = attach::attach(route, &object, &listeners, &namespaces, diags);
        if attachments.is_empty() {
            continue;
        }
        let built = rules::build(route, &object, options, &grants, backends, diags);
        for a in attachments {
            let listener = &listeners[a.listener];
            let Some(port) = ports.get_mut(&listener.port) else {
                continue;
            };
            for host in a.hosts {
                let entry = port.hosts.entry(host.clone()).or_default();
                if entry.tls.is_none() {
                    entry.tls = listener.certificate.map(HostTls::Certificate);
                }
                for r in &built {
                    let mut r = r.clone();
                    claim_cookie(&mut r, &host, entry, &object, diags);
                    entry.routes.push(r);
                }
            }
        }
    }
    ports
        .into_iter()
        .map(|(port, p)| Listener {
            port,
            tls: p.tls,
            hosts: p
                .hosts
                .into_iter()
                .map(|(host, mut e)| {
                    // Stable: equally specific routes keep the order of their routes' age.
                    e.routes.sort_by_key(|r| {
                        let (method, headers, query) =
                            Conditions::precedence(r.conditions.as_deref());
                        (
                            r.path_type,
                            Reverse(r.path.len()),
                            Reverse(method),
                            Reverse(headers),
                            Reverse(query),
                        )
                    });
                    VirtualHost {
                        host,
                        routes: e.routes,
                        default: None,
                        tls: e.tls,
                    }
                })
                .collect(),
        })
        .collect()
}

/// One cookie name per host: a rule whose sessions would use a cookie another (older) rule of
/// the host already uses gets no session persistence, and a warning.
fn claim_cookie(
    route: &mut Route,
    host: &HostMatch,
    entry: &mut HostEntry,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) {
    let Some(a) = &route.target.affinity else {
        return;
    };
    let name = match &a.header {
        Some(h) => format!("header {h}"),
        None => a.cookie_name.clone(),
    };
    match entry.cookies.get(&name) {
        Some(scope) if *scope != a.scope => {
            diags.warn(
                object,
                format!(
                    "sessionPersistence: session {name} on host {host} is already used by an older route's rule: this rule's sessions are not persistent (name it differently)"
                ),
            );
            route.target.affinity = None;
        }
        Some(_) => {}
        None => {
            entry.cookies.insert(name, a.scope);
        }
    }
}
