//! A set of mutators applied together, as Gatekeeper's mutation system
//! applies them.
//!
//! Mutators are sorted by (kind, name), which is Gatekeeper's order. Before
//! any object is seen, their locations are laid out in a schema tree per
//! group/version/kind/operation; mutators that disagree about a field (one
//! treats it as a list, another as an object; a list keyed by two different
//! fields; an image written where another mutator descends) are disabled and
//! reported as [`SchemaConflict`]s. [`MutationSystem::mutate`] then runs
//! every matching, enabled mutator in order, repeating the pass until the
//! object stops changing, at most one pass more than there are mutators; a
//! set that keeps changing the object is a [`MutationError::NotConverging`]
//! naming the mutators still at work.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use regorus::Value;
use serde_json::Value as Json;

use super::apply::{apply, type_name};
use super::location::PathNode;
use super::mutator::{
    Action, Mutator, MutatorError, MutatorId, MutatorKind, Operation, is_mutator_document,
};
use crate::gatekeeper::{MatchCriteria, Matchable, ResultantHook, SourceType};

/// What the mutation system knows about the request besides the object.
#[derive(Debug, Clone)]
pub struct MutationContext {
    /// The object's Namespace, when known (for `namespaceSelector`).
    pub namespace: Option<Value>,
    /// The request's namespace: set on the object during mutation when the
    /// object has none (as the API server would), then removed again.
    pub request_namespace: Option<String>,
    /// The admission operation (`None`: not an admission request, e.g. the CLI).
    pub operation: Option<Operation>,
    /// `Original` for submitted objects, `Generated` for expansion resultants.
    pub source: SourceType,
    /// The requesting user (only used by external data, which is not supported).
    pub username: Option<String>,
}

impl Default for MutationContext {
    fn default() -> Self {
        MutationContext {
            namespace: None,
            request_namespace: None,
            operation: None,
            source: SourceType::Original,
            username: None,
        }
    }
}

impl MutationContext {
    /// The context gator gives an object outside a cluster: the `Original`
    /// source, no operation, and as Namespace the one among `namespaces`
    /// named by the object (an empty Namespace when the object has no
    /// namespace, a bare `default` when `default` is not among them, none
    /// for other unknown namespaces).
    ///
    /// ```
    /// use policy_core::mutation::MutationContext;
    /// use policy_core::Value;
    /// let pod = Value::from_json_str(r#"{"kind": "Pod", "metadata": {"name": "p", "namespace": "default"}}"#).unwrap();
    /// let ctx = MutationContext::gator(&pod, &[]);
    /// assert_eq!(ctx.namespace.unwrap()["metadata"]["name"], Value::from("default"));
    /// ```
    pub fn gator(object: &Value, namespaces: &[Value]) -> MutationContext {
        let ns = match &object["metadata"]["namespace"] {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let namespace = match ns {
            None => Some(Value::new_object()),
            Some(name) => namespaces
                .iter()
                .find(|n| {
                    n["kind"] == Value::from("Namespace")
                        && n["apiVersion"] == Value::from("v1")
                        && n["metadata"]["name"] == Value::String(name.clone())
                })
                .cloned()
                .or_else(|| {
                    (name.as_ref() == "default").then(|| {
                        Value::from_json_str(r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}"#)
                            .unwrap_or(Value::Undefined)
                    })
                }),
        };
        MutationContext {
            namespace,
            ..MutationContext::default()
        }
    }
}

/// What a mutation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MutationOutcome {
    /// Mutators that wrote during a pass that changed the object, sorted.
    pub applied: Vec<MutatorId>,
    /// Passes run until the object stopped changing; 0 when the first pass changed nothing.
    pub iterations: usize,
}

impl MutationOutcome {
    /// Whether the object was changed.
    pub fn mutated(&self) -> bool {
        self.iterations != 0
    }
}

/// Why an object could not be mutated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MutationError {
    /// The request's object is not a JSON object.
    #[error("cannot mutate: the object is a {got}, not an object")]
    NotAnObject {
        /// Its JSON type.
        got: &'static str,
    },
    /// `spec.match` could not be evaluated (a `namespaceSelector` without the Namespace).
    #[error("matching for mutator {mutator} failed for {object}: {message}")]
    Match {
        /// The mutator.
        mutator: MutatorId,
        /// `Kind namespace/name` of the object.
        object: String,
        /// What went wrong.
        message: String,
    },
    /// A mutator met the object in a shape it cannot write into.
    #[error("mutator {mutator} failed for {object}: {message}")]
    Mutate {
        /// The mutator.
        mutator: MutatorId,
        /// `Kind namespace/name` of the object.
        object: String,
        /// What went wrong.
        message: String,
    },
    /// The mutators kept changing the object.
    #[error("mutation not converging for {object} after {iterations} iterations; still changing it: {}", join(.mutators))]
    NotConverging {
        /// `Kind namespace/name` of the object.
        object: String,
        /// Passes run.
        iterations: usize,
        /// Mutators that changed it in the last pass.
        mutators: Vec<MutatorId>,
    },
}

fn join(ids: &[MutatorId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mutators whose locations disagree about the type of a field; all of them
/// are disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaConflict {
    /// The field, as a path of names (list nodes by their key field).
    pub path: String,
    /// `group/version Kind` entries where the conflict arises.
    pub kinds: Vec<String>,
    /// The mutators, sorted.
    pub mutators: Vec<MutatorId>,
}

impl fmt::Display for SchemaConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the following mutators have conflicting schemas at {} ({}): {}; they are disabled",
            self.path,
            self.kinds.join(", "),
            join(&self.mutators)
        )
    }
}

/// Validated mutators, in application order, with their schema conflicts.
///
/// ```
/// use policy_core::mutation::{MutationContext, MutationSystem};
/// use policy_core::Value;
/// let assign = Value::from_json_str(r#"{"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
///   "metadata": {"name": "nonroot"},
///   "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
///            "location": "spec.securityContext.runAsNonRoot",
///            "parameters": {"assign": {"value": true}}}}"#).unwrap();
/// let (system, errors) = MutationSystem::from_documents(&[("m.yaml".to_owned(), assign)]);
/// assert!(errors.is_empty());
/// let mut pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
/// let outcome = system.mutate(&mut pod, &MutationContext::default()).unwrap();
/// assert_eq!(outcome.iterations, 2);
/// assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MutationSystem {
    mutators: Vec<Mutator>,
    /// Parallel to `mutators`: disabled by a schema conflict.
    disabled: Vec<bool>,
    /// Parallel to `mutators`: `spec.match` is empty (matches every object).
    match_all: Vec<bool>,
    conflicts: Vec<SchemaConflict>,
}

impl MutationSystem {
    /// Reads the mutators among `docs` (other documents are skipped). A
    /// mutator Gatekeeper would refuse is reported and left out; the others
    /// are kept. A later mutator with the same kind and name replaces an earlier one.
    pub fn from_documents(docs: &[(String, Value)]) -> (MutationSystem, Vec<MutatorError>) {
        let mut mutators = Vec::new();
        let mut errors = Vec::new();
        for (file, doc) in docs {
            if !is_mutator_document(doc) {
                continue;
            }
            match Mutator::from_value(file, doc) {
                Ok(m) => mutators.push(m),
                Err(e) => errors.push(e),
            }
        }
        (MutationSystem::from_mutators(mutators), errors)
    }

    /// Builds a system from validated mutators.
    pub fn from_mutators(mutators: Vec<Mutator>) -> MutationSystem {
        let mut by_id: BTreeMap<MutatorId, Mutator> = BTreeMap::new();
        for m in mutators {
            by_id.insert(m.id.clone(), m);
        }
        let mutators: Vec<Mutator> = by_id.into_values().collect();
        let (disabled, conflicts) = schema_conflicts(&mutators);
        let match_all = mutators
            .iter()
            .map(|m| m.match_criteria == MatchCriteria::default())
            .collect();
        MutationSystem {
            mutators,
            disabled,
            match_all,
            conflicts,
        }
    }

    /// Whether a document is a mutator (any kind of `mutations.gatekeeper.sh`).
    pub fn is_mutator(doc: &Value) -> bool {
        is_mutator_document(doc)
    }

    /// The mutators, in application order.
    pub fn mutators(&self) -> &[Mutator] {
        &self.mutators
    }

    /// Number of mutators loaded (including disabled ones).
    pub fn mutator_count(&self) -> usize {
        self.mutators.len()
    }

    /// Whether there are no mutators.
    pub fn is_empty(&self) -> bool {
        self.mutators.is_empty()
    }

    /// Schema conflicts found between the mutators.
    pub fn conflicts(&self) -> &[SchemaConflict] {
        &self.conflicts
    }

    /// Number of mutators disabled by a schema conflict.
    pub fn conflict_count(&self) -> usize {
        self.disabled.iter().filter(|d| **d).count()
    }

    /// Mutates a JSON object in place.
    pub fn mutate(
        &self,
        obj: &mut Json,
        ctx: &MutationContext,
    ) -> Result<MutationOutcome, MutationError> {
        let Json::Object(root) = obj else {
            return Err(MutationError::NotAnObject {
                got: type_name(obj),
            });
        };
        let api_version = root.get("apiVersion").and_then(Json::as_str).unwrap_or("");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        let kind = root
            .get("kind")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_owned();
        let is_namespace = kind == "Namespace" && group.is_empty();
        // The API server fills the namespace from the request; Gatekeeper does
        // the same for the time of the mutation and takes it away afterwards.
        let inject = ctx
            .request_namespace
            .as_deref()
            .filter(|ns| !ns.is_empty() && !is_namespace)
            .filter(|_| {
                root.get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Json::as_str)
                    .is_none_or(str::is_empty)
            });
        let mut restore: Option<(Option<Json>, bool)> = None;
        if let Some(ns) = inject {
            let had_metadata = root.contains_key("metadata");
            let meta = root
                .entry("metadata")
                .or_insert_with(|| Json::Object(serde_json::Map::new()));
            if let Json::Object(m) = meta {
                let previous = m.insert("namespace".to_owned(), Json::from(ns));
                restore = Some((previous, had_metadata));
            }
        }
        let result = self.run(obj, ctx, (&group, &version, &kind), self.mutators.len() + 1);
        if let Some((previous, had_metadata)) = restore
            && let Json::Object(root) = obj
            && let Some(Json::Object(meta)) = root.get_mut("metadata")
        {
            match previous {
                Some(p) => {
                    meta.insert("namespace".to_owned(), p);
                }
                None => {
                    meta.remove("namespace");
                }
            }
            if !had_metadata && meta.is_empty() {
                root.remove("metadata");
            }
        }
        result
    }

    /// A [`ResultantHook`] that mutates each expansion resultant as
    /// `Generated`, in gator's context (see [`MutationContext::gator`]), as
    /// Gatekeeper does before reviewing it.
    pub fn resultant_hook(&self, namespaces: Vec<Value>) -> ResultantHook {
        let system = self.clone();
        ResultantHook(Arc::new(move |r: &mut Value| {
            let ctx = MutationContext {
                source: SourceType::Generated,
                ..MutationContext::gator(r, &namespaces)
            };
            system
                .mutate_value(r, &ctx)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }))
    }

    /// Mutates a regorus value (converted to JSON and back when changed).
    pub fn mutate_value(
        &self,
        obj: &mut Value,
        ctx: &MutationContext,
    ) -> Result<MutationOutcome, MutationError> {
        let mut json = serde_json::to_value(&*obj).unwrap_or(Json::Null);
        let outcome = self.mutate(&mut json, ctx)?;
        if outcome.mutated()
            && let Ok(v) = serde_json::from_value::<Value>(json)
        {
            *obj = v;
        }
        Ok(outcome)
    }

    /// Passes over the mutators until the object stops changing, at most `max_iterations` times.
    fn run(
        &self,
        obj: &mut Json,
        ctx: &MutationContext,
        (group, version, kind): (&str, &str, &str),
        max_iterations: usize,
    ) -> Result<MutationOutcome, MutationError> {
        let mut applied_all: BTreeSet<usize> = BTreeSet::new();
        let mut last_applied = Vec::new();
        let mut projection: Option<Value> = None;
        for iteration in 1..=max_iterations {
            let old = obj.clone();
            let mut applied = Vec::new();
            for (i, m) in self.mutators.iter().enumerate() {
                if self.disabled.get(i).copied().unwrap_or(true) {
                    continue;
                }
                if m.id.kind != MutatorKind::AssignMetadata
                    && !m
                        .apply_to
                        .iter()
                        .any(|a| a.applies(group, version, kind, ctx.operation))
                {
                    continue;
                }
                // Most mutators have no `match`: skip building the matcher's view.
                if self.match_all.get(i).copied() != Some(true) {
                    let target = projection.get_or_insert_with(|| match_projection(obj));
                    let matchable = Matchable {
                        object: target,
                        namespace: ctx.namespace.as_ref(),
                        source: ctx.source,
                        request_namespace: ctx.request_namespace.as_deref().unwrap_or(""),
                    };
                    match m.match_criteria.matches_one(&matchable) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(message) => {
                            return Err(MutationError::Match {
                                mutator: m.id.clone(),
                                object: describe(obj),
                                message,
                            });
                        }
                    }
                }
                match apply(m, obj) {
                    Ok(true) => {
                        applied.push(i);
                        if matches!(m.action, Action::Assign(_))
                            && m.id.kind == MutatorKind::AssignMetadata
                        {
                            // Labels may have changed: later matches must see them.
                            projection = None;
                        }
                    }
                    Ok(false) => {}
                    Err(message) => {
                        return Err(MutationError::Mutate {
                            mutator: m.id.clone(),
                            object: describe(obj),
                            message,
                        });
                    }
                }
            }
            if applied.is_empty() || old == *obj {
                return Ok(MutationOutcome {
                    applied: applied_all
                        .iter()
                        .filter_map(|i| self.mutators.get(*i).map(|m| m.id.clone()))
                        .collect(),
                    iterations: if iteration == 1 { 0 } else { iteration },
                });
            }
            applied_all.extend(applied.iter().copied());
            last_applied = applied;
        }
        Err(MutationError::NotConverging {
            object: describe(obj),
            iterations: max_iterations,
            mutators: last_applied
                .iter()
                .filter_map(|i| self.mutators.get(*i).map(|m| m.id.clone()))
                .collect(),
        })
    }
}

/// The part of the object matching reads (type, name, namespace, labels), as a regorus value.
fn match_projection(obj: &Json) -> Value {
    let mut meta = serde_json::Map::new();
    if let Some(Json::Object(m)) = obj.get("metadata") {
        for k in ["name", "generateName", "namespace", "labels"] {
            if let Some(v) = m.get(k) {
                meta.insert(k.to_owned(), v.clone());
            }
        }
    }
    let mut p = serde_json::Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = obj.get(k) {
            p.insert(k.to_owned(), v.clone());
        }
    }
    p.insert("metadata".to_owned(), Json::Object(meta));
    serde_json::from_value(Json::Object(p)).unwrap_or(Value::Undefined)
}

/// `Kind namespace/name` (or `Kind name`) of an object, for messages.
fn describe(obj: &Json) -> String {
    let kind = obj.get("kind").and_then(Json::as_str).unwrap_or("object");
    let meta = obj.get("metadata");
    let field = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(Json::as_str)
            .unwrap_or("")
    };
    let name = match field("name") {
        "" => field("generateName"),
        n => n,
    };
    match field("namespace") {
        "" => format!("{kind} {name}"),
        ns => format!("{kind} {ns}/{name}"),
    }
}

/// Type of a schema node: what the next step needs the field to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum NodeType {
    Object,
    List,
    /// Assign's terminal: any value.
    Unknown,
    /// ModifySet's terminal.
    Set,
    /// AssignImage's terminal.
    String,
}

#[derive(Debug, Default)]
struct SchemaNode {
    referenced_by: BTreeSet<usize>,
    must_terminate: BTreeSet<usize>,
    children: BTreeMap<String, BTreeMap<NodeType, SchemaNode>>,
}

fn node_type(n: &PathNode) -> NodeType {
    if n.is_list() {
        NodeType::List
    } else {
        NodeType::Object
    }
}

fn node_key(n: &PathNode) -> &str {
    match n {
        PathNode::Object(name) => name,
        PathNode::List { key_field, .. } => key_field,
    }
}

impl SchemaNode {
    fn add(&mut self, id: usize, path: &[PathNode], terminal: NodeType, must_terminate: bool) {
        self.referenced_by.insert(id);
        let Some((head, rest)) = path.split_first() else {
            if must_terminate {
                self.must_terminate.insert(id);
            }
            return;
        };
        let ty = rest.first().map_or(terminal, node_type);
        self.children
            .entry(node_key(head).to_owned())
            .or_default()
            .entry(ty)
            .or_default()
            .add(id, rest, terminal, must_terminate);
    }

    /// Collects the conflicts of every field below this node, with the field path.
    fn collect(&self, path: &str, out: &mut Vec<(String, BTreeSet<usize>)>) {
        for (key, typed) in &self.children {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let typed_count = typed.keys().filter(|t| **t != NodeType::Unknown).count();
            let mut conflicts = BTreeSet::new();
            let mut must_terminate = false;
            let mut has_grandchildren = false;
            for (ty, child) in typed {
                must_terminate |= !child.must_terminate.is_empty();
                has_grandchildren |= !child.children.is_empty();
                if *ty == NodeType::Unknown {
                    continue;
                }
                if typed_count > 1 || (*ty == NodeType::List && child.children.len() > 1) {
                    conflicts.extend(child.referenced_by.iter().copied());
                }
            }
            if must_terminate && has_grandchildren {
                for child in typed.values() {
                    conflicts.extend(child.must_terminate.iter().copied());
                    for grand in child.children.values().flat_map(BTreeMap::values) {
                        conflicts.extend(grand.referenced_by.iter().copied());
                    }
                }
            }
            if !conflicts.is_empty() {
                out.push((here.clone(), conflicts));
            }
            for child in typed.values() {
                child.collect(&here, out);
            }
        }
    }
}

/// Lays the mutators out per group/version/kind/operation and finds the conflicts.
fn schema_conflicts(mutators: &[Mutator]) -> (Vec<bool>, Vec<SchemaConflict>) {
    let mut trees: BTreeMap<(String, String, String, Operation), SchemaNode> = BTreeMap::new();
    for (i, m) in mutators.iter().enumerate() {
        let (terminal, must_terminate) = match &m.action {
            _ if m.id.kind == MutatorKind::AssignMetadata => continue,
            Action::Assign(_) => (NodeType::Unknown, false),
            Action::ModifySet { .. } => (NodeType::Set, false),
            Action::AssignImage { .. } => (NodeType::String, true),
        };
        for a in &m.apply_to {
            for g in &a.groups {
                for v in &a.versions {
                    for k in &a.kinds {
                        for op in a.effective_operations() {
                            trees
                                .entry((g.clone(), v.clone(), k.clone(), op))
                                .or_default()
                                .add(i, m.location.nodes(), terminal, must_terminate);
                        }
                    }
                }
            }
        }
    }
    let mut disabled = vec![false; mutators.len()];
    let mut found: BTreeMap<(String, BTreeSet<usize>), BTreeSet<String>> = BTreeMap::new();
    for ((g, v, k, _), tree) in &trees {
        let mut out = Vec::new();
        tree.collect("", &mut out);
        for (path, ids) in out {
            let gv = if g.is_empty() {
                v.clone()
            } else {
                format!("{g}/{v}")
            };
            found
                .entry((path, ids))
                .or_default()
                .insert(format!("{gv} {k}"));
        }
    }
    let conflicts = found
        .into_iter()
        .map(|((path, ids), kinds)| {
            for i in &ids {
                if let Some(d) = disabled.get_mut(*i) {
                    *d = true;
                }
            }
            SchemaConflict {
                path,
                kinds: kinds.into_iter().collect(),
                mutators: ids
                    .iter()
                    .filter_map(|i| mutators.get(*i).map(|m| m.id.clone()))
                    .collect(),
            }
        })
        .collect();
    (disabled, conflicts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each AssignMetadata's label enables the next one, one per pass; with
    /// fewer passes allowed than needed the error names the last pass's writer.
    #[test]
    fn not_converging_names_the_mutators() {
        let meta = |name: &str, adds: &str, needs: Option<&str>| {
            let mut doc = json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata",
                "metadata": {"name": name},
                "spec": {"location": format!("metadata.labels.{adds}"), "parameters": {"assign": {"value": "y"}}}});
            if let Some(n) = needs {
                doc["spec"]["match"] = json!({"labelSelector": {"matchLabels": {n: "y"}}});
            }
            (
                "m.yaml".to_owned(),
                Value::from_json_str(&doc.to_string()).unwrap(),
            )
        };
        let (s, errors) = MutationSystem::from_documents(&[
            meta("z1", "a", None),
            meta("y2", "b", Some("a")),
            meta("x3", "c", Some("b")),
        ]);
        assert!(errors.is_empty());
        let mut pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"}});
        let err = s
            .run(&mut pod, &MutationContext::default(), ("", "v1", "Pod"), 2)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mutation not converging for Pod n/p after 2 iterations; still changing it: AssignMetadata/y2"
        );
    }
}
