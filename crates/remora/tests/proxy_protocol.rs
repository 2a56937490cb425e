//! The PROXY protocol (ConfigMap `use-proxy-protocol`) through the real binary: real TCP clients
//! write v1 and v2 headers, then HTTP or TLS, on the Ingress listeners. The header's source is
//! the client for the pod's headers and the allow-lists (not the socket's peer, 127.0.0.1); a
//! connection without a valid header is closed unanswered; a v2 `LOCAL` header (a load balancer's
//! health check) keeps the peer; a reload turns it on for new connections. ingress-nginx's
//! `test/e2e/settings/proxy_protocol.go` cases are replayed (with whole header lines compared:
//! its substring checks also pass for a wrong client).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::tls::*;
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A v2 header, PROXY over TCP/IPv4 (or LOCAL, with no addresses), `source` to `destination`.
fn v2(local: bool, source: &str, destination: &str) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    if local {
        h.extend_from_slice(&[0x20, 0x00, 0, 0]);
        return h;
    }
    let (s, d): (SocketAddr, SocketAddr) = (source.parse().unwrap(), destination.parse().unwrap());
    let ip = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v4) => v4.octets(),
        std::net::IpAddr::V6(_) => unreachable!(),
    };
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&ip(s));
    h.extend_from_slice(&ip(d));
    h.extend_from_slice(&s.port().to_be_bytes());
    h.extend_from_slice(&d.port().to_be_bytes());
    h
}

/// A v1 header from `source` to `destination` (IPv4).
fn v1(source: &str, destination: &str) -> Vec<u8> {
    let (s, d): (SocketAddr, SocketAddr) = (source.parse().unwrap(), destination.parse().unwrap());
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        s.ip(),
        d.ip(),
        s.port(),
        d.port()
    )
    .into_bytes()
}

/// A request head for `host` and `path` with these headers, closing the connection after it.
fn head(host: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut s = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// Everything the server sends until it closes (bounded); a reset ends it too.
async fn read_all<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("the server closes within 10 s");
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Write `bytes` (the header and the request, in one segment) on a new connection to `addr`, and
/// read the whole answer ("" when closed unanswered).
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    // The server may close before it has read everything: that is an answer too.
    let _ = s.write_all(bytes).await;
    read_all(&mut s).await
}

/// The status of a raw response, and its body's lines lowercase (a pod's `/echo-headers`).
fn parse(resp: &str) -> (u16, Vec<String>) {
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {resp:?}"));
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.lines().map(str::to_ascii_lowercase).collect())
}

fn assert_lines(saw: &[String], lines: &[&str]) {
    for line in lines {
        assert!(saw.contains(&line.to_string()), "{line}: {saw:?}");
    }
}

/// The pod's view of a request on `addr` after `header`.
async fn echo(addr: SocketAddr, header: &[u8], host: &str, extra: &[(&str, &str)]) -> Vec<String> {
    let resp = exchange(
        addr,
        &[header, &head(host, "/echo-headers", extra)].concat(),
    )
    .await;
    let (status, saw) = parse(&resp);
    assert_eq!(status, 200, "{resp}");
    saw
}

/// Over HTTP: v1 and v2 sources are the client for the pod (`X-Forwarded-For`, `X-Real-IP`,
/// `X-Forwarded-Port` from the destination, 443 as HTTPS), the allow-list, `block-cidrs`, the rate
/// limit and the access log; LOCAL keeps the peer; no header, a garbage one or one too slow:
/// closed with no response. The ConfigMap turns it on by a reload, for new connections; then off
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_sources_allow_lists_and_fail_closed() {
    let logs = Dir::new();
    let log = logs.path().join("access.log");
    let log_arg = log.display().to_string();
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-7a8b9c0d1e",
        1,
        &[
            web_ingress("plain", "proxy-protocol", &[]),
            web_ingress(
                "allowed",
                "allowed.example.com",
                &[("whitelist-source-range", "192.0.2.0/24")],
            ),
            web_ingress(
                "limited",
                "limited.example.com",
                &[("limit-rpm", "1"), ("limit-burst-multiplier", "1")],
            ),
        ],
        &[
            "--configmap",
            "ingress-nginx/remora",
            "--access-log",
            &log_arg,
        ],
    )
    .await;
    remora.wait_ready().await;
    let addr = remora.http;
    // Off: HTTP as usual; a PROXY header is no HTTP (400 from the server, not a client address).
    let saw = echo(addr, b"", "proxy-protocol", &[]).await;
    assert_lines(&saw, &["x-forwarded-for: 127.0.0.1"]);
    let resp = exchange(
        addr,
        &[
            v1("192.0.2.9:5000", "10.0.0.1:80"),
            head("allowed.example.com", "/", &[]),
        ]
        .concat(),
    )
    .await;
    assert!(!resp.contains(" 200 "), "{resp}");
    // A keep-alive connection opened before the change, to see that it is not cut.
    let mut before = TcpStream::connect(addr).await.unwrap();

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[
                ("use-proxy-protocol", "true"),
                ("proxy-protocol-header-timeout", "1s"),
                ("block-cidrs", "203.0.113.66"),
            ]),
        )
        .await;

    // ingress-nginx's "should respect port passed by the PROXY Protocol".
    let saw = echo(
        addr,
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n",
        "proxy-protocol",
        &[],
    )
    .await;
    assert_lines(
        &saw,
        &[
            "host: proxy-protocol",
            "x-forwarded-for: 192.168.0.1",
            "x-real-ip: 192.168.0.1",
            "x-forwarded-port: 1234",
            "x-forwarded-proto: http",
        ],
    );
    // "should respect proto passed by the PROXY Protocol server port": 443 is HTTPS.
    let saw = echo(
        addr,
        b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
        "proxy-protocol",
        &[],
    )
    .await;
    assert_lines(
        &saw,
        &[
            "x-forwarded-for: 192.168.0.1",
            "x-forwarded-port: 443",
            "x-forwarded-proto: https",
        ],
    );
    // v2 and IPv6 in v1; the client's own X-Forwarded-For does not count.
    let saw = echo(
        addr,
        &v2(false, "198.51.100.7:40000", "203.0.113.1:80"),
        "proxy-protocol",
        &[("x-forwarded-for", "6.6.6.6")],
    )
    .await;
    assert_lines(
        &saw,
        &["x-forwarded-for: 198.51.100.7", "x-forwarded-port: 80"],
    );
    let saw = echo(
        addr,
        b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 80\r\n",
        "proxy-protocol",
        &[],
    )
    .await;
    assert_lines(&saw, &["x-forwarded-for: 2001:db8::7"]);
    // A load balancer's health check (v2 LOCAL), and v1 UNKNOWN: the socket's peer.
    for header in [v2(true, "", ""), b"PROXY UNKNOWN\r\n".to_vec()] {
        let saw = echo(addr, &header, "proxy-protocol", &[]).await;
        assert_lines(&saw, &["x-forwarded-for: 127.0.0.1"]);
    }

    // The allow-list judges the header's source, not the peer (127.0.0.1).
    let allowed = |header: Vec<u8>| {
        let bytes = [header, head("allowed.example.com", "/", &[])].concat();
        async move { parse(&exchange(addr, &bytes).await).0 }
    };
    assert_eq!(allowed(v2(false, "192.0.2.9:1", "10.0.0.1:80")).await, 200);
    assert_eq!(allowed(v1("192.0.2.200:1", "10.0.0.1:80")).await, 200);
    assert_eq!(allowed(v1("198.51.100.7:1", "10.0.0.1:80")).await, 403);
    assert_eq!(allowed(v2(true, "", "")).await, 403, "LOCAL: the peer");
    // block-cidrs, and the rate limit (one request a minute per client): by the header's source.
    let status = |host: &'static str, header: Vec<u8>| {
        let bytes = [header, head(host, "/", &[])].concat();
        async move { parse(&exchange(addr, &bytes).await).0 }
    };
    assert_eq!(
        status("proxy-protocol", v1("203.0.113.66:1", "10.0.0.1:80")).await,
        403
    );
    assert_eq!(
        status("proxy-protocol", v1("203.0.113.67:1", "10.0.0.1:80")).await,
        200
    );
    let limited = |source: &str| status("limited.example.com", v1(source, "10.0.0.1:80"));
    let mut codes = Vec::new();
    for port in 1..=4 {
        codes.push(limited(&format!("198.51.100.1:{port}")).await);
    }
    assert_eq!(codes[0], 200, "{codes:?}");
    assert_eq!(codes[3], 503, "{codes:?}");
    assert_eq!(
        limited("198.51.100.2:1").await,
        200,
        "another client's quota"
    );
    // The access log's client.
    eventually("the access log names the header's source", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(r#""client":"192.168.0.1""#)
    })
    .await;

    // Fails closed: no header, a garbage one, a truncated v2: closed, not a byte answered.
    let v2_cut = v2(false, "192.0.2.9:1", "10.0.0.1:80")[..20].to_vec();
    for bytes in [
        head("allowed.example.com", "/", &[]),
        [
            b"PROXY TCP4 192.0.2.9 nonsense 1 2\r\n".as_slice(),
            &head("allowed.example.com", "/", &[]),
        ]
        .concat(),
        [
            b"PROXY garbage\r\n".as_slice(),
            &head("allowed.example.com", "/", &[]),
        ]
        .concat(),
    ] {
        let resp = exchange(addr, &bytes).await;
        assert_eq!(resp, "", "closed unanswered");
    }
    // A header that stops halfway, or nothing at all: closed after the header timeout (1 s; the
    // client header timeout is 60 s).
    for bytes in [v2_cut, Vec::new()] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        let took = closed_within(&mut s, Duration::from_secs(10))
            .await
            .expect("closed");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    // The connection from before the change still speaks plain HTTP.
    before
        .write_all(&head("proxy-protocol", "/echo-headers", &[]))
        .await
        .unwrap();
    let (status, saw) = parse(&read_all(&mut before).await);
    assert_eq!(status, 200);
    assert_lines(&saw, &["x-forwarded-for: 127.0.0.1"]);

    // Off again: plain HTTP for new connections.
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("use-proxy-protocol", "false")]),
        )
        .await;
    let saw = echo(addr, b"", "proxy-protocol", &[]).await;
    assert_lines(&saw, &["x-forwarded-for: 127.0.0.1"]);
}

/// HTTPS: the header comes before the TLS handshake (a rustls client over the same stream), as
/// ingress-nginx's "should enable PROXY Protocol for HTTPS"; without it, no handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_before_tls() {
    let cert = make_cert(&["proxy-protocol"]);
    let (_pods, dir) = service_dir("web", "web-8b9c0d1e2f", 1).await;
    dir.write("secret.yaml", &tls_secret_yaml("pp-tls", &cert));
    dir.write(
        "ing.yaml",
        &IngressYaml::new("secure")
            .tls(&["proxy-protocol"], "pp-tls")
            .rule(Some("proxy-protocol"), "/", "web")
            .build(),
    );
    dir.write("cm.yaml", &config_map(&[("use-proxy-protocol", "true")]));
    let remora = Remora::serve(&[dir.path()], &["--configmap", "ingress-nginx/remora"]);
    remora.wait_ready().await;

    let tls_request = |header: Vec<u8>| {
        let cert_der = cert.der.clone();
        let addr = remora.https;
        async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&header).await.unwrap();
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls_pki_types::CertificateDer::from(cert_der))
                .unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let name = rustls_pki_types::ServerName::try_from("proxy-protocol").unwrap();
            let mut tls =
                tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
                    .await
                    .expect("the handshake ends within 10 s")
                    .ok()?;
            write(&mut tls, &head("proxy-protocol", "/echo-headers", &[])).await;
            Some(read_all(&mut tls).await)
        }
    };
    let resp = tls_request(v2(false, "192.168.0.1:56324", "192.168.0.11:1234"))
        .await
        .expect("a TLS session after the header");
    let (status, saw) = parse(&resp);
    assert_eq!(status, 200, "{resp}");
    assert_lines(
        &saw,
        &[
            "host: proxy-protocol",
            "x-forwarded-for: 192.168.0.1",
            "x-forwarded-port: 1234",
            "x-forwarded-proto: https",
            "x-forwarded-scheme: https",
        ],
    );
    let resp = tls_request(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n".to_vec())
        .await
        .expect("v1 too");
    assert_lines(&parse(&resp).1, &["x-forwarded-for: 192.168.0.1"]);
    assert!(
        tls_request(Vec::new()).await.is_none(),
        "no header: no handshake"
    );
}

async fn write<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) {
    s.write_all(bytes).await.unwrap();
    s.flush().await.unwrap();
}

/// With `use-forwarded-headers` too, ingress-nginx's "when use-forwarded-headers setting is true"
/// cases: a PROXY source among `proxy-real-ip-cidr` is a proxy whose X-Forwarded-For names the
/// client; an untrusted one is the client. The pods get `X-Forwarded-For-Proxy-Protocol` with
/// what ingress-nginx's realip read. A peer outside `proxy-real-ip-cidr` is not believed at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_with_forwarded_headers() {
    let (_pods, dir, remora) = serve_service_with(
        "web",
        "web-9c0d1e2f3a",
        1,
        &[web_ingress("plain", "proxy-protocol", &[])],
        &["--configmap", "ingress-nginx/remora"],
    )
    .await;
    remora.wait_ready().await;
    let addr = remora.http;
    let header = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 1234\r\n";
    let xff = [("x-forwarded-for", "192.168.0.111")];
    let cases: [(&str, &[&str]); 4] = [
        // Everyone trusted (ingress-nginx's default 0.0.0.0/0): the proxy's word is taken.
        (
            "",
            &[
                "x-forwarded-for: 192.168.0.111",
                "x-forwarded-for-proxy-protocol: 192.168.0.111",
            ],
        ),
        // "should trust X-Forwarded headers when the client IP address is trusted".
        (
            "127.0.0.0/8,192.168.0.1/32",
            &[
                "x-forwarded-for: 192.168.0.111",
                "x-real-ip: 192.168.0.111",
                "x-forwarded-port: 1234",
                "x-forwarded-proto: http",
            ],
        ),
        // "should not trust X-Forwarded headers when the client IP address is not trusted".
        (
            "127.0.0.0/8",
            &[
                "x-forwarded-for: 192.168.0.1",
                "x-forwarded-for-proxy-protocol: 192.168.0.1",
                "x-forwarded-port: 1234",
            ],
        ),
        // The peer (127.0.0.1) itself untrusted: neither the header's source nor the list.
        ("10.0.0.0/8,192.168.0.1/32", &["x-forwarded-for: 127.0.0.1"]),
    ];
    for (cidrs, lines) in cases {
        let mut data = vec![
            ("use-proxy-protocol", "true"),
            ("use-forwarded-headers", "true"),
        ];
        if !cidrs.is_empty() {
            data.push(("proxy-real-ip-cidr", cidrs));
        }
        remora.rewrite(&dir, "cm.yaml", &config_map(&data)).await;
        let saw = echo(addr, header, "proxy-protocol", &xff).await;
        assert_lines(&saw, lines);
    }
    // enable-real-ip alone reads the PROXY header only (real_ip_header proxy_protocol).
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("use-proxy-protocol", "true"), ("enable-real-ip", "true")]),
        )
        .await;
    let saw = echo(addr, header, "proxy-protocol", &xff).await;
    assert_lines(&saw, &["x-forwarded-for: 192.168.0.1"]);
    assert!(
        !saw.iter()
            .any(|l| l.starts_with("x-forwarded-for-proxy-protocol")),
        "{saw:?}"
    );
}
