//! File system watching with debouncing.
//!
//! Editors save in bursts (write, rename, chmod); Kubernetes ConfigMap mounts swap a symlink. Every
//! burst becomes one reload signal, sent once the burst has been quiet for [`QUIET`] or has lasted
//! [`MAX_DELAY`], so a change is served within about 100 ms. The signal carries the paths the
//! events named ([`Changes`]), so that only those files are read again; a watcher error, a queue
//! overflow, or a directory created or removed asks for everything to be listed again.

use crate::load::Changes;
use notify::event::{CreateKind, RemoveKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Quiet time that ends a burst of events.
pub const QUIET: Duration = Duration::from_millis(20);
/// Longest a burst can delay a reload.
pub const MAX_DELAY: Duration = Duration::from_millis(60);

/// Debounced change notifications for a set of manifest paths.
pub struct Watcher {
    _inner: RecommendedWatcher,
    rx: mpsc::UnboundedReceiver<Changes>,
}

/// What one event says changed.
fn changes(event: notify::Result<notify::Event>) -> Option<Changes> {
    let Ok(event) = event else {
        return Some(Changes::everything());
    };
    match event.kind {
        EventKind::Access(_) => None,
        _ if event.need_rescan() => Some(Changes::everything()),
        EventKind::Create(CreateKind::Folder)
        | EventKind::Remove(RemoveKind::Folder)
        | EventKind::Any
        | EventKind::Other => Some(Changes::everything()),
        _ => Some(Changes {
            rescan: false,
            paths: event.paths.into_iter().collect(),
        }),
    }
}

impl Watcher {
    /// Watch `roots` (files or directories). A file is watched through its directory, so that
    /// editors that replace the file by renaming keep being seen.
    pub fn new(roots: &[PathBuf]) -> notify::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Some(c) = changes(event) {
                    let _ = tx.send(c);
                }
            })?;
        for root in roots {
            if root.is_dir() {
                inner.watch(root, RecursiveMode::Recursive)?;
            } else {
                let dir = root
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map_or_else(|| PathBuf::from("."), PathBuf::from);
                inner.watch(&dir, RecursiveMode::NonRecursive)?;
            }
        }
        Ok(Self { _inner: inner, rx })
    }

    /// Wait for the next burst of changes to end: what it changed. `None` when the watcher
    /// stopped.
    pub async fn changed(&mut self) -> Option<Changes> {
        let mut all = self.rx.recv().await?;
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let quiet = Instant::now() + QUIET;
            match tokio::time::timeout_at(quiet.min(deadline), self.rx.recv()).await {
                Ok(Some(c)) => {
                    all.extend(c);
                    if Instant::now() >= deadline {
                        return Some(all);
                    }
                }
                Ok(None) => return None,
                Err(_) => return Some(all),
            }
        }
    }
}
