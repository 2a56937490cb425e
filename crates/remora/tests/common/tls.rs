//! HTTPS for the tests: certificates made on the fly, `kubernetes.io/tls` Secret manifests, and a
//! client that reports which certificate and protocol the server chose.

use super::Resp;
use base64::Engine;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A self-signed certificate and its key, PEM.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

/// A self-signed certificate for these DNS names.
pub fn make_cert(names: &[&str]) -> TestCert {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    TestCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// A `kubernetes.io/tls` Secret manifest holding `cert`, base64 in `data` as the API serves it.
pub fn tls_secret_yaml(name: &str, cert: &TestCert) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: default\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        b64(&cert.cert_pem),
        b64(&cert.key_pem)
    )
}

/// What an HTTPS request saw.
pub struct TlsResp {
    pub resp: Resp,
    /// DER of the certificate the server presented.
    pub peer: Vec<u8>,
    pub alpn: Option<Vec<u8>>,
}

/// How the client checks the server.
pub enum Trust<'a> {
    /// Verify the chain and the name against this certificate as the only root.
    Root(&'a TestCert),
    /// Accept any certificate (to look at the default one).
    Any,
}

/// GET `path` over TLS from `addr` with `sni` as server name (and Host), HTTP/1.1 or, when
/// `h2`, HTTP/2 negotiated by ALPN.
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    path: &str,
    headers: &[(&str, &str)],
    trust: Trust<'_>,
    h2: bool,
) -> TlsResp {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = match trust {
        Trust::Root(cert) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(cert.der.clone())).unwrap();
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Any => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(proxy::NoVerify::new(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
        .expect("TLS handshake failed");
    let (_, session) = tls.get_ref();
    let peer = session
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let io = TokioIo::new(tls);
    let mut req = Request::builder();
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = if h2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = req
            .uri(format!("https://{sni}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        sender.send_request(req).await.unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let req = req
            .uri(path)
            .header("host", sni)
            .body(Full::new(Bytes::new()))
            .unwrap();
        sender.send_request(req).await.unwrap()
    };
    TlsResp {
        resp: Resp::read(resp).await,
        peer,
        alpn,
    }
}

/// Does this DER certificate's subject contain `text` (e.g. a common name)?
pub fn cert_mentions(der: &[u8], text: &str) -> bool {
    der.windows(text.len()).any(|w| w == text.as_bytes())
}
