//! Why a request is not proxied, and the one place its response and log line are made of it
//! (linkerd2-proxy's rescue, hyper's error kinds). Phases return a [`Reject`]; none picks a status.

use crate::access_log::Outcome;
use crate::body::{ClientBodyError, TooLarge};
use crate::response::{self, Body};
use crate::timeout::Stalled;
use crate::upstream::UpstreamError;
use http::{Response, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum Reject {
    /// A request head no server may accept.
    #[error("malformed request: {0}")]
    BadHead(&'static str),
    /// The request line is longer than a header buffer (nginx's 414).
    #[error("request line too long")]
    UriTooLong,
    /// The client's address or `User-Agent` is blocked proxy-wide (`block-cidrs`,
    /// `block-user-agents`).
    #[error("client blocked")]
    Blocked,
    #[error("no route for the host and path")]
    NoRoute,
    /// A host with client certificate authentication refuses the request: no certificate
    /// (`missing`) or one that failed verification (nginx's 496 and 495, answered 400, or a 302
    /// to `auth-tls-error-page`).
    #[error("client certificate missing or invalid")]
    ClientCertificate {
        missing: bool,
        error_page: Option<http::HeaderValue>,
    },
    /// `auth-tls-match-cn` does not match the client certificate's subject.
    #[error("client certificate subject does not match auth-tls-match-cn")]
    ClientCommonName,
    /// An `auth-tls-secret` of the host cannot be used (ingress-nginx's server `return 403`).
    #[error("the host's client certificate authentication cannot be configured")]
    ClientAuthUnusable,
    /// The host verifies client certificates, and the connection's handshake was made for
    /// another host (or for its earlier settings).
    #[error("request for a host other than the connection's TLS server name")]
    Misdirected,
    /// The route carries a security annotation Remora cannot honour (see `Location::denied`).
    #[error("the route is denied")]
    Denied,
    /// The authentication service's answer (401, 403, or the 302 to `auth-signin`).
    #[error("refused by the authentication service ({})", .0.status)]
    Auth(super::external_auth::Denial),
    /// The authentication service could not be asked, or answered something else.
    #[error("the authentication service did not answer 2xx, 401 or 403")]
    AuthUnavailable,
    /// No valid credentials of a user of the route's basic or digest authentication
    /// (`auth-type`); the `WWW-Authenticate` challenge that goes with the 401.
    #[error("no valid credentials for the route's basic or digest authentication")]
    Unauthorized(http::HeaderValue),
    /// With the status to answer (`limit-req-status-code`, 503 by default).
    #[error("client over the route's request rate")]
    RateLimited(StatusCode),
    #[error("client address denied by the route's source ranges")]
    SourceNotAllowed,
    #[error("declared request body larger than proxy-body-size")]
    BodyTooLarge,
    #[error("the route's service does not resolve")]
    NoBackend,
    /// A Gateway API rule chose a backend reference that does not resolve, or its weights are
    /// all 0: 500, as the Gateway API asks (rather than the 503 of an Ingress's missing Service).
    #[error("the route's chosen backend reference is invalid")]
    InvalidBackend,
    #[error("no endpoint to pick")]
    NoEndpoint,
    #[error("no upstream client for the route")]
    NoClient,
    #[error("no valid upstream URI for the request")]
    UpstreamUri,
    #[error(transparent)]
    Stalled(#[from] Stalled),
    /// Every endpoint tried failed; the last one's error (each was logged as it happened).
    #[error("no endpoint answered")]
    Upstream(Option<UpstreamError>),
}

impl Reject {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::BadHead(_) => StatusCode::BAD_REQUEST,
            Reject::UriTooLong => StatusCode::URI_TOO_LONG,
            Reject::ClientCertificate {
                error_page: Some(_),
                ..
            } => StatusCode::FOUND,
            Reject::ClientCertificate { .. } => StatusCode::BAD_REQUEST,
            Reject::ClientCommonName | Reject::ClientAuthUnusable => StatusCode::FORBIDDEN,
            Reject::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Reject::Auth(denial) => denial.status,
            Reject::AuthUnavailable | Reject::InvalidBackend => StatusCode::INTERNAL_SERVER_ERROR,
            Reject::NoRoute => StatusCode::NOT_FOUND,
            Reject::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Reject::SourceNotAllowed | Reject::Blocked => StatusCode::FORBIDDEN,
            Reject::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::RateLimited(status) => *status,
            Reject::Denied | Reject::NoBackend | Reject::NoEndpoint => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Reject::NoClient => StatusCode::BAD_GATEWAY,
            Reject::UpstreamUri => StatusCode::BAD_REQUEST,
            Reject::Stalled(Stalled::ClientBody(_)) => StatusCode::REQUEST_TIMEOUT,
            Reject::Stalled(
                Stalled::Send(_) | Stalled::ResponseHead(_) | Stalled::RequestTimeout(_),
            ) => StatusCode::GATEWAY_TIMEOUT,
            // A body cut for its size, or that the client framed wrong (a malformed chunk), reaches
            // the pod as an error of the exchange.
            Reject::Upstream(Some(UpstreamError::Hyper(e))) if TooLarge::caused(e) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Reject::Upstream(Some(UpstreamError::Hyper(e))) if ClientBodyError::caused(e) => {
                StatusCode::BAD_REQUEST
            }
            Reject::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The response, and the log line of what deserves one.
    pub fn response(self, out: &Outcome<'_>) -> Response<Body> {
        match &self {
            Reject::Stalled(stalled) => {
                let upstream = out.upstream.map(|a| a.as_str()).unwrap_or("-");
                tracing::warn!(upstream, "{stalled}");
            }
            Reject::BadHead(why) => tracing::debug!("{why}: 400"),
            _ => {}
        }
        let mut r = response::status(self.status());
        match self {
            Reject::Auth(denial) => {
                for (name, value) in denial.headers {
                    r.headers_mut().append(name, value);
                }
            }
            Reject::Unauthorized(challenge) => {
                r.headers_mut()
                    .insert(http::header::WWW_AUTHENTICATE, challenge);
            }
            Reject::ClientCertificate {
                error_page: Some(page),
                ..
            } => {
                r.headers_mut().insert(http::header::LOCATION, page);
            }
            // nginx's pages say why.
            Reject::ClientCertificate { missing, .. } => {
                let text: &'static [u8] = if missing {
                    b"400 No required SSL certificate was sent\n"
                } else {
                    b"400 The SSL certificate error\n"
                };
                *r.body_mut() =
                    Body::Right(http_body_util::Full::new(bytes::Bytes::from_static(text)));
            }
            Reject::ClientCommonName => {
                *r.body_mut() = Body::Right(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"client certificate unauthorized",
                )));
            }
            _ => {}
        }
        r
    }
}
