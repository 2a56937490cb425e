//! ingress-nginx's global ConfigMap (`--configmap`) through the real binary: its values are the
//! defaults the annotations override, proxy-wide settings, and a changed ConfigMap takes effect on
//! reload without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use bytes::Bytes;
use common::*;

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

/// The header lines a pod's `/echo-headers` listed, lowercase.
fn pod_saw(r: &Resp) -> Vec<String> {
    r.body.lines().map(str::to_ascii_lowercase).collect()
}

/// `use-forwarded-headers` and its companions as ingress-nginx (nginx's realip module): a
/// trusted peer's X-Forwarded-For names the client that allow-lists and the pod see (the
/// rightmost untrusted address, so a spoofed leftmost entry is not believed), its
/// X-Forwarded-Proto stops the redirect to HTTPS, `compute-full-forwarded-for` appends the peer;
/// an untrusted peer's headers count for nothing. `block-cidrs` and `block-user-agents`: 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_real_client_and_blocks() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-5c6d7e8f9b",
        1,
        &[
            web_ingress("plain", "plain.example.com", &[]),
            web_ingress(
                "allowed",
                "allowed.example.com",
                &[("allowlist-source-range", "1.2.3.4/32")],
            ),
            web_ingress(
                "secure",
                "secure.example.com",
                &[("force-ssl-redirect", "true")],
            ),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let ask = |host: &'static str, path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let url = remora.url(path);
        async move {
            let mut headers = vec![("host", host)];
            headers.extend(extra);
            get(&url, &headers).await
        }
    };
    // No ConfigMap: the peer (127.0.0.1) is the client; the client's list only comes back as
    // X-Original-Forwarded-For.
    let r = ask(
        "allowed.example.com",
        "/",
        vec![("x-forwarded-for", "1.2.3.4")],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = ask(
        "plain.example.com",
        "/echo-headers",
        vec![("x-forwarded-for", "1.2.3.4")],
    )
    .await;
    let saw = pod_saw(&r);
    assert!(
        saw.contains(&"x-forwarded-for: 127.0.0.1".to_owned()),
        "{saw:?}"
    );
    assert!(
        saw.contains(&"x-original-forwarded-for: 1.2.3.4".to_owned()),
        "{saw:?}"
    );
    let r = ask(
        "secure.example.com",
        "/",
        vec![("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(
        r.status, 308,
        "an untrusted X-Forwarded-Proto does not stop the redirect"
    );

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("use-forwarded-headers", "true"),
                ("proxy-real-ip-cidr", "127.0.0.0/8"),
                ("block-cidrs", "9.9.9.9"),
                ("block-user-agents", "~*badbot,curl/7.1"),
            ]),
        )
        .await;
    let r = ask(
        "allowed.example.com",
        "/",
        vec![("x-forwarded-for", "1.2.3.4")],
    )
    .await;
    assert_eq!(r.status, 200, "the trusted peer's client is allowed");
    let r = ask(
        "allowed.example.com",
        "/",
        vec![("x-forwarded-for", "1.2.3.4, 5.6.7.8")],
    )
    .await;
    assert_eq!(r.status, 403, "a spoofed leftmost entry is not the client");
    let r = ask(
        "plain.example.com",
        "/echo-headers",
        vec![("x-forwarded-for", "1.2.3.4"), ("x-forwarded-port", "443")],
    )
    .await;
    let saw = pod_saw(&r);
    for line in [
        "x-forwarded-for: 1.2.3.4",
        "x-real-ip: 1.2.3.4",
        "x-forwarded-port: 443",
    ] {
        assert!(saw.contains(&line.to_owned()), "{line}: {saw:?}");
    }
    let r = ask(
        "secure.example.com",
        "/",
        vec![("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(r.status, 200, "TLS was terminated before the trusted proxy");
    assert_eq!(ask("secure.example.com", "/", vec![]).await.status, 308);
    // Blocked: by the client's real address, by User-Agent (a case-blind pattern, an exact value).
    let r = ask(
        "plain.example.com",
        "/",
        vec![("x-forwarded-for", "9.9.9.9")],
    )
    .await;
    assert_eq!(r.status, 403);
    for (agent, status) in [
        ("Mozilla/5.0 (BadBot 2.0)", 403),
        ("curl/7.1", 403),
        ("curl/7.2", 200),
    ] {
        let r = ask("plain.example.com", "/", vec![("user-agent", agent)]).await;
        assert_eq!(r.status, status, "{agent}");
    }

    // The full list, the peer appended; and a peer outside proxy-real-ip-cidr is not believed.
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("use-forwarded-headers", "true"),
                ("compute-full-forwarded-for", "true"),
            ]),
        )
        .await;
    let r = ask(
        "plain.example.com",
        "/echo-headers",
        vec![("x-forwarded-for", "1.2.3.4")],
    )
    .await;
    let saw = pod_saw(&r);
    assert!(
        saw.contains(&"x-forwarded-for: 1.2.3.4, 127.0.0.1".to_owned()),
        "{saw:?}"
    );
    assert!(saw.contains(&"x-real-ip: 1.2.3.4".to_owned()), "{saw:?}");
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("use-forwarded-headers", "true"),
                ("proxy-real-ip-cidr", "10.0.0.0/8"),
            ]),
        )
        .await;
    let r = ask(
        "allowed.example.com",
        "/",
        vec![("x-forwarded-for", "1.2.3.4")],
    )
    .await;
    assert_eq!(
        r.status, 403,
        "an untrusted peer's X-Forwarded-For counts for nothing"
    );
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

/// `client-body-timeout`: a client that stops sending a request body gets 408 after the
/// ConfigMap's time (here 1 s), not the flag's default of 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_client_body_timeout_answers_a_stalled_upload_408() {
    use std::time::Duration;
    let (_pods, _dir, remora) = serve_service_with(
        "web",
        "web-7d9e8f6c5a",
        1,
        &[
            web_ingress("app", "app.example.com", &[("proxy-body-size", "0")]),
            config_map(&[("client-body-timeout", "1")]),
        ],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let (status, _, took) = paced_upload(
        &remora,
        "/echo-body",
        1,
        1000,
        Duration::from_millis(100),
        false,
    )
    .await;
    assert_eq!(status, 408, "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    remora
        .wait_log("the client sent no more of the request body for 1s")
        .await;
}

/// The status line of the response to `head` sent whole on a new connection.
async fn status_of_raw(remora: &Remora, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "closed without an answer: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

/// The status of an HTTP/2 (prior knowledge) request with `headers` headers of `len` bytes;
/// `None` if the stream failed.
async fn h2c_status(remora: &Remora, headers: usize, len: usize) -> Option<u16> {
    use http_body_util::Empty;
    let tcp = tokio::net::TcpStream::connect(remora.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get("http://app.example.com/");
    for i in 0..headers {
        req = req.header(format!("x-big-{i}"), "w".repeat(len));
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    sender
        .send_request(req)
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// `large-client-header-buffers` ("4 8k" by default, as ingress-nginx's): a request line longer
/// than one buffer gets 414, a header line longer than one 400, a head larger than all of them 431;
/// the ConfigMap raises them on reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_client_header_buffers_bound_lines_and_heads() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-7d9e8f6c5b",
        1,
        &[web_ingress("app", "app.example.com", &[])],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let host = [("host", "app.example.com")];
    let long_uri = remora.url(&format!("/{}", "a".repeat(9000)));
    let long_header = "v".repeat(9000);
    let head_of = |headers: usize, len: usize| {
        let mut h = String::from("GET / HTTP/1.1\r\nHost: app.example.com\r\n");
        for i in 0..headers {
            h.push_str(&format!("x-big-{i}: {}\r\n", "w".repeat(len)));
        }
        h.push_str("\r\n");
        h
    };

    assert_eq!(get(&remora.url("/"), &host).await.status, 200);
    assert_eq!(get(&long_uri, &host).await.status, 414);
    let r = get(&remora.url("/"), &[host[0], ("x-long", &long_header)]).await;
    assert_eq!(r.status, 400);
    // Three lines of 7,000 bytes fit in 4 × 8 KiB; five do not.
    assert!(status_of_raw(&remora, &head_of(3, 7000))
        .await
        .contains(" 200 "));
    assert!(status_of_raw(&remora, &head_of(5, 7000))
        .await
        .contains(" 431 "));
    assert_eq!(h2c_status(&remora, 3, 7000).await, Some(200));
    assert_eq!(h2c_status(&remora, 5, 7000).await, Some(431));

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("large-client-header-buffers", "8 16k")]),
        )
        .await;
    assert_eq!(get(&long_uri, &host).await.status, 200);
    let r = get(&remora.url("/"), &[host[0], ("x-long", &long_header)]).await;
    assert_eq!(r.status, 200);
    assert!(status_of_raw(&remora, &head_of(5, 7000))
        .await
        .contains(" 200 "));

    // An invalid value is a warning, and the defaults.
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("large-client-header-buffers", "lots")]),
        )
        .await;
    remora.wait_log("large-client-header-buffers").await;
    assert_eq!(get(&long_uri, &host).await.status, 414);
}

/// `upstream-keepalive-*` (ingress-nginx's upstream `keepalive`, `keepalive_requests`,
/// `keepalive_timeout`), counted by the pod's accepted connections: by default sequential
/// requests share one; `upstream-keepalive-requests: "2"` closes each after two requests;
/// `upstream-keepalive-connections: "0"` opens one per request (body-less requests on the lean
/// client, uploads on hyper's); a connection idle longer than `upstream-keepalive-timeout` is
/// not used again. One worker, so that one pool is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_keepalive_limits_pod_connections() {
    let (pods, dir, remora) = serve_service_with(
        "web",
        "web-5c6d7e8f9a",
        1,
        &[web_ingress("web", "web.example.com", &[])],
        &["--configmap", "ingress-nginx/remora", "--workers", "1"],
    )
    .await;
    remora.wait_ready().await;
    let pod = &pods[0];
    let opened = || pod.connections.load(std::sync::atomic::Ordering::SeqCst);
    let gets = |n: usize| {
        let url = remora.url("/");
        async move {
            for _ in 0..n {
                let r = get(&url, &[("host", "web.example.com")]).await;
                assert_eq!(r.status, 200);
            }
        }
    };
    let remora = &remora;
    let posts = |n: usize| async move {
        for _ in 0..n {
            assert_eq!(post(remora, "web.example.com", "/echo-body", 16).await, 200);
        }
    };
    // ingress-nginx's defaults: one connection for the GETs, one (hyper's pool) for the uploads.
    gets(6).await;
    assert_eq!(opened(), 1);
    posts(3).await;
    assert_eq!(opened(), 2);

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("upstream-keepalive-requests", "2")]),
        )
        .await;
    // The connection kept from before has carried more: it is not used again.
    let before = opened();
    gets(6).await;
    assert_eq!(opened() - before, 3, "2 requests per connection");

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("upstream-keepalive-connections", "0")]),
        )
        .await;
    let before = opened();
    gets(4).await;
    assert_eq!(
        opened() - before,
        4,
        "no keep-alive: a connection per request"
    );
    let before = opened();
    posts(3).await;
    assert_eq!(
        opened() - before,
        3,
        "no keep-alive for hyper's requests either"
    );

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("upstream-keepalive-timeout", "1")]),
        )
        .await;
    let before = opened();
    gets(2).await;
    assert_eq!(opened() - before, 1);
    // Idle past the timeout: not used again.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    gets(1).await;
    assert_eq!(
        opened() - before,
        2,
        "an idle connection past the timeout is closed"
    );
}
