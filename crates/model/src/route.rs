//! Virtual hosts and the routes inside them, with Kubernetes Ingress matching semantics.

use crate::{Affinity, BackendId, HostMatch, ObjectRef};
use serde::Serialize;
use std::sync::Arc;

/// How a route's path is compared with the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PathType {
    Exact,
    /// Element-wise prefix: `/foo` matches `/foo` and `/foo/bar`, not `/foobar`.
    /// `ImplementationSpecific` paths are treated as `Prefix`.
    Prefix,
    /// ingress-nginx's `use-regex` (nginx `location ~* "^<path>"`): the path is a regular
    /// expression, case-insensitive, anchored at the start of the request path only. Every path of
    /// a host becomes one when any Ingress of that host sets `use-regex: "true"`. The expression
    /// is compiled by whoever serves the snapshot: [`Route::matches`] is false for these.
    Regex,
    /// The Gateway API's `RegularExpression`: the whole request path must match the expression
    /// (case-sensitive). Compiled by whoever serves the snapshot, as `Regex`.
    RegularExpression,
}

impl PathType {
    /// As written in an Ingress (`Regex` paths are written `ImplementationSpecific`, or any type).
    pub fn name(self) -> &'static str {
        match self {
            PathType::Exact => "Exact",
            PathType::Prefix => "Prefix",
            PathType::Regex => "regex",
            PathType::RegularExpression => "RegularExpression",
        }
    }
}

/// Where a matched request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Target {
    /// `None` when the Service or its port does not exist: such requests get 503.
    pub backend: Option<BackendId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Arc<Affinity>>,
    /// How requests are proxied (protocol, timeouts, rewrites...).
    #[serde(skip_serializing_if = "is_default_location")]
    pub location: Arc<crate::Location>,
    /// The Ingress this target came from.
    #[serde(serialize_with = "display")]
    pub ingress: ObjectRef,
    /// `default-backend` (else `--default-backend-service`): answers the location's
    /// `custom-http-errors`, and its requests while the target's backend has no endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_backend: Option<BackendId>,
}

fn is_default_location(l: &Arc<crate::Location>) -> bool {
    l.is_default()
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// One Ingress path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Route {
    /// For `Prefix`, normalised without trailing slash (`/` stays `/`).
    pub path: String,
    pub path_type: PathType,
    pub target: Target,
    /// A canary Ingress for the same host and path: some requests go to its target instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<Box<Canary>>,
    /// Plain HTTP requests get a 308 to HTTPS (`ssl-redirect` on a host with TLS, or
    /// `force-ssl-redirect`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub https_redirect: bool,
    /// Gateway API matches besides the path (method, headers, query parameters): all must hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Box<Conditions>>,
    /// Gateway API `backendRefs`: when not empty, a request goes to one of these by weight (or to
    /// the one its session is pinned to, whatever the weights), and `target.backend` is unused.
    /// An entry without backend (a reference that does not resolve) answers 500, as do rules
    /// whose weights are all 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<WeightedBackend>,
}

/// Gateway API request conditions of a route besides its path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Conditions {
    /// The request method, uppercase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request headers (names lowercase): each must be present with a matching value.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ValueMatch>,
    /// Query parameters (names exact): each must be present with a matching value (the first
    /// occurrence counts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<ValueMatch>,
}

impl Conditions {
    /// Gateway API precedence among routes with equal paths: a method, then more headers, then
    /// more query parameters win.
    pub fn precedence(c: Option<&Conditions>) -> (bool, usize, usize) {
        c.map_or((false, 0, 0), |c| {
            (c.method.is_some(), c.headers.len(), c.query.len())
        })
    }
}

/// One header or query parameter condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ValueMatch {
    pub name: String,
    pub value: String,
    /// `value` is a regular expression (anchored at neither end, as RE2's partial match) rather
    /// than the exact value.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub regex: bool,
}

/// One Gateway API `backendRef`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WeightedBackend {
    /// `None`: the reference does not resolve (no such Service or port, another namespace without
    /// a ReferenceGrant, an unsupported kind): requests that would go to it get 500.
    pub backend: Option<BackendId>,
    pub weight: u32,
}

/// Which requests of a route go to the canary (ingress-nginx's `canary-*` annotations), in the
/// order they are tried: header, cookie, session affinity (sticky behaviour), weight.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Canary {
    pub target: Target,
    /// `canary-by-header`: this request header set to `always` (or to `header_value`, or matching
    /// `header_pattern`) sends to the canary; `never` to the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_pattern: Option<String>,
    /// `canary-by-cookie`: this cookie set to `always` sends to the canary, `never` to the primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// `canary-weight` out of `canary-weight-total`.
    pub weight: u32,
    pub weight_total: u32,
    /// `affinity-canary-behavior: sticky` (default): a request whose session cookie belongs to the
    /// primary or the canary stays there. `legacy`: the split ignores sessions.
    pub sticky: bool,
}

impl Route {
    /// The regular expression a `Regex` route's path stands for, in the `regex` crate's syntax.
    pub fn regex_source(&self) -> String {
        match self.path_type {
            PathType::RegularExpression => format!("^(?:{})$", self.path),
            _ => regex_source(&self.path),
        }
    }

    /// Does this route match a request path (without query)? Always false for `Regex` routes,
    /// which need their compiled expression.
    pub fn matches(&self, path: &str) -> bool {
        match self.path_type {
            PathType::Regex | PathType::RegularExpression => false,
            PathType::Exact => self.path == path,
            PathType::Prefix => {
                let prefix = self.path.trim_end_matches('/');
                match path.strip_prefix(prefix) {
                    Some(rest) => rest.is_empty() || rest.starts_with('/'),
                    None => false,
                }
            }
        }
    }
}

/// The expression a regex route's path stands for: nginx's `location ~* "^<path>"` for `Regex`
/// (case-insensitive, anchored at the start only); the whole path for `RegularExpression`.
pub fn regex_source(path: &str) -> String {
    format!("(?i)^{path}")
}

/// The routes of one host, in match order: Exact routes first, then Prefix routes longest first,
/// so the first route that matches is the one Kubernetes says should win. A host with `use-regex`
/// has only `Regex` routes, longest expression first (ingress-nginx's location order), and the
/// first that matches wins.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct VirtualHost {
    pub host: HostMatch,
    pub routes: Vec<Route>,
    /// `spec.defaultBackend` of an Ingress that has this host: used when no path matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Target>,
    /// Set when an Ingress lists this host in `spec.tls`: the certificate presented for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::HostTls>,
    /// `auth-tls-secret` and its family: the client certificates this host asks for over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<Arc<crate::ClientAuth>>,
    /// An Ingress of this host has an `auth-tls-secret` that cannot be used (missing or
    /// malformed Secret, no CA): every request of the host gets 403, as ingress-nginx's server
    /// `return 403`; why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth_error: Option<String>,
    /// `ssl-passthrough` (with `--enable-ssl-passthrough`): TLS connections whose SNI names this
    /// (exact) host are relayed to a pod of this backend as they are, not terminated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Passthrough>,
    /// `ssl-ciphers` and `ssl-prefer-server-ciphers` of the first Ingress of this host with them:
    /// the handshakes of connections whose SNI names this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ciphers: Option<HostCiphers>,
}

/// A host's own TLS 1.2 cipher suites (nginx's `ssl_ciphers` at the server level) and whether
/// its order, not the client's, chooses (`ssl_prefer_server_ciphers`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HostCiphers {
    /// IANA names in order of preference; `None`: the listener's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ciphers: Option<Vec<String>>,
    /// `None`: the listener's (the client's order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefer_server: Option<bool>,
}

/// Where the TLS connections of an `ssl-passthrough` host go: ingress-nginx's backend of the
/// host's location `/` (its `Prefix` path `/`, else the default backend).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Passthrough {
    pub backend: BackendId,
    /// The Ingress of that path (or default backend): the statistics' label.
    #[serde(serialize_with = "display")]
    pub ingress: ObjectRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str, path_type: PathType) -> Route {
        Route {
            canary: None,
            https_redirect: false,
            conditions: None,
            backends: Vec::new(),
            path: path.into(),
            path_type,
            target: Target {
                backend: None,
                affinity: None,
                location: Default::default(),
                ingress: ObjectRef::new("Ingress", "default", "x"),
                default_backend: None,
            },
        }
    }

    #[test]
    fn prefix_is_element_wise() {
        let r = route("/foo", PathType::Prefix);
        assert!(r.matches("/foo"));
        assert!(r.matches("/foo/"));
        assert!(r.matches("/foo/bar"));
        assert!(!r.matches("/foobar"));
        assert!(!r.matches("/"));
        let root = route("/", PathType::Prefix);
        assert!(root.matches("/"));
        assert!(root.matches("/anything/at/all"));
    }

    #[test]
    fn exact_is_exact() {
        let r = route("/foo", PathType::Exact);
        assert!(r.matches("/foo"));
        assert!(!r.matches("/foo/"));
        assert!(!r.matches("/foo/bar"));
    }

    #[test]
    fn wildcard_matches_one_label() {
        let w = HostMatch::Wildcard(".example.com".into());
        assert!(w.matches("a.example.com"));
        assert!(!w.matches("example.com"));
        assert!(!w.matches("a.b.example.com"));
        assert!(!w.matches(".example.com"));
    }
}
