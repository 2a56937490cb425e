//! What a route does to requests and responses besides proxying them: the Gateway API's
//! `filters` (header modifiers, redirects, URL rewrites, mirrors) and its `timeouts`, in the same
//! snapshot as Ingress routes.

use crate::BackendId;
use serde::Serialize;

/// The filters and timeouts of one Gateway API route rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Filters {
    /// `RequestHeaderModifier`: the headers of the request the pod gets.
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub request_headers: HeaderEdits,
    /// `ResponseHeaderModifier`: the headers of the response the client gets.
    #[serde(skip_serializing_if = "HeaderEdits::is_empty")]
    pub response_headers: HeaderEdits,
    /// `RequestRedirect`: the route answers every request with this redirect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RequestRedirect>,
    /// `URLRewrite`: the host and path the pod gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<UrlRewrite>,
    /// `RequestMirror`: copies of requests sent to these backends, their answers ignored.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
    /// `timeouts.request`, milliseconds: the whole exchange, first try to the response head
    /// (504 past it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
    /// `timeouts.backendRequest`, milliseconds: one try with a pod, to its response head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_timeout_ms: Option<u64>,
}

/// Header changes in the Gateway API's order: set (replace), add (append), remove. Names are
/// lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct HeaderEdits {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl HeaderEdits {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// `RequestRedirect`: each part left out keeps the request's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RequestRedirect {
    /// `http` or `https`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Left out: the listener's port, or the scheme's well-known port when the scheme changes
    /// (a well-known port for the scheme is not written in `Location`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    /// 301 (default), 302, 303, 307 or 308.
    pub status: u16,
}

/// `URLRewrite`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UrlRewrite {
    /// The pod's `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

/// A new path: `ReplaceFullPath`, or `ReplacePrefixMatch` (the route's `Prefix` path, as matched,
/// replaced by this; the rest of the path kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum PathModifier {
    Full(String),
    Prefix(String),
}

/// `RequestMirror`: a copy of each request (or of `percent` of them) goes to this backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Mirror {
    pub backend: BackendId,
    pub percent: u32,
}
