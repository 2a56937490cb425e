//! Host names: the [`HostMatch`] of a virtual host, parsed from what an Ingress (or a listener)
//! writes, and the host name of a request as routes compare it.

use serde::Serialize;
use std::borrow::Cow;

/// Which `Host` values a virtual host answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMatch {
    /// A lowercase host name, compared exactly.
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`: matches exactly one more label.
    Wildcard(String),
    /// Rules without `host`: any host not matched by another virtual host.
    Any,
}

/// As written in an Ingress: `shop.example.com`, `*.example.com`, or `*` for rules without host.
impl std::fmt::Display for HostMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostMatch::Exact(h) => f.write_str(h),
            HostMatch::Wildcard(suffix) => write!(f, "*{suffix}"),
            HostMatch::Any => f.write_str("*"),
        }
    }
}

impl HostMatch {
    /// Does this match a lowercase host name without port?
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Exact(h) => h == host,
            HostMatch::Wildcard(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
            HostMatch::Any => true,
        }
    }
}

impl HostMatch {
    /// A host as the Ingress API allows it: a host name (lowercased), or `*.suffix`, one wildcard
    /// label.
    ///
    /// # Errors
    /// What is wrong with it, to finish a sentence that names the host.
    pub fn parse(h: &str) -> Result<HostMatch, &'static str> {
        let h = h.to_ascii_lowercase();
        let (wild, name) = match h.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, h.as_str()),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err("is not a valid host name (wildcards must be *.domain)");
        }
        Ok(if wild {
            HostMatch::Wildcard(format!(".{name}"))
        } else {
            HostMatch::Exact(h)
        })
    }
}

/// The host name of a request's `Host` (or URI authority) as routes compare it: lowercase, without
/// port, IPv6 brackets or trailing dot. Borrowed when nothing needs changing (most requests).
pub fn host_name(raw: &str) -> Cow<'_, str> {
    let host = match raw.strip_prefix('[') {
        // IPv6 literal: keep the brackets off, drop the port.
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => raw.rsplit_once(':').map_or(raw, |(h, _)| h),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_host_names() {
        for (raw, want) in [
            ("shop.example.com", "shop.example.com"),
            ("Shop.Example.COM:8080", "shop.example.com"),
            ("shop.example.com.", "shop.example.com"),
            ("[::1]:8443", "::1"),
            ("[::1]", "::1"),
            ("", ""),
        ] {
            assert_eq!(host_name(raw), want, "{raw}");
        }
    }

    #[test]
    fn hosts_as_ingresses_write_them() {
        assert_eq!(
            HostMatch::parse("Shop.Example.com"),
            Ok(HostMatch::Exact("shop.example.com".into()))
        );
        assert_eq!(
            HostMatch::parse("*.example.com"),
            Ok(HostMatch::Wildcard(".example.com".into()))
        );
        assert!(HostMatch::parse("a.*.example.com").is_err());
        assert!(HostMatch::parse("").is_err());
        assert!(HostMatch::parse(&"a".repeat(64)).is_err());
    }
}
