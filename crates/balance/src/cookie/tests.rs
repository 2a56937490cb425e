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

#[test]
fn header_values_split_folded_lines() {
    let lines: [&[u8]; 3] = [b" a ,b", b"", b"c,,"];
    let values: Vec<&str> = header_values(lines.into_iter()).collect();
    assert_eq!(values, ["a", "b", "c"]);
}

#[test]
fn session_values_come_from_the_affinity_s_source() {
    let cookies: [&[u8]; 1] = [b"route=from-cookie; other=x"];
    let header: [&[u8]; 1] = [b"from-header"];
    let by_cookie = Affinity::new("route", model::AffinityMode::Persistent);
    let by_header = Affinity {
        header: Some("session".into()),
        ..by_cookie.clone()
    };
    let values = |a| session_values(a, cookies.into_iter(), header.into_iter()).collect::<Vec<_>>();
    assert_eq!(values(&by_cookie), ["from-cookie"]);
    assert_eq!(values(&by_header), ["from-header"]);
}
