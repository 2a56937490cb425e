//! What the request path knows of the client connection, computed once per connection.

use crate::client_auth::PeerCert;
use crate::headers::Forwarded;
use crate::server::proxy_protocol::Header as ProxyHeader;
use crate::table::{ListenerId, RouteHeaders};
use http::HeaderValue;
use std::net::{IpAddr, SocketAddr};

/// The client as the request path sees it: the connection's peer, or (with
/// `use-forwarded-headers`, `enable-real-ip`) the client its trusted proxy forwarded for, per
/// request (see `client`).
#[derive(Clone)]
pub struct Connection {
    /// The client's IP (for `allowlist-source-range`).
    pub remote: IpAddr,
    /// The same, as `X-Forwarded-For` / `X-Real-IP` value.
    pub client_ip: HeaderValue,
    /// The port the client connected to, as `X-Forwarded-Port` value.
    pub local_port: HeaderValue,
    /// The connection is TLS (the HTTPS listener, or a Gateway HTTPS listener); or the trusted
    /// proxy's `X-Forwarded-Proto` says `https`.
    pub tls: bool,
    /// The listener whose socket accepted the connection: its requests are routed among that
    /// listener's virtual hosts only.
    pub listener: ListenerId,
    /// The pod's `X-Forwarded-For` when it is not `client_ip` (`compute-full-forwarded-for`).
    pub forwarded_for: Option<HeaderValue>,
    /// The pod's `Host` and `X-Forwarded-Host` when a trusted proxy's `X-Forwarded-Host` says
    /// (`use-forwarded-headers`).
    pub forwarded_host: Option<HeaderValue>,
    /// The client named a server in its TLS handshake (SNI).
    pub sni: bool,
    /// The handshake was made for a host with client certificate authentication: the client's
    /// certificate as verified for that host (`auth-tls-*`).
    pub peer: Option<std::sync::Arc<PeerCert>>,
    /// With the PROXY protocol (`use-proxy-protocol`): the source address its header gave, as
    /// written, trusted or not (`None` inside: a header without addresses, v2 `LOCAL` or v1
    /// `UNKNOWN`); `None`: the connection did not begin with one.
    pub proxy_source: Option<Option<IpAddr>>,
}

impl Connection {
    pub fn new(
        remote: SocketAddr,
        local_port: HeaderValue,
        tls: bool,
        listener: ListenerId,
        facts: crate::tls::TlsFacts,
    ) -> Self {
        Self {
            remote: remote.ip(),
            client_ip: HeaderValue::from_str(&remote.ip().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
            local_port,
            tls,
            listener,
            forwarded_for: None,
            forwarded_host: None,
            sni: facts.sni,
            peer: facts.peer,
            proxy_source: None,
        }
    }

    /// The connection as its PROXY protocol header describes it, as ingress-nginx's nginx reads
    /// it (`real_ip_header proxy_protocol`, `$proxy_protocol_server_port`): the header's source
    /// is the client when the socket's peer is among `proxy-real-ip-cidr` (`trusted`); its
    /// destination port is the `X-Forwarded-Port`, and 443 means the client spoke HTTPS to the
    /// load balancer (`X-Forwarded-Proto: https`, no redirect to HTTPS). A header without
    /// addresses (`LOCAL`, `UNKNOWN`) leaves the connection as its socket says.
    pub fn proxied(mut self, header: ProxyHeader, trusted: &[model::Cidr]) -> Self {
        let ProxyHeader::Proxied {
            source,
            destination,
        } = header
        else {
            self.proxy_source = Some(None);
            return self;
        };
        self.proxy_source = Some(Some(source.ip()));
        if trusted.iter().any(|net| net.contains(self.remote)) {
            self.remote = source.ip();
            if let Ok(ip) = HeaderValue::from_str(&source.ip().to_string()) {
                self.client_ip = ip;
            }
        }
        self.local_port = HeaderValue::from(destination.port());
        self.tls = self.tls || destination.port() == 443;
        self
    }

    /// The connection came in on the Ingress listeners (`--listen-http`, `--listen-https`), where
    /// ingress-nginx's behaviours apply: the redirect to HTTPS, HSTS.
    pub fn is_ingress(&self) -> bool {
        self.listener == ListenerId::Ingress
    }

    /// `http` or `https`, as the client connected.
    pub fn scheme(&self) -> &'static str {
        crate::expr::scheme(self.tls)
    }

    /// What the nginx variables of `req` on this connection are made of.
    pub fn cx<'a, B>(&'a self, req: &'a http::Request<B>) -> crate::expr::Cx<'a, B> {
        crate::expr::Cx {
            req,
            remote: self.remote,
            client_ip: &self.client_ip,
            tls: self.tls,
        }
    }

    /// What Remora tells the pod of a request on this connection whose Host is `host`, on a route
    /// that may set the pod's Host (`vhost`) and `X-Forwarded-Prefix`; `original_for`: the
    /// forwarded-for header the request came with.
    pub fn forwarded<'a>(
        &'a self,
        host: Option<&'a HeaderValue>,
        route: &'a RouteHeaders,
        original_for: Option<HeaderValue>,
    ) -> Forwarded<'a> {
        Forwarded {
            host: self.forwarded_host.as_ref().or(host),
            vhost: route.vhost.as_ref(),
            prefix: route.prefix.as_ref(),
            client_ip: &self.client_ip,
            forwarded_for: self.forwarded_for.as_ref().unwrap_or(&self.client_ip),
            original_for,
            port: &self.local_port,
            tls: self.tls,
            generate_request_id: true,
        }
    }
}
