//! `remora whoami`: the seed's what-is-my-pod, and the demo's pods.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
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

/// The largest body `/bytes/N` answers with.
pub const MAX_BYTES: usize = 16 << 20;

/// Zeros for `/bytes/N` bodies (in .bss: no pages until read).
static ZEROS: [u8; MAX_BYTES] = [0; MAX_BYTES];

/// Answer `Hello "<name>"!` (no trailing newline, as what-is-my-pod) on every path, except
/// `/bytes/N`: N zero bytes (at most [`MAX_BYTES`]; more is a 400), for benchmarks of large
/// responses. A request body is read and dropped, and its length answered in `x-body-bytes`
/// (not sent when there was none), so uploads can be measured too. Connections are kept for any
/// number of requests.
pub async fn serve(listener: TcpListener, name: String, shutdown: impl Future<Output = ()>) {
    let body = Bytes::from(format!("Hello \"{name}\"!"));
    let name: Arc<str> = name.into();
    proxy::serve(
        listener,
        None,
        shutdown,
        // As a Go server (what-is-my-pod) does, no limit on a connection's requests: proxies
        // keep their connections to the pods, and a load generator connecting to a pod directly
        // is not closed on after 1000.
        proxy::ServerOptions {
            limits: proxy::ConnectionLimits {
                keepalive_requests: u32::MAX,
                ..Default::default()
            },
            ..Default::default()
        },
        move |_| {
            let body = body.clone();
            let name = name.clone();
            hyper::service::service_fn(move |req| answer(req, body.clone(), name.clone()))
        },
    )
    .await;
}

async fn answer(
    req: http::Request<hyper::body::Incoming>,
    hello: Bytes,
    name: Arc<str>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let size = req
        .uri()
        .path()
        .strip_prefix("/bytes/")
        .map(str::parse::<usize>);
    let mut body = req.into_body();
    let mut received: u64 = 0;
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    received += data.len() as u64;
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, content_type, content) = match size {
        None => (http::StatusCode::OK, TEXT, hello),
        Some(Ok(n)) if n <= MAX_BYTES => (
            http::StatusCode::OK,
            "application/octet-stream",
            Bytes::from_static(&ZEROS[..n]),
        ),
        Some(_) => (
            http::StatusCode::BAD_REQUEST,
            TEXT,
            Bytes::from(format!(
                "/bytes/N: N is a number of bytes, at most {MAX_BYTES}\n"
            )),
        ),
    };
    let mut resp = http::Response::new(Full::new(content));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(&name) {
        headers.insert("x-pod-name", v);
    }
    if received > 0 {
        headers.insert("x-body-bytes", http::HeaderValue::from(received));
    }
    Ok(resp)
}
