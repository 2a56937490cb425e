//! An HTTPRoute's rules into routes: one route per match (a rule without matches matches every
//! path), with the rule's filters and timeouts in its `Location`, its `backendRefs` as weighted
//! backends, and its `sessionPersistence` as the target's affinity.

use super::refs::Grants;
use super::session;
use super::status::Problem;
use crate::backends::{Backends, PortRef};
use crate::objects::HttpRoute;
use crate::{Diagnostics, Options};
use gateway_api::experimental::httproutes::{
    HTTPRouteRules, HTTPRouteRulesFilters, HTTPRouteRulesFiltersType, HTTPRouteRulesMatches,
    HTTPRouteRulesMatchesHeadersType, HTTPRouteRulesMatchesPathType,
    HTTPRouteRulesMatchesQueryParamsType,
};
use model::{
    BackendId, BackendProtocol, Conditions, Filters, HeaderEdits, Location, Mirror, ObjectRef,
    PathModifier, PathType, RequestRedirect, Route, Target, UrlRewrite, ValueMatch,
    WeightedBackend,
};
use std::sync::Arc;

const GROUP: &str = "gateway.networking.k8s.io";

/// The name of an enum value as the API writes it (`GET`, `https`...).
fn api_name<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// The routes of every rule of `route`, in rule and match order; `problems` gets the first
/// reference that does not resolve (`ResolvedRefs`) and the first part that cannot be honoured
/// (`Accepted`).
pub fn build(
    route: &HttpRoute,
    object: &ObjectRef,
    options: &Options,
    grants: &Grants,
    backends: &mut Backends<'_>,
    problems: &mut Problems,
    diags: &mut Diagnostics,
) -> Vec<Route> {
    let (namespace, name) = super::ns_name(&route.route.metadata);
    let mut out = Vec::new();
    for (i, rule) in route
        .route
        .spec
        .rules
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let label = match rule.name.as_deref() {
            Some(n) if !n.is_empty() => format!("rule {n}"),
            _ => format!("rules[{i}]"),
        };
        let cx = RuleCx {
            namespace,
            object,
            label: &label,
        };
        let mut fail = false;
        let filters = cx.filters(rule, grants, backends, &mut fail, problems, diags);
        let mut weighted = cx.backends(rule, grants, backends, problems, diags);
        if fail || (weighted.is_empty() && filters.redirect.is_none()) {
            // Nothing to forward to and nothing that answers: 500, as the spec says.
            weighted = vec![WeightedBackend {
                backend: None,
                weight: 1,
            }];
        }
        if filters.redirect.is_some() {
            weighted.clear();
        }
        let scope_name = format!("{} {namespace}/{name} {label}", route.kind());
        let affinity = route
            .sessions
            .get(i)
            .and_then(Option::as_ref)
            .and_then(|sp| session::affinity(sp, &scope_name, options, object, &label, diags));
        let location = Location {
            // The Gateway API has no body size limit; nginx's 1 MiB default is an Ingress one.
            body_limit: None,
            protocol: if route.grpc {
                BackendProtocol::Grpc
            } else {
                BackendProtocol::Http
            },
            filters: (filters != Filters::default()).then(|| Box::new(filters)),
            ..Location::default()
        };
        let target = Target {
            backend: None,
            affinity: affinity.map(Arc::new),
            location: Arc::new(location),
            ingress: object.clone(),
            default_backend: None,
        };
        let default_match = [HTTPRouteRulesMatches::default()];
        let matches = match rule.matches.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => &default_match,
        };
        for (j, m) in matches.iter().enumerate() {
            if let Some(r) = cx.route(m, j, &target, &weighted, diags) {
                out.push(r);
            }
        }
    }
    out
}

/// The first problem of a route's rules, by the condition it belongs to.
#[derive(Debug, Default)]
pub struct Problems {
    pub accepted: Option<Problem>,
    pub resolved_refs: Option<Problem>,
}

/// What a rule's parts are read with.
struct RuleCx<'a> {
    namespace: &'a str,
    object: &'a ObjectRef,
    /// `rules[0]` or `rule NAME`, for messages.
    label: &'a str,
}

impl RuleCx<'_> {
    fn warn(&self, diags: &mut Diagnostics, message: String) {
        diags.warn(self.object, format!("{}: {message}", self.label));
    }

    /// One match into a route; `None` (with a warning) when it cannot be served as written.
    fn route(
        &self,
        m: &HTTPRouteRulesMatches,
        j: usize,
        target: &Target,
        backends: &[WeightedBackend],
        diags: &mut Diagnostics,
    ) -> Option<Route> {
        let (path_type, value) = match &m.path {
            None => (PathType::Prefix, "/".to_owned()),
            Some(p) => {
                let value = p.value.clone().unwrap_or_else(|| "/".to_owned());
                let t = match p.r#type {
                    None | Some(HTTPRouteRulesMatchesPathType::PathPrefix) => PathType::Prefix,
                    Some(HTTPRouteRulesMatchesPathType::Exact) => PathType::Exact,
                    Some(HTTPRouteRulesMatchesPathType::RegularExpression) => {
                        PathType::RegularExpression
                    }
                };
                (t, value)
            }
        };
        let path = match path_type {
            PathType::Prefix | PathType::Exact if !value.starts_with('/') => {
                self.warn(
                    diags,
                    format!("matches[{j}]: path {value} does not start with /: left out"),
                );
                return None;
            }
            PathType::Prefix if value != "/" => value.trim_end_matches('/').to_owned(),
            PathType::RegularExpression => {
                if let Err(e) = regex::Regex::new(&format!("^(?:{value})$")) {
                    self.warn(
                        diags,
                        format!("matches[{j}]: path {value} is not a regular expression Remora can use ({e}): left out"),
                    );
                    return None;
                }
                value
            }
            _ => value,
        };
        let mut conditions = Conditions {
            method: m.method.as_ref().and_then(api_name),
            ..Conditions::default()
        };
        for h in m.headers.as_deref().unwrap_or_default() {
            let name = h.name.to_ascii_lowercase();
            // The first of equivalent names counts.
            if conditions.headers.iter().any(|c| c.name == name) {
                continue;
            }
            let regex = matches!(
                h.r#type,
                Some(HTTPRouteRulesMatchesHeadersType::RegularExpression)
            );
            if regex && regex::Regex::new(&h.value).is_err() {
                self.warn(
                    diags,
                    format!(
                        "matches[{j}]: header {} value {} is not a regular expression: left out",
                        h.name, h.value
                    ),
                );
                return None;
            }
            conditions.headers.push(ValueMatch {
                name,
                value: h.value.clone(),
                regex,
            });
        }
        for q in m.query_params.as_deref().unwrap_or_default() {
            if conditions.query.iter().any(|c| c.name == q.name) {
                continue;
            }
            let regex = matches!(
                q.r#type,
                Some(HTTPRouteRulesMatchesQueryParamsType::RegularExpression)
            );
            if regex && regex::Regex::new(&q.value).is_err() {
                self.warn(
                    diags,
                    format!("matches[{j}]: query parameter {} value {} is not a regular expression: left out", q.name, q.value),
                );
                return None;
            }
            conditions.query.push(ValueMatch {
                name: q.name.clone(),
                value: q.value.clone(),
                regex,
            });
        }
        Some(Route {
            path,
            path_type,
            target: target.clone(),
            canary: None,
            https_redirect: false,
            conditions: (conditions != Conditions::default()).then(|| Box::new(conditions)),
            backends: backends.to_vec(),
        })
    }

    /// The rule's filters. `fail`: a filter Remora cannot honour, so the rule answers 500 rather
    /// than skip it (the spec's rule for filters that cannot be applied).
    fn filters(
        &self,
        rule: &HTTPRouteRules,
        grants: &Grants,
        backends: &mut Backends<'_>,
        fail: &mut bool,
        problems: &mut Problems,
        diags: &mut Diagnostics,
    ) -> Filters {
        let mut f = Filters::default();
        for filter in rule.filters.as_deref().unwrap_or_default() {
            self.filter(filter, &mut f, grants, backends, fail, problems, diags);
        }
        if let Some(t) = &rule.timeouts {
            f.request_timeout_ms = t
                .request
                .as_deref()
                .and_then(|d| self.duration_ms("timeouts.request", d, diags));
            f.backend_timeout_ms = t
                .backend_request
                .as_deref()
                .and_then(|d| self.duration_ms("timeouts.backendRequest", d, diags));
            if let (Some(r), Some(b)) = (f.request_timeout_ms, f.backend_timeout_ms) {
                if b > r {
                    self.warn(
                        diags,
                        "timeouts.backendRequest is longer than timeouts.request: the request timeout applies".to_owned(),
                    );
                }
            }
        }
        f
    }

    /// A duration of the Gateway API (GEP-2257), in milliseconds; 0 means none.
    fn duration_ms(&self, field: &str, d: &str, diags: &mut Diagnostics) -> Option<u64> {
        match d.parse::<gateway_api::Duration>() {
            Ok(d) => u64::try_from(d.as_millis()).ok().filter(|ms| *ms > 0),
            Err(e) => {
                self.warn(diags, format!("{field} {d} is not a duration ({e}): none"));
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn filter(
        &self,
        filter: &HTTPRouteRulesFilters,
        f: &mut Filters,
        grants: &Grants,
        backends: &mut Backends<'_>,
        fail: &mut bool,
        problems: &mut Problems,
        diags: &mut Diagnostics,
    ) {
        match filter.r#type {
            HTTPRouteRulesFiltersType::RequestHeaderModifier => {
                if let Some(m) = &filter.request_header_modifier {
                    edits(
                        &mut f.request_headers,
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    );
                }
            }
            HTTPRouteRulesFiltersType::ResponseHeaderModifier => {
                if let Some(m) = &filter.response_header_modifier {
                    edits(
                        &mut f.response_headers,
                        m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                        m.remove.iter().flatten(),
                    );
                }
            }
            HTTPRouteRulesFiltersType::RequestRedirect => {
                let Some(r) = &filter.request_redirect else {
                    return;
                };
                let status = match r.status_code.unwrap_or(302) {
                    s @ (301 | 302 | 303 | 307 | 308) => s as u16,
                    other => {
                        self.warn(
                            diags,
                            format!("RequestRedirect statusCode {other} is not a redirect: 302"),
                        );
                        302
                    }
                };
                let path = r.path.as_ref().and_then(|p| {
                    modifier(
                        p.replace_full_path.as_deref(),
                        p.replace_prefix_match.as_deref(),
                        &api_name(&p.r#type).unwrap_or_default(),
                    )
                });
                f.redirect = Some(RequestRedirect {
                    scheme: r.scheme.as_ref().and_then(api_name),
                    hostname: r.hostname.clone(),
                    port: r.port.and_then(|p| u16::try_from(p).ok()),
                    path,
                    status,
                });
            }
            HTTPRouteRulesFiltersType::UrlRewrite => {
                let Some(r) = &filter.url_rewrite else {
                    return;
                };
                f.rewrite = Some(UrlRewrite {
                    hostname: r.hostname.clone(),
                    path: r.path.as_ref().and_then(|p| {
                        modifier(
                            p.replace_full_path.as_deref(),
                            p.replace_prefix_match.as_deref(),
                            &api_name(&p.r#type).unwrap_or_default(),
                        )
                    }),
                });
            }
            HTTPRouteRulesFiltersType::RequestMirror => {
                let Some(m) = &filter.request_mirror else {
                    return;
                };
                let r = &m.backend_ref;
                let percent = match (&m.fraction, m.percent) {
                    (Some(fr), _) => {
                        let d = fr.denominator.unwrap_or(100).max(1);
                        (i64::from(fr.numerator) * 100 / i64::from(d)).clamp(0, 100) as u32
                    }
                    (None, Some(p)) => p.clamp(0, 100) as u32,
                    (None, None) => 100,
                };
                match self.service(
                    (
                        r.group.as_deref(),
                        r.kind.as_deref(),
                        r.namespace.as_deref(),
                        &r.name,
                        r.port,
                    ),
                    grants,
                    backends,
                    diags,
                ) {
                    Ok(backend) => f.mirrors.push(Mirror { backend, percent }),
                    Err((reason, why)) => {
                        self.warn(
                            diags,
                            format!("RequestMirror: {why} ({reason}): not mirrored"),
                        );
                        problems
                            .resolved_refs
                            .get_or_insert(Problem::new(reason, why));
                    }
                }
            }
            HTTPRouteRulesFiltersType::ExtensionRef
            | HTTPRouteRulesFiltersType::Cors
            | HTTPRouteRulesFiltersType::ExternalAuth => {
                *fail = true;
                let message = format!(
                    "{}: filter {} is not supported",
                    self.label,
                    api_name(&filter.r#type).unwrap_or_default()
                );
                diags.warn(
                    self.object,
                    format!("{message}: its requests get 500 rather than go through unfiltered"),
                );
                problems
                    .accepted
                    .get_or_insert(Problem::new("UnsupportedValue", message));
            }
        }
    }

    /// The rule's `backendRefs`, each resolved or not (an unresolved one answers 500).
    fn backends(
        &self,
        rule: &HTTPRouteRules,
        grants: &Grants,
        backends: &mut Backends<'_>,
        problems: &mut Problems,
        diags: &mut Diagnostics,
    ) -> Vec<WeightedBackend> {
        let mut out = Vec::new();
        for (k, r) in rule
            .backend_refs
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let weight = u32::try_from(r.weight.unwrap_or(1)).unwrap_or(0);
            if r.filters.as_ref().is_some_and(|f| !f.is_empty()) {
                self.warn(
                    diags,
                    format!(
                        "backendRefs[{k}]: filters on a backendRef are not supported yet: ignored"
                    ),
                );
            }
            let backend = match self.service(
                (
                    r.group.as_deref(),
                    r.kind.as_deref(),
                    r.namespace.as_deref(),
                    &r.name,
                    r.port,
                ),
                grants,
                backends,
                diags,
            ) {
                Ok(id) => Some(id),
                Err((reason, why)) => {
                    if weight > 0 {
                        self.warn(
                            diags,
                            format!("backendRefs[{k}]: {why} ({reason}): its share of requests gets 500"),
                        );
                    }
                    problems.resolved_refs.get_or_insert(Problem::new(
                        reason,
                        format!("{}: backendRefs[{k}]: {why}", self.label),
                    ));
                    None
                }
            };
            out.push(WeightedBackend { backend, weight });
        }
        out
    }

    /// A Service reference of a route (group, kind, namespace, name, port) into a backend, or why
    /// not: the Gateway API's reason, and a sentence.
    fn service(
        &self,
        (group, kind, namespace, name, port): (
            Option<&str>,
            Option<&str>,
            Option<&str>,
            &str,
            Option<i32>,
        ),
        grants: &Grants,
        backends: &mut Backends<'_>,
        diags: &mut Diagnostics,
    ) -> Result<BackendId, (&'static str, String)> {
        let group = group.unwrap_or("");
        let kind = kind.unwrap_or("Service");
        if !(group.is_empty() || group == "core") || kind != "Service" {
            return Err((
                "InvalidKind",
                format!("{group}/{kind} {name} is not a Service"),
            ));
        }
        let ns = namespace.unwrap_or(self.namespace);
        if !grants.allows(
            (GROUP, self.object.kind.as_str(), self.namespace),
            ("", "Service", ns, name),
        ) {
            return Err((
                "RefNotPermitted",
                format!(
                    "Service {ns}/{name} is in another namespace and no ReferenceGrant allows it"
                ),
            ));
        }
        let Some(port) = port else {
            return Err((
                "BackendNotFound",
                format!("Service {ns}/{name} without port"),
            ));
        };
        backends
            .service(
                ns,
                name,
                PortRef::Number(i64::from(port)),
                false,
                self.object,
                diags,
            )
            .map_err(|why| ("BackendNotFound", why))
    }
}

/// A header modifier's lists into edits: names lowercase; the first of equivalent names counts.
fn edits<'a>(
    e: &mut HeaderEdits,
    set: impl Iterator<Item = (&'a String, &'a String)>,
    add: impl Iterator<Item = (&'a String, &'a String)>,
    remove: impl Iterator<Item = &'a String>,
) {
    for (n, v) in set {
        let n = n.to_ascii_lowercase();
        if !e.set.iter().any(|(s, _)| *s == n) {
            e.set.push((n, v.clone()));
        }
    }
    for (n, v) in add {
        let n = n.to_ascii_lowercase();
        if !e.add.iter().any(|(s, _)| *s == n) {
            e.add.push((n, v.clone()));
        }
    }
    for n in remove {
        let n = n.to_ascii_lowercase();
        if !e.remove.contains(&n) {
            e.remove.push(n);
        }
    }
}

/// A path modifier of a redirect or rewrite, by its `type`.
fn modifier(full: Option<&str>, prefix: Option<&str>, kind: &str) -> Option<PathModifier> {
    match kind {
        "ReplaceFullPath" => full.map(|p| PathModifier::Full(p.to_owned())),
        "ReplacePrefixMatch" => prefix.map(|p| PathModifier::Prefix(p.to_owned())),
        _ => None,
    }
}
