//! `POST /v1/admit`: AdmissionReview in, AdmissionReview out.
//!
//! Flow: bounded body read → envelope checks (kube's typed `AdmissionReview`, which must be
//! `admission.k8s.io/v1` or `v1beta1` and carry a request with a uid) → namespace exemption →
//! evaluation of the raw `request` JSON on one of `max_concurrent_evals` evaluation threads
//! (queueing for one counts against `eval_timeout`) → Gatekeeper's response shape, in the
//! request's apiVersion.
//!
//! Anything that is not a well-formed AdmissionReview gets HTTP 400 and a one-line message: an
//! "allowed" answer is only ever produced by evaluating a valid request (or by an explicit
//! exemption / `--timeout-policy allow`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{ObjectMeta, Resource, Status};
use policy_core::gatekeeper::Process;
use policy_core::vap::{self, VapDenial};

use crate::config::{AdmissionSettings, TimeoutPolicy};
use crate::controller::validate::{SelfValidation, Verdict};
use crate::metrics::{
    ConstraintLabels, Decision, DecisionLabels, LabelDecisionLabels, Metrics, StatusLabels,
    ViolationLabels,
};
use crate::namespaces::{Namespaces, set_namespace_object};
use crate::policy::PolicyStore;
use crate::review::{Action, Finding, Review, ReviewError};

/// `admission.k8s.io/v1`.
pub const V1: &str = "admission.k8s.io/v1";
/// `admission.k8s.io/v1beta1`.
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";
/// `status.code` Gatekeeper uses for an admitted request that carries warnings.
const HTTP_STATUS_WARNING: u16 = 299;

/// Everything the admission handler shares across requests.
#[derive(Debug)]
pub struct AdmissionState {
    pub(crate) settings: AdmissionSettings,
    pub(crate) policies: Arc<PolicyStore>,
    pub(crate) metrics: Arc<Metrics>,
    /// `max_concurrent_evals` threads that evaluate; requests queue for them.
    evaluators: crate::eval_pool::EvalPool,
    /// The cluster's Namespaces, with `--watch-namespaces`.
    pub(crate) namespaces: Option<Namespaces>,
    /// With `--policy-source cluster`: checks of the policy resources themselves.
    self_validation: Option<Arc<SelfValidation>>,
}

impl AdmissionState {
    /// State for the handler; starts the evaluation threads.
    pub fn new(
        settings: AdmissionSettings,
        policies: Arc<PolicyStore>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let evaluators = crate::eval_pool::EvalPool::new(settings.max_concurrent_evals.max(1))
            .map_err(|e| anyhow::anyhow!("starting the evaluation threads: {e}"))?;
        Ok(AdmissionState {
            settings,
            policies,
            metrics,
            evaluators,
            namespaces: None,
            self_validation: None,
        })
    }

    /// Checks requests for policy resources as Gatekeeper's webhook does before reviewing them.
    pub fn with_self_validation(mut self, validation: SelfValidation) -> Self {
        self.self_validation = Some(Arc::new(validation));
        self
    }

    /// Gives each request for a namespaced object its Namespace as `namespaceObject`.
    pub fn with_namespaces(mut self, namespaces: Namespaces) -> Self {
        self.namespaces = Some(namespaces);
        self
    }
}

/// The HTTPS router: `POST /v1/admit`, `POST /v1/admitlabel`, `POST /v1/mutate`, 404 for
/// anything else.
pub fn router(state: Arc<AdmissionState>) -> Router {
    Router::new()
        .route("/v1/admit", post(admit))
        .route("/v1/admitlabel", post(admit_label))
        .route("/v1/mutate", post(crate::mutate::mutate))
        .fallback(|| async {
            plain(
                StatusCode::NOT_FOUND,
                "not found; POST AdmissionReviews to /v1/admit",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_status,
        ))
        .with_state(state)
}

async fn count_status(
    State(state): State<Arc<AdmissionState>>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response {
    state.metrics.in_flight.inc();
    let resp = next.run(req).await;
    state.metrics.in_flight.dec();
    state
        .metrics
        .http_responses
        .get_or_create(&StatusLabels {
            code: resp.status().as_u16(),
        })
        .inc();
    resp
}

pub(crate) fn plain(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body: String = msg.into();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn bad_request(msg: impl Into<String>) -> Response {
    let msg = msg.into();
    tracing::info!(reason = %msg, "rejected admission request with HTTP 400");
    plain(StatusCode::BAD_REQUEST, msg)
}

/// The fields of the raw body evaluation needs; `request` is kept exactly as sent.
#[derive(serde::Deserialize)]
struct RawReview {
    request: regorus::Value,
}

/// `request.object` / `request.oldObject` as the typed envelope sees them: present or not.
///
/// kube's `AdmissionReview<T>` reads the envelope (uid, kind, operation, namespace, dryRun);
/// policies evaluate the raw `request` JSON (`RawReview`). Reading the objects a second
/// time into a `DynamicObject` (typed metadata plus a `serde_json::Value` of the rest) cost
/// about a tenth of a request's CPU in profiles, so the envelope skips over them instead.
#[derive(Clone, Debug, Default)]
pub struct EnvelopeObject {
    meta: ObjectMeta,
}

impl<'de> serde::Deserialize<'de> for EnvelopeObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Accepts a JSON object (well-formed, contents unread) and nothing else.
        struct AnyObject;
        impl<'de> serde::de::Visitor<'de> for AnyObject {
            type Value = EnvelopeObject;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kubernetes object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EnvelopeObject, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(EnvelopeObject::default())
            }
        }
        d.deserialize_map(AnyObject)
    }
}

impl Resource for EnvelopeObject {
    type DynamicType = ();
    type Scope = kube::core::DynamicResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// Why the body could not be read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken(String),
}

async fn read_body(
    body: Body,
    settings: &AdmissionSettings,
) -> Result<axum::body::Bytes, BodyError> {
    let limited = Limited::new(body, settings.max_body_bytes);
    match tokio::time::timeout(settings.body_read_timeout, limited.collect()).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

fn is_json(req: &Request<Body>) -> bool {
    match req.headers().get(header::CONTENT_TYPE) {
        // The API server always sends application/json; a missing header is tolerated.
        None => true,
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json")),
    }
}

/// Reads and checks the AdmissionReview of `req`: the typed envelope and the raw `request`.
/// Any problem is the HTTP answer to give instead.
async fn read_review(
    settings: &AdmissionSettings,
    req: Request<Body>,
) -> Result<(AdmissionRequest<EnvelopeObject>, regorus::Value), Response> {
    let (request, bytes) = read_envelope(settings, req).await?;
    let raw = serde_json::from_slice::<RawReview>(&bytes)
        .map_err(|e| bad_request(format!("body is not an AdmissionReview: {e}")))?
        .request;
    Ok((request, raw))
}

/// Reads and checks the AdmissionReview of `req`: the typed envelope, and the body it came
/// from. Any problem is the HTTP answer to give instead.
pub(crate) async fn read_envelope(
    settings: &AdmissionSettings,
    req: Request<Body>,
) -> Result<(AdmissionRequest<EnvelopeObject>, axum::body::Bytes), Response> {
    if !is_json(&req) {
        return Err(bad_request("Content-Type must be application/json"));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body_bytes as u64) {
        return Err(too_large(settings.max_body_bytes));
    }
    let bytes = match read_body(req.into_body(), settings).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(too_large(settings.max_body_bytes)),
        Err(BodyError::TimedOut) => {
            tracing::info!("client too slow sending the request body; closing the connection");
            let mut resp = plain(
                StatusCode::REQUEST_TIMEOUT,
                "timed out reading the request body",
            );
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Err(resp);
        }
        Err(BodyError::Broken(e)) => {
            return Err(bad_request(format!("reading the request body: {e}")));
        }
    };
    if bytes.is_empty() {
        return Err(bad_request("empty body; expected an AdmissionReview"));
    }

    let review: AdmissionReview<EnvelopeObject> = serde_json::from_slice(&bytes)
        .map_err(|e| bad_request(format!("body is not an AdmissionReview: {e}")))?;
    if review.types.kind != "AdmissionReview" {
        return Err(bad_request(format!(
            "kind is {:?}; expected \"AdmissionReview\"",
            review.types.kind
        )));
    }
    if review.types.api_version != V1 && review.types.api_version != V1BETA1 {
        return Err(bad_request(format!(
            "apiVersion is {:?}; expected {V1:?} or {V1BETA1:?}",
            review.types.api_version
        )));
    }
    let request: AdmissionRequest<EnvelopeObject> = review
        .try_into()
        .map_err(|_| bad_request("AdmissionReview has no request"))?;
    if request.uid.is_empty() {
        return Err(bad_request("request.uid is missing"));
    }
    Ok((request, bytes))
}

/// The AdmissionReview carrying `response`, in the request's apiVersion.
pub(crate) fn respond(response: AdmissionResponse) -> Response {
    match serde_json::to_vec(&response.into_review()) {
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

async fn admit(State(state): State<Arc<AdmissionState>>, req: Request<Body>) -> Response {
    let started = Instant::now();
    let (request, raw) = match read_review(&state.settings, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let answer = decide(&state, &request, raw).await;
    let labels = DecisionLabels {
        decision: answer.decision,
        dry_run: if request.dry_run { "true" } else { "false" },
    };
    state
        .metrics
        .admission_requests
        .get_or_create(&labels)
        .inc();
    state
        .metrics
        .admission_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    tracing::debug!(
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation = ?request.operation,
        decision = ?answer.decision,
        elapsed_us = started.elapsed().as_micros() as u64,
        "admission review"
    );
    respond(answer.response)
}

/// The labels that keep the `/v1/admit` webhook away from a namespace (the
/// ValidatingWebhookConfiguration's `namespaceSelector` in `deploy/`): Gatekeeper's, so that
/// namespaces labelled for Gatekeeper stay exempt after a migration, and regard's own.
pub const IGNORE_LABELS: [&str; 2] = [
    "admission.gatekeeper.sh/ignore",
    "admission.regard.dev/ignore",
];

/// `POST /v1/admitlabel`: Gatekeeper's namespace-label check. Anyone who may label a Namespace
/// could otherwise take it out of policy enforcement with one of [`IGNORE_LABELS`]; only namespaces
/// exempted with `--exempt-namespace` may carry it.
async fn admit_label(State(state): State<Arc<AdmissionState>>, req: Request<Body>) -> Response {
    let (request, raw) = match read_review(&state.settings, req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut response = AdmissionResponse::from(&request);
    let is_namespace = request.kind.group.is_empty() && request.kind.kind == "Namespace";
    let labels = &raw["object"]["metadata"]["labels"];
    let labelled = IGNORE_LABELS
        .into_iter()
        .find(|l| labels[*l] != regorus::Value::Undefined);
    let denied = labelled.filter(|_| {
        request.operation != Operation::Delete
            && is_namespace
            && !state.settings.exemptions.is_exempt(&request.name)
    });
    let decision = if let Some(label) = denied {
        response.allowed = false;
        response.result = status(
            403,
            "Forbidden",
            format!("Only exempt namespace can have the {label} label"),
        );
        tracing::info!(
            uid = %request.uid,
            namespace = %request.name,
            user = request.user_info.username.as_deref().unwrap_or(""),
            "denied the {label} label on a namespace that is not exempt"
        );
        Decision::deny
    } else {
        response.result = status(200, "", String::new());
        Decision::allow
    };
    state
        .metrics
        .label_requests
        .get_or_create(&LabelDecisionLabels { decision })
        .inc();
    respond(response)
}

fn too_large(limit: usize) -> Response {
    bad_request(format!("request body larger than {limit} bytes"))
}

struct Answer {
    decision: Decision,
    response: AdmissionResponse,
}

pub(crate) fn status(code: u16, reason: &str, message: String) -> Status {
    Status {
        code,
        reason: reason.to_owned(),
        message,
        ..Status::default()
    }
}

/// The namespace exemptions are checked against: the request's namespace, or for a Namespace
/// object its own name.
pub(crate) fn namespace_of(request: &AdmissionRequest<EnvelopeObject>) -> &str {
    if request.kind.group.is_empty() && request.kind.kind == "Namespace" {
        &request.name
    } else {
        request.namespace.as_deref().unwrap_or("")
    }
}

/// The namespace whose Namespace object a request's evaluation sees: the request's namespace,
/// unless the object is itself a Namespace (or cluster-scoped).
pub(crate) fn containing_namespace(request: &AdmissionRequest<EnvelopeObject>) -> Option<&str> {
    if request.kind.group.is_empty() && request.kind.kind == "Namespace" {
        return None;
    }
    request.namespace.as_deref().filter(|ns| !ns.is_empty())
}

async fn decide(
    state: &Arc<AdmissionState>,
    request: &AdmissionRequest<EnvelopeObject>,
    mut raw: regorus::Value,
) -> Answer {
    let settings = &state.settings;
    let mut response = AdmissionResponse::from(request);
    let error = |mut response: AdmissionResponse, code: u16, reason: &str, message: String| {
        response.allowed = false;
        response.result = status(code, reason, message);
        Answer {
            decision: Decision::error,
            response,
        }
    };

    let namespace = namespace_of(request);
    if settings.exemptions.is_exempt(namespace) {
        state.metrics.admission_exempt.inc();
        response.result = status(
            200,
            "",
            format!("namespace {namespace:?} is exempt from policy (--exempt-namespace)"),
        );
        return Answer {
            decision: Decision::allow,
            response,
        };
    }
    if request.operation == Operation::Delete && request.old_object.is_none() {
        return error(
            response,
            400,
            "BadRequest",
            "oldObject cannot be nil for DELETE operations".to_owned(),
        );
    }
    if let Some(validation) = state
        .self_validation
        .as_ref()
        .filter(|_| SelfValidation::covers(&request.kind.group))
    {
        let (validation, request_value) = (validation.clone(), raw.clone());
        // Templates are compiled here: off the async runtime.
        let verdict = tokio::task::spawn_blocking(move || validation.check(&request_value))
            .await
            .unwrap_or_else(|e| Verdict::Invalid(format!("self-validation failed: {e}")));
        match verdict {
            Verdict::Own => {
                response.result = status(200, "", "regard's own request".to_owned());
                return Answer {
                    decision: Decision::allow,
                    response,
                };
            }
            Verdict::Invalid(message) => {
                tracing::info!(kind = %request.kind.kind, name = %request.name, %message, "rejected an invalid policy resource");
                let mut answer = error(response, 422, "Invalid", message);
                answer.decision = Decision::deny;
                return answer;
            }
            Verdict::NotChecked | Verdict::Valid => {}
        }
    }
    let Some(loaded) = state.policies.current() else {
        return error(
            response,
            500,
            "InternalError",
            "policy set not loaded yet".to_owned(),
        );
    };

    if loaded.reviewer.is_excluded(Process::Webhook, namespace) {
        state.metrics.admission_exempt.inc();
        response.result = status(
            200,
            "",
            format!(
                "namespace {namespace:?} is excluded from the webhook by the policy set's Config"
            ),
        );
        return Answer {
            decision: Decision::allow,
            response,
        };
    }

    let budget = settings.eval_timeout;
    let deadline = Instant::now() + budget;
    if let Some(namespaces) = &state.namespaces {
        let namespace = match containing_namespace(request) {
            Some(name) => namespaces.lookup(name).await,
            None => None,
        };
        set_namespace_object(&mut raw, namespace);
    }
    let forbidden_name = forbidden_name(request, &raw);
    let reviewer = loaded.reviewer.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = if remaining.is_zero() {
            Err(ReviewError::Timeout(budget))
        } else {
            // policy-core contains panics inside evaluation; this also
            // covers everything around it, and keeps the thread alive.
            policy_core::guard::catch(|| reviewer.review(&raw, remaining))
                .unwrap_or_else(|panic| Err(ReviewError::Failed(panic.to_string())))
        };
        let _ = tx.send(result);
    };
    state.evaluators.spawn(job);
    let evaluation = async move {
        rx.await
            .map_err(|_| ReviewError::Failed("evaluation thread ended".to_owned()))?
    };
    let result = match tokio::time::timeout_at(deadline.into(), evaluation).await {
        Ok(r) => r,
        Err(_) => Err(ReviewError::Timeout(budget)),
    };
    let review = match result {
        Ok(review) => review,
        Err(ReviewError::Timeout(_)) => return timed_out(state, response, budget),
        Err(e @ ReviewError::Failed(_)) => {
            tracing::error!(uid = %request.uid, error = %e, "admission review failed");
            return error(response, 500, "InternalError", e.to_string());
        }
    };
    record(state, request, &review);

    response.audit_annotations = review
        .audit_annotations
        .iter()
        .filter_map(|(k, v)| Some((vap::webhook_annotation_key(k)?, v.clone())))
        .collect();
    let is_vap = |f: &&Finding| f.constraint_kind == vap::BINDING_KIND;
    if let Some(denial) = &review.vap_denial {
        // The API server runs ValidatingAdmissionPolicies first and, when one denies, never
        // calls the webhook: its answer alone, with the policies' warnings.
        let warn: Vec<String> = review
            .findings
            .iter()
            .filter(|f| is_vap(f) && f.action == Action::Warn)
            .map(|f| f.msg.clone())
            .collect();
        if !warn.is_empty() {
            response.warnings = Some(warn);
        }
        response.allowed = false;
        response.result = vap_status(request, forbidden_name, denial);
        return Answer {
            decision: Decision::deny,
            response,
        };
    }
    let mut deny = Vec::new();
    let mut warn = Vec::new();
    for f in &review.findings {
        // The API server's warning text for a policy; Gatekeeper's `[constraint] msg` else.
        let line = if is_vap(&f) {
            f.msg.clone()
        } else {
            format!("[{}] {}", f.constraint_name, f.msg)
        };
        match f.action {
            Action::Deny => deny.push(line),
            Action::Warn => warn.push(line),
            Action::Dryrun => {}
        }
    }
    if !warn.is_empty() {
        response.warnings = Some(warn);
    }
    if deny.is_empty() {
        let code = if response.warnings.is_some() {
            HTTP_STATUS_WARNING
        } else {
            200
        };
        response.result = status(code, "", String::new());
        Answer {
            decision: Decision::allow,
            response,
        }
    } else {
        response.allowed = false;
        response.result = status(403, "Forbidden", deny.join("\n"));
        Answer {
            decision: Decision::deny,
            response,
        }
    }
}

/// The name `admission.NewForbidden` puts in its message: the request's, else the object's
/// name or generateName, else `Unknown`.
fn forbidden_name(request: &AdmissionRequest<EnvelopeObject>, raw: &regorus::Value) -> String {
    if !request.name.is_empty() {
        return request.name.clone();
    }
    let meta = &raw["object"]["metadata"];
    [&meta["name"], &meta["generateName"]]
        .into_iter()
        .find_map(|v| match v {
            regorus::Value::String(s) if !s.is_empty() => Some(s.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "Unknown".to_owned())
}

/// The Status the API server answers a ValidatingAdmissionPolicy denial with: its dispatcher's
/// message wrapped by `admission.NewForbidden` (`<resource>.<group> "<name>" is forbidden: ...`),
/// the validation's reason and that reason's code, the message again as the cause.
fn vap_status(
    request: &AdmissionRequest<EnvelopeObject>,
    name: String,
    denial: &VapDenial,
) -> Status {
    let resource = &request.resource;
    let qualified = if resource.group.is_empty() {
        resource.resource.clone()
    } else {
        format!("{}.{}", resource.resource, resource.group)
    };
    Status {
        status: Some(StatusSummary::Failure),
        code: denial.code,
        message: format!("{qualified} {name:?} is forbidden: {}", denial.message),
        reason: denial.reason.clone(),
        details: Some(StatusDetails {
            name,
            group: resource.group.clone(),
            kind: resource.resource.clone(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason: String::new(),
                message: denial.message.clone(),
                field: String::new(),
            }],
            retry_after_seconds: 0,
        }),
        ..Status::default()
    }
}

fn timed_out(state: &AdmissionState, mut response: AdmissionResponse, budget: Duration) -> Answer {
    state.metrics.admission_timeouts.inc();
    let policy = state.settings.timeout_policy;
    let message = format!(
        "regard-webhook: policy evaluation timed out after {budget:?} (--timeout-policy {})",
        policy.as_str()
    );
    tracing::warn!(uid = %response.uid, "{message}");
    match policy {
        TimeoutPolicy::Deny => {
            response.allowed = false;
            response.result = status(504, "Timeout", message);
            Answer {
                decision: Decision::deny,
                response,
            }
        }
        TimeoutPolicy::Allow => {
            response.warnings = Some(vec![message]);
            response.result = status(HTTP_STATUS_WARNING, "", String::new());
            Answer {
                decision: Decision::allow,
                response,
            }
        }
    }
}

/// Per-constraint metrics and result logging.
fn record(state: &AdmissionState, request: &AdmissionRequest<EnvelopeObject>, review: &Review) {
    for run in &review.runs {
        state
            .metrics
            .constraint_duration
            .get_or_create(&ConstraintLabels {
                kind: run.kind.clone(),
                name: run.name.clone(),
            })
            .observe(run.duration.as_secs_f64());
    }
    for f in &review.findings {
        state
            .metrics
            .constraint_violations
            .get_or_create(&ViolationLabels {
                kind: f.constraint_kind.clone(),
                name: f.constraint_name.clone(),
                action: f.action.as_str(),
            })
            .inc();
        if f.action == Action::Dryrun || state.settings.log_denies {
            // Gatekeeper's --log-denies record: the same keys and message prefix, so log
            // pipelines built for it keep working.
            tracing::info!(
                process = "admission",
                event_type = "violation",
                constraint_group = policy_core::gatekeeper::CONSTRAINT_GROUP,
                constraint_kind = %f.constraint_kind,
                constraint_name = %f.constraint_name,
                constraint_action = f.action.as_str(),
                resource_group = %request.kind.group,
                resource_api_version = %request.kind.version,
                resource_kind = %request.kind.kind,
                resource_namespace = request.namespace.as_deref().unwrap_or(""),
                resource_name = %request.name,
                request_uid = %request.uid,
                request_username = request.user_info.username.as_deref().unwrap_or(""),
                dry_run = request.dry_run,
                "denied admission: {}",
                f.msg
            );
        }
    }
}
