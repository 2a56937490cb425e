//! The accept loop every listener runs (proxy, admin, the demo's pods): hyper's HTTP/1 or HTTP/2
//! connection (HTTP/1.1, and HTTP/2 with prior knowledge or, over TLS, by ALPN), the limits of a
//! connection's life, the number of open connections, and graceful shutdown with a grace period.
//!
//! A connection's limits are nginx's ([`ConnectionLimits`], read when it is accepted; a proxied
//! listener's come from the current table, so the ConfigMap changes them for new connections):
//! the TLS handshake, and then the first request head, whatever the protocol (the bytes that tell
//! HTTP/1 from HTTP/2, the HTTP/2 preface and first HEADERS), must each come within the header
//! timeout (`client_header_timeout`), as must each later HTTP/1 head from its first byte; a
//! connection with no request in flight is closed after the keep-alive timeout
//! (`keepalive_timeout`; HTTP/2: GOAWAY), and after `keepalive_requests` requests. One timer per
//! connection enforces them ([`connection`]); hyper's own HTTP/1 header timeout is off, as it
//! runs from the end of the previous response and so would bound idle time too. HTTP/2
//! connections are pinged, so dead peers are found.
//!
//! Each accept loop keeps its connections' states. At `max_connections` it accepts a new
//! connection only when an idle one can be closed for it, and then closes the idle ones that have
//! waited longest (an eighth of them, 1 to 32, as nginx's `ngx_drain_connections`); with none
//! idle, new connections wait in the kernel's backlog until one ends or goes idle. When `accept`
//! fails for want of descriptors (EMFILE, ENFILE), it closes the same share before trying again.
//!
//! With the PROXY protocol on (`use-proxy-protocol`, [`ConnectionLimits::proxy_protocol`]), each
//! connection's header is read first, within its own timeout, before TLS and HTTP; a connection
//! without a valid one is closed without a word ([`proxy_protocol`]).
//!
//! Shutdown has two stages. While the listeners drain ([`Drain`], from the shutdown signal until
//! `shutdown` resolves: the `--shutdown-grace-period` in which load balancers take the replica
//! out), they still accept, but every HTTP/1 response says `Connection: close` and HTTP/2
//! connections get GOAWAY after their open streams, so clients move to other replicas between
//! requests instead of finding a connection closed under them. Then the listening socket is
//! closed, idle connections are closed, and in-flight requests have the grace period.

mod connection;
pub(crate) mod proxy_protocol;
mod serving;

use crate::tls::{Handshake, SniAcceptor, TlsFacts};
use connection::Conn;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serving::Protocols;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

/// How often an HTTP/2 connection is pinged, and how long the answer may take before the
/// connection is taken for dead.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// How long an accept loop at its limit waits before it looks again for idle connections to
/// close (when none ended meanwhile).
const SATURATED_RECHECK: Duration = Duration::from_millis(100);

/// The limits of a connection's life (nginx's names), fixed when it is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time a client has to complete the TLS handshake, then to send the first request head, then
    /// each later HTTP/1 head from its first byte (`client_header_timeout`).
    pub header_timeout: Duration,
    /// How long a connection with no request in flight is kept (`keepalive_timeout`): an HTTP/1
    /// connection between requests is closed, an HTTP/2 connection without open streams gets
    /// GOAWAY. Zero: no keep-alive (HTTP/1 responses carry `Connection: close`; HTTP/2 gets
    /// GOAWAY once idle).
    pub keepalive_timeout: Duration,
    /// The response to an HTTP/1 connection's request number this carries `Connection: close`;
    /// an HTTP/2 connection gets GOAWAY at it (`keepalive_requests`).
    pub keepalive_requests: u32,
    /// The largest request head, in bytes (nginx's `large_client_header_buffers` number × size):
    /// an HTTP/1 head that does not fit gets 431, an HTTP/2 header list 431 too.
    pub max_head: usize,
    /// With the PROXY protocol (`use-proxy-protocol`): the time a connection has to send its
    /// header (`proxy-protocol-header-timeout`), which every connection must begin with; `None`:
    /// connections begin with TLS or HTTP.
    pub proxy_protocol: Option<Duration>,
    /// An HTTP/1 header line that is not `token: value` is left out and the request served
    /// (ingress-nginx's `ignore-invalid-headers: "true"`, said explicitly); by default such a
    /// request gets 400: hyper's lenient parsing also leaves out a line with a control character
    /// in its value, which a front proxy may have read as framing.
    pub ignore_invalid_headers: bool,
}

/// The smallest head limit: hyper's read buffer cannot be smaller.
pub const MIN_HEAD: usize = 8 * 1024;

impl Default for ConnectionLimits {
    /// nginx's defaults, and ingress-nginx's (`client-header-timeout`, `keep-alive`,
    /// `keep-alive-requests`, `large-client-header-buffers` of 4 × 8 KiB).
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            keepalive_requests: 1000,
            max_head: 4 * 8 * 1024,
            proxy_protocol: None,
            ignore_invalid_headers: false,
        }
    }
}

/// Who a connection comes from: its socket's peer and, with the PROXY protocol, what the header
/// said.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub socket: SocketAddr,
    /// `None`: the listener does not read the PROXY protocol.
    pub proxy: Option<proxy_protocol::Header>,
}

/// Settings of an accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// The limits of its connections (a proxied listener's: unless the table's policy says).
    pub limits: ConnectionLimits,
    /// How long a client streaming a request body may send nothing (nginx's
    /// `client_body_timeout`); then it gets 408.
    pub client_body_timeout: Duration,
    /// After shutdown is asked for, how long in-flight requests may take to finish.
    pub shutdown_grace: Duration,
    /// Open connections the loop holds at most: at it, idle ones are closed for new ones, and
    /// with none idle new ones wait in the backlog.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            limits: ConnectionLimits::default(),
            client_body_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_connections: usize::MAX,
        }
    }
}

/// The soft limit of open files of this process (`RLIMIT_NOFILE`, read from `/proc/self/limits`);
/// `None`: unlimited, or not known (not Linux).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

/// The soft limit of the `Max open files` line of a `/proc/PID/limits` text.
fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.strip_prefix("Max open files")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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

/// Put in a response's extensions by a service: kept until the response body ends (or is
/// dropped), then dropped (`limit-connections`' count of a request in flight).
#[derive(Clone)]
pub struct HeldUntilBodyEnds(
    // Never read: what matters is when it drops.
    #[allow(dead_code)] pub std::sync::Arc<dyn std::any::Any + Send + Sync>,
);

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
/// served by hyper (HTTP/1.1, and HTTP/2 by its preface: with prior knowledge, or over TLS after
/// ALPN) within `options.limits`; with `tls`, the handshake must complete within the header
/// timeout. When `shutdown` resolves, accepting stops and the call returns once open connections
/// have finished their in-flight requests, or the grace period is over.
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
    let limits = options.limits;
    serve_closing(
        listener,
        tls.map(Tls::Fixed),
        shutdown,
        Drain::new(),
        options,
        move || limits,
        move |peer: Peer, _| make_service(peer.socket),
        || {},
    )
    .await;
}

/// The first stage of shutdown, shared by every accept loop of a proxy: once [`Drain::start`]ed,
/// connections are asked to close between requests (`Connection: close`, GOAWAY) while the
/// listeners still accept.
#[derive(Clone)]
pub(crate) struct Drain {
    /// Read per request: no lock.
    started: Arc<AtomicBool>,
    /// Wakes the connections' tasks (HTTP/2: GOAWAY at once).
    changed: watch::Receiver<bool>,
    tx: watch::Sender<bool>,
}

impl Drain {
    pub(crate) fn new() -> Self {
        let (tx, changed) = watch::channel(false);
        Self {
            started: Arc::default(),
            changed,
            tx,
        }
    }

    pub(crate) fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.tx.send_replace(true);
    }

    pub(crate) fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
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
    async fn accept(&self, stream: tokio::net::TcpStream) -> std::io::Result<Handshake> {
        match self {
            Tls::Fixed(acceptor) => Ok(Handshake::Tls(
                acceptor.accept(stream).await?,
                TlsFacts::default(),
            )),
            Tls::BySni(acceptor) => acceptor.accept(stream).await,
        }
    }
}

/// [`serve`], each connection with the limits `limits` gives when it is accepted, calling
/// `closed` as soon as the listening socket is closed (when `shutdown` resolves, before the open
/// connections drain): whoever binds the same port again next (a Gateway listener turned from
/// HTTP to HTTPS) waits for it. Each connection's service is made once its handshake is done,
/// with what the handshake told, and after the PROXY protocol header when the limits ask for one.
/// Once `drain` starts, each response is its connection's last.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_closing<S, B>(
    listener: TcpListener,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    drain: Drain,
    options: ServerOptions,
    limits: impl Fn() -> ConnectionLimits,
    make_service: impl Fn(Peer, TlsFacts) -> S + Send + Sync + 'static,
    closed: impl FnOnce(),
) where
    S: HttpService<B>,
    B: ResponseBody,
{
    let mut builders = Builders::default();
    let make_service = Arc::new(make_service);
    // The drain starting wakes the open connections (HTTP/2: GOAWAY at once); looked at once, as
    // it only ever starts.
    let mut drain_changed = drain.changed.clone();
    let mut drain_seen = false;
    let mut open = Registry::new();
    let mut failures = AcceptFailures::default();
    let mut saturated = Saturated::default();
    tokio::pin!(shutdown);
    loop {
        open.reap();
        if open.len() >= options.max_connections {
            // At the limit: accept only when an idle connection can be closed for the new one;
            // else (or while those asked are closing) new connections wait in the backlog.
            let idle = open.any_idle();
            if idle != Some(true) {
                saturated.record(idle.is_none(), open.len());
                tokio::select! {
                    () = open.closed() => {}
                    () = tokio::time::sleep(SATURATED_RECHECK) => {}
                    _ = drain_changed.changed(), if !drain_seen => {
                        drain_seen = true;
                        open.drain_started();
                    }
                    () = &mut shutdown => break,
                }
                continue;
            }
        }
        let (mut stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning; out of
                    // descriptors, close idle connections first, as at the limit.
                    failures.record(&e, open.len());
                    if is_descriptor_shortage(&e) {
                        open.reclaim();
                    }
                    tokio::select! {
                        () = open.closed() => {}
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                    continue;
                }
            },
            _ = drain_changed.changed(), if !drain_seen => {
                drain_seen = true;
                open.drain_started();
                continue;
            }
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let limits = limits();
        let builder = builders.get(&limits);
        let conn = Arc::new(Conn::new(open.epoch));
        let state = conn.clone();
        if open.len() >= options.max_connections {
            // Room for this one.
            open.reclaim();
        }
        let draining = drain.started.clone();
        if tls.is_none() && limits.proxy_protocol.is_none() {
            // A plain connection's task is its connection's future, nothing more.
            let peer = Peer {
                socket: remote,
                proxy: None,
            };
            let service = make_service(peer, TlsFacts::default());
            let task = connection::drive(&builder, stream, service, draining, conn, limits, remote);
            open.spawn(state, task);
            continue;
        }
        let make_service = make_service.clone();
        let tls = tls.clone();
        open.spawn(state, async move {
            let header_timeout = limits.header_timeout;
            let mut peer = Peer {
                socket: remote,
                proxy: None,
            };
            if let Some(timeout) = limits.proxy_protocol {
                // Fails closed: no valid header in time, no TLS and no HTTP, not a byte answered.
                // Boxed, as the handshake and the relayed connection below: once the connection
                // serves, its task holds little more than its state (`connection::Driven`).
                let header = Box::pin(proxy_protocol::read(&mut stream));
                match tokio::time::timeout(timeout, header).await {
                    Ok(Ok(header)) => peer.proxy = Some(header),
                    Ok(Err(e)) => {
                        return tracing::debug!(error = %e, %remote, "PROXY protocol, closed")
                    }
                    Err(_) => {
                        return tracing::debug!(%remote, "no PROXY protocol header in time, closed")
                    }
                }
            }
            let Some(tls) = tls else {
                let service = make_service(peer, TlsFacts::default());
                return connection::drive(
                    &builder, stream, service, draining, conn, limits, remote,
                )
                .await;
            };
            match tokio::time::timeout(header_timeout, Box::pin(tls.accept(stream))).await {
                Ok(Ok(Handshake::Tls(stream, facts))) => {
                    let service = make_service(peer, facts);
                    connection::drive(&builder, stream, service, draining, conn, limits, remote)
                        .await
                }
                // Counted among the open connections until both sides close; never idle, so
                // never closed for a new one. At shutdown it has the grace period, as a busy
                // connection.
                Ok(Ok(Handshake::Relay(relay))) => Box::pin(relay.run(remote)).await,
                Ok(Err(e)) => tracing::debug!(error = %e, %remote, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
    // Stop accepting, let open connections finish their in-flight requests (idle keep-alive
    // connections close at once), and cut whatever is still running after the grace period.
    drop(listener);
    closed();
    open.stop();
    let drained = tokio::time::timeout(options.shutdown_grace, open.drain()).await;
    if drained.is_err() {
        tracing::warn!(
            open = open.len(),
            "grace period over, closing the connections still open"
        );
    }
}

/// What makes two hyper connection builders differ: keep-alive (on or off), the head limit,
/// invalid header lines ignored.
type BuilderKey = (bool, usize, bool);

/// hyper's connection builders of the limits connections were accepted with lately: one per
/// [`BuilderKey`], made when limits first ask for it (a ConfigMap change), not per connection.
#[derive(Default)]
struct Builders(Vec<(BuilderKey, Arc<Protocols>)>);

impl Builders {
    /// More limits than this in a row: the oldest builder is dropped.
    const KEPT: usize = 4;

    fn get(&mut self, limits: &ConnectionLimits) -> Arc<Protocols> {
        let key = (
            !limits.keepalive_timeout.is_zero(),
            limits.max_head.max(MIN_HEAD),
            limits.ignore_invalid_headers,
        );
        if let Some((_, b)) = self.0.iter().find(|(k, _)| *k == key) {
            return b.clone();
        }
        if self.0.len() >= Self::KEPT {
            self.0.remove(0);
        }
        let b = Arc::new(builder(key));
        self.0.push((key, b.clone()));
        b
    }
}

/// hyper's connection builders: HTTP/1 with or without keep-alive, HTTP/2 pinged, heads up to
/// `max_head` bytes (at least [`MIN_HEAD`]), HTTP/1 header lines that are not `token: value`
/// left out or answered 400. (httparse, ignoring, leaves out a line with a control character in
/// its value too, where nginx takes it; NUL and a CR without LF are 400 either way.)
fn builder((keep_alive, max_head, ignore_invalid): BuilderKey) -> Protocols {
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        .max_buf_size(max_head.max(MIN_HEAD))
        // Off: it runs from the end of the previous response, so it would bound idle time too.
        // The connection's own timer bounds each head from its first byte (`connection`).
        .header_read_timeout(None)
        .keep_alive(keep_alive)
        .ignore_invalid_headers(ignore_invalid)
        // One buffer per write (`write`, not a two-part `writev`): a few % more requests per
        // second on small responses, the same CPU in total on large ones (measured with 64 KiB
        // and 1 MiB bodies).
        .writev(false);
    let mut h2 = http2::Builder::new(TokioExecutor::new());
    h2.timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
    Protocols { h1, h2 }
}

/// `accept` failed for want of descriptors: the process's (EMFILE) or the system's (ENFILE).
/// The numbers are the same on Linux, the BSDs and macOS.
fn is_descriptor_shortage(e: &std::io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(e.raw_os_error(), Some(ENFILE | EMFILE))
}

/// The open connections of an accept loop: their tasks, and their states by task, which the loop
/// looks at only to close idle ones (no bookkeeping per request).
struct Registry {
    /// The origin of the connections' instants.
    epoch: Instant,
    tasks: JoinSet<()>,
    states: HashMap<Id, Arc<Conn>>,
}

impl Registry {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            tasks: JoinSet::new(),
            states: HashMap::new(),
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn spawn(&mut self, state: Arc<Conn>, task: impl Future<Output = ()> + Send + 'static) {
        let id = self.tasks.spawn(task).id();
        self.states.insert(id, state);
    }

    /// Forget the connections that have ended.
    fn reap(&mut self) {
        while let Some(ended) = self.tasks.try_join_next_with_id() {
            self.forget(ended);
        }
    }

    fn forget(&mut self, ended: Result<(Id, ()), tokio::task::JoinError>) {
        let id = match ended {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.states.remove(&id);
    }

    /// Resolves when a connection has ended (never, with none open).
    async fn closed(&mut self) {
        match self.tasks.join_next_with_id().await {
            Some(ended) => self.forget(ended),
            None => std::future::pending().await,
        }
    }

    /// Tell every connection to end after its requests in flight.
    fn stop(&self) {
        for c in self.states.values() {
            c.stop();
        }
    }

    /// Tell every connection the listener drains (HTTP/2: GOAWAY).
    fn drain_started(&self) {
        for c in self.states.values() {
            c.drain();
        }
    }

    /// Wait for every connection to end.
    async fn drain(&mut self) {
        while let Some(ended) = self.tasks.join_next_with_id().await {
            self.forget(ended);
        }
    }

    /// Whether a connection is idle; `None`: some asked to close are still closing.
    fn any_idle(&self) -> Option<bool> {
        let mut idle = false;
        for c in self.states.values() {
            if c.reclaiming() {
                return None;
            }
            idle = idle || c.idle_since().is_some();
        }
        Some(idle)
    }

    /// Ask the idle connections that have waited longest to close (an eighth of the idle ones, 1
    /// to 32, as nginx's `ngx_drain_connections`), unless some asked before are still closing.
    fn reclaim(&mut self) -> Reclaimed {
        if self.states.values().any(|c| c.reclaiming()) {
            return Reclaimed::Pending;
        }
        let mut idle: Vec<(u64, &Arc<Conn>)> = self
            .states
            .values()
            .filter_map(|c| Some((c.idle_since()?, c)))
            .collect();
        let n = reclaim_batch(idle.len());
        if n == 0 {
            return Reclaimed::NoneIdle;
        }
        if n < idle.len() {
            idle.select_nth_unstable_by_key(n - 1, |(since, _)| *since);
            idle.truncate(n);
        }
        for (_, c) in idle {
            c.reclaim();
        }
        Reclaimed::Asked(n)
    }
}

/// What [`Registry::reclaim`] did.
#[derive(Debug, PartialEq, Eq)]
enum Reclaimed {
    /// Asked this many idle connections to close.
    Asked(usize),
    /// Nothing: connections asked before are still closing.
    Pending,
    /// Nothing: no connection is idle.
    NoneIdle,
}

/// How many of `idle` connections are closed at once for new ones: nginx's share.
fn reclaim_batch(idle: usize) -> usize {
    if idle == 0 {
        0
    } else {
        (idle / 8).clamp(1, 32)
    }
}

/// Failed accepts, logged at most once per [`AcceptFailures::EVERY`] with how many there were:
/// out of descriptors, a warning every 50 ms would flood the log when it matters most.
#[derive(Default)]
struct AcceptFailures {
    last: Option<Instant>,
    since: u64,
}

impl AcceptFailures {
    const EVERY: Duration = Duration::from_secs(10);

    fn record(&mut self, error: &std::io::Error, open: usize) {
        self.since += 1;
        let now = Instant::now();
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

/// Times the loop was at its connection limit with nothing idle to close, logged at most once per
/// [`AcceptFailures::EVERY`].
#[derive(Default)]
struct Saturated {
    last: Option<Instant>,
}

impl Saturated {
    /// `closing`: idle connections asked to close are closing (no warning).
    fn record(&mut self, closing: bool, open: usize) {
        let now = Instant::now();
        if closing
            || self
                .last
                .is_some_and(|at| now.duration_since(at) < AcceptFailures::EVERY)
        {
            return;
        }
        tracing::warn!(
            open_connections = open,
            "at the connection limit (--max-connections) with none idle: new connections wait"
        );
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests;
