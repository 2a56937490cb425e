//! `ssl-ciphers` and `ssl-prefer-server-ciphers` (ingress-nginx's `sslcipher` family): the TLS 1.2
//! cipher suites of the Ingress's hosts, an OpenSSL cipher list evaluated over rustls's suites as
//! `proxy-ssl-ciphers` is (`proxy_ssl/ciphers.rs`), and whether the host's order of them, not the
//! client's, chooses. Set at the server level: the first Ingress of a host with them configures
//! it. A list that leaves no suite keeps the listener's (the ConfigMap's `ssl-ciphers`, else
//! every suite), with a warning.

use super::proxy_ssl::ciphers;
use super::Reader;
use model::HostCiphers;

pub fn parse(r: &mut Reader<'_>) -> Option<HostCiphers> {
    let prefer_server = r.bool("ssl-prefer-server-ciphers");
    let ciphers = r.text("ssl-ciphers").and_then(|v| {
        let otherwise =
            "the listener's ciphers (the ConfigMap's ssl-ciphers, else all of them) are offered";
        ciphers::listener(r, &v, otherwise)
    });
    (ciphers.is_some() || prefer_server.is_some()).then_some(HostCiphers {
        ciphers,
        prefer_server,
    })
}
