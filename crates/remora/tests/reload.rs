//! Live configuration: file edits picked up without restart, broken files reported while the last
//! good configuration keeps serving, files added and removed, class filtering.

mod common;
use common::*;

fn ingress(name: &str, path: &str, service: &str, cookie: &str) -> String {
    IngressYaml::new(name)
        .nginx("affinity", "cookie")
        .nginx("session-cookie-name", cookie)
        .rule(None, path, service)
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn annotation_edits_apply_without_restart() {
    let (_pods, dir) = service_dir("app", "app-5f7d9c8b6-h", 2).await;
    dir.write("ing.yaml", &ingress("app", "/", "app", "first"));
    let remora = Remora::serve(&[dir.path()], &[]);
    assert_eq!(
        get(&remora.url("/"), &[]).await.cookie().unwrap().0,
        "first"
    );

    let mut latencies = Vec::new();
    for (i, name) in ["second", "third", "fourth"].iter().enumerate() {
        let g = remora.generation().await;
        dir.write("ing.yaml", &ingress("app", "/", "app", name));
        let (_, took) = remora.wait_generation_after(g).await;
        latencies.push(took);
        let r = get(&remora.url("/"), &[]).await;
        assert_eq!(r.cookie().unwrap().0, *name, "edit {i}");
    }
    println!("file edit -> configuration served: {latencies:?} (debounce window 20-60 ms)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_is_reported_and_the_last_good_configuration_keeps_serving() {
    let (_pods, dir) = service_dir("app", "app-5f7d9c8b6-k", 2).await;
    let ing = dir.write("ing.yaml", &ingress("app", "/", "app", "good"));
    let remora = Remora::serve(&[dir.path()], &[]);
    assert_eq!(get(&remora.url("/"), &[]).await.status, 200);

    // YAML syntax error: reported with path and line; still served as before.
    dir.write(
        "ing.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\nspec: [\n",
    );
    remora.wait_log(&format!("{}:", ing.display())).await;
    let log = remora.stderr_text();
    let line = log
        .lines()
        .find(|l| l.contains(&ing.display().to_string()))
        .unwrap();
    assert!(
        line.contains("ing.yaml:5") || line.contains("ing.yaml:6"),
        "{line}"
    );
    assert!(line.contains("last good"), "{line}");
    let r = get(&remora.url("/"), &[]).await;
    assert_eq!(
        (r.status.as_u16(), r.cookie().unwrap().0),
        (200, "good".to_owned())
    );

    // Schema error: the field is named.
    dir.write("ing.yaml", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app\nspec:\n  rules: 42\n");
    remora.wait_log("spec.rules").await;
    assert_eq!(get(&remora.url("/"), &[]).await.status, 200);

    // Fixed: applied.
    let g = remora.generation().await;
    dir.write("ing.yaml", &ingress("app", "/", "app", "fixed"));
    remora.wait_generation_after(g).await;
    assert_eq!(
        get(&remora.url("/"), &[]).await.cookie().unwrap().0,
        "fixed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_added_and_removed() {
    let (_pods, dir) = service_dir("app", "app-5f7d9c8b6-f", 1).await;
    let remora = Remora::serve(&[dir.path()], &[]);
    assert_eq!(
        get(&remora.url("/"), &[]).await.status,
        404,
        "no Ingress yet"
    );

    let g = remora.generation().await;
    let sub = dir.path().join("ingresses");
    std::fs::create_dir(&sub).unwrap();
    dir.write("ingresses/app.yml", &ingress("app", "/", "app", "c"));
    remora.wait_generation_after(g).await;
    assert_eq!(
        get(&remora.url("/"), &[]).await.status,
        200,
        "file in a new subdirectory"
    );

    let g = remora.generation().await;
    std::fs::remove_file(sub.join("app.yml")).unwrap();
    remora.wait_generation_after(g).await;
    assert_eq!(
        get(&remora.url("/"), &[]).await.status,
        404,
        "removed file, removed route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_class_filter() {
    let pods = pods("what-is-my-pod-deployment-78f7cd684f", 1).await;
    // Seed 002 carries the legacy annotation kubernetes.io/ingress.class: nginx.
    let dir = seed_002_dir(&pods);
    let mut other =
        ingress("other", "/other", "what-is-my-pod", "x").replace("number: 80", "number: 8080");
    other = other.replace("spec:\n", "spec:\n  ingressClassName: traefik\n");
    dir.write("other.yaml", &other);

    let nginx = Remora::serve(&[dir.path()], &["--ingress-class", "nginx"]);
    assert_eq!(get(&nginx.url("/"), &[]).await.status, 200);
    assert_eq!(
        get(&nginx.url("/other"), &[]).await.status,
        200,
        "/other falls under the seed's / prefix"
    );
    assert!(get(&nginx.url("/other"), &[]).await.cookie().unwrap().0 == "stickounet");
    let diags = nginx.status().await["diagnostics"].to_string();
    assert!(
        diags.contains("class \\\"traefik\\\" is not one of --ingress-class"),
        "{diags}"
    );

    let traefik = Remora::serve(&[dir.path()], &["--ingress-class", "traefik"]);
    assert_eq!(get(&traefik.url("/"), &[]).await.status, 404);
    assert_eq!(
        get(&traefik.url("/other"), &[]).await.cookie().unwrap().0,
        "x"
    );

    let all = Remora::serve(&[dir.path()], &[]);
    assert_eq!(get(&all.url("/other"), &[]).await.cookie().unwrap().0, "x");
    assert_eq!(
        get(&all.url("/"), &[]).await.cookie().unwrap().0,
        "stickounet"
    );
}
