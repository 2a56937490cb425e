//! `remora serve`: the file provider feeding the proxy. Its flags and its loop: read the
//! manifests, serve them on the shared runtime ([`crate::runtime`]), and apply every edit to the
//! files until shutdown.

use crate::pipeline::Pipeline;
use crate::runtime::{self, Common};
use crate::shutdown::Shutdown;
use anyhow::{bail, Context};
use files::{Manifests, Watcher};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Manifest file or directory (.yaml, .yml, .json; multi-document YAML and `kind: List`).
    /// Repeatable.
    #[arg(long = "manifests", short = 'f', required = true, value_name = "PATH")]
    pub manifests: Vec<PathBuf>,
    /// Address for proxied HTTP traffic.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen_http: SocketAddr,
    /// Address for proxied HTTPS traffic (TLS 1.2/1.3, HTTP/2 and HTTP/1.1 by ALPN).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    pub listen_https: SocketAddr,
    /// Directory of PEM pairs served as TLS Secrets: NAME.crt + NAME.key is Secret default/NAME,
    /// NS/NAME.crt + NS/NAME.key is NS/NAME (for `spec.tls[].secretName`). Watched for renewals.
    #[arg(long, value_name = "DIR")]
    pub tls_dir: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals(args.common.shutdown_grace_period());
    let mut manifests = Manifests::with_tls_dir(args.manifests.clone(), args.tls_dir.clone());
    let first = manifests.reload();
    if !first.errors.is_empty() {
        for e in &first.errors {
            tracing::error!("{e}");
        }
        bail!(
            "{} manifest error(s), nothing is served; fix them and start again",
            first.errors.len()
        );
    }
    let mut watcher =
        Watcher::new(manifests.watched()).context("cannot watch the manifest paths")?;
    let running = runtime::start(
        args.listen_http,
        args.listen_https,
        &args.common,
        crate::controller::CONTROLLER_CLASS,
        &shutdown,
    )
    .await?;
    let mut pipeline = Pipeline::new(
        running.proxy.clone(),
        running.gateways.clone(),
        runtime::options(&args.common),
    );
    pipeline.apply(&first.objects);
    running.announce();
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            changed = watcher.changed() => {
                let Some(changes) = changed else {
                    bail!("the manifest watcher stopped");
                };
                let reload = manifests.reload_changes(&changes);
                for e in &reload.errors {
                    tracing::error!("{e} (the last good version of this file stays in use)");
                    running.proxy.record_config_error();
                }
                if reload.errors.is_empty() {
                    running.proxy.record_config_loaded();
                }
                if reload.changed {
                    pipeline.apply(&reload.objects);
                }
            }
            () = &mut stop => {
                running.drained().await;
                return Ok(());
            }
        }
    }
}
