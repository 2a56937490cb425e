//! Phase 6, forward: send the request to the picked endpoint and await the response head within
//! the exchange's timeouts; when the endpoint fails, fail over to another, as the route's
//! `proxy-next-upstream` says (ingress-nginx's default `error timeout`, 3 tries, no time limit).
//!
//! A connection that never happened is safe to retry for any method: the body was not read and
//! comes back through its slot. Other errors (the pod closed or reset the connection), a response
//! head that did not come in time, or a listed status (`http_502`...) are retried only for requests
//! without a body that are idempotent (or with `non_idempotent`), as nginx's
//! `proxy_next_upstream` does; a streamed body is never kept to be sent again. A TLS handshake
//! that failed (a pod whose certificate `proxy-ssl-verify` does not trust) is such a connection,
//! retried only with `error`, as nginx's: the next endpoint is verified the same way.
//!
//! A Gateway API route's timeouts bound the exchange besides: `timeouts.request` all the tries
//! together, to the response head (504), and `timeouts.backendRequest` each try, to its response
//! head (a timeout of the try: failover, or 504).

use super::pick::Pick;
use super::upstream_request::UpstreamHead;
use super::Reject;
use crate::access_log::Outcome;
use crate::body::UpstreamBody as RequestBody;
use crate::h1;
use crate::response::UpstreamBody;
use crate::table::Matched;
use crate::timeout::{await_response, within, ExchangeTimeouts, ResponseBodyTimeout, Stalled};
use crate::upstream::UpstreamError;
use crate::Shared;
use http::Response;
use http_body_util::Either;
use hyper::body::Incoming;
use model::Location;
use std::time::{Duration, Instant};

/// Endpoints tried for one request at most, whatever `proxy-next-upstream-tries` says.
const MAX_TRIES: usize = 16;

/// Why an endpoint did not answer the request.
enum Failure {
    Error(UpstreamError),
    /// The response head did not come in time.
    Timeout(Stalled),
    /// It answered with a status `proxy-next-upstream` lists.
    Status,
}

/// The route's `proxy-read-timeout`: for the response head, between two reads of its body, and
/// for an idle protocol switch.
pub fn read_timeout(location: &Location) -> Duration {
    Duration::from_secs(u64::from(location.read_timeout_secs.max(1)))
}

/// A Gateway API route's timeouts (`timeouts.request`, `timeouts.backendRequest`); 0 is none, as
/// the Gateway API says.
fn route_timeouts(location: &Location) -> (Option<Duration>, Option<Duration>) {
    let ms = |v: Option<u64>| v.filter(|&ms| ms > 0).map(Duration::from_millis);
    location.filters.as_ref().map_or((None, None), |f| {
        (ms(f.request_timeout_ms), ms(f.backend_timeout_ms))
    })
}

/// The pod's response head to `head` with `body`, from the picked endpoint or the ones failed over
/// to; `pick` ends on the endpoint that answered. All within the route's request timeout, if it
/// has one.
pub async fn forward<'t>(
    shared: &Shared,
    route: &Matched<'t>,
    head: &UpstreamHead,
    body: Incoming,
    pick: &mut Pick<'t>,
    out: &mut Outcome<'t>,
) -> Result<Response<UpstreamBody>, Reject> {
    match route_timeouts(route.location()) {
        (Some(limit), per_try) => {
            tokio::time::timeout(limit, tries(shared, route, head, body, pick, per_try, out))
                .await
                .unwrap_or(Err(Reject::Stalled(Stalled::RequestTimeout(limit))))
        }
        (None, per_try) => tries(shared, route, head, body, pick, per_try, out).await,
    }
}

/// The tries of [`forward`], each bounded by `per_try` (`timeouts.backendRequest`) if set.
async fn tries<'t>(
    shared: &Shared,
    route: &Matched<'t>,
    head: &UpstreamHead,
    body: Incoming,
    pick: &mut Pick<'t>,
    per_try: Option<Duration>,
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
        client_body: route.policy.client_body_timeout,
        send: Duration::from_secs(u64::from(location.send_timeout_secs.max(1))),
        read,
    };
    let next = &location.next_upstream;
    let tries = match next.tries {
        0 => MAX_TRIES,
        n => (n as usize).min(MAX_TRIES),
    };
    let deadline = (next.timeout_secs > 0)
        .then(|| Instant::now() + Duration::from_secs(u64::from(next.timeout_secs)));
    let (body, slot) = RequestBody::new(body, location.body_limit, timeouts);
    // Sent again after the pod saw it: only without a body, and idempotent unless allowed.
    let replayable = slot.is_none() && (head.idempotent || next.non_idempotent);
    let mut body = Some(body);
    let mut tried = [usize::MAX; MAX_TRIES];
    let mut last = None;
    for attempt in 0..tries {
        tried[attempt] = pick.endpoint;
        let Some(authority) = pick.backend.authorities.get(pick.endpoint) else {
            break;
        };
        out.upstream = Some(authority);
        out.tries = attempt as u8 + 1;
        // The clock is read for the ingress-nginx header time only.
        // For the ingress-nginx series, and `$upstream_response_time` of `log-format-upstream`.
        let timed = out.compat.is_some() || route.policy.log_format.is_some();
        let try_started = timed.then(Instant::now);
        let Some(this_body) = body.take() else {
            break;
        };
        let sent = match (&head.lean, client, pick.backend.addrs.get(pick.endpoint)) {
            (Some(lean), _, Some(&addr)) => {
                let exchange = h1::send(
                    route.policy.h1,
                    addr,
                    &head.parts.method,
                    lean,
                    lean_timeouts,
                );
                within(per_try, await_response(exchange, None, &timeouts))
                    .await
                    .map(|r| r.map(|r| r.map(Either::Right)).map_err(UpstreamError::Lean))
            }
            (_, Some(client), _) => {
                let request = head
                    .to_pod(authority, location.protocol.tls(), this_body)
                    .ok_or(Reject::UpstreamUri)?;
                let progress = request.body().progress();
                within(
                    per_try,
                    await_response(client.request(request), progress, &timeouts),
                )
                .await
                .map(|r| {
                    r.map(|r| r.map(|b| Either::Left(ResponseBodyTimeout::new(b, read))))
                        .map_err(UpstreamError::Hyper)
                })
            }
            _ => break,
        };
        if let (Some(started), Ok(Ok(_))) = (try_started, &sent) {
            out.upstream_header = Some(started.elapsed());
        }
        let failure = match sent {
            Ok(Ok(response)) if next.statuses.contains(&response.status().as_u16()) => {
                // Only worth dropping if another endpoint can take the request.
                let status = response.status();
                if !replayable || attempt + 1 == tries || past(deadline) {
                    return Ok(response);
                }
                let Some(moved) = pick.fail_over(&shared.config.cookie_key, &tried[..=attempt])
                else {
                    return Ok(response);
                };
                tracing::warn!(upstream = %authority, %status, "upstream answered a status proxy-next-upstream lists, trying another");
                failed_over(out, moved);
                body = Some(RequestBody::Empty);
                last = Some(Failure::Status);
                continue;
            }
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(e)) => Failure::Error(e),
            Err(stalled @ Stalled::ResponseHead(_)) => Failure::Timeout(stalled),
            Err(stalled) => return Err(stalled.into()),
        };
        let retry_body = match &failure {
            Failure::Error(e) if e.is_connect() => {
                if let Some(stats) = out.stats {
                    stats.connect_error();
                }
                match &slot {
                    _ if !next.error && !next.timeout => None,
                    // A handshake that failed is an `error`, whatever the connection's timeout.
                    _ if !next.error && e.is_tls_handshake() => None,
                    None => Some(RequestBody::Empty),
                    Some(slot) => slot
                        .lock()
                        .ok()
                        .and_then(|mut s| s.take())
                        .map(|b| RequestBody::new(b, location.body_limit, timeouts).0),
                }
            }
            Failure::Error(_) if next.error && replayable => Some(RequestBody::Empty),
            Failure::Timeout(_) if next.timeout && replayable => Some(RequestBody::Empty),
            _ => None,
        };
        match &failure {
            Failure::Error(error) => tracing::warn!(
                upstream = %authority,
                error = %error,
                cause = ?std::error::Error::source(error),
                retry = retry_body.is_some(),
                "upstream request failed"
            ),
            // The last one is logged with its rejection.
            Failure::Timeout(stalled) if retry_body.is_some() => {
                tracing::warn!(upstream = %authority, retry = true, "{stalled}")
            }
            Failure::Timeout(_) => {}
            Failure::Status => {}
        }
        last = Some(failure);
        let Some(retry_body) = retry_body else {
            break;
        };
        if past(deadline) {
            break;
        }
        let Some(moved) = pick.fail_over(&shared.config.cookie_key, &tried[..=attempt]) else {
            break;
        };
        failed_over(out, moved);
        body = Some(retry_body);
    }
    Err(match last {
        Some(Failure::Timeout(stalled)) => Reject::Stalled(stalled),
        Some(Failure::Error(e)) => Reject::Upstream(Some(e)),
        Some(Failure::Status) | None => Reject::Upstream(None),
    })
}

/// Has the time to fail over (`proxy-next-upstream-timeout`) run out?
fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Count the retry; a moved session is re-pinned.
fn failed_over(out: &mut Outcome<'_>, moved: bool) {
    if let Some(stats) = out.stats {
        stats.retry();
    }
    if moved {
        out.session = crate::stats::SessionOutcome::Repinned;
    }
}
