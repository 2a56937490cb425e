//! The lean client against real sockets: framing, pooling, timeouts, garbage from pods.

use super::*;
use crate::headers::encode_head;

use http_body_util::BodyExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// A pod on loopback answering each request, on every connection, with the next of
/// `responses` (each written in the given pieces); counts connections.
async fn pod(responses: Vec<Vec<&'static [u8]>>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    let responses = Arc::new(Mutex::new(responses.into_iter()));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let responses = responses.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                loop {
                    let mut chunk = [0u8; 1024];
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        let next = responses.lock().unwrap().next();
                        let Some(pieces) = next else { return };
                        for piece in pieces {
                            if piece == b"CLOSE" {
                                return;
                            }
                            stream.write_all(piece).await.unwrap();
                            stream.flush().await.unwrap();
                            tokio::task::yield_now().await;
                        }
                    }
                }
            });
        }
    });
    (addr, connections)
}

fn head(method: Method) -> Vec<u8> {
    let (mut parts, ()) = http::Request::builder()
        .method(method)
        .uri("/x?y=1")
        .header("host", "example.com")
        .body(())
        .unwrap()
        .into_parts();
    parts
        .headers
        .insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
    encode_head(&parts)
}

async fn get(
    pool: Pool,
    addr: SocketAddr,
    method: Method,
) -> Result<(Response<()>, Bytes, Option<HeaderMap>), Error> {
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(5),
    };
    let response = send(pool, addr, &method, &head(method.clone()), timeouts).await?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    Ok((
        Response::from_parts(parts, ()),
        collected.to_bytes(),
        trailers,
    ))
}

#[test]
fn request_head_is_origin_form_with_headers_as_given() {
    assert_eq!(
        String::from_utf8(head(Method::GET)).unwrap(),
        "GET /x?y=1 HTTP/1.1\r\nhost: example.com\r\nx-forwarded-for: 127.0.0.1\r\n\r\n"
    );
}

#[tokio::test]
async fn chunked_body_in_pieces_with_trailers_then_the_connection_is_reused() {
    let (addr, connections) = pod(vec![
        vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhel",
            b"lo\r\n6;ext=1\r\n world\r",
            b"\n0\r\nX-Checksum: abc\r\n",
            b"\r\n",
        ],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    let (response, body, trailers) = get(pool, addr, Method::GET).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-a"], "1");
    assert_eq!(body, "hello world");
    assert_eq!(trailers.unwrap()["x-checksum"], "abc");
    assert_eq!(pool.idle(addr), 1);
    let (_, body, _) = get(pool, addr, Method::GET).await.unwrap();
    assert_eq!(body, "abc");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one connection for both"
    );
}

#[tokio::test]
async fn informational_responses_are_read_past_and_head_has_no_body() {
    let (addr, connections) = pod(vec![
        vec![
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
        vec![b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Spaces:   \r\nContent-Length: 1000\r\n\r\n"],
        vec![b"HTTP/1.1 204 No Content\r\n\r\n"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    let (response, body, _) = get(pool, addr, Method::GET).await.unwrap();
    assert_eq!((response.status(), &body[..]), (StatusCode::OK, &b"ok"[..]));
    let (response, body, _) = get(pool, addr, Method::HEAD).await.unwrap();
    assert_eq!(response.headers()["content-length"], "1000");
    assert_eq!(response.headers()["x-empty"], "");
    assert_eq!(response.headers()["x-spaces"], "");
    assert!(body.is_empty());
    let (response, body, _) = get(pool, addr, Method::GET).await.unwrap();
    assert_eq!((response.status(), body.len()), (StatusCode::NO_CONTENT, 0));
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn body_until_close_and_connection_close_are_not_reused() {
    let (addr, connections) = pod(vec![
        vec![b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"close", b"CLOSE"],
        vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
        vec![b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    let (_, body, _) = get(pool, addr, Method::GET).await.unwrap();
    assert_eq!(body, "until close");
    for _ in 0..3 {
        let (_, body, _) = get(pool, addr, Method::GET).await.unwrap();
        assert_eq!(body, "ok");
    }
    assert_eq!(connections.load(Ordering::SeqCst), 4);
    assert_eq!(pool.idle(addr), 1);
}

#[tokio::test]
async fn a_pooled_connection_the_pod_closed_is_replaced_transparently() {
    // The pod answers once per connection and closes it without saying so.
    let (addr, connections) = pod(vec![
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", b"CLOSE"],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    assert_eq!(get(pool, addr, Method::GET).await.unwrap().1, "a");
    assert_eq!(get(pool, addr, Method::GET).await.unwrap().1, "b");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bad_responses_are_errors_not_panics() {
    let (addr, _) = pod(vec![
        vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        vec![b"NOT HTTP\r\n\r\n"],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"],
        vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            b"CLOSE",
        ],
        vec![b"HTTP/1.1 101 Switching Protocols\r\n\r\n"],
        vec![b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    for _ in 0..6 {
        let error = get(pool, addr, Method::GET).await.unwrap_err();
        assert!(!error.is_connect(), "{error}");
    }
    assert_eq!(pool.idle(addr), 0);
}

#[tokio::test]
async fn length_next_to_chunked_is_dropped_and_the_connection_not_reused() {
    let (addr, connections) = pod(vec![
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"],
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
    ])
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    let (response, body, _) = get(pool, addr, Method::GET).await.unwrap();
    assert!(!response.headers().contains_key("content-length"));
    assert_eq!(body, "ok");
    assert_eq!(pool.idle(addr), 0);
    get(pool, addr, Method::GET).await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_large_body_comes_whole_in_growing_reads() {
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut wire =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    wire.extend_from_slice(&body);
    let addr = scripted(vec![wire], false).await;
    let pool = Pool::new(Duration::from_secs(60));
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_secs(5),
    };
    let response = send(pool, addr, &Method::GET, &head(Method::GET), timeouts)
        .await
        .unwrap();
    let mut body_stream = response.into_body();
    let (mut got, mut largest) = (Vec::new(), 0);
    while let Some(frame) = body_stream.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        largest = largest.max(data.len());
        got.extend_from_slice(&data);
    }
    assert!(got == body, "{} bytes of {}", got.len(), body.len());
    assert!(largest > READ_CHUNK, "reads stayed at {largest} bytes");
    assert_eq!(pool.idle(addr), 1);
}

#[tokio::test]
async fn a_pod_silent_within_the_body_times_out() {
    let addr = scripted(
        vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf".to_vec()],
        false,
    )
    .await;
    let pool = Pool::new(Duration::from_secs(60));
    let timeouts = Timeouts {
        connect: Duration::from_secs(1),
        read: Duration::from_millis(200),
    };
    let response = send(pool, addr, &Method::GET, &head(Method::GET), timeouts)
        .await
        .unwrap();
    let started = Instant::now();
    let error = response.into_body().collect().await.unwrap_err();
    assert!(matches!(error, Error::BodyTimeout(_)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(pool.idle(addr), 0);
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let pool = Pool::new(Duration::from_secs(60));
    let error = get(pool, addr, Method::GET).await.unwrap_err();
    assert!(error.is_connect(), "{error}");
}

/// A pod that answers the first request on its one connection with `pieces`, written one
/// by one, then closes the connection if `close`.
async fn scripted(pieces: Vec<Vec<u8>>, close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let mut request = Vec::new();
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        for piece in pieces {
            if stream.write_all(&piece).await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
        if !close {
            // Keep the connection open until the test is over.
            let _ = stream.read(&mut [0u8; 1]).await;
        }
    });
    addr
}

/// `bytes` cut at the given (relative) points.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        if p > start {
            pieces.push(bytes[start..p].to_vec());
            start = p;
        }
    }
    pieces
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any body, chunked any way (extensions, trailers or not) and delivered in any pieces,
    /// comes out whole, and the connection is kept.
    #[test]
    fn chunked_bodies_survive_any_chunking_and_any_delivery(
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..700, 1..20),
        cuts in proptest::collection::vec(0usize..10_000, 0..12),
        trailers: bool,
        extensions: bool,
    ) {
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            let ext = if extensions { ";a=b" } else { "" };
            wire.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        wire.extend_from_slice(if trailers { b"0\r\nX-T: 1\r\n\r\n" } else { b"0\r\n\r\n" });
        runtime().block_on(async {
            let addr = scripted(split(&wire, &cuts), false).await;
            let pool = Pool::new(Duration::from_secs(60));
            let (_, got, got_trailers) = get(pool, addr, Method::GET).await.unwrap();
            assert_eq!(&got[..], &body[..]);
            assert_eq!(got_trailers.is_some(), trailers);
            assert_eq!(pool.idle(addr), 1);
        });
    }

    /// Whatever a pod sends, the client answers with a response or an error, and never
    /// keeps a connection whose response it could not read to the end.
    #[test]
    fn garbage_is_an_error_never_a_panic_or_a_kept_connection(
        head in proptest::sample::select(vec![
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"[..],
            &b"HTTP/1.1 200 OK\r\n"[..],
            &b""[..],
        ]),
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        cuts in proptest::collection::vec(0usize..1_000, 0..6),
    ) {
        let mut wire = head.to_vec();
        wire.extend_from_slice(&garbage);
        runtime().block_on(async {
            let addr = scripted(split(&wire, &cuts), true).await;
            let pool = Pool::new(Duration::from_secs(60));
            // (Garbage can be a valid response: 40 bytes after `Content-Length: 40`.)
            if get(pool, addr, Method::GET).await.is_err() {
                assert_eq!(pool.idle(addr), 0);
            }
        });
    }
}

/// The fuzz targets' reading from memory (`proxy::fuzzing`) gives what the client reads from a
/// pod's connection, for the same bytes in the same pieces.
#[test]
fn reading_from_memory_is_reading_from_the_pod() {
    let cases: [(&[u8], &[usize], bool); 6] = [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
            &[3, 50, 51, 60],
            false,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", &[20], false),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nX-A: 1\r\n\r\nuntil close",
            &[10, 40],
            true,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nshort", &[], true),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &[], true),
        (b"HTTP/1.1 999x\r\n\r\n", &[], true),
    ];
    for (wire, cuts, close) in cases {
        let pieces = split(wire, cuts);
        let memory = read_in_memory(&Method::GET, pieces.iter().map(Vec::as_slice));
        let socket = runtime().block_on(async {
            let addr = scripted(pieces.clone(), close).await;
            get(Pool::new(Duration::from_secs(60)), addr, Method::GET).await
        });
        match (memory, socket) {
            (Ok(m), Ok((head, body, trailers))) => {
                assert_eq!(m.head.status(), head.status());
                assert_eq!(m.head.headers(), head.headers());
                assert_eq!(m.body, &body[..]);
                assert_eq!(m.trailers, trailers);
            }
            (Err(_), Err(_)) => {}
            (m, s) => panic!(
                "{}: memory {m:?}, socket {s:?}",
                String::from_utf8_lossy(wire)
            ),
        }
    }
}

/// `upstream-keepalive-requests` and `upstream-keepalive-connections`: a connection that has
/// carried its requests is closed, and a worker keeps at most so many idle.
#[tokio::test]
async fn keepalive_limits_requests_per_connection_and_idle_connections() {
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (addr, connections) = pod(vec![vec![ok]; 8]).await;
    let pool = Pool::with(&model::UpstreamKeepalive {
        requests: 3,
        ..model::UpstreamKeepalive::default()
    });
    for _ in 0..6 {
        get(pool, addr, Method::GET).await.unwrap();
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2, "3 requests each");
    assert_eq!(pool.idle(addr), 0, "the last one has carried its 3");
    // No keep-alive: nothing kept, nothing taken.
    let none = Pool::with(&model::UpstreamKeepalive {
        connections: 0,
        ..model::UpstreamKeepalive::default()
    });
    get(none, addr, Method::GET).await.unwrap();
    get(none, addr, Method::GET).await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 4);
    assert_eq!(none.idle(addr), 0);
}

/// `upstream-keepalive-time` and `-timeout`: a connection older than the lifetime, or idle longer
/// than the timeout, is not used again.
#[tokio::test]
async fn keepalive_lifetime_and_idle_timeout_end_connections() {
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let (addr, connections) = pod(vec![vec![ok]; 6]).await;
    let short_lived = Pool {
        max_lifetime: Duration::from_millis(100),
        ..Pool::default()
    };
    get(short_lived, addr, Method::GET).await.unwrap();
    get(short_lived, addr, Method::GET).await.unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 1, "young: used again");
    tokio::time::sleep(Duration::from_millis(150)).await;
    get(short_lived, addr, Method::GET).await.unwrap();
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "past its lifetime: a new one"
    );
    let short_idle = Pool {
        idle_timeout: Duration::from_millis(100),
        ..Pool::default()
    };
    get(short_idle, addr, Method::GET).await.unwrap();
    assert_eq!(
        connections.load(Ordering::SeqCst),
        2,
        "idle for less: used again"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    get(short_idle, addr, Method::GET).await.unwrap();
    assert_eq!(
        connections.load(Ordering::SeqCst),
        3,
        "idle for longer: a new one"
    );
}
