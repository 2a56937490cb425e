//! How Remora speaks TLS to the pods of an HTTPS or GRPCS backend: ingress-nginx's `proxy-ssl-*`
//! annotations (nginx's `proxy_ssl_*` directives).

use crate::Certificate;
use serde::Serialize;
use std::sync::Arc;

/// The name nginx verifies and sends when `proxy-ssl-name` is not set: `$proxy_host`, the host
/// of ingress-nginx's `proxy_pass https://upstream_balancer`.
pub const DEFAULT_PROXY_SSL_NAME: &str = "upstream_balancer";

/// `proxy-ssl-secret` and its family, already validated. Two routes with equal settings share one
/// TLS client configuration and connection pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct UpstreamTls {
    /// `proxy-ssl-secret`: the Secret (`namespace/name`) the CA and client certificate come from.
    pub secret: String,
    /// Its `ca.crt` (DER): with `verify`, the pod's certificate must chain to one of them.
    #[serde(skip)]
    pub ca: Vec<Arc<[u8]>>,
    /// Its `tls.crt` and `tls.key`, when present: the certificate Remora presents to pods that ask
    /// for one (nginx's `proxy_ssl_certificate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<Certificate>,
    /// `proxy-ssl-verify: "on"` (default off): the pod's certificate is verified against `ca`,
    /// within `depth`, for `name`.
    pub verify: bool,
    /// `proxy-ssl-verify-depth` (1): how many certificates above the pod's the chain to a CA of
    /// `ca` may have (1: the pod's is issued by such a CA).
    pub depth: u32,
    /// `proxy-ssl-name`: the name the pod's certificate is verified for and, with `server_name`,
    /// sent as SNI (default [`DEFAULT_PROXY_SSL_NAME`]).
    pub name: String,
    /// `proxy-ssl-server-name: "on"` (default off): `name` is sent in the handshake (SNI).
    pub server_name: bool,
    /// `proxy-ssl-protocols` that rustls speaks: TLS 1.2 (ingress-nginx's default).
    pub tls12: bool,
    /// TLS 1.3.
    pub tls13: bool,
    /// `proxy-ssl-ciphers`: the TLS 1.2 cipher suites offered, IANA names in order of
    /// preference (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`...); TLS 1.3 suites are not
    /// configured by it (as with OpenSSL's cipher lists), all of rustls's are offered.
    pub ciphers: Vec<String>,
}
