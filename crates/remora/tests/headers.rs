//! Headers from ConfigMaps through the real binary, replaying ingress-nginx's e2e cases
//! (`test/e2e/annotations/customheaders.go`, `test/e2e/settings/global_headers... `): the
//! `custom-headers` annotation, and the global ConfigMap's `add-headers`, `proxy-set-headers`,
//! `hide-headers`, `http-redirect-code` and `generate-request-id`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

fn config_map(namespace: &str, name: &str, data: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n"
    );
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

/// customheaders.go: a `custom-headers` ConfigMap that is missing denies the Ingress (503); once
/// it exists and `global-allowed-response-headers` lists its headers, every response of the
/// Ingress carries them, values as written (`$remote_addr` is literal); other Ingresses do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_annotation() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-7d8e9f0a1b",
        1,
        &[
            web_ingress(
                "custom",
                "custom-headers",
                &[("custom-headers", "default/custom-headers")],
            ),
            web_ingress("plain", "plain.example.com", &[]),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let r = get(&remora.url("/"), &[("host", "custom-headers")]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    remora
        .wait_log("ConfigMap default/custom-headers not found")
        .await;

    // The ConfigMap exists, but its headers are not allowed yet: still denied.
    let custom = config_map(
        "default",
        "custom-headers",
        &[
            ("My-Custom-Header", "42"),
            ("My-Custom-Header-Dollar", "$remote_addr"),
        ],
    );
    remora.rewrite(&dir, "custom.yaml", &custom).await;
    let r = get(&remora.url("/"), &[("host", "custom-headers")]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    remora.wait_log("global-allowed-response-headers").await;

    let global = config_map(
        "ingress-nginx",
        "remora",
        &[(
            "global-allowed-response-headers",
            "My-Custom-Header,My-Custom-Header-Dollar",
        )],
    );
    remora.rewrite(&dir, "cm.yaml", &global).await;
    let r = get(&remora.url("/"), &[("host", "custom-headers")]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["my-custom-header"], "42");
    assert_eq!(r.headers["my-custom-header-dollar"], "$remote_addr");
    // Only that Ingress's responses.
    let r = get(&remora.url("/"), &[("host", "plain.example.com")]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers.get("my-custom-header").is_none(),
        "{:?}",
        r.headers
    );

    // A changed ConfigMap is a reload like any other object.
    let changed = config_map("default", "custom-headers", &[("My-Custom-Header", "43")]);
    remora.rewrite(&dir, "custom.yaml", &changed).await;
    let r = get(&remora.url("/"), &[("host", "custom-headers")]).await;
    assert_eq!(r.headers["my-custom-header"], "43");
    assert!(r.headers.get("my-custom-header-dollar").is_none());
}

/// `add-headers`: every response (a pod's, and Remora's own 404) gets the ConfigMap's headers.
/// `proxy-set-headers`: every request to a pod gets its headers, variables rendered; an empty
/// value removes the client's header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_headers_and_proxy_set_headers() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-8e9f0a1b2c",
        1,
        &[web_ingress("plain", "plain.example.com", &[])],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let objects = [
        config_map(
            "ingress-nginx",
            "remora",
            &[
                ("add-headers", "ingress-nginx/add"),
                ("proxy-set-headers", "ingress-nginx/set"),
            ],
        ),
        config_map(
            "ingress-nginx",
            "add",
            &[("X-Frame-Options", "DENY"), ("X-Served-By", "remora")],
        ),
        config_map(
            "ingress-nginx",
            "set",
            &[
                ("X-Client", "$remote_addr via $scheme"),
                ("X-Team", "blue"),
                ("X-Secret", ""),
            ],
        ),
    ];
    remora
        .rewrite(&dir, "cm.yaml", &objects.join("---\n"))
        .await;
    let r = get(
        &remora.url("/echo-headers"),
        &[
            ("host", "plain.example.com"),
            ("x-team", "red"),
            ("x-secret", "hunter2"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["x-served-by"], "remora");
    let saw: Vec<String> = r.body.lines().map(str::to_ascii_lowercase).collect();
    assert!(
        saw.contains(&"x-client: 127.0.0.1 via http".to_owned()),
        "{saw:?}"
    );
    assert!(saw.contains(&"x-team: blue".to_owned()), "{saw:?}");
    assert!(!saw.iter().any(|l| l.starts_with("x-team: red")), "{saw:?}");
    assert!(!saw.iter().any(|l| l.starts_with("x-secret")), "{saw:?}");
    // Remora's own answer (no such host).
    let r = get(&remora.url("/"), &[("host", "nowhere.example.com")]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["x-served-by"], "remora");

    // The referenced ConfigMap changes: the next configuration has it.
    let objects = [
        objects[0].clone(),
        config_map("ingress-nginx", "add", &[("X-Served-By", "remora-2")]),
        objects[2].clone(),
    ];
    remora
        .rewrite(&dir, "cm.yaml", &objects.join("---\n"))
        .await;
    let r = get(&remora.url("/"), &[("host", "plain.example.com")]).await;
    assert_eq!(r.headers["x-served-by"], "remora-2");
    assert!(r.headers.get("x-frame-options").is_none());
}
