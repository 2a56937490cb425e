//! `remora whoami`, the benchmark's and the demo's pods, as a process on loopback: its hello,
//! `/bytes/N` bodies of a chosen size, request bodies read, counted and dropped, and connections
//! kept for any number of requests.

#![allow(clippy::unwrap_used)]

mod common;
use bytes::Bytes;
use common::*;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// `remora whoami --listen 127.0.0.1:0 --name NAME`, killed when dropped.
struct Whoami {
    child: Child,
    addr: SocketAddr,
}

impl Whoami {
    fn start(name: &str) -> Whoami {
        let mut child = Command::new(binary())
            .args(["whoami", "--listen", "127.0.0.1:0", "--name", name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // "whoami: NAME on ADDR"
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line.trim().rsplit_once(" on ").unwrap().1.parse().unwrap();
        Whoami { child, addr }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Whoami {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.1 connection to `addr`, to send requests on one after the other.
async fn connect<B>(addr: std::net::SocketAddr) -> hyper::client::conn::http1::SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn whoami_says_hello_and_serves_bodies_of_a_chosen_size() {
    let pod = Whoami::start("pod-a");
    let hello = get(&pod.url("/anything"), &[]).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.body, "Hello \"pod-a\"!");
    assert_eq!(hello.headers["x-pod-name"], "pod-a");
    assert!(hello.headers.get("x-body-bytes").is_none());

    let mib = get(&pod.url("/bytes/1048576"), &[]).await;
    assert_eq!(mib.status, 200);
    assert_eq!(mib.headers["content-length"], "1048576");
    assert_eq!(mib.headers["content-type"], "application/octet-stream");
    assert_eq!(mib.body.len(), 1 << 20);
    assert!(mib.body.bytes().all(|b| b == 0));

    let empty = get(&pod.url("/bytes/0"), &[]).await;
    assert_eq!((empty.status.as_u16(), empty.body.as_str()), (200, ""));

    for path in ["/bytes/16777217", "/bytes/lots", "/bytes/"] {
        let r = get(&pod.url(path), &[]).await;
        assert_eq!(r.status, 400, "{path}");
        assert!(r.body.contains("at most 16777216"), "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn whoami_reads_request_bodies_and_keeps_the_connection() {
    let pod = Whoami::start("pod-b");
    let upload = Bytes::from(vec![b'u'; 1 << 20]);
    // Twice on one connection: the first body was read to its end.
    let mut sender = connect(pod.addr).await;
    for _ in 0..2 {
        let req = http::Request::post("/bytes/0")
            .header("host", "pod")
            .body(http_body_util::Full::new(upload.clone()))
            .unwrap();
        let resp = Resp::read(sender.send_request(req).await.unwrap()).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers["x-body-bytes"], "1048576");
        assert_eq!(resp.body, "");
    }
    // A body of no announced length (chunked) is counted too.
    let chunks = futures_util::stream::iter(
        ["12", "345"].map(|c| Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(c)))),
    );
    let mut sender = connect(pod.addr).await;
    let req = http::Request::post("/")
        .header("host", "pod")
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let resp = Resp::read(sender.send_request(req).await.unwrap()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, "Hello \"pod-b\"!");
    assert_eq!(resp.headers["x-body-bytes"], "5");
}

#[tokio::test]
async fn whoami_keeps_a_connection_past_a_thousand_requests() {
    let pod = Whoami::start("pod-c");
    let mut sender = connect(pod.addr).await;
    for i in 0..1100 {
        let req = http::Request::get("/")
            .header("host", "pod")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("connection").is_none(), "request {i}");
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    }
}
