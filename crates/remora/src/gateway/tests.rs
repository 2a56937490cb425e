#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn config(bind: &str) -> Config {
    Config {
        bind: bind.parse().unwrap(),
        reserved: vec![
            ("0.0.0.0:8080".parse().unwrap(), "--listen-http"),
            ("0.0.0.0:8443".parse().unwrap(), "--listen-https"),
            ("127.0.0.1:10254".parse().unwrap(), "--admin"),
        ],
        workers: Vec::new(),
    }
}

fn http(port: u16) -> Want {
    Want { port, tls: false }
}

fn https(port: u16) -> Want {
    Want { port, tls: true }
}

fn bound(sockets: &[Want]) -> BTreeMap<u16, bool> {
    sockets.iter().map(|w| (w.port, w.tls)).collect()
}

#[test]
fn new_ports_are_bound_and_removed_ones_closed() {
    let p = plan(
        &bound(&[http(9000), https(9443)]),
        &[http(9000), http(9001)],
        &config("127.0.3.1"),
    );
    assert_eq!(
        p,
        Plan {
            stop: vec![9443],
            start: vec![http(9001)],
            errors: vec![],
        }
    );
}

#[test]
fn the_same_listeners_change_nothing() {
    let wanted = [http(9000), https(9443)];
    let p = plan(&bound(&wanted), &wanted, &config("127.0.3.1"));
    assert_eq!(p, Plan::default());
}

#[test]
fn a_port_whose_protocol_changed_is_closed_then_bound_again() {
    let p = plan(&bound(&[http(9000)]), &[https(9000)], &config("127.0.3.1"));
    assert_eq!(p.stop, vec![9000]);
    assert_eq!(p.start, vec![https(9000)]);
    assert!(p.errors.is_empty());
}

#[test]
fn a_port_that_could_not_be_bound_is_tried_again() {
    // Not bound at the last reconciliation: the same listeners start it again.
    let p = plan(&BTreeMap::new(), &[http(9000)], &config("127.0.3.1"));
    assert_eq!(p.start, vec![http(9000)]);
}

#[test]
fn remoras_own_ports_are_errors_on_overlapping_addresses() {
    let p = plan(
        &BTreeMap::new(),
        &[http(8080), https(8443), http(10254), http(9000)],
        &config("127.0.3.1"),
    );
    // The admin address is 127.0.0.1 only: 127.0.3.1:10254 is another socket.
    assert_eq!(p.start, vec![http(9000), http(10254)]);
    let ports: Vec<u16> = p.errors.iter().map(|e| e.port).collect();
    assert_eq!(ports, vec![8080, 8443]);
    assert!(
        p.errors[0].reason.contains("--listen-http"),
        "{}",
        p.errors[0].reason
    );
    assert_eq!(p.errors[0].address, "127.0.3.1:8080".parse().unwrap());

    // Bound on every address, the Gateway sockets meet the admin one too.
    let p = plan(&BTreeMap::new(), &[http(10254)], &config("0.0.0.0"));
    assert!(p.start.is_empty());
    assert!(p.errors[0].reason.contains("--admin"));
}

#[test]
fn a_port_wanted_twice_is_served_as_first_wanted() {
    let p = plan(
        &BTreeMap::new(),
        &[http(9000), https(9000), http(9000), http(0)],
        &config("127.0.3.1"),
    );
    assert_eq!(p.start, vec![http(9000)]);
    let errors: Vec<(u16, bool)> = p.errors.iter().map(|e| (e.port, e.tls)).collect();
    assert_eq!(errors, vec![(9000, true), (0, false)]);
}

#[test]
fn overlapping_addresses() {
    let v4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    assert!(overlaps(v4("127.0.0.1"), v4("127.0.0.1")));
    assert!(!overlaps(v4("127.0.0.1"), v4("127.0.3.1")));
    assert!(overlaps(v4("0.0.0.0"), v4("127.0.3.1")));
    assert!(overlaps(v4("127.0.3.1"), v4("0.0.0.0")));
    assert!(overlaps(v6("::"), v4("127.0.0.1")));
    assert!(overlaps(v4("10.0.0.1"), v6("::")));
    assert!(!overlaps(v4("0.0.0.0"), v6("::1")));
    assert!(overlaps(v4("0.0.0.0"), v6("::ffff:10.0.0.1")));
    assert!(!overlaps(v6("::1"), v6("fe80::1")));
}
