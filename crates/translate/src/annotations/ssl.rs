//! `ssl-redirect` and `force-ssl-redirect`: plain HTTP requests get a 308 to HTTPS.

use super::Reader;

/// The redirect settings of one Ingress.
#[derive(Debug, Clone, Copy, Default)]
pub struct SslRedirect {
    /// `ssl-redirect`: redirect when the host has TLS. `None`: the ConfigMap's value, else the
    /// `--default-ssl-redirect` value.
    pub redirect: Option<bool>,
    /// `force-ssl-redirect`: redirect even without TLS for the host. `None`: the ConfigMap's
    /// value, else false.
    pub force: Option<bool>,
}

pub fn parse(r: &mut Reader<'_>) -> SslRedirect {
    SslRedirect {
        redirect: r.bool("ssl-redirect"),
        force: r.bool("force-ssl-redirect"),
    }
}
