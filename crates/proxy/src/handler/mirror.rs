//! Phase 5b, mirror: a Gateway API `RequestMirror` filter sends a copy of the request to another
//! backend (one endpoint, round robin), fire and forget: on a task of its own, its response read
//! and thrown away, never delaying or changing the client's exchange.
//!
//! Only requests without a body are mirrored: a streamed body is read once, by the exchange with
//! the pod, and is not kept for a copy (nor is a head sent without the body it announces). Protocol
//! switches (WebSocket) are not mirrored either. The copy is the pod's head as is (lean, or
//! rewritten, with the route's filters applied), to the mirror's endpoint.
//!
//! Mirrors are bounded: at most [`MAX_IN_FLIGHT`] copies in flight in the process, each within the
//! route's connect and read timeouts; past the bound, copies are skipped. A slow mirror backend
//! so costs the proxy a fixed number of tasks and connections, and never the client anything.

use super::upstream_request::UpstreamHead;
use crate::body::UpstreamBody as RequestBody;
use crate::h1;
use crate::table::{Matched, Table};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Mirrored requests in flight in this process at most.
pub const MAX_IN_FLIGHT: usize = 64;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Send the copies the route's mirrors ask for of a request whose pod head is `head`.
pub fn send(table: &Table, route: &Matched<'_>, head: &UpstreamHead, body: &Incoming) {
    let Some(filters) = route.location().filters.as_deref() else {
        return;
    };
    if filters.mirrors.is_empty() || !body.is_end_stream() || head.upgrade.is_some() {
        return;
    }
    let location = route.location();
    // The copy's whole exchange, response body included.
    let limit = Duration::from_secs(
        u64::from(location.connect_timeout_secs.max(1))
            + u64::from(location.read_timeout_secs.max(1)),
    );
    for mirror in &filters.mirrors {
        if mirror.percent < 100 && balance::random_u64() % 100 >= u64::from(mirror.percent) {
            continue;
        }
        let Some(backend) = table.backends.get(mirror.backend.0 as usize) else {
            continue;
        };
        let Some(endpoint) = backend.balancer.pick() else {
            continue;
        };
        let Some(slot) = Slot::take() else {
            tracing::debug!("{MAX_IN_FLIGHT} mirrored requests in flight: copy skipped");
            return;
        };
        match (
            &head.lean,
            backend.addrs.get(endpoint),
            &route.runtime.client,
        ) {
            (Some(lean), Some(&addr), _) => {
                let (pool, method, lean) =
                    (route.policy.h1, head.parts.method.clone(), lean.clone());
                let timeouts = h1::Timeouts {
                    connect: Duration::from_secs(u64::from(location.connect_timeout_secs.max(1))),
                    read: limit,
                };
                tokio::spawn(async move {
                    let _slot = slot;
                    let copy = async {
                        if let Ok(response) = h1::send(pool, addr, &method, &lean, timeouts).await {
                            drain(response.into_body()).await;
                        }
                    };
                    let _ = tokio::time::timeout(limit, copy).await;
                });
            }
            (None, _, Some(client)) => {
                let Some(authority) = backend.authorities.get(endpoint) else {
                    continue;
                };
                let tls = location.protocol.tls();
                let Some(request) = head.to_pod(authority, tls, RequestBody::Empty) else {
                    continue;
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let copy = async {
                        if let Ok(response) = client.request(request).await {
                            drain(response.into_body()).await;
                        }
                    };
                    let _ = tokio::time::timeout(limit, copy).await;
                });
            }
            _ => {}
        }
    }
}

/// Read a mirror's response body to its end (so its connection can serve again) and drop it.
async fn drain<B: Body + Unpin>(mut body: B) {
    while let Some(Ok(_)) = body.frame().await {}
}

/// One of the [`MAX_IN_FLIGHT`] places of mirrored requests, given back when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Self> {
        IN_FLIGHT
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_IN_FLIGHT).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        // Other tests of the crate may hold slots meanwhile: count only what this one takes.
        let mut held = Vec::new();
        while let Some(s) = Slot::take() {
            held.push(s);
        }
        assert!(held.len() <= MAX_IN_FLIGHT);
        assert!(Slot::take().is_none());
        held.pop();
        assert!(Slot::take().is_some());
    }
}
