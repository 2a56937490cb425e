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
