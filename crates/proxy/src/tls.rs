//! TLS termination: the server configuration (TLS 1.2 and 1.3, ALPN h2 and http/1.1, ring
//! provider) and the certificate resolver, which picks the certificate for each handshake's SNI from
//! the current table, among the virtual hosts of the listener it serves (the Ingress hosts, or one
//! Gateway listener's), so certificates rotate with the configuration, without restart.
//!
//! On the Ingress HTTPS listener the configuration itself is chosen by SNI before the handshake
//! ([`SniAcceptor`]): a host with client certificate authentication (`auth-tls-*`) has its own,
//! which asks for a certificate; every other name gets the shared one, which does not. A name
//! that is an `ssl-passthrough` host is not terminated at all: the connection is relayed
//! ([`crate::passthrough`]).

use crate::client_auth::PeerCert;
use crate::passthrough::{Recorded, Relay, MAX_HELLO};
use crate::table::ListenerId;
use crate::Shared;
use model::{Certificate, KeyFormat};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer,
};
use std::sync::{Arc, Weak};

/// The subject of the default certificate, as ingress-nginx names its own.
pub const DEFAULT_CERTIFICATE_CN: &str = "Kubernetes Ingress Controller Fake Certificate";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(transparent)]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Key(#[from] rustls::Error),
}

/// A self-signed certificate for hosts without a usable one (and handshakes without SNI), made
/// once per process, as ingress-nginx's "Fake Certificate".
pub fn default_certificate() -> Result<Arc<CertifiedKey>, CertificateError> {
    let mut params = rcgen::CertificateParams::new(vec!["ingress.local".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme Co");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERTIFICATE_CN);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok(Arc::new(CertifiedKey::from_der(
        vec![cert.der().clone()],
        der,
        &provider(),
    )?))
}

/// A snapshot certificate's chain and key as rustls takes them.
pub(crate) fn der(c: &Certificate) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let chain = c
        .chain
        .iter()
        .map(|d| CertificateDer::from(d.to_vec()))
        .collect();
    let der = c.key.der.to_vec();
    let key = match c.key.format {
        KeyFormat::Pkcs8 => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
        KeyFormat::Pkcs1 => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
        KeyFormat::Sec1 => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
    };
    (chain, key)
}

/// webpki's limit on a verified chain: at most `depth` certificates above the leaf (nginx's
/// `*_verify_depth`).
pub(crate) fn within_depth(
    depth: usize,
) -> impl Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error> {
    move |path| {
        if path.intermediate_certificates().count() + 1 > depth {
            return Err(webpki::Error::MaximumPathDepthExceeded);
        }
        Ok(())
    }
}

/// The rustls form of a snapshot certificate (validated by translation; `None` if it still fails).
pub fn certified_key(c: &Certificate) -> Option<Arc<CertifiedKey>> {
    let (chain, key) = der(c);
    match CertifiedKey::from_der(chain, key, &provider()) {
        Ok(k) => Some(Arc::new(k)),
        Err(e) => {
            tracing::warn!(secret = %c.secret, error = %e, "certificate unusable, the default one is served");
            None
        }
    }
}

/// Picks the certificate for a handshake from the table current at that moment, among the
/// virtual hosts of its listener.
#[derive(Debug)]
struct Resolver {
    shared: Weak<Shared>,
    default: Arc<CertifiedKey>,
    listener: ListenerId,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let found = self.shared.upgrade().and_then(|shared| {
            shared
                .table
                .load()
                .certificate(self.listener, hello.server_name())
        });
        Some(found.unwrap_or_else(|| self.default.clone()))
    }
}

/// The server configuration of an HTTPS listener: the Ingress one, or a Gateway listener's.
pub fn server_config(
    shared: &Arc<Shared>,
    default: Arc<CertifiedKey>,
    listener: ListenerId,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver {
            shared: Arc::downgrade(shared),
            default,
            listener,
        }));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// ring's provider with the TLS 1.3 suites (with `tls13`) and the TLS 1.2 suites `ciphers`
/// names, IANA names in order (with `tls12`), and those versions: the configuration both sides of
/// Remora take from ingress-nginx's `*-protocols` and `*-ciphers` (`ssl-*` for clients, the
/// `proxy-ssl-*` of a route for pods).
pub(crate) fn suites(
    tls12: bool,
    tls13: bool,
    ciphers: &[String],
) -> (
    Arc<rustls::crypto::CryptoProvider>,
    Vec<&'static rustls::SupportedProtocolVersion>,
) {
    let ring = rustls::crypto::ring::default_provider();
    // TLS 1.3 suites are all offered (a cipher list does not choose them, as with OpenSSL).
    let tls13_suites = ring
        .cipher_suites
        .iter()
        .filter(|s| tls13 && s.version() == &rustls::version::TLS13);
    let tls12_suites = ciphers.iter().filter(|_| tls12).filter_map(|name| {
        ring.cipher_suites
            .iter()
            .find(|s| s.suite().as_str() == Some(name.as_str()))
    });
    let cipher_suites = tls13_suites.chain(tls12_suites).copied().collect();
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites,
        ..ring
    });
    let mut versions = Vec::new();
    if tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if tls12 {
        versions.push(&rustls::version::TLS12);
    }
    (provider, versions)
}

/// `base` for the versions and TLS 1.2 cipher suites `want` allows (the ConfigMap's
/// `ssl-protocols`, `ssl-ciphers`): the same certificates, ALPN and session resumption.
pub(crate) fn restricted(
    base: &ServerConfig,
    want: &model::ServerTls,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let (provider, versions) = suites(want.tls12, want.tls13, &want.ciphers);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .with_no_client_auth()
        .with_cert_resolver(base.cert_resolver.clone());
    config.alpn_protocols = base.alpn_protocols.clone();
    config.session_storage = base.session_storage.clone();
    config.ticketer = base.ticketer.clone();
    Ok(Arc::new(config))
}

/// `listener` (the Ingress HTTPS listener's configuration) for a host's `ssl-ciphers` (its TLS 1.2
/// suites, in its order, under the listener's `versions`: TLS 1.2, TLS 1.3) and
/// `ssl-prefer-server-ciphers` (rustls's `ignore_client_order`): the same certificates, ALPN and
/// session resumption.
pub(crate) fn for_host(
    listener: &ServerConfig,
    (tls12, tls13): (bool, bool),
    want: &model::HostCiphers,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let (provider, versions) = match &want.ciphers {
        Some(ciphers) => suites(tls12, tls13, ciphers),
        None => (
            listener.crypto_provider().clone(),
            suites(tls12, tls13, &[]).1,
        ),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)?
        .with_no_client_auth()
        .with_cert_resolver(listener.cert_resolver.clone());
    config.alpn_protocols = listener.alpn_protocols.clone();
    config.session_storage = listener.session_storage.clone();
    config.ticketer = listener.ticketer.clone();
    config.ignore_client_order = want.prefer_server.unwrap_or(listener.ignore_client_order);
    Ok(Arc::new(config))
}

/// What a connection's TLS handshake told the request path.
#[derive(Debug, Default)]
pub struct TlsFacts {
    /// The client named a server (SNI).
    pub sni: bool,
    /// The handshake was made for a host with client authentication: the client's certificate,
    /// verified.
    pub peer: Option<std::sync::Arc<PeerCert>>,
}

/// The Ingress HTTPS listener's handshakes: the ClientHello is read first, and the host its SNI
/// names (in the table current at that moment) chooses the configuration: its own when it asks
/// for client certificates, else `base`.
pub struct SniAcceptor {
    base: Arc<ServerConfig>,
    shared: Weak<Shared>,
    listener: ListenerId,
}

impl SniAcceptor {
    pub(crate) fn new(base: Arc<ServerConfig>, shared: &Arc<Shared>, listener: ListenerId) -> Self {
        Self {
            base,
            shared: Arc::downgrade(shared),
            listener,
        }
    }

    /// The handshake of one connection, and what it told; or, when its ClientHello names an
    /// `ssl-passthrough` host, the connection to relay as it is.
    pub(crate) async fn accept(&self, stream: tokio::net::TcpStream) -> std::io::Result<Handshake> {
        // The table current when each step happens (a weak reference: no handshake keeps the
        // proxy alive).
        let table = || self.shared.upgrade().map(|shared| shared.table.load_full());
        let acceptor = rustls::server::Acceptor::default();
        let start = if table().is_some_and(|t| t.has_passthrough()) {
            let start =
                tokio_rustls::LazyConfigAcceptor::new(acceptor, Recorded::new(stream)).await?;
            let (accepted, (stream, hello)) = (start.accepted, start.io.into_parts());
            let target = accepted
                .client_hello()
                .server_name()
                .and_then(|name| table()?.passthrough(name));
            match (target, hello) {
                (Some(target), Some(hello)) => {
                    return Ok(Handshake::Relay(Relay {
                        client: stream,
                        hello,
                        target,
                    }))
                }
                (Some(_), None) => tracing::debug!(
                    "ClientHello for a passthrough host larger than {MAX_HELLO} bytes: terminated"
                ),
                (None, _) => {}
            }
            tokio_rustls::StartHandshake::from_parts(accepted, stream)
        } else {
            tokio_rustls::LazyConfigAcceptor::new(acceptor, stream).await?
        };
        let hello = start.client_hello();
        let sni = hello.server_name().is_some();
        let current = table();
        let auth = current
            .as_ref()
            .and_then(|t| t.client_auth(self.listener, hello.server_name()));
        // The ConfigMap's `ssl-protocols` and `ssl-ciphers`, then the host's own `ssl-ciphers`
        // (Ingress listener only).
        let base = match (&current, self.listener) {
            (Some(t), ListenerId::Ingress) => {
                let listener = t.ingress_tls(&self.base).map_err(std::io::Error::other)?;
                match t.host_tls(hello.server_name(), &listener) {
                    Some(host) => host.map_err(std::io::Error::other)?,
                    None => listener,
                }
            }
            _ => self.base.clone(),
        };
        let config = match &auth {
            Some(auth) => {
                let versions = match (&current, self.listener) {
                    (Some(t), ListenerId::Ingress) => t.snapshot.settings.server_tls.as_ref(),
                    _ => None,
                }
                .map_or_else(
                    || vec![&rustls::version::TLS13, &rustls::version::TLS12],
                    |w| suites(w.tls12, w.tls13, &[]).1,
                );
                auth.server_config(&base, &versions)
                    .map_err(std::io::Error::other)?
            }
            None => base,
        };
        let stream = start.into_stream(config).await?;
        let peer = auth
            .map(|auth| std::sync::Arc::new(auth.examine(stream.get_ref().1.peer_certificates())));
        Ok(Handshake::Tls(stream, TlsFacts { sni, peer }))
    }
}

/// How a connection of an HTTPS listener goes on after its ClientHello.
// The TLS stream is the common case, moved once per connection: not worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Handshake {
    /// Terminated: the TLS stream, and what its handshake told.
    Tls(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        TlsFacts,
    ),
    /// `ssl-passthrough`: relayed to a pod as it is.
    Relay(Relay),
}
