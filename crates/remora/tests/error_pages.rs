//! `default-backend` and `custom-http-errors` as ingress-nginx (its `error_page` named locations,
//! test/e2e/annotations/customhttperrors.go, default_backend.go): a listed status, the pod's or
//! Remora's own, is answered by the default backend on `/` with the `X-Code` family of headers;
//! a Service without endpoints sends its requests there; `--default-backend-service` serves
//! Ingresses without the annotation, and the ConfigMap's `custom-http-errors` is every Ingress's
//! default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

fn ingress(name: &str, host: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx_all(annotations)
        .rule(Some(host), "/", service)
        .build()
}

fn service(name: &str, pods: &[&Pod]) -> String {
    format!(
        "{}---\n{}",
        service_yaml(name),
        slice_yaml(name, "default", None, pods)
    )
}

/// The header `name` the error page saw (its body lists the request's head), lowercase name.
fn saw<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_http_errors_are_answered_by_the_default_backend() {
    let web = pods("web-7d8e9f0a1b", 1).await;
    let errors = pods("errors-7d8e9f0a1b", 1).await;
    let mut dead = pods("dead-7d8e9f0a1b", 1).await;
    let dir = Dir::new();
    dir.write(
        "services.yaml",
        &[
            service("web", &[&web[0]]),
            service("errors", &[&errors[0]]),
            service("dead", &[&dead[0]]),
            service("empty", &[]),
        ]
        .join("---\n"),
    );
    let with_errors = [
        ("default-backend", "errors"),
        ("custom-http-errors", "502,503"),
    ];
    dir.write(
        "ingresses.yaml",
        &[
            ingress("shop", "shop.example.com", "web", &with_errors),
            ingress("gone", "gone.example.com", "dead", &with_errors),
            ingress(
                "empty",
                "empty.example.com",
                "empty",
                &[("default-backend", "errors")],
            ),
            ingress("plain", "plain.example.com", "web", &[]),
            ingress(
                "global",
                "global.example.com",
                "web",
                &[("custom-http-errors", "502")],
            ),
        ]
        .join("---\n"),
    );
    let remora = Remora::serve(
        &[dir.path()],
        &["--default-backend-service", "default/errors"],
    );
    remora.wait_ready().await;
    let get_on = |host: &'static str, path: &str| {
        let url = remora.url(path);
        async move {
            get(
                &url,
                &[
                    ("host", host),
                    ("accept", "application/json"),
                    ("x-request-id", "req-1"),
                ],
            )
            .await
        }
    };

    // The pod's 502: the default backend's answer, asked on `/` with ingress-nginx's headers.
    let path = format!("/fail-if/{}?q=1", web[0].name);
    let r = get_on("shop.example.com", &path).await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body
            .starts_with(&format!("error page from {}\nGET /\n", errors[0].name)),
        "{}",
        r.body
    );
    for (name, value) in [
        ("x-code", "502"),
        ("x-format", "application/json"),
        ("x-original-uri", path.as_str()),
        ("x-namespace", "default"),
        ("x-ingress-name", "shop"),
        ("x-service-name", "web"),
        ("x-service-port", "80"),
        ("x-request-id", "req-1"),
        ("x-forwarded-for", "127.0.0.1"),
        ("host", "shop.example.com"),
    ] {
        assert_eq!(saw(&r, name), Some(value), "{name}: {}", r.body);
    }
    // A status not listed passes as it is; so do the route's successes.
    let r = get_on("shop.example.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&web[0].name));

    // Remora's own 502 (the pod is gone) is a listed status too.
    dead[0].kill();
    let r = get_on("gone.example.com", "/x").await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.starts_with("error page from"), "{}", r.body);
    assert_eq!(saw(&r, "x-service-name"), Some("dead"));

    // No endpoint at all: the request itself goes to the default backend (its own path), X-Code
    // 503.
    let r = get_on("empty.example.com", "/cart?id=2").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(
        r.body.starts_with(&format!(
            "error page from {}\nGET /cart?id=2\n",
            errors[0].name
        )),
        "{}",
        r.body
    );
    assert_eq!(saw(&r, "x-code"), Some("503"));

    // Without the annotation, nothing changes; with custom-http-errors alone,
    // --default-backend-service answers.
    let path = format!("/fail-if/{}", web[0].name);
    let r = get_on("plain.example.com", &path).await;
    assert_eq!((r.status.as_u16(), r.body.as_str()), (502, "bad gateway"));
    let r = get_on("global.example.com", &path).await;
    assert_eq!(r.status, 502);
    assert_eq!(saw(&r, "x-ingress-name"), Some("global"), "{}", r.body);
}
