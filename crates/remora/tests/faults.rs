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
    let dir = Dir::new();
    dir.write("svc.yaml", SERVICE);
    dir.write("ing.yaml", &ingress("persistent"));
    dir.write(
        "slice.yaml",
        &slice_yaml("web", "default", Some("http"), &refs),
    );
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
