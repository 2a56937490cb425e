//! `deploy/` and the Dockerfile: the kustomize base and overlay render (with kubectl when the
//! machine has it, else every file parses and every listed resource exists), and the arguments the
//! Deployment and Job give the binary are ones it accepts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::binary;
use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn docs(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_yaml::Value| !v.is_null())
        .collect()
}

/// Every object of a kustomization, following `resources` (without kubectl's patches).
fn objects(dir: &Path) -> Vec<serde_yaml::Value> {
    let k = &docs(&dir.join("kustomization.yaml"))[0];
    let mut out = Vec::new();
    for r in k["resources"].as_sequence().unwrap() {
        let path = dir.join(r.as_str().unwrap());
        assert!(path.exists(), "{} is listed but missing", path.display());
        if path.is_dir() {
            out.extend(objects(&path));
        } else {
            out.extend(docs(&path));
        }
    }
    out
}

#[test]
fn kustomizations_render() {
    for dir in [".", "base", "overlays/take-over-nginx"] {
        let dir = deploy().join(dir);
        let objs = objects(&dir);
        for o in &objs {
            assert!(
                o["apiVersion"].is_string()
                    && o["kind"].is_string()
                    && o["metadata"]["name"].is_string(),
                "{o:?}"
            );
        }
        match std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .output()
        {
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "kubectl kustomize {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                let rendered = String::from_utf8_lossy(&out.stdout);
                for kind in [
                    "Namespace",
                    "ServiceAccount",
                    "ClusterRole",
                    "ClusterRoleBinding",
                    "Role",
                    "Deployment",
                    "Service",
                    "Job",
                    "IngressClass",
                    "NetworkPolicy",
                ] {
                    assert!(
                        rendered.contains(&format!("kind: {kind}\n")),
                        "{kind} missing from {}",
                        dir.display()
                    );
                }
            }
            Err(_) => eprintln!("kubectl not found: checked the files only"),
        }
    }
}

/// Run the binary with a manifest's container args (kubelet's `$(POD_NAMESPACE)` expanded) and a
/// kubeconfig that does not exist: clap must accept the args, and the failure must be the
/// kubeconfig, not a usage error (exit code 2).
fn accepted(args: &[String]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("$(POD_NAMESPACE)", "remora"))
        .collect();
    let out = std::process::Command::new(binary())
        .args(&args)
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{args:?} rejected: {stderr}");
    assert!(
        stderr.contains("cannot read the kubeconfig"),
        "{args:?}: {stderr}"
    );
}

fn container_args(o: &serde_yaml::Value) -> Vec<String> {
    o["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn manifest_arguments_are_accepted_by_the_binary() {
    let objs = objects(&deploy().join("base"));
    let find = |kind: &str| objs.iter().find(|o| o["kind"] == kind).unwrap();
    let deployment = find("Deployment");
    let mut args = container_args(deployment);
    accepted(&args);
    // The overlay's additions too.
    let overlay =
        std::fs::read_to_string(deploy().join("overlays/take-over-nginx/kustomization.yaml"))
            .unwrap();
    let additions = [
        "--controller-class=k8s.io/ingress-nginx",
        "--ingress-class=nginx",
        "--metrics-compat=ingress-nginx",
    ];
    for a in additions {
        assert!(overlay.contains(&format!("value: {a}\n")), "{a}");
    }
    args.extend(additions.map(str::to_owned));
    accepted(&args);
    // The pod's name and namespace, ingress-nginx's metric labels, from the downward API.
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let var = env
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap();
        assert_eq!(var["valueFrom"]["fieldRef"]["fieldPath"], field);
    }
    accepted(&container_args(find("Job")));
    // The Deployment mounts the Secret the Job creates, and reads the key the Job writes.
    let volume = &deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"];
    assert!(container_args(find("Job"))
        .iter()
        .any(|a| a.ends_with(&format!("/{}", volume.as_str().unwrap()))));
    assert!(args
        .iter()
        .any(|a| a == "--cookie-secret-file=/etc/remora/cookie/cookie-secret"));
    // The admin token: the Job's second container creates the Secret the Deployment mounts,
    // with the key the token file is read from.
    let job = find("Job");
    let token_job = job["spec"]["template"]["spec"]["containers"][1]["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    accepted(&token_job);
    let token_volume =
        &deployment["spec"]["template"]["spec"]["volumes"][1]["secret"]["secretName"];
    assert!(token_job
        .iter()
        .any(|a| a.ends_with(&format!("/{}", token_volume.as_str().unwrap()))));
    assert!(token_job.windows(2).any(|w| w == ["--data-key", "token"]));
    assert!(args
        .iter()
        .any(|a| a == "--admin-token-file=/etc/remora/admin/token"));
    // The admin port is reachable only from Prometheus's namespace; every other port from
    // anywhere.
    let policy = find("NetworkPolicy");
    let rules = policy["spec"]["ingress"].as_sequence().unwrap();
    let open: Vec<(i64, i64)> = rules
        .iter()
        .filter(|r| r["from"].is_null())
        .flat_map(|r| r["ports"].as_sequence().unwrap())
        .map(|p| (p["port"].as_i64().unwrap(), p["endPort"].as_i64().unwrap()))
        .collect();
    assert_eq!(open, [(1, 10253), (10255, 65535)]);
    let admin = rules.iter().find(|r| !r["from"].is_null()).unwrap();
    assert_eq!(admin["ports"][0]["port"], 10254);
    // Probes point at the admin endpoints.
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
}

#[test]
fn dockerfile_builds_the_binary_on_a_non_root_base() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Dockerfile"))
            .unwrap();
    assert!(text.contains("cargo build --release --locked -p remora"));
    assert!(text.contains("distroless") && text.contains(":nonroot"));
}
