//! Before the phases: who the client is. By default the connection's peer. With the ConfigMap's
//! `use-forwarded-headers` or `enable-real-ip`, a peer among the trusted proxies
//! (`proxy-real-ip-cidr`) is believed about the client it forwarded for, as nginx's realip module
//! with `real_ip_recursive on` reads it: from the right of the forwarded-for header
//! (`forwarded-for-header`), the first address that is not a trusted proxy (or the leftmost, when
//! all are). With `use-forwarded-headers` its `X-Forwarded-Proto`, `-Port` and `-Host` are
//! believed too: the scheme decides the redirect to HTTPS, HSTS and the cookie's `Secure`, and
//! they pass on to the pod as ingress-nginx passes them.
//!
//! Every later phase (allow-lists, rate limits, auth, the access log, the pod's headers) then sees
//! that client. A request from an untrusted peer, or with none of these headers, costs nothing.

use super::Connection;
use crate::table::{Policy, RealIp};
use http::{HeaderMap, HeaderValue, Request};
use std::net::IpAddr;

static X_FORWARDED_PROTO: http::HeaderName = http::HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_PORT: http::HeaderName = http::HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// The connection as this request's trusted proxy describes it, when it says anything; `None`:
/// `conn` as it is.
pub fn resolve<B>(conn: &Connection, req: &Request<B>, policy: &Policy) -> Option<Connection> {
    let real = policy.real_ip.as_ref()?;
    if let Some(source) = conn.proxy_source {
        // The PROXY protocol's source is the client (`real_ip_header proxy_protocol`), unless
        // with `use-forwarded-headers` it is a trusted proxy, which the forwarded-for header then
        // names the client of (ingress-nginx's `forwarded-for-proxy-protocol-header`); a header
        // without addresses (a health check) has no such header.
        if !real.forwarded_headers || source.is_none() {
            return None;
        }
    }
    if !trusted(real, conn.remote) {
        return None;
    }
    let headers = req.headers();
    let client = client_address(real, conn.remote, headers);
    let mut derived: Option<Connection> = None;
    if client != conn.remote {
        let c = derived.get_or_insert_with(|| conn.clone());
        c.remote = client;
        c.client_ip =
            HeaderValue::from_str(&client.to_string()).unwrap_or_else(|_| conn.client_ip.clone());
    }
    if real.forwarded_headers {
        if let Some(proto) = headers.get(&X_FORWARDED_PROTO) {
            let tls = proto.as_bytes().eq_ignore_ascii_case(b"https");
            if tls != conn.tls {
                derived.get_or_insert_with(|| conn.clone()).tls = tls;
            }
        }
        if let Some(port) = headers.get(&X_FORWARDED_PORT) {
            derived.get_or_insert_with(|| conn.clone()).local_port = port.clone();
        }
        if let Some(host) = headers.get(&X_FORWARDED_HOST).and_then(first_host) {
            derived.get_or_insert_with(|| conn.clone()).forwarded_host = Some(host);
        }
        if real.full_forwarded_for {
            // The client's list, with the peer appended (nginx's `$full_x_forwarded_for`).
            let value = match joined(headers, &real.header) {
                Some(list) => format!("{list}, {}", conn.remote),
                None => conn.remote.to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                derived.get_or_insert_with(|| conn.clone()).forwarded_for = Some(v);
            }
        }
    }
    derived
}

/// With the PROXY protocol and `use-forwarded-headers`: the request header
/// `forwarded-for-proxy-protocol-header` set as ingress-nginx's `more_set_input_headers` sets it
/// for its realip module, and so the pods get it: the forwarded-for header when the PROXY
/// header's source is a trusted proxy, else that source; no header when neither is (a client's
/// own of that name never passes).
pub fn set_proxy_protocol_header<B>(conn: &Connection, req: &mut Request<B>, policy: &Policy) {
    let (Some(source), Some(pp), Some(real)) = (
        conn.proxy_source,
        policy.proxy_protocol.as_ref(),
        policy.real_ip.as_ref(),
    ) else {
        return;
    };
    let Some(name) = &pp.forwarded_for_header else {
        return;
    };
    let headers = req.headers_mut();
    let value = match source {
        Some(ip) if trusted(real, ip) => match joined(headers, &real.header) {
            Some(list) => HeaderValue::from_str(&list).ok(),
            None => None,
        },
        Some(ip) if ip == conn.remote => Some(conn.client_ip.clone()),
        Some(ip) => HeaderValue::from_str(&ip.to_string()).ok(),
        None => None,
    };
    match value {
        Some(v) => {
            headers.insert(name.clone(), v);
        }
        None => {
            headers.remove(name);
        }
    }
}

/// The forwarded-for header the request came with (`forwarded-for-header`, `X-Forwarded-For` by
/// default), for the pod's `X-Original-Forwarded-For`.
pub fn original_forwarded_for(headers: &HeaderMap, policy: &Policy) -> Option<HeaderValue> {
    let name = policy
        .real_ip
        .as_ref()
        .map_or(&crate::headers::X_FORWARDED_FOR, |r| &r.header);
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_none() {
        return Some(first.clone());
    }
    joined(headers, name).and_then(|v| HeaderValue::from_str(&v).ok())
}

fn trusted(real: &RealIp, ip: IpAddr) -> bool {
    real.trusted.iter().any(|net| net.contains(ip))
}

/// From the right of the forwarded-for list: the first address that is not a trusted proxy, or
/// the leftmost when all are; an entry that is no address ends the walk (what is right of it
/// stands).
fn client_address(real: &RealIp, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let mut client = peer;
    let entries = headers
        .get_all(&real.header)
        .iter()
        .rev()
        .flat_map(|v| v.as_bytes().rsplit(|b| *b == b','));
    for entry in entries {
        let Some(ip) = std::str::from_utf8(entry)
            .ok()
            .and_then(|s| parse_address(s.trim()))
        else {
            break;
        };
        client = ip;
        if !trusted(real, ip) {
            break;
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `::1`, or with a port (`1.2.3.4:5678`,
/// `[::1]:5678`).
fn parse_address(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    s.rsplit_once(':')?.0.parse().ok()
}

/// The first host of an `X-Forwarded-Host` list (ingress-nginx's `parse_x_forwarded_host`).
fn first_host(value: &HeaderValue) -> Option<HeaderValue> {
    let first = value.as_bytes().split(|b| *b == b',').next()?.trim_ascii();
    (!first.is_empty())
        .then(|| HeaderValue::from_bytes(first).ok())
        .flatten()
}

/// Every value of `name`, joined with `, ` as nginx joins repeated headers.
fn joined(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let mut out = String::new();
    for v in headers.get_all(name) {
        let Ok(v) = v.to_str() else { continue };
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(v);
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Cidr;

    fn real(trusted: &[&str]) -> RealIp {
        RealIp {
            header: http::HeaderName::from_static("x-forwarded-for"),
            trusted: trusted.iter().map(|c| Cidr::parse(c).unwrap()).collect(),
            forwarded_headers: true,
            full_forwarded_for: false,
        }
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let r = real(&["10.0.0.0/8"]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(client_address(&r, peer, &xff(&[])), peer);
        assert_eq!(
            client_address(&r, peer, &xff(&["6.6.6.6, 1.2.3.4, 10.0.0.7"])),
            ip("1.2.3.4"),
            "a spoofed leftmost entry is not believed"
        );
        assert_eq!(
            client_address(&r, peer, &xff(&["6.6.6.6", "1.2.3.4:5555"])),
            ip("1.2.3.4"),
            "repeated headers are one list; ports are dropped"
        );
        assert_eq!(
            client_address(&r, peer, &xff(&["10.0.0.9, 10.0.0.8"])),
            ip("10.0.0.9"),
            "all trusted: the leftmost"
        );
        assert_eq!(
            client_address(&r, peer, &xff(&["1.2.3.4, junk, 10.0.0.8"])),
            ip("10.0.0.8"),
            "the walk ends at what is no address"
        );
        // Everyone trusted (ingress-nginx's default 0.0.0.0/0): the leftmost.
        let all = real(&["0.0.0.0/0"]);
        assert_eq!(
            client_address(&all, peer, &xff(&["[2001:db8::1]:80, 1.2.3.4"])),
            ip("2001:db8::1")
        );
    }
}
