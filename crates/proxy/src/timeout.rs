//! The timeouts of an exchange with a pod, all of them as nginx runs them: between two steps of
//! progress, never for the whole exchange, so a slow upload or download that keeps moving is
//! never cut.
//!
//! - While a request body streams, [`Progress`] says who holds the exchange up ([`Waiting`]): the
//!   client (`client_body_timeout`, 408), the pod not taking more (`proxy-send-timeout`, 504), or,
//!   once all of it was handed over, the pod's response head (`proxy-read-timeout`, 504).
//!   [`await_response`] waits for the response head within those limits ([`ExchangeTimeouts`]) and
//!   says which one ran out ([`Stalled`]).
//! - Within a response body, [`BetweenReads`] is the timer of "nothing came for the read timeout":
//!   the lean client's bodies use it directly, hyper's are wrapped in [`ResponseBodyTimeout`].

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Who the exchange waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The client's next bytes of the request body.
    Client,
    /// The pod, to take the request head or a piece of the body.
    Pod,
    /// The response head: all of the body was handed over.
    Response,
}

/// How long the exchange may wait for each, without progress.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeTimeouts {
    /// The client sends nothing more of the body (`client_body_timeout`).
    pub client_body: Duration,
    /// The pod takes nothing more of the request (`proxy-send-timeout`).
    pub send: Duration,
    /// After the whole request, the pod sends no response head (`proxy-read-timeout`).
    pub read: Duration,
}

impl ExchangeTimeouts {
    pub fn of(&self, waiting: Waiting) -> Duration {
        match waiting {
            Waiting::Client => self.client_body,
            Waiting::Pod => self.send,
            Waiting::Response => self.read,
        }
    }
}

/// Who the exchange waits for now, and when that runs out unless something moves.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub waiting: Waiting,
    pub deadline: Instant,
}

/// Which timeout ran out, after how long.
#[derive(Debug, thiserror::Error)]
pub enum Stalled {
    #[error("the client sent no more of the request body for {0:?}")]
    ClientBody(Duration),
    #[error("the pod took no more of the request for {0:?}")]
    Send(Duration),
    #[error("no response in time ({0:?})")]
    ResponseHead(Duration),
    /// A Gateway API route's `timeouts.request`: the whole exchange, every try included, had no
    /// response head in this time.
    #[error("no response within the route's request timeout ({0:?})")]
    RequestTimeout(Duration),
}

impl Stalled {
    fn waiting_for(waiting: Waiting, timeouts: &ExchangeTimeouts) -> Self {
        let limit = timeouts.of(waiting);
        match waiting {
            Waiting::Client => Stalled::ClientBody(limit),
            Waiting::Pod => Stalled::Send(limit),
            Waiting::Response => Stalled::ResponseHead(limit),
        }
    }
}

/// Await `exchange` (a request to a pod) while its body keeps moving: each phase of the body has
/// its own limit from its own start. Without a body (`progress` is `None`) the response head is
/// awaited for the read timeout.
pub async fn await_response<F: Future>(
    exchange: F,
    progress: Option<watch::Receiver<Progress>>,
    timeouts: &ExchangeTimeouts,
) -> Result<F::Output, Stalled> {
    let Some(mut progress) = progress else {
        return tokio::time::timeout(timeouts.read, exchange)
            .await
            .map_err(|_| Stalled::ResponseHead(timeouts.read));
    };
    tokio::pin!(exchange);
    let sleep = tokio::time::sleep_until(progress.borrow().deadline);
    tokio::pin!(sleep);
    // The body wakes us when a deadline comes sooner; once it is gone, its last word stands.
    let mut watching = true;
    loop {
        tokio::select! {
            output = &mut exchange => return Ok(output),
            changed = progress.changed(), if watching => {
                watching = changed.is_ok();
                sleep.as_mut().reset(progress.borrow().deadline);
            }
            () = &mut sleep => {
                // Progress moves the deadline later without a wake-up: look again.
                let current = *progress.borrow();
                if current.deadline <= Instant::now() {
                    return Err(Stalled::waiting_for(current.waiting, timeouts));
                }
                sleep.as_mut().reset(current.deadline);
            }
        }
    }
}

/// `exchange` within `limit`, when there is one (a Gateway API route's `timeouts.backendRequest`,
/// for one try): past it, the response head did not come in time, as when the read timeout runs
/// out, so the try fails over as a timeout.
pub async fn within<T, F>(limit: Option<Duration>, exchange: F) -> Result<T, Stalled>
where
    F: Future<Output = Result<T, Stalled>>,
{
    match limit {
        Some(limit) => tokio::time::timeout(limit, exchange)
            .await
            .unwrap_or(Err(Stalled::ResponseHead(limit))),
        None => exchange.await,
    }
}

/// "Nothing came for `limit`" (nginx's timeouts between two reads): the timer is armed when a read
/// has to wait and dropped by data, so none exists while data keeps coming.
pub struct BetweenReads {
    limit: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl BetweenReads {
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
pub struct ResponseBodyTimeout<B> {
    inner: B,
    timer: BetweenReads,
}

impl<B> ResponseBodyTimeout<B> {
    pub fn new(inner: B, limit: Duration) -> Self {
        Self {
            inner,
            timer: BetweenReads::new(limit),
        }
    }
}

/// The pod sent nothing of a response body for this long.
#[derive(Debug, thiserror::Error)]
#[error("no data from the pod for {0:?} within the body")]
pub struct ResponseBodyStalled(pub Duration);

impl<B> Body for ResponseBodyTimeout<B>
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
                this.timer.reset();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                ready!(this.timer.poll_expired(cx));
                Poll::Ready(Some(Err(Box::new(ResponseBodyStalled(this.timer.limit())))))
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
