//! The Kubernetes provider: watches Ingress, IngressClass, Service, EndpointSlice and TLS Secret
//! objects, and when their CRDs are installed the Gateway API's (GatewayClass, Gateway,
//! HTTPRoute, GRPCRoute, ReferenceGrant) and Namespaces, with kube-rs watchers whose events patch
//! one cache of decoded objects (a relist replaces a watch's objects as a whole), and hands the
//! objects, debounced, to the same pure `translate` the file provider feeds.
//!
//! Nothing here knows about routing: objects go out as [`translate::Objects`], exactly as if they
//! had been read from manifest files, so both modes serve the same configuration for the same
//! objects. Besides: leader election (`leader`), Ingress status (`status`), Gateway API status
//! (`gateway_status`) and Events (`events`), which only the leader writes; and reaching the
//! cluster (`cluster`): the client from a kubeconfig or in-cluster, `NAMESPACE/NAME` arguments,
//! the pod's own namespace and name.

mod cluster;
mod events;
mod gateway_status;
mod leader;
mod status;
mod watch;

pub use cluster::{
    client, namespaced_name, pod_name, pod_namespace, ClientError, SERVICE_ACCOUNT_NAMESPACE_FILE,
};
pub use events::Events;
pub use leader::ElectionConfig;
pub use status::StatusConfig;
pub use watch::{run, WatchConfig};

/// The routes whose status still has Remora's entries though it no longer serves them; see
/// [`gateway_status`].
pub use gateway_status::add_departed_routes;
/// Gateway API status writing; see [`gateway_status`].
pub use gateway_status::run as write_gateway_status;
/// Leader election; see [`leader`].
pub use leader::run as elect;
/// Ingress status removal by the last leader; see [`status`].
pub use status::clear_on_shutdown as clear_status_on_shutdown;
/// Ingress status writing; see [`status`].
pub use status::run as write_status;
