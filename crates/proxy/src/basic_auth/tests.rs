#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

/// `user:password` as a client sends it.
fn basic(user_password: &str) -> HeaderValue {
    let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
    HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
}

fn runtime(users: &[(&str, &str)]) -> BasicAuthRuntime {
    BasicAuthRuntime::new(&BasicAuth {
        realm: "Staff only".to_owned(),
        secret: "default/htpasswd".to_owned(),
        users: users
            .iter()
            .map(|(u, h)| (u.to_string(), h.to_string()))
            .collect(),
    })
}

/// Hashes made by Apache's htpasswd (`-B -C 5`, `-m`, `-s`, `-d`) and `openssl passwd`, with the
/// password each was made of.
const KNOWN: [(&str, &str); 9] = [
    (
        "b-secret",
        "$2y$05$2zAgYripa1YnrEEEeg6BbOsMV.d94nTSIgHBmEmw6iLNkxRhY/pei",
    ),
    ("a-secret", "$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg."),
    ("password", "$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00"),
    ("m-secret", "$1$Qx3kP9aZ$pTKnXjzLQt.iAnL2HecS1."),
    ("secret", "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA"),
    (
        "x-secret",
        "$6$pepper$dB9qA5.BUBHMlrzpMdyssWeXsZyFvXkwKdSFFaZy6823pVPA9C9jjTQGr2xKoKikjpLN3FmAvmQk8TyW2QjBr.",
    ),
    ("s-secret", "{SHA}7YX78Oz8LXLfkqQdW9a5bxXYgCQ="),
    ("q-secret", "{SSHA}vFJTZh16CIB0amRo6gqzg9RZl6BOYUNs"),
    ("d-secret", "TmysUhiINs0js"),
];

#[test]
fn every_known_scheme_verifies_its_password_only() {
    for (password, stored) in KNOWN.iter().chain([&("p-secret", "{PLAIN}p-secret")]) {
        let hash = Hash::parse(stored).unwrap_or_else(|| panic!("{stored} does not parse"));
        assert!(hash.verify(password.as_bytes()), "{stored}");
        assert!(!hash.verify(b"wrong"), "{stored}");
        assert!(!hash.verify(b""), "{stored}");
        let longer = format!("{password}x");
        // DES crypt reads 8 characters only, as the C library's.
        if !stored.starts_with("Tmys") {
            assert!(!hash.verify(longer.as_bytes()), "{stored}");
        }
    }
}

#[test]
fn apr1_matches_htpasswd_and_openssl() {
    assert_eq!(
        apr1(b"password", "lZL6V/ci"),
        "$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00"
    );
    assert_eq!(
        apr1(b"password", "RandSalt"),
        "$apr1$RandSalt$PgCXHRrkpSt4cbyC2C6bm/"
    );
    assert_eq!(
        apr1(b"a-secret", "Ssm1kkLK"),
        "$apr1$Ssm1kkLK$nYlkJg0Nlsm9hQ5us.jFg."
    );
    // Passwords longer than one MD5 block and empty ones go through the same steps.
    let long = [b'z'; 40];
    let stored = apr1(&long, "abc");
    assert!(Hash::parse(&stored).unwrap().verify(&long));
    assert!(Hash::parse(&apr1(b"", "abc")).unwrap().verify(b""));
}

#[test]
fn authorization_is_read_as_nginx_reads_it() {
    let ok = |v: &[u8]| decode(v).map(|(d, colon)| (String::from_utf8(d).unwrap(), colon));
    assert_eq!(ok(b"Basic dXNlcjpwYXNz"), Some(("user:pass".into(), 4)));
    assert_eq!(ok(b"basic    dXNlcjpwYXNz"), Some(("user:pass".into(), 4)));
    assert_eq!(ok(b"BASIC dXNlcjpwOnM="), Some(("user:p:s".into(), 4)));
    // Unpadded, and anything after the first `=` ignored.
    assert_eq!(ok(b"Basic dXNlcjpwOnM"), Some(("user:p:s".into(), 4)));
    assert_eq!(ok(b"Basic dXNlcjpwOnM=junk"), Some(("user:p:s".into(), 4)));
    // A password may be empty; a user may not.
    assert_eq!(ok(b"Basic dXNlcjo="), Some(("user:".into(), 4)));
    for bad in [
        &b"Basic OnBhc3M="[..], // ":pass"
        b"Basic dXNlcg==",      // "user", no colon
        b"Basic",
        b"Basic ",
        b"Basic    ",
        b"Bearer dXNlcjpwYXNz",
        b"Basic d",
        b"Basic dXNl!cjpw",
        b"BasicdXNlcjpwYXNz",
    ] {
        assert_eq!(ok(bad), None, "{}", String::from_utf8_lossy(bad));
    }
}

#[tokio::test]
async fn admits_the_users_with_their_passwords() {
    let auth = runtime(&[
        ("alice", KNOWN[0].1),
        ("bob", KNOWN[1].1),
        ("carol", KNOWN[6].1),
        // A second line of a user does not count (nginx reads the first).
        ("bob", "{PLAIN}other"),
    ]);
    assert_eq!(auth.challenge, "Basic realm=\"Staff only\"");
    assert!(auth.admits(Some(&basic("alice:b-secret"))).await);
    assert!(auth.admits(Some(&basic("bob:a-secret"))).await);
    assert!(auth.admits(Some(&basic("carol:s-secret"))).await);
    assert!(!auth.admits(Some(&basic("bob:other"))).await);
    assert!(!auth.admits(Some(&basic("alice:a-secret"))).await);
    assert!(!auth.admits(Some(&basic("dave:b-secret"))).await);
    assert!(!auth.admits(Some(&basic("alice:"))).await);
    assert!(!auth.admits(None).await);
    // nginx passes the password to crypt as a C string: it ends at a NUL.
    assert!(auth.admits(Some(&basic("carol:s-secret\0junk"))).await);
}

#[tokio::test]
async fn verified_credentials_are_cached_for_their_users_only() {
    let auth = runtime(&[("alice", KNOWN[0].1)]);
    let good = basic("alice:b-secret");
    let cache = cache().expect("a random key");
    let fingerprint = cache.fingerprint(&auth.digest, good.as_bytes());
    assert!(!cache.hit(&fingerprint));
    assert!(auth.admits(Some(&good)).await);
    assert!(cache.hit(&fingerprint));
    // Failures are never cached.
    let bad = basic("alice:nope");
    assert!(!auth.admits(Some(&bad)).await);
    assert!(!cache.hit(&cache.fingerprint(&auth.digest, bad.as_bytes())));
    // The same header for another route's users (or the Secret changed) is verified anew.
    let other = runtime(&[("alice", KNOWN[1].1)]);
    assert_ne!(other.digest, auth.digest);
    assert!(!cache.hit(&cache.fingerprint(&other.digest, good.as_bytes())));
    assert!(!other.admits(Some(&good)).await);
}

#[test]
fn cache_entries_expire() {
    let cache = Cache {
        key: [7; 32],
        epoch: Instant::now() - Duration::from_secs(1000),
        slots: (0..CACHE_SLOTS).map(|_| Slot::default()).collect(),
    };
    let f = cache.fingerprint(&[1; 32], b"Basic x");
    cache.insert(&f);
    assert!(cache.hit(&f));
    let (slot, _, high) = cache.place(&f);
    // Expired a second ago.
    slot.check
        .store(high | (cache.now() - 1), Ordering::Release);
    assert!(!cache.hit(&f));
    // A slot whose halves come from two fingerprints matches neither.
    cache.insert(&f);
    slot.check
        .store(high ^ (1 << 40) | (cache.now() + 60), Ordering::Release);
    assert!(!cache.hit(&f));
}
