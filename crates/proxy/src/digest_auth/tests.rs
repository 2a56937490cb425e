#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn md5_hex(s: &str) -> String {
    String::from_utf8(hex(&Md5::digest(s.as_bytes()).into()).to_vec()).unwrap()
}

fn runtime(realm: &str) -> DigestAuthRuntime {
    let ha1 = md5_hex(&format!("Mufasa:{realm}:Circle Of Life"));
    DigestAuthRuntime::new(&DigestAuth {
        realm: realm.to_owned(),
        secret: "default/digest".to_owned(),
        users: vec![("Mufasa".to_owned(), ha1)],
    })
}

/// The `Authorization` a client computes for these fields and password.
fn answer(realm: &str, password: &str, method: &str, uri: &str, nonce: &str, nc: &str) -> String {
    let ha1 = md5_hex(&format!("Mufasa:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}"));
    format!(
        "Digest username=\"Mufasa\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         qop=auth, nc={nc}, cnonce=\"0a4f113b\", response=\"{response}\", opaque=\"x\""
    )
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap()
}

#[test]
fn rfc_2617_example_response() {
    let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
        nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
        nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", \
        opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
    let f = Fields::parse(header.as_bytes()).unwrap();
    let ha1: [u8; 32] = md5_hex("Mufasa:testrealm@host.com:Circle Of Life")
        .as_bytes()
        .try_into()
        .unwrap();
    assert_eq!(
        &response(&ha1, "GET", &f),
        b"6629fae49393a05397450978507c4ef1"
    );
}

#[test]
fn a_fresh_nonce_and_the_password_let_through() {
    let realm = "Staff only";
    let auth = runtime(realm);
    let now = 1_800_000_000;
    let nonce = String::from_utf8(issue(realm, now).to_vec()).unwrap();
    let ok = answer(
        realm,
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        &nonce,
        "00000001",
    );
    let check = |method: &Method, target: &str, h: &str, at: u64| {
        auth.check_at(method, target, Some(&value(h)), at)
    };
    assert_eq!(check(&Method::GET, "/dir/index.html", &ok, now), Ok(()));
    // The same count again: a replay.
    assert_eq!(
        check(&Method::GET, "/dir/index.html", &ok, now),
        Err(Refusal::Challenge)
    );
    // The .NET allowance: the uri without the query.
    let next = answer(
        realm,
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        &nonce,
        "00000002",
    );
    assert_eq!(
        check(&Method::GET, "/dir/index.html?a=1", &next, now + 60),
        Ok(())
    );
    // Another target, another method.
    assert_eq!(
        check(&Method::GET, "/dir/other", &ok, now),
        Err(Refusal::Challenge)
    );
    assert_eq!(
        check(&Method::GET, "/dir/index.htmlx", &ok, now),
        Err(Refusal::Challenge)
    );
    assert_eq!(
        check(&Method::POST, "/dir/index.html", &ok, now),
        Err(Refusal::Challenge)
    );
    // Expired, or from the future: stale, so the client asks again.
    assert_eq!(
        check(&Method::GET, "/dir/index.html", &ok, now + 61),
        Err(Refusal::Stale)
    );
    assert_eq!(
        check(&Method::GET, "/dir/index.html", &ok, now - 1),
        Err(Refusal::Stale)
    );
    // Wrong password: no stale.
    let wrong = answer(realm, "wrong", "GET", "/dir/index.html", &nonce, "00000001");
    assert_eq!(
        check(&Method::GET, "/dir/index.html", &wrong, now + 61),
        Err(Refusal::Challenge)
    );
    // Nonce counts: 1 to 19.
    let nc = |nc: &str| {
        let h = answer(realm, "Circle Of Life", "GET", "/", &nonce, nc);
        check(&Method::GET, "/", &h, now)
    };
    assert_eq!(nc("00000013"), Ok(()));
    assert_eq!(nc("00000014"), Err(Refusal::Stale));
    assert_eq!(nc("00000000"), Err(Refusal::Challenge));
    assert_eq!(nc("zz"), Err(Refusal::Challenge));
    // A nonce Remora did not issue (or of another realm) is no nonce.
    let forged = format!("{:08x}{}", now, "0".repeat(40));
    let h = answer(realm, "Circle Of Life", "GET", "/", &forged, "00000001");
    assert_eq!(check(&Method::GET, "/", &h, now), Err(Refusal::Challenge));
    let other = String::from_utf8(issue("Other", now).to_vec()).unwrap();
    let h = answer(realm, "Circle Of Life", "GET", "/", &other, "00000001");
    assert_eq!(check(&Method::GET, "/", &h, now), Err(Refusal::Challenge));
    // A realm other than the route's.
    let h = answer("Other", "Circle Of Life", "GET", "/", &nonce, "00000001");
    assert_eq!(check(&Method::GET, "/", &h, now), Err(Refusal::Challenge));
}

#[test]
fn each_count_of_a_nonce_once_and_no_nonce_unnoted() {
    let now = 1_700_000_000;
    let nonce = issue("Counts", now);
    assert_eq!(record(&nonce, now, 1, now), Ok(()));
    assert_eq!(record(&nonce, now, 2, now + 1), Ok(()));
    assert_eq!(record(&nonce, now, 1, now + 2), Err(Refusal::Challenge));
    assert_eq!(record(&nonce, now, 2, now + 2), Err(Refusal::Challenge));
    assert_eq!(record(&nonce, now, 19, now + 2), Ok(()));
    // Other nonces that fall on both of its places, while it is valid: stale, never unnoted.
    let hash = |n: &[u8]| xxhash_rust::xxh3::xxh3_64(n) as usize & (USED_SLOTS - 1);
    let place = hash(&nonce);
    let mut others = (1..)
        .map(|i| issue(&format!("Counts {i}"), now))
        .filter(|n| hash(n) | 1 == place | 1);
    let (a, b, c) = (
        others.next().unwrap(),
        others.next().unwrap(),
        others.next().unwrap(),
    );
    // The nonce holds one of the two places, `a` takes the other, `b` finds none.
    assert_eq!(record(&a, now, 1, now + 3), Ok(()));
    assert_eq!(record(&b, now, 1, now + 3), Err(Refusal::Stale));
    assert_eq!(record(&nonce, now, 3, now + 3), Ok(()));
    // Once the nonces are past their minute, their places are free again.
    assert_eq!(record(&c, now + 100, 1, now + 100), Ok(()));
}

#[test]
fn authorization_values_as_the_module_reads_them() {
    let parse = |s: &str| Fields::parse(s.as_bytes()).map(|f| f.username.into_owned());
    let rest = "realm=r, nonce=n, uri=\"/\", qop=auth, nc=1, cnonce=c, response=x";
    assert_eq!(
        parse(&format!("  digest username=\"a\\\"b\", {rest}")),
        Some(b"a\"b".to_vec())
    );
    assert_eq!(
        parse(&format!("Digest username=u,,{rest}")),
        Some(b"u".to_vec())
    );
    // Missing parameters, another scheme, parameters without commas, a control character.
    assert_eq!(parse("Digest username=u, realm=r"), None);
    assert_eq!(parse(&format!("Basic username=u, {rest}")), None);
    assert_eq!(parse(&format!("Digest username=u {rest}")), None);
    assert_eq!(parse(&format!("Digest username=\"a\tb\", {rest}")), None);
    assert_eq!(parse(&format!("Digest username=\"\", {rest}")), None);
    assert_eq!(parse("Digest username=\"unterminated"), None);
    assert_eq!(parse("Digest"), None);
    assert_eq!(parse(""), None);
}

#[test]
fn the_challenge_is_the_modules() {
    let auth = runtime("Staff only");
    let c = auth.challenge(&Refusal::Challenge);
    let c = c.to_str().unwrap();
    assert!(
        c.starts_with("Digest algorithm=\"MD5\", qop=\"auth\", realm=\"Staff only\", nonce=\""),
        "{c}"
    );
    assert!(c.ends_with('"') && !c.contains("stale"), "{c}");
    let nonce = &c[c.find("nonce=\"").unwrap() + 7..c.len() - 1];
    assert_eq!(nonce.len(), NONCE_LEN);
    assert!(verify("Staff only", nonce.as_bytes()).is_some());
    let stale = auth.challenge(&Refusal::Stale);
    assert!(stale.to_str().unwrap().ends_with(", stale=\"true\""));
}
