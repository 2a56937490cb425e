//! What moving Ingresses and ingress-nginx's ConfigMap to Remora changes (`remora migrate-check`):
//! every `nginx.ingress.kubernetes.io/` annotation of every Ingress and every key of the ConfigMap,
//! judged by translating them. [`ANNOTATIONS`] lists each annotation ingress-nginx's parsers read
//! with what Remora does with it; a test checks it against the parsers, so the report and the
//! README table built from it cannot drift from the code.

use crate::annotations::{PREFIX, REMORA_PREFIX};
use crate::{configmap, Objects, Options};
use model::{Diagnostic, ObjectRef, Severity};
use std::fmt;

/// What Remora does with an annotation or ConfigMap key, whatever its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Support {
    /// Read and honoured as ingress-nginx does (README's annotation table says how).
    Supported,
    /// Read, and means nothing for Remora (nginx buffer tuning, a cache Remora does not keep):
    /// no behaviour changes.
    NoEffect,
    /// Configuration code for nginx: refused with a warning, the rest of the Ingress served.
    Refused,
    /// Not read: ignored, with a warning.
    NotSupported,
}

impl Support {
    pub fn describe(self) -> &'static str {
        match self {
            Support::Supported => "supported",
            Support::NoEffect => "accepted with no effect",
            Support::Refused => "refused",
            Support::NotSupported => "not supported",
        }
    }
}

use Support::{NoEffect, NotSupported, Refused, Supported};

/// Every annotation name ingress-nginx's parsers read (`internal/ingress/annotations`), and the
/// deprecated `session-cookie-hash` old manifests still carry.
pub const ANNOTATIONS: &[(&str, Support)] = &[
    ("affinity", Supported),
    ("affinity-canary-behavior", Supported),
    ("affinity-mode", Supported),
    ("allowlist-source-range", Supported),
    ("app-root", Supported),
    ("auth-always-set-cookie", Supported),
    ("auth-cache-duration", NoEffect),
    ("auth-cache-key", NoEffect),
    ("auth-keepalive", NoEffect),
    ("auth-keepalive-requests", NoEffect),
    ("auth-keepalive-share-vars", NoEffect),
    ("auth-keepalive-timeout", NoEffect),
    ("auth-method", Supported),
    ("auth-proxy-set-headers", Supported),
    ("auth-realm", Supported),
    ("auth-request-redirect", Supported),
    ("auth-response-headers", Supported),
    ("auth-secret", Supported),
    ("auth-secret-type", Supported),
    ("auth-signin", Supported),
    ("auth-signin-redirect-param", Supported),
    ("auth-snippet", Refused),
    ("auth-tls-error-page", Supported),
    ("auth-tls-match-cn", Supported),
    ("auth-tls-pass-certificate-to-upstream", Supported),
    ("auth-tls-secret", Supported),
    ("auth-tls-verify-client", Supported),
    ("auth-tls-verify-depth", Supported),
    ("auth-type", Supported),
    ("auth-url", Supported),
    ("backend-protocol", Supported),
    ("canary", Supported),
    ("canary-by-cookie", Supported),
    ("canary-by-header", Supported),
    ("canary-by-header-pattern", Supported),
    ("canary-by-header-value", Supported),
    ("canary-weight", Supported),
    ("canary-weight-total", Supported),
    ("client-body-buffer-size", NoEffect),
    ("configuration-snippet", Refused),
    ("connection-proxy-header", Supported),
    ("cors-allow-credentials", Supported),
    ("cors-allow-headers", Supported),
    ("cors-allow-methods", Supported),
    ("cors-allow-origin", Supported),
    ("cors-expose-headers", Supported),
    ("cors-max-age", Supported),
    ("custom-headers", Supported),
    ("custom-http-errors", Supported),
    ("default-backend", Supported),
    ("denylist-source-range", Supported),
    ("disable-proxy-intercept-errors", NotSupported),
    ("enable-access-log", Supported),
    ("enable-cors", Supported),
    ("enable-global-auth", Supported),
    ("enable-modsecurity", NotSupported),
    ("enable-opentelemetry", NotSupported),
    ("enable-owasp-core-rules", NotSupported),
    ("enable-rewrite-log", NotSupported),
    ("fastcgi-index", NotSupported),
    ("fastcgi-params-configmap", NotSupported),
    ("force-ssl-redirect", Supported),
    ("from-to-www-redirect", Supported),
    ("limit-allowlist", Supported),
    ("limit-burst-multiplier", Supported),
    ("limit-connections", Supported),
    ("limit-rate", NotSupported),
    ("limit-rate-after", NotSupported),
    ("limit-rpm", Supported),
    ("limit-rps", Supported),
    ("limit-whitelist", Supported),
    ("load-balance", Supported),
    ("mirror-host", NotSupported),
    ("mirror-request-body", NotSupported),
    ("mirror-target", NotSupported),
    ("modsecurity-snippet", Refused),
    ("modsecurity-transaction-id", NotSupported),
    ("opentelemetry-operation-name", NotSupported),
    ("opentelemetry-trust-incoming-span", NotSupported),
    ("permanent-redirect", Supported),
    ("permanent-redirect-code", Supported),
    ("preserve-trailing-slash", Supported),
    ("proxy-body-size", Supported),
    ("proxy-buffer-size", NoEffect),
    ("proxy-buffering", NoEffect),
    ("proxy-buffers-number", NoEffect),
    ("proxy-busy-buffers-size", NoEffect),
    ("proxy-connect-timeout", Supported),
    ("proxy-cookie-domain", Supported),
    ("proxy-cookie-path", Supported),
    ("proxy-http-version", Supported),
    ("proxy-max-temp-file-size", NoEffect),
    ("proxy-next-upstream", Supported),
    ("proxy-next-upstream-timeout", Supported),
    ("proxy-next-upstream-tries", Supported),
    ("proxy-read-timeout", Supported),
    ("proxy-redirect-from", Supported),
    ("proxy-redirect-to", Supported),
    ("proxy-request-buffering", NoEffect),
    ("proxy-send-timeout", Supported),
    ("proxy-ssl-ciphers", Supported),
    ("proxy-ssl-name", Supported),
    ("proxy-ssl-protocols", Supported),
    ("proxy-ssl-secret", Supported),
    ("proxy-ssl-server-name", Supported),
    ("proxy-ssl-verify", Supported),
    ("proxy-ssl-verify-depth", Supported),
    ("relative-redirects", NotSupported),
    ("rewrite-target", Supported),
    ("satisfy", Supported),
    ("server-alias", Supported),
    ("server-snippet", Refused),
    ("service-upstream", Supported),
    ("session-cookie-change-on-failure", Supported),
    ("session-cookie-conditional-samesite-none", Supported),
    ("session-cookie-domain", Supported),
    ("session-cookie-expires", Supported),
    ("session-cookie-hash", NoEffect),
    ("session-cookie-max-age", Supported),
    ("session-cookie-name", Supported),
    ("session-cookie-path", Supported),
    ("session-cookie-samesite", Supported),
    ("session-cookie-secure", Supported),
    ("ssl-ciphers", Supported),
    ("ssl-passthrough", Supported),
    ("ssl-prefer-server-ciphers", Supported),
    ("ssl-redirect", Supported),
    ("stream-snippet", Refused),
    ("temporal-redirect", Supported),
    ("temporal-redirect-code", Supported),
    ("upstream-hash-by", Supported),
    ("upstream-hash-by-subset", Supported),
    ("upstream-hash-by-subset-size", Supported),
    ("upstream-vhost", Supported),
    ("use-port-in-redirects", NotSupported),
    ("use-regex", Supported),
    ("whitelist-source-range", Supported),
    ("x-forwarded-prefix", Supported),
];

/// What Remora does with annotation `name` (without prefix); `None` for a name ingress-nginx does
/// not read either.
pub fn annotation_support(name: &str) -> Option<Support> {
    ANNOTATIONS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| ANNOTATIONS[i].1)
}

/// [`ANNOTATIONS`] as Markdown: one line per kind of support, the names in order (README's
/// table of every ingress-nginx annotation, and `remora migrate-check --list`).
pub fn annotation_table() -> String {
    let mut out = String::new();
    for support in [Supported, NoEffect, Refused, NotSupported] {
        let names: Vec<String> = ANNOTATIONS
            .iter()
            .filter(|(_, s)| *s == support)
            .map(|(n, _)| format!("`{n}`"))
            .collect();
        out.push_str(&format!(
            "- {} ({}): {}\n",
            support.describe(),
            names.len(),
            names.join(", ")
        ));
    }
    out
}

/// What one annotation or key of one object will do on Remora.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Supported,
    NoEffect,
    /// Requests are refused (503, or 403) rather than served without the control it asks for.
    FailsClosed(String),
    /// Read, with a warning (an invalid value, a part Remora does differently, a refused
    /// snippet).
    Warned(String),
    /// Ignored.
    NotSupported,
    /// Not an annotation ingress-nginx reads (a typo?): ignored by both.
    Unknown,
}

impl Verdict {
    /// Would the object behave differently on Remora (or need a look)?
    pub fn differs(&self) -> bool {
        !matches!(
            self,
            Verdict::Supported | Verdict::NoEffect | Verdict::Unknown
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Supported => f.write_str("supported"),
            Verdict::NoEffect => f.write_str("accepted with no effect"),
            Verdict::FailsClosed(why) => write!(f, "fails closed: {why}"),
            Verdict::Warned(why) => write!(f, "warning: {why}"),
            Verdict::NotSupported => f.write_str("not supported: ignored"),
            Verdict::Unknown => f.write_str("unknown to ingress-nginx too: ignored"),
        }
    }
}

/// One object's annotations (or keys), each with its verdict, in name order.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    pub object: ObjectRef,
    pub entries: Vec<(String, Verdict)>,
}

/// The report of [`check`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Each Ingress with annotations, then the ConfigMap, if any.
    pub objects: Vec<ObjectReport>,
}

impl Report {
    /// How many entries would behave differently.
    pub fn differences(&self) -> usize {
        self.entries().filter(|(_, v)| v.differs()).count()
    }

    pub fn entries(&self) -> impl Iterator<Item = &(String, Verdict)> {
        self.objects.iter().flat_map(|o| &o.entries)
    }
}

/// Judge every annotation of every Ingress `options` serves, and every key of the ConfigMap
/// `options.configmap` names, by translating them.
pub fn check(objects: &Objects, options: &Options) -> Report {
    let translation = crate::translate(objects, options);
    let diags = &translation.diagnostics;
    let mut report = Report::default();
    for object in &translation.served {
        let Some(ingress) = objects
            .ingresses
            .iter()
            .find(|i| i.metadata.namespace() == object.namespace && i.metadata.name == object.name)
        else {
            continue;
        };
        let entries: Vec<(String, Verdict)> = ingress
            .metadata
            .annotations
            .keys()
            .filter_map(|full| {
                let name = full.strip_prefix(PREFIX);
                let ours = full.starts_with(REMORA_PREFIX);
                if name.is_none() && !ours {
                    return None;
                }
                let verdict = warned(diags, object, full).unwrap_or_else(|| match name {
                    Some(name) => match annotation_support(name) {
                        Some(Supported) => Verdict::Supported,
                        Some(NoEffect) => Verdict::NoEffect,
                        Some(NotSupported | Refused) => Verdict::NotSupported,
                        None if name.ends_with("-snippet") => Verdict::NotSupported,
                        None => Verdict::Unknown,
                    },
                    // Remora's own annotations: read unless warned about.
                    None => Verdict::Supported,
                });
                Some((full.clone(), verdict))
            })
            .collect();
        if !entries.is_empty() {
            report.objects.push(ObjectReport {
                object: object.clone(),
                entries,
            });
        }
    }
    if let Some((namespace, name)) = &options.configmap {
        let object = ObjectRef::new("ConfigMap", namespace, name);
        let found = objects
            .config_maps
            .iter()
            .find(|c| c.metadata.namespace() == namespace && c.metadata.name == *name);
        if let Some(config_map) = found {
            let entries = config_map
                .data
                .keys()
                .map(|key| {
                    let verdict =
                        warned(diags, &object, key).unwrap_or(match configmap::key_support(key) {
                            Supported => Verdict::Supported,
                            NoEffect => Verdict::NoEffect,
                            NotSupported | Refused => Verdict::NotSupported,
                        });
                    (key.clone(), verdict)
                })
                .collect();
            report.objects.push(ObjectReport { object, entries });
        }
    }
    report
}

/// The warnings translation gave about `key` of `object`, as one verdict.
fn warned(diags: &[Diagnostic], object: &ObjectRef, key: &str) -> Option<Verdict> {
    let messages: Vec<&str> = diags
        .iter()
        .filter(|d| {
            d.severity == Severity::Warning
                && d.object == *object
                && d.annotation.as_deref() == Some(key)
        })
        .map(|d| d.message.as_str())
        .collect();
    if messages.is_empty() {
        return None;
    }
    let text = messages.join("; ");
    Some(
        if messages
            .iter()
            .any(|m| m.contains(FAILS_CLOSED) || m.contains(GLOBAL_FAILS_CLOSED))
        {
            Verdict::FailsClosed(text)
        } else {
            Verdict::Warned(text)
        },
    )
}

/// The words every warning of an annotation that makes an Ingress refuse requests (rather than
/// serve them without the control it asks for) says, so the report can tell those apart.
pub(crate) const FAILS_CLOSED: &str = "every request of this Ingress";

/// The same for the ConfigMap's `global-auth-*` keys.
pub(crate) const GLOBAL_FAILS_CLOSED: &str =
    "every request of every Ingress without enable-global-auth: \"false\"";

#[cfg(test)]
mod tests;
