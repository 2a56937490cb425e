//! Phase 8, error pages: a route with a default backend (`default-backend`, or
//! `--default-backend-service` for its `custom-http-errors`) has it answer instead of the route,
//! as ingress-nginx's `error_page` named locations do:
//!
//! - a response whose status the location's `custom-http-errors` lists, the pod's or Remora's own
//!   (502, 503, 504...), is replaced by the default backend's answer to the request's method on
//!   `/`, with ingress-nginx's `X-Code`, `X-Format` (the client's `Accept`), `X-Original-URI`,
//!   `X-Namespace`, `X-Ingress-Name`, `X-Service-Name`, `X-Service-Port`, `X-Request-ID`,
//!   `X-Forwarded-For` and the client's `Host`;
//! - while the route's backend has no endpoint (503), the request goes to the default backend
//!   instead, with its own path and the same headers (`X-Code: 503`).
//!
//! The default backend's status is the client's. When it cannot answer either, the route's own
//! response stands. Only the head of the client's request is kept for this (its body has gone to
//! the pod, or nowhere); the default backend gets no body.

use super::{Connection, Reject};
use crate::access_log::Outcome;
use crate::h1;
use crate::headers::{line, new_request_id};
use crate::response::Body;
use crate::table::{BackendRuntime, Matched, Table};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Either;
use std::time::Duration;

/// What the default backend is told of a request, kept from its head before the request goes on.
pub struct ErrorPage<'t> {
    backend: &'t BackendRuntime,
    codes: &'t [u16],
    method: Method,
    /// The path and query, as the client sent them.
    uri: String,
    host: Option<HeaderValue>,
    accept: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    /// `namespace`, `ingress`, `service` and `port` of the route.
    namespace: &'t str,
    ingress: &'t str,
    service: &'t str,
    port: &'t str,
    connect: Duration,
    read: Duration,
    /// The table's keep-alive limits of pod connections.
    pool: h1::Pool,
}

static X_CODE: HeaderName = HeaderName::from_static("x-code");
static X_FORMAT: HeaderName = HeaderName::from_static("x-format");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_NAMESPACE: HeaderName = HeaderName::from_static("x-namespace");
static X_INGRESS_NAME: HeaderName = HeaderName::from_static("x-ingress-name");
static X_SERVICE_NAME: HeaderName = HeaderName::from_static("x-service-name");
static X_SERVICE_PORT: HeaderName = HeaderName::from_static("x-service-port");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The error page of a request on `route`, when the route has a default backend.
pub fn prepare<'t, B>(
    table: &'t Table,
    route: &Matched<'t>,
    req: &Request<B>,
) -> Option<ErrorPage<'t>> {
    let id = route.target.default_backend?;
    let backend = table.backends.get(id.0 as usize)?;
    let location = route.location();
    // `namespace/service:port`, the route's backend's name.
    let name = route
        .target
        .backend
        .and_then(|b| table.snapshot.backend(b))
        .map_or("", |b| b.name.as_str());
    let (service, port) = name.split_once('/').map_or(("", ""), |(_, rest)| {
        rest.split_once(':').unwrap_or((rest, ""))
    });
    let port = port.split(' ').next().unwrap_or(port);
    Some(ErrorPage {
        backend,
        codes: &location.custom_http_errors,
        method: req.method().clone(),
        uri: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        host: HeaderValue::from_str(&crate::headers::request_host(req))
            .ok()
            .filter(|h| !h.is_empty()),
        accept: req.headers().get(header::ACCEPT).cloned(),
        request_id: req.headers().get(&X_REQUEST_ID).cloned(),
        namespace: route.target.ingress.namespace.as_str(),
        ingress: route.target.ingress.name.as_str(),
        service,
        port,
        connect: Duration::from_secs(u64::from(location.connect_timeout_secs.max(1))),
        read: Duration::from_secs(u64::from(location.read_timeout_secs.max(1))),
        pool: table.policy.h1,
    })
}

impl ErrorPage<'_> {
    /// The route's `result`, or the default backend's answer in its place.
    pub async fn replace(
        self,
        conn: &Connection,
        result: Result<Response<Body>, Reject>,
        out: &Outcome<'_>,
    ) -> Result<Response<Body>, Reject> {
        let (status, own_path) = match &result {
            // No endpoint: the request itself goes to the default backend.
            Err(Reject::NoEndpoint) => (StatusCode::SERVICE_UNAVAILABLE, true),
            Err(reject) => (reject.status(), false),
            Ok(response) => (response.status(), false),
        };
        if !own_path && self.codes.binary_search(&status.as_u16()).is_err() {
            return result;
        }
        match self.fetch(conn, status, own_path, out).await {
            Some(answer) => Ok(answer),
            None => result,
        }
    }

    async fn fetch(
        &self,
        conn: &Connection,
        status: StatusCode,
        own_path: bool,
        out: &Outcome<'_>,
    ) -> Option<Response<Body>> {
        let endpoint = self.backend.balancer.pick()?;
        let addr = *self.backend.addrs.get(endpoint)?;
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(self.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(if own_path { self.uri.as_bytes() } else { b"/" });
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let host = match &self.host {
            Some(h) => h.clone(),
            None => HeaderValue::from_str(&addr.to_string()).ok()?,
        };
        line(&mut head, &header::HOST, &host);
        let value = |s: &str| HeaderValue::from_str(s).ok();
        let request_id = out
            .request_id
            .clone()
            .or_else(|| self.request_id.clone())
            .unwrap_or_else(new_request_id);
        let code = HeaderValue::from(status.as_u16());
        let fields = [
            (&X_CODE, Some(code)),
            (&X_FORMAT, self.accept.clone()),
            (&header::ACCEPT, self.accept.clone()),
            (&X_ORIGINAL_URI, value(&self.uri)),
            (&X_NAMESPACE, value(self.namespace)),
            (&X_INGRESS_NAME, value(self.ingress)),
            (&X_SERVICE_NAME, value(self.service)),
            (&X_SERVICE_PORT, value(self.port)),
            (&X_REQUEST_ID, Some(request_id)),
            (&X_FORWARDED_FOR, Some(conn.client_ip.clone())),
        ];
        for (name, v) in &fields {
            if let Some(v) = v {
                line(&mut head, name, v);
            }
        }
        head.extend_from_slice(b"\r\n");
        let timeouts = h1::Timeouts {
            connect: self.connect,
            read: self.read,
        };
        let sent = h1::send(self.pool, addr, &self.method, &head, timeouts);
        let limit = self.connect + self.read;
        match tokio::time::timeout(limit, sent).await {
            Ok(Ok(response)) => {
                let mut response = response.map(|b| Either::Left(Either::Right(b)));
                crate::headers::strip_hop_by_hop(response.headers_mut());
                Some(response)
            }
            Ok(Err(e)) => {
                tracing::warn!(upstream = %addr, error = %e, "the default backend did not answer: the route's own response stands");
                None
            }
            Err(_) => {
                tracing::warn!(upstream = %addr, "the default backend did not answer in time: the route's own response stands");
                None
            }
        }
    }
}
