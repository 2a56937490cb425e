//! The serving runtime shared by the commands that proxy traffic (`serve`, `controller`, `demo`):
//! their common options ([`Common`]), and [`start`]: the cookie key, the listeners (one pair per
//! worker on a shared port, SO_REUSEPORT), the worker threads each with a runtime of its own, the
//! admin endpoints, the Gateway listeners' sockets ([`crate::gateway`], on this runtime), the line
//! that says Remora is serving ([`Running::announce`]), and the drain after shutdown
//! ([`Running::drained`]). Where the objects come from is each command's own
//! business; they all end in a [`crate::pipeline::Pipeline`] fed with [`options`].

use crate::shutdown::Shutdown;
use anyhow::{bail, Context};
use proxy::{Proxy, ProxyConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tokio::net::{TcpListener, TcpSocket};

/// Options shared by `serve`, `controller` and `demo`.
#[derive(clap::Args)]
pub struct Common {
    /// Address of the admin endpoints (/healthz, /readyz, /status, /snapshot).
    #[arg(long, default_value = "127.0.0.1:10254", value_name = "ADDR")]
    pub admin: SocketAddr,
    /// Threads serving proxied traffic, each with its own runtime, listening sockets
    /// (SO_REUSEPORT) and upstream connections; with more than one, the control plane and admin
    /// endpoints run on a thread of their own [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub workers: Option<u16>,
    /// Serve only Ingresses of this class (spec.ingressClassName or the kubernetes.io/ingress.class
    /// annotation). Repeatable. Without it, every Ingress is served.
    #[arg(long = "ingress-class", value_name = "NAME")]
    pub ingress_classes: Vec<String>,
    /// File holding the secret that signs session cookies. Replicas given the same secret honour
    /// each other's cookies. Without it, a random key is used for the life of the process.
    #[arg(long, value_name = "FILE")]
    pub cookie_secret_file: Option<PathBuf>,
    /// Bounded load for balanced affinity: a new session never goes to an endpoint above this
    /// many times the mean (0 turns the bound off). Per Ingress:
    /// `remora.dev/session-balance-factor`.
    #[arg(long, default_value_t = 1.25, value_name = "FACTOR", value_parser = balance_factor)]
    pub session_balance_factor: f64,
    /// Redirect plain HTTP to HTTPS (308) on hosts with TLS, unless an Ingress says
    /// `ssl-redirect: "false"` (ingress-nginx's default too).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub default_ssl_redirect: bool,
    /// Write a JSON line per request (time, client, method, host, path, status, duration,
    /// Ingress, Service, upstream, tries, session outcome, request id) to FILE, or `-` for stdout.
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,
    /// How long a client streaming a request body may send nothing before it gets 408 (nginx's
    /// client_body_timeout).
    #[arg(long, default_value_t = 60, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub client_body_timeout: u64,
    /// How long a client may take to complete the TLS handshake, then the first request head,
    /// then each later HTTP/1 head from its first byte (nginx's client_header_timeout): a
    /// connection that sends nothing, or only part of a head, is closed. ConfigMap:
    /// client-header-timeout.
    #[arg(long, default_value_t = 60, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub client_header_timeout: u64,
    /// How long a client connection with no request in flight is kept (nginx's
    /// keepalive_timeout): an idle HTTP/1 connection is closed, an HTTP/2 connection without
    /// open streams gets GOAWAY. 0: no keep-alive (HTTP/1 responses carry `Connection: close`).
    /// ConfigMap: keep-alive.
    #[arg(long, default_value_t = 75, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub keepalive_timeout: u64,
    /// Requests one client connection may make (nginx's keepalive_requests): the response to
    /// the last carries `Connection: close` (HTTP/2: GOAWAY). ConfigMap: keep-alive-requests.
    #[arg(long, default_value_t = 1000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub keepalive_requests: u32,
    /// Seconds between the shutdown signal (SIGTERM, Ctrl-C) and the listeners closing
    /// (ingress-nginx's flag of the same name, default 0 too). Meanwhile /readyz answers 503, so
    /// the replica is taken out of its Service, the listeners still accept, and every HTTP/1
    /// response says `Connection: close` (HTTP/2: GOAWAY), so clients leave between requests
    /// rather than find their kept-alive connection closed. A second signal ends it early. Then
    /// in-flight requests have 10 s to finish.
    #[arg(long, default_value_t = 0, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub shutdown_grace_period: u64,
    /// Open client connections each listening socket of each worker holds at most (the HTTP and
    /// HTTPS sockets, Gateway listeners and the admin port each count their own). At it, the
    /// idle connections that waited longest are closed for new ones, as when out of file
    /// descriptors; with none idle, new connections wait in the kernel's backlog [default: the
    /// open files soft limit (RLIMIT_NOFILE) / 4 / --workers, at least 16: half the descriptors
    /// for the clients of the workers' HTTP and HTTPS sockets, half for upstream connections and
    /// the rest; no limit when it is unlimited].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// A Service (its first port) that answers the `custom-http-errors` of Ingresses without a
    /// `default-backend` annotation (ingress-nginx's flag of the same name).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = kube_provider::namespaced_name)]
    pub default_backend_service: Option<(String, String)>,
    /// Pass request headers whose names have underscores to the pods (ingress-nginx's
    /// enable-underscores-in-headers). By default they are dropped, as nginx does: CGI-style pods
    /// read X_Forwarded_For as X-Forwarded-For.
    #[arg(long)]
    pub enable_underscores_in_headers: bool,
    /// A file holding a token (one line) that /status and /snapshot of the admin port require
    /// (`Authorization: Bearer TOKEN`; the dashboard: open it as /#token=TOKEN). /healthz,
    /// /readyz and /metrics stay open for probes and Prometheus.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Pass the pods' Server header to clients (ingress-nginx's allow-backend-server-header). By
    /// default it is dropped, as nginx does.
    #[arg(long)]
    pub allow_backend_server_header: bool,
    /// The port HTTP to HTTPS redirects point at [default: the port of --listen-https]. Set 443
    /// when a load balancer maps 443 to --listen-https.
    #[arg(long, value_name = "PORT")]
    pub https_redirect_port: Option<u16>,
    /// Let annotations name objects of other namespaces (`auth-secret: namespace/name`), as
    /// ingress-nginx's allow-cross-namespace-resources. By default an Ingress that does is denied
    /// (503), as ingress-nginx denies it.
    #[arg(long)]
    pub allow_cross_namespace_resources: bool,
    /// Relay the TLS connections whose SNI names a host of an Ingress with `ssl-passthrough:
    /// "true"` to its pods as they are, not terminated (ingress-nginx's flag of the same name):
    /// the HTTPS listener then reads each ClientHello before the handshake. Without it, the
    /// annotation has no effect (a warning per Ingress says so).
    #[arg(long)]
    pub enable_ssl_passthrough: bool,
    /// The ingress-nginx ConfigMap of global settings: the defaults of proxy-body-size, the proxy
    /// timeouts, proxy-next-upstream, ssl-redirect..., which annotations override, and
    /// limit-req-status-code, allow-backend-server-header, enable-underscores-in-headers,
    /// keep-alive, keep-alive-requests, client-header-timeout (over their flags; the last three
    /// for the connections accepted after a change). A manifest in the files (serve, demo), watched in the cluster (controller).
    /// Without it, ingress-nginx's defaults.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = kube_provider::namespaced_name)]
    pub configmap: Option<(String, String)>,
    /// The address Gateway API listeners are bound on, each at its own port [default: the
    /// address of --listen-http]. A listener whose port is Remora's own (--listen-http,
    /// --listen-https, --admin) at an overlapping address is not served: it is logged and shown
    /// in /status, as a port that cannot be bound.
    #[arg(long, value_name = "IP", env = "REMORA_GATEWAY_BIND_ADDRESS")]
    pub gateway_bind_address: Option<IpAddr>,
    /// The `controllerName` of the GatewayClasses whose Gateways Remora serves (Gateway API).
    #[arg(long, value_name = "NAME", default_value = translate::DEFAULT_GATEWAY_CONTROLLER)]
    pub gateway_controller_name: String,
    /// Besides the remora_* series, /metrics also has the request series of another
    /// controller, under its names and labels: `ingress-nginx` (nginx_ingress_controller_requests,
    /// ..._request_duration_seconds, ..._header_duration_seconds, ..._request_size,
    /// ..._response_size, and its reload gauges), so its dashboards and alerts keep working.
    #[arg(long, value_name = "CONTROLLER", value_enum)]
    pub metrics_compat: Option<MetricsCompat>,
}

/// The controllers whose metrics `--metrics-compat` can also export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsCompat {
    IngressNginx,
}

fn balance_factor(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("{s} is not a number"))?;
    if f == 0.0 || (1.0..=100.0).contains(&f) {
        Ok(f)
    } else {
        Err("expected 0 (off) or a factor from 1 to 100".to_owned())
    }
}

impl Common {
    /// `--shutdown-grace-period`.
    pub fn shutdown_grace_period(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_period)
    }

    /// Worker threads serving proxied traffic.
    pub fn workers(&self) -> usize {
        self.workers.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get()),
            usize::from,
        )
    }

    /// Open connections per accept loop: `--max-connections`, else a share of the descriptor
    /// limit (see the flag).
    pub fn max_connections(&self) -> usize {
        match self.max_connections {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => default_max_connections(proxy::open_files_limit(), self.workers()),
        }
    }
}

/// `--max-connections` when not given: a quarter of the open files soft limit over the workers
/// (each has an HTTP and an HTTPS socket; the other half of the limit is for upstream
/// connections), at least 16; no limit when the limit is not known.
fn default_max_connections(open_files: Option<u64>, workers: usize) -> usize {
    let Some(limit) = open_files else {
        return usize::MAX;
    };
    let workers = u64::try_from(workers.max(1)).unwrap_or(u64::MAX);
    usize::try_from((limit / 4 / workers).max(16)).unwrap_or(usize::MAX)
}

/// Bound listeners and the running proxy, shared by `serve`, `controller` and `demo`.
pub struct Running {
    pub proxy: Proxy,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    /// Where the pipeline says which Gateway listeners to serve.
    pub gateways: crate::gateway::Gateways,
    servers: Vec<tokio::task::JoinHandle<()>>,
    /// Lets worker runtimes stop once every worker has drained: until then they keep driving
    /// the upstream connections other workers may still be using.
    release: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Print the line tests and scripts wait for: everything is bound and a configuration is
    /// served.
    pub fn announce(&self) {
        println!(
            "remora: serving http on {}, https on {} (admin on {})",
            self.http, self.https, self.admin
        );
    }

    /// Wait for the servers to finish after shutdown (in-flight requests complete, bounded by the
    /// grace period).
    pub async fn drained(self) {
        for s in self.servers {
            let _ = s.await;
        }
        let _ = self.release.send(true);
    }
}

/// Bind the listeners and start serving (with an empty table until the first publish).
/// `controller_class`: the controller value of the IngressClasses served (a metrics label).
pub async fn start(
    listen_http: SocketAddr,
    listen_https: SocketAddr,
    common: &Common,
    controller_class: &str,
    shutdown: &Shutdown,
) -> anyhow::Result<Running> {
    let key = crate::secret::load(common.cookie_secret_file.as_deref())?;
    let workers = common.workers();
    let shared_port = workers > 1;
    let http = bind(listen_http, shared_port)
        .with_context(|| format!("cannot listen on {listen_http} (--listen-http)"))?;
    let https = bind(listen_https, shared_port)
        .with_context(|| format!("cannot listen on {listen_https} (--listen-https)"))?;
    let admin = TcpListener::bind(common.admin)
        .await
        .with_context(|| format!("cannot listen on {} (--admin)", common.admin))?;
    let (http_addr, https_addr, admin_addr) =
        (http.local_addr()?, https.local_addr()?, admin.local_addr()?);
    let mut config = ProxyConfig::new(key);
    config.https_redirect_port = common.https_redirect_port.unwrap_or(https_addr.port());
    config.server.client_body_timeout = std::time::Duration::from_secs(common.client_body_timeout);
    config.server.limits = proxy::ConnectionLimits {
        header_timeout: std::time::Duration::from_secs(common.client_header_timeout),
        keepalive_timeout: std::time::Duration::from_secs(common.keepalive_timeout),
        keepalive_requests: common.keepalive_requests,
        // Only the ConfigMap's `use-proxy-protocol` turns it on.
        proxy_protocol: None,
        ..proxy::ConnectionLimits::default()
    };
    config.server.max_connections = common.max_connections();
    config.underscores_in_headers = common.enable_underscores_in_headers;
    config.backend_server_header = common.allow_backend_server_header;
    // ingress-nginx's constant labels: the pod's namespace and name as the controller knows
    // them (the downward API's POD_NAMESPACE and POD_NAME, else what the pod tells).
    config.metrics_compat =
        common
            .metrics_compat
            .map(|MetricsCompat::IngressNginx| proxy::CompatConfig {
                controller_namespace: kube_provider::pod_namespace(None),
                controller_class: controller_class.to_owned(),
                controller_pod: kube_provider::pod_name(None).unwrap_or_default(),
            });
    if let Some(path) = &common.admin_token_file {
        let token = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --admin-token-file {}", path.display()))?;
        let token = token.trim();
        if token.is_empty() {
            bail!("--admin-token-file {} is empty", path.display());
        }
        config.admin_token = Some(token.to_owned());
    }
    let mut proxy = Proxy::new(config)?;
    if let Some(path) = &common.access_log {
        proxy = proxy.with_access_log(path.clone()).await?;
    }
    let tls = proxy.tls_config()?;
    let mut servers = Vec::new();
    let (release, released) = tokio::sync::watch::channel(false);
    // The workers' runtimes, for the Gateway sockets (none with one worker: this runtime).
    let mut runtimes = Vec::new();
    if workers == 1 {
        // Everything on this thread.
        let p = proxy.clone();
        let stop = shutdown.clone();
        servers.push(tokio::spawn(async move {
            p.serve_http(http, stop.wait()).await
        }));
        let p = proxy.clone();
        let tls = tls.clone();
        let stop = shutdown.clone();
        servers.push(tokio::spawn(async move {
            p.serve_https(https, tls, stop.wait()).await
        }));
    } else {
        // One pair of listening sockets per worker on the same ports: the kernel spreads new
        // connections over them, and each worker serves its own without handing anything over.
        let mut sockets = vec![(http.into_std()?, https.into_std()?)];
        for _ in 1..workers {
            sockets.push((
                bind(http_addr, true)?.into_std()?,
                bind(https_addr, true)?.into_std()?,
            ));
        }
        let mut starting = Vec::with_capacity(workers);
        for (i, (http, https)) in sockets.into_iter().enumerate() {
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            let (serving, started) = tokio::sync::oneshot::channel();
            let (p, tls, stop) = (proxy.clone(), tls.clone(), shutdown.clone());
            let released = released.clone();
            std::thread::Builder::new()
                .name(format!("remora-worker-{i}"))
                .spawn(move || worker(p, (http, https), tls, stop, serving, done, released))
                .context("cannot start a worker thread")?;
            starting.push(started);
            servers.push(tokio::spawn(async move {
                let _ = finished.await;
            }));
        }
        // Every worker accepts on its share of the port before Remora says it is serving: a
        // worker that could not start would leave its socket taking connections nobody accepts.
        for (i, started) in starting.into_iter().enumerate() {
            match started.await {
                Ok(Ok(runtime)) => runtimes.push(runtime),
                Ok(Err(e)) => anyhow::bail!("worker {i} cannot serve: {e}"),
                Err(_) => anyhow::bail!("worker {i} stopped while starting"),
            }
        }
    }
    let p = proxy.clone();
    let stop = shutdown.clone();
    servers.push(tokio::spawn(async move {
        p.serve_admin(admin, stop.wait()).await
    }));
    // The first stage of shutdown: the proxied listeners drain until `wait` closes them.
    let p = proxy.clone();
    let draining = shutdown.clone();
    tokio::spawn(async move {
        draining.draining().await;
        p.drain();
    });
    let config = crate::gateway::Config {
        bind: common
            .gateway_bind_address
            .unwrap_or_else(|| listen_http.ip()),
        reserved: vec![
            (http_addr, "--listen-http"),
            (https_addr, "--listen-https"),
            (admin_addr, "--admin"),
        ],
        workers: runtimes,
    };
    let (gateways, sockets) = crate::gateway::start(proxy.clone(), config, shutdown.clone());
    servers.push(sockets);
    Ok(Running {
        proxy,
        http: http_addr,
        https: https_addr,
        admin: admin_addr,
        gateways,
        servers,
        release,
    })
}

/// A listening socket; `shared_port`: other sockets may listen on the same port (SO_REUSEPORT),
/// one per worker.
pub(crate) fn bind(addr: SocketAddr, shared_port: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if shared_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// One worker thread: its own current-thread runtime serving its HTTP and HTTPS sockets until
/// shutdown has drained them, then `done`; the runtime keeps running until `released` (the
/// connections it drives may serve other workers' last requests, and it serves a socket of each
/// Gateway listener). `serving` says once it accepts, with a handle of its runtime (or why it
/// cannot).
fn worker(
    proxy: Proxy,
    (http, https): (std::net::TcpListener, std::net::TcpListener),
    tls: std::sync::Arc<proxy::ServerConfig>,
    stop: Shutdown,
    serving: tokio::sync::oneshot::Sender<Result<tokio::runtime::Handle, String>>,
    done: tokio::sync::oneshot::Sender<()>,
    mut released: tokio::sync::watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = serving.send(Err(format!("cannot start its runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        match (TcpListener::from_std(http), TcpListener::from_std(https)) {
            (Ok(http), Ok(https)) => {
                let _ = serving.send(Ok(tokio::runtime::Handle::current()));
                tokio::join!(
                    proxy.serve_http(http, stop.clone().wait()),
                    proxy.serve_https(https, tls, stop.wait()),
                );
            }
            (Err(e), _) | (_, Err(e)) => {
                let _ = serving.send(Err(format!("cannot listen: {e}")));
                return;
            }
        }
        let _ = done.send(());
        let _ = released.wait_for(|r| *r).await;
    });
}

/// The translation options the common flags set.
pub fn options(common: &Common) -> translate::Options {
    translate::Options {
        ingress_classes: common.ingress_classes.clone(),
        controller: None,
        watch_ingress_without_class: false,
        session_balance_factor: (common.session_balance_factor >= 1.0)
            .then(|| (common.session_balance_factor * 100.0).round() as u32),
        default_ssl_redirect: common.default_ssl_redirect,
        allow_cross_namespace_resources: common.allow_cross_namespace_resources,
        configmap: common.configmap.clone(),
        gateway_controller: common.gateway_controller_name.clone(),
        default_backend_service: common.default_backend_service.clone(),
        enable_ssl_passthrough: common.enable_ssl_passthrough,
    }
}

#[cfg(test)]
mod tests {
    use super::default_max_connections;

    #[test]
    fn max_connections_share_the_descriptor_limit() {
        // ulimit -n 1024, 2 workers: 128 per socket, 2 sockets per worker: 512 for clients.
        assert_eq!(default_max_connections(Some(1024), 2), 128);
        assert_eq!(default_max_connections(Some(1_048_576), 1), 262_144);
        assert_eq!(default_max_connections(Some(64), 4), 16, "at least 16");
        assert_eq!(default_max_connections(None, 2), usize::MAX, "unlimited");
        assert_eq!(default_max_connections(Some(1024), 0), 256);
    }
}
