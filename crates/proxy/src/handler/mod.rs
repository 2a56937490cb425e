//! The request path. One load of the routing table, then the phases below in order, each in its
//! own module with a narrow signature; a phase either hands the request on, answers it, or
//! rejects it with a [`Reject`], which [`Reject::response`] turns into the status page and log
//! line in one place. A new policy (auth, rate limit, header filter, mirror) is a new module and
//! one line in [`phases`].
//!
//! Before them, [`client`]: who the client is (the connection's peer, or with
//! `use-forwarded-headers` the client a trusted proxy forwarded for); every phase sees that.
//!
//! 0. [`head`]: what no server may accept (missing or duplicate `Host`, HTTP/2 `host` against
//!    `:authority`); [`block`]: the clients the ConfigMap blocks (403).
//! 1. [`route`]: the virtual host and route, by listener (Ingress or a Gateway port), host and
//!    path (and a Gateway API route's method, headers and query parameters). [`client_cert`]:
//!    the host's client certificate authentication (`auth-tls-*`: 400, or the redirect to its
//!    error page; 403 for `auth-tls-match-cn`; 421 on a connection made for another host), and
//!    the `ssl-client-*` headers the pod gets.
//! 2. [`local`]: what the route answers itself (HTTPS redirect, `app-root`, `temporal-redirect`
//!    and `permanent-redirect`, CORS preflight); [`redirect`]: a Gateway API `RequestRedirect`.
//! 3. Who may: [`limit`], the request rate per client address (503); [`limit_conn`], its
//!    requests in flight (503); [`access`], a denied route (503), the declared body size (413);
//!    then nginx's access phase, combined by [`satisfy`] (`all`: each must pass; `any`: one is
//!    enough): [`digest_auth`], the answer to a digest challenge (`auth-type: digest`, 401);
//!    deny- and allow-lists ([`access::sources`], 403); [`basic_auth`], a user's password
//!    (`auth-type: basic`, 401); [`external_auth`], the authentication service's answer
//!    (`auth-url`: 401, 403 or a redirect to sign in, 500 without an answer).
//! 4. [`pick`]: canary or primary, or a Gateway API rule's weighted backend (its session's, else
//!    by weight), then the endpoint (sticky layer over the balancer, or the ring by
//!    `upstream-hash-by`). [`header_filter`]: a Gateway API `RequestHeaderModifier`, the
//!    ConfigMap's `proxy-set-headers`.
//! 5. [`upstream_request`]: the head the pod gets (rewrite or `URLRewrite`, Host, X-Forwarded-*,
//!    request id). [`mirror`]: copies of body-less requests to a `RequestMirror`'s backend.
//! 6. [`forward`]: the exchange with the pod, failing over to other endpoints, within a Gateway
//!    API route's timeouts.
//! 7. [`respond`]: CORS headers, protocol switch, hop-by-hop headers, `ResponseHeaderModifier`
//!    ([`header_filter`]), session cookie or header.
//! 8. [`error_page`]: on a route with a default backend, a status its `custom-http-errors` lists
//!    (the pod's, or a rejection's from phase 3 on) is answered by the default backend instead;
//!    so is a request while the route's backend has no endpoint.
//!
//! Statistics and the access log line are written by [`handle`] once the response head is known;
//! so are the headers set on every response (`Strict-Transport-Security`, `add-headers`,
//! `custom-headers`).

mod access;
mod basic_auth;
mod block;
mod client;
mod client_cert;
mod connection;
mod digest_auth;
mod error_page;
mod external_auth;
mod forward;
mod head;
mod header_filter;
mod limit;
mod limit_conn;
mod local;
mod mirror;
mod pick;
mod redirect;
mod reject;
mod respond;
mod route;
mod satisfy;
mod upstream_request;

pub use connection::Connection;
pub use head::DEFAULT_HEADER_LINE;
pub use reject::Reject;

use crate::access_log::{Outcome, RequestLine};
use crate::compat;
use crate::response::Body;
use crate::table::{Matched, Table};
use crate::Shared;
use http::{Request, Response};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Connection>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    // One load of the current table, kept for the whole request.
    let table = shared.table.load_full();
    client::set_proxy_protocol_header(&conn, &mut req, &table.policy);
    let real = client::resolve(&conn, &req, &table.policy);
    let conn = real.as_ref().unwrap_or(&conn);
    let line = shared.access_log.as_ref().map(|_| {
        RequestLine::of(
            &req,
            &conn.client_ip,
            conn.tls,
            table.policy.log_format.as_deref(),
        )
    });
    // `--metrics-compat ingress-nginx`: what its series need of the request, before it is
    // consumed.
    let compat_request = shared.config.metrics_compat.as_ref().map(|_| {
        (
            compat::method_index(req.method()),
            compat::request_size(&req),
        )
    });
    let mut out = Outcome::default();
    let mut response = match phases(&shared, conn, req, &table, &mut out).await {
        Ok(response) => response,
        Err(reject) => reject.response(&out),
    };
    // ingress-nginx sets it on every response of such hosts, its own included.
    if let Some(hsts) = out.hsts {
        response
            .headers_mut()
            .insert(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    // ingress-nginx's `more_set_headers`: the ConfigMap's `add-headers` (http block), then the
    // route's `custom-headers` (its location), on every response, Remora's own included.
    if conn.is_ingress() {
        if let Some(add) = &table.policy.add_headers {
            add.apply(response.headers_mut());
        }
    }
    if let Some(custom) = out.custom_headers {
        custom.apply(response.headers_mut());
    }
    // `limit-connections`: the request counts until its response body ends.
    if let Some(guard) = out.in_flight.take() {
        response
            .extensions_mut()
            .insert(crate::server::HeldUntilBodyEnds(Arc::new(guard)));
    }
    let elapsed = started.elapsed();
    let code = response.status().as_u16();
    if let Some(stats) = out.stats {
        stats.request(code, elapsed, out.session);
    }
    if let (Some(series), Some((method, request_size))) = (out.compat, compat_request) {
        series.record(&compat::Observation {
            method,
            status: code,
            elapsed,
            header: out.upstream_header,
            request_size,
            response_size: compat::response_size(&response),
        });
    }
    if let (Some(log), Some(line), false) = (&shared.access_log, line, out.unlogged) {
        let format = table.policy.log_format.as_deref();
        log.write(line, &out, &response, elapsed, &shared.global, format);
    }
    Ok(response)
}

/// The phases of a request, in order.
async fn phases<'t>(
    shared: &Shared,
    conn: &Connection,
    mut req: Request<Incoming>,
    table: &'t Table,
    out: &mut Outcome<'t>,
) -> Result<Response<Body>, Reject> {
    head::check(&req, table.policy.max_header_line)?;
    block::check(&table.policy.block, &req, conn)?;
    let route = route::find(table, conn, &req)?;
    out.stats = Some(&route.runtime.stats);
    out.compat = route.runtime.compat.as_deref();
    out.unlogged = !route.location().access_log;
    out.custom_headers = route.runtime.custom_headers.as_deref();
    // HSTS is ingress-nginx's behaviour: the Ingress listeners only.
    if conn.tls && route.has_certificate && conn.is_ingress() {
        out.hsts = table.policy.hsts.as_ref();
    }
    client_cert::check(&route, conn, &mut req)?;
    if let Some(answer) = local::answer(&route, &req, conn, &shared.config) {
        return Ok(answer);
    }
    if let Some(answer) = redirect::answer(&route, &req, conn) {
        return Ok(answer);
    }
    let error_page = error_page::prepare(table, &route, &req);
    let result = proxied(shared, conn, req, table, &route, out).await;
    match error_page {
        Some(page) => page.replace(conn, result, out).await,
        None => result,
    }
}

/// The phases of a request the route does not answer itself, in order.
async fn proxied<'t>(
    shared: &Shared,
    conn: &Connection,
    mut req: Request<Incoming>,
    table: &'t Table,
    route: &Matched<'t>,
    out: &mut Outcome<'t>,
) -> Result<Response<Body>, Reject> {
    limit::check(route, conn)?;
    out.in_flight = limit_conn::enter(route, conn)?;
    access::check(route.location(), &req)?;
    // nginx's access phase, its checks combined as `satisfy` says.
    let mut gate = satisfy::Satisfy::new(route.location());
    gate.judge(digest_auth::check(route, &req))?;
    if gate.pending() {
        gate.judge(access::sources(route.location(), conn))?;
    }
    if gate.pending() {
        gate.judge(basic_auth::check(route, &req).await)?;
    }
    let mut grant = None;
    if gate.pending() {
        grant = gate.judge_with(external_auth::check(route, conn, &mut req).await)?;
    }
    gate.end()?;
    if let Some(grant) = &grant {
        grant.apply(req.headers_mut());
    }
    let mut pick = pick::pick(shared, table, route, &req, conn, out)?;
    header_filter::request(route, req.headers_mut());
    header_filter::proxy_set(route, conn, &mut req);
    let (head, body) = upstream_request::prepare(shared, conn, req, route, out);
    mirror::send(table, route, &head, &body);
    let response = forward::forward(shared, route, &head, body, &mut pick, out).await?;
    Ok(respond::respond(response, route, head, pick, conn, grant))
}
