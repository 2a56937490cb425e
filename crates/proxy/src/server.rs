//! The accept loop every listener runs (proxy, admin, the demo's pods): hyper's auto builder per
//! connection (HTTP/1.1, and HTTP/2 with prior knowledge or, over TLS, by ALPN), and graceful
//! shutdown with a grace period.
//!
//! No client holds a connection without sending a request: the TLS handshake, and then the first
//! request head, whatever the protocol (the bytes that tell HTTP/1 from HTTP/2, the HTTP/2 preface
//! and first HEADERS), must each come within the header timeout (nginx's
//! `client_header_timeout`); hyper bounds the later HTTP/1 heads, and so how long a keep-alive
//! connection may idle. HTTP/2 connections are pinged, so dead peers are found.

use crate::tls::{SniAcceptor, TlsFacts};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How often an HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is taken for dead.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings of an accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Time a client has to complete the TLS handshake, then each request head (nginx's
    /// `client_header_timeout`); also how long an HTTP/1 keep-alive connection may idle.
    pub header_read_timeout: Duration,
    /// How long a client streaming a request body may send nothing (nginx's
    /// `client_body_timeout`); then it gets 408.
    pub client_body_timeout: Duration,
    /// After shutdown is asked for, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(60),
            client_body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A service the accept loops can serve: hyper's bounds for a connection task, named once.
pub trait HttpService<B>:
    hyper::service::Service<
        http::Request<hyper::body::Incoming>,
        Response = http::Response<B>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Send
        + 'static
{
}

/// A response body those services may return.
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// Accept loop shared by the proxy and admin listeners (and the demo's pods). Connections are
/// served by hyper's auto builder (HTTP/1.1, and HTTP/2 with prior knowledge or, over TLS, by
/// ALPN); with `tls`, the handshake must complete within the header read timeout. When `shutdown`
/// resolves, accepting stops and the call returns once open connections have finished their
/// in-flight requests, or the grace period is over.
pub async fn serve<S, B>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    options: ServerOptions,
    make_service: impl Fn(SocketAddr) -> S + Send + Sync + 'static,
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    serve_closing(
        listener,
        tls.map(Tls::Fixed),
        shutdown,
        options,
        move |remote, _| make_service(remote),
        || {},
    )
    .await;
}

/// How a listener's connections start TLS.
#[derive(Clone)]
pub(crate) enum Tls {
    /// One configuration for every handshake.
    Fixed(tokio_rustls::TlsAcceptor),
    /// The configuration chosen by the ClientHello's SNI (client certificates per host).
    BySni(Arc<SniAcceptor>),
}

impl Tls {
    async fn accept(
        &self,
        stream: tokio::net::TcpStream,
    ) -> std::io::Result<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        TlsFacts,
    )> {
        match self {
            Tls::Fixed(acceptor) => Ok((acceptor.accept(stream).await?, TlsFacts::default())),
            Tls::BySni(acceptor) => acceptor.accept(stream).await,
        }
    }
}

/// [`serve`], calling `closed` as soon as the listening socket is closed (when `shutdown`
/// resolves, before the open connections drain): whoever binds the same port again next (a
/// Gateway listener turned from HTTP to HTTPS) waits for it. Each connection's service is made
/// once its handshake is done, with what the handshake told.
pub(crate) async fn serve_closing<S, B>(
    listener: TcpListener,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    options: ServerOptions,
    make_service: impl Fn(SocketAddr, TlsFacts) -> S + Send + Sync + 'static,
    closed: impl FnOnce(),
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // One buffer per write (`write`, not a two-part `writev`): a few % more requests per
        // second on small responses, the same CPU in total on large ones (measured with 64 KiB
        // and 1 MiB bodies).
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let builder = Arc::new(builder);
    let make_service = Arc::new(make_service);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut failures = AcceptFailures::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    failures.record(&e, connections.len());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Reap finished connections so the set only holds open ones.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let make_service = make_service.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let header_timeout = options.header_read_timeout;
            let Some(tls) = tls else {
                let service = make_service(remote, TlsFacts::default());
                return drive(&builder, stream, service, stop, remote, header_timeout).await;
            };
            match tokio::time::timeout(header_timeout, tls.accept(stream)).await {
                Ok(Ok((stream, facts))) => {
                    let service = make_service(remote, facts);
                    drive(&builder, stream, service, stop, remote, header_timeout).await
                }
                Ok(Err(e)) => tracing::debug!(error = %e, %remote, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
    // Stop accepting, let open connections finish their in-flight requests (idle keep-alive
    // connections close at once), and cut whatever is still running after the grace period.
    drop(listener);
    closed();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "grace period over, closing the connections still open"
        );
    }
}

/// Failed accepts, logged at most once per [`AcceptFailures::EVERY`] with how many there were:
/// out of descriptors, a warning every 50 ms would flood the log when it matters most.
#[derive(Default)]
struct AcceptFailures {
    last: Option<tokio::time::Instant>,
    since: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    fn record(&mut self, error: &std::io::Error, open: usize) {
        self.since += 1;
        let now = tokio::time::Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < Self::EVERY)
        {
            return;
        }
        tracing::warn!(
            %error,
            failed = self.since,
            open_connections = open,
            "accept failed (out of file descriptors? raise the limit, e.g. ulimit -n)"
        );
        self.last = Some(now);
        self.since = 0;
    }
}

/// Serve one accepted connection until it ends, or, once `stop` fires, until its in-flight
/// requests are done. A connection whose first request head has not come within
/// `header_timeout` is closed.
async fn drive<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    mut stop: watch::Receiver<bool>,
    remote: SocketAddr,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    let seen = Arc::new(AtomicBool::new(false));
    let service = FirstRequest {
        inner: service,
        seen: seen.clone(),
    };
    // With upgrades: a `101 Switching Protocols` hands the connection to the request (WebSocket).
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let first_head = tokio::time::sleep(header_timeout);
    tokio::pin!(first_head);
    let mut waiting = true;
    loop {
        tokio::select! {
            // The connection first: no random branch order per poll.
            biased;
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
                return;
            }
            () = &mut first_head, if waiting => {
                if !seen.load(Ordering::Relaxed) {
                    tracing::debug!(%remote, ?header_timeout, "no request head in time, closed");
                    return;
                }
                waiting = false;
            }
        }
    }
}

/// The service of a connection, noting that a request head came (no wake-up: the first-head
/// timer looks when it fires).
struct FirstRequest<S> {
    inner: S,
    seen: Arc<AtomicBool>,
}

impl<S, R> hyper::service::Service<R> for FirstRequest<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.seen.store(true, Ordering::Relaxed);
        self.inner.call(req)
    }
}
