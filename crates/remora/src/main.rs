//! The `remora` command: a thin layer of clap subcommands over the library crates.

mod check;
mod controller;
mod convert;
mod cookie_secret;
mod demo;
mod gateway;
mod migrate_check;
mod pipeline;
mod runtime;
mod secret;
mod serve;
mod shutdown;
mod whoami;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "remora", version, about = "Kubernetes ingress and HTTP load balancer built for sticky sessions", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local stand-in for a cluster: pods on loopback addresses, Remora in front of them.
    Demo(demo::Args),
    /// Serve the Ingresses, Services and EndpointSlices found in manifest files.
    Serve(serve::Args),
    /// Run as the ingress controller of a Kubernetes cluster (watches the API server).
    Controller(controller::Args),
    /// Create the Secret holding the session cookie key if it does not exist (for replicas to
    /// mount).
    CookieSecret(cookie_secret::Args),
    /// Answer every request with `Hello "<MY_POD_NAME>"!`, like the seed's what-is-my-pod.
    Whoami(whoami::Args),
    /// Check that sessions stick: N cookie-jar sessions of M requests against any URL.
    Check(check::Args),
    /// Print the Gateway API objects (HTTPRoutes with sessionPersistence...) that serve what the
    /// Ingresses of manifest files serve.
    Convert(convert::Args),
    /// Report, annotation by annotation, what moving the Ingresses and ingress-nginx ConfigMap of
    /// manifest files to Remora changes; exits 1 when anything would behave differently.
    MigrateCheck(migrate_check::Args),
}

impl Command {
    /// Does the command serve proxied traffic (on worker threads of its own when there are
    /// several)?
    fn serves(&self) -> bool {
        match self {
            Command::Serve(_) | Command::Demo(_) | Command::Controller(_) => true,
            Command::Whoami(_)
            | Command::Check(_)
            | Command::CookieSecret(_)
            | Command::Convert(_)
            | Command::MigrateCheck(_) => false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Serving commands: a current-thread runtime for the control plane (and, with one worker,
    // the whole request path on that thread); more workers get threads and runtimes of their own
    // (`runtime::start`), no work-stealing machinery anywhere. The others: the multi-thread
    // scheduler.
    let mut runtime = if cli.command.serves() {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    runtime.enable_all();
    let runtime = match runtime.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("remora: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(a) => demo::run(a).await.map(|()| ExitCode::SUCCESS),
            Command::Serve(a) => serve::run(a).await.map(|()| ExitCode::SUCCESS),
            Command::Controller(a) => controller::run(a).await.map(|()| ExitCode::SUCCESS),
            Command::CookieSecret(a) => cookie_secret::run(a).await.map(|()| ExitCode::SUCCESS),
            Command::Whoami(a) => whoami::run(a).await.map(|()| ExitCode::SUCCESS),
            Command::Check(a) => check::run(a).await,
            Command::Convert(a) => convert::run(a).map(|()| ExitCode::SUCCESS),
            Command::MigrateCheck(a) => migrate_check::run(a),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("remora: {e:#}");
            ExitCode::FAILURE
        }
    }
}
