//! Mutators from the cluster: the `Assign`, `AssignMetadata`, `ModifySet` and `AssignImage`
//! objects of `mutations.gatekeeper.sh`, served on `/v1/mutate` with the rest of the cluster
//! policy set.
//!
//! Flow: the four watches ([`SOURCES`]) feed [`MutatorSet::apply`], which validates each
//! object on arrival with policy-core's [`Mutator::from_value`] and keeps it with its outcome.
//! The controller's rebuild passes the documents that validated ([`MutatorSet::documents`])
//! into the policy set, where [`crate::mutate::Mutators`] compiles them for `/v1/mutate`, so
//! an add, update or delete takes effect with the next rebuild, without a restart. After a
//! rebuild, [`MutatorSet::report`] works out the schema conflicts as policy-core reports them
//! ([`MutationSystem::conflicts`]), sets the mutator gauges and queues each mutator's status.
//!
//! Status: Gatekeeper writes one `MutatorPodStatus` object per pod and mutator in
//! `status.gatekeeper.sh` and its `status` operation copies them into the mutator's
//! `status.byPod`. regard has no `status.gatekeeper.sh` CRDs (as for templates and
//! constraints), so it writes the aggregated result directly: this pod's entry in the mutator's
//! `status.byPod`, with Gatekeeper's fields (`id`, `mutatorUID`, `operations`, `enforced`
//! omitted when false, `errors[{type?, message}]` with type `ErrConflictingSchema` for a schema
//! conflict, `observedGeneration`). A mutator that does not validate, or that conflicts, is
//! logged, counted and reported there; the others keep being applied.

use std::collections::{BTreeMap, BTreeSet};

use policy_core::mutation::{
    MUTATIONS_GROUP, MutationSystem, Mutator, MutatorId, MutatorKind, SchemaConflict,
};
use serde_json::{Value, json};

use super::status::{StatusWriter, Target, Update};
use super::watch::{Change, Source};
use super::{generation, meta_str, to_rego};
use crate::metrics::Metrics;

/// Admission-time check of a mutator object (the self-validation of `kubectl apply`): the same
/// validation as when it arrives through the watch, and the same message as its status.
pub fn check(name: &str, object: &regorus::Value) -> Result<(), String> {
    let kind = object["kind"]
        .as_string()
        .map(|k| k.to_lowercase())
        .unwrap_or_default();
    Mutator::from_value(&format!("{kind}/{name}"), object)
        .map(|_| ())
        .map_err(|e| format!("{}: {}", e.field, e.message))
}

/// The watched mutator kinds.
pub const SOURCES: [Source; 4] = [
    Source::Mutators(MutatorKind::Assign),
    Source::Mutators(MutatorKind::AssignImage),
    Source::Mutators(MutatorKind::AssignMetadata),
    Source::Mutators(MutatorKind::ModifySet),
];

/// Gatekeeper's error type for a schema conflict in `MutatorPodStatus`.
pub const CONFLICT_ERROR_TYPE: &str = "ErrConflictingSchema";

/// The API version watched for a kind: the storage version of Gatekeeper's CRD.
pub fn version(kind: MutatorKind) -> &'static str {
    match kind {
        MutatorKind::AssignImage => "v1alpha1",
        MutatorKind::Assign | MutatorKind::AssignMetadata | MutatorKind::ModifySet => "v1",
    }
}

#[derive(Debug)]
struct Entry {
    uid: String,
    generation: i64,
    /// `plural/name`: where the mutator came from, in errors and logs.
    origin: String,
    doc: regorus::Value,
    /// The validated mutator, or the field and message of the refusal.
    compiled: Result<Mutator, String>,
    last_status: Option<Value>,
}

/// The mutators the cluster holds. See the module documentation.
#[derive(Debug, Default)]
pub struct MutatorSet {
    entries: BTreeMap<MutatorId, Entry>,
    /// Kinds listed at least once (readiness waits for all four).
    listed: BTreeSet<MutatorKind>,
    /// The conflicts last logged, so a rebuild for another reason does not log them again.
    logged_conflicts: Vec<SchemaConflict>,
}

impl MutatorSet {
    /// Applies a watch change of one of [`SOURCES`]; true when the served set must be rebuilt.
    /// Other changes are ignored (false).
    pub fn apply(&mut self, change: Change) -> bool {
        match change {
            Change::Listed(Source::Mutators(kind), docs) => {
                let keep: BTreeSet<String> = docs
                    .iter()
                    .map(|d| meta_str(d, "name").to_owned())
                    .collect();
                self.entries
                    .retain(|id, _| id.kind != kind || keep.contains(&id.name));
                for doc in &docs {
                    self.applied(kind, doc);
                }
                self.listed.insert(kind);
                true
            }
            Change::Applied(Source::Mutators(kind), doc) => self.applied(kind, &doc),
            Change::Deleted(Source::Mutators(kind), doc) => {
                let id = MutatorId {
                    kind,
                    name: meta_str(&doc, "name").to_owned(),
                };
                let removed = self.entries.remove(&id).is_some();
                if removed {
                    tracing::info!(mutator = %id, "mutator deleted");
                }
                removed
            }
            _ => false,
        }
    }

    /// Whether every mutator kind has been listed once.
    pub fn is_listed(&self) -> bool {
        SOURCES.iter().all(|s| match s {
            Source::Mutators(kind) => self.listed.contains(kind),
            _ => true,
        })
    }

    /// The documents of the mutators that validated, for the policy set.
    pub fn documents(&self) -> Vec<(String, regorus::Value)> {
        self.entries
            .values()
            .filter(|e| e.compiled.is_ok())
            .map(|e| (e.origin.clone(), e.doc.clone()))
            .collect()
    }

    fn applied(&mut self, kind: MutatorKind, doc: &Value) -> bool {
        let id = MutatorId {
            kind,
            name: meta_str(doc, "name").to_owned(),
        };
        let uid = meta_str(doc, "uid").to_owned();
        let generation = generation(doc);
        if let Some(e) = self.entries.get(&id)
            && e.uid == uid
            && e.generation == generation
        {
            // Only metadata or status changed (our own status writes land here).
            return false;
        }
        let origin = format!("{}/{}", kind.as_str().to_lowercase(), id.name);
        let Some(rego) = to_rego(doc) else {
            return false;
        };
        let compiled = Mutator::from_value(&origin, &rego).map_err(|e| {
            tracing::error!(
                mutator = %id,
                field = %e.field,
                "mutator refused (the others are applied): {}",
                e.message
            );
            format!("{}: {}", e.field, e.message)
        });
        if compiled.is_ok() {
            tracing::info!(mutator = %id, generation, "mutator loaded");
        }
        let last_status = self.entries.remove(&id).and_then(|e| e.last_status);
        self.entries.insert(
            id,
            Entry {
                uid,
                generation,
                origin,
                doc: rego,
                compiled,
                last_status,
            },
        );
        true
    }

    /// After the policy set with [`MutatorSet::documents`] is serving: logs new schema
    /// conflicts, sets the mutator gauges and queues each mutator's `byPod` entry when it
    /// changed. `pod` and `operations` are this pod's id and operations.
    pub fn report(
        &mut self,
        status: &StatusWriter,
        metrics: &Metrics,
        pod: &str,
        operations: &[String],
    ) {
        let system = MutationSystem::from_mutators(
            self.entries
                .values()
                .filter_map(|e| e.compiled.as_ref().ok().cloned())
                .collect(),
        );
        let conflicts = system.conflicts();
        if conflicts != self.logged_conflicts.as_slice() {
            for conflict in conflicts {
                tracing::error!("{conflict}");
            }
            self.logged_conflicts = conflicts.to_vec();
        }
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let refused = self
            .entries
            .values()
            .filter(|e| e.compiled.is_err())
            .count();
        let m = &metrics.mutation;
        m.mutators.set(gauge(
            system
                .mutator_count()
                .saturating_sub(system.conflict_count()),
        ));
        m.mutator_errors.set(gauge(refused));
        m.conflicts.set(gauge(system.conflict_count()));
        for (id, entry) in &mut self.entries {
            let entry_status = pod_status(id, entry, conflicts, pod, operations);
            if entry.last_status.as_ref() != Some(&entry_status) {
                entry.last_status = Some(entry_status.clone());
                status.send(target(id), Update::ByPod(entry_status));
            }
        }
    }
}

/// The status target of a mutator.
fn target(id: &MutatorId) -> Target {
    let resource = Source::Mutators(id.kind).resource();
    Target {
        group: MUTATIONS_GROUP.to_owned(),
        version: resource.version,
        plural: resource.plural,
        kind: resource.kind,
        name: id.name.clone(),
    }
}

/// This pod's `byPod` entry for a mutator, as Gatekeeper's `MutatorPodStatusStatus` serializes
/// (`enforced` and `errors` omitted when false or empty).
fn pod_status(
    id: &MutatorId,
    entry: &Entry,
    conflicts: &[SchemaConflict],
    pod: &str,
    operations: &[String],
) -> Value {
    let mut status = json!({
        "id": pod,
        "mutatorUID": entry.uid,
        "operations": operations,
        "observedGeneration": entry.generation,
    });
    let mine: Vec<String> = conflicts
        .iter()
        .filter(|c| c.mutators.contains(id))
        .map(ToString::to_string)
        .collect();
    let errors = match &entry.compiled {
        Err(message) => Some(json!([{"message": message}])),
        Ok(_) if !mine.is_empty() => {
            Some(json!([{"type": CONFLICT_ERROR_TYPE, "message": mine.join("; ")}]))
        }
        Ok(_) => None,
    };
    if let Some(map) = status.as_object_mut() {
        match errors {
            Some(errors) => {
                map.insert("errors".to_owned(), errors);
            }
            None => {
                map.insert("enforced".to_owned(), Value::Bool(true));
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(name: &str, uid: &str, generation: i64, location: &str, value: Value) -> Value {
        json!({
            "apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
            "metadata": {"name": name, "uid": uid, "generation": generation},
            "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                     "location": location,
                     "parameters": {"assign": {"value": value}}}
        })
    }

    fn ops() -> Vec<String> {
        vec!["webhook".to_owned()]
    }

    /// What `report` queued, as `(Kind/name, update)` in queue order.
    fn statuses(set: &mut MutatorSet) -> Vec<(String, Update)> {
        let writer = StatusWriter::new("regard-0".to_owned());
        set.report(&writer, &Metrics::new(), "regard-0", &ops());
        std::iter::from_fn(|| writer.pop())
            .map(|(target, update)| (format!("{}/{}", target.kind, target.name), update))
            .collect()
    }

    #[test]
    fn listing_validates_each_and_serves_only_the_good_ones() {
        let mut set = MutatorSet::default();
        assert!(!set.is_listed());
        let good = assign(
            "non-root",
            "u1",
            1,
            "spec.securityContext.runAsNonRoot",
            json!(true),
        );
        let bad = assign("labels", "u2", 3, "metadata.labels.team", json!("a"));
        assert!(set.apply(Change::Listed(
            Source::Mutators(MutatorKind::Assign),
            vec![good, bad]
        )));
        for kind in [
            MutatorKind::AssignImage,
            MutatorKind::AssignMetadata,
            MutatorKind::ModifySet,
        ] {
            assert!(!set.is_listed());
            set.apply(Change::Listed(Source::Mutators(kind), vec![]));
        }
        assert!(set.is_listed());
        let docs: Vec<String> = set.documents().into_iter().map(|d| d.0).collect();
        assert_eq!(docs, vec!["assign/non-root".to_owned()]);
        assert_eq!(
            statuses(&mut set),
            vec![
                (
                    "Assign/labels".to_owned(),
                    Update::ByPod(json!({"id": "regard-0", "mutatorUID": "u2",
                        "operations": ["webhook"], "observedGeneration": 3,
                        "errors": [{"message": "spec.location: assign labels can't change metadata"}]}))
                ),
                (
                    "Assign/non-root".to_owned(),
                    Update::ByPod(json!({"id": "regard-0", "mutatorUID": "u1",
                        "operations": ["webhook"], "observedGeneration": 1, "enforced": true}))
                ),
            ]
        );
        // Unchanged: nothing queued again.
        assert_eq!(statuses(&mut set), vec![]);
    }

    #[test]
    fn same_generation_is_ignored_and_delete_removes() {
        let mut set = MutatorSet::default();
        let kind = Source::Mutators(MutatorKind::Assign);
        let doc = assign("a", "u1", 1, "spec.x", json!(1));
        assert!(set.apply(Change::Applied(kind.clone(), doc.clone())));
        assert!(!set.apply(Change::Applied(kind.clone(), doc.clone())));
        let newer = assign("a", "u1", 2, "spec.x", json!(2));
        assert!(set.apply(Change::Applied(kind.clone(), newer)));
        let served = serde_json::to_value(&set.documents()[0].1).unwrap();
        assert_eq!(served["spec"]["parameters"]["assign"]["value"], json!(2));
        // Recreated under the same name: a new uid is a change even at generation 1.
        let recreated = assign("a", "u9", 1, "spec.x", json!(3));
        assert!(set.apply(Change::Applied(kind.clone(), recreated)));
        assert!(set.apply(Change::Deleted(kind.clone(), doc.clone())));
        assert!(!set.apply(Change::Deleted(kind, doc)));
        assert!(set.documents().is_empty());
        // Not a mutator source.
        assert!(!set.apply(Change::Listed(Source::Configs, vec![])));
    }

    #[test]
    fn conflicting_mutators_are_reported_with_gatekeepers_type() {
        let mut set = MutatorSet::default();
        let kind = Source::Mutators(MutatorKind::Assign);
        set.apply(Change::Applied(
            kind.clone(),
            assign("as-object", "u1", 1, "spec.foo.bar", json!(1)),
        ));
        set.apply(Change::Applied(
            kind,
            assign("as-list", "u2", 1, "spec.foo[name: x].bar", json!(1)),
        ));
        let got = statuses(&mut set);
        let message = "the following mutators have conflicting schemas at spec.foo (v1 Pod): \
                       Assign/as-list, Assign/as-object; they are disabled";
        for (i, (name, uid)) in [("as-list", "u2"), ("as-object", "u1")]
            .into_iter()
            .enumerate()
        {
            assert_eq!(
                got[i],
                (
                    format!("Assign/{name}"),
                    Update::ByPod(json!({"id": "regard-0", "mutatorUID": uid,
                        "operations": ["webhook"], "observedGeneration": 1,
                        "errors": [{"type": "ErrConflictingSchema", "message": message}]}))
                )
            );
        }
        assert_eq!(got.len(), 2);
    }
}
