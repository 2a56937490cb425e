//! The proxy family: `backend-protocol`, `proxy-connect-timeout`, `proxy-read-timeout`,
//! `proxy-send-timeout`, `proxy-body-size`, `proxy-next-upstream` (with `-tries`, `-timeout`),
//! and the headers the pod gets: `upstream-vhost` (its `Host`), `x-forwarded-prefix`,
//! `connection-proxy-header` (its `Connection`); `enable-access-log`; what is replaced in the
//! pod's response headers: `proxy-redirect-from` / `proxy-redirect-to` (`Location`, `Refresh`),
//! `proxy-cookie-domain` and `proxy-cookie-path` (`Set-Cookie`). Same names, values and defaults
//! as ingress-nginx.
//!
//! nginx's buffer settings mean nothing for a proxy that streams bodies both ways with bounded
//! memory, so they are accepted quietly rather than reported as unsupported.

use super::Reader;
use model::{BackendProtocol, ConnectionHeader, Location, Replace};

/// nginx buffer and temporary-file settings: nothing to do for a streaming proxy.
pub(crate) const BUFFERING: [&str; 7] = [
    "proxy-buffering",
    "proxy-buffers-number",
    "proxy-buffer-size",
    "proxy-busy-buffers-size",
    "proxy-max-temp-file-size",
    "proxy-request-buffering",
    "client-body-buffer-size",
];

/// Fill the proxy settings of `loc` from the annotations.
pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    for name in BUFFERING {
        r.get(name);
    }
    next_upstream(r, loc);
    // Remora speaks HTTP/1.1 to pods (or HTTP/2 with backend-protocol), with keep-alive.
    match r.text("proxy-http-version").as_deref() {
        None | Some("1.1") => {}
        Some("1.0") => r.warn(
            "proxy-http-version",
            "HTTP/1.0 to pods is not supported: HTTP/1.1 is used",
        ),
        Some(other) => r.warn(
            "proxy-http-version",
            format!("invalid value \"{other}\" (expected 1.0 or 1.1): HTTP/1.1 is used"),
        ),
    }
    if let Some(on) = r.bool("enable-access-log") {
        loc.access_log = on;
    }
    proxy_redirect(r, loc);
    match r.text("connection-proxy-header").as_deref() {
        None => {}
        Some("close") => loc.connection_header = Some(ConnectionHeader::Close),
        Some("keep-alive") => loc.connection_header = Some(ConnectionHeader::KeepAlive),
        Some(other) => r.warn(
            "connection-proxy-header",
            format!("invalid value \"{other}\" (expected close or keep-alive): ignored, the pod gets no Connection header (HTTP/1.1 keep-alive)"),
        ),
    }
    if let Some(v) = cookie_rewrite(r, "proxy-cookie-domain") {
        loc.cookie_domain = v.map(|Replace { from, to }| Replace {
            // nginx compares the domain without a leading dot.
            from: from.strip_prefix('.').map(str::to_owned).unwrap_or(from),
            to,
        });
    }
    if let Some(v) = cookie_rewrite(r, "proxy-cookie-path") {
        loc.cookie_path = v;
    }
    loc.upstream_vhost = header_value(r, "upstream-vhost", "a host name");
    loc.forwarded_prefix = header_value(r, "x-forwarded-prefix", "a path");
    if let Some(v) = r.text("backend-protocol") {
        loc.protocol = match v.to_ascii_uppercase().as_str() {
            "HTTP" | "AUTO_HTTP" => BackendProtocol::Http,
            "HTTPS" => BackendProtocol::Https,
            "GRPC" => BackendProtocol::Grpc,
            "GRPCS" => BackendProtocol::Grpcs,
            "H2C" => BackendProtocol::H2c,
            "FCGI" => {
                r.warn(
                    "backend-protocol",
                    "FCGI is not supported by Remora: using HTTP",
                );
                BackendProtocol::Http
            }
            _ => {
                r.warn(
                    "backend-protocol",
                    format!("invalid value \"{v}\" (expected HTTP, HTTPS, GRPC, GRPCS or H2C): using HTTP"),
                );
                BackendProtocol::Http
            }
        };
    }
    let secs = "a number of seconds";
    if let Some(n) = r.uint("proxy-connect-timeout", secs) {
        loc.connect_timeout_secs = n;
    }
    if let Some(n) = r.uint("proxy-read-timeout", secs) {
        loc.read_timeout_secs = n;
    }
    if let Some(n) = r.uint("proxy-send-timeout", secs) {
        loc.send_timeout_secs = n;
    }
    if let Some(v) = r.text("proxy-body-size") {
        match size(&v) {
            Some(0) => loc.body_limit = None,
            Some(n) => loc.body_limit = Some(n),
            None => r.warn(
                "proxy-body-size",
                format!("invalid size \"{v}\" (expected e.g. 8m, 512k, 1g, or 0 for no limit): using 1m"),
            ),
        }
    }
}

/// An nginx size: bytes, or with a `k`, `m` or `g` suffix (any case).
pub(crate) fn size(v: &str) -> Option<u64> {
    let (digits, unit) = match v.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&v[..i], c.to_ascii_lowercase()),
        _ => (v, 'b'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit {
        'b' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// `proxy-next-upstream` (space-separated, as nginx's directive), `-tries`, `-timeout`.
fn next_upstream(r: &mut Reader<'_>, loc: &mut Location) {
    let next = &mut loc.next_upstream;
    if let Some(list) = r.text("proxy-next-upstream") {
        let (mut error, mut timeout, mut statuses, mut non_idempotent) =
            (false, false, Vec::new(), false);
        let mut unknown = Vec::new();
        for token in list.split_whitespace() {
            match token {
                "error" | "invalid_header" => error = true,
                "timeout" => timeout = true,
                "non_idempotent" => non_idempotent = true,
                "off" => {}
                _ => match token
                    .strip_prefix("http_")
                    .and_then(|c| c.parse::<u16>().ok())
                    .filter(|c| [500, 502, 503, 504, 403, 404, 429].contains(c))
                {
                    Some(code) => statuses.push(code),
                    None => unknown.push(token.to_owned()),
                },
            }
        }
        if list.split_whitespace().any(|t| t == "off") {
            (error, timeout, statuses, non_idempotent) = (false, false, Vec::new(), false);
        }
        if !unknown.is_empty() {
            r.warn(
                "proxy-next-upstream",
                format!("unknown value(s) {} ignored", unknown.join(", ")),
            );
        }
        statuses.sort_unstable();
        statuses.dedup();
        next.error = error;
        next.timeout = timeout;
        next.statuses = statuses;
        next.non_idempotent = non_idempotent;
    }
    if let Some(n) = r.uint("proxy-next-upstream-tries", "a number of tries") {
        next.tries = n;
    }
    if let Some(n) = r.uint("proxy-next-upstream-timeout", "a number of seconds") {
        next.timeout_secs = n;
    }
}

/// The characters ingress-nginx's validators let through in these values (its `URLIsValidRegex`):
/// none that could end a header value or a cookie attribute, nor nginx's variables (`$`); and no
/// leading `~`, which makes nginx read a regular expression.
fn url_text(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with('~')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/:,?&=".contains(&b))
}

/// `proxy-redirect-from` and `proxy-redirect-to`, as ingress-nginx's template writes nginx's
/// `proxy_redirect`: `off` (the default) or `default` for `-from` rewrite nothing (`default`
/// names ingress-nginx's own upstream, `http://upstream_balancer/`, which no pod answers with);
/// another `-from` with `-to` not `off` (its default) replaces that prefix. Each annotation not
/// given, or invalid (warned), is the ConfigMap's.
fn proxy_redirect(r: &mut Reader<'_>, loc: &mut Location) {
    let valid = |r: &mut Reader<'_>, name: &str| {
        let v = r.text(name)?;
        if v == "off" || v == "default" || url_text(&v) {
            return Some(v);
        }
        r.warn(
            name,
            format!("invalid value \"{v}\" (expected a URL or path without variables or regexes, or off): {DEFAULT_APPLIES}"),
        );
        None
    };
    let from = valid(r, "proxy-redirect-from");
    let to = valid(r, "proxy-redirect-to");
    if from.is_none() && to.is_none() {
        return;
    }
    let current = loc.proxy_redirect.take();
    let from = from.or_else(|| current.as_ref().map(|c| c.from.clone()));
    let to = to.or_else(|| current.map(|c| c.to));
    let Some(from) = from.filter(|f| f != "off" && f != "default") else {
        return;
    };
    match to.filter(|t| t != "off" && t != "default") {
        Some(to) => loc.proxy_redirect = Some(Replace { from, to }),
        None => r.warn(
            "proxy-redirect-from",
            format!("\"{from}\" with proxy-redirect-to off (its default): Location headers are not rewritten, as ingress-nginx"),
        ),
    }
}

/// What an invalid value of these annotations leaves, as ingress-nginx.
const DEFAULT_APPLIES: &str = "ignored, the ConfigMap's value (else off) applies";

/// `proxy-cookie-domain` / `proxy-cookie-path`: `"FROM TO"` or `off` (ingress-nginx's default).
/// `None`: not given, or invalid (warned): the ConfigMap's value stays; `Some(None)`: off.
fn cookie_rewrite(r: &mut Reader<'_>, name: &str) -> Option<Option<Replace>> {
    let v = r.text(name)?;
    if v == "off" {
        return Some(None);
    }
    let mut words = v.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(from), Some(to), None) if url_text(from) && url_text(to) => Some(Some(Replace {
            from: from.to_owned(),
            to: to.to_owned(),
        })),
        _ => {
            r.warn(
                name,
                format!("invalid value \"{v}\" (expected \"FROM TO\" without variables or regexes, or off): {DEFAULT_APPLIES}"),
            );
            None
        }
    }
}

/// A value sent as a request header: printable, without spaces.
fn header_value(r: &mut Reader<'_>, name: &str, what: &str) -> Option<String> {
    let v = r.text(name)?;
    if v.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        Some(v)
    } else {
        r.warn(name, format!("\"{v}\" is not {what}: ignored"));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn nginx_sizes() {
        assert_eq!(size("0"), Some(0));
        assert_eq!(size("100"), Some(100));
        assert_eq!(size("8m"), Some(8 << 20));
        assert_eq!(size("8M"), Some(8 << 20));
        assert_eq!(size("512k"), Some(512 << 10));
        assert_eq!(size("1g"), Some(1 << 30));
        for bad in ["", "m", "8mb", "-1", "1.5m", "8x"] {
            assert_eq!(size(bad), None, "{bad}");
        }
    }
}
