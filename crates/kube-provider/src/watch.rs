//! Reflectors over the kinds translation reads, and the debounced loop that publishes them.
//!
//! The Gateway API kinds are watched only when their CRDs are installed (found out once, at
//! start): a cluster without them serves its Ingresses as before.

use futures_util::StreamExt;
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
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
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use translate::Objects;

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Namespaces to watch; empty: the whole cluster.
    pub namespaces: Vec<String>,
    /// Changes that come within this long of each other are published together.
    pub debounce: Duration,
    /// The ingress-nginx ConfigMap of global settings (`--configmap`): namespace and name. Only
    /// that one is watched.
    pub configmap: Option<(String, String)>,
}

/// The caches of every watched kind (one per namespace for namespaced kinds).
struct Stores {
    ingresses: Vec<Store<Ingress>>,
    classes: Store<IngressClass>,
    services: Vec<Store<Service>>,
    slices: Vec<Store<EndpointSlice>>,
    secrets: Vec<Store<Secret>>,
    /// At most one: the `--configmap` one.
    config_maps: Vec<Store<ConfigMap>>,
    /// `None` when the Gateway API CRDs are not installed.
    gateway: Option<GatewayStores>,
}

/// The caches of the Gateway API kinds, and of Namespaces (whose labels a listener's
/// `allowedRoutes.namespaces.selector` selects).
///
/// The Gateway API objects are cached as the API server sent them ([`DynamicObject`]), not
/// decoded into the `gateway-api` crate's types: translation decodes them itself (with
/// `Objects::add_document`, as a manifest), and it reads fields those types drop (the newer
/// `sessionPersistence` shape). Decoding in the reflector would also fail the whole list on one
/// object the types cannot hold, where translation leaves out only that object, with a warning.
struct GatewayStores {
    /// GatewayClasses (cluster-wide), then Gateways, HTTPRoutes and ReferenceGrants of each
    /// watched namespace scope; each with the resource its documents are of.
    objects: Vec<(ApiResource, Store<DynamicObject>)>,
    namespaces: Store<Namespace>,
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
    if let Some((namespace, name)) = &config.configmap {
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
    }
    if gateway_api_installed(&client).await {
        let mut objects = Vec::new();
        let class = resource::<GatewayClass>();
        let api = Api::all_with(client.clone(), &class);
        objects.push((class.clone(), watch_with(api, all.clone(), class, &changed)));
        for ns in &scopes {
            for r in [
                resource::<Gateway>(),
                resource::<HTTPRoute>(),
                resource::<ReferenceGrant>(),
            ] {
                let api = match ns {
                    Some(ns) => Api::namespaced_with(client.clone(), ns, &r),
                    None => Api::all_with(client.clone(), &r),
                };
                objects.push((r.clone(), watch_with(api, all.clone(), r, &changed)));
            }
        }
        stores.gateway = Some(GatewayStores {
            objects,
            namespaces: watch(Api::all(client.clone()), all.clone(), &changed),
        });
    } else {
        tracing::info!(
            "Gateway API objects are not watched: the Gateway API CRDs (gateway.networking.k8s.io/v1) are not installed"
        );
    }
    stores.wait_until_ready().await;
    tracing::info!("initial sync done");
    loop {
        publish(stores.objects());
        changed.notified().await;
        // Let a burst of changes (a rollout touches many EndpointSlices) settle into one publish.
        tokio::time::sleep(config.debounce).await;
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

/// Whether the Gateway API CRDs are installed: one list of at most one GatewayClass. A 404 says
/// they are not (a real API server answers so for a group it does not serve). Other API errors
/// (forbidden...) count as installed: the reflectors then retry and say why. While the API
/// server cannot be reached at all, the question is asked again: nothing can sync before it
/// answers anyway, and guessing "installed" would leave a cluster without the CRDs never ready.
async fn gateway_api_installed(client: &Client) -> bool {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource::<GatewayClass>());
    let mut delay = Duration::from_millis(100);
    loop {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => return true,
            Err(kube::Error::Api(e)) if e.code == 404 => return false,
            Err(kube::Error::Api(e)) if e.code < 500 && e.code != 429 => {
                tracing::warn!(error = %e, "cannot tell whether the Gateway API CRDs are installed: watching them");
                return true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot list GatewayClasses yet, asking again");
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
            for (_, store) in &g.objects {
                let _ = store.wait_until_ready().await;
            }
            all_ready(std::slice::from_ref(&g.namespaces)).await;
        }
    }

    /// Everything cached, as translation's input.
    fn objects(&self) -> Objects {
        let mut objects = Objects::default();
        add_all(&mut objects, std::slice::from_ref(&self.classes));
        add_all(&mut objects, &self.ingresses);
        add_all(&mut objects, &self.services);
        add_all(&mut objects, &self.slices);
        add_all(&mut objects, &self.secrets);
        add_all(&mut objects, &self.config_maps);
        if let Some(g) = &self.gateway {
            add_all(&mut objects, std::slice::from_ref(&g.namespaces));
            for (resource, store) in &g.objects {
                add_dynamic(&mut objects, resource, store);
            }
        }
        objects.sort();
        objects
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

/// The API's JSON of each object, decoded by translation exactly as a manifest document would be.
fn add_all<K>(objects: &mut Objects, stores: &[Store<K>])
where
    K: Resource + Clone + serde::Serialize + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    for store in stores {
        for obj in store.state() {
            let value = match serde_json::to_value(&*obj) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode a watched object");
                    continue;
                }
            };
            if let Err(e) = objects.add_document(value) {
                tracing::warn!("{e}");
            }
        }
    }
}

/// Objects cached as the API server sent them: their JSON with the `apiVersion` and `kind` of
/// `resource` (list items come without them), decoded by translation as a manifest would be.
fn add_dynamic(objects: &mut Objects, resource: &ApiResource, store: &Store<DynamicObject>) {
    for obj in store.state() {
        let mut value = match serde_json::to_value(&*obj) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode a watched object");
                continue;
            }
        };
        if let Some(fields) = value.as_object_mut() {
            fields.insert("apiVersion".to_owned(), resource.api_version.clone().into());
            fields.insert("kind".to_owned(), resource.kind.clone().into());
        }
        if let Err(e) = objects.add_document(value) {
            tracing::warn!("{e}");
        }
    }
}
