//! Secrets, ConfigMaps and Services by namespace and name, and the names a translation asked for.
//!
//! Translation reads these three kinds only by name (an annotation's Secret, a TLS Secret, the
//! global ConfigMap, the Service of a backend), and only through [`Lookups`], which records every
//! name asked, found or not. So an object of these kinds whose name no translation asked for
//! cannot change what it produces: [`crate::Incremental`] leaves a change to such objects
//! (Helm's release Secrets, service account tokens, leader election ConfigMaps, Services no
//! Ingress names) out without translating anything.

use crate::objects::{ConfigMap, ObjectMeta, Objects, Secret, Service};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// An object's namespace and name.
pub(crate) type Name = (String, String);

/// The objects of one translation by name (the first of several with the same name).
pub(crate) struct Lookups<'a> {
    secrets: HashMap<(&'a str, &'a str), &'a Secret>,
    config_maps: HashMap<(&'a str, &'a str), &'a ConfigMap>,
    services: HashMap<(&'a str, &'a str), &'a Service>,
    asked: RefCell<Asked>,
}

/// The names a translation asked for, per kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct Asked {
    pub(crate) secrets: HashSet<Name>,
    pub(crate) config_maps: HashSet<Name>,
    pub(crate) services: HashSet<Name>,
}

fn by_name<'a, T>(
    list: impl IntoIterator<Item = &'a T>,
    meta: impl Fn(&'a T) -> &'a ObjectMeta,
) -> HashMap<(&'a str, &'a str), &'a T> {
    let mut map = HashMap::new();
    for o in list {
        let m = meta(o);
        map.entry((m.namespace(), m.name.as_str())).or_insert(o);
    }
    map
}

fn ask(set: &mut HashSet<Name>, namespace: &str, name: &str) {
    set.insert((namespace.to_owned(), name.to_owned()));
}

impl<'a> Lookups<'a> {
    pub(crate) fn new(objects: &'a Objects) -> Self {
        Self {
            secrets: by_name(&objects.secrets, |s| &s.metadata),
            config_maps: by_name(&objects.config_maps, |c| &c.metadata),
            services: by_name(&objects.services, |s| &s.metadata),
            asked: RefCell::default(),
        }
    }

    pub(crate) fn secret(&self, namespace: &str, name: &str) -> Option<&'a Secret> {
        ask(&mut self.asked.borrow_mut().secrets, namespace, name);
        self.secrets.get(&(namespace, name)).copied()
    }

    pub(crate) fn config_map(&self, namespace: &str, name: &str) -> Option<&'a ConfigMap> {
        ask(&mut self.asked.borrow_mut().config_maps, namespace, name);
        self.config_maps.get(&(namespace, name)).copied()
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        ask(&mut self.asked.borrow_mut().services, namespace, name);
        self.services.get(&(namespace, name)).copied()
    }

    /// Every name asked for.
    pub(crate) fn asked(self) -> Asked {
        self.asked.into_inner()
    }
}
