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

/// nginx's `ngx_http_cookie_time`: `Thu, 26-Nov-26 06:35:19 GMT`, with a two-digit year up to
/// 2037 and four digits after, as ingress-nginx sends it.
pub fn cookie_time(out: &mut String, unix: u64) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    let weekday = DAYS[(days % 7) as usize];
    let month = MONTHS[(month - 1) as usize];
    let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
    if year > 2037 {
        let _ = write!(
            out,
            "{weekday}, {day:02}-{month}-{year} {h:02}:{m:02}:{sec:02} GMT"
        );
    } else {
        let yy = year % 100;
        let _ = write!(
            out,
            "{weekday}, {day:02}-{month}-{yy:02} {h:02}:{m:02}:{sec:02} GMT"
        );
    }
}

/// Howard Hinnant's days-to-civil: (year, month 1-12, day 1-31) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::AffinityMode;
    use proptest::prelude::*;
    use std::time::Duration;

    fn key() -> CookieKey {
        CookieKey::from_secret(b"test secret")
    }

    fn session() -> Session {
        Session {
            pin: Pin::Endpoint(EndpointId(0x0123_4567_89ab_cdef)),
            issued: 1_790_000_000,
        }
    }

    #[test]
    fn round_trips_both_kinds() {
        let k = key();
        for pin in [Pin::Endpoint(EndpointId(7)), Pin::Key(u64::MAX)] {
            let s = Session { pin, issued: 42 };
            let v = k.encode(9, &s);
            assert_eq!(v.len(), VALUE_LEN);
            assert!(v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(k.decode(9, &v), Ok(s));
        }
    }

    #[test]
    fn rejects_wrong_length() {
        let v = key().encode(1, &session());
        assert_eq!(key().decode(1, ""), Err(CookieError::Length(0)));
        assert_eq!(key().decode(1, &v[..34]), Err(CookieError::Length(34)));
        assert_eq!(
            key().decode(1, &format!("{v}A")),
            Err(CookieError::Length(36))
        );
    }

    #[test]
    fn rejects_non_base64() {
        let v = key().encode(1, &session());
        let bad = format!("{}!", &v[..34]);
        assert_eq!(key().decode(1, &bad), Err(CookieError::Encoding));
        // Standard-alphabet characters are not base64url.
        let plus = format!("+{}", &v[1..]);
        assert_eq!(key().decode(1, &plus), Err(CookieError::Encoding));
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        let v = key().encode(1, &session());
        // The last character carries 2 data bits and 4 zero bits; setting those bits must fail.
        let last = v.as_bytes()[34];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last).unwrap();
        let tweaked = alphabet[pos | 1] as char;
        if tweaked as u8 != last {
            let bad = format!("{}{tweaked}", &v[..34]);
            assert_eq!(key().decode(1, &bad), Err(CookieError::Encoding));
        }
    }

    fn reencode(raw: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(raw)
    }

    #[test]
    fn rejects_unknown_version_and_kind() {
        let v = key().encode(1, &session());
        let mut raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        raw[0] = 2;
        assert_eq!(
            key().decode(1, &reencode(&raw)),
            Err(CookieError::Version(2))
        );
        // A kind we do not know, with a valid tag (as a future version might send).
        let k = key();
        let mut body = [0u8; BODY_LEN];
        body[0] = VERSION;
        body[1] = 9;
        let mut raw = body.to_vec();
        raw.extend_from_slice(&k.tag(1, &body));
        assert_eq!(k.decode(1, &reencode(&raw)), Err(CookieError::Kind(9)));
    }

    #[test]
    fn rejects_forged_altered_foreign() {
        let k = key();
        let v = k.encode(1, &session());
        // Altered pin: the client tries to choose another pod.
        let mut raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        raw[13] ^= 1;
        assert_eq!(k.decode(1, &reencode(&raw)), Err(CookieError::Tag));
        // Altered tag.
        let mut raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        raw[RAW_LEN - 1] ^= 0x80;
        assert_eq!(k.decode(1, &reencode(&raw)), Err(CookieError::Tag));
        // Another backend's cookie, and another key's cookie.
        assert_eq!(k.decode(2, &v), Err(CookieError::Tag));
        assert_eq!(
            CookieKey::from_secret(b"other").decode(1, &v),
            Err(CookieError::Tag)
        );
    }

    #[test]
    fn same_secret_same_cookies() {
        let a = CookieKey::from_secret(b"shared");
        let b = CookieKey::from_secret(b"shared");
        assert_eq!(b.decode(5, &a.encode(5, &session())), Ok(session()));
        let r = CookieKey::random().unwrap();
        assert!(a.decode(5, &r.encode(5, &session())).is_err());
    }

    #[test]
    fn finds_cookies_by_name() {
        let headers: Vec<&[u8]> = vec![
            b"a=1; stickounet=first; b=2",
            b"stickounet=\"second\"",
            b"\xff\xfe",
            b"stickounetx=no; =; novalue; stickounet=",
        ];
        let found: Vec<&str> = find(headers.into_iter(), "stickounet").collect();
        assert_eq!(found, ["first", "second", ""]);
    }

    fn affinity(expires: Option<u64>, max_age: Option<u64>) -> Affinity {
        Affinity {
            expires,
            max_age,
            ..Affinity::new("stickounet", AffinityMode::Balanced)
        }
    }

    #[test]
    fn set_cookie_matches_ingress_nginx() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_502_119); // Tue, 24 Nov 2026 06:35:19
        assert_eq!(
            set_cookie(
                &affinity(Some(172_800), Some(172_800)),
                "V",
                now,
                RequestTraits::default()
            ),
            "stickounet=V; Expires=Thu, 26-Nov-26 06:35:19 GMT; Max-Age=172800; Path=/; HttpOnly"
        );
        assert_eq!(
            set_cookie(&affinity(None, None), "V", now, RequestTraits::default()),
            "stickounet=V; Path=/; HttpOnly"
        );
    }

    #[test]
    fn every_attribute_in_lua_resty_cookie_order() {
        let now = UNIX_EPOCH + Duration::from_secs(1_795_502_119);
        let a = Affinity {
            domain: Some("foo.bar".into()),
            secure: true,
            samesite: Some(SameSite::None),
            ..affinity(Some(172_800), Some(259_200))
        };
        assert_eq!(
            set_cookie(&a, "V", now, RequestTraits::default()),
            "stickounet=V; Expires=Thu, 26-Nov-26 06:35:19 GMT; Max-Age=259200; Domain=foo.bar; Path=/; Secure; HttpOnly; SameSite=None"
        );
        // Secure over TLS even when the annotation does not ask for it.
        let plain = affinity(None, None);
        let tls = RequestTraits {
            tls: true,
            user_agent: None,
        };
        assert_eq!(
            set_cookie(&plain, "V", now, tls),
            "stickounet=V; Path=/; Secure; HttpOnly"
        );
    }

    #[test]
    fn conditional_samesite_none_omits_it_for_incompatible_agents_only() {
        let now = UNIX_EPOCH;
        let a = Affinity {
            samesite: Some(SameSite::None),
            conditional_samesite_none: true,
            ..affinity(None, None)
        };
        let ua = |u: &'static str| RequestTraits {
            tls: false,
            user_agent: Some(u.as_bytes()),
        };
        let chrome_60 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.113 Safari/537.36";
        let chrome_120 = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let ios_12 = "Mozilla/5.0 (iPhone; CPU iPhone OS 12_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1";
        let mojave_safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1.2 Safari/605.1.15";
        let mojave_chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        for bad in [chrome_60, ios_12, mojave_safari] {
            assert!(
                !set_cookie(&a, "V", now, ua(bad)).contains("SameSite"),
                "{bad}"
            );
        }
        for good in [chrome_120, mojave_chrome] {
            assert!(
                set_cookie(&a, "V", now, ua(good)).ends_with("; SameSite=None"),
                "{good}"
            );
        }
        // Only None is conditional.
        let lax = Affinity {
            samesite: Some(SameSite::Lax),
            ..a.clone()
        };
        assert!(set_cookie(&lax, "V", now, ua(chrome_60)).ends_with("; SameSite=Lax"));
        // Not conditional: always sent.
        let always = Affinity {
            conditional_samesite_none: false,
            ..a
        };
        assert!(set_cookie(&always, "V", now, ua(chrome_60)).ends_with("; SameSite=None"));
    }

    #[test]
    fn cookie_time_formats() {
        let f = |t| {
            let mut s = String::new();
            cookie_time(&mut s, t);
            s
        };
        assert_eq!(f(0), "Thu, 01-Jan-70 00:00:00 GMT");
        assert_eq!(f(951_782_400), "Tue, 29-Feb-00 00:00:00 GMT");
        assert_eq!(f(2_145_916_800), "Fri, 01-Jan-2038 00:00:00 GMT");
        assert_eq!(f(2_177_452_800), "Sat, 01-Jan-2039 00:00:00 GMT");
    }

    proptest! {
        /// Whatever a client sends, decoding returns (never panics), and only values this key
        /// produced for this backend verify.
        #[test]
        fn decode_never_panics(value in ".{0,64}") {
            let _ = key().decode(1, &value);
        }

        #[test]
        fn decode_rejects_any_single_change(issued: u32, pin: u64, pos in 0usize..VALUE_LEN, c in "[A-Za-z0-9_-]") {
            let k = key();
            let s = Session { pin: Pin::Key(pin), issued };
            let v = k.encode(3, &s);
            let mut bytes = v.clone().into_bytes();
            bytes[pos] = c.as_bytes()[0];
            let changed = String::from_utf8(bytes).unwrap();
            if changed == v {
                prop_assert_eq!(k.decode(3, &changed), Ok(s));
            } else {
                prop_assert!(k.decode(3, &changed).is_err());
            }
        }

        /// Every session round-trips, and only for its own backend.
        #[test]
        fn round_trip_any_session(issued: u32, pin: u64, endpoint: bool, backend: u64, other: u64) {
            let k = key();
            let pin = if endpoint { Pin::Endpoint(EndpointId(pin)) } else { Pin::Key(pin) };
            let s = Session { pin, issued };
            let v = k.encode(backend, &s);
            prop_assert_eq!(v.len(), VALUE_LEN);
            prop_assert_eq!(k.decode(backend, &v), Ok(s));
            if other != backend {
                prop_assert_eq!(k.decode(other, &v), Err(CookieError::Tag));
            }
        }

        /// Raw bytes, base64url-encoded to the right length, never verify by chance.
        #[test]
        fn random_values_of_the_right_shape_are_rejected(raw in proptest::collection::vec(any::<u8>(), RAW_LEN)) {
            let v = URL_SAFE_NO_PAD.encode(&raw);
            prop_assert!(key().decode(1, &v).is_err());
        }

        #[test]
        fn find_never_panics(header in proptest::collection::vec(any::<u8>(), 0..200), name in "[a-z]{1,8}") {
            let _ = find(std::iter::once(header.as_slice()), &name).count();
        }
    }
}
