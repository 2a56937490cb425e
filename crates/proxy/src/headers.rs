//! Header rewriting between client and upstream: hop-by-hop removal and the X-Forwarded family.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

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
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Upgrade`, with `upgrade` among the
/// `Connection` tokens), e.g. `websocket`.
pub fn upgrade_request(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Does the client accept trailers (`TE: trailers`, which gRPC requires and which is hop-by-hop)?
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
}

/// Put back the two hop-by-hop headers a protocol switch needs on its next hop.
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, protocol);
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Keep the client's `X-Request-ID`, or set a new one (32 hex digits, like nginx's
/// `$request_id`), as ingress-nginx does by default (`generate-request-id`).
pub fn ensure_request_id(headers: &mut HeaderMap) {
    if headers.contains_key(&X_REQUEST_ID) {
        return;
    }
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
    if let Ok(v) = HeaderValue::from_bytes(&id) {
        headers.insert(&X_REQUEST_ID, v);
    }
}

/// Set the headers ingress-nginx sets by default. Client-supplied values are replaced, not
/// appended to, because the client is not a trusted proxy (ingress-nginx's default without
/// `use-forwarded-headers`).
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: &HeaderValue,
    host: Option<&HeaderValue>,
    port: &HeaderValue,
    tls: bool,
) {
    // Up to seven headers are added: make room once rather than growing the map step by step.
    headers.reserve(7);
    let scheme = HeaderValue::from_static(if tls { "https" } else { "http" });
    headers.insert(&X_FORWARDED_FOR, client_ip.clone());
    headers.insert(&X_REAL_IP, client_ip.clone());
    headers.insert(&X_FORWARDED_PROTO, scheme.clone());
    headers.insert(&X_FORWARDED_SCHEME, scheme);
    match host {
        Some(h) => {
            headers.insert(&X_FORWARDED_HOST, h.clone());
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
    headers.insert(&X_FORWARDED_PORT, port.clone());
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
        set_forwarded(
            &mut h,
            &HeaderValue::from_static("127.0.0.9"),
            Some(&host),
            &HeaderValue::from_static("8080"),
            false,
        );
        assert_eq!(h["x-forwarded-for"], "127.0.0.9");
        assert_eq!(h["x-real-ip"], "127.0.0.9");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["x-forwarded-port"], "8080");
        assert_eq!(h["x-forwarded-proto"], "http");
        set_forwarded(
            &mut h,
            &HeaderValue::from_static("127.0.0.9"),
            None,
            &HeaderValue::from_static("8443"),
            true,
        );
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-scheme"], "https");
        assert!(h.get("x-forwarded-host").is_none());
    }
}
