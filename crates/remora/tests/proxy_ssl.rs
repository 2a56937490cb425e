//! TLS to the pods (ingress-nginx's `proxy-ssl-*` annotations, nginx's `proxy_ssl_*`) through the
//! real binary, with real TLS pods on loopback (HTTP/1.1, and HTTP/2 for GRPCS): certificates made
//! by test CAs (rcgen), each pod answering with the SNI its handshake got and whether a client
//! certificate came. The pod's
//! chain is verified against the Secret's `ca.crt` within the depth and for `proxy-ssl-name`
//! (502 otherwise, as nginx's failed upstream handshake), SNI is sent only with
//! `proxy-ssl-server-name: "on"`, the Secret's `tls.crt` is presented to pods that ask, protocols
//! and ciphers are those listed, and settings that cannot be honoured answer 503. The reference
//! is ingress-nginx's `test/e2e/annotations/proxyssl.go`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::version::{TLS12, TLS13};
use rustls::SupportedProtocolVersion;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::Arc;

/// The name the pods' certificates are made for.
const POD_NAME: &str = "pod.remora.internal";

/// A CA (or intermediate) that signs certificates.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
    der: Vec<u8>,
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name = dn(cn);
    params
}

/// A self-signed CA.
fn ca(cn: &str) -> Ca {
    let params = ca_params(cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        params,
        key,
    }
}

/// An intermediate CA issued by `parent`.
fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let params = ca_params(cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params
        .signed_by(
            &key,
            &rcgen::Issuer::from_params(&parent.params, &parent.key),
        )
        .unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        params,
        key,
    }
}

/// A certificate issued by a CA, and its key.
struct Leaf {
    der: Vec<u8>,
    pem: String,
    key_der: Vec<u8>,
    key_pem: String,
}

/// A certificate `CN=<cn>` for these DNS names, issued by `issuer`.
fn leaf(issuer: &Ca, cn: &str, names: &[&str]) -> Leaf {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    params.distinguished_name = dn(cn);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params
        .signed_by(
            &key,
            &rcgen::Issuer::from_params(&issuer.params, &issuer.key),
        )
        .unwrap();
    Leaf {
        der: cert.der().to_vec(),
        pem: cert.pem(),
        key_der: key.serialize_der(),
        key_pem: key.serialize_pem(),
    }
}

/// An Opaque Secret `default/<name>` with `ca.crt` and, when given, `tls.crt`/`tls.key`.
fn secret_yaml(name: &str, ca: Option<&Ca>, client: Option<&Leaf>) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut s = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: Opaque\ndata:\n"
    );
    if let Some(ca) = ca {
        s.push_str(&format!("  ca.crt: {}\n", b64(&ca.pem)));
    }
    if let Some(c) = client {
        s.push_str(&format!(
            "  tls.crt: {}\n  tls.key: {}\n",
            b64(&c.pem),
            b64(&c.key_pem)
        ));
    }
    s
}

/// TLS 1.3 and 1.2.
const BOTH: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// How a pod speaks TLS.
struct PodTls<'a> {
    /// Its certificate, then the intermediates it sends.
    leaf: &'a Leaf,
    intermediates: Vec<&'a Ca>,
    /// Clients must present a certificate issued by this CA.
    client_ca: Option<&'a Ca>,
    versions: &'a [&'static SupportedProtocolVersion],
    /// Only these TLS 1.2 suites (`None`: all of rustls's).
    tls12_suites: Option<&'a [rustls::CipherSuite]>,
    /// HTTP/2 (ALPN `h2`), as a gRPC pod, instead of HTTP/1.1.
    h2: bool,
}

impl<'a> PodTls<'a> {
    fn new(leaf: &'a Leaf) -> Self {
        Self {
            leaf,
            intermediates: Vec::new(),
            client_ca: None,
            versions: BOTH,
            tls12_suites: None,
            h2: false,
        }
    }
}

/// A pod serving HTTP/1.1 over TLS on loopback that answers every request with
/// `sni=<the server name of its handshake, or -> client=<yes|no>`.
async fn tls_pod(tls: PodTls<'_>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_tls(listener, tls)
}

/// [`tls_pod`] on `listener`.
fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: PodTls<'_>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(keep) = tls.tls12_suites {
        provider
            .cipher_suites
            .retain(|s| s.version() == &TLS13 || keep.contains(&s.suite()));
    }
    let provider = Arc::new(provider);
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(tls.versions)
        .unwrap();
    let builder = match tls.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.der.clone())).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut chain = vec![CertificateDer::from(tls.leaf.der.clone())];
    chain.extend(
        tls.intermediates
            .iter()
            .map(|c| CertificateDer::from(c.der.clone())),
    );
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls.leaf.key_der.clone()));
    let mut config = builder.with_single_cert(chain, key).unwrap();
    let h2 = tls.h2;
    if h2 {
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (_, session) = tls.get_ref();
                let answer = format!(
                    "sni={} client={}",
                    session.server_name().unwrap_or("-"),
                    if session.peer_certificates().is_some() {
                        "yes"
                    } else {
                        "no"
                    }
                );
                let svc = hyper::service::service_fn(move |_req| {
                    let answer = answer.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(answer),
                        )))
                    }
                });
                let _ = if h2 {
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await
                } else {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await
                };
            });
        }
    });
    (addr, task)
}

/// Two listeners on distinct loopback addresses sharing one port, as two pods of a Service.
async fn two_addresses() -> (tokio::net::TcpListener, tokio::net::TcpListener) {
    for i in 0..50u8 {
        let a = tokio::net::TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 7, 10 + i), 0))
            .await
            .unwrap();
        let port = a.local_addr().unwrap().port();
        if let Ok(b) =
            tokio::net::TcpListener::bind((std::net::Ipv4Addr::new(127, 0, 8, 10 + i), port)).await
        {
            return (a, b);
        }
    }
    panic!("no two loopback addresses with a common free port");
}

/// Service `name` and its EndpointSlice with the one pod at `addr`.
fn pod_service(dir: &Dir, name: &str, addr: SocketAddr) {
    dir.write(&format!("{name}-svc.yaml"), &service_yaml(name));
    dir.write(
        &format!("{name}-slice.yaml"),
        &format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}-x\n  namespace: default\n  labels:\n    kubernetes.io/service-name: {name}\naddressType: IPv4\nports:\n- port: {}\nendpoints:\n- addresses: [\"{}\"]\n",
            addr.port(),
            addr.ip()
        ),
    );
}

/// An Ingress `name` for host `<name>.example.com` to Service `service` over HTTPS, with these
/// annotations besides.
fn https_ingress(name: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx("backend-protocol", "HTTPS")
        .nginx_all(annotations)
        .rule(Some(&format!("{name}.example.com")), "/", service)
        .build()
}

/// An Ingress `name` for host `<name>.example.com` to the plain HTTP Service `web`, with
/// ingress-nginx's e2e Secret and these annotations besides.
fn e2e_ingress(name: &str, annotations: &[(&str, &str)]) -> String {
    IngressYaml::new(name)
        .nginx("proxy-ssl-secret", "default/proxyssl.foo.com")
        .nginx_all(annotations)
        .rule(Some(&format!("{name}.example.com")), "/", "web")
        .build()
}

/// GET `/` of `<name>.example.com` through Remora: status and body.
async fn ask(remora: &Remora, name: &str) -> (u16, String) {
    let r = get(
        &remora.url("/"),
        &[("host", &format!("{name}.example.com"))],
    )
    .await;
    (r.status.as_u16(), r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_verified_against_the_secrets_ca_for_the_name() {
    let pods_ca = ca("Pods CA");
    let other_ca = ca("Other CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (pod, _p1) = tls_pod(PodTls::new(&pod_cert)).await;
    // A pod whose certificate comes from an intermediate of the same CA.
    let middle = intermediate(&pods_ca, "Pods Intermediate");
    let deep_cert = leaf(&middle, "deep", &[POD_NAME]);
    let (deep, _p2) = tls_pod(PodTls {
        intermediates: vec![&middle],
        ..PodTls::new(&deep_cert)
    })
    .await;
    // A pod as pods usually are: self-signed.
    let selfsigned = common::tls::make_cert(&["whatever.local"]);
    let selfsigned = Leaf {
        der: selfsigned.der.clone(),
        pem: selfsigned.cert_pem.clone(),
        key_der: PrivateKeyDer::from_pem_slice(selfsigned.key_pem.as_bytes())
            .unwrap()
            .secret_der()
            .to_vec(),
        key_pem: selfsigned.key_pem.clone(),
    };
    let (plain_tls, _p3) = tls_pod(PodTls::new(&selfsigned)).await;
    // An HTTP/2 pod, as gRPC pods are (`backend-protocol: GRPCS`).
    let (grpcs, _p4) = tls_pod(PodTls {
        h2: true,
        ..PodTls::new(&pod_cert)
    })
    .await;
    let web = pods("web", 1).await;

    let dir = Dir::new();
    pod_service(&dir, "pod", pod);
    pod_service(&dir, "deep", deep);
    pod_service(&dir, "selfsigned", plain_tls);
    pod_service(&dir, "grpcs", grpcs);
    dir.write("web-svc.yaml", &service_yaml("web"));
    dir.write(
        "web-slice.yaml",
        &slice_yaml("web", "default", None, &[&web[0]]),
    );
    dir.write(
        "pods-ca.yaml",
        &secret_yaml("pods-ca", Some(&pods_ca), None),
    );
    dir.write(
        "other-ca.yaml",
        &secret_yaml("other-ca", Some(&other_ca), None),
    );
    // As the e2e framework's CreateIngressMASecret: a CA and a key pair.
    let e2e_cert = leaf(&pods_ca, "proxyssl.foo.com", &["proxyssl.foo.com"]);
    dir.write(
        "e2e.yaml",
        &secret_yaml("proxyssl.foo.com", Some(&pods_ca), Some(&e2e_cert)),
    );
    let verify = |secret: &'static str| {
        [
            ("proxy-ssl-secret", secret),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", POD_NAME),
        ]
    };
    let ingresses = [
        https_ingress("right", "pod", &verify("default/pods-ca")),
        https_ingress("wrong-ca", "pod", &verify("default/other-ca")),
        // nginx's default proxy_ssl_name is `$proxy_host`: ingress-nginx's `upstream_balancer`.
        https_ingress(
            "default-name",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "on"),
            ],
        ),
        https_ingress(
            "other-name",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", "other.remora.internal"),
            ],
        ),
        // Without proxy-ssl-verify, the CA is not checked (ingress-nginx's default off).
        https_ingress(
            "unverified",
            "pod",
            &[("proxy-ssl-secret", "default/other-ca")],
        ),
        https_ingress("depth-1", "deep", &verify("default/pods-ca")),
        https_ingress(
            "depth-2",
            "deep",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", POD_NAME),
                ("proxy-ssl-verify-depth", "2"),
            ],
        ),
        https_ingress("selfsigned", "selfsigned", &[]),
        IngressYaml::new("grpcs-right")
            .nginx("backend-protocol", "GRPCS")
            .nginx_all(&verify("default/pods-ca"))
            .rule(Some("grpcs-right.example.com"), "/", "grpcs")
            .build(),
        IngressYaml::new("grpcs-wrong-ca")
            .nginx("backend-protocol", "GRPCS")
            .nginx_all(&verify("default/other-ca"))
            .rule(Some("grpcs-wrong-ca.example.com"), "/", "grpcs")
            .build(),
        // ingress-nginx's e2e cases (proxyssl.go), whose echo pods speak plain HTTP: with an HTTP
        // backend the annotations change nothing.
        e2e_ingress("e2e-secret", &[]),
        e2e_ingress(
            "e2e-verify",
            &[
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-verify-depth", "2"),
                ("proxy-ssl-server-name", "on"),
            ],
        ),
        e2e_ingress("e2e-ciphers", &[("proxy-ssl-ciphers", "HIGH:!AES")]),
        e2e_ingress(
            "e2e-protocols",
            &[("proxy-ssl-protocols", "TLSv1.2 TLSv1.3")],
        ),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    let cases = [
        (
            "right",
            200,
            "the pod's certificate chains to the Secret's CA",
        ),
        ("wrong-ca", 502, "another CA signed the pod's certificate"),
        (
            "default-name",
            502,
            "the certificate is not for upstream_balancer",
        ),
        ("other-name", 502, "the certificate is not for that name"),
        ("unverified", 200, "verification is off by default"),
        ("depth-1", 502, "an intermediate is past depth 1"),
        ("depth-2", 200, "depth 2 allows one intermediate"),
        ("selfsigned", 200, "no proxy-ssl annotation: not verified"),
        ("grpcs-right", 200, "GRPCS verified like HTTPS"),
        ("grpcs-wrong-ca", 502, "GRPCS: another CA"),
        ("e2e-secret", 200, "e2e: proxy-ssl-secret"),
        ("e2e-verify", 200, "e2e: verify on, depth 2, server name on"),
        ("e2e-ciphers", 200, "e2e: HIGH:!AES"),
        ("e2e-protocols", 200, "e2e: TLSv1.2 TLSv1.3"),
    ];
    for (name, status, why) in cases {
        let (got, body) = ask(&remora, name).await;
        assert_eq!(got, status, "{name}: {why} ({body})");
    }
    let (_, body) = ask(&remora, "right").await;
    assert_eq!(
        body, "sni=- client=no",
        "no SNI unless proxy-ssl-server-name"
    );
    // The failed handshakes are logged with rustls's reason.
    remora.wait_log("UnknownIssuer").await;
    remora.wait_log("NotValidForName").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_is_sent_only_with_proxy_ssl_server_name() {
    let pods_ca = ca("Pods CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (pod, _p) = tls_pod(PodTls::new(&pod_cert)).await;
    let dir = Dir::new();
    pod_service(&dir, "pod", pod);
    dir.write(
        "pods-ca.yaml",
        &secret_yaml("pods-ca", Some(&pods_ca), None),
    );
    let ingresses = [
        https_ingress(
            "sni-on",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", POD_NAME),
                ("proxy-ssl-server-name", "on"),
            ],
        ),
        https_ingress(
            "sni-off",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", POD_NAME),
                ("proxy-ssl-server-name", "off"),
            ],
        ),
        // Unverified, the name is still what SNI carries.
        https_ingress(
            "sni-unverified",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-name", "api.remora.internal"),
                ("proxy-ssl-server-name", "on"),
            ],
        ),
        https_ingress("plain", "pod", &[]),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    assert_eq!(
        ask(&remora, "sni-on").await,
        (200, format!("sni={POD_NAME} client=no"))
    );
    assert_eq!(
        ask(&remora, "sni-off").await,
        (200, "sni=- client=no".to_owned())
    );
    assert_eq!(
        ask(&remora, "sni-unverified").await,
        (200, "sni=api.remora.internal client=no".to_owned())
    );
    assert_eq!(
        ask(&remora, "plain").await,
        (200, "sni=- client=no".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secrets_certificate_is_presented_to_pods_that_require_one() {
    let pods_ca = ca("Pods CA");
    let clients_ca = ca("Clients CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (pod, _p) = tls_pod(PodTls {
        client_ca: Some(&clients_ca),
        ..PodTls::new(&pod_cert)
    })
    .await;
    let remora_cert = leaf(&clients_ca, "remora", &[]);
    let stranger = leaf(&other_ca_for_clients(), "stranger", &[]);
    let dir = Dir::new();
    pod_service(&dir, "pod", pod);
    dir.write(
        "with-cert.yaml",
        &secret_yaml("with-cert", Some(&pods_ca), Some(&remora_cert)),
    );
    dir.write(
        "ca-only.yaml",
        &secret_yaml("ca-only", Some(&pods_ca), None),
    );
    dir.write(
        "stranger.yaml",
        &secret_yaml("stranger", Some(&pods_ca), Some(&stranger)),
    );
    let with = |secret: &'static str| {
        [
            ("proxy-ssl-secret", secret),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", POD_NAME),
        ]
    };
    let ingresses = [
        https_ingress("with-cert", "pod", &with("default/with-cert")),
        https_ingress("ca-only", "pod", &with("default/ca-only")),
        https_ingress("stranger", "pod", &with("default/stranger")),
        https_ingress("plain", "pod", &[]),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    assert_eq!(
        ask(&remora, "with-cert").await,
        (200, "sni=- client=yes".to_owned())
    );
    for (name, why) in [
        ("ca-only", "no tls.crt in the Secret: nothing to present"),
        ("stranger", "a certificate the pod does not trust"),
        ("plain", "no proxy-ssl-secret: nothing to present"),
    ] {
        assert_eq!(ask(&remora, name).await.0, 502, "{name}: {why}");
    }
}

/// A CA the pods do not trust for clients.
fn other_ca_for_clients() -> Ca {
    ca("Strangers CA")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocols_and_ciphers_are_those_listed() {
    let pods_ca = ca("Pods CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (tls13_pod, _p1) = tls_pod(PodTls {
        versions: &[&TLS13],
        ..PodTls::new(&pod_cert)
    })
    .await;
    // rcgen's keys are ECDSA: the pod takes one AES suite of TLS 1.2 only.
    let aes_only = [rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256];
    let (aes_pod, _p2) = tls_pod(PodTls {
        versions: &[&TLS12],
        tls12_suites: Some(&aes_only),
        ..PodTls::new(&pod_cert)
    })
    .await;
    let dir = Dir::new();
    pod_service(&dir, "tls13", tls13_pod);
    pod_service(&dir, "aes", aes_pod);
    dir.write(
        "pods-ca.yaml",
        &secret_yaml("pods-ca", Some(&pods_ca), None),
    );
    let ing = |name: &str, service: &str, extra: &[(&str, &str)]| {
        let mut annotations = vec![
            ("proxy-ssl-secret", "default/pods-ca"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", POD_NAME),
        ];
        annotations.extend_from_slice(extra);
        https_ingress(name, service, &annotations)
    };
    let ingresses = [
        // ingress-nginx's default proxy-ssl-protocols is TLSv1.2 alone.
        ing("default-protocols", "tls13", &[]),
        ing(
            "both",
            "tls13",
            &[("proxy-ssl-protocols", "TLSv1.2 TLSv1.3")],
        ),
        ing(
            "old-and-13",
            "tls13",
            &[("proxy-ssl-protocols", "TLSv1 TLSv1.1 TLSv1.3")],
        ),
        ing("no-aes", "aes", &[("proxy-ssl-ciphers", "HIGH:!AES")]),
        ing(
            "named-suite",
            "aes",
            &[(
                "proxy-ssl-ciphers",
                "ECDHE-ECDSA-AES128-GCM-SHA256:AES128-SHA",
            )],
        ),
        ing("default-ciphers", "aes", &[]),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    let cases = [
        ("default-protocols", 502, "TLS 1.2 only by default"),
        ("both", 200, "TLS 1.3 listed"),
        ("old-and-13", 200, "TLS 1.3 left once the old ones are out"),
        ("no-aes", 502, "no AES suite offered"),
        ("named-suite", 200, "the suite named"),
        ("default-ciphers", 200, "DEFAULT has it"),
    ];
    for (name, status, why) in cases {
        let (got, body) = ask(&remora, name).await;
        assert_eq!(got, status, "{name}: {why} ({body})");
    }
    remora
        .wait_log("TLSv1, TLSv1.1 not supported (rustls speaks TLS 1.2 and 1.3 only)")
        .await;
    remora
        .wait_log("AES128-SHA left out: rustls has no TLS 1.2 cipher suite of that name")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_cannot_be_honoured_fail_closed() {
    let pods_ca = ca("Pods CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (pod, _p) = tls_pod(PodTls::new(&pod_cert)).await;
    let client = leaf(&pods_ca, "remora", &[]);
    let dir = Dir::new();
    pod_service(&dir, "pod", pod);
    dir.write(
        "pods-ca.yaml",
        &secret_yaml("pods-ca", Some(&pods_ca), None),
    );
    dir.write(
        "cert-only.yaml",
        &secret_yaml("cert-only", None, Some(&client)),
    );
    let ingresses = [
        https_ingress(
            "missing",
            "pod",
            &[
                ("proxy-ssl-secret", "default/missing"),
                ("proxy-ssl-verify", "on"),
                ("proxy-ssl-name", POD_NAME),
            ],
        ),
        https_ingress(
            "bad-verify",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-verify", "yes"),
            ],
        ),
        https_ingress(
            "old-protocols",
            "pod",
            &[
                ("proxy-ssl-secret", "default/pods-ca"),
                ("proxy-ssl-protocols", "TLSv1 TLSv1.1"),
            ],
        ),
        https_ingress(
            "no-ca",
            "pod",
            &[
                ("proxy-ssl-secret", "default/cert-only"),
                ("proxy-ssl-verify", "on"),
            ],
        ),
        https_ingress("verify-alone", "pod", &[("proxy-ssl-verify", "on")]),
        https_ingress(
            "name-only",
            "pod",
            &[("proxy-ssl-secret", "pods-ca"), ("proxy-ssl-verify", "on")],
        ),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &[]);

    for name in [
        "missing",
        "bad-verify",
        "old-protocols",
        "no-ca",
        "verify-alone",
        "name-only",
    ] {
        assert_eq!(ask(&remora, name).await.0, 503, "{name}");
    }
    remora
        .wait_log("proxy-ssl-secret: Secret default/missing not found: every request of this Ingress gets 503")
        .await;
    remora
        .wait_log("invalid value \"yes\" (expected on or off)")
        .await;

    // The Secret appears: the Ingress is served, verified.
    remora
        .rewrite(
            &dir,
            "missing.yaml",
            &secret_yaml("missing", Some(&pods_ca), None),
        )
        .await;
    assert_eq!(
        ask(&remora, "missing").await,
        (200, "sni=- client=no".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_failing_verification_is_an_error_for_proxy_next_upstream() {
    let pods_ca = ca("Pods CA");
    let other_ca = ca("Other CA");
    let good = leaf(&pods_ca, "good", &[POD_NAME]);
    let bad = leaf(&other_ca, "bad", &[POD_NAME]);
    let (a, b) = two_addresses().await;
    let (good_addr, _p1) = serve_tls(a, PodTls::new(&good));
    let (bad_addr, _p2) = serve_tls(b, PodTls::new(&bad));
    let dir = Dir::new();
    dir.write("pod-svc.yaml", &service_yaml("pod"));
    dir.write(
        "pod-slice.yaml",
        &format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: pod-x\n  namespace: default\n  labels:\n    kubernetes.io/service-name: pod\naddressType: IPv4\nports:\n- port: {}\nendpoints:\n- addresses: [\"{}\"]\n- addresses: [\"{}\"]\n",
            good_addr.port(),
            good_addr.ip(),
            bad_addr.ip()
        ),
    );
    dir.write(
        "pods-ca.yaml",
        &secret_yaml("pods-ca", Some(&pods_ca), None),
    );
    let verified = [
        ("proxy-ssl-secret", "default/pods-ca"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-name", POD_NAME),
    ];
    let mut timeout_only = verified.to_vec();
    timeout_only.push(("proxy-next-upstream", "timeout"));
    let ingresses = [
        https_ingress("failover", "pod", &verified),
        https_ingress("timeout-only", "pod", &timeout_only),
    ];
    dir.write("ing.yaml", &ingresses.join("---\n"));
    let remora = Remora::serve(&[dir.path()], &["--workers", "1"]);

    // Round robin alternates: half the requests go to the untrusted pod first, and move on to
    // the trusted one (verified as well) with `error`, ingress-nginx's default.
    for _ in 0..4 {
        assert_eq!(ask(&remora, "failover").await.0, 200);
    }
    let statuses: Vec<u16> =
        futures_util::future::join_all((0..4).map(|_| ask(&remora, "timeout-only")))
            .await
            .into_iter()
            .map(|(status, _)| status)
            .collect();
    assert!(
        statuses.contains(&502) && statuses.contains(&200),
        "without `error` the untrusted pod's requests are not moved: {statuses:?}\n{}",
        remora.stderr_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_secret_is_used_from_the_next_reload() {
    let pods_ca = ca("Pods CA");
    let other_ca = ca("Other CA");
    let pod_cert = leaf(&pods_ca, "pod", &[POD_NAME]);
    let (pod, _p) = tls_pod(PodTls::new(&pod_cert)).await;
    let dir = Dir::new();
    pod_service(&dir, "pod", pod);
    dir.write("trust.yaml", &secret_yaml("trust", Some(&other_ca), None));
    let verified = [
        ("proxy-ssl-secret", "default/trust"),
        ("proxy-ssl-verify", "on"),
        ("proxy-ssl-name", POD_NAME),
    ];
    dir.write("ing.yaml", &https_ingress("rotated", "pod", &verified));
    let remora = Remora::serve(&[dir.path()], &[]);
    assert_eq!(ask(&remora, "rotated").await.0, 502, "another CA's Secret");

    // The Secret now holds the pods' CA: a new TLS configuration, used at once.
    remora
        .rewrite(
            &dir,
            "trust.yaml",
            &secret_yaml("trust", Some(&pods_ca), None),
        )
        .await;
    assert_eq!(ask(&remora, "rotated").await.0, 200);
    // And back: the first settings again, and the pod untrusted again.
    remora
        .rewrite(
            &dir,
            "trust.yaml",
            &secret_yaml("trust", Some(&other_ca), None),
        )
        .await;
    assert_eq!(ask(&remora, "rotated").await.0, 502);
}
