//! Manifests from files: the provider that lets Remora run without a cluster.
//!
//! [`Manifests`] reads a set of paths (files, or directories of `.yaml`/`.yml`/`.json` files, read
//! recursively in name order), splits multi-document YAML, expands `kind: List`, and decodes each
//! document into translation's [`Objects`]. A file that fails to read, parse or decode is reported
//! with its path and line, and its last good content keeps being used, so a typo in one file never
//! takes down what was serving. [`Watcher`] turns file system events into debounced reload signals
//! that name the paths changed, and [`Manifests::reload_changes`] reads only those files.

mod load;
mod tls_dir;
pub use load::decode_file;
mod watch;

pub use load::{Changes, LoadError, Manifests, Reload};
pub use translate::Objects;
pub use watch::Watcher;
