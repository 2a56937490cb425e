//! `proxy-ssl-secret` and its family: TLS to the pods of an HTTPS or GRPCS backend
//! (ingress-nginx's `proxyssl` parser, nginx's `proxy_ssl_*`). Read only when `proxy-ssl-secret`
//! is set, as in ingress-nginx; with an HTTP backend they change nothing.
//!
//! - `proxy-ssl-secret: namespace/name`: its `ca.crt` verifies the pods (with `proxy-ssl-verify:
//!   "on"`), its `tls.crt` and `tls.key` are the certificate presented to pods that ask for one;
//! - `proxy-ssl-verify` (`off`), `proxy-ssl-verify-depth` (1), `proxy-ssl-name` (the name
//!   verified, default nginx's `$proxy_host`: `upstream_balancer`), `proxy-ssl-server-name`
//!   (`off`: no SNI), `proxy-ssl-protocols` (`TLSv1.2`), `proxy-ssl-ciphers` (`DEFAULT`).
//!
//! Security fails closed: a Secret that cannot be used (ingress-nginx's `LocationDenied`) and any
//! invalid value (where ingress-nginx would fall back to a default, such as `off` for an invalid
//! `proxy-ssl-verify`) deny the Ingress: every request 503. Protocols rustls does not speak
//! (`TLSv1`, `TLSv1.1`) and cipher names it has no suite for are warned about and left out; when
//! none is left, the Ingress is denied.

pub(crate) mod ciphers;

use super::Reader;
use model::{Location, UpstreamTls, DEFAULT_PROXY_SSL_NAME};
use rustls_pki_types::ServerName;
use std::sync::Arc;

/// The annotations of the family besides `proxy-ssl-secret`.
const OTHERS: [&str; 6] = [
    "proxy-ssl-verify",
    "proxy-ssl-verify-depth",
    "proxy-ssl-name",
    "proxy-ssl-server-name",
    "proxy-ssl-protocols",
    "proxy-ssl-ciphers",
];

/// What the denial warnings end with.
const UNTIL: &str = "rather than reaching its pods with other TLS settings than asked";

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    // The family is read whole: the first invalid value denies the Ingress, whatever the others.
    for name in OTHERS {
        r.get(name);
    }
    let Some(secret_name) = r.text("proxy-ssl-secret") else {
        without_secret(r, loc);
        return;
    };
    let Some(verify) = on_off(r, loc, "proxy-ssl-verify") else {
        return;
    };
    let depth = match r.text("proxy-ssl-verify-depth") {
        None => 1,
        Some(v) => match v.parse::<u32>() {
            // ingress-nginx reads 0 as its default.
            Ok(0) => 1,
            Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                let why = format!("invalid value \"{v}\" (expected a positive integer)");
                return r.deny(loc, "proxy-ssl-verify-depth", &why, UNTIL);
            }
        },
    };
    let name = match r.text("proxy-ssl-name") {
        None => DEFAULT_PROXY_SSL_NAME.to_owned(),
        Some(v) if ServerName::try_from(v.as_str()).is_ok() => v,
        Some(v) => {
            let why = format!("invalid value \"{v}\" (expected a DNS name or an IP address; nginx variables are not supported)");
            return r.deny(loc, "proxy-ssl-name", &why, UNTIL);
        }
    };
    let Some(server_name) = on_off(r, loc, "proxy-ssl-server-name") else {
        return;
    };
    let Some((tls12, tls13)) = protocols(r, loc) else {
        return;
    };
    let (ciphers, tls12) = match r.text("proxy-ssl-ciphers") {
        None => (ciphers::evaluate("DEFAULT").suites, tls12),
        Some(v) if !ciphers::valid(&v) => {
            let why = format!("invalid value \"{v}\" (expected an OpenSSL cipher list: letters, digits and + : _ - !)");
            return r.deny(loc, "proxy-ssl-ciphers", &why, UNTIL);
        }
        Some(v) => {
            let found = ciphers::evaluate(&v);
            if !found.unknown.is_empty() {
                r.warn(
                    "proxy-ssl-ciphers",
                    format!(
                        "{} left out: rustls has no TLS 1.2 cipher suite of that name (it has {})",
                        found.unknown.join(", "),
                        ciphers::OPENSSL_NAMES.join(", ")
                    ),
                );
            }
            match (found.suites.is_empty(), tls12, tls13) {
                (false, _, _) | (true, false, _) => (found.suites, tls12),
                (true, true, true) => {
                    r.warn(
                        "proxy-ssl-ciphers",
                        format!("\"{v}\" leaves no TLS 1.2 cipher suite: only TLS 1.3 is offered to the pods (its suites are not chosen by cipher lists)"),
                    );
                    (found.suites, false)
                }
                (true, true, false) => {
                    let why = format!("\"{v}\" leaves no cipher suite for TLS 1.2, the only protocol of proxy-ssl-protocols");
                    return r.deny(loc, "proxy-ssl-ciphers", &why, UNTIL);
                }
            }
        }
    };
    let secret = match read_secret(r, &secret_name) {
        Ok(found) => found,
        Err(why) => return r.deny(loc, "proxy-ssl-secret", &why, UNTIL),
    };
    if verify && secret.ca.is_empty() {
        let why = format!(
            "Secret {} has no ca.crt to verify the pods with",
            secret.key
        );
        return r.deny(loc, "proxy-ssl-verify", &why, UNTIL);
    }
    loc.upstream_tls = Some(Arc::new(UpstreamTls {
        secret: secret.key,
        ca: secret.ca,
        client_certificate: secret.client_certificate,
        verify,
        depth,
        name,
        server_name,
        tls12,
        tls13,
        ciphers,
    }));
}

/// The family without `proxy-ssl-secret`: ingress-nginx ignores it. `proxy-ssl-verify: "on"`
/// would then go unverified, so it denies the Ingress instead; the others are warned about.
fn without_secret(r: &mut Reader<'_>, loc: &mut Location) {
    for name in OTHERS {
        let Some(v) = r.text(name) else { continue };
        if name == "proxy-ssl-verify" && v != "off" {
            let why = "no proxy-ssl-secret, so no CA to verify the pods with";
            r.deny(loc, name, why, UNTIL);
        } else {
            r.warn(
                name,
                "has no effect without proxy-ssl-secret (as in ingress-nginx): ignored",
            );
        }
    }
}

/// `on` or `off` (default off); anything else denies the Ingress (`None`).
fn on_off(r: &mut Reader<'_>, loc: &mut Location, name: &str) -> Option<bool> {
    match r.text(name).as_deref() {
        None | Some("off") => Some(false),
        Some("on") => Some(true),
        Some(v) => {
            let why = format!("invalid value \"{v}\" (expected on or off)");
            r.deny(loc, name, &why, UNTIL);
            None
        }
    }
}

/// `proxy-ssl-protocols`: (TLS 1.2, TLS 1.3); ingress-nginx's default is TLS 1.2 alone. `None`:
/// the Ingress is denied.
fn protocols(r: &mut Reader<'_>, loc: &mut Location) -> Option<(bool, bool)> {
    let Some(v) = r.text("proxy-ssl-protocols") else {
        return Some((true, false));
    };
    match versions(&v) {
        Err(why) => {
            r.deny(loc, "proxy-ssl-protocols", &why, UNTIL);
            None
        }
        Ok(Versions { tls12, tls13, old }) => {
            if !old.is_empty() {
                r.warn("proxy-ssl-protocols", left_out(&old));
            }
            Some((tls12, tls13))
        }
    }
}

/// What a list of protocols (nginx's `ssl_protocols`) names.
pub(crate) struct Versions<'a> {
    pub tls12: bool,
    pub tls13: bool,
    /// Versions rustls does not speak (SSLv2 to TLSv1.1).
    pub old: Vec<&'a str>,
}

/// Read a list of protocols; `Err`: why it cannot be used (a word that names no version, or no
/// version rustls speaks).
pub(crate) fn versions(v: &str) -> Result<Versions<'_>, String> {
    let mut found = Versions {
        tls12: false,
        tls13: false,
        old: Vec::new(),
    };
    for p in v.split_ascii_whitespace() {
        match p {
            "TLSv1.2" => found.tls12 = true,
            "TLSv1.3" => found.tls13 = true,
            "SSLv2" | "SSLv3" | "TLSv1" | "TLSv1.1" => found.old.push(p),
            _ => {
                return Err(format!(
                    "invalid protocol \"{p}\" in \"{v}\" (expected TLSv1.2, TLSv1.3)"
                ))
            }
        }
    }
    if !found.tls12 && !found.tls13 {
        return Err(format!(
            "\"{v}\" names no protocol Remora speaks (TLSv1.2, TLSv1.3)"
        ));
    }
    Ok(found)
}

/// The warning about the versions of a list rustls does not speak.
pub(crate) fn left_out(old: &[&str]) -> String {
    format!(
        "{} not supported (rustls speaks TLS 1.2 and 1.3 only): left out",
        old.join(", ")
    )
}

/// What the Secret holds for upstream TLS.
struct SecretTls {
    key: String,
    ca: Vec<Arc<[u8]>>,
    client_certificate: Option<model::Certificate>,
}

/// The Secret `namespace/name` (the only form ingress-nginx reads): its `ca.crt`, its `tls.crt`
/// and `tls.key`; at least one of the two.
fn read_secret(r: &Reader<'_>, value: &str) -> Result<SecretTls, String> {
    let (namespace, name) = match super::basic_auth::split_name(value) {
        Some((Some(ns), name)) if !name.is_empty() && !ns.is_empty() => (ns, name),
        _ => {
            return Err(format!(
                "invalid Secret name \"{value}\" (expected namespace/name)"
            ))
        }
    };
    let (secret, key) = r.secret(namespace, name)?;
    let ca = match secret.value("ca.crt") {
        None => Vec::new(),
        Some(_) => super::auth_tls::certificates(secret, &key)?,
    };
    let client_certificate = match (secret.value("tls.crt"), secret.value("tls.key")) {
        (None, None) => None,
        _ => Some(crate::tls::decode(secret, &key)?),
    };
    if ca.is_empty() && client_certificate.is_none() {
        return Err(format!(
            "Secret {key} contains no keypair (tls.crt, tls.key) or CA certificate (ca.crt)"
        ));
    }
    Ok(SecretTls {
        key,
        ca,
        client_certificate,
    })
}
