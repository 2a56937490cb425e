//! Request bodies that can be taken back when the upstream connection never happened.
//!
//! When connecting to the chosen endpoint fails, the client library drops the request, body
//! included, before reading a single byte of it. Wrapping the body lets that drop hand the untouched
//! stream back, so the request can go to another endpoint with its body intact: failover works for
//! every method without buffering bodies.

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

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
    /// Wrap a client body, allowed up to `limit` bytes (beyond, it fails with [`TooLarge`]); also
    /// returns the slot it comes back to if never read.
    pub fn new(body: Incoming, limit: Option<u64>) -> (Self, Option<Slot>) {
        if body.is_end_stream() {
            return (UpstreamBody::Empty, None);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        let body = Reclaimable {
            inner: Some(body),
            read: false,
            slot: slot.clone(),
            remaining: limit,
        };
        (UpstreamBody::Stream(body), Some(slot))
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
                let frame = match Pin::new(inner).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => frame,
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => return Poll::Pending,
                };
                if let (Some(remaining), Some(data)) = (r.remaining.as_mut(), frame.data_ref()) {
                    let n = data.len() as u64;
                    if n > *remaining {
                        r.inner = None;
                        return Poll::Ready(Some(Err(Box::new(TooLarge))));
                    }
                    *remaining -= n;
                }
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
