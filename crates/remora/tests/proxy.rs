//! Forwarding: headers, bodies, routing precedence, upstream failures.

mod common;
use bytes::Bytes;
use common::*;

async fn one_service(prefix: &str) -> (Vec<Pod>, Dir) {
    let (pods, dir) = service_dir("app", prefix, 1).await;
    dir.write(
        "ing.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\nspec:\n  defaultBackend:\n    service:\n      name: app\n      port:\n        number: 80\n",
    );
    (pods, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_host_and_hop_by_hop() {
    let (_pods, dir) = one_service("app-7b8c9d-h").await;
    let remora = Remora::serve(&[dir.path()], &[]);
    let r = get(
        &remora.url("/echo-headers?a=1&b=%20x"),
        &[
            ("host", "shop.example.com"),
            ("x-forwarded-for", "6.6.6.6"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "secret"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "kept"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let echoed = r.body;
    let port = remora.http.port();
    for expected in [
        "uri: /echo-headers?a=1&b=%20x".to_owned(),
        "host: shop.example.com".to_owned(),
        "x-forwarded-for: 127.0.0.1".to_owned(),
        "x-real-ip: 127.0.0.1".to_owned(),
        "x-forwarded-host: shop.example.com".to_owned(),
        format!("x-forwarded-port: {port}"),
        "x-forwarded-proto: http".to_owned(),
        "x-custom: kept".to_owned(),
        // The client's own list reaches the pod only under this name, as ingress-nginx passes it.
        "x-original-forwarded-for: 6.6.6.6".to_owned(),
    ] {
        assert!(
            echoed.lines().any(|l| l == expected),
            "missing {expected:?} in\n{echoed}"
        );
    }
    let id = echoed
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an X-Request-ID");
    assert_eq!(id.len(), 32, "{id}");
    let kept = get(&remora.url("/echo-headers"), &[("x-request-id", "abc-123")]).await;
    assert!(
        kept.body.lines().any(|l| l == "x-request-id: abc-123"),
        "{}",
        kept.body
    );
    for absent in [
        "x-forwarded-for: 6.6.6.6",
        "x-private",
        "keep-alive: timeout",
    ] {
        assert!(!echoed.contains(absent), "{absent:?} forwarded:\n{echoed}");
    }
}

/// With `proxy-body-size` raised, a 16 MiB body streams through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_request_bodies_are_streamed_through() {
    let (_pods, dir) = one_service("app-7b8c9d-b").await;
    dir.write(
        "ing.yaml",
        &IngressYaml::new("app")
            .nginx("proxy-body-size", "32m")
            .rule(None, "/", "app")
            .build(),
    );
    let remora = Remora::serve(&[dir.path()], &[]);
    let body = Bytes::from(vec![b'x'; 16 * 1024 * 1024]);
    let r = request("POST", &remora.url("/echo-body"), &[], body).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "16777216"));
}

/// ingress-nginx's default `proxy-body-size` is 1m: a body of 1 MiB passes, one byte more gets 413,
/// whether its length is declared or it comes chunked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_over_proxy_body_size_get_413() {
    use http_body_util::{BodyExt, StreamBody};
    let (_pods, dir) = one_service("app-7b8c9d-l").await;
    let remora = Remora::serve(&[dir.path()], &[]);
    let mib = 1024 * 1024;
    let r = request(
        "POST",
        &remora.url("/echo-body"),
        &[],
        Bytes::from(vec![b'x'; mib]),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "1048576"));
    let r = request(
        "POST",
        &remora.url("/echo-body"),
        &[],
        Bytes::from(vec![b'x'; mib + 1]),
    )
    .await;
    assert_eq!(r.status, 413);

    // Chunked: 2 MiB in 64 KiB frames, no Content-Length.
    let frames = (0..32).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(vec![
            b'y';
            64 * 1024
        ])))
    });
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let resp = post_to_app(&remora, "/echo-body", body).await;
    assert_eq!(resp.status(), 413);
    let _ = resp.into_body().collect().await;
}

/// As nginx's, the timeouts run between two steps of progress, not over the whole exchange: an
/// upload that keeps moving outlasts `proxy-read-timeout`; a pod that takes no more of the body
/// gets 504 after `proxy-send-timeout`, however long the read timeout; a client that sends no more
/// of it gets 408 after `--client-body-timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_run_between_steps_of_an_upload() {
    let (_pods, dir) = one_service("app-7b8c9d-t").await;
    let ingress = |read: &str, send: &str| {
        IngressYaml::new("app")
            .nginx("proxy-read-timeout", read)
            .nginx("proxy-send-timeout", send)
            .nginx("proxy-body-size", "0")
            .rule(None, "/", "app")
            .build()
    };
    dir.write("ing.yaml", &ingress("1", "1"));
    let remora = Remora::serve(&[dir.path()], &["--client-body-timeout", "1"]);
    let gap = std::time::Duration::from_millis(300);

    // 8 pieces 300 ms apart: 2.1 s of upload against a read timeout of 1 s.
    let (status, body, took) = paced_upload(&remora, "/echo-body", 8, 1000, gap, true).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "8000"), "{took:?}");
    assert!(took > std::time::Duration::from_secs(2), "{took:?}");

    // The client stops after one piece: 408 once it has been silent for a second.
    let (status, _, took) = paced_upload(&remora, "/echo-body", 1, 1000, gap, false).await;
    assert_eq!(status, 408, "{took:?}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    remora
        .wait_log("the client sent no more of the request body for 1s")
        .await;

    // The pod stops reading: once its buffers are full, 504 after a second without progress,
    // not after the read timeout of 60 s.
    let previous = remora.generation().await;
    dir.write("ing.yaml", &ingress("60", "1"));
    remora.wait_generation_after(previous).await;
    let (status, _, took) = paced_upload(
        &remora,
        "/stall",
        1024,
        64 * 1024,
        std::time::Duration::ZERO,
        true,
    )
    .await;
    assert_eq!(status, 504, "{took:?}");
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    remora
        .wait_log("the pod took no more of the request for 1s")
        .await;
}

/// A pod that stops sending within a response body (here to a request with a body, which goes
/// through hyper's client) has it cut after `proxy-read-timeout` without data, as nginx does: the
/// client gets what came, then the connection ends, instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_silent_within_a_response_body_is_cut_after_the_read_timeout() {
    use http_body_util::{BodyExt, Full};
    let (_pods, dir) = one_service("app-7b8c9d-r").await;
    dir.write(
        "ing.yaml",
        &IngressYaml::new("app")
            .nginx("proxy-read-timeout", "1")
            .rule(None, "/", "app")
            .build(),
    );
    let remora = Remora::serve(&[dir.path()], &[]);
    let body = Full::new(Bytes::from_static(b"x"));
    let resp = post_to_app(&remora, "/stall-body", body).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"partial");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(20), body.collect()).await;
    assert!(
        matches!(rest, Ok(Err(_))),
        "the body ends with an error within 20 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_pod_gives_502() {
    let (mut pods, dir) = one_service("app-7b8c9d-d").await;
    let remora = Remora::serve(&[dir.path()], &[]);
    assert_eq!(get(&remora.url("/"), &[]).await.status, 200);
    pods[0].kill();
    // Once the listening socket is closed, connecting is refused.
    let mut status = 200;
    for _ in 0..100 {
        status = get(&remora.url("/"), &[("connection", "close")])
            .await
            .status
            .as_u16();
        if status != 200 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(status, 502);
}

/// One Service per name, each with one pod `<name>-0` (which answers `Hello "<name>-0"!`).
async fn services_of_one_pod(names: &[&str]) -> (Vec<Pod>, Dir) {
    let mut all_pods = Vec::new();
    let dir = Dir::new();
    let mut services = String::new();
    let mut slices = String::new();
    for n in names {
        let p = pods(n, 1).await;
        services.push_str(&format!("{}---\n", service_yaml(n)));
        slices.push_str(&format!(
            "{}---\n",
            slice_yaml(n, "default", None, &[&p[0]])
                .replace(&format!("{n}-abcde"), &format!("{n}-s"))
        ));
        all_pods.extend(p);
    }
    dir.write("svc.yaml", &services);
    dir.write("slices.yaml", &slices);
    (all_pods, dir)
}

/// An Ingress path's `backend:` block for a Service on port 80.
fn backend(service: &str) -> String {
    format!("        backend:\n          service:\n            name: {service}\n            port:\n              number: 80\n")
}

/// `use-regex` on one Ingress makes every path of its host a case-insensitive regex anchored at
/// the start, the paths of other Ingresses of the host too; longest first; other hosts unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_regex_paths() {
    let (_pods, dir) = services_of_one_pod(&["api", "web", "health", "plain"]).await;
    let ingresses = format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  annotations:
    nginx.ingress.kubernetes.io/use-regex: \"true\"
spec:
  rules:
  - host: regex.example.com
    http:
      paths:
      - path: /api/v[0-9]+/
        pathType: ImplementationSpecific
{}---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
spec:
  rules:
  - host: regex.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
{}      - path: /health
        pathType: Exact
{}  - host: plain.example.com
    http:
      paths:
      - path: /a.c
        pathType: Prefix
{}",
        backend("api"),
        backend("web"),
        backend("health"),
        backend("plain"),
    );
    dir.write("ing.yaml", &ingresses);
    let remora = Remora::serve(&[dir.path()], &[]);
    let cases = [
        ("regex.example.com", "/api/v2/users", Some("api")),
        ("regex.example.com", "/API/V10/users?x=1", Some("api")),
        ("regex.example.com", "/api/vx/users", Some("web")),
        ("regex.example.com", "/api/v2", Some("web")),
        ("regex.example.com", "/healthz", Some("health")),
        ("regex.example.com", "/anything", Some("web")),
        ("plain.example.com", "/a.c/x", Some("plain")),
        ("plain.example.com", "/abc", None),
    ];
    for (host, path, want) in cases {
        let r = get(&remora.url(path), &[("host", host)]).await;
        match want {
            Some(want) => assert_eq!(r.body, format!("Hello \"{want}-0\"!"), "{host}{path}"),
            None => assert_eq!(r.status, 404, "{host}{path}"),
        }
    }
}

/// Host and path precedence, end to end: exact host over wildcard over no host; Exact over Prefix;
/// longest Prefix; element-wise prefixes; defaultBackend when no path matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_path_precedence() {
    let names = [
        "exact-host",
        "wildcard",
        "any-host",
        "exact-path",
        "long-prefix",
        "default",
    ];
    let (_pods, dir) = services_of_one_pod(&names).await;
    let ingress = format!(
        "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: routes
spec:
  defaultBackend:
    service:
      name: default
      port:
        number: 80
  rules:
  - host: shop.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
{}      - path: /api
        pathType: Exact
{}      - path: /api/v2/
        pathType: Prefix
{}  - host: \"*.example.com\"
    http:
      paths:
      - path: /
        pathType: Prefix
{}  - http:
      paths:
      - path: /app
        pathType: ImplementationSpecific
{}",
        backend("exact-host"),
        backend("exact-path"),
        backend("long-prefix"),
        backend("wildcard"),
        backend("any-host"),
    );
    dir.write("ing.yaml", &ingress);
    let remora = Remora::serve(&[dir.path()], &[]);
    let cases = [
        ("shop.example.com", "/", "exact-host"),
        ("SHOP.example.com:8080", "/x", "exact-host"),
        ("shop.example.com", "/api", "exact-path"),
        ("shop.example.com", "/api/", "exact-host"),
        ("shop.example.com", "/api/v2", "long-prefix"),
        ("shop.example.com", "/api/v2/users?id=1", "long-prefix"),
        ("shop.example.com", "/api/v2x", "exact-host"),
        ("blog.example.com", "/", "wildcard"),
        ("a.b.example.com", "/app", "any-host"),
        ("example.com", "/app/x", "any-host"),
        ("example.com", "/application", "default"),
        ("10.1.2.3", "/", "default"),
    ];
    for (host, path, want) in cases {
        let r = get(&remora.url(path), &[("host", host)]).await;
        assert_eq!(r.body, format!("Hello \"{want}-0\"!"), "{host}{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let (_pods, dir) = one_service("app-7b8c9d-s").await;
    let mut remora = Remora::serve(&[dir.path()], &[]);
    let url = remora.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    // The request is in flight once the pod has seen it.
    let started = std::time::Instant::now();
    while _pods[0].hits.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        tokio::task::yield_now().await;
    }
    remora.terminate();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request completed");
    let code = tokio::task::block_in_place(|| remora.wait_exit(std::time::Duration::from_secs(10)));
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_port_and_keep_pod_connections() {
    let (pods, dir) = one_service("app-5f6a7b-w").await;
    let remora = Remora::serve(&[dir.path()], &["--workers", "3"]);
    // Three serving threads besides the control plane's.
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", remora.pid()))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .filter(|c| c.starts_with("remora-worker-"))
        .collect();
    assert_eq!(threads.len(), 3, "{threads:?}");
    // Each request on a new client connection (spread over the workers by the kernel); each
    // answered, and the pod sees the workers' kept connections, not one per request.
    for i in 0..60 {
        let r = get(&remora.url("/"), &[]).await;
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.body, format!("Hello \"{}\"!", pods[0].name));
    }
    let upstream = pods[0]
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        (1..=6).contains(&upstream),
        "{upstream} pod connections for 60 requests"
    );
    // HEAD: the length, no body, and the connection still good for the next request.
    let r = request("HEAD", &remora.url("/"), &[], Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.contains_key("content-length"));
    assert!(r.body.is_empty());
    assert_eq!(get(&remora.url("/"), &[]).await.status, 200);
}

/// nginx hides the pod's `Server` header (proxy_hide_header's default); so does Remora, unless
/// --allow-backend-server-header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pods_server_header_is_hidden_unless_allowed() {
    let (_pods, dir) = one_service("app-7b8c9d-s").await;
    let hidden = Remora::serve(&[dir.path()], &[]);
    let shown = Remora::serve(&[dir.path()], &["--allow-backend-server-header"]);
    for method in ["GET", "POST"] {
        let r = request(
            method,
            &hidden.url("/server-header"),
            &[],
            Bytes::from_static(b"x"),
        )
        .await;
        assert_eq!(r.status, 200, "{method}");
        assert!(
            r.headers.get("server").is_none(),
            "{method}: {:?}",
            r.headers
        );
        let r = request(
            method,
            &shown.url("/server-header"),
            &[],
            Bytes::from_static(b"x"),
        )
        .await;
        assert_eq!(r.headers["server"], "pod-server/1.0", "{method}");
    }
}

/// `proxy-next-upstream`, as nginx's: by default (`error timeout`) a pod that does not answer
/// within `proxy-read-timeout` is left for another; listed statuses (`http_502`) are retried too;
/// `-tries: 1` retries nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_upstream_on_timeouts_statuses_and_tries() {
    let ingress = |name: &str, host: &str, annotations: &[(&str, &str)]| {
        let mut all = vec![("proxy-read-timeout", "1")];
        all.extend_from_slice(annotations);
        web_ingress(name, host, &all)
    };
    let (pods, _dir, remora) = serve_service(
        "web",
        "web-8d9e0f1a2b",
        3,
        &[
            ingress("default", "default.example.com", &[]),
            ingress(
                "statuses",
                "statuses.example.com",
                &[("proxy-next-upstream", "error timeout http_502")],
            ),
            ingress(
                "errors-only",
                "errors.example.com",
                &[("proxy-next-upstream", "error")],
            ),
            ingress(
                "once",
                "once.example.com",
                &[("proxy-next-upstream-tries", "1")],
            ),
        ],
    )
    .await;
    let first = &pods[0].name;
    // Three requests in a row reach each of the three pods once (round robin).
    let codes = |host: &'static str, path: String| {
        let url = remora.url(&path);
        async move {
            let mut codes = Vec::new();
            for _ in 0..3 {
                codes.push(get(&url, &[("host", host)]).await.status.as_u16());
            }
            codes
        }
    };
    // A pod that never answers: after the read timeout, another pod answers (default), or 504.
    let stall = format!("/stall-if/{first}");
    let default_codes = codes("default.example.com", stall.clone()).await;
    assert_eq!(default_codes, [200, 200, 200], "the stalled pod was left");
    let errors_codes = codes("errors.example.com", stall.clone()).await;
    assert!(errors_codes.contains(&504), "{errors_codes:?}");
    // A pod answering 502: passed on by default, retried with http_502.
    let fail = format!("/fail-if/{first}");
    let default_codes = codes("default.example.com", fail.clone()).await;
    assert!(default_codes.contains(&502), "{default_codes:?}");
    let retried = codes("statuses.example.com", fail.clone()).await;
    assert_eq!(retried, [200, 200, 200]);
    // One try: the stalled pod's timeout is the client's.
    let once = codes("once.example.com", stall).await;
    assert!(once.contains(&504), "{once:?}");
}
