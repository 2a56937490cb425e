//! Route and certificate lookup per listener: the Ingress hosts and each Gateway listener's are
//! looked up apart, with the same host index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{ListenerId, Table};
use model::{
    Certificate, HostMatch, HostTls, KeyFormat, Listener, ObjectRef, PathType, PrivateKey, Route,
    Snapshot, Target, VirtualHost,
};
use std::sync::Arc;

/// A virtual host whose one route (`/`) names `owner` as its Ingress (or route).
fn host(host: HostMatch, owner: &str) -> VirtualHost {
    VirtualHost {
        host,
        routes: vec![Route {
            path: "/".into(),
            path_type: PathType::Prefix,
            target: Target {
                backend: None,
                affinity: None,
                location: Default::default(),
                ingress: ObjectRef::new("HTTPRoute", "default", owner),
                default_backend: None,
            },
            canary: None,
            https_redirect: false,
            conditions: None,
            backends: Vec::new(),
        }],
        default: None,
        tls: None,
        client_auth: None,
        client_auth_error: None,
        passthrough: None,
        ssl_ciphers: None,
    }
}

fn exact(name: &str, owner: &str) -> VirtualHost {
    host(HostMatch::Exact(name.into()), owner)
}

fn snapshot() -> Snapshot {
    Snapshot {
        hosts: vec![exact("shop.example.com", "ingress-shop")].into(),
        listeners: vec![
            // Out of port order: the table sorts them.
            Listener {
                port: 9443,
                tls: true,
                hosts: vec![exact("shop.example.com", "secure-shop")],
            },
            Listener {
                port: 9000,
                tls: false,
                hosts: vec![
                    exact("shop.example.com", "gw-shop"),
                    host(HostMatch::Wildcard(".example.com".into()), "gw-wildcard"),
                    host(HostMatch::Any, "gw-any"),
                ],
            },
            Listener {
                port: 9001,
                tls: false,
                hosts: vec![exact("api.example.com", "gw-api")],
            },
        ]
        .into(),
        ..Snapshot::default()
    }
}

/// The owner of the route a request for `host` on `listener` finds.
fn owner(table: &Table, listener: ListenerId, host: &str) -> Option<String> {
    let req = http::Request::get("/").body(()).unwrap();
    table
        .route(listener, host, &req)
        .map(|m| m.target.ingress.name.clone())
}

fn gateway(port: u16) -> ListenerId {
    ListenerId::Gateway { port, tls: false }
}

#[test]
fn each_listener_routes_among_its_own_hosts() {
    let table = Table::new(snapshot(), Vec::new(), 1, None, None);
    let shop = "shop.example.com";
    assert_eq!(
        owner(&table, ListenerId::Ingress, shop).unwrap(),
        "ingress-shop"
    );
    assert_eq!(owner(&table, gateway(9000), shop).unwrap(), "gw-shop");
    assert_eq!(
        owner(&table, gateway(9000), "www.example.com").unwrap(),
        "gw-wildcard"
    );
    assert_eq!(owner(&table, gateway(9000), "other.org").unwrap(), "gw-any");
    assert_eq!(
        owner(&table, gateway(9001), "api.example.com").unwrap(),
        "gw-api"
    );
    let https = ListenerId::Gateway {
        port: 9443,
        tls: true,
    };
    assert_eq!(owner(&table, https, shop).unwrap(), "secure-shop");
}

#[test]
fn gateway_wildcards_cover_any_number_of_labels_ingress_ones_one() {
    let mut s = snapshot();
    Arc::make_mut(&mut s.hosts).push(host(
        HostMatch::Wildcard(".example.com".into()),
        "ingress-wildcard",
    ));
    Arc::make_mut(&mut s.listeners)[1]
        .hosts
        .push(host(HostMatch::Wildcard(".eu.example.com".into()), "gw-eu"));
    let table = Table::new(s, Vec::new(), 1, None, None);
    // The Gateway API: a suffix match, the most specific wildcard first.
    let deep = "a.b.example.com";
    assert_eq!(owner(&table, gateway(9000), deep).unwrap(), "gw-wildcard");
    assert_eq!(
        owner(&table, gateway(9000), "x.y.eu.example.com").unwrap(),
        "gw-eu"
    );
    assert_eq!(
        owner(&table, gateway(9000), "example.com").unwrap(),
        "gw-any"
    );
    // The Ingress API: exactly one label.
    assert_eq!(
        owner(&table, ListenerId::Ingress, "a.example.com").unwrap(),
        "ingress-wildcard"
    );
    assert_eq!(owner(&table, ListenerId::Ingress, deep), None);
}

#[test]
fn a_host_its_listener_does_not_have_finds_nothing() {
    let table = Table::new(snapshot(), Vec::new(), 1, None, None);
    // Gateway hosts are not served on the Ingress listener, nor Ingress hosts on a Gateway one.
    assert_eq!(owner(&table, ListenerId::Ingress, "api.example.com"), None);
    assert_eq!(owner(&table, gateway(9001), "shop.example.com"), None);
    // A port the table has no listener for (a socket draining after its removal).
    assert_eq!(owner(&table, gateway(9002), "shop.example.com"), None);
    // A socket whose protocol is no longer its port's.
    assert_eq!(owner(&table, gateway(9443), "shop.example.com"), None);
}

/// A self-signed certificate for `name`, as translation gives it.
fn certificate(name: &str) -> Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Certificate {
        secret: format!("default/{name}"),
        names: vec![name.to_owned()],
        chain: vec![Arc::from(cert.der().to_vec())],
        key: PrivateKey {
            format: KeyFormat::Pkcs8,
            der: Arc::from(key.serialize_der()),
        },
    }
}

#[test]
fn certificates_are_found_among_the_listeners_hosts() {
    let mut s = snapshot();
    s.certificates = vec![certificate("shop.example.com"), certificate("any.example")].into();
    Arc::make_mut(&mut s.hosts)[0].tls = Some(HostTls::Certificate(0));
    let listeners = Arc::make_mut(&mut s.listeners);
    listeners[0].hosts[0].tls = Some(HostTls::Certificate(0));
    listeners[0].hosts.push(VirtualHost {
        tls: Some(HostTls::Certificate(1)),
        ..host(HostMatch::Any, "secure-any")
    });
    let table = Table::new(s, Vec::new(), 1, None, None);
    let https = ListenerId::Gateway {
        port: 9443,
        tls: true,
    };
    let leaf = |k: Option<Arc<rustls::sign::CertifiedKey>>| k.map(|k| k.cert[0].to_vec());
    let shop = leaf(table.certificate(https, Some("SHOP.example.com")));
    let any = leaf(table.certificate(https, Some("other.example")));
    assert!(shop.is_some() && any.is_some() && shop != any);
    // Without SNI, the catch-all's certificate.
    assert_eq!(leaf(table.certificate(https, None)), any);
    // The Ingress listener: the named host only, else the default certificate.
    assert_eq!(
        leaf(table.certificate(ListenerId::Ingress, Some("shop.example.com"))),
        shop
    );
    assert!(table
        .certificate(ListenerId::Ingress, Some("other.example"))
        .is_none());
    assert!(table.certificate(ListenerId::Ingress, None).is_none());
    // A plain HTTP listener has no certificates.
    assert!(table
        .certificate(gateway(9000), Some("shop.example.com"))
        .is_none());
}

#[test]
fn gateway_routes_have_statistics() {
    let table = Table::new(snapshot(), Vec::new(), 1, None, None);
    let owners: std::collections::BTreeSet<String> = table
        .route_stats()
        .iter()
        .map(|s| s.ingress.clone())
        .collect();
    assert!(owners.contains("default/gw-api"), "{owners:?}");
    assert!(owners.contains("default/ingress-shop"), "{owners:?}");
}

#[test]
fn only_ingress_routes_have_ingress_nginx_series_and_only_with_the_flag() {
    let table = Table::build(snapshot(), Vec::new(), 1, None, None, true);
    let series = table.compat_stats();
    let owners: Vec<(&str, &str)> = series
        .iter()
        .map(|s| (s.labels.ingress.as_str(), s.labels.host.as_str()))
        .collect();
    assert_eq!(owners, [("ingress-shop", "shop.example.com")]);
    assert_ne!(table.config_hash, 0);
    // Carried to the next table, whose hash is the same for the same routes.
    let next = Table::build(snapshot(), Vec::new(), 2, Some(&table), None, true);
    assert!(Arc::ptr_eq(&next.compat_stats()[0], &series[0]));
    assert_eq!(next.config_hash, table.config_hash);
    let plain = Table::new(snapshot(), Vec::new(), 1, None, None);
    assert!(plain.compat_stats().is_empty());
    assert_eq!(plain.config_hash, 0);
}
