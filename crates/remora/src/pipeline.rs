//! Objects in, snapshot published: the step every provider ends with.

use model::{Diagnostic, Severity};
use proxy::Proxy;
use std::collections::BTreeSet;
use translate::{Objects, Options};

/// What one translation changed.
pub struct Applied {
    /// Every diagnostic of this translation.
    pub diagnostics: Vec<Diagnostic>,
    /// The Ingresses served now.
    pub served: Vec<model::ObjectRef>,
}

pub struct Pipeline {
    proxy: Proxy,
    options: Options,
    /// Diagnostics of the previous translation: only new ones are logged, so a reload does not
    /// repeat every warning.
    seen: BTreeSet<Diagnostic>,
}

impl Pipeline {
    pub fn new(proxy: Proxy, options: Options) -> Self {
        Self {
            proxy,
            options,
            seen: BTreeSet::new(),
        }
    }

    /// Translate and publish.
    pub fn apply(&mut self, objects: &Objects) -> Applied {
        let started = std::time::Instant::now();
        let t = translate::translate(objects, &self.options);
        let now: BTreeSet<Diagnostic> = t.diagnostics.iter().cloned().collect();
        for d in now.difference(&self.seen) {
            match d.severity {
                Severity::Warning => tracing::warn!("{d}"),
                Severity::Info => tracing::info!("{d}"),
            }
        }
        self.seen = now;
        let s = &t.snapshot;
        let (hosts, routes, backends) = (s.hosts.len(), s.route_count(), s.backends.len());
        let endpoints: usize = s.backends.iter().map(|b| b.endpoints.len()).sum();
        let generation = self
            .proxy
            .publish(t.snapshot, t.diagnostics, started.elapsed());
        tracing::info!(
            generation,
            hosts,
            routes,
            backends,
            endpoints,
            micros = started.elapsed().as_micros() as u64,
            "configuration published"
        );
        Applied {
            diagnostics: self.seen.iter().cloned().collect(),
            served: t.served,
        }
    }
}
