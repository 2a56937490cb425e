//! Phase 1 (after the route), client certificates: a host with `auth-tls-secret` (nginx's
//! `ssl_verify_client`, checked before any phase of nginx's) answers, per
//! `auth-tls-verify-client`:
//! - `on`: 400 to a request without a certificate, or with one that failed verification;
//! - `optional`: 400 to one with a certificate that failed verification, the others go on;
//! - `optional_no_ca`: 400 to one whose certificate failed for another reason than an unknown
//!   issuer, the others go on;
//! - `off`: nothing is asked for;
//!
//! with `auth-tls-error-page`, a 302 to it instead of the 400. Then `auth-tls-match-cn` (403
//! unless the subject DN matches). The pod is told the result in `ssl-client-verify`,
//! `ssl-client-subject-dn`, `ssl-client-issuer-dn` and, with
//! `auth-tls-pass-certificate-to-upstream`, `ssl-client-cert`; headers of those names from the
//! client are dropped on every host.
//!
//! The connection's certificate counts only for the host its handshake was made for: a request
//! on a connection whose SNI named another host (HTTP/2 connection coalescing, or a client
//! choosing its `Host`) gets 421, as nginx answers a `Host` other than the SNI's on a server that
//! verifies clients; so does a connection made before the host's settings changed. A client that
//! sent no SNI presented no certificate. A plain HTTP request is one without a certificate (once
//! redirected to HTTPS, if the route does), but for ACME HTTP-01 challenges, which pass.

use super::{Connection, Reject};
use crate::client_auth::{HostAuth, PeerCert, Verified};
use crate::table::Matched;
use http::header::{HeaderName, HeaderValue};
use http::Request;
use model::VerifyClient;

static SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("ssl-client-verify");
static SSL_CLIENT_SUBJECT_DN: HeaderName = HeaderName::from_static("ssl-client-subject-dn");
static SSL_CLIENT_ISSUER_DN: HeaderName = HeaderName::from_static("ssl-client-issuer-dn");
static SSL_CLIENT_CERT: HeaderName = HeaderName::from_static("ssl-client-cert");

static NONE: HeaderValue = HeaderValue::from_static("NONE");

pub fn check<B>(
    route: &Matched<'_>,
    conn: &Connection,
    req: &mut Request<B>,
) -> Result<(), Reject> {
    drop_client_values(req.headers_mut());
    let auth = match route.client_auth {
        HostAuth::None => return Ok(()),
        HostAuth::Broken => return Err(Reject::ClientAuthUnusable),
        HostAuth::Verify(auth) => auth,
    };
    let mode = auth.mode();
    let peer: Option<&PeerCert> = if !conn.tls {
        // `local` redirects it to HTTPS, where the certificate is asked for; ACME HTTP-01
        // challenges are answered over plain HTTP (nginx checks no certificate there).
        if (route.https_redirect && conn.is_ingress())
            || req.uri().path().starts_with("/.well-known/acme-challenge/")
        {
            return Ok(());
        }
        None
    } else if !mode.requests_certificate() {
        None
    } else {
        match conn.peer.as_deref() {
            Some(peer) if peer.auth == auth.id => Some(peer),
            Some(_) => return Err(Reject::Misdirected),
            None if conn.sni => return Err(Reject::Misdirected),
            None => None,
        }
    };
    let outcome = peer.map_or(&Verified::NoCertificate, |p| &p.outcome);
    let refused = match (mode, outcome) {
        (VerifyClient::Off, _) | (_, Verified::Success) => None,
        (VerifyClient::On, Verified::NoCertificate) => Some(true),
        (_, Verified::NoCertificate) => None,
        (
            VerifyClient::OptionalNoCa,
            Verified::Failed {
                unknown_issuer: true,
                ..
            },
        ) => None,
        (_, Verified::Failed { .. }) => Some(false),
    };
    if let Some(missing) = refused {
        return Err(Reject::ClientCertificate {
            missing,
            error_page: auth.error_page.clone(),
        });
    }
    if let Some(cn) = &auth.match_cn {
        if !cn.is_match(peer.map_or("", |p| p.subject.as_str())) {
            return Err(Reject::ClientCommonName);
        }
    }
    let headers = req.headers_mut();
    headers.insert(
        &SSL_CLIENT_VERIFY,
        peer.map_or(NONE.clone(), |p| p.verify.clone()),
    );
    if let Some(peer) = peer {
        if let Some(v) = &peer.subject_header {
            headers.insert(&SSL_CLIENT_SUBJECT_DN, v.clone());
        }
        if let Some(v) = &peer.issuer_header {
            headers.insert(&SSL_CLIENT_ISSUER_DN, v.clone());
        }
        if let Some(v) = &peer.escaped {
            headers.insert(&SSL_CLIENT_CERT, v.clone());
        }
    }
    Ok(())
}

/// The client's own `ssl-client-*` headers never reach a pod: one pass over the names, removals
/// only when there is one.
fn drop_client_values(headers: &mut http::HeaderMap) {
    if headers
        .keys()
        .any(|n| n.as_str().starts_with("ssl-client-"))
    {
        for name in [
            &SSL_CLIENT_VERIFY,
            &SSL_CLIENT_SUBJECT_DN,
            &SSL_CLIENT_ISSUER_DN,
            &SSL_CLIENT_CERT,
        ] {
            headers.remove(name);
        }
    }
}
