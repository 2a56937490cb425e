//! The annotation parsers (`crates/translate/src/annotations/`, and the ConfigMap keys that reuse
//! them, `configmap.rs`): two Ingresses on one host and path (the second may be a canary), each
//! with fuzzed `nginx.ingress.kubernetes.io/*` and `remora.dev/*` annotations, and the global
//! ConfigMap with fuzzed keys, translated with a Service, its endpoints and a basic-auth Secret,
//! then built into the proxy's routing `Table`.
//!
//! Names come mostly from the list the parsers read, values from what they expect or anything.
//! Checks: no panic; every annotation problem is a diagnostic, never a missing snapshot.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use translate::Objects;

/// The short names the annotation families read (`r.get("...")`, `r.bool("...")`...).
#[rustfmt::skip]
const NAMES: &[&str] = &[
    "affinity", "affinity-canary-behavior", "affinity-mode", "allow-backend-server-header",
    "allowlist-source-range", "app-root", "auth-always-set-cookie", "auth-cache-duration",
    "auth-cache-key", "auth-keepalive", "auth-method", "auth-proxy-set-headers", "auth-realm",
    "auth-request-redirect", "auth-response-headers", "auth-secret", "auth-secret-type",
    "auth-signin", "auth-signin-redirect-param", "auth-snippet", "auth-tls-secret",
    "auth-tls-verify-client", "auth-type", "auth-url", "backend-protocol", "canary",
    "canary-by-cookie", "canary-by-header", "canary-by-header-pattern", "canary-by-header-value",
    "canary-weight", "canary-weight-total", "client-body-buffer-size", "configuration-snippet",
    "connection-proxy-header", "cors-allow-credentials", "cors-allow-headers",
    "cors-allow-methods", "cors-allow-origin",
    "cors-expose-headers", "cors-max-age", "denylist-source-range", "enable-access-log",
    "enable-cors", "enable-global-auth", "enable-underscores-in-headers", "force-ssl-redirect",
    "from-to-www-redirect", "hsts", "hsts-include-subdomains", "hsts-max-age", "hsts-preload",
    "limit-allowlist", "limit-burst-multiplier", "limit-req-status-code", "limit-rpm",
    "limit-rps", "limit-whitelist", "load-balance", "permanent-redirect",
    "permanent-redirect-code", "preserve-trailing-slash", "proxy-body-size",
    "proxy-buffer-size", "proxy-buffering", "proxy-connect-timeout", "proxy-cookie-domain",
    "proxy-cookie-path", "proxy-http-version", "proxy-redirect-from", "proxy-redirect-to",
    "proxy-next-upstream", "proxy-next-upstream-timeout", "proxy-next-upstream-tries",
    "proxy-read-timeout", "proxy-request-buffering", "proxy-send-timeout", "rewrite-target",
    "satisfy", "server-alias", "server-snippet", "server-tokens", "service-upstream",
    "session-balance-factor", "session-cookie-change-on-failure",
    "session-cookie-conditional-samesite-none", "session-cookie-domain",
    "session-cookie-expires", "session-cookie-hash", "session-cookie-max-age",
    "session-cookie-name", "session-cookie-path", "session-cookie-samesite",
    "session-cookie-secure", "session-cookie-sliding", "ssl-ciphers", "ssl-passthrough",
    "ssl-prefer-server-ciphers", "ssl-redirect",
    "temporal-redirect", "temporal-redirect-code", "upstream-hash-by", "upstream-hash-by-subset",
    "upstream-hash-by-subset-size", "upstream-vhost", "use-regex", "whitelist-source-range",
    "x-forwarded-prefix",
];

/// Values of the kinds the parsers expect.
#[rustfmt::skip]
const VALUES: &[&str] = &[
    "", "true", "false", "True", "1", "0", "-1", "10", "100", "101", "65536", "3600",
    "99999999999999999999", "1.5", "5m", "1g", "8k", "0m", "10s", "cookie", "balanced",
    "persistent", "sticky", "legacy", "ewma", "round_robin", "Lax", "None", "Strict", "GRPC",
    "HTTPS", "HTTP", "grpcs", "1.0", "1.1", "basic", "digest", "auth-file", "auth-map",
    "default/basic-auth", "basic-auth", "other/basic-auth", "10.0.0.0/8", "192.168.1.7",
    "::1/128", "10.0.0.0/33", "10.0.0.0/8, 2001:db8::/32", "/", "/app", "/$1", "/$2$3",
    "/api(/|$)(.*)", "(", "https://example.com", "http://auth.example.com/verify?u=$request_uri",
    "https://$host/signin?rd=$escaped_request_uri", "$request_uri", "$remote_addr",
    "$http_x_user", "$cookie_session$arg_id", "$unknown", "$", "https://*.example.com",
    "https://a.example.com, https://*.b.example.com", "*", "GET, POST", "X-Custom, Authorization",
    "error timeout http_502", "off", "non_idempotent", "all", "any", "www.example.com",
    "a.example.com,*.example.com", "example.com:80", "X-Canary", "always", "never", "^v[0-9]+$",
    "default", "close", "keep-alive", "localhost example.org", "/one/ /", ".a.example.com b.org",
    "http://pod/ /", "HIGH:!aNULL", "ECDHE-RSA-AES128-GCM-SHA256:RC4-MD5", "RC4-MD5",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Nginx(u8),
    Remora(u8),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Value<'a> {
    Known(u8),
    Joined(u8, u8),
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    primary: Vec<(Name<'a>, Value<'a>)>,
    second: Vec<(Name<'a>, Value<'a>)>,
    configmap: Vec<(Name<'a>, Value<'a>)>,
    host: Value<'a>,
    path: Value<'a>,
    path_type: u8,
    tls: bool,
}

fn name(n: &Name<'_>, prefix: &str) -> String {
    let pick = |i: &u8| NAMES[usize::from(*i) % NAMES.len()];
    match n {
        Name::Nginx(i) => format!("{prefix}{}", pick(i)),
        Name::Remora(i) => format!("remora.dev/{}", pick(i)),
        Name::Raw(s) => (*s).to_owned(),
    }
}

fn value(v: &Value<'_>) -> String {
    let pick = |i: &u8| VALUES[usize::from(*i) % VALUES.len()];
    match v {
        Value::Known(i) => pick(i).to_owned(),
        Value::Joined(a, b) => format!("{}{}", pick(a), pick(b)),
        Value::Raw(s) => (*s).to_owned(),
    }
}

fn map(pairs: &[(Name<'_>, Value<'_>)], prefix: &str) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| (name(n, prefix), value(v)))
        .collect()
}

/// The objects every input starts from.
fn base() -> &'static Objects {
    static BASE: OnceLock<Objects> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut objects = Objects::default();
        let ingress = |name: &str| {
            json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"rules": [{"host": "example.com", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "web", "port": {"number": 80}}}
                }]}}]}
            })
        };
        for doc in [
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                    "clusterIP": "10.96.0.10"}}),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "web-1", "namespace": "default",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "ports": [{"name": "http", "port": 8080}],
                "endpoints": [
                    {"addresses": ["10.0.0.1"], "targetRef": {"kind": "Pod", "name": "web-a"}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": true}}
                ]}),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "basic-auth", "namespace": "default"},
                "stringData": {"auth": "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\nbob:$apr1$x$y\n"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
                "data": {}}),
            ingress("primary"),
            ingress("second"),
        ] {
            objects.add_document(doc).expect("base objects decode");
        }
        objects.sort();
        objects
    })
}

fuzz_target!(|input: Input<'_>| {
    let mut objects = base().clone();
    let host = value(&input.host);
    let path = value(&input.path);
    let path_type = ["Prefix", "Exact", "ImplementationSpecific"][usize::from(input.path_type) % 3];
    for (ingress, pairs) in objects
        .ingresses
        .iter_mut()
        .zip([&input.primary, &input.second])
    {
        // Each object is shared with `base()`'s: this input's copy.
        let ingress = std::sync::Arc::make_mut(ingress);
        ingress.metadata.annotations = map(pairs, "nginx.ingress.kubernetes.io/");
        let rule = &mut ingress.spec.rules[0];
        rule.host = Some(host.clone());
        if let Some(http) = rule.http.as_mut() {
            http.paths[0].path = Some(path.clone());
            http.paths[0].path_type = Some(path_type.to_owned());
        }
        if input.tls {
            ingress.spec.tls = vec![translate::objects::IngressTls {
                hosts: vec![host.clone()],
                secret_name: Some("missing-tls".into()),
            }];
        }
    }
    std::sync::Arc::make_mut(&mut objects.config_maps[0]).data = map(&input.configmap, "");
    let options = translate::Options {
        configmap: Some(("ingress-nginx".into(), "ingress-nginx-controller".into())),
        // `ssl-passthrough` read to the end (its hosts' backends chosen).
        enable_ssl_passthrough: true,
        ..translate::Options::default()
    };
    let translation = translate::translate(&objects, &options);
    let table = proxy::Table::new(translation.snapshot, translation.diagnostics, 1, None, None);
    for host in [host.as_str(), "example.com", "www.example.com"] {
        // As a ClientHello's server name: the passthrough host, if any.
        let _ = table.passthrough(host);
        let host = model::host_name(host);
        for path in [path.as_str(), "/", "/app/x"] {
            if let Ok(req) = http::Request::get(path).body(()) {
                let _ = table.route(proxy::ListenerId::Ingress, &host, &req);
            }
        }
    }
});
