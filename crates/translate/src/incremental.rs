//! Translation that redoes only what changed.
//!
//! [`Incremental`] keeps the objects and the result of its previous translation. When the new
//! objects differ from them only in EndpointSlices (and legacy Endpoints), the dominant churn of a
//! cluster, it collects again the endpoints of the backends of the Services those name, and
//! nothing else: the new snapshot shares every other host, backend and certificate with the
//! previous one. Any other change is translated in full. Either way the result equals
//! [`crate::translate`]'s for the same objects, diagnostics included.

use crate::backends::EndpointIndex;
use crate::objects::{EndpointSlice, Endpoints, List, ObjectMeta, Objects, SERVICE_NAME_LABEL};
use crate::{translate_recorded, with_endpoint_diagnostics, Options, Recorded, Translation};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A translator that remembers its previous translation (see the module documentation).
pub struct Incremental {
    options: Options,
    last: Option<Last>,
}

struct Last {
    objects: Objects,
    translation: Translation,
    recorded: Recorded,
}

/// How [`Incremental::update`] got its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Everything translated.
    Full,
    /// Only EndpointSlices or Endpoints changed: the backends of `services` Services were
    /// collected again, `backends` of them have other endpoints now.
    Endpoints { services: usize, backends: usize },
}

/// A Service, by namespace and name.
type ServiceKey = (String, String);

impl Incremental {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            last: None,
        }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The translation of `objects`: equal to [`crate::translate`]'s.
    pub fn translate(&mut self, objects: &Objects) -> Translation {
        self.update(objects).0
    }

    /// [`Incremental::translate`], and which way it went.
    pub fn update(&mut self, objects: &Objects) -> (Translation, Update) {
        if let Some(last) = &mut self.last {
            if let Some(update) = last.endpoints_only(objects) {
                return (last.translation.clone(), update);
            }
        }
        let (translation, recorded) = translate_recorded(objects, &self.options);
        // Kept as the provider's own copy (lists are shared until one side changes one).
        self.last = Some(Last {
            objects: objects.clone(),
            translation: translation.clone(),
            recorded,
        });
        (translation, Update::Full)
    }
}

impl Last {
    /// When `objects` differ from the previous ones in EndpointSlices and Endpoints only: the
    /// translation updated to them.
    fn endpoints_only(&mut self, objects: &Objects) -> Option<Update> {
        if !same_except_endpoints(&self.objects, objects) {
            return None;
        }
        let mut services = HashSet::new();
        sync(
            &mut self.objects.endpoint_slices,
            &objects.endpoint_slices,
            |s: &EndpointSlice| &s.metadata,
            |s| {
                s.metadata
                    .labels
                    .get(SERVICE_NAME_LABEL)
                    .map(|svc| (s.metadata.namespace().to_owned(), svc.clone()))
            },
            &mut services,
        );
        sync(
            &mut self.objects.endpoints,
            &objects.endpoints,
            |e: &Endpoints| &e.metadata,
            |e| Some((e.metadata.namespace().to_owned(), e.metadata.name.clone())),
            &mut services,
        );
        let mut changed = 0;
        if !services.is_empty() {
            let index = EndpointIndex::new(objects, &services);
            let snapshot = &mut self.translation.snapshot;
            let sources = &mut self.recorded.sources;
            let mut diagnostics_changed = false;
            // By namespace, then name: looked up without a copy of either.
            let mut named: HashMap<&str, HashSet<&str>> = HashMap::new();
            for (namespace, name) in &services {
                named.entry(namespace).or_default().insert(name);
            }
            for (backend, source) in snapshot.backends.iter_mut().zip(sources.iter_mut()) {
                let wanted = named
                    .get(source.namespace.as_str())
                    .is_some_and(|names| names.contains(source.service.as_str()));
                if !wanted {
                    continue;
                }
                let Some((new, new_source)) = index.recollect(backend, source) else {
                    continue;
                };
                if new != **backend {
                    *backend = Arc::new(new);
                    changed += 1;
                }
                diagnostics_changed |= new_source.diagnostics != source.diagnostics;
                *source = new_source;
            }
            if diagnostics_changed {
                self.translation.diagnostics =
                    with_endpoint_diagnostics(&self.recorded.base, &self.recorded.sources);
            }
        }
        Some(Update::Endpoints {
            services: services.len(),
            backends: changed,
        })
    }
}

/// Make `kept` equal to `new` (the same copy), adding to `services` the Service of every object
/// added, removed or changed (before and after).
fn sync<T: Clone + PartialEq>(
    kept: &mut List<T>,
    new: &List<T>,
    meta: impl Fn(&T) -> &ObjectMeta,
    service: impl Fn(&T) -> Option<ServiceKey>,
    services: &mut HashSet<ServiceKey>,
) {
    if kept.same(new) {
        return;
    }
    let key = |o: &T| {
        let m = meta(o);
        (m.namespace().to_owned(), m.name.clone())
    };
    let same_order = kept.len() == new.len()
        && kept
            .iter()
            .zip(new)
            .all(|(a, b)| meta(a).name == meta(b).name && meta(a).namespace == meta(b).namespace);
    if same_order {
        // The usual case: the same objects in the same order, a few of them changed.
        for (old, o) in kept.iter_shared().zip(new.iter_shared()) {
            if !Arc::ptr_eq(old, o) && **old != **o {
                services.extend(service(old));
                services.extend(service(o));
            }
        }
        *kept = new.clone();
        return;
    }
    let before: HashMap<ServiceKeyRef, &T> = kept.iter().map(|o| (key(o), o)).collect();
    let mut seen = HashSet::new();
    for o in new {
        let k = key(o);
        match before.get(&k) {
            Some(old) if *old == o => {}
            Some(old) => {
                services.extend(service(old));
                services.extend(service(o));
            }
            None => services.extend(service(o)),
        }
        seen.insert(k);
    }
    for (k, old) in &before {
        if !seen.contains(k) {
            services.extend(service(old));
        }
    }
    drop(before);
    *kept = new.clone();
}

/// An object's namespace and name.
type ServiceKeyRef = (String, String);

/// The objects are the same but for EndpointSlices and Endpoints.
fn same_except_endpoints(a: &Objects, b: &Objects) -> bool {
    let Objects {
        ingresses,
        services,
        endpoint_slices: _,
        endpoints: _,
        secrets,
        ingress_classes,
        config_maps,
        gateway_classes,
        gateways,
        http_routes,
        reference_grants,
        namespaces,
        deployments: _,
    } = a;
    *ingresses == b.ingresses
        && *services == b.services
        && *secrets == b.secrets
        && *ingress_classes == b.ingress_classes
        && *config_maps == b.config_maps
        && *gateway_classes == b.gateway_classes
        && *gateways == b.gateways
        && *http_routes == b.http_routes
        && *reference_grants == b.reference_grants
        && *namespaces == b.namespaces
}
