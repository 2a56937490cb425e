//! Header rewriting between client and upstream: hop-by-hop removal and the X-Forwarded family.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The request's host as routes match it (lowercase, without port or trailing dot): from the URI
/// (HTTP/2 `:authority`, absolute-form requests), else the `Host` header.
pub fn request_host<B>(req: &http::Request<B>) -> std::borrow::Cow<'_, str> {
    let raw = req
        .uri()
        .host()
        .or_else(|| req.headers().get(header::HOST)?.to_str().ok())
        .unwrap_or("");
    model::host_name(raw)
}

/// nginx's `$http_host`: the `Host` as the client sent it, else the URI's authority (HTTP/2).
pub fn http_host<B>(req: &http::Request<B>) -> &str {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
}

/// Hop-by-hop headers (RFC 9110 7.6.1) that are never forwarded, besides those named in
/// `Connection`.
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Remove hop-by-hop headers, including the ones the `Connection` header lists.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_listed(headers) {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The header names the `Connection` header lists.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    tokens(headers, &header::CONNECTION)
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect()
}

/// The comma-separated tokens of every `name` header, trimmed.
fn tokens<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Does a `name` header list `token` (in any case)?
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// The declared body length; several values must agree (`None`: none, or not a valid length).
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut length = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        for part in v.to_str().ok()?.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u64 = part.parse().ok()?;
            if length.is_some_and(|l| l != n) {
                return None;
            }
            length = Some(n);
        }
    }
    length
}

/// The protocol an HTTP/1.1 request asks to switch to (`Upgrade`, with `upgrade` among the
/// `Connection` tokens), e.g. `websocket`. A switch to `h2c` is never relayed: the tunnel would
/// carry requests to any path of the pod past routing and its controls (h2c smuggling); such a
/// request goes on as a plain one, its `Upgrade` dropped with the other hop-by-hop headers.
pub fn upgrade_request(headers: &HeaderMap) -> Option<HeaderValue> {
    if !has_token(headers, &header::CONNECTION, "upgrade")
        || has_token(headers, &header::UPGRADE, "h2c")
    {
        return None;
    }
    headers.get(header::UPGRADE).cloned()
}

/// A header name with an underscore: nginx ignores these by default (`underscores_in_headers
/// off`), since CGI-style pods read `X_Forwarded_For` as the `X-Forwarded-For` Remora sets.
pub fn underscored(name: &HeaderName) -> bool {
    name.as_str().as_bytes().contains(&b'_')
}

/// Remove the headers [`underscored`] names.
pub fn drop_underscored(headers: &mut HeaderMap) {
    if headers.keys().any(underscored) {
        let names: Vec<HeaderName> = headers.keys().filter(|n| underscored(n)).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
}

/// Does the client accept trailers (`TE: trailers`, which gRPC requires and which is hop-by-hop)?
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    has_token(headers, &header::TE, "trailers")
}

/// Put back the two hop-by-hop headers a protocol switch needs on its next hop.
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_ORIGINAL_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-original-forwarded-for");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Keep the client's `X-Request-ID`, or set a new one (32 hex digits, like nginx's
/// `$request_id`), as ingress-nginx does by default (`generate-request-id`).
pub fn ensure_request_id(headers: &mut HeaderMap) {
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(&X_REQUEST_ID, new_request_id());
    }
}

/// A new request id: 32 hex digits, unique.
pub(crate) fn new_request_id() -> HeaderValue {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    // Unique, not secret: a random per-process seed hashed with a counter.
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(balance::random_u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), seed);
    let lo = xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), !seed);
    // Hex by hand: `format!` costs more than the rest of this function (it is on every request).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (i, byte) in hi
        .to_be_bytes()
        .into_iter()
        .chain(lo.to_be_bytes())
        .enumerate()
    {
        id[2 * i] = HEX[usize::from(byte >> 4)];
        id[2 * i + 1] = HEX[usize::from(byte & 0xf)];
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// What Remora says of a request to its pod: the values of the headers it sets.
pub struct Forwarded<'a> {
    /// `Host` (and `X-Forwarded-Host`); `None`: the client sent neither Host nor authority.
    pub host: Option<&'a HeaderValue>,
    /// The route's `upstream-vhost`: the pod's `Host` instead (`X-Forwarded-Host` stays `host`).
    pub vhost: Option<&'a HeaderValue>,
    /// The route's `x-forwarded-prefix`; without it the client's header passes as it is.
    pub prefix: Option<&'a HeaderValue>,
    /// `X-Real-IP`.
    pub client_ip: &'a HeaderValue,
    /// `X-Forwarded-For`: the client, or its list with the peer appended.
    pub forwarded_for: &'a HeaderValue,
    /// `X-Original-Forwarded-For`: the forwarded-for header the request came with, if any (as
    /// ingress-nginx passes it).
    pub original_for: Option<HeaderValue>,
    pub port: &'a HeaderValue,
    pub tls: bool,
    /// A request without `X-Request-ID` gets one (`generate-request-id`, true by default).
    pub generate_request_id: bool,
}

static HTTP: HeaderValue = HeaderValue::from_static("http");
static HTTPS: HeaderValue = HeaderValue::from_static("https");

impl<'a> Forwarded<'a> {
    /// The headers Remora sets itself, whatever the client sent, with their values (`None`: the
    /// header is not sent at all): ingress-nginx's defaults.
    fn headers(&self) -> [(&'static HeaderName, Option<&HeaderValue>); 8] {
        let scheme: &HeaderValue = if self.tls { &HTTPS } else { &HTTP };
        [
            (&header::HOST, self.vhost.or(self.host)),
            (&X_FORWARDED_HOST, self.host),
            (&X_FORWARDED_FOR, Some(self.forwarded_for)),
            (&X_REAL_IP, Some(self.client_ip)),
            (&X_FORWARDED_PROTO, Some(scheme)),
            (&X_FORWARDED_SCHEME, Some(scheme)),
            (&X_FORWARDED_PORT, Some(self.port)),
            (&X_ORIGINAL_FORWARDED_FOR, self.original_for.as_ref()),
        ]
    }
}

/// Write, as header lines, what `strip_hop_by_hop`, `set_forwarded`, `ensure_request_id` and
/// (unless `underscores` are kept) `drop_underscored` make of the client's `headers` (the same
/// headers, in another order), without building a map: the client's headers but hop-by-hop ones,
/// those `Connection` lists and those Remora sets, then Remora's. Returns the `X-Request-ID`
/// sent (none: the client sent none and `generate_request_id` is off).
pub fn write_upstream(
    out: &mut Vec<u8>,
    headers: &HeaderMap,
    f: &Forwarded<'_>,
    underscores: bool,
) -> Option<HeaderValue> {
    // The tokens of `Connection` are compared in place: no list of names is built per request.
    let has_connection = headers.contains_key(header::CONNECTION);
    let set = f.headers();
    let mut request_id = None;
    for (name, value) in headers {
        if HOP_BY_HOP.contains(name)
            || set.iter().any(|(n, _)| *n == name)
            || (!underscores && underscored(name))
            || (f.prefix.is_some() && name == X_FORWARDED_PREFIX)
            || (has_connection && has_token(headers, &header::CONNECTION, name.as_str()))
        {
            continue;
        }
        if name == X_REQUEST_ID && request_id.is_none() {
            request_id = Some(value.clone());
        }
        line(out, name, value);
    }
    for (name, value) in set {
        if let Some(value) = value {
            line(out, name, value);
        }
    }
    if let Some(prefix) = f.prefix {
        line(out, &X_FORWARDED_PREFIX, prefix);
    }
    if request_id.is_none() && f.generate_request_id {
        let id = new_request_id();
        line(out, &X_REQUEST_ID, &id);
        request_id = Some(id);
    }
    request_id
}

/// `METHOD target HTTP/1.1`, the target in origin form (path and query).
pub fn request_line(out: &mut Vec<u8>, method: &http::Method, uri: &http::Uri) {
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// A request head with its headers as they are (what an HTTP/1.1 client writes for `parts`).
#[cfg(test)]
pub fn encode_head(parts: &http::request::Parts) -> Vec<u8> {
    let mut head = Vec::new();
    request_line(&mut head, &parts.method, &parts.uri);
    for (name, value) in &parts.headers {
        line(&mut head, name, value);
    }
    head.extend_from_slice(b"\r\n");
    head
}

pub(crate) fn line(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Set the headers ingress-nginx sets by default (`Host` and the X-Forwarded family).
/// Client-supplied values are replaced, not appended to, because the client is not a trusted
/// proxy (ingress-nginx's default without `use-forwarded-headers`).
pub fn set_forwarded(headers: &mut HeaderMap, f: &Forwarded<'_>) {
    // Up to eight headers are added: make room once rather than growing the map step by step.
    headers.reserve(8);
    for (name, value) in f.headers() {
        match value {
            Some(v) => {
                headers.insert(name, v.clone());
            }
            None => {
                headers.remove(name);
            }
        }
    }
    if let Some(prefix) = f.prefix {
        headers.insert(&X_FORWARDED_PREFIX, prefix.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_listed_and_standard_hop_headers() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn request_ids_are_kept_or_made_unique() {
        let mut a = HeaderMap::new();
        let mut b = HeaderMap::new();
        ensure_request_id(&mut a);
        ensure_request_id(&mut b);
        let (a, b) = (a["x-request-id"].clone(), b["x-request-id"].clone());
        assert_eq!(a.len(), 32);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let mut kept = HeaderMap::new();
        kept.insert("x-request-id", HeaderValue::from_static("from-client"));
        ensure_request_id(&mut kept);
        assert_eq!(kept["x-request-id"], "from-client");
    }

    #[test]
    fn forwarded_headers_replace_client_values() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        let host = HeaderValue::from_static("example.com");
        let (ip, port) = (
            HeaderValue::from_static("127.0.0.9"),
            HeaderValue::from_static("8080"),
        );
        let forwarded = Forwarded {
            host: Some(&host),
            vhost: None,
            prefix: None,
            client_ip: &ip,
            forwarded_for: &ip,
            original_for: None,
            port: &port,
            tls: false,
            generate_request_id: true,
        };
        set_forwarded(&mut h, &forwarded);
        assert_eq!(h["x-forwarded-for"], "127.0.0.9");
        assert_eq!(h["x-real-ip"], "127.0.0.9");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["x-forwarded-proto"], "http");
        let port = HeaderValue::from_static("8443");
        let forwarded = Forwarded {
            host: None,
            vhost: None,
            prefix: None,
            client_ip: &ip,
            forwarded_for: &ip,
            original_for: None,
            port: &port,
            tls: true,
            generate_request_id: true,
        };
        set_forwarded(&mut h, &forwarded);
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-scheme"], "https");
        assert!(h.get("x-forwarded-host").is_none());
    }
}
