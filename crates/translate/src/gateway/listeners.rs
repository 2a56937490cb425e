//! The listeners of Remora's Gateways: which ports, protocols and host names they serve, the
//! certificate each HTTPS listener presents, and which routes may attach to them.

use super::refs::Grants;
use super::status::{ClassStatus, GatewayApiStatus, GatewayStatus, ListenerStatus, Problem};
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
    /// Route kinds that may attach (`allowedRoutes.kinds`; by default HTTPRoute and GRPCRoute).
    pub kinds: Vec<String>,
    /// Its status: index of the Gateway, and of the listener in it.
    pub status: (usize, usize),
}

const GROUP: &str = "gateway.networking.k8s.io";

/// The listeners of the Gateways of Remora's GatewayClasses, oldest Gateway first, and the
/// status of those classes and Gateways. A listener Remora cannot serve (another protocol, a port
/// taken by another protocol, a host name another listener of the port has, an HTTPS listener
/// without a usable certificate) is left out with a warning and its status says why.
pub fn collect(
    objects: &Objects,
    options: &Options,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    status: &mut GatewayApiStatus,
    diags: &mut Diagnostics,
) -> Vec<GatewayListener> {
    let classes: BTreeSet<&str> = objects
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == options.gateway_controller)
        .filter_map(|c| {
            let name = c.metadata.name.as_deref()?;
            status.classes.push(ClassStatus {
                name: name.to_owned(),
                generation: c.metadata.generation,
            });
            Some(name)
        })
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
        let mut gs = GatewayStatus {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            generation: gw.metadata.generation,
            listeners: Vec::new(),
        };
        for l in &gw.spec.listeners {
            let mut ls = ListenerStatus {
                name: l.name.clone(),
                port: l.port,
                served: false,
                attached_routes: 0,
                supported_kinds: Vec::new(),
                accepted: None,
                resolved_refs: None,
                conflicted: None,
            };
            let warn = |diags: &mut Diagnostics, p: &Problem| {
                diags.warn(
                    &object,
                    format!(
                        "listener {}: {} ({}): not served",
                        l.name, p.message, p.reason
                    ),
                );
            };
            let mut listener = match listener(
                l,
                namespace,
                name,
                &object,
                grants,
                certificates,
                &mut ls,
                diags,
            ) {
                Ok(listener) => listener,
                Err(Failure::Accepted(p)) => {
                    warn(diags, &p);
                    ls.accepted = Some(p);
                    gs.listeners.push(ls);
                    continue;
                }
                Err(Failure::ResolvedRefs(p)) => {
                    warn(diags, &p);
                    ls.resolved_refs = Some(p);
                    gs.listeners.push(ls);
                    continue;
                }
            };
            let (tls, hosts) = ports
                .entry(listener.port)
                .or_insert_with(|| (listener.tls, BTreeSet::new()));
            let conflict = if *tls != listener.tls {
                Some(Problem::new(
                    "ProtocolConflict",
                    format!(
                        "port {} is served as {} by an older listener",
                        listener.port,
                        if *tls { "HTTPS" } else { "HTTP" }
                    ),
                ))
            } else if !hosts.insert(listener.hostname.clone()) {
                Some(Problem::new(
                    "HostnameConflict",
                    format!(
                        "port {} with host name {} is served by an older listener",
                        listener.port,
                        listener
                            .hostname
                            .as_ref()
                            .map_or("(any)".to_owned(), ToString::to_string)
                    ),
                ))
            } else {
                None
            };
            if let Some(p) = conflict {
                warn(diags, &p);
                ls.conflicted = Some(p);
                gs.listeners.push(ls);
                continue;
            }
            ls.served = true;
            listener.status = (status.gateways.len(), gs.listeners.len());
            gs.listeners.push(ls);
            out.push(listener);
        }
        status.gateways.push(gs);
    }
    out
}

/// Why a listener is not served, by the condition that says so.
enum Failure {
    Accepted(Problem),
    ResolvedRefs(Problem),
}

/// One listener, if Remora can serve it; its supported kinds (and a problem with them) go to
/// `ls`.
#[allow(clippy::too_many_arguments)]
fn listener(
    l: &GatewayListeners,
    namespace: &str,
    gateway_name: &str,
    object: &ObjectRef,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    ls: &mut ListenerStatus,
    diags: &mut Diagnostics,
) -> Result<GatewayListener, Failure> {
    let tls = match l.protocol.as_str() {
        "HTTP" => false,
        "HTTPS" => true,
        other => {
            return Err(Failure::Accepted(Problem::new(
                "UnsupportedProtocol",
                format!("protocol {other} is not supported, only HTTP and HTTPS"),
            )));
        }
    };
    let Some(port) = u16::try_from(l.port).ok().filter(|p| *p > 0) else {
        return Err(Failure::Accepted(Problem::new(
            "PortUnavailable",
            format!("port {} is not a port", l.port),
        )));
    };
    let hostname = match l.hostname.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(h) => match HostMatch::parse(h) {
            Ok(m) => Some(m),
            Err(why) => {
                return Err(Failure::Accepted(Problem::new(
                    "UnsupportedValue",
                    format!("hostname {h} {why}"),
                )));
            }
        },
    };
    let certificate = if tls {
        Some(
            certificate(l, namespace, object, grants, certificates, diags)
                .map_err(Failure::ResolvedRefs)?,
        )
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
        None => kinds.extend(["HTTPRoute".to_owned(), "GRPCRoute".to_owned()]),
        Some(list) => {
            for k in list {
                let group = k.group.as_deref().unwrap_or(GROUP);
                if group == GROUP && (k.kind == "HTTPRoute" || k.kind == "GRPCRoute") {
                    kinds.push(k.kind.clone());
                } else {
                    let p = Problem::new(
                        "InvalidRouteKinds",
                        format!("route kind {group}/{} is not supported", k.kind),
                    );
                    diags.warn(
                        object,
                        format!("listener {}: {} (InvalidRouteKinds)", l.name, p.message),
                    );
                    ls.resolved_refs.get_or_insert(p);
                }
            }
        }
    }
    ls.supported_kinds = kinds.clone();
    Ok(GatewayListener {
        namespace: namespace.to_owned(),
        gateway_name: gateway_name.to_owned(),
        name: l.name.clone(),
        port,
        tls,
        hostname,
        certificate,
        namespaces,
        kinds,
        status: (0, 0),
    })
}

/// The certificate of an HTTPS listener: its first `certificateRefs` entry that is a usable
/// `kubernetes.io/tls` Secret this Gateway may reference. Else why not: the listener is not served
/// (an HTTPS listener without its certificate would present the wrong one).
fn certificate(
    l: &GatewayListeners,
    namespace: &str,
    object: &ObjectRef,
    grants: &Grants,
    certificates: &mut Certificates<'_>,
    diags: &mut Diagnostics,
) -> Result<usize, Problem> {
    let Some(tls) = &l.tls else {
        return Err(Problem::new(
            "InvalidCertificateRef",
            "HTTPS without tls.certificateRefs",
        ));
    };
    if matches!(tls.mode, Some(GatewayListenersTlsMode::Passthrough)) {
        return Err(Problem::new(
            "UnsupportedValue",
            "tls.mode Passthrough is not supported",
        ));
    }
    let mut first: Option<Problem> = None;
    for r in tls.certificate_refs.as_deref().unwrap_or_default() {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        let ns = r.namespace.as_deref().unwrap_or(namespace);
        let problem = if !(group.is_empty() || group == "core") || kind != "Secret" {
            Problem::new(
                "InvalidCertificateRef",
                format!("certificateRefs {group}/{kind} {} is not a Secret", r.name),
            )
        } else if !grants.allows((GROUP, "Gateway", namespace), ("", "Secret", ns, &r.name)) {
            Problem::new(
                "RefNotPermitted",
                format!(
                    "Secret {ns}/{} is in another namespace and no ReferenceGrant allows it",
                    r.name
                ),
            )
        } else {
            match certificates.load(ns, &r.name) {
                Ok(i) => return Ok(i),
                Err(why) => Problem::new("InvalidCertificateRef", why),
            }
        };
        diags.push(
            model::Severity::Info,
            object,
            None,
            format!(
                "listener {}: {} ({})",
                l.name, problem.message, problem.reason
            ),
        );
        first.get_or_insert(problem);
    }
    Err(first
        .unwrap_or_else(|| Problem::new("InvalidCertificateRef", "tls.certificateRefs is empty")))
}
