//! In-process measurement of a configuration publish at scale: N Ingresses (one host each, cookie
//! affinity), N Services, N EndpointSlices of 10 endpoints; times a full translation, the table
//! build, and the path of one EndpointSlice change. Run with
//! `cargo run --release -p remora-proxy --example scale -- [N]`.

use std::time::Instant;
use translate::{Objects, Options};

/// The allocator of the `remora` binary, so that times and memory are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn objects(n: usize, generation: u32) -> Objects {
    let mut objects = Objects::default();
    for i in 0..n {
        let docs = [
            serde_json::json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": format!("ing{i}"), "namespace": "default",
                    "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
                "spec": {"rules": [{"host": format!("h{i}.example.com"), "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service":
                        {"name": format!("s{i}"), "port": {"number": 80}}}}]}}]}
            }),
            serde_json::json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("s{i}"), "namespace": "default"},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
            }),
            slice(i, generation),
        ];
        for d in docs {
            if let Err(e) = objects.add_document(d) {
                eprintln!("{e}");
            }
        }
    }
    objects.sort();
    objects
}

fn slice(i: usize, generation: u32) -> serde_json::Value {
    let endpoints: Vec<_> = (0..10u32)
        .map(|e| {
            let n = i as u32 * 10 + e + generation;
            serde_json::json!({
                "addresses": [format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255)],
                "conditions": {"ready": true},
                "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("p{n}")}
            })
        })
        .collect();
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("s{i}-abcde"), "namespace": "default",
            "labels": {"kubernetes.io/service-name": format!("s{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080}],
        "endpoints": endpoints
    })
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let options = Options::default();
    let t = Instant::now();
    let objects = objects(n, 0);
    println!("generate {n}: {:?}, rss {:.0} MiB", t.elapsed(), rss_mib());

    let t = Instant::now();
    let translation = translate::translate(&objects, &options);
    println!(
        "full translate: {:?} ({} hosts, {} diagnostics), rss {:.0} MiB",
        t.elapsed(),
        translation.snapshot.hosts.len(),
        translation.diagnostics.len(),
        rss_mib()
    );
    let t = Instant::now();
    let table =
        remora_proxy::Table::new(translation.snapshot, translation.diagnostics, 1, None, None);
    println!("table build: {:?}, rss {:.0} MiB", t.elapsed(), rss_mib());

    // One EndpointSlice changes; everything else is as before.
    let mut changed = objects.clone();
    let mut one = Objects::default();
    if let Err(e) = one.add_document(slice(n / 2, 7)) {
        eprintln!("{e}");
    }
    if let Some(s) = one.endpoint_slices.pop() {
        let name = &s.metadata.name;
        if let Some(at) = changed
            .endpoint_slices
            .iter()
            .position(|o| o.metadata.name == *name)
        {
            changed.endpoint_slices[at] = s;
        }
    }
    let mut previous = table;
    for round in 0..3 {
        let t = Instant::now();
        let translation = translate::translate(&changed, &options);
        let translated = t.elapsed();
        let table = remora_proxy::Table::new(
            translation.snapshot,
            translation.diagnostics,
            2 + round,
            Some(&previous),
            None,
        );
        println!(
            "one slice changed, full translation: translate {translated:?}, total {:?}, rss {:.0} MiB",
            t.elapsed(),
            rss_mib()
        );
        previous = table;
    }
    drop(changed);

    // The incremental translator, as the pipeline uses it: a first full translation, then one
    // EndpointSlice changing at a time.
    let mut incremental = translate::Incremental::new(options);
    let mut objects = objects;
    let t = Instant::now();
    let translation = incremental.translate(&objects);
    println!("incremental, first (full) translation: {:?}", t.elapsed());
    previous = remora_proxy::Table::new(
        translation.snapshot,
        translation.diagnostics,
        10,
        Some(&previous),
        None,
    );
    let mut times = Vec::new();
    for round in 0..20u32 {
        let i = (round as usize * 7919) % n;
        let mut one = Objects::default();
        if let Err(e) = one.add_document(slice(i, 100 + round)) {
            eprintln!("{e}");
        }
        if let Some(s) = one.endpoint_slices.pop() {
            let name = &s.metadata.name;
            if let Some(at) = objects
                .endpoint_slices
                .iter()
                .position(|o| o.metadata.name == *name)
            {
                objects.endpoint_slices[at] = s;
            }
        }
        let t = Instant::now();
        let (translation, update) = incremental.update(&objects);
        let translated = t.elapsed();
        let table = remora_proxy::Table::new(
            translation.snapshot,
            translation.diagnostics,
            11 + u64::from(round),
            Some(&previous),
            None,
        );
        let total = t.elapsed();
        times.push(total);
        if round < 3 {
            println!(
                "one slice changed, incremental ({update:?}): translate {translated:?}, total {total:?}, rss {:.0} MiB",
                rss_mib()
            );
        }
        previous = table;
    }
    times.sort();
    println!(
        "incremental over 20 changes: median {:?}, worst {:?}, rss {:.0} MiB",
        times[times.len() / 2],
        times[times.len() - 1],
        rss_mib()
    );

    // A Secret no Ingress names (a Helm release, a token) is written, then one Ingress changes.
    let mut extra = Objects::default();
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "sh.helm.release.v1.app.v2", "namespace": "default"},
        "data": {"release": "aGVsbG8="}
    });
    let ingress = serde_json::json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "ing0", "namespace": "default",
            "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie",
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "30"}},
        "spec": {"rules": [{"host": "h0.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service":
                {"name": "s0", "port": {"number": 80}}}}]}}]}
    });
    for d in [secret, ingress] {
        if let Err(e) = extra.add_document(d) {
            eprintln!("{e}");
        }
    }
    objects.secrets.extend(extra.secrets.iter_shared().cloned());
    let t = Instant::now();
    let (translation, update) = incremental.update(&objects);
    let translated = t.elapsed();
    previous = remora_proxy::Table::new(
        translation.snapshot,
        translation.diagnostics,
        40,
        Some(&previous),
        None,
    );
    println!(
        "a Secret nothing names added ({update:?}): translate {translated:?}, total {:?}",
        t.elapsed()
    );
    if let Some(at) = objects
        .ingresses
        .iter()
        .position(|o| o.metadata.name == "ing0")
    {
        if let Some(changed) = extra.ingresses.iter_shared().next() {
            objects.ingresses[at] = changed.clone();
        }
    }
    let t = Instant::now();
    let (translation, update) = incremental.update(&objects);
    let translated = t.elapsed();
    let _table = remora_proxy::Table::new(
        translation.snapshot,
        translation.diagnostics,
        41,
        Some(&previous),
        None,
    );
    println!(
        "one Ingress changed ({update:?}): translate {translated:?}, total {:?}, rss {:.0} MiB",
        t.elapsed(),
        rss_mib()
    );
}
