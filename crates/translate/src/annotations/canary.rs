//! `canary`, `canary-by-header(-value|-pattern)`, `canary-by-cookie`, `canary-weight(-total)`,
//! `affinity-canary-behavior`: an Ingress that takes a share of another Ingress's traffic.

use super::Reader;

/// The canary settings of an Ingress with `canary: "true"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanarySpec {
    pub header: Option<String>,
    pub header_value: Option<String>,
    pub header_pattern: Option<String>,
    pub cookie: Option<String>,
    pub weight: u32,
    pub weight_total: u32,
    pub sticky: bool,
}

fn number(r: &mut Reader<'_>, name: &'static str, default: u32) -> u32 {
    let Some(v) = r.text(name) else {
        return default;
    };
    match v.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            r.warn(name, format!("invalid number \"{v}\", using {default}"));
            default
        }
    }
}

pub fn parse(r: &mut Reader<'_>) -> Option<CanarySpec> {
    let enabled = r.bool("canary").unwrap_or(false);
    let header = r.text("canary-by-header");
    let header_value = r.text("canary-by-header-value");
    let header_pattern = r.text("canary-by-header-pattern");
    let cookie = r.text("canary-by-cookie");
    let mut weight_total = number(r, "canary-weight-total", 100);
    if weight_total == 0 {
        r.warn("canary-weight-total", "must be above 0, using 100");
        weight_total = 100;
    }
    let mut weight = number(r, "canary-weight", 0);
    if weight > weight_total {
        r.warn(
            "canary-weight",
            format!("{weight} is above canary-weight-total {weight_total}: every request goes to the canary"),
        );
        weight = weight_total;
    }
    let sticky = match r.get("affinity-canary-behavior").map(str::to_owned) {
        None => true,
        Some(v) => match v.as_str() {
            "" | "sticky" => true,
            "legacy" => false,
            other => {
                r.warn(
                    "affinity-canary-behavior",
                    format!("invalid value \"{other}\" (expected sticky or legacy), using sticky"),
                );
                true
            }
        },
    };
    if let Some(p) = &header_pattern {
        if regex::Regex::new(p).is_err() {
            r.warn(
                "canary-by-header-pattern",
                format!("\"{p}\" is not a valid regular expression: ignored"),
            );
        }
    }
    let header_pattern = header_pattern.filter(|p| regex::Regex::new(p).is_ok());
    let configured = header.is_some() || cookie.is_some() || weight > 0;
    if !enabled {
        if configured {
            r.warn(
                "canary",
                "canary-* annotations are set but canary is not \"true\": they are ignored",
            );
        }
        return None;
    }
    Some(CanarySpec {
        header,
        header_value,
        header_pattern,
        cookie,
        weight,
        weight_total,
        sticky,
    })
}
