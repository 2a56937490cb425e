//! One accepted connection: its state on atomics ([`Conn`]), shared by the accept loop (which
//! looks for idle connections to close), its IO (which notes the first byte of a request head),
//! its service (which counts requests in flight) and its task ([`drive`], one timer that closes it
//! when a limit of [`ConnectionLimits`] is over).
//!
//! A request is in flight from its head to the end (or drop) of its response body: the service
//! counts it up, a guard in the response body counts it down and notes when the connection went
//! idle. Nothing else is done per request: no lock, no allocation, no wake-up of the timer (it
//! looks at the state when it fires, and sleeps until the deadline that state gives, or its next
//! look if sooner; an HTTP/1 connection gone idle brings it forward to the release of hyper's
//! state, in the task's own poll).
//!
//! The task is a future of its own ([`Driven`]), not an `async fn`: an idle connection holds it
//! all its life, so it keeps only what it needs (about 400 bytes), and the accept loop wakes it
//! (to close it for a new one, to stop, when the listener drains) instead of each connection
//! waiting on channels of its own.

use super::serving::{Protocols, Served};
use super::{ConnectionLimits, HttpService, ResponseBody};
use http::header::{HeaderValue, CONNECTION};
use hyper::body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The timer looks at the connection at least this often: a deadline that a change of state
/// brings (the connection going idle, a head beginning) is at least this far from the change, so
/// no look comes late. A floor of a second keeps a keep-alive timeout of 0 from spinning.
fn period(limits: &ConnectionLimits) -> Duration {
    limits
        .keepalive_timeout
        .min(limits.header_timeout)
        .max(Duration::from_secs(1))
}

/// How long an HTTP/1 connection is idle before hyper's state for it (16 KiB of buffers) is
/// released. Short: the memory freed is only reused by other connections; what connections
/// accepted in a burst held at once stays with the allocator (mimalloc purges freed pages only
/// when the worker frees more later), so an idle connection's share of it grows with this delay
/// (bench/idle.sh: 500 ms left 5 to 17 KB per connection, with the rate at which they came).
/// Long enough that a client sending its requests back to back keeps hyper's state.
const RELEASE_AFTER: Duration = Duration::from_millis(100);

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
    /// The accept loop stopped: the connection ends after its requests in flight.
    stop: AtomicBool,
    /// Wakes the connection's task: [`Conn::reclaim`], [`Conn::stop`], the drain starting, or the
    /// HTTP/2 request limit reached.
    waker: TaskWaker,
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
            stop: AtomicBool::new(false),
            waker: TaskWaker::default(),
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
        self.waker.wake();
    }

    /// The accept loop stopped: the connection is to end once its requests in flight are done.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// The listener started draining: an HTTP/2 connection sends GOAWAY.
    pub(super) fn drain(&self) {
        self.waker.wake();
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
            self.waker.wake();
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

pin_project_lite::pin_project! {
    /// One accepted connection served until it ends, a limit of its [`ConnectionLimits`] closes it,
    /// the accept loop takes it back or stops ([`Conn::stop`]: then until its in-flight requests
    /// are done). While the listener drains, each response is the connection's last (HTTP/1:
    /// `Connection: close`; HTTP/2: GOAWAY, at once for a connection already open: the accept loop
    /// wakes it).
    ///
    /// A future of its own rather than an `async fn` with a `select!`: it is the whole state of
    /// the connection's task, so of every idle connection (each `select!` branch's future and
    /// each argument of an `async fn` would be kept in it for as long as the connection lives).
    pub(super) struct Driven<I, S: HttpService<B>, B: ResponseBody> {
        served: Served<Watched<I>, Counted<S>, Tracked<B>>,
        // The connection's one timer: its limits, the release of an idle HTTP/1 connection's
        // hyper state and, once it closes, the time it has for that.
        #[pin]
        timer: Sleep,
        conn: Arc<Conn>,
        draining: Arc<AtomicBool>,
        limits: ConnectionLimits,
        started: Instant,
        remote: SocketAddr,
        // The waker given to `conn` (the accept loop's way to wake the task).
        waker: Option<Waker>,
        phase: Phase,
        // GOAWAY sent for the HTTP/2 request limit or the drain: the open streams finish, then
        // the connection ends.
        going_away: bool,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// The accept loop stopped: until the requests in flight are done (the accept loop cuts
    /// them after its grace period).
    Stopping,
    /// Closed by a limit: until the last response's bytes are written, within the timer.
    Closing,
}

/// Serve one accepted connection: see [`Driven`].
pub(super) fn drive<I, S, B>(
    protocols: &Arc<Protocols>,
    io: I,
    service: S,
    draining: Arc<AtomicBool>,
    conn: Arc<Conn>,
    limits: ConnectionLimits,
    remote: SocketAddr,
) -> Driven<I, S, B>
where
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
        draining: draining.clone(),
    };
    let io = Watched {
        io,
        conn: conn.clone(),
    };
    // With upgrades: a `101 Switching Protocols` hands the connection to the request (WebSocket).
    let served = Served::new(protocols.clone(), io, service);
    // Its going idle after a request brings the timer forward to the release of hyper's state.
    let first_look = period(&limits).min(limits.header_timeout);
    Driven {
        served,
        timer: tokio::time::sleep_until(started + first_look),
        conn,
        draining,
        limits,
        started,
        remote,
        waker: None,
        phase: Phase::Serving,
        going_away: false,
    }
}

impl<I, S, B> Future for Driven<I, S, B>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *this.waker = Some(cx.waker().clone());
            this.conn.waker.register(cx.waker());
        }
        let remote = *this.remote;
        loop {
            // The connection first.
            if let Poll::Ready(res) = Pin::new(&mut *this.served).poll(cx) {
                if let Err(e) = res {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return Poll::Ready(());
            }
            match *this.phase {
                Phase::Stopping => return Poll::Pending,
                Phase::Closing => {
                    // Bounded: a client that reads nothing more gets no longer than a head would.
                    ready!(this.timer.as_mut().poll(cx));
                    return Poll::Ready(());
                }
                Phase::Serving => {}
            }
            let conn = &**this.conn;
            if conn.stop.load(Ordering::Acquire) {
                this.served.graceful_shutdown();
                *this.phase = Phase::Stopping;
                continue;
            }
            let mut why = None;
            if conn.reclaim.load(Ordering::Relaxed) {
                if conn.idle_since().is_some() {
                    why = Some("idle, closed to make room for new connections");
                } else {
                    // Busy again since the accept loop looked: it stays.
                    conn.reclaim.store(false, Ordering::Relaxed);
                }
            }
            if why.is_none()
                && !*this.going_away
                && conn.http2.load(Ordering::Relaxed)
                && (conn.requests.load(Ordering::Relaxed) >= this.limits.keepalive_requests
                    || this.draining.load(Ordering::Acquire))
            {
                tracing::debug!(%remote, "HTTP/2 request limit reached or draining, GOAWAY");
                this.served.graceful_shutdown();
                *this.going_away = true;
                continue;
            }
            if why.is_none() && this.served.is_h1() {
                // Gone idle in the poll above (the last response's bytes flushed): the timer
                // comes forward to the release of hyper's state. A busy connection's timer is not
                // looked at more often for it.
                if let Some(at) = conn.release_at(RELEASE_AFTER) {
                    if at < this.timer.deadline() {
                        this.timer.as_mut().reset(at);
                    }
                }
            }
            if why.is_none() {
                if this.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let now = Instant::now();
                // An HTTP/1 connection idle for a while keeps no hyper state (`serving`).
                let mut look = None;
                if this.served.is_h1() {
                    match conn.release_at(RELEASE_AFTER) {
                        Some(at) if at <= now => {
                            this.served.release();
                            tracing::trace!(%remote, "idle: hyper's state released");
                        }
                        Some(at) => look = Some(at),
                        // Busy: its going idle brings the timer forward (above).
                        None => {}
                    }
                }
                match conn.next(now, *this.started, this.limits) {
                    Next::Sleep(at) => {
                        this.timer.as_mut().reset(look.map_or(at, |l| l.min(at)));
                        continue;
                    }
                    Next::Close(w) => why = Some(w.say()),
                }
            }
            if let Some(why) = why {
                tracing::debug!(%remote, why);
                // HTTP/1: closed at once when idle, after the last response's bytes otherwise;
                // HTTP/2: GOAWAY.
                this.served.graceful_shutdown();
                this.timer
                    .as_mut()
                    .reset(Instant::now() + this.limits.header_timeout);
                *this.phase = Phase::Closing;
            }
        }
    }
}

/// The waker of a connection's task, for the accept loop to wake it (to close it for a new one,
/// to stop, or to send GOAWAY when the listener drains).
#[derive(Default)]
struct TaskWaker(Mutex<Option<Waker>>);

impl TaskWaker {
    fn register(&self, waker: &Waker) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(waker.clone());
    }

    fn wake(&self) {
        let waker = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(w) = waker {
            w.wake();
        }
    }
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
