//! What a client can do to the proxy, or through it past routing, tried as an attacker would:
//! raw sockets on loopback against the real binary. Each case fails without its fix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send `raw` on a new connection and read until the proxy closes it (bounded).
async fn exchange(addr: SocketAddr, raw: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "no end of the response to {raw:?}: {out:?}");
    String::from_utf8_lossy(&out).into_owned()
}

fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

/// The header lines a pod's `/echo-headers` listed, lowercase.
fn pod_saw(response: &str) -> Vec<String> {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    body.lines().map(str::to_ascii_lowercase).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_hosts_tunnels_and_underscores() {
    let (_pods, _dir, remora) = serve_service(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[
            web_ingress("public", "public.example.com", &[]),
            web_ingress(
                "private",
                "private.example.com",
                &[("allowlist-source-range", "10.0.0.0/8")],
            ),
        ],
    )
    .await;
    let addr = remora.http;
    assert_eq!(
        status(
            &exchange(
                addr,
                "GET / HTTP/1.1\r\nHost: private.example.com\r\nConnection: close\r\n\r\n"
            )
            .await
        ),
        403,
        "the allow-list holds"
    );

    // An absolute-form target chose the route: the pod gets its host, not the Host header
    // (RFC 9112 3.2.2), so the private host's allow-list cannot be walked around.
    let r = exchange(
        addr,
        "GET http://public.example.com/echo-headers HTTP/1.1\r\nHost: private.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let saw = pod_saw(&r);
    assert!(
        saw.contains(&"host: public.example.com".to_owned()),
        "{saw:?}"
    );
    assert!(!r.contains("private.example.com"), "{r}");

    // RFC 9112 3.2: duplicate Host, or none on HTTP/1.1, is 400. HTTP/1.0 may go without.
    let r = exchange(
        addr,
        "GET / HTTP/1.1\r\nHost: public.example.com\r\nHost: private.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 400, "two Host headers: {r}");
    let r = exchange(addr, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status(&r), 400, "HTTP/1.1 without Host: {r}");
    let r = exchange(addr, "GET / HTTP/1.0\r\n\r\n").await;
    assert_eq!(
        status(&r),
        404,
        "HTTP/1.0 without Host routes to no host: {r}"
    );

    // A malformed chunk is the client's error (400), not the pod's (502).
    let r = exchange(
        addr,
        "POST /echo-body HTTP/1.1\r\nHost: public.example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 400, "malformed chunk size: {r}");

    // `Upgrade: h2c` is never relayed: a tunnel to the pod would reach any of its paths past
    // routing. The request goes on as a plain one.
    let r = exchange(
        addr,
        "GET /echo-headers HTTP/1.1\r\nHost: public.example.com\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(status(&r), 200, "{r}");
    let saw = pod_saw(&r);
    assert!(
        !saw.iter()
            .any(|l| l.starts_with("upgrade:") || l.starts_with("http2-settings:")),
        "{saw:?}"
    );

    // Header names with underscores are dropped (nginx's default), on both upstream paths: a
    // CGI-style pod would read X_Forwarded_For as the X-Forwarded-For Remora sets.
    for (method, body) in [("GET", ""), ("POST", "x")] {
        let r = exchange(
            addr,
            &format!(
                "{method} /echo-headers HTTP/1.1\r\nHost: public.example.com\r\nX_Forwarded_For: 6.6.6.6\r\nX-Kept: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;
        assert_eq!(status(&r), 200, "{r}");
        let saw = pod_saw(&r);
        assert!(saw.contains(&"x-kept: 1".to_owned()), "{method}: {saw:?}");
        assert!(!r.contains("6.6.6.6"), "{method}: {saw:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_without_a_request_head_are_closed() {
    let (_pods, _dir, remora) = serve_service_with(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[web_ingress("public", "public.example.com", &[])],
        &["--client-header-timeout", "1"],
    )
    .await;
    // Nothing at all (the protocol is never told), part of the HTTP/2 preface, part of an HTTP/1
    // head, and an HTTP/2 connection that never sends a request: each is closed after the
    // timeout instead of being held.
    for (what, sent) in [
        ("nothing", &b""[..]),
        ("part of the HTTP/2 preface", &b"PRI * HTTP/2.0\r\n"[..]),
        ("part of a head", &b"GET / HTTP/1.1\r\nHost: pub"[..]),
        (
            "an HTTP/2 preface and settings, no request",
            &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"[..],
        ),
    ] {
        let started = Instant::now();
        let mut s = TcpStream::connect(remora.http).await.unwrap();
        s.write_all(sent).await.unwrap();
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        assert!(closed.is_ok(), "{what}: still open after 10 s");
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "{what}: closed before the timeout"
        );
    }
    // TLS: a handshake that never starts.
    let mut s = TcpStream::connect(remora.https).await.unwrap();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut Vec::new())).await;
    assert!(
        closed.is_ok(),
        "TLS without a handshake: still open after 10 s"
    );
    // Whoever sends a request in time is served.
    let r = get(&remora.url("/"), &[("host", "public.example.com")]).await;
    assert_eq!(r.status, 200);
}
