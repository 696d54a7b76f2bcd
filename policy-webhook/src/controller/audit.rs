//! The whole-cluster audit of `--policy-source cluster` (Gatekeeper's audit without
//! `--audit-from-cache`).
//!
//! Every `--audit-interval`, while this replica may audit (`is_leader`), a run lists every kind
//! some constraint can match — discovery's preferred version of each listable resource, all of
//! them when a constraint names no kinds or uses `*` — in pages of `--audit-chunk-size`
//! (`limit`/`continue`), and reviews each page off the async runtime as it arrives while the
//! next one is fetched, so memory holds two pages and the kept violations, not the cluster. Namespaces the `Config` excludes
//! for `audit`, and those exempted with `--exempt-namespace`, are skipped. The result goes to
//! `GET /v1/audit`, the metrics, and the status of every constraint through the status queue:
//! `auditTimestamp`, `totalViolations` and at most `--constraint-violations-limit` violations
//! (the smallest, written largest first, messages cut to 256 bytes, as Gatekeeper writes them).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::discovery::{Discovery, verbs};
use kube::{Api, Client};
use policy_core::gatekeeper::KindSelector;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::status::{StatusWriter, Target, Update};
use crate::audit::{AuditReport, AuditViolation, LatestReport, Tally, record};
use crate::exempt::NamespaceExemptions;
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;
use crate::policy::PolicyStore;
use crate::review::{ConstraintScope, Reviewer};

/// Longest message written into `status.violations` (Gatekeeper's cut).
const MAX_MESSAGE_BYTES: usize = 256;

/// What a cluster audit run needs.
#[derive(Clone)]
pub struct ClusterAudit {
    /// The API server.
    pub client: Client,
    /// Time between runs.
    pub interval: Duration,
    /// `--constraint-violations-limit`.
    pub limit: usize,
    /// `--audit-chunk-size`.
    pub chunk_size: u32,
    /// The serving policy set.
    pub store: Arc<PolicyStore>,
    /// The cluster's Namespaces, for `namespaceSelector`.
    pub namespaces: Option<Arc<NamespaceCache>>,
    /// `--exempt-namespace` and friends.
    pub exemptions: NamespaceExemptions,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where the latest report goes (`GET /v1/audit`).
    pub latest: LatestReport,
    /// The status queue.
    pub status: StatusWriter,
    /// Review on every core: this process serves no admission requests.
    pub parallel: bool,
}

impl std::fmt::Debug for ClusterAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAudit")
            .field("interval", &self.interval)
            .field("limit", &self.limit)
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

/// Audits every interval while `is_leader` is true, forever.
pub async fn run_cluster(ctx: ClusterAudit, is_leader: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(ctx.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        if !*is_leader.borrow() {
            continue;
        }
        if let Err(error) = run_once(&ctx).await {
            tracing::error!(%error, "audit run failed");
        }
    }
}

/// Whether `resource` can be matched by `selectors` (a constraint's `spec.match.kinds`).
fn can_match(selectors: &[KindSelector], group: &str, kind: &str) -> bool {
    selectors.is_empty()
        || selectors.iter().any(|s| {
            (s.api_groups.is_empty() || s.api_groups.iter().any(|g| g == "*" || g == group))
                && (s.kinds.is_empty() || s.kinds.iter().any(|k| k == "*" || k == kind))
        })
}

/// The listable resources some constraint can match, by discovery.
async fn kinds_to_list(
    client: &Client,
    scopes: &[ConstraintScope],
) -> Result<Vec<ApiResource>, kube::Error> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if !caps.supports_operation(verbs::LIST) {
                continue;
            }
            if !scopes
                .iter()
                .any(|s| can_match(&s.matches, &resource.group, &resource.kind))
            {
                continue;
            }
            if seen.insert((resource.group.clone(), resource.kind.clone())) {
                out.push(resource);
            }
        }
    }
    Ok(out)
}

/// One audit run: lists, reviews, reports and writes the status of every constraint.
pub async fn run_once(ctx: &ClusterAudit) -> anyhow::Result<AuditReport> {
    let Some(loaded) = ctx.store.current() else {
        anyhow::bail!("no policy set loaded yet");
    };
    let reviewer: Arc<dyn Reviewer> = loaded.reviewer.clone();
    let scopes = reviewer.constraint_scopes();
    let timestamp = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let mut tally = Tally::new(timestamp.clone(), ctx.limit);
    tracing::info!(event_type = "audit_started", audit_id = %timestamp, constraints = scopes.len(), "auditing the cluster");
    let resources = if scopes.is_empty() {
        Vec::new()
    } else {
        kinds_to_list(&ctx.client, &scopes).await?
    };
    for resource in resources {
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
        let list = |params: ListParams| {
            let api = api.clone();
            tokio::spawn(async move { api.list(&params).await })
        };
        let first = ListParams::default().limit(ctx.chunk_size);
        // The next page is fetched while this one is reviewed, so the cores that review do
        // not wait for the API server between pages.
        let mut pending = Some(list(first.clone()));
        while let Some(fetch) = pending.take() {
            let listed = match fetch.await {
                Ok(listed) => listed.map_err(|e| e.to_string()),
                Err(join) => Err(join.to_string()),
            };
            let page = match listed {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(resource = %resource.plural, group = %resource.group, %error, "listing for the audit failed; skipping the kind");
                    ctx.metrics.audit_errors.inc();
                    break;
                }
            };
            if let Some(token) = page.metadata.continue_.as_deref().filter(|c| !c.is_empty()) {
                pending = Some(list(first.clone().continue_token(token)));
            }
            let parallel = ctx.parallel;
            let (reviewer, namespaces, exemptions, metrics, resource) = (
                reviewer.clone(),
                ctx.namespaces.clone(),
                ctx.exemptions.clone(),
                ctx.metrics.clone(),
                resource.clone(),
            );
            tally = tokio::task::spawn_blocking(move || {
                let objects = to_values(page.items, &resource, parallel);
                tally.add(
                    &*reviewer,
                    &objects,
                    |ns| {
                        if ns.is_empty() {
                            return None;
                        }
                        namespaces.as_ref().and_then(|c| c.get(ns))
                    },
                    |ns| !ns.is_empty() && exemptions.is_exempt(ns),
                    &metrics,
                    parallel,
                );
                tally
            })
            .await?;
        }
    }
    let report = tally.finish();
    record(&ctx.metrics, &report);
    write_status(&ctx.status, &scopes, &report);
    ctx.latest.store(Some(Arc::new(report.clone())));
    Ok(report)
}

/// Queues every constraint's audit status: found ones with their violations, the rest clean.
fn write_status(status: &StatusWriter, scopes: &[ConstraintScope], report: &AuditReport) {
    for scope in scopes {
        let found = report
            .constraints
            .iter()
            .find(|c| c.kind == scope.kind && c.name == scope.name);
        let (total, violations) = match found {
            Some(c) => (
                c.total_violations as u64,
                c.violations.iter().rev().map(violation_json).collect(),
            ),
            None => (0, Vec::new()),
        };
        status.send(
            Target::constraint(&scope.kind, &scope.name),
            Update::Audit {
                timestamp: report.audit_timestamp.clone(),
                total,
                violations,
            },
        );
    }
}

/// A `status.violations[]` entry.
pub fn violation_json(v: &AuditViolation) -> Value {
    let mut message = v.message.clone();
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - 3;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    let mut entry = json!({
        "enforcementAction": v.enforcement_action,
        "group": v.group,
        "version": v.version,
        "kind": v.kind,
        "name": v.name,
        "message": message,
    });
    if !v.namespace.is_empty()
        && let Some(map) = entry.as_object_mut()
    {
        map.insert("namespace".to_owned(), json!(v.namespace));
    }
    entry
}

/// A page's objects as Rego values, in their order (on every core with `parallel`).
fn to_values(
    items: Vec<DynamicObject>,
    resource: &ApiResource,
    parallel: bool,
) -> Vec<regorus::Value> {
    use rayon::prelude::*;
    if parallel {
        items
            .into_par_iter()
            .filter_map(|o| to_value(o, resource))
            .collect()
    } else {
        items
            .into_iter()
            .filter_map(|o| to_value(o, resource))
            .collect()
    }
}

/// The object as a Rego value with `apiVersion` and `kind` set (list items leave them out).
fn to_value(obj: DynamicObject, resource: &ApiResource) -> Option<regorus::Value> {
    let mut json = serde_json::to_value(obj).ok()?;
    let map = json.as_object_mut()?;
    map.insert("apiVersion".to_owned(), resource.api_version.clone().into());
    map.insert("kind".to_owned(), resource.kind.clone().into());
    serde_json::from_value(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(groups: &[&str], kinds: &[&str]) -> KindSelector {
        KindSelector {
            api_groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            kinds: kinds.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn kinds_a_constraint_can_match() {
        assert!(can_match(&[], "apps", "Deployment"));
        assert!(can_match(&[sel(&[""], &["Pod"])], "", "Pod"));
        assert!(!can_match(&[sel(&[""], &["Pod"])], "apps", "Pod"));
        assert!(can_match(&[sel(&["*"], &["Pod"])], "apps", "Pod"));
        assert!(can_match(&[sel(&["apps"], &["*"])], "apps", "Deployment"));
        assert!(!can_match(&[sel(&["apps"], &["*"])], "", "Pod"));
    }

    #[test]
    fn long_messages_are_cut_as_gatekeeper_cuts_them() {
        let v = AuditViolation {
            group: String::new(),
            version: "v1".into(),
            kind: "Pod".into(),
            namespace: String::new(),
            name: "p".into(),
            message: "é".repeat(200),
            enforcement_action: "deny".into(),
        };
        let j = violation_json(&v);
        let m = j["message"].as_str().unwrap();
        assert!(m.ends_with("...") && m.len() <= 256, "{}", m.len());
        assert_eq!(m.len(), 252 + 3);
        assert!(j.get("namespace").is_none());
        assert_eq!(j["enforcementAction"], "deny");
    }

    /// List items come without `apiVersion`/`kind`; the review sees them set, in page order,
    /// with the values a parse of the JSON text gives (numbers included), on one thread or all.
    #[test]
    fn page_items_become_the_objects_reviewed() {
        let resource = ApiResource {
            group: "apps".into(),
            version: "v1".into(),
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
        };
        let items: Vec<DynamicObject> = (0..40)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": format!("d{i}"), "namespace": "shop"},
                    "spec": {"replicas": i, "ratio": 0.5, "big": 18446744073709551615u64},
                }))
                .unwrap()
            })
            .collect();
        let expected: Vec<regorus::Value> = (0..40)
            .map(|i| {
                regorus::Value::from_json_str(&format!(
                    r#"{{"apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {{"name": "d{i}", "namespace": "shop"}},
                        "spec": {{"replicas": {i}, "ratio": 0.5, "big": 18446744073709551615}}}}"#
                ))
                .unwrap()
            })
            .collect();
        assert_eq!(to_values(items.clone(), &resource, true), expected);
        assert_eq!(to_values(items, &resource, false), expected);
    }
}
