//! Headers from ConfigMaps: the `custom-headers` annotation (response headers of one Ingress) and
//! the ConfigMap keys `add-headers` (response headers of every response) and `proxy-set-headers`
//! (request headers every pod gets), each naming a ConfigMap whose data are the headers.
//!
//! `custom-headers` is checked as ingress-nginx's `customheaders` parser does, and what it refuses
//! denies the Ingress (every request 503, ingress-nginx's "location denied"): a ConfigMap that is
//! missing (or in another namespace, unless `--allow-cross-namespace-resources`), a header name
//! that is not letters, digits, `-` and `_`, a value with other characters than its list, or a
//! header the global ConfigMap's `global-allowed-response-headers` does not list (compared
//! ignoring case; empty by default, so no custom header is allowed until listed). Values are sent
//! as written (nginx's `$` is literal there).

use super::Reader;
use model::Location;
use std::collections::BTreeMap;

const ANNOTATION: &str = "custom-headers";

/// `custom-headers`: the ConfigMap's data as the response headers of the Ingress.
pub fn parse(r: &mut Reader<'_>, loc: &mut Location, allowed: &[String]) {
    let Some(value) = r.text(ANNOTATION) else {
        return;
    };
    let deny = |r: &mut Reader<'_>, loc: &mut Location, why: String| {
        r.deny(
            loc,
            ANNOTATION,
            &why,
            "rather than being served without its headers",
        );
    };
    let ingress_namespace = r.object().namespace.clone();
    let Some((namespace, name)) = super::basic_auth::split_name(&value) else {
        let why = format!("invalid ConfigMap name \"{value}\" (expected name or namespace/name)");
        return deny(r, loc, why);
    };
    let namespace = namespace.unwrap_or(&ingress_namespace).to_owned();
    let key = format!("{namespace}/{name}");
    if namespace != ingress_namespace && !r.options.allow_cross_namespace_resources {
        let why = format!(
            "ConfigMap {key} is in another namespace, and cross-namespace resources are not allowed (--allow-cross-namespace-resources)"
        );
        return deny(r, loc, why);
    }
    let Some(config_map) = r.lookups.config_map(&namespace, name) else {
        return deny(r, loc, format!("ConfigMap {key} not found"));
    };
    let mut headers = Vec::with_capacity(config_map.data.len());
    for (header, value) in &config_map.data {
        if !valid_name(header) {
            let why = format!("invalid header name \"{header}\" in ConfigMap {key}");
            return deny(r, loc, why);
        }
        if !valid_custom_value(value) {
            let why = format!("invalid value of header {header} in ConfigMap {key}");
            return deny(r, loc, why);
        }
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(header)) {
            let why = format!(
                "header {header} of ConfigMap {key} is not allowed: the ConfigMap's global-allowed-response-headers does not list it"
            );
            return deny(r, loc, why);
        }
        headers.push((header.clone(), value.clone()));
    }
    loc.custom_headers = headers;
}

/// A header name as ingress-nginx accepts one: letters, digits, `-` and `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A `custom-headers` value as ingress-nginx accepts one: letters, digits, space and
/// `_:;.,\/"'?!(){}[]@<>=-+*#$&` `` ` `` `|~^%`.
fn valid_custom_value(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b" _:;.,\\/\"'?!(){}[]@<>=-+*#$&`|~^%".contains(&b)
        })
}

/// The headers of the ConfigMap a global key (`add-headers`, `proxy-set-headers`) names as
/// `namespace/name`: its data, sorted by name, without the entries that are no header (each
/// warned about). `None`, with a warning, when the name is invalid or the ConfigMap missing
/// (ingress-nginx then adds none).
pub fn global(r: &mut Reader<'_>, key: &str) -> Option<BTreeMap<String, String>> {
    let value = r.text(key)?;
    let Some((Some(namespace), name)) = super::basic_auth::split_name(&value) else {
        r.warn(
            key,
            format!(
                "invalid ConfigMap name \"{value}\" (expected namespace/name): no header added"
            ),
        );
        return None;
    };
    let Some(config_map) = r.lookups.config_map(namespace, name) else {
        r.warn(
            key,
            format!("ConfigMap {namespace}/{name} not found: no header added"),
        );
        return None;
    };
    let mut out = BTreeMap::new();
    for (header, v) in &config_map.data {
        let v = v.trim();
        if !valid_name(header) || http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            r.warn(
                key,
                format!(
                    "invalid header name \"{header}\" in ConfigMap {namespace}/{name}: left out"
                ),
            );
        } else if http::HeaderValue::from_str(v).is_err() {
            r.warn(
                key,
                format!(
                    "invalid value of header {header} in ConfigMap {namespace}/{name}: left out"
                ),
            );
        } else {
            out.insert(header.to_ascii_lowercase(), v.to_owned());
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_as_ingress_nginx_checks_them() {
        assert!(valid_name("My-Custom_Header2"));
        assert!(!valid_name("My Header"));
        assert!(!valid_name("X:Y"));
        assert!(!valid_name(""));
        assert!(valid_custom_value(
            "max-age=3; \"a\" $remote_addr (x) [y] {z} <a@b> ~^%|`"
        ));
        assert!(!valid_custom_value("line\nbreak"));
        assert!(!valid_custom_value("é"));
        assert!(!valid_custom_value(""));
    }
}
