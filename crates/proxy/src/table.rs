//! The routing table the request path reads: a [`Snapshot`] plus what makes lookups cheap (host
//! hash maps, per-backend balancers, pre-parsed upstream authorities). Built off the request path,
//! once per snapshot, and never mutated afterwards except for round-robin counters.

use crate::basic_auth::BasicAuthRuntime;
use crate::client_auth::{ClientAuthRuntime, HostAuth};
use crate::compat::{CompatLabels, CompatStats};
use crate::conditions::CompiledConditions;
use crate::cors::CorsHeaders;
use crate::digest_auth::DigestAuthRuntime;
use crate::expr::Compiled;
use crate::external_auth::AuthRuntime;
use crate::filters::{HeaderEditor, SetHeaders};
use crate::limit::Limiter;
use crate::stats::RouteStats;
use crate::upstream::{ClientKey, Clients, UpstreamClient};
use balance::BackendBalancer;
use http::uri::Authority;
use http::HeaderValue;
use model::{
    AffinityMode, Backend, BackendId, BackendProtocol, Canary, Certificate, Diagnostic, HostMatch,
    HostTls, Location, PathType, RateLimit, Route, Snapshot, Target, VirtualHost, WeightedBackend,
};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// ingress-nginx's `no-auth-locations` default: ACME HTTP-01 challenges are answered without
/// authentication.
const NO_AUTH_LOCATION: &str = "/.well-known/acme-challenge";

pub struct Table {
    pub snapshot: Arc<Snapshot>,
    pub diagnostics: Arc<Vec<Diagnostic>>,
    pub generation: u64,
    /// Same order as `snapshot.backends`; an unchanged backend's runtime is shared with the
    /// table this one replaced.
    pub backends: Vec<Arc<BackendRuntime>>,
    /// The Ingress hosts (`snapshot.hosts`), served on `--listen-http` and `--listen-https`.
    /// Shared with the previous table when only endpoints changed.
    ingress: Arc<HostSet>,
    /// The Gateway listeners (`snapshot.listeners`), sorted by port, one per port.
    gateways: Arc<Vec<GatewayRuntime>>,
    /// The rustls form of each snapshot certificate, same order (`None`: unusable).
    keys: Vec<Option<Arc<CertifiedKey>>>,
    /// The request rate limits of each zone (Ingress) with limits, carried over to the next
    /// table while the limits stay the same, so a reload does not reset them.
    limiters: HashMap<RateLimit, Arc<Limiter>>,
    /// Proxy-wide policy: the snapshot's settings (the ConfigMap) over the command line's.
    pub policy: Policy,
    /// With `--metrics-compat ingress-nginx`: a hash of the hosts and listeners served
    /// (`nginx_ingress_controller_config_hash`; endpoints left out, as ingress-nginx's hash of
    /// its configuration leaves them out); 0 without.
    pub config_hash: u64,
    /// The Ingress HTTPS listener's configuration under the ConfigMap's `ssl-protocols` and
    /// `ssl-ciphers`, made at the first handshake that needs it; shared with the next table while
    /// they stay the same.
    ingress_tls: Arc<OnceLock<Arc<rustls::ServerConfig>>>,
    /// The handshake configurations of the Ingress hosts with `ssl-ciphers` or
    /// `ssl-prefer-server-ciphers`, by host index, each made at the host's first handshake in
    /// this table (empty when no host has them).
    host_tls: Box<[OnceLock<Arc<rustls::ServerConfig>>]>,
}

/// Which listening socket a connection came in on, so its request is routed among that
/// listener's virtual hosts only. Copied into each connection once: the request path reads it as
/// a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerId {
    /// `--listen-http` / `--listen-https`: the Ingress hosts.
    Ingress,
    /// The socket of the Gateway listener on this port; `tls`: the socket terminates TLS. A
    /// connection whose socket no longer matches the listener of its port (the port was removed,
    /// or turned from HTTP to HTTPS or back, and the socket drains) finds no host.
    Gateway { port: u16, tls: bool },
}

/// How a request's host name finds its virtual host among one listener's (the Ingress hosts, or
/// a Gateway listener's): exact map, else wildcard map keyed by the suffix after the first label
/// (on a Gateway listener, after any label, the longest first), else the catch-all. Indices are into that listener's `hosts`.
#[derive(Default)]
struct HostIndex {
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    any: Option<usize>,
    /// A wildcard covers any number of labels (the Gateway API's `*.example.com` serves
    /// `a.b.example.com`), the longest suffix first; else exactly one, as the Ingress API says.
    deep_wildcards: bool,
}

impl HostIndex {
    fn new(hosts: &[VirtualHost], deep_wildcards: bool) -> Self {
        let mut index = Self {
            deep_wildcards,
            ..Self::default()
        };
        for (i, vh) in hosts.iter().enumerate() {
            match &vh.host {
                HostMatch::Exact(h) => {
                    index.exact.insert(h.clone(), i);
                }
                HostMatch::Wildcard(suffix) => {
                    index.wildcard.insert(suffix.clone(), i);
                }
                HostMatch::Any => index.any = Some(i),
            }
        }
        index
    }

    /// The virtual host a TLS server name names ([`HostIndex::named`], lowercased first when it
    /// has to be).
    fn named_server(&self, server_name: &str) -> Option<usize> {
        if server_name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.named(&server_name.to_ascii_lowercase())
        } else {
            self.named(server_name)
        }
    }

    /// The virtual host a host name (lowercase, without port) names: exact, then wildcard (the
    /// most specific one that covers it).
    fn named(&self, host: &str) -> Option<usize> {
        if let Some(i) = self.exact.get(host) {
            return Some(*i);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut dots = host.match_indices('.').map(|(i, _)| i);
        if !self.deep_wildcards {
            return dots
                .next()
                .and_then(|d| self.wildcard.get(&host[d..]))
                .copied();
        }
        dots.find_map(|d| self.wildcard.get(&host[d..])).copied()
    }

    /// The virtual host of a request's host: the named one, else the catch-all.
    fn find(&self, host: &str) -> Option<usize> {
        self.named(host).or(self.any)
    }
}

/// The virtual hosts of one listener as the request path needs them: the index by host name, and
/// per virtual host (same order as the snapshot's) what its routes need at request time.
#[derive(Default)]
struct HostSet {
    index: HostIndex,
    runtimes: Vec<HostRuntime>,
    /// Some host is an `ssl-passthrough` host: the HTTPS listener reads each ClientHello itself.
    passthrough: bool,
}

/// A Gateway listener of the table: its port and protocol, its hosts, and where they are in the
/// snapshot (`snapshot.listeners[listener]`).
struct GatewayRuntime {
    port: u16,
    tls: bool,
    listener: usize,
    hosts: HostSet,
}

/// What one virtual host needs at request time besides the snapshot.
struct HostRuntime {
    /// Same order as the host's routes.
    routes: Vec<RouteRuntime>,
    /// For the host's default backend.
    default: Option<RouteRuntime>,
    /// The certificate it presents over TLS (`None`: the default certificate).
    certificate: Option<Arc<CertifiedKey>>,
    /// `auth-tls-secret`: the client certificates it asks for.
    client_auth: Option<Arc<ClientAuthRuntime>>,
    /// An `auth-tls-secret` of the host cannot be used: every request 403.
    client_auth_broken: bool,
    /// `ssl-passthrough`: where its TLS connections are relayed.
    passthrough: Option<PassthroughRuntime>,
}

/// Where an `ssl-passthrough` host's TLS connections go: a backend of the table (by index, so a
/// table that shares this host set with the previous one relays to its own endpoints), counted
/// in the statistics of the host's location `/`.
struct PassthroughRuntime {
    backend: usize,
    stats: Arc<RouteStats>,
}

/// The backend an `ssl-passthrough` connection is relayed to, and the statistics it counts in.
pub struct PassthroughTarget {
    pub backend: Arc<BackendRuntime>,
    pub stats: Arc<RouteStats>,
}

/// What one route needs at request time, prepared once per table: nothing on the request path is
/// compiled, parsed or looked up by key.
pub struct RouteRuntime {
    /// The compiled path of a `Regex` route (`use-regex`; its captures serve `rewrite-target`) or
    /// of a Gateway API `RegularExpression` one.
    pub regex: Option<regex::Regex>,
    /// Gateway API conditions besides the path (method, headers, query parameters); `None` for
    /// routes without (all Ingress routes), which then cost nothing more to match.
    pub conditions: Option<Box<CompiledConditions>>,
    /// `RequestHeaderModifier`: edits of the request's headers before it goes to a pod.
    pub request_headers: Option<Box<HeaderEditor>>,
    /// `ResponseHeaderModifier`: edits of the pod's response headers.
    pub response_headers: Option<Box<HeaderEditor>>,
    /// `custom-headers`: set on every response of the route.
    pub custom_headers: Option<Box<HeaderEditor>>,
    /// The compiled `canary-by-header-pattern` of the route's canary.
    pub canary_pattern: Option<regex::Regex>,
    /// The upstream client of the route's location (protocol, connect timeout).
    pub client: Option<UpstreamClient>,
    /// The route's CORS response headers.
    pub cors: Option<CorsHeaders>,
    /// The request rate limits of the route's Ingress.
    pub limiter: Option<Arc<Limiter>>,
    /// Header values the route sets on requests to its pods.
    pub headers: RouteHeaders,
    /// `auth-type: basic`: the users whose passwords let requests through (shared by the routes
    /// of an Ingress). `None` also on ACME HTTP-01 paths, as ingress-nginx's `no-auth-locations`.
    pub basic_auth: Option<Arc<BasicAuthRuntime>>,
    /// `auth-type: digest`: the users whose passwords answer its challenges (shared by the routes
    /// of an Ingress); `None` on ACME HTTP-01 paths too.
    pub digest_auth: Option<Arc<DigestAuthRuntime>>,
    /// `upstream-hash-by`: the key that places requests without affinity.
    pub hash_key: Option<Compiled>,
    /// `auth-url`: the service every request is first asked of; `None` on ACME HTTP-01 paths.
    pub external_auth: Option<Box<AuthRuntime>>,
    /// Statistics of the target, and of the canary if the route has one.
    pub stats: Arc<RouteStats>,
    pub canary_stats: Option<Arc<RouteStats>>,
    /// With `--metrics-compat ingress-nginx`, on Ingress routes: the ingress-nginx series of the
    /// route, and of its requests the canary takes.
    pub compat: Option<Arc<CompatStats>>,
    pub canary_compat: Option<Arc<CompatStats>>,
}

/// Header values a route sets on requests to its pods, parsed once per table.
#[derive(Default)]
pub struct RouteHeaders {
    /// `upstream-vhost`: the pod's `Host`.
    pub vhost: Option<HeaderValue>,
    /// `x-forwarded-prefix`.
    pub prefix: Option<HeaderValue>,
}

impl HostRuntime {
    fn host_auth(&self) -> HostAuth<'_> {
        match &self.client_auth {
            _ if self.client_auth_broken => HostAuth::Broken,
            Some(auth) => HostAuth::Verify(auth),
            None => HostAuth::None,
        }
    }
}

impl RouteHeaders {
    /// A Gateway API `URLRewrite` hostname is the pod's `Host` as `upstream-vhost` is: the
    /// client's stays in `X-Forwarded-Host`.
    fn of(location: &Location) -> Self {
        let value = |v: Option<&str>| v.and_then(|v| HeaderValue::from_str(v).ok());
        let rewritten = location
            .filters
            .as_ref()
            .and_then(|f| f.rewrite.as_ref()?.hostname.as_deref());
        Self {
            vhost: value(location.upstream_vhost.as_deref().or(rewritten)),
            prefix: value(location.forwarded_prefix.as_deref()),
        }
    }
}

/// What the whole proxy does to requests and responses, resolved once per table: the ConfigMap's
/// settings where it says, else the command line's ([`Table::with_defaults`]).
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Request headers with underscores go to the pods.
    pub keep_underscores: bool,
    /// The pods' `Server` header goes to clients.
    pub backend_server_header: bool,
    /// `Strict-Transport-Security` of HTTPS responses of hosts with a certificate.
    pub hsts: Option<HeaderValue>,
    /// The limits of client connections accepted while the table is current.
    pub connection: crate::ConnectionLimits,
    /// Time a client may leave between two reads of a request body (`client_body_timeout`).
    pub client_body_timeout: std::time::Duration,
    /// The longest request line and header line (`large-client-header-buffers`' size).
    pub max_header_line: usize,
    /// Whose word on the client is taken (`use-forwarded-headers`, `enable-real-ip`).
    pub real_ip: Option<RealIp>,
    /// `block-cidrs` and `block-user-agents`: who gets 403 whatever it asks.
    pub block: Block,
    /// `add-headers`: set on every response.
    pub add_headers: Option<Arc<HeaderEditor>>,
    /// `proxy-set-headers`: set on every request to a pod.
    pub proxy_set_headers: Option<Arc<SetHeaders>>,
    /// `hide-headers`: the pods' response headers dropped.
    pub hide_headers: Box<[http::HeaderName]>,
    /// `http-redirect-code`: the status of the redirect to HTTPS.
    pub https_redirect_code: Option<http::StatusCode>,
    /// `generate-request-id`: a request without `X-Request-ID` gets one.
    pub generate_request_id: bool,
    /// `use-proxy-protocol`: whose PROXY protocol header is believed, and the header the pods get
    /// (the header's timeout is in `connection`).
    pub proxy_protocol: Option<ProxyProtocol>,
    /// `upstream-keepalive-*`: how connections to the pods are kept (the lean client's; hyper's
    /// clients have theirs in their `ClientKey`).
    pub h1: crate::h1::Pool,
    /// `log-format-upstream`: the access log's line; `None`: Remora's JSON.
    pub log_format: Option<Arc<crate::access_log::LineFormat>>,
}

/// [`model::ProxyProtocol`], ready for connections and requests.
#[derive(Debug, Clone)]
pub struct ProxyProtocol {
    /// `proxy-real-ip-cidr`: the peers whose header's source is the client.
    pub trusted: Vec<model::Cidr>,
    /// With `use-forwarded-headers`: `forwarded-for-proxy-protocol-header`.
    pub forwarded_for_header: Option<http::HeaderName>,
}

/// [`model::RealIp`], ready for requests.
#[derive(Debug, Clone)]
pub struct RealIp {
    pub header: http::HeaderName,
    pub trusted: Vec<model::Cidr>,
    pub forwarded_headers: bool,
    pub full_forwarded_for: bool,
}

/// Clients refused whatever they ask for.
#[derive(Debug, Clone, Default)]
pub struct Block {
    pub cidrs: Vec<model::Cidr>,
    /// Exact `User-Agent` values.
    pub user_agents: Vec<HeaderValue>,
    /// `User-Agent` patterns (`~`, `~*` entries), one set.
    pub user_agent_patterns: Option<regex::bytes::RegexSet>,
}

impl Block {
    fn new(settings: &model::Settings) -> Self {
        let mut user_agents = Vec::new();
        let mut patterns = Vec::new();
        for item in &settings.block_user_agents {
            if let Some(p) = item.strip_prefix("~*") {
                patterns.push(format!("(?i){p}"));
            } else if let Some(p) = item.strip_prefix('~') {
                patterns.push(p.to_owned());
            } else if let Ok(v) = HeaderValue::from_str(item) {
                user_agents.push(v);
            }
        }
        Self {
            cidrs: settings.block_cidrs.clone(),
            user_agents,
            // Translation checked each expression; a set that still fails blocks by the exact
            // values only.
            user_agent_patterns: (!patterns.is_empty())
                .then(|| regex::bytes::RegexSet::new(&patterns).ok())
                .flatten(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty() && self.user_agents.is_empty() && self.user_agent_patterns.is_none()
    }
}

/// What a request matched: its route's target, the route's canary if it has one, and the route's
/// prepared runtime.
pub struct Matched<'a> {
    pub target: &'a Target,
    /// The route's own path (the prefix a `ReplacePrefixMatch` replaces); empty for a default
    /// backend.
    pub path: &'a str,
    /// Gateway API weighted backends: when not empty, they say where requests go instead of
    /// `target.backend`.
    pub backends: &'a [WeightedBackend],
    pub canary: Option<&'a Canary>,
    /// Plain HTTP requests of this route are redirected to HTTPS.
    pub https_redirect: bool,
    pub runtime: &'a RouteRuntime,
    /// The table's proxy-wide policy.
    pub policy: &'a Policy,
    /// The host has a certificate of its own (not the default one).
    pub has_certificate: bool,
    /// The host's client certificate authentication (`auth-tls-*`).
    pub client_auth: HostAuth<'a>,
}

impl<'a> Matched<'a> {
    /// What the route's Ingress says of its requests (a canary answers in its primary's).
    pub fn location(&self) -> &'a Location {
        &self.target.location
    }
}

pub struct BackendRuntime {
    pub balancer: BackendBalancer,
    /// `ip:port` of each endpoint, same order as the balancer's endpoints.
    pub authorities: Vec<Authority>,
    /// The same addresses, for the lean HTTP/1 client.
    pub addrs: Vec<std::net::SocketAddr>,
    /// The balancer has a consistent-hash ring.
    ring: bool,
}

impl Table {
    pub fn empty() -> Self {
        Self::new(Snapshot::default(), Vec::new(), 0, None, None)
    }

    /// `previous`: the table this one replaces; per-endpoint session loads carry over from it.
    /// `clients`: where upstream clients come from (kept across tables for their pools).
    pub fn new(
        snapshot: Snapshot,
        diagnostics: Vec<Diagnostic>,
        generation: u64,
        previous: Option<&Table>,
        clients: Option<&Clients>,
    ) -> Self {
        Self::build(snapshot, diagnostics, generation, previous, clients, false)
    }

    /// [`Table::new`]; `compat`: keep the ingress-nginx series of each Ingress route
    /// (`--metrics-compat ingress-nginx`).
    pub fn build(
        snapshot: Snapshot,
        diagnostics: Vec<Diagnostic>,
        generation: u64,
        previous: Option<&Table>,
        clients: Option<&Clients>,
        compat: bool,
    ) -> Self {
        let previous_backends: HashMap<&str, (&Arc<Backend>, &Arc<BackendRuntime>)> = previous
            .map(|t| {
                t.snapshot
                    .backends
                    .iter()
                    .zip(&t.backends)
                    .map(|(b, rt)| (b.name.as_str(), (b, rt)))
                    .collect()
            })
            .unwrap_or_default();
        // A ring is only worth its memory where some route uses balanced affinity, or hashes
        // (`upstream-hash-by`, the primary's location: a canary answers in it).
        let mut needs_ring = vec![false; snapshot.backends.len()];
        let mut ring_for = |b: Option<BackendId>| {
            if let Some(n) = b.and_then(|BackendId(b)| needs_ring.get_mut(b as usize)) {
                *n = true;
            }
        };
        let balanced = |t: &Target| {
            t.affinity
                .as_ref()
                .is_some_and(|a| a.mode == AffinityMode::Balanced)
        };
        let all_hosts = snapshot
            .hosts
            .iter()
            .chain(snapshot.listeners.iter().flat_map(|l| &l.hosts));
        for vh in all_hosts {
            for t in targets(vh) {
                if balanced(t) {
                    ring_for(t.backend);
                }
            }
            for r in &vh.routes {
                if r.target.location.upstream_hash_by.is_some() {
                    ring_for(r.target.backend);
                    if let Some(c) = &r.canary {
                        ring_for(c.target.backend);
                    }
                }
                // Weighted backends place sessions and hashed requests as a target's backend.
                if balanced(&r.target) || r.target.location.upstream_hash_by.is_some() {
                    for w in &r.backends {
                        ring_for(w.backend);
                    }
                }
            }
            if let Some(t) = vh
                .default
                .as_ref()
                .filter(|t| t.location.upstream_hash_by.is_some())
            {
                ring_for(t.backend);
            }
        }
        let backends = snapshot
            .backends
            .iter()
            .zip(needs_ring)
            .map(|(b, ring)| {
                let previous = previous_backends.get(b.name.as_str()).copied();
                // An unchanged backend keeps its runtime, shared with the previous table: its
                // balancer (ring, session loads, round-robin position) and parsed addresses are
                // not built again, so a publish costs the backends that changed.
                if let Some((old, rt)) = previous
                    .filter(|(old, rt)| rt.ring == ring && (Arc::ptr_eq(old, b) || *old == b))
                {
                    debug_assert_eq!(old.endpoints.len(), rt.addrs.len());
                    return Arc::clone(rt);
                }
                let start = generation as usize % b.endpoints.len().max(1);
                Arc::new(BackendRuntime {
                    balancer: BackendBalancer::new(
                        b,
                        ring,
                        start,
                        previous.map(|(_, rt)| &rt.balancer),
                    ),
                    authorities: b.endpoints.iter().map(|e| authority(e.addr)).collect(),
                    addrs: b.endpoints.iter().map(|e| e.addr).collect(),
                    ring,
                })
            })
            .collect();
        // A snapshot that differs from the previous one in endpoints only (incremental
        // translation shares the rest) keeps the previous host sets: their route runtimes
        // (compiled paths, clients, statistics, limiters) and certificates are the same.
        let same_routes = previous.filter(|t| {
            let (a, b) = (&t.snapshot, &snapshot);
            Arc::ptr_eq(&a.hosts, &b.hosts)
                && Arc::ptr_eq(&a.listeners, &b.listeners)
                && Arc::ptr_eq(&a.certificates, &b.certificates)
                && a.settings.upstream_keepalive == b.settings.upstream_keepalive
                && a.backends.len() == b.backends.len()
                && a.backends
                    .iter()
                    .zip(&b.backends)
                    .all(|(a, b)| a.name == b.name)
        });
        let (keys, limiters, ingress, gateways, config_hash) = if let Some(t) = same_routes {
            (
                t.keys.clone(),
                t.limiters.clone(),
                Arc::clone(&t.ingress),
                Arc::clone(&t.gateways),
                t.config_hash,
            )
        } else {
            // Certificates carry over when their Secret did not change: keys are parsed once.
            let previous_keys: HashMap<&Certificate, &Arc<CertifiedKey>> = previous
                .map(|t| {
                    t.snapshot
                        .certificates
                        .iter()
                        .zip(&t.keys)
                        .filter_map(|(c, k)| Some((c, k.as_ref()?)))
                        .collect()
                })
                .unwrap_or_default();
            let keys: Vec<Option<Arc<CertifiedKey>>> = snapshot
                .certificates
                .iter()
                .map(|c| match previous_keys.get(c) {
                    Some(k) => Some(Arc::clone(k)),
                    None => crate::tls::certified_key(c),
                })
                .collect();
            // Statistics carry over by (Ingress, Service) so counters keep growing across reloads.
            let mut previous_stats: HashMap<(String, String), Arc<RouteStats>> = previous
                .map(|t| {
                    t.route_stats()
                        .into_iter()
                        .map(|s| ((s.ingress.clone(), s.service.clone()), s))
                        .collect()
                })
                .unwrap_or_default();
            // A Gateway API rule's "service" is its weighted backends', comma-separated.
            let mut stats_of = |t: &Target, weighted: &[WeightedBackend]| -> Arc<RouteStats> {
                let ingress = format!("{}/{}", t.ingress.namespace, t.ingress.name);
                let name = |b: Option<BackendId>| {
                    b.and_then(|b| snapshot.backends.get(b.0 as usize))
                        .map_or("-", |b| b.name.as_str())
                };
                let service = match weighted {
                    [] => name(t.backend).to_owned(),
                    _ => weighted
                        .iter()
                        .map(|w| name(w.backend))
                        .collect::<Vec<_>>()
                        .join(","),
                };
                previous_stats
                    .entry((ingress.clone(), service.clone()))
                    .or_insert_with(|| Arc::new(RouteStats::new(ingress, service)))
                    .clone()
            };
            // The ingress-nginx series carry over by their labels.
            let mut previous_compat: HashMap<CompatLabels, Arc<CompatStats>> = previous
                .filter(|_| compat)
                .map(|t| {
                    t.compat_stats()
                        .into_iter()
                        .map(|s| (s.labels.clone(), s))
                        .collect()
                })
                .unwrap_or_default();
            let mut compat_of = |host: &HostMatch,
                                 route: Option<&Route>,
                                 target: &Target,
                                 canary: Option<&Target>|
             -> Arc<CompatStats> {
                let backend = |t: &Target| {
                    t.backend
                        .and_then(|b| snapshot.backends.get(b.0 as usize))
                        .map(|b| b.name.as_str())
                };
                let labels = CompatLabels {
                    host: match host {
                        HostMatch::Any => "_".to_owned(),
                        h => h.to_string(),
                    },
                    path: route.map_or("/", |r| r.path.as_str()).to_owned(),
                    namespace: target.ingress.namespace.clone(),
                    ingress: target.ingress.name.clone(),
                    service: backend(target)
                        .map_or("-", crate::compat::service_name)
                        .to_owned(),
                    canary: canary.map_or(String::new(), |c| {
                        backend(c).map_or_else(|| "-".to_owned(), crate::compat::upstream_name)
                    }),
                };
                previous_compat
                    .entry(labels.clone())
                    .or_insert_with(|| Arc::new(CompatStats::new(labels)))
                    .clone()
            };
            let mut limiters: HashMap<RateLimit, Arc<Limiter>> = HashMap::new();
            let mut limiter_of = |limit: &RateLimit| -> Arc<Limiter> {
                limiters
                    .entry(limit.clone())
                    .or_insert_with(|| {
                        previous
                            .and_then(|t| t.limiters.get(limit).cloned())
                            .unwrap_or_else(|| Arc::new(Limiter::new(limit)))
                    })
                    .clone()
            };
            let mut basic_auths: HashMap<model::BasicAuth, Arc<BasicAuthRuntime>> = HashMap::new();
            let mut basic_auth_of = |location: &Location| {
                let auth = location.basic_auth.as_ref()?;
                let runtime = basic_auths
                    .entry(auth.clone())
                    .or_insert_with(|| Arc::new(BasicAuthRuntime::new(auth)));
                Some(runtime.clone())
            };
            let mut digest_auths: HashMap<model::DigestAuth, Arc<DigestAuthRuntime>> =
                HashMap::new();
            let mut digest_auth_of = |location: &Location| {
                let auth = location.digest_auth.as_ref()?;
                let runtime = digest_auths
                    .entry(auth.clone())
                    .or_insert_with(|| Arc::new(DigestAuthRuntime::new(auth)));
                Some(runtime.clone())
            };
            let keepalive = crate::h1::Pool::of(snapshot.settings.upstream_keepalive.as_ref());
            let mut runtime = |target: &Target, route: Option<&Route>| {
                // ingress-nginx's `no-auth-locations` (default `/.well-known/acme-challenge`):
                // the locations whose path starts so are never authenticated (basic, digest,
                // `auth_request`), so certificates renew.
                let authenticated = !route.is_some_and(|r| r.path.starts_with(NO_AUTH_LOCATION));
                let auth = authenticated.then_some(&target.location);
                RouteRuntime {
                    // Translation dropped the paths and patterns that do not compile.
                    regex: route
                        .filter(|r| {
                            matches!(r.path_type, PathType::Regex | PathType::RegularExpression)
                        })
                        .and_then(|r| regex::Regex::new(&r.regex_source()).ok()),
                    conditions: route
                        .and_then(|r| r.conditions.as_deref())
                        .map(|c| Box::new(CompiledConditions::new(c))),
                    request_headers: target
                        .location
                        .filters
                        .as_ref()
                        .and_then(|f| HeaderEditor::new(&f.request_headers))
                        .map(Box::new),
                    response_headers: target
                        .location
                        .filters
                        .as_ref()
                        .and_then(|f| HeaderEditor::new(&f.response_headers))
                        .map(Box::new),
                    custom_headers: HeaderEditor::set(&target.location.custom_headers)
                        .map(Box::new),
                    canary_pattern: route
                        .and_then(|r| r.canary.as_ref()?.header_pattern.as_deref())
                        .and_then(|p| regex::Regex::new(p).ok()),
                    client: clients.and_then(|pool| client_of(pool, &target.location, keepalive)),
                    cors: target.location.cors.as_ref().map(CorsHeaders::new),
                    limiter: target.location.rate_limit.as_ref().map(&mut limiter_of),
                    headers: RouteHeaders::of(&target.location),
                    basic_auth: auth.and_then(|l| basic_auth_of(l)),
                    digest_auth: auth.and_then(|l| digest_auth_of(l)),
                    hash_key: target
                        .location
                        .upstream_hash_by
                        .as_deref()
                        .map(Compiled::new),
                    external_auth: auth.and_then(|l| l.external_auth.as_ref()).map(|auth| {
                        let key = ClientKey {
                            protocol: BackendProtocol::Http,
                            connect_timeout_secs: target.location.connect_timeout_secs,
                            tls: None,
                            keepalive: crate::h1::Pool::default(),
                        };
                        Box::new(AuthRuntime::new(
                            auth,
                            clients.and_then(|c| c.get(key).ok()),
                        ))
                    }),
                    stats: stats_of(target, route.map_or(&[], |r| &r.backends)),
                    canary_stats: route
                        .and_then(|r| r.canary.as_ref())
                        .map(|c| stats_of(&c.target, &[])),
                    compat: None,
                    canary_compat: None,
                }
            };
            // Ingress routes get their ingress-nginx series when `compat`; Gateway API routes
            // have none (`host` `None`): ingress-nginx has no such routes to label.
            let mut route_runtime =
                |host: Option<&HostMatch>, target: &Target, route: Option<&Route>| {
                    let mut rt = runtime(target, route);
                    if let Some(host) = host.filter(|_| compat) {
                        rt.compat = Some(compat_of(host, route, target, None));
                        rt.canary_compat = route
                            .and_then(|r| r.canary.as_ref())
                            .map(|c| compat_of(host, route, target, Some(&c.target)));
                    }
                    rt
                };
            let mut host_set = |hosts: &[VirtualHost], deep_wildcards: bool| HostSet {
                index: HostIndex::new(hosts, deep_wildcards),
                runtimes: hosts
                    .iter()
                    .map(|h| {
                        let ingress_host = (!deep_wildcards).then_some(&h.host);
                        // Checked by translation; should it still not load, the host fails closed.
                        let client_auth = h
                            .client_auth
                            .as_ref()
                            .map(|a| ClientAuthRuntime::new(&h.host, a).map(Arc::new));
                        let routes: Vec<RouteRuntime> = h
                            .routes
                            .iter()
                            .map(|r| route_runtime(ingress_host, &r.target, Some(r)))
                            .collect();
                        let default = h
                            .default
                            .as_ref()
                            .map(|t| route_runtime(ingress_host, t, None));
                        let passthrough = h.passthrough.as_ref().map(|p| {
                            passthrough_runtime(h, p, &routes, default.as_ref(), &snapshot)
                        });
                        HostRuntime {
                            routes,
                            default,
                            certificate: match h.tls {
                                Some(HostTls::Certificate(i)) => keys.get(i).cloned().flatten(),
                                _ => None,
                            },
                            client_auth_broken: h.client_auth_error.is_some()
                                || matches!(client_auth, Some(None)),
                            client_auth: client_auth.flatten(),
                            passthrough,
                        }
                    })
                    .collect(),
                // Translation gives exact hosts only; an Ingress listener's alone is looked at.
                passthrough: hosts.iter().any(|h| h.passthrough.is_some()),
            };
            let ingress = host_set(&snapshot.hosts, false);
            let mut gateways: Vec<GatewayRuntime> = snapshot
                .listeners
                .iter()
                .enumerate()
                .map(|(i, l)| GatewayRuntime {
                    port: l.port,
                    tls: l.tls,
                    listener: i,
                    hosts: host_set(&l.hosts, true),
                })
                .collect();
            // One listener per port (translation merges them): should two come, the first is served,
            // as the socket manager binds the first.
            gateways.sort_by_key(|g| (g.port, g.listener));
            gateways.dedup_by_key(|g| g.port);
            let config_hash = if compat {
                use std::hash::{Hash, Hasher};
                let mut hasher = xxhash_rust::xxh3::Xxh3::new();
                snapshot.hosts.hash(&mut hasher);
                snapshot.listeners.hash(&mut hasher);
                hasher.finish()
            } else {
                0
            };
            (
                keys,
                limiters,
                Arc::new(ingress),
                Arc::new(gateways),
                config_hash,
            )
        };
        let snapshot_server_tls = snapshot.settings.server_tls.clone();
        let host_tls = if snapshot.hosts.iter().any(|h| h.ssl_ciphers.is_some()) {
            snapshot.hosts.iter().map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        Self {
            host_tls,
            policy: Policy {
                hsts: snapshot
                    .settings
                    .hsts
                    .as_deref()
                    .and_then(|v| HeaderValue::from_str(v).ok()),
                real_ip: snapshot.settings.real_ip.as_ref().and_then(|r| {
                    Some(RealIp {
                        header: http::HeaderName::from_bytes(r.header.as_bytes()).ok()?,
                        trusted: r.trusted.clone(),
                        forwarded_headers: r.forwarded_headers,
                        full_forwarded_for: r.full_forwarded_for,
                    })
                }),
                block: Block::new(&snapshot.settings),
                add_headers: HeaderEditor::set(&snapshot.settings.add_headers).map(Arc::new),
                proxy_set_headers: SetHeaders::new(&snapshot.settings.proxy_set_headers)
                    .map(Arc::new),
                hide_headers: snapshot
                    .settings
                    .hide_headers
                    .iter()
                    .filter_map(|h| http::HeaderName::from_bytes(h.as_bytes()).ok())
                    .collect(),
                https_redirect_code: snapshot
                    .settings
                    .http_redirect_code
                    .and_then(|c| http::StatusCode::from_u16(c).ok()),
                generate_request_id: snapshot.settings.generate_request_id.unwrap_or(true),
                proxy_protocol: snapshot
                    .settings
                    .proxy_protocol
                    .as_ref()
                    .map(|p| ProxyProtocol {
                        trusted: p.trusted.clone(),
                        forwarded_for_header: p
                            .forwarded_for_header
                            .as_deref()
                            .and_then(|h| http::HeaderName::from_bytes(h.as_bytes()).ok()),
                    }),
                ..Policy::default()
            },
            ingress,
            gateways,
            keys,
            limiters,
            snapshot: Arc::new(snapshot),
            diagnostics: Arc::new(diagnostics),
            generation,
            backends,
            config_hash,
            ingress_tls: previous
                .filter(|p| p.snapshot.settings.server_tls == snapshot_server_tls)
                .map(|p| p.ingress_tls.clone())
                .unwrap_or_default(),
        }
    }

    /// The configuration of the Ingress HTTPS listener's handshakes while this table is current:
    /// `base`, or with the ConfigMap's `ssl-protocols` and `ssl-ciphers`
    /// ([`crate::tls::restricted`]).
    pub(crate) fn ingress_tls(
        &self,
        base: &Arc<rustls::ServerConfig>,
    ) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let Some(want) = &self.snapshot.settings.server_tls else {
            return Ok(base.clone());
        };
        if let Some(config) = self.ingress_tls.get() {
            return Ok(config.clone());
        }
        let made = crate::tls::restricted(base, want)?;
        Ok(self.ingress_tls.get_or_init(|| made).clone())
    }

    /// The configuration of the handshakes of the Ingress host a ClientHello's server name names
    /// (else the catch-all host) when it has `ssl-ciphers` or `ssl-prefer-server-ciphers`:
    /// `listener` (the Ingress HTTPS listener's, [`Table::ingress_tls`]) with the host's TLS 1.2
    /// suites and order ([`crate::tls::for_host`]). `None`: the host has none, `listener` serves.
    pub(crate) fn host_tls(
        &self,
        server_name: Option<&str>,
        listener: &rustls::ServerConfig,
    ) -> Option<Result<Arc<rustls::ServerConfig>, rustls::Error>> {
        let (hosts, set) = self.listener(ListenerId::Ingress)?;
        let named = server_name.and_then(|name| set.index.named_server(name));
        let i = named.or(set.index.any)?;
        let want = hosts.get(i)?.ssl_ciphers.as_ref()?;
        let cell = self.host_tls.get(i)?;
        if let Some(config) = cell.get() {
            return Some(Ok(config.clone()));
        }
        let versions = self
            .snapshot
            .settings
            .server_tls
            .as_ref()
            .map_or((true, true), |t| (t.tls12, t.tls13));
        Some(
            crate::tls::for_host(listener, versions, want)
                .map(|made| cell.get_or_init(|| made).clone()),
        )
    }

    /// Resolve the policy: the snapshot's settings where they say, else the command line's.
    pub fn with_defaults(mut self, config: &crate::ProxyConfig) -> Self {
        let settings = &self.snapshot.settings;
        self.policy.keep_underscores = settings
            .enable_underscores_in_headers
            .unwrap_or(config.underscores_in_headers);
        self.policy.backend_server_header = settings
            .allow_backend_server_header
            .unwrap_or(config.backend_server_header);
        self.policy.client_body_timeout = settings.client_body_timeout.map_or(
            config.server.client_body_timeout,
            std::time::Duration::from_secs,
        );
        self.policy.h1 = crate::h1::Pool::of(settings.upstream_keepalive.as_ref());
        self.policy.log_format = settings
            .log_format
            .as_ref()
            .map(|f| Arc::new(crate::access_log::LineFormat::new(f)));
        let limits = config.server.limits;
        let buffers = settings.header_buffers;
        self.policy.max_header_line = buffers.map_or(crate::handler::DEFAULT_HEADER_LINE, |b| {
            usize::try_from(b.size).unwrap_or(usize::MAX)
        });
        self.policy.connection = crate::ConnectionLimits {
            max_head: buffers.map_or(limits.max_head, |b| {
                usize::try_from(u64::from(b.number) * u64::from(b.size)).unwrap_or(usize::MAX)
            }),
            header_timeout: settings
                .client_header_timeout
                .map_or(limits.header_timeout, std::time::Duration::from_secs),
            keepalive_timeout: settings
                .keep_alive
                .map_or(limits.keepalive_timeout, std::time::Duration::from_secs),
            keepalive_requests: settings
                .keep_alive_requests
                .unwrap_or(limits.keepalive_requests),
            proxy_protocol: settings
                .proxy_protocol
                .as_ref()
                .map(|p| std::time::Duration::from_millis(p.header_timeout_ms)),
            ignore_invalid_headers: settings
                .ignore_invalid_headers
                .unwrap_or(limits.ignore_invalid_headers),
        };
        self
    }

    /// The virtual hosts of a listener (in the snapshot) and their runtimes; `None`: a Gateway
    /// port or protocol this table does not serve. A binary search over the few Gateway ports:
    /// no hashing, no string.
    fn listener(&self, listener: ListenerId) -> Option<(&[VirtualHost], &HostSet)> {
        match listener {
            ListenerId::Ingress => Some((&self.snapshot.hosts, &self.ingress)),
            ListenerId::Gateway { port, tls } => {
                let i = self.gateways.binary_search_by_key(&port, |g| g.port).ok()?;
                let g = self.gateways.get(i).filter(|g| g.tls == tls)?;
                Some((&self.snapshot.listeners.get(g.listener)?.hosts, &g.hosts))
            }
        }
    }

    /// The virtual host of a request's host name on a listener (exact, then wildcard, then the
    /// catch-all), with its runtime.
    fn virtual_host(
        &self,
        listener: ListenerId,
        host: &str,
    ) -> Option<(&VirtualHost, &HostRuntime)> {
        let (hosts, set) = self.listener(listener)?;
        let i = set.index.find(host)?;
        Some((hosts.get(i)?, set.runtimes.get(i)?))
    }

    /// The certificate for a TLS server name on a listener; `None`: the default certificate. On
    /// the Ingress listener only named hosts have one (as ingress-nginx); a Gateway listener's
    /// catch-all host (a listener without `hostname`) presents its certificate to every other
    /// name, and to handshakes without SNI.
    pub fn certificate(
        &self,
        listener: ListenerId,
        server_name: Option<&str>,
    ) -> Option<Arc<CertifiedKey>> {
        let (_, set) = self.listener(listener)?;
        let named = server_name.and_then(|name| set.index.named_server(name));
        let i = match listener {
            ListenerId::Ingress => named?,
            ListenerId::Gateway { .. } => named.or(set.index.any)?,
        };
        set.runtimes.get(i)?.certificate.clone()
    }

    /// The client authentication of the host a handshake's server name names on `listener`
    /// (exact, then wildcard, then the catch-all host, whose server takes handshakes of other
    /// names and without SNI), when it asks for a certificate.
    pub fn client_auth(
        &self,
        listener: ListenerId,
        server_name: Option<&str>,
    ) -> Option<Arc<ClientAuthRuntime>> {
        let (_, set) = self.listener(listener)?;
        let named = server_name.and_then(|name| set.index.named_server(name));
        let host = set.runtimes.get(named.or(set.index.any)?)?;
        if host.client_auth_broken {
            return None;
        }
        host.client_auth
            .clone()
            .filter(|a| a.mode().requests_certificate())
    }

    /// Some Ingress host is an `ssl-passthrough` host: the HTTPS listener reads the ClientHello
    /// itself, to relay it.
    pub fn has_passthrough(&self) -> bool {
        self.ingress.passthrough
    }

    /// Where a TLS connection whose SNI is `server_name` is relayed, when it names an
    /// `ssl-passthrough` host of the Ingress listener (exactly, ignoring case, as ingress-nginx
    /// compares names). No allocation: the name is lowercased on the stack.
    pub fn passthrough(&self, server_name: &str) -> Option<PassthroughTarget> {
        let mut lower = [0u8; 256];
        let name = lower.get_mut(..server_name.len())?;
        name.copy_from_slice(server_name.as_bytes());
        name.make_ascii_lowercase();
        let name = std::str::from_utf8(name).ok()?;
        let i = *self.ingress.index.exact.get(name)?;
        let p = self.ingress.runtimes.get(i)?.passthrough.as_ref()?;
        Some(PassthroughTarget {
            backend: self.backends.get(p.backend)?.clone(),
            stats: p.stats.clone(),
        })
    }

    /// The target for a request on `listener`: the virtual host (exact, then wildcard, then any)
    /// among that listener's, then its first matching route (its path, then its conditions, if
    /// any), then its default backend. `host` must be lowercase, without port.
    pub fn route<B>(
        &self,
        listener: ListenerId,
        host: &str,
        req: &http::Request<B>,
    ) -> Option<Matched<'_>> {
        let (vh, rt) = self.virtual_host(listener, host)?;
        let uri = req.uri();
        let path = uri.path();
        let found = vh.routes.iter().zip(&rt.routes).find(|(r, run)| {
            let path_matches = match &run.regex {
                Some(re) => re.is_match(path),
                None => r.matches(path),
            };
            path_matches
                && run
                    .conditions
                    .as_ref()
                    .is_none_or(|c| c.holds(req.method(), req.headers(), uri.query()))
        });
        match found {
            Some((r, runtime)) => Some(Matched {
                target: &r.target,
                path: &r.path,
                backends: &r.backends,
                canary: r.canary.as_deref(),
                https_redirect: r.https_redirect,
                runtime,
                policy: &self.policy,
                has_certificate: rt.certificate.is_some(),
                client_auth: rt.host_auth(),
            }),
            None => Some(Matched {
                target: vh.default.as_ref()?,
                path: "",
                backends: &[],
                canary: None,
                https_redirect: false,
                runtime: rt.default.as_ref()?,
                policy: &self.policy,
                has_certificate: rt.certificate.is_some(),
                client_auth: rt.host_auth(),
            }),
        }
    }

    /// Every target's statistics, once each (Ingress hosts, then the Gateway listeners').
    pub fn route_stats(&self) -> Vec<Arc<RouteStats>> {
        let mut seen = std::collections::HashSet::new();
        std::iter::once(&*self.ingress)
            .chain(self.gateways.iter().map(|g| &g.hosts))
            .flat_map(|set| &set.runtimes)
            .flat_map(|h| {
                h.routes
                    .iter()
                    .chain(&h.default)
                    .flat_map(|r| std::iter::once(&r.stats).chain(&r.canary_stats))
                    .chain(h.passthrough.as_ref().map(|p| &p.stats))
            })
            .filter(|s| seen.insert(Arc::as_ptr(s)))
            .cloned()
            .collect()
    }
}

/// The runtime of a passthrough host: its backend, and the statistics of the route (its location
/// `/`) or default backend translation took it from, which carry the same (Ingress, Service).
fn passthrough_runtime(
    host: &VirtualHost,
    p: &model::Passthrough,
    routes: &[RouteRuntime],
    default: Option<&RouteRuntime>,
    snapshot: &Snapshot,
) -> PassthroughRuntime {
    let same = |t: &Target| t.backend == Some(p.backend) && t.ingress == p.ingress;
    let stats = host
        .routes
        .iter()
        .zip(routes)
        .find(|(r, _)| same(&r.target))
        .map(|(_, rt)| &rt.stats)
        .or_else(|| {
            host.default
                .as_ref()
                .filter(|t| same(t))
                .and(default.map(|d| &d.stats))
        })
        .cloned()
        .unwrap_or_else(|| {
            let service = snapshot
                .backends
                .get(p.backend.0 as usize)
                .map_or("-", |b| b.name.as_str());
            Arc::new(RouteStats::new(
                format!("{}/{}", p.ingress.namespace, p.ingress.name),
                service.to_owned(),
            ))
        });
    PassthroughRuntime {
        backend: p.backend.0 as usize,
        stats,
    }
}

/// The upstream client of a location; `None` (the route answers 502, never reaching its pods
/// with other TLS settings than asked) when its `proxy-ssl-*` settings cannot be made.
fn client_of(
    clients: &Clients,
    location: &Location,
    keepalive: crate::h1::Pool,
) -> Option<UpstreamClient> {
    match clients.get(ClientKey::of(location, keepalive)) {
        Ok(client) => Some(client),
        Err(e) => {
            let secret = location
                .upstream_tls
                .as_ref()
                .map_or("-", |t| t.secret.as_str());
            tracing::warn!(secret, error = %e, "proxy-ssl-secret: upstream TLS cannot be set up, the route answers 502");
            None
        }
    }
}

impl Table {
    /// Every Ingress route's ingress-nginx series, once each (`--metrics-compat ingress-nginx`).
    pub fn compat_stats(&self) -> Vec<Arc<CompatStats>> {
        let mut seen = std::collections::HashSet::new();
        self.ingress
            .runtimes
            .iter()
            .flat_map(|h| h.routes.iter().chain(&h.default))
            .flat_map(|r| r.compat.iter().chain(&r.canary_compat))
            .filter(|s| seen.insert(Arc::as_ptr(s)))
            .cloned()
            .collect()
    }
}

fn targets(vh: &VirtualHost) -> impl Iterator<Item = &Target> {
    vh.routes
        .iter()
        .flat_map(|r| std::iter::once(&r.target).chain(r.canary.iter().map(|c| &c.target)))
        .chain(vh.default.iter())
}

fn authority(addr: std::net::SocketAddr) -> Authority {
    // A SocketAddr always renders as a valid authority (`1.2.3.4:80`, `[::1]:80`).
    Authority::try_from(addr.to_string().as_str())
        .unwrap_or_else(|_| Authority::from_static("0.0.0.0:0"))
}

#[cfg(test)]
mod listener_tests;
#[cfg(test)]
mod tests;
