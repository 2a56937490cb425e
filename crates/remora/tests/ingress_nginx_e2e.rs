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
    let pods = pods("echo-6b7c8d9f5b", replicas).await;
    let dir = Dir::new();
    dir.write("svc.yaml", &service_yaml("echo"));
    dir.write(
        "slice.yaml",
        &slice_yaml("echo", "default", None, &pods.iter().collect::<Vec<_>>()),
    );
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);
    (pods, dir, remora)
}

async fn get_host(remora: &Remora, host: &str, path: &str) -> Resp {
    get(&remora.url(path), &[("host", host)]).await
}

fn set_cookie(r: &Resp) -> String {
    r.set_cookies().join("\n")
}

const SERVERID: (&str, &str) = ("session-cookie-name", "SERVERID");
const COOKIE: (&str, &str) = ("affinity", "cookie");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_sticky_cookie_serverid() {
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "sticky",
            "/",
            "sticky.foo.com",
            &[COOKIE, SERVERID],
        )],
    )
    .await;
    let r = get_host(&remora, "sticky.foo.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("SERVERID="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_change_cookie_name_on_ingress_definition_change() {
    let (_p, dir, remora) = setup(
        2,
        &[single_ingress(
            "change",
            "/",
            "change.foo.com",
            &[COOKIE, SERVERID],
        )],
    )
    .await;
    let r = get_host(&remora, "change.foo.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("SERVERID"));
    let g = remora.generation().await;
    dir.write(
        "ing.yaml",
        &single_ingress(
            "change",
            "/",
            "change.foo.com",
            &[COOKIE, ("session-cookie-name", "OTHERCOOKIENAME")],
        ),
    );
    remora.wait_generation_after(g).await;
    let r = get_host(&remora, "change.foo.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("OTHERCOOKIENAME"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_the_path_to_something_on_the_generated_cookie() {
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "path",
            "/something",
            "path.foo.com",
            &[COOKIE, SERVERID],
        )],
    )
    .await;
    let r = get_host(&remora, "path.foo.com", "/something").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("Path=/something"));
}

/// Upstream's "last one wins" bug (#14042) must not happen: each path gets its own cookie Path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn does_not_set_the_path_to_slash_if_more_than_one_rule_refers_to_the_same_backend() {
    let ing = single_ingress("morethanonerule", "/something", "morethanonerule.foo.com", &[COOKIE, SERVERID]).replace(
        "      - path: /something\n",
        "      - path: /somewhereelse\n        pathType: Prefix\n        backend:\n          service:\n            name: echo\n            port:\n              number: 80\n      - path: /something\n",
    );
    let (_p, _d, remora) = setup(2, &[ing]).await;
    let r = get_host(&remora, "morethanonerule.foo.com", "/something").await;
    assert_eq!(r.status, 200);
    assert!(
        set_cookie(&r).contains("Path=/something"),
        "{}",
        set_cookie(&r)
    );
    let r = get_host(&remora, "morethanonerule.foo.com", "/somewhereelse").await;
    assert_eq!(r.status, 200);
    assert!(
        set_cookie(&r).contains("Path=/somewhereelse"),
        "{}",
        set_cookie(&r)
    );
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
    let r = get_host(&remora, "cookieexpires.foo.com", "/").await;
    assert_eq!(r.status, 200);
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
    assert!(c.contains("Max-Age=259200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_cookie_with_domain() {
    let annotations = [
        COOKIE,
        ("session-cookie-name", "DomainCookie"),
        ("session-cookie-domain", "foo.bar"),
    ];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "cookiedomain",
            "/",
            "cookiedomain.foo.com",
            &annotations,
        )],
    )
    .await;
    let r = get_host(&remora, "cookiedomain.foo.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("Domain=foo.bar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_not_set_cookie_without_domain_annotation() {
    let annotations = [COOKIE, ("session-cookie-name", "NoDomainCookie")];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "cookienodomain",
            "/",
            "cookienodomain.foo.com",
            &annotations,
        )],
    )
    .await;
    let r = get_host(&remora, "cookienodomain.foo.com", "/").await;
    assert_eq!(r.status, 200);
    let c = set_cookie(&r);
    assert!(
        c.contains("NoDomainCookie=") && !c.contains("; Domain"),
        "{c}"
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
    let r = get_host(&remora, "useregexwarn.foo.com", "/foo/bar").await;
    assert_eq!(r.status, 200);
    remora
        .wait_log("session-cookie-path should be set when use-regex is true")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_work_with_use_regex_annotation_and_session_cookie_path() {
    let annotations = [
        COOKIE,
        SERVERID,
        ("use-regex", "true"),
        ("session-cookie-path", "/foo/bar"),
    ];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "useregex.foo.com",
            "/foo/.*",
            "useregex.foo.com",
            &annotations,
        )],
    )
    .await;
    let r = get_host(&remora, "useregex.foo.com", "/foo/bar").await;
    assert_eq!(r.status, 200);
    let c = set_cookie(&r);
    assert!(c.contains("Path=/foo/bar"), "{c}");
    assert!(c.contains("SERVERID="), "{c}");
    // And the path really is a regex: `/foo/.*` does not match `/foo` (a prefix would).
    assert_eq!(
        get_host(&remora, "useregex.foo.com", "/foo").await.status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_not_set_affinity_across_all_server_locations_when_using_separate_ingresses() {
    let ing1 = single_ingress("ingress1", "/foo/bar", "separate.foo.com", &[COOKIE]);
    let ing2 = single_ingress("ingress2", "/foo", "separate.foo.com", &[]);
    let (_p, _d, remora) = setup(2, &[ing1, ing2]).await;
    let r = get_host(&remora, "separate.foo.com", "/foo").await;
    assert_eq!(r.status, 200);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    let r = get_host(&remora, "separate.foo.com", "/foo/bar").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("Path=/foo/bar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_sticky_cookie_without_host() {
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress(
            "default-no-host",
            "/",
            "",
            &[COOKIE, SERVERID],
        )],
    )
    .await;
    let r = get(&remora.url("/"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("SERVERID="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_work_with_server_alias_annotation() {
    let annotations = [COOKIE, SERVERID, ("server-alias", "a1.foo.com,a2.foo.com")];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress("alias", "/bar", "foo.com", &annotations)],
    )
    .await;
    for host in ["foo.com", "a1.foo.com", "a2.foo.com"] {
        let r = get_host(&remora, host, "/bar").await;
        assert_eq!(r.status, 200, "{host}");
        assert!(set_cookie(&r).contains("SERVERID="), "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_set_secure_in_cookie_with_provided_true_annotation_on_http() {
    let annotations = [COOKIE, SERVERID, ("session-cookie-secure", "true")];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress("secure", "/bar", "foo.com", &annotations)],
    )
    .await;
    let r = get_host(&remora, "foo.com", "/bar").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("; Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_not_set_secure_in_cookie_with_provided_false_annotation_on_http() {
    let annotations = [COOKIE, SERVERID, ("session-cookie-secure", "false")];
    let (_p, _d, remora) = setup(
        2,
        &[single_ingress("secure", "/bar", "foo.com", &annotations)],
    )
    .await;
    let r = get_host(&remora, "foo.com", "/bar").await;
    assert_eq!(r.status, 200);
    assert!(!set_cookie(&r).contains("; Secure"));
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
    let r = get_host(&remora, "affinity-mode-balance.com", "/").await;
    assert_eq!(r.status, 200);
    assert!(set_cookie(&r).contains("hello-cookie="));
    let diags = remora.status().await["diagnostics"].clone();
    for d in diags.as_array().unwrap() {
        assert_eq!(d["severity"], "info", "unexpected warning: {d}");
    }
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
    for n in 6..=15 {
        let g = remora.generation().await;
        dir.write("slice.yaml", &slice(&all[..n]));
        remora.wait_generation_after(g).await;
        let r = get(&remora.url("/"), &[("host", host), ("cookie", &cookies)]).await;
        assert_eq!(r.body, original, "after scaling to {n}");
    }
    let g = remora.generation().await;
    dir.write("slice.yaml", &slice(&[]));
    remora.wait_generation_after(g).await;
    let r = get(&remora.url("/"), &[("host", host), ("cookie", &cookies)]).await;
    assert_eq!(r.status, 503);
    let new_pods = all.split_off(15);
    let g = remora.generation().await;
    dir.write("slice.yaml", &slice(&new_pods));
    remora.wait_generation_after(g).await;
    let r = get(&remora.url("/"), &[("host", host), ("cookie", &cookies)]).await;
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

/// The first request, forced to the canary by its header, gets the affinity cookie; 50 requests
/// with that cookie and no header stay on the canary although its weight is 1%.
async fn always_routes_to_canary_once_affinitized(canary_annotations: &[(&str, &str)]) {
    let (_p, _d, remora) = canary_setup(canary_annotations).await;
    let forced = get(
        &remora.url("/info"),
        &[("host", "foo"), ("ForceCanary", "yes")],
    )
    .await;
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains("echo-canary"), "{}", forced.body);
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
    let forced = get(
        &remora.url("/info"),
        &[("host", "foo"), ("ForceCanary", "yes")],
    )
    .await;
    assert_eq!(forced.status, 200);
    assert!(forced.body.contains("echo-canary"), "{}", forced.body);
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
