//! The serving policy set and its reloading.
//!
//! The policy directory is checked when the filesystem reports a change in it ([`crate::fswatch`])
//! and, as a fallback, every interval: its files (names starting with `.` skipped, so
//! a ConfigMap volume's `..data` copies are not read twice; symlinks followed) are hashed, and when
//! the hash changes the whole directory is compiled again off the async runtime. A set that
//! compiles replaces the old one atomically ([`arc_swap`]): requests already evaluating keep the
//! set they started with. A set that fails keeps the last good one, and is logged and counted. The
//! webhook is ready once a first set has loaded.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use policy_core::gatekeeper::{Process, SyncKind, exclusion_namespace};
use tokio::sync::watch;

use crate::metrics::{Metrics, Outcome, ReloadLabels};
use crate::remote::RemoteBundles;
use crate::review::Reviewer;

/// Compiles the policy set (the directory, when there is one, and the documents of remote
/// bundles) into a [`Reviewer`].
pub type Loader = Arc<
    dyn Fn(Option<&Path>, &[(String, regorus::Value)]) -> Result<Arc<dyn Reviewer>, String>
        + Send
        + Sync,
>;

/// A loaded policy set.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled set.
    pub reviewer: Arc<dyn Reviewer>,
}

/// Holds the serving policy set: the compiled policies, with the objects synced from the
/// cluster (if any) as `data.inventory`.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwapOption<Loaded>,
    /// What `current` was built from; updates are serialized by this lock.
    sources: Mutex<Sources>,
    /// The kinds the loaded set asks to sync.
    sync_kinds: watch::Sender<Vec<SyncKind>>,
}

#[derive(Debug, Default)]
struct Sources {
    /// The compiled policies without synced data.
    policies: Option<Arc<dyn Reviewer>>,
    /// Every synced object, before the `Config`'s sync exclusions.
    synced: Option<Arc<Vec<regorus::Value>>>,
}

impl Default for PolicyStore {
    fn default() -> Self {
        PolicyStore {
            current: ArcSwapOption::empty(),
            sources: Mutex::new(Sources::default()),
            sync_kinds: watch::channel(Vec::new()).0,
        }
    }
}

impl PolicyStore {
    /// An empty store (not ready).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store serving `reviewer`.
    pub fn with(reviewer: Arc<dyn Reviewer>) -> Self {
        let store = Self::new();
        store.replace(reviewer);
        store
    }

    /// The serving set, if one has loaded.
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.load_full()
    }

    /// Whether a set has loaded.
    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    /// Serves `reviewer` from now on, with the synced objects (if any) as its inventory.
    /// Compiles when there are synced objects: call it off the async runtime.
    pub fn replace(&self, reviewer: Arc<dyn Reviewer>) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        let kinds = reviewer.sync_kinds().to_vec();
        sources.policies = Some(reviewer);
        self.rebuild(&sources);
        // Every load notifies, changed kinds or not: the data sync's readiness waits for a
        // loaded policy set.
        self.sync_kinds.send_replace(kinds);
    }

    /// Serves the policies with `objects` (everything synced; the policy set's `Config`
    /// exclusions for `sync` are applied here) as `data.inventory`. Compiles: call it off the
    /// async runtime.
    pub fn set_synced(&self, objects: Arc<Vec<regorus::Value>>) {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        sources.synced = Some(objects);
        self.rebuild(&sources);
    }

    /// The kinds the serving policy set asks to sync; notified on every policy load.
    pub fn sync_kinds(&self) -> watch::Receiver<Vec<SyncKind>> {
        self.sync_kinds.subscribe()
    }

    /// The kinds the serving policy set asks to sync, now.
    pub fn current_sync_kinds(&self) -> Vec<SyncKind> {
        self.sync_kinds.borrow().clone()
    }

    fn rebuild(&self, sources: &Sources) {
        let Some(policies) = &sources.policies else {
            return;
        };
        let serving = match &sources.synced {
            None => policies.clone(),
            Some(objects) => {
                let kept: Vec<regorus::Value> = objects
                    .iter()
                    .filter(|o| !policies.is_excluded(Process::Sync, &exclusion_namespace(o)))
                    .cloned()
                    .collect();
                match policies.with_inventory(&kept) {
                    Ok(reviewer) => reviewer,
                    Err(error) => {
                        // Only a template that no longer compiles with data could fail here;
                        // serving without the data is better than not serving.
                        tracing::error!(%error, "applying synced data failed; serving without it");
                        policies.clone()
                    }
                }
            }
        };
        self.current
            .store(Some(Arc::new(Loaded { reviewer: serving })));
    }
}

/// Largest total size of a policy directory that is read.
const MAX_DIR_BYTES: u64 = 256 * 1024 * 1024;

/// Hash of every file's relative path and content under `dir`.
fn fingerprint(dir: &Path) -> Result<u64, String> {
    let mut h = DefaultHasher::new();
    let mut total = 0u64;
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes =
            std::fs::read(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        total = total.saturating_add(bytes.len() as u64);
        if total > MAX_DIR_BYTES {
            return Err(format!(
                "{}: more than {MAX_DIR_BYTES} bytes of files",
                dir.display()
            ));
        }
        entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .hash(&mut h);
        bytes.hash(&mut h);
    }
    Ok(h.finish())
}

/// What one reload attempt did.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadResult {
    /// Nothing changed since the last attempt.
    Unchanged,
    /// A new set is serving.
    Loaded,
    /// The new files were rejected (the previous set, if any, keeps serving).
    Failed,
}

/// Polls a policy directory and keeps a [`PolicyStore`] up to date.
pub struct PolicyWatcher {
    /// `None` when only built-in bundles are served: loaded once.
    dir: Option<PathBuf>,
    loader: Loader,
    store: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    last_attempt: Option<Result<u64, String>>,
    /// `--bundle oci://…` and other remote sources, refreshed on their own schedule.
    remote: Option<RemoteBundles>,
    /// Whether a set was ever loaded (later loads compile on one thread).
    loaded_once: bool,
}

/// The one-thread pool reloads compile on (and a pulled bundle is parsed on);
/// `None` if it cannot be started (reloads then use the shared pool).
pub(crate) fn reload_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|_| "regard-reload".to_owned())
            .build()
            .ok()
    })
    .as_ref()
}

impl std::fmt::Debug for PolicyWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyWatcher")
            .field("dir", &self.dir)
            .field("last_attempt", &self.last_attempt)
            .finish_non_exhaustive()
    }
}

impl PolicyWatcher {
    /// A watcher for `dir` feeding `store`.
    pub fn new(
        dir: Option<PathBuf>,
        loader: Loader,
        store: Arc<PolicyStore>,
        metrics: Arc<Metrics>,
    ) -> Self {
        PolicyWatcher {
            dir,
            loader,
            store,
            metrics,
            last_attempt: None,
            remote: None,
            loaded_once: false,
        }
    }

    /// Also serves the remote bundles of `remote`.
    #[must_use]
    pub fn with_remote(mut self, remote: RemoteBundles) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Checks the directory once and reloads it if it changed.
    pub async fn check(&mut self) -> ReloadResult {
        let dir = self.dir.clone();
        let loader = Arc::clone(&self.loader);
        let (remote_docs, remote_state) = match self.remote.as_mut() {
            None => (Vec::new(), Ok(0)),
            Some(remote) => match remote.refresh().await {
                Ok(()) => (remote.documents(), Ok(remote.generation())),
                Err(e) => (Vec::new(), Err(e)),
            },
        };
        let fp =
            match tokio::task::spawn_blocking(move || dir.as_deref().map_or(Ok(0), fingerprint))
                .await
            {
                Ok(fp) => fp,
                Err(e) => Err(e.to_string()),
            };
        // A new remote candidate is a change as much as a new file is.
        let fp = fp.and_then(|h| {
            let generation = remote_state?;
            let mut hasher = DefaultHasher::new();
            (h, generation).hash(&mut hasher);
            Ok(hasher.finish())
        });
        if self.last_attempt.as_ref() == Some(&fp) {
            return ReloadResult::Unchanged;
        }
        self.last_attempt = Some(fp.clone());
        let loaded = match fp {
            Err(e) => Err(e),
            Ok(_) => {
                let dir = self.dir.clone();
                let first = !self.loaded_once;
                let load = move || loader(dir.as_deref(), &remote_docs);
                match tokio::task::spawn_blocking(move || {
                    // The first set compiles on every core (nothing is served
                    // yet); a reload compiles on one, so that admission keeps
                    // the other cores while a new set is built.
                    match reload_pool().filter(|_| !first) {
                        Some(pool) => pool.install(load),
                        None => load(),
                    }
                })
                .await
                {
                    Ok(r) => r,
                    Err(e) => Err(format!("policy loader failed: {e}")),
                }
            }
        };
        if let Some(remote) = self.remote.as_mut() {
            if loaded.is_ok() {
                remote.promote();
            } else if remote.has_candidates() {
                remote.reject();
            }
        }
        match loaded {
            Ok(reviewer) => {
                self.loaded_once = true;
                let (templates, constraints) =
                    (reviewer.template_count(), reviewer.constraint_count());
                crate::mutate::report(reviewer.mutators(), &self.metrics);
                let store = self.store.clone();
                // With synced data this compiles the inventory in: off the async runtime.
                let _ = tokio::task::spawn_blocking(move || store.replace(reviewer)).await;
                self.metrics
                    .templates
                    .set(i64::try_from(templates).unwrap_or(i64::MAX));
                self.metrics
                    .constraints
                    .set(i64::try_from(constraints).unwrap_or(i64::MAX));
                self.metrics
                    .policy_reloads
                    .get_or_create(&ReloadLabels {
                        result: Outcome::success,
                    })
                    .inc();
                tracing::info!(
                    source = %self.source(),
                    templates,
                    constraints,
                    "policy set loaded"
                );
                ReloadResult::Loaded
            }
            Err(error) => {
                self.metrics
                    .policy_reloads
                    .get_or_create(&ReloadLabels {
                        result: Outcome::failure,
                    })
                    .inc();
                if self.store.is_loaded() {
                    tracing::error!(source = %self.source(), %error, "policy reload failed; keeping the last good policy set");
                } else {
                    tracing::error!(source = %self.source(), %error, "policy load failed; not ready until the policy directory loads");
                }
                ReloadResult::Failed
            }
        }
    }

    fn source(&self) -> String {
        match &self.dir {
            Some(dir) => dir.display().to_string(),
            None => "built-in bundles".to_owned(),
        }
    }

    /// Calls [`PolicyWatcher::check`] every `interval`, and soon after `wake` is notified (a
    /// filesystem event, see [`crate::fswatch`]), forever.
    pub async fn run(mut self, interval: Duration, wake: Arc<tokio::sync::Notify>) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        self.check().await;
        loop {
            crate::fswatch::next_check(&mut ticker, &wake).await;
            self.check().await;
        }
    }
}
