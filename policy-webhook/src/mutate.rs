//! `POST /v1/mutate`: Gatekeeper's mutating webhook. AdmissionReview in, AdmissionReview out
//! with a JSON Patch (RFC 6902) that turns the request's object into the mutated one.
//!
//! Flow: the envelope is read and checked as `/v1/admit` does ([`crate::admission`]) → requests
//! that are not mutated by rule are admitted unchanged (operations other than CREATE/UPDATE,
//! Gatekeeper's own resources, `--exempt-namespace`, namespaces the policy set's `Config`
//! excludes from `mutation-webhook`) → the mutators of the serving policy set
//! ([`Mutators`], loaded and swapped with it by [`crate::policy`]) run on a copy of the
//! object → the patch is the difference between the object as sent and the mutated copy.
//!
//! The answer is always `allowed: true` unless mutation itself fails (a mutator error, no
//! convergence, an object that is not a JSON object): then, as Gatekeeper answers, `allowed:
//! false` with code 500 and the error, which names the mutator. Mutation takes microseconds, so
//! it runs on the request's task rather than queueing for an evaluation thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use policy_core::gatekeeper::Process;
use policy_core::mutation::{
    MutationContext, MutationError, MutationSystem, MutatorError, MutatorId, SchemaConflict,
    SourceType,
};
use serde_json::Value as Json;

use crate::admission::{
    AdmissionState, EnvelopeObject, containing_namespace, namespace_of, plain, read_envelope,
    respond, status,
};
use crate::metrics::{Metrics, MutationLabels, MutationResult, MutatorLabels};

/// Gatekeeper's annotation naming the mutation run (`--mutation-annotations`).
pub const ANNOTATION_MUTATION_ID: &str = "gatekeeper.sh/mutation-id";
/// Gatekeeper's annotation listing the mutators that changed the object.
pub const ANNOTATION_MUTATIONS: &str = "gatekeeper.sh/mutations";

/// API groups of Gatekeeper's own resources, which its mutating webhook never mutates.
const GATEKEEPER_GROUPS: [&str; 7] = [
    "templates.gatekeeper.sh",
    "constraints.gatekeeper.sh",
    "mutations.gatekeeper.sh",
    "config.gatekeeper.sh",
    "externaldata.gatekeeper.sh",
    "expansion.gatekeeper.sh",
    "status.gatekeeper.sh",
];

struct Answer {
    result: MutationResult,
    response: AdmissionResponse,
    /// The JSON patch (RFC 6902) to send with it.
    patch: Option<Vec<u8>>,
}

fn allowed(mut response: AdmissionResponse, result: MutationResult, message: String) -> Answer {
    response.result = status(200, "", message);
    Answer {
        result,
        response,
        patch: None,
    }
}

fn failed(mut response: AdmissionResponse, code: u16, reason: &str, message: String) -> Answer {
    response.allowed = false;
    response.result = status(code, reason, message);
    Answer {
        result: MutationResult::error,
        response,
        patch: None,
    }
}

/// The `POST /v1/mutate` handler.
pub(crate) async fn mutate(
    State(state): State<Arc<AdmissionState>>,
    req: Request<Body>,
) -> Response {
    let started = Instant::now();
    let (request, body) = match read_envelope(&state.settings, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let answer = decide(&state, &request, &body).await;
    let labels = MutationLabels {
        result: answer.result,
    };
    let metrics = &state.metrics.mutation;
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation = ?request.operation,
        result = ?answer.result,
        elapsed_us = started.elapsed().as_micros() as u64,
        "mutation review"
    );
    match answer.patch {
        None => respond(answer.response),
        Some(patch) => respond_with_patch(answer.response, &patch),
    }
}

/// The AdmissionReview carrying `response` and `patch`. kube's response type serializes a
/// patch as an array of numbers; the API server's type is Go `[]byte`, which Gatekeeper (and
/// every Go webhook) sends as base64, so the patch is written here.
fn respond_with_patch(response: AdmissionResponse, patch: &[u8]) -> Response {
    let mut review = match serde_json::to_value(response.into_review()) {
        Ok(v) => v,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("encoding the response: {e}"),
            );
        }
    };
    if let Some(Json::Object(response)) = review.get_mut("response") {
        response.insert(
            "patch".to_owned(),
            Json::from(base64::engine::general_purpose::STANDARD.encode(patch)),
        );
        response.insert("patchType".to_owned(), Json::from("JSONPatch"));
    }
    match serde_json::to_vec(&review) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the response: {e}"),
        ),
    }
}

/// The part of the body mutation reads again: the envelope skipped over the object.
#[derive(serde::Deserialize)]
struct ObjectOnly {
    request: RequestObject,
}

#[derive(serde::Deserialize)]
struct RequestObject {
    #[serde(default)]
    object: Option<Json>,
}

async fn decide(
    state: &AdmissionState,
    request: &AdmissionRequest<EnvelopeObject>,
    body: &[u8],
) -> Answer {
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return allowed(
            response,
            MutationResult::skipped,
            "Mutating only on create or update".to_owned(),
        );
    }
    if GATEKEEPER_GROUPS.contains(&request.kind.group.as_str()) {
        return allowed(
            response,
            MutationResult::skipped,
            "Not mutating gatekeeper resources".to_owned(),
        );
    }
    let namespace = namespace_of(request);
    if state.settings.exemptions.is_exempt(namespace) {
        state.metrics.admission_exempt.inc();
        return allowed(
            response,
            MutationResult::skipped,
            format!("namespace {namespace:?} is exempt from policy (--exempt-namespace)"),
        );
    }
    let Some(loaded) = state.policies.current() else {
        return failed(
            response,
            500,
            "InternalError",
            "policy set not loaded yet".to_owned(),
        );
    };
    if loaded
        .reviewer
        .is_excluded(Process::MutationWebhook, namespace)
    {
        state.metrics.admission_exempt.inc();
        return allowed(
            response,
            MutationResult::skipped,
            format!("namespace {namespace:?} is excluded from mutation by the policy set's Config"),
        );
    }
    let Some(mutators) = loaded.reviewer.mutators().filter(|m| m.active() > 0) else {
        return allowed(
            response,
            MutationResult::unchanged,
            "Resource was not mutated".to_owned(),
        );
    };
    // The envelope has accepted the body, with an object or none at all.
    let original = match serde_json::from_slice::<ObjectOnly>(body) {
        Ok(ObjectOnly {
            request:
                RequestObject {
                    object: Some(object @ Json::Object(_)),
                },
        }) => object,
        Ok(_) => {
            return failed(
                response,
                400,
                "BadRequest",
                format!(
                    "request.object is missing: {:?} needs the object to mutate",
                    request.operation
                ),
            );
        }
        Err(e) => {
            return failed(response, 400, "BadRequest", format!("request.object: {e}"));
        }
    };
    let is_namespace = request.kind.group.is_empty() && request.kind.kind == "Namespace";
    let namespace_object = if is_namespace {
        serde_json::from_value::<regorus::Value>(original.clone()).ok()
    } else {
        match (&state.namespaces, containing_namespace(request)) {
            (Some(namespaces), Some(name)) => namespaces.lookup(name).await,
            _ => None,
        }
    };
    let context = MutationContext {
        namespace: namespace_object,
        // A Namespace is mutated as the cluster-scoped object it is.
        request_namespace: request.namespace.clone().filter(|_| !is_namespace),
        operation: Some(match request.operation {
            Operation::Update => policy_core::mutation::Operation::Update,
            _ => policy_core::mutation::Operation::Create,
        }),
        source: SourceType::Original,
        username: request.user_info.username.clone(),
    };
    let annotate = state.settings.mutation.annotations;
    let run = policy_core::guard::catch(|| mutators.mutate(&original, &context, annotate));
    let mutated = match run {
        Ok(Ok(Some(mutated))) => mutated,
        Ok(Ok(None)) => {
            return allowed(
                response,
                MutationResult::unchanged,
                "Resource was not mutated".to_owned(),
            );
        }
        Ok(Err(e)) => {
            tracing::warn!(uid = %request.uid, error = %e, "mutation failed");
            return failed(response, 500, "InternalError", e.to_string());
        }
        Err(panic) => {
            tracing::error!(uid = %request.uid, error = %panic, "mutation panicked");
            return failed(
                response,
                500,
                "InternalError",
                format!("mutation failed: {panic}"),
            );
        }
    };
    for id in &mutated.applied {
        state
            .metrics
            .mutation
            .applied
            .get_or_create(&MutatorLabels {
                kind: id.kind.as_str().to_owned(),
                name: id.name.clone(),
            })
            .inc();
    }
    if state.settings.mutation.log {
        log_applied(request, &mutated);
    }
    let ops = policy_core::mutation::patch::diff(&original, &mutated.object);
    if ops.is_empty() {
        return allowed(
            response,
            MutationResult::unchanged,
            "Resource was not mutated".to_owned(),
        );
    }
    match serde_json::to_vec(&ops) {
        Ok(patch) => {
            let mut response = response;
            response.result = status(200, "", String::new());
            Answer {
                result: MutationResult::mutated,
                response,
                patch: Some(patch),
            }
        }
        Err(e) => {
            tracing::error!(uid = %request.uid, error = %e, "encoding the patch failed");
            failed(
                response,
                500,
                "InternalError",
                format!("encoding the patch: {e}"),
            )
        }
    }
}

/// Gatekeeper's `--log-mutations` record: the same keys and message.
fn log_applied(request: &AdmissionRequest<EnvelopeObject>, mutated: &Mutated) {
    let mutators: Vec<String> = mutated.applied.iter().map(ToString::to_string).collect();
    let meta = &mutated.object["metadata"];
    let name = meta["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .or_else(|| meta["generateName"].as_str())
        .unwrap_or("");
    tracing::info!(
        process = "mutation",
        event_type = "mutation_applied",
        mutation_id = %mutated.id,
        resource_group = %request.kind.group,
        resource_kind = %request.kind.kind,
        resource_api_version = %request.kind.version,
        resource_namespace = request.namespace.as_deref().unwrap_or(""),
        resource_name = name,
        resource_source_type = "Original",
        request_uid = %request.uid,
        mutators = %mutators.join(", "),
        "Mutation applied"
    );
}

/// An object the mutators changed.
#[derive(Debug)]
struct Mutated {
    /// The mutated object.
    object: Json,
    /// The mutators that changed it, in application order.
    applied: Vec<MutatorId>,
    /// This mutation run's id (Gatekeeper's `gatekeeper.sh/mutation-id`).
    id: uuid::Uuid,
}

/// The mutators of a policy set (the `Assign`, `AssignMetadata`, `ModifySet` and `AssignImage`
/// documents among its files), as served by `/v1/mutate`; loaded and swapped with the rest of
/// the policy set.
#[derive(Debug, Default)]
pub struct Mutators {
    system: MutationSystem,
    /// Documents refused (logged and counted when the set loads; the others are served).
    errors: Vec<MutatorError>,
    /// `metadata.generation` of each mutator, which Gatekeeper's annotation reports (0 when
    /// unset, as for files).
    generations: HashMap<MutatorId, i64>,
}

impl Mutators {
    /// The mutators among `docs` (other documents are skipped).
    pub fn from_documents(docs: &[(String, regorus::Value)]) -> Mutators {
        let (system, errors) = MutationSystem::from_documents(docs);
        let generations = system
            .mutators()
            .iter()
            .filter_map(|m| {
                let doc = docs.iter().find(|(file, doc)| {
                    *file == m.file
                        && doc["kind"]
                            .as_string()
                            .is_ok_and(|k| **k == *m.id.kind.as_str())
                        && doc["metadata"]["name"]
                            .as_string()
                            .is_ok_and(|n| **n == *m.id.name)
                })?;
                let generation = doc.1["metadata"]["generation"].as_i64().ok()?;
                Some((m.id.clone(), generation))
            })
            .collect();
        Mutators {
            system,
            errors,
            generations,
        }
    }

    /// Mutators applied to requests (loaded, not disabled by a schema conflict).
    pub fn active(&self) -> usize {
        self.system
            .mutator_count()
            .saturating_sub(self.system.conflict_count())
    }

    /// Mutator documents that were refused.
    pub fn errors(&self) -> &[MutatorError] {
        &self.errors
    }

    /// Schema conflicts; their mutators are not applied.
    pub fn conflicts(&self) -> &[SchemaConflict] {
        self.system.conflicts()
    }

    /// Mutates a copy of `object`; `None` when nothing changed. With `annotate`, the
    /// mutated object carries Gatekeeper's mutation annotations.
    fn mutate(
        &self,
        object: &Json,
        context: &MutationContext,
        annotate: bool,
    ) -> Result<Option<Mutated>, MutationError> {
        let mut copy = object.clone();
        let outcome = self.system.mutate(&mut copy, context)?;
        if !outcome.mutated() {
            return Ok(None);
        }
        let id = uuid::Uuid::new_v4();
        if annotate {
            self.annotate(&mut copy, &outcome.applied, id);
        }
        Ok(Some(Mutated {
            object: copy,
            applied: outcome.applied,
            id,
        }))
    }

    /// Gatekeeper's `gatekeeper.sh/mutations` (`Kind/namespace/name:generation` of every
    /// mutator that changed the object, sorted, `, `-joined; mutators are cluster-scoped, so
    /// the namespace is empty) and `gatekeeper.sh/mutation-id`.
    fn annotate(&self, object: &mut Json, applied: &[MutatorId], id: uuid::Uuid) {
        let mut names: Vec<String> = applied
            .iter()
            .map(|m| {
                let generation = self.generations.get(m).copied().unwrap_or(0);
                format!("{}//{}:{generation}", m.kind.as_str(), m.name)
            })
            .collect();
        names.sort();
        names.dedup();
        let Json::Object(root) = object else {
            return;
        };
        let meta = root
            .entry("metadata")
            .or_insert_with(|| Json::Object(serde_json::Map::new()));
        let Json::Object(meta) = meta else {
            return;
        };
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Json::Object(serde_json::Map::new()));
        // `annotations: null` is how an empty map can arrive.
        if annotations.is_null() {
            *annotations = Json::Object(serde_json::Map::new());
        }
        if let Json::Object(annotations) = annotations {
            annotations.insert(
                ANNOTATION_MUTATIONS.to_owned(),
                Json::from(names.join(", ")),
            );
            annotations.insert(
                ANNOTATION_MUTATION_ID.to_owned(),
                Json::from(id.to_string()),
            );
        }
    }
}

/// Logs the refused mutators and schema conflicts of a newly loaded policy set and sets the
/// mutator gauges.
pub fn report(mutators: Option<&Mutators>, metrics: &Metrics) {
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let m = &metrics.mutation;
    let Some(mutators) = mutators else {
        m.mutators.set(0);
        m.mutator_errors.set(0);
        m.conflicts.set(0);
        return;
    };
    for error in mutators.errors() {
        tracing::error!(
            file = %error.file,
            kind = %error.kind,
            name = %error.name,
            field = %error.field,
            "mutator refused (the others are served): {}",
            error.message
        );
    }
    for conflict in mutators.conflicts() {
        tracing::error!("{conflict}");
    }
    m.mutators.set(gauge(mutators.active()));
    m.mutator_errors.set(gauge(mutators.errors().len()));
    m.conflicts.set(gauge(mutators.system.conflict_count()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docs(yaml_generation: Option<i64>) -> Vec<(String, regorus::Value)> {
        let mut assign = json!({
            "apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
            "metadata": {"name": "non-root"},
            "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                     "location": "spec.securityContext.runAsNonRoot",
                     "parameters": {"assign": {"value": true}}}
        });
        if let Some(g) = yaml_generation {
            assign["metadata"]["generation"] = json!(g);
        }
        let label = json!({
            "apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata",
            "metadata": {"name": "team"},
            "spec": {"location": "metadata.labels.team", "parameters": {"assign": {"value": "a"}}}
        });
        [assign, label]
            .into_iter()
            .map(|d| ("m.yaml".to_owned(), serde_json::from_value(d).unwrap()))
            .collect()
    }

    fn mutate(mutators: &Mutators, pod: &Json) -> Mutated {
        mutators
            .mutate(pod, &MutationContext::default(), true)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn annotations_name_each_mutator_with_its_generation() {
        let mutators = Mutators::from_documents(&docs(Some(4)));
        assert_eq!((mutators.active(), mutators.errors().len()), (2, 0));
        for annotations in [None, Some(Json::Null), Some(json!({"keep": "me"}))] {
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
            if let Some(a) = &annotations {
                pod["metadata"]["annotations"] = a.clone();
            }
            let mutated = mutate(&mutators, &pod);
            let got = &mutated.object["metadata"]["annotations"];
            assert_eq!(
                got[ANNOTATION_MUTATIONS],
                "Assign//non-root:4, AssignMetadata//team:0"
            );
            assert_eq!(got[ANNOTATION_MUTATION_ID], mutated.id.to_string());
            let kept = annotations.as_ref().and_then(|a| a.get("keep"));
            assert_eq!(got.get("keep"), kept);
            assert_eq!(
                got.as_object().map(serde_json::Map::len),
                Some(2 + usize::from(kept.is_some()))
            );
        }
    }

    #[test]
    fn nothing_changed_is_none_and_not_annotated() {
        let mutators = Mutators::from_documents(&docs(None));
        let done = json!({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": "p", "labels": {"team": "b"}},
                          "spec": {"securityContext": {"runAsNonRoot": true}}});
        let outcome = mutators
            .mutate(&done, &MutationContext::default(), true)
            .unwrap();
        assert!(outcome.is_none());
        // Generation 0 when the document has none.
        let fresh = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert_eq!(
            mutate(&mutators, &fresh).object["metadata"]["annotations"][ANNOTATION_MUTATIONS],
            "Assign//non-root:0, AssignMetadata//team:0"
        );
    }
}
