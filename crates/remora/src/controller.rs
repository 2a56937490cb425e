//! `remora controller`: the Kubernetes provider feeding the proxy. Same data path and flags as
//! `serve`; only where the objects come from differs.

use crate::pipeline::Pipeline;
use crate::serve::{self, Common};
use crate::shutdown::Shutdown;
use anyhow::Context;
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
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals();
    let client = client(args.kubeconfig.as_deref()).await?;
    // Behind the controller's Service, clients reach HTTPS on 443 whatever the container port.
    args.common.https_redirect_port.get_or_insert(443);
    let running =
        serve::start(args.listen_http, args.listen_https, &args.common, &shutdown).await?;
    let mut options = serve::options(&args.common);
    options.controller = Some(args.controller_class.clone());
    options.watch_ingress_without_class = args.watch_ingress_without_class;
    let mut pipeline = Pipeline::new(running.proxy.clone(), options);
    // The ports are bound: say so now. /readyz stays false until the first full sync is served.
    running.announce();
    let config = kube_provider::WatchConfig {
        namespaces: args.namespaces.clone(),
        debounce: Duration::from_millis(args.debounce_ms),
    };
    let watching = kube_provider::run(client, config, |objects| {
        pipeline.apply(&objects);
    });
    tokio::select! {
        () = watching => anyhow::bail!("the Kubernetes watchers stopped"),
        () = shutdown.wait() => {
            running.drained().await;
            Ok(())
        }
    }
}

/// A client from `--kubeconfig`, else the standard rules (in-cluster, `$KUBECONFIG`,
/// `~/.kube/config`).
async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration found (in-cluster, $KUBECONFIG or ~/.kube/config); use --kubeconfig")?,
    };
    kube::Client::try_from(config).context("cannot build the Kubernetes client")
}
