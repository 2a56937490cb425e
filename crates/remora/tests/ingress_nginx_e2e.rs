//! ingress-nginx's own end-to-end affinity suites, replayed against Remora:
//! `test/e2e/annotations/affinity.go`, `affinitymode.go` and the "canary affinity behavior" cases
//! of `canary.go`, case by case, with the same annotations, requests and assertions on status and
//! `Set-Cookie` (ingress-nginx asserts with "contains").

#![allow(clippy::expect_used)]

mod common;
use common::*;
use std::time::SystemTime;

/// `framework.NewSingleIngress(name, path, host, ns, "echo", 80, annotations)`: pathType Prefix.
fn single_ingress(name: &str, path: &str, host: &str, annotations: &[(&str, &str)]) -> String {
    ingress_to("echo", name, path, host, annotations)
}

/// The same for another Service.
fn ingress_to(
    service: &str,
    name: &str,
    path: &str,
    host: &str,
    annotations: &[(&str, &str)],
) -> String {
    IngressYaml::new(name)
        .nginx_all(annotations)
        .rule(Some(host), path, service)
        .build()
}

/// The suite's BeforeEach: an echo deployment with 2 replicas.
async fn setup(replicas: usize, ingresses: &[String]) -> (Vec<Pod>, Dir, Remora) {
    serve_service("echo", "echo-6b7c8d9f5b", replicas, ingresses).await
}

async fn get_host(remora: &Remora, host: &str, path: &str) -> Resp {
    get(&remora.url(path), &[("host", host)]).await
}

fn set_cookie(r: &Resp) -> String {
    r.set_cookies().join("\n")
}

const SERVERID: (&str, &str) = ("session-cookie-name", "SERVERID");
const COOKIE: (&str, &str) = ("affinity", "cookie");

/// A request of a case and what its response must show.
struct Get {
    /// The Host header; empty: none (the client sends the address it connects to).
    host: &'static str,
    path: &'static str,
    status: u16,
    /// Each of these is in the `Set-Cookie` headers.
    has: Vec<&'static str>,
    /// None of these is.
    lacks: Vec<&'static str>,
    /// There is no `Set-Cookie` at all.
    no_cookie: bool,
}

/// `GET path` with Host `host`, answered 200.
fn get_ok(host: &'static str, path: &'static str) -> Get {
    Get {
        host,
        path,
        status: 200,
        has: Vec::new(),
        lacks: Vec::new(),
        no_cookie: false,
    }
}

impl Get {
    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn has(mut self, text: &'static str) -> Self {
        self.has.push(text);
        self
    }

    fn lacks(mut self, text: &'static str) -> Self {
        self.lacks.push(text);
        self
    }

    fn no_cookie(mut self) -> Self {
        self.no_cookie = true;
        self
    }
}

/// Send `g` and assert everything it expects (`it` names the case in failures); the response.
async fn check(remora: &Remora, it: &str, g: &Get) -> Resp {
    let r = if g.host.is_empty() {
        get(&remora.url(g.path), &[]).await
    } else {
        get_host(remora, g.host, g.path).await
    };
    let (host, path, c) = (g.host, g.path, set_cookie(&r));
    assert_eq!(r.status, g.status, "{it}: GET {host}{path}");
    for text in &g.has {
        assert!(
            c.contains(text),
            "{it}: GET {host}{path}: expected {text:?} in Set-Cookie {c:?}"
        );
    }
    for text in &g.lacks {
        assert!(
            !c.contains(text),
            "{it}: GET {host}{path}: expected no {text:?} in Set-Cookie {c:?}"
        );
    }
    if g.no_cookie {
        assert!(
            r.set_cookies().is_empty(),
            "{it}: GET {host}{path}: expected no Set-Cookie, got {c:?}"
        );
    }
    r
}

/// The cases of affinity.go that are the suite's set-up with some Ingresses, then requests
/// asserting status and `Set-Cookie`: one row each, named by upstream's `It`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn affinity_cookie_attributes() {
    // Upstream's "last one wins" bug (#14042) must not happen: each path gets its own cookie Path.
    let more_than_one_rule = single_ingress("morethanonerule", "/something", "morethanonerule.foo.com", &[COOKIE, SERVERID]).replace(
        "      - path: /something\n",
        "      - path: /somewhereelse\n        pathType: Prefix\n        backend:\n          service:\n            name: echo\n            port:\n              number: 80\n      - path: /something\n",
    );
    let cases: Vec<(&str, Vec<String>, Vec<Get>)> = vec![
        (
            "should set sticky cookie SERVERID",
            vec![single_ingress(
                "sticky",
                "/",
                "sticky.foo.com",
                &[COOKIE, SERVERID],
            )],
            vec![get_ok("sticky.foo.com", "/").has("SERVERID=")],
        ),
        (
            "should set the path to /something on the generated cookie",
            vec![single_ingress(
                "path",
                "/something",
                "path.foo.com",
                &[COOKIE, SERVERID],
            )],
            vec![get_ok("path.foo.com", "/something").has("Path=/something")],
        ),
        (
            "does not set the path to / on the generated cookie if there's more than one rule \
             referring to the same backend",
            vec![more_than_one_rule],
            vec![
                get_ok("morethanonerule.foo.com", "/something").has("Path=/something"),
                get_ok("morethanonerule.foo.com", "/somewhereelse").has("Path=/somewhereelse"),
            ],
        ),
        (
            "should set cookie with domain",
            vec![single_ingress(
                "cookiedomain",
                "/",
                "cookiedomain.foo.com",
                &[
                    COOKIE,
                    ("session-cookie-name", "DomainCookie"),
                    ("session-cookie-domain", "foo.bar"),
                ],
            )],
            vec![get_ok("cookiedomain.foo.com", "/").has("Domain=foo.bar")],
        ),
        (
            "should not set cookie without domain annotation",
            vec![single_ingress(
                "cookienodomain",
                "/",
                "cookienodomain.foo.com",
                &[COOKIE, ("session-cookie-name", "NoDomainCookie")],
            )],
            vec![get_ok("cookienodomain.foo.com", "/")
                .has("NoDomainCookie=")
                .lacks("; Domain")],
        ),
        (
            "should work with use-regex annotation and session-cookie-path",
            vec![single_ingress(
                "useregex.foo.com",
                "/foo/.*",
                "useregex.foo.com",
                &[
                    COOKIE,
                    SERVERID,
                    ("use-regex", "true"),
                    ("session-cookie-path", "/foo/bar"),
                ],
            )],
            vec![
                get_ok("useregex.foo.com", "/foo/bar")
                    .has("Path=/foo/bar")
                    .has("SERVERID="),
                // And the path really is a regex: `/foo/.*` does not match `/foo` (a prefix
                // would).
                get_ok("useregex.foo.com", "/foo").status(404),
            ],
        ),
        (
            "should not set affinity across all server locations when using separate ingresses",
            vec![
                single_ingress("ingress1", "/foo/bar", "separate.foo.com", &[COOKIE]),
                single_ingress("ingress2", "/foo", "separate.foo.com", &[]),
            ],
            vec![
                get_ok("separate.foo.com", "/foo").no_cookie(),
                get_ok("separate.foo.com", "/foo/bar").has("Path=/foo/bar"),
            ],
        ),
        (
            "should set sticky cookie without host",
            vec![single_ingress(
                "default-no-host",
                "/",
                "",
                &[COOKIE, SERVERID],
            )],
            vec![get_ok("", "/").has("SERVERID=")],
        ),
        (
            "should work with server-alias annotation",
            vec![single_ingress(
                "alias",
                "/bar",
                "foo.com",
                &[COOKIE, SERVERID, ("server-alias", "a1.foo.com,a2.foo.com")],
            )],
            ["foo.com", "a1.foo.com", "a2.foo.com"]
                .map(|host| get_ok(host, "/bar").has("SERVERID="))
                .into(),
        ),
        (
            "should set secure in cookie with provided true annotation on http",
            vec![single_ingress(
                "secure",
                "/bar",
                "foo.com",
                &[COOKIE, SERVERID, ("session-cookie-secure", "true")],
            )],
            vec![get_ok("foo.com", "/bar").has("; Secure")],
        ),
        (
            "should not set secure in cookie with provided false annotation on http",
            vec![single_ingress(
                "secure",
                "/bar",
                "foo.com",
                &[COOKIE, SERVERID, ("session-cookie-secure", "false")],
            )],
            vec![get_ok("foo.com", "/bar").lacks("; Secure")],
        ),
    ];
    for (it, ingresses, gets) in cases {
        let (_p, _d, remora) = setup(2, &ingresses).await;
        for g in &gets {
            check(&remora, it, g).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_change_cookie_name_on_ingress_definition_change() {
    let it = "should change cookie name on ingress definition change";
    let ingress = |name| {
        single_ingress(
            "change",
            "/",
            "change.foo.com",
            &[COOKIE, ("session-cookie-name", name)],
        )
    };
    let (_p, dir, remora) = setup(2, &[ingress("SERVERID")]).await;
    check(&remora, it, &get_ok("change.foo.com", "/").has("SERVERID")).await;
    remora
        .rewrite(&dir, "ing.yaml", &ingress("OTHERCOOKIENAME"))
        .await;
    check(
        &remora,
        it,
        &get_ok("change.foo.com", "/").has("OTHERCOOKIENAME"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_cookie_with_expires() {
    let annotations = [
        COOKIE,
        ("session-cookie-name", "ExpiresCookie"),
        ("session-cookie-expires", "172800"),
        ("session-cookie-max-age", "259200"),
    ];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "cookieexpires",
            "/",
            "cookieexpires.foo.com",
            &annotations,
        )],
    )
    .await;
    let before = SystemTime::now();
    let r = check(
        &remora,
        "should set cookie with expires",
        &get_ok("cookieexpires.foo.com", "/").has("Max-Age=259200"),
    )
    .await;
    // Upstream compares to the minute ("Mon, 02-Jan-06 15:04"); either minute around the request.
    let minute = |t: SystemTime| {
        let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 172_800;
        let mut s = String::new();
        balance::cookie::cookie_time(&mut s, secs);
        s[..s.len() - 7].to_owned() // drop ":SS GMT"
    };
    let c = set_cookie(&r);
    let expected = [minute(before), minute(SystemTime::now())];
    assert!(
        expected.iter().any(|m| c.contains(&format!("Expires={m}"))),
        "{c} vs {expected:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_warn_user_when_use_regex_is_true_and_session_cookie_path_is_not_set() {
    let annotations = [COOKIE, SERVERID, ("use-regex", "true")];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "useregexwarn",
            "/foo/.*",
            "useregexwarn.foo.com",
            &annotations,
        )],
    )
    .await;
    check(
        &remora,
        "should warn user when use-regex is true and session-cookie-path is not set",
        &get_ok("useregexwarn.foo.com", "/foo/bar"),
    )
    .await;
    remora
        .wait_log("session-cookie-path should be set when use-regex is true")
        .await;
}

/// `framework.NewSingleIngressWithTLS`: the host in `spec.tls` with a Secret holding a certificate
/// for it, requested over HTTPS with SNI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_secure_in_cookie_with_provided_false_annotation_on_https() {
    use common::tls::*;
    let cert = make_cert(&["foo.com"]);
    let ing = IngressYaml::new("foo.com")
        .nginx_all(&[COOKIE, SERVERID, ("session-cookie-secure", "false")])
        .tls(&["foo.com"], "foo.com")
        .rule(Some("foo.com"), "/", "echo")
        .build();
    let secret = tls_secret_yaml("foo.com", &cert);
    let (_p, _d, remora) = setup(2, &[ing, secret]).await;
    let r = https_get(remora.https, "foo.com", "/", &[], Trust::Root(&cert), false).await;
    assert_eq!(r.resp.status, 200);
    assert!(
        set_cookie(&r.resp).contains("; Secure"),
        "{}",
        set_cookie(&r.resp)
    );
}

fn mode_annotations(mode: &'static str) -> [(&'static str, &'static str); 7] {
    [
        COOKIE,
        ("session-cookie-name", "hello-cookie"),
        ("session-cookie-expires", "172800"),
        ("session-cookie-max-age", "172800"),
        ("ssl-redirect", "false"),
        ("affinity-mode", mode),
        ("session-cookie-hash", "sha1"),
    ]
}

/// affinitymode.go "Balanced affinity mode should balance": upstream only checks that the
/// annotations are stored; here they must also be accepted without a warning, and served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_affinity_mode_should_balance() {
    let ing = single_ingress(
        "affinity-mode-balance",
        "/",
        "affinity-mode-balance.com",
        &mode_annotations("balanced"),
    );
    let (_p, _d, remora) = setup(5, &[ing]).await;
    check(
        &remora,
        "Balanced affinity mode should balance",
        &get_ok("affinity-mode-balance.com", "/").has("hello-cookie="),
    )
    .await;
    let diags = remora.status().await["diagnostics"].clone();
    for d in diags.as_array().unwrap() {
        assert_eq!(d["severity"], "info", "unexpected warning: {d}");
    }
}

/// `GET /` on `host`, sending `cookies`.
async fn with_cookies(remora: &Remora, host: &str, cookies: &str) -> Resp {
    get(&remora.url("/"), &[("host", host), ("cookie", cookies)]).await
}

/// affinitymode.go "Check persistent affinity mode": scale up ten times one replica at a time, the
/// session stays; scale to 0: 503; scale to 2 new pods: served, by another pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_persistent_affinity_mode() {
    let host = "affinity-mode-persistent.com";
    let ing = single_ingress(
        "affinity-mode-persistent",
        "/",
        host,
        &mode_annotations("persistent"),
    );
    let mut all = pods("affinitypersistentecho-7d8f9c6b5", 17).await;
    let dir = Dir::new();
    dir.write("svc.yaml", &service_yaml("echo"));
    dir.write("ing.yaml", &ing);
    let slice =
        |pods: &[Pod]| slice_yaml("echo", "default", None, &pods.iter().collect::<Vec<_>>());
    dir.write("slice.yaml", &slice(&all[..5]));
    let remora = Remora::serve(&[dir.path()], &[]);

    // Upstream sends every Set-Cookie attribute back as a cookie; so does this client.
    let first = get_host(&remora, host, "/").await;
    assert_eq!(first.status, 200);
    let raw = first.set_cookies()[0].clone();
    let cookies: String = raw.split(';').map(str::trim).collect::<Vec<_>>().join("; ");
    let original = first.body.clone();
    let again = || with_cookies(&remora, host, &cookies);
    for n in 6..=15 {
        remora.rewrite(&dir, "slice.yaml", &slice(&all[..n])).await;
        assert_eq!(again().await.body, original, "after scaling to {n}");
    }
    remora.rewrite(&dir, "slice.yaml", &slice(&[])).await;
    assert_eq!(again().await.status, 503);
    let new_pods = all.split_off(15);
    remora.rewrite(&dir, "slice.yaml", &slice(&new_pods)).await;
    let r = again().await;
    assert_eq!(r.status, 200);
    assert_ne!(r.body, original);
}

// canary.go, Context "canary affinity behavior": primary Ingress `foo` on /info with affinity
// (cookie `aff`), canary Ingress `foo-canary` on the same host and path, forced by the header
// `ForceCanary: yes`.

const AFF: (&str, &str) = ("session-cookie-name", "aff");

/// The primary Service `httpbun` and the canary Service `echo-canary`, one pod each as upstream's
/// deployments; the pods answer with their names, so a body names the Service that answered.
async fn canary_setup(canary_annotations: &[(&str, &str)]) -> (Vec<Pod>, Dir, Remora) {
    let mut all = pods("httpbun-7d8f9c6b5a", 1).await;
    let canary = pods("echo-canary-5b6c7d8e9f", 1).await;
    let dir = Dir::new();
    dir.write(
        "svc.yaml",
        &format!(
            "{}---\n{}",
            service_yaml("httpbun"),
            service_yaml("echo-canary")
        ),
    );
    dir.write(
        "slices.yaml",
        &format!(
            "{}---\n{}",
            slice_yaml("httpbun", "default", None, &all.iter().collect::<Vec<_>>()),
            slice_yaml(
                "echo-canary",
                "default",
                None,
                &canary.iter().collect::<Vec<_>>()
            )
        ),
    );
    let primary = ingress_to("httpbun", "foo", "/info", "foo", &[COOKIE, AFF]);
    let canary_ing = ingress_to(
        "echo-canary",
        "foo-canary",
        "/info",
        "foo",
        canary_annotations,
    );
    dir.write("ing.yaml", &format!("{primary}---\n{canary_ing}"));
    let remora = Remora::serve(&[dir.path()], &[]);
    all.extend(canary);
    (all, dir, remora)
}

/// A request forced to the canary by its header: answered by the canary.
async fn forced_to_canary(remora: &Remora) -> Resp {
    let forced = get(
        &remora.url("/info"),
        &[("host", "foo"), ("ForceCanary", "yes")],
    )
    .await;
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains("echo-canary"), "{}", forced.body);
    forced
}

/// The first request, forced to the canary by its header, gets the affinity cookie; 50 requests
/// with that cookie and no header stay on the canary although its weight is 1%.
async fn always_routes_to_canary_once_affinitized(canary_annotations: &[(&str, &str)]) {
    let (_p, _d, remora) = canary_setup(canary_annotations).await;
    let forced = forced_to_canary(&remora).await;
    let (name, value) = forced
        .cookie()
        .expect("the canary sets the affinity cookie");
    assert_eq!(name, "aff");
    let cookie = format!("aff={value}");
    for _ in 0..50 {
        let r = get(
            &remora.url("/info"),
            &[("host", "foo"), ("cookie", &cookie)],
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(r.body.contains("echo-canary"), "{}", r.body);
    }
}

const FORCE_CANARY: [(&str, &str); 4] = [
    ("canary", "true"),
    ("canary-by-header", "ForceCanary"),
    ("canary-by-header-value", "yes"),
    ("canary-weight", "1"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_routes_traffic_to_canary_if_first_request_was_affinitized_to_canary_default() {
    always_routes_to_canary_once_affinitized(&FORCE_CANARY).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_routes_traffic_to_canary_if_first_request_was_affinitized_to_canary_sticky() {
    let mut annotations = FORCE_CANARY.to_vec();
    annotations.push(("affinity-canary-behavior", "sticky"));
    always_routes_to_canary_once_affinitized(&annotations).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_traffic_to_either_mainline_or_canary_backend_legacy() {
    let (_p, _d, remora) = canary_setup(&[
        ("canary", "true"),
        ("canary-by-header", "ForceCanary"),
        ("canary-by-header-value", "yes"),
        ("canary-weight", "50"),
        ("affinity-canary-behavior", "legacy"),
    ])
    .await;
    let forced = forced_to_canary(&remora).await;
    assert!(
        !set_cookie(&forced).contains("aff="),
        "legacy: no affinity cookie from the canary: {}",
        set_cookie(&forced)
    );
    // TestMainlineCanaryDistribution: each side gets at least 40% of the requests. Upstream sends
    // 200 (a 0.5% chance of a false failure); 400 make that 0.01%.
    let mut canary = 0;
    for _ in 0..400 {
        let r = get(&remora.url("/info"), &[("host", "foo")]).await;
        assert_eq!(r.status, 200);
        if r.body.contains("echo-canary") {
            canary += 1;
        } else {
            assert!(r.body.contains("httpbun"), "{}", r.body);
        }
    }
    assert!(
        (160..=240).contains(&canary),
        "{canary} of 400 on the canary"
    );
}
