//! A pure function from Kubernetes objects to a routing [`Snapshot`] plus [`Diagnostic`]s.
//!
//! Translation never fails: whatever cannot be honoured (a missing Service, an invalid annotation
//! value) becomes a diagnostic naming the object and the annotation, and a default or a 503 target
//! is used instead, so one bad Ingress never takes the others down. The same objects always give
//! the same snapshot, whatever their order, which is what lets several Remora replicas agree.
//!
//! Modules: [`objects`] (the input types), `class` (which Ingresses are ours), `ingress` (rules and
//! paths into routes), `backends` (Service ports and EndpointSlices into backends), `annotations`
//! (one module per annotation family), `tls` (the `spec.tls` section), `configmap` (the global
//! ingress-nginx ConfigMap: defaults the annotations override, proxy-wide settings).

mod annotations;
mod backends;
mod class;
mod configmap;
pub mod convert;
mod gateway;
mod incremental;
mod ingress;
mod lookup;
pub mod migrate;
pub mod objects;
mod tls;

pub use gateway::status::{self as gateway_status, GatewayApiStatus};
pub use gateway::DEFAULT_CONTROLLER_NAME as DEFAULT_GATEWAY_CONTROLLER;
pub use incremental::{Incremental, Update};
pub use model;
use model::{Diagnostic, ObjectRef, Severity, Snapshot};
pub use objects::Objects;
use std::sync::Arc;

/// Settings that change what translation serves, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// File mode (`controller` unset): when not empty, only Ingresses of these classes are served
    /// (`spec.ingressClassName` or the legacy `kubernetes.io/ingress.class` annotation); when
    /// empty, every Ingress is. Controller mode: the legacy annotation values served besides the
    /// names of the IngressClasses of `controller`.
    pub ingress_classes: Vec<String>,
    /// Controller mode: the `spec.controller` value of the IngressClasses this Remora serves
    /// (`remora.dev/ingress-controller`, or `k8s.io/ingress-nginx` to take over its classes).
    pub controller: Option<String>,
    /// Controller mode: also serve Ingresses without any class.
    pub watch_ingress_without_class: bool,
    /// Bounded-load factor for balanced affinity, in hundredths, unless an Ingress sets
    /// `remora.dev/session-balance-factor`. `None`: unbounded.
    pub session_balance_factor: Option<u32>,
    /// Redirect plain HTTP to HTTPS on hosts with TLS unless an Ingress says `ssl-redirect:
    /// "false"` (ingress-nginx's `ssl-redirect` ConfigMap key, default true).
    pub default_ssl_redirect: bool,
    /// Annotations may name objects of other namespaces (`auth-secret: namespace/name`);
    /// ingress-nginx's `allow-cross-namespace-resources` ConfigMap key, default false.
    pub allow_cross_namespace_resources: bool,
    /// The ingress-nginx ConfigMap read for global settings (`--configmap`), as namespace and
    /// name. `None`: ingress-nginx's defaults.
    pub configmap: Option<(String, String)>,
    /// The `controllerName` of the GatewayClasses served (`--gateway-controller-name`).
    pub gateway_controller: String,
    /// ingress-nginx's `--default-backend-service` (namespace and name; its first port): answers
    /// the `custom-http-errors` of Ingresses without a `default-backend` annotation.
    pub default_backend_service: Option<(String, String)>,
    /// ingress-nginx's `--enable-ssl-passthrough`: the `ssl-passthrough` annotation relays the
    /// TLS connections of its hosts to their pods. Without it, the annotation has no effect (a
    /// warning says so).
    pub enable_ssl_passthrough: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ingress_classes: Vec::new(),
            controller: None,
            watch_ingress_without_class: false,
            session_balance_factor: Some(model::DEFAULT_BALANCE_FACTOR),
            default_ssl_redirect: true,
            allow_cross_namespace_resources: false,
            configmap: None,
            gateway_controller: DEFAULT_GATEWAY_CONTROLLER.to_owned(),
            default_backend_service: None,
            enable_ssl_passthrough: false,
        }
    }
}

/// What translation produced.
#[derive(Debug, Clone, Default)]
pub struct Translation {
    pub snapshot: Snapshot,
    /// Sorted and without duplicates.
    pub diagnostics: Vec<Diagnostic>,
    /// The Ingresses this configuration serves (their class is ours), sorted: the ones whose
    /// status a controller reports.
    pub served: Vec<ObjectRef>,
    /// What the status of each Gateway API object Remora serves should say.
    pub gateway_status: GatewayApiStatus,
}

/// Translate every served Ingress into one snapshot.
pub fn translate(objects: &Objects, options: &Options) -> Translation {
    translate_recorded(objects, options).0
}

/// What a translation's backends were made of, kept by [`Incremental`] to redo only them.
pub(crate) struct Recorded {
    /// The diagnostics that do not depend on endpoints, sorted and without duplicates.
    base: Vec<Diagnostic>,
    /// Same order as the snapshot's backends.
    sources: Vec<backends::Source>,
    /// The Secrets, ConfigMaps and Services the translation asked for by name.
    asked: lookup::Asked,
}

/// [`translate`], and what [`Incremental`] needs to update its result.
pub(crate) fn translate_recorded(objects: &Objects, options: &Options) -> (Translation, Recorded) {
    let mut diags = Diagnostics::default();
    let lookups = lookup::Lookups::new(objects);
    let defaults = configmap::read(&lookups, options, &mut diags);
    let served = class::served_ingresses(objects, options, &mut diags);
    let mut served_refs: Vec<ObjectRef> = served
        .iter()
        .map(|i| ObjectRef::new("Ingress", i.metadata.namespace(), &i.metadata.name))
        .collect();
    served_refs.sort();
    let mut backends = backends::Backends::new(objects, &lookups);
    let mut hosts = ingress::HostTable::default();
    let mut certificates = tls::Certificates::new(&lookups);
    // Primaries first, then canaries, which attach to the routes of the primaries.
    let mut canaries = Vec::new();
    // Ingresses with `from-to-www-redirect`: their redirects go where no Ingress serves.
    let mut www = Vec::new();
    for ing in served {
        let object = ObjectRef::new("Ingress", ing.metadata.namespace(), &ing.metadata.name);
        let ann = annotations::parse(
            &ing.metadata.annotations,
            &object,
            options,
            &lookups,
            &defaults,
            &mut diags,
        );
        match &ann.canary {
            Some(_) => canaries.push((ing, object, ann)),
            None => {
                let tls = tls::resolve(ing, &object, &mut certificates, &mut diags);
                let ssl = ingress::RedirectRule {
                    with_tls: ann.ssl.redirect.unwrap_or(defaults.ssl_redirect),
                    force: ann.ssl.force.unwrap_or(defaults.force_ssl_redirect),
                };
                ingress::add(
                    ing,
                    &object,
                    &ann,
                    &tls,
                    ssl,
                    &mut backends,
                    &mut hosts,
                    options,
                    &mut diags,
                );
                if ann.from_to_www {
                    www.push((ing, object));
                }
            }
        }
    }
    for (ing, object, ann) in &canaries {
        ingress::add_canary(ing, object, ann, &mut backends, &mut hosts, &mut diags);
    }
    for (ing, object) in www {
        hosts.redirect_from_to_www(ing, &object, &mut diags);
    }
    let (listeners, gateway_status) = gateway::translate(
        objects,
        options,
        &mut backends,
        &mut certificates,
        &mut diags,
    );
    let hosts = hosts.finish(&mut diags);
    let backends = backends.finish();
    let snapshot = Snapshot {
        hosts: Arc::new(hosts),
        listeners: Arc::new(listeners),
        backends: backends.list.into_iter().map(Arc::new).collect(),
        certificates: Arc::new(certificates.finish()),
        settings: defaults.settings,
    };
    let base = diags.finish();
    let diagnostics = with_endpoint_diagnostics(&base, &backends.sources);
    let translation = Translation {
        snapshot,
        diagnostics,
        served: served_refs,
        gateway_status,
    };
    let recorded = Recorded {
        base,
        sources: backends.sources,
        asked: lookups.asked(),
    };
    (translation, recorded)
}

/// All diagnostics of a translation: `base` and those about each backend's endpoints, sorted and
/// without duplicates.
fn with_endpoint_diagnostics(base: &[Diagnostic], sources: &[backends::Source]) -> Vec<Diagnostic> {
    let mut all = Diagnostics(base.to_vec());
    for s in sources {
        all.0.extend(s.diagnostics.iter().cloned());
    }
    all.finish()
}

/// Collects diagnostics during one translation.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    pub(crate) fn push(
        &mut self,
        severity: Severity,
        object: &ObjectRef,
        annotation: Option<&str>,
        message: impl Into<String>,
    ) {
        self.0.push(Diagnostic {
            severity,
            object: object.clone(),
            annotation: annotation.map(str::to_owned),
            message: message.into(),
        });
    }

    pub(crate) fn warn(&mut self, object: &ObjectRef, message: impl Into<String>) {
        self.push(Severity::Warning, object, None, message);
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        self.0.sort();
        self.0.dedup();
        self.0
    }
}
