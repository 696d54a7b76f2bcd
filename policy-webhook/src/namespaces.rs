//! The cluster's Namespaces, for `namespaceSelector` and `input.review.namespaceObject`.
//!
//! An AdmissionRequest names the object's namespace but does not carry the Namespace itself, so
//! a constraint with a `namespaceSelector` cannot be matched from the request alone (policy-core
//! then reports Gatekeeper's "unable to match constraints" violation). Gatekeeper keeps an
//! informer cache of Namespaces; with `--watch-namespaces` the webhook does the same: kube's
//! watcher lists every Namespace, then follows the watch stream (re-listing after a lost watch
//! or an expired resource version, with backoff), and each admission request for a namespaced
//! object gets its Namespace as `namespaceObject` before evaluation.
//!
//! A Namespace created an instant before an object in it may not have reached the cache yet;
//! such a miss is looked up once directly from the API server. Only when the API server does not
//! know the namespace either is the request evaluated without it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt as _};
use regorus::Value;

use crate::metrics::{LookupLabels, LookupResult, Metrics};

/// The Namespaces seen so far, as the JSON the API server sent, converted to Rego values once.
#[derive(Debug, Default)]
pub struct NamespaceCache {
    by_name: RwLock<HashMap<String, Value>>,
    synced: AtomicBool,
}

impl NamespaceCache {
    /// The cached Namespace called `name`.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.read().get(name).cloned()
    }

    /// Whether the first complete list has arrived (`/readyz` waits for it).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Number of cached Namespaces.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no Namespace is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole cache with a complete list and marks it synced.
    pub fn replace(&self, namespaces: HashMap<String, Value>) {
        *self.write() = namespaces;
        self.synced.store(true, Ordering::Release);
    }

    /// Adds or updates one Namespace.
    pub fn insert(&self, name: String, namespace: Value) {
        self.write().insert(name, namespace);
    }

    /// Forgets one Namespace.
    pub fn remove(&self, name: &str) {
        self.write().remove(name);
    }

    // A panic while holding the lock cannot leave the map half-updated (every update is a
    // single map operation), so a poisoned lock is still safe to use.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Value>> {
        self.by_name.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Value>> {
        self.by_name.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The cache plus the API client that fills it.
#[derive(Clone)]
pub struct Namespaces {
    cache: Arc<NamespaceCache>,
    api: Api<Namespace>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespaces")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// Longest wait for the API server when a namespace is not cached yet.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

impl Namespaces {
    /// Namespaces read through `client`.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        Namespaces {
            cache: Arc::new(NamespaceCache::default()),
            api: Api::all(client),
            metrics,
        }
    }

    /// The cache this source fills.
    pub fn cache(&self) -> &Arc<NamespaceCache> {
        &self.cache
    }

    /// Follows the cluster's Namespaces until the task is dropped.
    pub async fn run(self) {
        let stream =
            watcher::watcher(self.api.clone(), watcher::Config::default()).default_backoff();
        let mut stream = std::pin::pin!(stream);
        let mut listing: HashMap<String, Value> = HashMap::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(ns)) => {
                    if let Some(value) = to_value(&ns) {
                        listing.insert(ns.name_any(), value);
                    }
                }
                Ok(Event::InitDone) => {
                    let count = listing.len();
                    self.cache.replace(std::mem::take(&mut listing));
                    tracing::info!(namespaces = count, "namespace cache synced");
                }
                Ok(Event::Apply(ns)) => {
                    if let Some(value) = to_value(&ns) {
                        self.cache.insert(ns.name_any(), value);
                    }
                }
                Ok(Event::Delete(ns)) => self.cache.remove(&ns.name_any()),
                Err(e) => {
                    self.metrics.namespace_watch_errors.inc();
                    tracing::warn!(error = %e, "watching namespaces failed; retrying");
                }
            }
            self.metrics.namespaces_cached.set(self.cache.len() as i64);
        }
    }

    /// The Namespace called `name`: from the cache, or once from the API server when the cache
    /// has not seen it (yet). `None` when neither knows it or the API server did not answer.
    pub async fn lookup(&self, name: &str) -> Option<Value> {
        let (found, result) = match self.cache.get(name) {
            Some(ns) => (Some(ns), LookupResult::cache),
            None => match tokio::time::timeout(LOOKUP_TIMEOUT, self.api.get_opt(name)).await {
                Ok(Ok(Some(ns))) => match to_value(&ns) {
                    Some(value) => {
                        self.cache.insert(name.to_owned(), value.clone());
                        (Some(value), LookupResult::api)
                    }
                    None => (None, LookupResult::error),
                },
                Ok(Ok(None)) => (None, LookupResult::not_found),
                Ok(Err(e)) => {
                    tracing::warn!(namespace = name, error = %e, "looking up a namespace failed");
                    (None, LookupResult::error)
                }
                Err(_) => {
                    tracing::warn!(namespace = name, "looking up a namespace timed out");
                    (None, LookupResult::error)
                }
            },
        };
        self.metrics
            .namespace_lookups
            .get_or_create(&LookupLabels { result })
            .inc();
        found
    }
}

/// The Namespace as a Rego value (`apiVersion` and `kind` included, as Gatekeeper passes it).
fn to_value(ns: &Namespace) -> Option<Value> {
    let json = serde_json::to_string(ns).ok()?;
    Value::from_json_str(&json).ok()
}

/// Sets `request.namespaceObject` to `namespace`, or removes it when there is none: the API
/// server never sends one, so a value in the request did not come from it.
pub fn set_namespace_object(request: &mut Value, namespace: Option<Value>) {
    if let Ok(map) = request.as_object_mut() {
        let key = Value::from("namespaceObject");
        match namespace {
            Some(ns) => {
                map.insert(key, ns);
            }
            None => {
                map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_replaces_updates_and_forgets() {
        let cache = NamespaceCache::default();
        assert!(!cache.is_synced());
        let ns =
            |name: &str| Value::from_json_str(&format!(r#"{{"metadata":{{"name":"{name}"}}}}"#));
        cache.replace(HashMap::from([("a".to_owned(), ns("a").unwrap())]));
        assert!(cache.is_synced());
        cache.insert("b".to_owned(), ns("b").unwrap());
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), Some(ns("b").unwrap()));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn namespace_object_is_set_or_removed() {
        let mut request =
            Value::from_json_str(r#"{"uid":"1","namespaceObject":{"forged":true}}"#).unwrap();
        set_namespace_object(&mut request, None);
        assert_eq!(request, Value::from_json_str(r#"{"uid":"1"}"#).unwrap());
        set_namespace_object(&mut request, Some(Value::from("ns")));
        assert_eq!(
            request,
            Value::from_json_str(r#"{"namespaceObject":"ns","uid":"1"}"#).unwrap()
        );
    }
}
