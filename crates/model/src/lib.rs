//! Plain types of a routing snapshot: what `translate` produces and what the proxy serves.
//!
//! A [`Snapshot`] is immutable once built. It says, for every virtual host, which routes exist and
//! where they lead, and for every backend (a Service port) which endpoints exist and in what state.
//! Nothing here does I/O or knows about Kubernetes objects; `translate` is the only producer.
//!
//! [`time`] holds the calendar arithmetic shared by the cookie codec and the access log.

mod affinity;
mod client_auth;
mod diagnostic;
mod endpoint;
pub mod expr;
mod filter;
mod host;
mod location;
mod log_format;
mod password;
mod route;
pub mod time;
mod tls;
mod upstream_tls;

pub use affinity::{Affinity, AffinityMode, SameSite, DEFAULT_BALANCE_FACTOR, DEFAULT_COOKIE_NAME};
pub use client_auth::{ClientAuth, VerifyClient};
pub use diagnostic::{Diagnostic, ObjectRef, Severity};
pub use endpoint::{Backend, BackendId, Endpoint, EndpointId};
pub use filter::{Filters, HeaderEdits, Mirror, PathModifier, RequestRedirect, UrlRewrite};
pub use host::{host_name, HostMatch};
pub use location::{
    BackendProtocol, BasicAuth, Cidr, ConnectionHeader, Cors, DigestAuth, ExternalAuth, Location,
    NextUpstream, RateLimit, Redirect, Replace,
};
pub use log_format::{LogEscape, LogFormat, LogPart, LogVar, DEFAULT_LOG_FORMAT};
pub use password::PasswordScheme;
pub use route::{
    regex_source, Canary, Conditions, HostCiphers, Passthrough, PathType, Route, Target,
    ValueMatch, VirtualHost, WeightedBackend,
};
pub use tls::{Certificate, HostTls, KeyFormat, PrivateKey};
pub use upstream_tls::{UpstreamTls, DEFAULT_PROXY_SSL_NAME};

use serde::Serialize;
use std::sync::Arc;

/// One immutable routing configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Snapshot {
    /// Virtual hosts in match order: exact hosts, then wildcard hosts, then at most one catch-all
    /// (rules without `host`). Served on the Ingress listeners (`--listen-http`,
    /// `--listen-https`). Shared between snapshots that differ only elsewhere (endpoints).
    pub hosts: Arc<Vec<VirtualHost>>,
    /// Gateway API listeners, by port: each is served on its own socket with its own hosts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Arc<Vec<Listener>>,
    /// Backends referenced by [`Target::backend`], indexed by [`BackendId`]; each shared with
    /// the previous snapshot while its endpoints stay the same.
    pub backends: Vec<Arc<Backend>>,
    /// Certificates referenced by [`VirtualHost::tls`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Arc<Vec<Certificate>>,
    /// Proxy-wide settings of the ingress-nginx ConfigMap (`--configmap`).
    #[serde(skip_serializing_if = "Settings::is_default")]
    pub settings: Settings,
}

/// The Gateway API listeners of one port (of one or several Gateways, same protocol), told apart
/// by host name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Listener {
    pub port: u16,
    /// HTTPS: TLS is terminated with the certificate of the virtual host the SNI names.
    pub tls: bool,
    /// In match order, as [`Snapshot::hosts`].
    pub hosts: Vec<VirtualHost>,
}

/// Proxy-wide settings with no annotation, from the ingress-nginx ConfigMap; `None`: the command
/// line's value. Carried in the snapshot so a changed ConfigMap takes effect on reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// `allow-backend-server-header`: the pods' `Server` header goes to clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_backend_server_header: Option<bool>,
    /// `enable-underscores-in-headers`: request headers with underscores go to the pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_underscores_in_headers: Option<bool>,
    /// `hsts`, `hsts-max-age`, `hsts-include-subdomains`, `hsts-preload`: the
    /// `Strict-Transport-Security` value of HTTPS responses of hosts with a certificate; `None`:
    /// none. ingress-nginx's default when no ConfigMap says otherwise.
    #[serde(skip_serializing_if = "is_default_hsts")]
    pub hsts: Option<String>,
    /// `keep-alive` (seconds): how long a client connection with no request in flight is kept;
    /// 0: no keep-alive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<u64>,
    /// `keep-alive-requests`: requests one client connection may make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_requests: Option<u32>,
    /// `client-header-timeout` (seconds): time a client has for the TLS handshake and each
    /// request head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_header_timeout: Option<u64>,
    /// `client-body-timeout` (seconds): time a client may leave between two reads of a request
    /// body before it gets 408.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_body_timeout: Option<u64>,
    /// `large-client-header-buffers`: the request line and each header line must fit in `size`
    /// bytes, the whole head in `number` × `size`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_buffers: Option<HeaderBuffers>,
    /// `ssl-protocols` and `ssl-ciphers`: the TLS versions and TLS 1.2 cipher suites of the
    /// Ingress HTTPS listener; `None`: TLS 1.2 and 1.3 with every suite rustls has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_tls: Option<ServerTls>,
    /// `use-forwarded-headers`, `enable-real-ip` and their companions: which peers are proxies
    /// whose word on the client is taken; `None`: the connection's peer is the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_ip: Option<RealIp>,
    /// `block-cidrs`: clients answered 403, whatever they ask for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_cidrs: Vec<Cidr>,
    /// `block-user-agents`: `User-Agent`s answered 403, as nginx's `map` reads them: an exact
    /// value, or after `~` a regular expression (`~*`: ignoring case).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub block_user_agents: Vec<String>,
    /// `add-headers`: response headers (name, value) added to every response, from the data of
    /// the ConfigMap it names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_headers: Vec<(String, String)>,
    /// `proxy-set-headers`: request headers (name, value) set on every request to a pod, from
    /// the data of the ConfigMap it names; a value may use the nginx variables of
    /// [`expr`]; an empty value removes the header.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_set_headers: Vec<(String, String)>,
    /// `hide-headers`: the pods' response headers (lowercase) not passed to clients.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hide_headers: Vec<String>,
    /// `http-redirect-code`: the status of the redirect to HTTPS (308).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_redirect_code: Option<u16>,
    /// `generate-request-id`: `false`, no `X-Request-ID` is made for a request without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// `use-proxy-protocol` and its companions: every connection of the Ingress listeners begins
    /// with a PROXY protocol header; `None`: none is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// `log-format-upstream` (with `log-format-escape-json`, `log-format-escape-none`): the
    /// access log's lines; `None`: Remora's JSON lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// `upstream-keepalive-connections`, `-timeout`, `-requests`, `-time`: how connections to
    /// the pods are kept for further requests; `None`: ingress-nginx's defaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_keepalive: Option<UpstreamKeepalive>,
    /// `ignore-invalid-headers` (true): `false`, an HTTP/1 request with a header line that is
    /// not `token: value` gets 400 instead of being served without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignore_invalid_headers: Option<bool>,
}

/// Keep-alive connections to the pods (nginx's `keepalive`, `keepalive_timeout`,
/// `keepalive_requests`, `keepalive_time` in ingress-nginx's upstream block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct UpstreamKeepalive {
    /// `upstream-keepalive-connections` (320): idle connections kept per worker; 0: none, every
    /// request opens a connection.
    pub connections: u32,
    /// `upstream-keepalive-timeout` (60): seconds an idle connection is kept.
    pub timeout_secs: u64,
    /// `upstream-keepalive-requests` (10000): requests one connection carries before it is closed.
    pub requests: u32,
    /// `upstream-keepalive-time` (1h), in seconds: after this, a connection is closed once its
    /// request ends.
    pub time_secs: u64,
}

impl Default for UpstreamKeepalive {
    fn default() -> Self {
        Self {
            connections: 320,
            timeout_secs: 60,
            requests: 10_000,
            time_secs: 3600,
        }
    }
}

/// The PROXY protocol (v1 or v2) on the Ingress listeners, as ingress-nginx's
/// `use-proxy-protocol` configures nginx (`listen ... proxy_protocol`, `real_ip_header
/// proxy_protocol`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyProtocol {
    /// `proxy-protocol-header-timeout` (5 s), in milliseconds: a connection whose header is not
    /// complete by then is closed.
    pub header_timeout_ms: u64,
    /// `proxy-real-ip-cidr` (`0.0.0.0/0`): the peers (load balancers) whose header's source
    /// address is taken for the client's (nginx's `set_real_ip_from`).
    pub trusted: Vec<Cidr>,
    /// With `use-forwarded-headers`: `forwarded-for-proxy-protocol-header`
    /// (`X-Forwarded-For-Proxy-Protocol`), lower case, the request header the pods get with what
    /// ingress-nginx's realip reads: the forwarded-for header when the header's source is a
    /// trusted proxy, else that source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_for_header: Option<String>,
}

/// The handshakes the Ingress HTTPS listener accepts (ConfigMap `ssl-protocols`, `ssl-ciphers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerTls {
    pub tls12: bool,
    pub tls13: bool,
    /// TLS 1.2 cipher suites, IANA names in order of preference (by default all six rustls has);
    /// TLS 1.3 suites are not chosen by a cipher list (as with OpenSSL), all are offered.
    pub ciphers: Vec<String>,
}

/// nginx's `large_client_header_buffers`: `number` buffers of `size` bytes hold a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeaderBuffers {
    pub number: u32,
    pub size: u32,
}

/// Whose word on the client is taken (nginx's realip module, as ingress-nginx configures it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RealIp {
    /// `forwarded-for-header` (`X-Forwarded-For`), lower case: where the trusted proxies put the
    /// addresses they forwarded for.
    pub header: String,
    /// `proxy-real-ip-cidr` (`0.0.0.0/0`): the peers (and the header's addresses, from the
    /// right) that are proxies; the client is the rightmost address that is not one.
    pub trusted: Vec<Cidr>,
    /// `use-forwarded-headers`: the trusted peer's `X-Forwarded-Proto`, `-Port` and `-Host` are
    /// believed too (the scheme decides the redirect to HTTPS and HSTS; they pass to the pod).
    pub forwarded_headers: bool,
    /// `compute-full-forwarded-for` (with `use-forwarded-headers`): the pod's
    /// `X-Forwarded-For` is the client's list with the peer appended, not the client alone.
    pub full_forwarded_for: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_backend_server_header: None,
            enable_underscores_in_headers: None,
            hsts: Some(DEFAULT_HSTS.to_owned()),
            real_ip: None,
            block_cidrs: Vec::new(),
            block_user_agents: Vec::new(),
            keep_alive: None,
            keep_alive_requests: None,
            client_header_timeout: None,
            client_body_timeout: None,
            header_buffers: None,
            server_tls: None,
            add_headers: Vec::new(),
            proxy_set_headers: Vec::new(),
            hide_headers: Vec::new(),
            http_redirect_code: None,
            generate_request_id: None,
            proxy_protocol: None,
            log_format: None,
            upstream_keepalive: None,
            ignore_invalid_headers: None,
        }
    }
}

/// ingress-nginx's default `Strict-Transport-Security` (hsts on, a year, subdomains, no preload).
pub const DEFAULT_HSTS: &str = "max-age=31536000; includeSubDomains";

fn is_default_hsts(h: &Option<String>) -> bool {
    h.as_deref() == Some(DEFAULT_HSTS)
}

impl Settings {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Snapshot {
    /// The backend a target points at, if it resolved to one.
    pub fn backend(&self, id: BackendId) -> Option<&Backend> {
        self.backends.get(id.0 as usize).map(|b| &**b)
    }

    /// Number of routes over all hosts (for logs).
    pub fn route_count(&self) -> usize {
        self.hosts.iter().map(|h| h.routes.len()).sum()
    }
}
