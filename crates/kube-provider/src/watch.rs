//! Reflectors over the kinds translation reads, and the debounced loop that publishes them.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::runtime::reflector::{self, Store};
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

/// A reflector over `api`, driven by its own task, that wakes `changed` on every event.
fn watch<K>(api: Api<K>, config: watcher::Config, changed: &Arc<Notify>) -> Store<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (reader, writer) = reflector::store();
    let changed = changed.clone();
    let kind = K::kind(&K::DynamicType::default()).into_owned();
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
        objects.sort();
        objects
    }
}

/// Wait until each store has had its first complete list.
async fn all_ready<K>(stores: &[Store<K>])
where
    K: Resource + Clone + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
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
