//! Client certificate authentication of a virtual host: ingress-nginx's `auth-tls-*`
//! annotations, which configure nginx's `ssl_verify_client` for the whole server (host).

use serde::Serialize;
use std::sync::Arc;

/// What a host asks of its clients' certificates (the first Ingress of the host with a usable
/// `auth-tls-secret` says, as in ingress-nginx).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ClientAuth {
    /// `auth-tls-secret`: the Secret (`namespace/name`) the CA certificates come from.
    pub secret: String,
    /// Its `ca.crt`: the DER certificates client certificates must chain to (at least one).
    #[serde(skip)]
    pub ca: Vec<Arc<[u8]>>,
    /// Its `ca.crl`: DER certificate revocation lists checked besides (nginx's `ssl_crl`).
    #[serde(skip)]
    pub crls: Vec<Arc<[u8]>>,
    /// `auth-tls-verify-client`.
    pub verify: VerifyClient,
    /// `auth-tls-verify-depth` (nginx's `ssl_verify_depth`): how many certificates above the
    /// client's the chain to a CA of `ca` may have (1: the client's is issued by such a CA).
    pub depth: u32,
    /// `auth-tls-error-page`: where a client without a valid certificate is redirected (302)
    /// instead of getting 400.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_page: Option<String>,
    /// `auth-tls-pass-certificate-to-upstream`: the pod gets the client's certificate (PEM,
    /// URL-escaped) in `ssl-client-cert`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pass_certificate: bool,
    /// `auth-tls-match-cn`: a regular expression (`CN=...`) the client's subject DN must match
    /// (anywhere, case-sensitive, as nginx's `$ssl_client_s_dn !~`), else 403.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_cn: Option<String>,
}

/// `auth-tls-verify-client`: nginx's `ssl_verify_client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyClient {
    /// A certificate is asked for and must be valid: without one 400, with an invalid one 400.
    #[default]
    On,
    /// No certificate is asked for (the pod is still told `ssl-client-verify: NONE`).
    Off,
    /// A certificate is asked for; a request without one goes on, one with an invalid one gets
    /// 400.
    Optional,
    /// A certificate is asked for; one whose issuer is unknown goes on (the pod is told why it
    /// failed), other failures (expired, revoked...) get 400.
    OptionalNoCa,
}

impl VerifyClient {
    /// The value as written in the annotation.
    pub fn name(self) -> &'static str {
        match self {
            VerifyClient::On => "on",
            VerifyClient::Off => "off",
            VerifyClient::Optional => "optional",
            VerifyClient::OptionalNoCa => "optional_no_ca",
        }
    }

    /// The TLS handshake asks the client for a certificate.
    pub fn requests_certificate(self) -> bool {
        self != VerifyClient::Off
    }
}
