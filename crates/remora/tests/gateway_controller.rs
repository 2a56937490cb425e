//! `remora controller` and the Gateway API, against the API server on loopback
//! (tests/common/apiserver.rs): the kinds are watched when their CRDs are installed, not
//! otherwise, and from when they are installed; the leader (only) writes the status of
//! GatewayClasses, Gateways, HTTPRoutes and GRPCRoutes as the Gateway API says (conditions and
//! reasons, listeners, attached routes, addresses, observedGeneration), keeping other
//! controllers' entries of a route's status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::apiserver::FakeApi;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const GROUP: &str = "gateway.networking.k8s.io";

/// A port nothing listens on now: the Gateway's listeners' (another test process may serve its
/// own Gateway's at the same time).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Remora's GatewayClass, another controller's, and Remora's Gateway `web` with three
/// listeners: `http` (routes of its own namespace), `team-a` (routes of namespaces labelled
/// `team: a`) and `udp` (a protocol Remora does not serve).
fn gateway_yaml(http: u16, team_a: u16) -> String {
    format!(
        "apiVersion: {GROUP}/v1
kind: GatewayClass
metadata: {{name: remora}}
spec: {{controllerName: remora.dev/gateway-controller}}
---
apiVersion: {GROUP}/v1
kind: GatewayClass
metadata: {{name: other}}
spec: {{controllerName: example.com/other}}
---
apiVersion: {GROUP}/v1
kind: Gateway
metadata: {{name: not-ours, namespace: default}}
spec:
  gatewayClassName: other
  listeners:
  - {{name: http, protocol: HTTP, port: 80}}
---
apiVersion: {GROUP}/v1
kind: Gateway
metadata: {{name: web, namespace: default}}
spec:
  gatewayClassName: remora
  listeners:
  - {{name: http, protocol: HTTP, port: {http}}}
  - name: team-a
    protocol: HTTP
    port: {team_a}
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {{matchLabels: {{team: a}}}}
  - {{name: udp, protocol: UDP, port: {team_a}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: other, labels: {{team: b}}}}
"
    )
}

/// An HTTPRoute `name` in `namespace` to the Gateway `default/<gateway>`'s listener `section`,
/// host shop.example.com, path `path` to `service`:80.
fn route_yaml(
    namespace: &str,
    name: &str,
    gateway: &str,
    section: &str,
    path: &str,
    service: &str,
) -> String {
    format!(
        "apiVersion: {GROUP}/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  parentRefs: [{{name: {gateway}, namespace: default, sectionName: {section}}}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: {service}, port: 80}}]
"
    )
}

/// The status entry another controller wrote on route `shop`, which Remora must keep.
const OTHER_ENTRY: &str = "status:
  parents:
  - parentRef: {group: gateway.networking.k8s.io, kind: Gateway, namespace: default, name: not-ours}
    controllerName: example.com/other
    conditions:
    - {type: Accepted, status: 'True', reason: Accepted, message: mine, lastTransitionTime: '2025-01-01T00:00:00Z'}
";

/// The cluster: the Service `web` with `pods`, the Gateway objects, and three routes: `shop`
/// (served, with another controller's status entry), `broken` (its Service does not exist) and
/// `default`-less `other/outsider` (to a listener that does not take its namespace).
fn seed(api: &FakeApi, pods: &[&Pod], http: u16, team_a: u16) {
    api.apply(&service_yaml("web"));
    api.apply(&slice_yaml("web", "default", None, pods));
    api.apply(&gateway_yaml(http, team_a));
    api.apply(&format!(
        "{}{OTHER_ENTRY}",
        route_yaml("default", "shop", "web", "http", "/", "web")
    ));
    api.apply(&route_yaml(
        "default", "broken", "web", "http", "/broken", "missing",
    ));
    api.apply(&route_yaml(
        "other", "outsider", "web", "team-a", "/", "web",
    ));
}

fn controller(api: &FakeApi, dir: &Dir, user: &str, extra: &[&str]) -> Remora {
    let kubeconfig = api.kubeconfig_as(dir, user).display().to_string();
    let mut args: Vec<String> = [
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--workers",
        "2",
        "--election-identity",
        user,
        "--election-retry-ms",
        "100",
    ]
    .map(String::from)
    .to_vec();
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    Remora::start(&args)
}

fn status(api: &FakeApi, kind: &str, namespace: &str, name: &str) -> Value {
    api.get(kind, namespace, name)
        .map(|o| o["status"].clone())
        .unwrap_or_default()
}

/// The condition `type_` of a list of conditions.
fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// `(status, reason, observedGeneration)` of a condition.
fn summary(c: &Value) -> (String, String, i64) {
    (
        c["status"].as_str().unwrap_or("").to_owned(),
        c["reason"].as_str().unwrap_or("").to_owned(),
        c["observedGeneration"].as_i64().unwrap_or(-1),
    )
}

fn want(status: &str, reason: &str, generation: i64) -> (String, String, i64) {
    (status.to_owned(), reason.to_owned(), generation)
}

/// Remora's entry in an HTTPRoute's `status.parents`.
fn our_parent(api: &FakeApi, namespace: &str, name: &str) -> Value {
    our_parent_of(api, "HTTPRoute", namespace, name)
}

/// Remora's entry in the `status.parents` of a route of kind `kind`.
fn our_parent_of(api: &FakeApi, kind: &str, namespace: &str, name: &str) -> Value {
    status(api, kind, namespace, name)["parents"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|p| p["controllerName"] == "remora.dev/gateway-controller")
                .cloned()
        })
        .unwrap_or_default()
}

fn listener(api: &FakeApi, name: &str) -> Value {
    status(api, "Gateway", "default", "web")["listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["name"] == name).cloned())
        .unwrap_or_default()
}

/// Requests that write Gateway API objects.
fn gateway_writes(requests: &[String]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| !r.starts_with("GET ") && r.contains(&format!(" /apis/{GROUP}/")))
        .cloned()
        .collect()
}

/// With the CRDs installed: the route is served on its Gateway's listener, and every object's
/// status says what the Gateway API asks, with its reasons; a spec change moves
/// observedGeneration; a route that leaves Remora's Gateways loses Remora's status entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_gateway_api_status() {
    let pods = pods("web-5f6d7c8b9a", 1).await;
    let api = FakeApi::start().await;
    let (http, team_a) = (free_port(), free_port());
    seed(&api, &[&pods[0]], http, team_a);
    // A listener whose port something else holds (the Gateway's generation 2).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    api.apply(&gateway_yaml(http, team_a).replace(
        "  - {name: udp,",
        &format!("  - {{name: taken, protocol: HTTP, port: {taken_port}}}\n  - {{name: udp,"),
    ));
    let dir = Dir::new();
    let remora = controller(
        &api,
        &dir,
        "replica-a",
        &["--publish-status-address", "192.0.2.10,lb.example.com"],
    );
    remora.wait_ready().await;

    // Served: the snapshot has the listener's port, with the route's host.
    let snapshot: Value = serde_json::from_str(
        &get(&format!("http://{}/snapshot", remora.admin), &[])
            .await
            .body,
    )
    .unwrap();
    let listener_of_port = snapshot["listeners"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["port"] == http))
        .cloned()
        .unwrap_or_default();
    assert!(
        listener_of_port.to_string().contains("shop.example.com"),
        "{snapshot}"
    );

    eventually("the GatewayClass is accepted", || {
        summary(condition(
            &status(&api, "GatewayClass", "", "remora")["conditions"],
            "Accepted",
        )) == want("True", "Accepted", 1)
    })
    .await;
    assert!(
        status(&api, "GatewayClass", "", "other").is_null(),
        "another controller's class is left alone"
    );

    eventually("the Gateway's status", || {
        listener(&api, "http")["attachedRoutes"] == 2
    })
    .await;
    let gw = status(&api, "Gateway", "default", "web");
    assert_eq!(
        summary(condition(&gw["conditions"], "Accepted")),
        want("True", "ListenersNotValid", 2),
        "{gw}"
    );
    assert_eq!(
        summary(condition(&gw["conditions"], "Programmed")),
        want("True", "Programmed", 2)
    );
    assert_eq!(
        gw["addresses"],
        json!([{"type": "IPAddress", "value": "192.0.2.10"}, {"type": "Hostname", "value": "lb.example.com"}])
    );
    let l = listener(&api, "http");
    assert_eq!(
        l["supportedKinds"],
        json!([{"group": GROUP, "kind": "HTTPRoute"}, {"group": GROUP, "kind": "GRPCRoute"}])
    );
    for (type_, status, reason) in [
        ("Accepted", "True", "Accepted"),
        ("Programmed", "True", "Programmed"),
        ("ResolvedRefs", "True", "ResolvedRefs"),
        ("Conflicted", "False", "NoConflicts"),
    ] {
        assert_eq!(
            summary(condition(&l["conditions"], type_)),
            want(status, reason, 2),
            "{l}"
        );
    }
    assert_eq!(
        listener(&api, "team-a")["attachedRoutes"],
        0,
        "the outsider is not attached"
    );
    let udp = listener(&api, "udp");
    assert_eq!(
        summary(condition(&udp["conditions"], "Accepted")),
        want("False", "UnsupportedProtocol", 2),
        "{udp}"
    );
    assert_eq!(
        summary(condition(&udp["conditions"], "Programmed")),
        want("False", "Invalid", 2)
    );
    // Its port is in use: not accepted, as the Gateway API says.
    eventually("the taken port's listener is PortUnavailable", || {
        summary(condition(
            &listener(&api, "taken")["conditions"],
            "Accepted",
        )) == want("False", "PortUnavailable", 2)
    })
    .await;
    let l = listener(&api, "taken");
    assert_eq!(
        summary(condition(&l["conditions"], "Programmed")),
        want("False", "Invalid", 2),
        "{l}"
    );
    drop(taken);

    // Routes: one entry of Remora's per parent reference, next to the other controller's.
    eventually("the routes' status", || {
        !our_parent(&api, "other", "outsider").is_null()
            && !our_parent(&api, "default", "broken").is_null()
            && !our_parent(&api, "default", "shop").is_null()
    })
    .await;
    let shop = our_parent(&api, "default", "shop");
    assert_eq!(
        shop["parentRef"],
        json!({"group": GROUP, "kind": "Gateway", "namespace": "default", "name": "web", "sectionName": "http"})
    );
    assert_eq!(
        summary(condition(&shop["conditions"], "Accepted")),
        want("True", "Accepted", 1)
    );
    assert_eq!(
        summary(condition(&shop["conditions"], "ResolvedRefs")),
        want("True", "ResolvedRefs", 1)
    );
    let parents = status(&api, "HTTPRoute", "default", "shop")["parents"].clone();
    assert_eq!(parents.as_array().map(Vec::len), Some(2), "{parents}");
    assert_eq!(
        parents[0]["controllerName"], "example.com/other",
        "the other controller's entry is kept as it was: {parents}"
    );
    assert_eq!(parents[0]["conditions"][0]["message"], "mine");
    let broken = our_parent(&api, "default", "broken");
    assert_eq!(
        summary(condition(&broken["conditions"], "Accepted")),
        want("True", "Accepted", 1)
    );
    assert_eq!(
        summary(condition(&broken["conditions"], "ResolvedRefs")),
        want("False", "BackendNotFound", 1),
        "{broken}"
    );
    let outsider = our_parent(&api, "other", "outsider");
    assert_eq!(
        summary(condition(&outsider["conditions"], "Accepted")),
        want("False", "NotAllowedByListeners", 1),
        "{outsider}"
    );

    // A spec change: generation 2, and the conditions say they saw it. The Accepted condition
    // kept its status, so its transition time stays.
    let accepted_since = condition(&shop["conditions"], "Accepted")["lastTransitionTime"].clone();
    api.apply(&route_yaml(
        "default", "shop", "web", "http", "/shop", "web",
    ));
    assert_eq!(
        api.get("HTTPRoute", "default", "shop").unwrap()["metadata"]["generation"],
        2
    );
    eventually("observedGeneration follows the spec", || {
        condition(
            &our_parent(&api, "default", "shop")["conditions"],
            "Accepted",
        )["observedGeneration"]
            == 2
    })
    .await;
    let shop = our_parent(&api, "default", "shop");
    assert_eq!(
        condition(&shop["conditions"], "Accepted")["lastTransitionTime"],
        accepted_since
    );
    // The fixed route resolves its references.
    api.apply(&route_yaml(
        "default", "broken", "web", "http", "/broken", "web",
    ));
    eventually("the fixed route resolves", || {
        summary(condition(
            &our_parent(&api, "default", "broken")["conditions"],
            "ResolvedRefs",
        )) == want("True", "ResolvedRefs", 2)
    })
    .await;

    // The outsider moves to another controller's Gateway: Remora's entry goes.
    api.apply(&route_yaml(
        "other", "outsider", "not-ours", "http", "/", "web",
    ));
    eventually(
        "Remora's entry leaves the route it no longer serves",
        || status(&api, "HTTPRoute", "other", "outsider")["parents"] == json!([]),
    )
    .await;
}

/// Without the CRDs: one info line says so, only probes are asked, and Ingresses are served as
/// before; CRDs installed later are found and their objects served, GRPCRoutes included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_crds_ingresses_work_as_before() {
    let pods = pods("web-5f6d7c8b9b", 1).await;
    let api = FakeApi::start_without_gateway_api().await;
    api.apply(CLASS);
    api.apply(&service_yaml("web"));
    api.apply(&slice_yaml("web", "default", None, &[&pods[0]]));
    api.apply(
        &IngressYaml::new("web")
            .rule(Some("shop.example.com"), "/", "web")
            .build()
            .replace("spec:\n", "spec:\n  ingressClassName: remora\n"),
    );
    let dir = Dir::new();
    let remora = controller(&api, &dir, "replica-a", &[]);
    remora.wait_ready().await;
    let r = get(&remora.url("/"), &[("host", "shop.example.com")]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&pods[0].name));
    let line = "Gateway API objects are not watched";
    remora.wait_log(line).await;
    assert_eq!(
        remora.stderr_text().matches(line).count(),
        1,
        "{}",
        remora.stderr_text()
    );
    let requests = api.requests();
    let gateway: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains(&format!(" /apis/{GROUP}/")))
        .collect();
    assert!(
        !gateway.is_empty()
            && gateway.iter().all(|r| r
                .starts_with(&format!("GET /apis/{GROUP}/v1/gatewayclasses?"))
                && r.ends_with("limit=1")),
        "only probes: {gateway:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces?")),
        "Namespaces are watched only for the Gateway API"
    );

    // The CRDs are installed later: found at the next recheck, and then a Gateway, its
    // HTTPRoute and a GRPCRoute are served, and their status written.
    api.install_gateway_api();
    let (http, team_a) = (free_port(), free_port());
    api.apply(&gateway_yaml(http, team_a));
    api.apply(&route_yaml("default", "shop", "web", "http", "/", "web"));
    api.apply(GRPC_ROUTE);
    // Asked again every 10 s.
    eventually("the CRDs are found", || {
        remora
            .stderr_text()
            .contains("the Gateway API CRDs are installed: watching")
    })
    .await;
    eventually("the GRPCRoute is accepted", || {
        summary(condition(
            &our_parent_of(&api, "GRPCRoute", "default", "cart")["conditions"],
            "Accepted",
        )) == want("True", "Accepted", 1)
    })
    .await;
    eventually("the listener takes GRPCRoutes too", || {
        listener(&api, "http")["supportedKinds"]
            == json!([{"group": GROUP, "kind": "HTTPRoute"}, {"group": GROUP, "kind": "GRPCRoute"}])
    })
    .await;
    assert_eq!(listener(&api, "http")["attachedRoutes"], 2);
    let r = get(
        &format!("http://127.0.0.1:{http}/"),
        &[("host", "shop.example.com")],
    )
    .await;
    assert_eq!(r.status, 200, "the HTTPRoute is served");
    let snapshot = get(&format!("http://{}/snapshot", remora.admin), &[])
        .await
        .body;
    assert!(snapshot.contains("/shop.Cart/Add"), "{snapshot}");
}

/// A GRPCRoute on the Gateway `web`'s `http` listener: the method shop.Cart/Add to `web`.
const GRPC_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: cart, namespace: default}
spec:
  parentRefs: [{name: web, sectionName: http}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{method: {service: shop.Cart, method: Add}}]
    backendRefs: [{name: web, port: 80}]
";

fn lease_holder(api: &FakeApi) -> Option<String> {
    api.get("Lease", "default", "remora-leader")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

/// Two replicas: only the leader writes the Gateway API status (the API server tells their
/// requests apart by their tokens); when it stops, the other takes over and repairs a status
/// someone changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_the_gateway_api_status() {
    let pods = pods("web-5f6d7c8b9c", 1).await;
    let api = FakeApi::start().await;
    let (http, team_a) = (free_port(), free_port());
    seed(&api, &[&pods[0]], http, team_a);
    let dir = Dir::new();
    let mut a = controller(&api, &dir, "replica-a", &[]);
    a.wait_ready().await;
    eventually("replica-a leads", || {
        lease_holder(&api).as_deref() == Some("replica-a")
    })
    .await;
    let b = controller(&api, &dir, "replica-b", &[]);
    b.wait_ready().await;
    eventually("the leader writes the status", || {
        !our_parent(&api, "default", "broken").is_null()
    })
    .await;
    // A change both replicas translate: the leader writes it, the follower does not.
    api.apply(&route_yaml(
        "default", "broken", "web", "http", "/broken", "web",
    ));
    eventually("the leader follows the change", || {
        summary(condition(
            &our_parent(&api, "default", "broken")["conditions"],
            "ResolvedRefs",
        )) == want("True", "ResolvedRefs", 2)
    })
    .await;
    assert!(!gateway_writes(&api.requests_from("replica-a")).is_empty());
    assert_eq!(
        gateway_writes(&api.requests_from("replica-b")),
        Vec::<String>::new(),
        "the follower never writes"
    );
    assert_eq!(lease_holder(&api).as_deref(), Some("replica-a"));

    // Someone breaks the Gateway's status; the leader stops; the follower takes over and
    // repairs it.
    let mut gw = api.get("Gateway", "default", "web").unwrap();
    gw["kind"] = "Gateway".into();
    gw["status"] = json!({"conditions": []});
    api.apply(&serde_json::to_string(&gw).unwrap());
    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(15)), Some(0));
    eventually("replica-b takes over", || {
        lease_holder(&api).as_deref() == Some("replica-b")
    })
    .await;
    eventually("the new leader repairs the status", || {
        summary(condition(
            &status(&api, "Gateway", "default", "web")["conditions"],
            "Programmed",
        )) == want("True", "Programmed", 1)
    })
    .await;
    assert!(
        !gateway_writes(&api.requests_from("replica-b")).is_empty(),
        "a: {:?}\nb: {:?}\nall: {:?}",
        gateway_writes(&api.requests_from("replica-a")),
        gateway_writes(&api.requests_from("replica-b")),
        gateway_writes(&api.requests()),
    );
}
