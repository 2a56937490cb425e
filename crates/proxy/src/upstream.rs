//! Clients to the pods: one pooled hyper client per (protocol, connect timeout, upstream TLS
//! settings) in use, kept across configurations so their connection pools survive reloads: a
//! route whose settings did not change gets the same client, found by their content.
//!
//! Upstream TLS does not verify the pod's certificate, as ingress-nginx's default
//! (`proxy-ssl-verify: "off"`), unless the route's `proxy-ssl-*` annotations
//! ([`model::UpstreamTls`]) say so: each distinct setting has its own rustls `ClientConfig`
//! (versions, TLS 1.2 cipher suites, the CA its [`PodVerifier`] checks the pod's chain and name
//! against, the client certificate it presents, the name and whether it goes in SNI), made when a
//! table is built, never per request.

use crate::body::UpstreamBody;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use model::{BackendProtocol, Location, UpstreamTls};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
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

    /// The TLS handshake with the pod failed (its certificate not trusted, no protocol or cipher
    /// suite in common...): nginx's `error` of `proxy_next_upstream`, never a `timeout`.
    pub fn is_tls_handshake(&self) -> bool {
        std::error::Error::source(self).is_some_and(rustls_within)
    }
}

/// Is a rustls error `e`, or within it? An `io::Error` wrapping one (tokio-rustls's) is looked
/// into, since its `source` skips what it wraps.
fn rustls_within(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.is::<rustls::Error>() {
        return true;
    }
    let wrapped = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref());
    if wrapped.is_some_and(|inner| rustls_within(inner)) {
        return true;
    }
    e.source().is_some_and(rustls_within)
}

/// A pooled client, shared by the routes (and tables) whose settings are the same; the map of
/// [`Clients`] holds one reference, so a client no table uses any more is seen and dropped.
pub type UpstreamClient = Arc<Client<hyper_rustls::HttpsConnector<HttpConnector>, UpstreamBody>>;

/// What makes two routes need different clients.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub protocol: BackendProtocol,
    pub connect_timeout_secs: u32,
    /// `proxy-ssl-*`, for a protocol over TLS (else `None`: they change nothing).
    pub tls: Option<Arc<UpstreamTls>>,
    /// `upstream-keepalive-connections` and `-timeout`: idle connections kept per pod and for
    /// how long.
    pub keepalive: crate::h1::Pool,
}

impl ClientKey {
    pub fn of(l: &Location, keepalive: crate::h1::Pool) -> Self {
        Self {
            protocol: l.protocol,
            connect_timeout_secs: l.connect_timeout_secs,
            tls: l.upstream_tls.clone().filter(|_| l.protocol.tls()),
            keepalive,
        }
    }
}

/// Every client made so far. Locked only while a table is built, never per request.
pub struct Clients {
    tls: rustls::ClientConfig,
    made: Mutex<HashMap<ClientKey, UpstreamClient>>,
}

impl Clients {
    pub fn new() -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth();
        Ok(Self {
            tls,
            made: Mutex::new(HashMap::new()),
        })
    }

    /// The client of `key`: the one made before for equal settings, else a new one. An error
    /// (upstream TLS settings rustls refuses, which translation checked) says why there is none.
    pub fn get(&self, key: ClientKey) -> Result<UpstreamClient, rustls::Error> {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = made.get(&key) {
            return Ok(client.clone());
        }
        let client = self.build(&key)?;
        made.insert(key, client.clone());
        Ok(client)
    }

    /// Drop the clients no table holds any more (their settings changed, or their routes went), so
    /// that rotated Secrets do not pile up; called before a table is built, while the current one
    /// holds the clients it uses.
    pub fn prune(&self) {
        let mut made = self.made.lock().unwrap_or_else(|e| e.into_inner());
        made.retain(|_, client| Arc::strong_count(client) > 1);
    }

    fn build(&self, key: &ClientKey) -> Result<UpstreamClient, rustls::Error> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(u64::from(
            key.connect_timeout_secs.max(1),
        ))));
        http.set_nodelay(true);
        http.enforce_http(false);
        let builder = match &key.tls {
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(self.tls.clone())
                .https_or_http(),
            Some(tls) => {
                let name = ServerName::try_from(tls.name.clone()).map_err(|e| {
                    rustls::Error::General(format!("proxy-ssl-name \"{}\": {e}", tls.name))
                })?;
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls_config(tls, name.clone())?)
                    .https_or_http()
                    .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
        };
        let connector = if key.protocol.http2() {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_http1().wrap_connector(http)
        };
        Ok(Arc::new(
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(key.keepalive.idle_timeout())
                .pool_max_idle_per_host(key.keepalive.max_idle())
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .http2_only(key.protocol.http2())
                .build(connector),
        ))
    }
}

/// The rustls configuration of a route's `proxy-ssl-*` settings; `name`: its `proxy-ssl-name`.
fn tls_config(
    tls: &UpstreamTls,
    name: ServerName<'static>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let (provider, versions) = crate::tls::suites(tls.tls12, tls.tls13, &tls.ciphers);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)?;
    let builder = if tls.verify {
        let mut anchors = Vec::with_capacity(tls.ca.len());
        for der in &tls.ca {
            let der = CertificateDer::from(der.to_vec());
            let anchor = webpki::anchor_from_trusted_cert(&der)
                .map_err(|e| rustls::Error::General(format!("ca.crt: {e}")))?;
            anchors.push(anchor.to_owned());
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PodVerifier {
                anchors,
                depth: tls.depth as usize,
                name,
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider.clone())))
    };
    let mut config = match &tls.client_certificate {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let (chain, key) = crate::tls::der(c);
            builder.with_client_auth_cert(chain, key)?
        }
    };
    // `proxy-ssl-server-name`: the name goes in the handshake only when on (nginx's default off).
    config.enable_sni = tls.server_name;
    Ok(config)
}

/// Verifies a pod's certificate as nginx's `proxy_ssl_verify on` does: a chain to a CA of the
/// Secret's `ca.crt` within `proxy-ssl-verify-depth` (webpki: validity, server-auth usage), for
/// `proxy-ssl-name`. A pod that fails fails the handshake: a connect error, 502 when no other
/// endpoint answers.
#[derive(Debug)]
struct PodVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    depth: usize,
    name: ServerName<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PodVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(certificate_error)?;
        let within_depth = crate::tls::within_depth(self.depth);
        cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            None,
            Some(&within_depth),
        )
        .map_err(certificate_error)?;
        cert.verify_is_valid_for_subject_name(&self.name)
            .map_err(certificate_error)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// rustls's words for webpki's verdict (the handshake's error, in the log).
fn certificate_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    rustls::Error::InvalidCertificate(match e {
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::CertNotValidForName(_) => CertificateError::NotValidForName,
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn made(clients: &Clients) -> usize {
        clients.made.lock().unwrap().len()
    }

    fn https(tls13: bool) -> Location {
        Location {
            protocol: BackendProtocol::Https,
            upstream_tls: Some(Arc::new(UpstreamTls {
                secret: "default/pods".to_owned(),
                ca: Vec::new(),
                client_certificate: None,
                verify: false,
                depth: 1,
                name: "pod.remora.internal".to_owned(),
                server_name: true,
                tls12: true,
                tls13,
                ciphers: vec!["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned()],
            })),
            ..Location::default()
        }
    }

    /// A reload makes new `Location`s: equal settings find the client (and pool) made before.
    #[test]
    fn clients_are_found_by_their_settings() {
        let clients = Clients::new().unwrap();
        clients
            .get(ClientKey::of(&https(true), crate::h1::Pool::default()))
            .unwrap();
        clients
            .get(ClientKey::of(&https(true), crate::h1::Pool::default()))
            .unwrap();
        assert_eq!(made(&clients), 1);
        clients
            .get(ClientKey::of(&https(false), crate::h1::Pool::default()))
            .unwrap();
        assert_eq!(made(&clients), 2);
        // Over plain HTTP the settings change nothing: the one plain client.
        let plain = Location {
            protocol: BackendProtocol::Http,
            ..https(true)
        };
        let held = clients
            .get(ClientKey::of(&plain, crate::h1::Pool::default()))
            .unwrap();
        let again = clients
            .get(ClientKey::of(
                &Location::default(),
                crate::h1::Pool::default(),
            ))
            .unwrap();
        assert!(Arc::ptr_eq(&held, &again));
        assert_eq!(made(&clients), 3);
        // Only the clients something still holds stay.
        clients.prune();
        assert_eq!(made(&clients), 1);
        drop((held, again));
        clients.prune();
        assert_eq!(made(&clients), 0);
    }
}
