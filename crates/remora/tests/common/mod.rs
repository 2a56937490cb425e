//! Helpers shared by Remora's integration tests: backend "pods" on distinct loopback addresses,
//! the real `remora` binary started as a process, and a small HTTP client.
//!
//! Everything binds port 0 or a port found free at run time, so tests run in parallel.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

pub mod apiserver;
mod manifests;
pub mod tls;
#[allow(unused_imports)]
pub use manifests::*;

/// A fake pod: answers `Hello "<name>"!` like what-is-my-pod, plus `x-pod-name`, and on
/// `/echo-headers` the request headers it received (one `name: value` per line); on
/// `/respond-headers`, each request header `x-respond-NAME` as a response header `NAME` (and
/// `x-respond-status` as the status); asked with
/// `X-Code` (an error page, as ingress-nginx asks its default backend), that status and the
/// request's head.
pub struct Pod {
    pub name: String,
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
}

impl Pod {
    pub fn ip(&self) -> String {
        self.addr.ip().to_string()
    }

    /// Die: the listening socket and every open connection are closed.
    pub fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn start_pod(listener: TcpListener, name: String) -> Pod {
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let counter = hits.clone();
    let pod_name = name.clone();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        loop {
            let mut stop = rx.clone();
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = stop.wait_for(|s| *s) => return,
            };
            accepted.fetch_add(1, Ordering::Relaxed);
            let name = pod_name.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let name = name.clone();
                    let counter = counter.clone();
                    async move {
                        counter.fetch_add(1, Ordering::Relaxed);
                        // Asked for an error page (`X-Code`, as ingress-nginx asks its default
                        // backend): that status, and the request's head as the body.
                        if let Some(code) = req
                            .headers()
                            .get("x-code")
                            .and_then(|c| c.to_str().ok()?.parse::<u16>().ok())
                        {
                            let mut s =
                                format!("error page from {name}\n{} {}\n", req.method(), req.uri());
                            for (k, v) in req.headers() {
                                s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
                            }
                            let mut r = http::Response::new(Full::new(Bytes::from(s)).boxed());
                            *r.status_mut() =
                                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                            return Ok(r);
                        }
                        // `/fail-if/<pod>`: 502 from that pod, hello from the others;
                        // `/stall-if/<pod>`: that pod never answers.
                        if let Some(who) = req.uri().path().strip_prefix("/fail-if/") {
                            if who == name {
                                let mut r = http::Response::new(
                                    Full::new(Bytes::from_static(b"bad gateway")).boxed(),
                                );
                                *r.status_mut() = StatusCode::BAD_GATEWAY;
                                return Ok(r);
                            }
                        }
                        if req.uri().path().strip_prefix("/stall-if/") == Some(name.as_str()) {
                            std::future::pending::<()>().await;
                        }
                        if req.uri().path() == "/ws" {
                            return Ok(websocket_echo(req, name).map(BodyExt::boxed));
                        }
                        if req.uri().path() == "/stall-body" {
                            // The head and the start of the body, then nothing more.
                            let first =
                                futures_util::stream::iter([Ok::<_, std::convert::Infallible>(
                                    hyper::body::Frame::data(Bytes::from_static(b"partial")),
                                )]);
                            let body =
                                http_body_util::StreamBody::new(futures_util::StreamExt::chain(
                                    first,
                                    futures_util::stream::pending(),
                                ));
                            return Ok(http::Response::new(BodyExt::boxed(body)));
                        }
                        let body = match req.uri().path() {
                            "/echo-headers" => {
                                let mut s = format!("uri: {}\n", req.uri());
                                for (k, v) in req.headers() {
                                    s.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
                                }
                                Bytes::from(s)
                            }
                            "/respond-headers" => {
                                let mut resp = http::Response::new(
                                    Full::new(Bytes::from_static(b"headers")).boxed(),
                                );
                                for (k, v) in req.headers() {
                                    let Some(name) = k.as_str().strip_prefix("x-respond-") else {
                                        continue;
                                    };
                                    if name == "status" {
                                        *resp.status_mut() =
                                            StatusCode::from_bytes(v.as_bytes()).unwrap();
                                    } else {
                                        resp.headers_mut().append(
                                            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                                            v.clone(),
                                        );
                                    }
                                }
                                return Ok(resp);
                            }
                            "/server-header" => {
                                let mut resp = http::Response::new(
                                    Full::new(Bytes::from_static(b"served")).boxed(),
                                );
                                resp.headers_mut()
                                    .insert("server", "pod-server/1.0".parse().unwrap());
                                return Ok(resp);
                            }
                            // Takes no more of the request and never answers.
                            "/stall" => std::future::pending().await,
                            "/slow" => {
                                tokio::time::sleep(Duration::from_millis(500)).await;
                                Bytes::from(format!("Hello \"{name}\"!"))
                            }
                            "/echo-body" => {
                                let n = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().len())
                                    .unwrap_or(0);
                                Bytes::from(format!("{n}"))
                            }
                            _ => Bytes::from(format!("Hello \"{name}\"!")),
                        };
                        let mut resp = http::Response::new(Full::new(body).boxed());
                        resp.headers_mut()
                            .insert("x-pod-name", name.parse().unwrap());
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                tokio::select! {
                    _ = conn => {}
                    _ = stop.wait_for(|s| *s) => {}
                }
            });
        }
    });
    Pod {
        name,
        addr,
        hits,
        connections,
        stop: Some(tx),
    }
}

/// A pod's `/ws`: accept the WebSocket handshake, then answer each text message `m` with
/// `<pod name>: m`.
fn websocket_echo(
    req: Request<hyper::body::Incoming>,
    name: String,
) -> http::Response<Full<Bytes>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{handshake::derive_accept_key, protocol::Role, Message};
    let Some(key) = req.headers().get("sec-websocket-key") else {
        let mut r = http::Response::new(Full::new(Bytes::from("not a WebSocket handshake")));
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            let reply = match msg {
                Message::Text(t) => Message::text(format!("{name}: {t}")),
                Message::Close(_) => return,
                _ => continue,
            };
            if ws.send(reply).await.is_err() {
                return;
            }
        }
    });
    http::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// Distinct loopback addresses for each call in this process (and, through the pid, mostly
/// distinct across test binaries): 127.<a>.<b>.11, .12, ...
pub fn address_block(n: usize) -> Vec<Ipv4Addr> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let block = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() as usize;
    let a = 1 + (pid % 200) as u8;
    let b = (block % 250) as u8;
    (0..n)
        .map(|i| Ipv4Addr::new(127, a, b, 11 + i as u8))
        .collect()
}

/// Start `n` pods on consecutive loopback addresses, all on the same port (as pods of a Deployment
/// share their containerPort). Names look like Kubernetes pod names: `<prefix>-<i>`.
pub async fn pods(prefix: &str, n: usize) -> Vec<Pod> {
    for _attempt in 0..50 {
        let ips = address_block(n + 4);
        let first = TcpListener::bind((ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for ip in &ips[1..n] {
            match TcpListener::bind((*ip, port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => break,
            }
        }
        if listeners.len() == n {
            let mut out = Vec::new();
            for (i, l) in listeners.into_iter().enumerate() {
                out.push(start_pod(l, format!("{prefix}-{i}")).await);
            }
            return out;
        }
    }
    panic!("could not find {n} loopback addresses sharing a free port");
}

/// One more pod on the next address of an existing set, same port.
pub async fn one_more_pod(existing: &[Pod], name: &str) -> Pod {
    let last = existing.iter().map(|p| p.addr).max().unwrap();
    let SocketAddr::V4(v4) = last else { panic!() };
    let o = v4.ip().octets();
    let ip = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1);
    let l = TcpListener::bind((ip, v4.port())).await.unwrap();
    start_pod(l, name.to_owned()).await
}

/// An EndpointSlice manifest for `service` with the given pods (all ready), port `port_name`.
pub fn slice_yaml(
    service: &str,
    namespace: &str,
    port_name: Option<&str>,
    pods: &[&Pod],
) -> String {
    slice_yaml_with(service, namespace, port_name, pods, &[])
}

/// Same, with explicit `(ready, serving, terminating)` conditions for some pods (by index).
pub fn slice_yaml_with(
    service: &str,
    namespace: &str,
    port_name: Option<&str>,
    pods: &[&Pod],
    conditions: &[(usize, bool, bool, bool)],
) -> String {
    let port = pods.first().map_or(8080, |p| p.addr.port());
    let mut s = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-abcde\n  namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {service}\naddressType: IPv4\nports:\n- port: {port}\n  protocol: TCP\n"
    );
    if let Some(n) = port_name {
        s.push_str(&format!("  name: {n}\n"));
    }
    s.push_str("endpoints:\n");
    for (i, p) in pods.iter().enumerate() {
        let (ready, serving, terminating) = conditions
            .iter()
            .find(|c| c.0 == i)
            .map_or((true, true, false), |c| (c.1, c.2, c.3));
        s.push_str(&format!(
            "- addresses: [\"{}\"]\n  conditions: {{ready: {ready}, serving: {serving}, terminating: {terminating}}}\n  targetRef: {{kind: Pod, namespace: {namespace}, name: {}}}\n",
            p.ip(),
            p.name
        ));
    }
    if pods.is_empty() {
        s.push_str("[]\n");
        s = s.replace("endpoints:\n[]\n", "endpoints: []\n");
    }
    s
}

/// The seed manifests, verbatim from the repository (which holds them as the seeds give them).
pub fn seed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../manifests")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A directory holding seed 002 verbatim (what-is-my-pod) and the EndpointSlice a cluster would
/// derive for `pods`.
pub fn seed_002_dir(pods: &[Pod]) -> Dir {
    let dir = Dir::new();
    dir.write("seed.yaml", &seed("seed-002-what-is-my-pod.yaml"));
    dir.write(
        "slices.yaml",
        &slice_yaml(
            "what-is-my-pod",
            "default",
            None,
            &pods.iter().collect::<Vec<_>>(),
        ),
    );
    dir
}

/// Same for seed 000 (deno-hello, whose Service port is named `deno-hello-port`).
pub fn seed_000_dir(pods: &[Pod]) -> Dir {
    let dir = Dir::new();
    dir.write("seed.yaml", &seed("seed-000-deno-hello.yaml"));
    dir.write(
        "slices.yaml",
        &slice_yaml(
            "deno-hello-service",
            "default",
            Some("deno-hello-port"),
            &pods.iter().collect::<Vec<_>>(),
        ),
    );
    dir
}

/// The usual set-up: `replicas` pods named `<pod_prefix>-<i>` behind the Service `service` (port
/// 80, its EndpointSlice listing them), the `ingresses`, and Remora serving the directory that
/// holds them (`svc.yaml`, `slice.yaml`, `ing.yaml`).
pub async fn serve_service(
    service: &str,
    pod_prefix: &str,
    replicas: usize,
    ingresses: &[String],
) -> (Vec<Pod>, Dir, Remora) {
    serve_service_with(service, pod_prefix, replicas, ingresses, &[]).await
}

/// `replicas` pods, and a directory of manifests with their Service (port 80) and EndpointSlice
/// in namespace `default`.
pub async fn service_dir(service: &str, pod_prefix: &str, replicas: usize) -> (Vec<Pod>, Dir) {
    let pods = pods(pod_prefix, replicas).await;
    let dir = Dir::new();
    dir.write("svc.yaml", &service_yaml(service));
    dir.write(
        "slice.yaml",
        &slice_yaml(service, "default", None, &pods.iter().collect::<Vec<_>>()),
    );
    (pods, dir)
}

/// The same, with more arguments for `remora serve`.
pub async fn serve_service_with(
    service: &str,
    pod_prefix: &str,
    replicas: usize,
    ingresses: &[String],
    extra: &[&str],
) -> (Vec<Pod>, Dir, Remora) {
    let (pods, dir) = service_dir(service, pod_prefix, replicas).await;
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], extra);
    (pods, dir, remora)
}

/// A running `remora serve` (or `demo`) process, killed on drop.
pub struct Remora {
    child: Child,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub stdout: Arc<std::sync::Mutex<Vec<String>>>,
    pub stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Remora {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `remora` binary of this build, or the one `REMORA_BINARY` names (a benchmark measuring
/// another build).
pub fn binary() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        std::env::var("REMORA_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_remora").to_owned())
    })
}

impl Remora {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM, as Kubernetes does when it stops a pod.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("remora did not exit within {within:?}");
    }

    /// `remora serve --manifests <each path> <extra...>` on port 0, waiting for its ready line.
    pub fn serve(manifests: &[&Path], extra: &[&str]) -> Remora {
        Self::start(&Self::serve_args(manifests, extra))
    }

    /// [`Remora::serve`] with these environment variables set (as a pod's manifest sets them).
    pub fn serve_with_env(manifests: &[&Path], extra: &[&str], env: &[(&str, &str)]) -> Remora {
        Self::start_with_env(&Self::serve_args(manifests, extra), env)
    }

    /// [`Remora::start`] with these environment variables set.
    pub fn start_with_env(args: &[String], env: &[(&str, &str)]) -> Remora {
        let mut command = Command::new(binary());
        command.args(args).envs(env.iter().copied());
        Self::spawn(command)
    }

    fn serve_args(manifests: &[&Path], extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec!["serve".into()];
        for m in manifests {
            args.push("--manifests".into());
            args.push(m.display().to_string());
        }
        args.extend(LISTEN_ON_LOOPBACK.map(String::from));
        if !extra.contains(&"--workers") {
            args.extend(["--workers", "2"].map(String::from));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Start the binary with `args` and wait (bounded) for
    /// `remora: serving http on A, https on B (admin on C)`.
    pub fn start(args: &[String]) -> Remora {
        let mut command = Command::new(binary());
        command.args(args);
        Self::spawn(command)
    }

    /// [`Remora::start`] with at most `open_files` descriptors (`prlimit --nofile`).
    #[allow(dead_code)]
    pub fn start_with_open_files(args: &[String], open_files: u64) -> Remora {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg(binary())
            .args(args);
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Remora {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let err_lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let lines = out_lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("remora: serving http on ") {
                        let _ = tx.send(rest.to_owned());
                    }
                    lines.lock().unwrap().push(line);
                }
            });
        }
        {
            let lines = err_lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let ready = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "remora did not become ready.\nstdout:\n{}\nstderr:\n{}",
                    out_lines.lock().unwrap().join("\n"),
                    err_lines.lock().unwrap().join("\n")
                );
            }
        };
        // "127.0.0.1:PORT, https on 127.0.0.1:PORT (admin on 127.0.0.1:PORT)"
        let (listeners, admin) = ready.split_once(" (admin on ").unwrap();
        let (http, https) = listeners.split_once(", https on ").unwrap();
        Remora {
            child,
            http: http.parse().unwrap(),
            https: https.parse().unwrap(),
            admin: admin.trim_end_matches(')').parse().unwrap(),
            stdout: out_lines,
            stderr: err_lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// `/status` of the admin endpoint, parsed.
    pub async fn status(&self) -> serde_json::Value {
        let r = get(&format!("http://{}/status", self.admin), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        serde_json::from_str(&r.body).unwrap()
    }

    /// `GET /readyz` on the admin port: its status code.
    pub async fn readyz(&self) -> u16 {
        get(&format!("http://{}/readyz", self.admin), &[])
            .await
            .status
            .as_u16()
    }

    /// Wait (bounded) until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let started = Instant::now();
        while self.readyz().await != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "not ready after 20 s; stderr:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn generation(&self) -> u64 {
        self.status().await["generation"].as_u64().unwrap()
    }

    /// Wait (bounded) until the published generation exceeds `previous`; returns the new one and
    /// how long it took from the call.
    pub async fn wait_generation_after(&self, previous: u64) -> (u64, Duration) {
        let started = Instant::now();
        loop {
            let g = self.generation().await;
            if g > previous {
                return (g, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no new configuration after 10 s; stderr:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Write `content` to the file `name` of `dir` (a directory this process serves) and wait
    /// (bounded) until the configuration it makes is published.
    pub async fn rewrite(&self, dir: &Dir, name: &str, content: &str) {
        let g = self.generation().await;
        dir.write(name, content);
        self.wait_generation_after(g).await;
    }

    /// Wait (bounded) until stderr has a line containing `text`.
    pub async fn wait_log(&self, text: &str) {
        let started = Instant::now();
        while !self.stderr_text().contains(text) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no log line with {text:?}; stderr:\n{}",
                self.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Every listener of a Remora process on loopback port 0 (the ports are read from its ready line).
pub const LISTEN_ON_LOOPBACK: [&str; 6] = [
    "--listen-http",
    "127.0.0.1:0",
    "--listen-https",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
];

/// A response, read whole (the bodies in these tests are small).
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    /// A response, its body read whole.
    pub async fn read<B>(resp: http::Response<B>) -> Resp
    where
        B: hyper::body::Body,
        B::Error: std::fmt::Debug,
    {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// The `Set-Cookie` header values.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// `(name, value)` of the first Set-Cookie, if any.
    pub fn cookie(&self) -> Option<(String, String)> {
        let c = self.set_cookies().into_iter().next()?;
        let nv = c.split(';').next()?;
        let (n, v) = nv.split_once('=')?;
        Some((n.to_owned(), v.to_owned()))
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// POST `body` (streamed as it comes, chunked when its length is unknown) to `path` on Remora with
/// Host app.example.com, on a connection of its own; the response as it arrives.
pub async fn post_to_app<B>(
    remora: &Remora,
    path: &str,
    body: B,
) -> http::Response<hyper::body::Incoming>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::post(path)
        .header("host", "app.example.com")
        .body(body)
        .unwrap();
    sender.send_request(req).await.unwrap()
}

/// Send `frames` as a chunked request body to `path` on Remora (Host app.example.com), one every
/// `gap`, then end it (or, with `end: false`, keep it open); the response and how long it took.
pub async fn paced_upload(
    remora: &Remora,
    path: &str,
    frames: usize,
    frame_len: usize,
    gap: Duration,
    end: bool,
) -> (StatusCode, String, Duration) {
    use http_body_util::{BodyExt, StreamBody};
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(1);
    tokio::spawn(async move {
        for _ in 0..frames {
            let frame = hyper::body::Frame::data(Bytes::from(vec![b'u'; frame_len]));
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
            tokio::time::sleep(gap).await;
        }
        if !end {
            // Hold the body open until the request is over.
            tx.closed().await;
        }
    });
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    });
    let started = std::time::Instant::now();
    let resp = post_to_app(remora, path, StreamBody::new(frames)).await;
    let status = resp.status();
    let text = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    (status, text, started.elapsed())
}

/// GET `url` with extra headers (e.g. `("cookie", "a=b")`, `("host", "DOMAIN")`).
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    request("GET", url, headers, Bytes::new()).await
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Bytes) -> Resp {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        client().request(req.body(Full::new(body)).unwrap()),
    )
    .await
    .expect("request timed out")
    .expect("request failed");
    Resp::read(resp).await
}

/// Wait (bounded: 15 s) until `check` holds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{what}: not within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A curl-like cookie jar session: sends the cookies it got back.
#[derive(Default)]
pub struct Session {
    pub cookies: std::collections::BTreeMap<String, String>,
    pub host: Option<String>,
}

impl Session {
    pub fn with_host(host: &str) -> Self {
        Self {
            host: Some(host.to_owned()),
            ..Self::default()
        }
    }

    /// The `Cookie` header this session sends (empty when it holds none).
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str) -> Resp {
        let cookie = self.cookie_header();
        let mut headers = Vec::new();
        if !cookie.is_empty() {
            headers.push(("cookie", cookie.as_str()));
        }
        if let Some(h) = &self.host {
            headers.push(("host", h.as_str()));
        }
        let r = get(url, &headers).await;
        if let Some((n, v)) = r.cookie() {
            self.cookies.insert(n, v);
        }
        r
    }
}

/// A temporary directory of manifests.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file atomically (write + rename), as editors and ConfigMap mounts do.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let file_name = path.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

/// Read one HTTP/1 response with a `Content-Length` from a keep-alive connection (bounded): its
/// head and body.
pub async fn read_http1_response(s: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .unwrap();
        assert!(n > 0, "closed within a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no content-length in {head:?}"));
        if body.len() >= length {
            return text;
        }
    }
}

/// Wait (bounded by `within`) for the other side to close `s`, reading nothing more: how long it
/// took; `None`: still open.
pub async fn closed_within(s: &mut tokio::net::TcpStream, within: Duration) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let started = Instant::now();
    let mut rest = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut rest)).await {
        Ok(_) => {
            assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
            Some(started.elapsed())
        }
        Err(_) => None,
    }
}
