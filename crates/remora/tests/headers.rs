//! Headers from ConfigMaps through the real binary, replaying ingress-nginx's e2e cases
//! (`test/e2e/annotations/customheaders.go`, `test/e2e/settings/global_headers... `): the
//! `custom-headers` annotation, and the global ConfigMap's `add-headers`, `proxy-set-headers`,
//! `hide-headers`, `http-redirect-code` and `generate-request-id`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

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
    let custom = config_map_in(
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

    let global = config_map_in(
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
    let changed = config_map_in("default", "custom-headers", &[("My-Custom-Header", "43")]);
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
        config_map_in(
            "ingress-nginx",
            "remora",
            &[
                ("add-headers", "ingress-nginx/add"),
                ("proxy-set-headers", "ingress-nginx/set"),
            ],
        ),
        config_map_in(
            "ingress-nginx",
            "add",
            &[("X-Frame-Options", "DENY"), ("X-Served-By", "remora")],
        ),
        config_map_in(
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
        config_map_in("ingress-nginx", "add", &[("X-Served-By", "remora-2")]),
        objects[2].clone(),
    ];
    remora
        .rewrite(&dir, "cm.yaml", &objects.join("---\n"))
        .await;
    let r = get(&remora.url("/"), &[("host", "plain.example.com")]).await;
    assert_eq!(r.headers["x-served-by"], "remora-2");
    assert!(r.headers.get("x-frame-options").is_none());
}

/// `hide-headers` (the pods' headers clients do not get), `http-redirect-code` (the status of the
/// redirect to HTTPS, 308 by default) and `generate-request-id` (an X-Request-ID made for a
/// request without one; `"false"`: the client's only), each changed by a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hide_headers_redirect_code_and_request_id() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-9f0a1b2c3d",
        1,
        &[
            web_ingress("plain", "plain.example.com", &[]),
            web_ingress(
                "forced",
                "forced.example.com",
                &[("force-ssl-redirect", "true")],
            ),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let plain = [("host", "plain.example.com")];
    let r = get(&remora.url("/"), &plain).await;
    assert!(r.headers.get("x-pod-name").is_some(), "{:?}", r.headers);
    let r = get(&remora.url("/"), &[("host", "forced.example.com")]).await;
    assert_eq!(r.status, 308);
    let saw = get(&remora.url("/echo-headers"), &plain).await.body;
    assert!(saw.to_ascii_lowercase().contains("x-request-id: "), "{saw}");

    let cm = config_map_in(
        "ingress-nginx",
        "remora",
        &[
            ("hide-headers", "X-Pod-Name"),
            ("http-redirect-code", "301"),
            ("generate-request-id", "false"),
        ],
    );
    remora.rewrite(&dir, "cm.yaml", &cm).await;
    let r = get(&remora.url("/"), &plain).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("x-pod-name").is_none(), "{:?}", r.headers);
    let r = get(&remora.url("/x?a=1"), &[("host", "forced.example.com")]).await;
    assert_eq!(r.status, 301);
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("https://forced.example.com"),
        "{:?}",
        r.headers
    );
    // No id made, on the lean client's head and on the rewritten one (a request with a body).
    let saw = get(&remora.url("/echo-headers"), &plain).await.body;
    assert!(!saw.to_ascii_lowercase().contains("x-request-id"), "{saw}");
    let saw = request(
        "POST",
        &remora.url("/echo-headers"),
        &plain,
        bytes::Bytes::from_static(b"body"),
    )
    .await
    .body;
    assert!(!saw.to_ascii_lowercase().contains("x-request-id"), "{saw}");
    // The client's own still goes through.
    let saw = get(
        &remora.url("/echo-headers"),
        &[("host", "plain.example.com"), ("x-request-id", "abc123")],
    )
    .await
    .body;
    assert!(
        saw.to_ascii_lowercase().contains("x-request-id: abc123"),
        "{saw}"
    );
}
