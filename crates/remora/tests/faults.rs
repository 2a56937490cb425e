//! Faults under load: live sessions keep sending requests while their pods die or are replaced.
//! Bounded: a fixed number of sessions, each stopping when the scenario ends (at most ~30 s).
//! The figures are printed (`cargo test -p remora --test faults -- --nocapture`).

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - name: http
    port: 80
";

fn ingress(mode: &str) -> String {
    IngressYaml::new("web")
        .nginx("affinity", "cookie")
        .nginx("affinity-mode", mode)
        .rule(None, "/", "web")
        .port_name("http")
        .build()
}

/// A directory serving the Service `web` (these pods) through the Ingress `web` with cookie
/// affinity in `mode`.
fn web_dir(mode: &str, pods: &[&Pod]) -> Dir {
    let dir = Dir::new();
    dir.write("svc.yaml", SERVICE);
    dir.write("ing.yaml", &ingress(mode));
    dir.write(
        "slice.yaml",
        &slice_yaml("web", "default", Some("http"), pods),
    );
    dir
}

#[derive(Default)]
struct Counts {
    ok: AtomicUsize,
    failed: AtomicUsize,
    moved: AtomicUsize,
}

/// `sessions` cookie-jar clients sending GETs back to back until `stop`.
fn load(
    url: String,
    sessions: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..sessions)
        .map(|_| {
            let (url, stop, counts) = (url.clone(), stop.clone(), counts.clone());
            tokio::spawn(async move {
                let mut s = Session::default();
                let mut last: Option<String> = None;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let r = s.get(&url).await;
                    if r.status != 200 {
                        counts.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                    if last.as_ref().is_some_and(|l| *l != r.body) {
                        counts.moved.fetch_add(1, Ordering::Relaxed);
                    }
                    last = Some(r.body);
                }
            })
        })
        .collect()
}

async fn wait_requests(counts: &Counts, at_least: usize) {
    let started = Instant::now();
    while counts.ok.load(Ordering::Relaxed) < at_least {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "load did not start"
        );
        tokio::task::yield_now().await;
    }
}

/// The pod that 100 live sessions are pinned to dies without warning (still listed in the
/// EndpointSlice, as before the EndpointSlice controller notices): no GET fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_pinned_pod_under_load_fails_no_request() {
    let mut pods = pods("web-5c6d7e8f9-k", 5).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let dir = web_dir("persistent", &refs);
    let remora = Remora::serve(&[dir.path()], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let tasks = load(remora.url("/"), 100, stop.clone(), counts.clone());
    wait_requests(&counts, 2_000).await;
    let before = pods[2].hits.load(Ordering::Relaxed);
    pods[2].kill();
    let killed_at = counts.ok.load(Ordering::Relaxed);
    wait_requests(&counts, killed_at + 3_000).await;
    // Then the EndpointSlice catches up.
    let g = remora.generation().await;
    let remaining: Vec<&Pod> = pods
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, p)| p)
        .collect();
    dir.write(
        "slice.yaml",
        &slice_yaml("web", "default", Some("http"), &remaining),
    );
    remora.wait_generation_after(g).await;
    let after_update = counts.ok.load(Ordering::Relaxed);
    wait_requests(&counts, after_update + 1_000).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed, moved) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.moved.load(Ordering::Relaxed),
    );
    println!(
        "pinned pod killed under load (100 sessions, persistent): {ok} requests ok, {failed} failed, {moved} session moves (pod had served {before})"
    );
    assert!(before > 0);
    assert_eq!(failed, 0);
    assert!(moved <= 100, "each session moves at most once");
}

/// A rolling update of all 5 pods under load: each old pod turns terminating (still serving),
/// its replacement becomes ready, the old one leaves the EndpointSlice, then dies. No request
/// fails, and sessions move only when their pod is really gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_update_under_load_fails_no_request() {
    for mode in ["persistent", "balanced"] {
        rolling_update(mode).await;
    }
}

async fn rolling_update(mode: &str) {
    // Pods 0-4 are the old ReplicaSet, 5-9 the new one.
    let mut all = pods("web-5c6d7e8f9-r", 10).await;
    let new: Vec<Pod> = all.split_off(5);
    let mut old = all;
    let dir = Dir::new();
    dir.write("svc.yaml", SERVICE);
    dir.write("ing.yaml", &ingress(mode));
    dir.write(
        "slice.yaml",
        &slice_yaml(
            "web",
            "default",
            Some("http"),
            &old.iter().collect::<Vec<_>>(),
        ),
    );
    let remora = Remora::serve(&[dir.path()], &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let tasks = load(remora.url("/"), 100, stop.clone(), counts.clone());
    wait_requests(&counts, 1_000).await;
    for i in 0..5 {
        // Old pod i terminating but serving; new pod i ready.
        let listed: Vec<&Pod> = old[i..].iter().chain(new[..=i].iter()).collect();
        let g = remora.generation().await;
        dir.write(
            "slice.yaml",
            &slice_yaml_with(
                "web",
                "default",
                Some("http"),
                &listed,
                &[(0, false, true, true)],
            ),
        );
        remora.wait_generation_after(g).await;
        let now = counts.ok.load(Ordering::Relaxed);
        wait_requests(&counts, now + 300).await;
        // Old pod i removed, then stopped.
        let listed: Vec<&Pod> = old[i + 1..].iter().chain(new[..=i].iter()).collect();
        let g = remora.generation().await;
        dir.write(
            "slice.yaml",
            &slice_yaml("web", "default", Some("http"), &listed),
        );
        remora.wait_generation_after(g).await;
        old[i].kill();
        let now = counts.ok.load(Ordering::Relaxed);
        wait_requests(&counts, now + 300).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let (ok, failed, moved) = (
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.moved.load(Ordering::Relaxed),
    );
    println!("rolling update of 5 pods under load (100 sessions, {mode}): {ok} requests ok, {failed} failed, {moved} session moves");
    assert_eq!(failed, 0);
    let served_by_new: usize = new.iter().map(|p| p.hits.load(Ordering::Relaxed)).sum();
    assert!(served_by_new > 0);
}

/// A TCP balancer in front of Remora's replicas, as a cloud load balancer or HAProxy `mode tcp`
/// with `option redispatch`: each connection goes to the next replica that accepts it.
async fn tcp_balancer(replicas: Vec<std::net::SocketAddr>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.9.100:0")
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let (replicas, next) = (replicas.clone(), next.clone());
            tokio::spawn(async move {
                let first = next.fetch_add(1, Ordering::Relaxed);
                for i in 0..replicas.len() {
                    let to = replicas[(first + i) % replicas.len()];
                    if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A free port on `ip`, for a replica that must come back at the same address.
fn free_port(ip: &str) -> std::net::SocketAddr {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A replica of Remora at a fixed HTTP address, sharing the cookie secret.
fn replica(dir: &Dir, http: std::net::SocketAddr, secret: &str) -> Remora {
    let ip = http.ip().to_string();
    Remora::start(
        &[
            "serve",
            "--manifests",
            &dir.path().display().to_string(),
            "--listen-http",
            &http.to_string(),
            "--listen-https",
            &format!("{ip}:0"),
            "--admin",
            &format!("{ip}:0"),
            "--workers",
            "1",
            "--cookie-secret-file",
            secret,
            // Clients are told to leave kept-alive connections before the listener closes.
            "--shutdown-grace-period",
            "1",
        ]
        .map(String::from),
    )
}

/// Remora's own rolling restart under load: two replicas behind a TCP balancer, each in turn
/// stopped with SIGTERM (as Kubernetes stops a pod) and started again while 100 sessions send
/// requests, some of them slow. Clients retry a request once when its kept-alive connection was
/// closed under it, as browsers do; with the drain (`--shutdown-grace-period`) that is rare (a
/// client that sent nothing during it). No request fails, in-flight requests complete, and no session moves (the
/// replicas share the cookie secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_remora_under_load_fails_no_request() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let pods = pods("web-7f8e9d0c1-r", 3).await;
    let refs: Vec<&Pod> = pods.iter().collect();
    let dir = web_dir("persistent", &refs);
    // A Service of its own with one pod, so that a request in flight there can be seen arrive.
    let slow = common::pods("slow-5b6c7d8e9-r", 1).await;
    dir.write("slow-svc.yaml", &SERVICE.replace("name: web", "name: slow"));
    dir.write(
        "slow-ing.yaml",
        &IngressYaml::new("slow")
            .rule(Some("slow.example.com"), "/", "slow")
            .port_name("http")
            .build(),
    );
    dir.write(
        "slow-slice.yaml",
        &slice_yaml("slow", "default", Some("http"), &[&slow[0]]),
    );
    let secrets = Dir::new();
    let secret = secrets.write("secret", "0123456789abcdef-rolling-restart\n");
    let secret = secret.display().to_string();
    let addrs = [free_port("127.0.9.1"), free_port("127.0.9.2")];
    let mut replicas = [
        replica(&dir, addrs[0], &secret),
        replica(&dir, addrs[1], &secret),
    ];
    let front = tcp_balancer(addrs.to_vec()).await;

    #[derive(Default)]
    struct Tally {
        ok: AtomicUsize,
        slow_ok: AtomicUsize,
        retried: AtomicUsize,
        failed: AtomicUsize,
        moved: AtomicUsize,
    }
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (tally, stop) = (tally.clone(), stop.clone());
            tokio::spawn(async move {
                // One client (and pool of kept-alive connections) per session, as a browser.
                let client =
                    Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
                let mut cookie: Option<String> = None;
                let mut pod: Option<bytes::Bytes> = None;
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    n += 1;
                    let path = if (n + i) % 10 == 0 { "/slow" } else { "/" };
                    let mut answer = None;
                    for attempt in 0..2 {
                        let mut req = http::Request::get(format!("http://{front}{path}"));
                        if let Some(c) = &cookie {
                            req = req.header("cookie", c);
                        }
                        let sent = tokio::time::timeout(
                            Duration::from_secs(15),
                            client.request(req.body(Full::default()).unwrap()),
                        )
                        .await;
                        if let Ok(Ok(resp)) = sent {
                            let status = resp.status();
                            let set = resp
                                .headers()
                                .get("set-cookie")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.split(';').next())
                                .map(str::to_owned);
                            let body = resp.into_body().collect().await.map(|b| b.to_bytes());
                            if let Ok(body) = body {
                                answer = Some((status, set, body));
                                break;
                            }
                        }
                        if attempt == 0 {
                            tally.retried.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let Some((status, set, body)) = answer else {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    if status != http::StatusCode::OK {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    tally.ok.fetch_add(1, Ordering::Relaxed);
                    if path == "/slow" {
                        tally.slow_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(set) = set {
                        cookie = Some(set);
                    }
                    if pod.as_ref().is_some_and(|p| *p != body) {
                        tally.moved.fetch_add(1, Ordering::Relaxed);
                    }
                    pod = Some(body);
                }
            })
        })
        .collect();
    let wait_ok = |at_least: usize| {
        let tally = tally.clone();
        async move {
            let started = Instant::now();
            while tally.ok.load(Ordering::Relaxed) < at_least {
                assert!(started.elapsed() < Duration::from_secs(30), "load stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_ok(1_000).await;
    for i in 0..2 {
        let served_before = tally.ok.load(Ordering::Relaxed);
        // A request in flight when SIGTERM comes is answered.
        let hits = slow[0].hits.load(Ordering::Relaxed);
        let url = format!("http://{}/slow", addrs[i]);
        let in_flight =
            tokio::spawn(async move { get(&url, &[("host", "slow.example.com")]).await });
        eventually("the slow request reaches its pod", || {
            slow[0].hits.load(Ordering::Relaxed) > hits
        })
        .await;
        replicas[i].terminate();
        let code = tokio::task::block_in_place(|| replicas[i].wait_exit(Duration::from_secs(20)));
        assert_eq!(code, Some(0), "replica {i} exits cleanly on SIGTERM");
        let answered = in_flight.await.unwrap();
        assert_eq!(answered.status, 200, "the request in flight completes");
        // The other replica serves alone for a while, then this one comes back.
        wait_ok(tally.ok.load(Ordering::Relaxed) + 500).await;
        replicas[i] = tokio::task::block_in_place(|| replica(&dir, addrs[i], &secret));
        wait_ok(served_before + 2_000).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    let (ok, slow, retried, failed, moved) = (
        load(&tally.ok),
        load(&tally.slow_ok),
        load(&tally.retried),
        load(&tally.failed),
        load(&tally.moved),
    );
    println!(
        "rolling restart of 2 Remora replicas under load (100 sessions): {ok} requests ok ({slow} slow), {retried} retried on a closed kept-alive connection, {failed} failed, {moved} session moves"
    );
    assert_eq!(failed, 0);
    assert_eq!(moved, 0, "sessions stay on their pods across replicas");
    assert!(slow > 0);
}
