//! Watchers over the kinds translation reads, and the debounced loop that publishes them.
//!
//! Each watcher's task decodes the objects of its events into translation's objects, once per
//! resourceVersion, and keeps them in the one cache ([`Cache`]); kube-rs's reflector stores are
//! not used (they would keep the API's objects besides). A publish hands out each kind's list: the
//! previous one, a pointer, when no event changed that kind, else one built from the kind's maps,
//! already in order. A watch that missed events lists again, and that list replaces its objects.
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
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use translate::objects::{self, List};
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

/// Whether the Gateway API kinds are watched, and GRPCRoutes among them.
struct GatewayWatched {
    /// GRPCRoutes are watched (their CRD is installed).
    grpc_routes: bool,
}

/// Start the watchers; once every watch has had its first complete list, call `publish` with all
/// objects, then again after each (debounced) change, until the task is dropped. Watch errors (API
/// server gone, expired resource versions) are retried with backoff by kube-runtime while the last
/// published objects keep serving.
///
/// Each watch event is decoded once, by its own watcher task, into translation's objects (see
/// [`Cache`]); a publish hands out each kind's list as it was unless an event changed that kind.
pub async fn run(client: Client, config: WatchConfig, mut publish: impl FnMut(Objects)) {
    let shared = Arc::new(Shared::default());
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
    watch::<IngressClass, objects::IngressClass>(&shared, Api::all(client.clone()), all.clone());
    let outside = |ns: &str| !scopes.iter().any(|s| s.as_deref().is_none_or(|s| s == ns));
    if let Some((namespace, name)) = config.configmap.as_ref().filter(|(ns, _)| outside(ns)) {
        // One object: a field selector on its name, in its namespace (whatever --namespace says).
        let one = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let api = Api::namespaced(client.clone(), namespace);
        watch::<ConfigMap, objects::ConfigMap>(&shared, api, one);
    }
    for ns in &scopes {
        watch::<Ingress, objects::Ingress>(&shared, api(&client, ns), all.clone());
        watch::<Service, objects::Service>(&shared, api(&client, ns), all.clone());
        watch::<EndpointSlice, objects::EndpointSlice>(&shared, api(&client, ns), all.clone());
        watch::<Secret, objects::Secret>(&shared, api(&client, ns), tls_only.clone());
        watch::<Secret, objects::Secret>(&shared, api(&client, ns), opaque_only.clone());
        watch::<ConfigMap, objects::ConfigMap>(&shared, api(&client, ns), all.clone());
    }
    let gateway = GatewayWatch {
        client: &client,
        scopes: &scopes,
        shared: &shared,
    };
    let mut watched = None;
    gateway.start(&mut watched, true).await;
    shared.wait_until_ready().await;
    tracing::info!("initial sync done");
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + CRD_RECHECK, CRD_RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        publish(shared.objects());
        loop {
            let complete = watched
                .as_ref()
                .is_some_and(|g: &GatewayWatched| g.grpc_routes);
            tokio::select! {
                () = shared.changed.notified() => break,
                _ = recheck.tick(), if !complete => {
                    if gateway.start(&mut watched, false).await {
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
    shared: &'a Arc<Shared>,
}

impl GatewayWatch<'_> {
    /// Watch the Gateway API kinds (`watched` is `None`) or GRPCRoutes (the other kinds are
    /// watched, GRPCRoutes not) when their CRDs are installed now, and wait for the new watches'
    /// first lists. Whether a watch started. At start (`first`) one info line says what is not
    /// watched, and later ones say what is watched from then on.
    async fn start(&self, watched: &mut Option<GatewayWatched>, first: bool) -> bool {
        let started = match watched {
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
                watch_dynamic::<objects::GatewayClass>(
                    self.shared,
                    api,
                    watcher::Config::default(),
                    class,
                );
                self.watch_scopes::<objects::Gateway>(&resource::<Gateway>());
                self.watch_scopes::<objects::HttpRoute>(&resource::<HTTPRoute>());
                self.watch_scopes::<objects::ReferenceGrant>(&resource::<ReferenceGrant>());
                watch::<Namespace, objects::Namespace>(
                    self.shared,
                    Api::all(self.client.clone()),
                    watcher::Config::default(),
                );
                if !first {
                    tracing::info!("the Gateway API CRDs are installed: watching GatewayClasses, Gateways, HTTPRoutes and ReferenceGrants");
                }
                watched.insert(GatewayWatched { grpc_routes: false })
            }
            Some(g) if !g.grpc_routes => g,
            Some(_) => return false,
        };
        let grpc = resource::<GRPCRoute>();
        if installed(self.client, &grpc, first).await {
            // In HTTPRoute form, beside the HTTPRoutes (a watch of its own).
            self.watch_scopes::<objects::HttpRoute>(&grpc);
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
        self.shared.wait_until_ready().await;
        true
    }

    /// A watch of `resource`'s objects per watched namespace scope.
    fn watch_scopes<T: Slot>(&self, resource: &ApiResource) {
        for ns in self.scopes {
            let api = match ns {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
                None => Api::all_with(self.client.clone(), resource),
            };
            watch_dynamic::<T>(
                self.shared,
                api,
                watcher::Config::default(),
                resource.clone(),
            );
        }
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
/// (forbidden...) count as installed: the watchers then retry and say why. At start (`wait`),
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

/// What the watcher tasks and the publishing loop share.
#[derive(Default)]
struct Shared {
    cache: Mutex<Cache>,
    /// Woken by every event that changed a kind's objects.
    changed: Notify,
    /// How many watches have not had their first complete list yet.
    unready: tokio::sync::watch::Sender<usize>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        // A watcher task that panicked mid-change left at worst one object stale; serve on.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait until every watch started so far has had its first complete list.
    async fn wait_until_ready(&self) {
        let mut unready = self.unready.subscribe();
        // The sender lives as long as `self`: an error cannot happen.
        let _ = unready.wait_for(|n| *n == 0).await;
    }

    /// Every watched object, as translation's input. A kind that no event changed since the
    /// previous call is the same list (one pointer), which translation compares first.
    fn objects(&self) -> Objects {
        let mut cache = self.lock();
        let Cache {
            ingresses,
            ingress_classes,
            services,
            endpoint_slices,
            secrets,
            config_maps,
            namespaces,
            gateway_classes,
            gateways,
            http_routes,
            reference_grants,
        } = &mut *cache;
        Objects {
            ingresses: ingresses.list(),
            services: services.list(),
            endpoint_slices: endpoint_slices.list(),
            secrets: secrets.list(),
            ingress_classes: ingress_classes.list(),
            config_maps: config_maps.list(),
            gateway_classes: gateway_classes.list(),
            gateways: gateways.list(),
            http_routes: http_routes.list(),
            reference_grants: reference_grants.list(),
            namespaces: namespaces.list(),
            ..Objects::default()
        }
    }
}

/// Every watched object, decoded by translation exactly as a manifest document would be, by
/// kind. This is the only copy: the watchers keep no cache of the API's objects (an event's object
/// is dropped once decoded), and the lists published share these objects.
#[derive(Default)]
struct Cache {
    ingresses: Kind<objects::Ingress>,
    ingress_classes: Kind<objects::IngressClass>,
    services: Kind<objects::Service>,
    endpoint_slices: Kind<objects::EndpointSlice>,
    secrets: Kind<objects::Secret>,
    config_maps: Kind<objects::ConfigMap>,
    namespaces: Kind<objects::Namespace>,
    gateway_classes: Kind<objects::GatewayClass>,
    gateways: Kind<objects::Gateway>,
    /// HTTPRoutes and GRPCRoutes (one watch each).
    http_routes: Kind<objects::HttpRoute>,
    reference_grants: Kind<objects::ReferenceGrant>,
}

/// An object's namespace (empty for cluster-wide kinds) and name.
type Key = (String, String);

/// One kind's objects, per watch of it, and the list last handed out.
struct Kind<T> {
    watches: Vec<Watched<T>>,
    /// Every watch's objects, sorted by namespace and name; `None` once an event changed one,
    /// until the next publish builds it again.
    list: Option<List<T>>,
}

impl<T> Default for Kind<T> {
    fn default() -> Self {
        Self {
            watches: Vec::new(),
            list: None,
        }
    }
}

impl<T> Kind<T> {
    /// The list of every watch's objects: the previous one when nothing changed.
    fn list(&mut self) -> List<T> {
        if let Some(list) = &self.list {
            return list.clone();
        }
        let list: List<T> = if let [one] = self.watches.as_slice() {
            // A map's order: by namespace, then name.
            let all: Vec<Arc<T>> = one.objects.values().map(|e| e.object.clone()).collect();
            all.into()
        } else {
            // Several watches (namespaces, Secret types, HTTPRoutes and GRPCRoutes): merged in
            // that order, stably (an HTTPRoute before a GRPCRoute of the same name).
            let mut all: Vec<(&Key, &Arc<T>)> = self
                .watches
                .iter()
                .flat_map(|w| w.objects.iter().map(|(k, e)| (k, &e.object)))
                .collect();
            all.sort_by(|a, b| a.0.cmp(b.0));
            let all: Vec<Arc<T>> = all.into_iter().map(|(_, o)| o.clone()).collect();
            all.into()
        };
        self.list = Some(list.clone());
        list
    }
}

/// The objects of one watch, by namespace and name.
struct Watched<T> {
    objects: BTreeMap<Key, Entry<T>>,
    /// During a (re)list: the objects listed so far, which replace `objects` once it is complete.
    listing: Option<BTreeMap<Key, Entry<T>>>,
}

/// An object as decoded, and the resourceVersion it was decoded at.
struct Entry<T> {
    version: String,
    object: Arc<T>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            version: self.version.clone(),
            object: self.object.clone(),
        }
    }
}

/// A kind of translation's objects that is watched: where its objects go in the [`Cache`], and
/// where `Objects::add_document` puts one.
trait Slot: Sized + Send + Sync + 'static {
    fn kind(cache: &mut Cache) -> &mut Kind<Self>;
    fn decoded(objects: &mut Objects) -> &mut List<Self>;
}

macro_rules! slot {
    ($($t:ident: $field:ident),* $(,)?) => {$(
        impl Slot for objects::$t {
            fn kind(cache: &mut Cache) -> &mut Kind<Self> {
                &mut cache.$field
            }
            fn decoded(objects: &mut Objects) -> &mut List<Self> {
                &mut objects.$field
            }
        }
    )*};
}

slot! {
    Ingress: ingresses,
    IngressClass: ingress_classes,
    Service: services,
    EndpointSlice: endpoint_slices,
    Secret: secrets,
    ConfigMap: config_maps,
    Namespace: namespaces,
    GatewayClass: gateway_classes,
    Gateway: gateways,
    HttpRoute: http_routes,
    ReferenceGrant: reference_grants,
}

/// A watch of `api`'s objects (a k8s-openapi kind), decoded into `T`.
fn watch<K, T>(shared: &Arc<Shared>, api: Api<K>, config: watcher::Config)
where
    K: Resource + Clone + DeserializeOwned + Debug + Serialize + Send + Sync + 'static,
    K::DynamicType: Default + Clone + Send + Sync,
    T: Slot,
{
    spawn_watch::<K, T>(shared, api, config, K::DynamicType::default(), |obj, _| {
        serde_json::to_value(obj)
    });
}

/// A watch of a kind known at run time (its [`ApiResource`]): the objects as the API server sent
/// them, with the `apiVersion` and `kind` of `resource` (list items come without them).
fn watch_dynamic<T: Slot>(
    shared: &Arc<Shared>,
    api: Api<DynamicObject>,
    config: watcher::Config,
    resource: ApiResource,
) {
    spawn_watch::<DynamicObject, T>(shared, api, config, resource, |obj, resource| {
        let mut value = serde_json::to_value(obj)?;
        if let Some(fields) = value.as_object_mut() {
            fields.insert("apiVersion".to_owned(), resource.api_version.clone().into());
            fields.insert("kind".to_owned(), resource.kind.clone().into());
        }
        Ok(value)
    });
}

/// What encodes a watched object as a manifest document (with its `apiVersion` and `kind`).
type Encode<K> = fn(&K, &<K as Resource>::DynamicType) -> serde_json::Result<serde_json::Value>;

/// Add a watch of `T` to the cache, and start the task that feeds it from `api`'s events.
fn spawn_watch<K, T>(
    shared: &Arc<Shared>,
    api: Api<K>,
    config: watcher::Config,
    dyntype: K::DynamicType,
    encode: Encode<K>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Clone + Send + Sync,
    T: Slot,
{
    let index = {
        let mut cache = shared.lock();
        let kind = T::kind(&mut cache);
        kind.watches.push(Watched {
            objects: BTreeMap::new(),
            listing: None,
        });
        kind.watches.len() - 1
    };
    shared.unready.send_modify(|n| *n += 1);
    let feed = Feed::<K, T> {
        shared: shared.clone(),
        index,
        kind: K::kind(&dyntype).into_owned(),
        dyntype,
        encode,
        listed: false,
        _decoded: PhantomData,
    };
    let stream = watcher(api, config).default_backoff();
    tokio::spawn(async move {
        let mut feed = feed;
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => feed.event(event),
                Err(e) => tracing::warn!(kind = feed.kind, error = %e, "watch failed, retrying"),
            }
        }
    });
}

/// One watch's events into its part of the cache.
struct Feed<K: Resource, T> {
    shared: Arc<Shared>,
    /// Which of its kind's watches this is.
    index: usize,
    kind: String,
    dyntype: K::DynamicType,
    encode: Encode<K>,
    /// The first complete list came.
    listed: bool,
    _decoded: PhantomData<fn() -> T>,
}

impl<K: Resource, T: Slot> Feed<K, T> {
    fn event(&mut self, event: watcher::Event<K>) {
        let changed = match event {
            watcher::Event::Apply(obj) => {
                let (key, version) = key(obj.meta());
                let decoded = self.decode(&obj, &key, &version);
                self.with(|w| match decoded {
                    Some(object) => {
                        let entry = Entry { version, object };
                        let before = w.objects.insert(key, entry.clone());
                        before.is_none_or(|b| !Arc::ptr_eq(&b.object, &entry.object))
                    }
                    None => w.objects.remove(&key).is_some(),
                })
            }
            watcher::Event::Delete(obj) => {
                let (key, _) = key(obj.meta());
                self.with(|w| w.objects.remove(&key).is_some())
            }
            watcher::Event::Init => self.with(|w| {
                w.listing = Some(BTreeMap::new());
                false
            }),
            watcher::Event::InitApply(obj) => {
                let (key, version) = key(obj.meta());
                if let Some(object) = self.decode(&obj, &key, &version) {
                    self.with(|w| {
                        let entry = Entry { version, object };
                        w.listing.get_or_insert_default().insert(key, entry);
                        false
                    });
                }
                false
            }
            watcher::Event::InitDone => {
                let changed = self.with(|w| {
                    let listed = w.listing.take().unwrap_or_default();
                    let same = listed.len() == w.objects.len()
                        && listed
                            .iter()
                            .zip(&w.objects)
                            .all(|((k, a), (l, b))| k == l && Arc::ptr_eq(&a.object, &b.object));
                    w.objects = listed;
                    !same
                });
                if !self.listed {
                    self.listed = true;
                    self.shared
                        .unready
                        .send_modify(|n| *n = n.saturating_sub(1));
                }
                changed
            }
        };
        if changed {
            self.shared.changed.notify_one();
        }
    }

    /// Run `f` on this watch's objects; when it says they changed, the kind's list is built
    /// again at the next publish.
    fn with(&self, f: impl FnOnce(&mut Watched<T>) -> bool) -> bool {
        let mut cache = self.shared.lock();
        let kind = T::kind(&mut cache);
        let Some(watched) = kind.watches.get_mut(self.index) else {
            return false;
        };
        let changed = f(watched);
        if changed {
            kind.list = None;
        }
        changed
    }

    /// `obj` decoded: the object already held for its resourceVersion, else its document decoded
    /// by translation (`None`, with a warning, when that fails: the object is left out, as a
    /// manifest's would be).
    fn decode(&self, obj: &K, key: &Key, version: &str) -> Option<Arc<T>> {
        if !version.is_empty() {
            let mut cache = self.shared.lock();
            let held = T::kind(&mut cache)
                .watches
                .get(self.index)
                .and_then(|w| w.objects.get(key))
                .filter(|e| e.version == version)
                .map(|e| e.object.clone());
            if held.is_some() {
                return held;
            }
        }
        let value = match (self.encode)(obj, &self.dyntype) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(kind = self.kind, error = %e, "cannot encode a watched object");
                return None;
            }
        };
        let mut one = Objects::default();
        if let Err(e) = one.add_document(value) {
            tracing::warn!("{e}");
            return None;
        }
        std::mem::take(T::decoded(&mut one)).into_vec().pop()
    }
}

/// An object's namespace and name, and its resourceVersion.
fn key(meta: &kube::api::ObjectMeta) -> (Key, String) {
    (
        (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        ),
        meta.resource_version.clone().unwrap_or_default(),
    )
}
