//! Expressions evaluated on requests: rendered (auth-url) and hashed (upstream-hash-by).

use super::*;

fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut b = Request::builder().uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}

fn cx<'a>(req: &'a Request<()>, remote: &'a (IpAddr, HeaderValue), tls: bool) -> Cx<'a, ()> {
    Cx {
        req,
        remote: remote.0,
        client_ip: &remote.1,
        tls,
    }
}

fn addr(ip: &str) -> (IpAddr, HeaderValue) {
    (ip.parse().unwrap(), HeaderValue::from_str(ip).unwrap())
}

#[test]
fn templates_fill_nginx_variables() {
    let r = req(
        "/cart?id=1&x=a%20b",
        &[("host", "Shop.example.com:8080"), ("x-request-id", "abc")],
    );
    let ip = addr("10.0.0.1");
    let t = Compiled::new("https://$host/oauth2/auth?u=$escaped_request_uri&r=$request_id");
    assert_eq!(
        t.render(&cx(&r, &ip, true)),
        "https://shop.example.com/oauth2/auth?u=%2Fcart%3Fid%3D1%26x%3Da%2520b&r=abc"
    );
    let t = Compiled::new("http://auth.svc/check$request_uri?s=$scheme&h=$http_host$hostx");
    assert_eq!(
        t.render(&cx(&r, &ip, true)),
        "http://auth.svc/check/cart?id=1&x=a%20b?s=https&h=Shop.example.com:8080$hostx"
    );
}

#[test]
fn keys_follow_the_expression_only() {
    let ip = addr("10.0.0.1");
    let other = addr("10.0.0.2");
    let by_uri = Compiled::new("$request_uri");
    let a = req("/a?x=1", &[("host", "h"), ("x-user", "u1")]);
    assert_eq!(
        by_uri.hash(&cx(&a, &ip, false)),
        by_uri.hash(&cx(&a, &other, true))
    );
    let a2 = req("/a?x=2", &[]);
    assert_ne!(
        by_uri.hash(&cx(&a, &ip, false)),
        by_uri.hash(&cx(&a2, &ip, false))
    );
    let by_user = Compiled::new("user:$http_x_user");
    let b = req("/other", &[("x-user", "u1")]);
    assert_eq!(
        by_user.hash(&cx(&a, &ip, false)),
        by_user.hash(&cx(&b, &other, false))
    );
    let by_arg = Compiled::new("$arg_x-$cookie_sid");
    let c = req("/p?y=0&x=1", &[("cookie", "a=1; sid=s9")]);
    let d = req("/q?x=1", &[("cookie", "sid=s9")]);
    let e = req("/q?x=1", &[("cookie", "sid=s8")]);
    assert_eq!(
        by_arg.hash(&cx(&c, &ip, false)),
        by_arg.hash(&cx(&d, &other, true))
    );
    assert_ne!(
        by_arg.hash(&cx(&c, &ip, false)),
        by_arg.hash(&cx(&e, &ip, false))
    );
    let by_ip = Compiled::new("$binary_remote_addr");
    assert_ne!(
        by_ip.hash(&cx(&a, &ip, false)),
        by_ip.hash(&cx(&a, &other, false))
    );
}
