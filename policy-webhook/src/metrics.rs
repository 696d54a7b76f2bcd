//! Prometheus metrics, served as OpenMetrics text on `--metrics-addr` `/metrics`.
//!
//! All series are prefixed `regard_webhook_`. Label values come from the loaded policy set
//! (constraint kind and name) or from small fixed sets, never from request data, so the number of
//! series stays bounded by the policy set.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Outcome of one admission review, as counted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Decision {
    /// Admitted (with or without warnings).
    allow,
    /// Rejected by a deny result, or by `--timeout-policy deny`.
    deny,
    /// Rejected because evaluation failed.
    error,
}

/// Success or failure of a reload.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Outcome {
    /// The new files were loaded.
    success,
    /// The new files were rejected; the previous set stays.
    failure,
}

/// Labels of `admission_requests_total` and `admission_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// The decision.
    pub decision: Decision,
    /// Whether the request was a dry run (`"true"`/`"false"`).
    pub dry_run: &'static str,
}

/// Labels of the sync metrics: the synced kind (`networking.k8s.io/v1 Ingress`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// The kind, from the policy set's `Config`/`SyncSet`.
    pub kind: String,
}

/// Labels of `audit_violations`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `deny`, `warn` or `dryrun`.
    pub enforcement_action: &'static str,
}

/// Labels of `namespace_label_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LabelDecisionLabels {
    /// The decision.
    pub decision: Decision,
}

/// Labels naming one constraint.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConstraintLabels {
    /// Constraint kind (the template's CRD kind).
    pub kind: String,
    /// Constraint name.
    pub name: String,
}

/// Labels of `constraint_violations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ViolationLabels {
    /// Constraint kind.
    pub kind: String,
    /// Constraint name.
    pub name: String,
    /// Resolved enforcement action (`deny`, `warn`, `dryrun`).
    pub action: &'static str,
}

/// Labels of `http_responses_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// HTTP status code.
    pub code: u16,
}

/// Labels of the reload counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// Whether the reload succeeded.
    pub result: Outcome,
}

/// Where a request's Namespace came from (`--watch-namespaces`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LookupResult {
    /// The watch cache.
    cache,
    /// A direct read from the API server (not cached yet).
    api,
    /// The API server does not know the namespace.
    not_found,
    /// The API server could not be asked or did not answer in time.
    error,
}

/// Where a pulled bundle layer came from.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum LayerSource {
    /// Downloaded from the registry.
    registry,
    /// Kept from an earlier pull of the same source (same digest).
    cache,
}

/// Labels of `bundle_layers_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LayerLabels {
    /// Where the layer came from.
    pub from: LayerSource,
}

/// Labels of `namespace_lookups_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LookupLabels {
    /// Where the Namespace came from.
    pub result: LookupResult,
}

/// Histogram constructor with fixed buckets (a plain `fn` pointer so families can be cloned).
#[derive(Clone, Debug)]
pub struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

const ADMISSION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
const CONSTRAINT_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1,
    0.5, 1.0,
];

/// Every metric the webhook exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Admission reviews answered, by decision and dry-run flag.
    pub admission_requests: Family<DecisionLabels, Counter>,
    /// Admission latency from the first body byte to the response, by decision.
    pub admission_duration: Family<DecisionLabels, Histogram, Buckets>,
    /// Requests admitted without evaluation: `--exempt-namespace`, or excluded by the policy set's Config.
    pub admission_exempt: Counter,
    /// Reviews that exceeded `--eval-timeout`.
    pub admission_timeouts: Counter,
    /// HTTP responses on the admission port, by status code.
    pub http_responses: Family<StatusLabels, Counter>,
    /// Requests currently being handled on the admission port.
    pub in_flight: Gauge,
    /// Evaluation time per constraint.
    pub constraint_duration: Family<ConstraintLabels, Histogram, Buckets>,
    /// Violations per constraint and enforcement action.
    pub constraint_violations: Family<ViolationLabels, Counter>,
    /// Policy directory reloads.
    pub policy_reloads: Family<ReloadLabels, Counter>,
    /// Pulls of remote bundles (`--bundle oci://…`), by result.
    pub bundle_pulls: Family<ReloadLabels, Counter>,
    /// Layers of pulled OCI bundles, by where they came from.
    pub bundle_layers: Family<LayerLabels, Counter>,
    /// ConstraintTemplates in the serving policy set.
    pub templates: Gauge,
    /// Constraints in the serving policy set.
    pub constraints: Gauge,
    /// Certificate/key reloads.
    pub tls_reloads: Family<ReloadLabels, Counter>,
    /// `notAfter` of the served leaf certificate, Unix seconds.
    pub tls_cert_expiry: Gauge,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: Counter,
    /// `/v1/admitlabel` reviews answered, by decision.
    pub label_requests: Family<LabelDecisionLabels, Counter>,
    /// Namespaces in the watch cache (`--watch-namespaces`).
    pub namespaces_cached: Gauge,
    /// Namespace lookups for admission requests, by where the answer came from.
    pub namespace_lookups: Family<LookupLabels, Counter>,
    /// Failed list/watch calls of the Namespace watch (each is retried with backoff).
    pub namespace_watch_errors: Counter,
    /// Objects in `data.inventory` from the cluster (`--sync-data`).
    pub synced_objects: Gauge,
    /// Failed discovery or list/watch calls of the data sync, by kind (retried).
    pub sync_errors: Family<SyncLabels, Counter>,
    /// Violations the last audit found, by enforcement action.
    pub audit_violations: Family<ActionLabels, Gauge>,
    /// Duration of the last audit run, seconds.
    pub audit_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// When the last audit run ended, Unix seconds.
    pub audit_last_run: Gauge,
    /// Objects the audit could not review.
    pub audit_errors: Counter,
    /// `/v1/mutate`.
    pub mutation: MutationMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("regard_webhook");
        let m = Metrics {
            admission_requests: Family::default(),
            admission_duration: Family::new_with_constructor(Buckets(ADMISSION_BUCKETS)),
            admission_exempt: Counter::default(),
            admission_timeouts: Counter::default(),
            http_responses: Family::default(),
            in_flight: Gauge::default(),
            constraint_duration: Family::new_with_constructor(Buckets(CONSTRAINT_BUCKETS)),
            constraint_violations: Family::default(),
            policy_reloads: Family::default(),
            bundle_pulls: Family::default(),
            bundle_layers: Family::default(),
            templates: Gauge::default(),
            constraints: Gauge::default(),
            tls_reloads: Family::default(),
            tls_cert_expiry: Gauge::default(),
            tls_handshake_failures: Counter::default(),
            label_requests: Family::default(),
            namespaces_cached: Gauge::default(),
            namespace_lookups: Family::default(),
            namespace_watch_errors: Counter::default(),
            synced_objects: Gauge::default(),
            sync_errors: Family::default(),
            audit_violations: Family::default(),
            audit_duration: Gauge::default(),
            audit_last_run: Gauge::default(),
            audit_errors: Counter::default(),
            mutation: MutationMetrics::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "admission_requests",
            "Admission reviews answered, by decision",
            m.admission_requests.clone(),
        );
        r.register(
            "admission_duration_seconds",
            "Admission review latency (body read, parse, evaluation, encoding)",
            m.admission_duration.clone(),
        );
        r.register(
            "admission_exempt",
            "Admission reviews admitted without evaluation (--exempt-namespace or a Config exclusion)",
            m.admission_exempt.clone(),
        );
        r.register(
            "admission_timeouts",
            "Admission reviews whose evaluation exceeded --eval-timeout",
            m.admission_timeouts.clone(),
        );
        r.register(
            "http_responses",
            "HTTP responses on the admission port, by status code",
            m.http_responses.clone(),
        );
        r.register(
            "in_flight_requests",
            "Requests being handled on the admission port",
            m.in_flight.clone(),
        );
        r.register(
            "constraint_evaluation_duration_seconds",
            "Evaluation time of one constraint for one review",
            m.constraint_duration.clone(),
        );
        r.register(
            "constraint_violations",
            "Violations found, by constraint and enforcement action",
            m.constraint_violations.clone(),
        );
        r.register(
            "policy_reloads",
            "Policy directory reloads, by result",
            m.policy_reloads.clone(),
        );
        r.register(
            "bundle_pulls",
            "Remote bundle pulls and digest checks, by result",
            m.bundle_pulls.clone(),
        );
        r.register(
            "bundle_layers",
            "Layers of pulled OCI bundles: downloaded from the registry, or kept from an earlier pull (same digest)",
            m.bundle_layers.clone(),
        );
        r.register(
            "policy_templates",
            "ConstraintTemplates in the serving policy set",
            m.templates.clone(),
        );
        r.register(
            "policy_constraints",
            "Constraints in the serving policy set",
            m.constraints.clone(),
        );
        r.register(
            "tls_reloads",
            "Certificate and key reloads, by result",
            m.tls_reloads.clone(),
        );
        r.register(
            "tls_certificate_expiry_timestamp_seconds",
            "notAfter of the served certificate, Unix time",
            m.tls_cert_expiry.clone(),
        );
        r.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            m.tls_handshake_failures.clone(),
        );
        r.register(
            "namespace_label_requests",
            "Namespace-label reviews (/v1/admitlabel) answered, by decision",
            m.label_requests.clone(),
        );
        r.register(
            "namespaces_cached",
            "Namespaces in the watch cache (--watch-namespaces)",
            m.namespaces_cached.clone(),
        );
        r.register(
            "namespace_lookups",
            "Namespace lookups for admission requests, by source",
            m.namespace_lookups.clone(),
        );
        r.register(
            "namespace_watch_errors",
            "Failed list/watch calls of the Namespace watch (retried with backoff)",
            m.namespace_watch_errors.clone(),
        );
        r.register(
            "synced_objects",
            "Objects synced from the cluster into data.inventory (--sync-data)",
            m.synced_objects.clone(),
        );
        r.register(
            "sync_errors",
            "Failed discovery or list/watch calls of the data sync, by kind (retried)",
            m.sync_errors.clone(),
        );
        r.register(
            "audit_violations",
            "Violations the last audit found, by enforcement action",
            m.audit_violations.clone(),
        );
        r.register(
            "audit_duration_seconds",
            "Duration of the last audit run",
            m.audit_duration.clone(),
        );
        r.register(
            "audit_last_run_timestamp_seconds",
            "When the last audit run ended, Unix time",
            m.audit_last_run.clone(),
        );
        r.register(
            "audit_errors",
            "Objects the audit could not review",
            m.audit_errors.clone(),
        );
        m.mutation.register(r);
        Metrics { registry, ..m }
    }

    /// Renders every metric as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What `/v1/mutate` did with one request.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum MutationResult {
    /// At least one mutator changed the object; the response carries a patch.
    mutated,
    /// Mutators ran and changed nothing (or none is loaded).
    unchanged,
    /// Not mutated by rule: not CREATE/UPDATE, an exempt or excluded namespace, a Gatekeeper
    /// resource.
    skipped,
    /// Mutation failed (a mutator error, no convergence, a bad object): the request is refused.
    error,
}

/// Labels of `mutation_requests_total` and `mutation_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MutationLabels {
    /// What was done.
    pub result: MutationResult,
}

/// Labels naming one mutator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MutatorLabels {
    /// `Assign`, `AssignMetadata`, `ModifySet` or `AssignImage`.
    pub kind: String,
    /// Mutator name.
    pub name: String,
}

/// The `/v1/mutate` metrics. Mutator names come from the loaded policy set, as constraint
/// names do.
#[derive(Debug)]
pub struct MutationMetrics {
    /// Mutation reviews answered, by result.
    pub requests: Family<MutationLabels, Counter>,
    /// Mutation review latency, by result.
    pub duration: Family<MutationLabels, Histogram, Buckets>,
    /// Objects each mutator changed.
    pub applied: Family<MutatorLabels, Counter>,
    /// Mutators in the serving policy set that are applied.
    pub mutators: Gauge,
    /// Mutator documents of the serving policy set that were rejected (logged at load).
    pub mutator_errors: Gauge,
    /// Mutators disabled because their schemas conflict with another's.
    pub conflicts: Gauge,
}

impl Default for MutationMetrics {
    fn default() -> Self {
        MutationMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(Buckets(ADMISSION_BUCKETS)),
            applied: Family::default(),
            mutators: Gauge::default(),
            mutator_errors: Gauge::default(),
            conflicts: Gauge::default(),
        }
    }
}

impl MutationMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "mutation_requests",
            "Mutation reviews (/v1/mutate) answered, by result",
            self.requests.clone(),
        );
        r.register(
            "mutation_duration_seconds",
            "Mutation review latency (body read, parse, mutation, patch, encoding)",
            self.duration.clone(),
        );
        r.register(
            "mutations_applied",
            "Objects a mutator changed, by mutator",
            self.applied.clone(),
        );
        r.register(
            "mutators",
            "Mutators in the serving policy set",
            self.mutators.clone(),
        );
        r.register(
            "mutator_errors",
            "Mutator documents of the serving policy set that were rejected",
            self.mutator_errors.clone(),
        );
        r.register(
            "mutator_conflicts",
            "Mutators disabled because their schemas conflict",
            self.conflicts.clone(),
        );
    }
}

/// Content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_families() {
        let m = Metrics::new();
        m.admission_requests
            .get_or_create(&DecisionLabels {
                decision: Decision::deny,
                dry_run: "false",
            })
            .inc();
        m.templates.set(3);
        let text = m.encode();
        assert!(text.contains(
            "regard_webhook_admission_requests_total{decision=\"deny\",dry_run=\"false\"} 1\n"
        ));
        assert!(text.contains("regard_webhook_policy_templates 3\n"));
        assert!(
            text.contains("# TYPE regard_webhook_tls_certificate_expiry_timestamp_seconds gauge\n")
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
