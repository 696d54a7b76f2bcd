//! What a refreshing puller keeps between pulls of one OCI source.
//!
//! `regard-webhook --bundle oci://…` asks the registry for the tag's digest
//! every `--bundle-refresh` and pulls the bundle again whenever the tag
//! moves. Two things need not be redone each time:
//! - the registry client: building one loads and parses the system's root
//!   certificates (most of the CPU of a digest check, measured with perf), and
//!   a kept client also keeps its connections and bearer tokens;
//! - the layers: they are content-addressed, and a new version of a policy
//!   bundle usually changes a few files of many, so a layer whose `sha256`
//!   digest was verified once is taken from here and only the others are
//!   downloaded. The layers of the last two pulls are kept (the bundle being
//!   served and its successor): at most two bundles' worth of bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

/// What pulls of one source keep for the next; clones share it.
#[derive(Debug, Clone, Default)]
pub struct PullCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The client, with the settings it was built for.
    client: Option<(String, oci_client::Client)>,
    blobs: BTreeMap<String, Arc<Vec<u8>>>,
    /// The digests the last completed pull used.
    last: BTreeSet<String>,
    /// The digests the pull before it used.
    before: BTreeSet<String>,
    counts: LayerCounts,
}

/// How many layers pulls took from the registry and from the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerCounts {
    /// Layers downloaded.
    pub fetched: u64,
    /// Layers taken from the cache.
    pub reused: u64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCache")
            .field("client", &self.client.as_ref().map(|(key, _)| key))
            .field("blobs", &self.blobs.keys())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl PullCache {
    /// An empty cache.
    pub fn new() -> PullCache {
        PullCache::default()
    }

    /// The client kept for `key` (the settings it is built from).
    pub(crate) fn client(&self, key: &str) -> Option<oci_client::Client> {
        let inner = self.lock();
        let (k, client) = inner.client.as_ref()?;
        (k == key).then(|| client.clone())
    }

    /// Keeps `client`, built for `key`, for the next pulls.
    pub(crate) fn keep_client(&self, key: &str, client: &oci_client::Client) {
        self.lock().client = Some((key.to_owned(), client.clone()));
    }

    /// Drops the kept client: the next pull builds a new one (after a failed
    /// pull, so that no stale connection or token outlives an error).
    pub fn forget_client(&self) {
        self.lock().client = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The layer with `digest`, if a pull verified it.
    pub(crate) fn get(&self, digest: &str) -> Option<Arc<Vec<u8>>> {
        let mut inner = self.lock();
        let hit = inner.blobs.get(digest).cloned();
        if hit.is_some() {
            inner.counts.reused += 1;
        }
        hit
    }

    /// Keeps a downloaded layer whose bytes were checked against `digest`
    /// (only `sha256:` digests are kept: others were not verified).
    pub(crate) fn insert(&self, digest: &str, data: &[u8]) {
        let mut inner = self.lock();
        inner.counts.fetched += 1;
        if digest.starts_with("sha256:") {
            inner
                .blobs
                .insert(digest.to_owned(), Arc::new(data.to_vec()));
        }
    }

    /// A pull that used `digests` completed: layers neither it nor the pull
    /// before it used are dropped.
    pub(crate) fn finish(&self, digests: BTreeSet<String>) {
        let mut inner = self.lock();
        inner.before = std::mem::replace(&mut inner.last, digests);
        let Inner {
            blobs,
            last,
            before,
            ..
        } = &mut *inner;
        blobs.retain(|d, _| last.contains(d) || before.contains(d));
    }

    /// The counts since the last call, reset.
    pub fn take_counts(&self) -> LayerCounts {
        std::mem::take(&mut self.lock().counts)
    }

    /// How many layers are held.
    pub fn len(&self) -> usize {
        self.lock().blobs.len()
    }

    /// Whether no layer is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(digests: &[&str]) -> BTreeSet<String> {
        digests.iter().map(|d| (*d).to_owned()).collect()
    }

    #[test]
    fn keeps_the_layers_of_the_last_two_pulls() {
        let cache = PullCache::new();
        cache.insert("sha256:a", b"a");
        cache.insert("sha256:b", b"b");
        cache.finish(set(&["sha256:a", "sha256:b"]));
        // The next pull reuses a, downloads c.
        assert_eq!(cache.get("sha256:a").as_deref(), Some(&b"a".to_vec()));
        cache.insert("sha256:c", b"c");
        cache.finish(set(&["sha256:a", "sha256:c"]));
        assert_eq!(cache.len(), 3, "b belongs to the pull before the last");
        assert_eq!(
            cache.take_counts(),
            LayerCounts {
                fetched: 3,
                reused: 1
            }
        );
        assert_eq!(cache.take_counts(), LayerCounts::default());
        // A third pull that uses only c: a stays (the last pull used it), b goes.
        assert!(cache.get("sha256:c").is_some());
        cache.finish(set(&["sha256:c"]));
        assert!(cache.get("sha256:b").is_none());
        assert!(cache.get("sha256:a").is_some());
        cache.finish(set(&["sha256:c"]));
        assert!(cache.get("sha256:a").is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn unverified_digests_are_counted_but_not_kept() {
        let cache = PullCache::new();
        cache.insert("sha512:x", b"x");
        assert!(cache.is_empty());
        assert_eq!(cache.take_counts().fetched, 1);
    }

    #[test]
    fn keeps_the_client_for_its_settings_only() {
        crate::install_crypto();
        let cache = PullCache::new();
        assert!(cache.client("https://r").is_none());
        cache.keep_client("https://r", &oci_client::Client::default());
        assert!(cache.client("https://r").is_some());
        assert!(cache.client("http://r").is_none());
        cache.forget_client();
        assert!(cache.client("https://r").is_none());
    }

    #[test]
    fn clones_share_the_layers() {
        let cache = PullCache::new();
        let other = cache.clone();
        other.insert("sha256:a", b"a");
        drop(other);
        assert!(cache.get("sha256:a").is_some());
    }
}
