//! The two ways a head goes to a pod say the same, and `rewrite-target` makes nginx's paths.

use super::*;
use crate::table::RouteHeaders;
use http::header::HeaderValue;

/// Request line and sorted header lines of a head; a generated X-Request-ID (not `keep`) is
/// replaced by `ID`.
fn lines(head: &[u8], keep: Option<&str>) -> (String, Vec<String>) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    assert!(req.parse(head).unwrap().is_complete());
    let line = format!("{} {}", req.method.unwrap(), req.path.unwrap());
    let mut out: Vec<String> = req
        .headers
        .iter()
        .map(|h| {
            let name = h.name.to_ascii_lowercase();
            let value = String::from_utf8_lossy(h.value).into_owned();
            match keep {
                None if name == "x-request-id" => format!("{name}: ID"),
                _ => format!("{name}: {value}"),
            }
        })
        .collect();
    out.sort();
    (line, out)
}

/// The request id the client sent that the pod must get as is.
fn kept_id(headers: &[(&str, &str)]) -> Option<&'static str> {
    headers
        .iter()
        .any(|(k, v)| *k == "x-request-id" && *v == "from-client")
        .then_some("from-client")
}

#[test]
fn the_lean_head_carries_what_rewrite_head_makes_of_the_request() {
    let conn = Connection::new(
        "127.0.0.9:5555".parse().unwrap(),
        HeaderValue::from_static("8080"),
        false,
        crate::table::ListenerId::Ingress,
        Default::default(),
    );
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/a?b=1",
            vec![("host", "shop.example.com"), ("accept", "*/*")],
        ),
        (
            "/hop",
            vec![
                ("host", "shop.example.com"),
                ("connection", "keep-alive, x-secret"),
                ("x-secret", "1"),
                ("keep-alive", "timeout=5"),
                ("proxy-connection", "keep-alive"),
                ("te", "trailers"),
                ("upgrade", "h2c"),
                ("accept", "text/html"),
                ("accept", "*/*"),
            ],
        ),
        (
            "/spoof",
            vec![
                ("host", "shop.example.com"),
                ("x-forwarded-for", "6.6.6.6"),
                ("x-real-ip", "6.6.6.6"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-scheme", "https"),
                ("x-forwarded-host", "evil.example.com"),
                ("x-forwarded-port", "1"),
                ("x-request-id", "from-client"),
            ],
        ),
        (
            "http://h2.example.com:8443/p?q=1",
            vec![("user-agent", "t")],
        ),
        (
            "/underscores",
            vec![
                ("host", "a.example.com"),
                ("x_forwarded_for", "6.6.6.6"),
                ("x-kept", "1"),
            ],
        ),
        (
            "http://public.example.com/absolute",
            vec![("host", "private.example.com")],
        ),
        (
            "/listed-id",
            vec![
                ("host", "a.example.com"),
                ("connection", "x-request-id"),
                ("x-request-id", "dropped"),
            ],
        ),
        (
            "/prefixed",
            vec![("host", "a.example.com"), ("x-forwarded-prefix", "/spoof")],
        ),
    ];
    let plain = RouteHeaders::default();
    let set = RouteHeaders {
        vhost: Some(HeaderValue::from_static("internal.default.svc")),
        prefix: Some(HeaderValue::from_static("/api")),
    };
    for (route, (uri, headers)) in [&plain, &set]
        .into_iter()
        .flat_map(|r| cases.iter().map(move |c| (r, c)))
    {
        let mut req = Request::builder().uri(*uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let host = upstream_host(&parts);
        let forwarded = conn.forwarded(host.as_ref(), route, None);
        let (lean, id) = lean_head(&parts, &forwarded, false, None);
        let mut prepared = clone_parts(&parts);
        rewrite_head(&mut prepared, &forwarded, false);
        if route.vhost.is_some() {
            let sent = lines(&lean, Some("")).1;
            assert!(
                sent.contains(&"host: internal.default.svc".to_owned()),
                "{uri}: {sent:?}"
            );
            assert!(
                sent.contains(&"x-forwarded-prefix: /api".to_owned()),
                "{uri}: {sent:?}"
            );
            if let Some(h) = host.as_ref() {
                let xfh = format!("x-forwarded-host: {}", h.to_str().unwrap());
                assert!(sent.contains(&xfh), "{uri}: {sent:?}");
            }
        }
        assert!(
            !lines(&lean, kept_id(headers))
                .1
                .iter()
                .any(|l| l.contains('_')),
            "{uri}: underscores dropped"
        );
        let kept = kept_id(headers);
        assert_eq!(
            lines(&lean, kept),
            lines(&headers::encode_head(&prepared), kept),
            "{uri}"
        );
        let id = id.unwrap();
        assert!(lines(&lean, Some(""))
            .1
            .contains(&format!("x-request-id: {}", id.to_str().unwrap())));
        // `generate-request-id: "false"`: the client's id only, none made; both heads agree.
        let mut plain = conn.forwarded(host.as_ref(), route, None);
        plain.generate_request_id = false;
        let (lean, id) = lean_head(&parts, &plain, false, None);
        let mut prepared = clone_parts(&parts);
        rewrite_head(&mut prepared, &plain, false);
        assert_eq!(id.is_some(), kept.is_some(), "{uri}");
        assert_eq!(
            lines(&lean, None),
            lines(&headers::encode_head(&prepared), None),
            "{uri}"
        );
    }
}

#[test]
fn rewrite_with_captures_and_query() {
    let re = regex::Regex::new(&model::regex_source("/something(/|$)(.*)")).unwrap();
    assert_eq!(
        rewrite("/$2", &re, "/something/new", None).as_deref(),
        Some("/new")
    );
    assert_eq!(
        rewrite("/$2", &re, "/something", None).as_deref(),
        Some("/")
    );
    assert_eq!(
        rewrite("/$2", &re, "/something/", Some("a=1")).as_deref(),
        Some("/?a=1")
    );
    assert_eq!(
        rewrite("/v2/$2?x=y", &re, "/SOMETHING/a/b", Some("a=1")).as_deref(),
        Some("/v2/a/b?x=y&a=1")
    );
    assert_eq!(
        rewrite("/$9$", &re, "/something/a", None).as_deref(),
        Some("/$")
    );
    assert_eq!(rewrite("/$2", &re, "/else", None), None);
}

#[test]
fn the_target_authority_is_the_host_the_pod_gets() {
    // RFC 9112 3.2.2: with an absolute-form target, Host is ignored; it chose the route.
    let (parts, ()) = Request::builder()
        .uri("http://public.example.com/x")
        .header("host", "private.example.com")
        .body(())
        .unwrap()
        .into_parts();
    assert_eq!(upstream_host(&parts).unwrap(), "public.example.com");
    let (parts, ()) = Request::builder()
        .uri("/x")
        .header("host", "private.example.com")
        .body(())
        .unwrap()
        .into_parts();
    assert_eq!(upstream_host(&parts).unwrap(), "private.example.com");
}
