//! A small Kubernetes API server on loopback for the controller tests. It speaks the real wire
//! format to kube-rs's real client: lists with `resourceVersion`, chunked watch streams of
//! `ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK` events, `ERROR` 410 for expired resource versions,
//! merge-patched status, Leases and Events, the Gateway API kinds (or, started
//! [`FakeApi::start_without_gateway_api`], a 404 for them as without their CRDs) and Namespaces;
//! `metadata.generation` as the real one keeps it. It can be stopped and started again on the
//! same address, as an API server restart.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

/// Where a kind lives in the API.
struct Kind {
    kind: &'static str,
    api_version: &'static str,
    prefix: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const KINDS: &[Kind] = &[
    Kind {
        kind: "Ingress",
        api_version: "networking.k8s.io/v1",
        prefix: "/apis/networking.k8s.io/v1",
        plural: "ingresses",
        namespaced: true,
    },
    Kind {
        kind: "IngressClass",
        api_version: "networking.k8s.io/v1",
        prefix: "/apis/networking.k8s.io/v1",
        plural: "ingressclasses",
        namespaced: false,
    },
    Kind {
        kind: "Service",
        api_version: "v1",
        prefix: "/api/v1",
        plural: "services",
        namespaced: true,
    },
    Kind {
        kind: "Secret",
        api_version: "v1",
        prefix: "/api/v1",
        plural: "secrets",
        namespaced: true,
    },
    Kind {
        kind: "ConfigMap",
        api_version: "v1",
        prefix: "/api/v1",
        plural: "configmaps",
        namespaced: true,
    },
    Kind {
        kind: "EndpointSlice",
        api_version: "discovery.k8s.io/v1",
        prefix: "/apis/discovery.k8s.io/v1",
        plural: "endpointslices",
        namespaced: true,
    },
    Kind {
        kind: "Lease",
        api_version: "coordination.k8s.io/v1",
        prefix: "/apis/coordination.k8s.io/v1",
        plural: "leases",
        namespaced: true,
    },
    Kind {
        kind: "Event",
        api_version: "events.k8s.io/v1",
        prefix: "/apis/events.k8s.io/v1",
        plural: "events",
        namespaced: true,
    },
    Kind {
        kind: "Namespace",
        api_version: "v1",
        prefix: "/api/v1",
        plural: "namespaces",
        namespaced: false,
    },
    Kind {
        kind: "GatewayClass",
        api_version: "gateway.networking.k8s.io/v1",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        plural: "gatewayclasses",
        namespaced: false,
    },
    Kind {
        kind: "Gateway",
        api_version: "gateway.networking.k8s.io/v1",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        plural: "gateways",
        namespaced: true,
    },
    Kind {
        kind: "HTTPRoute",
        api_version: "gateway.networking.k8s.io/v1",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        plural: "httproutes",
        namespaced: true,
    },
    Kind {
        kind: "GRPCRoute",
        api_version: "gateway.networking.k8s.io/v1",
        prefix: "/apis/gateway.networking.k8s.io/v1",
        plural: "grpcroutes",
        namespaced: true,
    },
    Kind {
        kind: "ReferenceGrant",
        api_version: "gateway.networking.k8s.io/v1beta1",
        prefix: "/apis/gateway.networking.k8s.io/v1beta1",
        plural: "referencegrants",
        namespaced: true,
    },
];

/// Where the Gateway API's kinds live: without their CRDs, everything under it is 404.
const GATEWAY_API: &str = "/apis/gateway.networking.k8s.io/";

fn kind_of(kind: &str) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.kind == kind)
        .unwrap_or_else(|| panic!("unknown kind {kind}"))
}

/// A change, as watchers see it.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    plural: &'static str,
    kind: &'static str,
    event: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    rv: u64,
    /// (plural, namespace, name) -> object.
    objects: BTreeMap<(&'static str, String, String), Value>,
    /// Every change, for watches that resume from a resource version.
    log: Vec<Change>,
    /// Resource versions at or below this are expired (410 Gone).
    compacted: u64,
    /// Requests seen, `METHOD path?query`.
    pub requests: Vec<String>,
    /// The bearer token of each of `requests`.
    tokens: Vec<String>,
    /// The Gateway API CRDs are not installed: their paths answer 404.
    no_gateway_api: bool,
}

/// Requests to drop every open watch, with a 410 or a cut connection.
#[derive(Clone, Copy, Debug)]
enum Drop {
    Expire,
    Cut,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Change>,
    drops: broadcast::Sender<Drop>,
    stop: Option<watch::Sender<bool>>,
}

impl FakeApi {
    /// An API server with every kind, the Gateway API's included (its CRDs installed).
    pub async fn start() -> FakeApi {
        Self::start_with(false).await
    }

    /// An API server of a cluster without the Gateway API CRDs: every request under
    /// `/apis/gateway.networking.k8s.io/` answers 404, as a real one does for a group it does
    /// not serve.
    pub async fn start_without_gateway_api() -> FakeApi {
        Self::start_with(true).await
    }

    /// Install the Gateway API CRDs (of an API server started without them).
    pub fn install_gateway_api(&self) {
        self.state.lock().unwrap().no_gateway_api = false;
    }

    async fn start_with(no_gateway_api: bool) -> FakeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (changes, _) = broadcast::channel(1024);
        let (drops, _) = broadcast::channel(16);
        let mut api = FakeApi {
            addr: listener.local_addr().unwrap(),
            state: Arc::new(Mutex::new(State {
                rv: 100,
                no_gateway_api,
                ..State::default()
            })),
            changes,
            drops,
            stop: None,
        };
        api.serve(listener);
        api
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop_tx, stop_rx) = watch::channel(false);
        self.stop = Some(stop_tx);
        let state = self.state.clone();
        let changes = self.changes.clone();
        let drops = self.drops.clone();
        tokio::spawn(async move {
            loop {
                let mut stop = stop_rx.clone();
                let (tcp, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = stop.wait_for(|s| *s) => return,
                };
                let (state, changes, drops) = (state.clone(), changes.clone(), drops.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(state.clone(), changes.clone(), drops.clone(), req)
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
        });
    }

    /// A kubeconfig file that points kube-rs at this server.
    pub fn kubeconfig(&self, dir: &super::Dir) -> std::path::PathBuf {
        self.kubeconfig_file(dir, "kubeconfig", "test")
    }

    /// A kubeconfig file whose bearer token is `user`, so this server can tell its client's
    /// requests from others' ([`FakeApi::requests_from`]).
    pub fn kubeconfig_as(&self, dir: &super::Dir, user: &str) -> std::path::PathBuf {
        self.kubeconfig_file(dir, &format!("kubeconfig-{user}"), user)
    }

    fn kubeconfig_file(&self, dir: &super::Dir, file: &str, token: &str) -> std::path::PathBuf {
        dir.write(
            file,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\nusers:\n- name: fake\n  user:\n    token: {token}\n",
                self.addr
            ),
        )
    }

    /// Create or replace objects given as YAML (one or more documents); watchers see ADDED or
    /// MODIFIED. A document without `status` keeps the status stored, as `kubectl apply` does.
    pub fn apply(&self, yaml: &str) {
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let mut value: Value = serde::Deserialize::deserialize(doc).unwrap();
            if value.is_null() {
                continue;
            }
            if value.get("status").is_none() {
                let kind = value["kind"].as_str().unwrap_or("?").to_owned();
                let ns = value["metadata"]["namespace"].as_str().unwrap_or("default");
                let name = value["metadata"]["name"].as_str().unwrap_or("");
                if let Some(status) = self
                    .get(&kind, ns, name)
                    .and_then(|o| o.get("status").cloned())
                {
                    value["status"] = status;
                }
            }
            self.put(value);
        }
    }

    fn put(&self, obj: Value) -> Value {
        store(&self.state, &self.changes, obj)
    }

    /// Create or replace one object given as JSON (with its `kind`), status and all: what
    /// [`FakeApi::apply`] does without parsing YAML, for many objects (the scale benchmark).
    pub fn put_value(&self, obj: Value) -> Value {
        self.put(obj)
    }

    /// Delete an object; watchers see DELETED.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let kind = kind_of(kind);
        let ns = if kind.namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        let mut st = self.state.lock().unwrap();
        let Some(mut obj) = st.objects.remove(&(kind.plural, ns, name.to_owned())) else {
            return;
        };
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let change = Change {
            rv,
            plural: kind.plural,
            kind: kind.kind,
            event: "DELETED",
            object: obj,
        };
        st.log.push(change.clone());
        drop(st);
        let _ = self.changes.send(change);
    }

    /// An object as stored (e.g. to read the status Remora wrote).
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = kind_of(kind);
        let ns = if kind.namespaced {
            namespace.to_owned()
        } else {
            String::new()
        };
        self.state
            .lock()
            .unwrap()
            .objects
            .get(&(kind.plural, ns, name.to_owned()))
            .cloned()
    }

    /// Every object of a kind.
    pub fn list(&self, kind: &str) -> Vec<Value> {
        let kind = kind_of(kind);
        self.state
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|((p, _, _), _)| *p == kind.plural)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Expire every resource version so far: open watches get `ERROR 410 Gone` and must list again.
    pub fn expire_watches(&self) {
        let mut st = self.state.lock().unwrap();
        st.compacted = st.rv;
        drop(st);
        let _ = self.drops.send(Drop::Expire);
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The requests seen so far from the clients whose bearer token is `user`.
    pub fn requests_from(&self, user: &str) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.requests
            .iter()
            .zip(&st.tokens)
            .filter(|(_, t)| *t == user)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Stop listening and close every connection, keeping the stored objects.
    pub fn stop(&mut self) {
        let _ = self.drops.send(Drop::Cut);
        if let Some(s) = self.stop.take() {
            let _ = s.send(true);
        }
    }

    /// Listen again on the same address.
    pub async fn restart(&mut self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The old socket may linger a moment.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        self.serve(listener);
    }
}

impl std::ops::Drop for FakeApi {
    fn drop(&mut self) {
        self.stop();
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn json_response(code: StatusCode, v: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        StatusCode::from_u16(code).unwrap(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}),
    )
}

/// What a request path names: the kind, and the namespace, name and subresource if given.
struct Target {
    kind: &'static Kind,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

/// `/api/v1/...` or `/apis/<group>/<version>/...` → its [`Target`].
fn route(path: &str) -> Option<Target> {
    let kind_prefix = KINDS
        .iter()
        .map(|k| k.prefix)
        .find(|p| path.starts_with(&format!("{p}/")))?;
    let rest: Vec<&str> = path[kind_prefix.len() + 1..].split('/').collect();
    // `/api/v1/namespaces/NS/services...` is a namespaced path, but `/api/v1/namespaces/NS` and
    // `/api/v1/namespaces/NS/status` name the Namespace itself.
    let namespaced_plural = |p: &str| {
        KINDS
            .iter()
            .any(|k| k.prefix == kind_prefix && k.plural == p && k.namespaced)
    };
    let (ns, rest) = match rest.as_slice() {
        ["namespaces", ns, rest @ ..] if rest.first().is_some_and(|p| namespaced_plural(p)) => {
            (Some(ns.to_string()), rest)
        }
        rest => (None, rest),
    };
    let (plural, name, sub) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(n.to_string()), None),
        [p, n, s] => (*p, Some(n.to_string()), Some(s.to_string())),
        _ => return None,
    };
    let kind = KINDS
        .iter()
        .find(|k| k.prefix == kind_prefix && k.plural == plural)?;
    Some(Target {
        kind,
        ns,
        name,
        sub,
    })
}

fn query(uri: &http::Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.replace("%3D", "=")
                    .replace("%2F", "/")
                    .replace("%2C", ","),
            )
        })
        .collect()
}

fn selected(obj: &Value, q: &BTreeMap<String, String>) -> bool {
    match q.get("fieldSelector") {
        Some(sel) => sel.split(',').all(|term| match term.split_once('=') {
            Some(("type", v)) => obj["type"].as_str() == Some(v),
            Some(("metadata.name", v)) => obj["metadata"]["name"].as_str() == Some(v),
            _ => true,
        }),
        None => true,
    }
}

async fn handle(
    state: Arc<Mutex<State>>,
    changes: broadcast::Sender<Change>,
    drops: broadcast::Sender<Drop>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let no_gateway_api = {
        let mut st = state.lock().unwrap();
        st.requests.push(format!("{method} {uri}"));
        st.tokens.push(token);
        st.no_gateway_api
    };
    if no_gateway_api && uri.path().starts_with(GATEWAY_API) {
        return Ok(status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    }
    let Some(Target {
        kind,
        ns,
        name,
        sub,
    }) = route(uri.path())
    else {
        return Ok(status(404, "NotFound", &format!("no route {}", uri.path())));
    };
    let q = query(&uri);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let in_scope = |obj_ns: &str| ns.as_deref().is_none_or(|n| n == obj_ns);
    match (method, name, sub.as_deref()) {
        (Method::GET, None, _)
            if q.get("watch").map(String::as_str) == Some("true")
                || q.get("watch").map(String::as_str) == Some("1") =>
        {
            let from: u64 = q
                .get("resourceVersion")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut live = changes.subscribe();
            let mut dropped = drops.subscribe();
            let (backlog, compacted, rv) = {
                let st = state.lock().unwrap();
                let backlog: Vec<Change> = st
                    .log
                    .iter()
                    .filter(|c| c.rv > from && c.plural == kind.plural)
                    .cloned()
                    .collect();
                (backlog, st.compacted, st.rv)
            };
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
            let line = |v: Value| Bytes::from(format!("{v}\n"));
            let expired = json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": format!("too old resource version: {from}"), "reason": "Expired", "code": 410}});
            let ns2 = ns.clone();
            let q2 = q.clone();
            tokio::spawn(async move {
                if from != 0 && from <= compacted {
                    let _ = tx.send(line(expired)).await;
                    return;
                }
                let matches = |c: &Change| {
                    c.plural == kind.plural
                        && ns2
                            .as_deref()
                            .is_none_or(|n| c.object["metadata"]["namespace"].as_str() == Some(n))
                        && selected(&c.object, &q2)
                };
                for c in backlog.iter().filter(|c| matches(c)) {
                    let mut o = c.object.clone();
                    o["kind"] = json!(c.kind);
                    if tx
                        .send(line(json!({"type": c.event, "object": o})))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let bookmark = json!({"type": "BOOKMARK", "object": {"kind": kind.kind, "apiVersion": kind.api_version, "metadata": {"resourceVersion": rv.to_string()}}});
                if tx.send(line(bookmark)).await.is_err() {
                    return;
                }
                loop {
                    tokio::select! {
                        // A drop asked for goes before any change that follows it.
                        biased;
                        d = dropped.recv() => {
                            if let Ok(Drop::Expire) = d {
                                let _ = tx.send(line(json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "too old resource version", "reason": "Expired", "code": 410}}))).await;
                            }
                            return;
                        }
                        c = live.recv() => match c {
                            Ok(c) if c.rv > rv && matches(&c) => {
                                let mut o = c.object.clone();
                                o["kind"] = json!(c.kind);
                                if tx.send(line(json!({"type": c.event, "object": o}))).await.is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => return,
                        },
                    }
                }
            });
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
            });
            Ok(Response::builder()
                .header("content-type", "application/json")
                .body(StreamBody::new(stream).boxed())
                .unwrap())
        }
        (Method::GET, None, _) => {
            let st = state.lock().unwrap();
            let items: Vec<Value> = st
                .objects
                .iter()
                .filter(|((p, n, _), o)| *p == kind.plural && in_scope(n) && selected(o, &q))
                .map(|(_, o)| {
                    // Items of a list carry neither kind nor apiVersion, as the real API sends them.
                    let mut o = o.clone();
                    if let Some(m) = o.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    o
                })
                .collect();
            Ok(json_response(
                StatusCode::OK,
                json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version, "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
            ))
        }
        (Method::GET, Some(name), _) => {
            let st = state.lock().unwrap();
            match st
                .objects
                .get(&(kind.plural, ns.clone().unwrap_or_default(), name.clone()))
            {
                Some(o) => {
                    let mut o = o.clone();
                    o["kind"] = json!(kind.kind);
                    Ok(json_response(StatusCode::OK, o))
                }
                None => Ok(status(
                    404,
                    "NotFound",
                    &format!("{} \"{name}\" not found", kind.plural),
                )),
            }
        }
        (Method::POST, None, _) => {
            let mut obj: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            obj["kind"] = json!(kind.kind);
            if let Some(ns) = &ns {
                obj["metadata"]["namespace"] = json!(ns);
            }
            if obj["metadata"]["name"].is_null() {
                let prefix = obj["metadata"]["generateName"]
                    .as_str()
                    .unwrap_or("obj-")
                    .to_owned();
                let n = state.lock().unwrap().rv;
                obj["metadata"]["name"] = json!(format!("{prefix}{n}"));
            }
            let key = (
                kind.plural,
                ns.clone().unwrap_or_default(),
                obj["metadata"]["name"].as_str().unwrap_or("").to_owned(),
            );
            if state.lock().unwrap().objects.contains_key(&key) {
                return Ok(status(409, "AlreadyExists", "already exists"));
            }
            let stored = store(&state, &changes, obj);
            Ok(json_response(StatusCode::CREATED, stored))
        }
        (Method::PUT, Some(name), None) => {
            let mut obj: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            obj["kind"] = json!(kind.kind);
            let key = (kind.plural, ns.clone().unwrap_or_default(), name.clone());
            let current = state.lock().unwrap().objects.get(&key).cloned();
            let Some(current) = current else {
                return Ok(status(404, "NotFound", "not found"));
            };
            // Optimistic concurrency, as the real API: a stale resourceVersion is a conflict.
            if obj["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str())
            {
                return Ok(status(409, "Conflict", "the object has been modified"));
            }
            if let Some(ns) = &ns {
                obj["metadata"]["namespace"] = json!(ns);
            }
            let stored = store(&state, &changes, obj);
            Ok(json_response(StatusCode::OK, stored))
        }
        (Method::PATCH, Some(name), sub) => {
            let patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let key = (kind.plural, ns.clone().unwrap_or_default(), name.clone());
            let current = state.lock().unwrap().objects.get(&key).cloned();
            let Some(mut current) = current else {
                return Ok(status(404, "NotFound", "not found"));
            };
            // A resourceVersion in the patch is a precondition, as the real API has it.
            if patch["metadata"]["resourceVersion"]
                .as_str()
                .is_some_and(|rv| Some(rv) != current["metadata"]["resourceVersion"].as_str())
            {
                return Ok(status(409, "Conflict", "the object has been modified"));
            }
            match sub {
                Some("status") => merge(&mut current["status"], &patch["status"]),
                _ => merge(&mut current, &patch),
            }
            current["kind"] = json!(kind.kind);
            let stored = store(&state, &changes, current);
            Ok(json_response(StatusCode::OK, stored))
        }
        (m, n, s) => Ok(status(
            405,
            "MethodNotAllowed",
            &format!("{m} {n:?} {s:?} not supported by the fake API"),
        )),
    }
}

/// JSON merge patch (RFC 7386).
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            for (k, v) in p {
                if v.is_null() {
                    if let Some(t) = target.as_object_mut() {
                        t.remove(k);
                    }
                } else {
                    merge(&mut target[k], v);
                }
            }
        }
        v => *target = v.clone(),
    }
}

/// Store an object (create or replace) under a new resource version and tell the watchers.
fn store(state: &Arc<Mutex<State>>, changes: &broadcast::Sender<Change>, mut obj: Value) -> Value {
    let kind = kind_of(obj["kind"].as_str().unwrap_or("?"));
    let ns = if kind.namespaced {
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned()
    } else {
        String::new()
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
    let mut st = state.lock().unwrap();
    st.rv += 1;
    let rv = st.rv;
    if kind.namespaced {
        obj["metadata"]["namespace"] = json!(ns);
    }
    obj["apiVersion"] = json!(kind.api_version);
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    let key = (kind.plural, ns, name);
    // `metadata.generation`: 1 on create, one more for each change of `spec` (status and
    // metadata changes leave it), as the real API server keeps it.
    let event = match st.objects.get(&key) {
        Some(old) => {
            obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            obj["metadata"]["generation"] = json!(if old["spec"] == obj["spec"] {
                generation
            } else {
                generation + 1
            });
            "MODIFIED"
        }
        None => {
            obj["metadata"]["generation"] = json!(1);
            obj["metadata"]["uid"] = json!(format!("uid-{rv}"));
            obj["metadata"]["creationTimestamp"] = json!(format!(
                "2026-01-01T{:02}:{:02}:{:02}Z",
                rv / 3600 % 24,
                rv / 60 % 60,
                rv % 60
            ));
            "ADDED"
        }
    };
    st.objects.insert(key, obj.clone());
    let change = Change {
        rv,
        plural: kind.plural,
        kind: kind.kind,
        event,
        object: obj.clone(),
    };
    st.log.push(change.clone());
    drop(st);
    let _ = changes.send(change);
    obj
}
