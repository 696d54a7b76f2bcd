//! The production [`Reviewer`]: policy-core's Gatekeeper framework, with the policy set's
//! mutators for `/v1/mutate`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use policy_core::gatekeeper::{
    AUDIT_ENFORCEMENT_POINT, EnforcementAction, Engines, Evaluator, PolicyBundle, Process,
    ReviewOptions, SyncKind, TemplateCache, Violation,
};
use policy_core::mutation::MutationSystem;

use crate::mutate::Mutators;
use crate::review::{
    Action, ConstraintRun, ConstraintScope, Finding, Review, ReviewError, Reviewer,
};

/// Gatekeeper's enforcement point for the validating webhook (selects `scopedEnforcementActions`).
pub const ENFORCEMENT_POINT: &str = "validation.gatekeeper.sh";

/// A compiled policy directory.
#[derive(Debug, Clone)]
pub struct GatekeeperPolicies {
    bundle: PolicyBundle,
    engines: Engines,
    /// The bundle's mutator documents, for `/v1/mutate`.
    mutators: Arc<Mutators>,
}

impl GatekeeperPolicies {
    /// Serves `bundle` with `engines`. For the RVM, every template's
    /// program is compiled now (not on the first request), and the
    /// templates that stay on the interpreter are logged with the reason.
    pub fn new(bundle: PolicyBundle, engines: Engines) -> Self {
        if engines.evaluator == Evaluator::Rvm {
            for (template, reason) in bundle.interpreted_templates() {
                tracing::info!(
                    template = %template.name,
                    reason,
                    "template runs on the interpreter"
                );
            }
        }
        Self::quiet(bundle, engines)
    }

    /// Serves `bundle` without logging which templates stay on the interpreter (the cluster
    /// source rebuilds often and logs that once per template instead).
    pub fn quiet(bundle: PolicyBundle, engines: Engines) -> Self {
        let mutator_docs: Vec<(String, regorus::Value)> = bundle
            .ignored()
            .iter()
            .filter(|d| MutationSystem::is_mutator(&d.value))
            .map(|d| (d.source.clone(), d.value.clone()))
            .collect();
        let mutators = Arc::new(Mutators::from_documents(&mutator_docs));
        GatekeeperPolicies {
            bundle,
            engines,
            mutators,
        }
    }
}

/// Compiles every ConstraintTemplate, Constraint and ExpansionTemplate under `dir`.
pub fn load_dir(dir: &Path) -> Result<Arc<dyn Reviewer>, String> {
    load(
        Some(dir),
        &[],
        &[],
        Engines::default(),
        &TemplateCache::new(),
    )
}

/// Compiles the built-in `bundles` and the documents of remote bundles
/// together with the policies under `dir` (each may be absent). Templates
/// unchanged since the last load through `cache` are not compiled again.
pub fn load(
    dir: Option<&Path>,
    bundles: &[String],
    remote: &[(String, regorus::Value)],
    engines: Engines,
    cache: &TemplateCache,
) -> Result<Arc<dyn Reviewer>, String> {
    let bundle = match (dir, bundles.is_empty() && remote.is_empty()) {
        (Some(dir), true) => PolicyBundle::dir_documents(dir)
            .and_then(|docs| PolicyBundle::from_documents_cached(docs, cache)),
        (dir, _) => {
            let mut docs = policy_core::library::documents(bundles).map_err(|e| e.to_string())?;
            docs.extend(remote.iter().cloned());
            if let Some(dir) = dir {
                docs.extend(PolicyBundle::dir_documents(dir).map_err(|e| e.to_string())?);
            }
            PolicyBundle::from_documents_cached(docs, cache)
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(GatekeeperPolicies::new(bundle, engines)))
}

/// The [`crate::policy::Loader`] for a directory and built-in bundles. It keeps
/// the compiled templates of its last load, so a reload compiles only the
/// templates that changed.
pub fn loader(bundles: Vec<String>, engines: Engines) -> crate::policy::Loader {
    let cache = TemplateCache::new();
    Arc::new(
        move |dir: Option<&Path>, remote: &[(String, regorus::Value)]| {
            load(dir, &bundles, remote, engines, &cache)
        },
    )
}

/// One finding per violation and action at the enforcement point: a scoped constraint can carry
/// several (deny and warn), and the message goes to each, as Gatekeeper does.
fn findings(violations: Vec<Violation>) -> Vec<Finding> {
    let mut findings = Vec::with_capacity(violations.len());
    for v in violations {
        let mut actions: Vec<Action> = v.actions.iter().copied().map(action).collect();
        if actions.is_empty() {
            actions.push(action(v.enforcement_action));
        }
        actions.dedup();
        for a in actions {
            findings.push(Finding {
                constraint_kind: v.constraint_kind.clone(),
                constraint_name: v.constraint_name.clone(),
                msg: v.msg.clone(),
                action: a,
            });
        }
    }
    findings
}

fn action(a: EnforcementAction) -> Action {
    match a {
        EnforcementAction::Deny => Action::Deny,
        EnforcementAction::Warn => Action::Warn,
        EnforcementAction::Dryrun => Action::Dryrun,
    }
}

impl Reviewer for GatekeeperPolicies {
    fn review(&self, request: &regorus::Value, budget: Duration) -> Result<Review, ReviewError> {
        let options = ReviewOptions {
            enforcement_point: ENFORCEMENT_POINT.to_owned(),
            timeout: Some(budget),
            evaluator: self.engines.evaluator,
            disable_k8s_native_validation: !self.engines.k8s_native_validation,
            ..ReviewOptions::default()
        };
        let outcome = self
            .bundle
            .review_request(request, &options)
            .map_err(|e| match e {
                policy_core::Error::Timeout { .. } => ReviewError::Timeout(budget),
                other => ReviewError::Failed(other.to_string()),
            })?;
        let findings = findings(outcome.violations);
        let runs = outcome
            .evaluations
            .into_iter()
            .map(|e| ConstraintRun {
                kind: e.kind,
                name: e.name,
                duration: e.duration,
                violations: e.violations,
            })
            .collect();
        Ok(Review {
            findings,
            runs,
            vap_denial: outcome.vap_denial,
            audit_annotations: outcome.audit_annotations,
        })
    }

    fn template_count(&self) -> usize {
        self.bundle.template_count()
    }

    fn constraint_count(&self) -> usize {
        self.bundle.constraint_count()
    }

    fn audit(
        &self,
        object: &regorus::Value,
        namespace: Option<&regorus::Value>,
    ) -> Result<Vec<Finding>, ReviewError> {
        let options = ReviewOptions {
            enforcement_point: AUDIT_ENFORCEMENT_POINT.to_owned(),
            evaluator: self.engines.evaluator,
            disable_k8s_native_validation: !self.engines.k8s_native_validation,
            ..ReviewOptions::default()
        };
        let outcome = self
            .bundle
            .review_object_in(object, namespace, &options)
            .map_err(|e| ReviewError::Failed(e.to_string()))?;
        Ok(findings(outcome.violations))
    }

    fn constraint_scopes(&self) -> Vec<ConstraintScope> {
        self.bundle
            .constraints()
            .map(|c| ConstraintScope {
                kind: c.kind.clone(),
                name: c.name.clone(),
                matches: c.match_criteria.kinds.clone(),
            })
            .collect()
    }

    fn sync_kinds(&self) -> &[SyncKind] {
        self.bundle.sync_config().kinds()
    }

    fn is_excluded(&self, process: Process, namespace: &str) -> bool {
        self.bundle.sync_config().is_excluded(process, namespace)
    }

    fn mutators(&self) -> Option<&Mutators> {
        Some(&self.mutators)
    }

    fn with_inventory(&self, objects: &[regorus::Value]) -> Result<Arc<dyn Reviewer>, String> {
        let bundle = self
            .bundle
            .with_inventory(objects)
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(GatekeeperPolicies {
            bundle,
            engines: self.engines,
            mutators: self.mutators.clone(),
        }))
    }
}
