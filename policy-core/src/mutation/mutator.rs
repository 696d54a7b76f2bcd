//! The four mutator kinds of `mutations.gatekeeper.sh`, read from their
//! documents and validated as Gatekeeper validates them.
//!
//! A document is converted once to JSON, each field is read with its path
//! kept for the error message, and the result is a [`Mutator`]: which
//! objects it applies to (`applyTo` and `match`), where it writes (a parsed
//! [`Location`] and its `pathTests`) and what it writes (an [`Action`]).
//! Anything Gatekeeper would refuse is a [`MutatorError`] naming the file,
//! the mutator and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value as Json};

use super::location::{ListKey, Location, PathNode};
use crate::gatekeeper::MatchCriteria;

/// API group of mutators.
pub const MUTATIONS_GROUP: &str = "mutations.gatekeeper.sh";

/// Gatekeeper's limit on a mutator's name.
const MAX_NAME_LEN: usize = 63;

/// A mutator kind. The order is Gatekeeper's application order (kinds sort by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MutatorKind {
    /// Sets a value at a location.
    Assign,
    /// Replaces parts of a container image reference.
    AssignImage,
    /// Adds a label or an annotation.
    AssignMetadata,
    /// Adds values to, or removes values from, a list treated as a set.
    ModifySet,
}

impl MutatorKind {
    /// The kind's name as written in `kind:`.
    pub fn as_str(&self) -> &'static str {
        match self {
            MutatorKind::Assign => "Assign",
            MutatorKind::AssignImage => "AssignImage",
            MutatorKind::AssignMetadata => "AssignMetadata",
            MutatorKind::ModifySet => "ModifySet",
        }
    }

    fn parse(kind: &str) -> Option<MutatorKind> {
        match kind {
            "Assign" => Some(MutatorKind::Assign),
            "AssignImage" => Some(MutatorKind::AssignImage),
            "AssignMetadata" => Some(MutatorKind::AssignMetadata),
            "ModifySet" => Some(MutatorKind::ModifySet),
            _ => None,
        }
    }

    /// API versions Gatekeeper serves for the kind.
    fn versions(&self) -> &'static [&'static str] {
        match self {
            MutatorKind::AssignImage => &["v1alpha1"],
            _ => &["v1", "v1beta1", "v1alpha1"],
        }
    }
}

impl fmt::Display for MutatorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identity of a mutator: kind and name (mutators are cluster-scoped).
/// Sorting ids gives Gatekeeper's application order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MutatorId {
    /// Its kind.
    pub kind: MutatorKind,
    /// `metadata.name`.
    pub name: String,
}

impl fmt::Display for MutatorId {
    /// `Kind/name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl serde::Serialize for MutatorId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A mutator document Gatekeeper would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {kind} {name:?}: {field}: {message}")]
pub struct MutatorError {
    /// The file it came from.
    pub file: String,
    /// Its `kind` as written.
    pub kind: String,
    /// Its `metadata.name`.
    pub name: String,
    /// The field at fault (`spec.location`, `spec.parameters.assign.value`…).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// An admission operation, for `applyTo[].operations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE.
    Update,
    /// DELETE (never mutated).
    Delete,
    /// CONNECT (never mutated).
    Connect,
}

impl Operation {
    /// Parses `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "CREATE" => Some(Operation::Create),
            "UPDATE" => Some(Operation::Update),
            "DELETE" => Some(Operation::Delete),
            "CONNECT" => Some(Operation::Connect),
            _ => None,
        }
    }
}

/// One `applyTo` entry: the exact group × version × kind combinations a
/// mutator may touch, and the operations (empty = CREATE and UPDATE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationApplyTo {
    /// API groups (`""` is core).
    pub groups: Vec<String>,
    /// Versions.
    pub versions: Vec<String>,
    /// Kinds.
    pub kinds: Vec<String>,
    /// CREATE and/or UPDATE; empty or `*` = both.
    pub operations: Vec<Operation>,
}

impl MutationApplyTo {
    /// Whether the entry covers this group/version/kind and operation
    /// (`None` = the operation is not known: every supported one must be covered).
    pub fn applies(&self, group: &str, version: &str, kind: &str, op: Option<Operation>) -> bool {
        self.groups.iter().any(|g| g == group)
            && self.versions.iter().any(|v| v == version)
            && self.kinds.iter().any(|k| k == kind)
            && match op {
                // Unknown operation: every supported one must be covered.
                None => {
                    self.operations.is_empty()
                        || (self.operations.contains(&Operation::Create)
                            && self.operations.contains(&Operation::Update))
                }
                Some(o @ (Operation::Create | Operation::Update)) => {
                    self.operations.is_empty() || self.operations.contains(&o)
                }
                Some(Operation::Delete | Operation::Connect) => false,
            }
    }

    /// The operations this entry mutates on.
    pub(crate) fn effective_operations(&self) -> Vec<Operation> {
        if self.operations.is_empty() {
            vec![Operation::Create, Operation::Update]
        } else {
            self.operations.clone()
        }
    }
}

/// `MustExist` or `MustNotExist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathCondition {
    /// The node must exist for the mutation to happen.
    MustExist,
    /// The node must be absent for the mutation to happen.
    MustNotExist,
}

/// The `pathTests` of a mutator, keyed by the depth of the node they test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathTests {
    by_depth: BTreeMap<usize, PathCondition>,
}

impl PathTests {
    /// Builds the tests for `location`; every sub path must be a prefix of it
    /// and the conditions must not contradict each other.
    pub(crate) fn new(
        location: &Location,
        tests: &[(Location, PathCondition)],
    ) -> Result<PathTests, String> {
        let mut by_depth: BTreeMap<usize, PathCondition> = BTreeMap::new();
        for (sub, cond) in tests {
            if !sub.is_prefix_of(location) {
                return Err(format!(
                    "all subpaths must be a prefix of the `location` value of the mutation: subpath {:?} is not a prefix of location {:?}",
                    sub.to_string(),
                    location.to_string()
                ));
            }
            let Some(depth) = sub.nodes().len().checked_sub(1) else {
                return Err("a pathTest subPath must not be empty".to_owned());
            };
            if let Some(prev) = by_depth.insert(depth, *cond)
                && prev != *cond
            {
                return Err(format!(
                    "conflicting path test conditions: path {:?} is marked both MustExist and MustNotExist",
                    sub.to_string()
                ));
            }
        }
        let lowest_must_not = by_depth
            .iter()
            .find(|(_, c)| **c == PathCondition::MustNotExist)
            .map(|(d, _)| *d);
        let highest_must = by_depth
            .iter()
            .rev()
            .find(|(_, c)| **c == PathCondition::MustExist)
            .map(|(d, _)| *d);
        if let (Some(not), Some(must)) = (lowest_must_not, highest_must)
            && must > not
        {
            return Err(format!(
                "conflicting path test conditions: a node at depth {must} is marked MustExist below a parent at depth {not} marked MustNotExist"
            ));
        }
        Ok(PathTests { by_depth })
    }

    /// Whether the traversal may go on when the node at `depth` exists.
    pub(crate) fn exists_ok(&self, depth: usize) -> bool {
        self.by_depth
            .get(&depth)
            .is_none_or(|c| *c == PathCondition::MustExist)
    }

    /// Whether the traversal may go on when the node at `depth` is missing.
    pub(crate) fn missing_ok(&self, depth: usize) -> bool {
        self.by_depth
            .get(&depth)
            .is_none_or(|c| *c == PathCondition::MustNotExist)
    }
}

/// Where an assigned value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum AssignSource {
    /// `assign.value`: a constant.
    Value(Json),
    /// `assign.fromMetadata.field: name`: the object's name.
    FromName,
    /// `assign.fromMetadata.field: namespace`: the object's namespace.
    FromNamespace,
}

/// `merge` or `prune`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    /// Add the values that are missing.
    Merge,
    /// Remove the values that are present.
    Prune,
}

/// What a mutator writes at its location.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Assign and AssignMetadata: set the value.
    Assign(AssignSource),
    /// ModifySet.
    ModifySet {
        /// Merge or prune.
        operation: SetOperation,
        /// `values.fromList`.
        values: Vec<Json>,
    },
    /// AssignImage: the parts to replace (empty = keep).
    AssignImage {
        /// `assignDomain`.
        domain: String,
        /// `assignPath`.
        path: String,
        /// `assignTag` (with its `:` or `@`).
        tag: String,
    },
}

/// A validated mutator.
#[derive(Debug, Clone)]
pub struct Mutator {
    /// Kind and name.
    pub id: MutatorId,
    /// The file it came from.
    pub file: String,
    /// `spec.applyTo` (empty for AssignMetadata, which applies to every kind).
    pub apply_to: Vec<MutationApplyTo>,
    /// `spec.match`.
    pub match_criteria: MatchCriteria,
    /// `spec.location`.
    pub location: Location,
    /// `spec.parameters.pathTests` (AssignMetadata: an implicit MustNotExist on the location).
    pub path_tests: PathTests,
    /// What it writes.
    pub action: Action,
}

/// Whether a document is in the `mutations.gatekeeper.sh` group.
pub fn is_mutator_document(doc: &regorus::Value) -> bool {
    match &doc["apiVersion"] {
        regorus::Value::String(s) => s.split_once('/').map(|(g, _)| g) == Some(MUTATIONS_GROUP),
        _ => false,
    }
}

/// Reads fields of a JSON document, remembering the path for errors.
struct Reader<'a> {
    file: &'a str,
    kind: &'a str,
    name: &'a str,
}

impl Reader<'_> {
    fn err(&self, field: &str, message: impl Into<String>) -> MutatorError {
        MutatorError {
            file: self.file.to_owned(),
            kind: self.kind.to_owned(),
            name: self.name.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        }
    }

    fn string(&self, v: Option<&Json>, field: &str) -> Result<String, MutatorError> {
        match v {
            None | Some(Json::Null) => Ok(String::new()),
            Some(Json::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.err(field, format!("expected a string, got {other}"))),
        }
    }

    fn list<'j>(&self, v: Option<&'j Json>, field: &str) -> Result<&'j [Json], MutatorError> {
        match v {
            None | Some(Json::Null) => Ok(&[]),
            Some(Json::Array(a)) => Ok(a),
            Some(other) => Err(self.err(field, format!("expected a list, got {other}"))),
        }
    }

    fn object<'j>(
        &self,
        v: Option<&'j Json>,
        field: &str,
    ) -> Result<Option<&'j Map<String, Json>>, MutatorError> {
        match v {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(o)) => Ok(Some(o)),
            Some(other) => Err(self.err(field, format!("expected an object, got {other}"))),
        }
    }

    fn strings(&self, v: Option<&Json>, field: &str) -> Result<Vec<String>, MutatorError> {
        self.list(v, field)?
            .iter()
            .enumerate()
            .map(|(i, x)| self.string(Some(x), &format!("{field}[{i}]")))
            .collect()
    }
}

impl Mutator {
    /// Reads and validates a mutator document (any group member; the caller
    /// checks [`is_mutator_document`]).
    pub fn from_value(file: &str, doc: &regorus::Value) -> Result<Mutator, MutatorError> {
        let json = serde_json::to_value(doc).unwrap_or(Json::Null);
        let kind_str = json.get("kind").and_then(Json::as_str).unwrap_or("");
        let name = json
            .pointer("/metadata/name")
            .and_then(Json::as_str)
            .unwrap_or("");
        let r = Reader {
            file,
            kind: kind_str,
            name,
        };
        let kind = MutatorKind::parse(kind_str).ok_or_else(|| {
            r.err(
                "kind",
                format!(
                    "unknown mutator kind {kind_str:?}: expected Assign, AssignMetadata, ModifySet or AssignImage"
                ),
            )
        })?;
        let api = json.get("apiVersion").and_then(Json::as_str).unwrap_or("");
        let version = api.split_once('/').map(|(_, v)| v).unwrap_or("");
        if !kind.versions().contains(&version) {
            return Err(r.err(
                "apiVersion",
                format!(
                    "{kind} is not served at {api:?}; supported versions: {}",
                    kind.versions().join(", ")
                ),
            ));
        }
        if name.is_empty() {
            return Err(r.err("metadata.name", "a name is required"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(r.err(
                "metadata.name",
                format!("maximum name length is {MAX_NAME_LEN} characters"),
            ));
        }
        let spec = r.object(json.get("spec"), "spec")?;
        let get = |k: &str| spec.and_then(|s| s.get(k));
        let params = r.object(get("parameters"), "spec.parameters")?;
        let param = |k: &str| params.and_then(|p| p.get(k));

        let location_text = r.string(get("location"), "spec.location")?;
        let location = Location::parse(&location_text).map_err(|e| {
            r.err(
                "spec.location",
                format!("invalid location {location_text:?}: {e}"),
            )
        })?;
        if location.is_empty() {
            return Err(r.err("spec.location", "a location is required"));
        }

        let match_value = get("match")
            .map(|m| serde_json::from_value::<regorus::Value>(m.clone()))
            .transpose()
            .map_err(|e| r.err("spec.match", e.to_string()))?
            .unwrap_or(regorus::Value::Undefined);
        let match_criteria =
            MatchCriteria::from_value(&match_value).map_err(|e| r.err("spec.match", e))?;

        let apply_to = if kind == MutatorKind::AssignMetadata {
            Vec::new()
        } else {
            read_apply_to(&r, kind, get("applyTo"))?
        };

        let tests = if kind == MutatorKind::AssignMetadata {
            vec![(location.clone(), PathCondition::MustNotExist)]
        } else {
            read_path_tests(&r, param("pathTests"))?
        };
        let path_tests =
            PathTests::new(&location, &tests).map_err(|e| r.err("spec.parameters.pathTests", e))?;

        let action = match kind {
            MutatorKind::Assign => {
                if location.has_metadata_root() {
                    return Err(r.err(
                        "spec.location",
                        format!("assign {name} can't change metadata"),
                    ));
                }
                check_key_not_changed(&location).map_err(|e| r.err("spec.location", e))?;
                let source = read_assign(&r, param("assign"), kind)?;
                if let Some(PathNode::List { key_field, key }) = location.nodes().last() {
                    let at = "spec.parameters.assign";
                    match &source {
                        AssignSource::Value(v) => {
                            check_list_value(key_field, key, v)
                                .map_err(|e| r.err(&format!("{at}.value"), e))?;
                        }
                        _ => {
                            return Err(r.err(
                                &format!("{at}.fromMetadata"),
                                "cannot assign a metadata field to a list",
                            ));
                        }
                    }
                }
                Action::Assign(source)
            }
            MutatorKind::AssignMetadata => {
                if !is_metadata_location(&location) {
                    return Err(r.err(
                        "spec.location",
                        format!(
                            "invalid location for assignmetadata {name}: {location_text:?} (only metadata.labels.<key> and metadata.annotations.<key> can be assigned)"
                        ),
                    ));
                }
                let source = read_assign(&r, param("assign"), kind)?;
                if let AssignSource::Value(v) = &source
                    && !v.is_string()
                {
                    return Err(r.err(
                        "spec.parameters.assign.value",
                        format!("must be a string for AssignMetadata, got {v}"),
                    ));
                }
                Action::Assign(source)
            }
            MutatorKind::ModifySet => {
                if location.has_metadata_root() {
                    return Err(r.err(
                        "spec.location",
                        format!("modifyset {name} can't change metadata"),
                    ));
                }
                if location.nodes().last().is_some_and(PathNode::is_list) {
                    return Err(r.err(
                        "spec.location",
                        "final node in a modifyset location cannot be a keyed list",
                    ));
                }
                let op = r.string(param("operation"), "spec.parameters.operation")?;
                let operation = match op.as_str() {
                    "" | "merge" => SetOperation::Merge,
                    "prune" => SetOperation::Prune,
                    other => {
                        return Err(r.err(
                            "spec.parameters.operation",
                            format!("unrecognized operation {other:?}: expected merge or prune"),
                        ));
                    }
                };
                let values = r.object(param("values"), "spec.parameters.values")?;
                let from = r.list(
                    values.and_then(|v| v.get("fromList")),
                    "spec.parameters.values.fromList",
                )?;
                Action::ModifySet {
                    operation,
                    values: from.to_vec(),
                }
            }
            MutatorKind::AssignImage => {
                if location.has_metadata_root() {
                    return Err(r.err(
                        "spec.location",
                        format!("assignImage {name} can't change metadata"),
                    ));
                }
                if location.nodes().last().is_some_and(PathNode::is_list) {
                    return Err(r.err(
                        "spec.location",
                        format!("assignImage {name} cannot mutate list-type fields"),
                    ));
                }
                check_key_not_changed(&location).map_err(|e| r.err("spec.location", e))?;
                let domain = r.string(param("assignDomain"), "spec.parameters.assignDomain")?;
                let path = r.string(param("assignPath"), "spec.parameters.assignPath")?;
                let tag = r.string(param("assignTag"), "spec.parameters.assignTag")?;
                validate_image_parts(&domain, &path, &tag).map_err(|(field, e)| {
                    r.err(
                        &format!("spec.parameters.{field}"),
                        format!("assignImage {name} has invalid parameters: {e}"),
                    )
                })?;
                Action::AssignImage { domain, path, tag }
            }
        };
        Ok(Mutator {
            id: MutatorId {
                kind,
                name: name.to_owned(),
            },
            file: file.to_owned(),
            apply_to,
            match_criteria,
            location,
            path_tests,
            action,
        })
    }
}

fn read_apply_to(
    r: &Reader<'_>,
    kind: MutatorKind,
    v: Option<&Json>,
) -> Result<Vec<MutationApplyTo>, MutatorError> {
    let entries = r.list(v, "spec.applyTo")?;
    if entries.is_empty() {
        return Err(r.err(
            "spec.applyTo",
            format!("applyTo required for {kind} mutator {}", r.name),
        ));
    }
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let at = format!("spec.applyTo[{i}]");
        let o = r.object(Some(e), &at)?;
        let field = |k: &str| o.and_then(|o| o.get(k));
        let groups = r.strings(field("groups"), &format!("{at}.groups"))?;
        let versions = r.strings(field("versions"), &format!("{at}.versions"))?;
        let kinds = r.strings(field("kinds"), &format!("{at}.kinds"))?;
        if groups.is_empty() || versions.is_empty() || kinds.is_empty() {
            return Err(r.err(
                &at,
                format!(
                    "invalid applyTo for {kind} mutator {}, all of group, version and kind must be specified",
                    r.name
                ),
            ));
        }
        let ops = r.strings(field("operations"), &format!("{at}.operations"))?;
        let mut operations = Vec::new();
        for op in &ops {
            let parsed = match op.as_str() {
                "CREATE" => Some(Operation::Create),
                "UPDATE" => Some(Operation::Update),
                "*" => None,
                other => {
                    return Err(r.err(
                        &format!("{at}.operations"),
                        format!("invalid operation {other:?}: must be one of CREATE, UPDATE, *"),
                    ));
                }
            };
            match parsed {
                Some(p) if operations.contains(&p) => {
                    return Err(r.err(
                        &format!("{at}.operations"),
                        format!("duplicate operation {op:?}"),
                    ));
                }
                Some(p) => operations.push(p),
                None if ops.len() > 1 => {
                    return Err(r.err(
                        &format!("{at}.operations"),
                        "wildcard \"*\" must not be combined with other operations",
                    ));
                }
                None => {}
            }
        }
        out.push(MutationApplyTo {
            groups,
            versions,
            kinds,
            operations,
        });
    }
    Ok(out)
}

fn read_path_tests(
    r: &Reader<'_>,
    v: Option<&Json>,
) -> Result<Vec<(Location, PathCondition)>, MutatorError> {
    let mut out = Vec::new();
    for (i, t) in r.list(v, "spec.parameters.pathTests")?.iter().enumerate() {
        let at = format!("spec.parameters.pathTests[{i}]");
        let o = r.object(Some(t), &at)?;
        let sub = r.string(o.and_then(|o| o.get("subPath")), &format!("{at}.subPath"))?;
        let loc = Location::parse(&sub).map_err(|e| {
            r.err(
                &format!("{at}.subPath"),
                format!("invalid sub path {sub:?}: {e}"),
            )
        })?;
        let cond = r.string(
            o.and_then(|o| o.get("condition")),
            &format!("{at}.condition"),
        )?;
        let cond = match cond.as_str() {
            "MustExist" => PathCondition::MustExist,
            "MustNotExist" => PathCondition::MustNotExist,
            other => {
                return Err(r.err(
                    &format!("{at}.condition"),
                    format!(
                        "{other:?} is not a valid path test condition (MustExist or MustNotExist)"
                    ),
                ));
            }
        };
        out.push((loc, cond));
    }
    Ok(out)
}

fn read_assign(
    r: &Reader<'_>,
    v: Option<&Json>,
    kind: MutatorKind,
) -> Result<AssignSource, MutatorError> {
    let at = "spec.parameters.assign";
    let o = r.object(v, at)?;
    let value = o.and_then(|o| o.get("value")).filter(|v| !v.is_null());
    let from_meta = o
        .and_then(|o| o.get("fromMetadata"))
        .filter(|v| !v.is_null());
    let external = o
        .and_then(|o| o.get("externalData"))
        .filter(|v| !v.is_null());
    let set = [value.is_some(), from_meta.is_some(), external.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if set == 0 {
        return Err(r.err(
            at,
            "assign must set one of `externalData`, `value` or `fromMetadata`",
        ));
    }
    if set > 1 {
        return Err(r.err(
            at,
            "assign must only set one of `externalData`, `value` or `fromMetadata`",
        ));
    }
    if external.is_some() {
        return Err(r.err(
            &format!("{at}.externalData"),
            format!("external data is not supported: regard has no external data providers, so {kind} {} cannot be applied", r.name),
        ));
    }
    if let Some(m) = from_meta {
        let mo = r.object(Some(m), &format!("{at}.fromMetadata"))?;
        let field = r.string(
            mo.and_then(|o| o.get("field")),
            &format!("{at}.fromMetadata.field"),
        )?;
        return match field.as_str() {
            "name" => Ok(AssignSource::FromName),
            "namespace" => Ok(AssignSource::FromNamespace),
            other => Err(r.err(
                &format!("{at}.fromMetadata.field"),
                format!("field {other:?} is not recognized: invalid fromMetadata field (expected name or namespace)"),
            )),
        };
    }
    Ok(AssignSource::Value(value.cloned().unwrap_or(Json::Null)))
}

/// Refuses `...[key: v].key`: the element's key would change.
fn check_key_not_changed(location: &Location) -> Result<(), String> {
    let n = location.nodes();
    if let [.., PathNode::List { key_field, .. }, last] = n {
        match last {
            PathNode::List { .. } => {
                return Err("invalid path format: child of a list can't be a list".to_owned());
            }
            PathNode::Object(field) if field == key_field => {
                return Err("invalid path format: changing the item key is not allowed".to_owned());
            }
            PathNode::Object(_) => {}
        }
    }
    Ok(())
}

/// A value assigned to a keyed list element must be an object carrying the same key.
fn check_list_value(key_field: &str, key: &ListKey, value: &Json) -> Result<(), String> {
    let want = match key {
        ListKey::Glob => return Err("can't append to a globbed list".to_owned()),
        ListKey::String(s) => Json::from(s.as_str()),
        ListKey::Int(i) => Json::from(*i),
    };
    let Json::Object(o) = value else {
        return Err(format!(
            "invalid value: `{value}`, only objects can be added to keyed lists"
        ));
    };
    let got = o.get(key_field);
    if !got.is_some_and(|g| key_matches(key, g)) {
        return Err(format!(
            "adding object to list with different key {key_field}: list key {want}, object key {}",
            got.map_or_else(|| "<none>".to_owned(), Json::to_string)
        ));
    }
    Ok(())
}

/// Whether a list element's key field value equals the path's key (an
/// integer key matches only an integral JSON number, a string key only a string).
pub(crate) fn key_matches(key: &ListKey, v: &Json) -> bool {
    match (key, v) {
        (ListKey::String(s), Json::String(x)) => s == x,
        (ListKey::Int(i), Json::Number(n)) => n.as_i64() == Some(*i),
        _ => false,
    }
}

fn is_metadata_location(l: &Location) -> bool {
    matches!(
        l.nodes(),
        [PathNode::Object(m), PathNode::Object(f), PathNode::Object(_)]
            if m == "metadata" && (f == "labels" || f == "annotations")
    )
}

#[allow(clippy::expect_used)] // constant patterns, covered by the tests
static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^\w[\w\-_]*\.[\w\-_\.]*\w(:\d+)?$)|(^localhost(:\d+)?$)").expect("domain pattern")
});
#[allow(clippy::expect_used)]
static PATH_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:(?:[._/]|__|[-]*)[a-z0-9]+)+)?").expect("path pattern")
});
#[allow(clippy::expect_used)]
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^:\w[\w.-]{0,127}$)|(^@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}$)")
        .expect("tag pattern")
});

/// Splits `registry/path:tag` into (domain, remainder): the first segment is
/// a domain when it has a `.` or `:` or is `localhost`.
pub(crate) fn split_domain(image: &str) -> (&str, &str) {
    match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("", image),
    }
}

/// Splits a remainder into (path, tag) at the first `:` or `@`.
pub(crate) fn split_tag(remainder: &str) -> (&str, &str) {
    match remainder.find([':', '@']) {
        Some(i) => remainder.split_at(i),
        None => (remainder, ""),
    }
}

/// Gatekeeper's checks of `assignDomain`, `assignPath`, `assignTag`; the
/// error names the parameter.
fn validate_image_parts(domain: &str, path: &str, tag: &str) -> Result<(), (&'static str, String)> {
    if domain.is_empty() && path.is_empty() && tag.is_empty() {
        return Err((
            "assignDomain",
            "at least one of [assignDomain, assignPath, assignTag] must be set".to_owned(),
        ));
    }
    if !domain.is_empty() {
        if !DOMAIN_RE.is_match(domain) {
            return Err((
                "assignDomain",
                format!(
                    "assignDomain {domain:?} must be a fully-qualified domain name or localhost"
                ),
            ));
        }
        let joined = format!("{domain}/");
        if split_domain(&joined) != (domain, "") {
            return Err((
                "assignDomain",
                format!("domain {domain:?} could not be recognized as a valid domain"),
            ));
        }
    }
    if !path.is_empty() && PATH_RE.find(path).map(|m| m.as_str()) != Some(path) {
        return Err((
            "assignPath",
            format!("assignPath {path:?} must be a valid docker image path"),
        ));
    }
    if !tag.is_empty() {
        if !TAG_RE.is_match(tag) {
            return Err((
                "assignTag",
                format!(
                    "assignTag {tag:?} must be a valid docker image tag or digest starting with ':' or '@'"
                ),
            ));
        }
        if split_tag(tag) != ("", tag) {
            return Err((
                "assignTag",
                format!("tag {tag:?} could not be recognized as a valid tag or digest"),
            ));
        }
    }
    if domain.is_empty() && !split_domain(path).0.is_empty() {
        return Err((
            "assignPath",
            format!(
                "assignDomain must be set if the first part of assignPath {path:?} can be interpretted as part of a domain"
            ),
        ));
    }
    Ok(())
}
