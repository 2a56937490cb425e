//! ingress-nginx's global ConfigMap (`--configmap NAMESPACE/NAME`): the defaults the annotations
//! of every Ingress override, and proxy-wide settings. Each value is read by the same parser as
//! the annotation of the same name (a [`Reader`] without prefix), so it means the same in both;
//! an invalid value is one warning and ingress-nginx's default, and the keys Remora does not
//! support yet are listed in one warning.

use crate::annotations::{external_auth, headers, proxy, ssl, Reader};
use crate::lookup::Lookups;
use crate::{Diagnostics, Options};
use model::{Location, ObjectRef, Settings};
use std::collections::BTreeMap;

/// Keys with an annotation of the same name: the ConfigMap sets the default it overrides.
const ROUTE_KEYS: [&str; 14] = [
    "proxy-body-size",
    "proxy-redirect-from",
    "proxy-redirect-to",
    "proxy-cookie-domain",
    "proxy-cookie-path",
    "proxy-connect-timeout",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "proxy-next-upstream",
    "proxy-next-upstream-tries",
    "proxy-next-upstream-timeout",
    "ssl-redirect",
    "force-ssl-redirect",
    "custom-http-errors",
];

/// Keys with no annotation.
const GLOBAL_KEYS: [&str; 49] = [
    "hide-headers",
    "http-redirect-code",
    "generate-request-id",
    "global-allowed-response-headers",
    "add-headers",
    "proxy-set-headers",
    "limit-req-status-code",
    "limit-conn-status-code",
    "allow-backend-server-header",
    "enable-underscores-in-headers",
    "server-tokens",
    "hsts",
    "hsts-max-age",
    "hsts-include-subdomains",
    "hsts-preload",
    "keep-alive",
    "keep-alive-requests",
    "client-header-timeout",
    "client-body-timeout",
    "large-client-header-buffers",
    "use-forwarded-headers",
    "enable-real-ip",
    "forwarded-for-header",
    "compute-full-forwarded-for",
    "proxy-real-ip-cidr",
    "block-cidrs",
    "block-user-agents",
    "use-proxy-protocol",
    "proxy-protocol-header-timeout",
    "forwarded-for-proxy-protocol-header",
    "global-auth-url",
    "global-auth-method",
    "global-auth-signin",
    "global-auth-signin-redirect-param",
    "global-auth-response-headers",
    "global-auth-request-redirect",
    "global-auth-cache-key",
    "global-auth-cache-duration",
    "global-auth-always-set-cookie",
    "ssl-protocols",
    "ssl-ciphers",
    "log-format-upstream",
    "log-format-escape-json",
    "log-format-escape-none",
    "upstream-keepalive-connections",
    "upstream-keepalive-timeout",
    "upstream-keepalive-requests",
    "upstream-keepalive-time",
    "ignore-invalid-headers",
];

/// The longest `keep-alive`, `client-header-timeout` and `client-body-timeout` taken (a day, as the flags).
const MAX_CONNECTION_SECONDS: u64 = 86_400;

/// What the ConfigMap says, with the command line's values where it says nothing.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The settings of a route whose Ingress has no annotation.
    pub location: Location,
    /// `ssl-redirect` (else `--default-ssl-redirect`).
    pub ssl_redirect: bool,
    /// `force-ssl-redirect` (false).
    pub force_ssl_redirect: bool,
    /// The proxy-wide settings, carried in the snapshot.
    pub settings: Settings,
    /// `global-allowed-response-headers`: the headers `custom-headers` may set.
    pub allowed_response_headers: Vec<String>,
    /// `global-auth-url` and its family: the external authentication of every Ingress location
    /// without its own `auth-url` (unless `enable-global-auth: "false"`).
    pub global_auth: Option<GlobalAuth>,
}

/// The ConfigMap's `global-auth-*`.
#[derive(Debug, Clone)]
pub enum GlobalAuth {
    Auth(model::ExternalAuth),
    /// Settings that cannot be used: the locations they apply to are denied, with this reason.
    Invalid(String),
}

/// What Remora does with ConfigMap key `key` (a warning about its value aside).
pub fn key_support(key: &str) -> crate::migrate::Support {
    use crate::migrate::Support;
    if ROUTE_KEYS.contains(&key) || GLOBAL_KEYS.contains(&key) {
        Support::Supported
    } else if proxy::BUFFERING.contains(&key) {
        Support::NoEffect
    } else {
        Support::NotSupported
    }
}

/// Read the ConfigMap `options.configmap` names, if any. A missing one is a warning, and the
/// defaults are used.
pub(crate) fn read(lookups: &Lookups<'_>, options: &Options, diags: &mut Diagnostics) -> Defaults {
    let mut defaults = Defaults {
        location: Location::default(),
        ssl_redirect: options.default_ssl_redirect,
        force_ssl_redirect: false,
        settings: Settings::default(),
        allowed_response_headers: Vec::new(),
        global_auth: None,
    };
    let Some((namespace, name)) = &options.configmap else {
        return defaults;
    };
    let object = ObjectRef::new("ConfigMap", namespace, name);
    let Some(config_map) = lookups.config_map(namespace, name) else {
        diags.warn(&object, "not found: ingress-nginx's defaults are used");
        return defaults;
    };
    let known = |k: &str| key_support(k) != crate::migrate::Support::NotSupported;
    let (data, unknown): (BTreeMap<String, String>, BTreeMap<String, String>) = config_map
        .data
        .clone()
        .into_iter()
        .partition(|(k, _)| known(k));
    let mut r = Reader::new(&data, &object, options, lookups, diags).unprefixed();
    // Only the keys above are in `data`: the parser of the annotations reads what it knows.
    proxy::parse(&mut r, &mut defaults.location);
    crate::annotations::errors::parse(&mut r, &mut defaults.location);
    let ssl = ssl::parse(&mut r);
    defaults.ssl_redirect = ssl.redirect.unwrap_or(defaults.ssl_redirect);
    defaults.force_ssl_redirect = ssl.force.unwrap_or(false);
    let status = "an HTTP status from 400 to 599";
    if let Some(code) = r.uint::<u16>("limit-req-status-code", status) {
        if (400..=599).contains(&code) {
            defaults.location.limit_req_status_code = code;
        } else {
            r.warn(
                "limit-req-status-code",
                format!("invalid value \"{code}\": expected {status}, using 503"),
            );
        }
    }
    if let Some(code) = r.uint::<u16>("limit-conn-status-code", status) {
        if (400..=599).contains(&code) {
            defaults.location.limit_conn_status_code = code;
        } else {
            r.warn(
                "limit-conn-status-code",
                format!("invalid value \"{code}\": expected {status}, using 503"),
            );
        }
    }
    defaults.settings.allow_backend_server_header = r.bool("allow-backend-server-header");
    defaults.settings.enable_underscores_in_headers = r.bool("enable-underscores-in-headers");
    let hsts = r.bool("hsts").unwrap_or(true);
    let max_age: u64 = r
        .uint("hsts-max-age", "a number of seconds")
        .unwrap_or(31_536_000);
    let subdomains = r.bool("hsts-include-subdomains").unwrap_or(true);
    let preload = r.bool("hsts-preload").unwrap_or(false);
    defaults.settings.hsts = hsts.then(|| {
        let mut value = format!("max-age={max_age}");
        if subdomains {
            value.push_str("; includeSubDomains");
        }
        if preload {
            value.push_str("; preload");
        }
        value
    });
    // Client connections (nginx's keepalive_timeout, keepalive_requests,
    // client_header_timeout): from the next connection accepted.
    let day = MAX_CONNECTION_SECONDS;
    defaults.settings.keep_alive = ranged(&mut r, "keep-alive", "seconds", 0..=day);
    defaults.settings.client_header_timeout =
        ranged(&mut r, "client-header-timeout", "seconds", 1..=day);
    defaults.settings.client_body_timeout =
        ranged(&mut r, "client-body-timeout", "seconds", 1..=day);
    defaults.settings.header_buffers = header_buffers(&mut r);
    defaults.settings.server_tls = server_tls(&mut r);
    defaults.settings.keep_alive_requests = ranged(
        &mut r,
        "keep-alive-requests",
        "requests",
        1..=u64::from(u32::MAX),
    )
    .and_then(|n| u32::try_from(n).ok());
    defaults.settings.real_ip = real_ip(&mut r);
    defaults.settings.proxy_protocol = proxy_protocol(&mut r, defaults.settings.real_ip.as_ref());
    defaults.settings.block_cidrs = block_cidrs(&mut r);
    defaults.settings.block_user_agents = block_user_agents(&mut r);
    defaults.allowed_response_headers = allowed_response_headers(&mut r);
    // `global-auth-url` and its family, read as the `auth-*` annotations are.
    defaults.global_auth = r.with_prefix("global-", |g| {
        let mut scratch = Location::default();
        external_auth::parse(g, &mut scratch);
        match (scratch.external_auth, scratch.denied) {
            (_, Some(why)) => Some(GlobalAuth::Invalid(why)),
            (Some(auth), None) => Some(GlobalAuth::Auth(auth)),
            (None, None) => None,
        }
    });
    defaults.settings.add_headers = headers::global(&mut r, "add-headers")
        .unwrap_or_default()
        .into_iter()
        .collect();
    defaults.settings.proxy_set_headers = proxy_set_headers(&mut r);
    defaults.settings.hide_headers = hide_headers(&mut r);
    defaults.settings.log_format = log_format(&mut r);
    defaults.settings.upstream_keepalive = upstream_keepalive(&mut r);
    // nginx's `ignore_invalid_headers` (on): header lines whose name is not a token are left
    // out. Remora answers 400 unless told `"true"`: hyper's lenient parser also leaves out a line
    // with a control character in its value (`Transfer-Encoding:\x0bchunked`), which a front
    // proxy may have read as framing. Off, nginx passes them to the pods; HTTP has no way to
    // carry them (Remora's header map cannot hold such a name), so Remora answers 400 too.
    defaults.settings.ignore_invalid_headers = r.bool("ignore-invalid-headers");
    if defaults.settings.ignore_invalid_headers == Some(false) {
        r.warn(
            "ignore-invalid-headers",
            "\"false\": Remora cannot pass header lines whose name is not a token to the pods; requests with one are answered 400",
        );
    }
    defaults.settings.http_redirect_code = http_redirect_code(&mut r);
    // nginx's `$request_id` for requests without an X-Request-ID (true).
    defaults.settings.generate_request_id = r.bool("generate-request-id").filter(|g| !g);
    if r.bool("server-tokens") == Some(true) {
        r.warn(
            "server-tokens",
            "\"true\" is not supported by Remora, which never announces its version: ignored",
        );
    }
    if !unknown.is_empty() {
        let keys: Vec<&str> = unknown.keys().map(String::as_str).collect();
        diags.warn(
            &object,
            format!("keys not supported by Remora, ignored: {}", keys.join(", ")),
        );
    }
    defaults
}

/// `use-forwarded-headers` or `enable-real-ip`: whose word on the client is taken, as
/// ingress-nginx configures nginx's realip module (the client is the rightmost address of
/// `forwarded-for-header` that is not a trusted proxy of `proxy-real-ip-cidr`).
fn real_ip(r: &mut Reader<'_>) -> Option<model::RealIp> {
    let forwarded_headers = r.bool("use-forwarded-headers").unwrap_or(false);
    let enabled = r.bool("enable-real-ip").unwrap_or(false);
    let full = r.bool("compute-full-forwarded-for").unwrap_or(false);
    let header = r.text("forwarded-for-header");
    if !forwarded_headers && !enabled {
        if full {
            r.warn(
                "compute-full-forwarded-for",
                "has no effect without use-forwarded-headers: \"true\"",
            );
        }
        return None;
    }
    let header = match header.map(|h| h.trim().to_ascii_lowercase()) {
        None => "x-forwarded-for".to_owned(),
        Some(h) if http::HeaderName::from_bytes(h.as_bytes()).is_ok() => h,
        Some(h) => {
            r.warn(
                "forwarded-for-header",
                format!("invalid header name \"{h}\": X-Forwarded-For is used"),
            );
            "x-forwarded-for".to_owned()
        }
    };
    let trusted = trusted_proxies(r);
    if full && !forwarded_headers {
        r.warn(
            "compute-full-forwarded-for",
            "has no effect without use-forwarded-headers: \"true\"",
        );
    }
    Some(model::RealIp {
        header,
        trusted,
        forwarded_headers,
        full_forwarded_for: full && forwarded_headers,
    })
}

/// `proxy-real-ip-cidr` (`0.0.0.0/0`, ingress-nginx's): the proxies whose word on the client is
/// taken. An entry that is no network is warned about (the others are trusted).
fn trusted_proxies(r: &mut Reader<'_>) -> Vec<model::Cidr> {
    let Some(list) = r.text("proxy-real-ip-cidr") else {
        return vec![model::Cidr {
            addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
            prefix: 0,
        }];
    };
    match crate::annotations::networks(&list) {
        Ok(nets) => nets,
        Err(bad) => {
            r.warn(
                "proxy-real-ip-cidr",
                format!(
                    "invalid network(s) {}: not trusted (the others are)",
                    bad.join(", ")
                ),
            );
            list.split(',')
                .filter_map(|n| model::Cidr::parse(n.trim()))
                .collect()
        }
    }
}

/// ingress-nginx's `proxy-protocol-header-timeout` default.
const PROXY_PROTOCOL_HEADER_TIMEOUT_MS: u64 = 5_000;

/// `use-proxy-protocol`: every connection of the Ingress listeners begins with a PROXY protocol
/// header (read within `proxy-protocol-header-timeout`, a Go duration such as `5s`), whose source
/// address is the client's when the peer is among `proxy-real-ip-cidr`. With
/// `use-forwarded-headers` (`real_ip`), `forwarded-for-proxy-protocol-header` names the header
/// the pods get with what ingress-nginx's realip reads.
fn proxy_protocol(
    r: &mut Reader<'_>,
    real_ip: Option<&model::RealIp>,
) -> Option<model::ProxyProtocol> {
    let on = r.bool("use-proxy-protocol").unwrap_or(false);
    let timeout = r.text("proxy-protocol-header-timeout");
    let header = r.text("forwarded-for-proxy-protocol-header");
    if !on {
        for (key, given) in [
            ("proxy-protocol-header-timeout", timeout.is_some()),
            ("forwarded-for-proxy-protocol-header", header.is_some()),
        ] {
            if given {
                r.warn(key, "has no effect without use-proxy-protocol: \"true\"");
            }
        }
        return None;
    }
    let day = MAX_CONNECTION_SECONDS * 1000;
    let header_timeout_ms = match timeout {
        None => PROXY_PROTOCOL_HEADER_TIMEOUT_MS,
        Some(t) => {
            match t.trim().parse::<gateway_api::Duration>() {
                Ok(d) => match u64::try_from(d.as_millis()) {
                    Ok(ms) if (1..=day).contains(&ms) => ms,
                    _ => {
                        r.warn(
                        "proxy-protocol-header-timeout",
                        format!("invalid value \"{t}\": expected a duration from 1ms to 24h, using 5s"),
                    );
                        PROXY_PROTOCOL_HEADER_TIMEOUT_MS
                    }
                },
                Err(_) => {
                    r.warn(
                    "proxy-protocol-header-timeout",
                    format!("invalid value \"{t}\": expected a duration such as 5s or 500ms, using 5s"),
                );
                    PROXY_PROTOCOL_HEADER_TIMEOUT_MS
                }
            }
        }
    };
    let forwarded_headers = real_ip.is_some_and(|r| r.forwarded_headers);
    let header_given = header.is_some();
    let forwarded_for_header = match header.map(|h| h.trim().to_ascii_lowercase()) {
        _ if !forwarded_headers => {
            if header_given {
                r.warn(
                    "forwarded-for-proxy-protocol-header",
                    "has no effect without use-forwarded-headers: \"true\"",
                );
            }
            None
        }
        None => Some("x-forwarded-for-proxy-protocol".to_owned()),
        Some(h) if http::HeaderName::from_bytes(h.as_bytes()).is_ok() => Some(h),
        Some(h) => {
            r.warn(
                "forwarded-for-proxy-protocol-header",
                format!("invalid header name \"{h}\": X-Forwarded-For-Proxy-Protocol is used"),
            );
            Some("x-forwarded-for-proxy-protocol".to_owned())
        }
    };
    // Read again when real_ip did not (neither use-forwarded-headers nor enable-real-ip).
    let trusted = match real_ip {
        Some(real) => real.trusted.clone(),
        None => trusted_proxies(r),
    };
    Some(model::ProxyProtocol {
        header_timeout_ms,
        trusted,
        forwarded_for_header,
    })
}

/// `global-allowed-response-headers`: comma-separated header names; an invalid one is warned
/// about and left out.
fn allowed_response_headers(r: &mut Reader<'_>) -> Vec<String> {
    let key = "global-allowed-response-headers";
    let Some(list) = r.text(key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if headers::valid_name(name) {
            out.push(name.to_owned());
        } else {
            r.warn(key, format!("invalid header name \"{name}\": left out"));
        }
    }
    out
}

/// `hide-headers`: comma-separated names of the pods' response headers not passed to clients
/// (nginx's `proxy_hide_header`); an invalid name is warned about and left out.
fn hide_headers(r: &mut Reader<'_>) -> Vec<String> {
    let key = "hide-headers";
    let Some(list) = r.text(key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if headers::valid_name(name) {
            out.push(name.to_ascii_lowercase());
        } else {
            r.warn(key, format!("invalid header name \"{name}\": left out"));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `http-redirect-code`: the status of the redirect to HTTPS; 301, 302, 307 or 308 (the default).
fn http_redirect_code(r: &mut Reader<'_>) -> Option<u16> {
    let key = "http-redirect-code";
    let what = "301, 302, 307 or 308";
    let code = r.uint::<u16>(key, what)?;
    if [301, 302, 307, 308].contains(&code) {
        return (code != 308).then_some(code);
    }
    r.warn(
        key,
        format!("invalid value \"{code}\": expected {what}, using 308"),
    );
    None
}

/// `proxy-set-headers`: the headers of its ConfigMap; a value's nginx variables Remora does not
/// know are warned about and sent as written.
fn proxy_set_headers(r: &mut Reader<'_>) -> Vec<(String, String)> {
    let key = "proxy-set-headers";
    let Some(headers) = headers::global(r, key) else {
        return Vec::new();
    };
    for (name, value) in &headers {
        let unknown = model::expr::Expr::parse(value).unknown;
        if !unknown.is_empty() {
            r.warn(
                key,
                format!(
                    "header {name}: variables not supported by Remora, sent as written: {}",
                    unknown.join(", ")
                ),
            );
        }
    }
    headers.into_iter().collect()
}

/// `log-format-upstream` (ingress-nginx's default when only an escape key is given), with
/// `log-format-escape-none` (first, as nginx.tmpl reads them) or `log-format-escape-json`: the
/// access log's lines. A variable Remora does not know is warned about and written as an unset
/// one.
fn log_format(r: &mut Reader<'_>) -> Option<model::LogFormat> {
    let format = r.text("log-format-upstream");
    let json = r.bool("log-format-escape-json");
    let none = r.bool("log-format-escape-none");
    if format.is_none() && json.is_none() && none.is_none() {
        return None;
    }
    let escape = match (none, json) {
        (Some(true), _) => model::LogEscape::None,
        (_, Some(true)) => model::LogEscape::Json,
        _ => model::LogEscape::Default,
    };
    let format = format.filter(|f| !f.trim().is_empty());
    let (parsed, unknown) = model::LogFormat::parse(
        format.as_deref().unwrap_or(model::DEFAULT_LOG_FORMAT),
        escape,
    );
    if !unknown.is_empty() {
        let unset = if escape == model::LogEscape::Default {
            "\"-\""
        } else {
            "empty"
        };
        r.warn(
            "log-format-upstream",
            format!(
                "variables not supported by Remora, written as unset ({unset}): {}",
                unknown
                    .iter()
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    Some(parsed)
}

/// `upstream-keepalive-connections` (320, 0 turns keep-alive to the pods off),
/// `upstream-keepalive-timeout` (60 seconds), `upstream-keepalive-requests` (10000) and
/// `upstream-keepalive-time` (`1h`, an nginx time such as `30m` or `1h30m`); an invalid value is
/// a warning and the default.
fn upstream_keepalive(r: &mut Reader<'_>) -> Option<model::UpstreamKeepalive> {
    let default = model::UpstreamKeepalive::default();
    let connections = ranged(
        r,
        "upstream-keepalive-connections",
        "connections",
        0..=1_000_000,
    );
    let timeout = ranged(
        r,
        "upstream-keepalive-timeout",
        "seconds",
        1..=MAX_CONNECTION_SECONDS,
    );
    let requests = ranged(
        r,
        "upstream-keepalive-requests",
        "requests",
        1..=u64::from(u32::MAX),
    );
    let time = r.text("upstream-keepalive-time").and_then(|t| {
        let secs = nginx_time(&t).filter(|s| (1..=7 * MAX_CONNECTION_SECONDS).contains(s));
        if secs.is_none() {
            r.warn(
                "upstream-keepalive-time",
                format!("invalid value \"{t}\": expected a time from 1s to 7d such as 1h or 30m, using 1h"),
            );
        }
        secs
    });
    if connections.is_none() && timeout.is_none() && requests.is_none() && time.is_none() {
        return None;
    }
    Some(model::UpstreamKeepalive {
        connections: connections
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default.connections),
        timeout_secs: timeout.unwrap_or(default.timeout_secs),
        requests: requests
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default.requests),
        time_secs: time.unwrap_or(default.time_secs),
    })
}

/// An nginx time in whole seconds: a number of seconds, or numbers with units (`d`, `h`, `m`,
/// `s`, `ms`), largest first: `1h30m`, `90s`.
fn nginx_time(v: &str) -> Option<u64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    let mut ms: u64 = 0;
    let mut rest = v;
    let mut last_unit = u64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest.get(..digits)?.parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = match rest.as_bytes() {
            [b'm', b's', ..] => (1, 2),
            [b'd', ..] => (86_400_000, 1),
            [b'h', ..] => (3_600_000, 1),
            [b'm', ..] => (60_000, 1),
            [b's', ..] => (1_000, 1),
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        ms = ms.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    (ms > 0).then_some(ms / 1000)
}

/// `block-cidrs`: the networks every request of is answered 403. An entry that is no network is
/// warned about (the others are blocked).
fn block_cidrs(r: &mut Reader<'_>) -> Vec<model::Cidr> {
    let Some(list) = r.text("block-cidrs") else {
        return Vec::new();
    };
    match crate::annotations::networks(&list) {
        Ok(nets) => nets,
        Err(bad) => {
            r.warn(
                "block-cidrs",
                format!(
                    "invalid network(s) {}: not blocked (the others are)",
                    bad.join(", ")
                ),
            );
            list.split(',')
                .filter_map(|n| model::Cidr::parse(n.trim()))
                .collect()
        }
    }
}

/// `block-user-agents`: exact `User-Agent` values, or (after `~`, `~*` ignoring case) regular
/// expressions, as nginx's `map` reads them. An invalid expression is warned about and left out.
fn block_user_agents(r: &mut Reader<'_>) -> Vec<String> {
    let Some(list) = r.text("block-user-agents") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = item
            .strip_prefix("~*")
            .map(|p| format!("(?i){p}"))
            .or_else(|| item.strip_prefix('~').map(str::to_owned));
        if let Some(p) = pattern {
            if let Err(e) = regex::Regex::new(&p) {
                // The parser's message ends with its one-line reason (after a caret diagram).
                let e = e.to_string();
                let why = e
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                r.warn(
                    "block-user-agents",
                    format!("invalid regular expression \"{item}\" ({why}): not blocked"),
                );
                continue;
            }
        }
        out.push(item.to_owned());
    }
    out
}

/// A number of `unit` in `range`; a value out of it warns and reads as absent.
/// `ssl-protocols` (ingress-nginx's default `TLSv1.2 TLSv1.3`) and `ssl-ciphers` (its default
/// list names every TLS 1.2 suite rustls has): the Ingress HTTPS listener's handshakes. Versions
/// older than TLS 1.2 and suites rustls does not have are left out with a warning; a value that
/// leaves nothing is a warning and the default.
fn server_tls(r: &mut Reader<'_>) -> Option<model::ServerTls> {
    use crate::annotations::proxy_ssl::{self, ciphers};
    let protocols = r.text("ssl-protocols");
    let cipher_list = r.text("ssl-ciphers");
    if protocols.is_none() && cipher_list.is_none() {
        return None;
    }
    let (mut tls12, mut tls13) = (true, true);
    if let Some(v) = &protocols {
        match proxy_ssl::versions(v) {
            Err(why) => r.warn("ssl-protocols", format!("{why}: using TLSv1.2 TLSv1.3")),
            Ok(found) => {
                if !found.old.is_empty() {
                    r.warn("ssl-protocols", proxy_ssl::left_out(&found.old));
                }
                (tls12, tls13) = (found.tls12, found.tls13);
            }
        }
    }
    let suites = cipher_list
        .and_then(|v| ciphers::listener(r, &v, "all of them are offered"))
        .unwrap_or_else(|| ciphers::evaluate("DEFAULT").suites);
    Some(model::ServerTls {
        tls12,
        tls13,
        ciphers: suites,
    })
}

/// `large-client-header-buffers: "NUMBER SIZE"` (nginx's default `4 8k`): sizes as nginx writes
/// them, from 1k to 1m each, at most 64 buffers and 16 MiB in all.
fn header_buffers(r: &mut Reader<'_>) -> Option<model::HeaderBuffers> {
    const KEY: &str = "large-client-header-buffers";
    let v = r.text(KEY)?;
    let mut parts = v.split_whitespace();
    let parsed = match (parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(size), None) => n
            .parse::<u32>()
            .ok()
            .zip(proxy::size(size).and_then(|s| u32::try_from(s).ok())),
        _ => None,
    };
    match parsed {
        Some((number, size))
            if (1..=64).contains(&number)
                && (1024..=1024 * 1024).contains(&size)
                && u64::from(number) * u64::from(size) <= 16 * 1024 * 1024 =>
        {
            Some(model::HeaderBuffers { number, size })
        }
        _ => {
            r.warn(
                KEY,
                format!("invalid value \"{v}\": expected a number of buffers (1-64) and their size (1k-1m), e.g. \"4 8k\"; using 4 8k"),
            );
            None
        }
    }
}

fn ranged(
    r: &mut Reader<'_>,
    key: &str,
    unit: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Option<u64> {
    let what = format!(
        "a number of {unit} from {} to {}",
        range.start(),
        range.end()
    );
    let n = r.uint::<u64>(key, &what)?;
    if range.contains(&n) {
        return Some(n);
    }
    r.warn(
        key,
        format!("invalid value \"{n}\": expected {what}, ignored"),
    );
    None
}
