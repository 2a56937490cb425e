//! The Kubernetes objects translation reads, as serde types.
//!
//! Only the fields Remora uses are declared; unknown fields are ignored and every field is optional
//! or defaulted, so a manifest that `kubectl apply` accepts always deserialises. Both the current
//! `networking.k8s.io/v1` Ingress shape and the legacy `extensions/v1beta1` /
//! `networking.k8s.io/v1beta1` shape (`serviceName`/`servicePort`, `spec.backend`) are covered by the
//! same types. Providers (files, kube) produce these; `translate` consumes them.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use gateway_api::experimental::gatewayclasses::GatewayClass;
pub use gateway_api::experimental::gateways::Gateway;
pub use gateway_api::experimental::grpcroutes::GRPCRoute;
pub use gateway_api::experimental::httproutes::HTTPRoute;
pub use gateway_api::experimental::referencegrants::ReferenceGrant;

/// An `HTTPRoute` or a `GRPCRoute`, and each rule's `sessionPersistence` as written, in either
/// shape the API has had: the released one (`sessionName`, `cookieConfig.lifetimeType`) that the
/// bindings know, and the newer union (`cookie: {name, path, lifetimeType}`, `header: {name}`)
/// that they do not.
///
/// A GRPCRoute is checked against its own schema, then held in HTTPRoute form (one routing model):
/// its method matches become the paths gRPC puts them in (`/SERVICE/METHOD`, see [`grpc_as_http`]),
/// and its pods are spoken to in gRPC (HTTP/2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    pub route: HTTPRoute,
    /// Same order as `spec.rules`.
    pub sessions: Vec<Option<SessionPersistence>>,
    /// It was written as a GRPCRoute.
    #[serde(default)]
    pub grpc: bool,
}

impl HttpRoute {
    /// `HTTPRoute` or `GRPCRoute`, as written.
    pub fn kind(&self) -> &'static str {
        if self.grpc {
            "GRPCRoute"
        } else {
            "HTTPRoute"
        }
    }
}

/// A GRPCRoute document in HTTPRoute form: each match's `method` (`service`, `method`, `type`)
/// becomes the path gRPC sends it on: `Exact` service and method: the path `/SERVICE/METHOD`;
/// service only: the prefix `/SERVICE`; method only, or `RegularExpression`: a regular expression
/// over the whole path. Headers, filters, backends and sessions have the same shape in both kinds.
fn grpc_as_http(mut doc: serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    let Some(Value::Array(rules)) = doc.pointer_mut("/spec/rules") else {
        return doc;
    };
    for rule in rules {
        let Some(Value::Array(matches)) = rule.get_mut("matches") else {
            continue;
        };
        for m in matches {
            let Some(obj) = m.as_object_mut() else {
                continue;
            };
            let Some(method) = obj.remove("method") else {
                continue;
            };
            let field = |k: &str| {
                method
                    .get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
            };
            let (service, name) = (field("service"), field("method"));
            let regex = field("type").as_deref() == Some("RegularExpression");
            let path = match (regex, service, name) {
                (false, Some(s), Some(m)) => {
                    Some(json!({"type": "Exact", "value": format!("/{s}/{m}")}))
                }
                (false, Some(s), None) => {
                    Some(json!({"type": "PathPrefix", "value": format!("/{s}")}))
                }
                (false, None, Some(m)) => Some(
                    json!({"type": "RegularExpression", "value": format!("/[^/]+/{}", regex::escape(&m))}),
                ),
                (true, s, m) => Some(json!({"type": "RegularExpression", "value": format!(
                    "/{}/{}",
                    s.unwrap_or_else(|| "[^/]+".to_owned()),
                    m.unwrap_or_else(|| "[^/]+".to_owned())
                )})),
                (false, None, None) => None,
            };
            if let Some(path) = path {
                obj.insert("path".to_owned(), path);
            }
        }
    }
    doc
}

/// A rule's `sessionPersistence`, both shapes (GEP-1619).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionPersistence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absolute_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// `Cookie` (default) or `Header`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The released shape's `cookieConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_config: Option<CookieConfig>,
    /// The newer shape's `cookie`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<CookieConfig>,
    /// The newer shape's `header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CookieConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `Session` (default) or `Permanent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeaderConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A `v1/Namespace`: only its labels are read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
}

/// `null` reads as the default: the API server and `kubectl get -o yaml` write `endpoints: null`
/// for an EndpointSlice of a Service scaled to zero, and users write `annotations:` with nothing
/// after it.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One kind's objects, each behind an `Arc`, in a list behind an `Arc`: a clone of the list is a
/// pointer copy, and a change to one object copies the list of pointers (make_mut), not the other
/// objects. The provider's objects and the translator's previous ones are thus one copy but for
/// what changed, and comparing two versions of a cluster looks only at what is not shared.
#[derive(Debug)]
pub struct List<T>(Arc<Vec<Arc<T>>>);

impl<T> List<T> {
    /// The two are one copy: equal without a look at the objects.
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The objects (the pointers are the list itself: `Deref`).
    pub fn iter(&self) -> ListIter<'_, T> {
        self.0.iter().map(|a| &**a)
    }

    /// The objects' shared pointers: two versions of a list share those of the objects that did
    /// not change.
    pub fn iter_shared(&self) -> std::slice::Iter<'_, Arc<T>> {
        self.0.iter()
    }

    /// Add an object at the end.
    pub fn push(&mut self, object: T) {
        Arc::make_mut(&mut self.0).push(Arc::new(object));
    }

    /// The objects, as shared pointers; the list is copied only if another shares it.
    pub fn into_vec(self) -> Vec<Arc<T>> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self(Arc::new(Vec::new()))
    }
}

impl<T> Clone for List<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> std::ops::Deref for List<T> {
    type Target = Vec<Arc<T>>;
    fn deref(&self) -> &Vec<Arc<T>> {
        &self.0
    }
}

impl<T> std::ops::DerefMut for List<T> {
    fn deref_mut(&mut self) -> &mut Vec<Arc<T>> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
            || (self.len() == other.len()
                && self
                    .iter_shared()
                    .zip(other.iter_shared())
                    .all(|(a, b)| Arc::ptr_eq(a, b) || **a == **b))
    }
}

impl<T> From<Vec<Arc<T>>> for List<T> {
    fn from(v: Vec<Arc<T>>) -> Self {
        Self(Arc::new(v))
    }
}

impl<T> From<Vec<T>> for List<T> {
    fn from(v: Vec<T>) -> Self {
        Self(Arc::new(v.into_iter().map(Arc::new).collect()))
    }
}

impl<T> FromIterator<T> for List<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self(Arc::new(iter.into_iter().map(Arc::new).collect()))
    }
}

/// [`List::iter`].
pub type ListIter<'a, T> = std::iter::Map<std::slice::Iter<'a, Arc<T>>, fn(&'a Arc<T>) -> &'a T>;

impl<'a, T> IntoIterator for &'a List<T> {
    type Item = &'a T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Serialize> Serialize for List<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|a| &**a))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<T>::deserialize(d).map(Self::from)
    }
}

/// Every object translation looks at. Order within each list does not matter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Objects {
    #[serde(default, deserialize_with = "null_default")]
    pub ingresses: List<Ingress>,
    #[serde(default, deserialize_with = "null_default")]
    pub services: List<Service>,
    #[serde(default, deserialize_with = "null_default")]
    pub endpoint_slices: List<EndpointSlice>,
    /// Legacy `v1/Endpoints`: used for a Service only when no EndpointSlice names it.
    #[serde(default, deserialize_with = "null_default")]
    pub endpoints: List<Endpoints>,
    #[serde(default, deserialize_with = "null_default")]
    pub secrets: List<Secret>,
    #[serde(default, deserialize_with = "null_default")]
    pub ingress_classes: List<IngressClass>,
    /// `v1/ConfigMap`: only the one `Options::configmap` names is read (ingress-nginx's global
    /// configuration).
    #[serde(default, deserialize_with = "null_default")]
    pub config_maps: List<ConfigMap>,
    /// Gateway API `GatewayClass`: the ones whose `controllerName` is Remora's are served.
    #[serde(default, deserialize_with = "null_default")]
    pub gateway_classes: List<GatewayClass>,
    #[serde(default, deserialize_with = "null_default")]
    pub gateways: List<Gateway>,
    /// `HTTPRoute` (`v1` and `v1beta1`, the same schema) and `GRPCRoute` (in HTTPRoute form).
    #[serde(default, deserialize_with = "null_default")]
    pub http_routes: List<HttpRoute>,
    /// `ReferenceGrant`, `v1beta1` and `v1`: what routes and Gateways may reference in other
    /// namespaces.
    #[serde(default, deserialize_with = "null_default")]
    pub reference_grants: List<ReferenceGrant>,
    /// `v1/Namespace`: their labels are what a listener's `allowedRoutes.namespaces.selector`
    /// selects.
    #[serde(default, deserialize_with = "null_default")]
    pub namespaces: List<Namespace>,
    /// Not used by translation. Kept because the demo, standing in for a cluster, turns them into
    /// pods and EndpointSlices.
    #[serde(default, deserialize_with = "null_default")]
    pub deployments: List<Deployment>,
}

impl Objects {
    /// Append a copy of every object of `other`.
    pub fn extend_from(&mut self, other: &Objects) {
        let Objects {
            ingresses,
            services,
            endpoint_slices,
            endpoints,
            secrets,
            ingress_classes,
            config_maps,
            gateway_classes,
            gateways,
            http_routes,
            reference_grants,
            namespaces,
            deployments,
        } = other;
        self.ingresses.extend_from_slice(ingresses);
        self.services.extend_from_slice(services);
        self.endpoint_slices.extend_from_slice(endpoint_slices);
        self.endpoints.extend_from_slice(endpoints);
        self.secrets.extend_from_slice(secrets);
        self.ingress_classes.extend_from_slice(ingress_classes);
        self.config_maps.extend_from_slice(config_maps);
        self.gateway_classes.extend_from_slice(gateway_classes);
        self.gateways.extend_from_slice(gateways);
        self.http_routes.extend_from_slice(http_routes);
        self.reference_grants.extend_from_slice(reference_grants);
        self.namespaces.extend_from_slice(namespaces);
        self.deployments.extend_from_slice(deployments);
    }

    /// Sort each list by namespace and name, so translation output does not depend on input order.
    pub fn sort(&mut self) {
        fn meta(m: &ObjectMeta) -> (&str, &str) {
            (m.namespace(), &m.name)
        }
        fn k8s(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
            (
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            )
        }
        sort_list(&mut self.ingresses, |o| meta(&o.metadata));
        sort_list(&mut self.services, |o| meta(&o.metadata));
        sort_list(&mut self.endpoint_slices, |o| meta(&o.metadata));
        sort_list(&mut self.endpoints, |o| meta(&o.metadata));
        sort_list(&mut self.secrets, |o| meta(&o.metadata));
        sort_list(&mut self.ingress_classes, |o| meta(&o.metadata));
        sort_list(&mut self.config_maps, |o| meta(&o.metadata));
        sort_list(&mut self.deployments, |o| meta(&o.metadata));
        sort_list(&mut self.namespaces, |o| meta(&o.metadata));
        sort_list(&mut self.gateway_classes, |o| k8s(&o.metadata));
        sort_list(&mut self.gateways, |o| k8s(&o.metadata));
        sort_list(&mut self.http_routes, |o| k8s(&o.route.metadata));
        sort_list(&mut self.reference_grants, |o| k8s(&o.metadata));
    }
}

/// Sort `list` by `key` (namespace and name) without a copy of either, stably; a list already in
/// order is left as it is (and not copied from another that shares it).
fn sort_list<T>(list: &mut List<T>, key: fn(&T) -> (&str, &str)) {
    if list.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        return;
    }
    list.sort_by(|a, b| key(a).cmp(&key(b)));
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; older Ingresses win conflicts, as in ingress-nginx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl ObjectMeta {
    /// The namespace, `default` when the manifest leaves it out (as `kubectl apply` would).
    pub fn namespace(&self) -> &str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => "default",
        }
    }
}

/// A Kubernetes `IntOrString`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingress {
    #[serde(default, deserialize_with = "null_default")]
    pub api_version: String,
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: IngressSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<IngressBackend>,
    /// Legacy (`v1beta1`) name of `defaultBackend`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<IngressBackend>,
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<IngressRule>,
    #[serde(default, deserialize_with = "null_default")]
    pub tls: Vec<IngressTls>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpIngressRuleValue>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpIngressRuleValue {
    #[serde(default, deserialize_with = "null_default")]
    pub paths: Vec<HttpIngressPath>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpIngressPath {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub backend: IngressBackend,
}

/// Both shapes: `service: {name, port: {number | name}}` (v1) and `serviceName` + `servicePort`
/// (v1beta1). `resource` backends are recognised only to be reported as unsupported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressBackend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<IngressServiceBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngressServiceBackend {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServiceBackendPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceBackendPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressTls {
    #[serde(default, deserialize_with = "null_default")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: ServiceSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<ServicePort>,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_name: Option<String>,
    /// `None` (the string) for a headless Service.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSlice {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub address_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub endpoints: Vec<SliceEndpoint>,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SliceEndpoint {
    #[serde(default, deserialize_with = "null_default")]
    pub addresses: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub conditions: EndpointConditions,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// Absent conditions mean what the EndpointSlice API says: `ready` unknown = ready, `serving`
/// unknown = same as ready, `terminating` unknown = not terminating.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// Legacy `v1/Endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub subsets: Vec<EndpointSubset>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointSubset {
    #[serde(default, deserialize_with = "null_default")]
    pub addresses: Vec<EndpointAddress>,
    #[serde(default, deserialize_with = "null_default")]
    pub not_ready_addresses: Vec<EndpointAddress>,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<EndpointPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAddress {
    #[serde(default, deserialize_with = "null_default")]
    pub ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<ObjectReference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Base64 values, as in the API.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        rename = "stringData"
    )]
    pub string_data: BTreeMap<String, String>,
}

impl Secret {
    /// The value of `key`, from `stringData`, else `data` (base64); `None`: no such key.
    pub fn value(&self, key: &str) -> Option<Result<Vec<u8>, base64::DecodeError>> {
        use base64::Engine;
        if let Some(v) = self.string_data.get(key) {
            return Some(Ok(v.as_bytes().to_vec()));
        }
        let v = self.data.get(key)?;
        Some(base64::engine::general_purpose::STANDARD.decode(v.trim()))
    }
}

/// A `v1` ConfigMap: string values by key (`binaryData` is not read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigMap {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
}

/// A `networking.k8s.io/v1` IngressClass: which controller serves the Ingresses of the class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngressClass {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: IngressClassSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IngressClassSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
}

/// Just enough of an `apps/v1` Deployment for the demo to start its pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: DeploymentSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    /// Absent means 1, as in the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodTemplate {
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_default")]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Container {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<ContainerPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub container_port: i64,
}

/// Why a manifest document could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// `Ingress default/web`, or the kind alone when the name could not be read.
    pub object: String,
    /// Dotted path of the offending field (`spec.rules[0].http`), when known.
    pub field: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Each rule's `sessionPersistence` of a route document, in either shape.
fn rule_sessions(
    doc: &serde_json::Value,
) -> Result<Vec<Option<SessionPersistence>>, (String, String)> {
    let Some(serde_json::Value::Array(rules)) = doc.pointer("/spec/rules") else {
        return Ok(Vec::new());
    };
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| match rule.get("sessionPersistence") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => SessionPersistence::deserialize(v)
                .map(Some)
                .map_err(|e| (format!("spec.rules[{i}].sessionPersistence"), e.to_string())),
        })
        .collect()
}

impl Objects {
    /// Add one manifest document. `kind: List` adds its items. Kinds translation does not use
    /// (Namespace, ServiceAccount...) are skipped quietly; an empty document adds nothing. Returns the
    /// number of objects taken.
    pub fn add_document(&mut self, doc: serde_json::Value) -> Result<usize, DecodeError> {
        if doc.is_null() {
            return Ok(0);
        }
        let kind = doc
            .get("kind")
            .and_then(|k| k.as_str())
            .ok_or_else(|| DecodeError {
                object: "document".to_owned(),
                field: Some("kind".to_owned()),
                reason: "missing: every manifest needs apiVersion and kind".to_owned(),
            })?
            .to_owned();
        let api_version = doc
            .get("apiVersion")
            .and_then(|k| k.as_str())
            .unwrap_or("")
            .to_owned();
        let name = doc
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_owned();
        let label = || {
            if name.is_empty() {
                kind.clone()
            } else {
                format!("{kind} {name}")
            }
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        // A field that does not fit its schema: the object, the field's path, why.
        let at = |e: serde_path_to_error::Error<serde_json::Error>| DecodeError {
            object: label(),
            field: Some(e.path().to_string()).filter(|p| p != "."),
            reason: e.inner().to_string(),
        };
        macro_rules! take {
            ($list:ident) => {{
                let obj = serde_path_to_error::deserialize(doc).map_err(at)?;
                self.$list.push(obj);
                Ok(1)
            }};
        }
        match (group, kind.as_str()) {
            ("networking.k8s.io" | "extensions", "Ingress") => take!(ingresses),
            ("", "Service") => take!(services),
            ("discovery.k8s.io", "EndpointSlice") => take!(endpoint_slices),
            ("", "Endpoints") => take!(endpoints),
            ("", "Secret") => take!(secrets),
            ("", "ConfigMap") => take!(config_maps),
            ("networking.k8s.io", "IngressClass") => take!(ingress_classes),
            ("apps" | "extensions", "Deployment") => take!(deployments),
            ("", "Namespace") => take!(namespaces),
            ("gateway.networking.k8s.io", "GatewayClass") => take!(gateway_classes),
            ("gateway.networking.k8s.io", "Gateway") => take!(gateways),
            ("gateway.networking.k8s.io", "ReferenceGrant") => take!(reference_grants),
            ("gateway.networking.k8s.io", "HTTPRoute" | "GRPCRoute") => {
                let sessions = rule_sessions(&doc).map_err(|(field, reason)| DecodeError {
                    object: label(),
                    field: Some(field),
                    reason,
                })?;
                let grpc = kind == "GRPCRoute";
                let doc = if grpc {
                    // Checked against its own schema, then held in HTTPRoute form.
                    let _: GRPCRoute = serde_path_to_error::deserialize(&doc).map_err(at)?;
                    grpc_as_http(doc)
                } else {
                    doc
                };
                let route: HTTPRoute = serde_path_to_error::deserialize(doc).map_err(at)?;
                self.http_routes.push(HttpRoute {
                    route,
                    sessions,
                    grpc,
                });
                Ok(1)
            }
            (_, "List") => {
                let items = match doc.get("items") {
                    Some(serde_json::Value::Array(items)) => items.clone(),
                    None | Some(serde_json::Value::Null) => Vec::new(),
                    Some(_) => {
                        return Err(DecodeError {
                            object: label(),
                            field: Some("items".to_owned()),
                            reason: "expected a list of objects".to_owned(),
                        })
                    }
                };
                let mut n = 0;
                for (i, item) in items.into_iter().enumerate() {
                    n += self.add_document(item).map_err(|mut e| {
                        e.object = format!("{} (item {i} of {})", e.object, label());
                        e
                    })?;
                }
                Ok(n)
            }
            _ => Ok(0),
        }
    }
}
