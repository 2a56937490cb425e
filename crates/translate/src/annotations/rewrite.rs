//! The rewrite family: `use-regex`, which makes every path of the Ingress's hosts a regular
//! expression (as ingress-nginx does for the whole nginx `server`).

use super::Reader;

/// `use-regex: "true"`.
pub fn parse(r: &mut Reader<'_>) -> bool {
    r.bool("use-regex").unwrap_or(false)
}
