//! The Gateway listeners' sockets: one per port of the current snapshot's `listeners`, bound at
//! `--gateway-bind-address:port`, plain HTTP or TLS, served on the control plane's runtime.
//!
//! After each publish the pipeline tells [`Gateways::want`] the listeners of the new snapshot; a
//! task of its own ([`start`]) reconciles them with the bound sockets: a new port is bound and
//! served, a port no longer wanted stops accepting (its connections drain, as at shutdown), a port
//! whose protocol changed is closed and bound again. What cannot be bound (in use, not permitted,
//! one of Remora's own ports) is logged with the address and the reason (once, while it lasts),
//! recorded in the proxy ([`proxy::Proxy::listener_errors`], shown in `/status`) and tried again
//! at the next publish.
//!
//! With several workers, each listener gets one socket per worker on the same port
//! (`SO_REUSEPORT`, as the Ingress sockets), served on that worker's runtime: the kernel spreads
//! the connections and Gateway traffic uses every core. With one worker, one socket on the
//! control plane's runtime, without `SO_REUSEPORT`. A listener on the port of `--listen-http`,
//! `--listen-https` or `--admin` at an overlapping address is refused before the kernel is
//! asked, with a reason that names the flag. It is not served on the Ingress socket of the same
//! port either: the Ingress and Gateway hosts stay apart.
//!
//! Each socket says when it accepts (`remora: gateway listener http on ADDR`) and when it no longer
//! does (`... closed`) on stdout, for tests and scripts to wait on.

use crate::shutdown::Shutdown;
use proxy::{ListenerError, Proxy};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// A Gateway listener as its socket sees it: the port, and whether it terminates TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub port: u16,
    pub tls: bool,
}

impl Want {
    fn scheme(self) -> &'static str {
        if self.tls {
            "https"
        } else {
            "http"
        }
    }
}

/// Where the Gateway sockets are bound, and the addresses they must not take.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--gateway-bind-address`.
    pub bind: IpAddr,
    /// Remora's own sockets, with the flag that sets each (`--listen-http`...).
    pub reserved: Vec<(SocketAddr, &'static str)>,
    /// The workers' runtimes, each serving a socket of every listener; empty with one worker
    /// (the sockets are then served on the runtime of [`start`]'s caller).
    pub workers: Vec<Handle>,
}

/// Where the pipeline says which listeners the current snapshot has, and the listeners not
/// served are told. Cheap to clone.
#[derive(Clone)]
pub struct Gateways {
    wanted: Arc<watch::Sender<Vec<Want>>>,
    errors: watch::Receiver<Vec<ListenerError>>,
}

impl Gateways {
    /// The listeners of the snapshot just published. Every call reconciles, even with the same
    /// listeners: ports that could not be bound are tried again.
    pub fn want(&self, listeners: &[model::Listener]) {
        let wanted = listeners
            .iter()
            .map(|l| Want {
                port: l.port,
                tls: l.tls,
            })
            .collect();
        self.wanted.send_replace(wanted);
    }

    /// The listeners whose port could not be bound, as of the last reconciliation; changes when
    /// they do (for the Gateway status writer).
    pub fn errors(&self) -> watch::Receiver<Vec<ListenerError>> {
        self.errors.clone()
    }
}

/// Start the task that keeps the Gateway sockets as the pipeline wants them. It returns once
/// shutdown has stopped every socket and their connections have drained (or the grace period is
/// over).
pub fn start(proxy: Proxy, config: Config, shutdown: Shutdown) -> (Gateways, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Vec::new());
    let (errors_tx, errors) = watch::channel(Vec::new());
    let sockets = Sockets {
        proxy,
        config,
        shutdown,
        errors: errors_tx,
        bound: BTreeMap::new(),
        retiring: Vec::new(),
    };
    let task = tokio::spawn(sockets.run(rx));
    (
        Gateways {
            wanted: Arc::new(tx),
            errors,
        },
        task,
    )
}

/// A served Gateway listener: its sockets (one per worker) and their servers.
struct Bound {
    tls: bool,
    /// Each stops its server's accepting (the connections drain).
    stop: Vec<oneshot::Sender<()>>,
    /// Each fires once its socket is closed: the port may be bound again once all have.
    closed: Vec<oneshot::Receiver<()>>,
    servers: Vec<JoinHandle<()>>,
}

/// The sockets and their servers; owned by the reconciling task alone.
struct Sockets {
    proxy: Proxy,
    config: Config,
    shutdown: Shutdown,
    /// The listener errors of the last reconciliation, for [`Gateways::errors`].
    errors: watch::Sender<Vec<ListenerError>>,
    bound: BTreeMap<u16, Bound>,
    /// Servers of removed sockets still draining their connections.
    retiring: Vec<JoinHandle<()>>,
}

impl Sockets {
    async fn run(mut self, mut wanted: watch::Receiver<Vec<Want>>) {
        let stop = self.shutdown.clone().wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                changed = wanted.changed() => {
                    if changed.is_err() {
                        // No more publishes: keep serving what is bound until shutdown.
                        (&mut stop).await;
                        break;
                    }
                    let want = wanted.borrow_and_update().clone();
                    self.reconcile(&want).await;
                }
            }
        }
        // Every server got the same shutdown: wait for their connections to drain.
        for b in self.bound.into_values() {
            for server in b.servers {
                let _ = server.await;
            }
        }
        for server in self.retiring {
            let _ = server.await;
        }
    }

    async fn reconcile(&mut self, wanted: &[Want]) {
        let bound: BTreeMap<u16, bool> = self.bound.iter().map(|(p, b)| (*p, b.tls)).collect();
        let plan = plan(&bound, wanted, &self.config);
        for port in plan.stop {
            let Some(b) = self.bound.remove(&port) else {
                continue;
            };
            for stop in b.stop {
                let _ = stop.send(());
            }
            // Closed before anything binds the port again (a protocol change).
            for closed in b.closed {
                let _ = closed.await;
            }
            self.retiring.extend(b.servers);
        }
        self.retiring.retain(|s| !s.is_finished());
        let mut errors = plan.errors;
        for want in plan.start {
            match self.open(want) {
                Ok(b) => {
                    self.bound.insert(want.port, b);
                }
                Err(e) => errors.push(e),
            }
        }
        // Logged when new: a port that stays unbindable is not logged at every publish.
        let previous = self.proxy.listener_errors();
        for e in errors.iter().filter(|e| !previous.contains(e)) {
            tracing::error!(
                address = %e.address,
                port = e.port,
                tls = e.tls,
                reason = %e.reason,
                "Gateway listener not served (tried again at the next configuration)"
            );
        }
        self.errors.send_if_modified(|e| {
            let changed = *e != errors;
            if changed {
                e.clone_from(&errors);
            }
            changed
        });
        self.proxy.set_listener_errors(errors);
    }

    /// Bind and serve one Gateway listener: a socket per worker, each served on its worker's
    /// runtime (or one, here, with one worker).
    fn open(&self, want: Want) -> Result<Bound, ListenerError> {
        let address = SocketAddr::new(self.config.bind, want.port);
        let error = |reason: String| ListenerError {
            port: want.port,
            tls: want.tls,
            address,
            reason,
        };
        let tls = if want.tls {
            let config = self.proxy.gateway_tls_config(want.port);
            Some(config.map_err(|e| error(e.to_string()))?)
        } else {
            None
        };
        let runtimes: Vec<Option<&Handle>> = if self.config.workers.is_empty() {
            vec![None]
        } else {
            self.config.workers.iter().map(Some).collect()
        };
        let shared_port = runtimes.len() > 1;
        // Every socket bound before any is served: a port that cannot be had is not half served.
        let mut sockets = Vec::with_capacity(runtimes.len());
        for _ in &runtimes {
            let socket = crate::runtime::bind(address, shared_port)
                // A worker's socket is registered with the worker's reactor, on the worker.
                .and_then(|s| s.into_std())
                .map_err(|e| error(e.to_string()))?;
            sockets.push(socket);
        }
        let local = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .unwrap_or(address);
        let scheme = want.scheme();
        // The last socket to close says so.
        let open = Arc::new(AtomicUsize::new(sockets.len()));
        let mut bound = Bound {
            tls: want.tls,
            stop: Vec::new(),
            closed: Vec::new(),
            servers: Vec::new(),
        };
        for (socket, runtime) in sockets.into_iter().zip(runtimes) {
            let (stop, stopped) = oneshot::channel();
            let (closing, closed) = oneshot::channel();
            let (proxy, shutdown, tls, open) = (
                self.proxy.clone(),
                self.shutdown.clone(),
                tls.clone(),
                open.clone(),
            );
            let serve = move |listener: tokio::net::TcpListener| async move {
                let stop = async move {
                    tokio::select! {
                        () = shutdown.wait() => {}
                        _ = stopped => {}
                    }
                };
                let closed = move || {
                    if open.fetch_sub(1, Ordering::AcqRel) == 1 {
                        println!("remora: gateway listener {scheme} on {local} closed");
                    }
                    let _ = closing.send(());
                };
                proxy
                    .serve_gateway(listener, want.port, tls, stop, closed)
                    .await;
            };
            let server = async move {
                match tokio::net::TcpListener::from_std(socket) {
                    Ok(listener) => serve(listener).await,
                    Err(e) => {
                        tracing::error!(address = %local, error = %e, "cannot serve a Gateway socket");
                    }
                }
            };
            let server = match runtime {
                None => tokio::spawn(server),
                Some(worker) => worker.spawn(server),
            };
            bound.stop.push(stop);
            bound.closed.push(closed);
            bound.servers.push(server);
        }
        tracing::info!(address = %local, scheme, sockets = bound.servers.len(), "Gateway listener served");
        println!("remora: gateway listener {scheme} on {local}");
        Ok(bound)
    }
}

/// What reconciling changes: the ports to close, the listeners to bind, and the listeners that
/// cannot be served whatever the sockets do.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    stop: Vec<u16>,
    start: Vec<Want>,
    errors: Vec<ListenerError>,
}

/// From the `bound` sockets (port → TLS) to the `wanted` listeners: close what is no longer
/// wanted or changed protocol, bind what is wanted and not bound as wanted. A port wanted twice
/// (translation merges listeners by port, so it should not happen) is served as first wanted; a
/// listener on Remora's own address and port, or on port 0, is an error.
fn plan(bound: &BTreeMap<u16, bool>, wanted: &[Want], config: &Config) -> Plan {
    let mut want: BTreeMap<u16, bool> = BTreeMap::new();
    let mut errors = Vec::new();
    for w in wanted {
        let address = SocketAddr::new(config.bind, w.port);
        let mut error = |reason: String| {
            errors.push(ListenerError {
                port: w.port,
                tls: w.tls,
                address,
                reason,
            })
        };
        if w.port == 0 {
            error("port 0 is not a port to listen on".to_owned());
            continue;
        }
        if let Some(&tls) = want.get(&w.port) {
            if tls != w.tls {
                let first = if tls { "HTTPS" } else { "HTTP" };
                error(format!("port {} is already an {first} listener", w.port));
            }
            continue;
        }
        if let Some((own, flag)) = config
            .reserved
            .iter()
            .find(|(own, _)| own.port() == w.port && overlaps(own.ip(), config.bind))
        {
            error(format!(
                "{address} is Remora's own {flag} ({own}); a Gateway listener does not share it"
            ));
            continue;
        }
        want.insert(w.port, w.tls);
    }
    Plan {
        stop: bound
            .iter()
            .filter(|(port, tls)| want.get(port) != Some(tls))
            .map(|(port, _)| *port)
            .collect(),
        start: want
            .iter()
            .filter(|(port, tls)| bound.get(port) != Some(tls))
            .map(|(port, tls)| Want {
                port: *port,
                tls: *tls,
            })
            .collect(),
        errors,
    }
}

/// Can sockets bound at `a` and `b` (same port) receive the same connections? The same address,
/// or one of them the unspecified address covering the other's family (`::` covers IPv4 too, as
/// Linux binds it dual-stack by default).
fn overlaps(a: IpAddr, b: IpAddr) -> bool {
    fn covers(wild: IpAddr, other: IpAddr) -> bool {
        match wild {
            IpAddr::V6(w) => w.is_unspecified(),
            IpAddr::V4(w) => {
                w.is_unspecified()
                    && match other {
                        IpAddr::V4(_) => true,
                        IpAddr::V6(o) => o.to_ipv4_mapped().is_some(),
                    }
            }
        }
    }
    a == b || covers(a, b) || covers(b, a)
}

#[cfg(test)]
mod tests;
