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

/// One pod behind the Ingress of `public.example.com`, served with the flags `extra`.
async fn serve_public(extra: &[&str]) -> (Vec<Pod>, Dir, Remora) {
    serve_service_with(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[web_ingress("public", "public.example.com", &[])],
        extra,
    )
    .await
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
    let (_pods, _dir, remora) = serve_public(&["--client-header-timeout", "1"]).await;
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

/// Read one HTTP/1 response from a keep-alive connection (bounded); its status.
async fn read_response(s: &mut TcpStream) -> u16 {
    status(&read_http1_response(s).await)
}

const KEEP_ALIVE_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: public.example.com\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_busy_ones_are_not() {
    let (_pods, _dir, remora) = serve_public(&["--keepalive-timeout", "1"]).await;
    // One request, then nothing: closed about a second after its response.
    let mut idle = TcpStream::connect(remora.http).await.unwrap();
    idle.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    assert_eq!(read_response(&mut idle).await, 200);
    let watching =
        tokio::spawn(async move { closed_within(&mut idle, Duration::from_secs(10)).await });

    // A request every 300 ms for 2.4 s: never idle for a second, never closed.
    let mut busy = TcpStream::connect(remora.http).await.unwrap();
    for i in 0..8 {
        busy.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
        assert_eq!(read_response(&mut busy).await, 200, "request {i}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let took = watching
        .await
        .unwrap()
        .expect("the idle connection still open after 10 s");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "idle connection closed after {took:?}"
    );
}

/// An HTTP/1 connection idle for a while keeps no hyper state (its buffers are released); the
/// client's next bytes bring it back whatever they hold: a head sent in parts, pipelined heads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_released_serves_its_next_requests() {
    let (_pods, _dir, remora) = serve_public(&[]).await;
    let mut s = TcpStream::connect(remora.http).await.unwrap();
    s.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    // Idle long enough to be released (a tenth of a second).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (first, rest) = KEEP_ALIVE_REQUEST.split_at(7);
    s.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(rest).await.unwrap();
    assert_eq!(read_response(&mut s).await, 200, "a head in two parts");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Two heads at once, the first larger than one read of a parked connection.
    let long = format!(
        "GET /{} HTTP/1.1\r\nHost: public.example.com\r\n\r\n",
        "a".repeat(2_000)
    );
    let mut two = long.into_bytes();
    two.extend_from_slice(KEEP_ALIVE_REQUEST);
    s.write_all(&two).await.unwrap();
    assert_eq!(
        read_response(&mut s).await,
        200,
        "the first of two pipelined"
    );
    assert_eq!(
        read_response(&mut s).await,
        200,
        "the second of two pipelined"
    );
    // Closed by the client while released: nothing to answer, nothing breaks.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(s);
    let r = get(&remora.url("/"), &[("host", "public.example.com")]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_head_sent_slowly_is_cut_by_the_header_timeout() {
    let (_pods, _dir, remora) =
        serve_public(&["--keepalive-timeout", "10", "--client-header-timeout", "1"]).await;
    let mut s = TcpStream::connect(remora.http).await.unwrap();
    s.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    assert_eq!(read_response(&mut s).await, 200);
    // Idle for twice the header timeout: kept, as the keep-alive timeout says.
    assert_eq!(closed_within(&mut s, Duration::from_secs(2)).await, None);

    // Then a head, a byte every 200 ms: cut a second after its first byte.
    let (mut reading, mut writing) = s.into_split();
    let trickle = tokio::spawn(async move {
        for b in KEEP_ALIVE_REQUEST {
            if writing.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(8), reading.read_to_end(&mut rest)).await;
    let took = started.elapsed();
    trickle.abort();
    assert!(closed.is_ok(), "a slow head held the connection for 8 s");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "slow head cut after {took:?}"
    );
}

/// An HTTP/2 frame header: length, type, flags, stream.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const HEADERS: u8 = 1;
const DATA: u8 = 0;
const END_STREAM: u8 = 1;
const ACK: u8 = 1;

/// Open an HTTP/2 connection with prior knowledge and send GET / for `host` on stream 1 (HPACK:
/// :method GET, :scheme http, :path / from the static table, :authority a literal).
async fn h2_get(addr: SocketAddr, host: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    let host = host.as_bytes();
    let mut block = vec![0x82, 0x86, 0x84, 0x41, u8::try_from(host.len()).unwrap()];
    block.extend_from_slice(host);
    hello.extend(frame(HEADERS, END_STREAM | 0x4, 1, &block));
    s.write_all(&hello).await.unwrap();
    s
}

/// When an HTTP/2 connection's frames came, read until the proxy closes it (bounded).
#[derive(Default)]
struct H2Seen {
    /// The end of the response on stream 1.
    response_end: Option<Instant>,
    goaway: Option<Instant>,
}

/// Read frames until the proxy closes the connection, answering its settings and pings.
async fn h2_until_closed(mut s: TcpStream, within: Duration) -> H2Seen {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = H2Seen::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("the HTTP/2 connection still open")
            .unwrap_or(0);
        if n == 0 {
            return seen;
        }
        buf.extend_from_slice(&chunk[..n]);
        while buf.len() >= 9 {
            let len = usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    let _ = s.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                }
                PING if flags & ACK == 0 => {
                    let _ = s.write_all(&frame(PING, ACK, 0, &payload)).await;
                }
                HEADERS | DATA if stream == 1 && flags & END_STREAM != 0 => {
                    seen.response_end = Some(Instant::now());
                }
                GOAWAY => {
                    seen.goaway.get_or_insert(Instant::now());
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_without_streams_gets_goaway_after_the_keepalive_timeout() {
    let (_pods, _dir, remora) = serve_public(&["--keepalive-timeout", "1"]).await;
    let s = h2_get(remora.http, "public.example.com").await;
    let seen = h2_until_closed(s, Duration::from_secs(10)).await;
    let response_end = seen.response_end.expect("no response to GET /");
    let goaway = seen.goaway.expect("closed without GOAWAY");
    let idle = goaway.duration_since(response_end);
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_secs(3),
        "GOAWAY after {idle:?} without streams"
    );
}

/// SIGTERM with `--shutdown-grace-period`: for its length Remora is not ready, still accepts,
/// and tells every client to leave between requests (`Connection: close`, GOAWAY) instead of
/// closing kept-alive connections under them; then the listener closes and it exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_connections_before_the_listener_closes() {
    let (_pods, _dir, mut remora) = serve_public(&["--shutdown-grace-period", "3"]).await;
    // A kept-alive HTTP/1 connection and an HTTP/2 one, both idle after a response.
    let mut kept = TcpStream::connect(remora.http).await.unwrap();
    kept.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    let first = read_http1_response(&mut kept).await;
    assert_eq!(status(&first), 200);
    assert!(!first.to_ascii_lowercase().contains("connection: close"));
    let h2 = h2_get(remora.http, "public.example.com").await;
    let h2 = tokio::spawn(h2_until_closed(h2, Duration::from_secs(20)));
    assert_eq!(remora.readyz().await, 200);

    let signalled = Instant::now();
    remora.terminate();
    // Not ready any more: load balancers and the Service take the replica out.
    let started = Instant::now();
    while remora.readyz().await != 503 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still ready after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The kept-alive connection is still served, and told to close.
    kept.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    let last = read_http1_response(&mut kept).await;
    assert_eq!(status(&last), 200);
    assert!(
        last.to_ascii_lowercase().contains("connection: close"),
        "{last}"
    );
    assert!(closed_within(&mut kept, Duration::from_secs(2))
        .await
        .is_some());
    // A new connection is still accepted, for one request.
    let mut new = TcpStream::connect(remora.http).await.unwrap();
    new.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    let answer = read_http1_response(&mut new).await;
    assert_eq!(status(&answer), 200);
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // HTTP/2: GOAWAY once the drain began, not at the end of the grace period.
    let seen = h2.await.unwrap();
    assert!(seen.response_end.is_some(), "no response on HTTP/2");
    let goaway = seen.goaway.expect("HTTP/2 closed without GOAWAY");
    assert!(
        goaway > signalled && goaway.duration_since(signalled) < Duration::from_secs(2),
        "GOAWAY {:?} after SIGTERM",
        goaway.duration_since(signalled)
    );
    // Then the listener goes, after the grace period, and Remora exits cleanly.
    let http = remora.http;
    let code = tokio::task::block_in_place(|| remora.wait_exit(Duration::from_secs(20)));
    assert_eq!(code, Some(0));
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(2_900),
        "exited {took:?} after SIGTERM"
    );
    assert!(TcpStream::connect(http).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_max_connections_the_oldest_idle_connection_makes_room() {
    let (_pods, _dir, remora) = serve_service_with(
        "web",
        "web-6c7d8e9f4a",
        1,
        &[web_ingress("public", "public.example.com", &[])],
        // One worker: its HTTP socket gets every connection.
        &["--max-connections", "4", "--workers", "1"],
    )
    .await;
    // Four keep-alive connections, idle one after the other.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(remora.http).await.unwrap();
        s.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
        assert_eq!(read_response(&mut s).await, 200);
        idle.push(s);
        // Distinct idle instants (they are kept to the millisecond).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A fifth client is served...
    let mut fifth = TcpStream::connect(remora.http).await.unwrap();
    fifth.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
    assert_eq!(read_response(&mut fifth).await, 200);
    // ...in the place of the connection idle longest; the others stay.
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(5))
            .await
            .is_some(),
        "the oldest idle connection still open"
    );
    for (i, s) in idle.iter_mut().enumerate().skip(1) {
        assert_eq!(
            closed_within(s, Duration::from_millis(200)).await,
            None,
            "connection {i} closed"
        );
    }
}

/// Out of descriptors (a low open-files limit, and a `--max-connections` above it): the accept
/// loop closes the keep-alive connections idle longest to serve new clients, instead of stalling,
/// and says so in one rate-limited warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_idle_connections_make_room() {
    let (_pods, dir) = service_dir("web", "web-7d8e9f0a1b", 1).await;
    dir.write(
        "ing.yaml",
        &web_ingress("public", "public.example.com", &[]),
    );
    let mut args: Vec<String> = ["serve", "--manifests"].map(String::from).to_vec();
    args.push(dir.path().display().to_string());
    args.extend(LISTEN_ON_LOOPBACK.map(String::from));
    args.extend(["--workers", "1", "--max-connections", "100000"].map(String::from));
    let remora = Remora::start_with_open_files(&args, 64);
    // More keep-alive clients, one after the other, than the process has descriptors.
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(remora.http).await.unwrap();
        s.write_all(KEEP_ALIVE_REQUEST).await.unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s))
            .await
            .unwrap_or_else(|_| panic!("client {i} not served"));
        assert_eq!(status, 200, "client {i}");
        clients.push(s);
    }
    // The first ones made room for the last ones; the last one is still open.
    assert!(
        closed_within(&mut clients[0], Duration::from_secs(5))
            .await
            .is_some(),
        "the connection idle longest is still open"
    );
    assert_eq!(
        closed_within(&mut clients[99], Duration::from_millis(200)).await,
        None
    );
    let log = remora.stderr_text();
    assert_eq!(
        log.matches("accept failed (out of file descriptors?")
            .count(),
        1,
        "{log}"
    );
}

/// `ignore-invalid-headers`: a header line whose name is not a token (`Bad Header: x`, a line
/// without a colon) gets 400 by default (hyper's lenient parser would also drop a line with a
/// control character in its value, a smuggling risk behind a lenient front proxy); `"true"`
/// leaves it out and serves the request, as nginx's default, the pod never seeing it; what would
/// change the request's framing still gets 400 (NUL, a CR without LF, two different
/// `Content-Length`s). `"false"` answers 400 (nginx passes the line on, which HTTP cannot
/// carry), with a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_header_lines_are_refused_or_left_out() {
    let (_pods, dir, remora) = serve_public(&["--configmap", "ingress-nginx/remora"]).await;
    remora.wait_ready().await;
    let addr = remora.http;
    let invalid = "GET /echo-headers HTTP/1.1\r\nHost: public.example.com\r\nBad Header: x\r\nno colon here\r\nX-Kept: 1\r\nConnection: close\r\n\r\n";
    let r = exchange(addr, invalid).await;
    assert_eq!(status(&r), 400, "by default: {r}");
    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("ignore-invalid-headers", "true")]),
        )
        .await;
    let r = exchange(addr, invalid).await;
    assert_eq!(status(&r), 200, "{r}");
    let saw = pod_saw(&r);
    assert!(saw.contains(&"x-kept: 1".to_owned()), "{saw:?}");
    assert!(
        !saw.iter()
            .any(|l| l.contains("bad header") || l.contains("no colon")),
        "{saw:?}"
    );
    for (raw, what) in [
        (
            "GET / HTTP/1.1\r\nHost: public.example.com\r\nX-A: a\0b\r\nConnection: close\r\n\r\n",
            "NUL in a value",
        ),
        (
            "GET / HTTP/1.1\r\nHost: public.example.com\r\nX-A: a\rb\r\nConnection: close\r\n\r\n",
            "CR without LF",
        ),
        (
            "POST /echo-body HTTP/1.1\r\nHost: public.example.com\r\nContent-Length: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nxy",
            "two Content-Lengths",
        ),
    ] {
        let r = exchange(addr, raw).await;
        assert_eq!(status(&r), 400, "{what}: {r}");
    }

    remora
        .rewrite(
            &dir,
            "cm.yaml",
            &config_map(&[("ignore-invalid-headers", "false")]),
        )
        .await;
    remora
        .wait_log("ignore-invalid-headers: \"false\": Remora cannot pass header lines")
        .await;
    let r = exchange(addr, invalid).await;
    assert_eq!(status(&r), 400, "{r}");
    let valid = "GET / HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n";
    assert_eq!(status(&exchange(addr, valid).await), 200);
}
