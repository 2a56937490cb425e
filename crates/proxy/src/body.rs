//! Request bodies that can be taken back when the upstream connection never happened, and that
//! say where they stand.
//!
//! When connecting to the chosen endpoint fails, the client library drops the request, body
//! included, before reading a single byte of it. Wrapping the body lets that drop hand the untouched
//! stream back, so the request can go to another endpoint with its body intact: failover works for
//! every method without buffering bodies.
//!
//! While the body streams, its [`Phase`] tells who is holding the exchange up: the client (nginx's
//! `client_body_timeout`), the pod not taking more (`proxy-send-timeout`), or, once all of it was
//! handed over, the pod's response (`proxy-read-timeout`). Each timeout runs between two steps of
//! progress, as nginx's do, so a slow upload that keeps moving is never cut.
//!
//! [`ReadTimeout`] does the same for a response body from hyper's client: a pod that sends nothing
//! of it for `proxy-read-timeout` ends it (the lean client's bodies time themselves).

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a request body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the client's next bytes.
    Client,
    /// The request head or a piece of the body waits for the pod to take it.
    Upstream,
    /// All of the body was handed over: the response is awaited.
    Sent,
}

/// How long each phase may last without progress (nginx's timeouts, between two steps rather than
/// for the whole exchange).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The client sends nothing more of the body (`client_body_timeout`).
    pub client_body: Duration,
    /// The pod takes nothing more of the request (`proxy-send-timeout`).
    pub send: Duration,
    /// After the whole request, the pod sends no response head (`proxy-read-timeout`).
    pub read: Duration,
}

impl Limits {
    pub fn of(&self, phase: Phase) -> Duration {
        match phase {
            Phase::Client => self.client_body,
            Phase::Upstream => self.send,
            Phase::Sent => self.read,
        }
    }
}

/// The current phase and when it runs out unless something moves.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub phase: Phase,
    pub deadline: Instant,
}

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
    limits: Limits,
    progress: watch::Sender<Progress>,
}

impl Reclaimable {
    /// Record progress: the new deadline always, a wake-up for whoever watches only when it comes
    /// sooner than the one they wait for (a later one they find when theirs passes), so pieces of
    /// a body moving along wake no one.
    fn enter(&self, phase: Phase) {
        let deadline = Instant::now() + self.limits.of(phase);
        self.progress.send_if_modified(|p| {
            let sooner = deadline < p.deadline;
            *p = Progress { phase, deadline };
            sooner
        });
    }
}

/// The body was cut because it went over `proxy-body-size`.
#[derive(Debug)]
pub struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body larger than proxy-body-size")
    }
}

impl std::error::Error for TooLarge {}

impl TooLarge {
    /// Was this (upstream request) error caused by a body cut for being too large?
    pub fn caused(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if e.is::<TooLarge>() {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

impl UpstreamBody {
    /// Wrap a client body, allowed up to `limit` bytes (beyond, it fails with [`TooLarge`]) and
    /// timed by `limits`; also returns the slot it comes back to if never read.
    pub fn new(body: Incoming, limit: Option<u64>, limits: Limits) -> (Self, Option<Slot>) {
        if body.is_end_stream() {
            return (UpstreamBody::Empty, None);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        let body = Reclaimable {
            inner: Some(body),
            read: false,
            slot: slot.clone(),
            remaining: limit,
            limits,
            progress: watch::Sender::new(Progress {
                phase: Phase::Upstream,
                deadline: Instant::now() + limits.send,
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
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(None) => {
                        r.enter(Phase::Sent);
                        return Poll::Ready(None);
                    }
                    Poll::Pending => {
                        // Waiting for the client since the first time it had nothing.
                        if r.progress.borrow().phase != Phase::Client {
                            r.enter(Phase::Client);
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
                r.enter(if ended { Phase::Sent } else { Phase::Upstream });
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

/// "Nothing came for `limit`" (nginx's timeouts between two reads): the timer is armed when a read
/// has to wait and dropped by data, so none exists while data keeps coming.
pub struct Stall {
    limit: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stall {
    pub fn new(limit: Duration) -> Self {
        Self { limit, sleep: None }
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Data came.
    pub fn reset(&mut self) {
        self.sleep = None;
    }

    /// A read has to wait: ready once reads have waited `limit` in a row.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let limit = self.limit;
        self.sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)))
            .as_mut()
            .poll(cx)
    }
}

/// A response body that fails when the pod sends nothing of it for `limit` (nginx's
/// `proxy_read_timeout`, between two reads): the client's connection is then closed rather than
/// left waiting on a pod that stopped.
pub struct ReadTimeout<B> {
    inner: B,
    stall: Stall,
}

impl<B> ReadTimeout<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            stall: Stall::new(limit),
        }
    }
}

/// The pod sent nothing of a response body for this long.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no data from the pod for {:?} within the body", self.0)
    }
}

impl std::error::Error for BodyTimeout {}

impl<B> Body for ReadTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stall.reset();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.stall.poll_expired(cx));
                Poll::Ready(Some(Err(Box::new(BodyTimeout(this.stall.limit())))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
