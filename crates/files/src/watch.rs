//! File system watching with debouncing.
//!
//! Editors save in bursts (write, rename, chmod); Kubernetes ConfigMap mounts swap a symlink. Every
//! burst becomes one reload signal, sent once the burst has been quiet for [`QUIET`] or has lasted
//! [`MAX_DELAY`], so a change is served within about 100 ms. The watch is level-triggered: the
//! signal carries no detail, the consumer re-reads everything.

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
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
    rx: mpsc::UnboundedReceiver<()>,
}

impl Watcher {
    /// Watch `roots` (files or directories). A file is watched through its directory, so that
    /// editors that replace the file by renaming keep being seen.
    pub fn new(roots: &[PathBuf]) -> notify::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let relevant = match &event {
                    Ok(e) => !matches!(e.kind, notify::EventKind::Access(_)),
                    Err(_) => true,
                };
                if relevant {
                    let _ = tx.send(());
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

    /// Wait for the next burst of changes to end. `None` when the watcher stopped.
    pub async fn changed(&mut self) -> Option<()> {
        self.rx.recv().await?;
        let deadline = Instant::now() + MAX_DELAY;
        loop {
            let quiet = Instant::now() + QUIET;
            match tokio::time::timeout_at(quiet.min(deadline), self.rx.recv()).await {
                Ok(Some(())) if Instant::now() < deadline => continue,
                Ok(None) => return None,
                _ => return Some(()),
            }
        }
    }
}
