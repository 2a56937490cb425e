//! Protocols beyond HTTP/1.1 requests: WebSocket through the proxy (sticky like any request),
//! HTTP/2 with prior knowledge on the plain listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

async fn setup(annotations: &[(&str, &str)]) -> (Vec<Pod>, Dir, Remora) {
    let (pods, dir) = service_dir("chat", "chat-7f8e9d6c5b", 3).await;
    dir.write(
        "ing.yaml",
        &IngressYaml::new("chat")
            .nginx_all(annotations)
            .rule(Some("chat.example.com"), "/", "chat")
            .build(),
    );
    let remora = Remora::serve(&[dir.path()], &[]);
    (pods, dir, remora)
}

/// Open a WebSocket to `/ws` through Remora, send `hello`, return the pod that answered and the
/// session cookie set on the handshake, if any.
async fn ws_hello(remora: &Remora, cookie: Option<&str>) -> (String, Option<String>) {
    let mut req = format!("ws://{}/ws", remora.http)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("host", "chat.example.com".parse().unwrap());
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    let tcp = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    let set_cookie = resp
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned());
    ws.send(Message::text("hello")).await.unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("no reply in time")
        .unwrap()
        .unwrap();
    let text = reply.into_text().unwrap().to_string();
    let pod = text.strip_suffix(": hello").unwrap().to_owned();
    ws.close(None).await.ok();
    (pod, set_cookie)
}

/// The handshake is routed and pinned like any request: its response sets the session cookie,
/// and every WebSocket opened with that cookie reaches the same pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_with_a_sticky_cookie() {
    let (_p, _d, remora) = setup(&[("affinity", "cookie"), ("session-cookie-name", "chat")]).await;
    let (pod, cookie) = ws_hello(&remora, None).await;
    let cookie = cookie.expect("the handshake response sets the session cookie");
    assert!(cookie.starts_with("chat="), "{cookie}");
    for _ in 0..8 {
        let (again, set) = ws_hello(&remora, Some(&cookie)).await;
        assert_eq!(again, pod, "the session's WebSockets reach its pod");
        assert!(set.is_none());
    }
    // Without the cookie, connections spread.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..9 {
        seen.insert(ws_hello(&remora, None).await.0);
    }
    assert!(seen.len() > 1, "{seen:?}");
}

/// `connection-proxy-header` does not break a protocol switch (nginx would send its value instead
/// of `upgrade`): the WebSocket still opens and echoes, with either value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_with_connection_proxy_header() {
    for value in ["close", "keep-alive"] {
        let (_p, _d, remora) = setup(&[("connection-proxy-header", value)]).await;
        let (pod, _) = ws_hello(&remora, None).await;
        assert!(pod.starts_with("chat-7f8e9d6c5b"), "{value}: {pod}");
    }
}

/// HTTP/2 with prior knowledge (h2c) on the plain listener, forwarded as HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge() {
    use http_body_util::{BodyExt, Empty};
    let (_p, _d, remora) = setup(&[]).await;
    let tcp = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..3 {
        let req = http::Request::get("http://chat.example.com/echo-headers")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("host: chat.example.com"), "{body}");
    }
}
