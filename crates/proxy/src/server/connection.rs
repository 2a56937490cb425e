//! One accepted connection: its state on atomics ([`Conn`]), shared by the accept loop (which
//! looks for idle connections to close), its IO (which notes the first byte of a request head),
//! its service (which counts requests in flight) and its task ([`drive`], one timer that closes it
//! when a limit of [`ConnectionLimits`] is over).
//!
//! A request is in flight from its head to the end (or drop) of its response body: the service
//! counts it up, a guard in the response body counts it down and notes when the connection went
//! idle. Nothing else is done per request: no lock, no allocation, no wake-up of the timer (it
//! looks at the state when it fires, and sleeps until the deadline that state gives, or its next
//! look if sooner).

use super::serving::{Protocols, Served};
use super::{ConnectionLimits, Drain, HttpService, ResponseBody};
use http::header::{HeaderValue, CONNECTION};
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// The timer looks at the connection at least this often: a deadline that a change of state
/// brings (the connection going idle, a head beginning) is at least this far from the change, so
/// no look comes late. A floor of a second keeps a keep-alive timeout of 0 from spinning.
fn period(limits: &ConnectionLimits) -> Duration {
    limits
        .keepalive_timeout
        .min(limits.header_timeout)
        .max(Duration::from_secs(1))
}

/// How long an HTTP/1 connection is idle before hyper's state for it is released.
const RELEASE_AFTER: Duration = Duration::from_millis(500);

/// What the parts of one connection share. Instants are milliseconds since the accept loop's
/// `epoch`, plus one (0: none).
pub(super) struct Conn {
    epoch: Instant,
    /// Requests whose response body has not ended.
    in_flight: AtomicU32,
    /// Requests received.
    requests: AtomicU32,
    /// Since when nothing has been in flight; 0 while the TLS handshake runs.
    idle_since: AtomicU64,
    /// When the first byte came after the connection went idle: an HTTP/1 request head in
    /// progress (before the first request: any byte, whatever the protocol).
    head_since: AtomicU64,
    /// The requests are HTTP/2 (known from the first one).
    http2: AtomicBool,
    /// The accept loop asked the connection to close while idle (descriptor pressure); cleared if
    /// it was no longer idle.
    reclaim: AtomicBool,
    /// Wakes the connection's task: [`Conn::reclaim`], or the HTTP/2 request limit reached.
    wake: Notify,
    /// Everything hyper wrote was flushed, and nothing written since (its write buffer is
    /// empty: hyper flushes the IO only then).
    flushed: AtomicBool,
}

impl Conn {
    pub(super) fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            in_flight: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            reclaim: AtomicBool::new(false),
            wake: Notify::new(),
            flushed: AtomicBool::new(false),
        }
    }

    fn stamp(&self, at: Instant) -> u64 {
        let ms = at.saturating_duration_since(self.epoch).as_millis();
        u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1
    }

    fn instant(&self, stamp: u64) -> Instant {
        self.epoch + Duration::from_millis(stamp.saturating_sub(1))
    }

    /// When the connection went idle, if it is: it serves (TLS done), nothing is in flight, and
    /// no HTTP/1 head has begun. A connection that has not sent a byte yet is idle since its TLS
    /// handshake, or since it was accepted.
    pub(super) fn idle_since(&self) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.idle_since.load(Ordering::Relaxed);
        let head =
            !self.http2.load(Ordering::Relaxed) && self.head_since.load(Ordering::Relaxed) != 0;
        (since != 0 && !head).then_some(since)
    }

    /// When an idle HTTP/1 connection's hyper state may be released: `after` its going idle,
    /// once a request was served and all written flushed; `None` while it is not idle.
    pub(super) fn release_at(&self, after: Duration) -> Option<Instant> {
        let since = self.idle_since()?;
        let ready =
            self.requests.load(Ordering::Relaxed) > 0 && self.flushed.load(Ordering::Relaxed);
        ready.then(|| self.instant(since) + after)
    }

    /// Asked to close and not done yet.
    pub(super) fn reclaiming(&self) -> bool {
        self.reclaim.load(Ordering::Relaxed)
    }

    /// Ask the connection to close if it is still idle when its task looks.
    pub(super) fn reclaim(&self) {
        self.reclaim.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// A request (its head) came: in flight until the guard is dropped. True when it is the last
    /// one the connection may make (`max_requests`, or any while the listener drains); on HTTP/2,
    /// the connection's task is woken to send GOAWAY.
    pub(super) fn begin(
        self: &Arc<Self>,
        http2: bool,
        max_requests: u32,
        draining: bool,
    ) -> (InFlight, bool) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Relaxed);
        let n = self
            .requests
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if http2 && !self.http2.load(Ordering::Relaxed) {
            self.http2.store(true, Ordering::Relaxed);
        }
        if http2 && (n == max_requests || draining) {
            self.wake.notify_one();
        }
        (InFlight(self.clone()), draining || n >= max_requests)
    }

    /// Bytes came from the client.
    pub(super) fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
            && !self.http2.load(Ordering::Relaxed)
        {
            self.head_since
                .store(self.stamp(Instant::now()), Ordering::Relaxed);
        }
    }

    /// What the timer does next, at `now`: sleep until the deadline of the connection's state
    /// (or the next look, if sooner), or close the connection.
    pub(super) fn next(&self, now: Instant, started: Instant, limits: &ConnectionLimits) -> Next {
        let look = now + period(limits);
        let (deadline, why) = if self.requests.load(Ordering::Acquire) == 0 {
            (started + limits.header_timeout, Why::FirstHead)
        } else if self.in_flight.load(Ordering::Acquire) > 0 {
            return Next::Sleep(look);
        } else {
            let head = self.head_since.load(Ordering::Relaxed);
            if head != 0 && !self.http2.load(Ordering::Relaxed) {
                (self.instant(head) + limits.header_timeout, Why::Head)
            } else {
                let idle = self.instant(self.idle_since.load(Ordering::Relaxed));
                (idle + limits.keepalive_timeout, Why::Idle)
            }
        };
        if now >= deadline {
            Next::Close(why)
        } else {
            Next::Sleep(deadline.min(look))
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Next {
    Sleep(Instant),
    Close(Why),
}

/// Why the timer closes a connection.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub(super) enum Why {
    /// No complete request head within the header timeout of the start (nginx's
    /// `client_header_timeout` on a new connection).
    FirstHead,
    /// A later head began and did not complete within the header timeout.
    Head,
    /// Nothing in flight for the keep-alive timeout (nginx's `keepalive_timeout`).
    Idle,
}

impl Why {
    fn say(self) -> &'static str {
        match self {
            Why::FirstHead => "no request head in time, closed",
            Why::Head => "request head not complete in time, closed",
            Why::Idle => "idle for the keep-alive timeout, closed",
        }
    }
}

/// Serve one accepted connection until it ends, a limit of `limits` closes it, the accept loop
/// takes it back, or, once `stop` fires, until its in-flight requests are done. While the
/// listener drains, each response is the connection's last (HTTP/1: `Connection: close`; HTTP/2:
/// GOAWAY, at once for a connection already open).
#[allow(clippy::too_many_arguments)]
pub(super) async fn drive<I, S, B>(
    protocols: &Arc<Protocols>,
    io: I,
    service: S,
    mut stop: watch::Receiver<bool>,
    mut drain: Drain,
    conn: Arc<Conn>,
    limits: ConnectionLimits,
    remote: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    let started = Instant::now();
    conn.idle_since
        .store(conn.stamp(started), Ordering::Relaxed);
    let service = Counted {
        inner: service,
        conn: conn.clone(),
        max_requests: limits.keepalive_requests,
        draining: drain.started.clone(),
    };
    let io = Watched {
        io,
        conn: conn.clone(),
    };
    // With upgrades: a `101 Switching Protocols` hands the connection to the request (WebSocket).
    let mut served = Served::new(protocols.clone(), io, service);
    // The first look comes soon enough to release an HTTP/1 connection idle after one request.
    let first_look = period(&limits)
        .min(limits.header_timeout)
        .min(RELEASE_AFTER);
    let timer = tokio::time::sleep_until(started + first_look);
    tokio::pin!(timer);
    // GOAWAY sent for the HTTP/2 request limit or the drain: the open streams finish, then the
    // connection ends.
    let mut going_away = false;
    // Looked at once: the drain only ever starts.
    let mut drain_seen = false;
    let why = loop {
        tokio::select! {
            // The connection first: no random branch order per poll.
            biased;
            res = &mut served => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => {
                served.graceful_shutdown();
                let _ = served.await;
                return;
            }
            _ = drain.changed.changed(), if !drain_seen => {
                drain_seen = true;
                // HTTP/1 stays open until its next response says `Connection: close` (or the
                // listener goes): closing it now could cross a request already on its way.
                if !going_away && conn.http2.load(Ordering::Relaxed) {
                    tracing::debug!(%remote, "draining, GOAWAY");
                    served.graceful_shutdown();
                    going_away = true;
                }
            }
            () = conn.wake.notified() => {
                if conn.reclaim.load(Ordering::Relaxed) {
                    if conn.idle_since().is_some() {
                        break "idle, closed to make room for new connections";
                    }
                    // Busy again since the accept loop looked: it stays.
                    conn.reclaim.store(false, Ordering::Relaxed);
                }
                if !going_away
                    && conn.http2.load(Ordering::Relaxed)
                    && (conn.requests.load(Ordering::Relaxed) >= limits.keepalive_requests
                        || drain.started.load(Ordering::Acquire))
                {
                    tracing::debug!(%remote, "HTTP/2 request limit reached or draining, GOAWAY");
                    served.graceful_shutdown();
                    going_away = true;
                }
            }
            () = &mut timer => {
                let now = Instant::now();
                // An HTTP/1 connection idle for a while keeps no hyper state (`serving`); until
                // then its timer looks often enough to see it go idle.
                let mut look = None;
                if served.is_h1() {
                    match conn.release_at(RELEASE_AFTER) {
                        Some(at) if at <= now => {
                            served.release();
                            tracing::trace!(%remote, "idle: hyper's state released");
                        }
                        Some(at) => look = Some(at),
                        None => look = Some(now + RELEASE_AFTER),
                    }
                }
                match conn.next(now, started, &limits) {
                    Next::Sleep(at) => timer.as_mut().reset(look.map_or(at, |l| l.min(at))),
                    Next::Close(why) => break why.say(),
                }
            }
        }
    };
    tracing::debug!(%remote, why);
    // HTTP/1: closed at once when idle, after the last response's bytes otherwise; HTTP/2:
    // GOAWAY. Bounded: a client that reads nothing more gets no longer than a head would.
    served.graceful_shutdown();
    let _ = tokio::time::timeout(limits.header_timeout, served).await;
}

/// The connection's IO: the first byte read after the connection went idle starts the header
/// timeout of the next head.
struct Watched<I> {
    io: I,
    conn: Arc<Conn>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.conn.read();
        }
        res
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.conn.flushed.store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.conn.flushed.store(false, Ordering::Relaxed);
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let res = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(res, Poll::Ready(Ok(()))) {
            self.conn.flushed.store(true, Ordering::Relaxed);
        }
        res
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The service of a connection: counts requests received and in flight, and marks the response
/// of the last request an HTTP/1 connection may make (`Connection: close`), each one while the
/// listener drains.
struct Counted<S> {
    inner: S,
    conn: Arc<Conn>,
    max_requests: u32,
    draining: Arc<AtomicBool>,
}

impl<S, B> hyper::service::Service<http::Request<hyper::body::Incoming>> for Counted<S>
where
    S: hyper::service::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<B>,
        Error = Infallible,
    >,
{
    type Response = http::Response<Tracked<B>>;
    type Error = Infallible;
    type Future = Responding<S::Future>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let http2 = req.version() == http::Version::HTTP_2;
        let draining = self.draining.load(Ordering::Acquire);
        let (guard, last) = self.conn.begin(http2, self.max_requests, draining);
        Responding {
            inner: self.inner.call(req),
            guard: Some(guard),
            close: last && !http2,
        }
    }
}

/// A request in flight, until its response body ends or is dropped.
pub(super) struct InFlight(Arc<Conn>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let conn = &self.0;
        // The instant first, then the count its readers look at first.
        conn.idle_since
            .store(conn.stamp(Instant::now()), Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Counted`]: the response, its body tracked.
    struct Responding<F> {
        #[pin]
        inner: F,
        guard: Option<InFlight>,
        close: bool,
    }
}

impl<F, B> Future for Responding<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
{
    type Output = Result<http::Response<Tracked<B>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Ok(mut response) = ready!(this.inner.poll(cx));
        if *this.close && response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let guard = this.guard.take();
        let held = response
            .extensions_mut()
            .remove::<super::HeldUntilBodyEnds>();
        Poll::Ready(Ok(response.map(|body| Tracked { body, guard, held })))
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its request's time in flight when it ends (or is dropped).
    pub struct Tracked<B> {
        #[pin]
        body: B,
        guard: Option<InFlight>,
        // What the service asked to keep until the body ends (`limit-connections`).
        held: Option<super::HeldUntilBodyEnds>,
    }
}

impl<B: Body> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.body.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            *this.guard = None;
            *this.held = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
