//! TLS termination through the real binary: certificates from Secrets chosen by SNI, the default
//! certificate, rotation without restart, HTTP/2 by ALPN, sticky sessions over HTTPS with `Secure`
//! cookies, and the HTTP to HTTPS redirects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::tls::*;
use common::*;

/// An Ingress for Service `web` with these hosts, annotations and `spec.tls` entries.
fn ingress(
    name: &str,
    hosts: &[&str],
    annotations: &[(&str, &str)],
    tls: &[(&[&str], &str)],
) -> String {
    let ing = tls.iter().fold(
        IngressYaml::new(name).nginx_all(annotations),
        |i, (h, s)| i.tls(h, s),
    );
    hosts
        .iter()
        .fold(ing, |i, h| i.rule(Some(h), "/", "web"))
        .build()
}

async fn setup(files: &[(&str, String)]) -> (Vec<Pod>, Dir, Remora) {
    setup_with(files, &[]).await
}

async fn setup_with(files: &[(&str, String)], extra: &[&str]) -> (Vec<Pod>, Dir, Remora) {
    let (pods, dir) = service_dir("web", "web-5f6d7c8b9a", 3).await;
    for (name, content) in files {
        dir.write(name, content);
    }
    let remora = Remora::serve(&[dir.path()], extra);
    (pods, dir, remora)
}

/// Two hosts, two Secrets: each SNI gets its certificate (verified by a client that trusts only
/// that certificate), an unknown name gets the default one; a session sticks over HTTPS and its
/// cookie is `Secure` although `session-cookie-secure` is "false".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_by_sni_and_sticky_sessions_over_https() {
    let a = make_cert(&["a.example.com"]);
    let b = make_cert(&["*.example.org"]);
    let affinity = [("affinity", "cookie"), ("session-cookie-secure", "false")];
    let (_p, _d, remora) = setup(&[
        (
            "secrets.yaml",
            format!(
                "{}---\n{}",
                tls_secret_yaml("a-tls", &a),
                tls_secret_yaml("b-tls", &b)
            ),
        ),
        (
            "ing.yaml",
            format!(
                "{}---\n{}",
                ingress(
                    "a",
                    &["a.example.com"],
                    &affinity,
                    &[(&["a.example.com"], "a-tls")]
                ),
                ingress(
                    "b",
                    &["shop.example.org"],
                    &affinity,
                    &[(&["shop.example.org"], "b-tls")]
                ),
            ),
        ),
    ])
    .await;
    let r = https_get(
        remora.https,
        "a.example.com",
        "/",
        &[],
        Trust::Root(&a),
        false,
    )
    .await;
    assert_eq!(r.resp.status, 200, "{}", r.resp.body);
    assert_eq!(r.peer, a.der);
    // ingress-nginx's default HSTS on HTTPS responses of hosts with a certificate.
    assert_eq!(
        r.resp.headers["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let cookie = r.resp.set_cookies().join("\n");
    assert!(cookie.contains("INGRESSCOOKIE="), "{cookie}");
    assert!(
        cookie.contains("; Secure"),
        "over TLS the cookie is Secure: {cookie}"
    );
    let (name, value) = r.resp.cookie().unwrap();
    let pod = r.resp.body.clone();
    let jar = format!("{name}={value}");
    for _ in 0..10 {
        let r = https_get(
            remora.https,
            "a.example.com",
            "/",
            &[("cookie", &jar)],
            Trust::Root(&a),
            false,
        )
        .await;
        assert_eq!(r.resp.body, pod, "the session sticks over HTTPS");
        assert!(r.resp.set_cookies().is_empty());
    }
    // The plain HTTP cookie of the same route is not Secure (session-cookie-secure "false")...
    // but the host has TLS, so plain HTTP is redirected first.
    let plain = get(&remora.url("/"), &[("host", "a.example.com")]).await;
    assert_eq!(plain.status, 308);

    let r = https_get(
        remora.https,
        "shop.example.org",
        "/",
        &[],
        Trust::Root(&b),
        false,
    )
    .await;
    assert_eq!(r.resp.status, 200);
    assert_eq!(r.peer, b.der);

    let r = https_get(
        remora.https,
        "unknown.example.net",
        "/",
        &[],
        Trust::Any,
        false,
    )
    .await;
    assert!(cert_mentions(
        &r.peer,
        "Kubernetes Ingress Controller Fake Certificate"
    ));
    assert_eq!(r.resp.status, 404);
    assert!(
        r.resp.headers.get("strict-transport-security").is_none(),
        "no HSTS without a certificate of the host's own"
    );
    let plain = get(&remora.url("/"), &[("host", "a.example.com")]).await;
    assert!(plain.headers.get("strict-transport-security").is_none());
}

/// A Secret that changes is served from the next handshake on, without restart; one that goes
/// away leaves its host on the default certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_without_restart() {
    let first = make_cert(&["rotate.example.com"]);
    let second = make_cert(&["rotate.example.com"]);
    let (_p, dir, remora) = setup(&[
        ("secret.yaml", tls_secret_yaml("rotate-tls", &first)),
        (
            "ing.yaml",
            ingress(
                "rotate",
                &["rotate.example.com"],
                &[],
                &[(&["rotate.example.com"], "rotate-tls")],
            ),
        ),
    ])
    .await;
    let sni = "rotate.example.com";
    assert_eq!(
        https_get(remora.https, sni, "/", &[], Trust::Root(&first), false)
            .await
            .peer,
        first.der
    );
    let g = remora.generation().await;
    dir.write("secret.yaml", &tls_secret_yaml("rotate-tls", &second));
    remora.wait_generation_after(g).await;
    assert_eq!(
        https_get(remora.https, sni, "/", &[], Trust::Root(&second), false)
            .await
            .peer,
        second.der
    );
    let g = remora.generation().await;
    dir.write("secret.yaml", "");
    remora.wait_generation_after(g).await;
    let r = https_get(remora.https, sni, "/", &[], Trust::Any, false).await;
    assert!(cert_mentions(
        &r.peer,
        "Kubernetes Ingress Controller Fake Certificate"
    ));
    assert_eq!(
        r.resp.status, 200,
        "the host is still served, with the default certificate"
    );
    remora.wait_log("Secret default/rotate-tls not found").await;
}

/// ALPN: h2 when the client offers it, HTTP/1.1 otherwise; both reach the pods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_and_http1_by_alpn() {
    let c = make_cert(&["h2.example.com"]);
    let (_p, _d, remora) = setup(&[
        ("secret.yaml", tls_secret_yaml("h2-tls", &c)),
        (
            "ing.yaml",
            ingress(
                "h2",
                &["h2.example.com"],
                &[("affinity", "cookie")],
                &[(&["h2.example.com"], "h2-tls")],
            ),
        ),
    ])
    .await;
    let r = https_get(
        remora.https,
        "h2.example.com",
        "/echo-headers",
        &[],
        Trust::Root(&c),
        true,
    )
    .await;
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(r.resp.status, 200);
    assert!(
        r.resp.body.contains("x-forwarded-proto: https"),
        "{}",
        r.resp.body
    );
    assert!(
        r.resp.body.contains("host: h2.example.com"),
        "{}",
        r.resp.body
    );
    assert!(r.resp.set_cookies().join("").contains("; Secure"));
    let r = https_get(
        remora.https,
        "h2.example.com",
        "/",
        &[],
        Trust::Root(&c),
        false,
    )
    .await;
    assert_eq!(r.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(r.resp.status, 200);
}

/// Plain HTTP on a host with TLS gets a 308 to the same URL over HTTPS (port of the HTTPS
/// listener here), except with `ssl-redirect: "false"` and for ACME HTTP-01 challenges;
/// `force-ssl-redirect` redirects a host without TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_to_https_redirects() {
    let c = make_cert(&["*.example.com"]);
    let (_p, _d, remora) = setup(&[
        ("secret.yaml", tls_secret_yaml("wild-tls", &c)),
        (
            "ing.yaml",
            [
                ingress(
                    "tls",
                    &["tls.example.com"],
                    &[],
                    &[(&["tls.example.com"], "wild-tls")],
                ),
                ingress(
                    "no-redirect",
                    &["plain.example.com"],
                    &[("ssl-redirect", "false")],
                    &[(&["plain.example.com"], "wild-tls")],
                ),
                ingress(
                    "forced",
                    &["forced.example.com"],
                    &[("force-ssl-redirect", "true")],
                    &[],
                ),
                ingress(
                    "slash",
                    &["slash.example.com"],
                    &[
                        ("force-ssl-redirect", "true"),
                        ("preserve-trailing-slash", "true"),
                    ],
                    &[],
                ),
                ingress("none", &["none.example.com"], &[], &[]),
            ]
            .join("---\n"),
        ),
    ])
    .await;
    let port = remora.https.port();
    let r = get(&remora.url("/a/b?x=1"), &[("host", "TLS.example.com:8080")]).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("https://tls.example.com:{port}/a/b?x=1")
    );
    let r = get(
        &remora.url("/.well-known/acme-challenge/token"),
        &[("host", "tls.example.com")],
    )
    .await;
    assert_eq!(r.status, 200, "ACME challenges stay on plain HTTP");
    assert_eq!(
        get(&remora.url("/"), &[("host", "plain.example.com")])
            .await
            .status,
        200
    );
    let r = get(&remora.url("/x"), &[("host", "forced.example.com")]).await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.headers["location"],
        format!("https://forced.example.com:{port}/x")
    );
    // ingress-nginx takes a trailing / off the redirect, unless preserve-trailing-slash.
    for (host, path, want) in [
        ("forced.example.com", "/dir/", "/dir"),
        ("forced.example.com", "/", ""),
        ("forced.example.com", "/dir/?q=1", "/dir/?q=1"),
        ("slash.example.com", "/dir/", "/dir/"),
    ] {
        let r = get(&remora.url(path), &[("host", host)]).await;
        assert_eq!(
            r.headers["location"],
            format!("https://{host}:{port}{want}"),
            "{host}{path}"
        );
    }
    assert_eq!(
        get(&remora.url("/"), &[("host", "none.example.com")])
            .await
            .status,
        200
    );
    // Over HTTPS nothing redirects.
    let r = https_get(
        remora.https,
        "tls.example.com",
        "/",
        &[],
        Trust::Root(&c),
        false,
    )
    .await;
    assert_eq!(r.resp.status, 200);
}

/// `--tls-dir`: `NAME.crt`/`NAME.key` pairs are the Secrets `default/NAME` (and `NS/NAME.crt` is
/// `NS/NAME`); a renewal on disk is served without restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_dir_pem_pairs_are_secrets() {
    let first = make_cert(&["files.example.com"]);
    let renewed = make_cert(&["files.example.com"]);
    let pems = Dir::new();
    pems.write("files-tls.crt", &first.cert_pem);
    pems.write("files-tls.key", &first.key_pem);
    let tls_dir = pems.path().display().to_string();
    let (_p, _d, remora) = setup_with(
        &[(
            "ing.yaml",
            ingress(
                "files",
                &["files.example.com"],
                &[],
                &[(&["files.example.com"], "files-tls")],
            ),
        )],
        &["--tls-dir", &tls_dir],
    )
    .await;
    let sni = "files.example.com";
    let r = https_get(remora.https, sni, "/", &[], Trust::Root(&first), false).await;
    assert_eq!((r.peer == first.der, r.resp.status.as_u16()), (true, 200));
    let g = remora.generation().await;
    pems.write("files-tls.key", &renewed.key_pem);
    pems.write("files-tls.crt", &renewed.cert_pem);
    // The two files may land in two reloads: wait until the renewed pair is served.
    let started = std::time::Instant::now();
    loop {
        remora.wait_generation_after(g).await;
        let r = https_get(remora.https, sni, "/", &[], Trust::Any, false).await;
        if r.peer == renewed.der {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the renewal is not served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A bare TLS handshake with `addr` offering only `version` and the TLS 1.2 `suites` (all TLS 1.3
/// ones): the suite agreed, or the error.
async fn handshake(
    addr: std::net::SocketAddr,
    version: &'static rustls::SupportedProtocolVersion,
    suites: &[rustls::CipherSuite],
) -> Result<rustls::CipherSuite, String> {
    handshake_to(addr, "tls.example.com", version, suites).await
}

/// The same, naming `sni`. The client prefers its suites in ring's order (AES-256-GCM, AES-128-GCM,
/// ChaCha20-Poly1305), whatever the order of `suites`.
async fn handshake_to(
    addr: std::net::SocketAddr,
    sni: &str,
    version: &'static rustls::SupportedProtocolVersion,
    suites: &[rustls::CipherSuite],
) -> Result<rustls::CipherSuite, String> {
    use std::sync::Arc;
    let ring = rustls::crypto::ring::default_provider();
    let cipher_suites = ring
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13 || suites.contains(&s.suite()))
        .copied()
        .collect();
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites,
        ..ring
    });
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(proxy::NoVerify::new(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.get_ref()
        .1
        .negotiated_cipher_suite()
        .map(|s| s.suite())
        .ok_or_else(|| "no suite".to_owned())
}

/// The ConfigMap's `ssl-protocols` and `ssl-ciphers` decide the Ingress HTTPS listener's
/// handshakes, from the next reload; an invalid value is a warning and the defaults (TLS 1.2 and
/// 1.3, every suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_ssl_protocols_and_ciphers() {
    use rustls::version::{TLS12, TLS13};
    use rustls::CipherSuite::*;
    let cm = config_map;
    let aes128 = [
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    let aes256 = [
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    let (_pods, dir, remora) = setup_with(
        &[("ing.yaml", ingress("web", &["tls.example.com"], &[], &[]))],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let https = remora.https;
    assert!(handshake(https, &TLS12, &aes128).await.is_ok());
    assert!(handshake(https, &TLS13, &[]).await.is_ok());

    remora
        .rewrite(&dir, "cm.yaml", &cm(&[("ssl-protocols", "TLSv1.3")]))
        .await;
    assert!(handshake(https, &TLS12, &aes128).await.is_err());
    assert!(handshake(https, &TLS13, &[]).await.is_ok());

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &cm(&[
                ("ssl-protocols", "TLSv1 TLSv1.2"),
                (
                    "ssl-ciphers",
                    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
                ),
            ]),
        )
        .await;
    assert!(handshake(https, &TLS12, &aes128).await.is_err());
    let suite = handshake(https, &TLS12, &[aes128, aes256].concat()).await;
    assert!(aes256.iter().any(|s| suite == Ok(*s)), "{suite:?}");
    assert!(handshake(https, &TLS13, &[]).await.is_err());
    remora.wait_log("TLSv1 not supported").await;

    // Invalid: the defaults.
    remora
        .rewrite(&dir, "cm.yaml", &cm(&[("ssl-protocols", "TLSv9")]))
        .await;
    remora.wait_log("TLSv9").await;
    assert!(handshake(https, &TLS12, &aes128).await.is_ok());
    assert!(handshake(https, &TLS13, &[]).await.is_ok());
}

/// The `ssl-ciphers` and `ssl-prefer-server-ciphers` annotations: the TLS 1.2 suites of the
/// Ingress's hosts (by SNI), and whose order chooses; other hosts keep the listener's. An
/// unusable list keeps the listener's, with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_ciphers_annotation_per_host() {
    use rustls::version::{TLS12, TLS13};
    use rustls::CipherSuite::*;
    let aes128 = [
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    let chacha = [
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    let list = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    let (_pods, _dir, remora) = setup(&[
        (
            "strict.yaml",
            ingress(
                "strict",
                &["strict.example.com"],
                &[(
                    "ssl-ciphers",
                    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
                )],
                &[],
            ),
        ),
        (
            "server-order.yaml",
            ingress(
                "server-order",
                &["server-order.example.com"],
                &[("ssl-ciphers", list), ("ssl-prefer-server-ciphers", "true")],
                &[],
            ),
        ),
        (
            "client-order.yaml",
            ingress(
                "client-order",
                &["client-order.example.com"],
                &[
                    ("ssl-ciphers", list),
                    ("ssl-prefer-server-ciphers", "false"),
                ],
                &[],
            ),
        ),
        (
            "legacy.yaml",
            ingress(
                "legacy",
                &["legacy.example.com"],
                &[("ssl-ciphers", "RC4-MD5")],
                &[],
            ),
        ),
        (
            "open.yaml",
            ingress("open", &["open.example.com"], &[], &[]),
        ),
    ])
    .await;
    remora.wait_ready().await;
    let https = remora.https;
    let both = [aes128, chacha].concat();
    // The host's list only.
    let strict = "strict.example.com";
    assert!(handshake_to(https, strict, &TLS12, &aes128).await.is_err());
    let suite = handshake_to(https, strict, &TLS12, &both).await;
    assert!(chacha.iter().any(|s| suite == Ok(*s)), "{suite:?}");
    assert!(handshake_to(https, strict, &TLS13, &[]).await.is_ok());
    // Whose order chooses: the client prefers AES-128-GCM.
    let suite = handshake_to(https, "server-order.example.com", &TLS12, &both).await;
    assert!(chacha.iter().any(|s| suite == Ok(*s)), "{suite:?}");
    let suite = handshake_to(https, "client-order.example.com", &TLS12, &both).await;
    assert!(aes128.iter().any(|s| suite == Ok(*s)), "{suite:?}");
    // Other hosts, unknown names and an unusable list: the listener's (every suite).
    for sni in [
        "open.example.com",
        "unknown.example.com",
        "legacy.example.com",
    ] {
        let suite = handshake_to(https, sni, &TLS12, &aes128).await;
        assert!(aes128.iter().any(|s| suite == Ok(*s)), "{sni}: {suite:?}");
    }
    remora.wait_log("RC4-MD5").await;
    let r = https_get(https, strict, "/", &[], Trust::Any, false).await;
    assert_eq!(r.resp.status.as_u16(), 200);
}
