//! The watches behind the cluster policy source: one kube-runtime watcher per resource (the
//! templates, each template's constraint kind, Config, SyncSet, ExpansionTemplate, the four
//! mutator kinds), each turned
//! into [`Change`]s on one channel that the controller loop applies in order.
//!
//! A (re)list is buffered and sent whole at its end ([`Change::Listed`]), so a watch that
//! restarts after `410 Gone` replaces what it knew in one step and loses nothing in between;
//! events after the list arrive one by one. Errors are retried with kube's default backoff.

use futures_util::StreamExt as _;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client};
use policy_core::mutation::{MUTATIONS_GROUP, MutatorKind};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// A watched resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// ConstraintTemplates.
    Templates,
    /// Constraints of one kind.
    Constraints(String),
    /// Gatekeeper `Config` objects.
    Configs,
    /// `SyncSet`s.
    SyncSets,
    /// `ExpansionTemplate`s.
    Expansions,
    /// Mutators of one kind (`mutations.gatekeeper.sh`).
    Mutators(MutatorKind),
}

impl Source {
    /// The API resource watched.
    pub fn resource(&self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Source::Templates => (
                "templates.gatekeeper.sh",
                "v1",
                "ConstraintTemplate".to_owned(),
                "constrainttemplates".to_owned(),
            ),
            Source::Constraints(kind) => (
                super::crd::CONSTRAINT_GROUP,
                super::crd::CONSTRAINT_STORAGE_VERSION,
                kind.clone(),
                kind.to_lowercase(),
            ),
            Source::Configs => (
                "config.gatekeeper.sh",
                "v1alpha1",
                "Config".to_owned(),
                "configs".to_owned(),
            ),
            Source::SyncSets => (
                "syncset.gatekeeper.sh",
                "v1alpha1",
                "SyncSet".to_owned(),
                "syncsets".to_owned(),
            ),
            Source::Expansions => (
                "expansion.gatekeeper.sh",
                "v1alpha1",
                "ExpansionTemplate".to_owned(),
                "expansiontemplate".to_owned(),
            ),
            Source::Mutators(kind) => (
                MUTATIONS_GROUP,
                super::mutators::version(*kind),
                kind.as_str().to_owned(),
                kind.as_str().to_lowercase(),
            ),
        };
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: format!("{group}/{version}"),
            kind,
            plural,
        }
    }
}

/// What a watch saw, or what a background step finished.
#[derive(Debug)]
pub enum Change {
    /// A complete (re)list of a source.
    Listed(Source, Vec<Value>),
    /// An object was added or modified.
    Applied(Source, Value),
    /// An object was deleted.
    Deleted(Source, Value),
    /// A template's constraint CRD exists and is Established.
    CrdReady {
        /// Template name.
        template: String,
        /// Template UID it was made for.
        uid: String,
    },
    /// Creating or updating a template's constraint CRD failed.
    CrdFailed {
        /// Template name.
        template: String,
        /// Template UID it was made for.
        uid: String,
        /// `Could not create CRD: …`.
        message: String,
    },
}

/// Aborts the task when dropped.
#[derive(Debug)]
pub struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The object as JSON with `apiVersion` and `kind` set (list items leave them out).
fn to_json(obj: &DynamicObject, resource: &ApiResource) -> Option<Value> {
    let mut json = serde_json::to_value(obj).ok()?;
    let map = json.as_object_mut()?;
    map.insert("apiVersion".to_owned(), resource.api_version.clone().into());
    map.insert("kind".to_owned(), resource.kind.clone().into());
    Some(json)
}

/// Starts watching `source`, sending its changes to `tx` until dropped.
pub fn spawn(client: Client, source: Source, tx: UnboundedSender<Change>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(run(client, source, tx)))
}

async fn run(client: Client, source: Source, tx: UnboundedSender<Change>) {
    let resource = source.resource();
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = std::pin::pin!(stream);
    let mut listing: Vec<Value> = Vec::new();
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(Event::InitApply(obj)) => {
                listing.extend(to_json(&obj, &resource));
                continue;
            }
            Ok(Event::InitDone) => Change::Listed(source.clone(), std::mem::take(&mut listing)),
            Ok(Event::Apply(obj)) => match to_json(&obj, &resource) {
                Some(v) => Change::Applied(source.clone(), v),
                None => continue,
            },
            Ok(Event::Delete(obj)) => match to_json(&obj, &resource) {
                Some(v) => Change::Deleted(source.clone(), v),
                None => continue,
            },
            Err(error) => {
                tracing::warn!(resource = %resource.plural, %error, "watch failed; retrying");
                continue;
            }
        };
        if tx.send(change).is_err() {
            return;
        }
    }
}
