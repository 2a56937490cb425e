//! `auth-type: basic` through the real binary, as ingress-nginx's tests of it
//! (test/e2e/annotations/auth.go) and nginx's `auth_basic`: no credentials or wrong ones get 401
//! with `WWW-Authenticate: Basic realm="<auth-realm>"` and nginx's "401 Authorization Required";
//! a user of the Secret with its password reaches the pod, which does not see the credentials
//! (ingress-nginx's `proxy_set_header Authorization ""`). Each hash form htpasswd writes is
//! checked. A route without authentication is unaffected; digest authentication without a realm is
//! denied (503).
//! A changed Secret takes effect at the next reload; in controller mode, Opaque Secrets are
//! watched.
//!
//! The hashes were made by Apache's htpasswd (`-B -C 5`, `-m`, `-s`, `-d`) and `openssl passwd`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use base64::Engine;
use common::apiserver::FakeApi;
use common::*;
use std::time::{Duration, Instant};

const BCRYPT: &str = "$2y$05$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei"; // b-secret
const APR1: &str = "$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg."; // a-secret
const SHA: &str = "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="; // s-secret
const DES: &str = "TmysUhiINs0js"; // d-secret
const MD5: &str = "$1$Qx3kP9aZ$pTKnXjzLQt.iAnL2HecS1."; // m-secret

/// Each user, the form of its hash, its password.
const USERS: [(&str, &str, &str); 5] = [
    ("alice", BCRYPT, "b-secret"),
    ("bob", APR1, "a-secret"),
    ("carol", SHA, "s-secret"),
    ("dave", DES, "d-secret"),
    ("erin", MD5, "m-secret"),
];

/// An Opaque Secret whose `auth` key holds these htpasswd lines (base64, as the API has it).
fn htpasswd_secret(name: &str, lines: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(lines);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: Opaque\ndata:\n  auth: {data}\n"
    )
}

fn all_users() -> String {
    let mut lines = String::from("# made with htpasswd\n");
    for (user, hash, _) in USERS {
        lines.push_str(&format!("{user}:{hash}\n"));
    }
    // A hash of no known form: the line is skipped, with a warning.
    lines.push_str("mallory:plaintext\n");
    lines
}

/// An `auth-map` Secret: one key per user.
fn map_secret() -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: users\n  namespace: default\ntype: Opaque\nstringData:\n  frank: \"{APR1}\"\n"
    )
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

async fn get_as(remora: &Remora, host: &str, path: &str, authorization: Option<&str>) -> Resp {
    let mut headers = vec![("host", host)];
    if let Some(a) = authorization {
        headers.push(("authorization", a));
    }
    get(&remora.url(path), &headers).await
}

/// The 401 of nginx's `auth_basic`, and no pod behind it.
fn assert_challenged(r: &Resp, realm: &str, why: &str) {
    assert_eq!(r.status, 401, "{why}: {}", r.body);
    assert_eq!(
        r.headers["www-authenticate"],
        format!("Basic realm=\"{realm}\"").as_str(),
        "{why}"
    );
    assert!(
        r.body.contains("401 Authorization Required"),
        "{why}: {}",
        r.body
    );
    assert!(
        !r.body.contains("web-5f6d7c8b9a"),
        "{why}: the pod answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_as_ingress_nginx() {
    let (_pods, dir) = service_dir("web", "web-5f6d7c8b9a", 1).await;
    dir.write("secret.yaml", &htpasswd_secret("htpasswd", &all_users()));
    dir.write("map.yaml", &map_secret());
    let ingresses = [
        IngressYaml::new("staff")
            .nginx_all(&[
                ("auth-type", "basic"),
                ("auth-secret", "htpasswd"),
                ("auth-realm", "Staff only"),
            ])
            .rule(Some("staff.example.com"), "/", "web")
            .rule(
                Some("staff.example.com"),
                "/.well-known/acme-challenge",
                "web",
            )
            .build(),
        IngressYaml::new("map")
            .nginx_all(&[
                ("auth-type", "basic"),
                ("auth-secret", "default/users"),
                ("auth-secret-type", "auth-map"),
            ])
            .rule(Some("map.example.com"), "/", "web")
            .build(),
        IngressYaml::new("open")
            .rule(Some("open.example.com"), "/", "web")
            .build(),
        IngressYaml::new("digest")
            .nginx_all(&[("auth-type", "digest"), ("auth-secret", "htpasswd")])
            .rule(Some("digest.example.com"), "/", "web")
            .build(),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);
    let staff = "staff.example.com";

    let r = get_as(&remora, staff, "/", None).await;
    assert_challenged(&r, "Staff only", "no credentials");
    let wrong = basic("alice", "a-secret");
    let r = get_as(&remora, staff, "/", Some(&wrong)).await;
    assert_challenged(&r, "Staff only", "another user's password");
    let r = get_as(&remora, staff, "/", Some(&basic("zoe", "b-secret"))).await;
    assert_challenged(&r, "Staff only", "no such user");
    let r = get_as(&remora, staff, "/", Some(&basic("mallory", "plaintext"))).await;
    assert_challenged(
        &r,
        "Staff only",
        "a line of an unknown hash form is skipped",
    );
    let r = get_as(&remora, staff, "/", Some("Bearer abc")).await;
    assert_challenged(&r, "Staff only", "not Basic");
    // A body does not change the answer.
    let r = request(
        "POST",
        &remora.url("/"),
        &[("host", staff)],
        bytes::Bytes::from_static(b"payload"),
    )
    .await;
    assert_challenged(&r, "Staff only", "a POST without credentials");

    for (user, hash, password) in USERS {
        let auth = basic(user, password);
        let r = get_as(&remora, staff, "/echo-headers", Some(&auth)).await;
        assert_eq!(r.status, 200, "{user} ({hash}): {}", r.body);
        assert!(
            !r.body.to_ascii_lowercase().contains("authorization:"),
            "the pod got the credentials: {}",
            r.body
        );
        // Again: a browser sends them with every request (the second one is taken from the
        // cache of verified credentials).
        let r = get_as(&remora, staff, "/", Some(&auth)).await;
        assert_eq!(r.status, 200, "{user} again");
        assert!(r.body.contains("web-5f6d7c8b9a"));
        let r = get_as(&remora, staff, "/", Some(&basic(user, "wrong"))).await;
        assert_eq!(r.status, 401, "{user} with a wrong password");
    }

    // ACME HTTP-01 challenges are answered without credentials (ingress-nginx's
    // no-auth-locations), so certificates renew.
    let r = get_as(&remora, staff, "/.well-known/acme-challenge/token", None).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // auth-map, `namespace/name`, and the empty realm of an Ingress without auth-realm.
    let r = get_as(&remora, "map.example.com", "/", None).await;
    assert_challenged(&r, "", "auth-map without credentials");
    let r = get_as(
        &remora,
        "map.example.com",
        "/",
        Some(&basic("frank", "a-secret")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get_as(
        &remora,
        "map.example.com",
        "/",
        Some(&basic("alice", "b-secret")),
    )
    .await;
    assert_eq!(r.status, 401, "users of another Secret");

    // A route without authentication: no challenge, and a client's Authorization goes on to
    // the pod as any header.
    let r = get_as(&remora, "open.example.com", "/", None).await;
    assert_eq!(r.status, 200);
    assert!(r.headers.get("www-authenticate").is_none());
    let r = get_as(
        &remora,
        "open.example.com",
        "/echo-headers",
        Some("Bearer for-the-app"),
    )
    .await;
    assert!(
        r.body.contains("authorization: Bearer for-the-app"),
        "{}",
        r.body
    );

    // Digest authentication without a realm (the module would be off) is not served open.
    let r = get_as(
        &remora,
        "digest.example.com",
        "/",
        Some(&basic("alice", "b-secret")),
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(!r.body.contains("web-5f6d7c8b9a"));

    let status = remora.status().await;
    let warned = |ingress: &str, annotation: &str, text: &str| {
        status["diagnostics"].as_array().unwrap().iter().any(|d| {
            d["object"]
                .as_str()
                .is_some_and(|o| o.ends_with(&format!("/{ingress}")))
                && d["annotation"] == format!("nginx.ingress.kubernetes.io/{annotation}")
                && d["message"].as_str().unwrap().contains(text)
        })
    };
    assert!(warned("staff", "auth-secret", "mallory"), "{status}");
    assert!(warned("digest", "auth-realm", "503"), "{status}");
    // Hashes never show.
    let snapshot = get(&format!("http://{}/snapshot", remora.admin), &[])
        .await
        .body;
    assert!(snapshot.contains("default/htpasswd"), "{snapshot}");
    for (_, hash, _) in USERS {
        assert!(!snapshot.contains(hash), "{hash} in /snapshot");
        assert!(!status.to_string().contains(hash), "{hash} in /status");
    }

    // A changed Secret takes effect with the next configuration, cached credentials included.
    let alice = basic("alice", "b-secret");
    assert_eq!(get_as(&remora, staff, "/", Some(&alice)).await.status, 200);
    remora
        .rewrite(
            &dir,
            "secret.yaml",
            &htpasswd_secret("htpasswd", &format!("alice:{SHA}\n")),
        )
        .await;
    let r = get_as(&remora, staff, "/", Some(&alice)).await;
    assert_challenged(
        &r,
        "Staff only",
        "the old password after the Secret changed",
    );
    let r = get_as(&remora, staff, "/", Some(&basic("alice", "s-secret"))).await;
    assert_eq!(r.status, 200, "the new password: {}", r.body);
    let r = get_as(&remora, staff, "/", Some(&basic("bob", "a-secret"))).await;
    assert_eq!(r.status, 401, "a user taken out of the Secret");

    // The Secret removed: the route is denied, never served open.
    let g = remora.generation().await;
    std::fs::remove_file(dir.path().join("secret.yaml")).unwrap();
    remora.wait_generation_after(g).await;
    let r = get_as(&remora, staff, "/", Some(&basic("alice", "s-secret"))).await;
    assert_eq!(r.status, 503, "{}", r.body);
}

/// In controller mode the users come from the Opaque Secrets Remora watches (besides TLS ones);
/// Secrets of other types are not read, so an Ingress naming one is denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reads_opaque_secrets() {
    let pods = pods("web-5f6d7c8b9a", 1).await;
    let api = FakeApi::start().await;
    let dir = Dir::new();
    api.apply(CLASS);
    api.apply(&service_yaml("web"));
    api.apply(&slice_yaml("web", "default", None, &[&pods[0]]));
    api.apply(&htpasswd_secret("htpasswd", &format!("alice:{BCRYPT}\n")));
    api.apply(
        &htpasswd_secret("token", &format!("alice:{BCRYPT}\n"))
            .replace("type: Opaque", "type: kubernetes.io/service-account-token"),
    );
    for (name, secret) in [("staff", "htpasswd"), ("token", "token")] {
        api.apply(
            &IngressYaml::new(name)
                .nginx_all(&[("auth-type", "basic"), ("auth-secret", secret)])
                .rule(Some(&format!("{name}.example.com")), "/", "web")
                .build()
                .replace("spec:\n", "spec:\n  ingressClassName: remora\n"),
        );
    }
    let kubeconfig = api.kubeconfig(&dir).display().to_string();
    let mut args: Vec<String> = ["controller", "--kubeconfig", &kubeconfig, "--workers", "2"]
        .map(String::from)
        .to_vec();
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    let remora = Remora::start(&args);
    remora.wait_ready().await;

    let staff = "staff.example.com";
    let r = get_as(&remora, staff, "/", None).await;
    assert_challenged(&r, "", "no credentials");
    let r = get_as(&remora, staff, "/", Some(&basic("alice", "b-secret"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = get_as(
        &remora,
        "token.example.com",
        "/",
        Some(&basic("alice", "b-secret")),
    )
    .await;
    assert_eq!(r.status, 503, "a Secret of another type is not read");

    // The Secret changes at the API server: the new password works, the old one no more.
    api.apply(&htpasswd_secret("htpasswd", &format!("alice:{APR1}\n")));
    let started = Instant::now();
    loop {
        let r = get_as(&remora, staff, "/", Some(&basic("alice", "a-secret"))).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 401);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the changed Secret never took effect"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = get_as(&remora, staff, "/", Some(&basic("alice", "b-secret"))).await;
    assert_eq!(r.status, 401);
}
