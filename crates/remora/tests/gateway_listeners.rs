//! Gateway listeners on sockets of their own: each port of the Gateways' listeners is bound at
//! `--gateway-bind-address`, routes among its own hosts, follows the manifests (a removed listener
//! stops accepting, one added back is bound again), and a port that is Remora's own or taken is
//! reported, never shared.
//!
//! The manifests name fixed ports, as Gateways do: every test binds them on a loopback address of
//! its own (127.0.3.x), so tests running in parallel never meet.
//!
//! Which route answered is read from the access log (`--access-log -`, the route's object), not
//! from the pod's answer: these tests are about listeners, whatever a Gateway route's backends
//! answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::tls::{https_get, make_cert, tls_secret_yaml, Trust};
use common::*;
use http::StatusCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const GATEWAY_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: remora}
spec: {controllerName: remora.dev/gateway-controller}
";

/// A listener of [`gateway_yaml`]: name, port, host name, and for HTTPS the certificate Secret.
struct L<'a> {
    name: &'a str,
    port: u16,
    hostname: Option<&'a str>,
    secret: Option<&'a str>,
}

fn http_listener(name: &str, port: u16) -> L<'_> {
    L {
        name,
        port,
        hostname: None,
        secret: None,
    }
}

/// The Gateway `web` of namespace `default` with these listeners.
fn gateway_yaml(listeners: &[L<'_>]) -> String {
    let mut s = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web, namespace: default}\nspec:\n  gatewayClassName: remora\n  listeners:\n",
    );
    for l in listeners {
        let protocol = if l.secret.is_some() { "HTTPS" } else { "HTTP" };
        s.push_str(&format!(
            "  - name: {}\n    protocol: {protocol}\n    port: {}\n",
            l.name, l.port
        ));
        if let Some(h) = l.hostname {
            s.push_str(&format!("    hostname: \"{h}\"\n"));
        }
        if let Some(secret) = l.secret {
            s.push_str(&format!(
                "    tls: {{certificateRefs: [{{name: {secret}}}]}}\n"
            ));
        }
    }
    s
}

/// An HTTPRoute `name` attached to the Gateway `web` (to one listener with `section`), for these
/// host names (none: the listener's), every path to the Service `service` port 80.
fn route_yaml(name: &str, section: Option<&str>, hostnames: &[&str], service: &str) -> String {
    let parent = match section {
        Some(s) => format!("{{name: web, sectionName: {s}}}"),
        None => "{name: web}".to_owned(),
    };
    let mut s = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  parentRefs: [{parent}]\n"
    );
    if !hostnames.is_empty() {
        s.push_str(&format!("  hostnames: [{}]\n", hostnames.join(", ")));
    }
    s.push_str(&format!(
        "  rules:\n  - backendRefs: [{{name: {service}, port: 80}}]\n"
    ));
    s
}

/// A Service `name` and the EndpointSlice of its `pods`.
fn service_with(name: &str, pods: &[Pod]) -> String {
    format!(
        "{}---\n{}",
        service_yaml(name),
        slice_yaml(name, "default", None, &pods.iter().collect::<Vec<_>>())
    )
}

/// `remora serve` of `dir` on loopback port 0, its Gateway listeners on `bind`, the access log
/// on stdout.
fn serve(dir: &Dir, bind: &str) -> Remora {
    Remora::serve(
        &[dir.path()],
        &["--gateway-bind-address", bind, "--access-log", "-"],
    )
}

/// Wait (bounded) until stdout has `count` lines equal to `line`.
async fn wait_stdout(remora: &Remora, line: &str, count: usize) {
    let started = Instant::now();
    loop {
        let seen = remora
            .stdout
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.as_str() == line)
            .count();
        if seen >= count {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {count} stdout line(s) {line:?}; stdout:\n{}\nstderr:\n{}",
            remora.stdout_text(),
            remora.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Wait until the Gateway socket at `addr` accepts (its readiness line).
async fn wait_listening(remora: &Remora, scheme: &str, addr: &str) {
    wait_stdout(
        remora,
        &format!("remora: gateway listener {scheme} on {addr}"),
        1,
    )
    .await;
}

/// A path no other request of the process has.
fn unique_path() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("/probe-{n}")
}

/// The route (`namespace/name` of its HTTPRoute or Ingress; empty: none) of the request whose
/// path is `path`, from its access log line.
async fn route_of(remora: &Remora, path: &str) -> String {
    let needle = format!("\"path\":\"{path}\"");
    let started = Instant::now();
    loop {
        let line = remora
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains(&needle))
            .cloned();
        if let Some(line) = line {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            return v["ingress"].as_str().unwrap_or("").to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no access log line for {path}; stdout:\n{}",
            remora.stdout_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// GET a new path on `addr` with `host`: the status, and the route that answered.
async fn routed(remora: &Remora, addr: &str, host: &str) -> (StatusCode, String) {
    let path = unique_path();
    let r = get(&format!("http://{addr}{path}"), &[("host", host)]).await;
    (r.status, route_of(remora, &path).await)
}

/// The route a request on `addr` for `host` is answered by; `None`: 404, no route.
async fn route_on(remora: &Remora, addr: &str, host: &str) -> Option<String> {
    let (status, route) = routed(remora, addr, host).await;
    if status == StatusCode::NOT_FOUND {
        assert_eq!(route, "", "404 from a route");
        return None;
    }
    assert!(!route.is_empty(), "{status} without a route");
    Some(route)
}

/// The same over TLS with `sni` as server name and Host: the certificate presented too.
async fn route_on_tls(
    remora: &Remora,
    addr: SocketAddr,
    sni: &str,
    trust: Trust<'_>,
) -> (Option<String>, Vec<u8>, http::HeaderMap) {
    let path = unique_path();
    let r = https_get(addr, sni, &path, &[], trust, false).await;
    let route = route_of(remora, &path).await;
    let route = (r.resp.status != StatusCode::NOT_FOUND).then_some(route);
    (route, r.peer, r.resp.headers)
}

#[tokio::test]
async fn each_listener_serves_its_own_routes_on_its_own_port() {
    let (a, b) = (pods("gwa", 1).await, pods("gwb", 1).await);
    let dir = Dir::new();
    dir.write(
        "services.yaml",
        &format!("{}---\n{}", service_with("a", &a), service_with("b", &b)),
    );
    dir.write(
        "gateway.yaml",
        &[
            GATEWAY_CLASS.to_owned(),
            gateway_yaml(&[http_listener("one", 18080), http_listener("two", 18081)]),
            route_yaml("to-a", Some("one"), &["a.test"], "a"),
            route_yaml("to-b", Some("two"), &[], "b"),
        ]
        .join("---\n"),
    );
    let remora = serve(&dir, "127.0.3.1");
    wait_listening(&remora, "http", "127.0.3.1:18080").await;
    wait_listening(&remora, "http", "127.0.3.1:18081").await;

    let to_a = Some("default/to-a".to_owned());
    let to_b = Some("default/to-b".to_owned());
    assert_eq!(route_on(&remora, "127.0.3.1:18080", "a.test").await, to_a);
    // The first listener has no route for other hosts: 404.
    assert_eq!(route_on(&remora, "127.0.3.1:18080", "b.test").await, None);
    // The second takes any host, to its own route.
    assert_eq!(route_on(&remora, "127.0.3.1:18081", "a.test").await, to_b);
    assert_eq!(route_on(&remora, "127.0.3.1:18081", "x.test").await, to_b);
    // Through to the pods of each listener's Service, with the listener's X-Forwarded-Port.
    let r = get("http://127.0.3.1:18080/", &[("host", "a.test")]).await;
    assert_eq!(r.body, "Hello \"gwa-0\"!");
    let r = get("http://127.0.3.1:18081/echo-headers", &[("host", "a.test")]).await;
    assert!(r.body.contains("x-forwarded-port: 18081"), "{}", r.body);
    assert!(r.headers.get("x-pod-name").is_some_and(|p| p == "gwb-0"));
    // Gateway hosts are not served on the Ingress listener.
    let ingress = remora.http.to_string();
    assert_eq!(route_on(&remora, &ingress, "a.test").await, None);
    assert!(remora.status().await.get("listener_errors").is_none());
}

#[tokio::test]
async fn an_https_listener_presents_the_certificate_of_the_name_asked_for() {
    let web = pods("gwtls", 1).await;
    let (cert_a, cert_b) = (make_cert(&["a.test"]), make_cert(&["b.test"]));
    let dir = Dir::new();
    dir.write("services.yaml", &service_with("web", &web));
    dir.write(
        "secrets.yaml",
        &format!(
            "{}---\n{}",
            tls_secret_yaml("cert-a", &cert_a),
            tls_secret_yaml("cert-b", &cert_b)
        ),
    );
    // Two HTTPS listeners on one port, told apart by host name (and SNI).
    let https = |name, host, secret| L {
        name,
        port: 18443,
        hostname: Some(host),
        secret: Some(secret),
    };
    dir.write(
        "gateway.yaml",
        &[
            GATEWAY_CLASS.to_owned(),
            gateway_yaml(&[
                https("a", "a.test", "cert-a"),
                https("b", "b.test", "cert-b"),
            ]),
            route_yaml("web", None, &[], "web"),
        ]
        .join("---\n"),
    );
    let remora = serve(&dir, "127.0.3.2");
    wait_listening(&remora, "https", "127.0.3.2:18443").await;
    let addr: SocketAddr = "127.0.3.2:18443".parse().unwrap();
    let web_route = Some("default/web".to_owned());

    let (route, peer, headers) = route_on_tls(&remora, addr, "a.test", Trust::Root(&cert_a)).await;
    assert_eq!(route, web_route);
    assert_eq!(peer, cert_a.der);
    // Gateway listeners get no HSTS (ingress-nginx's behaviour, Ingress listeners only).
    assert!(!headers.contains_key("strict-transport-security"));
    let (route, peer, _) = route_on_tls(&remora, addr, "b.test", Trust::Root(&cert_b)).await;
    assert_eq!(route, web_route);
    assert_eq!(peer, cert_b.der);
    // Another name: the default certificate, and no host of the listener.
    let (route, peer, _) = route_on_tls(&remora, addr, "c.test", Trust::Any).await;
    assert_eq!(route, None);
    assert!(peer != cert_a.der && peer != cert_b.der);
    // The Ingress HTTPS listener does not present the Gateway's certificates.
    let (route, peer, _) = route_on_tls(&remora, remora.https, "a.test", Trust::Any).await;
    assert_eq!(route, None);
    assert_ne!(peer, cert_a.der);
}

#[tokio::test]
async fn a_listener_removed_stops_accepting_and_comes_back_when_added() {
    let web = pods("gwrm", 1).await;
    let dir = Dir::new();
    dir.write("services.yaml", &service_with("web", &web));
    let gateway = |listeners: &[L<'_>]| {
        [
            GATEWAY_CLASS.to_owned(),
            gateway_yaml(listeners),
            route_yaml("web", None, &[], "web"),
        ]
        .join("---\n")
    };
    let two = gateway(&[http_listener("one", 18080), http_listener("two", 18081)]);
    dir.write("gateway.yaml", &two);
    let remora = serve(&dir, "127.0.3.3");
    wait_listening(&remora, "http", "127.0.3.3:18080").await;
    wait_listening(&remora, "http", "127.0.3.3:18081").await;
    let web_route = Some("default/web".to_owned());
    assert_eq!(
        route_on(&remora, "127.0.3.3:18081", "x.test").await,
        web_route
    );

    // A request in flight on the listener about to go (the pod answers `/slow` in 500 ms).
    let hits = || web[0].hits.load(std::sync::atomic::Ordering::Relaxed);
    let before = hits();
    let slow = tokio::spawn(get("http://127.0.3.3:18081/slow", &[("host", "x.test")]));
    let started = Instant::now();
    while hits() == before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the request never came"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let one = gateway(&[http_listener("one", 18080)]);
    remora.rewrite(&dir, "gateway.yaml", &one).await;
    wait_stdout(
        &remora,
        "remora: gateway listener http on 127.0.3.3:18081 closed",
        1,
    )
    .await;
    let refused = tokio::net::TcpStream::connect("127.0.3.3:18081").await;
    assert!(refused.is_err(), "the removed listener still accepts");
    // It drains: the request in flight ends with its answer.
    let r = slow.await.unwrap();
    assert_eq!(r.body, "Hello \"gwrm-0\"!");
    assert_eq!(
        route_on(&remora, "127.0.3.3:18080", "x.test").await,
        web_route
    );

    // Back in the file: bound again.
    remora.rewrite(&dir, "gateway.yaml", &two).await;
    wait_stdout(
        &remora,
        "remora: gateway listener http on 127.0.3.3:18081",
        2,
    )
    .await;
    assert_eq!(
        route_on(&remora, "127.0.3.3:18081", "x.test").await,
        web_route
    );
}

#[tokio::test]
async fn a_listener_turned_to_https_is_bound_again_with_tls() {
    let web = pods("gwflip", 1).await;
    let cert = make_cert(&["a.test"]);
    let dir = Dir::new();
    dir.write("services.yaml", &service_with("web", &web));
    dir.write("secret.yaml", &tls_secret_yaml("cert", &cert));
    let with = |listener: L<'_>| {
        [
            GATEWAY_CLASS.to_owned(),
            gateway_yaml(&[listener]),
            route_yaml("web", None, &[], "web"),
        ]
        .join("---\n")
    };
    dir.write("gateway.yaml", &with(http_listener("one", 18080)));
    let remora = serve(&dir, "127.0.3.4");
    wait_listening(&remora, "http", "127.0.3.4:18080").await;
    let web_route = Some("default/web".to_owned());
    assert_eq!(
        route_on(&remora, "127.0.3.4:18080", "a.test").await,
        web_route
    );

    let https = L {
        name: "one",
        port: 18080,
        hostname: Some("a.test"),
        secret: Some("cert"),
    };
    remora.rewrite(&dir, "gateway.yaml", &with(https)).await;
    wait_stdout(
        &remora,
        "remora: gateway listener http on 127.0.3.4:18080 closed",
        1,
    )
    .await;
    wait_listening(&remora, "https", "127.0.3.4:18080").await;
    let addr: SocketAddr = "127.0.3.4:18080".parse().unwrap();
    let (route, peer, _) = route_on_tls(&remora, addr, "a.test", Trust::Root(&cert)).await;
    assert_eq!(route, web_route);
    assert_eq!(peer, cert.der);
    assert!(remora.status().await.get("listener_errors").is_none());
}

#[tokio::test]
async fn a_port_remora_listens_on_is_reported_not_shared() {
    let web = pods("gwclash", 1).await;
    let dir = Dir::new();
    dir.write("services.yaml", &service_with("web", &web));
    dir.write(
        "gateway.yaml",
        &[
            GATEWAY_CLASS.to_owned(),
            gateway_yaml(&[http_listener("clash", 18180), http_listener("fine", 18181)]),
            route_yaml("web", None, &[], "web"),
        ]
        .join("---\n"),
    );
    // Remora's own HTTP listener on the Gateway's port and address, shared by two workers
    // (SO_REUSEPORT): the Gateway socket must not join them.
    let args: Vec<String> = [
        "serve",
        "--manifests",
        &dir.path().display().to_string(),
        "--listen-http",
        "127.0.3.5:18180",
        "--listen-https",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--workers",
        "2",
        "--gateway-bind-address",
        "127.0.3.5",
        "--access-log",
        "-",
    ]
    .map(String::from)
    .to_vec();
    let remora = Remora::start(&args);
    wait_listening(&remora, "http", "127.0.3.5:18181").await;
    remora.wait_log("Gateway listener not served").await;
    assert!(remora.stderr_text().contains("127.0.3.5:18180"));
    let status = remora.status().await;
    let errors = status["listener_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["port"], 18180);
    assert_eq!(errors[0]["address"], "127.0.3.5:18180");
    assert!(
        errors[0]["reason"]
            .as_str()
            .unwrap()
            .contains("--listen-http"),
        "{errors:?}"
    );
    // The port is Remora's Ingress socket alone: no Gateway host is served there, whichever
    // worker takes the connection.
    for _ in 0..4 {
        assert_eq!(route_on(&remora, "127.0.3.5:18180", "x.test").await, None);
    }
    assert_eq!(
        route_on(&remora, "127.0.3.5:18181", "x.test").await,
        Some("default/web".to_owned())
    );
}

#[tokio::test]
async fn a_port_taken_is_reported_and_bound_at_the_next_configuration() {
    let web = pods("gwtaken", 1).await;
    let taken = std::net::TcpListener::bind("127.0.3.6:18080").unwrap();
    let dir = Dir::new();
    dir.write("services.yaml", &service_with("web", &web));
    let gateway = [
        GATEWAY_CLASS.to_owned(),
        gateway_yaml(&[http_listener("one", 18080)]),
        route_yaml("web", None, &[], "web"),
    ]
    .join("---\n");
    dir.write("gateway.yaml", &gateway);
    let remora = serve(&dir, "127.0.3.6");
    remora.wait_log("Gateway listener not served").await;
    let status = remora.status().await;
    let errors = status["listener_errors"].as_array().unwrap();
    assert_eq!(errors[0]["address"], "127.0.3.6:18080", "{errors:?}");

    // Freed, then any reload binds it, even one that changes nothing (a file saved again).
    drop(taken);
    dir.write("gateway.yaml", &format!("{gateway}# touched\n"));
    wait_listening(&remora, "http", "127.0.3.6:18080").await;
    assert_eq!(
        route_on(&remora, "127.0.3.6:18080", "x.test").await,
        Some("default/web".to_owned())
    );
    let status = remora.status().await;
    assert!(status.get("listener_errors").is_none(), "{status}");
}
