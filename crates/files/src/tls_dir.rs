//! `--tls-dir`: PEM pairs on disk, served as if they were `kubernetes.io/tls` Secrets.
//!
//! `DIR/NAME.crt` with `DIR/NAME.key` is the Secret `default/NAME`; `DIR/NS/NAME.crt` with its key
//! is `NS/NAME`. An Ingress's `spec.tls[].secretName: NAME` then finds it like any Secret, so
//! certificates from certbot or another tool need no manifest. The files are read again on every
//! change (renewals are picked up without restart).

use crate::LoadError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use translate::objects::{ObjectMeta, Secret};

/// The Secrets of a TLS directory, and the pairs that could not be read.
pub fn load(dir: &Path) -> (Vec<Secret>, Vec<LoadError>) {
    let mut secrets = Vec::new();
    let mut errors = Vec::new();
    let mut crts = Vec::new();
    if let Err(e) = list_crts(dir, dir, &mut crts) {
        errors.push(e);
    }
    for (namespace, crt) in crts {
        let key = crt.with_extension("key");
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| LoadError {
                path: p.to_owned(),
                line: None,
                reason: format!("cannot read ({e}); a certificate needs NAME.crt and NAME.key"),
            })
        };
        let (cert, key) = match (read(&crt), read(&key)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => {
                errors.push(e);
                continue;
            }
        };
        let name = crt
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        secrets.push(Secret {
            metadata: ObjectMeta {
                name,
                namespace: Some(namespace),
                ..ObjectMeta::default()
            },
            type_: Some("kubernetes.io/tls".to_owned()),
            data: BTreeMap::new(),
            string_data: BTreeMap::from([
                ("tls.crt".to_owned(), cert),
                ("tls.key".to_owned(), key),
            ]),
        });
    }
    (secrets, errors)
}

/// `(namespace, path)` of every `.crt` in `dir` (namespace `default`) and in its direct
/// subdirectories (namespace = the subdirectory's name). Hidden entries are skipped.
fn list_crts(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), LoadError> {
    for p in crate::load::visible_entries(dir)? {
        if p.is_dir() && dir == root {
            list_crts(root, &p, out)?;
        } else if p.extension().and_then(|e| e.to_str()) == Some("crt") {
            let namespace = if dir == root {
                "default".to_owned()
            } else {
                dir.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("default")
                    .to_owned()
            };
            out.push((namespace, p));
        }
    }
    Ok(())
}
