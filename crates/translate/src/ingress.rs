//! Ingress rules and paths into virtual hosts and routes.
//!
//! Several Ingresses that share a host merge into one virtual host. When two claim the same host,
//! path and path type, the older Ingress keeps it and the other gets a warning.

use crate::annotations::IngressAnnotations;
use crate::backends::{Backends, PortRef};
use crate::objects::{Ingress, IngressBackend, IntOrString};
use crate::Diagnostics;
use model::{
    Affinity, BackendId, Canary, ClientAuth, HostMatch, HostTls, ObjectRef, Passthrough, PathType,
    Route, Severity, Target, VirtualHost,
};
use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Default)]
struct HostEntry {
    routes: Vec<Pending>,
    default: Option<Target>,
    /// Some Ingress of this host sets `use-regex`: every path of the host is a regex.
    regex: bool,
    /// The certificate of the first Ingress that lists this host in `spec.tls`.
    tls: Option<HostTls>,
    /// The client authentication of the first Ingress of this host with a usable
    /// `auth-tls-secret`.
    client_auth: Option<Arc<ClientAuth>>,
    /// The first reason an Ingress of this host gave why its `auth-tls-secret` is unusable.
    client_auth_error: Option<String>,
    /// The Ingresses of this (exact) host with `ssl-passthrough`, oldest first.
    passthrough: Vec<ObjectRef>,
    /// `ssl-ciphers` / `ssl-prefer-server-ciphers` of the first Ingress of the host with them.
    ssl_ciphers: Option<model::HostCiphers>,
}

/// A route, its path as written in the Ingress (what a regex host matches with), and its
/// Ingress's redirect settings (applied once the host's TLS is known).
struct Pending {
    route: Route,
    written: String,
    ssl: RedirectRule,
}

/// When a route redirects plain HTTP to HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct RedirectRule {
    /// If the host has TLS (`ssl-redirect`, default `--default-ssl-redirect`).
    pub with_tls: bool,
    /// Always (`force-ssl-redirect`).
    pub force: bool,
}

/// Virtual hosts under construction, keyed (and so ordered) exact, wildcard, any.
#[derive(Default)]
pub struct HostTable(BTreeMap<HostMatch, HostEntry>);

impl HostTable {
    /// ingress-nginx's `from-to-www-redirect` for the exact hosts of `ing`: the other name
    /// (`www.` added or taken off) gets a virtual host that redirects every request to the rule's
    /// host, unless some Ingress serves that name already (then a warning).
    pub fn redirect_from_to_www(
        &mut self,
        ing: &Ingress,
        object: &ObjectRef,
        diags: &mut Diagnostics,
    ) {
        for rule in &ing.spec.rules {
            let Some(HostMatch::Exact(to)) = rule
                .host
                .as_deref()
                .and_then(|h| HostMatch::parse(h.trim()).ok())
            else {
                continue;
            };
            let from = match to.strip_prefix("www.") {
                Some(bare) => bare.to_owned(),
                None => format!("www.{to}"),
            };
            let key = HostMatch::Exact(from.clone());
            if self.0.contains_key(&key) {
                diags.warn(
                    object,
                    format!("from-to-www-redirect: {from} is served by an Ingress already, it does not redirect to {to}"),
                );
                continue;
            }
            let location = model::Location {
                redirect_to_host: Some(to.clone()),
                ..model::Location::default()
            };
            self.0.insert(
                key,
                HostEntry {
                    default: Some(Target {
                        backend: None,
                        affinity: None,
                        location: Arc::new(location),
                        ingress: object.clone(),
                        default_backend: None,
                    }),
                    ..HostEntry::default()
                },
            );
        }
    }

    pub fn finish(self, diags: &mut Diagnostics) -> Vec<VirtualHost> {
        self.0
            .into_iter()
            .map(|(host, mut e)| {
                let has_tls = e.tls.is_some();
                let passthrough = e.passthrough.first().and_then(|asked| {
                    passthrough(&host, asked, &e.routes, e.default.as_ref(), diags)
                });
                if passthrough.is_some() {
                    bypassed(&host, &e, diags);
                }
                for p in &mut e.routes {
                    p.route.https_redirect = p.ssl.force || (p.ssl.with_tls && has_tls);
                }
                let routes = if e.regex {
                    regex_routes(&host, e.routes, diags)
                } else {
                    let mut routes: Vec<Route> = e.routes.into_iter().map(|p| p.route).collect();
                    routes.sort_by(|a, b| {
                        (a.path_type, Reverse(a.path.len()), &a.path).cmp(&(
                            b.path_type,
                            Reverse(b.path.len()),
                            &b.path,
                        ))
                    });
                    routes
                };
                VirtualHost {
                    host,
                    routes,
                    default: e.default,
                    tls: e.tls,
                    client_auth: e.client_auth,
                    client_auth_error: e.client_auth_error,
                    passthrough,
                    ssl_ciphers: e.ssl_ciphers,
                }
            })
            .collect()
    }
}

/// Where the TLS connections of a passthrough host go, as ingress-nginx takes them: the backend
/// of the host's location `/` (its `Prefix` path `/`, whichever Ingress of the host has it), else
/// the host's default backend (`spec.defaultBackend`). Without either, or while that Service does
/// not resolve, the host is not passthrough (ingress-nginx: "ignoring SSL Passthrough", "Missing
/// Service"): its connections are terminated, with a warning on the Ingress that asked.
fn passthrough(
    host: &HostMatch,
    asked: &ObjectRef,
    routes: &[Pending],
    default: Option<&Target>,
    diags: &mut Diagnostics,
) -> Option<Passthrough> {
    let root = routes
        .iter()
        .map(|p| &p.route)
        .find(|r| r.path == "/" && r.path_type == PathType::Prefix)
        .map(|r| &r.target);
    let why = match root.or(default) {
        Some(Target {
            backend: Some(backend),
            ingress,
            ..
        }) => {
            return Some(Passthrough {
                backend: *backend,
                ingress: ingress.clone(),
            })
        }
        Some(_) => "the Service of its path / (or default backend) does not resolve",
        None => "it has neither a Prefix path / nor a default backend to relay to",
    };
    diags.push(
        Severity::Warning,
        asked,
        Some(SSL_PASSTHROUGH),
        format!("host {host}: {why}: its TLS connections are terminated by Remora meanwhile"),
    );
    None
}

/// The access controls of a passthrough host that its TLS connections bypass (Remora sees no
/// request of them, as nginx sees none in ingress-nginx), when an Ingress other than those that
/// asked for passthrough set them: a warning on that Ingress, whose controls now hold over plain
/// HTTP only (the one that asked is told by its info line). Client certificates, which the
/// host's handshakes would ask for, are a warning on the Ingress that asked. Neither names the
/// annotation: ingress-nginx does the same, so `migrate-check` has nothing to flag.
fn bypassed(host: &HostMatch, e: &HostEntry, diags: &mut Diagnostics) {
    let targets = e
        .routes
        .iter()
        .map(|p| &p.route.target)
        .chain(e.default.as_ref());
    for t in targets.filter(|t| !e.passthrough.contains(&t.ingress)) {
        let l = &t.location;
        let controls: Vec<&str> = [
            (l.allow_sources.is_some(), "allowlist-source-range"),
            (l.deny_sources.is_some(), "denylist-source-range"),
            (l.basic_auth.is_some(), "auth-type: basic"),
            (l.external_auth.is_some(), "auth-url"),
            (l.denied.is_some(), "the refusal (503) of its requests"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !controls.is_empty() {
            diags.warn(
                &t.ingress,
                format!(
                    "host {host} is an ssl-passthrough host ({}): its TLS connections go to the pods as they are, without {} (as in ingress-nginx); plain HTTP requests keep them",
                    e.passthrough.first().map_or(String::new(), ToString::to_string),
                    controls.join(", ")
                ),
            );
        }
    }
    if let Some(asked) = e.passthrough.first() {
        if e.client_auth.is_some() || e.client_auth_error.is_some() {
            diags.warn(
                asked,
                format!("host {host} asks for client certificates (auth-tls-secret), which its TLS connections, relayed as they are, bypass (as in ingress-nginx): the pods must ask for them"),
            );
        }
    }
}

/// The full name of the annotation whose warnings `ingress.rs` gives.
const SSL_PASSTHROUGH: &str = "nginx.ingress.kubernetes.io/ssl-passthrough";

/// The routes of a `use-regex` host: every path as written becomes an expression (whatever its
/// type, as in ingress-nginx), tried longest first, then in reverse string order for equal lengths
/// (ingress-nginx's location order). Paths that are no valid expression are dropped with a
/// warning.
fn regex_routes(host: &HostMatch, pending: Vec<Pending>, diags: &mut Diagnostics) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::with_capacity(pending.len());
    for Pending {
        mut route, written, ..
    } in pending
    {
        route.path = written;
        route.path_type = PathType::Regex;
        if let Err(e) = regex::Regex::new(&route.regex_source()) {
            diags.warn(
                &route.target.ingress,
                format!(
                    "path \"{}\" of host {} is not a valid regular expression (the host's paths are regexes: use-regex or rewrite-target): {}; skipped",
                    route.path,
                    host,
                    last_line(&e.to_string())
                ),
            );
            continue;
        }
        if routes.iter().any(|r| r.path == route.path) {
            // Two types of one path (or two Ingresses) that the regex makes the same location.
            continue;
        }
        routes.push(route);
    }
    routes.sort_by(|a, b| {
        (Reverse(a.path.len()), Reverse(&a.path)).cmp(&(Reverse(b.path.len()), Reverse(&b.path)))
    });
    routes
}

/// The `regex` crate's errors span several lines, the last saying what is wrong.
fn last_line(s: &str) -> &str {
    let last = s.lines().last().unwrap_or(s).trim();
    last.strip_prefix("error: ").unwrap_or(last)
}

/// Add one served Ingress to the host table. `tls`: the certificate of each of its hosts that has
/// TLS.
#[allow(clippy::too_many_arguments)]
pub fn add(
    ing: &Ingress,
    object: &ObjectRef,
    ann: &IngressAnnotations,
    tls: &BTreeMap<HostMatch, HostTls>,
    ssl: RedirectRule,
    backends: &mut Backends<'_>,
    hosts: &mut HostTable,
    options: &crate::Options,
    diags: &mut Diagnostics,
) {
    let mut cx = Cx {
        namespace: ing.metadata.namespace(),
        object,
        ann,
        backends,
        diags,
        default_backend: None,
    };
    cx.default_backend = cx.default_backend(options);
    let default = ing
        .spec
        .default_backend
        .as_ref()
        .or(ing.spec.backend.as_ref())
        .map(|b| cx.target(b, "/"));
    if ing.spec.rules.is_empty() {
        if let Some(t) = default {
            hosts
                .0
                .entry(HostMatch::Any)
                .or_default()
                .default
                .get_or_insert(t);
        } else {
            cx.diags.warn(
                object,
                "has neither rules nor a default backend: nothing to serve",
            );
        }
        return;
    }
    for rule in &ing.spec.rules {
        let Some(host) = rule_host(rule, object, cx.diags) else {
            continue;
        };
        // `server-alias` hosts answer like the rule's own host (not for rules without host, as in
        // ingress-nginx, where those belong to the catch-all server).
        let aliases = match host {
            HostMatch::Any => &[][..],
            _ => &ann.server_aliases[..],
        };
        let host_tls = tls.get(&host).copied();
        if ann.ssl_passthrough {
            // ingress-nginx compares the SNI with each passthrough server's name as written: only
            // an exact host can match (aliases are not passthrough either).
            match &host {
                HostMatch::Exact(_) => {
                    let asking = &mut hosts.0.entry(host.clone()).or_default().passthrough;
                    if !asking.contains(object) {
                        asking.push(object.clone());
                    }
                }
                other => {
                    let rule = match other {
                        HostMatch::Any => "a rule without host".to_owned(),
                        h => format!("the rule of host {h}"),
                    };
                    cx.diags.push(
                        Severity::Warning,
                        object,
                        Some(SSL_PASSTHROUGH),
                        format!("has no effect on {rule}: a TLS server name (SNI) is compared with exact host names only, as ingress-nginx does"),
                    );
                }
            }
        }
        for host in std::iter::once(host).chain(aliases.iter().cloned()) {
            add_rule(&mut cx, rule, &host, hosts, default.as_ref(), ssl);
            let entry = hosts.0.entry(host).or_default();
            if let Some(t) = host_tls {
                entry.tls.get_or_insert(t);
            }
            // ingress-nginx sets `ssl_ciphers` per server, from the first Ingress with them.
            if let (None, Some(c)) = (&entry.ssl_ciphers, &ann.ssl_ciphers) {
                entry.ssl_ciphers = Some(c.clone());
            }
            // nginx verifies client certificates per server: the first Ingress of the host with
            // a usable Secret configures it; any with an unusable one makes the host answer 403.
            match &ann.client_auth {
                Some(Ok(auth)) => {
                    entry.client_auth.get_or_insert_with(|| auth.clone());
                }
                Some(Err(why)) => {
                    entry.client_auth_error.get_or_insert_with(|| why.clone());
                }
                None => {}
            }
        }
    }
}

/// The host a rule answers, or `None` (with a warning) when it is not a valid host name.
fn rule_host(
    rule: &crate::objects::IngressRule,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> Option<HostMatch> {
    match rule.host.as_deref().map(str::trim) {
        None | Some("") => Some(HostMatch::Any),
        Some(h) => match HostMatch::parse(h) {
            Ok(m) => Some(m),
            Err(why) => {
                diags.warn(object, format!("host \"{h}\" {why}: rule skipped"));
                None
            }
        },
    }
}

/// A path as written, as matched (Prefix without trailing slash), and its type; `None` (with a
/// warning) for paths that cannot be served.
fn route_path<'p>(
    p: &'p crate::objects::HttpIngressPath,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> Option<(&'p str, &'p str, PathType)> {
    let written = match p.path.as_deref() {
        None | Some("") => "/",
        Some(s) => s,
    };
    if !written.starts_with('/') {
        diags.warn(
            object,
            format!("path \"{written}\" does not start with /: skipped"),
        );
        return None;
    }
    let path_type = match p.path_type.as_deref() {
        Some("Exact") => PathType::Exact,
        Some("Prefix") | Some("ImplementationSpecific") | None => PathType::Prefix,
        Some(other) => {
            diags.warn(
                object,
                format!("path \"{written}\" has unknown pathType \"{other}\": skipped"),
            );
            return None;
        }
    };
    let path = match path_type {
        PathType::Prefix if written.len() > 1 => written.trim_end_matches('/'),
        _ => written,
    };
    Some((written, if path.is_empty() { "/" } else { path }, path_type))
}

/// The paths of one rule under one host.
fn add_rule(
    cx: &mut Cx<'_, '_>,
    rule: &crate::objects::IngressRule,
    host: &HostMatch,
    hosts: &mut HostTable,
    default: Option<&Target>,
    ssl: RedirectRule,
) {
    let object = cx.object;
    let entry = hosts.0.entry(host.clone()).or_default();
    for p in rule.http.iter().flat_map(|h| &h.paths) {
        let Some((written, path, path_type)) = route_path(p, object, cx.diags) else {
            continue;
        };
        if cx.ann.use_regex {
            entry.regex = true;
        }
        if let Some(existing) = entry
            .routes
            .iter()
            .map(|p| &p.route)
            .find(|r| r.path == path && r.path_type == path_type)
        {
            let by = existing.target.ingress.clone();
            cx.diags.warn(
                object,
                format!(
                    "{} path \"{written}\" of host {} is already served by {by}: ignored here",
                    path_type.name(),
                    host
                ),
            );
            continue;
        }
        let target = cx.target(&p.backend, written);
        entry.routes.push(Pending {
            route: Route {
                path: path.to_owned(),
                path_type,
                target,
                canary: None,
                https_redirect: false,
                conditions: None,
                backends: Vec::new(),
            },
            written: written.to_owned(),
            ssl,
        });
    }
    if let Some(t) = default {
        entry.default.get_or_insert_with(|| t.clone());
    }
}

/// Attach a canary Ingress to the routes of the primary Ingress with the same host, path and path
/// type. Its paths are not served on their own, as in ingress-nginx.
pub fn add_canary(
    ing: &Ingress,
    object: &ObjectRef,
    ann: &IngressAnnotations,
    backends: &mut Backends<'_>,
    hosts: &mut HostTable,
    diags: &mut Diagnostics,
) {
    let Some(spec) = &ann.canary else { return };
    let mut cx = Cx {
        namespace: ing.metadata.namespace(),
        object,
        ann,
        backends,
        diags,
        // The primary's answers a canary's errors.
        default_backend: None,
    };
    for rule in &ing.spec.rules {
        let Some(host) = rule_host(rule, object, cx.diags) else {
            continue;
        };
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            let Some((written, path, path_type)) = route_path(p, object, cx.diags) else {
                continue;
            };
            let primary = hosts.0.get_mut(&host).and_then(|e| {
                e.routes
                    .iter_mut()
                    .map(|p| &mut p.route)
                    .find(|r| r.path == path && r.path_type == path_type)
            });
            let Some(primary) = primary else {
                cx.diags.warn(
                    object,
                    format!(
                        "canary path \"{written}\" of host {} has no primary Ingress to split traffic with: ignored",
                        host
                    ),
                );
                continue;
            };
            if let Some(existing) = &primary.canary {
                let by = existing.target.ingress.clone();
                cx.diags.warn(
                    object,
                    format!(
                        "path \"{written}\" of host {} already has the canary {by}: ignored here",
                        host
                    ),
                );
                continue;
            }
            let mut target = cx.target(&p.backend, written);
            // The canary answers in the primary's location (nginx has one location for both):
            // its rewrites, redirects, limits and allow-list apply; only the pods differ.
            target.location = primary.target.location.clone();
            // Sticky behaviour: the canary shares the primary's session affinity, so a session
            // keeps one cookie whichever side it is on.
            if spec.sticky {
                target.affinity = primary.target.affinity.clone();
            }
            primary.canary = Some(Box::new(Canary {
                target,
                header: spec.header.clone(),
                header_value: spec.header_value.clone(),
                header_pattern: spec.header_pattern.clone(),
                cookie: spec.cookie.clone(),
                weight: spec.weight,
                weight_total: spec.weight_total,
                sticky: spec.sticky,
            }));
        }
    }
}

struct Cx<'a, 'b> {
    namespace: &'a str,
    object: &'a ObjectRef,
    ann: &'a IngressAnnotations,
    backends: &'a mut Backends<'b>,
    diags: &'a mut Diagnostics,
    /// The Ingress's default backend ([`Cx::default_backend`]), resolved once.
    default_backend: Option<BackendId>,
}

impl Cx<'_, '_> {
    /// The `default-backend` annotation's Service (in the Ingress's namespace), else
    /// `--default-backend-service`; each by its first port. Only looked up for a location with
    /// `custom-http-errors` or the annotation. One that does not resolve is a warning.
    fn default_backend(&mut self, options: &crate::Options) -> Option<BackendId> {
        let annotated = self.ann.default_backend.as_deref();
        if annotated.is_none() && self.ann.location.custom_http_errors.is_empty() {
            return None;
        }
        let global = options.default_backend_service.as_ref();
        let (namespace, name, what) = match (annotated, global) {
            (Some(name), _) => (self.namespace, name, "default-backend"),
            (None, Some((ns, name))) => (ns.as_str(), name.as_str(), "--default-backend-service"),
            (None, None) => {
                self.diags.warn(
                    self.object,
                    "custom-http-errors: no default-backend annotation nor --default-backend-service: the statuses are answered as they are",
                );
                return None;
            }
        };
        let resolved = self
            .backends
            .first_port(namespace, name)
            .ok_or_else(|| format!("Service {namespace}/{name} not found, or without ports"))
            .and_then(|port| {
                self.backends
                    .service(namespace, name, port, false, self.object, self.diags)
            });
        match resolved {
            Ok(id) => Some(id),
            Err(why) => {
                self.diags
                    .warn(self.object, format!("{what}: {why}: not used"));
                None
            }
        }
    }

    fn target(&mut self, backend: &IngressBackend, route_path: &str) -> Target {
        let resolved = match service_ref(backend) {
            Ok((svc, port)) => self.backends.resolve(
                self.namespace,
                svc,
                port,
                self.ann.service_upstream,
                self.object,
                self.diags,
            ),
            Err(why) => {
                self.diags
                    .warn(self.object, format!("{why}: requests get 503"));
                None
            }
        };
        Target {
            backend: resolved,
            default_backend: self.default_backend,
            location: self.ann.location.clone(),
            affinity: self.ann.affinity.as_ref().map(|a| {
                Arc::new(Affinity {
                    cookie_name: a.cookie_name.clone(),
                    mode: a.mode,
                    expires: a.expires,
                    max_age: a.max_age,
                    path: a.path.clone().unwrap_or_else(|| route_path.to_owned()),
                    domain: a.domain.clone(),
                    secure: a.secure,
                    samesite: a.samesite,
                    conditional_samesite_none: a.conditional_samesite_none,
                    change_on_failure: a.change_on_failure,
                    balance_factor: a.balance_factor,
                    sliding: a.sliding,
                    absolute_timeout: None,
                    header: None,
                    scope: 0,
                })
            }),
            ingress: self.object.clone(),
        }
    }
}

/// The Service and port an Ingress backend names, in either API shape.
fn service_ref(b: &IngressBackend) -> Result<(&str, PortRef<'_>), String> {
    if let Some(svc) = &b.service {
        let port = svc.port.as_ref().and_then(|p| match (&p.number, &p.name) {
            (Some(n), _) => Some(PortRef::Number(*n)),
            (None, Some(name)) if !name.is_empty() => Some(PortRef::Name(name)),
            _ => None,
        });
        return match port {
            _ if svc.name.is_empty() => Err("backend service has no name".to_owned()),
            Some(port) => Ok((&svc.name, port)),
            None => Err(format!("backend service {} has no port", svc.name)),
        };
    }
    if let Some(name) = b.service_name.as_deref().filter(|n| !n.is_empty()) {
        let port = match &b.service_port {
            Some(IntOrString::Int(n)) => PortRef::Number(*n),
            Some(IntOrString::String(s)) => match s.parse::<i64>() {
                Ok(n) => PortRef::Number(n),
                Err(_) => PortRef::Name(s),
            },
            None => return Err(format!("backend service {name} has no servicePort")),
        };
        return Ok((name, port));
    }
    if b.resource.is_some() {
        return Err("resource backends are not supported".to_owned());
    }
    Err("backend names no service".to_owned())
}
