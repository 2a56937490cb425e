//! The session cookie codec (`crates/balance/src/cookie.rs`): `CookieKey::decode` of any value,
//! `cookie::find` in any `Cookie` headers, `set_cookie` with any attributes.
//!
//! Checks: no panic; what is encoded decodes to the same session, and no other value of the same
//! length (one character changed) is accepted; what `find` yields is one cookie's value.
#![no_main]

use arbitrary::Arbitrary;
use balance::cookie::{self, RequestTraits};
use balance::{CookieKey, Pin, Session};
use libfuzzer_sys::fuzz_target;
use model::{Affinity, AffinityMode, EndpointId, SameSite};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    secret: &'a [u8],
    backend: &'a str,
    /// A value as a client may send it.
    value: &'a str,
    /// `Cookie` header values.
    headers: Vec<&'a [u8]>,
    name: &'a str,
    /// A session to encode, and where to change its encoding.
    persistent: bool,
    pin: u64,
    issued: u32,
    change_at: u8,
    change_to: u8,
    /// `set_cookie`.
    attributes: Attributes<'a>,
    now: u64,
    tls: bool,
    user_agent: Option<&'a [u8]>,
}

#[derive(Arbitrary, Debug)]
struct Attributes<'a> {
    persistent: bool,
    expires: Option<u64>,
    max_age: Option<u64>,
    path: &'a str,
    domain: Option<&'a str>,
    secure: bool,
    samesite: Option<u8>,
    conditional_samesite_none: bool,
}

fuzz_target!(|input: Input<'_>| {
    let key = CookieKey::from_secret(input.secret);
    let backend = cookie::backend_tag(input.backend);

    // Whatever a client sends: an answer, never a panic.
    let _ = key.decode(backend, input.value);

    let session = Session {
        pin: if input.persistent {
            Pin::Endpoint(EndpointId(input.pin))
        } else {
            Pin::Key(input.pin)
        },
        issued: input.issued,
    };
    let value = key.encode(backend, &session);
    assert_eq!(value.len(), cookie::VALUE_LEN);
    assert_eq!(key.decode(backend, &value), Ok(session));
    let mut changed = value.clone().into_bytes();
    let at = usize::from(input.change_at) % changed.len();
    changed[at] = input.change_to;
    if changed[at] != value.as_bytes()[at] {
        if let Ok(changed) = std::str::from_utf8(&changed) {
            assert!(key.decode(backend, changed).is_err(), "{changed} accepted");
        }
    }

    for found in cookie::find(input.headers.iter().copied(), input.name) {
        assert!(!found.contains(';'));
        let _ = key.decode(backend, found);
    }

    let a = &input.attributes;
    let mut affinity = Affinity::new(
        input.name,
        if a.persistent {
            AffinityMode::Persistent
        } else {
            AffinityMode::Balanced
        },
    );
    affinity.expires = a.expires;
    affinity.max_age = a.max_age;
    affinity.path = a.path.to_owned();
    affinity.domain = a.domain.map(str::to_owned);
    affinity.secure = a.secure;
    affinity.samesite = a.samesite.map(|s| match s % 3 {
        0 => SameSite::None,
        1 => SameSite::Lax,
        _ => SameSite::Strict,
    });
    affinity.conditional_samesite_none = a.conditional_samesite_none;
    let now = UNIX_EPOCH
        .checked_add(Duration::from_secs(input.now))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let req = RequestTraits {
        tls: input.tls,
        user_agent: input.user_agent,
    };
    let set = cookie::set_cookie(&affinity, &value, now, req);
    assert!(set.starts_with(&format!("{}={value}; ", input.name)));
});
