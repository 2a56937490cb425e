//! `ssl-passthrough` through the real binary: pods that are TLS servers themselves (their own
//! certificates), reached through Remora's HTTPS listener with `--enable-ssl-passthrough`. The
//! client sees the pod's certificate and talks to the pod; other names, no SNI, and Remora
//! without the flag are terminated as ever; a stalled ClientHello is closed at the header
//! timeout; a reload that removes the annotation ends passthrough for new connections; a relayed
//! connection holds its place among the open connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use bytes::Bytes;
use common::tls::*;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PASS: &str = "pass.example.com";
const WEB: &str = "web.example.com";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Pods of one Deployment that terminate TLS themselves with `cert`, on consecutive loopback
/// addresses sharing a port. Each answers `GET` with `hello from <name>` and echoes a `POST`'s
/// body.
struct TlsPods {
    addrs: Vec<SocketAddr>,
    /// An address of the same block and port where nothing listens (a pod that is gone).
    dead: SocketAddr,
}

async fn tls_pods(cert: &TestCert, n: usize) -> TlsPods {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der.clone())],
            PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    'blocks: for _ in 0..50 {
        let ips = address_block(n + 1);
        let first = TcpListener::bind((ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for ip in &ips[1..n] {
            match TcpListener::bind((*ip, port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'blocks,
            }
        }
        let addrs = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        for (i, listener) in listeners.into_iter().enumerate() {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let service = hyper::service::service_fn(
                            move |req: http::Request<hyper::body::Incoming>| async move {
                                let body = if req.method() == http::Method::POST {
                                    req.into_body().collect().await?.to_bytes()
                                } else {
                                    Bytes::from(format!("hello from tls-pod-{i}"))
                                };
                                Ok::<_, hyper::Error>(http::Response::new(Full::new(body)))
                            },
                        );
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        }
        return TlsPods {
            addrs,
            dead: SocketAddr::from((ips[n], port)),
        };
    }
    panic!("no loopback addresses sharing a free port");
}

/// A Service `name` (port 80, as `IngressYaml` names it; the pods' port is the slice's) and its EndpointSlice with these addresses (one port).
fn tls_service(name: &str, addrs: &[SocketAddr]) -> String {
    let port = addrs[0].port();
    let mut s = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: 80\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-abcde\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n- port: {port}\nendpoints:\n"
    );
    for a in addrs {
        s.push_str(&format!("- addresses: [\"{}\"]\n", a.ip()));
    }
    s
}

/// The passthrough Ingress of `host` (its location `/` to Service `tls-app`, `/plain` to the
/// HTTP pods of `web`), with or without the annotation.
fn pass_ingress(host: &str, annotated: bool) -> String {
    let ing = IngressYaml::new("pass")
        .rule(Some(host), "/", "tls-app")
        .rule(Some(host), "/plain", "web");
    let ing = if annotated {
        ing.nginx("ssl-passthrough", "true")
    } else {
        ing
    };
    ing.build()
}

/// A TLS client configuration that trusts only `root` (else any certificate).
fn client(root: Option<&TestCert>) -> rustls::ClientConfig {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = match root {
        Some(cert) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(cert.der.clone())).unwrap();
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(proxy::NoVerify::new(provider())))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to `addr` with SNI `sni` (`None`: no SNI, the name only checks the
/// certificate), trusting `root` (else anything); `Err`: the handshake failed.
async fn connect(
    addr: SocketAddr,
    sni: Option<&str>,
    root: Option<&TestCert>,
) -> std::io::Result<Tls> {
    let mut config = client(root);
    config.enable_sni = sni.is_some();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.unwrap_or("no-sni.invalid").to_owned()).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
}

/// The certificate the server presented.
fn peer(tls: &Tls) -> Vec<u8> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

/// An HTTP/1.1 client on a TLS connection.
async fn http1(tls: Tls) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

/// Send one request on `sender`: the status and body.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: &str,
    method: &str,
    body: Bytes,
) -> (u16, Bytes) {
    let req = http::Request::builder()
        .method(method)
        .uri("/")
        .header("host", host)
        .body(Full::new(body))
        .unwrap();
    sender.ready().await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("a response within 10 s")
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

/// Passthrough pods (two, and one that is gone) for `PASS`, and Remora's own certificate and
/// HTTP pods for `WEB`.
struct Setup {
    pod_cert: TestCert,
    web_cert: TestCert,
    dir: Dir,
    _web_pods: Vec<Pod>,
}

async fn setup() -> Setup {
    let pod_cert = make_cert(&[PASS]);
    let web_cert = make_cert(&[WEB]);
    let tls = tls_pods(&pod_cert, 2).await;
    let web_pods = pods("web-5f6d7c8b9a", 1).await;
    let dir = Dir::new();
    let mut addrs = vec![tls.dead];
    addrs.extend(&tls.addrs);
    dir.write("tls-app.yaml", &tls_service("tls-app", &addrs));
    dir.write("web.yaml", &service_yaml("web"));
    dir.write(
        "web-slice.yaml",
        &slice_yaml("web", "default", None, &web_pods.iter().collect::<Vec<_>>()),
    );
    dir.write("web-tls.yaml", &tls_secret_yaml("web-tls", &web_cert));
    dir.write(
        "web-ing.yaml",
        &IngressYaml::new("web")
            .tls(&[WEB], "web-tls")
            .rule(Some(WEB), "/", "web")
            .build(),
    );
    dir.write("pass-ing.yaml", &pass_ingress(PASS, true));
    Setup {
        pod_cert,
        web_cert,
        dir,
        _web_pods: web_pods,
    }
}

/// With the flag, a client naming the passthrough host verifies the pod's own certificate (it
/// trusts nothing else) and talks to the pod: requests and a 1 MiB body both ways, on every
/// connection though one of the three endpoints is gone (the next pod is tried). The other host
/// of the listener is terminated with its Secret's certificate; no SNI and an unknown name get
/// the default certificate; plain HTTP for the passthrough host is routed as ever. The relayed
/// connections are counted in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passthrough_host_reaches_the_pod_others_are_terminated() {
    let s = setup().await;
    let remora = Remora::serve(&[s.dir.path()], &["--enable-ssl-passthrough"]);
    let mut pods_seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let tls = connect(remora.https, Some(PASS), Some(&s.pod_cert))
            .await
            .expect("the pod's certificate, verified");
        assert_eq!(peer(&tls), s.pod_cert.der);
        let mut h = http1(tls).await;
        let (status, body) = send(&mut h, PASS, "GET", Bytes::new()).await;
        assert_eq!(status, 200);
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(body.starts_with("hello from tls-pod-"), "{body}");
        pods_seen.insert(body);
    }
    assert_eq!(pods_seen.len(), 2, "round robin over the pods that answer");

    let big: Bytes = (0..1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let tls = connect(remora.https, Some(PASS), Some(&s.pod_cert))
        .await
        .unwrap();
    let mut h = http1(tls).await;
    let (status, body) = send(&mut h, PASS, "POST", big.clone()).await;
    assert_eq!((status, body.len()), (200, big.len()));
    assert!(body == big, "the 1 MiB body came back as sent");
    // The same relayed connection carries more requests.
    assert_eq!(send(&mut h, PASS, "GET", Bytes::new()).await.0, 200);

    // The other host: terminated by Remora, its own certificate, its HTTP pod.
    let tls = connect(remora.https, Some(WEB), Some(&s.web_cert))
        .await
        .expect("Remora's certificate for the other host");
    assert_eq!(peer(&tls), s.web_cert.der);
    let mut h = http1(tls).await;
    let (status, body) = send(&mut h, WEB, "GET", Bytes::new()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("web-5f6d7c8b9a-0"));

    // Plain HTTP requests for the passthrough host are routed as any host's (ingress-nginx's
    // server on port 80 serves its locations).
    let plain = get(&remora.url("/plain"), &[("host", PASS)]).await;
    assert_eq!(plain.status, 200);
    assert!(plain.body.contains("web-5f6d7c8b9a-0"), "{}", plain.body);

    // No SNI, and a name no passthrough Ingress has: terminated, the default certificate.
    for sni in [None, Some("other.example.com")] {
        let tls = connect(remora.https, sni, None).await.unwrap();
        assert!(
            cert_mentions(&peer(&tls), proxy::DEFAULT_CERTIFICATE_CN),
            "{sni:?}: the default certificate"
        );
        let mut h = http1(tls).await;
        let (status, _) = send(&mut h, "other.example.com", "GET", Bytes::new()).await;
        assert_eq!(status, 404, "{sni:?}: Remora answers");
    }

    let metrics = get(&format!("http://{}/metrics", remora.admin), &[]).await;
    let line = metrics
        .body
        .lines()
        .find(|l| l.starts_with("remora_ssl_passthrough_connections_total{"))
        .unwrap_or_else(|| panic!("no passthrough counter in\n{}", metrics.body));
    assert!(line.contains("ingress=\"default/pass\""), "{line}");
    assert!(line.contains("service=\"default/tls-app:80\""), "{line}");
    let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 7, "{line}");
    let failed = metrics
        .body
        .lines()
        .find(|l| {
            l.starts_with("remora_upstream_connect_errors_total{")
                && l.contains("ingress=\"default/pass\",service=\"default/tls-app:80\"")
        })
        .unwrap_or_default();
    assert!(
        !failed.ends_with(" 0") && !failed.is_empty(),
        "the gone pod was tried: {failed}"
    );
}

/// Without the flag the annotation does nothing (as in ingress-nginx): Remora terminates the
/// host's connections (the default certificate: its Ingress has no `spec.tls`), and a warning
/// says to pass the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_remora_terminates() {
    let s = setup().await;
    let remora = Remora::serve(&[s.dir.path()], &[]);
    assert!(
        connect(remora.https, Some(PASS), Some(&s.pod_cert))
            .await
            .is_err(),
        "the pod's certificate is not what the client gets"
    );
    let tls = connect(remora.https, Some(PASS), None).await.unwrap();
    assert!(cert_mentions(&peer(&tls), proxy::DEFAULT_CERTIFICATE_CN));
    let status = remora.status().await.to_string();
    assert!(
        status.contains("Remora runs without --enable-ssl-passthrough"),
        "{status}"
    );
}

/// The ClientHello too must come within the header timeout: half of one, then nothing, and the
/// connection is closed after `--client-header-timeout`, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_hello_is_closed_after_the_header_timeout() {
    let s = setup().await;
    let remora = Remora::serve(
        &[s.dir.path()],
        &["--enable-ssl-passthrough", "--client-header-timeout", "1"],
    );
    // A real ClientHello for the passthrough host, as a client writes it.
    let config = Arc::new(client(None));
    let mut hello_writer =
        rustls::ClientConnection::new(config, ServerName::try_from(PASS).unwrap()).unwrap();
    let mut hello = Vec::new();
    hello_writer.write_tls(&mut hello).unwrap();
    assert!(hello.len() > 100, "{}", hello.len());
    let mut tcp = tokio::net::TcpStream::connect(remora.https).await.unwrap();
    tcp.write_all(&hello[..hello.len() / 2]).await.unwrap();
    let closed = closed_within(&mut tcp, Duration::from_secs(10))
        .await
        .expect("closed within 10 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}, before the header timeout"
    );
    // A ClientHello that comes in two pieces, within the timeout, is relayed whole: the
    // handshake completes with the pod, whose certificate the client verifies.
    let config = Arc::new(client(Some(&s.pod_cert)));
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from(PASS).unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    let mut tcp = tokio::net::TcpStream::connect(remora.https).await.unwrap();
    tcp.write_all(&hello[..hello.len() / 2]).await.unwrap();
    // A slow client, on purpose: the second piece comes later than the first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tcp.write_all(&hello[hello.len() / 2..]).await.unwrap();
    let mut buf = vec![0u8; 32 * 1024];
    while conn.is_handshaking() {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("the handshake goes on within 10 s")
            .unwrap();
        assert!(n > 0, "closed during the handshake");
        let mut read = &buf[..n];
        while !read.is_empty() {
            conn.read_tls(&mut read).unwrap();
            conn.process_new_packets()
                .expect("the pod's certificate, verified");
        }
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        tcp.write_all(&out).await.unwrap();
    }
    let presented = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    assert_eq!(presented, Some(s.pod_cert.der.clone()));
}

/// A reload that removes the annotation: new connections of the host are terminated by Remora;
/// the one relayed before goes on, still with the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_without_the_annotation_stops_passthrough_for_new_connections() {
    let s = setup().await;
    let remora = Remora::serve(&[s.dir.path()], &["--enable-ssl-passthrough"]);
    let tls = connect(remora.https, Some(PASS), Some(&s.pod_cert))
        .await
        .unwrap();
    let mut relayed = http1(tls).await;
    assert_eq!(send(&mut relayed, PASS, "GET", Bytes::new()).await.0, 200);

    remora
        .rewrite(&s.dir, "pass-ing.yaml", &pass_ingress(PASS, false))
        .await;
    let tls = connect(remora.https, Some(PASS), None).await.unwrap();
    assert!(cert_mentions(&peer(&tls), proxy::DEFAULT_CERTIFICATE_CN));
    assert!(connect(remora.https, Some(PASS), Some(&s.pod_cert))
        .await
        .is_err());

    let (status, body) = send(&mut relayed, PASS, "GET", Bytes::new()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).starts_with("hello from tls-pod-"));
}

/// A relayed connection is one of the accept loop's open connections, and never an idle one:
/// at `--max-connections 1` a second client waits in the backlog while it lasts, and is served
/// once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_connection_counts_toward_the_connection_limit() {
    let s = setup().await;
    let remora = Remora::serve(
        &[s.dir.path()],
        &[
            "--enable-ssl-passthrough",
            "--max-connections",
            "1",
            "--workers",
            "1",
        ],
    );
    let tls = connect(remora.https, Some(PASS), Some(&s.pod_cert))
        .await
        .unwrap();
    let mut relayed = http1(tls).await;
    assert_eq!(send(&mut relayed, PASS, "GET", Bytes::new()).await.0, 200);

    let https = remora.https;
    let web_cert = TestCert {
        cert_pem: s.web_cert.cert_pem.clone(),
        key_pem: s.web_cert.key_pem.clone(),
        der: s.web_cert.der.clone(),
    };
    let mut second = tokio::spawn(async move {
        let tls = connect(https, Some(WEB), Some(&web_cert)).await.unwrap();
        let mut h = http1(tls).await;
        send(&mut h, WEB, "GET", Bytes::new()).await.0
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut second)
            .await
            .is_err(),
        "served while the relayed connection holds the only place"
    );
    drop(relayed);
    let status = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("served once the relayed connection ended")
        .unwrap();
    assert_eq!(status, 200);
}

/// `remora controller` takes the flag too (the serving options are shared).
#[test]
fn the_controller_has_the_flag() {
    let out = std::process::Command::new(binary())
        .args(["controller", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--enable-ssl-passthrough"), "{help}");
}
