//! Request bodies that can be taken back when the upstream connection never happened, and that
//! say where they stand.
//!
//! When connecting to the chosen endpoint fails, the client library drops the request, body
//! included, before reading a single byte of it. Wrapping the body lets that drop hand the untouched
//! stream back, so the request can go to another endpoint with its body intact: failover works for
//! every method without buffering bodies.
//!
//! While the body streams, it records its [`Progress`] (who the exchange waits for, and until
//! when) for [`crate::timeout::await_response`], and it enforces `proxy-body-size` ([`TooLarge`]).

use crate::timeout::{ExchangeTimeouts, Progress, Waiting};
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::watch;
use tokio::time::Instant;

/// The body sent upstream.
pub enum UpstreamBody {
    /// No body (most GETs): nothing to reclaim, a retry just sends nothing again.
    Empty,
    Stream(Reclaimable),
}

/// Where an unread body is handed back.
pub type Slot = Arc<Mutex<Option<Incoming>>>;

pub struct Reclaimable {
    inner: Option<Incoming>,
    read: bool,
    slot: Slot,
    /// Bytes the body may still carry (`proxy-body-size`); `None`: no limit.
    remaining: Option<u64>,
    timeouts: ExchangeTimeouts,
    progress: watch::Sender<Progress>,
}

impl Reclaimable {
    /// Record progress: the new deadline always, a wake-up for whoever watches only when it comes
    /// sooner than the one they wait for (a later one they find when theirs passes), so pieces of
    /// a body moving along wake no one.
    fn enter(&self, waiting: Waiting) {
        let deadline = Instant::now() + self.timeouts.of(waiting);
        self.progress.send_if_modified(|p| {
            let sooner = deadline < p.deadline;
            *p = Progress { waiting, deadline };
            sooner
        });
    }
}

/// The body was cut because it went over `proxy-body-size`.
#[derive(Debug, thiserror::Error)]
#[error("request body larger than proxy-body-size")]
pub struct TooLarge;

/// The client's body could not be read (malformed chunked framing, or the client went away):
/// the client's fault, not the pod's.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body: {0}")]
pub struct ClientBodyError(#[source] hyper::Error);

impl ClientBodyError {
    /// Was this (upstream request) error caused by the client's body?
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        caused_by::<ClientBodyError>(error)
    }
}

/// Does `E` stand anywhere in the chain of `error`?
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<E>() {
            return true;
        }
        cause = e.source();
    }
    false
}

impl TooLarge {
    /// Was this (upstream request) error caused by a body cut for being too large?
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        caused_by::<TooLarge>(error)
    }
}

impl UpstreamBody {
    /// Wrap a client body, allowed up to `limit` bytes (beyond, it fails with [`TooLarge`]) and
    /// timed by `timeouts`; also returns the slot it comes back to if never read.
    pub fn new(
        body: Incoming,
        limit: Option<u64>,
        timeouts: ExchangeTimeouts,
    ) -> (Self, Option<Slot>) {
        if body.is_end_stream() {
            return (UpstreamBody::Empty, None);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        let body = Reclaimable {
            inner: Some(body),
            read: false,
            slot: slot.clone(),
            remaining: limit,
            timeouts,
            progress: watch::Sender::new(Progress {
                waiting: Waiting::Pod,
                deadline: Instant::now() + timeouts.send,
            }),
        };
        (UpstreamBody::Stream(body), Some(slot))
    }

    /// Where the body stands, as it moves; `None`: no body (the response is awaited at once).
    pub fn progress(&self) -> Option<watch::Receiver<Progress>> {
        match self {
            UpstreamBody::Empty => None,
            UpstreamBody::Stream(r) => Some(r.progress.subscribe()),
        }
    }
}

impl Drop for Reclaimable {
    fn drop(&mut self) {
        if !self.read {
            if let (Some(body), Ok(mut slot)) = (self.inner.take(), self.slot.lock()) {
                *slot = Some(body);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamBody::Empty => Poll::Ready(None),
            UpstreamBody::Stream(r) => {
                r.read = true;
                let Some(inner) = r.inner.as_mut() else {
                    return Poll::Ready(None);
                };
                let frame = match Pin::new(&mut *inner).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => frame,
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Some(Err(Box::new(ClientBodyError(e)))))
                    }
                    Poll::Ready(None) => {
                        r.enter(Waiting::Response);
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {
                        // Waiting for the client since the first time it had nothing.
                        if r.progress.borrow().waiting != Waiting::Client {
                            r.enter(Waiting::Client);
                        }
                        return Poll::Pending;
                    }
                };
                if let (Some(remaining), Some(data)) = (r.remaining.as_mut(), frame.data_ref()) {
                    let n = data.len() as u64;
                    if n > *remaining {
                        r.inner = None;
                        return Poll::Ready(Some(Err(Box::new(TooLarge))));
                    }
                    *remaining -= n;
                }
                let ended = inner.is_end_stream();
                r.enter(if ended {
                    Waiting::Response
                } else {
                    Waiting::Pod
                });
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Empty => true,
            UpstreamBody::Stream(r) => r.inner.as_ref().is_none_or(Body::is_end_stream),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Empty => SizeHint::with_exact(0),
            UpstreamBody::Stream(r) => r.inner.as_ref().map(Body::size_hint).unwrap_or_default(),
        }
    }
}
