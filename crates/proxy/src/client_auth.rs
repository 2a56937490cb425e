//! Client certificates (ingress-nginx's `auth-tls-*`, nginx's `ssl_verify_client`): what a host
//! with client authentication needs, prepared once per table, and what a connection's handshake
//! learnt of its client's certificate, found once per connection.
//!
//! The handshake asks for a certificate without requiring one, and accepts any chain (its
//! `CertificateVerify` signature is still checked: the client holds the key); the chain is then
//! verified here with webpki against the host's CA certificates and revocation lists, and the
//! result kept with the connection, so the request path answers as nginx does (400, or the
//! redirect to the error page) instead of failing the handshake.

use http::HeaderValue;
use model::{ClientAuth, HostMatch, VerifyClient};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::TrustAnchor;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};
use webpki::CertRevocationList;

/// A host's client authentication, ready for handshakes and requests.
pub struct ClientAuthRuntime {
    pub auth: Arc<ClientAuth>,
    /// Names this host and its settings: a connection whose handshake was made for another host,
    /// or for settings since changed, carries another one.
    pub id: u64,
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    /// The CA subjects the handshake names to the client.
    hints: Vec<DistinguishedName>,
    /// `auth-tls-match-cn`, compiled.
    pub match_cn: Option<regex::Regex>,
    /// `auth-tls-error-page`, as `Location` value.
    pub error_page: Option<HeaderValue>,
    /// The handshake's configuration, made at the first handshake that needs it.
    config: OnceLock<Arc<ServerConfig>>,
}

/// How a host's client authentication stands, for the request path.
#[derive(Clone, Copy, Default)]
pub enum HostAuth<'a> {
    /// None asked for.
    #[default]
    None,
    /// An `auth-tls-secret` of the host cannot be used: every request 403.
    Broken,
    Verify(&'a ClientAuthRuntime),
}

impl ClientAuthRuntime {
    /// `None`: the CA certificates or revocation lists do not parse (translation checked them,
    /// so this should not happen; the host then answers 403).
    pub fn new(host: &HostMatch, auth: &Arc<ClientAuth>) -> Option<Self> {
        let mut anchors = Vec::with_capacity(auth.ca.len());
        for der in &auth.ca {
            let der = CertificateDer::from(der.to_vec());
            anchors.push(webpki::anchor_from_trusted_cert(&der).ok()?.to_owned());
        }
        let mut crls = Vec::with_capacity(auth.crls.len());
        for der in &auth.crls {
            let crl = webpki::OwnedCertRevocationList::from_der(der).ok()?;
            crls.push(CertRevocationList::from(crl));
        }
        let hints = anchors
            .iter()
            .map(|a| DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        host.hash(&mut hasher);
        auth.hash(&mut hasher);
        let match_cn = match &auth.match_cn {
            Some(re) => Some(regex::Regex::new(re).ok()?),
            None => None,
        };
        Some(Self {
            id: hasher.finish(),
            anchors,
            crls,
            hints,
            match_cn,
            error_page: auth
                .error_page
                .as_deref()
                .and_then(|p| HeaderValue::from_str(p).ok()),
            auth: auth.clone(),
            config: OnceLock::new(),
        })
    }

    /// The handshake's configuration for this host: `base`'s (certificates, versions, ALPN),
    /// asking the client for a certificate.
    pub fn server_config(
        &self,
        base: &ServerConfig,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        if let Some(c) = self.config.get() {
            return Ok(c.clone());
        }
        let provider = base.crypto_provider().clone();
        let verifier = AnyClientCert {
            hints: self.hints.clone(),
            algorithms: provider.signature_verification_algorithms,
        };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_cert_resolver(base.cert_resolver.clone());
        config.alpn_protocols = base.alpn_protocols.clone();
        // The host's `ssl-prefer-server-ciphers` (its suites come with `base`'s provider).
        config.ignore_client_order = base.ignore_client_order;
        Ok(self.config.get_or_init(|| Arc::new(config)).clone())
    }

    /// What the handshake's certificates (leaf first) say, verified against this host's CAs.
    pub fn examine(&self, certs: Option<&[CertificateDer<'_>]>) -> PeerCert {
        let Some((leaf, intermediates)) = certs.and_then(|c| c.split_first()) else {
            return PeerCert {
                auth: self.id,
                outcome: Verified::NoCertificate,
                verify: HeaderValue::from_static("NONE"),
                subject: String::new(),
                subject_header: None,
                issuer_header: None,
                escaped: None,
            };
        };
        let (subject, issuer) = names(leaf);
        let outcome = self.verify(leaf, intermediates);
        let verify = match &outcome {
            Verified::Success => HeaderValue::from_static("SUCCESS"),
            Verified::Failed { reason, .. } => HeaderValue::from_str(&format!("FAILED:{reason}"))
                .unwrap_or_else(|_| HeaderValue::from_static("FAILED")),
            Verified::NoCertificate => HeaderValue::from_static("NONE"),
        };
        let header = |s: &str| {
            (!s.is_empty())
                .then(|| HeaderValue::from_str(s).ok())
                .flatten()
        };
        PeerCert {
            auth: self.id,
            outcome,
            verify,
            subject_header: header(&subject),
            issuer_header: header(&issuer),
            subject,
            escaped: self
                .auth
                .pass_certificate
                .then(|| HeaderValue::from_str(&escaped_pem(leaf)).ok())
                .flatten(),
        }
    }

    /// webpki's verdict on a chain, within `auth-tls-verify-depth`, with the revocation lists.
    fn verify(&self, leaf: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Verified {
        let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
            return failed(webpki::Error::BadDer);
        };
        let crls: Vec<&CertRevocationList<'_>> = self.crls.iter().collect();
        let revocation = webpki::RevocationOptionsBuilder::new(&crls).ok().map(|b| {
            b.with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Deny)
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build()
        });
        let within_depth = crate::tls::within_depth(self.auth.depth as usize);
        match cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            intermediates,
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            revocation,
            Some(&within_depth),
        ) {
            Ok(_) => Verified::Success,
            Err(e) => failed(e),
        }
    }

    /// `auth-tls-verify-client` of the host.
    pub fn mode(&self) -> VerifyClient {
        self.auth.verify
    }
}

/// A failed verification, with OpenSSL's words for it (nginx's `$ssl_client_verify` says
/// `FAILED:` and those).
fn failed(e: webpki::Error) -> Verified {
    use webpki::Error as E;
    let (reason, unknown_issuer) = match e {
        E::UnknownIssuer => ("unable to get local issuer certificate".to_owned(), true),
        E::CertExpired { .. } => ("certificate has expired".to_owned(), false),
        E::CertNotValidYet { .. } => ("certificate is not yet valid".to_owned(), false),
        E::CertRevoked => ("certificate revoked".to_owned(), false),
        E::UnknownRevocationStatus => ("unable to get certificate CRL".to_owned(), false),
        E::CrlExpired { .. } => ("CRL has expired".to_owned(), false),
        E::MaximumPathDepthExceeded => ("certificate chain too long".to_owned(), false),
        E::RequiredEkuNotFoundContext(_) | E::CaUsedAsEndEntity => {
            ("unsupported certificate purpose".to_owned(), false)
        }
        E::InvalidSignatureForPublicKey => ("certificate signature failure".to_owned(), false),
        other => (other.to_string(), false),
    };
    Verified::Failed {
        reason,
        unknown_issuer,
    }
}

/// What the client's certificate came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Success,
    /// `unknown_issuer`: the chain leads to no CA of the host (which `optional_no_ca` lets
    /// through, as nginx's `ngx_ssl_verify_error_optional`).
    Failed {
        reason: String,
        unknown_issuer: bool,
    },
    NoCertificate,
}

/// What a connection's handshake learnt of the client's certificate, for a host with client
/// authentication: the values of the headers the pods get, made once per connection.
#[derive(Debug)]
pub struct PeerCert {
    /// [`ClientAuthRuntime::id`] of the host the handshake was made for.
    pub auth: u64,
    pub outcome: Verified,
    /// `ssl-client-verify`: `SUCCESS`, `FAILED:reason` or `NONE`.
    pub verify: HeaderValue,
    /// nginx's `$ssl_client_s_dn` (RFC 2253), what `auth-tls-match-cn` matches; empty without.
    pub subject: String,
    pub subject_header: Option<HeaderValue>,
    /// `$ssl_client_i_dn`.
    pub issuer_header: Option<HeaderValue>,
    /// `$ssl_client_escaped_cert`, when the host passes it on.
    pub escaped: Option<HeaderValue>,
}

/// The handshake's verifier: asks for a certificate, requires none, accepts any chain (verified
/// after the handshake, [`ClientAuthRuntime::examine`]), checks the signature that proves the
/// client holds its key.
#[derive(Debug)]
struct AnyClientCert {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
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

/// The subject and issuer of a certificate as nginx's `$ssl_client_s_dn` and `$ssl_client_i_dn`
/// write them (OpenSSL's RFC 2253 form); empty when it does not parse.
fn names(der: &CertificateDer<'_>) -> (String, String) {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => (rfc2253(cert.subject()), rfc2253(cert.issuer())),
        Err(_) => (String::new(), String::new()),
    }
}

/// A name in OpenSSL's `XN_FLAG_RFC2253` form: the last RDN first, `,` between RDNs, `+` within
/// one, short attribute names, special characters escaped with `\`, control and non-ASCII bytes
/// as `\XX`, attributes of unknown type as `OID=#` and their DER in hex.
pub fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            let short = short_name(&oid);
            let value = atv.attr_value();
            let text = match value.tag() {
                x509_parser::asn1_rs::Tag::BmpString => {
                    let units: Vec<u16> = value
                        .data
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect();
                    String::from_utf16(&units).ok()
                }
                _ => atv.as_str().ok().map(str::to_owned),
            };
            match (short, text) {
                (Some(short), Some(text)) => {
                    out.push_str(short);
                    out.push('=');
                    escape_value(&text, &mut out);
                }
                (short, _) => {
                    out.push_str(short.unwrap_or(&oid));
                    out.push_str("=#");
                    // The value's DER: tag, length, content.
                    let data = value.data;
                    let mut der = vec![value.tag().0 as u8];
                    if data.len() < 0x80 {
                        der.push(data.len() as u8);
                    } else {
                        let len = data.len().to_be_bytes();
                        let skip = len.iter().take_while(|b| **b == 0).count();
                        der.push(0x80 | (len.len() - skip) as u8);
                        der.extend_from_slice(&len[skip..]);
                    }
                    der.extend_from_slice(data);
                    for b in der {
                        out.push_str(&format!("{b:02X}"));
                    }
                }
            }
        }
    }
    out
}

/// OpenSSL's short names of the attribute types certificates use.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        _ => return None,
    })
}

/// An attribute value escaped as OpenSSL's `ASN1_STRFLGS_RFC2253` does.
fn escape_value(value: &str, out: &mut String) {
    let bytes = value.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == bytes.len();
        match b {
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                out.push('\\');
                out.push(b as char);
            }
            b'#' if first => out.push_str("\\#"),
            b' ' if first || last => out.push_str("\\ "),
            0..=0x1f | 0x7f..=0xff => out.push_str(&format!("\\{b:02X}")),
            _ => out.push(b as char),
        }
    }
}

/// nginx's `$ssl_client_escaped_cert`: the certificate's PEM (64-character lines), every byte
/// but letters, digits and `-._~` percent-escaped.
fn escaped_pem(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or(""));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let mut out = String::with_capacity(pem.len() * 3 / 2);
    for b in pem.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_written_last_rdn_first_and_escaped() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "DE");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme, Inc.");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, " client#1 ");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (subject, issuer) = names(cert.der());
        assert_eq!(subject, "CN=\\ client#1\\ ,O=Acme\\, Inc.,C=DE");
        assert_eq!(issuer, subject);
    }

    #[test]
    fn escaped_pem_is_nginx_s() {
        let der = CertificateDer::from(vec![0xfb; 60]);
        let escaped = escaped_pem(&der);
        assert!(escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A%2B%2F"));
        assert!(escaped.ends_with("%0A-----END%20CERTIFICATE-----%0A"));
    }
}
