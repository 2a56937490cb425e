//! Reading and decoding manifest files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use translate::Objects;

/// A file that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    /// 1-based line of the problem: the exact line for syntax errors, the first line of the
    /// document for objects whose fields do not fit the schema.
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for LoadError {}

/// The outcome of one (re)load.
#[derive(Debug, Clone)]
pub struct Reload {
    /// Every object of every file, using the last good content of files that failed now.
    pub objects: Objects,
    /// Files that failed this time.
    pub errors: Vec<LoadError>,
    /// False when no file's content changed since the previous load (nothing to re-translate).
    pub changed: bool,
}

#[derive(Debug, Clone)]
struct FileState {
    content: String,
    /// `None` when the file never loaded successfully.
    good: Option<Objects>,
}

/// The set of manifest paths being served and the last good content of each file.
#[derive(Debug)]
pub struct Manifests {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
    /// `--tls-dir`, and the Secrets it gave last time.
    tls_dir: Option<PathBuf>,
    tls_secrets: Vec<translate::objects::Secret>,
    /// Every path to watch: the roots and the TLS directory.
    watched: Vec<PathBuf>,
}

impl Manifests {
    pub fn new(roots: Vec<PathBuf>) -> Self {
        Self::with_tls_dir(roots, None)
    }

    /// Also serve the PEM pairs of `tls_dir` as TLS Secrets (see `tls_dir`).
    pub fn with_tls_dir(roots: Vec<PathBuf>, tls_dir: Option<PathBuf>) -> Self {
        let mut watched = roots.clone();
        watched.extend(tls_dir.clone());
        Self {
            roots,
            files: BTreeMap::new(),
            tls_dir,
            tls_secrets: Vec::new(),
            watched,
        }
    }

    /// The paths whose changes call for a reload: the roots and the TLS directory.
    pub fn watched(&self) -> &[PathBuf] {
        &self.watched
    }

    /// Read every file again. Files that disappeared drop out; files that fail keep their last good
    /// objects and are reported.
    pub fn reload(&mut self) -> Reload {
        let mut errors = Vec::new();
        let mut paths = Vec::new();
        for root in &self.roots {
            if let Err(e) = list(root, &mut paths) {
                errors.push(e);
            }
        }
        let mut changed = false;
        let mut next = BTreeMap::new();
        for path in paths {
            if next.contains_key(&path) {
                continue;
            }
            let previous = self.files.remove(&path);
            let content = match std::fs::read_to_string(&path) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(LoadError {
                        path: path.clone(),
                        line: None,
                        reason: format!("cannot read: {e}"),
                    });
                    if let Some(p) = previous {
                        next.insert(path, p);
                    }
                    continue;
                }
            };
            let state = match previous {
                Some(p) if p.content == content => {
                    // Unchanged: keep it, and report it again if it is still broken.
                    if p.good.is_none() {
                        if let Err(e) = decode_file(&path, &content) {
                            errors.push(e);
                        }
                    }
                    p
                }
                previous => {
                    changed = true;
                    match decode_file(&path, &content) {
                        Ok(objects) => FileState {
                            content,
                            good: Some(objects),
                        },
                        Err(e) => {
                            errors.push(e);
                            FileState {
                                content,
                                good: previous.and_then(|p| p.good),
                            }
                        }
                    }
                }
            };
            next.insert(path, state);
        }
        if !self.files.is_empty() {
            changed = true; // some files disappeared
        }
        self.files = next;
        let mut objects = Objects::default();
        for state in self.files.values() {
            if let Some(good) = &state.good {
                merge(&mut objects, good.clone());
            }
        }
        if let Some(dir) = &self.tls_dir {
            let (secrets, tls_errors) = crate::tls_dir::load(dir);
            errors.extend(tls_errors);
            if secrets != self.tls_secrets {
                changed = true;
                self.tls_secrets = secrets;
            }
            objects.secrets.extend(self.tls_secrets.iter().cloned());
        }
        objects.sort();
        Reload {
            objects,
            errors,
            changed,
        }
    }
}

/// Every list of `from` appended to `into`'s. The destructuring names every field, so a kind
/// added to `Objects` does not compile until it is merged here too (the Gateway API kinds were
/// once dropped here, unseen).
fn merge(into: &mut Objects, from: Objects) {
    let Objects {
        ingresses,
        services,
        endpoint_slices,
        endpoints,
        secrets,
        ingress_classes,
        config_maps,
        gateway_classes,
        gateways,
        http_routes,
        reference_grants,
        namespaces,
        deployments,
    } = from;
    into.ingresses.extend(ingresses);
    into.services.extend(services);
    into.endpoint_slices.extend(endpoint_slices);
    into.endpoints.extend(endpoints);
    into.secrets.extend(secrets);
    into.ingress_classes.extend(ingress_classes);
    into.config_maps.extend(config_maps);
    into.gateway_classes.extend(gateway_classes);
    into.gateways.extend(gateways);
    into.http_routes.extend(http_routes);
    into.reference_grants.extend(reference_grants);
    into.namespaces.extend(namespaces);
    into.deployments.extend(deployments);
}

fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// The manifest files under `root`: itself if a file (whatever its extension), else every
/// manifest file below it, skipping hidden entries (editor swap files, `..data` symlink farms of
/// mounted ConfigMaps are followed through their visible names).
fn list(root: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let meta = std::fs::metadata(root).map_err(|e| LoadError {
        path: root.to_owned(),
        line: None,
        reason: format!("cannot read: {e}"),
    })?;
    if meta.is_file() {
        out.push(root.to_owned());
        return Ok(());
    }
    for p in visible_entries(root)? {
        if p.is_dir() {
            list(&p, out)?;
        } else if is_manifest(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The entries of a directory, sorted, without hidden ones (editor swap files, the `..data`
/// symlink farms of mounted ConfigMaps and Secrets, which are read through their visible names).
pub(crate) fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError {
            path: dir.to_owned(),
            line: None,
            reason: format!("cannot list directory: {e}"),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    Ok(entries)
}

/// Decode one file's content (YAML, multi-document, or JSON).
pub fn decode_file(path: &Path, content: &str) -> Result<Objects, LoadError> {
    let mut objects = Objects::default();
    let err = |line: Option<usize>, reason: String| LoadError {
        path: path.to_owned(),
        line,
        reason,
    };
    if path.extension().and_then(|e| e.to_str()) == Some("json") {
        let value: serde_json::Value =
            serde_json::from_str(content).map_err(|e| err(Some(e.line()), e.to_string()))?;
        objects
            .add_document(value)
            .map_err(|e| err(Some(1), e.to_string()))?;
        return Ok(objects);
    }
    for (first_line, doc) in split_documents(content) {
        let value: serde_json::Value = serde_yaml::from_str(doc).map_err(|e| {
            let line = e.location().map(|l| first_line + l.line() - 1);
            err(line.or(Some(first_line)), yaml_reason(&e))
        })?;
        objects
            .add_document(value)
            .map_err(|e| err(Some(first_line), e.to_string()))?;
    }
    Ok(objects)
}

/// serde_yaml appends " at line L column C" to its messages; the location is reported separately.
fn yaml_reason(e: &serde_yaml::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Split a YAML stream at `---` separators, keeping each document's 1-based first line. Documents
/// that hold only comments and blank lines are dropped.
fn split_documents(content: &str) -> Vec<(usize, &str)> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (i, line) in content.split_inclusive('\n').enumerate() {
        let trimmed = line.trim_end();
        let separator = trimmed == "---" || trimmed.starts_with("--- ") || trimmed == "...";
        if separator {
            docs.push((start_line, &content[start..offset]));
            start = offset + line.len();
            start_line = i + 2;
        }
        offset += line.len();
    }
    docs.push((start_line, &content[start..]));
    docs.retain(|(_, d)| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_lines() {
        let s = "# c\n---\na: 1\n---\n\n# only comment\n--- \nb: 2\n...\n";
        let docs = split_documents(s);
        assert_eq!(docs, vec![(3, "a: 1\n"), (8, "b: 2\n")]);
    }

    #[test]
    fn syntax_error_has_line() {
        let s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Service\nmetadata: [\n";
        let e = decode_file(Path::new("x.yaml"), s).unwrap_err();
        assert!(e.line.is_some_and(|l| l >= 8), "{e}");
    }

    #[test]
    fn schema_error_names_document_line_and_field() {
        let s = "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules: nope\n";
        let e = decode_file(Path::new("x.yaml"), s).unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.reason.contains("Ingress web"), "{e}");
        assert!(e.reason.contains("spec.rules"), "{e}");
    }

    #[test]
    fn other_kinds_are_ignored_and_lists_expand() {
        let s = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s\n";
        let o = decode_file(Path::new("x.yml"), s).unwrap();
        assert_eq!(o.services.len(), 1);
        assert!(o.ingresses.is_empty());
    }

    #[test]
    fn json_files() {
        let s = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"}}"#;
        let o = decode_file(Path::new("x.json"), s).unwrap();
        assert_eq!(o.services.len(), 1);
        let e = decode_file(Path::new("x.json"), "{\n\"a\": }").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn gateway_api_objects_of_every_file_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: remora}\nspec: {controllerName: remora.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: web}\nspec:\n  gatewayClassName: remora\n  listeners: [{name: http, protocol: HTTP, port: 80}]\n";
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  parentRefs: [{name: web}]\n---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]\n  to: [{group: '', kind: Service}]\n";
        std::fs::write(dir.path().join("gateway.yaml"), gateway).unwrap();
        std::fs::write(dir.path().join("route.yaml"), route).unwrap();
        let r = Manifests::new(vec![dir.path().to_owned()]).reload();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.objects.gateway_classes.len(), 1);
        assert_eq!(r.objects.gateways.len(), 1);
        assert_eq!(r.objects.http_routes.len(), 1);
        assert_eq!(r.objects.reference_grants.len(), 1);
    }

    #[test]
    fn broken_file_keeps_last_good_objects() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("svc.yaml");
        std::fs::write(&f, "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n").unwrap();
        let mut m = Manifests::new(vec![dir.path().to_owned()]);
        let r = m.reload();
        assert!(r.errors.is_empty() && r.changed);
        assert_eq!(r.objects.services.len(), 1);
        assert!(!m.reload().changed);
        std::fs::write(&f, "apiVersion: v1\nkind: Service\nmetadata: [\n").unwrap();
        let r = m.reload();
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.objects.services.len(), 1, "last good content is kept");
        std::fs::remove_file(&f).unwrap();
        let r = m.reload();
        assert!(r.changed && r.errors.is_empty());
        assert!(r.objects.services.is_empty());
    }
}
