//! Reflectors over the kinds translation reads, and the debounced loop that publishes them.
//!
//! The Gateway API kinds are watched only when their CRDs are installed: a cluster without them
//! serves its Ingresses as before. CRDs installed later (the Gateway API's, or GRPCRoute's, which
//! older bundles lack) are found by asking again every [`CRD_RECHECK`], and then watched too.

use futures_util::StreamExt;
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GRPCRoute;
use gateway_api::experimental::httproutes::HTTPRoute;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use translate::Objects;

/// While some Gateway API CRD is missing, how often whether it was installed meanwhile is asked.
const CRD_RECHECK: Duration = Duration::from_secs(10);

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Namespaces to watch; empty: the whole cluster.
    pub namespaces: Vec<String>,
    /// Changes that come within this long of each other are published together.
    pub debounce: Duration,
    /// The ingress-nginx ConfigMap of global settings (`--configmap`): namespace and name. It is
    /// watched besides the watched namespaces' ConfigMaps when it is in none of them.
    pub configmap: Option<(String, String)>,
}

/// The caches of every watched kind (one per namespace for namespaced kinds).
struct Stores {
    ingresses: Vec<Store<Ingress>>,
    classes: Store<IngressClass>,
    services: Vec<Store<Service>>,
    slices: Vec<Store<EndpointSlice>>,
    secrets: Vec<Store<Secret>>,
    /// The watched namespaces' (what `custom-headers`, `add-headers` and `proxy-set-headers`
    /// name), and the `--configmap` one when it is in none of them.
    config_maps: Vec<Store<ConfigMap>>,
    /// `None` when the Gateway API CRDs are not installed.
    gateway: Option<GatewayStores>,
}

/// The caches of the Gateway API kinds, and of Namespaces (whose labels a listener's
/// `allowedRoutes.namespaces.selector` selects); GRPCRoutes once their CRD is installed.
///
/// The Gateway API objects are cached as the API server sent them ([`DynamicObject`]), not
/// decoded into the `gateway-api` crate's types: translation decodes them itself (with
/// `Objects::add_document`, as a manifest), and it reads fields those types drop (the newer
/// `sessionPersistence` shape). Decoding in the reflector would also fail the whole list on one
/// object the types cannot hold, where translation leaves out only that object, with a warning.
struct GatewayStores {
    /// GatewayClasses (cluster-wide), then Gateways, HTTPRoutes and ReferenceGrants of each
    /// watched namespace scope (then GRPCRoutes); each with the resource its documents are of.
    objects: Vec<(ApiResource, Store<DynamicObject>)>,
    namespaces: Store<Namespace>,
    /// GRPCRoutes are watched (their CRD is installed).
    grpc_routes: bool,
}

/// Start the watchers; once every cache holds a full list, call `publish` with all objects, then
/// again after each (debounced) change, until the task is dropped. Watch errors (API server gone,
/// expired resource versions) are retried with backoff by kube-runtime while the last published
/// objects keep serving.
pub async fn run(client: Client, config: WatchConfig, mut publish: impl FnMut(Objects)) {
    let changed = Arc::new(Notify::new());
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };
    let all = watcher::Config::default();
    // Only the Secrets annotations and `spec.tls` can name: TLS ones, and Opaque ones (the users
    // of `auth-secret`). The others (service account tokens, Helm releases, registry
    // credentials) are none of an ingress controller's business. A field selector takes one
    // value, so one watcher per type.
    let tls_only = watcher::Config::default().fields("type=kubernetes.io/tls");
    let opaque_only = watcher::Config::default().fields("type=Opaque");
    let mut stores = Stores {
        ingresses: Vec::new(),
        classes: watch(Api::all(client.clone()), all.clone(), &changed),
        services: Vec::new(),
        slices: Vec::new(),
        secrets: Vec::new(),
        config_maps: Vec::new(),
        gateway: None,
    };
    let outside = |ns: &str| !scopes.iter().any(|s| s.as_deref().is_none_or(|s| s == ns));
    if let Some((namespace, name)) = config.configmap.as_ref().filter(|(ns, _)| outside(ns)) {
        // One object: a field selector on its name, in its namespace (whatever --namespace says).
        let one = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let api = Api::namespaced(client.clone(), namespace);
        stores.config_maps.push(watch(api, one, &changed));
    }
    for ns in &scopes {
        stores
            .ingresses
            .push(watch(api(&client, ns), all.clone(), &changed));
        stores
            .services
            .push(watch(api(&client, ns), all.clone(), &changed));
        stores
            .slices
            .push(watch(api(&client, ns), all.clone(), &changed));
        stores
            .secrets
            .push(watch(api(&client, ns), tls_only.clone(), &changed));
        stores
            .secrets
            .push(watch(api(&client, ns), opaque_only.clone(), &changed));
        stores
            .config_maps
            .push(watch(api(&client, ns), all.clone(), &changed));
    }
    let gateway = GatewayWatch {
        client: &client,
        scopes: &scopes,
        changed: &changed,
    };
    gateway.start(&mut stores.gateway, true).await;
    stores.wait_until_ready().await;
    tracing::info!("initial sync done");
    let mut decoded = Decoded::default();
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + CRD_RECHECK, CRD_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        publish(stores.objects(&mut decoded));
        loop {
            let complete = stores.gateway.as_ref().is_some_and(|g| g.grpc_routes);
            tokio::select! {
                () = changed.notified() => break,
                _ = recheck.tick(), if !complete => {
                    if gateway.start(&mut stores.gateway, false).await {
                        break;
                    }
                }
            }
        }
        // Let a burst of changes (a rollout touches many EndpointSlices) settle into one publish.
        tokio::time::sleep(config.debounce).await;
    }
}

/// Starts the watchers of the Gateway API kinds whose CRDs are installed.
struct GatewayWatch<'a> {
    client: &'a Client,
    scopes: &'a [Option<String>],
    changed: &'a Arc<Notify>,
}

impl GatewayWatch<'_> {
    /// Watch the Gateway API kinds (`stores` is `None`) or GRPCRoutes (the other kinds are
    /// watched, GRPCRoutes not) when their CRDs are installed now, and wait for the new caches'
    /// first lists. Whether a watch started. At start (`first`) one info line says what is not
    /// watched, and later ones say what is watched from then on.
    async fn start(&self, stores: &mut Option<GatewayStores>, first: bool) -> bool {
        let all = watcher::Config::default();
        let started = match stores {
            None => {
                if !installed(self.client, &resource::<GatewayClass>(), first).await {
                    if first {
                        tracing::info!(
                            "Gateway API objects are not watched: the Gateway API CRDs (gateway.networking.k8s.io/v1) are not installed (asked again every {}s)",
                            CRD_RECHECK.as_secs()
                        );
                    }
                    return false;
                }
                let class = resource::<GatewayClass>();
                let api = Api::all_with(self.client.clone(), &class);
                let mut objects = vec![(
                    class.clone(),
                    watch_with(api, all.clone(), class, self.changed),
                )];
                for r in [
                    resource::<Gateway>(),
                    resource::<HTTPRoute>(),
                    resource::<ReferenceGrant>(),
                ] {
                    objects.extend(self.watch_scopes(&r));
                }
                let namespaces = watch(Api::all(self.client.clone()), all, self.changed);
                if !first {
                    tracing::info!("the Gateway API CRDs are installed: watching GatewayClasses, Gateways, HTTPRoutes and ReferenceGrants");
                }
                stores.insert(GatewayStores {
                    objects,
                    namespaces,
                    grpc_routes: false,
                })
            }
            Some(g) if !g.grpc_routes => g,
            Some(_) => return false,
        };
        let grpc = resource::<GRPCRoute>();
        if installed(self.client, &grpc, first).await {
            started.objects.extend(self.watch_scopes(&grpc));
            started.grpc_routes = true;
            if !first {
                tracing::info!("the GRPCRoute CRD is installed: watching GRPCRoutes");
            }
        } else if first {
            tracing::info!(
                "GRPCRoutes are not watched: their CRD is not installed (asked again every {}s)",
                CRD_RECHECK.as_secs()
            );
        }
        started.wait_until_ready().await;
        true
    }

    /// A reflector of `resource`'s objects per watched namespace scope.
    fn watch_scopes(
        &self,
        resource: &ApiResource,
    ) -> impl Iterator<Item = (ApiResource, Store<DynamicObject>)> + '_ {
        let resource = resource.clone();
        self.scopes.iter().map(move |ns| {
            let api = match ns {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                None => Api::all_with(self.client.clone(), &resource),
            };
            let store = watch_with(
                api,
                watcher::Config::default(),
                resource.clone(),
                self.changed,
            );
            (resource.clone(), store)
        })
    }
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The API resource of one of the `gateway-api` crate's kinds (group, version, plural).
pub(crate) fn resource<K: Resource<DynamicType = ()>>() -> ApiResource {
    ApiResource::erase::<K>(&())
}

/// Whether the CRD of `resource` is installed: one list of at most one object. A 404 says it is
/// not (a real API server answers so for a group or kind it does not serve). Other API errors
/// (forbidden...) count as installed: the reflectors then retry and say why. At start (`wait`),
/// while the API server cannot be reached at all, the question is asked again: nothing can sync
/// before it answers anyway, and guessing "installed" would leave a cluster without the CRDs
/// never ready; later, such an error counts as not installed (asked again at the next recheck).
pub(crate) async fn installed(client: &Client, resource: &ApiResource, wait: bool) -> bool {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let mut delay = Duration::from_millis(100);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(kube::Error::Api(e)) if e.code == 404 => return false,
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                tracing::warn!(kind = %resource.kind, error = %e, "cannot tell whether the CRD is installed: watching it");
                return true;
            }
            Err(e) if !wait => {
                tracing::debug!(kind = %resource.kind, error = %e, "cannot tell whether the CRD is installed yet");
                return false;
            }
            Err(e) => {
                tracing::debug!(kind = %resource.kind, error = %e, "cannot list yet, asking again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A reflector over `api`, driven by its own task, that wakes `changed` on every event.
fn watch<K>(api: Api<K>, config: watcher::Config, changed: &Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    watch_with(api, config, K::DynamicType::default(), changed)
}

/// [`watch`] for a kind known at run time (its [`ApiResource`]).
fn watch_with<K>(
    api: Api<K>,
    config: watcher::Config,
    dyntype: K::DynamicType,
    changed: &Arc<Notify>,
) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
{
    let kind = K::kind(&dyntype).into_owned();
    let writer = Writer::new(dyntype);
    let reader = writer.as_reader();
    let changed = changed.clone();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(async move {
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(kind, error = %e, "watch failed, retrying"),
            }
        }
    });
    reader
}

impl Stores {
    async fn wait_until_ready(&self) {
        all_ready(std::slice::from_ref(&self.classes)).await;
        all_ready(&self.ingresses).await;
        all_ready(&self.services).await;
        all_ready(&self.slices).await;
        all_ready(&self.secrets).await;
        all_ready(&self.config_maps).await;
        if let Some(g) = &self.gateway {
            g.wait_until_ready().await;
        }
    }

    /// Everything cached, as translation's input. Only the objects that changed since the
    /// previous call (another resourceVersion) are decoded again; `decoded` keeps the others.
    fn objects(&self, decoded: &mut Decoded) -> Objects {
        let mut d = decoded.next();
        add_all(&mut d, std::slice::from_ref(&self.classes));
        add_all(&mut d, &self.ingresses);
        add_all(&mut d, &self.services);
        add_all(&mut d, &self.slices);
        add_all(&mut d, &self.secrets);
        add_all(&mut d, &self.config_maps);
        if let Some(g) = &self.gateway {
            add_all(&mut d, std::slice::from_ref(&g.namespaces));
            for (resource, store) in &g.objects {
                add_dynamic(&mut d, resource, store);
            }
        }
        let mut objects = d.objects;
        *decoded = Decoded { cache: d.now };
        objects.sort();
        objects
    }
}

/// Each watched object as translation decoded it (an `Objects` holding just it), by kind,
/// namespace and name, with the resourceVersion it was decoded at.
#[derive(Default)]
struct Decoded {
    cache: HashMap<ObjectKey, (String, Objects)>,
}

type ObjectKey = (String, String, String);

/// One pass over the caches: the objects so far, what the previous pass decoded, and what this
/// one keeps for the next.
struct Decoding {
    objects: Objects,
    before: HashMap<ObjectKey, (String, Objects)>,
    now: HashMap<ObjectKey, (String, Objects)>,
}

impl Decoded {
    fn next(&mut self) -> Decoding {
        Decoding {
            objects: Objects::default(),
            before: std::mem::take(&mut self.cache),
            now: HashMap::new(),
        }
    }
}

impl Decoding {
    /// Add one object: the decoded copy of its resourceVersion when there is one, else `json()`
    /// decoded by translation exactly as a manifest document would be.
    fn add(
        &mut self,
        kind: &str,
        meta: &kube::api::ObjectMeta,
        json: impl FnOnce() -> serde_json::Result<serde_json::Value>,
    ) {
        let key = (
            kind.to_owned(),
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        let version = meta.resource_version.clone().unwrap_or_default();
        if let Some((v, one)) = self.before.remove(&key) {
            if v == version && !version.is_empty() {
                self.objects.extend_from(&one);
                self.now.insert(key, (v, one));
                return;
            }
        }
        let value = match json() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a watched object");
                return;
            }
        };
        let mut one = Objects::default();
        if let Err(e) = one.add_document(value) {
            tracing::warn!("{e}");
            return;
        }
        self.objects.extend_from(&one);
        self.now.insert(key, (version, one));
    }
}

impl GatewayStores {
    async fn wait_until_ready(&self) {
        for (_, store) in &self.objects {
            let _ = store.wait_until_ready().await;
        }
        all_ready(std::slice::from_ref(&self.namespaces)).await;
    }
}

/// Wait until each store has had its first complete list.
async fn all_ready<K>(stores: &[Store<K>])
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    for s in stores {
        let _ = s.wait_until_ready().await;
    }
}

/// Each object of `stores` (see [`Decoding::add`]).
fn add_all<K>(d: &mut Decoding, stores: &[Store<K>])
where
    K: Resource + Clone + serde::Serialize + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let kind = K::kind(&K::DynamicType::default()).into_owned();
    for store in stores {
        for obj in store.state() {
            d.add(&kind, obj.meta(), || serde_json::to_value(&*obj));
        }
    }
}

/// Objects cached as the API server sent them: their JSON with the `apiVersion` and `kind` of
/// `resource` (list items come without them), decoded by translation as a manifest would be.
fn add_dynamic(d: &mut Decoding, resource: &ApiResource, store: &Store<DynamicObject>) {
    for obj in store.state() {
        d.add(&resource.kind, &obj.metadata, || {
            let mut value = serde_json::to_value(&*obj)?;
            if let Some(fields) = value.as_object_mut() {
                fields.insert("apiVersion".to_owned(), resource.api_version.clone().into());
                fields.insert("kind".to_owned(), resource.kind.clone().into());
            }
            Ok(value)
        });
    }
}
