//! The Kubernetes provider: watches Ingress, IngressClass, Service, EndpointSlice and TLS Secret
//! objects with kube-rs reflectors (level-triggered: every change re-reads the whole cached state),
//! and hands the objects, debounced, to the same pure `translate` the file provider feeds.
//!
//! Nothing here knows about routing: objects go out as [`translate::Objects`], exactly as if they
//! had been read from manifest files, so both modes serve the same configuration for the same
//! objects.

mod watch;

pub use watch::{run, WatchConfig};
