//! Which Ingresses this Remora serves, and in which order they take precedence.

use crate::objects::{Ingress, Objects};
use crate::{Diagnostics, Options};
use model::{ObjectRef, Severity};

/// The legacy class annotation, still used by many manifests (seed 000 and 002 among them).
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The class an Ingress asks for: `spec.ingressClassName`, else the legacy annotation.
pub fn ingress_class(ing: &Ingress) -> Option<&str> {
    ing.spec
        .ingress_class_name
        .as_deref()
        .or_else(|| {
            ing.metadata
                .annotations
                .get(CLASS_ANNOTATION)
                .map(String::as_str)
        })
        .filter(|c| !c.is_empty())
}

/// The Ingresses to serve, oldest first (ties by namespace and name): when two claim the same host
/// and path, the first one wins, as in ingress-nginx.
pub fn served_ingresses<'a>(
    objects: &'a Objects,
    options: &Options,
    diags: &mut Diagnostics,
) -> Vec<&'a Ingress> {
    let mut served: Vec<&Ingress> = objects
        .ingresses
        .iter()
        .filter(|ing| {
            if options.ingress_classes.is_empty() {
                return true;
            }
            let class = ingress_class(ing);
            let ours = class.is_some_and(|c| options.ingress_classes.iter().any(|o| o == c));
            if !ours {
                let object =
                    ObjectRef::new("Ingress", ing.metadata.namespace(), &ing.metadata.name);
                let msg = match class {
                    Some(c) => format!("not served: class \"{c}\" is not one of --ingress-class"),
                    None => "not served: it has no class and --ingress-class is set".to_owned(),
                };
                diags.push(Severity::Info, &object, None, msg);
            }
            ours
        })
        .collect();
    served.sort_by(|a, b| {
        let key = |i: &'a Ingress| {
            (
                i.metadata.creation_timestamp.as_deref().unwrap_or(""),
                i.metadata.namespace(),
                i.metadata.name.as_str(),
            )
        };
        key(a).cmp(&key(b))
    });
    served
}
