//! Phase 6, forward: send the request to the picked endpoint and await the response head within
//! the exchange's timeouts; when the endpoint fails, fail over to another, at most
//! [`MAX_TRIES`] endpoints in all (ingress-nginx's `proxy-next-upstream-tries`).
//!
//! A connection that never happened is safe to retry for any method: the body was not read and
//! comes back through its slot. Other errors (the pod closed or reset the connection) are retried
//! only for idempotent requests without a body, as nginx's `proxy_next_upstream error` does.

use super::pick::Pick;
use super::upstream_request::UpstreamHead;
use super::Reject;
use crate::access_log::Outcome;
use crate::body::UpstreamBody as RequestBody;
use crate::h1;
use crate::response::UpstreamBody;
use crate::table::Matched;
use crate::timeout::{await_response, ExchangeTimeouts, ResponseBodyTimeout};
use crate::upstream::UpstreamError;
use crate::Shared;
use http::Response;
use http_body_util::Either;
use hyper::body::Incoming;
use model::Location;
use std::time::Duration;

/// Endpoints tried for one request at most (ingress-nginx `proxy-next-upstream-tries`).
const MAX_TRIES: usize = 3;

/// The route's `proxy-read-timeout`: for the response head, between two reads of its body, and
/// for an idle protocol switch.
pub fn read_timeout(location: &Location) -> Duration {
    Duration::from_secs(u64::from(location.read_timeout_secs.max(1)))
}

/// The pod's response head to `head` with `body`, from the picked endpoint or the ones failed over
/// to; `pick` ends on the endpoint that answered.
pub async fn forward<'t>(
    shared: &Shared,
    route: &Matched<'t>,
    head: &UpstreamHead,
    body: Incoming,
    pick: &mut Pick<'t>,
    out: &mut Outcome<'t>,
) -> Result<Response<UpstreamBody>, Reject> {
    let location = route.location();
    let client = route.runtime.client.as_ref();
    if client.is_none() && head.lean.is_none() {
        return Err(Reject::NoClient);
    }
    let read = read_timeout(location);
    let connect = Duration::from_secs(u64::from(location.connect_timeout_secs.max(1)));
    let lean_timeouts = h1::Timeouts { connect, read };
    let timeouts = ExchangeTimeouts {
        client_body: shared.config.server.client_body_timeout,
        send: Duration::from_secs(u64::from(location.send_timeout_secs.max(1))),
        read,
    };
    let (body, slot) = RequestBody::new(body, location.body_limit, timeouts);
    let mut body = Some(body);
    let mut tried = [usize::MAX; MAX_TRIES];
    let mut last_error = None;
    for attempt in 0..MAX_TRIES {
        tried[attempt] = pick.endpoint;
        let Some(authority) = pick.backend.authorities.get(pick.endpoint) else {
            break;
        };
        out.upstream = Some(authority);
        out.tries = attempt as u8 + 1;
        let Some(this_body) = body.take() else {
            break;
        };
        let sent = match (&head.lean, client, pick.backend.addrs.get(pick.endpoint)) {
            (Some(lean), _, Some(&addr)) => {
                let exchange = h1::send(shared.h1, addr, &head.parts.method, lean, lean_timeouts);
                await_response(exchange, None, &timeouts)
                    .await?
                    .map(|r| r.map(Either::Right))
                    .map_err(UpstreamError::Lean)
            }
            (_, Some(client), _) => {
                let request = head
                    .to_pod(authority, location.protocol.tls(), this_body)
                    .ok_or(Reject::UpstreamUri)?;
                let progress = request.body().progress();
                await_response(client.request(request), progress, &timeouts)
                    .await?
                    .map(|r| r.map(|b| Either::Left(ResponseBodyTimeout::new(b, read))))
                    .map_err(UpstreamError::Hyper)
            }
            _ => break,
        };
        let error = match sent {
            Ok(response) => return Ok(response),
            Err(e) => e,
        };
        let retry_body = if error.is_connect() {
            if let Some(stats) = out.stats {
                stats.connect_error();
            }
            match &slot {
                None => Some(RequestBody::Empty),
                Some(slot) => slot
                    .lock()
                    .ok()
                    .and_then(|mut s| s.take())
                    .map(|b| RequestBody::new(b, location.body_limit, timeouts).0),
            }
        } else if head.idempotent && slot.is_none() {
            Some(RequestBody::Empty)
        } else {
            None
        };
        tracing::warn!(
            upstream = %authority,
            error = %error,
            cause = ?std::error::Error::source(&error),
            retry = retry_body.is_some(),
            "upstream request failed"
        );
        last_error = Some(error);
        let Some(retry_body) = retry_body else {
            break;
        };
        let Some(moved) = pick.fail_over(&shared.config.cookie_key, &tried[..=attempt]) else {
            break;
        };
        if let Some(stats) = out.stats {
            stats.retry();
        }
        if moved {
            out.session = crate::stats::SessionOutcome::Repinned;
        }
        body = Some(retry_body);
    }
    Err(Reject::Upstream(last_error))
}
