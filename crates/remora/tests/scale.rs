//! The scale benchmark (issue 19): a cluster of 10,000 sticky Ingresses, 10,000 Services and
//! 100,000 endpoints (10,000 EndpointSlices of 10), served by `remora serve` from files and by
//! `remora controller` from the fake API server, while 100 other EndpointSlices change per
//! second. It prints figures rather than asserting them (the machine it runs on decides them);
//! only sessions that moved, and changes never routed, fail it.
//!
//! Run by `bench/scale.sh` (release build):
//! `cargo test --release -p remora --test scale -- --ignored --nocapture`. Sizes from the
//! environment: `SCALE_INGRESSES` (10000; one Service, EndpointSlice and Ingress each),
//! `SCALE_ENDPOINTS` (10 per EndpointSlice), `CHURN_PER_SEC` (100), `CHURN_SECONDS` (60),
//! `SCALE_CHANGES` (60 measured changes, spread over the churn), `SCALE_SESSIONS` (100),
//! `SCALE_MODES` (`files,controller`).
//!
//! What it measures, per mode:
//! - initial load: process start to `/readyz` 200 (for files, also the ready line);
//! - Remora's RSS after load, then its maximum and last value sampled every second of the churn;
//! - change to first routed request: a measured Service's EndpointSlice is switched from pod A to
//!   pod B (file saved, or object written to the API server), then its host is asked every
//!   millisecond until pod B answers: p50, p99, max;
//! - CPU seconds of Remora (utime + stime) over the churn, per change (churned and measured);
//! - sticky sessions on Services that never change: each session's cookie is sent again every
//!   2 s during the churn and must reach the pod it reached first.
//!
//! Real pods (tests/common) answer on 127.x.y.11...: 2 per measured Service, 3 per sticky
//! Service. Every other endpoint is an address of 127.240.0.0/15 where nothing listens (no
//! request is ever sent there); the measured and sticky slices fill up to their size with such
//! endpoints, not ready.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use bytes::Bytes;
use common::apiserver::FakeApi;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Services whose EndpointSlice the measured changes switch between two pods.
const MEASURED: usize = 4;
/// Services the sticky sessions are on (3 real pods each); they never change.
const STICKY: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sizes {
    services: usize,
    endpoints: usize,
    churn_per_sec: usize,
    churn_seconds: usize,
    changes: usize,
    sessions: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        let s = Sizes {
            services: env("SCALE_INGRESSES", 10_000),
            endpoints: env("SCALE_ENDPOINTS", 10).max(3),
            churn_per_sec: env("CHURN_PER_SEC", 100),
            churn_seconds: env("CHURN_SECONDS", 60).max(1),
            changes: env("SCALE_CHANGES", 60).max(1),
            sessions: env("SCALE_SESSIONS", 100),
        };
        assert!(
            s.services > MEASURED + STICKY,
            "SCALE_INGRESSES must be over {}",
            MEASURED + STICKY
        );
        s
    }
}

fn service_name(i: usize) -> String {
    format!("svc-{i:05}")
}

fn host(i: usize) -> String {
    format!("h{i:05}.scale.test")
}

/// An address where nothing listens, for endpoint `e` of Service `i`.
fn dead_ip(i: usize, e: usize, per_slice: usize) -> String {
    let n = i * per_slice + e;
    format!("127.{}.{}.{}", 240 + n / 65536, n / 256 % 256, n % 256)
}

/// One EndpointSlice: the Service it belongs to, its port, its endpoints (address, ready, pod).
struct Slice {
    service: usize,
    port: u16,
    endpoints: Vec<(String, bool, String)>,
}

impl Slice {
    /// A Service that nobody sends requests to, at `version` (which endpoint is not ready).
    fn dead(i: usize, per_slice: usize, version: usize) -> Slice {
        Slice {
            service: i,
            port: 8080,
            endpoints: (0..per_slice)
                .map(|e| {
                    (
                        dead_ip(i, e, per_slice),
                        version == 0 || e != version % per_slice,
                        format!("{}-{e}", service_name(i)),
                    )
                })
                .collect(),
        }
    }

    /// The real `pods` (those of `ready` ready), then dead endpoints, not ready, up to the size.
    fn real(i: usize, per_slice: usize, pods: &[&Pod], ready: &[usize]) -> Slice {
        let mut endpoints: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(k, p)| (p.ip(), ready.contains(&k), p.name.clone()))
            .collect();
        for e in pods.len()..per_slice {
            endpoints.push((
                dead_ip(i, e, per_slice),
                false,
                format!("{}-{e}", service_name(i)),
            ));
        }
        Slice {
            service: i,
            port: pods[0].addr.port(),
            endpoints,
        }
    }

    fn yaml(&self) -> String {
        let name = service_name(self.service);
        let mut s = format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-abcde\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n- port: {}\n  protocol: TCP\nendpoints:\n",
            self.port
        );
        for (ip, ready, pod) in &self.endpoints {
            s.push_str(&format!(
                "- addresses: [\"{ip}\"]\n  conditions: {{ready: {ready}}}\n  targetRef: {{kind: Pod, namespace: default, name: {pod}}}\n"
            ));
        }
        s
    }

    fn json(&self) -> Value {
        let name = service_name(self.service);
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-abcde"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"port": self.port, "protocol": "TCP"}],
            "endpoints": self.endpoints.iter().map(|(ip, ready, pod)| json!({
                "addresses": [ip],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "namespace": "default", "name": pod},
            })).collect::<Vec<_>>(),
        })
    }
}

fn service_json(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": service_name(i), "namespace": "default"},
           "spec": {"ports": [{"port": 80}]}})
}

fn ingress_json(i: usize) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
           "metadata": {"name": format!("ing-{i:05}"), "namespace": "default",
                        "annotations": {"nginx.ingress.kubernetes.io/affinity": "cookie"}},
           "spec": {"ingressClassName": "remora", "rules": [{"host": host(i), "http": {"paths": [
               {"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": service_name(i), "port": {"number": 80}}}}]}}]}})
}

fn service_yaml_of(i: usize) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {}\n  namespace: default\nspec:\n  ports:\n  - port: 80\n",
        service_name(i)
    )
}

fn ingress_yaml_of(i: usize) -> String {
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: ing-{i:05}\n  namespace: default\n  annotations:\n    nginx.ingress.kubernetes.io/affinity: cookie\nspec:\n  ingressClassName: remora\n  rules:\n  - host: {}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {}\n            port:\n              number: 80\n",
        host(i),
        service_name(i)
    )
}

/// Where the cluster lives: files in a directory, or objects in the fake API server.
enum Store {
    Files(Dir),
    Api(Arc<FakeApi>),
}

impl Store {
    fn slice_path(dir: &Dir, i: usize) -> PathBuf {
        dir.path()
            .join("slices")
            .join(format!("{}.yaml", service_name(i)))
    }

    /// Save one EndpointSlice: a file written and renamed into place, or a PUT at the API.
    fn save(&self, slice: &Slice) {
        match self {
            Store::Files(dir) => {
                let path = Self::slice_path(dir, slice.service);
                let tmp = path.with_file_name(format!(".{}.tmp", service_name(slice.service)));
                std::fs::write(&tmp, slice.yaml()).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
            }
            Store::Api(api) => {
                api.put_value(slice.json());
            }
        }
    }
}

/// Write the whole cluster: Ingresses and Services in files of 1,000, one file per EndpointSlice.
fn write_files(dir: &Dir, sizes: &Sizes, slices: &[Slice]) {
    std::fs::create_dir_all(dir.path().join("slices")).unwrap();
    dir.write("class.yaml", CLASS);
    for (chunk, range) in (0..sizes.services)
        .collect::<Vec<_>>()
        .chunks(1000)
        .enumerate()
    {
        let ingresses: Vec<String> = range.iter().map(|&i| ingress_yaml_of(i)).collect();
        dir.write(
            &format!("ingresses-{chunk:02}.yaml"),
            &ingresses.join("---\n"),
        );
        let services: Vec<String> = range.iter().map(|&i| service_yaml_of(i)).collect();
        dir.write(
            &format!("services-{chunk:02}.yaml"),
            &services.join("---\n"),
        );
    }
    for s in slices {
        std::fs::write(Store::slice_path(dir, s.service), s.yaml()).unwrap();
    }
}

fn store_api(api: &FakeApi, sizes: &Sizes, slices: &[Slice]) {
    api.apply(CLASS);
    for i in 0..sizes.services {
        api.put_value(service_json(i));
        api.put_value(ingress_json(i));
    }
    for s in slices {
        api.put_value(s.json());
    }
}

/// Resident memory of a process, MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// User + system CPU seconds of a process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces), from field 3 on.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15: 12 and 13 here.
    let tck = clock_ticks();
    (ticks(11).unwrap_or(0.0) + ticks(12).unwrap_or(0.0)) / tck
}

fn clock_ticks() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// GET / with `host` (and a cookie); status and body, `None` on any failure or after 5 s.
async fn ask(
    client: &HttpClient,
    remora: &Remora,
    host: &str,
    cookie: Option<&str>,
) -> Option<(u16, String, Option<String>)> {
    let mut req = http::Request::get(remora.url("/")).header("host", host);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(req.body(Full::new(Bytes::new())).ok()?),
    )
    .await
    .ok()?
    .ok()?;
    let status = resp.status().as_u16();
    let set_cookie = resp
        .headers()
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let body = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect())
        .await
        .ok()?
        .ok()?
        .to_bytes();
    Some((
        status,
        String::from_utf8_lossy(&body).into_owned(),
        set_cookie,
    ))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One mode's figures.
struct Figures {
    mode: &'static str,
    load: Duration,
    rss_loaded: f64,
    rss_churn_start: f64,
    rss_max: f64,
    rss_last: f64,
    latencies: Vec<Duration>,
    never_routed: usize,
    churned: u64,
    cpu: f64,
    sessions: usize,
    session_checks: u64,
    moved: u64,
}

impl Figures {
    fn print(&self) {
        let mut l = self.latencies.clone();
        l.sort();
        let changes = self.churned + self.latencies.len() as u64;
        println!(
            "scale {}: initial load {:.2} s; RSS after load {:.0} MiB, at churn start {:.0}, churn max {:.0}, last {:.0}; change -> first routed request p50 {} ms, p99 {} ms, max {} ms over {} changes ({} never routed); {} churn changes + {} measured, CPU {:.2} s = {:.1} ms per change; {} sticky sessions checked {} times, {} moved",
            self.mode,
            self.load.as_secs_f64(),
            self.rss_loaded,
            self.rss_churn_start,
            self.rss_max,
            self.rss_last,
            ms(percentile(&l, 50.0)),
            ms(percentile(&l, 99.0)),
            ms(l.last().copied().unwrap_or_default()),
            l.len(),
            self.never_routed,
            self.churned,
            l.len(),
            self.cpu,
            self.cpu * 1000.0 / changes.max(1) as f64,
            self.sessions,
            self.session_checks,
            self.moved,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run by bench/scale.sh"]
async fn scale() {
    let sizes = Sizes::from_env();
    let modes = std::env::var("SCALE_MODES").unwrap_or_else(|_| "files,controller".into());
    println!(
        "scale: {} Ingresses (cookie affinity), {} Services, {} endpoints in {} EndpointSlices; churn {} EndpointSlice changes/s for {} s; {} measured changes; {} sticky sessions; remora {}",
        sizes.services,
        sizes.services,
        sizes.services * sizes.endpoints,
        sizes.services,
        sizes.churn_per_sec,
        sizes.churn_seconds,
        sizes.changes,
        sizes.sessions,
        binary(),
    );
    let mut all = Vec::new();
    for mode in modes.split(',').map(str::trim) {
        let figures = match mode {
            "files" => run(&sizes, "files").await,
            "controller" => run(&sizes, "controller").await,
            other => panic!("SCALE_MODES: unknown mode {other}"),
        };
        figures.print();
        all.push(figures);
    }
    for f in &all {
        assert_eq!(f.moved, 0, "{}: sticky sessions moved", f.mode);
        assert_eq!(f.never_routed, 0, "{}: changes never routed", f.mode);
    }
}

async fn run(sizes: &Sizes, mode: &'static str) -> Figures {
    // Real pods: two per measured Service (A serves, then B, then A...), three per sticky one.
    let mut measured_pods = Vec::new();
    for m in 0..MEASURED {
        measured_pods.push(pods(&format!("measured-{m}"), 2).await);
    }
    let mut sticky_pods = Vec::new();
    for s in 0..STICKY {
        sticky_pods.push(pods(&format!("sticky-{s}"), 3).await);
    }
    let per = sizes.endpoints;
    let slices: Vec<Slice> = (0..sizes.services)
        .map(|i| {
            if i < MEASURED {
                let p = &measured_pods[i];
                Slice::real(i, per, &[&p[0], &p[1]], &[0])
            } else if i < MEASURED + STICKY {
                let p = &sticky_pods[i - MEASURED];
                Slice::real(i, per, &[&p[0], &p[1], &p[2]], &[0, 1, 2])
            } else {
                Slice::dead(i, per, 0)
            }
        })
        .collect();

    let dir = Dir::new();
    let generated = Instant::now();
    let (store, started, remora) = match mode {
        "files" => {
            let files = Dir::new();
            write_files(&files, sizes, &slices);
            println!(
                "scale {mode}: files written in {:.1} s",
                generated.elapsed().as_secs_f64()
            );
            let started = Instant::now();
            let remora = Remora::serve(&[files.path()], &[]);
            (Store::Files(files), started, remora)
        }
        _ => {
            let api = Arc::new(FakeApi::start().await);
            store_api(&api, sizes, &slices);
            println!(
                "scale {mode}: {} objects stored in the API server in {:.1} s",
                3 * sizes.services + 1,
                generated.elapsed().as_secs_f64()
            );
            let kubeconfig = api.kubeconfig(&dir).display().to_string();
            let mut args: Vec<String> =
                ["controller", "--kubeconfig", &kubeconfig, "--workers", "2"]
                    .map(String::from)
                    .to_vec();
            args.extend(LISTEN_ON_LOOPBACK.map(String::from));
            let started = Instant::now();
            let remora = Remora::start(&args);
            (Store::Api(api), started, remora)
        }
    };
    drop(slices);
    let client: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    // Ready: /readyz, and the last measured host served by its pod A.
    loop {
        let ready = remora.readyz().await == 200;
        let routed = ask(&client, &remora, &host(MEASURED - 1), None)
            .await
            .is_some_and(|(_, body, _)| body.contains(&measured_pods[MEASURED - 1][0].name));
        if ready && routed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{mode}: not ready after 300 s; stderr:\n{}",
            remora.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let load = started.elapsed();
    let pid = remora.pid();
    let rss_loaded = rss_mib(pid);
    println!(
        "scale {mode}: ready in {:.2} s, RSS {rss_loaded:.0} MiB",
        load.as_secs_f64()
    );

    // Sticky sessions, spread over the sticky Services: each cookie and the pod it reached.
    let mut sessions = Vec::new();
    for n in 0..sizes.sessions {
        let s = MEASURED + n % STICKY;
        let (status, body, cookie) = ask(&client, &remora, &host(s), None)
            .await
            .expect("a sticky host answers");
        assert_eq!(status, 200, "{body}");
        let cookie = cookie.expect("a session cookie");
        sessions.push((host(s), cookie, body));
    }
    let distinct: std::collections::BTreeSet<&String> = sessions.iter().map(|s| &s.2).collect();
    println!(
        "scale {mode}: {} sessions on {} pods",
        sessions.len(),
        distinct.len()
    );

    // The churn: CHURN_PER_SEC changes a second of the other Services' EndpointSlices.
    let store = Arc::new(store);
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    let churn = {
        let (store, stop, churned) = (store.clone(), stop.clone(), churned.clone());
        let (first, count, rate) = (
            MEASURED + STICKY,
            sizes.services - MEASURED - STICKY,
            sizes.churn_per_sec,
        );
        std::thread::spawn(move || {
            if rate == 0 {
                return;
            }
            let mut versions = vec![0usize; count];
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            let period = Duration::from_secs_f64(1.0 / rate as f64);
            let begun = Instant::now();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Pace: change n is due at n x period.
                let due = begun + period * n as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let k = (seed % count as u64) as usize;
                versions[k] += 1;
                store.save(&Slice::dead(first + k, per, versions[k]));
                n += 1;
                churned.store(n, Ordering::Relaxed);
            }
        })
    };
    let rss = Arc::new(Mutex::new(Vec::<f64>::new()));
    let sampler = {
        let (rss, stop) = (rss.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                rss.lock().unwrap().push(rss_mib(pid));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let checks = Arc::new(AtomicU64::new(0));
    let moved = Arc::new(AtomicU64::new(0));
    let checker = {
        let (stop, checks, moved, client) =
            (stop.clone(), checks.clone(), moved.clone(), client.clone());
        let http = remora.http;
        tokio::spawn(async move {
            let url = format!("http://{http}/");
            while !stop.load(Ordering::Relaxed) {
                for (host, cookie, pod) in &sessions {
                    let req = http::Request::get(&url)
                        .header("host", host)
                        .header("cookie", cookie)
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    let body =
                        match tokio::time::timeout(Duration::from_secs(5), client.request(req))
                            .await
                        {
                            Ok(Ok(r)) => r
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default(),
                            _ => Bytes::new(),
                        };
                    checks.fetch_add(1, Ordering::Relaxed);
                    if String::from_utf8_lossy(&body) != *pod {
                        moved.fetch_add(1, Ordering::Relaxed);
                        eprintln!(
                            "session on {host} moved: {pod} -> {}",
                            String::from_utf8_lossy(&body)
                        );
                    }
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    let rss_churn_start = rss_mib(pid);
    let cpu_start = cpu_seconds(pid);
    let churn_started = Instant::now();
    // The measured changes, spread over the churn: switch the Service's endpoint to its other pod
    // and ask its host every millisecond until that pod answers.
    let spacing = Duration::from_secs(sizes.churn_seconds as u64) / sizes.changes as u32;
    let mut serving = [0usize; MEASURED];
    let mut latencies = Vec::new();
    let mut never_routed = 0;
    for c in 0..sizes.changes {
        let due = churn_started + spacing * c as u32;
        tokio::time::sleep_until(due.into()).await;
        let m = c % MEASURED;
        let next = 1 - serving[m];
        let p = &measured_pods[m];
        let slice = Slice::real(m, per, &[&p[0], &p[1]], &[next]);
        let want = &p[next].name;
        let saved = Instant::now();
        store.save(&slice);
        loop {
            if let Some((200, body, _)) = ask(&client, &remora, &host(m), None).await {
                if body.contains(want.as_str()) {
                    latencies.push(saved.elapsed());
                    break;
                }
            }
            if saved.elapsed() > Duration::from_secs(20) {
                never_routed += 1;
                eprintln!("scale {mode}: change {c} not routed within 20 s");
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        serving[m] = next;
    }
    tokio::time::sleep_until(
        (churn_started + Duration::from_secs(sizes.churn_seconds as u64)).into(),
    )
    .await;
    let cpu = cpu_seconds(pid) - cpu_start;
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    sampler.await.unwrap();
    checker.await.unwrap();
    let rss_last = rss_mib(pid);
    let samples = rss.lock().unwrap().clone();
    let rss_max = samples.iter().copied().fold(rss_last, f64::max);
    drop(remora);
    Figures {
        mode,
        load,
        rss_loaded,
        rss_churn_start,
        rss_max,
        rss_last,
        latencies,
        never_routed,
        churned: churned.load(Ordering::Relaxed),
        cpu,
        sessions: sizes.sessions,
        session_checks: checks.load(Ordering::Relaxed),
        moved: moved.load(Ordering::Relaxed),
    }
}
