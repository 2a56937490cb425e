//! `--metrics-compat ingress-nginx`: `/metrics` also has ingress-nginx's request series, with its
//! names and labels, so its dashboards and alerts keep working; without the flag, none of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use bytes::Bytes;
use common::*;
use std::collections::BTreeMap;

const HOST: &str = "shop.example.com";

/// The pods of `web` and `web-canary`, an Ingress `web` (`/` and `/api`) and its canary
/// (`X-Canary: always`), served with `extra`.
async fn setup(extra: &[&str]) -> (Vec<Pod>, Dir, Remora) {
    let mut pods = pods("web-5c6d7e8f9a", 1).await;
    pods.extend(common::pods("web-canary-7f8e9d", 1).await);
    let dir = Dir::new();
    dir.write("svc.yaml", &service_yaml("web"));
    dir.write(
        "slice.yaml",
        &slice_yaml("web", "default", None, &[&pods[0]]),
    );
    dir.write("svc-canary.yaml", &service_yaml("web-canary"));
    dir.write(
        "slice-canary.yaml",
        &slice_yaml("web-canary", "default", None, &[&pods[1]]),
    );
    dir.write(
        "ing.yaml",
        &IngressYaml::new("web")
            .rule(Some(HOST), "/", "web")
            .rule(Some(HOST), "/api", "web")
            .build(),
    );
    dir.write(
        "canary.yaml",
        &IngressYaml::new("web-canary")
            .nginx_all(&[("canary", "true"), ("canary-by-header", "X-Canary")])
            .rule(Some(HOST), "/", "web-canary")
            .build(),
    );
    let env = [
        ("POD_NAME", "remora-6b8f7c-x2x9z"),
        ("POD_NAMESPACE", "ingress-ns"),
    ];
    let remora = Remora::serve_with_env(&[dir.path()], extra, &env);
    (pods, dir, remora)
}

/// GET / twice, POST /api, a 404 the pod answers on /api, a canary GET, and a request no route
/// takes.
async fn traffic(remora: &Remora) {
    let host = [("host", HOST)];
    for _ in 0..2 {
        assert_eq!(get(&remora.url("/"), &host).await.status, 200);
    }
    let post = request(
        "POST",
        &remora.url("/api/orders"),
        &[("host", HOST), ("content-type", "text/plain")],
        Bytes::from_static(b"hello"),
    )
    .await;
    assert_eq!(post.status, 200);
    let missing = get(
        &remora.url("/api/missing"),
        &[("host", HOST), ("x-code", "404")],
    )
    .await;
    assert_eq!(missing.status, 404);
    let canary = get(&remora.url("/"), &[("host", HOST), ("x-canary", "always")]).await;
    assert_eq!(canary.status, 200);
    assert!(canary.body.contains("web-canary"), "{}", canary.body);
    let nowhere = get(&remora.url("/"), &[("host", "nowhere.example.com")]).await;
    assert_eq!(nowhere.status, 404);
}

async fn scrape(remora: &Remora) -> String {
    let r = get(&format!("http://{}/metrics", remora.admin), &[]).await;
    assert_eq!(r.status, 200);
    r.body
}

type Labels = BTreeMap<String, String>;

/// The samples of `/metrics`: (name, labels, value).
fn samples(text: &str) -> Vec<(String, Labels, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The value of the sample `name` with exactly these labels.
fn value(text: &str, name: &str, labels: &Labels) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| v)
}

fn constant() -> Labels {
    [
        ("controller_class", "remora.dev/ingress-controller"),
        ("controller_namespace", "ingress-ns"),
        ("controller_pod", "remora-6b8f7c-x2x9z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// ingress-nginx's label set of a request series of Ingress `web`.
fn series(method: &str, path: &str, status: &str, canary: &str) -> Labels {
    let mut l = constant();
    for (k, v) in [
        ("canary", canary),
        ("host", HOST),
        ("ingress", "web"),
        ("method", method),
        ("namespace", "default"),
        ("path", path),
        ("service", "web"),
        ("status", status),
    ] {
        l.insert(k.to_owned(), v.to_owned());
    }
    l
}

fn with(mut labels: Labels, k: &str, v: &str) -> Labels {
    labels.insert(k.to_owned(), v.to_owned());
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_nginx_series_have_its_names_labels_and_counts() {
    let (_pods, dir, remora) = setup(&["--metrics-compat", "ingress-nginx"]).await;
    traffic(&remora).await;
    let m = scrape(&remora).await;

    let requests = "nginx_ingress_controller_requests";
    let get_root = series("GET", "/", "200", "");
    let post = series("POST", "/api", "200", "");
    let missing = series("GET", "/api", "404", "");
    let canary = series("GET", "/", "200", "default-web-canary-80");
    assert_eq!(value(&m, requests, &get_root), Some(2.0), "{m}");
    assert_eq!(value(&m, requests, &post), Some(1.0), "{m}");
    assert_eq!(value(&m, requests, &missing), Some(1.0), "{m}");
    assert_eq!(value(&m, requests, &canary), Some(1.0), "{m}");
    // Those four and nothing else: the request no route took has no Ingress to count under.
    let all: Vec<_> = samples(&m)
        .into_iter()
        .filter(|(n, _, _)| n == requests)
        .collect();
    assert_eq!(all.len(), 4, "{m}");
    // Named as ingress-nginx's client_golang names them: no `_total`.
    assert!(
        m.contains("# TYPE nginx_ingress_controller_requests unknown"),
        "{m}"
    );
    assert!(
        !m.contains("nginx_ingress_controller_requests_total"),
        "{m}"
    );

    for (labels, n) in [
        (&get_root, 2.0),
        (&post, 1.0),
        (&missing, 1.0),
        (&canary, 1.0),
    ] {
        for h in [
            "nginx_ingress_controller_request_duration_seconds",
            "nginx_ingress_controller_header_duration_seconds",
            "nginx_ingress_controller_request_size",
            "nginx_ingress_controller_response_size",
        ] {
            assert_eq!(
                value(&m, &format!("{h}_count"), labels),
                Some(n),
                "{h} {labels:?}\n{m}"
            );
            assert_eq!(
                value(
                    &m,
                    &format!("{h}_bucket"),
                    &with(labels.clone(), "le", "+Inf")
                ),
                Some(n),
                "{h} {labels:?}\n{m}"
            );
        }
    }
    // ingress-nginx's default buckets: time 0.005 .. 10 s, length 10 .. 100 bytes.
    let le = |labels: &Labels, le: &str| with(labels.clone(), "le", le);
    let duration = "nginx_ingress_controller_request_duration_seconds_bucket";
    assert!(
        value(&m, duration, &le(&get_root, "0.005")).is_some(),
        "{m}"
    );
    assert!(value(&m, duration, &le(&get_root, "10.0")).is_some(), "{m}");
    let size = "nginx_ingress_controller_request_size_bucket";
    assert!(value(&m, size, &le(&post, "10.0")).is_some(), "{m}");
    assert!(value(&m, size, &le(&post, "100.0")).is_some(), "{m}");
    // The POST's size counts its line, head and the 5 bytes of body.
    let post_size = value(&m, "nginx_ingress_controller_request_size_sum", &post).unwrap();
    assert!(
        post_size >= 5.0 + "POST /api/orders HTTP/1.1\r\n".len() as f64,
        "{m}"
    );
    let sent = value(&m, "nginx_ingress_controller_response_size_sum", &get_root).unwrap();
    assert!(
        sent > 2.0 * "Hello \"web-5c6d7e8f9a-0\"!".len() as f64,
        "{m}"
    );

    // The reload gauges alerts use, with the constant labels only.
    let c = constant();
    assert_eq!(
        value(
            &m,
            "nginx_ingress_controller_config_last_reload_successful",
            &c
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        value(&m, "nginx_ingress_controller_success", &c).unwrap() >= 1.0,
        "{m}"
    );
    let hash = value(&m, "nginx_ingress_controller_config_hash", &c).unwrap();
    assert_ne!(hash, 0.0, "{m}");

    // A reload keeps the counts; a file that fails to load makes the last reload unsuccessful
    // until one loads again.
    let generation = remora.generation().await;
    dir.write(
        "other.yaml",
        &IngressYaml::new("other")
            .rule(Some("other.example.com"), "/", "web")
            .build(),
    );
    remora.wait_generation_after(generation).await;
    assert_eq!(get(&remora.url("/"), &[("host", HOST)]).await.status, 200);
    let m = scrape(&remora).await;
    assert_eq!(value(&m, requests, &get_root), Some(3.0), "{m}");
    let changed = value(&m, "nginx_ingress_controller_config_hash", &c).unwrap();
    assert_ne!(changed, hash, "another configuration, another hash");

    let successful = "nginx_ingress_controller_config_last_reload_successful";
    dir.write("broken.yaml", "kind: Ingress\nmetadata: [\n");
    let mut m = String::new();
    for _ in 0..1500 {
        m = scrape(&remora).await;
        if value(&m, successful, &c) == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(value(&m, successful, &c), Some(0.0), "{m}");
    dir.write("broken.yaml", "");
    for _ in 0..1500 {
        m = scrape(&remora).await;
        if value(&m, successful, &c) == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(value(&m, successful, &c), Some(1.0), "{m}");
    assert_eq!(value(&m, requests, &get_root), Some(3.0), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_there_is_no_ingress_nginx_series() {
    let (_pods, _dir, remora) = setup(&[]).await;
    traffic(&remora).await;
    let m = scrape(&remora).await;
    assert!(m.contains("remora_requests_total{"), "{m}");
    assert!(!m.contains("nginx_ingress_controller_"), "{m}");
}

/// In a cluster, taking over ingress-nginx's class: `controller_class` is its controller value,
/// as ingress-nginx's own label, and the pod's namespace and name come from the downward API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_labels_its_class_and_pod() {
    let pods = pods("web-4b5c6d7e8f", 1).await;
    let api = common::apiserver::FakeApi::start().await;
    let dir = Dir::new();
    api.apply(
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: k8s.io/ingress-nginx\n",
    );
    api.apply(&service_yaml("web"));
    api.apply(&slice_yaml("web", "default", None, &[&pods[0]]));
    api.apply(
        &IngressYaml::new("web")
            .rule(Some(HOST), "/", "web")
            .build()
            .replace("spec:\n", "spec:\n  ingressClassName: nginx\n"),
    );
    let kubeconfig = api.kubeconfig(&dir).display().to_string();
    let mut args: Vec<String> = [
        "controller",
        "--kubeconfig",
        &kubeconfig,
        "--workers",
        "2",
        "--controller-class",
        "k8s.io/ingress-nginx",
        "--metrics-compat",
        "ingress-nginx",
    ]
    .map(String::from)
    .to_vec();
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    let env = [
        ("POD_NAME", "remora-6b8f7c-x2x9z"),
        ("POD_NAMESPACE", "ingress-ns"),
    ];
    let remora = Remora::start_with_env(&args, &env);
    remora.wait_ready().await;
    assert_eq!(get(&remora.url("/"), &[("host", HOST)]).await.status, 200);
    let m = scrape(&remora).await;
    let labels = with(
        series("GET", "/", "200", ""),
        "controller_class",
        "k8s.io/ingress-nginx",
    );
    assert_eq!(
        value(&m, "nginx_ingress_controller_requests", &labels),
        Some(1.0),
        "{m}"
    );
    let c = with(constant(), "controller_class", "k8s.io/ingress-nginx");
    assert_eq!(
        value(
            &m,
            "nginx_ingress_controller_config_last_reload_successful",
            &c
        ),
        Some(1.0),
        "{m}"
    );
}
