//! Admin endpoints: liveness, readiness, metrics, and what is being served (`/status`,
//! `/snapshot`: behind `--admin-token-file` when it is given).

use crate::response::{self, status, Body};
use crate::Proxy;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use serde::Serialize;
use std::convert::Infallible;

#[derive(Serialize)]
struct Status<'a> {
    ready: bool,
    generation: u64,
    hosts: usize,
    routes: usize,
    /// Every route, in match order per host (for the dashboard).
    route_list: Vec<RouteStatus<'a>>,
    backends: Vec<BackendStatus<'a>>,
    diagnostics: &'a [model::Diagnostic],
    /// Gateway listeners whose port could not be bound (absent when all are served).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    listener_errors: &'a [crate::ListenerError],
}

#[derive(Serialize)]
struct RouteStatus<'a> {
    host: String,
    path: &'a str,
    path_type: model::PathType,
    ingress: String,
    backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookie: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<model::AffinityMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<&'a str>,
}

#[derive(Serialize)]
struct BackendStatus<'a> {
    name: &'a str,
    endpoints: &'a [model::Endpoint],
    /// New sessions placed on each endpoint recently (halved every 5 minutes), endpoint order.
    session_loads: Vec<u32>,
}

/// The dashboard: one self-contained page (no CDN) that polls `/status`.
const DASHBOARD: &str = include_str!("dashboard.html");

pub async fn handle(proxy: Proxy, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let path = req.uri().path();
    if matches!(path, "/status" | "/snapshot") && !authorized(&proxy, &req) {
        let mut r = status(StatusCode::UNAUTHORIZED);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"remora admin\""),
        );
        return Ok(r);
    }
    Ok(match path {
        "/healthz" => response::fixed(StatusCode::OK, b"ok\n"),
        "/readyz" if proxy.is_ready() => response::fixed(StatusCode::OK, b"ready\n"),
        "/readyz" if proxy.is_draining() => {
            response::fixed(StatusCode::SERVICE_UNAVAILABLE, b"shutting down\n")
        }
        "/readyz" => response::fixed(
            StatusCode::SERVICE_UNAVAILABLE,
            b"no configuration loaded yet\n",
        ),
        "/status" => {
            let table = proxy.table();
            let listener_errors = proxy.listener_errors();
            let s = Status {
                ready: proxy.is_ready(),
                generation: table.generation,
                hosts: table.snapshot.hosts.len(),
                routes: table.snapshot.route_count(),
                route_list: table
                    .snapshot
                    .hosts
                    .iter()
                    .flat_map(|h| h.routes.iter().map(move |r| (h, r)))
                    .map(|(h, r)| {
                        let backend = |t: &model::Target| {
                            t.backend
                                .and_then(|b| table.snapshot.backend(b))
                                .map(|b| b.name.as_str())
                        };
                        RouteStatus {
                            host: h.host.to_string(),
                            path: &r.path,
                            path_type: r.path_type,
                            ingress: format!(
                                "{}/{}",
                                r.target.ingress.namespace, r.target.ingress.name
                            ),
                            backend: backend(&r.target),
                            cookie: r.target.affinity.as_deref().map(|a| a.cookie_name.as_str()),
                            mode: r.target.affinity.as_deref().map(|a| a.mode),
                            canary: r.canary.as_deref().and_then(|c| backend(&c.target)),
                        }
                    })
                    .collect(),
                backends: table
                    .snapshot
                    .backends
                    .iter()
                    .zip(&table.backends)
                    .map(|(b, rt)| BackendStatus {
                        name: &b.name,
                        endpoints: &b.endpoints,
                        session_loads: rt.balancer.loads(),
                    })
                    .collect(),
                diagnostics: &table.diagnostics,
                listener_errors: &listener_errors,
            };
            json(&s)
        }
        "/snapshot" => json(&*proxy.table().snapshot),
        "/metrics" => {
            let mut r = Response::new(Either::Right(Full::new(Bytes::from(proxy.metrics()))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        "/" => {
            let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(
                DASHBOARD.as_bytes(),
            ))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => status(StatusCode::NOT_FOUND),
    })
}

/// Does the request carry the admin token, when there is one? Compared in constant time.
fn authorized<B>(proxy: &Proxy, req: &Request<B>) -> bool {
    let Some(token) = proxy.shared.config.admin_token.as_deref() else {
        return true;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    given.len() == token.len()
        && bool::from(subtle::ConstantTimeEq::ct_eq(
            given.as_bytes(),
            token.as_bytes(),
        ))
}

fn json<T: Serialize>(value: &T) -> Response<Body> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut r = Response::new(Either::Right(Full::new(Bytes::from(body))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(_) => status(StatusCode::INTERNAL_SERVER_ERROR),
    }
}
