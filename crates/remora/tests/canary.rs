//! Canary Ingresses through the real binary: header, cookie and weight routing, and session
//! affinity across primary and canary (`affinity-canary-behavior` sticky and legacy).

mod common;
use common::*;

fn ingress(name: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx_all(annotations)
        .rule(Some("foo.com"), "/", service)
        .build()
}

struct Setup {
    _pods: Vec<Pod>,
    dir: Dir,
    remora: Remora,
}

async fn setup(primary: &[(&str, &str)], canary: &[(&str, &str)]) -> Setup {
    let stable = pods("stable-5d6f7b8c9d", 2).await;
    let preview = pods("preview-6e7f8c9d4b", 2).await;
    let dir = Dir::new();
    dir.write(
        "svc.yaml",
        &format!("{}---\n{}", service_yaml("stable"), service_yaml("preview")),
    );
    dir.write(
        "slices.yaml",
        &format!(
            "{}---\n{}",
            slice_yaml(
                "stable",
                "default",
                None,
                &stable.iter().collect::<Vec<_>>()
            ),
            slice_yaml(
                "preview",
                "default",
                None,
                &preview.iter().collect::<Vec<_>>()
            ),
        ),
    );
    dir.write("primary.yaml", &ingress("primary", "stable", primary));
    dir.write("canary.yaml", &ingress("canary", "preview", canary));
    let remora = Remora::serve(&[dir.path()], &[]);
    let mut pods = stable;
    pods.extend(preview);
    Setup {
        _pods: pods,
        dir,
        remora,
    }
}

impl Setup {
    /// Replace the canary Ingress by one with these annotations, and wait until it is served.
    async fn set_canary(&self, annotations: &[(&str, &str)]) {
        self.remora
            .rewrite(
                &self.dir,
                "canary.yaml",
                &ingress("canary", "preview", annotations),
            )
            .await;
    }
}

fn is_canary(r: &Resp) -> bool {
    assert_eq!(r.status, 200, "{}", r.body);
    r.body.contains("preview-")
}

async fn get_foo(s: &Setup, headers: &[(&str, &str)]) -> Resp {
    let mut h = vec![("host", "foo.com")];
    h.extend_from_slice(headers);
    get(&s.remora.url("/"), &h).await
}

/// Requests with these extra headers, each with whether the canary must answer it.
type Routes<'a> = [(&'a [(&'a str, &'a str)], bool)];

/// Send each request of `routes` and assert the side that answers it.
async fn assert_routes(s: &Setup, routes: &Routes<'_>) {
    for (headers, canary) in routes {
        let side = if *canary { "canary" } else { "primary" };
        assert_eq!(
            is_canary(&get_foo(s, headers).await),
            *canary,
            "{headers:?}: expected the {side}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_then_cookie_then_weight() {
    let s = setup(
        &[],
        &[
            ("canary", "true"),
            ("canary-by-header", "CanaryByHeader"),
            ("canary-by-cookie", "CanaryByCookie"),
            ("canary-weight", "0"),
        ],
    )
    .await;
    assert_routes(
        &s,
        &[
            // Weight 0: primary.
            (&[], false),
            (&[("CanaryByHeader", "always")], true),
            (&[("CanaryByHeader", "never")], false),
            (&[("cookie", "CanaryByCookie=always")], true),
            (&[("cookie", "CanaryByCookie=never")], false),
            // The header wins over the cookie.
            (
                &[
                    ("CanaryByHeader", "never"),
                    ("cookie", "CanaryByCookie=always"),
                ],
                false,
            ),
            (
                &[
                    ("CanaryByHeader", "always"),
                    ("cookie", "CanaryByCookie=never"),
                ],
                true,
            ),
            // Other values fall through to the weight.
            (&[("CanaryByHeader", "badvalue")], false),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_value_and_pattern() {
    let s = setup(
        &[],
        &[
            ("canary", "true"),
            ("canary-by-header", "CanaryByHeader"),
            ("canary-by-header-value", "DoCanary"),
        ],
    )
    .await;
    assert_routes(
        &s,
        &[
            (&[("CanaryByHeader", "DoCanary")], true),
            // With a value, only the value counts.
            (&[("CanaryByHeader", "always")], false),
        ],
    )
    .await;
    s.set_canary(&[
        ("canary", "true"),
        ("canary-by-header", "CanaryByHeader"),
        ("canary-by-header-pattern", "^Do.*ary$"),
    ])
    .await;
    assert_routes(
        &s,
        &[
            (&[("CanaryByHeader", "DoCanary")], true),
            (&[("CanaryByHeader", "NoCanary")], false),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_splits_traffic() {
    let s = setup(&[], &[("canary", "true"), ("canary-weight", "100")]).await;
    for _ in 0..10 {
        assert!(is_canary(&get_foo(&s, &[]).await), "weight 100: canary");
    }
    s.set_canary(&[("canary", "true"), ("canary-weight", "30")])
        .await;
    let mut canary = 0;
    for _ in 0..400 {
        if is_canary(&get_foo(&s, &[]).await) {
            canary += 1;
        }
    }
    println!("canary-weight 30: {canary}/400 to the canary");
    assert!((70..170).contains(&canary), "{canary}");
}

/// Sticky (default): a session that landed on the canary stays there even when the weight drops to
/// 0, and one on the primary stays there when it rises to 100; the cookie is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_sessions_stay_on_their_side() {
    let affinity = [("affinity", "cookie"), ("session-cookie-name", "route")];
    let s = setup(&affinity, &[("canary", "true"), ("canary-weight", "100")]).await;
    let mut on_canary = Session::with_host("foo.com");
    let r = on_canary.get(&s.remora.url("/")).await;
    assert!(is_canary(&r));
    assert_eq!(r.cookie().unwrap().0, "route");

    s.set_canary(&[("canary", "true"), ("canary-weight", "0")])
        .await;
    let mut on_primary = Session::with_host("foo.com");
    let r = on_primary.get(&s.remora.url("/")).await;
    assert!(!is_canary(&r));
    for _ in 0..5 {
        let r = on_canary.get(&s.remora.url("/")).await;
        assert!(
            is_canary(&r),
            "a canary session stays on the canary at weight 0"
        );
        assert!(r.cookie().is_none());
    }

    s.set_canary(&[("canary", "true"), ("canary-weight", "100")])
        .await;
    for _ in 0..5 {
        assert!(
            !is_canary(&on_primary.get(&s.remora.url("/")).await),
            "a primary session stays on the primary at weight 100"
        );
    }
}

/// Legacy: the weight decides every request, sessions or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_behaviour_ignores_sessions() {
    let affinity = [("affinity", "cookie"), ("session-cookie-name", "route")];
    let s = setup(
        &affinity,
        &[
            ("canary", "true"),
            ("canary-weight", "100"),
            ("affinity-canary-behavior", "legacy"),
        ],
    )
    .await;
    let mut session = Session::with_host("foo.com");
    assert!(is_canary(&session.get(&s.remora.url("/")).await));
    s.set_canary(&[
        ("canary", "true"),
        ("canary-weight", "0"),
        ("affinity-canary-behavior", "legacy"),
    ])
    .await;
    assert!(
        !is_canary(&session.get(&s.remora.url("/")).await),
        "legacy: weight 0 sends the session to the primary"
    );
}
