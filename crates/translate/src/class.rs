//! Which Ingresses this Remora serves, and in which order they take precedence.

use crate::objects::{Ingress, IngressClass, Objects};
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

/// The annotation that makes an IngressClass the cluster's default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Which classes are ours, as ingress-nginx decides with `--controller-class`, `--ingress-class`
/// and `--watch-ingress-without-class`.
struct Classes<'a> {
    /// `None`: file mode.
    controller: Option<&'a str>,
    /// Names of the IngressClasses whose `spec.controller` is ours.
    owned: Vec<&'a str>,
    /// One of them is the cluster's default class.
    default_owned: bool,
    legacy: &'a [String],
    without_class: bool,
}

impl<'a> Classes<'a> {
    fn new(objects: &'a Objects, options: &'a Options) -> Self {
        let controller = options.controller.as_deref();
        let owned: Vec<&IngressClass> = objects
            .ingress_classes
            .iter()
            .filter(|c| controller.is_some() && c.spec.controller.as_deref() == controller)
            .collect();
        Self {
            controller,
            default_owned: owned.iter().any(|c| {
                c.metadata
                    .annotations
                    .get(DEFAULT_CLASS_ANNOTATION)
                    .is_some_and(|v| v.trim() == "true")
            }),
            owned: owned.iter().map(|c| c.metadata.name.as_str()).collect(),
            legacy: &options.ingress_classes,
            without_class: options.watch_ingress_without_class,
        }
    }

    /// `Ok`: served. `Err`: why not.
    fn serves(&self, ing: &Ingress) -> Result<(), String> {
        let Some(controller) = self.controller else {
            // File mode.
            if self.legacy.is_empty() {
                return Ok(());
            }
            return match ingress_class(ing) {
                Some(c) if self.legacy.iter().any(|o| o == c) => Ok(()),
                Some(c) => Err(format!(
                    "not served: class \"{c}\" is not one of --ingress-class"
                )),
                None => Err("not served: it has no class and --ingress-class is set".to_owned()),
            };
        };
        if let Some(name) = ing
            .spec
            .ingress_class_name
            .as_deref()
            .filter(|c| !c.is_empty())
        {
            return if self.owned.contains(&name) {
                Ok(())
            } else {
                Err(format!(
                    "not served: IngressClass \"{name}\" does not exist or its controller is not {controller}"
                ))
            };
        }
        let annotation = ing
            .metadata
            .annotations
            .get(CLASS_ANNOTATION)
            .map(|c| c.trim())
            .filter(|c| !c.is_empty());
        match annotation {
            Some(c) if self.legacy.iter().any(|o| o == c) || self.owned.contains(&c) => Ok(()),
            Some(c) => Err(format!(
                "not served: class \"{c}\" (annotation {CLASS_ANNOTATION}) is neither --ingress-class nor an IngressClass of {controller}"
            )),
            None if self.without_class || self.default_owned => Ok(()),
            None => Err(
                "not served: it has no class (--watch-ingress-without-class is off and no IngressClass of ours is the default)"
                    .to_owned(),
            ),
        }
    }
}

/// The Ingresses to serve, oldest first (ties by namespace and name): when two claim the same host
/// and path, the first one wins, as in ingress-nginx.
pub fn served_ingresses<'a>(
    objects: &'a Objects,
    options: &Options,
    diags: &mut Diagnostics,
) -> Vec<&'a Ingress> {
    let classes = Classes::new(objects, options);
    let mut served: Vec<&Ingress> = objects
        .ingresses
        .iter()
        .filter(|ing| match classes.serves(ing) {
            Ok(()) => true,
            Err(msg) => {
                let object =
                    ObjectRef::new("Ingress", ing.metadata.namespace(), &ing.metadata.name);
                diags.push(Severity::Info, &object, None, msg);
                false
            }
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
