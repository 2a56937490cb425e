//! `remora convert`: print the Gateway API objects (GatewayClass, Gateways, HTTPRoutes with
//! `sessionPersistence`) that serve what the Ingresses of manifest files serve. The conversion is
//! `translate::convert`; this reads the files and writes YAML with its notes as comments.

use anyhow::bail;
use files::Manifests;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Manifest files or directories (as `serve --manifests`), e.g. `kubectl get ingress,service
    /// -A -o yaml` saved to a file.
    #[arg(long = "manifests", short = 'f', value_name = "PATH", required = true)]
    pub manifests: Vec<PathBuf>,
    /// The name of the Gateway made in each namespace with Ingresses.
    #[arg(long, default_value = "remora", value_name = "NAME")]
    pub gateway_name: String,
    /// The GatewayClass of those Gateways (printed too).
    #[arg(long, default_value = "remora", value_name = "NAME")]
    pub gateway_class: String,
    /// Convert only Ingresses of these classes (repeatable) [default: all].
    #[arg(long = "ingress-class", value_name = "NAME")]
    pub ingress_classes: Vec<String>,
    /// The `controllerName` of the GatewayClass printed.
    #[arg(long, value_name = "NAME", default_value = translate::DEFAULT_GATEWAY_CONTROLLER)]
    pub gateway_controller_name: String,
}

/// The objects of manifest files read once, for the commands that print something about them;
/// every file that cannot be used is printed on stderr and fails the command.
pub fn load(paths: &[PathBuf]) -> anyhow::Result<std::sync::Arc<translate::Objects>> {
    let loaded = Manifests::new(paths.to_vec()).reload();
    if !loaded.errors.is_empty() {
        for e in &loaded.errors {
            eprintln!("{e}");
        }
        bail!("{} manifest error(s)", loaded.errors.len());
    }
    Ok(loaded.objects)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let objects = load(&args.manifests)?;
    let options = translate::Options {
        ingress_classes: args.ingress_classes.clone(),
        ..translate::Options::default()
    };
    let docs = translate::convert::to_gateway_api(
        &objects,
        &options,
        &args.gateway_name,
        &args.gateway_class,
        &args.gateway_controller_name,
    );
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        for n in &d.notes {
            out.push_str("# ");
            out.push_str(n);
            out.push('\n');
        }
        out.push_str(&serde_yaml::to_string(&d.object)?);
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
