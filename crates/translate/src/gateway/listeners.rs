//! The listeners of Remora's Gateways: which ports, protocols and host names they serve, the
//! certificate each HTTPS listener presents, and which routes may attach to them.

use super::refs::Grants;
use super::{age, ns_name};
use crate::objects::Objects;
use crate::tls::Certificates;
use crate::{Diagnostics, Options};
use gateway_api::experimental::gateways::{
    GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode,
};
use model::{HostMatch, ObjectRef};
use std::collections::{BTreeMap, BTreeSet};

/// The `controllerName` of the GatewayClasses Remora serves, unless `--gateway-controller-name`
/// says otherwise.
pub const DEFAULT_CONTROLLER_NAME: &str = "remora.dev/gateway-controller";

/// A label selector (`matchLabels` and `matchExpressions`).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub labels: BTreeMap<String, String>,
    /// Key, operator (`In`, `NotIn`, `Exists`, `DoesNotExist`), values.
    pub expressions: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.expressions.iter().all(|(k, op, values)| {
                let value = labels.get(k);
                match op.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // An operator the API server would have refused: selects nothing.
                    _ => false,
                }
            })
    }
}

/// Which namespaces' routes a listener takes (`allowedRoutes.namespaces`).
#[derive(Debug, Clone)]
pub enum AllowedNamespaces {
    Same,
    All,
    Selector(Selector),
}

/// One served listener of one of Remora's Gateways.
#[derive(Debug, Clone)]
pub struct GatewayListener {
    pub namespace: String,
    /// The Gateway's name.
    pub gateway_name: String,
    /// The listener's name (what a `sectionName` names).
    pub name: String,
    pub port: u16,
    pub tls: bool,
    /// `None`: any host.
    pub hostname: Option<HostMatch>,
    /// The certificate of an HTTPS listener (its first usable `certificateRefs` entry).
    pub certificate: Option<usize>,
    pub namespaces: AllowedNamespaces,
    /// Route kinds that may attach (`allowedRoutes.kinds`; by default HTTPRoute).
    pub kinds: Vec<String>,
}

const GROUP: &str = "gateway.networking.k8s.io";

/// The listeners of the Gateways of Remora's GatewayClasses, oldest Gateway first. A listener
/// Remora cannot serve (another protocol, a port taken by another protocol, a host name another
/// listener of the port has, an HTTPS listener without a usable certificate) is left out with a
/// warning.
pub fn collect(
    objects: &Objects,
    options: &Options,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> Vec<GatewayListener> {
    let classes: BTreeSet<&str> = objects
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == options.gateway_controller)
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let mut gateways: Vec<_> = objects
        .gateways
        .iter()
        .filter(|g| classes.contains(g.spec.gateway_class_name.as_str()))
        .collect();
    gateways.sort_by_key(|g| age(&g.metadata));
    // Per port: HTTPS or not, and the host names of its listeners so far.
    let mut ports: BTreeMap<u16, (bool, BTreeSet<Option<HostMatch>>)> = BTreeMap::new();
    let mut out = Vec::new();
    for gw in gateways {
        let (namespace, name) = ns_name(&gw.metadata);
        let object = ObjectRef::new("Gateway", namespace, name);
        for l in &gw.spec.listeners {
            let Some(listener) = listener(l, namespace, name, &object, grants, certificates, diags)
            else {
                continue;
            };
            let (tls, hosts) = ports
                .entry(listener.port)
                .or_insert_with(|| (listener.tls, BTreeSet::new()));
            if *tls != listener.tls {
                diags.warn(
                    &object,
                    format!(
                        "listener {}: port {} is served as {} by an older listener (ProtocolConflict): not served",
                        listener.name,
                        listener.port,
                        if *tls { "HTTPS" } else { "HTTP" }
                    ),
                );
                continue;
            }
            if !hosts.insert(listener.hostname.clone()) {
                diags.warn(
                    &object,
                    format!(
                        "listener {}: port {} with host name {} is served by an older listener (HostnameConflict): not served",
                        listener.name,
                        listener.port,
                        listener.hostname.as_ref().map_or("(any)".to_owned(), ToString::to_string)
                    ),
                );
                continue;
            }
            out.push(listener);
        }
    }
    out
}

/// One listener, if Remora can serve it.
fn listener(
    l: &GatewayListeners,
    namespace: &str,
    gateway_name: &str,
    object: &ObjectRef,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> Option<GatewayListener> {
    let tls = match l.protocol.as_str() {
        "HTTP" => false,
        "HTTPS" => true,
        other => {
            diags.warn(
                object,
                format!(
                    "listener {}: protocol {other} is not supported (UnsupportedProtocol; HTTP and HTTPS are): not served",
                    l.name
                ),
            );
            return None;
        }
    };
    let Some(port) = u16::try_from(l.port).ok().filter(|p| *p > 0) else {
        diags.warn(
            object,
            format!(
                "listener {}: port {} is not a port: not served",
                l.name, l.port
            ),
        );
        return None;
    };
    let hostname = match l.hostname.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(h) => match HostMatch::parse(h) {
            Ok(m) => Some(m),
            Err(why) => {
                diags.warn(
                    object,
                    format!("listener {}: hostname {h} {why}: not served", l.name),
                );
                return None;
            }
        },
    };
    let certificate = if tls {
        Some(certificate(
            l,
            namespace,
            object,
            grants,
            certificates,
            diags,
        )?)
    } else {
        None
    };
    let allowed = l.allowed_routes.as_ref();
    let namespaces = match allowed
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from.as_ref())
    {
        None | Some(GatewayListenersAllowedRoutesNamespacesFrom::Same) => AllowedNamespaces::Same,
        Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => AllowedNamespaces::All,
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector) => {
            let selector = allowed
                .and_then(|a| a.namespaces.as_ref())
                .and_then(|n| n.selector.as_ref());
            AllowedNamespaces::Selector(Selector {
                labels: selector
                    .and_then(|s| s.match_labels.clone())
                    .unwrap_or_default(),
                expressions: selector
                    .and_then(|s| s.match_expressions.as_ref())
                    .map(|e| {
                        e.iter()
                            .map(|e| {
                                (
                                    e.key.clone(),
                                    e.operator.clone(),
                                    e.values.clone().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        }
    };
    let mut kinds = Vec::new();
    match allowed.and_then(|a| a.kinds.as_ref()) {
        None => kinds.push("HTTPRoute".to_owned()),
        Some(list) => {
            for k in list {
                let group = k.group.as_deref().unwrap_or(GROUP);
                if group == GROUP && k.kind == "HTTPRoute" {
                    kinds.push(k.kind.clone());
                } else {
                    diags.warn(
                        object,
                        format!(
                            "listener {}: route kind {group}/{} is not supported (InvalidRouteKinds)",
                            l.name, k.kind
                        ),
                    );
                }
            }
        }
    }
    Some(GatewayListener {
        namespace: namespace.to_owned(),
        gateway_name: gateway_name.to_owned(),
        name: l.name.clone(),
        port,
        tls,
        hostname,
        certificate,
        namespaces,
        kinds,
    })
}

/// The certificate of an HTTPS listener: its first `certificateRefs` entry that is a usable
/// `kubernetes.io/tls` Secret this Gateway may reference. None: the listener is not served (an
/// HTTPS listener without its certificate would present the wrong one).
fn certificate(
    l: &GatewayListeners,
    namespace: &str,
    object: &ObjectRef,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> Option<usize> {
    let Some(tls) = &l.tls else {
        diags.warn(
            object,
            format!(
                "listener {}: HTTPS without tls.certificateRefs: not served",
                l.name
            ),
        );
        return None;
    };
    if matches!(tls.mode, Some(GatewayListenersTlsMode::Passthrough)) {
        diags.warn(
            object,
            format!(
                "listener {}: tls.mode Passthrough is not supported: not served",
                l.name
            ),
        );
        return None;
    }
    let refs = tls.certificate_refs.as_deref().unwrap_or_default();
    for r in refs {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        if !(group.is_empty() || group == "core") || kind != "Secret" {
            diags.warn(
                object,
                format!(
                    "listener {}: certificateRefs {group}/{kind} {} is not a Secret (InvalidCertificateRef)",
                    l.name, r.name
                ),
            );
            continue;
        }
        if !grants.allows((GROUP, "Gateway", namespace), ("", "Secret", ns, &r.name)) {
            diags.warn(
                object,
                format!(
                    "listener {}: Secret {ns}/{} is in another namespace and no ReferenceGrant allows it (RefNotPermitted)",
                    l.name, r.name
                ),
            );
            continue;
        }
        match certificates.load(ns, &r.name) {
            Ok(i) => return Some(i),
            Err(why) => diags.warn(
                object,
                format!("listener {}: {why} (InvalidCertificateRef)", l.name),
            ),
        }
    }
    diags.warn(
        object,
        format!("listener {}: no usable certificate: not served", l.name),
    );
    None
}
