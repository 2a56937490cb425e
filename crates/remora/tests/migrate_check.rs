//! `remora migrate-check` on an exported cluster: a verdict per annotation and ConfigMap key, and
//! an exit code that says whether anything would behave differently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

const CONFIGMAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: ingress-nginx-controller, namespace: ingress-nginx}
data:
  use-forwarded-headers: "true"
  proxy-buffer-size: "16k"
"#;

fn ingress(name: &str, annotations: &str) -> String {
    format!(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: shop
  annotations:
{annotations}
spec:
  rules:
  - host: {name}.example.com
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: {name}, port: {{number: 80}}}}}}}}
"#
    )
}

fn run(docs: &[String]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, docs.join("---\n")).unwrap();
    let out = Command::new(common::binary())
        .args(["migrate-check", "--manifests"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn what_would_differ_is_marked_and_fails_the_check() {
    let (code, out) = run(&[
        CONFIGMAP.to_owned(),
        ingress(
            "web",
            r#"    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/proxy-buffering: "on"
    nginx.ingress.kubernetes.io/auth-type: Digest
    nginx.ingress.kubernetes.io/mirror-target: http://mirror.shop.svc/"#,
        ),
    ]);
    assert_eq!(code, Some(1), "{out}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no line for {key} in\n{out}"))
            .to_owned()
    };
    assert!(out.contains("Ingress shop/web\n"), "{out}");
    assert!(line("/affinity").starts_with("  ") && line("/affinity").ends_with(" supported"));
    assert!(line("/proxy-buffering").ends_with("accepted with no effect"));
    let digest = line("/auth-type");
    assert!(
        digest.starts_with("! ") && digest.contains("fails closed"),
        "{digest}"
    );
    assert!(
        line("/mirror-target").starts_with("! ")
            && line("/mirror-target").ends_with("not supported: ignored")
    );
    // The Helm chart's ConfigMap is found by its name.
    assert!(
        out.contains("ConfigMap ingress-nginx/ingress-nginx-controller\n"),
        "{out}"
    );
    assert!(line("use-forwarded-headers").ends_with(" supported"));
    assert!(
        out.contains("2 marked ! would behave differently on Remora"),
        "{out}"
    );
}

#[test]
fn a_cluster_that_moves_unchanged_passes() {
    let (code, out) = run(&[
        CONFIGMAP.to_owned(),
        ingress(
            "api",
            r#"    nginx.ingress.kubernetes.io/affinity: cookie
    nginx.ingress.kubernetes.io/session-cookie-name: route
    nginx.ingress.kubernetes.io/proxy-body-size: 8m"#,
        ),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("everything behaves as on ingress-nginx"),
        "{out}"
    );
}

#[test]
fn the_list_is_the_readme_catalogue() {
    let out = Command::new(common::binary())
        .args(["migrate-check", "--list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.starts_with("- supported ("), "{list}");
    assert!(include_str!("../../../README.md").contains(&list));
}
