//! Diagnostics: what translation had to say about an object, attached to that object.

use serde::Serialize;
use std::fmt;

/// How much a diagnostic matters to an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Accepted as written, but worth knowing (an ignored legacy annotation, a skipped Ingress).
    Info,
    /// Something in the object could not be honoured; a default or a fallback was used instead.
    Warning,
}

/// A Kubernetes object named the way `kubectl` names it: `Ingress default/web`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One message about one object, and optionally one of its annotations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    #[serde(serialize_with = "display")]
    pub object: ObjectRef,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation: Option<String>,
    pub message: String,
}

fn display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.object)?;
        if let Some(a) = &self.annotation {
            // A ConfigMap's diagnostics name one of its keys.
            let what = if self.object.kind == "ConfigMap" {
                "key"
            } else {
                "annotation"
            };
            write!(f, " {what} {a}")?;
        }
        write!(f, ": {}", self.message)
    }
}
