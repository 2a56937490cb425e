//! ReferenceGrants: a route may send to a Service, and a Gateway present a Secret, of another
//! namespace only when a ReferenceGrant in that namespace allows it.

use crate::objects::Objects;

/// One allowed kind of reference: from objects of a group, kind and namespace, to objects of a
/// group and kind (and name, if given) in the grant's namespace.
struct Grant {
    namespace: String,
    from_group: String,
    from_kind: String,
    from_namespace: String,
    to_group: String,
    to_kind: String,
    to_name: Option<String>,
}

/// Every grant of the objects.
pub struct Grants(Vec<Grant>);

/// The group of the core API (Service, Secret), as a reference writes it: `""` or `core`.
fn core(group: &str) -> &str {
    if group == "core" {
        ""
    } else {
        group
    }
}

impl Grants {
    pub fn new(objects: &Objects) -> Self {
        let mut list = Vec::new();
        for g in &objects.reference_grants {
            let (namespace, _) = super::ns_name(&g.metadata);
            for from in &g.spec.from {
                for to in &g.spec.to {
                    list.push(Grant {
                        namespace: namespace.to_owned(),
                        from_group: core(&from.group).to_owned(),
                        from_kind: from.kind.clone(),
                        from_namespace: from.namespace.clone(),
                        to_group: core(&to.group).to_owned(),
                        to_kind: to.kind.clone(),
                        to_name: to.name.clone().filter(|n| !n.is_empty()),
                    });
                }
            }
        }
        Self(list)
    }

    /// May an object of `from` (group, kind, namespace) reference `to` (group, kind, namespace,
    /// name)? Always within one namespace.
    pub fn allows(&self, from: (&str, &str, &str), to: (&str, &str, &str, &str)) -> bool {
        let (fg, fk, fns) = from;
        let (tg, tk, tns, tname) = to;
        fns == tns
            || self.0.iter().any(|g| {
                g.namespace == tns
                    && g.from_group == core(fg)
                    && g.from_kind == fk
                    && g.from_namespace == fns
                    && g.to_group == core(tg)
                    && g.to_kind == tk
                    && g.to_name.as_deref().is_none_or(|n| n == tname)
            })
    }
}
