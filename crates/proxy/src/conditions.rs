//! Gateway API request conditions besides the path (`model::Conditions`: method, headers, query
//! parameters), compiled once per table so that a request only compares: header names parsed,
//! patterns compiled. A route without conditions has none of this (`RouteRuntime::conditions` is
//! `None`) and pays nothing for it.

use http::header::{HeaderMap, HeaderName};
use http::Method;
use model::{Conditions, ValueMatch};
use std::borrow::Cow;

/// The conditions of one route, all of which must hold.
#[derive(Debug)]
pub struct CompiledConditions {
    method: Option<Method>,
    headers: Box<[(HeaderName, Value)]>,
    query: Box<[(String, Value)]>,
    /// A name or pattern did not compile (translation checks them, so never in practice): the
    /// route matches nothing rather than more than it says.
    never: bool,
}

/// An expected value: exact, or a pattern anywhere in the value (RE2's partial match, which the
/// Gateway API's `RegularExpression` matches follow).
#[derive(Debug)]
enum Value {
    Exact(String),
    Pattern(regex::Regex),
}

impl Value {
    fn of(m: &ValueMatch) -> Option<Self> {
        if m.regex {
            regex::Regex::new(&m.value).ok().map(Value::Pattern)
        } else {
            Some(Value::Exact(m.value.clone()))
        }
    }

    fn matches(&self, value: &str) -> bool {
        match self {
            Value::Exact(want) => want == value,
            Value::Pattern(re) => re.is_match(value),
        }
    }

    fn matches_bytes(&self, value: &[u8]) -> bool {
        match self {
            Value::Exact(want) => want.as_bytes() == value,
            // A value that is not UTF-8 matches no pattern.
            Value::Pattern(re) => std::str::from_utf8(value).is_ok_and(|v| re.is_match(v)),
        }
    }
}

impl CompiledConditions {
    pub fn new(c: &Conditions) -> Self {
        let mut never = false;
        let method = c
            .method
            .as_deref()
            .and_then(|m| match Method::from_bytes(m.as_bytes()) {
                Ok(m) => Some(m),
                Err(_) => {
                    never = true;
                    None
                }
            });
        let headers = c
            .headers
            .iter()
            .filter_map(|m| {
                let compiled = HeaderName::from_bytes(m.name.as_bytes())
                    .ok()
                    .zip(Value::of(m));
                never |= compiled.is_none();
                compiled
            })
            .collect();
        let query = c
            .query
            .iter()
            .filter_map(|m| {
                let compiled = Value::of(m).map(|v| (m.name.clone(), v));
                never |= compiled.is_none();
                compiled
            })
            .collect();
        Self {
            method,
            headers,
            query,
            never,
        }
    }

    /// Do all the conditions hold for a request with this method, these headers and this query
    /// string? A header condition holds when any of the header's field lines matches (a
    /// list-valued header sent as several lines is not joined); a query condition looks at the
    /// first parameter of its name (names and values percent-decoded; `+` is not a space).
    pub fn holds(&self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> bool {
        if self.never || self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let headers_hold = self.headers.iter().all(|(name, want)| {
            headers
                .get_all(name)
                .iter()
                .any(|v| want.matches_bytes(v.as_bytes()))
        });
        headers_hold
            && self.query.iter().all(|(name, want)| {
                query_param(query.unwrap_or(""), name).is_some_and(|v| want.matches(&v))
            })
    }
}

/// The value of the first parameter called `name` in a query string, percent-decoded; a parameter
/// without `=` has the empty value. Allocates only for names or values with `%` escapes.
fn query_param<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(n) == name).then(|| decode(v))
        })
}

/// Percent-decoding (`%41` is `A`); an escape that is not two hex digits stays as it is, and a
/// decoded value that is not UTF-8 is read lossily.
fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|&b| (b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn exact(name: &str, value: &str) -> ValueMatch {
        ValueMatch {
            name: name.into(),
            value: value.into(),
            regex: false,
        }
    }

    fn pattern(name: &str, value: &str) -> ValueMatch {
        ValueMatch {
            regex: true,
            ..exact(name, value)
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn method_headers_and_query_must_all_hold() {
        let c = CompiledConditions::new(&Conditions {
            method: Some("POST".into()),
            headers: vec![exact("version", "two"), pattern("user-agent", "curl/[0-9]")],
            query: vec![exact("animal", "whale")],
        });
        let h = headers(&[("version", "two"), ("user-agent", "x curl/8 y")]);
        assert!(c.holds(&Method::POST, &h, Some("animal=whale")));
        assert!(!c.holds(&Method::GET, &h, Some("animal=whale")));
        assert!(!c.holds(&Method::POST, &h, Some("animal=dolphin")));
        assert!(!c.holds(&Method::POST, &h, None));
        let wrong = headers(&[("version", "Two"), ("user-agent", "curl/8")]);
        assert!(!c.holds(&Method::POST, &wrong, Some("animal=whale")));
        let missing = headers(&[("user-agent", "curl/8")]);
        assert!(!c.holds(&Method::POST, &missing, Some("animal=whale")));
    }

    #[test]
    fn header_values_are_exact_and_any_line_may_match() {
        let c = CompiledConditions::new(&Conditions {
            headers: vec![exact("version", "one")],
            ..Conditions::default()
        });
        assert!(c.holds(&Method::GET, &headers(&[("version", "one")]), None));
        assert!(!c.holds(&Method::GET, &headers(&[("version", "one ")]), None));
        assert!(!c.holds(&Method::GET, &headers(&[("version", "onex")]), None));
        let two_lines = headers(&[("version", "zero"), ("version", "one")]);
        assert!(c.holds(&Method::GET, &two_lines, None));
    }

    #[test]
    fn patterns_match_anywhere_unless_anchored() {
        let c = CompiledConditions::new(&Conditions {
            headers: vec![pattern("x", "^v[0-9]+$")],
            query: vec![pattern("q", "ha")],
            ..Conditions::default()
        });
        let h = headers(&[("x", "v12")]);
        assert!(c.holds(&Method::GET, &h, Some("q=whale")));
        assert!(!c.holds(&Method::GET, &h, Some("q=dolphin")));
        assert!(!c.holds(&Method::GET, &headers(&[("x", "av12")]), Some("q=ha")));
    }

    #[test]
    fn query_parameters_first_occurrence_exact_name_decoded() {
        let c = CompiledConditions::new(&Conditions {
            query: vec![exact("animal", "whale shark")],
            ..Conditions::default()
        });
        let h = HeaderMap::new();
        assert!(c.holds(&Method::GET, &h, Some("a=1&animal=whale%20shark")));
        assert!(c.holds(&Method::GET, &h, Some("an%69mal=whale%20shark&x")));
        assert!(!c.holds(&Method::GET, &h, Some("ANIMAL=whale%20shark")));
        assert!(!c.holds(
            &Method::GET,
            &h,
            Some("animal=dolphin&animal=whale%20shark")
        ));
        assert!(!c.holds(&Method::GET, &h, Some("animal=whale+shark")));
        assert_eq!(query_param("a&b=&c=%zz%4", "a").as_deref(), Some(""));
        assert_eq!(query_param("a&b=&c=%zz%4", "c").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("a&b=&c=%zz%4", "d"), None);
    }

    #[test]
    fn what_does_not_compile_never_matches() {
        for c in [
            Conditions {
                headers: vec![pattern("x", "(")],
                ..Conditions::default()
            },
            Conditions {
                headers: vec![exact("bad name", "1")],
                ..Conditions::default()
            },
            Conditions {
                method: Some("BAD METHOD".into()),
                ..Conditions::default()
            },
        ] {
            let c = CompiledConditions::new(&c);
            assert!(!c.holds(&Method::GET, &headers(&[("x", "(")]), None));
        }
    }
}
