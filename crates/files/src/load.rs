//! Reading and decoding manifest files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use translate::objects::{self, List};
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
    /// Every object of every file, using the last good content of files that failed now. Shared
    /// with the provider, which patches it at the next reload: holding it longer than that costs
    /// a copy then.
    pub objects: Arc<Objects>,
    /// Files that failed this time.
    pub errors: Vec<LoadError>,
    /// False when no file's content changed since the previous load (nothing to re-translate).
    pub changed: bool,
}

/// What a file's content was read from: enough of its `stat` to tell, without reading it, that
/// it did not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    unix: (u64, u64, i64, i64),
}

/// A file modified this recently may be modified again within the file system's timestamp
/// granularity without its stamp changing: its stamp is not trusted (git's "racily clean").
const RACY: Duration = Duration::from_secs(2);

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            unix: (meta.dev(), meta.ino(), meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Whether the file was last changed long enough before `read_at` for the stamp to tell.
    fn settled(&self, read_at: SystemTime) -> bool {
        let old = |t: SystemTime| read_at.duration_since(t).is_ok_and(|d| d >= RACY);
        #[cfg(unix)]
        let changed = u64::try_from(self.unix.2)
            .ok()
            .map(|s| SystemTime::UNIX_EPOCH + Duration::new(s, 0));
        #[cfg(not(unix))]
        let changed = self.modified;
        self.modified.is_some_and(old) && changed.is_some_and(old)
    }
}

#[derive(Debug)]
struct FileState {
    /// The file's objects in the assembly.
    owner: Owner,
    /// The stamp of the content read last, when it can be trusted: then an unchanged stamp means
    /// an unchanged file, not read again.
    stamp: Option<Stamp>,
    /// Hash of the content read last (`None`: never read).
    hash: Option<u128>,
    /// The content read last does not decode (the assembly keeps the last good objects).
    decode_error: Option<LoadError>,
    /// The file could not be read this time.
    read_error: Option<LoadError>,
}

impl FileState {
    fn new(path: &Path) -> Self {
        FileState {
            owner: Owner::new(0, path),
            stamp: None,
            hash: None,
            decode_error: None,
            read_error: None,
        }
    }

    fn error(&self) -> Option<&LoadError> {
        self.read_error.as_ref().or(self.decode_error.as_ref())
    }
}

/// What changed since the previous reload, as far as a watcher knows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// List every path again (the first load; a watcher error or overflow; a directory created,
    /// removed or renamed).
    pub rescan: bool,
    /// The paths events named: files written, created, renamed or removed.
    pub paths: BTreeSet<PathBuf>,
}

impl Changes {
    /// Anything may have changed: list and look at everything.
    pub fn everything() -> Self {
        Changes {
            rescan: true,
            paths: BTreeSet::new(),
        }
    }

    /// Add another burst's changes to these.
    pub fn extend(&mut self, other: Changes) {
        self.rescan |= other.rescan;
        if !self.rescan {
            self.paths.extend(other.paths);
        }
    }
}

/// The set of manifest paths being served and the last good content of each file.
#[derive(Debug)]
pub struct Manifests {
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
    /// `--tls-dir`, and the Secrets it gave last time.
    tls_dir: Option<PathBuf>,
    tls_secrets: Vec<translate::objects::Secret>,
    /// The owner of the TLS directory's Secrets in the assembly.
    tls_owner: Owner,
    /// Every path to watch: the roots and the TLS directory.
    watched: Vec<PathBuf>,
    /// Every good object of every file, sorted as `Objects::sort` sorts.
    assembly: Assembly,
}

/// The files a reload looks at when only some paths changed.
#[derive(Default)]
struct Plan {
    files: BTreeSet<PathBuf>,
    tls: bool,
}

/// Objects to take out of and put into the assembly.
#[derive(Default)]
struct Pending {
    gone: Vec<Owner>,
    added: Vec<(Owner, Objects)>,
    changed: bool,
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
            tls_owner: Owner::new(1, tls_dir.as_deref().unwrap_or(Path::new(""))),
            tls_dir,
            tls_secrets: Vec::new(),
            watched,
            assembly: Assembly::default(),
        }
    }

    /// The paths whose changes call for a reload: the roots and the TLS directory.
    pub fn watched(&self) -> &[PathBuf] {
        &self.watched
    }

    /// List every path again and look at every file; only files whose `stat` changed (or was
    /// taken too soon after a change to tell) are read, and only those whose content changed are
    /// decoded. Files that disappeared drop out; files that fail keep their last good objects and
    /// are reported.
    pub fn reload(&mut self) -> Reload {
        self.reload_changes(&Changes::everything())
    }

    /// Look at what `changes` names: the files named are read (whatever their `stat` says), files
    /// named and gone drop out. What cannot be judged from the paths alone (a directory, a
    /// hidden symbolic link such as the `..data` of a mounted ConfigMap, a path outside the roots)
    /// lists everything again, as [`Manifests::reload`]. Every file that fails, now or still, is
    /// reported.
    pub fn reload_changes(&mut self, changes: &Changes) -> Reload {
        let mut errors = Vec::new();
        let mut pending = Pending::default();
        let plan = if changes.rescan {
            None
        } else {
            self.plan(&changes.paths)
        };
        let tls = match plan {
            None => {
                let mut paths = Vec::new();
                for root in &self.roots {
                    if let Err(e) = list(root, &mut paths) {
                        errors.push(e);
                    }
                }
                let listed: BTreeSet<PathBuf> = paths.iter().cloned().collect();
                for path in &paths {
                    self.refresh(path, false, &mut pending);
                }
                let gone: Vec<PathBuf> = self
                    .files
                    .keys()
                    .filter(|p| !listed.contains(*p))
                    .cloned()
                    .collect();
                for path in gone {
                    self.forget(&path, &mut pending);
                }
                true
            }
            Some(plan) => {
                for path in &plan.files {
                    if std::fs::symlink_metadata(path).is_ok() {
                        self.refresh(path, true, &mut pending);
                    } else {
                        self.forget(path, &mut pending);
                    }
                }
                plan.tls
            }
        };
        errors.extend(self.files.values().filter_map(|f| f.error().cloned()));
        if let (Some(dir), true) = (&self.tls_dir, tls) {
            let (secrets, tls_errors) = crate::tls_dir::load(dir);
            errors.extend(tls_errors);
            if secrets != self.tls_secrets {
                let owner = self.tls_owner.clone();
                pending.gone.push(owner.clone());
                pending.added.push((
                    owner,
                    Objects {
                        secrets: secrets.clone().into(),
                        ..Objects::default()
                    },
                ));
                pending.changed = true;
                self.tls_secrets = secrets;
            }
        }
        let changed = pending.changed;
        self.assembly.apply(pending);
        Reload {
            objects: self.assembly.objects.clone(),
            errors,
            changed,
        }
    }

    /// The files to look at for these changed paths; `None` when everything must be listed again.
    fn plan(&self, paths: &BTreeSet<PathBuf>) -> Option<Plan> {
        let mut plan = Plan::default();
        for path in paths {
            if let Some(dir) = &self.tls_dir {
                if path.starts_with(dir) {
                    plan.tls = true;
                    continue;
                }
            }
            let is_root = self.roots.iter().any(|r| r == path);
            let root = self
                .roots
                .iter()
                .find(|r| path.starts_with(r) && *r != path);
            let link = std::fs::symlink_metadata(path);
            let Some(root) = root.filter(|_| !is_root) else {
                if is_root {
                    // A root file is read whatever its name; a root directory itself changed.
                    match std::fs::metadata(path) {
                        Ok(m) if m.is_dir() => return None,
                        Err(_) if !self.files.contains_key(path) && link.is_err() => return None,
                        _ => plan.files.insert(path.clone()),
                    };
                    continue;
                }
                // Beside a root file (its directory is watched): only a hidden link or directory
                // (a ConfigMap mount's `..data` swapped) can change what the root reads.
                let beside = self
                    .roots
                    .iter()
                    .any(|r| r.parent().is_some_and(|d| path.parent() == Some(d)));
                if beside && !(hidden(path) && link.is_ok_and(|m| !m.is_file())) {
                    continue;
                }
                return None;
            };
            let below = path.strip_prefix(root).ok()?;
            if below
                .components()
                .any(|c| c.as_os_str().to_str().is_some_and(|n| n.starts_with('.')))
            {
                // Hidden: editor swap files and temporary files renamed into place are never
                // read; a hidden link or directory may be what visible names point through.
                match link {
                    Ok(m) if !m.is_file() => return None,
                    _ => continue,
                }
            }
            match link {
                Err(_) if self.files.contains_key(path) => {
                    plan.files.insert(path.clone());
                }
                // A directory gone, or renamed away, with the files below it.
                Err(_) if self.files.keys().any(|f| f.starts_with(path)) => return None,
                Err(_) => {}
                Ok(_) if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) => return None,
                Ok(_) if is_manifest(path) || self.files.contains_key(path) => {
                    plan.files.insert(path.clone());
                }
                Ok(_) => {}
            }
        }
        Some(plan)
    }

    /// Look at one file that exists: read it unless its stamp says it did not change (and
    /// `force` is off); decode it if its content changed.
    fn refresh(&mut self, path: &Path, force: bool, pending: &mut Pending) {
        let stamp = std::fs::metadata(path).ok().map(|m| Stamp::of(&m));
        let state = self
            .files
            .entry(path.to_owned())
            .or_insert_with(|| FileState::new(path));
        if !force && stamp.is_some() && state.stamp == stamp && state.read_error.is_none() {
            return;
        }
        let content = match std::fs::read_to_string(path) {
            Ok(c) => c,
            Err(e) => {
                state.stamp = None;
                state.read_error = Some(LoadError {
                    path: path.to_owned(),
                    line: None,
                    reason: format!("cannot read: {e}"),
                });
                return;
            }
        };
        let read_at = SystemTime::now();
        state.read_error = None;
        state.stamp = stamp.filter(|s| s.settled(read_at));
        let hash = xxhash_rust::xxh3::xxh3_128(content.as_bytes());
        if state.hash == Some(hash) {
            return;
        }
        state.hash = Some(hash);
        pending.changed = true;
        match decode_file(path, &content) {
            Ok(objects) => {
                state.decode_error = None;
                pending.gone.push(state.owner.clone());
                pending.added.push((state.owner.clone(), objects));
            }
            Err(e) => state.decode_error = Some(e),
        }
    }

    /// A file that is gone: its objects leave the assembly.
    fn forget(&mut self, path: &Path, pending: &mut Pending) {
        if let Some(state) = self.files.remove(path) {
            pending.gone.push(state.owner);
            pending.changed = true;
        }
    }
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Where objects of the assembly came from: a file, or the TLS directory. Objects of equal
/// namespace and name are ordered by it (files by path, then the TLS directory), then as in
/// their file: the order of a stable sort of every file's objects, in path order.
#[derive(Debug, Clone)]
struct Owner(Arc<(u8, PathBuf)>);

impl Owner {
    fn new(rank: u8, path: &Path) -> Owner {
        Owner(Arc::new((rank, path.to_owned())))
    }

    /// The same owner: each file's state (and the TLS directory) holds one for as long as its
    /// objects are in the assembly.
    fn is(&self, other: &Owner) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn order(&self) -> (u8, &Path) {
        (self.0 .0, &self.0 .1)
    }
}

/// The number of lists in `Objects`.
const KINDS: usize = 13;

/// Every good object of every file, each list sorted by namespace and name (as `Objects::sort`
/// sorts), with the owner of each object beside it. A reload takes out the objects of the files
/// that changed and puts in their new ones: nothing else is copied.
#[derive(Debug, Default)]
struct Assembly {
    objects: Arc<Objects>,
    owners: [Vec<Owner>; KINDS],
}

impl Assembly {
    fn apply(&mut self, pending: Pending) {
        if pending.gone.is_empty() && pending.added.is_empty() {
            return;
        }
        let objects = Arc::make_mut(&mut self.objects);
        let mut update = Update {
            gone: &pending.gone,
            owner: None,
        };
        each_list(objects, &mut self.owners, Objects::default(), &mut update);
        for (owner, added) in pending.added {
            let mut update = Update {
                gone: &[],
                owner: Some(owner),
            };
            each_list(objects, &mut self.owners, added, &mut update);
        }
    }
}

/// Namespace and name: the order of `Objects::sort`.
trait Keyed {
    fn key(&self) -> (&str, &str);
}

macro_rules! keyed {
    ($($t:ty),*) => {$(
        impl Keyed for $t {
            fn key(&self) -> (&str, &str) {
                (self.metadata.namespace(), &self.metadata.name)
            }
        }
    )*};
}
keyed!(
    objects::Ingress,
    objects::Service,
    objects::EndpointSlice,
    objects::Endpoints,
    objects::Secret,
    objects::IngressClass,
    objects::ConfigMap,
    objects::Namespace,
    objects::Deployment
);

/// The Gateway API's kinds, with Kubernetes' own `ObjectMeta` (no namespace sorts as "").
macro_rules! keyed_k8s {
    ($($t:ty => $($field:ident).+),*) => {$(
        impl Keyed for $t {
            fn key(&self) -> (&str, &str) {
                let m = &self.$($field).+;
                (
                    m.namespace.as_deref().unwrap_or_default(),
                    m.name.as_deref().unwrap_or_default(),
                )
            }
        }
    )*};
}
keyed_k8s!(
    objects::GatewayClass => metadata,
    objects::Gateway => metadata,
    objects::ReferenceGrant => metadata,
    objects::HttpRoute => route.metadata
);

/// One operation on each list of the assembly and its owners, with the same list of a file's
/// objects.
trait EachList {
    fn list<T: Keyed>(&mut self, list: &mut List<T>, owners: &mut Vec<Owner>, new: Vec<Arc<T>>);
}

/// `f` on every list. The destructuring names every field, so a kind added to `Objects` does not
/// compile until it is handled here too (the Gateway API kinds were once dropped, unseen, by the
/// merge this replaces).
fn each_list(
    into: &mut Objects,
    owners: &mut [Vec<Owner>; KINDS],
    from: Objects,
    f: &mut impl EachList,
) {
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
    let [o0, o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11, o12] = owners;
    f.list(&mut into.ingresses, o0, ingresses.into_vec());
    f.list(&mut into.services, o1, services.into_vec());
    f.list(&mut into.endpoint_slices, o2, endpoint_slices.into_vec());
    f.list(&mut into.endpoints, o3, endpoints.into_vec());
    f.list(&mut into.secrets, o4, secrets.into_vec());
    f.list(&mut into.ingress_classes, o5, ingress_classes.into_vec());
    f.list(&mut into.config_maps, o6, config_maps.into_vec());
    f.list(&mut into.gateway_classes, o7, gateway_classes.into_vec());
    f.list(&mut into.gateways, o8, gateways.into_vec());
    f.list(&mut into.http_routes, o9, http_routes.into_vec());
    f.list(&mut into.reference_grants, o10, reference_grants.into_vec());
    f.list(&mut into.namespaces, o11, namespaces.into_vec());
    f.list(&mut into.deployments, o12, deployments.into_vec());
}

/// Take the objects of `gone` out; put `new` in, as `owner`'s, each where it sorts.
struct Update<'a> {
    gone: &'a [Owner],
    owner: Option<Owner>,
}

/// More new objects than this in one list are appended and the list sorted again, rather than
/// inserted one by one.
const INSERT_AT_MOST: usize = 16;

impl EachList for Update<'_> {
    fn list<T: Keyed>(&mut self, list: &mut List<T>, owners: &mut Vec<Owner>, new: Vec<Arc<T>>) {
        // `list` is copied (when the translator still shares it) only if it changes.
        if !self.gone.is_empty() {
            let keep: Vec<bool> = owners
                .iter()
                .map(|o| !self.gone.iter().any(|g| g.is(o)))
                .collect();
            if keep.contains(&false) {
                let mut k = keep.iter();
                list.retain(|_| k.next().copied().unwrap_or(true));
                let mut k = keep.iter();
                owners.retain(|_| k.next().copied().unwrap_or(true));
            }
        }
        let Some(owner) = &self.owner else { return };
        if new.is_empty() {
            return;
        }
        if new.len() > INSERT_AT_MOST {
            let n = new.len();
            list.extend(new);
            owners.extend(std::iter::repeat_n(owner.clone(), n));
            let mut pairs: Vec<(Arc<T>, Owner)> = std::mem::take(list)
                .into_vec()
                .into_iter()
                .zip(std::mem::take(owners))
                .collect();
            // Stable: the objects of one file with equal keys stay in their file's order.
            pairs.sort_by(|(a, oa), (b, ob)| {
                a.key()
                    .cmp(&b.key())
                    .then_with(|| oa.order().cmp(&ob.order()))
            });
            let objects: Vec<Arc<T>>;
            (objects, *owners) = pairs.into_iter().unzip();
            *list = objects.into();
            return;
        }
        for object in new {
            let at = {
                let wanted = (object.key(), owner.order());
                let (mut lo, mut hi) = (0, list.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let here = list.get(mid).map(|o| o.key());
                    let here_owner = owners.get(mid).map(|o| o.order());
                    match (here, here_owner) {
                        (Some(k), Some(o)) if (k, o) <= wanted => lo = mid + 1,
                        _ => hi = mid,
                    }
                }
                lo
            };
            list.insert(at, object);
            owners.insert(at, owner.clone());
        }
    }
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

    fn service(name: &str, namespace: &str) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  ports:\n  - port: 80\n")
    }

    fn names(o: &Objects) -> Vec<String> {
        o.services
            .iter()
            .map(|s| format!("{}/{}", s.metadata.namespace(), s.metadata.name))
            .collect()
    }

    fn changed(paths: &[&Path]) -> Changes {
        Changes {
            rescan: false,
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    /// Written as editors and `Dir::write` of the e2e tests do: a hidden file renamed into place.
    fn write(path: &Path, content: &str) {
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn only_the_files_named_are_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        write(&a, &service("a", "x"));
        write(&b, &service("b", "x"));
        let mut m = Manifests::new(vec![dir.path().to_owned()]);
        assert_eq!(names(&m.reload().objects), ["x/a", "x/b"]);
        write(&a, &service("a2", "x"));
        write(&b, &service("b2", "x"));
        let r = m.reload_changes(&changed(&[&b, &dir.path().join(".b.yaml.tmp")]));
        assert!(r.changed && r.errors.is_empty());
        assert_eq!(names(&r.objects), ["x/a", "x/b2"], "a.yaml was not named");
        let r = m.reload_changes(&changed(&[&b]));
        assert!(!r.changed, "same content");
        // A new file, a broken one (reported at every reload while broken), a removed one.
        let c = dir.path().join("c.yaml");
        write(&c, &service("c", "x"));
        write(&b, "kind: Service\nmetadata: [\n");
        let r = m.reload_changes(&changed(&[&b, &c]));
        assert_eq!(names(&r.objects), ["x/a", "x/b2", "x/c"]);
        assert_eq!(r.errors.len(), 1);
        let r = m.reload_changes(&changed(&[&c]));
        assert_eq!(r.errors.len(), 1, "still broken: still reported");
        assert!(!r.changed);
        std::fs::remove_file(&c).unwrap();
        let r = m.reload_changes(&changed(&[&c]));
        assert!(r.changed);
        assert_eq!(names(&r.objects), ["x/a", "x/b2"]);
        // A full reload sees what was not named.
        assert_eq!(names(&m.reload().objects), ["x/a2", "x/b2"]);
    }

    #[test]
    fn a_new_directory_lists_everything_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifests::new(vec![dir.path().to_owned()]);
        assert!(m.reload().objects.services.is_empty());
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        write(&sub.join("s.yaml"), &service("s", "x"));
        // Only the directory is named (its files were written before it was watched).
        let r = m.reload_changes(&changed(&[&sub]));
        assert_eq!(names(&r.objects), ["x/s"]);
        std::fs::rename(&sub, dir.path().join("moved")).unwrap();
        std::fs::remove_dir_all(dir.path().join("moved")).unwrap();
        let r = m.reload_changes(&changed(&[&sub]));
        assert!(r.changed);
        assert!(
            r.objects.services.is_empty(),
            "a directory gone: its files too"
        );
    }

    /// A mounted ConfigMap: visible names link through `..data` to a hidden timestamped
    /// directory; an update writes a new directory and swaps `..data` by renaming a link.
    #[cfg(unix)]
    #[test]
    fn a_configmap_mount_swap_is_seen() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("..2026_01")).unwrap();
        std::fs::write(d.join("..2026_01/svc.yaml"), service("one", "x")).unwrap();
        symlink("..2026_01", d.join("..data")).unwrap();
        symlink("..data/svc.yaml", d.join("svc.yaml")).unwrap();
        for root in [d.to_owned(), d.join("svc.yaml")] {
            let mut m = Manifests::new(vec![root]);
            assert_eq!(names(&m.reload().objects), ["x/one"]);
            let (old, new) = if d.join("..2026_02").exists() {
                ("..2026_02", "..2026_01")
            } else {
                ("..2026_01", "..2026_02")
            };
            std::fs::create_dir(d.join(new)).unwrap();
            std::fs::write(d.join(new).join("svc.yaml"), service("two", "x")).unwrap();
            symlink(new, d.join("..data_tmp")).unwrap();
            std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
            std::fs::remove_dir_all(d.join(old)).unwrap();
            // What inotify reports: files in the new hidden directory, the link renamed.
            let r = m.reload_changes(&changed(&[
                &d.join(new).join("svc.yaml"),
                &d.join("..data_tmp"),
                &d.join("..data"),
            ]));
            assert!(r.changed && r.errors.is_empty(), "{:?}", r.errors);
            assert_eq!(names(&r.objects), ["x/two"]);
            // Back to "one" for the next root.
            std::fs::write(d.join(new).join("svc.yaml"), service("one", "x")).unwrap();
        }
    }

    /// Objects of the same namespace and name in several files keep the order a full sort of all
    /// files gives, whatever changes one by one.
    #[test]
    fn the_assembly_is_what_a_fresh_load_gives() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let many: String = (0..40)
            .map(|i| service(&format!("s{i:02}"), "m"))
            .collect::<Vec<_>>()
            .join("---\n");
        let dup = |tag: &str| {
            service("dup", "x").replace("port: 80", &format!("port: 80\n    name: {tag}"))
        };
        write(
            &d.join("1.yaml"),
            &format!("{}---\n{}", dup("1a"), dup("1b")),
        );
        write(&d.join("2.yaml"), &dup("2"));
        write(&d.join("3.yaml"), &many);
        let mut m = Manifests::new(vec![d.to_owned()]);
        m.reload();
        let fresh = |m: &Objects| {
            let f = Manifests::new(vec![d.to_owned()]).reload().objects;
            assert_eq!(
                serde_json::to_string(m).unwrap(),
                serde_json::to_string(&*f).unwrap()
            );
        };
        fresh(&m.reload().objects);
        let steps: [(&str, String); 6] = [
            ("2.yaml", format!("{}---\n{}", dup("2a"), service("a", "x"))),
            ("1.yaml", dup("1c")),
            (
                "0.yaml",
                format!("{}---\n{}", dup("0"), many.replace("s0", "t0")),
            ),
            ("3.yaml", many.replace("s1", "u1")),
            ("1.yaml", String::new()),
            ("0.yaml", dup("0b")),
        ];
        for (name, content) in steps {
            let path = d.join(name);
            write(&path, &content);
            let r = m.reload_changes(&changed(&[&path]));
            assert!(r.changed);
            fresh(&r.objects);
        }
    }

    /// Timings of a large directory (`cargo test --release -p remora-files -- --ignored
    /// --nocapture`): the first load, a full rescan with nothing changed, one file changed.
    #[test]
    #[ignore = "timings, not a test"]
    fn timings_of_ten_thousand_files() {
        let dir = tempfile::tempdir().unwrap();
        let slice = |i: usize, v: usize| {
            let mut s = format!("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: s{i}\n  namespace: default\n  labels:\n    kubernetes.io/service-name: s{i}\naddressType: IPv4\nports:\n- port: 8080\nendpoints:\n");
            for e in 0..10 {
                s.push_str(&format!(
                    "- addresses: [\"127.240.{}.{e}\"]\n  conditions: {{ready: {}}}\n",
                    i % 250,
                    e != v % 10
                ));
            }
            s
        };
        for i in 0..10_000 {
            std::fs::write(dir.path().join(format!("s{i:05}.yaml")), slice(i, 0)).unwrap();
        }
        let mut m = Manifests::new(vec![dir.path().to_owned()]);
        let t = std::time::Instant::now();
        let r = m.reload();
        println!(
            "first load: {:?} ({} slices)",
            t.elapsed(),
            r.objects.endpoint_slices.len()
        );
        drop(r);
        let t = std::time::Instant::now();
        let r = m.reload();
        println!(
            "full rescan, nothing changed: {:?} (changed: {})",
            t.elapsed(),
            r.changed
        );
        drop(r);
        let mut took = Vec::new();
        for v in 1..=100 {
            let path = dir.path().join(format!("s{:05}.yaml", v * 97));
            write(&path, &slice(v * 97, v));
            let t = std::time::Instant::now();
            let r = m.reload_changes(&changed(&[&path]));
            took.push(t.elapsed());
            assert!(r.changed);
        }
        took.sort();
        println!(
            "one file changed: median {:?}, max {:?}",
            took[took.len() / 2],
            took[took.len() - 1]
        );
    }
}
