//! TLS certificates of a snapshot: which certificate a virtual host presents.

use serde::Serialize;
use std::sync::Arc;

/// The certificate a virtual host presents over TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostTls {
    /// A certificate of [`crate::Snapshot::certificates`], by index.
    Certificate(usize),
    /// The host is listed in a `spec.tls` section but its Secret is missing, invalid or does not
    /// cover the host: the proxy's default (self-signed) certificate, as ingress-nginx's fake one.
    Default,
}

/// A certificate chain and private key from a `kubernetes.io/tls` Secret, already validated (the
/// key matches the leaf certificate).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Certificate {
    /// `namespace/name` of the Secret.
    pub secret: String,
    /// The DNS names (subject alternative names) of the leaf certificate.
    pub names: Vec<String>,
    /// DER certificates, leaf first.
    #[serde(skip)]
    pub chain: Vec<Arc<[u8]>>,
    #[serde(skip)]
    pub key: PrivateKey,
}

/// A DER private key. Its `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct PrivateKey {
    pub format: KeyFormat,
    pub der: Arc<[u8]>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({:?}, {} bytes)", self.format, self.der.len())
    }
}

/// The encoding of a [`PrivateKey`]'s DER, as PEM labels name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyFormat {
    /// `BEGIN PRIVATE KEY`
    #[default]
    Pkcs8,
    /// `BEGIN RSA PRIVATE KEY`
    Pkcs1,
    /// `BEGIN EC PRIVATE KEY`
    Sec1,
}
