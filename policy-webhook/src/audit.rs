//! Audit of the synced objects (`--audit-interval`, with `--sync-data`).
//!
//! Admission only sees objects as they change; Gatekeeper's audit also finds what was already in
//! the cluster, or what a new constraint now forbids. With `--audit-from-cache` Gatekeeper audits
//! the objects its sync holds; this does the same with the objects `--sync-data` holds: every
//! interval (a run never overlaps the previous one), each object is reviewed as Gatekeeper's audit
//! does (no operation, no user, the audit enforcement point, its Namespace when known), skipping
//! namespaces the `Config` excludes for `audit`. A run reviews the objects one after another on
//! one blocking thread, so it never takes more than one core from admission.
//!
//! Gatekeeper writes the result into each constraint's `status`; regard-webhook does not write to
//! the cluster, so the result is logged (`violation_audited` per violation, as Gatekeeper logs),
//! exported as metrics, and served as JSON on `GET /v1/audit` of the metrics address, per
//! constraint with at most `--constraint-violations-limit` violations (the first by group,
//! version, kind, namespace, name, message, action, as Gatekeeper keeps the smallest).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use policy_core::gatekeeper::{Process, exclusion_namespace};
use regorus::Value;
use serde::Serialize;

use crate::metrics::{ActionLabels, Metrics};
use crate::namespaces::NamespaceCache;
use crate::policy::PolicyStore;
use crate::review::{Finding, ReviewError};
use crate::sync::SyncedObjects;

/// One audited violation, as Gatekeeper lists it in a constraint's `status.violations`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditViolation {
    /// API group of the object (`""` for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`""` for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The violation message.
    pub message: String,
    /// `deny`, `warn` or `dryrun`.
    pub enforcement_action: String,
}

/// One constraint's audit result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConstraintAudit {
    /// Constraint kind.
    pub kind: String,
    /// Constraint name.
    pub name: String,
    /// Every violation found.
    pub total_violations: usize,
    /// The first `--constraint-violations-limit` of them, sorted.
    pub violations: Vec<AuditViolation>,
}

/// The result of one audit run (`GET /v1/audit`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// When the run started, RFC 3339 (Gatekeeper's `auditTimestamp` and `audit_id`).
    pub audit_timestamp: String,
    /// How long the run took.
    pub duration_seconds: f64,
    /// Objects reviewed.
    pub objects: usize,
    /// Violations found, all constraints.
    pub total_violations: usize,
    /// Constraints with at least one violation, by kind and name.
    pub constraints: Vec<ConstraintAudit>,
    /// Violations by enforcement action (`deny`, `warn`, `dryrun`), all constraints.
    #[serde(skip)]
    pub by_action: BTreeMap<&'static str, usize>,
}

/// The latest report, shared with the metrics server.
pub type LatestReport = Arc<ArcSwapOption<AuditReport>>;

/// The audit loop's inputs.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Time between runs.
    pub interval: Duration,
    /// Violations kept per constraint in the report.
    pub limit: usize,
    /// The serving policy set.
    pub store: Arc<PolicyStore>,
    /// The objects to audit.
    pub objects: SyncedObjects,
    /// Namespaces for `namespaceSelector`, with `--watch-namespaces`.
    pub namespaces: Option<Arc<NamespaceCache>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where the latest report goes.
    pub latest: LatestReport,
    /// Review on every core: this process serves no admission requests (`--operation`
    /// without `webhook`). Otherwise one object after another, so admission keeps the
    /// other cores.
    pub parallel: bool,
}

impl Audit {
    /// Audits every interval, forever (after the first interval, once the synced data is ready).
    pub async fn run(self) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(loaded) = self.store.current() else {
                continue;
            };
            let Some(objects) = self.objects.snapshot_if_ready() else {
                continue;
            };
            let timestamp = jiff::Timestamp::now().to_string();
            let namespaces = self.namespaces.clone();
            let limit = self.limit;
            let metrics = self.metrics.clone();
            let run = tokio::task::spawn_blocking(move || {
                audit(
                    &*loaded.reviewer,
                    &objects,
                    namespaces.as_deref(),
                    limit,
                    timestamp,
                    &metrics,
                    self.parallel,
                )
            });
            match run.await {
                Ok(report) => {
                    record(&self.metrics, &report);
                    self.latest.store(Some(Arc::new(report)));
                }
                Err(e) => tracing::error!(error = %e, "audit run failed"),
            }
        }
    }
}

/// The Namespace called `namespace`: from the namespace cache, else among the synced objects.
fn namespace_of(
    namespace: &str,
    synced: &BTreeMap<String, Value>,
    cache: Option<&NamespaceCache>,
) -> Option<Value> {
    if namespace.is_empty() {
        return None;
    }
    cache
        .and_then(|c| c.get(namespace))
        .or_else(|| synced.get(namespace).cloned())
}

fn text(v: &Value) -> String {
    v.as_string().map(|s| s.to_string()).unwrap_or_default()
}

/// One run over `objects`.
fn audit(
    reviewer: &dyn crate::review::Reviewer,
    objects: &[Value],
    cache: Option<&NamespaceCache>,
    limit: usize,
    audit_timestamp: String,
    metrics: &Metrics,
    parallel: bool,
) -> AuditReport {
    tracing::info!(event_type = "audit_started", audit_id = %audit_timestamp, objects = objects.len(), "auditing");
    // Synced Namespaces stand in for the cache when it is off.
    let synced_namespaces: BTreeMap<String, Value> = objects
        .iter()
        .filter(|o| text(&o["apiVersion"]) == "v1" && text(&o["kind"]) == "Namespace")
        .map(|o| (text(&o["metadata"]["name"]), o.clone()))
        .collect();
    let mut tally = Tally::new(audit_timestamp, limit);
    tally.add(
        reviewer,
        objects,
        |ns| namespace_of(ns, &synced_namespaces, cache),
        |_| false,
        metrics,
        parallel,
    );
    tally.finish()
}

/// Violations counted so far in one audit run; objects are added a page at a time.
#[derive(Debug)]
pub(crate) struct Tally {
    audit_timestamp: String,
    limit: usize,
    started: Instant,
    by_constraint: BTreeMap<(String, String), (usize, Vec<AuditViolation>)>,
    reviewed: usize,
    by_action: BTreeMap<&'static str, usize>,
}

impl Tally {
    /// An empty tally for the run started at `audit_timestamp`, keeping `limit` violations per
    /// constraint.
    pub(crate) fn new(audit_timestamp: String, limit: usize) -> Self {
        Tally {
            audit_timestamp,
            limit,
            started: Instant::now(),
            by_constraint: BTreeMap::new(),
            reviewed: 0,
            by_action: BTreeMap::from([("deny", 0), ("warn", 0), ("dryrun", 0)]),
        }
    }

    /// Reviews `objects` (skipping namespaces the `Config` excludes for audit, and those
    /// `skip` names), each with the Namespace `namespace_of` finds. With `parallel` the reviews
    /// run on every core (rayon's pool, which admission does not use); the tally takes them in
    /// the objects' order either way, so the report does not depend on the threads.
    pub(crate) fn add(
        &mut self,
        reviewer: &dyn crate::review::Reviewer,
        objects: &[Value],
        namespace_of: impl Fn(&str) -> Option<Value> + Sync,
        skip: impl Fn(&str) -> bool + Sync,
        metrics: &Metrics,
        parallel: bool,
    ) {
        use rayon::prelude::*;
        let review = |object: &Value| {
            let excluded_ns = exclusion_namespace(object);
            if reviewer.is_excluded(Process::Audit, &excluded_ns) || skip(&excluded_ns) {
                return None;
            }
            let ns = namespace_of(&text(&object["metadata"]["namespace"]));
            // One object whose review panics is an audit error of that object.
            Some(
                policy_core::guard::catch(|| reviewer.audit(object, ns.as_ref()))
                    .unwrap_or_else(|panic| Err(ReviewError::Failed(panic.to_string()))),
            )
        };
        let reviews: Vec<Option<Result<Vec<Finding>, ReviewError>>> = if parallel {
            objects.par_iter().map(review).collect()
        } else {
            objects.iter().map(review).collect()
        };
        let audit_timestamp = &self.audit_timestamp;
        for (object, review) in objects.iter().zip(reviews) {
            let Some(review) = review else {
                continue;
            };
            let kind = text(&object["kind"]);
            let api_version = text(&object["apiVersion"]);
            let name = text(&object["metadata"]["name"]);
            let namespace = text(&object["metadata"]["namespace"]);
            self.reviewed += 1;
            let findings: Vec<Finding> = match review {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(resource_kind = %kind, resource_namespace = %namespace, resource_name = %name, error = %e, "auditing an object failed");
                    metrics.audit_errors.inc();
                    continue;
                }
            };
            let (group, version) = match api_version.split_once('/') {
                Some((g, v)) => (g.to_owned(), v.to_owned()),
                None => (String::new(), api_version.clone()),
            };
            for f in findings {
                *self.by_action.entry(f.action.as_str()).or_default() += 1;
                tracing::info!(
                    process = "audit",
                    event_type = "violation_audited",
                    audit_id = %audit_timestamp,
                    constraint_kind = %f.constraint_kind,
                    constraint_name = %f.constraint_name,
                    constraint_action = f.action.as_str(),
                    resource_group = %group,
                    resource_api_version = %version,
                    resource_kind = %kind,
                    resource_namespace = %namespace,
                    resource_name = %name,
                    "{}",
                    f.msg
                );
                let entry = self
                    .by_constraint
                    .entry((f.constraint_kind, f.constraint_name))
                    .or_default();
                entry.0 += 1;
                entry.1.push(AuditViolation {
                    group: group.clone(),
                    version: version.clone(),
                    kind: kind.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                    message: f.msg,
                    enforcement_action: f.action.as_str().to_owned(),
                });
                // Only the smallest `limit` are kept in the end; trimming as we go bounds memory
                // on a large cluster without changing which ones.
                if entry.1.len() > 2 * self.limit + TRIM_SLACK {
                    entry.1.sort();
                    entry.1.truncate(self.limit);
                }
            }
        }
    }

    /// The report, with at most `limit` violations per constraint.
    pub(crate) fn finish(self) -> AuditReport {
        let (audit_timestamp, limit) = (self.audit_timestamp, self.limit);
        let mut total = 0;
        let constraints: Vec<ConstraintAudit> = self
            .by_constraint
            .into_iter()
            .map(|((kind, name), (count, mut violations))| {
                total += count;
                violations.sort();
                violations.truncate(limit);
                tracing::info!(event_type = "constraint_audited", audit_id = %audit_timestamp, constraint_kind = %kind, constraint_name = %name, constraint_violations = count, "audited");
                ConstraintAudit {
                    kind,
                    name,
                    total_violations: count,
                    violations,
                }
            })
            .collect();
        let duration = self.started.elapsed();
        tracing::info!(event_type = "audit_finished", audit_id = %audit_timestamp, objects = self.reviewed, violations = total, elapsed_ms = duration.as_millis() as u64, "audit finished");
        AuditReport {
            audit_timestamp,
            duration_seconds: duration.as_secs_f64(),
            objects: self.reviewed,
            total_violations: total,
            constraints,
            by_action: self.by_action,
        }
    }
}

/// Violations beyond twice the limit collected before a trim (so trims stay rare).
const TRIM_SLACK: usize = 64;

pub(crate) fn record(metrics: &Metrics, report: &AuditReport) {
    for (action, count) in &report.by_action {
        metrics
            .audit_violations
            .get_or_create(&ActionLabels {
                enforcement_action: action,
            })
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    metrics.audit_duration.set(report.duration_seconds);
    metrics
        .audit_last_run
        .set(jiff::Timestamp::now().as_second());
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy_core::gatekeeper::{Engines, PolicyBundle};

    const TEMPLATE: &str = r#"{"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
      "metadata": {"name": "k8slabel"},
      "spec": {"crd": {"spec": {"names": {"kind": "K8sLabel"}}},
               "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego":
                 "package k8slabel\nviolation[{\"msg\": msg}] {\n  not input.review.object.metadata.labels.team\n  msg := sprintf(\"%v has no team\", [input.review.object.metadata.name])\n}"}]}}"#;
    const CONSTRAINT: &str = r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sLabel",
      "metadata": {"name": "team"}, "spec": {"enforcementAction": "warn"}}"#;

    /// The same report, object for object, whether the reviews run on one thread or on all.
    #[test]
    fn parallel_and_sequential_runs_report_the_same() {
        let bundle = PolicyBundle::from_documents(vec![
            ("t.yaml".into(), Value::from_json_str(TEMPLATE).unwrap()),
            ("c.yaml".into(), Value::from_json_str(CONSTRAINT).unwrap()),
        ])
        .unwrap();
        let reviewer = crate::gatekeeper::GatekeeperPolicies::new(bundle, Engines::default());
        let objects: Vec<Value> = (0..300)
            .map(|i| {
                let labels = if i % 3 == 0 { r#"{"team": "a"}"# } else { "{}" };
                Value::from_json_str(&format!(
                    r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p{i}", "namespace": "ns{}", "labels": {labels}}}}}"#,
                    i % 7
                ))
                .unwrap()
            })
            .collect();
        let metrics = Metrics::new();
        let run = |parallel| {
            let mut report = audit(
                &reviewer,
                &objects,
                None,
                20,
                "t".into(),
                &metrics,
                parallel,
            );
            report.duration_seconds = 0.0;
            report
        };
        let (one, all) = (run(false), run(true));
        assert_eq!((one.objects, one.total_violations), (300, 200));
        assert_eq!(one.constraints[0].violations.len(), 20);
        assert_eq!(one, all);
    }
}
