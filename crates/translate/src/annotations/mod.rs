//! Ingress annotations with the `nginx.ingress.kubernetes.io/` prefix, read the way ingress-nginx
//! reads them. One module per family; each takes what it knows from an [`Reader`], and whatever
//! no family took is reported once per Ingress as unsupported.

mod affinity;
mod alias;
mod allowlist;
mod auth;
mod auth_tls;
mod balance;
mod basic_auth;
mod canary;
mod cors;
pub(crate) mod errors;
pub(crate) mod external_auth;
pub(crate) mod headers;
pub(crate) mod limit;
pub(crate) mod proxy;
pub(crate) mod proxy_ssl;
mod redirect;
mod rewrite;
pub(crate) mod ssl;
mod ssl_ciphers;
mod ssl_passthrough;

pub use affinity::AffinitySpec;
pub(crate) use allowlist::networks;
pub use auth_tls::ClientAuthSpec;
pub use canary::CanarySpec;
pub use ssl::SslRedirect;

use crate::migrate::FAILS_CLOSED;
use crate::Diagnostics;
use model::{ObjectRef, Severity};
use std::collections::{BTreeMap, BTreeSet};

/// The prefix ingress-nginx reads; Remora reads the same so manifests move over unchanged.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// Remora's own annotations, for what ingress-nginx has no annotation for.
pub const REMORA_PREFIX: &str = "remora.dev/";

/// Whether translation reads the Ingress annotation `key`: ingress-nginx's and Remora's, and the
/// legacy class annotation. The others (tools' tracking annotations, `kubectl`'s last applied
/// configuration) cannot change what an Ingress translates to.
pub(crate) fn read_by_translation(key: &str) -> bool {
    key.starts_with(PREFIX)
        || key.starts_with(REMORA_PREFIX)
        || key == crate::class::CLASS_ANNOTATION
}

/// Everything the annotations of one Ingress say, already validated.
#[derive(Debug, Clone, Default)]
pub struct IngressAnnotations {
    pub affinity: Option<AffinitySpec>,
    /// `ssl-redirect` and `force-ssl-redirect`.
    pub ssl: SslRedirect,
    /// `from-to-www-redirect`: `www.` of each host (or the host without it) redirects to it.
    pub from_to_www: bool,
    /// `service-upstream`: the Service's cluster IP is the one endpoint, not its pods.
    pub service_upstream: bool,
    /// `server-alias`: more hosts that answer like the Ingress's own.
    pub server_aliases: Vec<model::HostMatch>,
    /// Set when the Ingress is a canary (`canary: "true"`).
    pub canary: Option<CanarySpec>,
    /// `use-regex: "true"` (or `rewrite-target`): the paths of every host of this Ingress are
    /// regular expressions.
    pub use_regex: bool,
    /// `default-backend`: a Service of the Ingress's namespace (its first port) that answers the
    /// `custom-http-errors`, and the requests of a backend without endpoints.
    pub default_backend: Option<String>,
    /// How its routes are proxied (protocol, timeouts, body size, rewrites, redirects, source
    /// lists, CORS), or that they are denied.
    pub location: std::sync::Arc<model::Location>,
    /// `auth-tls-secret` and its family: the client certificates the Ingress's hosts ask for, or
    /// why its Secret cannot be used.
    pub client_auth: Option<ClientAuthSpec>,
    /// `ssl-passthrough: "true"` with `--enable-ssl-passthrough`: the TLS connections of its
    /// hosts are relayed to their pods.
    pub ssl_passthrough: bool,
    /// `ssl-ciphers`, `ssl-prefer-server-ciphers`: the handshakes of its hosts.
    pub ssl_ciphers: Option<model::HostCiphers>,
}

/// Parse the annotations of one Ingress, reporting invalid and unsupported ones. `defaults`: the
/// settings of the ConfigMap (`--configmap`), which the annotations override.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    object: &ObjectRef,
    options: &crate::Options,
    lookups: &crate::lookup::Lookups<'_>,
    defaults: &crate::configmap::Defaults,
    diags: &mut Diagnostics,
) -> IngressAnnotations {
    let mut r = Reader::new(annotations, object, options, lookups, diags);
    let mut location = defaults.location.clone();
    let use_regex = rewrite::parse(&mut r, &mut location);
    proxy::parse(&mut r, &mut location);
    proxy_ssl::parse(&mut r, &mut location);
    redirect::parse(&mut r, &mut location);
    allowlist::parse(&mut r, &mut location);
    basic_auth::parse(&mut r, &mut location);
    external_auth::parse(&mut r, &mut location);
    auth::parse(&mut r, &mut location, defaults.global_auth.as_ref());
    let client_auth = auth_tls::parse(&mut r, &mut location);
    limit::parse(&mut r, &mut location);
    balance::parse(&mut r, &mut location);
    cors::parse(&mut r, &mut location);
    errors::parse(&mut r, &mut location);
    headers::parse(&mut r, &mut location, &defaults.allowed_response_headers);
    let parsed = IngressAnnotations {
        affinity: affinity::parse(&mut r),
        ssl: ssl::parse(&mut r),
        ssl_passthrough: ssl_passthrough::parse(&mut r),
        ssl_ciphers: ssl_ciphers::parse(&mut r),
        server_aliases: alias::parse(&mut r),
        from_to_www: r.bool("from-to-www-redirect").unwrap_or(false),
        service_upstream: r.bool("service-upstream").unwrap_or(false),
        canary: canary::parse(&mut r),
        use_regex,
        default_backend: r.text("default-backend").map(|s| s.trim().to_owned()),
        location: std::sync::Arc::new(location),
        client_auth,
    };
    r.refuse_snippets();
    r.report_unsupported();
    parsed
}

/// A boolean as Go's `strconv.ParseBool` reads it, which is how ingress-nginx reads annotations.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Reads annotations by short name (without prefix) and remembers which ones were read. The
/// same parsers read the ConfigMap's keys ([`Reader::unprefixed`]), so a value means the same in
/// both.
pub struct Reader<'a> {
    /// `nginx.ingress.kubernetes.io/` for annotations, empty for ConfigMap keys.
    prefix: &'static str,
    annotations: &'a BTreeMap<String, String>,
    object: &'a ObjectRef,
    pub options: &'a crate::Options,
    /// What the annotations may refer to by name (the Secret of `auth-secret`).
    pub lookups: &'a crate::lookup::Lookups<'a>,
    diags: &'a mut Diagnostics,
    /// Full names of the annotations present that some family read.
    used: BTreeSet<&'a str>,
    /// The full name being looked up (reused: a lookup allocates nothing).
    key: String,
}

impl<'a> Reader<'a> {
    pub fn new(
        annotations: &'a BTreeMap<String, String>,
        object: &'a ObjectRef,
        options: &'a crate::Options,
        lookups: &'a crate::lookup::Lookups<'a>,
        diags: &'a mut Diagnostics,
    ) -> Self {
        Self {
            prefix: PREFIX,
            annotations,
            object,
            options,
            lookups,
            diags,
            used: BTreeSet::new(),
            key: String::new(),
        }
    }

    /// A reader of keys without prefix: a ConfigMap's data.
    pub fn unprefixed(mut self) -> Self {
        self.prefix = "";
        self
    }

    /// `f` reading the keys `prefix` + name (a ConfigMap's `global-auth-*`, read by the parser of
    /// the `auth-*` annotations).
    pub fn with_prefix<T>(&mut self, prefix: &'static str, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = std::mem::replace(&mut self.prefix, prefix);
        let out = f(self);
        self.prefix = saved;
        out
    }

    /// The Secret `namespace/name` an annotation of this Ingress names, and its key
    /// (`namespace/name`); `Err`: why it cannot be used (in another namespace without
    /// `--allow-cross-namespace-resources`, or not found).
    pub fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(&'a crate::objects::Secret, String), String> {
        let key = format!("{namespace}/{name}");
        if namespace != self.object.namespace && !self.options.allow_cross_namespace_resources {
            return Err(format!(
                "Secret {key} is in another namespace, and cross-namespace Secrets are not allowed (--allow-cross-namespace-resources, as ingress-nginx's allow-cross-namespace-resources)"
            ));
        }
        match self.lookups.secret(namespace, name) {
            Some(secret) => Ok((secret, key)),
            None => Err(format!("Secret {key} not found")),
        }
    }

    /// The Ingress whose annotations these are.
    pub fn object(&self) -> &ObjectRef {
        self.object
    }

    /// The value of `nginx.ingress.kubernetes.io/<name>`, trimmed; marks it as known.
    pub fn get(&mut self, name: &str) -> Option<&'a str> {
        self.get_full(self.prefix, name)
    }

    /// The value of `remora.dev/<name>`, trimmed; marks it as known.
    pub fn get_remora(&mut self, name: &str) -> Option<&'a str> {
        self.get_full(REMORA_PREFIX, name)
    }

    /// The value of `nginx.ingress.kubernetes.io/<name>` without claiming it: for a family that
    /// depends on an annotation another family (or none yet) owns.
    pub fn peek(&self, name: &str) -> Option<&'a str> {
        let annotations: &'a BTreeMap<String, String> = self.annotations;
        annotations
            .get(&format!("{}{name}", self.prefix))
            .map(|v| v.trim())
    }

    fn get_full(&mut self, prefix: &str, name: &str) -> Option<&'a str> {
        let (full, v) = self.lookup(prefix, name)?;
        self.used.insert(full);
        Some(v)
    }

    /// The annotation `prefix` + `name`: its full name and its value, trimmed.
    fn lookup(&mut self, prefix: &str, name: &str) -> Option<(&'a str, &'a str)> {
        let annotations: &'a BTreeMap<String, String> = self.annotations;
        if annotations.is_empty() {
            return None;
        }
        self.key.clear();
        self.key.push_str(prefix);
        self.key.push_str(name);
        let (full, v) = annotations.get_key_value(self.key.as_str())?;
        Some((full.as_str(), v.trim()))
    }

    /// A boolean as ingress-nginx parses it (`strconv.ParseBool`); invalid values warn and read as
    /// absent.
    pub fn bool(&mut self, name: &str) -> Option<bool> {
        self.bool_full(self.prefix, name)
    }

    /// Same for `remora.dev/<name>`.
    pub fn bool_remora(&mut self, name: &str) -> Option<bool> {
        self.bool_full(REMORA_PREFIX, name)
    }

    fn bool_full(&mut self, prefix: &str, name: &str) -> Option<bool> {
        let (full, v) = self.lookup(prefix, name)?;
        self.used.insert(full);
        let parsed = parse_bool(v);
        if parsed.is_none() {
            self.warn_full(full, format!("invalid boolean \"{v}\", ignored"));
        }
        parsed
    }

    /// A non-negative integer (digits only); an invalid value warns (naming what was expected)
    /// and reads as absent.
    pub fn uint<T: std::str::FromStr>(&mut self, name: &str, what: &str) -> Option<T> {
        let v = self.get(name)?.to_owned();
        if v.is_empty() {
            return None;
        }
        match v.parse::<T>() {
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                self.warn(
                    name,
                    format!("invalid value \"{v}\": expected {what}, ignored"),
                );
                None
            }
        }
    }

    /// A non-empty string value, owned.
    pub fn text(&mut self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// [`Reader::peek`] for a boolean; invalid values read as absent (the owner warns).
    pub fn peek_bool(&self, name: &str) -> Option<bool> {
        self.peek(name).and_then(parse_bool)
    }

    pub fn warn(&mut self, name: &str, message: impl Into<String>) {
        let full = format!("{}{name}", self.prefix);
        self.warn_full(&full, message);
    }

    /// A warning about an annotation given by its full name.
    pub fn warn_full(&mut self, full: &str, message: impl Into<String>) {
        self.diags
            .push(Severity::Warning, self.object, Some(full), message);
    }

    /// Deny the Ingress because of annotation `name`: every request gets 503, never served
    /// without what it asks for. The warning is "`why`: every request of this Ingress gets 503
    /// `until`"; the first reason given is the one the route keeps.
    pub fn deny(&mut self, loc: &mut model::Location, name: &str, why: &str, until: &str) {
        // A ConfigMap's `global-auth-*` deny every Ingress they apply to.
        let whom = if self.prefix == PREFIX {
            FAILS_CLOSED
        } else {
            crate::migrate::GLOBAL_FAILS_CLOSED
        };
        self.warn(name, format!("{why}: {whom} gets 503 {until}"));
        loc.denied.get_or_insert_with(|| format!("{name}: {why}"));
    }

    pub fn info(&mut self, name: &str, message: impl Into<String>) {
        let full = format!("{}{name}", self.prefix);
        self.diags
            .push(Severity::Info, self.object, Some(&full), message);
    }

    /// nginx configuration snippets are refused, each with its own warning: Remora never runs
    /// configuration code supplied by an Ingress (ingress-nginx's CVE-2021-25742, CVE-2025-1974).
    fn refuse_snippets(&mut self) {
        let annotations: &'a BTreeMap<String, String> = self.annotations;
        let snippets = annotations
            .keys()
            .filter(|k| k.starts_with(PREFIX) && k.ends_with("-snippet"));
        for full in snippets {
            self.used.insert(full);
            self.warn_full(
                full,
                "refused: Remora never runs configuration code supplied by an Ingress; the rest of the Ingress is served",
            );
        }
    }

    fn report_unsupported(&mut self) {
        let unknown: Vec<&str> = self
            .annotations
            .keys()
            .filter(|k| !self.used.contains(k.as_str()))
            .filter_map(|k| {
                k.strip_prefix(PREFIX)
                    .or_else(|| k.starts_with(REMORA_PREFIX).then_some(k.as_str()))
            })
            .collect();
        if !unknown.is_empty() {
            self.diags.warn(
                self.object,
                format!(
                    "annotations not supported by Remora, ignored: {}",
                    unknown.join(", ")
                ),
            );
        }
    }
}
