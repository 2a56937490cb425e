//! Clients to the pods: one pooled hyper client per (protocol, connect timeout) in use, kept across
//! configurations so their connection pools survive reloads. Upstream TLS does not verify the
//! pod's certificate, as ingress-nginx's default (`proxy-ssl-verify: "off"`).

use crate::body::UpstreamBody;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use model::{BackendProtocol, Location};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a request to a pod failed, from either client.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error(transparent)]
    Hyper(hyper_util::client::legacy::Error),
    #[error(transparent)]
    Lean(crate::h1::Error),
}

impl UpstreamError {
    /// The connection never happened: nothing of the request reached the pod.
    pub fn is_connect(&self) -> bool {
        match self {
            UpstreamError::Hyper(e) => e.is_connect(),
            UpstreamError::Lean(e) => e.is_connect(),
        }
    }
}

pub type UpstreamClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>;

/// What makes two routes need different clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub protocol: BackendProtocol,
    pub connect_timeout_secs: u32,
}

impl ClientKey {
    pub fn of(l: &Location) -> Self {
        Self {
            protocol: l.protocol,
            connect_timeout_secs: l.connect_timeout_secs,
        }
    }
}

/// Every client made so far. Locked only while a table is built, never per request.
pub struct Clients {
    pool_idle_timeout: Duration,
    tls: rustls::ClientConfig,
    made: Mutex<HashMap<ClientKey, UpstreamClient>>,
}

impl Clients {
    pub fn new(pool_idle_timeout: Duration) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth();
        Ok(Self {
            pool_idle_timeout,
            tls,
            made: Mutex::new(HashMap::new()),
        })
    }

    pub fn get(&self, key: ClientKey) -> UpstreamClient {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.entry(key).or_insert_with(|| self.build(key)).clone()
    }

    fn build(&self, key: ClientKey) -> UpstreamClient {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(u64::from(
            key.connect_timeout_secs.max(1),
        ))));
        http.set_nodelay(true);
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http();
        let connector = if key.protocol.http2() {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(key.protocol.http2())
            .build(connector)
    }
}

/// Accepts the server's certificate whatever it is (the connection is still encrypted), checking
/// only that the handshake signature is valid for it: how Remora talks to HTTPS pods, whose
/// certificates are usually self-signed (ingress-nginx's `proxy-ssl-verify: "off"`).
#[derive(Debug)]
pub struct NoVerify(Arc<CryptoProvider>);

impl NoVerify {
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
