//! How requests without affinity are spread: `upstream-hash-by` (consistent hashing of an nginx
//! expression, as ingress-nginx's `chash` balancer) and `load-balance`. Cookie affinity, when set,
//! comes first, as in ingress-nginx.
//!
//! The expression may use the variables of [`model::expr`] (`$request_uri`, `$uri`, `$args`,
//! `$host`, `$remote_addr`, `$binary_remote_addr`, `$scheme`, `$http_NAME`, `$arg_NAME`,
//! `$cookie_NAME`...), with text between them; anything else is reported and the Ingress keeps
//! round robin.
//! `upstream-hash-by-subset` (with `upstream-hash-by-subset-size`, 3) maps a key onto that many
//! endpoints instead of one, as ingress-nginx's `chashsubset`; `load-balance: ewma` is served as
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
        let subset = r.bool("upstream-hash-by-subset") == Some(true);
        let size = subset_size(r);
        loc.upstream_hash_subset = (subset && loc.upstream_hash_by.is_some()).then_some(size);
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

/// ingress-nginx's default subset size, also what `0` means.
const SUBSET_SIZE: u32 = 3;

/// `upstream-hash-by-subset-size`: a positive number of endpoints; anything else warns and reads as
/// the default (ingress-nginx rejects the Ingress's hash configuration with a non-number).
fn subset_size(r: &mut Reader<'_>) -> u32 {
    let Some(v) = r.get("upstream-hash-by-subset-size").map(str::to_owned) else {
        return SUBSET_SIZE;
    };
    match v.parse::<u32>() {
        Ok(0) => SUBSET_SIZE,
        Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            r.warn(
                "upstream-hash-by-subset-size",
                format!(
                    "invalid value \"{v}\": expected a positive number of endpoints, {SUBSET_SIZE} is used"
                ),
            );
            SUBSET_SIZE
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
