//! The fake API server's storage: every object of every resource in one map, one global
//! resourceVersion counter, a bounded event history that watches resume from, and the
//! API machinery rules the real server applies on writes (conflicts, generation, status
//! subresource, finalizers, CRD-defined resources).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use super::schema;
use super::select::{FieldSelector, LabelSelector};

/// `(group, plural)`: objects are stored once per resource, whatever version they are read at.
pub type GroupResource = (String, String);
/// `(namespace or "", name)`, the order the real server lists in.
pub type ObjectKey = (String, String);

pub const CRD_GROUP: &str = "apiextensions.k8s.io";
pub const CRDS: &str = "customresourcedefinitions";

/// A resource served at one group/version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    /// Has a `status` subresource: main writes keep the old status, `/status` writes change only it.
    pub status: bool,
    /// Spec changes bump `metadata.generation`.
    pub generation: bool,
    /// Compiled-in types: list items carry no apiVersion/kind, as the real server's typed lists.
    pub builtin: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

impl ResourceDef {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn group_resource(&self) -> GroupResource {
        (self.group.clone(), self.plural.clone())
    }

    /// `pods` or `leases.coordination.k8s.io`, as error messages name a resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as retained in the history and broadcast to open watches.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: GroupResource,
    pub namespace: String,
    pub kind: EventType,
    pub object: Value,
    /// The object before a modification, so a filtered watch can turn it into ADDED/DELETED.
    pub previous: Option<Value>,
}

/// What open watches hear.
#[derive(Debug, Clone)]
pub enum Notice {
    Event(Arc<Event>),
    /// The resource stopped being served (its CRD was deleted): watches on it end.
    Gone(GroupResource),
}

/// An API error, rendered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    fn about(mut self, def: &ResourceDef, name: &str) -> ApiError {
        self.details = Some(json!({"name": name, "group": def.group, "kind": def.plural}));
        self
    }

    pub fn not_found(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", def.qualified()),
        )
        .about(def, name)
    }

    fn already_exists(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", def.qualified()),
        )
        .about(def, name)
    }

    pub fn conflict(def: &ResourceDef, name: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                def.qualified()
            ),
        )
        .about(def, name)
    }

    /// An error for `code` with the reason the real server pairs with it (failure injection).
    pub fn for_code(code: u16, message: impl Into<String>) -> ApiError {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        ApiError::new(code, reason, message)
    }

    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

/// A patch body and its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    /// `application/strategic-merge-patch+json`: applied as a merge patch (built-ins only).
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply), approximated: see the module docs.
    Apply,
}

/// List options the fake honours.
#[derive(Debug, Default)]
pub struct ListOptions {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

impl ListOptions {
    pub fn matches(&self, obj: &Value) -> bool {
        self.labels.as_ref().is_none_or(|l| l.matches(obj))
            && self.fields.as_ref().is_none_or(|f| f.matches(obj))
    }
}

pub struct Store {
    rv: u64,
    uid: u64,
    seed: u64,
    defs: Vec<ResourceDef>,
    objects: BTreeMap<GroupResource, BTreeMap<ObjectKey, Value>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// Oldest resourceVersion a watch can resume from.
    floor: u64,
    tx: broadcast::Sender<Notice>,
    /// Refuse non-structural CRDs; prune and validate custom resources by their schema.
    pub validate_schemas: bool,
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The object without `metadata` (and without `status` when it has its own subresource):
/// what a generation bump compares.
fn spec_part(obj: &Value, status: bool) -> Value {
    let mut rest = obj.clone();
    if let Some(map) = rest.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
        if status {
            map.remove("status");
        }
    }
    rest
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Kubernetes version priority: GA, then beta, then alpha, newer first; others last by name.
pub fn version_priority(v: &str) -> (u8, u64, u64, String) {
    let parse = |s: &str| -> Option<(u8, u64, u64)> {
        let rest = s.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        for (tag, rank) in [("beta", 1u8), ("alpha", 2u8)] {
            if let Some(n) = tail.strip_prefix(tag) {
                return Some((rank, major, n.parse().ok()?));
            }
        }
        None
    };
    match parse(v) {
        Some((rank, major, minor)) => (rank, u64::MAX - major, u64::MAX - minor, String::new()),
        None => (3, 0, 0, v.to_owned()),
    }
}

impl Store {
    pub fn new(history_limit: usize, tx: broadcast::Sender<Notice>) -> Store {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1;
        Store {
            rv: 1,
            uid: 0,
            seed,
            defs: Vec::new(),
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit,
            floor: 1,
            tx,
            validate_schemas: true,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn floor(&self) -> u64 {
        self.floor
    }

    pub fn defs(&self) -> &[ResourceDef] {
        &self.defs
    }

    pub fn register(&mut self, def: ResourceDef) {
        self.defs.retain(|d| {
            !(d.group == def.group && d.version == def.version && d.plural == def.plural)
        });
        self.objects.entry(def.group_resource()).or_default();
        self.defs.push(def);
    }

    /// The resource at `group/version` named `plural`.
    pub fn def(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
    }

    /// The resource serving `kind` at `apiVersion`.
    pub fn def_for_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceDef> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        self.defs
            .iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
    }

    /// Drops the whole history: any watch from an older resourceVersion now gets 410 Gone.
    pub fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    fn next_uid(&mut self) -> String {
        self.uid += 1;
        format!("6f1e0000-0000-4000-8000-{:012x}", self.uid)
    }

    fn random_suffix(&mut self) -> String {
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut out = String::new();
        for _ in 0..5 {
            // xorshift64: enough to make generated names unlikely to collide.
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            out.push(ALPHABET[(self.seed % ALPHABET.len() as u64) as usize] as char);
        }
        out
    }

    /// The stored object, rendered at `def`'s version.
    pub fn get(&self, def: &ResourceDef, namespace: &str, name: &str) -> Result<Value, ApiError> {
        self.objects
            .get(&def.group_resource())
            .and_then(|objs| objs.get(&(namespace.to_owned(), name.to_owned())))
            .map(|obj| render(def, obj))
            .ok_or_else(|| ApiError::not_found(def, name))
    }

    /// The real server's schema checks: CRDs must be valid and structural; custom resources
    /// are pruned to their version's schema and must satisfy it.
    fn apply_schema(&self, def: &ResourceDef, obj: &mut Value) -> Result<(), ApiError> {
        if !self.validate_schemas {
            return Ok(());
        }
        let errors = if def.group == CRD_GROUP && def.plural == CRDS {
            schema::validate_crd(obj)
        } else if def.builtin {
            return Ok(());
        } else {
            let crd = self
                .objects
                .get(&(CRD_GROUP.to_owned(), CRDS.to_owned()))
                .and_then(|crds| {
                    crds.values().find(|c| {
                        c["spec"]["group"] == json!(def.group)
                            && c["spec"]["names"]["plural"] == json!(def.plural)
                    })
                });
            match crd.and_then(|c| schema::version_schema(c, &def.version)) {
                Some(s) => schema::prune_and_validate(obj, s),
                None => return Ok(()),
            }
        };
        if errors.is_empty() {
            return Ok(());
        }
        let name = meta_str(obj, "name").unwrap_or("");
        let group = if def.group.is_empty() {
            String::new()
        } else {
            format!(".{}", def.group)
        };
        let list = if errors.len() == 1 {
            errors[0].clone()
        } else {
            format!("[{}]", errors.join(", "))
        };
        Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: format!("{}{group} \"{name}\" is invalid: {list}", def.kind),
            details: Some(json!({
                "name": name, "group": def.group, "kind": def.kind,
                "causes": errors.iter().map(|e| json!({"reason": "FieldValueInvalid", "message": e})).collect::<Vec<_>>()
            })),
        })
    }

    fn exists_namespace(&self, namespace: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_owned()))
            .is_some_and(|objs| objs.contains_key(&(String::new(), namespace.to_owned())))
    }

    /// Records a change: bumps the resourceVersion, stores or removes the object, keeps the
    /// history bounded and tells the open watches.
    fn commit(
        &mut self,
        def: &ResourceDef,
        key: ObjectKey,
        kind: EventType,
        mut object: Value,
        previous: Option<Value>,
    ) -> Value {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let objects = self.objects.entry(def.group_resource()).or_default();
        if kind == EventType::Deleted {
            objects.remove(&key);
        } else {
            objects.insert(key.clone(), object.clone());
        }
        let event = Arc::new(Event {
            rv: self.rv,
            resource: def.group_resource(),
            namespace: key.0,
            kind,
            object: object.clone(),
            previous,
        });
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.floor = dropped.rv;
            }
        }
        let _ = self.tx.send(Notice::Event(event));
        if def.group == CRD_GROUP && def.plural == CRDS {
            self.crd_changed(&object, kind);
        }
        object
    }

    /// `POST` to a collection.
    pub fn create(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        mut obj: Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if let Some(kind) = obj.get("kind").and_then(Value::as_str)
            && kind != def.kind
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({}) or kind {kind} is not {}",
                obj["apiVersion"].as_str().unwrap_or(""),
                def.group_version(),
                def.kind
            )));
        }
        obj["apiVersion"] = json!(def.group_version());
        obj["kind"] = json!(def.kind);
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let name = match meta_str(&obj, "name") {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match meta_str(&obj, "generateName") {
                Some(prefix) if !prefix.is_empty() => {
                    let prefix = prefix.to_owned();
                    format!("{prefix}{}", self.random_suffix())
                }
                _ => {
                    return Err(ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "{} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            def.kind
                        ),
                    ));
                }
            },
        };
        if def.namespaced {
            match meta_str(&obj, "namespace") {
                Some(ns) if !ns.is_empty() && ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            if !self.exists_namespace(namespace) {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("namespaces \"{namespace}\" not found"),
                )
                .about(
                    &ResourceDef {
                        plural: "namespaces".into(),
                        ..def.clone()
                    },
                    namespace,
                ));
            }
            obj["metadata"]["namespace"] = json!(namespace);
        } else if let Some(map) = obj["metadata"].as_object_mut() {
            map.remove("namespace");
        }
        let key = (
            if def.namespaced {
                namespace.to_owned()
            } else {
                String::new()
            },
            name.clone(),
        );
        if self
            .objects
            .get(&def.group_resource())
            .is_some_and(|objs| objs.contains_key(&key))
        {
            return Err(ApiError::already_exists(def, &name));
        }
        let uid = self.next_uid();
        let meta = &mut obj["metadata"];
        meta["name"] = json!(name);
        meta["uid"] = json!(uid);
        meta["creationTimestamp"] = json!(now());
        if let Some(map) = meta.as_object_mut() {
            map.remove("deletionTimestamp");
            map.remove("resourceVersion");
            map.remove("generation");
        }
        if def.generation {
            obj["metadata"]["generation"] = json!(1);
        }
        if def.status
            && let Some(map) = obj.as_object_mut()
        {
            // The real server resets status on create for resources with the subresource.
            map.remove("status");
            if def.group.is_empty() && def.plural == "namespaces" {
                map.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        if def.group == CRD_GROUP && def.plural == CRDS {
            obj["status"] = json!({
                "acceptedNames": {"kind": "", "plural": ""}, "conditions": [], "storedVersions": []
            });
        }
        self.apply_schema(def, &mut obj)?;
        if dry_run {
            return Ok(obj);
        }
        Ok(self.commit(def, key, EventType::Added, obj, None))
    }

    /// `PUT` of the object (`status: false`) or of its `/status` subresource.
    pub fn update(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        mut new: Value,
        status: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if status && !def.status {
            return Err(ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        if !new.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was not a JSON object",
            ));
        }
        if let Some(body_name) = meta_str(&new, "name")
            && body_name != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let key = (namespace.to_owned(), name.to_owned());
        let old = self
            .objects
            .get(&def.group_resource())
            .and_then(|objs| objs.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(&old, "resourceVersion")
        {
            return Err(ApiError::conflict(def, name));
        }
        let mut result = if status {
            // Only .status changes through the subresource.
            let mut result = old.clone();
            match new.get("status") {
                Some(s) => result["status"] = s.clone(),
                None => {
                    if let Some(map) = result.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            result
        } else {
            if def.status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            // Fields the server owns stay as they were.
            let meta = &mut new["metadata"];
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "namespace",
            ] {
                match old["metadata"].get(field) {
                    Some(v) => meta[field] = v.clone(),
                    None => {
                        if let Some(map) = meta.as_object_mut() {
                            map.remove(field);
                        }
                    }
                }
            }
            meta["name"] = json!(name);
            new
        };
        result["apiVersion"] = json!(def.group_version());
        result["kind"] = json!(def.kind);
        self.apply_schema(def, &mut result)?;
        if def.generation && spec_part(&result, def.status) != spec_part(&old, def.status) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            result["metadata"]["generation"] = json!(generation);
        }
        // Compare as stored (the stored copy carries the storage apiVersion).
        let mut comparable = result.clone();
        comparable["apiVersion"] = old["apiVersion"].clone();
        comparable["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if comparable == old {
            // A no-op write changes nothing, not even the resourceVersion: no event.
            return Ok(render(def, &old));
        }
        if dry_run {
            return Ok(result);
        }
        let finalized = old["metadata"].get("deletionTimestamp").is_some()
            && result["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
        if finalized {
            return Ok(self.commit(def, key, EventType::Deleted, result, Some(old)));
        }
        Ok(self.commit(def, key, EventType::Modified, result, Some(old)))
    }

    /// `PATCH` of the object or its `/status`.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: Value,
        status: bool,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Strategic && !def.builtin {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let key = (namespace.to_owned(), name.to_owned());
        let current = self
            .objects
            .get(&def.group_resource())
            .and_then(|objs| objs.get(&key))
            .map(|obj| render(def, obj));
        let Some(current) = current else {
            if kind == PatchKind::Apply && !status {
                let mut obj = patch;
                obj["metadata"]["name"] = json!(name);
                return self.create(def, namespace, obj, dry_run);
            }
            return Err(ApiError::not_found(def, name));
        };
        let mut doc = current.clone();
        match kind {
            PatchKind::Merge | PatchKind::Strategic => json_patch::merge(&mut doc, &patch),
            PatchKind::Apply => apply_merge(&mut doc, &patch),
            PatchKind::Json => {
                let ops: json_patch::Patch = serde_json::from_value(patch)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
                json_patch::patch(&mut doc, &ops).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
            }
        }
        // A resourceVersion the patch sets is a precondition, as in an update.
        let current_rv = meta_str(&current, "resourceVersion")
            .unwrap_or("")
            .to_owned();
        if meta_str(&doc, "resourceVersion").is_some_and(|rv| rv != current_rv) {
            return Err(ApiError::conflict(def, name));
        }
        if !status && def.status {
            // The main resource ignores .status.
            match current.get("status") {
                Some(s) => doc["status"] = s.clone(),
                None => {
                    if let Some(map) = doc.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        self.update(def, namespace, name, doc, status, dry_run)
    }

    /// `DELETE` of one object: immediate without finalizers, else marks it for deletion.
    pub fn delete(
        &mut self,
        def: &ResourceDef,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        let key = (namespace.to_owned(), name.to_owned());
        let old = self
            .objects
            .get(&def.group_resource())
            .and_then(|objs| objs.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(def, name))?;
        if dry_run {
            return Ok(render(def, &old));
        }
        let has_finalizers = old["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            if old["metadata"].get("deletionTimestamp").is_some() {
                return Ok(render(def, &old));
            }
            let mut marked = old.clone();
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            let out = self.commit(def, key, EventType::Modified, marked, Some(old));
            return Ok(render(def, &out));
        }
        if def.group.is_empty() && def.plural == "namespaces" {
            // Stand-in for the namespace controller: the namespace's objects go with it.
            let namespaced: Vec<ResourceDef> = self.served_once(true);
            for d in namespaced {
                let keys: Vec<ObjectKey> = self
                    .objects
                    .get(&d.group_resource())
                    .map(|objs| objs.keys().filter(|k| k.0 == name).cloned().collect())
                    .unwrap_or_default();
                for k in keys {
                    if let Some(obj) = self
                        .objects
                        .get(&d.group_resource())
                        .and_then(|o| o.get(&k))
                    {
                        let obj = obj.clone();
                        self.commit(&d, k, EventType::Deleted, obj, None);
                    }
                }
            }
        }
        let out = self.commit(def, key, EventType::Deleted, old, None);
        Ok(render(def, &out))
    }

    /// One definition per stored resource (the first registered version), namespaced or not.
    fn served_once(&self, namespaced: bool) -> Vec<ResourceDef> {
        let mut seen = std::collections::BTreeSet::new();
        self.defs
            .iter()
            .filter(|d| d.namespaced == namespaced && seen.insert(d.group_resource()))
            .cloned()
            .collect()
    }

    /// `GET` of a collection: items in key order, paginated with an opaque continue token.
    pub fn list(
        &self,
        def: &ResourceDef,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        let (list_rv, after) = match &opts.continue_token {
            Some(token) => decode_continue(token)?,
            None => (self.rv, None),
        };
        if list_rv < self.floor && opts.continue_token.is_some() {
            return Err(ApiError::new(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter, or use the continue token \
                 in this response to retrieve the remainder of the results. Continuing with the \
                 provided token results in an inconsistent list - objects that were created, \
                 modified, or deleted between the time the first chunk was returned and now may \
                 show up in the list.",
            ));
        }
        let empty = BTreeMap::new();
        let objects = self.objects.get(&def.group_resource()).unwrap_or(&empty);
        let matching: Vec<(&ObjectKey, &Value)> = objects
            .iter()
            .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
            .filter(|(_, obj)| opts.matches(obj))
            .collect();
        let page = match opts.limit {
            Some(limit) if limit > 0 => limit.min(matching.len()),
            _ => matching.len(),
        };
        let remaining = matching.len() - page;
        let last = page
            .checked_sub(1)
            .and_then(|i| matching.get(i))
            .map(|(k, _)| (*k).clone());
        let items: Vec<Value> = matching
            .iter()
            .take(page)
            .map(|(_, obj)| {
                let mut item = render(def, obj);
                if def.builtin
                    && let Some(map) = item.as_object_mut()
                {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                item
            })
            .collect();
        let mut metadata = Map::new();
        metadata.insert("resourceVersion".into(), json!(list_rv.to_string()));
        if remaining > 0
            && let Some(last) = last
        {
            metadata.insert("continue".into(), json!(encode_continue(list_rv, &last)));
            metadata.insert("remainingItemCount".into(), json!(remaining));
        }
        Ok(json!({
            "kind": format!("{}List", def.kind),
            "apiVersion": def.group_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Deletes every object of a collection that matches (`deletecollection`).
    pub fn delete_collection(
        &mut self,
        def: &ResourceDef,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        let keys: Vec<ObjectKey> = self
            .objects
            .get(&def.group_resource())
            .map(|objs| {
                objs.iter()
                    .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
                    .filter(|(_, o)| opts.matches(o))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut items = Vec::new();
        for (ns, name) in keys {
            items.push(self.delete(def, &ns, &name, false)?);
        }
        Ok(json!({
            "kind": format!("{}List", def.kind), "apiVersion": def.group_version(),
            "metadata": {"resourceVersion": self.rv.to_string()}, "items": items
        }))
    }

    /// Events a watch from `from` (exclusive) has missed, or `None` when they are no longer
    /// retained (410 Gone).
    pub fn events_since(&self, resource: &GroupResource, from: u64) -> Option<Vec<Arc<Event>>> {
        if from < self.floor {
            return None;
        }
        Some(
            self.history
                .iter()
                .filter(|e| e.rv > from && &e.resource == resource)
                .cloned()
                .collect(),
        )
    }

    /// Current objects of a resource, as the synthetic ADDED events of a watch without a
    /// resourceVersion.
    pub fn current(&self, resource: &GroupResource) -> Vec<Value> {
        self.objects
            .get(resource)
            .map(|objs| objs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Writes an object as a test fixture: created if missing, replaced otherwise, keeping
    /// the `status` it carries (as if a controller had written it).
    pub fn seed(&mut self, def: &ResourceDef, mut obj: Value) -> Result<Value, ApiError> {
        let namespace = if def.namespaced {
            meta_str(&obj, "namespace").unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let name = meta_str(&obj, "name")
            .ok_or_else(|| ApiError::bad_request("seeded objects need metadata.name"))?
            .to_owned();
        let status = obj.get("status").cloned();
        let existing = self.get(def, &namespace, &name).ok();
        let stored = match existing {
            None => self.create(def, &namespace, obj, false)?,
            Some(old) => {
                obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
                self.update(def, &namespace, &name, obj, false, false)?
            }
        };
        match status {
            Some(status) if def.status => {
                let mut with_status = stored;
                with_status["status"] = status;
                self.update(def, &namespace, &name, with_status, true, false)
            }
            _ => Ok(stored),
        }
    }

    /// Keeps the served resources of a CRD in step with it: established CRDs serve their
    /// served versions; a deleted CRD takes its objects and resources with it.
    fn crd_changed(&mut self, crd: &Value, kind: EventType) {
        let spec = &crd["spec"];
        let (Some(group), Some(plural)) =
            (spec["group"].as_str(), spec["names"]["plural"].as_str())
        else {
            return;
        };
        let resource = (group.to_owned(), plural.to_owned());
        let owned = |d: &ResourceDef| d.group == group && d.plural == plural && !d.builtin;
        if kind == EventType::Deleted {
            let defs: Vec<ResourceDef> = self.defs.iter().filter(|d| owned(d)).cloned().collect();
            if let Some(def) = defs.first() {
                let keys: Vec<ObjectKey> = self
                    .objects
                    .get(&resource)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                for key in keys {
                    if let Some(obj) = self.objects.get(&resource).and_then(|o| o.get(&key)) {
                        let obj = obj.clone();
                        self.commit(def, key, EventType::Deleted, obj, None);
                    }
                }
            }
            self.defs.retain(|d| !owned(d));
            self.objects.remove(&resource);
            let _ = self.tx.send(Notice::Gone(resource));
            return;
        }
        if !is_established(crd) {
            return;
        }
        self.defs.retain(|d| !owned(d));
        for version in spec["versions"].as_array().into_iter().flatten() {
            if version["served"] != json!(true) {
                continue;
            }
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            };
            let names = &spec["names"];
            let kind = names["kind"].as_str().unwrap_or("").to_owned();
            self.register(ResourceDef {
                group: group.to_owned(),
                version: version["name"].as_str().unwrap_or("").to_owned(),
                plural: plural.to_owned(),
                singular: names["singular"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| kind.to_lowercase()),
                kind,
                namespaced: spec["scope"] == json!("Namespaced"),
                status: version["subresources"].get("status").is_some(),
                generation: true,
                builtin: false,
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
            });
        }
    }

    /// Marks the CRD `name` (if it still has `uid`) NamesAccepted and Established.
    pub fn establish(&mut self, name: &str, uid: &str) {
        let Some(def) = self.def(CRD_GROUP, "v1", CRDS).cloned() else {
            return;
        };
        let Ok(crd) = self.get(&def, "", name) else {
            return;
        };
        if meta_str(&crd, "uid") != Some(uid) || is_established(&crd) {
            return;
        }
        let time = now();
        let mut updated = crd.clone();
        let storage: Vec<Value> = crd["spec"]["versions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v["storage"] == json!(true))
            .map(|v| v["name"].clone())
            .collect();
        updated["status"] = json!({
            "acceptedNames": crd["spec"]["names"],
            "storedVersions": storage,
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                 "message": "no conflicts found", "lastTransitionTime": time},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted", "lastTransitionTime": time},
            ]
        });
        let _ = self.update(&def, "", name, updated, true, false);
    }
}

/// Whether a CRD's `Established` condition is True.
pub fn is_established(crd: &Value) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == json!("Established") && c["status"] == json!("True"))
}

/// The object as read at `def`'s version (conversion strategy `None`: only apiVersion changes).
pub fn render(def: &ResourceDef, obj: &Value) -> Value {
    let mut out = obj.clone();
    out["apiVersion"] = json!(def.group_version());
    out
}

/// Server-side apply, approximated as a merge that never deletes: maps merge recursively,
/// everything else is replaced by the applied value.
fn apply_merge(doc: &mut Value, patch: &Value) {
    match (doc, patch) {
        (Value::Object(target), Value::Object(source)) => {
            for (k, v) in source {
                match target.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        apply_merge(existing, v)
                    }
                    _ => {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (doc, patch) => *doc = patch.clone(),
    }
}

fn encode_continue(rv: u64, after: &ObjectKey) -> String {
    let raw = json!({"rv": rv, "ns": after.0, "name": after.1}).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, Option<ObjectKey>), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let value: Value =
        serde_json::from_slice(&bytes.ok_or_else(invalid)?).map_err(|_| invalid())?;
    let rv = value["rv"].as_u64().ok_or_else(invalid)?;
    let ns = value["ns"].as_str().ok_or_else(invalid)?.to_owned();
    let name = value["name"].as_str().ok_or_else(invalid)?.to_owned();
    Ok((rv, Some((ns, name))))
}
