//! Incremental translation equals a fresh one: random sequences of changes to a small cluster
//! (EndpointSlices, Endpoints, Services, Ingresses, Secrets, ConfigMaps, added, changed, removed,
//! in any order; some Services, Secrets and ConfigMaps named by nothing), each translated by one
//! `Incremental` and by `translate` from scratch.

// Test code: failing loudly is the point (the workspace denies these lints for library code).
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use remora_translate::{translate, Incremental, Objects, Options, Update};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// xorshift64*: a seeded, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const SERVICES: u64 = 5;

fn slice(rng: &mut Rng, name: &str) -> Value {
    let service = format!("s{}", rng.below(SERVICES));
    let endpoints: Vec<Value> = (0..rng.below(4))
        .map(|_| {
            let pod = rng.below(6);
            let mut ep = json!({
                "addresses": [if rng.chance(5) { "not-an-ip".to_owned() } else { format!("10.0.0.{pod}") }],
                "conditions": {"ready": rng.chance(70), "terminating": rng.chance(10)},
            });
            if rng.chance(80) {
                ep["targetRef"] = json!({"kind": "Pod", "namespace": "default", "name": format!("p{pod}")});
            }
            ep
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default",
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": if rng.chance(5) { "FQDN" } else { "IPv4" },
        "ports": [{"name": if rng.chance(90) { "http" } else { "other" }, "port": 8000 + rng.below(3)}],
        "endpoints": endpoints,
    })
}

fn endpoints(rng: &mut Rng, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": "default"},
        "subsets": [{
            "addresses": [{"ip": format!("10.1.0.{}", rng.below(4))}],
            "notReadyAddresses": [{"ip": format!("10.1.1.{}", rng.below(4))}],
            "ports": [{"name": "http", "port": 9000 + rng.below(2)}],
        }],
    })
}

fn service(rng: &mut Rng, name: &str) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    });
    if rng.chance(30) {
        s["spec"]["clusterIP"] = json!("10.96.0.10");
    }
    if rng.chance(10) {
        s["spec"]["ports"][0]["port"] = json!(81);
    }
    if rng.chance(5) {
        s["spec"]["type"] = json!("ExternalName");
    }
    if rng.chance(50) {
        // What Helm rewrites on every upgrade; translation does not read it.
        s["metadata"]["labels"] = json!({"helm.sh/chart": format!("app-1.{}", rng.below(3))});
    }
    s
}

fn ingress(rng: &mut Rng, name: &str) -> Value {
    let mut annotations = BTreeMap::new();
    if rng.chance(50) {
        annotations.insert("nginx.ingress.kubernetes.io/affinity", "cookie");
    }
    if rng.chance(20) {
        annotations.insert("nginx.ingress.kubernetes.io/service-upstream", "true");
    }
    if rng.chance(15) {
        annotations.insert("nginx.ingress.kubernetes.io/custom-headers", "default/c0");
    }
    if rng.chance(15) {
        annotations.insert("nginx.ingress.kubernetes.io/auth-type", "basic");
        annotations.insert("nginx.ingress.kubernetes.io/auth-secret", "t2");
    }
    let paths: Vec<Value> = (0..1 + rng.below(2))
        .map(|p| {
            json!({"path": format!("/p{p}"), "pathType": "Prefix", "backend": {"service":
                {"name": format!("s{}", rng.below(SERVICES + 1)), "port": {"number": 80}}}})
        })
        .collect();
    let host = format!("h{}.example.com", rng.below(4));
    let mut ing = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"rules": [{"host": host, "http": {"paths": paths}}]},
    });
    if rng.chance(30) {
        ing["spec"]["tls"] = json!([{"hosts": [host], "secretName": format!("t{}", rng.below(2))}]);
    }
    if rng.chance(50) {
        // What Helm and Argo CD rewrite on every sync; translation does not read it.
        ing["metadata"]["labels"] = json!({"helm.sh/chart": format!("app-1.{}", rng.below(3))});
        ing["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] =
            json!(format!("app:{}", rng.below(3)));
    }
    ing
}

fn config_map(rng: &mut Rng, name: &str) -> Value {
    let data = match rng.below(3) {
        0 => json!({"X-Custom": "1"}),
        1 => json!({"proxy-body-size": "2m", "ssl-redirect": "false"}),
        _ => json!({"not a header": "x", "proxy-body-size": "nonsense"}),
    };
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": data,
    })
}

fn secret(rng: &mut Rng, name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"tls.crt": if rng.chance(50) { "bm90IGEgY2VydA==" } else { "" }, "tls.key": ""},
    })
}

/// The cluster: documents by kind and name (the order they are given to translation varies).
#[derive(Default)]
struct Cluster(BTreeMap<(u8, String), Value>);

impl Cluster {
    fn change(&mut self, rng: &mut Rng) {
        if rng.chance(8) {
            // An Ingress's metadata only: an annotation translation reads, or a tool's.
            let name = format!("o{}", rng.below(5));
            if let Some(ing) = self.0.get_mut(&(3, name)) {
                let (key, value) = if rng.chance(50) {
                    ("nginx.ingress.kubernetes.io/affinity", "cookie")
                } else {
                    ("argocd.argoproj.io/tracking-id", "other")
                };
                let annotations = ing["metadata"]["annotations"].as_object_mut().unwrap();
                if annotations.remove(key).is_none() {
                    annotations.insert(key.to_owned(), json!(value));
                }
                return;
            }
        }
        let kind = match rng.below(12) {
            0..=5 => 0, // EndpointSlices: the usual churn.
            6 => 1,
            7 => 2,
            8 => 3,
            9 | 10 => 4,
            _ => 5,
        };
        let name = format!("o{}", rng.below(if kind == 0 { 8 } else { 5 }));
        let key = (kind, name.clone());
        if rng.chance(15) {
            self.0.remove(&key);
            return;
        }
        // s6, t3, c2 and c3 are named by nothing.
        let service_name = format!("s{}", rng.below(SERVICES + 2));
        let secret_name = format!("t{}", rng.below(4));
        let config_map_name = format!("c{}", rng.below(4));
        let doc = match kind {
            0 => slice(rng, &name),
            1 => endpoints(rng, &service_name),
            2 => service(rng, &service_name),
            3 => ingress(rng, &name),
            4 => secret(rng, &secret_name),
            _ => config_map(rng, &config_map_name),
        };
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self.0.insert((kind, name), doc);
    }

    fn objects(&self, rng: &mut Rng) -> Objects {
        let mut objects = Objects::default();
        for doc in self.0.values() {
            objects.add_document(doc.clone()).unwrap();
        }
        // Mostly the sorted order providers give; sometimes another.
        if rng.chance(80) {
            objects.sort();
        } else {
            objects.endpoint_slices.reverse();
        }
        objects
    }
}

#[test]
fn incremental_translation_equals_a_fresh_one() {
    let mut incremental_updates = 0;
    let mut unasked_updates = 0;
    for seed in 1..=40u64 {
        // Half the runs read a global ConfigMap (c1).
        let options = Options {
            configmap: (seed % 2 == 0).then(|| ("default".to_owned(), "c1".to_owned())),
            ..Options::default()
        };
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut cluster = Cluster::default();
        let mut inc = Incremental::new(options.clone());
        for step in 0..60 {
            for _ in 0..1 + rng.below(2) {
                cluster.change(&mut rng);
            }
            let objects = cluster.objects(&mut rng);
            let (got, update) = inc.update(&objects);
            let want = translate(&objects, &options);
            let at = format!("seed {seed}, step {step}, {update:?}");
            assert_eq!(got.snapshot, want.snapshot, "{at}");
            assert_eq!(got.diagnostics, want.diagnostics, "{at}");
            assert_eq!(got.served, want.served, "{at}");
            assert_eq!(got.gateway_status, want.gateway_status, "{at}");
            if matches!(update, Update::Endpoints { backends: 1.., .. }) {
                incremental_updates += 1;
            }
            if matches!(update, Update::Endpoints { unasked: 1.., .. }) {
                unasked_updates += 1;
            }
        }
    }
    // The sequences did exercise the incremental path, also with objects no translation asked
    // for changing.
    assert!(incremental_updates > 100, "{incremental_updates}");
    assert!(unasked_updates > 50, "{unasked_updates}");
}

#[test]
fn unchanged_backends_are_shared_with_the_previous_snapshot() {
    let mut rng = Rng(7);
    let mut cluster = Cluster::default();
    let mut docs = vec![];
    for i in 0..SERVICES {
        let mut svc = service(&mut Rng(1), &format!("s{i}"));
        svc["spec"] = json!({"ports": [{"name": "http", "port": 80, "targetPort": 8080}]});
        docs.push(svc);
        let mut s = slice(&mut rng, &format!("e{i}"));
        s["metadata"]["labels"]["kubernetes.io/service-name"] = json!(format!("s{i}"));
        s["addressType"] = json!("IPv4");
        s["ports"][0]["name"] = json!("http");
        docs.push(s);
        let mut ing = ingress(&mut rng, &format!("i{i}"));
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
            json!(format!("s{i}"));
        ing["metadata"]["annotations"] = json!({});
        docs.push(ing);
    }
    for (i, d) in docs.into_iter().enumerate() {
        cluster.0.insert((0, format!("{i:03}")), d);
    }
    let mut inc = Incremental::new(Options::default());
    let before = inc.translate(&cluster.objects(&mut Rng(1)));
    // One slice gets a new endpoint.
    let key = cluster.0.keys().nth(1).cloned().unwrap();
    let doc = cluster.0.get_mut(&key).unwrap();
    doc["endpoints"] = json!([{"addresses": ["10.9.9.9"], "conditions": {"ready": true}}]);
    let mut objects = Objects::default();
    for d in cluster.0.values() {
        objects.add_document(d.clone()).unwrap();
    }
    objects.sort();
    let (after, update) = inc.update(&objects);
    assert_eq!(
        update,
        Update::Endpoints {
            services: 1,
            backends: 1,
            unasked: 0
        }
    );
    assert!(std::sync::Arc::ptr_eq(
        &before.snapshot.hosts,
        &after.snapshot.hosts
    ));
    let shared = before
        .snapshot
        .backends
        .iter()
        .zip(&after.snapshot.backends)
        .filter(|(a, b)| std::sync::Arc::ptr_eq(a, b))
        .count();
    assert_eq!(shared, before.snapshot.backends.len() - 1);
    assert_eq!(
        after.snapshot,
        translate(&objects, &Options::default()).snapshot
    );
}
