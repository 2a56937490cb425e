//! Remora's data path.
//!
//! [`Proxy`] owns the current routing [`table::Table`] behind an `ArcSwap`: providers call
//! [`Proxy::publish`] with each new snapshot (built off the request path), and every request does
//! exactly one atomic load of it. The request path itself is [`handler`]: a short list of phases,
//! each in its own module.
//!
//! The Ingress hosts are served on the sockets [`Proxy::serve_http`] and [`Proxy::serve_https`]
//! are given; each Gateway listener (a port of `Snapshot::listeners`) on a socket of its own
//! ([`Proxy::serve_gateway`]), whose connections route among that listener's hosts only. Which
//! Gateway sockets are bound is the caller's business; it records the ports it could not bind
//! with [`Proxy::set_listener_errors`], for status writers and `/status`.

mod access_log;
mod admin;
mod basic_auth;
mod body;
mod client_auth;
mod compat;
mod conditions;
mod cors;
mod digest_auth;
mod error;
mod expr;
mod external_auth;
mod filters;
mod h1;
mod handler;
mod headers;
mod limit;
mod metrics;
mod passthrough;
mod replace;
mod response;
mod server;
mod stats;
mod table;
mod timeout;
mod tls;
mod tunnel;
mod upstream;

use arc_swap::ArcSwap;
use balance::CookieKey;
use model::{Diagnostic, Snapshot};
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// Entry points for the fuzz targets of `fuzz/`, not an API: the data path's own parsing code run
/// over bytes in memory.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::h1::{read_in_memory as read_response, Error as ResponseError, InMemory};
    pub use crate::server::proxy_protocol::{
        parse as parse_proxy_header, read_in_memory as read_proxy_header, Header as ProxyHeader,
    };
}

pub use compat::CompatConfig;
pub use error::Error;
pub use server::{
    open_files_limit, serve, ConnectionLimits, HttpService, ResponseBody, ServerOptions,
};
pub use table::{ListenerId, Table};
pub use tls::{CertificateError, DEFAULT_CERTIFICATE_CN};
pub use tokio_rustls::rustls::ServerConfig;
pub use upstream::NoVerify;

/// Half-life of the per-endpoint session loads used for bounded balanced placement.
pub const LOAD_HALF_LIFE: Duration = Duration::from_secs(300);

/// Data-path settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Authenticates session cookies.
    pub cookie_key: CookieKey,
    /// Client-side limits and the shutdown grace period.
    pub server: ServerOptions,
    /// The HTTPS port clients are redirected to (`ssl-redirect`); 443 is left out of the URL.
    pub https_redirect_port: u16,
    /// With a token, the admin endpoints that show the configuration (`/status`, `/snapshot`)
    /// answer only requests that carry it (`Authorization: Bearer TOKEN`); the probes, `/metrics`
    /// and the dashboard page itself stay open.
    pub admin_token: Option<String>,
    /// Request headers whose names have underscores go to the pods (nginx's
    /// `underscores_in_headers`, ingress-nginx's `enable-underscores-in-headers`); by default
    /// they are dropped. The snapshot's `settings` (the ConfigMap) win when they say.
    pub underscores_in_headers: bool,
    /// The pods' `Server` header goes to clients (ingress-nginx's `allow-backend-server-header`);
    /// by default it is dropped, as nginx does. The snapshot's `settings` win when they say.
    pub backend_server_header: bool,
    /// `--metrics-compat ingress-nginx`: `/metrics` also has ingress-nginx's request series,
    /// with these constant labels.
    pub metrics_compat: Option<CompatConfig>,
}

impl ProxyConfig {
    pub fn new(cookie_key: CookieKey) -> Self {
        Self {
            cookie_key,
            server: ServerOptions::default(),
            https_redirect_port: 443,
            admin_token: None,
            underscores_in_headers: false,
            backend_server_header: false,
            metrics_compat: None,
        }
    }
}

/// A Gateway listener that is not served: its port could not be bound (in use, not permitted,
/// Remora's own port), so its hosts get no traffic until a later publish binds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenerError {
    pub port: u16,
    pub tls: bool,
    /// The address it was to listen on.
    pub address: SocketAddr,
    /// Why it is not served, for a person.
    pub reason: String,
}

/// The proxy: cheap to clone, all clones share one table.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

struct Shared {
    table: ArcSwap<Table>,
    global: Arc<stats::Global>,
    access_log: Option<access_log::AccessLog>,
    /// Upstream clients by protocol, connect timeout and upstream TLS settings (from the route's
    /// `Location`).
    clients: upstream::Clients,
    /// Idle connections of the lean HTTP/1 client (requests without a body to plain-HTTP pods).
    config: ProxyConfig,
    generation: AtomicU64,
    ready: AtomicBool,
    /// The task decaying session loads runs.
    decaying: AtomicBool,
    /// The self-signed certificate of handshakes no host's certificate answers, made once and
    /// shared by every HTTPS listener.
    default_certificate: OnceLock<Arc<rustls::sign::CertifiedKey>>,
    /// The Gateway listeners that could not be bound at the last reconciliation.
    listener_errors: ArcSwap<Vec<ListenerError>>,
    /// Shutdown's first stage, for every proxied listener.
    drain: server::Drain,
}

impl Proxy {
    /// # Errors
    /// [`Error::UpstreamTls`] when the TLS client configuration cannot be made.
    pub fn new(config: ProxyConfig) -> Result<Self, Error> {
        let clients = upstream::Clients::new().map_err(Error::UpstreamTls)?;
        Ok(Self {
            shared: Arc::new(Shared {
                table: ArcSwap::from_pointee(Table::empty().with_defaults(&config)),
                global: Arc::default(),
                access_log: None,
                clients,
                config,
                generation: AtomicU64::new(0),
                ready: AtomicBool::new(false),
                decaying: AtomicBool::new(false),
                default_certificate: OnceLock::new(),
                listener_errors: ArcSwap::default(),
                drain: server::Drain::new(),
            }),
        })
    }

    /// Write a JSON access log line per request to `path` (`-`: stdout). Call before serving.
    ///
    /// # Errors
    /// [`Error::AccessLog`] when the file cannot be opened, [`Error::AccessLogAfterStart`] when
    /// the proxy is already shared.
    pub async fn with_access_log(mut self, path: std::path::PathBuf) -> Result<Self, Error> {
        let log = match access_log::AccessLog::open(path.clone()).await {
            Ok(log) => log,
            Err(source) => return Err(Error::AccessLog { path, source }),
        };
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.access_log = Some(log),
            None => return Err(Error::AccessLogAfterStart),
        }
        Ok(self)
    }

    /// A configuration source failed to load (counted in `/metrics`).
    pub fn record_config_error(&self) {
        let global = &self.shared.global;
        global.config_reload_errors.fetch_add(1, Ordering::Relaxed);
        global.last_reload_failed.store(true, Ordering::Relaxed);
    }

    /// Every configuration source of a reload loaded (after [`Proxy::record_config_error`]: the
    /// reload is successful again).
    pub fn record_config_loaded(&self) {
        let global = &self.shared.global;
        global.last_reload_failed.store(false, Ordering::Relaxed);
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
        // The clients of tables gone since the last publish go (the current table holds its own).
        self.shared.clients.prune();
        let previous = self.shared.table.load();
        let table = Table::build(
            snapshot,
            diagnostics,
            generation,
            Some(&previous),
            Some(&self.shared.clients),
            self.shared.config.metrics_compat.is_some(),
        )
        .with_defaults(&self.shared.config);
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
        metrics::render(
            self.table(),
            self.shared.global.clone(),
            self.shared.config.metrics_compat.as_ref(),
        )
    }

    /// True once a first configuration has been published, until the listeners drain.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// Begin shutdown: the proxied listeners keep accepting, but every HTTP/1 response from now
    /// on says `Connection: close`, HTTP/2 connections get GOAWAY, and `/readyz` answers 503, so
    /// load balancers and clients move to other replicas before the listeners close.
    pub fn drain(&self) {
        self.shared.drain.start();
    }

    /// True once [`Proxy::drain`] was called.
    pub fn is_draining(&self) -> bool {
        self.shared.drain.started()
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

    /// The Gateway listeners not served, as the socket manager last recorded them.
    pub fn listener_errors(&self) -> Arc<Vec<ListenerError>> {
        self.shared.listener_errors.load_full()
    }

    /// Record the Gateway listeners that could not be bound (empty: all are served).
    pub fn set_listener_errors(&self, errors: Vec<ListenerError>) {
        self.shared.listener_errors.store(Arc::new(errors));
    }

    /// Serve proxied HTTP on `listener` until `shutdown` resolves.
    pub async fn serve_http(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.spawn_load_decay();
        self.serve_proxied(listener, None, ListenerId::Ingress, shutdown, || {})
            .await;
    }

    /// The self-signed default certificate, made at the first call.
    fn default_certificate(&self) -> Result<Arc<rustls::sign::CertifiedKey>, Error> {
        if let Some(c) = self.shared.default_certificate.get() {
            return Ok(c.clone());
        }
        let made = tls::default_certificate().map_err(Error::DefaultCertificate)?;
        Ok(self.shared.default_certificate.get_or_init(|| made).clone())
    }

    /// The TLS configuration of the HTTPS listener: certificates chosen by SNI from the current
    /// table's Ingress hosts, a self-signed default one for the rest.
    ///
    /// # Errors
    /// [`Error::DefaultCertificate`] or [`Error::ServerTls`] when either cannot be made.
    pub fn tls_config(&self) -> Result<Arc<ServerConfig>, Error> {
        let default = self.default_certificate()?;
        tls::server_config(&self.shared, default, ListenerId::Ingress).map_err(Error::ServerTls)
    }

    /// The TLS configuration of the Gateway HTTPS listener on `port`: certificates chosen by SNI
    /// among that listener's hosts in the current table (its catch-all host's for other names),
    /// the default one for the rest.
    ///
    /// # Errors
    /// As [`Proxy::tls_config`].
    pub fn gateway_tls_config(&self, port: u16) -> Result<Arc<ServerConfig>, Error> {
        let default = self.default_certificate()?;
        let listener = ListenerId::Gateway { port, tls: true };
        tls::server_config(&self.shared, default, listener).map_err(Error::ServerTls)
    }

    /// Serve the Gateway listener on `port` on `listener` (HTTPS with `tls`, from
    /// [`Proxy::gateway_tls_config`]) until `shutdown`: its connections are routed among that
    /// listener's hosts of the current table. `closed` is called once the socket no longer
    /// accepts (before the open connections drain).
    pub async fn serve_gateway(
        &self,
        listener: TcpListener,
        port: u16,
        tls: Option<Arc<ServerConfig>>,
        shutdown: impl Future<Output = ()>,
        closed: impl FnOnce(),
    ) {
        self.spawn_load_decay();
        let id = ListenerId::Gateway {
            port,
            tls: tls.is_some(),
        };
        let acceptor = tls.map(|c| server::Tls::Fixed(tokio_rustls::TlsAcceptor::from(c)));
        self.serve_proxied(listener, acceptor, id, shutdown, closed)
            .await;
    }

    /// Serve proxied HTTPS (HTTP/1.1 and HTTP/2 by ALPN) on `listener` until `shutdown`. The
    /// handshake of a host with client certificate authentication asks for one (the
    /// configuration is chosen by SNI, [`tls::SniAcceptor`]); `config` is every other's.
    pub async fn serve_https(
        &self,
        listener: TcpListener,
        config: Arc<ServerConfig>,
        shutdown: impl Future<Output = ()>,
    ) {
        let acceptor = server::Tls::BySni(Arc::new(tls::SniAcceptor::new(
            config,
            &self.shared,
            ListenerId::Ingress,
        )));
        self.serve_proxied(
            listener,
            Some(acceptor),
            ListenerId::Ingress,
            shutdown,
            || {},
        )
        .await;
    }

    async fn serve_proxied(
        &self,
        listener: TcpListener,
        tls: Option<server::Tls>,
        id: ListenerId,
        shutdown: impl Future<Output = ()>,
        closed: impl FnOnce(),
    ) {
        let local_port = listener.local_addr().map_or(0, |a| a.port());
        let port_value = http::HeaderValue::from(local_port);
        let shared = self.shared.clone();
        let table = self.shared.clone();
        let secure = tls.is_some();
        server::serve_closing(
            listener,
            tls,
            shutdown,
            self.shared.drain.clone(),
            self.shared.config.server,
            // The ConfigMap's limits (else the command line's), as the table says when accepted;
            // the PROXY protocol on the Ingress listeners only (ingress-nginx's ConfigMap).
            move || {
                let mut limits = table.table.load().policy.connection;
                if id != ListenerId::Ingress {
                    limits.proxy_protocol = None;
                }
                limits
            },
            move |peer: server::Peer, facts| {
                let shared = shared.clone();
                // Header values that are the same for every request of the connection.
                let mut conn =
                    handler::Connection::new(peer.socket, port_value.clone(), secure, id, facts);
                if let Some(header) = peer.proxy {
                    let table = shared.table.load();
                    let trusted = table.policy.proxy_protocol.as_ref();
                    conn = conn.proxied(header, trusted.map_or(&[], |p| &p.trusted));
                }
                let conn = Arc::new(conn);
                hyper::service::service_fn(move |req| {
                    handler::handle(shared.clone(), conn.clone(), req)
                })
            },
            closed,
        )
        .await;
    }

    /// Serve the admin endpoints (the dashboard at `/`, `/metrics`, `/healthz`, `/readyz`,
    /// `/status`, `/snapshot`) until `shutdown`.
    pub async fn serve_admin(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let proxy = self.clone();
        // Scrapes and probes are quick: 10 s for a head, or idle.
        let options = ServerOptions {
            limits: ConnectionLimits {
                header_timeout: Duration::from_secs(10),
                keepalive_timeout: Duration::from_secs(10),
                ..self.shared.config.server.limits
            },
            ..self.shared.config.server
        };
        serve(listener, None, shutdown, options, move |_| {
            let proxy = proxy.clone();
            hyper::service::service_fn(move |req| admin::handle(proxy.clone(), req))
        })
        .await;
    }
}
