//! How requests without affinity are spread: `upstream-hash-by` (consistent hashing of an nginx
//! expression, as ingress-nginx's `chash` balancer) and `load-balance`. Cookie affinity, when set,
//! comes first, as in ingress-nginx.
//!
//! The expression may use the variables of [`model::expr`] (`$request_uri`, `$uri`, `$args`,
//! `$host`, `$remote_addr`, `$binary_remote_addr`, `$scheme`, `$http_NAME`, `$arg_NAME`,
//! `$cookie_NAME`...), with text between them; anything else is reported and the Ingress keeps
//! round robin.
//! `upstream-hash-by-subset` hashes onto the whole set (warned), `load-balance: ewma` is served as
//! round robin (warned).

use super::Reader;
use model::expr::Expr;
use model::Location;

pub fn parse(r: &mut Reader<'_>, loc: &mut Location) {
    if let Some(expr) = r.text("upstream-hash-by") {
        match check(&expr) {
            Ok(()) => loc.upstream_hash_by = Some(expr),
            Err(why) => r.warn(
                "upstream-hash-by",
                format!("\"{expr}\" {why}: round robin is used"),
            ),
        }
        if r.bool("upstream-hash-by-subset") == Some(true) {
            r.warn(
                "upstream-hash-by-subset",
                "subsets are not supported: keys are hashed onto every endpoint",
            );
        }
        r.get("upstream-hash-by-subset-size");
    }
    if let Some(lb) = r.text("load-balance") {
        match lb.as_str() {
            "round_robin" => {}
            "ewma" => r.warn("load-balance", "ewma is not supported: round robin is used"),
            other => r.warn(
                "load-balance",
                format!(
                    "invalid value \"{other}\" (expected round_robin or ewma): round robin is used"
                ),
            ),
        }
    }
}

/// Text and variables Remora knows only.
fn check(expr: &str) -> Result<(), &'static str> {
    if Expr::parse(expr).unknown.is_empty() {
        Ok(())
    } else {
        Err("uses a variable Remora does not know")
    }
}
