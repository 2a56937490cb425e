//! ingress-nginx's global ConfigMap (`--configmap`) through the real binary: its values are the
//! defaults the annotations override, proxy-wide settings, and a changed ConfigMap takes effect on
//! reload without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use bytes::Bytes;
use common::*;

fn config_map(data: &[(&str, &str)]) -> String {
    let mut y = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: remora\n  namespace: ingress-nginx\ndata:\n",
    );
    for (k, v) in data {
        y.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    y
}

async fn post(remora: &Remora, host: &str, path: &str, len: usize) -> u16 {
    request(
        "POST",
        &remora.url(path),
        &[("host", host)],
        Bytes::from(vec![b'x'; len]),
    )
    .await
    .status
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_defaults_annotations_override_and_reload() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-5c6d7e8f9a",
        1,
        &[
            web_ingress("plain", "plain.example.com", &[]),
            web_ingress("big", "big.example.com", &[("proxy-body-size", "1m")]),
            web_ingress(
                "limited",
                "limited.example.com",
                &[("limit-rpm", "1"), ("limit-burst-multiplier", "1")],
            ),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    // Not there yet: one warning, ingress-nginx's defaults (1m).
    remora
        .wait_log("ConfigMap ingress-nginx/remora: not found")
        .await;
    assert_eq!(
        post(&remora, "plain.example.com", "/echo-body", 4096).await,
        200
    );
    assert_server_hidden(&remora).await;

    // The ConfigMap appears: 1k for routes without the annotation; the annotation's 1m wins.
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("proxy-body-size", "1k"),
                ("limit-req-status-code", "429"),
                ("allow-backend-server-header", "true"),
            ]),
        )
        .await;
    assert_eq!(
        post(&remora, "plain.example.com", "/echo-body", 1024).await,
        200
    );
    assert_eq!(
        post(&remora, "plain.example.com", "/echo-body", 4096).await,
        413
    );
    assert_eq!(
        post(&remora, "big.example.com", "/echo-body", 4096).await,
        200
    );
    let shown = get(
        &remora.url("/server-header"),
        &[("host", "plain.example.com")],
    )
    .await;
    assert!(shown.headers.get("server").is_some(), "{:?}", shown.headers);
    // Over the rate: limit-req-status-code, not 503.
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(
            get(&remora.url("/"), &[("host", "limited.example.com")])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(codes[0], 200, "{codes:?}");
    assert_eq!(codes[4], 429, "{codes:?}");
    assert!(codes.iter().all(|c| [200, 429].contains(c)), "{codes:?}");

    // Changed in place: the next configuration uses it, same process.
    let pid = remora.pid();
    remora
        .rewrite(&dir, "cm.yaml", &config_map(&[("proxy-body-size", "8k")]))
        .await;
    assert_eq!(remora.pid(), pid);
    assert_eq!(
        post(&remora, "plain.example.com", "/echo-body", 4096).await,
        200
    );
    assert_eq!(
        post(&remora, "plain.example.com", "/echo-body", 16384).await,
        413
    );
    assert_server_hidden(&remora).await;
}

/// The pods' `Server` header does not reach the client (allow-backend-server-header is off).
async fn assert_server_hidden(remora: &Remora) {
    let r = get(
        &remora.url("/server-header"),
        &[("host", "plain.example.com")],
    )
    .await;
    assert!(r.headers.get("server").is_none(), "{:?}", r.headers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_connection_limits_apply_to_new_connections() {
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: plain.example.com\r\n\r\n";
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-5c6d7e8f9a",
        1,
        &[web_ingress("plain", "plain.example.com", &[])],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("keep-alive", "1"), ("keep-alive-requests", "2")]),
        )
        .await;
    // The second request is the last: its response says so, and the connection ends.
    let mut s = TcpStream::connect(remora.http).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    let first = read_http1_response(&mut s).await.to_ascii_lowercase();
    assert!(!first.contains("connection: close"), "{first}");
    s.write_all(REQUEST).await.unwrap();
    let second = read_http1_response(&mut s).await.to_ascii_lowercase();
    assert!(second.contains("connection: close"), "{second}");
    assert!(closed_within(&mut s, Duration::from_secs(5))
        .await
        .is_some());

    // Idle for the ConfigMap's second: closed.
    let mut s = TcpStream::connect(remora.http).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    read_http1_response(&mut s).await;
    let took = closed_within(&mut s, Duration::from_secs(10)).await;
    assert!(
        took.is_some_and(|t| t >= Duration::from_millis(900) && t < Duration::from_secs(3)),
        "{took:?}"
    );

    // Back to the defaults (75 s): a new connection idles longer.
    remora
        .rewrite(&dir, "cm.yaml", &config_map(&[("keep-alive", "75")]))
        .await;
    let mut s = TcpStream::connect(remora.http).await.unwrap();
    s.write_all(REQUEST).await.unwrap();
    read_http1_response(&mut s).await;
    assert_eq!(closed_within(&mut s, Duration::from_secs(2)).await, None);
}
