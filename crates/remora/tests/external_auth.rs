//! `auth-url` through the real binary against a real authentication service on loopback, as
//! ingress-nginx's external-auth e2e cases: 2xx lets the request through with the service's
//! response headers, 401 (with its challenge, or a redirect to `auth-signin`) and 403 go back to
//! the client, anything else or no service is 500; never the pod without the service's yes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the service saw of each request: path and query, and headers as `name: value`.
type Seen = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// An authentication service: the `session` cookie decides (good: 202 with X-User and a refreshed
/// cookie; forbidden: 403; broken: 500; none: 401 with a Bearer challenge).
async fn auth_service() -> (std::net::SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let headers: Vec<String> = req
                            .headers()
                            .iter()
                            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
                            .collect();
                        let cookie = req
                            .headers()
                            .get("cookie")
                            .map(|c| c.to_str().unwrap_or("").to_owned())
                            .unwrap_or_default();
                        log.lock().unwrap().push((req.uri().to_string(), headers));
                        let mut r =
                            http::Response::new(Full::new(Bytes::from_static(b"auth says")));
                        if cookie.contains("session=good") {
                            *r.status_mut() = http::StatusCode::ACCEPTED;
                            r.headers_mut().insert("x-user", "alice".parse().unwrap());
                            r.headers_mut()
                                .insert("set-cookie", "session=good2; Path=/".parse().unwrap());
                        } else if cookie.contains("session=forbidden") {
                            *r.status_mut() = http::StatusCode::FORBIDDEN;
                            r.headers_mut()
                                .insert("set-cookie", "tried=1".parse().unwrap());
                        } else if cookie.contains("session=broken") {
                            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                        } else {
                            *r.status_mut() = http::StatusCode::UNAUTHORIZED;
                            r.headers_mut().insert(
                                "www-authenticate",
                                "Bearer realm=\"test\"".parse().unwrap(),
                            );
                        }
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_authentication_as_ingress_nginx() {
    let (auth, seen) = auth_service().await;
    let url = format!("http://{auth}/auth");
    let vars_url = format!("http://{auth}/check?h=$host&u=$escaped_request_uri");
    let (_pods, _dir, remora) = serve_service(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[
            web_ingress(
                "protected",
                "protected.example.com",
                &[("auth-url", &url), ("auth-response-headers", "X-User")],
            ),
            web_ingress(
                "signin",
                "signin.example.com",
                &[
                    ("auth-url", &url),
                    ("auth-signin", "https://login.example.com/start"),
                ],
            ),
            web_ingress(
                "down",
                "down.example.com",
                &[("auth-url", "http://127.0.0.1:9/auth")],
            ),
            web_ingress("vars", "vars.example.com", &[("auth-url", &vars_url)]),
        ],
    )
    .await;
    let at = |host: &'static str, cookie: &'static str| {
        let mut h = vec![("host", host), ("x-user", "mallory")];
        if !cookie.is_empty() {
            h.push(("cookie", cookie));
        }
        h
    };

    // No session: the service's 401 and challenge; the pod never sees the request.
    let r = get(
        &remora.url("/echo-headers"),
        &at("protected.example.com", ""),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"test\"");
    assert!(!r.body.contains("x-user"), "{}", r.body);

    // A good session: through, with the service's X-User (not the client's) and its cookie.
    let r = get(
        &remora.url("/echo-headers?a=1"),
        &at("protected.example.com", "session=good"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("x-user: alice\n"), "{}", r.body);
    assert!(!r.body.contains("mallory"), "{}", r.body);
    assert_eq!(r.set_cookies(), ["session=good2; Path=/"]);
    let pod_id = r
        .body
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap()
        .to_owned();
    let (uri, headers) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(uri, "/auth");
    for want in [
        "x-original-url: http://protected.example.com/echo-headers?a=1".to_owned(),
        "x-original-method: GET".to_owned(),
        "x-auth-request-redirect: /echo-headers?a=1".to_owned(),
        "x-sent-from: nginx-ingress-controller".to_owned(),
        "cookie: session=good".to_owned(),
        format!("x-request-id: {pod_id}"),
    ] {
        assert!(headers.contains(&want), "{want} in {headers:?}");
    }

    // A request with a body: asked without it, then proxied with it.
    let r = request(
        "POST",
        &remora.url("/echo-body"),
        &at("protected.example.com", "session=good"),
        Bytes::from_static(b"12345"),
    )
    .await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (200, "5"));

    // 403 goes back; a cookie of the service's only with auth-always-set-cookie.
    let r = get(
        &remora.url("/"),
        &at("protected.example.com", "session=forbidden"),
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(r.set_cookies().is_empty());
    // Anything else from the service, or no service: 500, never the pod.
    let r = get(
        &remora.url("/"),
        &at("protected.example.com", "session=broken"),
    )
    .await;
    assert_eq!(r.status, 500);
    let r = get(&remora.url("/"), &at("down.example.com", "session=good")).await;
    assert_eq!(r.status, 500);

    // With auth-signin, a 401 is a redirect carrying the original URL (ingress-nginx's rd).
    let r = get(
        &remora.url("/echo-headers?a=1"),
        &at("signin.example.com", ""),
    )
    .await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.headers["location"],
        "https://login.example.com/start?rd=http://signin.example.com%2Fecho-headers%3Fa%3D1"
    );

    // Variables in the URL.
    let r = get(
        &remora.url("/x%20y"),
        &at("vars.example.com", "session=good"),
    )
    .await;
    assert_eq!(r.status, 200);
    let (uri, _) = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(uri, "/check?h=vars.example.com&u=%2Fx%2520y");
}

/// The ConfigMap's `global-auth-url` (ingress-nginx's global external authentication): every
/// Ingress location without its own `auth-url` asks the service, unless its Ingress says
/// `enable-global-auth: "false"`; an Ingress's own `auth-url` wins; global settings that cannot be
/// used deny the locations they apply to (503), never serve them open. ACME HTTP-01 paths are
/// not authenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_auth_url_from_the_configmap() {
    let (auth, seen) = auth_service().await;
    let (own, _) = auth_service().await;
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-6c7d8e9f0g",
        1,
        &[
            web_ingress("guarded", "guarded.example.com", &[]),
            // cert-manager's solver Ingress for the same host.
            IngressYaml::new("acme-solver")
                .rule(
                    Some("guarded.example.com"),
                    "/.well-known/acme-challenge/token",
                    "web",
                )
                .build(),
            web_ingress(
                "public",
                "public.example.com",
                &[("enable-global-auth", "false")],
            ),
            web_ingress(
                "own",
                "own.example.com",
                &[("auth-url", &format!("http://{own}/own"))],
            ),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("global-auth-url", &format!("http://{auth}/global")),
                ("global-auth-response-headers", "X-User"),
            ]),
        )
        .await;
    let at = |host: &'static str, cookie: &'static str| {
        let url = remora.url("/echo-headers");
        async move {
            let mut headers = vec![("host", host)];
            if !cookie.is_empty() {
                headers.push(("cookie", cookie));
            }
            get(&url, &headers).await
        }
    };
    // No session: the global service's 401 and challenge; with one, the pod and X-User.
    let r = at("guarded.example.com", "").await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers.contains_key("www-authenticate"),
        "{:?}",
        r.headers
    );
    let r = at("guarded.example.com", "session=good").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("x-user: alice"), "{}", r.body);
    assert!(seen.lock().unwrap().iter().any(|(uri, _)| uri == "/global"));
    // enable-global-auth: "false": not asked.
    let asked = seen.lock().unwrap().len();
    assert_eq!(at("public.example.com", "").await.status, 200);
    assert_eq!(seen.lock().unwrap().len(), asked);
    // Its own auth-url: the global service is not asked.
    assert_eq!(at("own.example.com", "session=good").await.status, 200);
    assert_eq!(seen.lock().unwrap().len(), asked);
    // ACME HTTP-01 challenges: not asked (ingress-nginx's no-auth-locations), so certificates
    // renew.
    let r = get(
        &remora.url("/.well-known/acme-challenge/token"),
        &[("host", "guarded.example.com")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), asked);

    // A global URL that cannot be used: 503 where it applies, never the pod.
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("global-auth-url", "not a url")]),
        )
        .await;
    assert_eq!(at("guarded.example.com", "session=good").await.status, 503);
    assert_eq!(at("public.example.com", "").await.status, 200);
    remora.wait_log("global-auth-url").await;
}

/// `auth-proxy-set-headers`: the headers of the ConfigMap it names reach the service (as
/// ingress-nginx's test "should set proxy_set_header My-Custom-Header 42"), a value's nginx
/// variable rendered per request, a client's own header of that name replaced; the pod does not
/// get them. A ConfigMap that is missing denies the Ingress (503), the service never asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_proxy_set_headers_reach_the_service() {
    let (auth, seen) = auth_service().await;
    let url = format!("http://{auth}/auth");
    let (_pods, _dir, remora) = serve_service(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[
            config_map_in(
                "default",
                "auth-headers",
                &[
                    ("My-Custom-Header", "42"),
                    ("X-Client", "$remote_addr via $host"),
                ],
            ),
            web_ingress(
                "headers",
                "headers.example.com",
                &[
                    ("auth-url", &url),
                    ("auth-proxy-set-headers", "default/auth-headers"),
                ],
            ),
            web_ingress(
                "missing",
                "missing.example.com",
                &[
                    ("auth-url", &url),
                    ("auth-proxy-set-headers", "auth-headers-typo"),
                ],
            ),
        ],
    )
    .await;

    let r = get(
        &remora.url("/echo-headers"),
        &[
            ("host", "headers.example.com"),
            ("cookie", "session=good"),
            ("my-custom-header", "from-the-client"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, headers) = seen.lock().unwrap().last().cloned().unwrap();
    let values = |name: &str| -> Vec<String> {
        headers
            .iter()
            .filter_map(|h| h.strip_prefix(&format!("{name}: ")).map(str::to_owned))
            .collect()
    };
    assert_eq!(values("my-custom-header"), ["42"], "{headers:?}");
    assert_eq!(
        values("x-client"),
        ["127.0.0.1 via headers.example.com"],
        "{headers:?}"
    );
    // The pod gets the request as the client sent it.
    assert!(
        r.body.contains("my-custom-header: from-the-client"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("x-client"), "{}", r.body);

    // A missing ConfigMap: denied, the service not asked.
    let asked = seen.lock().unwrap().len();
    let r = get(
        &remora.url("/"),
        &[("host", "missing.example.com"), ("cookie", "session=good")],
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(seen.lock().unwrap().len(), asked);
    let status = remora.status().await;
    assert!(
        status["diagnostics"].as_array().unwrap().iter().any(|d| {
            d["annotation"] == "nginx.ingress.kubernetes.io/auth-proxy-set-headers"
                && d["message"]
                    .as_str()
                    .unwrap()
                    .contains("ConfigMap default/auth-headers-typo not found")
        }),
        "{status}"
    );
}
