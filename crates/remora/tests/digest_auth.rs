//! `auth-type: digest` through the real binary, as ingress-nginx configures nginx's `auth_digest`
//! (the nginx-http-auth-digest module): no credentials, a wrong password or an unknown user get
//! 401 with the module's challenge (`Digest algorithm="MD5", qop="auth", realm="...",
//! nonce="..."`) and nginx's "401 Authorization Required"; curl's `--digest` with a user's
//! password reaches the pod, which does not see the credentials. Responses computed here check
//! what curl does not: the request target against `uri` (with the module's allowance for a query),
//! a nonce Remora did not issue, a replayed nonce count, the nonce count limit (`stale="true"`),
//! `auth-map`. A missing
//! Secret is denied (503); ACME HTTP-01 paths are not authenticated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use md5::{Digest, Md5};

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An htdigest line, as `htdigest` writes it.
fn htdigest(user: &str, realm: &str, password: &str) -> String {
    format!(
        "{user}:{realm}:{}",
        md5_hex(&format!("{user}:{realm}:{password}"))
    )
}

fn secret_yaml(name: &str, data: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: Opaque\nstringData:\n"
    );
    for (k, v) in data {
        yaml.push_str(&format!("  {k}: {v:?}\n"));
    }
    yaml
}

/// curl's answer to the challenge: status and body.
async fn curl_digest(url: String, host: &str, user: &str, password: &str) -> (u16, String) {
    let host = format!("Host: {host}");
    let credentials = format!("{user}:{password}");
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["-s", "--digest", "-u", &credentials, "-H", &host])
            .args(["-w", "\n%{http_code}", &url])
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_owned())
    })
    .await
    .unwrap()
}

/// The parameters of a `Digest` challenge.
fn param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    let at = challenge.find(&format!("{name}=\""))? + name.len() + 2;
    let len = challenge[at..].find('"')?;
    Some(&challenge[at..at + len])
}

/// The `Authorization` a client sends for `method uri` with this nonce and count.
fn authorization(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: u32,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:4a7f2c:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, response=\"{response}\", qop=auth, nc={nc}, cnonce=\"4a7f2c\""
    )
}

fn assert_challenged(r: &Resp, realm: &str, stale: bool, why: &str) {
    assert_eq!(r.status, 401, "{why}: {}", r.body);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    let prefix = format!("Digest algorithm=\"MD5\", qop=\"auth\", realm=\"{realm}\", nonce=\"");
    assert!(challenge.starts_with(&prefix), "{why}: {challenge}");
    assert_eq!(
        challenge.ends_with(", stale=\"true\""),
        stale,
        "{why}: {challenge}"
    );
    assert!(r.body.contains("401 Authorization Required"), "{why}");
    assert!(
        !r.body.contains("web-5f6d7c8b9a"),
        "{why}: the pod answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_auth_as_ingress_nginx() {
    let (_pods, dir) = service_dir("web", "web-5f6d7c8b9a", 1).await;
    let lines = format!(
        "# htdigest -c users Staff alice\n{}\n{}\n",
        htdigest("alice", "Staff", "a-secret"),
        htdigest("bob", "Other", "b-secret"),
    );
    dir.write("secret.yaml", &secret_yaml("htdigest", &[("auth", &lines)]));
    let frank = htdigest("frank", "Staff", "f-secret");
    let frank_value = frank.strip_prefix("frank:").unwrap();
    dir.write(
        "map.yaml",
        &secret_yaml("digest-map", &[("frank", frank_value)]),
    );
    let ingresses = [
        IngressYaml::new("staff")
            .nginx_all(&[
                ("auth-type", "digest"),
                ("auth-secret", "htdigest"),
                ("auth-realm", "Staff"),
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
                ("auth-type", "digest"),
                ("auth-secret", "digest-map"),
                ("auth-secret-type", "auth-map"),
                ("auth-realm", "Staff"),
            ])
            .rule(Some("map.example.com"), "/", "web")
            .build(),
        IngressYaml::new("missing")
            .nginx_all(&[
                ("auth-type", "digest"),
                ("auth-secret", "nowhere"),
                ("auth-realm", "Staff"),
            ])
            .rule(Some("missing.example.com"), "/", "web")
            .build(),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);
    let staff = "staff.example.com";

    // No credentials, Basic ones: the challenge.
    let r = get(&remora.url("/"), &[("host", staff)]).await;
    assert_challenged(&r, "Staff", false, "no credentials");
    let r = get(
        &remora.url("/"),
        &[
            ("host", staff),
            ("authorization", "Basic YWxpY2U6YS1zZWNyZXQ="),
        ],
    )
    .await;
    assert_challenged(&r, "Staff", false, "Basic credentials");

    // curl answers the challenge.
    let (code, body) = curl_digest(remora.url("/echo-headers"), staff, "alice", "a-secret").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("uri: /echo-headers"), "{body}");
    assert!(
        !body.to_ascii_lowercase().contains("authorization:"),
        "the pod got the credentials: {body}"
    );
    let (code, _) = curl_digest(remora.url("/"), staff, "alice", "wrong").await;
    assert_eq!(code, 401, "a wrong password");
    let (code, _) = curl_digest(remora.url("/"), staff, "zoe", "a-secret").await;
    assert_eq!(code, 401, "no such user");
    let (code, _) = curl_digest(remora.url("/"), staff, "bob", "b-secret").await;
    assert_eq!(code, 401, "a user of another realm");
    let (code, body) = curl_digest(remora.url("/"), "map.example.com", "frank", "f-secret").await;
    assert_eq!(code, 200, "auth-map: {body}");
    let (code, _) = curl_digest(remora.url("/"), "map.example.com", "alice", "a-secret").await;
    assert_eq!(code, 401, "users of another Secret");

    // Responses computed here, on a nonce of a challenge.
    let r = get(&remora.url("/"), &[("host", staff)]).await;
    let challenge = r.headers["www-authenticate"].to_str().unwrap().to_owned();
    let nonce = param(&challenge, "nonce").unwrap();
    let answer = |uri: &str, nonce: &str, nc: u32| {
        authorization("alice", "Staff", "a-secret", "GET", uri, nonce, nc)
    };
    let with = |target: &str, auth: String| {
        let url = remora.url(target);
        async move { get(&url, &[("host", staff), ("authorization", &auth)]).await }
    };
    let r = with("/a?x=1", answer("/a?x=1", nonce, 1)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The same nonce again, with the next count (a browser's next request).
    let r = with("/a?x=1", answer("/a?x=1", nonce, 2)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The same request again: a replay, refused as the module refuses a count used before.
    let r = with("/a?x=1", answer("/a?x=1", nonce, 2)).await;
    assert_challenged(&r, "Staff", false, "a replayed count");
    // The module's allowance: uri without the query.
    let r = with("/a?x=1", answer("/a", nonce, 3)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The answer for another target.
    let r = with("/b", answer("/a", nonce, 4)).await;
    assert_challenged(&r, "Staff", false, "uri of another target");
    // A nonce Remora did not issue.
    let forged = format!("{}{}", &nonce[..24], "0".repeat(24));
    let r = with("/a", answer("/a", &forged, 1)).await;
    assert_challenged(&r, "Staff", false, "a forged nonce");
    // 20 uses of a nonce: stale, so the client asks again without prompting.
    let r = with("/a", answer("/a", nonce, 20)).await;
    assert_challenged(&r, "Staff", true, "the 20th count");
    // ...but a wrong password is never stale.
    let wrong = authorization("alice", "Staff", "wrong", "GET", "/a", nonce, 20);
    let r = with("/a", wrong).await;
    assert_challenged(&r, "Staff", false, "a wrong password");

    // ACME HTTP-01 challenges are answered without credentials.
    let r = get(
        &remora.url("/.well-known/acme-challenge/token"),
        &[("host", staff)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // A missing Secret: denied, never served open.
    let (code, body) =
        curl_digest(remora.url("/"), "missing.example.com", "alice", "a-secret").await;
    assert_eq!(code, 503, "{body}");
    let status = remora.status().await;
    assert!(
        status["diagnostics"].as_array().unwrap().iter().any(|d| {
            d["object"]
                .as_str()
                .is_some_and(|o| o.ends_with("/missing"))
                && d["annotation"] == "nginx.ingress.kubernetes.io/auth-secret"
                && d["message"].as_str().unwrap().contains("503")
        }),
        "{status}"
    );
    // HA1s never show.
    let snapshot = get(&format!("http://{}/snapshot", remora.admin), &[])
        .await
        .body;
    assert!(snapshot.contains("default/htdigest"), "{snapshot}");
    assert!(!snapshot.contains(frank_value), "HA1 in /snapshot");
}
