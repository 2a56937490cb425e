//! `remora controller`: the Kubernetes provider feeding the proxy. Same data path and flags as
//! `serve`; only where the objects come from differs. This module owns the flags and the wiring:
//! the client, watchers, leader election, status (Ingress and Gateway API) and Events all come
//! from `kube_provider`, and the serving from [`crate::runtime`].

use crate::pipeline::Pipeline;
use crate::runtime::{self, Common};
use crate::shutdown::Shutdown;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The `spec.controller` of the IngressClasses Remora serves by default.
pub const CONTROLLER_CLASS: &str = "remora.dev/ingress-controller";

#[derive(clap::Args)]
pub struct Args {
    /// Address for proxied HTTP traffic.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen_http: SocketAddr,
    /// Address for proxied HTTPS traffic.
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen_https: SocketAddr,
    /// Kubeconfig file [default: in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (repeatable) [default: the whole cluster].
    #[arg(long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,
    /// Serve the IngressClasses whose spec.controller is this. `k8s.io/ingress-nginx` takes over
    /// ingress-nginx's classes unchanged.
    #[arg(long, default_value = CONTROLLER_CLASS, value_name = "CONTROLLER")]
    pub controller_class: String,
    /// Also serve Ingresses that have no class at all.
    #[arg(long)]
    pub watch_ingress_without_class: bool,
    /// Changes closer together than this are applied at once.
    #[arg(long, default_value = "20", value_name = "MS")]
    pub debounce_ms: u64,
    /// Write this Service's addresses (load balancer, else external IPs, else cluster IP) into
    /// the status of the served Ingresses and Gateways.
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = kube_provider::namespaced_name)]
    pub publish_service: Option<(String, String)>,
    /// Write these addresses (IPs or host names, comma-separated or repeated) into the status of
    /// the served Ingresses and Gateways.
    #[arg(long, value_name = "ADDR", value_delimiter = ',')]
    pub publish_status_address: Vec<String>,
    /// Name of the Lease replicas elect their leader with (the leader writes status and Events).
    #[arg(long, default_value = "remora-leader", value_name = "NAME")]
    pub election_id: String,
    /// Namespace of the Lease [default: $POD_NAMESPACE, else the service account's, else default].
    #[arg(long, value_name = "NS")]
    pub election_namespace: Option<String>,
    /// This replica's name in the election [default: $POD_NAME, else $HOSTNAME, else random].
    #[arg(long, value_name = "NAME")]
    pub election_identity: Option<String>,
    /// When the leading replica stops and no other takes over, remove the published addresses
    /// from the status of the served Ingresses (`--update-status-on-shutdown=false`: leave them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub update_status_on_shutdown: bool,
    /// How often the leader renews the Lease and the others look at it (it expires after 15 s
    /// without renewal).
    #[arg(long, default_value = "2000", value_name = "MS")]
    pub election_retry_ms: u64,
    #[command(flatten)]
    pub common: Common,
}

/// This replica's name in the Lease: its pod's name, else a random one.
fn identity(args: &Args) -> String {
    kube_provider::pod_name(args.election_identity.as_deref())
        .unwrap_or_else(|| format!("remora-{:016x}", balance::random_u64()))
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals(args.common.shutdown_grace_period());
    let client = kube_provider::client(args.kubeconfig.as_deref()).await?;
    // Behind the controller's Service, clients reach HTTPS on 443 whatever the container port.
    args.common.https_redirect_port.get_or_insert(443);
    let running = runtime::start(
        args.listen_http,
        args.listen_https,
        &args.common,
        &args.controller_class,
        &shutdown,
    )
    .await?;
    let mut options = runtime::options(&args.common);
    options.controller = Some(args.controller_class.clone());
    options.watch_ingress_without_class = args.watch_ingress_without_class;
    let gateway_controller = options.gateway_controller.clone();
    let mut pipeline = Pipeline::new(running.proxy.clone(), running.gateways.clone(), options);
    // The ports are bound: say so now. /readyz stays false until the first full sync is served.
    running.announce();

    // Leader election: every replica serves; the leader writes status and Events.
    let identity = identity(&args);
    let (leader_tx, leader) = tokio::sync::watch::channel(false);
    let election = kube_provider::ElectionConfig {
        namespace: kube_provider::pod_namespace(args.election_namespace.as_deref()),
        name: args.election_id.clone(),
        identity: identity.clone(),
        lease_duration: Duration::from_secs(15),
        retry_period: Duration::from_millis(args.election_retry_ms.max(10)),
    };
    let elect = tokio::spawn(kube_provider::elect(
        client.clone(),
        election.clone(),
        leader_tx,
        shutdown.clone().wait(),
    ));
    let (served_tx, served) = tokio::sync::watch::channel(Vec::new());
    let status = kube_provider::StatusConfig {
        publish_service: args.publish_service.clone(),
        publish_addresses: args.publish_status_address.clone(),
        resync: Duration::from_secs(60),
    };
    tokio::spawn(kube_provider::write_status(
        client.clone(),
        status.clone(),
        leader.clone(),
        served,
    ));
    // The Gateway API status as translated, then with the listeners whose port could not be
    // bound (known once the sockets are reconciled) marked, for the writer.
    let (translated_tx, translated) = tokio::sync::watch::channel(Default::default());
    let (gateway_status_tx, gateway_status) = tokio::sync::watch::channel(Default::default());
    tokio::spawn(mark_unbound_listeners(
        translated,
        running.gateways.errors(),
        gateway_status_tx,
    ));
    tokio::spawn(kube_provider::write_gateway_status(
        client.clone(),
        status.clone(),
        gateway_controller.clone(),
        leader.clone(),
        gateway_status,
    ));
    let (diagnostics_tx, diagnostics) = tokio::sync::watch::channel(Default::default());
    let events = kube_provider::Events::new(client.clone(), &identity);
    tokio::spawn(events.run(leader.clone(), diagnostics));

    let config = kube_provider::WatchConfig {
        namespaces: args.namespaces.clone(),
        debounce: Duration::from_millis(args.debounce_ms),
        configmap: args.common.configmap.clone(),
    };
    let watching = kube_provider::run(client.clone(), config, |objects| {
        let applied = pipeline.apply(&objects);
        let mut gateway = applied.gateway_status;
        kube_provider::add_departed_routes(&mut gateway, &objects, &gateway_controller);
        // Only real changes wake the status and Event writers (endpoint churn re-publishes often).
        served_tx.send_if_modified(|served| replace_if_changed(served, applied.served));
        translated_tx.send_if_modified(|g| replace_if_changed(g, gateway));
        diagnostics_tx.send_if_modified(|d| replace_if_changed(d, applied.diagnostics));
    });
    tokio::select! {
        () = watching => anyhow::bail!("the Kubernetes watchers stopped"),
        () = shutdown.wait() => {
            // Hand the leadership over (the Lease is released) while requests drain; the last
            // leader takes its addresses out of the Ingress status.
            let led = elect.await.unwrap_or(false);
            let served = served_tx.borrow().clone();
            let clear_status = async {
                if led && args.update_status_on_shutdown {
                    // Long enough for a follower to look at the Lease twice.
                    let wait = (2 * election.retry_period + Duration::from_secs(1))
                        .min(election.lease_duration);
                    kube_provider::clear_status_on_shutdown(client, &status, &election, &served, wait)
                        .await;
                }
            };
            tokio::join!(clear_status, running.drained());
            Ok(())
        }
    }
}

/// Keep `out` equal to the `translated` status with the listeners of the `unbound` ports marked
/// (`PortUnavailable`), as either changes.
async fn mark_unbound_listeners(
    mut translated: tokio::sync::watch::Receiver<translate::GatewayApiStatus>,
    mut unbound: tokio::sync::watch::Receiver<Vec<proxy::ListenerError>>,
    out: tokio::sync::watch::Sender<translate::GatewayApiStatus>,
) {
    loop {
        let ports: Vec<(u16, String)> = unbound
            .borrow_and_update()
            .iter()
            .map(|e| (e.port, format!("{}: {}", e.address, e.reason)))
            .collect();
        let status = translated
            .borrow_and_update()
            .clone()
            .with_unbound_ports(&ports);
        out.send_if_modified(|g| replace_if_changed(g, status));
        tokio::select! {
            r = translated.changed() => if r.is_err() { return },
            r = unbound.changed() => if r.is_err() { return },
        }
    }
}

fn replace_if_changed<T: PartialEq>(current: &mut T, new: T) -> bool {
    if *current == new {
        return false;
    }
    *current = new;
    true
}
