//! Filesystem change notifications (inotify on Linux, through the `notify` crate) that wake the
//! reload loops at once, so a new policy file or certificate is picked up in a fraction of a
//! second rather than at the next poll.
//!
//! The events only say "look now": what changed is still decided by the loops' fingerprints of
//! the files, and polling every `--reload-interval` stays, for filesystems that deliver no events
//! and for a watch that could not be set up (both are logged, nothing fails). Watching a
//! directory (not the files) is what catches Kubernetes' volume updates, which swap a `..data`
//! symlink in the mounted directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// How long a loop waits after an event before it reads the files, so that a writer that
/// replaces several files (a certificate and its key, a directory of policies) is done.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Keeps a watch alive; dropping it stops the events.
pub struct FileEvents {
    _watcher: Option<RecommendedWatcher>,
}

impl std::fmt::Debug for FileEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileEvents")
            .field("active", &self._watcher.is_some())
            .finish()
    }
}

/// Watches `dirs` (`recursive` for each) and wakes `wake` on every event. When the watch cannot
/// be set up, logs why and returns an inactive guard: the caller keeps polling.
pub fn watch(what: &str, dirs: &[(PathBuf, bool)], wake: Arc<Notify>) -> FileEvents {
    let on_event = move |event: notify::Result<notify::Event>| {
        // Errors (e.g. an overflowed event queue) also mean "look now".
        if event.as_ref().map_or(true, |e| !e.kind.is_access()) {
            wake.notify_one();
        }
    };
    let watcher = notify::recommended_watcher(on_event).and_then(|mut w| {
        for (dir, recursive) in dirs {
            let mode = if *recursive {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            w.watch(dir, mode)?;
        }
        Ok(w)
    });
    match watcher {
        Ok(w) => FileEvents { _watcher: Some(w) },
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the {what} for changes; polling only");
            FileEvents { _watcher: None }
        }
    }
}

/// The directory holding `file` (the current directory for a bare file name).
pub fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Waits for the next poll tick or, sooner, for a change event (then lets the writer settle).
pub async fn next_check(ticker: &mut tokio::time::Interval, wake: &Notify) {
    tokio::select! {
        _ = ticker.tick() => {}
        () = wake.notified() => {
            tokio::time::sleep(SETTLE).await;
            // Events that arrived while settling are covered by the check about to run.
            let _ = tokio::time::timeout(Duration::ZERO, wake.notified()).await;
        }
    }
}
