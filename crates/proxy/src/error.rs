//! The errors of the proxy's public functions. Each says what failed; the cause is its
//! [`std::error::Error::source`] (printed by `{:#}` with anyhow).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("upstream TLS configuration")]
    UpstreamTls(#[source] rustls::Error),
    #[error("cannot open the access log {}", path.display())]
    AccessLog {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the access log must be set before the proxy is shared")]
    AccessLogAfterStart,
    #[error("cannot make the default certificate")]
    DefaultCertificate(#[source] crate::tls::CertificateError),
    #[error("TLS server configuration")]
    ServerTls(#[source] rustls::Error),
}
