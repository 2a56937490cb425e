//! The common ingress-nginx annotations next to affinity, through the real binary:
//! `rewrite-target`, `app-root`, `permanent-redirect`, the source allow-list, CORS, and
//! `backend-protocol` (HTTPS and gRPC pods).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// One Service `web` with one pod, and these Ingresses.
async fn setup(ingresses: &[String]) -> (Vec<Pod>, Dir, Remora) {
    serve_service("web", "web-6c7d8e9f4a", 1, ingresses).await
}

fn ing(name: &str, host: &str, path: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx_all(annotations)
        .rule(Some(host), path, "web")
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_target_app_root_and_permanent_redirect() {
    let (_p, _d, remora) = setup(&[
        ing(
            "rewrite",
            "rewrite.example.com",
            "/api(/|$)(.*)",
            &[("rewrite-target", "/$2")],
        ),
        ing("root", "root.example.com", "/", &[("app-root", "/app1")]),
        ing(
            "moved",
            "old.example.com",
            "/",
            &[
                ("permanent-redirect", "https://new.example.com/here"),
                ("permanent-redirect-code", "308"),
            ],
        ),
    ])
    .await;
    let host = |h: &'static str| [("host", h)];
    let r = get(
        &remora.url("/api/echo-headers?x=1"),
        &host("rewrite.example.com"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("uri: /echo-headers?x=1\n"), "{}", r.body);
    let r = get(&remora.url("/API"), &host("rewrite.example.com")).await;
    assert_eq!(
        r.body, "Hello \"web-6c7d8e9f4a-0\"!",
        "/API is rewritten to /"
    );
    assert_eq!(
        get(&remora.url("/apix"), &host("rewrite.example.com"))
            .await
            .status,
        404
    );

    let r = get(&remora.url("/"), &host("root.example.com")).await;
    assert_eq!(r.status, 302);
    assert_eq!(r.headers["location"], "http://root.example.com/app1");
    assert_eq!(
        get(&remora.url("/app1"), &host("root.example.com"))
            .await
            .status,
        200
    );

    let r = get(&remora.url("/anything"), &host("old.example.com")).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.headers["location"], "https://new.example.com/here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_allow_list() {
    let (_p, _d, remora) = setup(&[
        ing(
            "local",
            "local.example.com",
            "/",
            &[("allowlist-source-range", "10.0.0.0/8, 127.0.0.0/8")],
        ),
        ing(
            "private",
            "private.example.com",
            "/",
            &[("whitelist-source-range", "10.0.0.0/8")],
        ),
        ing(
            "broken",
            "broken.example.com",
            "/",
            &[("allowlist-source-range", "127.0.0.0/8, 999.0.0.0/8")],
        ),
    ])
    .await;
    assert_eq!(
        get(&remora.url("/"), &[("host", "local.example.com")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&remora.url("/"), &[("host", "private.example.com")])
            .await
            .status,
        403
    );
    assert_eq!(
        get(&remora.url("/"), &[("host", "broken.example.com")])
            .await
            .status,
        403,
        "an invalid list fails closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_and_response_headers() {
    let (_p, _d, remora) = setup(&[
        ing("any", "any.example.com", "/", &[("enable-cors", "true")]),
        ing(
            "listed",
            "listed.example.com",
            "/",
            &[
                ("enable-cors", "true"),
                (
                    "cors-allow-origin",
                    "https://app.example.com, https://*.example.org",
                ),
                ("cors-allow-credentials", "false"),
                ("cors-max-age", "600"),
            ],
        ),
    ])
    .await;
    let r = request(
        "OPTIONS",
        &remora.url("/"),
        &[("host", "any.example.com"), ("origin", "https://x.test")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(r.headers["access-control-allow-credentials"], "true");
    assert_eq!(r.headers["access-control-max-age"], "1728000");
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "GET, PUT, POST, DELETE, PATCH, OPTIONS"
    );
    let r = get(&remora.url("/"), &[("host", "any.example.com")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["access-control-allow-origin"], "*");

    let origin = |o: &'static str| [("host", "listed.example.com"), ("origin", o)];
    let r = get(&remora.url("/"), &origin("https://shop.example.org")).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://shop.example.org"
    );
    assert!(r.headers.get("access-control-allow-credentials").is_none());
    let r = get(&remora.url("/"), &origin("https://evil.test")).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("access-control-allow-origin").is_none());
    let r = request(
        "OPTIONS",
        &remora.url("/"),
        &origin("https://app.example.com"),
        Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.headers["access-control-max-age"], "600");
}

/// A pod that speaks only TLS (self-signed, as pods usually are): `backend-protocol: HTTPS`.
async fn tls_pod() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let cert = common::tls::make_cert(&["pod.local"]);
    let key =
        <rustls_pki_types::PrivateKeyDer as rustls_pki_types::pem::PemObject>::from_pem_slice(
            cert.key_pem.as_bytes(),
        )
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.der.clone().into()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                        "hello over tls",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

/// A gRPC pod (h2c): answers every call with one length-prefixed message and the trailers
/// `grpc-status: 0`, `grpc-message: ok`.
async fn grpc_pod() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use hyper::body::Frame;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let te = req
                            .headers()
                            .get("te")
                            .map(|v| v.to_str().unwrap().to_owned());
                        let path = req.uri().path().to_owned();
                        let request = req.into_body().collect().await.unwrap().to_bytes();
                        // Echo the request message back with the method path appended.
                        let mut payload = request.slice(5..).to_vec();
                        payload.extend_from_slice(format!(" via {path} te={te:?}").as_bytes());
                        let mut message = vec![0u8];
                        message.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                        message.extend_from_slice(&payload);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", "0".parse().unwrap());
                        trailers.insert("grpc-message", "ok".parse().unwrap());
                        let frames = vec![
                            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(message))),
                            Ok(Frame::trailers(trailers)),
                        ];
                        let body =
                            http_body_util::StreamBody::new(futures_util::stream::iter(frames));
                        let resp = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                            .unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

fn pod_service(dir: &Dir, name: &str, addr: std::net::SocketAddr) {
    dir.write(&format!("{name}-svc.yaml"), &service_yaml(name));
    dir.write(
        &format!("{name}-slice.yaml"),
        &format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-x\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n- port: {}\nendpoints:\n- addresses: [\"{}\"]\n",
            addr.port(),
            addr.ip()
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_protocol_https_and_grpc() {
    let (tls_addr, _t1) = tls_pod().await;
    let (grpc_addr, _t2) = grpc_pod().await;
    let dir = Dir::new();
    pod_service(&dir, "secure", tls_addr);
    pod_service(&dir, "grpc", grpc_addr);
    let ingresses = [
        IngressYaml::new("secure")
            .nginx("backend-protocol", "HTTPS")
            .rule(Some("secure.example.com"), "/", "secure")
            .build(),
        IngressYaml::new("grpc")
            .nginx("backend-protocol", "GRPC")
            .rule(Some("grpc.example.com"), "/", "grpc")
            .build(),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    let r = get(&remora.url("/"), &[("host", "secure.example.com")]).await;
    assert_eq!(
        (r.status.as_u16(), r.body.as_str()),
        (200, "hello over tls")
    );

    // A unary gRPC call over h2c through Remora: message and trailers come back.
    let tcp = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut message = vec![0u8, 0, 0, 0, 5];
    message.extend_from_slice(b"hello");
    let req = http::Request::post("http://grpc.example.com/helloworld.Greeter/SayHello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from(message)))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("gRPC trailers come through");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "ok");
    let body = collected.to_bytes();
    let text = String::from_utf8_lossy(&body[5..]);
    assert_eq!(
        text,
        "hello via /helloworld.Greeter/SayHello te=Some(\"trailers\")"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rate_limits_per_client() {
    let two_paths = IngressYaml::new("limited")
        .nginx_all(&[("limit-rpm", "1"), ("limit-burst-multiplier", "2")])
        .rule(Some("limited.example.com"), "/a", "web")
        .rule(Some("limited.example.com"), "/b", "web")
        .build();
    let (_p, _d, remora) = setup(&[
        two_paths,
        ing(
            "exempt",
            "exempt.example.com",
            "/",
            &[("limit-rpm", "1"), ("limit-allowlist", "127.0.0.0/8")],
        ),
        ing("free", "free.example.com", "/", &[]),
    ])
    .await;
    // 1 per minute with a burst of 1 x 2: three at once, then 503 (ingress-nginx's
    // limit-req-status-code), whichever path of the Ingress and worker they reach.
    let mut codes = Vec::new();
    for path in ["/a", "/b", "/a", "/b", "/a", "/b"] {
        codes.push(
            get(&remora.url(path), &[("host", "limited.example.com")])
                .await
                .status,
        );
    }
    assert_eq!(codes, [200, 200, 200, 503, 503, 503]);
    for host in ["exempt.example.com", "free.example.com"] {
        for _ in 0..10 {
            assert_eq!(
                get(&remora.url("/"), &[("host", host)]).await.status,
                200,
                "{host}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_redirect_upstream_vhost_and_forwarded_prefix() {
    let (_p, _d, remora) = setup(&[
        ing(
            "maintenance",
            "maintenance.example.com",
            "/",
            &[
                ("temporal-redirect", "https://status.example.com/"),
                ("permanent-redirect", "https://new.example.com/"),
            ],
        ),
        ing(
            "vhost",
            "vhost.example.com",
            "/",
            &[
                ("upstream-vhost", "internal.default.svc"),
                ("x-forwarded-prefix", "/shop"),
            ],
        ),
    ])
    .await;
    let r = get(&remora.url("/x"), &[("host", "maintenance.example.com")]).await;
    assert_eq!(
        r.status, 302,
        "temporal-redirect wins over permanent-redirect"
    );
    assert_eq!(r.headers["location"], "https://status.example.com/");
    // Both upstream paths: the lean client's (GET) and hyper's (a body).
    for method in ["GET", "POST"] {
        let r = request(
            method,
            &remora.url("/echo-headers"),
            &[
                ("host", "vhost.example.com"),
                ("x-forwarded-prefix", "/spoof"),
            ],
            Bytes::from_static(b"x"),
        )
        .await;
        assert_eq!(r.status, 200, "{method}");
        let lines: Vec<&str> = r.body.lines().collect();
        for want in [
            "host: internal.default.svc",
            "x-forwarded-host: vhost.example.com",
            "x-forwarded-prefix: /shop",
        ] {
            assert!(lines.contains(&want), "{method}: {want} in {lines:?}");
        }
        assert!(!r.body.contains("/spoof"), "{method}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_hash_by_keeps_a_key_on_one_pod() {
    let (pods, _d, remora) = serve_service(
        "web",
        "web-6c7d8e9f4b",
        3,
        &[ing(
            "hashed",
            "hashed.example.com",
            "/",
            &[("upstream-hash-by", "$arg_user")],
        )],
    )
    .await;
    let pod_of = |r: &Resp| r.headers["x-pod-name"].to_str().unwrap().to_owned();
    let mut placed = std::collections::BTreeMap::new();
    for user in 0..30 {
        let url = remora.url(&format!("/?user={user}&n=1"));
        let first = pod_of(&get(&url, &[("host", "hashed.example.com")]).await);
        for n in 2..4 {
            let url = remora.url(&format!("/?n={n}&user={user}"));
            let again = pod_of(&get(&url, &[("host", "hashed.example.com")]).await);
            assert_eq!(again, first, "user {user} moved");
        }
        placed.insert(user, first);
    }
    let used: std::collections::BTreeSet<&String> = placed.values().collect();
    assert_eq!(
        used.len(),
        pods.len(),
        "keys spread over every pod: {placed:?}"
    );
}

/// ingress-nginx's e2e "should connect to the same subset of pods": 6 pods, `$request_uri`
/// hashed onto subsets of 3, 100 requests of one URI reach exactly 3 pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_hash_by_subset_keeps_a_key_on_size_pods() {
    let (pods, _d, remora) = serve_service(
        "web",
        "web-6c7d8e9f4b",
        6,
        &[
            ing(
                "subset",
                "subset.example.com",
                "/",
                &[
                    ("upstream-hash-by", "$request_uri"),
                    ("upstream-hash-by-subset", "true"),
                    ("upstream-hash-by-subset-size", "3"),
                ],
            ),
            ing(
                "default-size",
                "default.example.com",
                "/",
                &[
                    ("upstream-hash-by", "$request_uri"),
                    ("upstream-hash-by-subset", "true"),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(pods.len(), 6);
    let pod_of = |r: &Resp| r.headers["x-pod-name"].to_str().unwrap().to_owned();
    let mut everyone = std::collections::BTreeSet::new();
    for (host, uri) in [
        ("subset.example.com", "/"),
        ("subset.example.com", "/cart?id=7"),
        ("default.example.com", "/"),
    ] {
        let mut reached = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let r = get(&remora.url(uri), &[("host", host)]).await;
            assert_eq!(r.status, 200);
            reached.insert(pod_of(&r));
        }
        assert_eq!(reached.len(), 3, "{host}{uri}: {reached:?}");
        everyone.extend(reached);
    }
    // Other keys reach other subsets: every pod serves some key.
    for n in 0..100 {
        let r = get(
            &remora.url(&format!("/k{n}")),
            &[("host", "subset.example.com")],
        )
        .await;
        everyone.insert(pod_of(&r));
    }
    assert_eq!(everyone.len(), 6, "{everyone:?}");
}

/// `proxy-redirect-from`/`-to` rewrite the pod's `Location` and `Refresh`; `proxy-cookie-domain`
/// and `proxy-cookie-path` its `Set-Cookie` (not Remora's own session cookie); without them, or
/// with `off`, the pod's headers reach the client as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_redirect_and_cookie_rewrites_as_nginx() {
    let (_p, _d, remora) = serve_service(
        "web",
        "web-6c7d8e9f4b",
        1,
        &[
            ing(
                "rewrites",
                "shop.example.com",
                "/",
                &[
                    ("proxy-redirect-from", "http://web.default.svc:8080/"),
                    ("proxy-redirect-to", "https://shop.example.com/store/"),
                    ("proxy-cookie-domain", "web.default.svc shop.example.com"),
                    ("proxy-cookie-path", "/ /store/"),
                    ("affinity", "cookie"),
                ],
            ),
            ing(
                "off",
                "off.example.com",
                "/",
                &[
                    ("proxy-redirect-from", "off"),
                    ("proxy-redirect-to", "https://shop.example.com/store/"),
                    ("proxy-cookie-path", "off"),
                ],
            ),
            ing("plain", "plain.example.com", "/", &[]),
        ],
    )
    .await;
    let pod_headers = [
        ("x-respond-status", "302"),
        (
            "x-respond-location",
            "http://web.default.svc:8080/cart?id=1",
        ),
        (
            "x-respond-refresh",
            "3; url=http://web.default.svc:8080/next",
        ),
        (
            "x-respond-set-cookie",
            "sid=1; Domain=.WEB.default.svc; Path=/; HttpOnly",
        ),
    ];
    let url = remora.url("/respond-headers");
    let with_host = |host| {
        let mut h = pod_headers.to_vec();
        h.push(("host", host));
        h
    };
    let r = get(&url, &with_host("shop.example.com")).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers["location"],
        "https://shop.example.com/store/cart?id=1"
    );
    assert_eq!(
        r.headers["refresh"],
        "3; url=https://shop.example.com/store/next"
    );
    let cookies = r.set_cookies();
    assert!(
        cookies.contains(&"sid=1; Domain=.shop.example.com; Path=/store/; HttpOnly".to_owned()),
        "{cookies:?}"
    );
    // Remora's session cookie is its own, not the pod's: not rewritten.
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("INGRESSCOOKIE=") && c.contains("Path=/;")),
        "{cookies:?}"
    );
    // A Location that does not start with proxy-redirect-from is left alone.
    let mut other = with_host("shop.example.com");
    other[1] = ("x-respond-location", "http://elsewhere.example.com/");
    let r = get(&url, &other).await;
    assert_eq!(r.headers["location"], "http://elsewhere.example.com/");
    for host in ["off.example.com", "plain.example.com"] {
        let r = get(&url, &with_host(host)).await;
        assert_eq!(r.status, 302, "{host}");
        assert_eq!(
            r.headers["location"], "http://web.default.svc:8080/cart?id=1",
            "{host}"
        );
        assert_eq!(
            r.headers["refresh"], "3; url=http://web.default.svc:8080/next",
            "{host}"
        );
        assert_eq!(
            r.set_cookies(),
            ["sid=1; Domain=.WEB.default.svc; Path=/; HttpOnly"],
            "{host}"
        );
    }
}

/// `connection-proxy-header` (ingress-nginx's e2e "set connection header to keep-alive"): the pod
/// gets that `Connection`; with `close` each request is a connection of its own, with
/// `keep-alive` (and without the annotation, no header at all) connections are used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_proxy_header_is_the_pods_connection() {
    let (pods, _d, remora) = serve_service(
        "web",
        "web-6c7d8e9f4b",
        1,
        &[
            ing(
                "keep",
                "keep.example.com",
                "/",
                &[("connection-proxy-header", "keep-alive")],
            ),
            ing(
                "close",
                "close.example.com",
                "/",
                &[("connection-proxy-header", "close")],
            ),
            ing("plain", "plain.example.com", "/", &[]),
        ],
    )
    .await;
    let pod = &pods[0];
    let url = remora.url("/echo-headers");
    for (host, want) in [
        ("keep.example.com", Some("connection: keep-alive")),
        ("close.example.com", Some("connection: close")),
        ("plain.example.com", None),
    ] {
        let before = pod.connections.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..6 {
            let r = get(&url, &[("host", host)]).await;
            assert_eq!(r.status, 200, "{host}");
            let lines: Vec<&str> = r
                .body
                .lines()
                .filter(|l| l.starts_with("connection:"))
                .collect();
            assert_eq!(lines, want.into_iter().collect::<Vec<_>>(), "{host}");
        }
        let opened = pod.connections.load(std::sync::atomic::Ordering::Relaxed) - before;
        if host.starts_with("close") {
            assert_eq!(opened, 6, "{host}: one connection per request");
        } else {
            // One per worker thread at most, kept for the next requests.
            assert!(opened <= 2, "{host}: {opened} connections for 6 requests");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_to_www_redirect_as_ingress_nginx() {
    let (_p, _d, remora) = setup(&[
        ing(
            "www",
            "www.example.com",
            "/",
            &[("from-to-www-redirect", "true")],
        ),
        ing(
            "bare",
            "shop.example.com",
            "/",
            &[("from-to-www-redirect", "true")],
        ),
        // www.taken.example.com is served by its own Ingress: no redirect from it.
        ing(
            "taken",
            "taken.example.com",
            "/",
            &[("from-to-www-redirect", "true")],
        ),
        ing("taken-www", "www.taken.example.com", "/", &[]),
    ])
    .await;
    let port = remora.http.port();
    let r = get(&remora.url("/cart/?id=1"), &[("host", "example.com")]).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("http://www.example.com:{port}/cart/?id=1").as_str()
    );
    let r = get(&remora.url("/a/"), &[("host", "www.shop.example.com")]).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("http://shop.example.com:{port}/a").as_str(),
        "a trailing / is taken off, as ingress-nginx's redirect server does"
    );
    assert_eq!(
        get(&remora.url("/"), &[("host", "www.example.com")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&remora.url("/"), &[("host", "www.taken.example.com")])
            .await
            .status,
        200
    );
}

/// `service-upstream`: the Service's cluster IP is the one endpoint (here the address of the
/// second pod, standing in for kube-proxy's virtual IP), whatever the EndpointSlices list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_upstream_sends_to_the_cluster_ip() {
    let pods = pods("web-9a8b7c6d5e", 3).await;
    let dir = Dir::new();
    let port = pods[1].addr.port();
    dir.write(
        "svc.yaml",
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  clusterIP: {}\n  ports:\n  - port: {port}\n",
            pods[1].ip()
        ),
    );
    dir.write(
        "slice.yaml",
        &slice_yaml("web", "default", None, &pods.iter().collect::<Vec<_>>()),
    );
    let ingress = |name: &str, host: &str, annotations: &[(&str, &str)]| {
        web_ingress(name, host, annotations).replace("number: 80", &format!("number: {port}"))
    };
    dir.write(
        "ing.yaml",
        &[
            ingress("vip", "vip.example.com", &[("service-upstream", "true")]),
            ingress("pods", "pods.example.com", &[]),
        ]
        .join("---\n"),
    );
    let remora = Remora::serve(&[dir.path()], &[]);
    let pod_of = |r: &Resp| r.headers["x-pod-name"].to_str().unwrap().to_owned();
    let mut vip = std::collections::BTreeSet::new();
    let mut spread = std::collections::BTreeSet::new();
    for _ in 0..6 {
        vip.insert(pod_of(
            &get(&remora.url("/"), &[("host", "vip.example.com")]).await,
        ));
        spread.insert(pod_of(
            &get(&remora.url("/"), &[("host", "pods.example.com")]).await,
        ));
    }
    assert_eq!(vip.into_iter().collect::<Vec<_>>(), [pods[1].name.clone()]);
    assert_eq!(spread.len(), 3, "without it, the pods themselves");
}

/// ingress-nginx's `limit-connections` (limitconnections.go): a client's requests in flight on
/// the Ingress are limited; over it 503, or the ConfigMap's `limit-conn-status-code`. A request
/// counts until its response body ends: one whose head came but whose body is still streaming
/// keeps the next one out; once it ends (here cut by the pod's silence past
/// `proxy-read-timeout`), the client gets in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_connections_counts_requests_in_flight() {
    let (_p, dir, remora) = serve_service_with(
        "web",
        "web-0a1b2c3d4e",
        1,
        &[
            ing(
                "limited",
                "conns.example.com",
                "/",
                &[("limit-connections", "1"), ("proxy-read-timeout", "1")],
            ),
            ing("free", "free.example.com", "/", &[]),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remora\n  namespace: ingress-nginx\ndata:\n  limit-conn-status-code: \"429\"\n",
        )
        .await;
    let host = [("host", "conns.example.com")];
    // One after the other: never over the limit.
    for _ in 0..5 {
        assert_eq!(get(&remora.url("/"), &host).await.status, 200);
    }
    // A response whose body is still coming.
    let mut held = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut held,
        b"GET /stall-body HTTP/1.1\r\nhost: conns.example.com\r\n\r\n",
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("partial") {
        let mut buf = [0u8; 1024];
        let n = tokio::io::AsyncReadExt::read(&mut held, &mut buf)
            .await
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert_eq!(get(&remora.url("/"), &host).await.status, 429);
    // Another Ingress is not limited.
    let free = get(&remora.url("/"), &[("host", "free.example.com")]).await;
    assert_eq!(free.status, 200);
    // The stalled body ends (proxy-read-timeout): the count is back to zero.
    let started = std::time::Instant::now();
    loop {
        let code = get(&remora.url("/"), &host).await.status;
        if code == 200 {
            break;
        }
        assert_eq!(code, 429);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "still limited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(held);
}
