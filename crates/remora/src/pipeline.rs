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
        if matches!(update, Update::Endpoints { backends: 0, .. }) && t.diagnostics == *self.seen {
            // Only objects nothing reads changed (a Secret no Ingress names, the EndpointSlice
            // of a Service no route uses): the table serving now is this translation's already.
            // The Gateway listeners not served are tried again all the same.
            tracing::debug!(?update, "nothing to publish");
            self.gateways.want(&self.proxy.table().snapshot.listeners);
            return Applied {
                diagnostics: self.seen.clone(),
                served: t.served,
                gateway_status: t.gateway_status,
            };
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn objects(docs: &[serde_json::Value]) -> Objects {
        let mut objects = Objects::default();
        for d in docs {
            objects.add_document(d.clone()).unwrap();
        }
        objects.sort();
        objects
    }

    /// A change only to objects no translation reads publishes nothing: the table serving stays
    /// the one serving; a change that matters still publishes.
    #[tokio::test]
    async fn objects_nothing_reads_publish_nothing() {
        let proxy = Proxy::new(proxy::ProxyConfig::new(balance::CookieKey::from_secret(
            b"pipeline test",
        )))
        .unwrap();
        let shutdown = crate::shutdown::Shutdown::on_signals(std::time::Duration::ZERO);
        let config = crate::gateway::Config {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            reserved: Vec::new(),
            workers: Vec::new(),
        };
        let (gateways, _task) = crate::gateway::start(proxy.clone(), config, shutdown);
        let mut pipeline = Pipeline::new(proxy.clone(), gateways, Options::default());
        let ingress = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"rules": [{"host": "web.test", "http": {"paths": [{"path": "/",
                "pathType": "Prefix", "backend": {"service": {"name": "web",
                "port": {"number": 80}}}}]}}]},
        });
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        });
        let slice = |ip: &str| {
            json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-1", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
                "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            })
        };
        let release = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "sh.helm.release.v1.web.v2", "namespace": "default"},
            "data": {"release": "aGVsbG8="},
        });
        pipeline.apply(&objects(&[
            ingress.clone(),
            service.clone(),
            slice("10.0.0.1"),
        ]));
        let serving = proxy.table();
        let applied = pipeline.apply(&objects(&[
            ingress.clone(),
            service.clone(),
            slice("10.0.0.1"),
            release.clone(),
        ]));
        assert!(Arc::ptr_eq(&serving, &proxy.table()), "republished");
        assert!(Arc::ptr_eq(&applied.diagnostics, &serving.diagnostics));
        pipeline.apply(&objects(&[ingress, service, slice("10.0.0.2"), release]));
        let now = proxy.table();
        assert!(!Arc::ptr_eq(&serving, &now));
        assert_eq!(
            now.snapshot.backends[0].endpoints[0].addr,
            "10.0.0.2:8080".parse().unwrap()
        );
    }
}
