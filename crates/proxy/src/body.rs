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
}

impl UpstreamBody {
    /// Wrap a client body; also returns the slot it comes back to if never read.
    pub fn new(body: Incoming) -> (Self, Option<Slot>) {
        if body.is_end_stream() {
            return (UpstreamBody::Empty, None);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        let body = Reclaimable {
            inner: Some(body),
            read: false,
            slot: slot.clone(),
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
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            UpstreamBody::Empty => Poll::Ready(None),
            UpstreamBody::Stream(r) => {
                r.read = true;
                match r.inner.as_mut() {
                    Some(inner) => Pin::new(inner).poll_frame(cx),
                    None => Poll::Ready(None),
                }
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
