//! Referential data: objects synced from the cluster into `data.inventory` (`--sync-data`).
//!
//! Templates such as "no two Ingresses share a host" or "every Deployment has a
//! PodDisruptionBudget" look other objects up in `data.inventory`. Gatekeeper fills it from
//! informers for the kinds its `Config` (`spec.sync.syncOnly`) and `SyncSet`s name; here those
//! documents come from the policy set, and for each kind they name a kube watcher lists and
//! follows the objects (discovery resolves the kind's resource name and scope first; a kind the
//! cluster does not serve is logged, counted and retried).
//!
//! Every change marks the data dirty; shortly after (a 200 ms settle, so a burst of events is
//! applied once) the policy set is rebuilt with the whole snapshot as its inventory, off the
//! async runtime, and swapped in atomically ([`PolicyStore::set_synced`]). The `Config`'s
//! `sync` exclusions are applied there. The webhook is ready once every kind has been listed
//! (or found missing from the cluster) and that data is being served.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt as _};
use policy_core::gatekeeper::SyncKind;
use regorus::Value;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, SyncLabels};
use crate::policy::PolicyStore;

/// Wait after a change before rebuilding, so a burst of events is applied once.
const SETTLE: Duration = Duration::from_millis(200);
/// Wait before asking discovery again about a kind the cluster did not serve.
const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

/// One synced kind.
#[derive(Debug, Default)]
struct KindData {
    /// Objects by (namespace, name).
    objects: BTreeMap<(String, String), Value>,
    /// Listed once, or found not to be served: readiness need not wait for it.
    settled: bool,
}

#[derive(Debug, Default)]
struct State {
    kinds: BTreeMap<SyncKind, KindData>,
    /// Changed since the last snapshot was applied.
    dirty: bool,
}

impl State {
    /// Every synced object.
    fn objects(&self) -> Vec<Value> {
        self.kinds
            .values()
            .flat_map(|k| k.objects.values().cloned())
            .collect()
    }
}

/// A read handle on the synced objects (for the audit).
#[derive(Clone, Debug)]
pub struct SyncedObjects {
    state: Arc<Mutex<State>>,
    ready: Arc<AtomicBool>,
}

impl SyncedObjects {
    /// Every synced object, once the sync is ready.
    pub fn snapshot_if_ready(&self) -> Option<Vec<Value>> {
        if !self.ready.load(Ordering::Acquire) {
            return None;
        }
        Some(lock(&self.state).objects())
    }
}

/// Follows the synced kinds and feeds their objects to the [`PolicyStore`].
pub struct DataSync {
    client: Client,
    store: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for DataSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSync")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DataSync {
    /// A sync for the kinds `store`'s policy set names, through `client`.
    pub fn new(client: Client, store: Arc<PolicyStore>, metrics: Arc<Metrics>) -> Self {
        DataSync {
            client,
            store,
            metrics,
            state: Arc::new(Mutex::new(State::default())),
            changed: Arc::new(Notify::new()),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True once every kind the policy set names has been listed (or found missing) and the
    /// data is being served.
    pub fn ready_flag(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// A read handle on the synced objects.
    pub fn objects(&self) -> SyncedObjects {
        SyncedObjects {
            state: self.state.clone(),
            ready: self.ready.clone(),
        }
    }

    /// Runs until the task is dropped: starts and stops a watcher per kind as policy reloads
    /// change the kinds, and applies the data.
    pub async fn run(self) {
        let applier = tokio::spawn(apply_loop(
            self.state.clone(),
            self.changed.clone(),
            self.store.clone(),
            self.ready.clone(),
            self.metrics.clone(),
        ));
        let _applier = AbortOnDrop(applier);
        let mut kinds_rx = self.store.sync_kinds();
        let mut watchers: HashMap<SyncKind, AbortOnDrop> = HashMap::new();
        loop {
            let desired = kinds_rx.borrow_and_update().clone();
            watchers.retain(|kind, _| desired.contains(kind));
            {
                let mut state = lock(&self.state);
                let before = state.kinds.len();
                state.kinds.retain(|kind, _| desired.contains(kind));
                if state.kinds.len() != before {
                    state.dirty = true;
                }
                for kind in &desired {
                    state.kinds.entry(kind.clone()).or_default();
                }
            }
            for kind in desired {
                if let std::collections::hash_map::Entry::Vacant(slot) = watchers.entry(kind) {
                    let kind = slot.key().clone();
                    tracing::info!(kind = %kind, "syncing into data.inventory");
                    slot.insert(AbortOnDrop(tokio::spawn(watch_kind(
                        self.client.clone(),
                        kind,
                        self.state.clone(),
                        self.changed.clone(),
                        self.metrics.clone(),
                    ))));
                }
            }
            self.changed.notify_one();
            if kinds_rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// Aborts the task when dropped (a kind no longer synced, or the sync stopping).
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Every update is a few map operations that cannot be left half done by a panic.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Applies the data whenever it changed, after [`SETTLE`], and marks the sync ready once a
/// policy set is loaded and every kind it names is listed and applied.
async fn apply_loop(
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    store: Arc<PolicyStore>,
    ready: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
) {
    loop {
        changed.notified().await;
        tokio::time::sleep(SETTLE).await;
        let wanted = store.current_sync_kinds();
        let (snapshot, settled) = {
            let mut state = lock(&state);
            let snapshot = state.dirty.then(|| {
                state.dirty = false;
                state.objects()
            });
            // The run loop may not have caught up with the latest load yet.
            let same_kinds = state.kinds.keys().eq(wanted.iter());
            let settled = same_kinds && state.kinds.values().all(|k| k.settled);
            (snapshot, settled)
        };
        if let Some(objects) = snapshot {
            let count = objects.len();
            let store = store.clone();
            let applied = tokio::task::spawn_blocking(move || store.set_synced(Arc::new(objects)));
            if applied.await.is_err() {
                tracing::error!("applying synced data panicked");
                lock(&state).dirty = true;
                continue;
            }
            metrics
                .synced_objects
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if settled && store.is_loaded() && !ready.swap(true, Ordering::AcqRel) {
            tracing::info!("synced data is served");
        }
    }
}

/// Lists and watches one kind, forever.
async fn watch_kind(
    client: Client,
    kind: SyncKind,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    metrics: Arc<Metrics>,
) {
    let labels = SyncLabels {
        kind: kind.to_string(),
    };
    let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
    let resource = loop {
        match kube::discovery::pinned_kind(&client, &gvk).await {
            Ok((resource, _)) => break resource,
            Err(e) => {
                metrics.sync_errors.get_or_create(&labels).inc();
                tracing::warn!(kind = %kind, error = %e, "cannot sync a kind the cluster does not serve; retrying");
                if let Some(data) = lock(&state).kinds.get_mut(&kind)
                    && !data.settled
                {
                    data.settled = true;
                    changed.notify_one();
                }
                tokio::time::sleep(DISCOVERY_RETRY).await;
            }
        }
    };
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: BTreeMap<(String, String), Value> = BTreeMap::new();
    while let Some(event) = stream.next().await {
        let mut state = lock(&state);
        let Some(data) = state.kinds.get_mut(&kind) else {
            return;
        };
        match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                if let Some(value) = to_value(&obj, &resource) {
                    listing.insert(key(&obj), value);
                }
                continue;
            }
            Ok(Event::InitDone) => {
                data.objects = std::mem::take(&mut listing);
                if !data.settled {
                    tracing::info!(kind = %kind, objects = data.objects.len(), "listed");
                }
                data.settled = true;
            }
            Ok(Event::Apply(obj)) => {
                if let Some(value) = to_value(&obj, &resource) {
                    data.objects.insert(key(&obj), value);
                }
            }
            Ok(Event::Delete(obj)) => {
                data.objects.remove(&key(&obj));
            }
            Err(e) => {
                metrics.sync_errors.get_or_create(&labels).inc();
                tracing::warn!(kind = %kind, error = %e, "watching failed; retrying");
                continue;
            }
        }
        state.dirty = true;
        drop(state);
        changed.notify_one();
    }
}

fn key(obj: &DynamicObject) -> (String, String) {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The object as a Rego value with `apiVersion` and `kind` set: list responses leave them out
/// of their items, and `data.inventory` is laid out by them.
fn to_value(obj: &DynamicObject, resource: &ApiResource) -> Option<Value> {
    let mut json = serde_json::to_value(obj).ok()?;
    let map = json.as_object_mut()?;
    map.insert("apiVersion".to_owned(), resource.api_version.clone().into());
    map.insert("kind".to_owned(), resource.kind.clone().into());
    Value::from_json_str(&json.to_string()).ok()
}
