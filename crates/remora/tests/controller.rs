//! `remora controller` against a Kubernetes API server on loopback (tests/common/apiserver.rs)
//! that speaks the real list/watch wire format to kube-rs's real client: initial sync, updates,
//! deletes, 410 Gone relists, API server restarts, readiness.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::apiserver::FakeApi;
use common::*;
use std::time::{Duration, Instant};

fn ingress() -> String {
    IngressYaml::new("web")
        .nginx("affinity", "cookie")
        .rule(Some("shop.example.com"), "/", "web")
        .build()
        .replace("spec:\n", "spec:\n  ingressClassName: remora\n")
}

/// The cluster of the tests: class, Service, Ingress, and an EndpointSlice of `pods`.
fn seed(api: &FakeApi, pods: &[&Pod]) {
    api.apply(CLASS);
    api.apply(&service_yaml("web"));
    api.apply(&slice_yaml("web", "default", None, pods));
    api.apply(&ingress());
}

fn controller(api: &FakeApi, dir: &Dir, extra: &[&str]) -> Remora {
    let kubeconfig = api.kubeconfig(dir).display().to_string();
    let mut args: Vec<String> = ["controller", "--kubeconfig", &kubeconfig, "--workers", "2"]
        .map(String::from)
        .to_vec();
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    Remora::start(&args)
}

async fn shop(remora: &Remora) -> Resp {
    get(&remora.url("/"), &[("host", "shop.example.com")]).await
}

/// Wait (bounded) until a request reaches a pod named `pod`; the time it took.
async fn until_routed_to(remora: &Remora, pod: &str) -> Duration {
    let started = Instant::now();
    loop {
        if shop(remora).await.body.contains(pod) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{pod} never reached"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_then_follows_endpoint_changes_updates_and_deletes() {
    let mut all = pods("web-7d9f8b6c5d", 3).await;
    let api = FakeApi::start().await;
    let dir = Dir::new();
    seed(&api, &[&all[0], &all[1]]);
    let remora = controller(&api, &dir, &[]);
    remora.wait_ready().await;

    let mut session = Session::with_host("shop.example.com");
    let first = session.get(&remora.url("/")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.cookie().is_some(),
        "affinity from the Ingress annotation"
    );
    for _ in 0..5 {
        assert_eq!(session.get(&remora.url("/")).await.body, first.body);
    }

    // Scale out at the API server: the new pod takes traffic.
    let slice = slice_yaml("web", "default", None, &[&all[0], &all[1], &all[2]]);
    let changed = Instant::now();
    api.apply(&slice);
    until_routed_to(&remora, &all[2].name).await;
    println!(
        "EndpointSlice change at the API server to the first request routed by it: {} ms",
        changed.elapsed().as_millis()
    );

    // An annotation change re-translates: the cookie name follows.
    api.apply(
        &ingress().replace(
            "    nginx.ingress.kubernetes.io/affinity: \"cookie\"\n",
            "    nginx.ingress.kubernetes.io/affinity: \"cookie\"\n    nginx.ingress.kubernetes.io/session-cookie-name: \"shopper\"\n",
        ),
    );
    let started = Instant::now();
    loop {
        if shop(&remora)
            .await
            .cookie()
            .is_some_and(|(n, _)| n == "shopper")
        {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Deleting the Ingress removes the route.
    api.delete("Ingress", "default", "web");
    let started = Instant::now();
    while shop(&remora).await.status != 404 {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    all.truncate(0);
}

/// /readyz is 503 while the API server cannot be listed, and 200 once the first full sync is
/// served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_first_sync() {
    let pods = pods("web-7d9f8b6c5e", 1).await;
    let mut api = FakeApi::start().await;
    seed(&api, &[&pods[0]]);
    api.stop();
    let dir = Dir::new();
    let remora = controller(&api, &dir, &[]);
    assert_eq!(remora.readyz().await, 503);
    assert_eq!(shop(&remora).await.status, 404);
    api.restart().await;
    remora.wait_ready().await;
    assert_eq!(shop(&remora).await.status, 200);
}

/// A watch that expires (410 Gone) is followed by a new list; changes made meanwhile are seen. An
/// API server restart leaves the last configuration serving, and changes made while it was down
/// arrive once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_watch_expiry_and_api_server_restarts() {
    let pods = pods("web-7d9f8b6c5f", 3).await;
    let mut api = FakeApi::start().await;
    seed(&api, &[&pods[0]]);
    let dir = Dir::new();
    let remora = controller(&api, &dir, &[]);
    remora.wait_ready().await;
    assert!(shop(&remora).await.body.contains(&pods[0].name));
    let lists_before = count_lists(&api);

    api.expire_watches();
    eventually("410 Gone makes the watcher list again", || {
        count_lists(&api) > lists_before
    })
    .await;
    api.apply(&slice_yaml("web", "default", None, &[&pods[1]]));
    until_routed_to(&remora, &pods[1].name).await;

    api.stop();
    for _ in 0..5 {
        let r = shop(&remora).await;
        assert_eq!(r.status, 200, "the last configuration keeps serving");
        assert!(r.body.contains(&pods[1].name));
    }
    api.apply(&slice_yaml("web", "default", None, &[&pods[2]]));
    api.restart().await;
    until_routed_to(&remora, &pods[2].name).await;
}

/// Objects deleted and changed while the watches were down are what a relist finds: the list
/// replaces each watch's objects as a whole (an Ingress no longer listed stops routing), and the
/// objects it lists unchanged keep routing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_replaces_what_changed_while_the_watches_were_down() {
    let pods = pods("web-7d9f8b6c60", 2).await;
    let mut api = FakeApi::start().await;
    seed(&api, &[&pods[0]]);
    let gone = IngressYaml::new("gone")
        .rule(Some("gone.example.com"), "/", "web")
        .build()
        .replace("spec:\n", "spec:\n  ingressClassName: remora\n");
    api.apply(&gone);
    let dir = Dir::new();
    let remora = controller(&api, &dir, &[]);
    remora.wait_ready().await;
    assert!(gone_host(&remora).await.body.contains(&pods[0].name));
    let lists_before = count_lists(&api);

    api.stop();
    api.delete("Ingress", "default", "gone");
    api.apply(&slice_yaml("web", "default", None, &[&pods[1]]));
    // Every version so far is gone: the watches cannot resume, they list again.
    api.expire_watches();
    api.restart().await;
    eventually("the watchers list again", || {
        count_lists(&api) > lists_before
    })
    .await;
    until_routed_to(&remora, &pods[1].name).await;
    let started = Instant::now();
    while gone_host(&remora).await.status != 404 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the Ingress deleted meanwhile still routes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = shop(&remora).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(&pods[1].name));
}

async fn gone_host(remora: &Remora) -> Resp {
    get(&remora.url("/"), &[("host", "gone.example.com")]).await
}

fn count_lists(api: &FakeApi) -> usize {
    api.requests()
        .iter()
        .filter(|r| {
            r.starts_with("GET /apis/discovery.k8s.io/v1/endpointslices")
                && !r.contains("watch=true")
        })
        .count()
}

fn lease_holder(api: &FakeApi) -> Option<String> {
    api.get("Lease", "default", "remora-leader")?["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

fn lb_status(api: &FakeApi) -> serde_json::Value {
    api.get("Ingress", "default", "web")
        .map(|i| i["status"]["loadBalancer"]["ingress"].clone())
        .unwrap_or_default()
}

/// Two replicas elect one leader through a Lease; the leader writes the Ingress status
/// (`--publish-status-address`) and an Event for a bad annotation. When it stops, it releases
/// the Lease and the other replica takes over and keeps the status right; when that one stops
/// too, the status is cleared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_writes_status_and_events_and_hands_over() {
    let pods = pods("web-7d9f8b6c60", 1).await;
    let api = FakeApi::start().await;
    seed(&api, &[&pods[0]]);
    api.apply(
        &ingress().replace(
            "    nginx.ingress.kubernetes.io/affinity: \"cookie\"\n",
            "    nginx.ingress.kubernetes.io/affinity: \"cookie\"\n    nginx.ingress.kubernetes.io/session-cookie-samesite: \"Sometimes\"\n",
        ),
    );
    // A ConfigMap key with an invalid value: an Event on the ConfigMap.
    api.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remora-config\n  namespace: default\ndata:\n  hsts-max-age: \"soon\"\n",
    );
    let dir = Dir::new();
    let replica = |name: &str| {
        controller(
            &api,
            &dir,
            &[
                "--configmap",
                "default/remora-config",
                "--publish-status-address",
                "192.0.2.10,lb.example.com",
                "--election-identity",
                name,
                "--election-retry-ms",
                "100",
            ],
        )
    };
    let mut a = replica("replica-a");
    a.wait_ready().await;
    eventually("replica-a leads", || {
        lease_holder(&api).as_deref() == Some("replica-a")
    })
    .await;
    let mut b = replica("replica-b");
    b.wait_ready().await;
    let want = serde_json::json!([{"ip": "192.0.2.10"}, {"hostname": "lb.example.com"}]);
    eventually("the leader writes the status", || lb_status(&api) == want).await;
    eventually("an Event names the bad annotation", || {
        api.list("Event").iter().any(|e| {
            e["regarding"]["name"] == "web"
                && e["type"] == "Warning"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("session-cookie-samesite"))
        })
    })
    .await;
    eventually("an Event names the ConfigMap's bad key", || {
        api.list("Event").iter().any(|e| {
            e["regarding"]["kind"] == "ConfigMap"
                && e["regarding"]["name"] == "remora-config"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("hsts-max-age"))
        })
    })
    .await;
    assert_eq!(
        lease_holder(&api).as_deref(),
        Some("replica-a"),
        "one leader at a time"
    );

    // Someone overwrites the status; the leader stops: the follower takes over and fixes it.
    api.apply(
        &serde_json::to_string(&{
            let mut ing = api.get("Ingress", "default", "web").unwrap();
            ing["kind"] = "Ingress".into();
            ing["status"] =
                serde_json::json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}});
            ing
        })
        .unwrap(),
    );
    a.terminate();
    assert_eq!(a.wait_exit(Duration::from_secs(15)), Some(0));
    eventually("replica-b takes over", || {
        lease_holder(&api).as_deref() == Some("replica-b")
    })
    .await;
    eventually("the new leader restores the status", || {
        lb_status(&api) == want
    })
    .await;
    // Both replicas served traffic all along; the follower still does.
    assert_eq!(shop(&b).await.status, 200);

    // The last replica stops: nobody takes over, so its addresses leave the status (as
    // ingress-nginx's --update-status-on-shutdown does), while they stayed on the hand-over.
    b.terminate();
    assert_eq!(b.wait_exit(Duration::from_secs(15)), Some(0));
    assert_eq!(lb_status(&api), serde_json::json!([]));
}

/// `remora cookie-secret` (deploy/'s Job) creates the cookie key Secret once; running it again
/// keeps the key, so sessions survive re-deployments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_secret_is_created_once() {
    let api = FakeApi::start().await;
    let dir = Dir::new();
    let kubeconfig = api.kubeconfig(&dir);
    let run = move || {
        let out = std::process::Command::new(binary())
            .args([
                "cookie-secret",
                "--secret",
                "remora/remora-cookie-secret",
                "--kubeconfig",
            ])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let value = |api: &FakeApi| {
        api.get("Secret", "remora", "remora-cookie-secret").unwrap()["data"]["cookie-secret"]
            .clone()
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(out.contains("created"), "{out}");
    let first = value(&api);
    assert_eq!(
        first.as_str().map(str::len),
        Some(88),
        "64 hex characters, base64-encoded"
    );
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(out.contains("kept"), "{out}");
    assert_eq!(value(&api), first);
}

/// `--namespace` limits what is watched (an Ingress elsewhere is not served), and
/// `--publish-service` writes that Service's load balancer address into the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_scope_and_publish_service() {
    let pods = pods("web-7d9f8b6c61", 1).await;
    let api = FakeApi::start().await;
    api.apply(CLASS);
    for ns in ["shop", "other"] {
        let in_ns =
            |yaml: String| yaml.replace("metadata:\n", &format!("metadata:\n  namespace: {ns}\n"));
        api.apply(&in_ns(service_yaml("web")));
        api.apply(&slice_yaml("web", ns, None, &[&pods[0]]));
        api.apply(&in_ns(
            ingress().replace("shop.example.com", &format!("{ns}.example.com")),
        ));
    }
    api.apply(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: remora\n  namespace: remora\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.10\n  ports:\n  - port: 80\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 198.51.100.7\n",
    );
    let dir = Dir::new();
    let remora = controller(
        &api,
        &dir,
        &[
            "--namespace",
            "shop",
            "--publish-service",
            "remora/remora",
            "--election-retry-ms",
            "100",
        ],
    );
    remora.wait_ready().await;
    assert_eq!(
        get(&remora.url("/"), &[("host", "shop.example.com")])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&remora.url("/"), &[("host", "other.example.com")])
            .await
            .status,
        404
    );
    let status = |ns: &str| {
        api.get("Ingress", ns, "web")
            .map(|i| i["status"]["loadBalancer"]["ingress"].clone())
            .unwrap_or_default()
    };
    eventually("the published Service's address", || {
        status("shop") == serde_json::json!([{"ip": "198.51.100.7"}])
    })
    .await;
    assert!(status("other").is_null(), "not ours: {}", status("other"));
}

/// `--configmap`: that ConfigMap (by name, in its namespace) is the global one; missing, the
/// defaults; created or changed, the next configuration uses it. The ConfigMaps it names
/// (`add-headers`) are watched too, and a change to one is a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_the_configmap() {
    let pods = pods("web-7f8e9d0c1b", 1).await;
    let api = FakeApi::start().await;
    seed(&api, &[&pods[0]]);
    let decoy = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\n  namespace: ingress-nginx\ndata:\n  proxy-body-size: 1k\n";
    api.apply(decoy);
    let dir = Dir::new();
    let remora = controller(&api, &dir, &["--configmap", "ingress-nginx/remora"]);
    remora.wait_ready().await;
    remora
        .wait_log("ConfigMap ingress-nginx/remora: not found")
        .await;
    let url = remora.url("/echo-body");
    let post = |len: usize| {
        request(
            "POST",
            &url,
            &[("host", "shop.example.com")],
            bytes::Bytes::from(vec![b'x'; len]),
        )
    };
    assert_eq!(post(4096).await.status, 200);
    // Other objects change too (status, Leases): wait for the body limit, not for a generation.
    let until = |len: usize, status: u16| {
        let post = &post;
        async move {
            let started = Instant::now();
            while post(len).await.status != status {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "{len} bytes: never {status}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    api.apply(&decoy.replace("name: other", "name: remora"));
    until(4096, 413).await;
    assert_eq!(post(1024).await.status, 200);
    api.apply(
        &decoy
            .replace("name: other", "name: remora")
            .replace("1k", "8k"),
    );
    until(4096, 200).await;
    assert_eq!(post(16384).await.status, 413);

    let headers = |value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: ingress-nginx\ndata:\n  X-Served-By: {value}\n")
    };
    api.apply(&headers("one"));
    api.apply(
        &decoy
            .replace("name: other", "name: remora")
            .replace("proxy-body-size: 1k", "add-headers: ingress-nginx/extra"),
    );
    let served_by = |want: &'static str| {
        let url = remora.url("/");
        async move {
            let started = Instant::now();
            loop {
                let r = get(&url, &[("host", "shop.example.com")]).await;
                if r.headers.get("x-served-by").is_some_and(|v| v == want) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "never X-Served-By: {want}: {:?}",
                    r.headers
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    served_by("one").await;
    api.apply(&headers("two"));
    served_by("two").await;
}
