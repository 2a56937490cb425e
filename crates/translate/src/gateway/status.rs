//! What the Gateway API status of each object should say, computed with the translation (a pure
//! function of the objects, like the snapshot): the Kubernetes provider writes it. A `Problem`
//! is a condition that is not in its good state, with the spec's reason; `None` is the good one.

use serde::Serialize;

/// The status of every Gateway API object Remora serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GatewayApiStatus {
    /// Remora's GatewayClasses: all `Accepted`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<GatewayStatus>,
    /// Routes with at least one parent reference to one of Remora's Gateways.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteStatus>,
}

impl GatewayApiStatus {
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty() && self.gateways.is_empty() && self.routes.is_empty()
    }

    /// The status once the listeners' sockets are known: a listener that translation would serve
    /// but whose port could not be bound (`unbound`: port and why) is not `Accepted`
    /// (`PortUnavailable`, as the Gateway API says) and not served.
    pub fn with_unbound_ports(mut self, unbound: &[(u16, String)]) -> Self {
        if unbound.is_empty() {
            return self;
        }
        for l in self.gateways.iter_mut().flat_map(|g| &mut g.listeners) {
            let Some((_, why)) = unbound.iter().find(|(p, _)| i32::from(*p) == l.port) else {
                continue;
            };
            if l.served {
                l.served = false;
                l.accepted = Some(Problem::new(
                    "PortUnavailable",
                    format!("port {} cannot be listened on: {why}", l.port),
                ));
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassStatus {
    pub name: String,
    /// `metadata.generation` as translated (`observedGeneration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayStatus {
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Same order as `spec.listeners`.
    pub listeners: Vec<ListenerStatus>,
}

impl GatewayStatus {
    /// Some listener is served (`Programmed`).
    pub fn programmed(&self) -> bool {
        self.listeners.iter().any(|l| l.served)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenerStatus {
    pub name: String,
    /// As written.
    pub port: i32,
    /// Its routes are served (`Programmed`).
    pub served: bool,
    pub attached_routes: u32,
    pub supported_kinds: Vec<String>,
    /// `Accepted` false: `UnsupportedProtocol`, `PortUnavailable`...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Problem>,
    /// `ResolvedRefs` false: `InvalidCertificateRef`, `RefNotPermitted`, `InvalidRouteKinds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_refs: Option<Problem>,
    /// `Conflicted` true: `ProtocolConflict`, `HostnameConflict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicted: Option<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteStatus {
    /// `HTTPRoute`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    pub parents: Vec<ParentStatus>,
}

/// The status of a route for one of its parent references to Remora's Gateways.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentStatus {
    pub gateway_namespace: String,
    pub gateway_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// `Accepted` false: `NotAllowedByListeners`, `NoMatchingListenerHostname`,
    /// `NoMatchingParent`, `UnsupportedValue`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Problem>,
    /// `ResolvedRefs` false: `BackendNotFound`, `RefNotPermitted`, `InvalidKind`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_refs: Option<Problem>,
    /// Remora's own condition `remora.dev/SessionPersistence` false (`SessionNameConflict`): a
    /// rule's session name is one an older route's rule uses on the same host, so this rule's
    /// sessions are not persistent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_conflict: Option<Problem>,
}

/// A condition away from its good state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub reason: String,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}
