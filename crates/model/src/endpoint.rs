//! Backends (one Service port) and their endpoints (one pod address each).

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;

/// Index of a backend in [`crate::Snapshot::backends`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct BackendId(pub u32);

/// A stable endpoint identity: the same pod gets the same id in every snapshot and in every Remora
/// replica, so a session cookie naming it stays valid across reloads and restarts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl fmt::Debug for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for EndpointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One address that can receive requests for a backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Endpoint {
    pub id: EndpointId,
    #[serde(serialize_with = "display")]
    pub addr: SocketAddr,
    /// Ready endpoints take new sessions.
    pub ready: bool,
    /// Serving endpoints keep the sessions already pinned to them, even while terminating.
    pub serving: bool,
    pub terminating: bool,
    /// The pod behind the address, when the EndpointSlice names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Endpoint {
    /// May receive a request of a session already pinned here.
    pub fn accepts_pinned(&self) -> bool {
        self.serving
    }

    /// May be chosen for a new session or a request without affinity.
    pub fn accepts_new(&self) -> bool {
        self.ready && !self.terminating
    }
}

/// A Service port and the endpoints behind it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Backend {
    /// `namespace/service:port`; also binds session cookies to this backend.
    pub name: String,
    /// Sorted by id, so that every replica sees the same order.
    pub endpoints: Vec<Endpoint>,
}
