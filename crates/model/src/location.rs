//! How a route is proxied, from the Ingress's annotations: ingress-nginx's per-location settings
//! (protocol, timeouts, body size, rewrites, redirects, source allow- and deny-lists, CORS), and
//! whether the route is denied outright.

use serde::Serialize;
use std::net::IpAddr;

/// Per-route proxy settings. [`Location::default`] is ingress-nginx's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Location {
    /// `backend-protocol`.
    pub protocol: BackendProtocol,
    /// `proxy-connect-timeout`, seconds (5).
    pub connect_timeout_secs: u32,
    /// `proxy-read-timeout`, seconds (60): the upstream's response head must come within it.
    pub read_timeout_secs: u32,
    /// `proxy-send-timeout`, seconds (60): how long the pod may take no more of a request.
    pub send_timeout_secs: u32,
    /// `proxy-body-size` in bytes (1 MiB); `None`: no limit (`"0"`).
    pub body_limit: Option<u64>,
    /// `rewrite-target`: the upstream path, with `$1`... from the route's regex captures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrite_target: Option<String>,
    /// `app-root`: requests for `/` are redirected (302) here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_root: Option<String>,
    /// `temporal-redirect` (with `temporal-redirect-code`, default 302), else
    /// `permanent-redirect` (with `permanent-redirect-code`, default 301): every request is
    /// redirected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<Redirect>,
    /// `preserve-trailing-slash`: the redirect to HTTPS keeps a trailing `/` of the request URI
    /// (ingress-nginx takes it off by default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub preserve_trailing_slash: bool,
    /// `from-to-www-redirect`: this (generated) host redirects every request to that one, keeping
    /// the scheme, port and path (ingress-nginx's redirect server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to_host: Option<String>,
    /// `upstream-vhost`: the `Host` the pod gets instead of the client's (nginx's
    /// `proxy_set_header Host`); `X-Forwarded-Host` keeps the client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_vhost: Option<String>,
    /// `x-forwarded-prefix`: sent to the pod as `X-Forwarded-Prefix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_prefix: Option<String>,
    /// `allowlist-source-range` / `whitelist-source-range`: only these client networks; others
    /// get 403.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_sources: Option<Vec<Cidr>>,
    /// `denylist-source-range`: these client networks get 403 (checked before the allow-list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_sources: Option<Vec<Cidr>>,
    /// `enable-cors` and the `cors-*` family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// `auth-type: basic` with `auth-secret`: clients must send one of these users' passwords.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// `auth-type: digest` with `auth-secret`: clients must answer a Digest challenge (RFC 7616,
    /// MD5, `qop=auth`) for one of these users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest_auth: Option<DigestAuth>,
    /// `satisfy: any`: a request that passes the source ranges or one authentication (basic,
    /// digest, `auth-url`) is let through; `false` (`all`, the default): it must pass each.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub satisfy_any: bool,
    /// `auth-url` and its family: each request is first asked of an authentication service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_auth: Option<ExternalAuth>,
    /// `upstream-hash-by`: requests are placed by consistent hashing of this nginx expression
    /// (`$request_uri`, `$http_x_user`...) instead of round robin; cookie affinity comes first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_hash_by: Option<String>,
    /// `upstream-hash-by-subset` with `upstream-hash-by-subset-size` (3): the key chooses this
    /// many endpoints (the first distinct ones clockwise on the ring) and each request goes to
    /// one of them at random, as ingress-nginx's `chashsubset`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_hash_subset: Option<u32>,
    /// `proxy-redirect-from` / `proxy-redirect-to` (nginx's `proxy_redirect FROM TO`): the prefix
    /// `from` of the pod's `Location` (and of the URL of its `Refresh`) replaced by `to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_redirect: Option<Replace>,
    /// `proxy-cookie-domain: "FROM TO"` (nginx's `proxy_cookie_domain`): a `Domain` attribute of
    /// the pod's `Set-Cookie` equal to `from` (any case, a leading dot aside) becomes `to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_domain: Option<Replace>,
    /// `proxy-cookie-path: "FROM TO"` (nginx's `proxy_cookie_path`): the prefix `from` of a
    /// `Path` attribute of the pod's `Set-Cookie` replaced by `to`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_path: Option<Replace>,
    /// `connection-proxy-header`: the `Connection` header the pod gets (none by default: HTTP/1.1
    /// keep-alive, as ingress-nginx with its upstream keep-alive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_header: Option<ConnectionHeader>,
    /// `proxy-next-upstream`, `-tries`, `-timeout`: when a request goes on to another endpoint.
    #[serde(skip_serializing_if = "NextUpstream::is_default")]
    pub next_upstream: NextUpstream,
    /// `enable-access-log` (true): its requests get access log lines.
    #[serde(skip_serializing_if = "is_true")]
    pub access_log: bool,
    /// `limit-rps` / `limit-rpm`: requests per client address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// The status of requests over the rate limit: the ConfigMap's `limit-req-status-code` (503).
    #[serde(skip_serializing_if = "is_503")]
    pub limit_req_status_code: u16,
    /// The status of requests over `limit-connections`: the ConfigMap's `limit-conn-status-code`
    /// (503).
    #[serde(skip_serializing_if = "is_503")]
    pub limit_conn_status_code: u16,
    /// `custom-headers`: response headers (name, value) added to every response of the route's
    /// Ingress, from the data of the ConfigMap it names; values are sent as written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_headers: Vec<(String, String)>,
    /// `custom-http-errors`: responses with these statuses (the pod's, or Remora's own for the
    /// route) are replaced by the default backend's answer (see `Target::default_backend`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub custom_http_errors: Vec<u16>,
    /// Why every request of the route is answered 503 instead of proxied (ingress-nginx's
    /// `Denied`): a security annotation Remora cannot honour, or one with a value that cannot be
    /// honoured. Serving the route without the control would fail open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied: Option<String>,
    /// Gateway API routes: the rule's filters and timeouts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<Box<crate::Filters>>,
    /// `proxy-ssl-secret` and its family: how the pods of an HTTPS or GRPCS backend are spoken
    /// to over TLS (`None`: no certificate checked, none presented, as ingress-nginx's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_tls: Option<std::sync::Arc<crate::UpstreamTls>>,
}

impl Default for Location {
    fn default() -> Self {
        Self {
            protocol: BackendProtocol::Http,
            connect_timeout_secs: 5,
            read_timeout_secs: 60,
            send_timeout_secs: 60,
            body_limit: Some(1024 * 1024),
            rewrite_target: None,
            app_root: None,
            redirect: None,
            preserve_trailing_slash: false,
            redirect_to_host: None,
            upstream_vhost: None,
            forwarded_prefix: None,
            allow_sources: None,
            deny_sources: None,
            cors: None,
            basic_auth: None,
            digest_auth: None,
            satisfy_any: false,
            external_auth: None,
            upstream_hash_by: None,
            upstream_hash_subset: None,
            proxy_redirect: None,
            cookie_domain: None,
            cookie_path: None,
            connection_header: None,
            next_upstream: NextUpstream::default(),
            access_log: true,
            rate_limit: None,
            limit_req_status_code: 503,
            limit_conn_status_code: 503,
            custom_headers: Vec::new(),
            custom_http_errors: Vec::new(),
            denied: None,
            filters: None,
            upstream_tls: None,
        }
    }
}

/// `connection-proxy-header`'s values (ingress-nginx allows these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionHeader {
    /// `Connection: close`: one request per connection to the pod, never pooled.
    Close,
    /// `Connection: keep-alive`, what HTTP/1.1 means anyway, said explicitly.
    KeepAlive,
}

/// A text of the pod's response headers replaced by another (nginx's `proxy_redirect`,
/// `proxy_cookie_domain`, `proxy_cookie_path`): plain text, no variables or regexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Replace {
    pub from: String,
    pub to: String,
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_503(code: &u16) -> bool {
    *code == 503
}

impl Location {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How Remora speaks to the pods of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum BackendProtocol {
    /// HTTP/1.1 over TCP.
    #[default]
    Http,
    /// HTTP/1.1 over TLS (the pod's certificate is not verified unless `proxy-ssl-verify` says so,
    /// as ingress-nginx's default).
    Https,
    /// gRPC: HTTP/2 over TCP (h2c), trailers passed through.
    Grpc,
    /// gRPC over TLS.
    Grpcs,
    /// HTTP/2 over TCP with prior knowledge.
    H2c,
}

impl BackendProtocol {
    /// Over TLS.
    pub fn tls(self) -> bool {
        matches!(self, BackendProtocol::Https | BackendProtocol::Grpcs)
    }

    /// HTTP/2 only.
    pub fn http2(self) -> bool {
        matches!(
            self,
            BackendProtocol::Grpc | BackendProtocol::Grpcs | BackendProtocol::H2c
        )
    }
}

/// nginx's `proxy_next_upstream` (ingress-nginx's default `error timeout`), with
/// `proxy_next_upstream_tries` (3) and `proxy_next_upstream_timeout` (0: none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct NextUpstream {
    /// After an error with the endpoint (connection refused or reset, invalid response).
    pub error: bool,
    /// After a timeout connecting, or waiting for the response head.
    pub timeout: bool,
    /// After these response statuses (`http_502`...), the response dropped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u16>,
    /// Also requests that are not idempotent, once sent (`non_idempotent`). A request whose body
    /// was streamed is never sent again (it is not kept), but one that never reached a pod is.
    pub non_idempotent: bool,
    /// Endpoints tried at most, the first included (0: as many as there are, up to 16).
    pub tries: u32,
    /// No other endpoint is tried once this many seconds have passed (0: no limit).
    pub timeout_secs: u32,
}

impl Default for NextUpstream {
    fn default() -> Self {
        Self {
            error: true,
            timeout: true,
            statuses: Vec::new(),
            non_idempotent: false,
            tries: 3,
            timeout_secs: 0,
        }
    }
}

impl NextUpstream {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// HTTP basic authentication (`auth-type: basic`): ingress-nginx's `auth_basic` with the users of
/// the `auth-secret` (htpasswd lines of its `auth` key, or one key per user with `auth-secret-type:
/// auth-map`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BasicAuth {
    /// `auth-realm`, in the `WWW-Authenticate` challenge.
    pub realm: String,
    /// The Secret the users come from (`namespace/name`), for logs.
    pub secret: String,
    /// User name and password hash (bcrypt, apr1, `{SHA}` or crypt), in the Secret's order.
    #[serde(skip)]
    pub users: Vec<(String, String)>,
}

/// HTTP digest authentication (`auth-type: digest`): ingress-nginx's `auth_digest` (the
/// nginx-http-auth-digest module) with the users of the `auth-secret`, htdigest lines
/// `user:realm:HA1` (or, with `auth-secret-type: auth-map`, a key per user and `realm:HA1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct DigestAuth {
    /// `auth-realm`, in the challenge; only the lines of this realm count.
    pub realm: String,
    /// The Secret the users come from (`namespace/name`), for logs.
    pub secret: String,
    /// User name and HA1 (`MD5(user:realm:password)`, 32 lowercase hex digits).
    #[serde(skip)]
    pub users: Vec<(String, String)>,
}

/// External authentication (`auth-url`): ingress-nginx's `auth_request` to a service such as
/// oauth2-proxy. A 2xx answer lets the request through; 401 and 403 are the client's answer (401
/// becomes a redirect to `auth-signin` when set); anything else, or no answer, is 500.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExternalAuth {
    /// `auth-url`: `http(s)://...`, may use `$host`, `$scheme`, `$request_uri`,
    /// `$escaped_request_uri` and `$request_id`.
    pub url: String,
    /// `auth-method` (default GET).
    pub method: String,
    /// `auth-signin`: where a 401 sends the client (same variables as `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signin: Option<String>,
    /// `auth-signin-redirect-param` (`rd`): the query parameter that carries the original URL.
    pub signin_redirect_param: String,
    /// `auth-response-headers`: headers of the service's answer passed on to the pod.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` sent to the service (default: the
    /// request URI).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<String>,
    /// `auth-always-set-cookie`: the service's `Set-Cookie` goes on every response, not only on
    /// successful ones.
    pub always_set_cookie: bool,
    /// `auth-proxy-set-headers`: headers (name, value) of the ConfigMap it names, set on the
    /// request to the service (nginx's `proxy_set_header`: values may use nginx variables, an
    /// empty one removes the header).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxy_set_headers: Vec<(String, String)>,
}

/// ingress-nginx's request rate limits (`limit_req ... nodelay`): per client address, per replica;
/// a client over the limit gets 503.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RateLimit {
    /// The limits' state is shared by every route of this Ingress (`namespace/name`), as
    /// ingress-nginx's zone is.
    pub zone: String,
    /// `limit-rps`: requests per second (0: none).
    pub rps: u32,
    /// `limit-rpm`: requests per minute (0: none).
    pub rpm: u32,
    /// `limit-connections`: requests in flight at once per client address (0: none).
    #[serde(skip_serializing_if = "is_zero")]
    pub connections: u32,
    /// `limit-burst-multiplier` (5): how many times the rate may come at once.
    pub burst_multiplier: u32,
    /// `limit-allowlist` (`limit-whitelist`): client networks never limited.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<Cidr>,
}

/// A redirect answered by the proxy itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Redirect {
    pub url: String,
    pub code: u16,
}

/// An IP network, `addr/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parse `1.2.3.0/24`, `::1/128`, or a bare address (a /32 or /128).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Is `ip` inside? IPv4-mapped IPv6 client addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// CORS settings (`enable-cors: "true"` and the `cors-*` annotations), with ingress-nginx's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Cors {
    /// `cors-allow-origin`: `*` or a list of origins (`https://a.com`, `https://*.b.com`).
    pub allow_origin: Vec<String>,
    pub allow_methods: String,
    pub allow_headers: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub expose_headers: String,
    pub allow_credentials: bool,
    pub max_age: u32,
}

impl Default for Cors {
    fn default() -> Self {
        Self {
            allow_origin: vec!["*".to_owned()],
            allow_methods: "GET, PUT, POST, DELETE, PATCH, OPTIONS".to_owned(),
            allow_headers: "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization".to_owned(),
            expose_headers: String::new(),
            allow_credentials: true,
            max_age: 1728000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_contains() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.1".parse().unwrap()));
        let one = Cidr::parse("192.168.1.7").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(one.contains("192.168.1.7".parse().unwrap()));
        assert!(!one.contains("192.168.1.8".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert!(Cidr::parse(bad).is_none(), "{bad}");
        }
    }
}
