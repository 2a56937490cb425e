//! `remora demo`: a local stand-in for a cluster.
//!
//! It plays the parts of the kubelet and the EndpointSlice controller: every Deployment in the
//! manifests gets its replicas as `whoami` pods on consecutive loopback addresses (127.0.0.11,
//! .12, ...) at the Deployment's containerPort, and every Service with a selector gets the
//! EndpointSlices a cluster would derive from those pods. Then the objects go through the same
//! pipeline as `remora serve`. With `--manifests FILE`, edits to the file are applied live: pods
//! are started and stopped, and routing follows.

use crate::pipeline::Pipeline;
use crate::runtime::{self, Common};
use crate::shutdown::Shutdown;
use anyhow::{bail, Context};
use files::{Manifests, Watcher};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use translate::objects::{
    Deployment, EndpointConditions, EndpointPort, EndpointSlice, IntOrString, ObjectMeta,
    ObjectReference, Objects, SliceEndpoint, SERVICE_NAME_LABEL,
};

/// Seed 002 (what-is-my-pod: Deployment with 3 replicas, Service, Ingress with cookie affinity),
/// verbatim: what `remora demo` runs without `--manifests`.
const SEED_002: &str = include_str!("../../../manifests/seed-002-what-is-my-pod.yaml");

/// More replicas than this in one Deployment is almost certainly a typo on a laptop.
const MAX_REPLICAS: i64 = 100;

#[derive(clap::Args)]
pub struct Args {
    /// A manifest file to run instead of the built-in seed 002 (what-is-my-pod). Edits to it
    /// (replicas, annotations...) are applied while the demo runs.
    #[arg(long = "manifests", short = 'f', value_name = "FILE")]
    pub manifests: Option<PathBuf>,
    /// Address for proxied HTTP traffic.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen_http: SocketAddr,
    /// Address for proxied HTTPS traffic.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen_https: SocketAddr,
    /// Address of the first pod; further pods take the next addresses.
    #[arg(long, default_value = "127.0.0.11", value_name = "IP")]
    pub first_pod_ip: Ipv4Addr,
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals(args.common.shutdown_grace_period());
    let mut manifests = args.manifests.clone().map(|p| Manifests::new(vec![p]));
    let mut objects = match &mut manifests {
        Some(m) => {
            let r = m.reload();
            if let Some(e) = r.errors.first() {
                bail!("{e}");
            }
            Objects::clone(&r.objects)
        }
        None => files::decode_file(
            std::path::Path::new("seed-002-what-is-my-pod.yaml"),
            SEED_002,
        )
        .context("the built-in seed manifest")?,
    };
    let mut watcher = match &manifests {
        Some(m) => Some(Watcher::new(m.watched()).context("cannot watch the manifest file")?),
        None => None,
    };
    let running = runtime::start(
        args.listen_http,
        args.listen_https,
        &args.common,
        crate::controller::CONTROLLER_CLASS,
        &shutdown,
    )
    .await?;
    let mut pipeline = Pipeline::new(
        running.proxy.clone(),
        running.gateways.clone(),
        runtime::options(&args.common),
    );
    let mut cluster = Cluster::new(args.first_pod_ip);

    let stopped = cluster.sync(&objects, false).await;
    publish(&mut pipeline, &cluster, &objects);
    cluster.stop(stopped);
    print_banner(&args, &running, &cluster, &objects);
    running.announce();

    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    loop {
        let changed = async {
            match &mut watcher {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changed => {
                let Some(changes) = changed else {
                    bail!("the manifest watcher stopped");
                };
                let Some(m) = &mut manifests else { continue };
                let reload = m.reload_changes(&changes);
                for e in &reload.errors {
                    tracing::error!("{e} (the last good version stays in use)");
                    running.proxy.record_config_error();
                }
                if reload.errors.is_empty() {
                    running.proxy.record_config_loaded();
                }
                if !reload.changed {
                    continue;
                }
                objects = Objects::clone(&reload.objects);
                let stopped = cluster.sync(&objects, true).await;
                publish(&mut pipeline, &cluster, &objects);
                // Pods leave the EndpointSlices first, then stop: no request is sent to a pod
                // that is already gone.
                cluster.stop(stopped);
            }
            () = &mut stop => {
                running.drained().await;
                return Ok(());
            }
        }
    }
}

fn publish(pipeline: &mut Pipeline, cluster: &Cluster, objects: &Objects) {
    let mut with_slices = objects.clone();
    with_slices.endpoint_slices.extend(
        cluster
            .endpoint_slices(objects)
            .into_iter()
            .map(std::sync::Arc::new),
    );
    pipeline.apply(&with_slices);
}

fn print_banner(args: &Args, running: &runtime::Running, cluster: &Cluster, objects: &Objects) {
    let source = match &args.manifests {
        Some(p) => format!("{} (edits are applied live)", p.display()),
        None => "seed 002, what-is-my-pod (built in)".to_owned(),
    };
    println!("Remora demo: {source}");
    for p in &cluster.pods {
        println!("  pod {:<50} {}", p.name, p.addrs_text());
    }
    let exe = std::env::args()
        .next()
        .filter(|a| a.contains('/'))
        .unwrap_or_else(|| "remora".to_owned());
    let port = running.http.port();
    let ip = running.http.ip();
    println!("Try (the same pod every time, thanks to the session cookie):");
    let mut shown = std::collections::BTreeSet::new();
    for ing in &objects.ingresses {
        for rule in &ing.spec.rules {
            let host = rule
                .host
                .clone()
                .filter(|h| !h.is_empty() && !h.starts_with('*'));
            if !shown.insert(host.clone()) {
                continue;
            }
            let (resolve, url) = match &host {
                Some(h) => (
                    format!("--resolve {h}:{port}:{ip} "),
                    format!("http://{h}:{port}/"),
                ),
                None => (String::new(), format!("http://{ip}:{port}/")),
            };
            println!(
                "  for i in {{0..5}}; do curl {resolve}--cookie cookie.txt --cookie-jar cookie.txt {url}; echo \"\"; done"
            );
            println!("Without a cookie, new sessions spread over the pods:");
            println!("  for i in {{0..5}}; do curl {resolve}{url}; echo \"\"; done");
            println!("Or check 20 sessions of 10 requests each:");
            println!("  {exe} check {resolve}{url} --sessions 20 --requests 10");
        }
    }
    println!("Admin: http://{}/status   Stop: Ctrl-C", running.admin);
}

/// A running demo pod.
struct Pod {
    name: String,
    namespace: String,
    deployment: String,
    template_hash: String,
    labels: BTreeMap<String, String>,
    ip: Ipv4Addr,
    /// (name, number) of each container port it listens on.
    ports: Vec<(Option<String>, u16)>,
    stop: Vec<oneshot::Sender<()>>,
}

impl Pod {
    fn addrs_text(&self) -> String {
        self.ports
            .iter()
            .map(|(_, p)| format!("{}:{p}", self.ip))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Cluster {
    first_ip: u32,
    pods: Vec<Pod>,
}

/// Kubernetes' alphabet for generated names (no vowels, no look-alikes).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode(mut n: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn template_hash(d: &Deployment) -> String {
    let text = serde_json::to_string(&d.spec.template).unwrap_or_default();
    encode(xxhash_rust::xxh3::xxh3_64(text.as_bytes()), 10)
}

impl Cluster {
    fn new(first_ip: Ipv4Addr) -> Self {
        Self {
            first_ip: u32::from(first_ip),
            pods: Vec::new(),
        }
    }

    /// Start and pick out pods so that every Deployment has its replicas of its current template.
    /// Returns the pods to stop once routing no longer sends them anything.
    async fn sync(&mut self, objects: &Objects, say: bool) -> Vec<Pod> {
        let mut keep = Vec::new();
        let mut stopping = Vec::new();
        let mut to_start = Vec::new();
        let mut current: Vec<Pod> = std::mem::take(&mut self.pods);
        for d in &objects.deployments {
            let ns = d.metadata.namespace().to_owned();
            let hash = template_hash(d);
            let mut replicas = d.spec.replicas.unwrap_or(1).max(0);
            if replicas > MAX_REPLICAS {
                tracing::warn!(
                    "Deployment {ns}/{}: {replicas} replicas is more than the demo runs; running {MAX_REPLICAS}",
                    d.metadata.name
                );
                replicas = MAX_REPLICAS;
            }
            let (mine, rest): (Vec<Pod>, Vec<Pod>) = current
                .into_iter()
                .partition(|p| p.namespace == ns && p.deployment == d.metadata.name);
            current = rest;
            let (same, outdated): (Vec<Pod>, Vec<Pod>) =
                mine.into_iter().partition(|p| p.template_hash == hash);
            stopping.extend(outdated);
            let mut same = same;
            while same.len() as i64 > replicas {
                if let Some(p) = same.pop() {
                    stopping.push(p);
                }
            }
            let missing = replicas as usize - same.len();
            keep.extend(same);
            to_start.extend(std::iter::repeat_n((d, hash.clone()), missing));
        }
        stopping.extend(current); // pods of Deployments that were deleted
        self.pods = keep;
        for (d, hash) in to_start {
            match self.start(d, hash).await {
                Ok(pod) => {
                    if say {
                        println!("pod {} started on {}", pod.name, pod.addrs_text());
                    }
                    self.pods.push(pod);
                }
                Err(e) => {
                    tracing::error!("Deployment {}: cannot start a pod: {e:#}", d.metadata.name)
                }
            }
        }
        stopping
    }

    fn stop(&mut self, pods: Vec<Pod>) {
        for p in pods {
            println!("pod {} stopped", p.name);
            for s in p.stop {
                let _ = s.send(());
            }
        }
    }

    fn free_ip(&self) -> Option<Ipv4Addr> {
        let used: std::collections::BTreeSet<u32> =
            self.pods.iter().map(|p| u32::from(p.ip)).collect();
        (self.first_ip..)
            .take(10_000)
            .find(|ip| !used.contains(ip))
            .map(Ipv4Addr::from)
            .filter(|ip| ip.is_loopback())
    }

    async fn start(&self, d: &Deployment, template_hash: String) -> anyhow::Result<Pod> {
        let ip = self
            .free_ip()
            .context("no loopback address left for another pod")?;
        let name = format!(
            "{}-{template_hash}-{}",
            d.metadata.name,
            encode(getrandom::u64().unwrap_or(u64::from(u32::from(ip))), 5)
        );
        let mut ports = Vec::new();
        let mut stop = Vec::new();
        for c in &d.spec.template.spec.containers {
            for p in &c.ports {
                let number = u16::try_from(p.container_port)
                    .ok()
                    .filter(|n| *n != 0)
                    .with_context(|| {
                        format!("containerPort {} is out of range", p.container_port)
                    })?;
                let addr = SocketAddr::from((ip, number));
                let listener = TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (is another demo running? Linux routes all of 127.0.0.0/8 to loopback; other systems may need the address added)")
                })?;
                let (tx, rx) = oneshot::channel();
                let pod_name = name.clone();
                tokio::spawn(async move {
                    crate::whoami::serve(listener, pod_name, async move {
                        let _ = rx.await;
                    })
                    .await;
                });
                ports.push((p.name.clone(), number));
                stop.push(tx);
            }
        }
        if ports.is_empty() {
            bail!("its containers declare no containerPort, so the demo cannot start them");
        }
        Ok(Pod {
            name,
            namespace: d.metadata.namespace().to_owned(),
            deployment: d.metadata.name.clone(),
            template_hash,
            labels: d.spec.template.metadata.labels.clone(),
            ip,
            ports,
            stop,
        })
    }

    /// The EndpointSlices the EndpointSlice controller would make: for each Service with a
    /// selector (and no EndpointSlices or Endpoints of its own in the manifests), one slice per
    /// Deployment whose pods it selects.
    fn endpoint_slices(&self, objects: &Objects) -> Vec<EndpointSlice> {
        let mut out = Vec::new();
        for svc in &objects.services {
            let ns = svc.metadata.namespace();
            let name = svc.metadata.name.as_str();
            let supplied = objects.endpoint_slices.iter().any(|s| {
                s.metadata.namespace() == ns
                    && s.metadata
                        .labels
                        .get(SERVICE_NAME_LABEL)
                        .map(String::as_str)
                        == Some(name)
            }) || objects
                .endpoints
                .iter()
                .any(|e| e.metadata.namespace() == ns && e.metadata.name == name);
            if svc.spec.selector.is_empty() || supplied {
                continue;
            }
            let mut by_deployment: BTreeMap<&str, Vec<&Pod>> = BTreeMap::new();
            for p in self.pods.iter().filter(|p| {
                p.namespace == ns
                    && svc
                        .spec
                        .selector
                        .iter()
                        .all(|(k, v)| p.labels.get(k) == Some(v))
            }) {
                by_deployment.entry(&p.deployment).or_default().push(p);
            }
            for (deployment, pods) in by_deployment {
                let ports = svc
                    .spec
                    .ports
                    .iter()
                    .filter_map(|sp| {
                        let number = match &sp.target_port {
                            None => sp.port,
                            Some(IntOrString::Int(n)) => *n,
                            Some(IntOrString::String(s)) => match s.parse::<i64>() {
                                Ok(n) => n,
                                Err(_) => pods[0]
                                    .ports
                                    .iter()
                                    .find(|(n, _)| n.as_deref() == Some(s.as_str()))
                                    .map(|(_, p)| i64::from(*p))?,
                            },
                        };
                        Some(EndpointPort {
                            name: sp.name.clone(),
                            port: Some(number),
                            protocol: sp.protocol.clone(),
                        })
                    })
                    .collect();
                let mut labels = BTreeMap::new();
                labels.insert(SERVICE_NAME_LABEL.to_owned(), name.to_owned());
                out.push(EndpointSlice {
                    metadata: ObjectMeta {
                        name: format!(
                            "{name}-{}",
                            encode(xxhash_rust::xxh3::xxh3_64(deployment.as_bytes()), 5)
                        ),
                        namespace: Some(ns.to_owned()),
                        labels,
                        ..ObjectMeta::default()
                    },
                    address_type: "IPv4".to_owned(),
                    endpoints: pods
                        .iter()
                        .map(|p| SliceEndpoint {
                            addresses: vec![p.ip.to_string()],
                            conditions: EndpointConditions {
                                ready: Some(true),
                                serving: Some(true),
                                terminating: Some(false),
                            },
                            target_ref: Some(ObjectReference {
                                kind: Some("Pod".to_owned()),
                                namespace: Some(p.namespace.clone()),
                                name: Some(p.name.clone()),
                                uid: None,
                            }),
                            hostname: None,
                        })
                        .collect(),
                    ports,
                });
            }
        }
        out
    }
}
