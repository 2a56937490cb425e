//! Host names and nginx expressions (`crates/model/src/host.rs`, `crates/model/src/expr.rs`):
//! `model::host_name` of a request's `Host`, `HostMatch::parse` of an Ingress's host,
//! `Expr::parse` of an annotation value.
//!
//! Checks: no panic; a parsed host is written back as it parses and matches the request hosts it
//! should; every `$` of an expression is a variable or an unknown name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model::expr::{Expr, Part};
use model::{host_name, HostMatch};

fuzz_target!(|s: &str| {
    let name = host_name(s);
    assert!(name.len() <= s.len());
    assert!(!name.bytes().any(|b| b.is_ascii_uppercase()));

    if let Ok(host) = HostMatch::parse(s) {
        assert_eq!(HostMatch::parse(&host.to_string()).as_ref(), Ok(&host));
        match &host {
            HostMatch::Exact(h) => {
                assert!(host.matches(h));
                // What a client sends for it, with a port and a trailing dot, in capitals.
                let sent = format!("{}.:8080", h.to_ascii_uppercase());
                assert_eq!(host_name(&sent), h.as_str());
            }
            HostMatch::Wildcard(suffix) => {
                assert!(host.matches(&format!("a{suffix}")));
                assert!(!host.matches(&suffix[1..]));
                assert!(!host.matches(&format!("a.b{suffix}")));
            }
            HostMatch::Any => unreachable!("parse never gives Any"),
        }
    }

    let expr = Expr::parse(s);
    let dollars = s.matches('$').count();
    assert_eq!(expr.vars().count() + expr.unknown.len(), dollars);
    let unknown_in_text: usize = expr
        .parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.matches('$').count(),
            Part::Var(_) => 0,
        })
        .sum();
    assert_eq!(unknown_in_text, expr.unknown.len());
});
