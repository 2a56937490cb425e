//! What Gateway API filters (`model::Filters`) need at request time, prepared once per table: the
//! header edits of `RequestHeaderModifier` and `ResponseHeaderModifier` as parsed names and values,
//! and the path a `PathModifier` makes of a request's (`URLRewrite` and `RequestRedirect` share
//! it).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use model::{HeaderEdits, PathModifier};
use std::borrow::Cow;

/// A `HeaderEdits` with its names and values parsed. Names or values that are not valid in HTTP
/// are left out (translation rejects them, so never in practice).
#[derive(Debug, Default)]
pub struct HeaderEditor {
    set: Box<[(HeaderName, HeaderValue)]>,
    add: Box<[(HeaderName, HeaderValue)]>,
    remove: Box<[HeaderName]>,
}

impl HeaderEditor {
    /// `None` when there is nothing to edit, so that routes without edits pay nothing.
    pub fn new(edits: &HeaderEdits) -> Option<Self> {
        if edits.is_empty() {
            return None;
        }
        let pairs = |list: &[(String, String)]| {
            list.iter()
                .filter_map(|(n, v)| {
                    Some((
                        HeaderName::from_bytes(n.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect()
        };
        Some(Self {
            set: pairs(&edits.set),
            add: pairs(&edits.add),
            remove: edits
                .remove
                .iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect(),
        })
    }

    /// Edits that set these headers (`custom-headers`, `add-headers`); `None` when there are none.
    pub fn set(headers: &[(String, String)]) -> Option<Self> {
        Self::new(&HeaderEdits {
            set: headers.to_vec(),
            ..HeaderEdits::default()
        })
    }

    /// Apply the edits in the Gateway API's order: `set` replaces every line of its header, `add`
    /// appends a line (an existing header keeps its values, as the conformance tests expect),
    /// `remove` drops the header.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in self.set.iter() {
            headers.insert(name, value.clone());
        }
        for (name, value) in self.add.iter() {
            headers.append(name, value.clone());
        }
        for name in self.remove.iter() {
            headers.remove(name);
        }
    }
}

/// The path a `PathModifier` makes of a request `path` (without query) on a route whose own path
/// is `prefix`. `Full`: the given path. `Prefix`: the route's prefix, as matched (whole segments,
/// a trailing `/` ignored), replaced, the rest of the path kept; the slash between the two is
/// neither doubled nor lost, and an empty result is `/` (the Gateway API's table of
/// `ReplacePrefixMatch`). A path that does not start with the prefix (a route that is not a
/// `PathPrefix` one, which translation refuses) is left as it is.
pub fn modified_path<'a>(modifier: &'a PathModifier, prefix: &str, path: &'a str) -> Cow<'a, str> {
    match modifier {
        PathModifier::Full(full) => Cow::Borrowed(full.as_str()),
        PathModifier::Prefix(replacement) => {
            let Some(rest) = path.strip_prefix(prefix.trim_end_matches('/')) else {
                return Cow::Borrowed(path);
            };
            let replacement = replacement.trim_end_matches('/');
            let mut out = String::with_capacity(1 + replacement.len() + rest.len());
            out.push_str(replacement);
            out.push_str(rest);
            if !out.starts_with('/') {
                out.insert(0, '/');
            }
            Cow::Owned(out)
        }
    }
}

/// A path and the request's query string, as a request target.
pub fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Gateway API's table of `ReplacePrefixMatch`, and the conformance test's paths
    /// (`httproute-rewrite-path`, `httproute-redirect-path`).
    #[test]
    fn replace_prefix_match_as_the_gateway_api_says() {
        let prefix = |p: &str| PathModifier::Prefix(p.into());
        for (path, matched, replacement, want) in [
            ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
            ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
            ("/foo", "/foo", "/xyz", "/xyz"),
            ("/foo/", "/foo", "/xyz", "/xyz/"),
            ("/foo/bar", "/foo", "", "/bar"),
            ("/foo/", "/foo", "", "/"),
            ("/foo", "/foo", "", "/"),
            ("/foo/", "/foo", "/", "/"),
            ("/foo", "/foo", "/", "/"),
            ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),
            ("/strip-prefix/three", "/strip-prefix", "/", "/three"),
            ("/strip-prefix", "/strip-prefix", "/", "/"),
            (
                "/prefix/rewrite-path-and-modify-headers/one",
                "/prefix/rewrite-path-and-modify-headers",
                "/prefix",
                "/prefix/one",
            ),
            (
                "/original-prefix/lemon",
                "/original-prefix",
                "/replacement-prefix",
                "/replacement-prefix/lemon",
            ),
            ("/anything", "/", "/api", "/api/anything"),
            // The request's trailing slash stays, as `/foo/` to `/xyz/` above.
            ("/", "/", "/api", "/api/"),
            ("/", "/", "/", "/"),
            ("/a", "/other", "/x", "/a"),
        ] {
            assert_eq!(
                modified_path(&prefix(replacement), matched, path),
                want,
                "{path} with {matched} -> {replacement}"
            );
        }
    }

    #[test]
    fn replace_full_path_ignores_the_request_path() {
        let full = PathModifier::Full("/one".into());
        assert_eq!(modified_path(&full, "/full/one", "/full/one/two"), "/one");
        assert_eq!(with_query("/one", Some("a=1")), "/one?a=1");
        assert_eq!(with_query("/one", None), "/one");
    }

    #[test]
    fn header_edits_set_add_remove_in_order() {
        let editor = HeaderEditor::new(&HeaderEdits {
            set: vec![("x-header-set".into(), "set-overwrites-values".into())],
            add: vec![
                ("x-header-add".into(), "header-val-1".into()),
                ("x-header-add-append".into(), "header-val-2".into()),
                ("bad name".into(), "dropped".into()),
            ],
            remove: vec!["x-header-remove".into(), "x-header-set".into()],
        })
        .unwrap();
        let mut h = HeaderMap::new();
        h.append("x-header-set", HeaderValue::from_static("set-val"));
        h.append("x-header-set", HeaderValue::from_static("second"));
        h.append("x-header-remove", HeaderValue::from_static("remove-val"));
        h.append(
            "x-header-add-append",
            HeaderValue::from_static("append-val-1"),
        );
        editor.apply(&mut h);
        // `remove` comes last: a header both set and removed is gone.
        assert!(h.get("x-header-set").is_none());
        assert!(h.get("x-header-remove").is_none());
        assert_eq!(h["x-header-add"], "header-val-1");
        let appended: Vec<_> = h.get_all("x-header-add-append").iter().collect();
        assert_eq!(appended, ["append-val-1", "header-val-2"]);
        assert_eq!(h.len(), 3);
        let set_only = HeaderEditor::new(&HeaderEdits {
            set: vec![("x-header-set".into(), "new".into())],
            ..HeaderEdits::default()
        })
        .unwrap();
        let mut h = HeaderMap::new();
        h.append("x-header-set", HeaderValue::from_static("a"));
        h.append("x-header-set", HeaderValue::from_static("b"));
        set_only.apply(&mut h);
        let values: Vec<_> = h.get_all("x-header-set").iter().collect();
        assert_eq!(values, ["new"]);
        assert!(HeaderEditor::new(&HeaderEdits::default()).is_none());
    }
}

/// `proxy-set-headers`: request headers every pod gets (and `auth-proxy-set-headers`: those the
/// authentication service gets), names and fixed values parsed once per table; a value with
/// nginx variables is compiled once and rendered per request.
#[derive(Debug, Default)]
pub struct SetHeaders {
    headers: Box<[(HeaderName, SetValue)]>,
}

#[derive(Debug)]
enum SetValue {
    /// An empty value: the header is removed (nginx's `proxy_set_header NAME ""`).
    Remove,
    Fixed(HeaderValue),
    Expr(crate::expr::Compiled),
}

impl SetHeaders {
    /// `None` when there is none, so that a proxy without them pays one check.
    pub fn new(list: &[(String, String)]) -> Option<Self> {
        let headers: Box<[(HeaderName, SetValue)]> = list
            .iter()
            .filter_map(|(n, v)| {
                let name = HeaderName::from_bytes(n.as_bytes()).ok()?;
                let expr = model::expr::Expr::parse(v);
                let value = if v.is_empty() {
                    SetValue::Remove
                } else if expr.vars().next().is_some() {
                    SetValue::Expr(crate::expr::Compiled::new(v))
                } else {
                    SetValue::Fixed(HeaderValue::from_str(v).ok()?)
                };
                Some((name, value))
            })
            .collect();
        (!headers.is_empty()).then_some(Self { headers })
    }

    /// Set (or remove) each header on `headers`, a request other than the one the variables are
    /// read from (`auth-proxy-set-headers` on the authentication service's). A rendered value
    /// that is no header value leaves the header out.
    pub fn apply_to<B>(&self, cx: &crate::expr::Cx<'_, B>, headers: &mut http::HeaderMap) {
        for (name, value) in self.headers.iter() {
            let v = match value {
                SetValue::Remove => None,
                SetValue::Fixed(v) => Some(v.clone()),
                SetValue::Expr(e) => HeaderValue::from_str(&e.render(cx)).ok(),
            };
            match v {
                Some(v) => {
                    headers.insert(name, v);
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }

    /// Set (or remove) each header on the request, its variables read from the request as it
    /// came. A rendered value that is no header value (a variable's bytes) leaves the header out.
    pub fn apply<B>(&self, conn: &crate::handler::Connection, req: &mut http::Request<B>) {
        let rendered: Vec<(&HeaderName, Option<HeaderValue>)> = {
            let cx = conn.cx(req);
            self.headers
                .iter()
                .map(|(name, value)| {
                    let v = match value {
                        SetValue::Remove => None,
                        SetValue::Fixed(v) => Some(v.clone()),
                        SetValue::Expr(e) => HeaderValue::from_str(&e.render(&cx)).ok(),
                    };
                    (name, v)
                })
                .collect()
        };
        let headers = req.headers_mut();
        for (name, v) in rendered {
            match v {
                Some(v) => {
                    headers.insert(name, v);
                }
                None => {
                    headers.remove(name);
                }
            }
        }
    }
}
