//! Phase 3, external authentication (`auth-url`), as ingress-nginx's `auth_request`: the request's
//! head (no body) is first sent to the authentication service, with ingress-nginx's headers
//! (`X-Original-URL`, `X-Original-Method`, `X-Auth-Request-Redirect`, `X-Sent-From`...) and the
//! headers of `auth-proxy-set-headers`. A 2xx
//! answer lets the request through, with the `auth-response-headers` of that answer set on it
//! (a client's own headers of those names are dropped); 401 goes back to the client with the
//! service's `WWW-Authenticate`, or becomes a 302 to `auth-signin`; 403 goes back; any other
//! answer, no answer in time or no connection is 500. Never served without the answer.

use super::{Connection, Reject};
use crate::body::UpstreamBody as RequestBody;
use crate::external_auth::{signin_url, AuthRuntime};
use crate::headers;
use crate::table::Matched;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::BodyExt;
use std::time::Duration;

/// The largest answer body read from the service (so its connection can be used again).
const MAX_ANSWER_BODY: usize = 64 * 1024;

/// What a successful answer gives the request.
pub struct Grant {
    /// `auth-response-headers`: set on the request to the pod (`None`: the service sent none, and
    /// the client's is dropped all the same).
    headers: Vec<(HeaderName, Option<HeaderValue>)>,
    /// The service's `Set-Cookie`s, for the response.
    pub cookies: Vec<HeaderValue>,
    pub always_set_cookie: bool,
}

impl Grant {
    pub fn apply(&self, request: &mut HeaderMap) {
        for (name, value) in &self.headers {
            request.remove(name);
            if let Some(v) = value {
                request.insert(name, v.clone());
            }
        }
    }

    /// nginx's `add_header Set-Cookie $auth_cookie` (without `always`) adds it to these statuses.
    pub fn sets_cookies_on(&self, status: StatusCode) -> bool {
        self.always_set_cookie
            || matches!(
                status.as_u16(),
                200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
            )
    }
}

/// An answer of the service the client gets instead of the pod's.
#[derive(Debug)]
pub struct Denial {
    pub status: StatusCode,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Ask the service about `req`; `Ok(None)`: the route has no external authentication.
pub async fn check<B>(
    route: &Matched<'_>,
    conn: &Connection,
    req: &mut Request<B>,
) -> Result<Option<Grant>, Reject> {
    let Some(auth) = route.runtime.external_auth.as_deref() else {
        return Ok(None);
    };
    // The service and the pod see the same request id.
    if route.policy.generate_request_id {
        headers::ensure_request_id(req.headers_mut());
    }
    let req = &*req;
    let cx = conn.cx(req);
    let url = auth.url.render(&cx);
    let read = Duration::from_secs(u64::from(route.location().read_timeout_secs.max(1)));
    let (status, answer) = match ask(auth, conn, req, &url, read).await {
        Ok(a) => (a.status(), a.into_parts().0.headers),
        Err(why) => {
            tracing::warn!(%url, "authentication service: {why}");
            return Err(Reject::AuthUnavailable);
        }
    };
    let cookies: Vec<HeaderValue> = answer.get_all(header::SET_COOKIE).iter().cloned().collect();
    if status.is_success() {
        return Ok(Some(Grant {
            headers: auth
                .response_headers
                .iter()
                .map(|n| (n.clone(), answer.get(n).cloned()))
                .collect(),
            cookies,
            always_set_cookie: auth.always_set_cookie,
        }));
    }
    let mut denial = Denial {
        status,
        headers: Vec::new(),
    };
    match status {
        StatusCode::UNAUTHORIZED => match &auth.signin {
            Some(signin) => {
                let to = signin_url(
                    &signin.render(&cx),
                    &auth.signin_redirect_param,
                    conn.scheme(),
                    headers::http_host(req),
                    request_uri(req),
                );
                let Ok(location) = HeaderValue::from_str(&to) else {
                    return Err(Reject::AuthUnavailable);
                };
                denial.status = StatusCode::FOUND;
                denial.headers.push((header::LOCATION, location));
            }
            None => {
                if let Some(challenge) = answer.get(header::WWW_AUTHENTICATE) {
                    denial
                        .headers
                        .push((header::WWW_AUTHENTICATE, challenge.clone()));
                }
            }
        },
        StatusCode::FORBIDDEN => {}
        other => {
            tracing::warn!(%url, status = %other, "authentication service answered neither 2xx, 401 nor 403");
            return Err(Reject::AuthUnavailable);
        }
    }
    let grant = Grant {
        headers: Vec::new(),
        cookies,
        always_set_cookie: auth.always_set_cookie,
    };
    if grant.sets_cookies_on(denial.status) {
        denial
            .headers
            .extend(grant.cookies.into_iter().map(|c| (header::SET_COOKIE, c)));
    }
    Err(Reject::Auth(denial))
}

/// The service's answer head (its body read and dropped), within the read timeout.
async fn ask<B>(
    auth: &AuthRuntime,
    conn: &Connection,
    req: &Request<B>,
    url: &str,
    read: Duration,
) -> Result<http::Response<()>, String> {
    let client = auth.client.as_ref().ok_or("no client")?;
    let uri: Uri = url.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let authority = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        .ok_or("URL without host")?;
    // proxy_pass_request_headers on, without the body, then ingress-nginx's own.
    let mut headers = req.headers().clone();
    headers::strip_hop_by_hop(&mut headers);
    headers::drop_underscored(&mut headers);
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_TYPE,
        HeaderName::from_static("x-forwarded-proto"),
    ] {
        headers.remove(name);
    }
    let (scheme, request_uri) = (conn.scheme(), request_uri(req));
    let original_url = format!("{scheme}://{}{request_uri}", headers::http_host(req));
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    headers.insert(header::HOST, authority);
    set(&mut headers, "x-original-url", &original_url);
    set(&mut headers, "x-original-uri", request_uri);
    set(&mut headers, "x-original-method", req.method().as_str());
    set(&mut headers, "x-scheme", scheme);
    set(&mut headers, "x-sent-from", "nginx-ingress-controller");
    headers.insert("x-real-ip", conn.client_ip.clone());
    headers.insert("x-forwarded-for", conn.client_ip.clone());
    match &auth.request_redirect {
        Some(v) => {
            headers.insert("x-auth-request-redirect", v.clone());
        }
        None => set(&mut headers, "x-auth-request-redirect", request_uri),
    }
    // `auth-proxy-set-headers`, after ingress-nginx's own lines, as in its template.
    if let Some(set) = &auth.proxy_set_headers {
        set.apply_to(&conn.cx(req), &mut headers);
    }
    let mut request = Request::new(RequestBody::Empty);
    *request.method_mut() = auth.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        // Read the (small) body so the connection goes back to the pool; a large one is cut.
        let _ = http_body_util::Limited::new(body, MAX_ANSWER_BODY)
            .collect()
            .await;
        Ok(http::Response::from_parts(parts, ()))
    };
    tokio::time::timeout(read, exchange)
        .await
        .map_err(|_| format!("no answer within {read:?}"))?
}

/// nginx's `$request_uri`: path and query as sent.
fn request_uri<B>(req: &Request<B>) -> &str {
    req.uri().path_and_query().map_or("/", |p| p.as_str())
}
