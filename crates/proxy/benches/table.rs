//! Route lookup and sticky pick on a large configuration (10,000 routes, 100,000 endpoints), the
//! memory that configuration takes, and the time to build its table.
//!
//!   cargo bench -p remora-proxy --bench table
//!
//! The figures are printed by divan (time per operation) and, first, by `main` (memory).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use balance::CookieKey;
use model::{
    Affinity, AffinityMode, Backend, BackendId, Endpoint, EndpointId, HostMatch, ObjectRef,
    PathType, Route, Snapshot, Target, VirtualHost,
};
use remora_proxy::{ListenerId, Table};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Counts allocations per benchmark iteration (shown in divan's output).
#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

/// Resident memory of this process, bytes (Linux; 0 elsewhere).
fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

const HOSTS: usize = 1_000;
const PATHS: usize = 10;
const ENDPOINTS_PER_BACKEND: usize = 10;

/// 1,000 hosts of 10 paths each (10,000 routes), each route its own Service of 10 endpoints
/// (100,000 endpoints), all with balanced cookie affinity.
fn snapshot() -> Snapshot {
    let affinity = Arc::new(Affinity::new("route", AffinityMode::Balanced));
    let mut hosts = Vec::with_capacity(HOSTS);
    let mut backends = Vec::with_capacity(HOSTS * PATHS);
    for h in 0..HOSTS {
        let mut routes = Vec::with_capacity(PATHS);
        for p in 0..PATHS {
            let b = backends.len();
            backends.push(Backend {
                name: format!("ns-{h}/svc-{p}:80"),
                endpoints: (0..ENDPOINTS_PER_BACKEND)
                    .map(|e| {
                        let n = (b * ENDPOINTS_PER_BACKEND + e) as u32;
                        Endpoint {
                            id: EndpointId(u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                            addr: SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 8080)),
                            ready: true,
                            serving: true,
                            terminating: false,
                            pod: Some(format!("svc-{p}-7d9f8b6c5d-{e:05}")),
                        }
                    })
                    .collect(),
            });
            routes.push(Route {
                path: format!("/api/v{p}"),
                path_type: PathType::Prefix,
                target: Target {
                    backend: Some(BackendId(b as u32)),
                    affinity: Some(affinity.clone()),
                    location: Default::default(),
                    ingress: ObjectRef::new("Ingress", &format!("ns-{h}"), "web"),
                    default_backend: None,
                },
                canary: None,
                https_redirect: false,
                conditions: None,
                backends: Vec::new(),
            });
        }
        hosts.push(VirtualHost {
            host: HostMatch::Exact(format!("shop-{h}.example.com")),
            routes,
            default: None,
            tls: None,
            client_auth: None,
            client_auth_error: None,
            passthrough: None,
            ssl_ciphers: None,
        });
    }
    for b in &mut backends {
        b.endpoints.sort_by_key(|e| e.id);
    }
    Snapshot {
        hosts: hosts.into(),
        listeners: Default::default(),
        backends: backends.into_iter().map(Into::into).collect(),
        certificates: Default::default(),
        settings: Default::default(),
    }
}

fn main() {
    let before = rss();
    let started = std::time::Instant::now();
    let table = Table::new(snapshot(), Vec::new(), 1, None, None);
    let built = started.elapsed();
    let bytes = rss().saturating_sub(before);
    println!(
        "{} routes, {} endpoints: resident memory of snapshot + table = {:.1} MiB, built in {:.0} ms",
        HOSTS * PATHS,
        HOSTS * PATHS * ENDPOINTS_PER_BACKEND,
        bytes as f64 / (1024.0 * 1024.0),
        built.as_secs_f64() * 1000.0
    );
    drop(table);
    divan::main();
}

fn table() -> &'static Table {
    static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| Table::new(snapshot(), Vec::new(), 1, None, None))
}

#[divan::bench]
fn route_lookup(bencher: divan::Bencher) {
    let t = table();
    let mut i = 0usize;
    let hosts: Vec<String> = (0..HOSTS)
        .map(|h| format!("shop-{h}.example.com"))
        .collect();
    let req = http::Request::get("/api/v7/cart/items")
        .body(())
        .expect("a request");
    bencher.bench_local(|| {
        i = i.wrapping_add(7919);
        let host = &hosts[i % HOSTS];
        let m = t.route(ListenerId::Ingress, host, &req).expect("a route");
        divan::black_box(m.target.backend)
    });
}

#[divan::bench]
fn sticky_pick_returning_session(bencher: divan::Bencher) {
    let t = table();
    let key = CookieKey::from_secret(b"a benchmark secret of some length");
    let affinity = Affinity::new("route", AffinityMode::Balanced);
    let backend = &t.backends[4242];
    let cookie = backend
        .balancer
        .pick_sticky(&key, &affinity, std::iter::empty(), 1_000)
        .expect("a pick")
        .new_cookie
        .expect("a new session");
    bencher.bench_local(|| {
        let p = backend
            .balancer
            .pick_sticky(&key, &affinity, std::iter::once(cookie.as_str()), 1_000)
            .expect("a pick");
        divan::black_box(p.endpoint)
    });
}

#[divan::bench]
fn sticky_pick_new_session(bencher: divan::Bencher) {
    let t = table();
    let key = CookieKey::from_secret(b"a benchmark secret of some length");
    let affinity = Affinity::new("route", AffinityMode::Balanced);
    let backend = &t.backends[4242];
    bencher.bench_local(|| {
        let p = backend
            .balancer
            .pick_sticky(&key, &affinity, std::iter::empty(), 1_000)
            .expect("a pick");
        divan::black_box(p.endpoint)
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn table_build(bencher: divan::Bencher) {
    bencher
        .with_inputs(snapshot)
        .bench_values(|s| Table::new(s, Vec::new(), 1, None, None));
}
