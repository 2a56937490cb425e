//! Remora's data path.
//!
//! [`Proxy`] owns the current routing [`table::Table`] behind an `ArcSwap`: providers call
//! [`Proxy::publish`] with each new snapshot (built off the request path), and every request does
//! exactly one atomic load of it. The request path itself is [`handler`], readable top to bottom.

mod access_log;
mod admin;
mod body;
mod h1;
mod handler;
mod headers;
mod location;
mod metrics;
mod table;
mod tls;
mod tunnel;
mod upstream;

use arc_swap::ArcSwap;
use balance::CookieKey;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use model::{Diagnostic, Snapshot};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use table::Table;
pub use tls::DEFAULT_CERTIFICATE_CN;
pub use tokio_rustls::rustls::ServerConfig;
pub use upstream::NoVerify;

/// Half-life of the per-endpoint session loads used for bounded balanced placement.
pub const LOAD_HALF_LIFE: Duration = Duration::from_secs(300);

/// Data-path settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Authenticates session cookies.
    pub cookie_key: CookieKey,
    /// Idle upstream connections are closed after this long.
    pub pool_idle_timeout: Duration,
    /// Client-side limits and the shutdown grace period.
    pub server: ServerOptions,
    /// The HTTPS port clients are redirected to (`ssl-redirect`); 443 is left out of the URL.
    pub https_redirect_port: u16,
}

impl ProxyConfig {
    pub fn new(cookie_key: CookieKey) -> Self {
        Self {
            cookie_key,
            pool_idle_timeout: Duration::from_secs(60),
            server: ServerOptions::default(),
            https_redirect_port: 443,
        }
    }
}

/// The proxy: cheap to clone, all clones share one table.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

struct Shared {
    table: ArcSwap<Table>,
    global: Arc<metrics::Global>,
    access_log: Option<access_log::AccessLog>,
    /// Upstream clients by protocol and connect timeout (the per-route timeouts and protocol
    /// come from the route's `Location`).
    clients: upstream::Clients,
    /// Idle connections of the lean HTTP/1 client (requests without a body to plain-HTTP pods).
    h1: h1::Pool,
    config: ProxyConfig,
    generation: AtomicU64,
    ready: AtomicBool,
    /// The task decaying session loads runs.
    decaying: AtomicBool,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Result<Self, String> {
        let clients = upstream::Clients::new(config.pool_idle_timeout)
            .map_err(|e| format!("upstream TLS configuration: {e}"))?;
        Ok(Self {
            shared: Arc::new(Shared {
                table: ArcSwap::from_pointee(Table::empty()),
                global: Arc::default(),
                access_log: None,
                clients,
                h1: h1::Pool::new(config.pool_idle_timeout),
                config,
                generation: AtomicU64::new(0),
                ready: AtomicBool::new(false),
                decaying: AtomicBool::new(false),
            }),
        })
    }

    /// Write a JSON access log line per request to `path` (`-`: stdout). Call before serving.
    pub async fn with_access_log(mut self, path: std::path::PathBuf) -> Result<Self, String> {
        let log = access_log::AccessLog::open(path.clone())
            .await
            .map_err(|e| format!("cannot open the access log {}: {e}", path.display()))?;
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.access_log = Some(log),
            None => return Err("the access log must be set before the proxy is shared".to_owned()),
        }
        Ok(self)
    }

    /// A configuration source failed to load (counted in `/metrics`).
    pub fn record_config_error(&self) {
        self.shared
            .global
            .config_reload_errors
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Swap in a new snapshot, translated in `translation` time. Requests in flight finish on the
    /// table they started with.
    pub fn publish(
        &self,
        snapshot: Snapshot,
        diagnostics: Vec<Diagnostic>,
        translation: Duration,
    ) -> u64 {
        let started = std::time::Instant::now();
        let generation = self.shared.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let previous = self.shared.table.load();
        let table = Table::new(
            snapshot,
            diagnostics,
            generation,
            Some(&previous),
            Some(&self.shared.clients),
        );
        self.shared.table.store(Arc::new(table));
        self.shared.ready.store(true, Ordering::Release);
        let global = &self.shared.global;
        global.config_reloads.fetch_add(1, Ordering::Relaxed);
        global.config_build.observe(translation + started.elapsed());
        generation
    }

    /// The table requests currently see.
    pub fn table(&self) -> Arc<Table> {
        self.shared.table.load_full()
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        metrics::render(self.table(), self.shared.global.clone())
    }

    /// True once a first configuration has been published.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    /// Halve the session loads that bounded placement compares, every [`LOAD_HALF_LIFE`], so they
    /// reflect recent sessions. Runs until the proxy is dropped.
    fn spawn_load_decay(&self) {
        // Once per proxy, however many listeners and workers serve it.
        if self.shared.decaying.swap(true, Ordering::Relaxed) {
            return;
        }
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LOAD_HALF_LIFE);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                for b in &shared.table.load().backends {
                    b.balancer.decay();
                }
            }
        });
    }

    /// Serve proxied HTTP on `listener` until `shutdown` resolves.
    pub async fn serve_http(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.spawn_load_decay();
        self.serve_proxied(listener, None, shutdown).await;
    }

    /// The TLS configuration of the HTTPS listener: certificates chosen by SNI from the current
    /// table, a self-signed default one (made here) for the rest.
    pub fn tls_config(&self) -> Result<Arc<ServerConfig>, String> {
        let default = tls::default_certificate()
            .map_err(|e| format!("cannot make the default certificate: {e}"))?;
        tls::server_config(&self.shared, default).map_err(|e| e.to_string())
    }

    /// Serve proxied HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on `listener` until `shutdown`.
    pub async fn serve_https(
        &self,
        listener: TcpListener,
        config: Arc<ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) {
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        self.serve_proxied(listener, Some(acceptor), shutdown).await;
    }

    async fn serve_proxied(
        &self,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) {
        let local_port = listener.local_addr().map_or(0, |a| a.port());
        let port_value = http::HeaderValue::from(local_port);
        let shared = self.shared.clone();
        let secure = tls.is_some();
        serve(
            listener,
            tls,
            shutdown,
            self.shared.config.server,
            move |remote| {
                let shared = shared.clone();
                // Header values that are the same for every request of the connection.
                let conn = Arc::new(handler::Connection::new(remote, port_value.clone(), secure));
                hyper::service::service_fn(move |req| {
                    handler::handle(shared.clone(), conn.clone(), req)
                })
            },
        )
        .await;
    }

    /// Serve the admin endpoints (`/healthz`, `/readyz`, `/status`, `/snapshot`) until `shutdown`.
    pub async fn serve_admin(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let proxy = self.clone();
        let options = ServerOptions {
            header_read_timeout: Duration::from_secs(10),
            ..self.shared.config.server
        };
        serve(listener, None, shutdown, options, move |_| {
            let proxy = proxy.clone();
            hyper::service::service_fn(move |req| admin::handle(proxy.clone(), req))
        })
        .await;
    }
}

/// Settings of an accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// Time a client has to send a complete request head.
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
    make_service: impl Fn(SocketAddr) -> S,
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
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Reap finished connections so the set only holds open ones.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = make_service(remote);
        let builder = builder.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let Some(acceptor) = tls else {
                return drive(&builder, stream, service, stop, remote).await;
            };
            match tokio::time::timeout(options.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => drive(&builder, stream, service, stop, remote).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %remote, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
    // Stop accepting, let open connections finish their in-flight requests (idle keep-alive
    // connections close at once), and cut whatever is still running after the grace period.
    drop(listener);
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

/// Serve one accepted connection until it ends, or, once `stop` fires, until its in-flight
/// requests are done.
async fn drive<I, S, B>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    mut stop: watch::Receiver<bool>,
    remote: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: ResponseBody,
{
    // With upgrades: a `101 Switching Protocols` hands the connection to the request (WebSocket).
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        // The connection first: no random branch order per poll.
        biased;
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
        }
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
