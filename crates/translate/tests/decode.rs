//! `Objects::add_document`: what it takes, what it skips, and how it explains what it refuses.

// Test code: failing loudly is the point (the workspace denies these lints for library code).
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use remora_translate::objects::DecodeError;
use remora_translate::Objects;
use serde_json::{json, Value};

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML parses")
}

fn add(doc: Value) -> (Objects, Result<usize, DecodeError>) {
    let mut objects = Objects::default();
    let result = objects.add_document(doc);
    (objects, result)
}

fn decode_error(doc: Value) -> DecodeError {
    match add(doc).1 {
        Ok(n) => panic!("expected a decode error, got Ok({n})"),
        Err(e) => e,
    }
}

#[test]
fn empty_document_adds_nothing() {
    let (objects, result) = add(Value::Null);
    assert_eq!(result, Ok(0));
    assert!(objects.ingresses.is_empty() && objects.services.is_empty());
}

#[test]
fn missing_kind_is_an_error_on_field_kind() {
    let e = decode_error(yaml(
        "apiVersion: v1\nmetadata:\n  name: web\nspec:\n  ports: [{port: 80}]\n",
    ));
    assert_eq!(e.object, "document");
    assert_eq!(e.field.as_deref(), Some("kind"));
    assert!(e.reason.contains("kind"), "{e}");
    assert_eq!(
        e.to_string(),
        "document, field kind: missing: every manifest needs apiVersion and kind"
    );
}

#[test]
fn kind_that_is_not_a_string_is_reported_like_a_missing_one() {
    let e = decode_error(json!({"apiVersion": "v1", "kind": 7}));
    assert_eq!(e.field.as_deref(), Some("kind"));
}

#[test]
fn a_document_that_is_not_a_mapping_is_an_error() {
    let e = decode_error(json!("just a string"));
    assert_eq!(e.field.as_deref(), Some("kind"));
    let e = decode_error(json!([{"kind": "Service"}]));
    assert_eq!(e.field.as_deref(), Some("kind"));
}

#[test]
fn wrong_field_type_names_the_object_and_the_field_path() {
    let e = decode_error(yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules: "host: example.com"
"#,
    ));
    assert_eq!(e.object, "Ingress web");
    assert_eq!(e.field.as_deref(), Some("spec.rules"));
    assert!(e.reason.contains("invalid type"), "{e}");
    assert!(
        e.to_string()
            .starts_with("Ingress web, field spec.rules: invalid type"),
        "{e}"
    );
}

#[test]
fn wrong_field_type_deep_inside_lists_gives_indexed_path() {
    let e = decode_error(yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
    - host: a.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port:
                  number: eighty
"#,
    ));
    assert_eq!(e.object, "Ingress web");
    assert_eq!(
        e.field.as_deref(),
        Some("spec.rules[0].http.paths[0].backend.service.port.number")
    );
}

#[test]
fn wrong_metadata_name_type_falls_back_to_the_kind() {
    let e = decode_error(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": 42},
    }));
    assert_eq!(e.object, "Service");
    assert_eq!(e.field.as_deref(), Some("metadata.name"));
}

#[test]
fn wrong_annotation_value_type_names_the_annotation() {
    // A classic: an unquoted boolean or number as an annotation value.
    let e = decode_error(yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    nginx.ingress.kubernetes.io/session-cookie-max-age: 172800
spec: {}
"#,
    ));
    assert_eq!(e.object, "Ingress web");
    let field = e.field.as_deref().unwrap_or_default();
    assert!(
        field.starts_with("metadata.annotations")
            && field.contains("nginx.ingress.kubernetes.io/session-cookie-max-age"),
        "{e}"
    );
}

#[test]
fn list_items_are_added_and_counted() {
    let (objects, result) = add(yaml(
        r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      ports: [{port: 80}]
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {a: b}
  - apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web}
    spec: {}
"#,
    ));
    assert_eq!(result, Ok(3));
    assert_eq!(objects.services.len(), 1);
    assert_eq!(objects.config_maps.len(), 1);
    assert_eq!(
        objects.config_maps[0].data.get("a").map(String::as_str),
        Some("b")
    );
    assert_eq!(objects.ingresses.len(), 1);
}

#[test]
fn list_item_error_names_the_item_and_the_list() {
    let e = decode_error(yaml(
        r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Service
    metadata: {name: web}
  - apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: web}
    spec:
      rules: 3
"#,
    ));
    assert_eq!(e.object, "Ingress web (item 1 of List)");
    assert_eq!(e.field.as_deref(), Some("spec.rules"));
    assert!(
        e.to_string()
            .starts_with("Ingress web (item 1 of List), field spec.rules: "),
        "{e}"
    );
}

#[test]
fn list_item_without_kind_is_named_by_index() {
    let e = decode_error(json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"apiVersion": "v1", "metadata": {"name": "x"}}],
    }));
    assert_eq!(e.object, "document (item 0 of List)");
    assert_eq!(e.field.as_deref(), Some("kind"));
}

#[test]
fn list_whose_items_are_not_a_list_is_an_error_on_items() {
    let e = decode_error(json!({"apiVersion": "v1", "kind": "List", "items": {"kind": "Service"}}));
    assert_eq!(e.object, "List");
    assert_eq!(e.field.as_deref(), Some("items"));
    let (_, result) = add(json!({"apiVersion": "v1", "kind": "List", "items": null}));
    assert_eq!(result, Ok(0));
}

#[test]
fn unused_kinds_and_unknown_groups_are_skipped_quietly() {
    for doc in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "c"}}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny"}}),
        json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}}),
        // An Ingress of a group that never had Ingresses is not ours either.
        json!({"apiVersion": "traefik.io/v1alpha1", "kind": "Ingress", "metadata": {"name": "x"}}),
    ] {
        let (objects, result) = add(doc.clone());
        assert_eq!(result, Ok(0), "{doc}");
        assert!(objects.ingresses.is_empty(), "{doc}");
    }
}

#[test]
fn gateway_api_kinds_are_taken_in_every_version_users_meet() {
    let route = |api: &str| {
        json!({"apiVersion": api, "kind": "HTTPRoute", "metadata": {"name": "r"},
               "spec": {"rules": [
                   {"sessionPersistence": {"sessionName": "a", "cookieConfig": {"lifetimeType": "Permanent"}}},
                   {},
                   {"sessionPersistence": {"type": "Header", "header": {"name": "X-S"}}}]}})
    };
    for doc in [
        route("gateway.networking.k8s.io/v1"),
        route("gateway.networking.k8s.io/v1beta1"),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass", "metadata": {"name": "c"}, "spec": {"controllerName": "x"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "g"},
               "spec": {"gatewayClassName": "c", "listeners": [{"name": "h", "protocol": "HTTP", "port": 80}]}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant", "metadata": {"name": "g"},
               "spec": {"from": [], "to": []}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"a": "b"}}}),
    ] {
        let (objects, result) = add(doc.clone());
        assert_eq!(result, Ok(1), "{doc}");
        if let Some(r) = objects.http_routes.first() {
            // Both shapes of sessionPersistence are kept, per rule.
            assert_eq!(r.sessions.len(), 3);
            assert_eq!(
                r.sessions[0]
                    .as_ref()
                    .and_then(|s| s.session_name.as_deref()),
                Some("a")
            );
            assert!(r.sessions[1].is_none());
            let header = r.sessions[2].as_ref().and_then(|s| s.header.as_ref());
            assert_eq!(header.and_then(|h| h.name.as_deref()), Some("X-S"));
        }
    }
}

#[test]
fn a_gateway_api_object_with_a_bad_field_is_an_error_naming_it() {
    let (_, result) = add(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r"}, "spec": {"rules": [{"matches": [{"method": "FETCH"}]}]}}),
    );
    let e = result.expect_err("an unknown method is refused");
    assert_eq!(e.object, "HTTPRoute r");
    assert_eq!(e.field.as_deref(), Some("spec.rules[0].matches[0].method"));
    let (_, result) = add(
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r"}, "spec": {"rules": [{"sessionPersistence": {"absoluteTimeout": 5}}]}}),
    );
    let e = result.expect_err("a number where a duration string goes is refused");
    assert_eq!(e.field.as_deref(), Some("spec.rules[0].sessionPersistence"));
}

#[test]
fn every_ingress_api_version_is_taken() {
    for api in [
        "networking.k8s.io/v1",
        "networking.k8s.io/v1beta1",
        "extensions/v1beta1",
    ] {
        let (objects, result) = add(json!({
            "apiVersion": api,
            "kind": "Ingress",
            "metadata": {"name": "web"},
        }));
        assert_eq!(result, Ok(1), "{api}");
        assert_eq!(objects.ingresses.len(), 1, "{api}");
    }
}

#[test]
fn legacy_service_port_takes_a_number_or_a_name() {
    let (objects, result) = add(yaml(
        r#"
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: web}
spec:
  backend: {serviceName: web, servicePort: 80}
  rules:
    - http:
        paths:
          - path: /
            backend: {serviceName: web, servicePort: http}
"#,
    ));
    assert_eq!(result, Ok(1));
    let spec = &objects.ingresses[0].spec;
    assert!(spec.backend.is_some());
    assert_eq!(spec.rules.len(), 1);
}

#[test]
fn fields_kubectl_prints_as_null_are_accepted() {
    // `kubectl create ... --dry-run=client -o yaml` prints `creationTimestamp: null`.
    let (objects, result) = add(yaml(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  creationTimestamp: null
spec:
  ports: [{port: 80, targetPort: 8080}]
status:
  loadBalancer: {}
"#,
    ));
    assert_eq!(result, Ok(1));
    assert_eq!(objects.services[0].metadata.creation_timestamp, None);
}

/// `kubectl get endpointslice -o yaml` prints `endpoints: null` for a Service that selects no pod
/// (a Deployment scaled to zero): the Go field has no `omitempty`. The module promises that what the
/// API serves deserialises, so this must be taken as an empty slice.
#[test]
fn endpointslice_with_null_endpoints_is_an_empty_slice() {
    let (objects, result) = add(yaml(
        r#"
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints: null
kind: EndpointSlice
metadata:
  labels:
    kubernetes.io/service-name: web
  name: web-t786l
  namespace: default
ports:
  - name: http
    port: 8080
    protocol: TCP
"#,
    ));
    assert_eq!(result, Ok(1), "endpoints: null must be accepted");
    assert!(objects.endpoint_slices[0].endpoints.is_empty());
}

/// Same for `ports: null`, which the API serves for a slice of a Service without ports.
#[test]
fn endpointslice_with_null_ports_is_accepted() {
    let (_, result) = add(yaml(
        r#"
addressType: IPv4
apiVersion: discovery.k8s.io/v1
endpoints:
  - addresses: [127.0.0.11]
kind: EndpointSlice
metadata:
  labels:
    kubernetes.io/service-name: headless
  name: headless-x2k9d
ports: null
"#,
    ));
    assert_eq!(result, Ok(1), "ports: null must be accepted");
}
