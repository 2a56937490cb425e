//! What nginx's `proxy_redirect`, `proxy_cookie_domain` and `proxy_cookie_path` change in a pod's
//! response headers (ingress-nginx's `proxy-redirect-from`/`-to`, `proxy-cookie-domain`,
//! `proxy-cookie-path`), from the route's [`model::Replace`] settings made at translation. A
//! header that does not match is left as it is, with no allocation; one that does is rewritten
//! into a new value.

use http::header::{self, Entry, HeaderMap, HeaderValue};
use model::{Location, Replace};

/// Apply the location's replacements to a pod's response headers.
pub fn response(loc: &Location, headers: &mut HeaderMap) {
    if let Some(r) = &loc.proxy_redirect {
        each(headers, header::LOCATION, |v| prefix(v, r));
        each(headers, header::REFRESH, |v| refresh(v, r));
    }
    if loc.cookie_domain.is_some() || loc.cookie_path.is_some() {
        each(headers, header::SET_COOKIE, |v| {
            set_cookie(v, loc.cookie_domain.as_ref(), loc.cookie_path.as_ref())
        });
    }
}

/// Every value of `name` that `f` rewrites is replaced by its result.
fn each(headers: &mut HeaderMap, name: header::HeaderName, f: impl Fn(&[u8]) -> Option<Vec<u8>>) {
    if let Entry::Occupied(mut e) = headers.entry(name) {
        for v in e.iter_mut() {
            if let Some(new) = f(v.as_bytes()).and_then(|b| HeaderValue::from_bytes(&b).ok()) {
                *v = new;
            }
        }
    }
}

/// `Location`: the prefix `from` (case-sensitive, as nginx compares) replaced by `to`.
fn prefix(value: &[u8], r: &Replace) -> Option<Vec<u8>> {
    let rest = value.strip_prefix(r.from.as_bytes())?;
    Some([r.to.as_bytes(), rest].concat())
}

/// `Refresh: 5; url=http://...`: the URL after `url=` (any case), as nginx's.
fn refresh(value: &[u8], r: &Replace) -> Option<Vec<u8>> {
    let at = value
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"url="))?
        + 4;
    let new = prefix(&value[at..], r)?;
    Some([&value[..at], &new].concat())
}

/// `Set-Cookie`: each `Domain` attribute equal to the domain's `from` (any case, a leading dot
/// kept) and each `Path` attribute starting with the path's `from`, replaced. The cookie's own
/// `name=value` is never looked at.
fn set_cookie(value: &[u8], domain: Option<&Replace>, path: Option<&Replace>) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    // Where the bytes not yet copied to `out` start.
    let mut copied = 0;
    let mut start = value.iter().position(|&b| b == b';')? + 1;
    while start <= value.len() {
        let end = value[start..]
            .iter()
            .position(|&b| b == b';')
            .map_or(value.len(), |i| start + i);
        let attr = &value[start..end];
        let lead = attr.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let attr = &attr[lead..];
        let eq = attr.iter().position(|&b| b == b'=');
        let new = eq.and_then(|eq| {
            let (name, v) = (attr[..eq].trim_ascii(), &attr[eq + 1..]);
            if name.eq_ignore_ascii_case(b"domain") {
                let d = domain?;
                let dot = usize::from(v.first() == Some(&b'.'));
                v[dot..]
                    .eq_ignore_ascii_case(d.from.as_bytes())
                    .then(|| (start + lead + eq + 1 + dot, end, d.to.as_bytes().to_vec()))
            } else if name.eq_ignore_ascii_case(b"path") {
                let p = path?;
                let new = prefix(v, p)?;
                Some((start + lead + eq + 1, end, new))
            } else {
                None
            }
        });
        if let Some((from, to, bytes)) = new {
            let out = out.get_or_insert_with(|| Vec::with_capacity(value.len() + bytes.len()));
            out.extend_from_slice(&value[copied..from]);
            out.extend_from_slice(&bytes);
            copied = to;
        }
        start = end + 1;
    }
    let mut out = out?;
    out.extend_from_slice(&value[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: &str, to: &str) -> Replace {
        Replace {
            from: from.into(),
            to: to.into(),
        }
    }

    fn text(v: Option<Vec<u8>>) -> Option<String> {
        v.map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn location_prefix() {
        let rule = r("http://hello.com/", "https://goodbye.com/shop/");
        assert_eq!(
            text(prefix(b"http://hello.com/a?b=1", &rule)).as_deref(),
            Some("https://goodbye.com/shop/a?b=1")
        );
        assert_eq!(prefix(b"http://HELLO.com/a", &rule), None, "case-sensitive");
        assert_eq!(prefix(b"/a", &rule), None);
    }

    #[test]
    fn refresh_url() {
        let rule = r("http://pod:8080/", "/");
        assert_eq!(
            text(refresh(b"5; URL=http://pod:8080/next", &rule)).as_deref(),
            Some("5; URL=/next")
        );
        assert_eq!(refresh(b"5", &rule), None);
        assert_eq!(refresh(b"5; url=/next", &rule), None);
    }

    #[test]
    fn cookie_attributes() {
        let d = r("localhost", "example.org");
        let p = r("/one/", "/");
        let both = |v: &str| text(set_cookie(v.as_bytes(), Some(&d), Some(&p)));
        assert_eq!(
            both("a=b; Path=/one/two; domain=.LocalHost; HttpOnly").as_deref(),
            Some("a=b; Path=/two; domain=.example.org; HttpOnly")
        );
        assert_eq!(
            both("a=b;path=/one/;Domain=localhost").as_deref(),
            Some("a=b;path=/;Domain=example.org")
        );
        // The cookie's own value, other attributes, other domains and paths: unchanged.
        assert_eq!(both("path=/one/; Domain=other.org; Path=/two/"), None);
        assert_eq!(both("a=b; Domain=sub.localhost"), None);
        assert_eq!(both("a=b"), None);
        assert_eq!(both("a=b; Secure; Max-Age=5;"), None);
        // Only the rule given.
        assert_eq!(
            text(set_cookie(
                b"a=b; Domain=localhost; Path=/one/x",
                None,
                Some(&p)
            ))
            .as_deref(),
            Some("a=b; Domain=localhost; Path=/x")
        );
    }

    #[test]
    fn headers_rewritten_in_place() {
        let loc = Location {
            proxy_redirect: Some(r("http://pod/", "https://shop.example.com/")),
            cookie_path: Some(r("/", "/shop/")),
            ..Location::default()
        };
        let mut h = HeaderMap::new();
        h.insert(
            header::LOCATION,
            HeaderValue::from_static("http://pod/cart"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Path=/"));
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
        response(&loc, &mut h);
        assert_eq!(h[header::LOCATION], "https://shop.example.com/cart");
        let cookies: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/shop/", "b=2"]);
    }
}
