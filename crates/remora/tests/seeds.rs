//! Both seed documents end to end: their manifests verbatim, plus the EndpointSlices a cluster
//! would derive, served by the real `remora serve` process; then the seeds' curl loops.

mod common;
use common::*;
use std::collections::BTreeSet;

/// Seed 002: `what-is-my-pod`, v1 Ingress without host, cookie `stickounet`, 172800 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_cookie_jar_loop_always_reaches_the_same_pod() {
    let pods = pods("what-is-my-pod-deployment-78f7cd684f", 3).await;
    let dir = seed_002_dir(&pods);
    let remora = Remora::serve(&[dir.path()], &[]);

    // The seed's loop: `curl --cookie cookie.txt --cookie-jar cookie.txt http://$INGRESS_URL`.
    let mut jar = Session::default();
    let first = jar.get(&remora.url("/")).await;
    assert_eq!(first.status, 200);
    assert!(first
        .body
        .starts_with("Hello \"what-is-my-pod-deployment-78f7cd684f-"));
    let set = first.set_cookies();
    assert_eq!(set.len(), 1, "{set:?}");
    let attrs: Vec<&str> = set[0].split("; ").collect();
    assert!(attrs[0].starts_with("stickounet="), "{set:?}");
    assert!(
        attrs[1].starts_with("Expires=") && attrs[1].ends_with(" GMT"),
        "{set:?}"
    );
    assert_eq!(
        &attrs[2..],
        ["Max-Age=172800", "Path=/", "HttpOnly"],
        "{set:?}"
    );
    for _ in 0..5 {
        let r = jar.get(&remora.url("/")).await;
        assert_eq!(r.body, first.body, "the session moved");
        assert!(
            r.set_cookies().is_empty(),
            "cookie re-set on a sticky request"
        );
    }

    // Cookie-less requests spread over every pod.
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        seen.insert(get(&remora.url("/anything"), &[]).await.body);
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// Seed 000: the legacy `extensions/v1beta1` Ingress with host DOMAIN, a named servicePort, TLS,
/// persistent mode and the ignored `session-cookie-hash`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_legacy_ingress_is_served_verbatim() {
    let pods = pods("deno-hello-7c9d8f6b5-x", 5).await;
    let dir = seed_000_dir(&pods);
    let remora = Remora::serve(&[dir.path()], &[]);

    let mut jar = Session::with_host("DOMAIN");
    let first = jar.get(&remora.url("/")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let (name, value) = first.cookie().expect("a session cookie");
    assert_eq!(name, "deno-hello-cookie");
    assert_eq!(value.len(), 35);
    assert!(
        first.set_cookies()[0].ends_with("; Max-Age=172800; Path=/; HttpOnly"),
        "{:?}",
        first.set_cookies()
    );
    for _ in 0..10 {
        assert_eq!(jar.get(&remora.url("/")).await.body, first.body);
    }
    // The cookie reveals no pod address.
    for p in &pods {
        assert!(!value.contains(&p.ip()));
    }
    // Host matching is case-insensitive and ignores the port; other hosts get 404.
    let r = get(&remora.url("/"), &[("host", "domain:8080")]).await;
    assert_eq!(r.status, 200);
    let r = get(&remora.url("/"), &[("host", "other.example")]).await;
    assert_eq!(r.status, 404);

    // The TLS Secret is not in the seed (cert-manager makes it): said, not fatal; HTTPS gets the
    // default certificate meanwhile.
    let status = remora.status().await;
    let diags = status["diagnostics"].to_string();
    assert!(
        diags.contains("Secret default/deno-hello-tls not found"),
        "{diags}"
    );
    assert!(diags.contains("session-cookie-hash"), "{diags}");
    assert!(!diags.contains("ssl-redirect"), "{diags}");

    // With the Secret (a self-signed certificate for DOMAIN), HTTPS on DOMAIN presents it and the
    // session sticks there too; plain HTTP is not redirected (ssl-redirect "false").
    use common::tls::*;
    let cert = make_cert(&["DOMAIN"]);
    let g = remora.generation().await;
    dir.write("secret.yaml", &tls_secret_yaml("deno-hello-tls", &cert));
    remora.wait_generation_after(g).await;
    let first = https_get(remora.https, "DOMAIN", "/", &[], Trust::Root(&cert), false).await;
    assert_eq!(first.peer, cert.der);
    assert_eq!(first.resp.status, 200);
    let (name, value) = first.resp.cookie().expect("a session cookie");
    assert!(first.resp.set_cookies()[0].contains("; Secure"));
    let jar = format!("{name}={value}");
    for _ in 0..5 {
        let r = https_get(
            remora.https,
            "DOMAIN",
            "/",
            &[("cookie", &jar)],
            Trust::Root(&cert),
            false,
        )
        .await;
        assert_eq!(r.resp.body, first.resp.body);
    }
    assert_eq!(
        get(&remora.url("/"), &[("host", "DOMAIN")]).await.status,
        200
    );
}

/// The repository's copies of the seed manifests are the seeds' YAML, byte for byte.
#[test]
fn repository_seeds_are_verbatim() {
    let shared =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds/manifests");
    if !shared.exists() {
        eprintln!("skipped: {} is not beside this checkout", shared.display());
        return;
    }
    for name in ["seed-000-deno-hello.yaml", "seed-002-what-is-my-pod.yaml"] {
        let original = std::fs::read_to_string(shared.join(name)).unwrap();
        assert_eq!(seed(name), original, "{name} differs from the seed");
    }
}
