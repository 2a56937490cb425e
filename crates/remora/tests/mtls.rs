//! Client certificate authentication (ingress-nginx's `auth-tls-*`) through the real binary, with
//! real TLS: certificates asked for per host (by SNI), verified against the Secret's CA and
//! revocation lists, nginx's answers (400, the error page's 302, 403 for `auth-tls-match-cn`),
//! the `ssl-client-*` headers the pods see, and 421 for a request on a connection made for
//! another host (HTTP/2 coalescing) or for the host's earlier settings. The reference is
//! ingress-nginx's `test/e2e/annotations/authtls.go`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::tls::*;
use common::*;

use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A CA that signs client certificates.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A client certificate and its key.
struct Identity {
    der: Vec<u8>,
    key: Vec<u8>,
}

/// A client certificate `O=Remora Test, CN=<cn>` issued by `ca`.
fn client(ca: &Ca, cn: &str) -> Identity {
    client_with_serial(ca, cn, None)
}

/// The same with this serial number.
fn client_with_serial(ca: &Ca, cn: &str, serial: Option<u64>) -> Identity {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Remora Test");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = serial.map(rcgen::SerialNumber::from);
    let key = rcgen::KeyPair::generate().unwrap();
    let issuer = rcgen::Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Identity {
        der: cert.der().to_vec(),
        key: key.serialize_der(),
    }
}

/// An Opaque Secret with `ca.crt`, as ingress-nginx's client-certs example makes it.
fn ca_secret_yaml(name: &str, ca: &Ca) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca.pem);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: Opaque\ndata:\n  ca.crt: {b64}\n"
    )
}

/// The same with a `ca.crl` in which `ca` revokes these serial numbers.
fn ca_secret_with_crl_yaml(name: &str, ca: &Ca, revoked: &[u64]) -> String {
    let crl = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(*serial),
                revocation_time: rcgen::date_time_ymd(2024, 1, 1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&rcgen::Issuer::from_params(&ca.params, &ca.key))
    .unwrap()
    .pem()
    .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(crl);
    format!("{}  ca.crl: {b64}\n", ca_secret_yaml(name, ca))
}

/// Presents the identity if the server asks for one, and remembers whether it asked.
#[derive(Debug)]
struct Presenter {
    key: Option<Arc<rustls::sign::CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl rustls::client::ResolvesClientCert for Presenter {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// One client connection (HTTP/1.1 or, with `h2`, HTTP/2) and whether the server asked for a
/// certificate in its handshake.
struct Conn {
    send: Sender,
    sni: String,
    asked: bool,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(addr: SocketAddr, sni: &str, identity: Option<&Identity>, h2: bool) -> Conn {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = identity.map(|id| {
        Arc::new(
            rustls::sign::CertifiedKey::from_der(
                vec![CertificateDer::from(id.der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone())),
                &provider,
            )
            .unwrap(),
        )
    });
    let asked = Arc::new(AtomicBool::new(false));
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(proxy::NoVerify::new(provider)))
        .with_client_cert_resolver(Arc::new(Presenter {
            key,
            asked: asked.clone(),
        }));
    config.alpn_protocols = vec![if h2 {
        b"h2".to_vec()
    } else {
        b"http/1.1".to_vec()
    }];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
        .expect("TLS handshake failed");
    let io = TokioIo::new(tls);
    let send = if h2 {
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        Sender::H2(send)
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        Sender::H1(send)
    };
    Conn {
        send,
        sni: sni.to_owned(),
        asked: asked.load(Ordering::Relaxed),
    }
}

impl Conn {
    /// GET `/echo-headers` of `host` (HTTP/2: the `:authority`) with these headers.
    async fn get(&mut self, host: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = Request::builder();
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = match &mut self.send {
            Sender::H1(send) => {
                let req = req
                    .uri("/echo-headers")
                    .header("host", host)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                send.send_request(req).await.unwrap()
            }
            Sender::H2(send) => {
                let req = req
                    .uri(format!("https://{host}/echo-headers"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                send.send_request(req).await.unwrap()
            }
        };
        Resp::read(resp).await
    }
}

/// An Ingress of the tests: its name, host and annotations.
type HostSpec<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);

/// One request on a new HTTP/1.1 connection whose SNI is `host`.
async fn get(remora: &Remora, host: &str, identity: Option<&Identity>) -> (Resp, bool) {
    let mut c = connect(remora.https, host, identity, false).await;
    let sni = c.sni.clone();
    (c.get(&sni, &[]).await, c.asked)
}

/// The hosts of `ingresses` (name, host, annotations), all for Service `web` with a certificate
/// of their own, and the CA Secret `ca`.
async fn setup(ca: &Ca, ingresses: &[HostSpec<'_>]) -> (Vec<Pod>, Dir, Remora) {
    setup_with(ca_secret_yaml("ca", ca), ingresses).await
}

/// [`setup`] with this Secret `ca`.
async fn setup_with(ca_secret: String, ingresses: &[HostSpec<'_>]) -> (Vec<Pod>, Dir, Remora) {
    let (pods, dir) = service_dir("web", "web-7d9c6b5f4d", 1).await;
    dir.write("ing.yaml", &ing_yaml(ca_secret, ingresses));
    let remora = Remora::serve(&[dir.path()], &[]);
    remora.wait_ready().await;
    (pods, dir, remora)
}

/// The Secret `ca`, one certificate for every host, and the Ingresses.
fn ing_yaml(ca_secret: String, ingresses: &[HostSpec<'_>]) -> String {
    let hosts: Vec<&str> = ingresses.iter().map(|(_, h, _)| *h).collect();
    let server = make_cert(&hosts);
    let mut docs = vec![ca_secret, tls_secret_yaml("server-tls", &server)];
    for (name, host, annotations) in ingresses {
        docs.push(
            IngressYaml::new(name)
                .nginx_all(annotations)
                .tls(&[host], "server-tls")
                .rule(Some(host), "/", "web")
                .build(),
        );
    }
    docs.join("---\n")
}

/// `auth-tls-verify-client: on` (the default): a valid certificate passes, and the pod is told
/// so with nginx's headers; none, or one of another CA, get 400 (or the error page's 302);
/// `auth-tls-match-cn` that does not match gets 403, one that does passes; the certificate itself
/// reaches the pod only with `auth-tls-pass-certificate-to-upstream`. A host without client
/// authentication on the same listener asks for no certificate, and never passes the client's
/// own `ssl-client-*` headers on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_on_headers_error_page_match_cn_and_pass_certificate() {
    let trusted = ca("Remora Test CA");
    let other = ca("Other CA");
    let (_p, _d, remora) = setup(
        &trusted,
        &[
            (
                "on",
                "on.example.com",
                vec![("auth-tls-secret", "default/ca")],
            ),
            (
                "page",
                "page.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-error-page", "http://errors.example.com/error"),
                ],
            ),
            (
                "cn",
                "cn.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-match-cn", "CN=notgonnamatch"),
                ],
            ),
            (
                "cn-ok",
                "cn-ok.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-match-cn", "CN=(itwillmatch|authtls)"),
                ],
            ),
            (
                "pass",
                "pass.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-pass-certificate-to-upstream", "true"),
                ],
            ),
            ("plain", "plain.example.com", vec![]),
        ],
    )
    .await;
    let good = client(&trusted, "authtls");
    let stranger = client(&other, "authtls");

    let (r, asked) = get(&remora, "on.example.com", Some(&good)).await;
    assert!(asked, "a host with auth-tls-secret asks for a certificate");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("ssl-client-subject-dn: CN=authtls,O=Remora Test\n"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("ssl-client-issuer-dn: CN=Remora Test CA\n"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("ssl-client-cert:"), "{}", r.body);

    let (r, _) = get(&remora, "on.example.com", None).await;
    assert_eq!(r.status, 400, "no certificate: {}", r.body);
    assert!(
        r.body.contains("No required SSL certificate was sent"),
        "{}",
        r.body
    );
    let (r, _) = get(&remora, "on.example.com", Some(&stranger)).await;
    assert_eq!(r.status, 400, "another CA's certificate: {}", r.body);
    assert!(r.body.contains("The SSL certificate error"), "{}", r.body);

    let (r, _) = get(&remora, "page.example.com", None).await;
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(r.headers["location"], "http://errors.example.com/error");
    let (r, _) = get(&remora, "page.example.com", Some(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (r, _) = get(&remora, "cn.example.com", Some(&good)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let (r, _) = get(&remora, "cn-ok.example.com", Some(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (r, _) = get(&remora, "pass.example.com", Some(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("ssl-client-cert: -----BEGIN%20CERTIFICATE-----%0A"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("-----END%20CERTIFICATE-----%0A\n"),
        "{}",
        r.body
    );

    // A host without client authentication: no certificate asked for, the handshake completes
    // without one, and the client's own verdict does not reach the pod.
    let mut c = connect(remora.https, "plain.example.com", Some(&good), false).await;
    assert!(
        !c.asked,
        "a host without auth-tls-secret asks for no certificate"
    );
    let forged = [
        ("ssl-client-verify", "SUCCESS"),
        ("ssl-client-subject-dn", "CN=admin"),
    ];
    let r = c.get("plain.example.com", &forged).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("ssl-client-"), "{}", r.body);
}

/// `optional`: a request without a certificate passes (`NONE`), one with an invalid one gets
/// 400; `optional_no_ca`: a certificate of an unknown CA passes, the pod told why it failed;
/// `off`: nothing asked, `NONE`. A client's forged `ssl-client-verify` is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_optional_no_ca_and_off() {
    let trusted = ca("Remora Test CA");
    let other = ca("Other CA");
    let (_p, _d, remora) = setup(
        &trusted,
        &[
            (
                "opt",
                "opt.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-verify-client", "optional"),
                ],
            ),
            (
                "noca",
                "noca.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-verify-client", "optional_no_ca"),
                ],
            ),
            (
                "off",
                "off.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-verify-client", "off"),
                    ("auth-tls-verify-depth", "2"),
                ],
            ),
        ],
    )
    .await;
    let good = client(&trusted, "authtls");
    let stranger = client(&other, "stranger");

    let mut c = connect(remora.https, "opt.example.com", None, false).await;
    assert!(c.asked);
    let r = c
        .get("opt.example.com", &[("ssl-client-verify", "SUCCESS")])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("ssl-client-verify: NONE\n"), "{}", r.body);
    assert!(
        !r.body.contains("SUCCESS"),
        "the client's value is replaced: {}",
        r.body
    );
    assert!(!r.body.contains("ssl-client-subject-dn"), "{}", r.body);
    let (r, _) = get(&remora, "opt.example.com", Some(&good)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );
    let (r, _) = get(&remora, "opt.example.com", Some(&stranger)).await;
    assert_eq!(r.status, 400, "optional verifies what is sent: {}", r.body);

    let (r, asked) = get(&remora, "noca.example.com", Some(&stranger)).await;
    assert!(asked);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains("ssl-client-verify: FAILED:unable to get local issuer certificate\n"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("ssl-client-subject-dn: CN=stranger,O=Remora Test\n"),
        "{}",
        r.body
    );
    let (r, _) = get(&remora, "noca.example.com", Some(&good)).await;
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );

    let (r, asked) = get(&remora, "off.example.com", Some(&good)).await;
    assert!(!asked, "off asks for no certificate");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("ssl-client-verify: NONE\n"), "{}", r.body);
}

/// HTTP/2 connection coalescing: a connection made for a host without client authentication
/// cannot reach one with it by naming it in `:authority` (421), nor can a connection made for
/// another mTLS host; the connection made for the mTLS host serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_made_for_another_host_gets_421() {
    let trusted = ca("Remora Test CA");
    let (_p, _d, remora) = setup(
        &trusted,
        &[
            ("a", "a.example.com", vec![]),
            ("b", "b.example.com", vec![("auth-tls-secret", "ca")]),
            (
                "c",
                "c.example.com",
                vec![
                    ("auth-tls-secret", "ca"),
                    ("auth-tls-verify-client", "optional"),
                ],
            ),
        ],
    )
    .await;
    let good = client(&trusted, "authtls");

    let mut c = connect(remora.https, "a.example.com", Some(&good), true).await;
    assert!(!c.asked);
    let r = c.get("a.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.get("b.example.com", &[]).await;
    assert_eq!(
        r.status, 421,
        "coalesced onto a.example.com's connection: {}",
        r.body
    );
    assert!(!r.body.contains("ssl-client-verify"), "{}", r.body);
    let r = c.get("c.example.com", &[]).await;
    assert_eq!(r.status, 421, "optional too: {}", r.body);

    let mut c = connect(remora.https, "c.example.com", Some(&good), true).await;
    assert!(c.asked);
    let r = c.get("c.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );
    let r = c.get("b.example.com", &[]).await;
    assert_eq!(
        r.status, 421,
        "c's certificate was verified for c, not b: {}",
        r.body
    );
    // A host without client authentication may be reached on it, as nginx serves it.
    let r = c.get("a.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("ssl-client-verify"), "{}", r.body);

    let mut c = connect(remora.https, "b.example.com", Some(&good), true).await;
    let r = c.get("b.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );
}

/// A Secret that cannot be used fails closed: the host answers 403 (ingress-nginx's server
/// `return 403`) on every path, over HTTPS and plain HTTP, with a warning naming the annotation;
/// an invalid `auth-tls-match-cn` denies the Ingress (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_secret_or_annotation_fails_closed() {
    let trusted = ca("Remora Test CA");
    let (_p, _d, remora) = setup(
        &trusted,
        &[
            (
                "missing",
                "missing.example.com",
                vec![("auth-tls-secret", "nope")],
            ),
            (
                "badcn",
                "badcn.example.com",
                vec![("auth-tls-secret", "ca"), ("auth-tls-match-cn", "authtls")],
            ),
        ],
    )
    .await;
    let good = client(&trusted, "authtls");
    let (r, _) = get(&remora, "missing.example.com", Some(&good)).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get_http(&remora, "missing.example.com").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let (r, _) = get(&remora, "badcn.example.com", Some(&good)).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let status = remora.status().await.to_string();
    assert!(
        status.contains("auth-tls-secret") && status.contains("Secret default/nope not found"),
        "{status}"
    );
    assert!(status.contains("auth-tls-match-cn"), "{status}");
}

/// A plain HTTP GET of `/echo-headers` with this Host.
async fn get_http(remora: &Remora, host: &str) -> Resp {
    common::get(&remora.url("/echo-headers"), &[("host", host)]).await
}

/// `ca.crl`: a revoked certificate gets 400 (nginx's `ssl_crl`), others of the CA pass. A
/// connection made before the host's settings changed gets 421 (its certificate was judged by the
/// old ones); a new connection is judged by the new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_lists_and_settings_changed_under_a_connection() {
    let trusted = ca("Remora Test CA");
    let hosts = |match_cn: &'static str| -> Vec<HostSpec<'static>> {
        let mut annotations = vec![("auth-tls-secret", "ca")];
        if !match_cn.is_empty() {
            annotations.push(("auth-tls-match-cn", match_cn));
        }
        vec![("crl", "crl.example.com", annotations)]
    };
    let secret = ca_secret_with_crl_yaml("ca", &trusted, &[666]);
    let (_p, dir, remora) = setup_with(secret.clone(), &hosts("")).await;
    let revoked = client_with_serial(&trusted, "authtls", Some(666));
    let good = client_with_serial(&trusted, "authtls", Some(7));

    let (r, _) = get(&remora, "crl.example.com", Some(&revoked)).await;
    assert_eq!(r.status, 400, "a revoked certificate: {}", r.body);
    let mut c = connect(remora.https, "crl.example.com", Some(&good), false).await;
    let r = c.get("crl.example.com", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("ssl-client-verify: SUCCESS\n"),
        "{}",
        r.body
    );

    remora
        .rewrite(
            &dir,
            "ing.yaml",
            &ing_yaml(secret, &hosts("CN=someone-else")),
        )
        .await;
    let r = c.get("crl.example.com", &[]).await;
    assert_eq!(r.status, 421, "judged by the old settings: {}", r.body);
    let (r, _) = get(&remora, "crl.example.com", Some(&good)).await;
    assert_eq!(
        r.status, 403,
        "a new connection, the new match-cn: {}",
        r.body
    );
}
