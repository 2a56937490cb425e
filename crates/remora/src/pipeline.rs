//! Objects in, snapshot published: the step every provider ends with.

use crate::gateway::Gateways;
use model::{Diagnostic, Severity};
use proxy::Proxy;
use std::sync::Arc;
use translate::{Incremental, Objects, Options, Update};

/// What one translation changed.
pub struct Applied {
    /// Every diagnostic of this translation (the published table's own list).
    pub diagnostics: Arc<Vec<Diagnostic>>,
    /// The Ingresses served now.
    pub served: Vec<model::ObjectRef>,
    /// What the status of the Gateway API objects served now should say (the controller writes
    /// it).
    pub gateway_status: translate::GatewayApiStatus,
}

pub struct Pipeline {
    proxy: Proxy,
    /// Told the Gateway listeners of every published snapshot, to bind or close their sockets.
    gateways: Gateways,
    /// Translates what changed since the previous objects (endpoints only), else everything.
    translator: Incremental,
    /// Diagnostics of the previous translation (sorted, as translation gives them): only new ones
    /// are logged, so a reload does not repeat every warning.
    seen: Arc<Vec<Diagnostic>>,
}

impl Pipeline {
    pub fn new(proxy: Proxy, gateways: Gateways, options: Options) -> Self {
        Self {
            proxy,
            gateways,
            translator: Incremental::new(options),
            seen: Arc::default(),
        }
    }

    /// Translate and publish; then the Gateway listeners' sockets follow the new snapshot.
    pub fn apply(&mut self, objects: &Objects) -> Applied {
        let started = std::time::Instant::now();
        let (t, update) = self.translator.update(objects);
        for d in t
            .diagnostics
            .iter()
            .filter(|d| self.seen.binary_search(d).is_err())
        {
            match d.severity {
                Severity::Warning => tracing::warn!("{d}"),
                Severity::Info => tracing::info!("{d}"),
            }
        }
        let s = &t.snapshot;
        let (hosts, routes, backends) = (s.hosts.len(), s.route_count(), s.backends.len());
        let listeners = s.listeners.len();
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
            listeners,
            incremental = matches!(update, Update::Endpoints { .. }),
            micros = started.elapsed().as_micros() as u64,
            "configuration published"
        );
        let table = self.proxy.table();
        self.gateways.want(&table.snapshot.listeners);
        self.seen = table.diagnostics.clone();
        Applied {
            diagnostics: self.seen.clone(),
            served: t.served,
            gateway_status: t.gateway_status,
        }
    }
}
