//! `remora whoami`: the seed's what-is-my-pod, and the demo's pods.

use bytes::Bytes;
use http_body_util::Full;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The name to answer with [default: $MY_POD_NAME, else $HOSTNAME].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let name = args
        .name
        .or_else(|| std::env::var("MY_POD_NAME").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    println!("whoami: {name} on {}", listener.local_addr()?);
    serve(
        listener,
        name,
        crate::shutdown::Shutdown::on_signals(std::time::Duration::ZERO).wait(),
    )
    .await;
    Ok(())
}

/// Answer `Hello "<name>"!` (no trailing newline, as what-is-my-pod) on every path.
pub async fn serve(listener: TcpListener, name: String, shutdown: impl Future<Output = ()>) {
    let body = Bytes::from(format!("Hello \"{name}\"!"));
    let name: Arc<str> = name.into();
    proxy::serve(
        listener,
        None,
        shutdown,
        proxy::ServerOptions::default(),
        move |_| {
            let body = body.clone();
            let name = name.clone();
            hyper::service::service_fn(move |_req| {
                let mut resp = http::Response::new(Full::new(body.clone()));
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                if let Ok(v) = http::HeaderValue::from_str(&name) {
                    resp.headers_mut().insert("x-pod-name", v);
                }
                std::future::ready(Ok::<_, Infallible>(resp))
            })
        },
    )
    .await;
}
