//! Cookie affinity through the real binary: persistent and balanced sessions across scaling,
//! cookies that must not be honoured, endpoints that are not ready, services with no endpoints.

mod common;
use common::*;
use std::collections::BTreeMap;

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: 8080
";

fn ingress(name: &str, path: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx("affinity", "cookie")
        .nginx_all(annotations)
        .rule(None, path, service)
        .port_name("http")
        .build()
}

/// The EndpointSlice of `web` listing `pods`, with explicit `(ready, serving, terminating)`
/// conditions for some of them (by index; the others are ready).
fn web_slice(pods: &[&Pod], conditions: &[(usize, bool, bool, bool)]) -> String {
    slice_yaml_with("web", "default", Some("http"), pods, conditions)
}

/// A directory serving the Service `web` through the Ingress `web` on `/` (cookie affinity and
/// `annotations`), its EndpointSlice being `slice`.
fn web_dir(annotations: &[(&str, &str)], slice: &str) -> Dir {
    let dir = Dir::new();
    dir.write("svc.yaml", SERVICE);
    dir.write("ing.yaml", &ingress("web", "/", "web", annotations));
    dir.write("slice.yaml", slice);
    dir
}

/// Remora serving [`web_dir`]; the directory, to change it.
fn serve_web(annotations: &[(&str, &str)], slice: &str) -> (Dir, Remora) {
    let dir = web_dir(annotations, slice);
    let remora = Remora::serve(&[dir.path()], &[]);
    (dir, remora)
}

/// Pin `n` sessions; returns each session with the pod it reached.
async fn pin_sessions(remora: &Remora, n: usize) -> Vec<(Session, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut s = Session::default();
        let r = s.get(&remora.url("/")).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.cookie().is_some());
        out.push((s, r.body));
    }
    out
}

/// Re-send every session: (moved, re-cookied), where a moved session lands on `allowed_new` only.
async fn replay(
    remora: &Remora,
    sessions: &mut [(Session, String)],
) -> (usize, usize, BTreeMap<String, usize>) {
    let mut moved = 0;
    let mut recookied = 0;
    let mut moved_to = BTreeMap::new();
    for (s, pod) in sessions.iter_mut() {
        let r = s.get(&remora.url("/")).await;
        assert_eq!(r.status, 200);
        if r.cookie().is_some() {
            recookied += 1;
        }
        if &r.body != pod {
            moved += 1;
            *moved_to.entry(r.body.clone()).or_insert(0) += 1;
            *pod = r.body;
        }
    }
    (moved, recookied, moved_to)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_survive_scaling_and_repin_once_when_their_pod_is_gone() {
    let pods = pods("web-6d4f8c7b9-p", 6).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let (dir, remora) = serve_web(
        &[("affinity-mode", "persistent")],
        &web_slice(&refs[..5], &[]),
    );
    let mut sessions = pin_sessions(&remora, 60).await;

    // 5 -> 6, then 6 -> 5 (the new pod goes): nobody moves.
    for (what, endpoints) in [("5 -> 6", &refs[..6]), ("6 -> 5", &refs[..5])] {
        remora
            .rewrite(&dir, "slice.yaml", &web_slice(endpoints, &[]))
            .await;
        let (moved, recookied, _) = replay(&remora, &mut sessions).await;
        println!("persistent {what}: {moved}/60 sessions moved");
        assert_eq!((moved, recookied), (0, 0), "{what}");
    }

    // Pod 0 goes: only its sessions move, get a fresh cookie once, then stick again.
    let on_zero = sessions
        .iter()
        .filter(|(_, p)| p.contains("-p-0\""))
        .count();
    assert!(on_zero > 0);
    remora
        .rewrite(&dir, "slice.yaml", &web_slice(&refs[1..5], &[]))
        .await;
    let (moved, recookied, _) = replay(&remora, &mut sessions).await;
    assert_eq!((moved, recookied), (on_zero, on_zero));
    let (moved, recookied, _) = replay(&remora, &mut sessions).await;
    assert_eq!((moved, recookied), (0, 0), "re-pinned sessions stick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balanced_sessions_move_about_one_in_six_on_scale_out_and_back_on_scale_in() {
    let pods = pods("web-6d4f8c7b9-b", 6).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let (dir, remora) = serve_web(&[], &web_slice(&refs[..5], &[]));
    let n = 300;
    let mut sessions = pin_sessions(&remora, n).await;
    let before: Vec<String> = sessions.iter().map(|(_, p)| p.clone()).collect();
    let mut per_pod = BTreeMap::new();
    for p in &before {
        *per_pod.entry(p.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        per_pod.len(),
        5,
        "new sessions spread over all pods: {per_pod:?}"
    );

    remora
        .rewrite(&dir, "slice.yaml", &web_slice(&refs[..6], &[]))
        .await;
    let (moved, recookied, moved_to) = replay(&remora, &mut sessions).await;
    let fraction = moved as f64 / n as f64;
    println!(
        "balanced 5 -> 6: {moved}/{n} sessions moved ({:.1}%, ideal 16.7%)",
        fraction * 100.0
    );
    assert_eq!(recookied, 0, "balanced cookies stay valid");
    assert!((0.05..0.30).contains(&fraction), "{fraction}");
    assert_eq!(
        moved_to.keys().collect::<Vec<_>>(),
        [&format!("Hello \"{}\"!", pods[5].name)]
    );

    remora
        .rewrite(&dir, "slice.yaml", &web_slice(&refs[..5], &[]))
        .await;
    replay(&remora, &mut sessions).await;
    let after: Vec<String> = sessions.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(
        before, after,
        "6 -> 5 brings every session back where it was"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_that_cannot_be_honoured_get_a_new_pick_and_a_fresh_cookie() {
    let pods = pods("web-6d4f8c7b9-g", 3).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let dir = Dir::new();
    let other_service = SERVICE.replace("name: web", "name: other");
    dir.write("svc.yaml", &format!("{SERVICE}---\n{other_service}"));
    dir.write(
        "ing.yaml",
        &format!(
            "{}---\n{}",
            ingress(
                "web",
                "/",
                "web",
                &[
                    ("affinity-mode", "persistent"),
                    ("session-cookie-name", "sid")
                ]
            ),
            ingress(
                "other",
                "/other",
                "other",
                &[("session-cookie-name", "sid")]
            )
        ),
    );
    // `web` on `web_pods`, `other` on every pod.
    let slices = |web_pods: &[&Pod]| {
        format!(
            "{}---\n{}",
            web_slice(web_pods, &[]),
            slice_yaml("other", "default", Some("http"), &refs)
                .replace("other-abcde", "other-fghij")
        )
    };
    dir.write("slice.yaml", &slices(&refs));
    let remora = Remora::serve(&[dir.path()], &[]);
    let good = get(&remora.url("/"), &[]).await.cookie().unwrap().1;
    let foreign = get(&remora.url("/other"), &[]).await.cookie().unwrap().1;
    let mut forged = good.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let cases = [
        ("garbage", "garbage".to_owned()),
        ("empty", String::new()),
        ("truncated", good[..20].to_owned()),
        ("forged", forged),
        ("from another route", foreign),
        (
            "ingress-nginx style",
            "1700000000.123.4567|abcdef0123456789abcdef0123456789".to_owned(),
        ),
    ];
    for (what, value) in cases {
        let r = get(&remora.url("/"), &[("cookie", &format!("sid={value}"))]).await;
        assert_eq!(r.status, 200, "{what}");
        let (name, fresh) = r
            .cookie()
            .unwrap_or_else(|| panic!("{what}: no fresh cookie"));
        assert_eq!(name, "sid");
        assert_ne!(fresh, value, "{what}");
        // The fresh cookie sticks.
        let again = get(&remora.url("/"), &[("cookie", &format!("sid={fresh}"))]).await;
        assert_eq!((again.cookie(), again.body), (None, r.body), "{what}");
    }
    // A valid cookie next to garbage of the same name is honoured.
    let pinned = get(&remora.url("/"), &[("cookie", &format!("sid={good}"))]).await;
    assert!(pinned.cookie().is_none());
    let r = get(
        &remora.url("/"),
        &[("cookie", &format!("sid=junk; sid={good}"))],
    )
    .await;
    assert_eq!((r.cookie(), r.body), (None, pinned.body.clone()));

    // A cookie naming a pod that is gone.
    let pinned_pod = pods
        .iter()
        .position(|p| pinned.body.contains(&p.name))
        .unwrap();
    let remaining: Vec<&Pod> = refs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != pinned_pod)
        .map(|(_, p)| *p)
        .collect();
    remora
        .rewrite(&dir, "slice.yaml", &slices(&remaining))
        .await;
    let r = get(&remora.url("/"), &[("cookie", &format!("sid={good}"))]).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.body, pinned.body);
    assert!(
        r.cookie().is_some(),
        "a gone pod's session gets a fresh cookie"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_endpoints_get_no_new_sessions_and_draining_ones_keep_theirs() {
    let pods = pods("web-6d4f8c7b9-r", 3).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    // Pod 2 is not ready.
    let (dir, remora) = serve_web(
        &[("affinity-mode", "persistent")],
        &web_slice(&refs, &[(2, false, false, false)]),
    );
    let sessions = pin_sessions(&remora, 30).await;
    assert!(sessions.iter().all(|(_, p)| !p.contains(&pods[2].name)));
    let on_zero: Vec<Session> = sessions
        .into_iter()
        .filter(|(_, p)| p.contains(&pods[0].name))
        .map(|(s, _)| s)
        .collect();
    assert!(!on_zero.is_empty());

    // Pod 0 terminates but still serves: its sessions stay, new sessions go elsewhere.
    let slice = web_slice(&refs, &[(0, false, true, true), (2, true, true, false)]);
    remora.rewrite(&dir, "slice.yaml", &slice).await;
    for mut s in on_zero {
        let r = s.get(&remora.url("/")).await;
        assert!(
            r.body.contains(&pods[0].name),
            "a draining pod keeps its sessions"
        );
        assert!(r.cookie().is_none());
    }
    for _ in 0..20 {
        let r = get(&remora.url("/"), &[]).await;
        assert!(
            !r.body.contains(&pods[0].name),
            "a terminating pod takes no new session"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_endpoints_missing_service_and_no_route() {
    let dir = Dir::new();
    dir.write("svc.yaml", SERVICE);
    dir.write(
        "ing.yaml",
        &format!(
            "{}---\n{}",
            ingress("web", "/", "web", &[]),
            ingress("ghost", "/ghost", "does-not-exist", &[])
        )
        .replace(
            "  - http:\n      paths:\n      - path: /ghost",
            "  - host: ghost.example\n    http:\n      paths:\n      - path: /ghost",
        ),
    );
    dir.write("slice.yaml", &web_slice(&[], &[]));
    let remora = Remora::serve(&[dir.path()], &[]);
    let r = get(&remora.url("/"), &[]).await;
    assert_eq!(r.status, 503, "zero endpoints");
    assert!(r.cookie().is_none(), "no cookie without an endpoint");
    let r = get(&remora.url("/ghost"), &[("host", "ghost.example")]).await;
    assert_eq!(r.status, 503, "missing service");
    let r = get(&remora.url("/elsewhere"), &[("host", "ghost.example")]).await;
    assert_eq!(r.status, 404, "no route");
    let diags = remora.status().await["diagnostics"].to_string();
    assert!(
        diags.contains("Service default/does-not-exist not found"),
        "{diags}"
    );
    assert!(diags.contains("has no ready endpoints"), "{diags}");
}

/// Failover: the pinned pod dies but is still listed (the EndpointSlice has not caught up). The
/// request goes to another pod, body intact, and the session re-pins there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_pinned_pod_fails_over_and_the_session_repins_once() {
    for (mode, change_on_failure) in [
        ("persistent", None),
        ("balanced", None),
        ("persistent", Some("false")),
    ] {
        let mut pods = pods("web-6d4f8c7b9-f", 3).await;
        let refs: Vec<&Pod> = pods.iter().collect();
        let mut annotations = vec![("affinity-mode", mode)];
        if let Some(c) = change_on_failure {
            annotations.push(("session-cookie-change-on-failure", c));
        }
        let (_dir, remora) = serve_web(&annotations, &web_slice(&refs, &[]));
        let mut sessions = pin_sessions(&remora, 12).await;
        let victim = pods
            .iter()
            .position(|p| sessions.iter().any(|(_, b)| b.contains(&p.name)))
            .unwrap();
        let victim_name = pods[victim].name.clone();
        pods[victim].kill();
        for (s, pod) in sessions.iter_mut() {
            let was_on_victim = pod.contains(&victim_name);
            // A POST with a body: connect failures are retried for any method, body intact.
            let cookie = s.cookie_header();
            let r = request(
                "POST",
                &remora.url("/echo-body"),
                &[("cookie", &cookie)],
                bytes::Bytes::from(vec![b'x'; 100_000]),
            )
            .await;
            assert_eq!(
                (r.status.as_u16(), r.body.as_str()),
                (200, "100000"),
                "{mode}"
            );
            let r = s.get(&remora.url("/")).await;
            assert_eq!(r.status, 200, "{mode}: no request fails");
            assert!(!r.body.contains(&victim_name));
            if !was_on_victim {
                assert_eq!(&r.body, pod, "{mode}: sessions elsewhere do not move");
                continue;
            }
            match change_on_failure {
                None => {
                    // The POST's fresh cookie was not kept by this client, so the GET fails over
                    // too and re-pins the session; from then on it sticks.
                    assert!(
                        r.cookie().is_some(),
                        "{mode}: a fresh cookie re-pins the session"
                    );
                    let again = s.get(&remora.url("/")).await;
                    assert_eq!(
                        (again.cookie(), &again.body),
                        (None, &r.body),
                        "{mode}: re-pinned once"
                    );
                }
                Some(_) => assert!(
                    r.cookie().is_none(),
                    "change-on-failure false keeps the cookie"
                ),
            }
        }
    }
}

/// Two Remora replicas given the same --cookie-secret-file honour each other's cookies, in both
/// modes (balanced placement is deterministic for the same endpoints); a third with another secret
/// replaces them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_secret_honour_each_others_cookies() {
    let pods = pods("web-6d4f8c7b9-s", 4).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    for mode in ["persistent", "balanced"] {
        let dir = web_dir(&[("affinity-mode", mode)], &web_slice(&refs, &[]));
        let secrets = Dir::new();
        let shared = secrets.write("shared", "0123456789abcdef-shared-secret\n");
        let other = secrets.write("other", "another-secret-of-enough-length");
        let shared = shared.display().to_string();
        let a = Remora::serve(&[dir.path()], &["--cookie-secret-file", &shared]);
        let b = Remora::serve(&[dir.path()], &["--cookie-secret-file", &shared]);
        let c = Remora::serve(
            &[dir.path()],
            &["--cookie-secret-file", &other.display().to_string()],
        );
        for _ in 0..10 {
            let first = get(&a.url("/"), &[]).await;
            let (name, value) = first.cookie().unwrap();
            let cookie = format!("{name}={value}");
            let on_b = get(&b.url("/"), &[("cookie", &cookie)]).await;
            assert_eq!((on_b.cookie(), &on_b.body), (None, &first.body), "{mode}");
            let on_c = get(&c.url("/"), &[("cookie", &cookie)]).await;
            assert!(
                on_c.cookie().is_some(),
                "{mode}: another key's cookie is replaced"
            );
        }
    }
}
