//! Kubernetes Events for configuration warnings, so `kubectl describe ingress` shows why an
//! annotation was ignored or a Service is missing, and `kubectl describe configmap` why a key of
//! the global ConfigMap was. Only the leader records them (one Event per warning, not one per
//! replica).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::Client;
use model::{Diagnostic, Severity};
use std::sync::Arc;
use tokio::sync::watch;

pub struct Events {
    recorder: Recorder,
}

impl Events {
    pub fn new(client: Client, instance: &str) -> Self {
        Self {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: "remora".to_owned(),
                    instance: Some(instance.to_owned()),
                },
            ),
        }
    }

    /// While this replica leads, record an Event for every warning about an Ingress in the
    /// current diagnostics that it has not recorded yet (all of them when it becomes the leader,
    /// so warnings from before the election are not lost).
    pub async fn run(
        self,
        mut leader: watch::Receiver<bool>,
        mut diagnostics: watch::Receiver<Arc<Vec<Diagnostic>>>,
    ) {
        // Sorted, as translation gives them.
        let mut recorded: Arc<Vec<Diagnostic>> = Arc::default();
        loop {
            if *leader.borrow_and_update() {
                let current = diagnostics.borrow_and_update().clone();
                let fresh = current
                    .iter()
                    .filter(|d| recorded.binary_search(d).is_err());
                self.warn(fresh).await;
                // Forget the ones that went away, so they are recorded again if they come back.
                recorded = current;
            } else {
                recorded = Arc::default();
            }
            tokio::select! {
                r = leader.changed() => if r.is_err() { return },
                r = diagnostics.changed() => if r.is_err() { return },
            }
        }
    }

    /// Record warnings about Ingresses and the ConfigMap (others are only logged; the Gateway
    /// API's objects have their status conditions).
    async fn warn(&self, diagnostics: impl Iterator<Item = &Diagnostic>) {
        for d in diagnostics {
            let api_version = match d.object.kind.as_str() {
                "Ingress" => "networking.k8s.io/v1",
                "ConfigMap" => "v1",
                _ => continue,
            };
            if d.severity != Severity::Warning {
                continue;
            }
            let reference = ObjectReference {
                api_version: Some(api_version.to_owned()),
                kind: Some(d.object.kind.clone()),
                namespace: Some(d.object.namespace.clone()),
                name: Some(d.object.name.clone()),
                ..ObjectReference::default()
            };
            let note = match &d.annotation {
                Some(a) => format!("{a}: {}", d.message),
                None => d.message.clone(),
            };
            let event = Event {
                type_: EventType::Warning,
                reason: "ConfigurationWarning".to_owned(),
                note: Some(note.chars().take(1000).collect()),
                action: "Translate".to_owned(),
                secondary: None,
            };
            if let Err(e) = self.recorder.publish(&event, &reference).await {
                tracing::warn!(error = %e, "cannot record an Event");
            }
        }
    }
}
