//! `remora demo` and `remora check` as a user runs them: the seed's pods on loopback addresses,
//! live edits of the manifest file, and the checker's verdicts.

#![allow(clippy::unwrap_used)]

mod common;
use common::*;
use std::process::Command;

/// Loopback addresses for the demo's pods that the other helpers do not use.
fn first_pod_ip(test: u8) -> String {
    format!("127.251.{}.{}", std::process::id() % 250, 11 + test * 20)
}

/// `(pod name, address)` of every endpoint the demo derived.
async fn endpoints(remora: &Remora) -> Vec<(String, String)> {
    let status = remora.status().await;
    status["backends"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pod"].as_str().unwrap().to_owned(),
                e["addr"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_a_manifest_file_and_follows_its_edits() {
    let dir = Dir::new();
    let seed = seed("seed-002-what-is-my-pod.yaml");
    let file = dir.write("app.yaml", &seed);
    let mut args: Vec<String> = [
        "demo",
        "--manifests",
        &file.display().to_string(),
        "--first-pod-ip",
        &first_pod_ip(0),
    ]
    .map(String::from)
    .to_vec();
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    let remora = Remora::start(&args);
    let pods = endpoints(&remora).await;
    assert_eq!(pods.len(), 3);
    for (p, _) in &pods {
        // what-is-my-pod-deployment-<pod-template-hash>-<suffix>
        let parts: Vec<&str> = p.rsplitn(3, '-').collect();
        assert_eq!(parts[2], "what-is-my-pod-deployment", "{p}");
        assert_eq!((parts[1].len(), parts[0].len()), (10, 5), "{p}");
    }
    assert!(remora
        .stdout_text()
        .contains("curl --cookie cookie.txt --cookie-jar cookie.txt"));

    // The seed's loop.
    let mut jar = Session::default();
    let first = jar.get(&remora.url("/")).await.body;
    for _ in 0..5 {
        assert_eq!(jar.get(&remora.url("/")).await.body, first);
    }

    // replicas 3 -> 5, and a new cookie name: applied live.
    let g = remora.generation().await;
    dir.write(
        "app.yaml",
        &seed
            .replace("replicas: 3", "replicas: 5")
            .replace("\"stickounet\"", "\"stickounet2\""),
    );
    remora.wait_generation_after(g).await;
    let five = endpoints(&remora).await;
    assert_eq!(five.len(), 5);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let r = get(&remora.url("/"), &[]).await;
        assert_eq!(r.cookie().unwrap().0, "stickounet2");
        seen.insert(r.body);
    }
    assert_eq!(seen.len(), 5, "new sessions reach the new pods: {seen:?}");

    // 5 -> 2: three pods stop, after leaving the EndpointSlice.
    let g = remora.generation().await;
    dir.write("app.yaml", &seed.replace("replicas: 3", "replicas: 2"));
    remora.wait_generation_after(g).await;
    let two = endpoints(&remora).await;
    assert_eq!(two.len(), 2);
    for _ in 0..20 {
        assert_eq!(get(&remora.url("/"), &[]).await.status, 200);
    }
    let stopped: Vec<&(String, String)> = five.iter().filter(|p| !two.contains(p)).collect();
    assert_eq!(stopped.len(), 3);
    // Stopped pods are really gone: their addresses refuse connections (bounded wait: they stop
    // right after the new configuration is published).
    for (_, addr) in stopped {
        let started = std::time::Instant::now();
        while tokio::net::TcpStream::connect(addr.as_str()).await.is_ok() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "{addr} still answers"
            );
            tokio::task::yield_now().await;
        }
    }
}

fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary())
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tells_sticky_from_not_sticky() {
    let pods = pods("what-is-my-pod-deployment-78f7cd684f", 3).await;
    let dir = seed_002_dir(&pods);
    let sticky = Remora::serve(&[dir.path()], &[]);
    let url = sticky.url("/");
    let (code, out) =
        tokio::task::spawn_blocking(move || check(&[&url, "--sessions", "8", "--requests", "5"]))
            .await
            .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("8/8 sessions sticky, 0 moved"), "{out}");
    assert!(out.contains('█'), "{out}");
    let url = sticky.url("/");
    let (code, out) = tokio::task::spawn_blocking(move || {
        check(&[
            &url,
            "--sessions",
            "4",
            "--requests",
            "3",
            "--by-header",
            "x-pod-name",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("on what-is-my-pod-deployment-78f7cd684f-"),
        "{out}"
    );

    // The same without the affinity annotations: round robin, sessions move.
    let plain = Dir::new();
    let seed_without_affinity: String = seed("seed-002-what-is-my-pod.yaml")
        .lines()
        .filter(|l| !l.contains("nginx.ingress.kubernetes.io/"))
        .map(|l| format!("{l}\n"))
        .collect();
    plain.write("seed.yaml", &seed_without_affinity);
    plain.write(
        "slices.yaml",
        &slice_yaml(
            "what-is-my-pod",
            "default",
            None,
            &pods.iter().collect::<Vec<_>>(),
        ),
    );
    let round_robin = Remora::serve(&[plain.path()], &[]);
    let url = round_robin.url("/");
    let (code, out) =
        tokio::task::spawn_blocking(move || check(&[&url, "--sessions", "3", "--requests", "4"]))
            .await
            .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("MOVED"), "{out}");
    assert!(out.contains("the server set no cookie"), "{out}");

    // --resolve, as curl's: seed 000's host DOMAIN.
    let deno = common::pods("deno-hello-7c9d8f6b5", 2).await;
    let d = seed_000_dir(&deno);
    let domain = Remora::serve(&[d.path()], &[]);
    let port = domain.http.port();
    let (code, out) = tokio::task::spawn_blocking(move || {
        check(&[
            &format!("http://DOMAIN:{port}/"),
            "--resolve",
            &format!("DOMAIN:{port}:127.0.0.1"),
            "--sessions",
            "4",
            "--requests",
            "3",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("4/4 sessions sticky"), "{out}");
}
