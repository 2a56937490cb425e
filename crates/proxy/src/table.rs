//! The routing table the request path reads: a [`Snapshot`] plus what makes lookups cheap (host
//! hash maps, per-backend balancers, pre-parsed upstream authorities). Built off the request path,
//! once per snapshot, and never mutated afterwards except for round-robin counters.

use crate::metrics::RouteStats;
use crate::upstream::{ClientKey, Clients, UpstreamClient};
use balance::BackendBalancer;
use http::uri::Authority;
use model::{
    AffinityMode, BackendId, Canary, Diagnostic, HostMatch, HostTls, Location, PathType, Snapshot,
    Target, VirtualHost,
};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Table {
    pub snapshot: Arc<Snapshot>,
    pub diagnostics: Arc<Vec<Diagnostic>>,
    pub generation: u64,
    exact: HashMap<String, usize>,
    wildcard: HashMap<String, usize>,
    any: Option<usize>,
    pub backends: Vec<BackendRuntime>,
    /// `canary-by-header-pattern` regexes, compiled once per snapshot.
    patterns: HashMap<String, regex::Regex>,
    /// Per host, per route: the compiled expression of `Regex` routes (`use-regex`).
    path_regexes: Vec<Vec<Option<regex::Regex>>>,
    /// Per host: the certificate it presents over TLS (`None`: the default certificate).
    certificates: Vec<Option<Arc<CertifiedKey>>>,
    /// The upstream client of each (protocol, connect timeout) the routes use.
    clients: HashMap<ClientKey, UpstreamClient>,
    /// Per host, per route: the statistics of its target and of its canary.
    stats: Vec<Vec<RouteSlot>>,
    /// Per host: the statistics of its default backend.
    default_stats: Vec<Option<Arc<RouteStats>>>,
}

/// The statistics of one route: its target's and its canary's.
pub struct RouteSlot {
    pub primary: Arc<RouteStats>,
    pub canary: Option<Arc<RouteStats>>,
}

/// What a request matched: its route's target, and the route's canary if it has one.
pub struct Matched<'a> {
    pub target: &'a Target,
    pub canary: Option<&'a Canary>,
    /// Plain HTTP requests of this route are redirected to HTTPS.
    pub https_redirect: bool,
    /// The compiled path of a `Regex` route (for `rewrite-target` captures).
    pub regex: Option<&'a regex::Regex>,
    /// Statistics of the target, and of the canary if the route has one.
    pub stats: &'a Arc<RouteStats>,
    pub canary_stats: Option<&'a Arc<RouteStats>>,
}

pub struct BackendRuntime {
    pub balancer: BackendBalancer,
    /// `ip:port` of each endpoint, same order as the balancer's endpoints.
    pub authorities: Vec<Authority>,
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
        let previous_backends: HashMap<&str, &BackendBalancer> = previous
            .map(|t| {
                t.snapshot
                    .backends
                    .iter()
                    .zip(&t.backends)
                    .map(|(b, rt)| (b.name.as_str(), &rt.balancer))
                    .collect()
            })
            .unwrap_or_default();
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut any = None;
        for (i, vh) in snapshot.hosts.iter().enumerate() {
            match &vh.host {
                HostMatch::Exact(h) => {
                    exact.insert(h.clone(), i);
                }
                HostMatch::Wildcard(suffix) => {
                    wildcard.insert(suffix.clone(), i);
                }
                HostMatch::Any => any = Some(i),
            }
        }
        // A ring is only worth its memory where some route uses balanced affinity.
        let mut needs_ring = vec![false; snapshot.backends.len()];
        for t in snapshot.hosts.iter().flat_map(targets) {
            if let (Some(BackendId(b)), Some(a)) = (t.backend, &t.affinity) {
                if a.mode == AffinityMode::Balanced {
                    if let Some(n) = needs_ring.get_mut(b as usize) {
                        *n = true;
                    }
                }
            }
        }
        let backends = snapshot
            .backends
            .iter()
            .zip(needs_ring)
            .map(|(b, ring)| {
                let start = generation as usize % b.endpoints.len().max(1);
                BackendRuntime {
                    balancer: BackendBalancer::new(
                        b,
                        ring,
                        start,
                        previous_backends.get(b.name.as_str()).copied(),
                    ),
                    authorities: b.endpoints.iter().map(|e| authority(e.addr)).collect(),
                }
            })
            .collect();
        let patterns = snapshot
            .hosts
            .iter()
            .flat_map(|h| &h.routes)
            .filter_map(|r| r.canary.as_ref()?.header_pattern.as_ref())
            .filter_map(|p| Some((p.clone(), regex::Regex::new(p).ok()?)))
            .collect();
        let path_regexes = snapshot
            .hosts
            .iter()
            .map(|h| {
                h.routes
                    .iter()
                    .map(|r| match r.path_type {
                        // Translation dropped the paths that do not compile.
                        PathType::Regex => regex::Regex::new(&r.regex_source()).ok(),
                        _ => None,
                    })
                    .collect()
            })
            .collect();
        let keys: Vec<Option<Arc<CertifiedKey>>> = snapshot
            .certificates
            .iter()
            .map(crate::tls::certified_key)
            .collect();
        let certificates = snapshot
            .hosts
            .iter()
            .map(|h| match h.tls {
                Some(HostTls::Certificate(i)) => keys.get(i).cloned().flatten(),
                _ => None,
            })
            .collect();
        let clients = match clients {
            Some(pool) => snapshot
                .hosts
                .iter()
                .flat_map(targets)
                .map(|t| ClientKey::of(&t.location))
                .collect::<std::collections::HashSet<_>>()
                .into_iter()
                .map(|k| (k, pool.get(k)))
                .collect(),
            None => HashMap::new(),
        };
        // Statistics carry over by (Ingress, Service) so counters keep growing across reloads.
        let mut previous_stats: HashMap<(String, String), Arc<RouteStats>> = previous
            .map(|t| {
                t.route_stats()
                    .into_iter()
                    .map(|s| ((s.ingress.clone(), s.service.clone()), s))
                    .collect()
            })
            .unwrap_or_default();
        let mut stats_of = |t: &Target| -> Arc<RouteStats> {
            let ingress = format!("{}/{}", t.ingress.namespace, t.ingress.name);
            let service = t
                .backend
                .and_then(|b| snapshot.backends.get(b.0 as usize))
                .map_or_else(|| "-".to_owned(), |b| b.name.clone());
            previous_stats
                .entry((ingress.clone(), service.clone()))
                .or_insert_with(|| Arc::new(RouteStats::new(ingress, service)))
                .clone()
        };
        let stats = snapshot
            .hosts
            .iter()
            .map(|h| {
                h.routes
                    .iter()
                    .map(|r| RouteSlot {
                        primary: stats_of(&r.target),
                        canary: r.canary.as_ref().map(|c| stats_of(&c.target)),
                    })
                    .collect()
            })
            .collect();
        let default_stats = snapshot
            .hosts
            .iter()
            .map(|h| h.default.as_ref().map(&mut stats_of))
            .collect();
        Self {
            patterns,
            path_regexes,
            certificates,
            clients,
            stats,
            default_stats,
            snapshot: Arc::new(snapshot),
            diagnostics: Arc::new(diagnostics),
            generation,
            exact,
            wildcard,
            any,
            backends,
        }
    }

    /// The virtual host a host name (lowercase, without port) belongs to: exact, then wildcard.
    fn named_host(&self, host: &str) -> Option<usize> {
        self.exact
            .get(host)
            .or_else(|| {
                let dot = host.find('.')?;
                self.wildcard.get(&host[dot..])
            })
            .copied()
    }

    /// The certificate for a TLS server name; `None`: the default certificate.
    pub fn certificate(&self, server_name: &str) -> Option<Arc<CertifiedKey>> {
        let name = if server_name.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Owned(server_name.to_ascii_lowercase())
        } else {
            std::borrow::Cow::Borrowed(server_name)
        };
        self.certificates.get(self.named_host(&name)?)?.clone()
    }

    /// The target for a request: the virtual host (exact, then wildcard, then any), then its first
    /// matching route, then its default backend. `host` must be lowercase, without port.
    pub fn route(&self, host: &str, path: &str) -> Option<Matched<'_>> {
        let vh_index = self.named_host(host).or(self.any)?;
        let vh: &VirtualHost = self.snapshot.hosts.get(vh_index)?;
        let regexes = self.path_regexes.get(vh_index)?;
        let stats = self.stats.get(vh_index)?;
        let found = vh
            .routes
            .iter()
            .zip(regexes)
            .zip(stats)
            .find(|((r, re), _)| match re {
                Some(re) => re.is_match(path),
                None => r.matches(path),
            });
        match found {
            Some(((r, re), slot)) => Some(Matched {
                target: &r.target,
                canary: r.canary.as_deref(),
                https_redirect: r.https_redirect,
                regex: re.as_ref(),
                stats: &slot.primary,
                canary_stats: slot.canary.as_ref(),
            }),
            None => {
                let target = vh.default.as_ref()?;
                let stats = self.default_stats.get(vh_index)?.as_ref()?;
                Some(Matched {
                    target,
                    canary: None,
                    https_redirect: false,
                    regex: None,
                    stats,
                    canary_stats: None,
                })
            }
        }
    }

    /// Every target's statistics, once each.
    pub fn route_stats(&self) -> Vec<Arc<RouteStats>> {
        let mut seen = std::collections::HashSet::new();
        self.stats
            .iter()
            .flatten()
            .flat_map(|s| std::iter::once(&s.primary).chain(s.canary.as_ref()))
            .chain(self.default_stats.iter().flatten())
            .filter(|s| seen.insert(Arc::as_ptr(s)))
            .cloned()
            .collect()
    }

    /// The upstream client for a target's location.
    pub fn client(&self, location: &Location) -> Option<&UpstreamClient> {
        self.clients.get(&ClientKey::of(location))
    }

    /// A compiled `canary-by-header-pattern`.
    pub fn pattern(&self, p: &str) -> Option<&regex::Regex> {
        self.patterns.get(p)
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
