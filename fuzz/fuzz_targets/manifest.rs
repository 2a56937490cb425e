//! Manifests to a routing table: a file's text (YAML documents, or JSON) split and decoded by the
//! file provider (`files::decode_file`: serde_yaml or serde_json to a JSON value, then
//! `Objects::add_document`), translated (`translate::translate`), and built into the proxy's
//! routing `Table` as `Proxy::publish` does.
//!
//! Checks: no panic, whatever the text; translation is a pure function (twice the same snapshot).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = if text.trim_start().starts_with('{') {
        "fuzz.json"
    } else {
        "fuzz.yaml"
    };
    let Ok(mut objects) = files::decode_file(Path::new(path), text) else {
        return;
    };
    objects.sort();
    let options = translate::Options {
        configmap: Some(("ingress-nginx".into(), "ingress-nginx-controller".into())),
        ..translate::Options::default()
    };
    let translation = translate::translate(&objects, &options);
    let again = translate::translate(&objects, &options);
    assert_eq!(translation.snapshot, again.snapshot);
    assert_eq!(translation.diagnostics, again.diagnostics);
    let table = proxy::Table::new(translation.snapshot, translation.diagnostics, 1, None, None);
    // The Ingress hosts, and each Gateway listener's.
    let mut listeners = vec![proxy::ListenerId::Ingress];
    listeners.extend(
        table
            .snapshot
            .listeners
            .iter()
            .map(|l| proxy::ListenerId::Gateway {
                port: l.port,
                tls: l.tls,
            }),
    );
    for host in [
        "example.com",
        "www.example.com",
        "a.b.example.com",
        "localhost",
    ] {
        for path in ["/", "/api/v1", "/app", "/.well-known/acme-challenge/x"] {
            let Ok(req) = http::Request::get(path).body(()) else {
                continue;
            };
            for &listener in &listeners {
                let _ = table.route(listener, host, &req);
            }
        }
    }
});
