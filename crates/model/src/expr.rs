//! nginx variables in annotation values: the URLs of `auth-url` and `auth-signin`, the key of
//! `upstream-hash-by`. One vocabulary and one parser, so what translation accepts is what the
//! proxy evaluates. A name is `$` and letters, digits and `_`, as nginx's.

/// A variable Remora knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Var {
    /// `$host`: the request's host, lowercase, without port.
    Host,
    /// `$http_host`, `$best_http_host`: the `Host` as sent (else the URI's authority).
    HttpHost,
    /// `$scheme`, `$pass_access_scheme`.
    Scheme,
    /// `$request_uri`: path and query as sent.
    RequestUri,
    /// `$escaped_request_uri`: the same, percent-encoded but for unreserved characters.
    EscapedRequestUri,
    /// `$uri`: the path.
    Uri,
    /// `$args`, `$query_string`.
    Args,
    /// `$remote_addr`, the client's address as text.
    RemoteAddr,
    /// `$binary_remote_addr`, its bytes.
    BinaryRemoteAddr,
    /// `$request_id`: the `X-Request-ID` the pod gets.
    RequestId,
    /// `$http_NAME`: a request header (`_` read as `-`), lowercase.
    Header(String),
    /// `$arg_NAME`: a query parameter.
    Arg(String),
    /// `$cookie_NAME`: a cookie.
    Cookie(String),
}

impl Var {
    fn of(name: &str) -> Option<Var> {
        Some(match name {
            "host" => Var::Host,
            "http_host" | "best_http_host" => Var::HttpHost,
            "scheme" | "pass_access_scheme" => Var::Scheme,
            "request_uri" => Var::RequestUri,
            "escaped_request_uri" => Var::EscapedRequestUri,
            "uri" => Var::Uri,
            "args" | "query_string" => Var::Args,
            "remote_addr" => Var::RemoteAddr,
            "binary_remote_addr" => Var::BinaryRemoteAddr,
            "request_id" => Var::RequestId,
            _ => {
                let named = |prefix: &str| name.strip_prefix(prefix).filter(|n| !n.is_empty());
                if let Some(h) = named("http_") {
                    Var::Header(h.replace('_', "-").to_ascii_lowercase())
                } else if let Some(a) = named("arg_") {
                    Var::Arg(a.to_owned())
                } else if let Some(c) = named("cookie_") {
                    Var::Cookie(c.to_owned())
                } else {
                    return None;
                }
            }
        })
    }
}

/// A piece of an expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    Text(String),
    Var(Var),
}

/// A value with nginx variables in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Expr {
    pub parts: Vec<Part>,
    /// The `$names` that are no variable Remora knows, a lone `$` included (kept as text in
    /// `parts`).
    pub unknown: Vec<String>,
}

impl Expr {
    pub fn parse(s: &str) -> Expr {
        let mut expr = Expr::default();
        let mut text = String::new();
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            text.push_str(&rest[..i]);
            let at = &rest[i + 1..];
            let len = at
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &at[..len];
            match Var::of(name) {
                Some(var) => {
                    if !text.is_empty() {
                        expr.parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    expr.parts.push(Part::Var(var));
                }
                None => {
                    expr.unknown.push(format!("${name}"));
                    text.push('$');
                    text.push_str(name);
                }
            }
            rest = &at[len..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            expr.parts.push(Part::Text(text));
        }
        expr
    }

    /// The variables it uses.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_text_and_unknown_names() {
        let e = Expr::parse("t-$http_x_tenant-$cookie_sid$arg_id/$hostx$host$");
        assert_eq!(
            e.parts,
            [
                Part::Text("t-".into()),
                Part::Var(Var::Header("x-tenant".into())),
                Part::Text("-".into()),
                Part::Var(Var::Cookie("sid".into())),
                Part::Var(Var::Arg("id".into())),
                Part::Text("/$hostx".into()),
                Part::Var(Var::Host),
                Part::Text("$".into()),
            ]
        );
        assert_eq!(e.unknown, ["$hostx", "$"]);
        assert_eq!(
            Expr::parse("$best_http_host$pass_access_scheme")
                .vars()
                .collect::<Vec<_>>(),
            [&Var::HttpHost, &Var::Scheme]
        );
    }
}
