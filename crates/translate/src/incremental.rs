//! Translation that redoes only what changed.
//!
//! [`Incremental`] keeps the objects and the result of its previous translation. When the new
//! objects differ from them only in EndpointSlices (and legacy Endpoints), the dominant churn of a
//! cluster, it collects again the endpoints of the backends of the Services those name, and
//! nothing else: the new snapshot shares every other host, backend and certificate with the
//! previous one. Secrets, ConfigMaps and Services that the previous translation never asked for
//! by name (see [`crate::lookup`]) may change too, and Ingresses in what translation does not
//! read of them (labels, other tools' annotations): they cannot change the result, so they are
//! only kept. Any other change is translated in full. Either way the result equals
//! [`crate::translate`]'s for the same objects, diagnostics included.

use crate::backends::EndpointIndex;
use crate::lookup::Name;
use crate::objects::{
    EndpointSlice, Endpoints, Ingress, List, ObjectMeta, Objects, SERVICE_NAME_LABEL,
};
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
    /// Only EndpointSlices or Endpoints changed, and objects the translation never asked for:
    /// the backends of `services` Services were collected again, `backends` of them have other
    /// endpoints now; `unasked` Secrets, ConfigMaps and Services changed that no translation
    /// reads.
    Endpoints {
        services: usize,
        backends: usize,
        unasked: usize,
    },
}

/// A Service, by namespace and name.
type ServiceKey = Name;

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
    /// When `objects` differ from the previous ones in EndpointSlices, Endpoints and objects
    /// the translation never asked for only: the translation updated to them.
    fn endpoints_only(&mut self, objects: &Objects) -> Option<Update> {
        if !same_except_endpoints(&self.objects, objects) {
            return None;
        }
        let asked = &self.recorded.asked;
        let kept = &self.objects;
        let mut unasked = 0;
        // Secrets and ConfigMaps: any change to one asked for counts.
        let unread = each_changed(&kept.secrets, &objects.secrets, |s| &s.metadata, |s, _| {
            unasked += 1;
            !asked_for(&s.metadata, &asked.secrets)
        }) && each_changed(
            &kept.config_maps,
            &objects.config_maps,
            |c| &c.metadata,
            |c, _| {
                unasked += 1;
                !asked_for(&c.metadata, &asked.config_maps)
            },
        )
        // Services: translation reads only their spec (labels and annotations, which Helm
        // rewrites on every upgrade, do not count).
        && each_changed(&kept.services, &objects.services, |s| &s.metadata, |s, other| {
            unasked += 1;
            !asked_for(&s.metadata, &asked.services) || other.is_some_and(|o| o.spec == s.spec)
        });
        if !unread {
            return None;
        }
        self.objects.ingresses = objects.ingresses.clone();
        self.objects.secrets = objects.secrets.clone();
        self.objects.config_maps = objects.config_maps.clone();
        self.objects.services = objects.services.clone();
        let mut services = HashSet::new();
        sync(
            &mut self.objects.endpoint_slices,
            &objects.endpoint_slices,
            |s: &EndpointSlice| &s.metadata,
            |m| {
                m.labels
                    .get(SERVICE_NAME_LABEL)
                    .map(|svc| (m.namespace().to_owned(), svc.clone()))
            },
            &mut services,
        );
        sync(
            &mut self.objects.endpoints,
            &objects.endpoints,
            |e: &Endpoints| &e.metadata,
            |m| Some((m.namespace().to_owned(), m.name.clone())),
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
            // Each object counted once per version (a changed one twice).
            unasked,
        })
    }
}

/// Whether the object of `meta` is one a translation asked for.
fn asked_for(meta: &ObjectMeta, asked: &HashSet<Name>) -> bool {
    asked.contains(&(meta.namespace().to_owned(), meta.name.clone()))
}

/// Calls `changed` with every object of `kept` and `new` that the other list does not hold as
/// it is (added, removed, or changed: both versions, each with the other), and the other version
/// if any, until it returns false; false then.
fn each_changed<T: PartialEq>(
    kept: &List<T>,
    new: &List<T>,
    meta: impl Fn(&T) -> &ObjectMeta,
    mut changed: impl FnMut(&T, Option<&T>) -> bool,
) -> bool {
    if kept.same(new) {
        return true;
    }
    let same_order = kept.len() == new.len()
        && kept
            .iter()
            .zip(new)
            .all(|(a, b)| meta(a).name == meta(b).name && meta(a).namespace == meta(b).namespace);
    if same_order {
        // The usual case: the same objects in the same order, a few of them changed.
        for (old, o) in kept.iter_shared().zip(new.iter_shared()) {
            if !Arc::ptr_eq(old, o)
                && **old != **o
                && !(changed(old, Some(o)) && changed(o, Some(old)))
            {
                return false;
            }
        }
        return true;
    }
    let key = |o: &T| {
        let m = meta(o);
        (m.namespace().to_owned(), m.name.clone())
    };
    let before: HashMap<Name, &T> = kept.iter().map(|o| (key(o), o)).collect();
    let mut seen = HashSet::new();
    for o in new {
        let k = key(o);
        let unchanged = match before.get(&k) {
            Some(old) if *old == o => true,
            Some(old) => changed(old, Some(o)) && changed(o, Some(old)),
            None => changed(o, None),
        };
        if !unchanged {
            return false;
        }
        seen.insert(k);
    }
    before
        .iter()
        .filter(|(k, _)| !seen.contains(*k))
        .all(|(_, old)| changed(old, None))
}

/// Make `kept` equal to `new` (the same copy), adding to `services` the Service of every object
/// added, removed or changed (before and after).
fn sync<T: PartialEq>(
    kept: &mut List<T>,
    new: &List<T>,
    meta: impl Fn(&T) -> &ObjectMeta,
    service: impl Fn(&ObjectMeta) -> Option<ServiceKey>,
    services: &mut HashSet<ServiceKey>,
) {
    each_changed(kept, new, &meta, |o, _| {
        services.extend(service(meta(o)));
        true
    });
    *kept = new.clone();
}

/// The two lists of Ingresses are the same for translation: in the same order, each the same
/// but for what translation does not read (labels, annotations of other tools: Helm and Argo CD
/// rewrite them on every sync).
fn read_alike(a: &List<Ingress>, b: &List<Ingress>) -> bool {
    fn read(i: &Ingress) -> impl Iterator<Item = (&String, &String)> {
        i.metadata
            .annotations
            .iter()
            .filter(|(k, _)| crate::annotations::read_by_translation(k))
    }
    a.same(b)
        || (a.len() == b.len()
            && a.iter_shared().zip(b.iter_shared()).all(|(x, y)| {
                Arc::ptr_eq(x, y)
                    || (x.api_version == y.api_version
                        && x.spec == y.spec
                        && x.metadata.name == y.metadata.name
                        && x.metadata.namespace() == y.metadata.namespace()
                        && x.metadata.creation_timestamp == y.metadata.creation_timestamp
                        && read(x).eq(read(y)))
            }))
}

/// The objects are the same but for EndpointSlices, Endpoints, and the kinds translation reads
/// by name only (Secrets, ConfigMaps, Services: compared by the caller).
fn same_except_endpoints(a: &Objects, b: &Objects) -> bool {
    let Objects {
        ingresses,
        services: _,
        endpoint_slices: _,
        endpoints: _,
        secrets: _,
        ingress_classes,
        config_maps: _,
        gateway_classes,
        gateways,
        http_routes,
        reference_grants,
        namespaces,
        deployments: _,
    } = a;
    read_alike(ingresses, &b.ingresses)
        && *ingress_classes == b.ingress_classes
        && *gateway_classes == b.gateway_classes
        && *gateways == b.gateways
        && *http_routes == b.http_routes
        && *reference_grants == b.reference_grants
        && *namespaces == b.namespaces
}
