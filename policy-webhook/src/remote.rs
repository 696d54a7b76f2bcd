//! Remote policy bundles: `--bundle oci://…` (or an `https://` archive or
//! `git::` source) served beside the policy directory and the built-in
//! bundles.
//!
//! The [`crate::policy::PolicyWatcher`] asks [`RemoteBundles::refresh`] on
//! every check; a refresh is due at start, every `--bundle-refresh`, and on
//! every check until each source has loaded once. For an OCI source the
//! registry is asked for the tag's digest first (a HEAD request) and the
//! bundle is pulled only when it changed; a digest-pinned reference is pulled
//! once. A pulled bundle becomes a *candidate*: the watcher compiles it with
//! everything else, then [`RemoteBundles::promote`]s it, or
//! [`RemoteBundles::reject`]s it and keeps serving the last good set (the
//! rejected digest is not retried until the tag moves). Pulls run on a
//! blocking thread and a one-thread runtime of their own, away from
//! admission traffic; each source keeps its registry client and its last
//! layers between pulls ([`policy_source::PullCache`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use policy_core::gatekeeper::DocumentCache;
use regorus::Value;

use crate::metrics::{LayerLabels, LayerSource, Metrics, Outcome, ReloadLabels};

/// Documents of one bundle, with the files they came from.
type Documents = Vec<(String, Value)>;

#[derive(Debug, Default)]
struct SourceState {
    /// Digest (OCI) or content hash of the serving bundle, and its documents.
    good: Option<(String, Arc<Documents>)>,
    /// A pulled bundle not yet compiled with the rest.
    candidate: Option<(String, Arc<Documents>)>,
    /// The last digest pulled, good or not: not pulled again.
    attempted: Option<String>,
    /// This source's registry client and the layers of its last two pulls:
    /// a digest check reuses the client, a new version of the bundle
    /// downloads only the files that changed.
    cache: policy_source::PullCache,
    /// The files of the last pull and their documents: a new version of the
    /// bundle parses only the files that changed.
    parsed: Arc<DocumentCache>,
}

/// The remote bundle sources and what was last pulled from each.
#[derive(Debug)]
pub struct RemoteBundles {
    sources: Vec<String>,
    options: policy_source::Options,
    refresh: Duration,
    metrics: Arc<Metrics>,
    states: Vec<SourceState>,
    last_refresh: Option<Instant>,
    generation: u64,
}

/// Whether a `--bundle` value names a remote source rather than a built-in bundle.
pub fn is_remote(bundle: &str) -> bool {
    bundle.contains("://") || bundle.contains("::")
}

fn pinned(source: &str) -> bool {
    source.contains("@sha256:")
}

fn is_oci(source: &str) -> bool {
    matches!(
        policy_source::Source::detect(source),
        Ok(policy_source::Source::Oci { .. })
    )
}

/// Pulls `source` and reads its documents; returns (digest or content hash, documents).
fn pull(
    source: &str,
    options: &policy_source::Options,
    parsed: &DocumentCache,
) -> Result<(String, Documents), String> {
    let bundle = pull_runtime(source)?
        .block_on(policy_source::pull_temp(source, options))
        .map_err(|e| e.to_string())?;
    // Parsed on the one reload thread, as a reload compiles: the global pool
    // would take every core from admission while the bundle's YAML is read.
    let read = || parsed.dir_documents(bundle.root());
    let files = match crate::policy::reload_pool() {
        Some(pool) => pool.install(read),
        None => read(),
    }
    .map_err(|e| format!("{source}: {e}"))?;
    let id = match bundle.digest.clone() {
        Some(d) => d,
        None => {
            let mut text = String::new();
            for (rel, docs) in &files {
                for doc in docs.iter() {
                    text.push_str(rel);
                    text.push('\n');
                    text.push_str(&doc.to_string());
                }
            }
            format!("content:{:016x}", {
                use std::hash::{DefaultHasher, Hash, Hasher};
                let mut h = DefaultHasher::new();
                text.hash(&mut h);
                h.finish()
            })
        }
    };
    // Named by the source: the temporary directory is gone after this call.
    let docs = files
        .iter()
        .flat_map(|(rel, docs)| {
            let file = format!("{source}//{rel}");
            docs.iter().map(move |doc| (file.clone(), doc.clone()))
        })
        .collect();
    Ok((id, docs))
}

/// The current digest of an OCI source (a HEAD request).
fn current_digest(source: &str, options: &policy_source::Options) -> Result<String, String> {
    pull_runtime(source)?
        .block_on(policy_source::current_digest(source, options))
        .map_err(|e| e.to_string())
}

/// The runtime pulls and digest checks run on, away from admission's: one
/// thread, for the life of the process, so that the registry client each
/// source keeps (`PullCache`) finds its pooled connections alive; a runtime per
/// call would drop them with it.
fn pull_runtime(source: &str) -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: std::sync::OnceLock<Result<tokio::runtime::Runtime, String>> =
        std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("regard-pull")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| format!("{source}: starting a runtime: {e}"))
}

impl RemoteBundles {
    /// Remote `sources`, refreshed every `refresh`.
    pub fn new(
        sources: Vec<String>,
        options: policy_source::Options,
        refresh: Duration,
        metrics: Arc<Metrics>,
    ) -> RemoteBundles {
        let states = sources.iter().map(|_| SourceState::default()).collect();
        RemoteBundles {
            sources,
            options,
            refresh,
            metrics,
            states,
            last_refresh: None,
            generation: 0,
        }
    }

    /// Changes whenever a new candidate was pulled (or one was rejected).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn count(&self, result: Outcome) {
        self.metrics
            .bundle_pulls
            .get_or_create(&ReloadLabels { result })
            .inc();
    }

    /// Pulls what changed, when a refresh is due. An error means some
    /// source has never loaded: nothing can be served yet.
    pub async fn refresh(&mut self) -> Result<(), String> {
        let complete = self.states.iter().all(|s| s.good.is_some());
        if complete
            && self
                .last_refresh
                .is_some_and(|t| t.elapsed() < self.refresh)
        {
            return Ok(());
        }
        self.last_refresh = Some(Instant::now());
        let mut first_error = None;
        for i in 0..self.sources.len() {
            let Some(source) = self.sources.get(i).cloned() else {
                continue;
            };
            let outcome = self.refresh_one(i, &source).await;
            if let Err(error) = outcome {
                self.count(Outcome::failure);
                let has_good = self.states.get(i).is_some_and(|s| s.good.is_some());
                if has_good {
                    tracing::error!(source = %source, %error, "bundle refresh failed; keeping the last good bundle");
                } else {
                    tracing::error!(source = %source, %error, "bundle pull failed; not ready until it loads");
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn refresh_one(&mut self, i: usize, source: &str) -> Result<(), String> {
        let Some(state) = self.states.get(i) else {
            return Ok(());
        };
        if state.good.is_some() && pinned(source) {
            return Ok(());
        }
        let mut options = self.options.clone();
        options.cache = Some(state.cache.clone());
        if is_oci(source) {
            let (src, options) = (source.to_owned(), options.clone());
            let digest = tokio::task::spawn_blocking(move || current_digest(&src, &options))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .inspect_err(|_| state.cache.forget_client())?;
            let known = state.good.as_ref().map(|(d, _)| d) == Some(&digest)
                || state.attempted.as_ref() == Some(&digest);
            if known {
                return Ok(());
            }
        }
        let src = source.to_owned();
        let parsed = Arc::clone(&state.parsed);
        let pulled = tokio::task::spawn_blocking(move || pull(&src, &options, &parsed))
            .await
            .map_err(|e| e.to_string());
        let counts = state.cache.take_counts();
        for (from, n) in [
            (LayerSource::registry, counts.fetched),
            (LayerSource::cache, counts.reused),
        ] {
            self.metrics
                .bundle_layers
                .get_or_create(&LayerLabels { from })
                .inc_by(n);
        }
        let (id, docs) = pulled
            .and_then(|r| r)
            .inspect_err(|_| state.cache.forget_client())?;
        self.count(Outcome::success);
        let Some(state) = self.states.get_mut(i) else {
            return Ok(());
        };
        if state.good.as_ref().map(|(d, _)| d) == Some(&id) || state.attempted.as_ref() == Some(&id)
        {
            return Ok(());
        }
        tracing::info!(source = %source, digest = %id, documents = docs.len(), "bundle pulled");
        state.attempted = Some(id.clone());
        state.candidate = Some((id, Arc::new(docs)));
        self.generation += 1;
        Ok(())
    }

    /// The documents to compile: each source's candidate, else its good bundle.
    pub fn documents(&self) -> Documents {
        self.states
            .iter()
            .filter_map(|s| s.candidate.as_ref().or(s.good.as_ref()))
            .flat_map(|(_, docs)| docs.iter().cloned())
            .collect()
    }

    /// The candidates compiled: they serve from now on.
    pub fn promote(&mut self) {
        for s in &mut self.states {
            if let Some(c) = s.candidate.take() {
                s.good = Some(c);
            }
        }
    }

    /// The candidates did not compile: drop them (their digests stay
    /// attempted, so they are not pulled again until the tag moves).
    pub fn reject(&mut self) {
        for s in &mut self.states {
            s.candidate = None;
        }
    }

    /// Whether any candidate waits for compilation.
    pub fn has_candidates(&self) -> bool {
        self.states.iter().any(|s| s.candidate.is_some())
    }
}
