//! `remora migrate-check`: what moving the Ingresses and ingress-nginx ConfigMap of manifest files
//! (an exported `kubectl get ingress,configmap -A -o yaml`) to Remora changes, annotation by
//! annotation. The judging is `translate::migrate`; this reads the files and prints.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use translate::migrate::{self, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// Manifest files or directories (as `serve --manifests`).
    #[arg(
        long = "manifests",
        short = 'f',
        value_name = "PATH",
        required_unless_present = "list"
    )]
    pub manifests: Vec<PathBuf>,
    /// ingress-nginx's ConfigMap among them [default: the one named `ingress-nginx-controller`,
    /// the Helm chart's, if there is one].
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = kube_provider::namespaced_name)]
    pub configmap: Option<(String, String)>,
    /// Check only Ingresses of these classes (repeatable) [default: all].
    #[arg(long = "ingress-class", value_name = "NAME")]
    pub ingress_classes: Vec<String>,
    /// Judge as Remora run with --enable-ssl-passthrough (as ingress-nginx was, if its Ingresses
    /// use ssl-passthrough).
    #[arg(long)]
    pub enable_ssl_passthrough: bool,
    /// Print every annotation ingress-nginx reads and what Remora does with it, and exit.
    #[arg(long)]
    pub list: bool,
}

/// Exit 0 when everything behaves as on ingress-nginx, 1 when something would not.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.list {
        std::io::stdout().write_all(migrate::annotation_table().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let objects = crate::convert::load(&args.manifests)?;
    let configmap = args.configmap.clone().or_else(|| {
        objects
            .config_maps
            .iter()
            .find(|c| c.metadata.name == "ingress-nginx-controller")
            .map(|c| (c.metadata.namespace().to_owned(), c.metadata.name.clone()))
    });
    let options = translate::Options {
        ingress_classes: args.ingress_classes.clone(),
        configmap,
        enable_ssl_passthrough: args.enable_ssl_passthrough,
        ..translate::Options::default()
    };
    let report = migrate::check(&objects, &options);
    let width = report.entries().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    let (mut supported, mut no_effect, mut closed, mut warned, mut ignored) = (0, 0, 0, 0, 0);
    for object in &report.objects {
        let _ = writeln!(out, "{}", object.object);
        for (key, verdict) in &object.entries {
            let mark = if verdict.differs() { "!" } else { " " };
            let _ = writeln!(out, "{mark} {key:width$}  {verdict}");
            match verdict {
                Verdict::Supported => supported += 1,
                Verdict::NoEffect => no_effect += 1,
                Verdict::FailsClosed(_) => closed += 1,
                Verdict::Warned(_) => warned += 1,
                Verdict::NotSupported | Verdict::Unknown => ignored += 1,
            }
        }
    }
    let ingresses = report
        .objects
        .iter()
        .filter(|o| o.object.kind == "Ingress")
        .count();
    let differences = report.differences();
    let _ = writeln!(
        out,
        "{ingresses} Ingress(es) with annotations{}: {supported} supported, {no_effect} accepted with no effect, {closed} fail closed, {warned} with warnings, {ignored} ignored",
        match &options.configmap {
            Some((ns, name)) => format!(", ConfigMap {ns}/{name}"),
            None => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "{}",
        if differences == 0 {
            "everything behaves as on ingress-nginx".to_owned()
        } else {
            format!("{differences} marked ! would behave differently on Remora")
        }
    );
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(if differences == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
