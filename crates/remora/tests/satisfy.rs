//! `satisfy` through the real binary, as nginx's `satisfy` directive that ingress-nginx sets:
//! with `any`, a request that passes the source ranges, a user's password or the authentication
//! service is let through; with `all` (the default) it must pass each. The case of ingress-nginx's
//! e2e test (test/e2e/annotations/satisfy.go: basic authentication and `auth-url` with
//! `auth-signin`) against a real authentication service; allow- and deny-lists under `any` (a
//! denylisted client with a password passes, as in nginx, whose `deny` is the access module's
//! refusal like any other); 401 rather than 403 when nothing granted; an invalid value: 503.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine;
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// An authentication service: `session=good` 200, `session=forbidden` 403, else 401. Counts
/// the requests it was asked.
async fn auth_service() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let cookie = req
                            .headers()
                            .get("cookie")
                            .and_then(|c| c.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let mut r = http::Response::new(Full::new(Bytes::from_static(b"auth")));
                        *r.status_mut() = if cookie.contains("session=good") {
                            http::StatusCode::OK
                        } else if cookie.contains("session=forbidden") {
                            http::StatusCode::FORBIDDEN
                        } else {
                            http::StatusCode::UNAUTHORIZED
                        };
                        async move { Ok::<_, std::convert::Infallible>(r) }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, asked)
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn satisfy_any_and_all_as_nginx() {
    let (_pods, dir) = service_dir("web", "web-5f6d7c8b9a", 1).await;
    let (auth, asked) = auth_service().await;
    let auth_url = format!("http://{auth}/basic-auth/user/password");
    // uname:pwd ({PLAIN}, as ingress-nginx's test makes it with htpasswd).
    dir.write(
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: basic-secret\n  namespace: default\ntype: Opaque\nstringData:\n  auth: \"uname:{PLAIN}pwd\"\n",
    );
    let basic_auth = [
        ("auth-type", "basic"),
        ("auth-secret", "basic-secret"),
        ("auth-realm", "test basic auth"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all: Vec<(&str, &str)> = basic_auth.to_vec();
        all.extend_from_slice(extra);
        all
    };
    let ingresses = [
        // ingress-nginx's e2e case.
        web_ingress(
            "auth",
            "auth",
            &[
                basic_auth.as_slice(),
                &[
                    ("auth-url", auth_url.as_str()),
                    ("auth-signin", "http://$host/auth/start"),
                    ("satisfy", "any"),
                ],
            ]
            .concat(),
        ),
        web_ingress(
            "far",
            "far.example.com",
            &with(&[("satisfy", "any"), ("allowlist-source-range", "10.0.0.0/8")]),
        ),
        web_ingress(
            "near",
            "near.example.com",
            &with(&[
                ("satisfy", "any"),
                ("allowlist-source-range", "127.0.0.0/8"),
            ]),
        ),
        web_ingress(
            "denied",
            "denied.example.com",
            &with(&[("satisfy", "any"), ("denylist-source-range", "127.0.0.1")]),
        ),
        web_ingress(
            "all",
            "all.example.com",
            &with(&[("allowlist-source-range", "10.0.0.0/8")]),
        ),
        web_ingress(
            "service",
            "service.example.com",
            &[
                ("satisfy", "any"),
                ("allowlist-source-range", "10.0.0.0/8"),
                ("auth-url", auth_url.as_str()),
            ],
        ),
        web_ingress(
            "ranges",
            "ranges.example.com",
            &[("satisfy", "any"), ("allowlist-source-range", "10.0.0.0/8")],
        ),
        web_ingress(
            "invalid",
            "invalid.example.com",
            &with(&[("satisfy", "either")]),
        ),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);
    fn at<'a>(host: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![("host", host)];
        h.extend_from_slice(extra);
        h
    }
    let uname = basic("uname", "pwd");
    let creds = [("authorization", uname.as_str())];

    // ingress-nginx's case: the password alone is enough (the service is not asked)...
    let r = get(&remora.url("/"), &at("auth", &creds)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("web-5f6d7c8b9a"));
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the service was asked");
    // ...so is the service's yes...
    let r = get(&remora.url("/"), &at("auth", &[("cookie", "session=good")])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ...and without either, the service's 401 becomes the redirect to sign in.
    let r = get(&remora.url("/?a=b&c=d"), &at("auth", &[])).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        "http://auth/auth/start?rd=http://auth%2F%3Fa%3Db%26c%3Dd"
    );

    // An allow-list that does not take the client: the password lets it through; without one,
    // 401 (the authentication's refusal, not the allow-list's 403).
    let r = get(&remora.url("/"), &at("far.example.com", &creds)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&remora.url("/"), &at("far.example.com", &[])).await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"test basic auth\""
    );
    // One that takes it: no password needed.
    let r = get(&remora.url("/"), &at("near.example.com", &[])).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // A deny-list that names it: as nginx, the password still lets it through.
    let r = get(&remora.url("/"), &at("denied.example.com", &creds)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(&remora.url("/"), &at("denied.example.com", &[])).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // all (the default): the allow-list comes first (nginx's access module before auth_basic),
    // and the password does not make up for it.
    let r = get(&remora.url("/"), &at("all.example.com", &creds)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get(&remora.url("/"), &at("all.example.com", &[])).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // any with the service alone: its yes passes, its 403 stands (nothing else granted).
    let r = get(
        &remora.url("/"),
        &at("service.example.com", &[("cookie", "session=good")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get(
        &remora.url("/"),
        &at("service.example.com", &[("cookie", "session=forbidden")]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // any with only source ranges: they decide.
    let r = get(&remora.url("/"), &at("ranges.example.com", &creds)).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // An invalid value: denied, never served.
    let r = get(&remora.url("/"), &at("invalid.example.com", &creds)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let status = remora.status().await;
    assert!(
        status["diagnostics"].as_array().unwrap().iter().any(|d| {
            d["annotation"] == "nginx.ingress.kubernetes.io/satisfy"
                && d["message"].as_str().unwrap().contains("503")
        }),
        "{status}"
    );
}
