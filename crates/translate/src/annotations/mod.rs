//! Ingress annotations with the `nginx.ingress.kubernetes.io/` prefix, read the way ingress-nginx
//! reads them. One module per family; each takes what it knows from an [`Reader`], and whatever
//! no family took is reported once per Ingress as unsupported.

mod affinity;
mod ssl;

pub use affinity::AffinitySpec;

use crate::Diagnostics;
use model::{ObjectRef, Severity};
use std::collections::{BTreeMap, BTreeSet};

/// The prefix ingress-nginx reads; Remora reads the same so manifests move over unchanged.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// Everything the annotations of one Ingress say, already validated.
#[derive(Debug, Clone, Default)]
pub struct IngressAnnotations {
    pub affinity: Option<AffinitySpec>,
    /// `ssl-redirect`, when set to a valid boolean.
    pub ssl_redirect: Option<bool>,
}

/// Parse the annotations of one Ingress, reporting invalid and unsupported ones.
pub fn parse(
    annotations: &BTreeMap<String, String>,
    object: &ObjectRef,
    diags: &mut Diagnostics,
) -> IngressAnnotations {
    let mut r = Reader {
        annotations,
        object,
        diags,
        used: BTreeSet::new(),
    };
    let parsed = IngressAnnotations {
        affinity: affinity::parse(&mut r),
        ssl_redirect: ssl::parse(&mut r),
    };
    r.report_unsupported();
    parsed
}

/// Reads annotations by short name (without prefix) and remembers which ones were read.
pub struct Reader<'a> {
    annotations: &'a BTreeMap<String, String>,
    object: &'a ObjectRef,
    diags: &'a mut Diagnostics,
    used: BTreeSet<&'static str>,
}

impl Reader<'_> {
    /// The value of `nginx.ingress.kubernetes.io/<name>`, trimmed; marks it as known.
    pub fn get(&mut self, name: &'static str) -> Option<&str> {
        self.used.insert(name);
        self.annotations
            .get(&format!("{PREFIX}{name}"))
            .map(|v| v.trim())
    }

    /// A boolean as ingress-nginx parses it (`strconv.ParseBool`); invalid values warn and read as
    /// absent.
    pub fn bool(&mut self, name: &'static str) -> Option<bool> {
        let v = self.get(name)?.to_owned();
        match v.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            _ => {
                self.warn(name, format!("invalid boolean \"{v}\", ignored"));
                None
            }
        }
    }

    pub fn warn(&mut self, name: &str, message: impl Into<String>) {
        let full = format!("{PREFIX}{name}");
        self.diags
            .push(Severity::Warning, self.object, Some(&full), message);
    }

    pub fn info(&mut self, name: &str, message: impl Into<String>) {
        let full = format!("{PREFIX}{name}");
        self.diags
            .push(Severity::Info, self.object, Some(&full), message);
    }

    fn report_unsupported(&mut self) {
        let unknown: Vec<&str> = self
            .annotations
            .keys()
            .filter_map(|k| k.strip_prefix(PREFIX))
            .filter(|k| !self.used.contains(k))
            .collect();
        if !unknown.is_empty() {
            self.diags.warn(
                self.object,
                format!(
                    "annotations not supported by Remora, ignored: {}",
                    unknown.join(", ")
                ),
            );
        }
    }
}
