#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use serde_json::json;
use std::collections::BTreeMap;

fn ingress(annotations: BTreeMap<String, String>) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default", "annotations": annotations},
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]}
    })
}

#[test]
fn the_catalogue_is_sorted_for_lookups() {
    for pair in ANNOTATIONS.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
    }
    assert_eq!(annotation_support("affinity"), Some(Supported));
    assert_eq!(annotation_support("x-forwarded-prefix"), Some(Supported));
    assert_eq!(annotation_support("no-such-thing"), None);
}

/// Each annotation the catalogue calls supported (or accepted) is read by a parser, and each it
/// calls not supported is not, or is warned about: the catalogue says what the code does.
#[test]
fn the_catalogue_matches_the_parsers() {
    // Values that let each family read on (an invalid key annotation ends its family's reading).
    let value = |name: &str| match name {
        "auth-url" | "auth-signin" | "auth-tls-error-page" => "http://auth.example.com/",
        "auth-type" => "basic",
        "affinity" => "cookie",
        "enable-cors" | "canary" | "auth-tls-pass-certificate-to-upstream" => "true",
        _ => "x",
    };
    let all: BTreeMap<String, String> = ANNOTATIONS
        .iter()
        .map(|(n, _)| (format!("{PREFIX}{n}"), value(n).to_owned()))
        .collect();
    let mut objects = Objects::default();
    objects.add_document(ingress(all)).unwrap();
    let t = crate::translate(&objects, &Options::default());
    let ignored: Vec<String> = t
        .diagnostics
        .iter()
        .filter_map(|d| {
            d.message
                .strip_prefix("annotations not supported by Remora, ignored: ")
                .map(str::to_owned)
        })
        .flat_map(|list| list.split(", ").map(str::to_owned).collect::<Vec<String>>())
        .collect();
    let warned = |name: &str| {
        let full = format!("{PREFIX}{name}");
        t.diagnostics
            .iter()
            .any(|d| d.annotation.as_deref() == Some(full.as_str()))
    };
    let mut wrong = Vec::new();
    for (name, support) in ANNOTATIONS {
        let read = !ignored.iter().any(|n| n == name);
        match support {
            Supported | NoEffect | Refused if !read => {
                wrong.push(format!("{name} is not read by any parser"))
            }
            NotSupported if read && !warned(name) => {
                wrong.push(format!("{name} is read without a warning: supported now?"))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn each_annotation_and_key_gets_a_verdict() {
    let annotations: BTreeMap<String, String> = [
        ("affinity", "cookie"),
        ("proxy-buffering", "on"),
        ("mirror-target", "http://mirror"),
        ("auth-type", "Digest"),
        ("proxy-http-version", "1.0"),
        ("server-snippet", "return 200;"),
        ("afinity", "cookie"),
    ]
    .into_iter()
    .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_owned()))
    .collect();
    let mut objects = Objects::default();
    objects.add_document(ingress(annotations)).unwrap();
    objects
        .add_document(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
            "data": {"use-forwarded-headers": "true", "proxy-buffer-size": "8k",
                     "enable-opentelemetry": "true", "use-proxy-protocol": "true"}
        }))
        .unwrap();
    let options = Options {
        configmap: Some(("ingress-nginx".into(), "ingress-nginx-controller".into())),
        ..Options::default()
    };
    let report = check(&objects, &options);
    let verdict = |key: &str| {
        report
            .entries()
            .find(|(k, _)| k == key || k.strip_prefix(PREFIX) == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no verdict for {key}"))
    };
    assert_eq!(verdict("affinity"), Verdict::Supported);
    assert_eq!(verdict("proxy-buffering"), Verdict::NoEffect);
    assert_eq!(verdict("mirror-target"), Verdict::NotSupported);
    assert!(matches!(verdict("auth-type"), Verdict::FailsClosed(_)));
    assert!(matches!(verdict("proxy-http-version"), Verdict::Warned(_)));
    assert!(matches!(verdict("server-snippet"), Verdict::Warned(_)));
    assert_eq!(verdict("afinity"), Verdict::Unknown);
    assert_eq!(verdict("use-forwarded-headers"), Verdict::Supported);
    assert_eq!(verdict("proxy-buffer-size"), Verdict::NoEffect);
    assert_eq!(verdict("enable-opentelemetry"), Verdict::NotSupported);
    assert_eq!(verdict("use-proxy-protocol"), Verdict::Supported);
    // auth-type, proxy-http-version, the snippet, mirror-target and enable-opentelemetry.
    assert_eq!(report.differences(), 5);
    assert_eq!(report.objects[1].object.kind, "ConfigMap");
}

/// README's list of every ingress-nginx annotation is this catalogue.
#[test]
fn the_readme_lists_every_annotation_as_the_catalogue_does() {
    let readme = include_str!("../../../../README.md");
    let begin = "<!-- annotation-catalogue:begin -->\n";
    let end = "<!-- annotation-catalogue:end -->";
    let start = readme
        .find(begin)
        .expect("README has the catalogue markers")
        + begin.len();
    let stop = readme[start..].find(end).expect("end marker") + start;
    let table = annotation_table();
    assert!(
        readme[start..stop] == table,
        "README's annotation catalogue is out of date; it should read:\n{table}"
    );
}
