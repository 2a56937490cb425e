//! Route lookup: paths, Gateway API conditions and `RegularExpression` paths, first match wins.

use super::*;
use model::{Conditions, ObjectRef, ValueMatch};

fn target(backend: u32) -> Target {
    Target {
        backend: Some(BackendId(backend)),
        affinity: None,
        location: Default::default(),
        ingress: ObjectRef::new("HTTPRoute", "default", "web"),
        default_backend: None,
    }
}

fn route(path: &str, path_type: PathType, backend: u32, conditions: Option<Conditions>) -> Route {
    Route {
        path: path.into(),
        path_type,
        target: target(backend),
        canary: None,
        https_redirect: false,
        conditions: conditions.map(Box::new),
        backends: Vec::new(),
    }
}

fn header(name: &str, value: &str) -> ValueMatch {
    ValueMatch {
        name: name.into(),
        value: value.into(),
        regex: false,
    }
}

/// Routes in the Gateway API's precedence order, as translation sorts them.
fn table() -> Table {
    let routes = vec![
        route("/exact", PathType::Exact, 0, None),
        route(
            "/api",
            PathType::Prefix,
            1,
            Some(Conditions {
                method: Some("POST".into()),
                headers: vec![header("version", "two")],
                query: Vec::new(),
            }),
        ),
        route(
            "/api",
            PathType::Prefix,
            2,
            Some(Conditions {
                headers: vec![header("version", "two")],
                ..Conditions::default()
            }),
        ),
        route("/api", PathType::Prefix, 3, None),
        route("/v[0-9]+/items", PathType::RegularExpression, 4, None),
        route(
            "/",
            PathType::Prefix,
            5,
            Some(Conditions {
                query: vec![ValueMatch {
                    regex: true,
                    ..header("animal", "^wh")
                }],
                ..Conditions::default()
            }),
        ),
    ];
    let snapshot = Snapshot {
        hosts: vec![VirtualHost {
            host: HostMatch::Exact("gw.example.com".into()),
            routes,
            default: Some(target(9)),
            tls: None,
            client_auth: None,
            client_auth_error: None,
            passthrough: None,
            ssl_ciphers: None,
        }]
        .into(),
        ..Snapshot::default()
    };
    Table::new(snapshot, Vec::new(), 1, None, None)
}

/// The backend of the route a request matches.
fn matched(t: &Table, method: &str, uri: &str, headers: &[(&str, &str)]) -> Option<u32> {
    let mut req = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(()).ok()?;
    Some(
        t.route(ListenerId::Ingress, "gw.example.com", &req)?
            .target
            .backend?
            .0,
    )
}

#[test]
fn first_route_whose_path_and_conditions_hold_wins() {
    let t = table();
    let v2 = [("version", "two")];
    assert_eq!(matched(&t, "GET", "/exact", &[]), Some(0));
    assert_eq!(matched(&t, "POST", "/api/x", &v2), Some(1));
    assert_eq!(matched(&t, "GET", "/api/x", &v2), Some(2));
    assert_eq!(
        matched(&t, "POST", "/api/x", &[("version", "one")]),
        Some(3)
    );
    assert_eq!(matched(&t, "GET", "/api", &[]), Some(3));
    assert_eq!(matched(&t, "GET", "/apix", &[]), Some(9));
    assert_eq!(matched(&t, "GET", "/?animal=whale", &[]), Some(5));
    assert_eq!(matched(&t, "GET", "/other?animal=dolphin", &[]), Some(9));
    assert_eq!(matched(&t, "GET", "/other", &[]), Some(9));
}

#[test]
fn regular_expression_paths_match_the_whole_path_with_case() {
    let t = table();
    assert_eq!(matched(&t, "GET", "/v12/items", &[]), Some(4));
    assert_eq!(matched(&t, "GET", "/v12/items?q=1", &[]), Some(4));
    assert_eq!(matched(&t, "GET", "/v12/items/more", &[]), Some(9));
    assert_eq!(matched(&t, "GET", "/x/v12/items", &[]), Some(9));
    assert_eq!(matched(&t, "GET", "/V12/Items", &[]), Some(9));
}

#[test]
fn matched_routes_carry_their_path_and_conditions_are_compiled_once() {
    let t = table();
    let req = http::Request::get("/api/x").body(()).unwrap();
    let m = t
        .route(ListenerId::Ingress, "gw.example.com", &req)
        .unwrap();
    assert_eq!(m.path, "/api");
    assert!(m.backends.is_empty());
    let rt = &t.ingress.runtimes[0].routes;
    assert!(rt[0].conditions.is_none() && rt[3].conditions.is_none());
    assert!(rt[1].conditions.is_some() && rt[5].conditions.is_some());
    assert!(rt[4].regex.is_some());
}

/// `ssl-passthrough` hosts are found by the ClientHello's server name, exactly but for case; the
/// statistics are those of the location `/` translation took the backend from.
#[test]
fn passthrough_hosts_are_found_by_exact_server_name() {
    let pass = model::Passthrough {
        backend: BackendId(0),
        ingress: ObjectRef::new("HTTPRoute", "default", "web"),
    };
    let host = |name: &str, passthrough: Option<model::Passthrough>| VirtualHost {
        host: HostMatch::Exact(name.into()),
        routes: vec![route("/", PathType::Prefix, 0, None)],
        default: None,
        tls: None,
        client_auth: None,
        client_auth_error: None,
        passthrough,
        ssl_ciphers: None,
    };
    let snapshot = Snapshot {
        hosts: vec![
            host("pass.example.com", Some(pass)),
            host("web.example.com", None),
        ]
        .into(),
        backends: vec![Arc::new(Backend {
            name: "default/tls:443".into(),
            endpoints: Vec::new(),
        })],
        ..Snapshot::default()
    };
    let t = Table::new(snapshot, Vec::new(), 1, None, None);
    assert!(t.has_passthrough());
    let found = t.passthrough("Pass.Example.COM");
    assert!(found.is_some_and(|p| p.stats.service == "default/tls:443"));
    assert!(t.passthrough("web.example.com").is_none());
    assert!(t.passthrough("other.example.com").is_none());
    assert!(t.passthrough(&"a".repeat(300)).is_none());
    // The route's statistics count its connections.
    let req = http::Request::get("/").body(()).ok();
    let route_stats = req
        .as_ref()
        .and_then(|r| t.route(ListenerId::Ingress, "pass.example.com", r))
        .map(|m| Arc::as_ptr(&m.runtime.stats));
    assert_eq!(
        route_stats,
        t.passthrough("pass.example.com")
            .map(|p| Arc::as_ptr(&p.stats))
    );
    assert!(!table().has_passthrough());
}
