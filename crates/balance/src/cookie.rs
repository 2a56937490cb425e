//! The session cookie: value codec, `Cookie` header parsing, `Set-Cookie` rendering.
//!
//! # Value format (version 1)
//!
//! ```text
//! base64url-nopad( version:1=0x01 | kind:1 | issued:4 | pin:8 | tag:12 )   -> 35 characters
//! kind 0x01: pin = stable endpoint id (persistent mode)
//! kind 0x02: pin = random session key, placed by consistent hashing (balanced mode)
//! issued    = seconds since the Unix epoch, big endian (for sliding expiry)
//! tag       = BLAKE3-keyed(key, "remora-cookie" | backend tag | first 14 bytes)[..12]
//! ```
//!
//! The value never contains an address: endpoint ids are hashes of the Service and pod name. The
//! tag binds the value to one backend (the Service port) and to the key, so a client can neither
//! forge a value that picks a pod of its choosing, nor reuse a cookie of another route. Any value
//! that fails to decode is simply not honoured: the caller picks anew and sets a fresh cookie.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use model::{Affinity, EndpointId, SameSite};
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The `Expires` date format; the calendar arithmetic lives in [`model::time`].
pub use model::time::cookie_time;

const VERSION: u8 = 1;
const KIND_ENDPOINT: u8 = 1;
const KIND_KEY: u8 = 2;
const BODY_LEN: usize = 14;
const TAG_LEN: usize = 12;
const RAW_LEN: usize = BODY_LEN + TAG_LEN;
/// Length of an encoded value.
pub const VALUE_LEN: usize = 35;

/// What a session is pinned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pin {
    /// Persistent mode: this endpoint, for as long as it exists.
    Endpoint(EndpointId),
    /// Balanced mode: wherever this key hashes to on the backend's ring.
    Key(u64),
}

/// A decoded cookie value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Session {
    pub pin: Pin,
    /// When the cookie was issued, in seconds since the Unix epoch.
    pub issued: u32,
}

/// Why a cookie value was not honoured. Every variant leads to the same outcome (a new pick and a
/// fresh cookie); they exist so that tests and debug logs can tell the cases apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("cookie value has {0} characters, expected {VALUE_LEN}")]
    Length(usize),
    #[error("cookie value is not base64url")]
    Encoding,
    #[error("cookie version {0} is not known")]
    Version(u8),
    #[error("cookie kind {0} is not known")]
    Kind(u8),
    #[error("cookie tag does not verify (forged, altered, from another route or another key)")]
    Tag,
}

/// The secret that authenticates cookie values. Remora replicas given the same secret accept each
/// other's cookies.
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

impl CookieKey {
    /// Derive the key from secret material of any length (a file's content, say).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(blake3::derive_key(
            "remora 2026 session cookie key v1",
            secret,
        ))
    }

    /// A fresh random key: cookies then last only as long as this process.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k)?;
        Ok(Self(k))
    }

    fn tag(&self, backend: u64, body: &[u8; BODY_LEN]) -> [u8; TAG_LEN] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"remora-cookie");
        h.update(&backend.to_be_bytes());
        h.update(body);
        let mut tag = [0u8; TAG_LEN];
        h.finalize_xof().fill(&mut tag);
        tag
    }

    /// Encode a session for the backend whose tag is `backend` (see [`backend_tag`]).
    pub fn encode(&self, backend: u64, session: &Session) -> String {
        let (kind, pin) = match session.pin {
            Pin::Endpoint(id) => (KIND_ENDPOINT, id.0),
            Pin::Key(k) => (KIND_KEY, k),
        };
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1] = kind;
        raw[2..6].copy_from_slice(&session.issued.to_be_bytes());
        raw[6..14].copy_from_slice(&pin.to_be_bytes());
        let mut body = [0u8; BODY_LEN];
        body.copy_from_slice(&raw[..BODY_LEN]);
        raw[BODY_LEN..].copy_from_slice(&self.tag(backend, &body));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Decode and verify a value sent by a client.
    pub fn decode(&self, backend: u64, value: &str) -> Result<Session, CookieError> {
        if value.len() != VALUE_LEN {
            return Err(CookieError::Length(value.len()));
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(value, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(CookieError::Encoding),
        }
        if raw[0] != VERSION {
            return Err(CookieError::Version(raw[0]));
        }
        let mut body = [0u8; BODY_LEN];
        body.copy_from_slice(&raw[..BODY_LEN]);
        let expected = self.tag(backend, &body);
        // Constant time, so the tag cannot be guessed byte by byte from response timing.
        let diff = expected
            .iter()
            .zip(&raw[BODY_LEN..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(CookieError::Tag);
        }
        let issued = u32::from_be_bytes([raw[2], raw[3], raw[4], raw[5]]);
        let mut pin = [0u8; 8];
        pin.copy_from_slice(&raw[6..14]);
        let pin = u64::from_be_bytes(pin);
        let pin = match raw[1] {
            KIND_ENDPOINT => Pin::Endpoint(EndpointId(pin)),
            KIND_KEY => Pin::Key(pin),
            other => return Err(CookieError::Kind(other)),
        };
        Ok(Session { pin, issued })
    }
}

/// The tag that binds cookies to one backend, from its name (`namespace/service:port`).
pub fn backend_tag(backend_name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(backend_name.as_bytes())
}

/// Seconds since the Unix epoch, saturated into the cookie's 32-bit field.
pub fn now_secs(now: SystemTime) -> u32 {
    let s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(s).unwrap_or(u32::MAX)
}

/// The values of every cookie called `name` in the given `Cookie` header values, in order.
/// Browsers send several when cookies of the same name exist for several paths; each is tried.
pub fn find<'a>(
    headers: impl Iterator<Item = &'a [u8]> + 'a,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| h.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.split_once('=')?;
            (n.trim() == name).then(|| {
                let v = v.trim();
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v)
            })
        })
}

/// The values of a session header (Gateway API `type: Header`): each field line, and each
/// comma-separated value in it (a proxy on the way may have folded several lines into one), trimmed,
/// empty ones left out.
pub fn header_values<'a>(
    headers: impl Iterator<Item = &'a [u8]> + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .filter_map(|h| std::str::from_utf8(h).ok())
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The session values a request carries for `affinity`, in the order it sent them: those of the
/// affinity's session header when it has one (`header`: that header's field values), else those
/// of the cookies of its name (`cookies`: the `Cookie` field values). The other source is not
/// read, so a client cannot carry a header session in a cookie or the reverse.
pub fn session_values<'a>(
    affinity: &'a Affinity,
    cookies: impl Iterator<Item = &'a [u8]> + 'a,
    header: impl Iterator<Item = &'a [u8]> + 'a,
) -> impl Iterator<Item = &'a str> + 'a {
    let by_header = affinity.header.is_some();
    let from_cookies = (!by_header)
        .then(|| find(cookies, &affinity.cookie_name))
        .into_iter()
        .flatten();
    let from_header = by_header
        .then(|| header_values(header))
        .into_iter()
        .flatten();
    from_cookies.chain(from_header)
}

/// What of the request the `Set-Cookie` header depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestTraits<'a> {
    /// The request came over TLS: `Secure` is always set then.
    pub tls: bool,
    /// For `session-cookie-conditional-samesite-none`.
    pub user_agent: Option<&'a [u8]>,
}

/// Render the `Set-Cookie` value the way ingress-nginx (lua-resty-cookie) does, attributes in its
/// order: `NAME=VALUE; Expires=Thu, 26-Nov-26 06:35:19 GMT; Max-Age=N; Domain=D; Path=/; Secure;
/// HttpOnly; SameSite=Lax`.
pub fn set_cookie(
    affinity: &Affinity,
    value: &str,
    now: SystemTime,
    req: RequestTraits<'_>,
) -> String {
    let mut s = String::with_capacity(128 + affinity.cookie_name.len() + affinity.path.len());
    s.push_str(&affinity.cookie_name);
    s.push('=');
    s.push_str(value);
    if let Some(expires) = affinity.expires {
        let at = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        s.push_str("; Expires=");
        cookie_time(&mut s, at.saturating_add(expires));
    }
    if let Some(max_age) = affinity.max_age {
        let _ = write!(s, "; Max-Age={max_age}");
    }
    if let Some(domain) = &affinity.domain {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    s.push_str("; Path=");
    s.push_str(&affinity.path);
    if affinity.secure || req.tls {
        s.push_str("; Secure");
    }
    s.push_str("; HttpOnly");
    if let Some(samesite) = affinity.samesite {
        let omit = samesite == SameSite::None
            && affinity.conditional_samesite_none
            && req.user_agent.is_some_and(samesite_none_incompatible);
        if !omit {
            s.push_str("; SameSite=");
            s.push_str(samesite.as_str());
        }
    }
    s
}

/// The user agents that reject or mishandle `SameSite=None` (Chrome 51-66, iOS 12, Safari on macOS
/// 10.14), as ingress-nginx's `same_site.lua` lists them.
pub fn samesite_none_incompatible(user_agent: &[u8]) -> bool {
    let has = |needle: &[u8]| user_agent.windows(needle.len()).any(|w| w == needle);
    has(b"Chrome/4")
        || has(b"Chrome/5")
        || has(b"Chrome/6")
        || has(b"CPU iPhone OS 12")
        || has(b"iPad; CPU OS 12")
        || (has(b"Macintosh") && has(b"Intel Mac OS X 10_14") && has(b"Safari") && !has(b"Chrome"))
}

#[cfg(test)]
mod tests;
