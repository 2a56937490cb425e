//! The rewrite family: `use-regex` (every path of the Ingress's hosts is a regular expression, as
//! ingress-nginx does for the whole nginx `server`), `rewrite-target` (which implies it) and
//! `app-root`.

use super::Reader;
use model::Location;

/// `use-regex: "true"`, or a `rewrite-target` (which needs regex paths for its captures).
pub fn parse(r: &mut Reader<'_>, loc: &mut Location) -> bool {
    let use_regex = r.bool("use-regex").unwrap_or(false);
    loc.rewrite_target = r.text("rewrite-target");
    if let Some(root) = r.text("app-root") {
        if root.starts_with('/') && !root.contains(char::is_whitespace) {
            loc.app_root = Some(root);
        } else {
            r.warn(
                "app-root",
                format!("\"{root}\" is not a path starting with /: ignored"),
            );
        }
    }
    use_regex || loc.rewrite_target.is_some()
}
