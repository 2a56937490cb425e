//! Security annotations never serve a route open, through the real binary: an Ingress asking for
//! authentication Remora cannot do (yet, or with these values, such as basic authentication whose
//! Secret is missing) answers 503 (as ingress-nginx answers a location it cannot configure) and
//! says why in `/status` (client certificates whose Secret is missing: 403, ingress-nginx's
//! server `return 403`); `denylist-source-range` is honoured before the allow-list, and an
//! invalid one denies the route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_annotations_fail_closed() {
    let (_pods, _dir, remora) = serve_service(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[
            web_ingress("open", "open.example.com", &[]),
            web_ingress(
                "external",
                "external.example.com",
                &[("auth-url", "ftp://127.0.0.1:9/check")],
            ),
            web_ingress(
                "basic",
                "basic.example.com",
                &[("auth-type", "basic"), ("auth-secret", "htpasswd")],
            ),
            web_ingress(
                "mtls",
                "mtls.example.com",
                &[
                    ("auth-tls-secret", "default/ca"),
                    ("auth-tls-verify-client", "on"),
                ],
            ),
            web_ingress(
                "mtls-off",
                "mtls-off.example.com",
                &[
                    ("auth-tls-secret", "default/ca"),
                    ("auth-tls-verify-client", "off"),
                ],
            ),
            web_ingress(
                "denied-here",
                "deny-local.example.com",
                // The deny-list wins over an allow-list that also matches, as nginx's `deny` lines
                // come first.
                &[
                    ("denylist-source-range", "127.0.0.0/8"),
                    ("allowlist-source-range", "127.0.0.0/8"),
                ],
            ),
            web_ingress(
                "denied-elsewhere",
                "deny-other.example.com",
                &[("denylist-source-range", "10.0.0.0/8, 192.168.0.0/16")],
            ),
            web_ingress(
                "deny-typo",
                "deny-typo.example.com",
                &[("denylist-source-range", "127.0.0.0/8, 300.1.2.3")],
            ),
        ],
    )
    .await;
    let cases = [
        ("open.example.com", 200, "no security annotation"),
        (
            "external.example.com",
            503,
            "an auth-url that cannot be used is not served open",
        ),
        (
            "basic.example.com",
            503,
            "basic authentication whose Secret is missing is not served open",
        ),
        (
            "mtls.example.com",
            403,
            "an auth-tls-secret whose Secret is missing is not served open (ingress-nginx's 403)",
        ),
        (
            "mtls-off.example.com",
            403,
            "even with verification off, as ingress-nginx",
        ),
        ("deny-local.example.com", 403, "denylist before allowlist"),
        ("deny-other.example.com", 200, "client outside the denylist"),
        (
            "deny-typo.example.com",
            503,
            "an invalid denylist fails closed",
        ),
    ];
    for (host, want, why) in cases {
        for method in ["GET", "POST", "OPTIONS"] {
            let r = request(
                method,
                &remora.url("/"),
                &[("host", host)],
                bytes::Bytes::from_static(b"x"),
            )
            .await;
            assert_eq!(r.status, want, "{method} {host}: {why}");
            if want != 200 {
                assert!(
                    !r.body.contains("web-6c7d8e9f4a"),
                    "{method} {host}: the pod answered: {}",
                    r.body
                );
            }
        }
    }
    let status = remora.status().await;
    let says = |ingress: &str, annotation: &str, code: &str| {
        status["diagnostics"].as_array().unwrap().iter().any(|d| {
            d["object"]
                .as_str()
                .is_some_and(|o| o.ends_with(&format!("/{ingress}")))
                && d["annotation"] == format!("nginx.ingress.kubernetes.io/{annotation}")
                && d["message"].as_str().unwrap().contains(code)
        })
    };
    let said = |ingress: &str, annotation: &str| says(ingress, annotation, "503");
    assert!(said("external", "auth-url"), "{status}");
    assert!(said("basic", "auth-secret"), "{status}");
    assert!(says("mtls", "auth-tls-secret", "403"), "{status}");
    assert!(said("deny-typo", "denylist-source-range"), "{status}");
}
