//! Service ports and their EndpointSlices (or legacy Endpoints) into backends.
//!
//! A backend is one Service port; its endpoints come from the EndpointSlices labelled with the
//! Service's name, taking the slice port whose name equals the Service port's name (that is how
//! Kubernetes resolves a named or numbered `targetPort` into the number the pod listens on).

use crate::lookup::Lookups;
use crate::objects::{
    EndpointSlice, Endpoints, IntOrString, ObjectReference, Objects, ServicePort,
    SERVICE_NAME_LABEL,
};
use crate::Diagnostics;
use model::{Backend, BackendId, Diagnostic, Endpoint, EndpointId, ObjectRef};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// How an Ingress names a Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRef<'a> {
    Number(i64),
    Name(&'a str),
}

impl std::fmt::Display for PortRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

/// Interns backends while Ingresses are translated.
pub struct Backends<'a> {
    lookups: &'a Lookups<'a>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    endpoints: HashMap<(&'a str, &'a str), &'a Endpoints>,
    ids: HashMap<String, BackendId>,
    list: Vec<Backend>,
    /// Same order as `list`: what each backend's endpoints came from.
    sources: Vec<Source>,
}

/// Where a backend's endpoints come from, and who was told what about them: enough to collect
/// them again when only EndpointSlices (or Endpoints) changed, with the same diagnostics.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) namespace: String,
    pub(crate) service: String,
    port: ServicePort,
    /// `service-upstream` with a cluster IP: one endpoint that no EndpointSlice changes.
    fixed: bool,
    /// Every object that resolved the backend, in order (the first one is told about the slices
    /// that could not be used, each one that no endpoint is ready).
    callers: Vec<ObjectRef>,
    /// The diagnostics that depend on the endpoints (pushed with the others at the end).
    pub(crate) diagnostics: Vec<Diagnostic>,
}

/// What the backends of a translation were made of.
pub(crate) struct Finished {
    pub(crate) list: Vec<Backend>,
    pub(crate) sources: Vec<Source>,
}

impl<'a> Backends<'a> {
    pub fn new(objects: &'a Objects, lookups: &'a Lookups<'a>) -> Self {
        let mut slices: HashMap<_, Vec<_>> = HashMap::new();
        for s in &objects.endpoint_slices {
            if let Some(svc) = s.metadata.labels.get(SERVICE_NAME_LABEL) {
                slices
                    .entry((s.metadata.namespace(), svc.as_str()))
                    .or_default()
                    .push(s);
            }
        }
        Self {
            lookups,
            slices,
            endpoints: objects
                .endpoints
                .iter()
                .map(|e| ((e.metadata.namespace(), e.metadata.name.as_str()), e))
                .collect(),
            ids: HashMap::new(),
            list: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// The backend for `namespace/service:port`, or `None` (requests get 503) with a warning on
    /// `object` saying why. With `service_upstream` (ingress-nginx's `service-upstream`), its one
    /// endpoint is the Service's cluster IP and port instead of the pods (a Service without one:
    /// its pods, with a warning).
    pub fn resolve(
        &mut self,
        namespace: &str,
        service: &str,
        port: PortRef<'_>,
        service_upstream: bool,
        object: &ObjectRef,
        diags: &mut Diagnostics,
    ) -> Option<BackendId> {
        match self.service(namespace, service, port, service_upstream, object, diags) {
            Ok(id) => Some(id),
            Err(why) => {
                diags.warn(object, format!("{why}: requests to it get 503"));
                None
            }
        }
    }

    /// The backend for `namespace/service:port`, or why there is none (a sentence without its
    /// consequence, which differs between Ingress and Gateway API routes). Warns on `object` only
    /// about what does not prevent the backend (no ready endpoints...).
    pub fn service(
        &mut self,
        namespace: &str,
        service: &str,
        port: PortRef<'_>,
        service_upstream: bool,
        object: &ObjectRef,
        diags: &mut Diagnostics,
    ) -> Result<BackendId, String> {
        let Some(svc) = self.lookups.service(namespace, service) else {
            return Err(format!("Service {namespace}/{service} not found"));
        };
        if svc.spec.type_.as_deref() == Some("ExternalName") {
            return Err(format!("Service {namespace}/{service} is of type ExternalName, which Remora does not support yet"));
        }
        let found = svc.spec.ports.iter().find(|p| match port {
            PortRef::Number(n) => p.port == n,
            PortRef::Name(n) => p.name.as_deref() == Some(n),
        });
        let Some(sp) = found else {
            return Err(format!("Service {namespace}/{service} has no port {port}"));
        };
        let cluster_ip = svc
            .spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .filter(|_| service_upstream);
        if service_upstream && cluster_ip.is_none() {
            diags.warn(
                object,
                format!("service-upstream: Service {namespace}/{service} has no cluster IP (headless, or not set in the manifest): its pods are used"),
            );
        }
        let name = match cluster_ip {
            Some(_) => format!("{namespace}/{service}:{} (service-upstream)", sp.port),
            None => format!("{namespace}/{service}:{}", sp.port),
        };
        let id = match self.ids.get(&name) {
            Some(id) => *id,
            None => {
                let mut collected = Diagnostics::default();
                let (endpoints, fixed) = match (cluster_ip, u16::try_from(sp.port)) {
                    (Some(ip), Ok(port)) => (
                        vec![Endpoint {
                            id: endpoint_id(&name, ip, None),
                            addr: SocketAddr::new(ip, port),
                            ready: true,
                            serving: true,
                            terminating: false,
                            pod: None,
                        }],
                        true,
                    ),
                    _ => (
                        collect(
                            self.slices.get(&(namespace, service)).map(Vec::as_slice),
                            self.endpoints.get(&(namespace, service)).copied(),
                            namespace,
                            service,
                            sp,
                            object,
                            &mut collected,
                        ),
                        false,
                    ),
                };
                let id = BackendId(self.list.len() as u32);
                self.list.push(Backend {
                    name: name.clone(),
                    endpoints,
                });
                self.sources.push(Source {
                    namespace: namespace.to_owned(),
                    service: service.to_owned(),
                    port: sp.clone(),
                    fixed,
                    callers: Vec::new(),
                    diagnostics: collected.0,
                });
                self.ids.insert(name, id);
                id
            }
        };
        let i = id.0 as usize;
        if let (Some(backend), Some(source)) = (self.list.get(i), self.sources.get_mut(i)) {
            source.callers.push(object.clone());
            if let Some(d) = not_ready(backend, source, object) {
                source.diagnostics.push(d);
            }
        }
        Ok(id)
    }

    /// The first port of `namespace/service` (how ingress-nginx uses a default backend's).
    pub fn first_port(&self, namespace: &str, service: &str) -> Option<PortRef<'static>> {
        let svc = self.lookups.service(namespace, service)?;
        svc.spec.ports.first().map(|p| PortRef::Number(p.port))
    }

    pub(crate) fn finish(self) -> Finished {
        Finished {
            list: self.list,
            sources: self.sources,
        }
    }
}

/// The warning that `namespace/service:port` has no endpoint taking new sessions, on `object`.
fn not_ready(backend: &Backend, source: &Source, object: &ObjectRef) -> Option<Diagnostic> {
    if backend.endpoints.iter().any(Endpoint::accepts_new) {
        return None;
    }
    let mut diags = Diagnostics::default();
    diags.warn(
        object,
        format!(
            "Service {}/{} port {} has no ready endpoints: new sessions get 503",
            source.namespace, source.service, source.port.port
        ),
    );
    diags.0.pop()
}

/// The EndpointSlices and Endpoints of each Service (by namespace and name), for the Services in
/// `wanted` only.
pub(crate) struct EndpointIndex<'a> {
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    endpoints: HashMap<(&'a str, &'a str), &'a Endpoints>,
}

impl<'a> EndpointIndex<'a> {
    pub(crate) fn new(
        objects: &'a Objects,
        wanted: &std::collections::HashSet<(String, String)>,
    ) -> Self {
        // By namespace, then name: looked up without a copy of either.
        let mut named: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
        for (namespace, name) in wanted {
            named.entry(namespace).or_default().insert(name);
        }
        let is_wanted =
            |ns: &str, name: &str| named.get(ns).is_some_and(|names| names.contains(name));
        let mut slices: HashMap<_, Vec<_>> = HashMap::new();
        for s in &objects.endpoint_slices {
            if let Some(svc) = s.metadata.labels.get(SERVICE_NAME_LABEL) {
                if is_wanted(s.metadata.namespace(), svc) {
                    slices
                        .entry((s.metadata.namespace(), svc.as_str()))
                        .or_default()
                        .push(s);
                }
            }
        }
        let endpoints = objects
            .endpoints
            .iter()
            .filter(|e| is_wanted(e.metadata.namespace(), &e.metadata.name))
            .map(|e| ((e.metadata.namespace(), e.metadata.name.as_str()), e))
            .collect();
        Self { slices, endpoints }
    }

    /// A backend collected again from the current EndpointSlices (or Endpoints), with the
    /// diagnostics a full translation would give about them; `None`: its endpoints do not come
    /// from them.
    pub(crate) fn recollect(
        &self,
        backend: &Backend,
        source: &Source,
    ) -> Option<(Backend, Source)> {
        if source.fixed {
            return None;
        }
        let (ns, svc) = (source.namespace.as_str(), source.service.as_str());
        let first = source.callers.first()?;
        let mut collected = Diagnostics::default();
        let endpoints = collect(
            self.slices.get(&(ns, svc)).map(Vec::as_slice),
            self.endpoints.get(&(ns, svc)).copied(),
            ns,
            svc,
            &source.port,
            first,
            &mut collected,
        );
        let backend = Backend {
            name: backend.name.clone(),
            endpoints,
        };
        let mut source = Source {
            diagnostics: collected.0,
            ..source.clone()
        };
        for caller in &source.callers {
            if let Some(d) = not_ready(&backend, &source, caller) {
                source.diagnostics.push(d);
            }
        }
        Some((backend, source))
    }
}

fn collect(
    slices: Option<&[&EndpointSlice]>,
    legacy: Option<&Endpoints>,
    namespace: &str,
    service: &str,
    sp: &ServicePort,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> Vec<Endpoint> {
    {
        let port_name = sp.name.as_deref().unwrap_or("");
        // A slice port without a number means "all ports"; the pod then listens on targetPort.
        let fallback_port = match &sp.target_port {
            Some(IntOrString::Int(n)) => *n,
            _ => sp.port,
        };
        let id_base = format!("{namespace}/{service}");
        let mut out = Vec::new();
        if let Some(slices) = slices {
            for slice in slices {
                if slice.address_type == "FQDN" {
                    diags.warn(
                        object,
                        format!("EndpointSlice {namespace}/{} has addressType FQDN, not supported: skipped", slice.metadata.name),
                    );
                    continue;
                }
                let Some(p) = slice
                    .ports
                    .iter()
                    .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                else {
                    diags.warn(
                        object,
                        format!(
                            "EndpointSlice {namespace}/{} has no port named \"{port_name}\" (the name of Service port {}): skipped",
                            slice.metadata.name, sp.port
                        ),
                    );
                    continue;
                };
                let number = p.port.unwrap_or(fallback_port);
                for ep in &slice.endpoints {
                    let Some(addr) = ep.addresses.first() else {
                        continue;
                    };
                    let ready = ep.conditions.ready.unwrap_or(true);
                    let serving = ep.conditions.serving.unwrap_or(ready);
                    let terminating = ep.conditions.terminating.unwrap_or(false);
                    if let Some(e) = endpoint(
                        &id_base,
                        addr,
                        number,
                        ep.target_ref.as_ref(),
                        [ready, serving, terminating],
                        object,
                        diags,
                    ) {
                        out.push(e);
                    }
                }
            }
        } else if let Some(eps) = legacy {
            for subset in &eps.subsets {
                let Some(p) = subset
                    .ports
                    .iter()
                    .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                else {
                    continue;
                };
                let number = p.port.unwrap_or(fallback_port);
                let all = subset
                    .addresses
                    .iter()
                    .map(|a| (a, true))
                    .chain(subset.not_ready_addresses.iter().map(|a| (a, false)));
                for (a, ready) in all {
                    if let Some(e) = endpoint(
                        &id_base,
                        &a.ip,
                        number,
                        a.target_ref.as_ref(),
                        [ready, ready, false],
                        object,
                        diags,
                    ) {
                        out.push(e);
                    }
                }
            }
        }
        // One entry per identity (a pod listed twice keeps its most available entry), in id order,
        // whatever the input order, so every replica builds the same backend.
        out.sort_by_key(|e| (e.id, !e.ready, !e.serving, e.terminating, e.addr));
        out.dedup_by_key(|e| e.id);
        out
    }
}

fn endpoint(
    id_base: &str,
    address: &str,
    port: i64,
    target: Option<&ObjectReference>,
    [ready, serving, terminating]: [bool; 3],
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> Option<Endpoint> {
    let Ok(ip) = address.parse::<IpAddr>() else {
        diags.warn(
            object,
            format!("endpoint address \"{address}\" is not an IP address: skipped"),
        );
        return None;
    };
    let Ok(port) = u16::try_from(port) else {
        diags.warn(
            object,
            format!("endpoint port {port} is out of range: skipped"),
        );
        return None;
    };
    let pod = target.and_then(|t| t.name.clone());
    Some(Endpoint {
        id: endpoint_id(id_base, ip, target),
        addr: SocketAddr::new(ip, port),
        ready,
        serving,
        terminating,
        pod,
    })
}

/// The stable id of an endpoint: a hash of the Service and the pod it names (or its address when
/// the slice names no pod). Pod IPs never leave Remora through it, and a pod keeps its id for as
/// long as it exists, which is what persistent affinity pins sessions to.
fn endpoint_id(id_base: &str, ip: IpAddr, target: Option<&ObjectReference>) -> EndpointId {
    use std::fmt::Write;
    // `{id_base}\0{identity}`, written once (100,000 endpoints in a large cluster).
    let mut key = String::with_capacity(id_base.len() + 64);
    key.push_str(id_base);
    key.push('\0');
    // Writing into a String cannot fail.
    let _ = match target {
        Some(ObjectReference {
            name: Some(name),
            kind,
            namespace,
            ..
        }) => write!(
            key,
            "{}/{}/{name}",
            kind.as_deref().unwrap_or("Pod"),
            namespace.as_deref().unwrap_or("")
        ),
        _ => write!(key, "ip/{ip}"),
    };
    EndpointId(xxhash_rust::xxh3::xxh3_64(key.as_bytes()))
}
