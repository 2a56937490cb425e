//! `convert`: Ingresses into Gateway API objects that Remora then serves the same way: the
//! converted documents, read back as manifests, translate to routes with the same backends and
//! the same sessions.

// Test code: failing loudly is the point.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use remora_translate::convert::to_gateway_api;
use remora_translate::model::{PathType, Route};
use remora_translate::{translate, Objects, Options};
use serde::Deserialize;

fn docs(yaml: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde_json::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects of `yaml`, and the same with its Ingresses replaced by their conversion.
fn converted(yaml: &str) -> (Objects, Vec<remora_translate::convert::Document>) {
    let mut objects = Objects::default();
    for d in docs(yaml) {
        objects.add_document(d).unwrap();
    }
    let out = to_gateway_api(
        &objects,
        &Options::default(),
        "remora",
        "remora",
        "remora.dev/gateway-controller",
    );
    let mut gw = Objects::default();
    for d in docs(yaml) {
        if d["kind"] != "Ingress" {
            gw.add_document(d).unwrap();
        }
    }
    for d in &out {
        // Through YAML, as a user would apply it.
        let text = serde_yaml::to_string(&d.object).unwrap();
        gw.add_document(docs(&text).remove(0)).unwrap();
    }
    (gw, out)
}

fn routes(objects: &Objects, port: u16) -> Vec<(String, Route)> {
    let t = translate(objects, &Options::default());
    let bad: Vec<_> = t
        .diagnostics
        .iter()
        .filter(|d| d.object.kind != "Ingress")
        .collect();
    assert!(
        bad.iter()
            .all(|d| !d.message.contains("not attached") && !d.message.contains("not served")),
        "{bad:#?}"
    );
    t.snapshot
        .listeners
        .iter()
        .filter(|l| l.port == port)
        .flat_map(|l| &l.hosts)
        .flat_map(|h| {
            h.routes
                .iter()
                .map(move |r| (h.host.to_string(), r.clone()))
        })
        .collect()
}

#[test]
fn the_guides_sticky_ingress_becomes_an_httproute_with_the_same_session_cookie() {
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/seed-002-what-is-my-pod.yaml"
    ))
    .unwrap();
    let (objects, _) = converted(&seed);
    let routes = routes(&objects, 80);
    assert_eq!(routes.len(), 1, "{routes:#?}");
    let (host, r) = &routes[0];
    assert_eq!(host, "*");
    assert_eq!((r.path.as_str(), r.path_type), ("/", PathType::Prefix));
    let a = r.target.affinity.as_deref().expect("sessions persist");
    assert_eq!(a.cookie_name, "stickounet");
    // session-cookie-max-age 172800: a Permanent cookie of 48 h.
    assert_eq!(
        (a.max_age, a.expires, a.absolute_timeout),
        (Some(172_800), Some(172_800), Some(172_800))
    );
    assert_eq!(r.backends.len(), 1);
    assert!(r.backends[0].backend.is_some(), "the Service resolves");
}

/// The TLS Secret of the `tls` fixture (shop.example.com), in namespace `web`.
fn shop_tls() -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tls.yaml"
    ))
    .unwrap();
    let secret = text
        .split("\n---\n")
        .find(|d| d.contains("name: shop-tls\n"))
        .unwrap();
    secret.replace("name: shop-tls\n", "name: shop-tls\n  namespace: web\n")
}

#[test]
fn tls_redirects_canaries_and_leftover_annotations() {
    let (objects, out) = converted(
        &(shop_tls()
            + "\n---\n"
            + r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/proxy-body-size: 8m
spec:
  tls: [{hosts: [shop.example.com], secretName: shop-tls}]
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {name: http}}}}
      - {path: /health, pathType: Exact, backend: {service: {name: shop, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop-canary
  namespace: web
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: "20"
spec:
  rules:
  - host: shop.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop-next, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: web}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: shop-next, namespace: web}
spec: {ports: [{port: 80}]}
"#),
    );
    // The leftover annotation is named for the reader.
    assert!(out
        .iter()
        .flat_map(|d| &d.notes)
        .any(|n| n.contains("proxy-body-size")));
    // Plain HTTP: only the 308 to HTTPS.
    let http = routes(&objects, 80);
    assert_eq!(http.len(), 1, "{http:#?}");
    let redirect = http[0]
        .1
        .target
        .location
        .filters
        .as_ref()
        .and_then(|f| f.redirect.clone());
    assert_eq!(
        redirect.map(|r| (r.scheme, r.status)),
        Some((Some("https".to_owned()), 308))
    );
    // HTTPS: the paths, the canary's weight beside the primary's, the session cookie.
    let https = routes(&objects, 443);
    assert_eq!(https.len(), 2, "{https:#?}");
    let root = https
        .iter()
        .find(|(_, r)| r.path == "/")
        .map(|(_, r)| r)
        .unwrap();
    let weights: Vec<u32> = root.backends.iter().map(|b| b.weight).collect();
    assert_eq!(weights, vec![80, 20]);
    assert!(root.backends.iter().all(|b| b.backend.is_some()));
    assert_eq!(
        root.target
            .affinity
            .as_deref()
            .map(|a| a.cookie_name.as_str()),
        Some("INGRESSCOOKIE")
    );
    let health = https
        .iter()
        .find(|(_, r)| r.path == "/health")
        .map(|(_, r)| r)
        .unwrap();
    assert_eq!(health.path_type, PathType::Exact);
}
