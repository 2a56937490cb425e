//! The Gateway API's fields of the snapshot on the real request path: a `Proxy` serving a
//! hand-made snapshot on loopback, pods that echo what they got, plain HTTP/1.1 clients. (The
//! translation from HTTPRoute objects has its own fixtures; these check what the proxy does with
//! its output.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use balance::CookieKey;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use model::{
    Affinity, AffinityMode, Backend, BackendId, Conditions, Endpoint, EndpointId, Filters,
    HeaderEdits, HostMatch, Location, Mirror, ObjectRef, PathModifier, PathType, RequestRedirect,
    Route, Snapshot, Target, UrlRewrite, ValueMatch, VirtualHost, WeightedBackend,
};
use remora_proxy::{Proxy, ProxyConfig};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A pod answering `pod=NAME`, its request line and headers; `/slow` paths after 2 s. Counts
/// the requests it got.
async fn pod(name: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if req.uri().path().starts_with("/slow") {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                        let mut text = format!("pod={name}\n{} {}\n", req.method(), req.uri());
                        for (k, v) in req.headers() {
                            text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                        }
                        let mut r = Response::new(Full::new(Bytes::from(text)));
                        r.headers_mut().insert("x-pod", name.parse().unwrap());
                        r.headers_mut().insert("x-drop", "1".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (addr, count)
}

fn backend(name: &str, id: u64, addr: SocketAddr) -> Backend {
    Backend {
        name: name.into(),
        endpoints: vec![Endpoint {
            id: EndpointId(id),
            addr,
            ready: true,
            serving: true,
            terminating: false,
            pod: None,
        }],
    }
}

fn route(path: &str, path_type: PathType, location: Location) -> Route {
    Route {
        path: path.into(),
        path_type,
        target: Target {
            backend: None,
            affinity: None,
            location: Arc::new(location),
            ingress: ObjectRef::new("HTTPRoute", "default", "web"),
            default_backend: None,
        },
        canary: None,
        https_redirect: false,
        conditions: None,
        backends: vec![WeightedBackend {
            backend: Some(BackendId(0)),
            weight: 1,
        }],
    }
}

fn filtered(f: Filters) -> Location {
    Location {
        filters: Some(Box::new(f)),
        ..Location::default()
    }
}

/// The proxy's address, serving `routes` (backends: `v1`, `v2`, `mirror`) on any host.
async fn proxy(routes: Vec<Route>) -> (SocketAddr, Arc<AtomicUsize>) {
    let (v1, _) = pod("v1").await;
    let (v2, _) = pod("v2").await;
    let (mirror, mirrored) = pod("mirror").await;
    let snapshot = Snapshot {
        hosts: vec![VirtualHost {
            host: HostMatch::Any,
            routes,
            default: None,
            tls: None,
            client_auth: None,
            client_auth_error: None,
            passthrough: None,
            ssl_ciphers: None,
        }]
        .into(),
        backends: vec![
            backend("default/v1:80", 1, v1),
            backend("default/v2:80", 2, v2),
            backend("default/mirror:80", 3, mirror),
        ]
        .into_iter()
        .map(Into::into)
        .collect(),
        ..Snapshot::default()
    };
    let proxy = Proxy::new(ProxyConfig::new(CookieKey::from_secret(b"gateway"))).unwrap();
    proxy.publish(snapshot, Vec::new(), Duration::ZERO);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        proxy
            .serve_http(listener, std::future::pending::<()>())
            .await;
    });
    (addr, mirrored)
}

/// A response: status, headers (names lowercase), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD target` with `headers`, on a connection of its own.
async fn get(proxy: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nhost: gw.example.com:8080\r\nconnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

#[tokio::test]
async fn conditions_choose_the_route() {
    let mut by_header = route("/", PathType::Prefix, Location::default());
    by_header.conditions = Some(Box::new(Conditions {
        method: Some("GET".into()),
        headers: vec![ValueMatch {
            name: "version".into(),
            value: "two".into(),
            regex: false,
        }],
        query: Vec::new(),
    }));
    by_header.backends[0].backend = Some(BackendId(1));
    let regex = route(
        "/items/[0-9]+",
        PathType::RegularExpression,
        Location::default(),
    );
    let mut regex = regex;
    regex.backends[0].backend = Some(BackendId(1));
    let (proxy, _) = proxy(vec![
        by_header,
        regex,
        route("/", PathType::Prefix, Location::default()),
    ])
    .await;
    assert!(get(proxy, "GET", "/a", &[("version", "two")])
        .await
        .body
        .starts_with("pod=v2"));
    assert!(get(proxy, "POST", "/a", &[("version", "two")])
        .await
        .body
        .starts_with("pod=v1"));
    assert!(get(proxy, "GET", "/a", &[("version", "one")])
        .await
        .body
        .starts_with("pod=v1"));
    assert!(get(proxy, "GET", "/items/12", &[])
        .await
        .body
        .starts_with("pod=v2"));
    assert!(get(proxy, "GET", "/items/12/x", &[])
        .await
        .body
        .starts_with("pod=v1"));
}

#[tokio::test]
async fn redirects_rewrites_and_header_edits() {
    let redirect = Route {
        backends: Vec::new(),
        ..route(
            "/original-prefix",
            PathType::Prefix,
            filtered(Filters {
                redirect: Some(RequestRedirect {
                    scheme: None,
                    hostname: Some("example.org".into()),
                    port: None,
                    path: Some(PathModifier::Prefix("/replacement-prefix".into())),
                    status: 301,
                }),
                ..Filters::default()
            }),
        )
    };
    let rewrite = route(
        "/prefix/one",
        PathType::Prefix,
        filtered(Filters {
            rewrite: Some(UrlRewrite {
                hostname: Some("internal.example".into()),
                path: Some(PathModifier::Prefix("/one".into())),
            }),
            request_headers: HeaderEdits {
                set: vec![("x-header-set".into(), "set-overwrites-values".into())],
                add: vec![("x-header-add".into(), "header-val-1".into())],
                remove: vec!["x-header-remove".into()],
            },
            response_headers: HeaderEdits {
                set: vec![("x-pod".into(), "edited".into())],
                remove: vec!["x-drop".into()],
                ..HeaderEdits::default()
            },
            ..Filters::default()
        }),
    );
    let (proxy, _) = proxy(vec![redirect, rewrite]).await;
    let r = get(proxy, "GET", "/original-prefix/lemon?a=1", &[]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some("http://example.org:8080/replacement-prefix/lemon?a=1")
    );
    // GET without a body takes the lean head; POST with one the rewritten head: the same edits.
    for method in ["GET", "POST"] {
        let r = get(
            proxy,
            method,
            "/prefix/one/two?q=1",
            &[
                ("x-header-set", "set-val"),
                ("x-header-remove", "remove-val"),
                ("content-length", "0"),
            ],
        )
        .await;
        assert_eq!(r.status, 200, "{method}: {}", r.body);
        assert!(
            r.body.contains(&format!("{method} /one/two?q=1\n")),
            "{}",
            r.body
        );
        assert!(
            r.body.contains("x-header-set: set-overwrites-values\n"),
            "{}",
            r.body
        );
        assert!(
            r.body.contains("x-header-add: header-val-1\n"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("x-header-remove"), "{}", r.body);
        assert!(r.body.contains("host: internal.example\n"), "{}", r.body);
        assert!(
            r.body.contains("x-forwarded-host: gw.example.com:8080\n"),
            "{}",
            r.body
        );
        assert_eq!(r.header("x-pod"), Some("edited"));
        assert_eq!(r.header("x-drop"), None);
    }
}

#[tokio::test]
async fn weighted_backends_keep_header_sessions_and_answer_500_when_invalid() {
    let mut sticky = route("/sticky", PathType::Prefix, Location::default());
    sticky.backends = vec![
        WeightedBackend {
            backend: Some(BackendId(0)),
            weight: 1,
        },
        WeightedBackend {
            backend: Some(BackendId(1)),
            weight: 1,
        },
    ];
    sticky.target.affinity = Some(Arc::new(Affinity {
        header: Some("x-session".into()),
        scope: Affinity::scope_of("HTTPRoute default/web rules[0]"),
        ..Affinity::new("unused", AffinityMode::Persistent)
    }));
    let mut broken = route("/broken", PathType::Prefix, Location::default());
    broken.backends = vec![WeightedBackend {
        backend: None,
        weight: 1,
    }];
    let mut zero = route("/zero", PathType::Prefix, Location::default());
    zero.backends[0].weight = 0;
    let (proxy, _) = proxy(vec![sticky, broken, zero]).await;
    assert_eq!(get(proxy, "GET", "/broken", &[]).await.status, 500);
    assert_eq!(get(proxy, "GET", "/zero", &[]).await.status, 500);
    // New sessions go by weight (1:1): both backends get some of 40.
    let mut pods = std::collections::HashSet::new();
    for _ in 0..40 {
        let r = get(proxy, "GET", "/sticky", &[]).await;
        pods.insert(r.body.lines().next().unwrap().to_owned());
    }
    assert_eq!(pods.len(), 2, "{pods:?}");
    let first = get(proxy, "GET", "/sticky", &[]).await;
    let session = first
        .header("x-session")
        .expect("a session header")
        .to_owned();
    assert!(first.header("set-cookie").is_none());
    let pod = first.body.lines().next().unwrap().to_owned();
    for _ in 0..10 {
        let again = get(proxy, "GET", "/sticky", &[("x-session", &session)]).await;
        assert_eq!(again.body.lines().next().unwrap(), pod);
        assert!(
            again.header("x-session").is_none(),
            "an honoured session is not re-sent"
        );
    }
}

#[tokio::test]
async fn timeouts_answer_504() {
    let request = route(
        "/slow/request",
        PathType::Prefix,
        filtered(Filters {
            request_timeout_ms: Some(300),
            ..Filters::default()
        }),
    );
    let backend = route(
        "/slow/backend",
        PathType::Prefix,
        filtered(Filters {
            backend_timeout_ms: Some(300),
            ..Filters::default()
        }),
    );
    let (proxy, _) = proxy(vec![request, backend]).await;
    for path in ["/slow/request", "/slow/backend"] {
        let started = std::time::Instant::now();
        assert_eq!(get(proxy, "GET", path, &[]).await.status, 504, "{path}");
        assert!(started.elapsed() < Duration::from_millis(1500), "{path}");
    }
}

#[tokio::test]
async fn mirrors_get_a_copy() {
    let mirrored = route(
        "/",
        PathType::Prefix,
        filtered(Filters {
            mirrors: vec![Mirror {
                backend: BackendId(2),
                percent: 100,
            }],
            ..Filters::default()
        }),
    );
    let (proxy, copies) = proxy(vec![mirrored]).await;
    let r = get(proxy, "GET", "/copied", &[]).await;
    assert!(r.body.starts_with("pod=v1"));
    for _ in 0..100 {
        if copies.load(Ordering::SeqCst) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mirror got no copy");
}
