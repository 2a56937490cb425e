//! The Gateway API end to end through `remora serve`: an HTTPRoute with `sessionPersistence`
//! (GEP-1619) sticks like Ingress affinity: the cookie's attributes, a `Permanent` cookie's
//! lifetime, header sessions, sessions scoped to their rule, a session overriding weights (0
//! included), failover with one re-pin when the pinned pod is gone, draining pods keeping their
//! sessions, replicas sharing a cookie secret, and the seed 002 scenario as a Gateway and an
//! HTTPRoute.
//!
//! Gateway listeners have fixed ports: every test binds them on a loopback address of its own
//! (127.0.4.x) so tests running in parallel never meet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use http::StatusCode;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const PORT: u16 = 18080;

/// GatewayClass `remora`, Gateway `web` with one HTTP listener on [`PORT`], and an HTTPRoute `app`
/// whose rules are `rules` (YAML, indented for `spec.rules`).
fn gateway(rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: remora}}
spec: {{controllerName: remora.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: default}}
spec:
  gatewayClassName: remora
  listeners:
  - {{name: http, protocol: HTTP, port: {PORT}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: default}}
spec:
  parentRefs: [{{name: web}}]
  rules:
{rules}"
    )
}

/// A Service and the EndpointSlice of its pods.
fn service(name: &str, pods: &[&Pod]) -> String {
    format!(
        "---\n{}---\n{}",
        service_yaml(name),
        slice_yaml(name, "default", None, pods)
    )
}

/// `remora serve` of `dir`, its Gateway listeners on `bind`; returns once the listener on
/// `port` accepts (its readiness line).
async fn serve_on(dir: &Dir, bind: &str, port: u16) -> Remora {
    serve_with(dir, bind, port, &[]).await
}

/// [`serve_on`] with more arguments.
async fn serve_with(dir: &Dir, bind: &str, port: u16, extra: &[&str]) -> Remora {
    let mut args = vec!["--gateway-bind-address", bind];
    args.extend_from_slice(extra);
    let remora = Remora::serve(&[dir.path()], &args);
    let line = format!("remora: gateway listener http on {bind}:{port}");
    let started = Instant::now();
    while !remora.stdout.lock().unwrap().contains(&line) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no {line:?}; stdout:\n{}\nstderr:\n{}",
            remora.stdout_text(),
            remora.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    remora
}

async fn serve(dir: &Dir, bind: &str) -> Remora {
    serve_on(dir, bind, PORT).await
}

fn pod_of(r: &Resp) -> String {
    r.headers
        .get("x-pod-name")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_permanent_session_cookie_sticks_with_the_gateway_api_attributes() {
    let pods = pods("gw-sticky", 3).await;
    let dir = Dir::new();
    dir.write(
        "app.yaml",
        &(gateway(
            "  - backendRefs: [{name: app, port: 80}]
    sessionPersistence:
      sessionName: stickounet
      absoluteTimeout: 1h
      cookieConfig: {lifetimeType: Permanent}
",
        ) + &service("app", &pods.iter().collect::<Vec<_>>())),
    );
    let bind = "127.0.4.1";
    let _remora = serve(&dir, bind).await;
    let url = format!("http://{bind}:{PORT}/");
    let first = get(&url, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let set = first.set_cookies();
    assert_eq!(set.len(), 1, "{set:?}");
    let c = &set[0];
    assert!(c.starts_with("stickounet="), "{c}");
    for attr in [
        "; Max-Age=3600",
        "; Expires=",
        "; Path=/;",
        "; HttpOnly",
        "; SameSite=Strict",
    ] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    assert!(!c.contains("Secure"), "plain HTTP: no Secure ({c})");
    let pinned = pod_of(&first);
    let mut session = Session::default();
    let (n, v) = first.cookie().unwrap();
    session.cookies.insert(n, v);
    for _ in 0..20 {
        let r = session.get(&url).await;
        assert_eq!(pod_of(&r), pinned, "the session moved");
        assert!(
            r.set_cookies().is_empty(),
            "an honoured session gets no new cookie"
        );
    }
    // Without the cookie, new sessions spread over the pods.
    let mut seen = BTreeSet::new();
    for _ in 0..30 {
        seen.insert(pod_of(&get(&url, &[]).await));
    }
    assert!(seen.len() > 1, "new sessions all went to {seen:?}");
}

#[tokio::test]
async fn header_sessions_and_sessions_scoped_to_their_rule() {
    let pods = pods("gw-header", 3).await;
    let dir = Dir::new();
    dir.write(
        "app.yaml",
        &(gateway(
            "  - matches: [{path: {value: /h}}]
    backendRefs: [{name: app, port: 80}]
    sessionPersistence: {type: Header, header: {name: X-Session}}
  - matches: [{path: {value: /a}}]
    backendRefs: [{name: app, port: 80}]
    sessionPersistence: {sessionName: s-a}
  - matches: [{path: {value: /b}}]
    backendRefs: [{name: app, port: 80}]
    sessionPersistence: {sessionName: s-b}
",
        ) + &service("app", &pods.iter().collect::<Vec<_>>())),
    );
    let bind = "127.0.4.2";
    let _remora = serve(&dir, bind).await;
    let base = format!("http://{bind}:{PORT}");
    // Header persistence: the session comes back in the header and is read from it.
    let first = get(&format!("{base}/h"), &[]).await;
    assert!(
        first.set_cookies().is_empty(),
        "a header session sets no cookie"
    );
    let value = first
        .headers
        .get("x-session")
        .expect("the session in its header")
        .to_str()
        .unwrap()
        .to_owned();
    let pinned = pod_of(&first);
    for _ in 0..15 {
        let r = get(&format!("{base}/h"), &[("x-session", &value)]).await;
        assert_eq!(pod_of(&r), pinned);
        assert!(
            r.headers.get("x-session").is_none(),
            "an honoured session is not sent again"
        );
    }
    // Two rules sending to the same Service keep separate sessions: the value rule /a issued is
    // not honoured by rule /b, even under /b's cookie name.
    let a = get(&format!("{base}/a"), &[]).await;
    let (name, a_value) = a.cookie().unwrap();
    assert_eq!(name, "s-a");
    let cookie = format!("s-b={a_value}");
    let b = get(&format!("{base}/b"), &[("cookie", &cookie)]).await;
    let (name, b_value) = b.cookie().expect("rule /b starts its own session");
    assert_eq!(name, "s-b");
    assert_ne!(b_value, a_value);
}

#[tokio::test]
async fn a_session_overrides_weights_and_fails_over_once_when_its_pod_is_gone() {
    let mut blue = pods("gw-blue", 2).await;
    let green = pods("gw-green", 1).await;
    let dir = Dir::new();
    let services = service("blue", &blue.iter().collect::<Vec<_>>())
        + &service("green", &green.iter().collect::<Vec<_>>());
    let rules = |blue_weight: u32, green_weight: u32| {
        format!(
            "  - backendRefs:
    - {{name: blue, port: 80, weight: {blue_weight}}}
    - {{name: green, port: 80, weight: {green_weight}}}
    sessionPersistence: {{sessionName: s}}
"
        )
    };
    dir.write("app.yaml", &(gateway(&rules(1, 0)) + &services));
    let bind = "127.0.4.3";
    let remora = serve(&dir, bind).await;
    let url = format!("http://{bind}:{PORT}/");
    // Weight 0: green gets no new session.
    let first = get(&url, &[]).await;
    let pinned = pod_of(&first);
    assert!(pinned.starts_with("gw-blue"), "{pinned}");
    for _ in 0..10 {
        assert!(pod_of(&get(&url, &[]).await).starts_with("gw-blue"));
    }
    // Blue's weight goes to 0: new sessions go green, the session pinned on blue stays there.
    remora
        .rewrite(&dir, "app.yaml", &(gateway(&rules(0, 1)) + &services))
        .await;
    let mut session = Session::default();
    let (n, v) = first.cookie().unwrap();
    session.cookies.insert(n, v);
    for _ in 0..10 {
        assert_eq!(pod_of(&session.get(&url).await), pinned);
        assert!(pod_of(&get(&url, &[]).await).starts_with("gw-green"));
    }
    // The pinned pod dies: the same request fails over, the session is re-pinned once.
    let i = blue.iter().position(|p| p.name == pinned).unwrap();
    blue[i].kill();
    let moved = session.get(&url).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let now = pod_of(&moved);
    assert_ne!(now, pinned);
    assert_eq!(moved.set_cookies().len(), 1, "re-pinned with a new cookie");
    for _ in 0..10 {
        let r = session.get(&url).await;
        assert_eq!(pod_of(&r), now);
        assert!(r.set_cookies().is_empty());
    }
}

/// A terminating pod that still serves keeps its sessions and takes no new one (as Ingress
/// affinity); replicas sharing `--cookie-secret-file` honour each other's sessions, one with
/// another secret replaces them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_pods_keep_their_sessions_and_replicas_share_them() {
    let pods = pods("gw-drain", 3).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let rules = "  - backendRefs: [{name: app, port: 80}]
    sessionPersistence: {sessionName: s}
";
    let slice = |conditions: &[(usize, bool, bool, bool)]| {
        format!(
            "---\n{}---\n{}",
            service_yaml("app"),
            slice_yaml_with("app", "default", None, &refs, conditions)
        )
    };
    let dir = Dir::new();
    dir.write("app.yaml", &gateway(rules));
    dir.write("slice.yaml", &slice(&[]));
    let secrets = Dir::new();
    let shared = secrets
        .write("shared", "0123456789abcdef-shared-secret\n")
        .display()
        .to_string();
    let other = secrets
        .write("other", "another-secret-of-enough-length")
        .display()
        .to_string();
    let (a_bind, b_bind, c_bind) = ("127.0.4.5", "127.0.4.6", "127.0.4.7");
    let a = serve_with(&dir, a_bind, PORT, &["--cookie-secret-file", &shared]).await;
    let _b = serve_with(&dir, b_bind, PORT, &["--cookie-secret-file", &shared]).await;
    let _c = serve_with(&dir, c_bind, PORT, &["--cookie-secret-file", &other]).await;
    let url = |bind: &str| format!("http://{bind}:{PORT}/");

    // Sessions pinned through replica a: replica b honours them, replica c replaces them.
    let mut pinned: Vec<(Session, String)> = Vec::new();
    for _ in 0..30 {
        let first = get(&url(a_bind), &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.body);
        let (name, value) = first.cookie().unwrap();
        let cookie = format!("{name}={value}");
        let on_b = get(&url(b_bind), &[("cookie", &cookie)]).await;
        assert_eq!(pod_of(&on_b), pod_of(&first), "replica b moved the session");
        assert!(on_b.cookie().is_none(), "replica b honours the cookie");
        let on_c = get(&url(c_bind), &[("cookie", &cookie)]).await;
        assert!(
            on_c.cookie().is_some(),
            "another secret's replica replaces it"
        );
        let mut session = Session::default();
        session.cookies.insert(name, value);
        pinned.push((session, pod_of(&first)));
    }
    let draining = pods[0].name.clone();
    let on_draining: Vec<Session> = pinned
        .into_iter()
        .filter(|(_, p)| *p == draining)
        .map(|(s, _)| s)
        .collect();
    assert!(!on_draining.is_empty(), "no session on {draining}");

    // Pod 0 terminates but still serves: its sessions stay, new sessions go elsewhere.
    a.rewrite(&dir, "slice.yaml", &slice(&[(0, false, true, true)]))
        .await;
    for mut s in on_draining {
        let r = s.get(&url(a_bind)).await;
        assert_eq!(pod_of(&r), draining, "a draining pod keeps its sessions");
        assert!(r.cookie().is_none());
    }
    for _ in 0..20 {
        let r = get(&url(a_bind), &[]).await;
        assert_ne!(
            pod_of(&r),
            draining,
            "a terminating pod takes no new session"
        );
    }
}

#[tokio::test]
async fn the_seed_002_scenario_as_a_gateway_sticks_like_the_guide() {
    let pods = pods("what-is-my-pod-gw", 3).await;
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../manifests/seed-002-gateway-api.yaml"
    ))
    .unwrap();
    let port: u16 = seed
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("port: ")
                .and_then(|p| p.parse().ok())
                .filter(|p| *p != 8080)
        })
        .expect("the listener's port");
    let dir = Dir::new();
    dir.write("seed.yaml", &seed);
    dir.write(
        "endpoints.yaml",
        &slice_yaml(
            "what-is-my-pod",
            "default",
            None,
            &pods.iter().collect::<Vec<_>>(),
        ),
    );
    let bind = "127.0.4.4";
    let _remora = serve_on(&dir, bind, port).await;
    // The guide's loop: a cookie jar, six requests, one pod.
    let url = format!("http://{bind}:{port}/");
    let mut jar = Session::default();
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let r = jar.get(&url).await;
        assert_eq!(r.status, StatusCode::OK);
        seen.insert(r.body.clone());
    }
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(jar.cookies.contains_key("stickounet"));
}
