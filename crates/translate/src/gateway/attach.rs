//! Which listeners a route attaches to, and under which host names: its `parentRefs` (Gateway,
//! `sectionName`, `port`), each listener's `allowedRoutes`, and the intersection of the route's
//! `hostnames` with the listener's `hostname`.

use super::listeners::{AllowedNamespaces, GatewayListener};
use super::ns_name;
use super::status::{ParentStatus, Problem};
use crate::objects::{HttpRoute, Objects};
use crate::Diagnostics;
use model::{HostMatch, ObjectRef};
use std::collections::{BTreeMap, BTreeSet};

const GROUP: &str = "gateway.networking.k8s.io";

/// The label every namespace has, with its own name (set by Kubernetes itself).
const NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// The labels of each namespace, from the Namespace objects.
pub struct NamespaceLabels(BTreeMap<String, BTreeMap<String, String>>);

impl NamespaceLabels {
    pub fn new(objects: &Objects) -> Self {
        Self(
            objects
                .namespaces
                .iter()
                .map(|n| (n.metadata.name.clone(), n.metadata.labels.clone()))
                .collect(),
        )
    }

    /// A namespace's labels, with the name label Kubernetes sets on every namespace (also for a
    /// namespace no manifest declares).
    fn labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self.0.get(namespace).cloned().unwrap_or_default();
        labels.insert(NAME_LABEL.to_owned(), namespace.to_owned());
        labels
    }
}

/// A listener a route attaches to, and the host names it serves the route's rules under.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// Index into the listeners.
    pub listener: usize,
    pub hosts: Vec<HostMatch>,
}

/// The listeners `route` attaches to. A parent reference to a Gateway that is not Remora's is
/// left alone (another controller serves it); one to Remora's Gateway that no listener accepts
/// gets a warning with the Gateway API's reason.
pub fn attach(
    route: &HttpRoute,
    object: &ObjectRef,
    listeners: &[GatewayListener],
    gateways: &BTreeSet<(&str, &str)>,
    namespaces: &NamespaceLabels,
    parents: &mut Vec<ParentStatus>,
    diags: &mut Diagnostics,
) -> Vec<Attachment> {
    let (route_ns, _) = ns_name(&route.route.metadata);
    let mut hostnames = Vec::new();
    for h in route.route.spec.hostnames.as_deref().unwrap_or_default() {
        match HostMatch::parse(h.trim()) {
            Ok(m) => hostnames.push(m),
            Err(why) => diags.warn(object, format!("hostname {h} {why}: left out")),
        }
    }
    let mut out: Vec<Attachment> = Vec::new();
    for (i, parent) in route
        .route
        .spec
        .parent_refs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let group = parent.group.as_deref().unwrap_or(GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        if group != GROUP || kind != "Gateway" {
            continue;
        }
        let gw_ns = parent.namespace.as_deref().unwrap_or(route_ns);
        if !gateways.contains(&(gw_ns, parent.name.as_str())) {
            // Not Remora's: another controller reports on it.
            continue;
        }
        let mut status = ParentStatus {
            gateway_namespace: gw_ns.to_owned(),
            gateway_name: parent.name.clone(),
            section_name: parent.section_name.clone(),
            port: parent.port,
            accepted: None,
            resolved_refs: None,
            session_conflict: None,
        };
        let of_gateway: Vec<usize> = listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.namespace == gw_ns && l.gateway_name == parent.name)
            .map(|(i, _)| i)
            .collect();
        let candidates: Vec<usize> = of_gateway
            .into_iter()
            .filter(|&li| {
                let l = &listeners[li];
                parent.section_name.as_deref().is_none_or(|s| s == l.name)
                    && parent
                        .port
                        .is_none_or(|p| i64::from(p) == i64::from(l.port))
            })
            .collect();
        let parent_label = format!("parentRefs[{i}] (Gateway {gw_ns}/{})", parent.name);
        // Not attached to this parent: the warning, and the reason in its status.
        let refuse = |status: &mut ParentStatus, diags: &mut Diagnostics, p: Problem| {
            diags.warn(
                object,
                format!("{parent_label}: {} ({}): not attached", p.message, p.reason),
            );
            status.accepted = Some(p);
        };
        if candidates.is_empty() {
            let p = Problem::new(
                "NoMatchingParent",
                "no served listener with that sectionName or port",
            );
            refuse(&mut status, diags, p);
            parents.push(status);
            continue;
        }
        let allowed: Vec<usize> = candidates
            .into_iter()
            .filter(|&li| allows(&listeners[li], route.kind(), route_ns, namespaces))
            .collect();
        if allowed.is_empty() {
            let p = Problem::new(
                "NotAllowedByListeners",
                format!(
                    "no listener allows {}s of namespace {route_ns}",
                    route.kind()
                ),
            );
            diags.warn(
                object,
                format!("{parent_label}: {} ({}): not attached", p.message, p.reason),
            );
            status.accepted = Some(p);
            parents.push(status);
            continue;
        }
        let mut attached = false;
        for li in allowed {
            let hosts = intersect(listeners[li].hostname.as_ref(), &hostnames);
            if hosts.is_empty() {
                continue;
            }
            attached = true;
            match out.iter_mut().find(|a| a.listener == li) {
                Some(a) => {
                    for h in hosts {
                        if !a.hosts.contains(&h) {
                            a.hosts.push(h);
                        }
                    }
                }
                None => out.push(Attachment {
                    listener: li,
                    hosts,
                }),
            }
        }
        if !attached {
            let p = Problem::new(
                "NoMatchingListenerHostname",
                "none of the route's hostnames is one a listener serves",
            );
            refuse(&mut status, diags, p);
        }
        parents.push(status);
    }
    out
}

/// Does a listener take routes of this kind and namespace?
fn allows(l: &GatewayListener, kind: &str, route_ns: &str, namespaces: &NamespaceLabels) -> bool {
    l.kinds.iter().any(|k| k == kind)
        && match &l.namespaces {
            AllowedNamespaces::Same => l.namespace == route_ns,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector(s) => s.matches(&namespaces.labels(route_ns)),
        }
}

/// The host names a route's rules are served under on a listener: the route's names that the
/// listener's name covers (a wildcard covers any number of labels in the Gateway API), the
/// listener's name where a route wildcard covers it, any host when neither has names.
pub fn intersect(listener: Option<&HostMatch>, route: &[HostMatch]) -> Vec<HostMatch> {
    let Some(l) = listener else {
        return if route.is_empty() {
            vec![HostMatch::Any]
        } else {
            route.to_vec()
        };
    };
    if route.is_empty() {
        return vec![l.clone()];
    }
    let mut out = Vec::new();
    for r in route {
        let hit = match (r, l) {
            _ if r == l => Some(r.clone()),
            (HostMatch::Exact(h), HostMatch::Wildcard(s))
                if h.len() > s.len() && h.ends_with(s.as_str()) =>
            {
                Some(r.clone())
            }
            (HostMatch::Wildcard(s), HostMatch::Exact(h))
                if h.len() > s.len() && h.ends_with(s.as_str()) =>
            {
                Some(l.clone())
            }
            (HostMatch::Wildcard(rs), HostMatch::Wildcard(ls)) if rs.ends_with(ls.as_str()) => {
                Some(r.clone())
            }
            (HostMatch::Wildcard(rs), HostMatch::Wildcard(ls)) if ls.ends_with(rs.as_str()) => {
                Some(l.clone())
            }
            _ => None,
        };
        if let Some(h) = hit {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostMatch {
        HostMatch::parse(s).unwrap_or(HostMatch::Any)
    }

    #[test]
    fn hostnames_intersect_as_the_gateway_api_says() {
        let any = intersect(None, &[]);
        assert_eq!(any, vec![HostMatch::Any]);
        assert_eq!(
            intersect(Some(&h("a.example.com")), &[]),
            vec![h("a.example.com")]
        );
        assert_eq!(
            intersect(
                Some(&h("*.example.com")),
                &[h("a.b.example.com"), h("example.com"), h("x.org")]
            ),
            vec![h("a.b.example.com")]
        );
        assert_eq!(
            intersect(Some(&h("a.example.com")), &[h("*.example.com")]),
            vec![h("a.example.com")]
        );
        assert_eq!(
            intersect(Some(&h("*.example.com")), &[h("*.foo.example.com")]),
            vec![h("*.foo.example.com")]
        );
        assert_eq!(
            intersect(Some(&h("*.foo.example.com")), &[h("*.example.com")]),
            vec![h("*.foo.example.com")]
        );
        assert!(intersect(Some(&h("a.example.com")), &[h("b.example.com")]).is_empty());
    }
}
