//! `auth-tls-secret` and its family: client certificate authentication (ingress-nginx's
//! `authtls` parser, nginx's `ssl_verify_client`). Active only when `auth-tls-secret` is set, as
//! in ingress-nginx.
//!
//! The result applies to the Ingress's hosts, not its paths: nginx verifies certificates per
//! server, and the first Ingress of a host (oldest first) with a usable Secret sets it
//! (`ingress.rs`).
//!
//! What ingress-nginx does with each failure, kept, never served open:
//! - the Secret cannot be used (malformed or cross-namespace name, not found, no or an invalid
//!   `ca.crt`, an invalid `ca.crl`): its `AuthTLSError`, a server `return 403`: every request of
//!   the Ingress's hosts gets 403 (ingress-nginx serves a Secret without `ca.crt` without client
//!   authentication; Remora answers 403 there too rather than fail open);
//! - an invalid `auth-tls-error-page`, `auth-tls-pass-certificate-to-upstream` or
//!   `auth-tls-match-cn`: a validation error, the Ingress is not served: every request of it gets
//!   503 (its location denied);
//! - an invalid `auth-tls-verify-client` is `on`, an invalid or 0 `auth-tls-verify-depth` is 1,
//!   with a warning.

use super::Reader;
use crate::objects::Secret;
use model::{ClientAuth, Location, VerifyClient};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use std::sync::Arc;

/// The client authentication of an Ingress's hosts: `Ok`, or why its Secret cannot be used (the
/// hosts answer 403).
pub type ClientAuthSpec = Result<Arc<ClientAuth>, String>;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) -> Option<ClientAuthSpec> {
    let secret_name = r.text("auth-tls-secret")?;
    let verify = match r.get("auth-tls-verify-client").map(str::to_owned) {
        None => VerifyClient::On,
        Some(v) => {
            match v.as_str() {
                "" | "on" => VerifyClient::On,
                "off" => VerifyClient::Off,
                "optional" => VerifyClient::Optional,
                "optional_no_ca" => VerifyClient::OptionalNoCa,
                _ => {
                    r.warn(
                    "auth-tls-verify-client",
                    format!("invalid value \"{v}\" (expected on, off, optional or optional_no_ca): on"),
                );
                    VerifyClient::On
                }
            }
        }
    };
    let depth = match r.get("auth-tls-verify-depth").map(str::to_owned) {
        None => 1,
        Some(v) => match v.parse::<u32>() {
            Ok(0) => 1,
            Ok(n) => n,
            Err(_) => {
                r.warn(
                    "auth-tls-verify-depth",
                    format!("invalid value \"{v}\" (expected a positive integer): 1"),
                );
                1
            }
        },
    };
    let error_page = match r.text("auth-tls-error-page") {
        None => None,
        Some(page) if valid_error_page(&page) => {
            if page.starts_with('/') || page.starts_with('@') {
                r.warn(
                    "auth-tls-error-page",
                    format!("\"{page}\" is a location of the server (nginx's internal redirect), which Remora does not follow: clients without a valid certificate get 400 instead"),
                );
                None
            } else {
                Some(page)
            }
        }
        Some(page) => {
            let why = format!("invalid value \"{page}\" (expected a URL or path)");
            return deny(r, loc, "auth-tls-error-page", why);
        }
    };
    let pass_certificate = match r.get("auth-tls-pass-certificate-to-upstream") {
        None | Some("") => false,
        Some(v) => match super::parse_bool(v) {
            Some(b) => b,
            None => {
                let why = format!("invalid boolean \"{v}\"");
                return deny(r, loc, "auth-tls-pass-certificate-to-upstream", why);
            }
        },
    };
    let match_cn = match r.text("auth-tls-match-cn") {
        None => None,
        Some(cn) => {
            if !cn.starts_with("CN=") {
                let why = format!("invalid value \"{cn}\": it must start with CN=");
                return deny(r, loc, "auth-tls-match-cn", why);
            }
            if let Err(e) = regex::Regex::new(&cn) {
                let why = format!("\"{cn}\" is not a valid regular expression ({e})");
                return deny(r, loc, "auth-tls-match-cn", why);
            }
            Some(cn)
        }
    };
    let (secret, ca, crls) = match read_secret(r, &secret_name) {
        Ok(found) => found,
        Err(why) => {
            r.warn(
                "auth-tls-secret",
                format!("{why}: {}'s hosts gets 403 (ingress-nginx's server return 403), rather than being served without client certificates", crate::migrate::FAILS_CLOSED),
            );
            return Some(Err(format!("auth-tls-secret: {why}")));
        }
    };
    Some(Ok(Arc::new(ClientAuth {
        secret,
        ca,
        crls,
        verify,
        depth,
        error_page,
        pass_certificate,
        match_cn,
    })))
}

/// The Ingress is not served (503), as ingress-nginx does not serve an Ingress whose annotation
/// fails validation.
fn deny(
    r: &mut Reader<'_>,
    loc: &mut Location,
    annotation: &str,
    why: String,
) -> Option<ClientAuthSpec> {
    r.deny(
        loc,
        annotation,
        &why,
        "rather than being served without client certificate authentication",
    );
    None
}

/// ingress-nginx's `redirectRegex` of `auth-tls-error-page`: a named location, or an optional
/// `http(s)://host:port` followed by an optional path of letters, digits and `-_.`.
fn valid_error_page(v: &str) -> bool {
    let word = |s: &str, extra: &[u8]| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    if let Some(name) = v.strip_prefix('@') {
        return word(name, b"_-");
    }
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .unwrap_or(v);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if rest.len() < v.len() && authority.is_empty() {
        return false;
    }
    if !authority.is_empty() {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if !word(host, b"-.")
            || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
    }
    // `(/[A-Za-z0-9\-_.]+)*/?`
    let path = path.strip_suffix('/').unwrap_or(path);
    path.is_empty()
        || path
            .strip_prefix('/')
            .is_some_and(|p| p.split('/').all(|seg| word(seg, b"-_.")))
}

/// The Secret's name (`namespace/name`), its `ca.crt` certificates and `ca.crl` lists (DER).
#[allow(clippy::type_complexity)]
fn read_secret(
    r: &Reader<'_>,
    value: &str,
) -> Result<(String, Vec<Arc<[u8]>>, Vec<Arc<[u8]>>), String> {
    let ingress_namespace = &r.object().namespace;
    let (namespace, name) = match super::basic_auth::split_name(value) {
        Some((ns, name)) if !name.is_empty() => (ns.unwrap_or(ingress_namespace).to_owned(), name),
        _ => {
            return Err(format!(
                "invalid Secret name \"{value}\" (expected name or namespace/name)"
            ))
        }
    };
    let (secret, key) = r.secret(&namespace, name)?;
    let ca = certificates(secret, &key)?;
    let crls = revocation_lists(secret, &key)?;
    Ok((key, ca, crls))
}

/// A key of the Secret, decoded; `None`: absent.
fn field(secret: &Secret, key: &str, what: &str) -> Result<Option<Vec<u8>>, String> {
    match secret.value(what) {
        None => Ok(None),
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(format!("Secret {key}: {what} is not valid base64 ({e})")),
    }
}

/// `ca.crt`: PEM certificates, each usable as a trust anchor; at least one.
pub(super) fn certificates(secret: &Secret, key: &str) -> Result<Vec<Arc<[u8]>>, String> {
    let pem = field(secret, key, "ca.crt")?.ok_or_else(|| {
        format!(
            "Secret {key} has no ca.crt (the CA certificates client certificates must chain to)"
        )
    })?;
    let mut ca = Vec::new();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| format!("Secret {key}: ca.crt is not valid PEM ({e})"))?;
        webpki::anchor_from_trusted_cert(&der)
            .map_err(|e| format!("Secret {key}: a certificate of ca.crt is invalid ({e})"))?;
        ca.push(Arc::from(der.as_ref()));
    }
    if ca.is_empty() {
        return Err(format!("Secret {key}: ca.crt holds no PEM certificate"));
    }
    Ok(ca)
}

/// `ca.crl`, when present: PEM certificate revocation lists, each valid.
fn revocation_lists(secret: &Secret, key: &str) -> Result<Vec<Arc<[u8]>>, String> {
    let Some(pem) = field(secret, key, "ca.crl")? else {
        return Ok(Vec::new());
    };
    let mut crls = Vec::new();
    for der in CertificateRevocationListDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| format!("Secret {key}: ca.crl is not valid PEM ({e})"))?;
        webpki::OwnedCertRevocationList::from_der(der.as_ref())
            .map_err(|e| format!("Secret {key}: ca.crl holds an invalid revocation list ({e})"))?;
        crls.push(Arc::from(der.as_ref()));
    }
    if crls.is_empty() {
        return Err(format!("Secret {key}: ca.crl holds no PEM revocation list"));
    }
    Ok(crls)
}

#[cfg(test)]
mod tests {
    use super::valid_error_page;

    #[test]
    fn error_pages_as_ingress_nginx_validates_them() {
        for ok in [
            "http://example.com/error",
            "https://example.com:8443/a/b.html",
            "ok.com/error",
            "/error",
            "@named-location",
            "example.com",
            "/",
        ] {
            assert!(valid_error_page(ok), "{ok}");
        }
        for bad in [
            "http:///x",
            "ftp://x/y",
            "http://a b/",
            "/a?b",
            "http://x:/y",
            "@",
        ] {
            assert!(!valid_error_page(bad), "{bad}");
        }
    }
}
