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
pub mod status;

use crate::backends::Backends;
use crate::objects::Objects;
use crate::tls::Certificates;
use crate::{Diagnostics, Options};
use model::{Conditions, HostMatch, HostTls, Listener, ObjectRef, Route, VirtualHost};
use status::{GatewayApiStatus, Problem, RouteStatus};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

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

/// Translate the Gateway API objects: the listeners to serve, each with its hosts and routes, and
/// what the status of each object should say.
pub fn translate(
    objects: &Objects,
    options: &Options,
    backends: &mut Backends<'_>,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> (Vec<Listener>, GatewayApiStatus) {
    let grants = refs::Grants::new(objects);
    let mut status = GatewayApiStatus::default();
    let listeners = listeners::collect(objects, options, &grants, certificates, &mut status, diags);
    let served: Vec<(String, String)> = status
        .gateways
        .iter()
        .map(|g| (g.namespace.clone(), g.name.clone()))
        .collect();
    let gateways: BTreeSet<(&str, &str)> = served
        .iter()
        .map(|(ns, name)| (ns.as_str(), name.as_str()))
        .collect();
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
    let mut routes_status = Vec::new();
    let mut routes: Vec<_> = objects.http_routes.iter().collect();
    routes.sort_by_key(|r| age(&r.route.metadata));
    for route in routes {
        let (ns, name) = ns_name(&route.route.metadata);
        let object = ObjectRef::new(route.kind(), ns, name);
        let mut parents = Vec::new();
        let attachments = attach::attach(
            route,
            &object,
            &listeners,
            &gateways,
            &namespaces,
            &mut parents,
            diags,
        );
        if parents.is_empty() {
            continue;
        }
        let mut problems = rules::Problems::default();
        // Rules of a route attached nowhere are not translated (their Services would be read
        // for nothing); its status says why it is not attached.
        let built = if attachments.is_empty() {
            Vec::new()
        } else {
            rules::build(
                route,
                &object,
                options,
                &grants,
                backends,
                &mut problems,
                diags,
            )
        };
        for p in &mut parents {
            if p.accepted.is_none() {
                p.accepted = problems.accepted.clone();
            }
            p.resolved_refs = problems.resolved_refs.clone();
        }
        routes_status.push(RouteStatus {
            kind: route.kind().to_owned(),
            namespace: ns.to_owned(),
            name: name.to_owned(),
            generation: route.route.metadata.generation,
            parents,
        });
        for a in attachments {
            let listener = &listeners[a.listener];
            let (g, l) = listener.status;
            if let Some(ls) = status
                .gateways
                .get_mut(g)
                .and_then(|g| g.listeners.get_mut(l))
            {
                ls.attached_routes += 1;
            }
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
                    if let Some(p) = claim_cookie(&mut r, &host, entry, &object, diags) {
                        if let Some(rs) = routes_status.last_mut() {
                            for parent in &mut rs.parents {
                                parent.session_conflict.get_or_insert(p.clone());
                            }
                        }
                    }
                    entry.routes.push(r);
                }
            }
        }
    }
    status.routes = routes_status;
    let listeners = ports
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
                        client_auth: None,
                        client_auth_error: None,
                        passthrough: None,
                        ssl_ciphers: None,
                    }
                })
                .collect(),
        })
        .collect();
    (listeners, status)
}

/// One cookie name per host: a rule whose sessions would use a cookie another (older) rule of
/// the host already uses gets no session persistence, a warning, and the problem for its status.
fn claim_cookie(
    route: &mut Route,
    host: &HostMatch,
    entry: &mut HostEntry,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> Option<Problem> {
    let Some(a) = &route.target.affinity else {
        return None;
    };
    let name = match &a.header {
        Some(h) => format!("header {h}"),
        None => a.cookie_name.clone(),
    };
    match entry.cookies.get(&name) {
        Some(scope) if *scope != a.scope => {
            let message = format!(
                "session {name} on host {host} is already used by an older route's rule: this rule's sessions are not persistent (name it differently)"
            );
            diags.warn(object, format!("sessionPersistence: {message}"));
            route.target.affinity = None;
            Some(Problem::new("SessionNameConflict", message))
        }
        Some(_) => None,
        None => {
            entry.cookies.insert(name, a.scope);
            None
        }
    }
}
