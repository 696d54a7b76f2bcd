//! An in-process fake Kubernetes API server for integration tests.
//!
//! It serves plain HTTP on `127.0.0.1:0` and behaves like kube-apiserver where kube-rs and
//! kubectl-like clients depend on it: generic storage for any resource (the built-ins below,
//! plus whatever a `CustomResourceDefinition` adds), one global resourceVersion counter,
//! create/get/update/patch/delete with the real server's `Status` errors (404 NotFound, 409
//! AlreadyExists, 409 Conflict on a stale `metadata.resourceVersion`), `metadata.generation`
//! bumped on spec changes, the `status` subresource, list pagination (`limit`/`continue`)
//! and selectors, watches that resume from a bounded history and answer `410 Gone` (an
//! `ERROR` event, as the real server sends it) once the history is compacted, bookmarks,
//! discovery (plain and aggregated v2) that follows CRDs, and CRDs that become `Established`
//! after a configurable delay.
//!
//! Built-ins registered at start: namespaces, pods, configmaps, secrets, services,
//! serviceaccounts (core v1), deployments (apps/v1), leases (coordination.k8s.io/v1),
//! validating/mutating webhook configurations (admissionregistration.k8s.io/v1) and
//! customresourcedefinitions (apiextensions.k8s.io/v1); the namespaces `default`,
//! `kube-system` and `kube-public` exist. More built-ins: [`FakeApiServer::register`].
//!
//! CRDs must be structural (every field typed, unless `x-kubernetes-preserve-unknown-fields`
//! or `x-kubernetes-int-or-string`), with a schema per version and one storage version;
//! custom resources are pruned to their schema and validated against it (type, `required`,
//! `enum`, `nullable`) with the real server's 422 `Invalid` messages
//! ([`Options::validate_schemas`] turns this off).
//!
//! Where it differs from the real server: no authentication, authorization or admission
//! webhooks; CEL rules, formats, patterns and numeric bounds in schemas are not checked;
//! no conversion webhooks (versions differ only in apiVersion); a strategic merge patch is applied
//! as a merge patch; server-side apply is a create-or-merge without field ownership; list
//! pages are not a snapshot; deleting a namespace deletes its objects at once; no `/openapi`
//! documents (kubectl needs `--validate=false`).
//!
//! Test hooks: [`FakeApiServer::seed`], [`get`](FakeApiServer::get),
//! [`wait_for`](FakeApiServer::wait_for), [`compact`](FakeApiServer::compact) (drop the watch
//! history), [`count`](FakeApiServer::count) (requests by verb and path),
//! [`fail_next`](FakeApiServer::fail_next) (inject errors), [`open_watches`](FakeApiServer::open_watches).
//!
//! ```ignore
//! let api = FakeApiServer::start().await;
//! api.seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                 "metadata": {"name": "c", "namespace": "default"}}));
//! let client = api.client();                       // a kube::Client for it
//! // or run a binary with `KUBECONFIG=api.kubeconfig()`
//! api.fail_next("update", "/api/v1/namespaces/default/configmaps/c", 1, 409);
//! let cm = api.wait_for("configmap c labelled", Duration::from_secs(10), |api| {
//!     api.get("v1", "ConfigMap", Some("default"), "c").filter(|c| c["metadata"]["labels"]["x"] == "y")
//! }).await;
//! assert_eq!(api.count("update", "/api/v1/namespaces/default/configmaps/c"), 2);
//! ```

mod http;
mod schema;
mod select;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::broadcast;

pub use store::ResourceDef;
use store::{ApiError, Notice, Store};

/// Tunables of a [`FakeApiServer`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Time from a CRD's creation to its `NamesAccepted`/`Established` conditions (and to its
    /// resources being served).
    pub crd_establish_delay: Duration,
    /// Events retained for watches to resume from; older resourceVersions get 410 Gone.
    pub history_limit: usize,
    /// Interval of BOOKMARK events on watches that allow them.
    pub bookmark_interval: Duration,
    /// Server-side cap on a watch's duration (the real server's request timeout).
    pub max_watch: Option<Duration>,
    /// Refuse CRDs without a valid structural schema, and prune and validate custom resources
    /// by their schema, as the real server does (on by default).
    pub validate_schemas: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            crd_establish_delay: Duration::from_millis(200),
            history_limit: 1000,
            bookmark_interval: Duration::from_secs(1),
            max_watch: None,
            validate_schemas: true,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// URL path without the query.
    pub path: String,
    /// Raw query string.
    pub query: String,
}

struct Failure {
    verb: String,
    path: String,
    remaining: usize,
    code: u16,
}

pub(crate) struct Shared {
    store: Mutex<Store>,
    tx: broadcast::Sender<Notice>,
    options: Options,
    address: String,
    requests: Mutex<Vec<RecordedRequest>>,
    failures: Mutex<Vec<Failure>>,
    watches: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn record(&self, request: RecordedRequest) {
        self.requests.lock().unwrap().push(request);
    }

    fn injected_failure(&self, verb: &str, path: &str) -> Option<ApiError> {
        let mut failures = self.failures.lock().unwrap();
        let f = failures
            .iter_mut()
            .find(|f| f.remaining > 0 && (f.verb == "*" || f.verb == verb) && f.path == path)?;
        f.remaining -= 1;
        Some(ApiError::for_code(
            f.code,
            format!("injected failure ({} {path})", f.code),
        ))
    }

    /// Starts the establishment timer of a newly created CRD.
    fn after_create(self: &Arc<Shared>, def: &ResourceDef, obj: &Value) {
        if !http::is_crd(def) {
            return;
        }
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("").to_owned();
        let shared = self.clone();
        let delay = self.options.crd_establish_delay;
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            shared.store.lock().unwrap().establish(&name, &uid);
        });
    }

    fn watch_opened(&self, def: &ResourceDef, namespace: Option<&str>) -> String {
        let path = collection_path(def, namespace);
        *self
            .watches
            .lock()
            .unwrap()
            .entry(path.clone())
            .or_default() += 1;
        path
    }

    fn watch_closed(&self, path: &str) {
        if let Some(n) = self.watches.lock().unwrap().get_mut(path) {
            *n = n.saturating_sub(1);
        }
    }
}

/// `/api/v1/pods`, `/apis/G/V/namespaces/NS/plural`.
fn collection_path(def: &ResourceDef, namespace: Option<&str>) -> String {
    let prefix = if def.group.is_empty() {
        format!("/api/{}", def.version)
    } else {
        format!("/apis/{}/{}", def.group, def.version)
    };
    match namespace {
        Some(ns) => format!("{prefix}/namespaces/{ns}/{}", def.plural),
        None => format!("{prefix}/{}", def.plural),
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
    generation: bool,
) -> ResourceDef {
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        status,
        generation,
        builtin: true,
        short_names: Vec::new(),
        categories: Vec::new(),
    }
}

/// A running fake API server; it stops when dropped (with the test's runtime).
pub struct FakeApiServer {
    shared: Arc<Shared>,
    url: String,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeApiServer {
    /// Starts with default [`Options`].
    pub async fn start() -> FakeApiServer {
        FakeApiServer::start_with(Options::default()).await
    }

    /// Starts on 127.0.0.1:0 and writes a kubeconfig for it.
    pub async fn start_with(options: Options) -> FakeApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let url = format!("http://{address}");
        let (tx, _) = broadcast::channel(4096);
        let mut store = Store::new(options.history_limit, tx.clone());
        store.validate_schemas = options.validate_schemas;
        for def in [
            builtin("", "v1", "namespaces", "Namespace", false, true, false),
            builtin("", "v1", "pods", "Pod", true, true, false),
            builtin("", "v1", "configmaps", "ConfigMap", true, false, false),
            builtin("", "v1", "secrets", "Secret", true, false, false),
            builtin("", "v1", "services", "Service", true, true, false),
            builtin(
                "",
                "v1",
                "serviceaccounts",
                "ServiceAccount",
                true,
                false,
                false,
            ),
            builtin("apps", "v1", "deployments", "Deployment", true, true, true),
            builtin(
                "coordination.k8s.io",
                "v1",
                "leases",
                "Lease",
                true,
                false,
                false,
            ),
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "validatingwebhookconfigurations",
                "ValidatingWebhookConfiguration",
                false,
                false,
                true,
            ),
            builtin(
                "admissionregistration.k8s.io",
                "v1",
                "mutatingwebhookconfigurations",
                "MutatingWebhookConfiguration",
                false,
                false,
                true,
            ),
            builtin(
                store::CRD_GROUP,
                "v1",
                store::CRDS,
                "CustomResourceDefinition",
                false,
                true,
                true,
            ),
        ] {
            // kubectl resolves these short names through discovery.
            let short: &[&str] = match def.plural.as_str() {
                "namespaces" => &["ns"],
                "pods" => &["po"],
                "configmaps" => &["cm"],
                "services" => &["svc"],
                "serviceaccounts" => &["sa"],
                "deployments" => &["deploy"],
                "customresourcedefinitions" => &["crd", "crds"],
                _ => &[],
            };
            store.register(ResourceDef {
                short_names: short.iter().map(|s| (*s).to_owned()).collect(),
                ..def
            });
        }
        let namespaces = store.def("", "v1", "namespaces").cloned().unwrap();
        for ns in ["default", "kube-system", "kube-public"] {
            store
                .create(&namespaces, "", json!({"metadata": {"name": ns}}), false)
                .unwrap();
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            tx,
            options,
            address,
            requests: Mutex::new(Vec::new()),
            failures: Mutex::new(Vec::new()),
            watches: Mutex::new(BTreeMap::new()),
        });
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n\
                 users:\n- name: fake\n  user:\n    token: fake-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
                 current-context: fake\n"
            ),
        )
        .unwrap();
        FakeApiServer {
            shared,
            url,
            kubeconfig,
            _dir: dir,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A kubeconfig file pointing at this server (token auth, namespace `default`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kube-rs client for this server.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_namespace = "default".into();
        kube::Client::try_from(config).unwrap()
    }

    /// Serves another resource (e.g. `networking.k8s.io/v1` ingresses).
    pub fn register(&self, def: ResourceDef) {
        self.shared.store.lock().unwrap().register(def);
    }

    /// A built-in resource definition for [`register`](Self::register).
    pub fn builtin_resource(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
    ) -> ResourceDef {
        builtin(group, version, plural, kind, namespaced, false, false)
    }

    /// Current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store.lock().unwrap().resource_version()
    }

    fn def_for(&self, api_version: &str, kind: &str) -> ResourceDef {
        self.shared
            .store
            .lock()
            .unwrap()
            .def_for_kind(api_version, kind)
            .cloned()
            .unwrap_or_else(|| panic!("no resource serves {api_version} {kind}"))
    }

    /// Creates or replaces an object from its `apiVersion`/`kind` (namespace `default` when a
    /// namespaced object names none), keeping its `status`; returns it as stored. CRDs seeded
    /// this way become Established like created ones.
    pub fn seed(&self, obj: Value) -> Value {
        let def = self.def_for(
            obj["apiVersion"].as_str().unwrap_or(""),
            obj["kind"].as_str().unwrap_or(""),
        );
        let existed = {
            let store = self.shared.store.lock().unwrap();
            let ns = if def.namespaced {
                obj["metadata"]["namespace"].as_str().unwrap_or("default")
            } else {
                ""
            };
            store
                .get(&def, ns, obj["metadata"]["name"].as_str().unwrap_or(""))
                .is_ok()
        };
        let stored = self
            .shared
            .store
            .lock()
            .unwrap()
            .seed(&def, obj)
            .unwrap_or_else(|e| panic!("seed: {}", e.message));
        if !existed {
            self.shared.after_create(&def, &stored);
        }
        stored
    }

    /// The object, or `None`.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let def = self.def_for(api_version, kind);
        self.shared
            .store
            .lock()
            .unwrap()
            .get(&def, namespace.unwrap_or(""), name)
            .ok()
    }

    /// Every object of a kind (in one namespace, or all), in list order.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let def = self.def_for(api_version, kind);
        let list = self
            .shared
            .store
            .lock()
            .unwrap()
            .list(&def, namespace, &store::ListOptions::default())
            .unwrap();
        list["items"].as_array().cloned().unwrap_or_default()
    }

    /// Deletes an object as a client would (finalizers respected); `false` if it was missing.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let def = self.def_for(api_version, kind);
        self.shared
            .store
            .lock()
            .unwrap()
            .delete(&def, namespace.unwrap_or(""), name, false)
            .is_ok()
    }

    /// Polls `check` every 20 ms until it returns `Some`, panicking with `what` after `timeout`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&FakeApiServer) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drops the watch history: a watch from any older resourceVersion gets 410 Gone.
    pub fn compact(&self) {
        self.shared.store.lock().unwrap().compact();
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests with `verb` (`*` for any) to exactly `path`.
    pub fn count(&self, verb: &str, path: &str) -> usize {
        self.shared
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| (verb == "*" || r.verb == verb) && r.path == path)
            .count()
    }

    /// Forgets the recorded requests.
    pub fn reset_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// The next `times` requests with `verb` (`*` for any) to exactly `path` fail with `code`
    /// (409 Conflict, 429, 500 InternalError, ...) as a `Status` object.
    pub fn fail_next(&self, verb: &str, path: &str, times: usize, code: u16) {
        self.shared.failures.lock().unwrap().push(Failure {
            verb: verb.to_owned(),
            path: path.to_owned(),
            remaining: times,
            code,
        });
    }

    /// Cancels the failures [`fail_next`](Self::fail_next) has not used up.
    pub fn clear_failures(&self) {
        self.shared.failures.lock().unwrap().clear();
    }

    /// Watches currently open on a collection path (`/api/v1/pods`,
    /// `/apis/G/V/namespaces/NS/plural`).
    pub fn open_watches(&self, path: &str) -> usize {
        self.shared
            .watches
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}
