//! The cluster policy source (`--policy-source cluster`): ConstraintTemplates, constraints,
//! `Config`, `SyncSet` and `ExpansionTemplate` objects read from the API server, as Gatekeeper
//! reads them.
//!
//! Flow: [`watch`] tasks turn each resource's watch into [`watch::Change`]s on one channel; the
//! loop in [`ClusterPolicies::run`] applies a batch of them to its [`State`], then rebuilds the
//! served policy set once if anything changed. A template is checked as Gatekeeper checks it
//! before creating its CRD ([`crd::check_template`]) and compiled on its own
//! ([`PreparedTemplate`], off the async runtime); its constraint CRD is created or updated and
//! awaited until Established by a background task, after which a watch for that kind starts.
//! Deleting a template stops that watch and deletes the CRD. Each constraint is validated
//! against its template when it arrives. The rebuild assembles what compiled
//! ([`PolicyBundle::from_prepared`], no compiling) and swaps it into the [`PolicyStore`]
//! atomically, so a bad template or constraint is reported on its own status
//! ([`status::StatusWriter`]) and never keeps the others from being enforced; a template that
//! stops compiling keeps its last good version serving.
//!
//! Mutators (`Assign`, `AssignMetadata`, `ModifySet`, `AssignImage`) are watched and validated
//! by [`mutators`] and served on `/v1/mutate` with the same policy set.
//!
//! Readiness follows Gatekeeper's tracker: ready once every template present in the first list
//! has been handled (compiled and its constraints listed, or failed), Config, SyncSet,
//! ExpansionTemplate and the four mutator kinds are listed, and that set is serving; then it
//! stays ready.

pub mod audit;
pub mod crd;
pub mod mutators;
pub mod status;
pub mod validate;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use policy_core::gatekeeper::{
    Constraint, Engines, ExpansionTemplate, IgnoredDocument, PolicyBundle, PreparedTemplate,
    SyncConfig,
};
use serde_json::{Value, json};
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::gatekeeper::GatekeeperPolicies;
use crate::metrics::{Metrics, Outcome, ReloadLabels};
use crate::policy::PolicyStore;
use status::{StatusWriter, Target, Update};
use watch::{AbortOnDrop, Change, Source};

/// Longest wait for a constraint CRD to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings of the cluster policy source.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Engines templates run on.
    pub engines: Engines,
    /// This pod's id in `status.byPod` (`--pod-name`).
    pub pod: String,
    /// The namespace regard runs in (`--namespace`): its `Config` named `config` is read.
    pub namespace: String,
    /// The operations this pod runs, as `status.byPod[].operations` lists them.
    pub operations: Vec<String>,
}

/// The compiled templates by constraint kind, for the admission self-validation.
pub type Catalog = Arc<RwLock<BTreeMap<String, PreparedTemplate>>>;

#[derive(Debug)]
struct TemplateEntry {
    uid: String,
    generation: i64,
    kind: String,
    /// The last version that compiled (kept serving when a newer one fails).
    prepared: Option<PreparedTemplate>,
    /// `(code, message)` of the latest version's failure.
    error: Option<(&'static str, String)>,
    /// The constraint CRD is Established.
    crd_ready: bool,
    /// The latest version has been handled (failed, or its CRD is ready).
    settled: bool,
    /// The constraints watch, once the CRD is ready.
    watcher: Option<AbortOnDrop>,
    /// The constraints watch has listed once.
    constraints_listed: bool,
    last_status: Option<Value>,
}

#[derive(Debug)]
struct ConstraintEntry {
    doc: regorus::Value,
    uid: String,
    generation: i64,
    loaded: Result<Constraint, String>,
    last_status: Option<Value>,
}

/// What the controller knows.
#[derive(Debug, Default)]
struct State {
    templates: BTreeMap<String, TemplateEntry>,
    /// By (kind, name).
    constraints: BTreeMap<(String, String), ConstraintEntry>,
    /// Config, SyncSet and ExpansionTemplate documents that passed their checks, by source
    /// and name.
    others: BTreeMap<(Source, String), (String, regorus::Value)>,
    /// Sources listed at least once (Config, SyncSet, ExpansionTemplate).
    listed: BTreeSet<Source>,
    /// Template names present in the first list: readiness waits for them.
    expected: Option<BTreeSet<String>>,
    mutators: mutators::MutatorSet,
    dirty: bool,
}

fn meta_str<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn generation(v: &Value) -> i64 {
    v.get("metadata")
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn to_rego(v: &Value) -> Option<regorus::Value> {
    regorus::Value::from_json_str(&v.to_string()).ok()
}

/// The message of a policy-core error without the file and resource prefix.
fn core_message(e: &policy_core::Error) -> String {
    match e {
        policy_core::Error::Template { message, .. }
        | policy_core::Error::Constraint { message, .. } => message.clone(),
        policy_core::Error::ParametersSchema { field, message, .. } if field.is_empty() => {
            message.clone()
        }
        policy_core::Error::ParametersSchema { field, message, .. } => {
            format!("spec.parameters{field}: {message}")
        }
        other => other.to_string(),
    }
}

/// The cluster policy source. See the module documentation.
pub struct ClusterPolicies {
    client: Client,
    store: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    settings: Settings,
    ready: Arc<AtomicBool>,
    status: StatusWriter,
    catalog: Catalog,
}

impl std::fmt::Debug for ClusterPolicies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPolicies")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClusterPolicies {
    /// A source feeding `store` from the cluster behind `client`.
    pub fn new(
        client: Client,
        store: Arc<PolicyStore>,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Self {
        let status = StatusWriter::new(settings.pod.clone());
        ClusterPolicies {
            client,
            store,
            metrics,
            settings,
            ready: Arc::new(AtomicBool::new(false)),
            status,
            catalog: Catalog::default(),
        }
    }

    /// True once the policies present at start are loaded (and from then on).
    pub fn ready_flag(&self) -> Arc<AtomicBool> {
        self.ready.clone()
    }

    /// The status queue (the audit writes through it too).
    pub fn status_writer(&self) -> StatusWriter {
        self.status.clone()
    }

    /// The compiled templates by kind.
    pub fn catalog(&self) -> Catalog {
        self.catalog.clone()
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let _status = AbortOnDrop(tokio::spawn(self.status.clone().run(self.client.clone())));
        let _watches: Vec<AbortOnDrop> = [
            Source::Templates,
            Source::Configs,
            Source::SyncSets,
            Source::Expansions,
        ]
        .into_iter()
        .chain(mutators::SOURCES)
        .map(|s| watch::spawn(self.client.clone(), s, tx.clone()))
        .collect();
        let mut state = State::default();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            for change in batch {
                self.apply(&mut state, change, &tx).await;
            }
            if state.dirty {
                state.dirty = false;
                self.rebuild(&mut state).await;
            }
            if !self.ready.load(Ordering::Acquire) && is_satisfied(&state) {
                tracing::info!(
                    templates = state.templates.len(),
                    constraints = state.constraints.len(),
                    "cluster policies loaded; ready"
                );
                self.ready.store(true, Ordering::Release);
            }
        }
    }

    async fn apply(&self, state: &mut State, change: Change, tx: &UnboundedSender<Change>) {
        match change {
            change @ (Change::Listed(Source::Mutators(_), _)
            | Change::Applied(Source::Mutators(_), _)
            | Change::Deleted(Source::Mutators(_), _)) => {
                state.dirty |= state.mutators.apply(change);
            }
            Change::Listed(Source::Templates, docs) => {
                let names: BTreeSet<String> = docs
                    .iter()
                    .map(|d| meta_str(d, "name").to_owned())
                    .collect();
                let gone: Vec<String> = state
                    .templates
                    .keys()
                    .filter(|n| !names.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    self.template_deleted(state, &name);
                }
                for doc in docs {
                    self.template_applied(state, doc, tx).await;
                }
                state.expected.get_or_insert(names);
            }
            Change::Applied(Source::Templates, doc) => self.template_applied(state, doc, tx).await,
            Change::Deleted(Source::Templates, doc) => {
                self.template_deleted(state, meta_str(&doc, "name"));
            }
            Change::CrdReady { template, uid } => {
                let Some(entry) = state.templates.get_mut(&template) else {
                    return;
                };
                if entry.uid != uid {
                    return;
                }
                entry.crd_ready = true;
                entry.settled = true;
                if entry.watcher.is_none() {
                    tracing::info!(kind = %entry.kind, "constraint CRD established; watching its constraints");
                    entry.watcher = Some(watch::spawn(
                        self.client.clone(),
                        Source::Constraints(entry.kind.clone()),
                        tx.clone(),
                    ));
                }
                self.template_status(&template, entry);
            }
            Change::CrdFailed {
                template,
                uid,
                message,
            } => {
                let Some(entry) = state.templates.get_mut(&template) else {
                    return;
                };
                if entry.uid != uid {
                    return;
                }
                tracing::error!(template = %template, %message, "constraint CRD not created");
                entry.error = Some(("create_error", message));
                entry.settled = true;
                self.template_status(&template, entry);
            }
            Change::Listed(Source::Constraints(kind), docs) => {
                state.constraints.retain(|(k, _), _| *k != kind);
                for doc in docs {
                    self.constraint_applied(state, &kind, &doc);
                }
                if let Some(t) = state.templates.values_mut().find(|t| t.kind == kind) {
                    t.constraints_listed = true;
                }
                state.dirty = true;
            }
            Change::Applied(Source::Constraints(kind), doc) => {
                self.constraint_applied(state, &kind, &doc);
                state.dirty = true;
            }
            Change::Deleted(Source::Constraints(kind), doc) => {
                state
                    .constraints
                    .remove(&(kind, meta_str(&doc, "name").to_owned()));
                state.dirty = true;
            }
            Change::Listed(source, docs) => {
                state.others.retain(|(s, _), _| *s != source);
                for doc in docs {
                    self.other_applied(state, &source, &doc);
                }
                state.listed.insert(source);
                state.dirty = true;
            }
            Change::Applied(source, doc) => {
                self.other_applied(state, &source, &doc);
                state.dirty = true;
            }
            Change::Deleted(source, doc) => {
                state.others.remove(&(source, other_key(&doc)));
                state.dirty = true;
            }
        }
    }

    async fn template_applied(&self, state: &mut State, doc: Value, tx: &UnboundedSender<Change>) {
        let name = meta_str(&doc, "name").to_owned();
        let uid = meta_str(&doc, "uid").to_owned();
        let generation = generation(&doc);
        if let Some(e) = state.templates.get(&name)
            && e.uid == uid
            && e.generation == generation
        {
            // Only metadata or status changed (our own status writes land here).
            return;
        }
        let mut entry = match state.templates.remove(&name) {
            Some(old) if old.uid == uid => old,
            Some(old) => {
                // Deleted and created again between two events: start over.
                self.forget_kind(state, &old.kind);
                new_entry(&uid)
            }
            None => new_entry(&uid),
        };
        entry.generation = generation;
        entry.settled = false;
        entry.error = None;
        match crd::check_template(&doc) {
            Err(message) => {
                tracing::error!(template = %name, %message, "ConstraintTemplate rejected");
                entry.error = Some(("create_error", message));
                entry.settled = true;
            }
            Ok(names) => {
                if !entry.kind.is_empty() && entry.kind != names.kind {
                    let old = std::mem::take(&mut entry.kind);
                    entry.watcher = None;
                    entry.crd_ready = false;
                    entry.constraints_listed = false;
                    self.forget_kind(state, &old);
                }
                entry.kind = names.kind.clone();
                let source = format!("constrainttemplate/{name}");
                let compiled = match to_rego(&doc) {
                    Some(v) => tokio::task::spawn_blocking(move || {
                        PreparedTemplate::compile(&source, &v).map_err(|e| core_message(&e))
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("compiler failed: {e}"))),
                    None => Err("not representable as JSON".to_owned()),
                };
                match compiled {
                    Err(message) => {
                        tracing::error!(template = %name, %message, "ConstraintTemplate does not compile");
                        entry.error =
                            Some(("ingest_error", format!("Could not ingest Rego: {message}")));
                        entry.settled = true;
                    }
                    Ok(prepared) => {
                        self.catalog
                            .write()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(names.kind.clone(), prepared.clone());
                        entry.prepared = Some(prepared);
                        let crd = crd::constraint_crd(&doc, &names, Some((&name, &uid)));
                        tokio::spawn(ensure_crd(
                            self.client.clone(),
                            crd,
                            name.clone(),
                            uid.clone(),
                            tx.clone(),
                        ));
                        // Constraints already loaded are checked again against the new version.
                        self.revalidate(state, &names.kind, &entry);
                    }
                }
            }
        }
        if entry.settled {
            self.template_status(&name, &mut entry);
        }
        state.templates.insert(name, entry);
        state.dirty = true;
    }

    fn template_deleted(&self, state: &mut State, name: &str) {
        let Some(entry) = state.templates.remove(name) else {
            return;
        };
        tracing::info!(template = %name, kind = %entry.kind, "ConstraintTemplate deleted; removing its CRD");
        self.forget_kind(state, &entry.kind);
        if !entry.kind.is_empty() {
            let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
            let crd_name = crd::crd_name(&entry.kind);
            tokio::spawn(async move {
                match api.delete(&crd_name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(error) => {
                        tracing::warn!(crd = %crd_name, %error, "deleting the constraint CRD failed")
                    }
                }
            });
        }
        state.dirty = true;
    }

    /// Drops the constraints of `kind` and its compiled template.
    fn forget_kind(&self, state: &mut State, kind: &str) {
        state.constraints.retain(|(k, _), _| k != kind);
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(kind);
    }

    fn revalidate(&self, state: &mut State, kind: &str, entry: &TemplateEntry) {
        let Some(prepared) = &entry.prepared else {
            return;
        };
        for ((k, name), c) in state.constraints.iter_mut() {
            if k == kind {
                c.loaded = prepared
                    .constraint(&format!("{}/{name}", kind.to_lowercase()), &c.doc)
                    .map_err(|e| core_message(&e));
            }
        }
    }

    fn constraint_applied(&self, state: &mut State, kind: &str, doc: &Value) {
        let name = meta_str(doc, "name").to_owned();
        let Some(rego) = to_rego(doc) else {
            return;
        };
        let prepared = state
            .templates
            .values()
            .find(|t| t.kind == kind)
            .and_then(|t| t.prepared.as_ref());
        let loaded = match prepared {
            Some(p) => p
                .constraint(&format!("{}/{name}", kind.to_lowercase()), &rego)
                .map_err(|e| core_message(&e)),
            None => Err(format!(
                "no compiled ConstraintTemplate defines kind {kind}"
            )),
        };
        if let Err(message) = &loaded {
            tracing::error!(kind, constraint = %name, %message, "constraint rejected");
        }
        let key = (kind.to_owned(), name);
        let last_status = state.constraints.remove(&key).and_then(|c| c.last_status);
        state.constraints.insert(
            key,
            ConstraintEntry {
                doc: rego,
                uid: meta_str(doc, "uid").to_owned(),
                generation: generation(doc),
                loaded,
                last_status,
            },
        );
    }

    fn other_applied(&self, state: &mut State, source: &Source, doc: &Value) {
        let name = other_key(doc);
        let Some(rego) = to_rego(doc) else {
            return;
        };
        let origin = format!("{}/{name}", source.resource().plural);
        let checked = match source {
            Source::Configs
                if meta_str(doc, "name") != "config"
                    || meta_str(doc, "namespace") != self.settings.namespace =>
            {
                tracing::info!(config = %name, namespace = %self.settings.namespace, "ignoring a Config that is not `config` in regard's namespace");
                state.others.remove(&(source.clone(), name));
                return;
            }
            Source::Expansions => ExpansionTemplate::from_value(&origin, &rego).map(|_| ()),
            _ => SyncConfig::from_documents(&[IgnoredDocument {
                source: origin.clone(),
                value: rego.clone(),
            }])
            .map(|_| ()),
        };
        match checked {
            Ok(()) => {
                state.others.insert((source.clone(), name), (origin, rego));
            }
            Err(error) => {
                tracing::error!(object = %origin, %error, "ignored");
                state.others.remove(&(source.clone(), name));
            }
        }
    }

    /// Queues the template's `byPod` entry when it changed.
    fn template_status(&self, name: &str, entry: &mut TemplateEntry) {
        let mut pod = json!({
            "id": self.settings.pod,
            "templateUID": entry.uid,
            "operations": self.settings.operations,
            "observedGeneration": entry.generation,
        });
        if let (Some((code, message)), Some(map)) = (&entry.error, pod.as_object_mut()) {
            map.insert(
                "errors".to_owned(),
                json!([{"code": code, "message": message}]),
            );
        }
        if entry.last_status.as_ref() != Some(&pod) {
            entry.last_status = Some(pod.clone());
            self.status.send(Target::template(name), Update::ByPod(pod));
        }
    }

    async fn rebuild(&self, state: &mut State) {
        let started = Instant::now();
        let templates: Vec<PreparedTemplate> = state
            .templates
            .values()
            .filter_map(|t| t.prepared.clone())
            .collect();
        let constraints: Vec<Constraint> = state
            .constraints
            .values()
            .filter_map(|c| c.loaded.as_ref().ok().cloned())
            .collect();
        let mut others: Vec<(String, regorus::Value)> = state.others.values().cloned().collect();
        others.extend(state.mutators.documents());
        let (store, engines) = (self.store.clone(), self.settings.engines);
        let built = tokio::task::spawn_blocking(move || {
            let bundle = PolicyBundle::from_prepared(templates, constraints, others)
                .map_err(|e| e.to_string())?;
            let counts = (bundle.template_count(), bundle.constraint_count());
            store.replace(Arc::new(GatekeeperPolicies::quiet(bundle, engines)));
            Ok::<_, String>(counts)
        })
        .await
        .unwrap_or_else(|e| Err(format!("policy rebuild failed: {e}")));
        match built {
            Ok((templates, constraints)) => {
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
                    templates,
                    constraints,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cluster policy set rebuilt"
                );
            }
            Err(error) => {
                self.metrics
                    .policy_reloads
                    .get_or_create(&ReloadLabels {
                        result: Outcome::failure,
                    })
                    .inc();
                tracing::error!(%error, "cluster policy set rebuild failed; keeping the last one");
                return;
            }
        }
        state.mutators.report(
            &self.status,
            &self.metrics,
            &self.settings.pod,
            &self.settings.operations,
        );
        let served: BTreeSet<String> = state
            .templates
            .values()
            .filter(|t| t.prepared.is_some())
            .map(|t| t.kind.clone())
            .collect();
        for ((kind, name), c) in state.constraints.iter_mut() {
            let enforced = c.loaded.is_ok() && served.contains(kind);
            let mut pod = json!({
                "id": self.settings.pod,
                "constraintUID": c.uid,
                "operations": self.settings.operations,
                "enforced": enforced,
                "observedGeneration": c.generation,
            });
            if let (Err(message), Some(map)) = (&c.loaded, pod.as_object_mut()) {
                map.insert(
                    "errors".to_owned(),
                    json!([{"message": format!("could not cache constraint: {message}")}]),
                );
            }
            if c.last_status.as_ref() != Some(&pod) {
                c.last_status = Some(pod.clone());
                self.status
                    .send(Target::constraint(kind, name), Update::ByPod(pod));
            }
        }
    }
}

fn new_entry(uid: &str) -> TemplateEntry {
    TemplateEntry {
        uid: uid.to_owned(),
        generation: 0,
        kind: String::new(),
        prepared: None,
        error: None,
        crd_ready: false,
        settled: false,
        watcher: None,
        constraints_listed: false,
        last_status: None,
    }
}

/// `namespace/name` (Config is namespaced) or `name`.
fn other_key(doc: &Value) -> String {
    match meta_str(doc, "namespace") {
        "" => meta_str(doc, "name").to_owned(),
        ns => format!("{ns}/{}", meta_str(doc, "name")),
    }
}

/// Gatekeeper's readiness expectations, met.
fn is_satisfied(state: &State) -> bool {
    let Some(expected) = &state.expected else {
        return false;
    };
    let others = [Source::Configs, Source::SyncSets, Source::Expansions];
    if !others.iter().all(|s| state.listed.contains(s))
        || !state.mutators.is_listed()
        || state.dirty
    {
        return false;
    }
    expected.iter().all(|name| match state.templates.get(name) {
        // Deleted since: nothing to wait for.
        None => true,
        Some(t) => t.settled && (t.prepared.is_none() || !t.crd_ready || t.constraints_listed),
    })
}

/// Creates or updates a constraint CRD and waits until it is Established; reports the outcome.
async fn ensure_crd(
    client: Client,
    crd: Value,
    template: String,
    uid: String,
    tx: UnboundedSender<Change>,
) {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let result = async {
        let mut desired: CustomResourceDefinition =
            serde_json::from_value(crd).map_err(|e| e.to_string())?;
        let name = desired.metadata.name.clone().unwrap_or_default();
        match api.get_opt(&name).await.map_err(|e| e.to_string())? {
            None => {
                api.create(&PostParams::default(), &desired)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Some(current) => {
                desired.metadata.resource_version = current.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &desired)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        tokio::time::timeout(
            ESTABLISH_TIMEOUT,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| format!("not Established after {ESTABLISH_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())?;
        Ok::<(), String>(())
    }
    .await;
    let change = match result {
        Ok(()) => Change::CrdReady { template, uid },
        Err(e) => Change::CrdFailed {
            template,
            uid,
            message: format!("Could not create CRD: {e}"),
        },
    };
    let _ = tx.send(change);
}
