//! The evaluation seam between serving and policy logic.
//!
//! The admission handler only needs "review this request within this budget". [`Reviewer`] is
//! that contract; the production implementation is policy-core's Gatekeeper `PolicyBundle`
//! (see [`crate::policy`]), and tests can plug in reviewers with controlled timing.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use policy_core::gatekeeper::{KindSelector, Process, SyncKind};
use policy_core::vap::VapDenial;

/// Enforcement action of one finding, already resolved for the webhook's enforcement point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reject the request.
    Deny,
    /// Admit, with a warning shown to the user.
    Warn,
    /// Only log and count.
    Dryrun,
}

impl Action {
    /// `deny`, `warn` or `dryrun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Dryrun => "dryrun",
        }
    }
}

/// One violation reported by one constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// Constraint kind (`K8sRequiredLabels`).
    pub constraint_kind: String,
    /// Constraint name.
    pub constraint_name: String,
    /// The violation message.
    pub msg: String,
    /// What the webhook does with it.
    pub action: Action,
}

/// Timing of one constraint evaluated for a review.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstraintRun {
    /// Constraint kind.
    pub kind: String,
    /// Constraint name.
    pub name: String,
    /// Time spent evaluating it.
    pub duration: Duration,
    /// Violations it produced.
    pub violations: usize,
}

/// What one review found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Review {
    /// Violations, in evaluation order.
    pub findings: Vec<Finding>,
    /// Constraints that matched and were evaluated, in evaluation order.
    pub runs: Vec<ConstraintRun>,
    /// When a ValidatingAdmissionPolicy denies: the API server's answer, which replaces
    /// the constraints' (the API server never calls the webhook then).
    pub vap_denial: Option<VapDenial>,
    /// The ValidatingAdmissionPolicies' audit annotations, by the API server's keys.
    pub audit_annotations: BTreeMap<String, String>,
}

/// One constraint and the kinds it can match, for the audit's listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstraintScope {
    /// Constraint kind.
    pub kind: String,
    /// Constraint name.
    pub name: String,
    /// Its `spec.match.kinds` (empty: every kind).
    pub matches: Vec<KindSelector>,
}

/// Why a review produced no verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The budget ran out.
    #[error("policy evaluation timed out after {0:?}")]
    Timeout(Duration),
    /// The review itself failed (an internal error, not a violation).
    #[error("policy evaluation failed: {0}")]
    Failed(String),
}

/// A compiled policy set that can review admission requests.
pub trait Reviewer: Send + Sync + Debug + 'static {
    /// Reviews the AdmissionReview's `request` object, exactly as received. Must give up with
    /// [`ReviewError::Timeout`] once `budget` is spent (the caller stops waiting at that point
    /// anyway; giving up frees the evaluation slot).
    fn review(&self, request: &regorus::Value, budget: Duration) -> Result<Review, ReviewError>;
    /// Number of ConstraintTemplates.
    fn template_count(&self) -> usize;
    /// Number of Constraints.
    fn constraint_count(&self) -> usize;
    /// Kinds the policy set asks to have synced from the cluster into `data.inventory`
    /// (Gatekeeper `Config` / `SyncSet` documents), sorted.
    fn sync_kinds(&self) -> &[SyncKind] {
        &[]
    }
    /// Whether the policy set's `Config` excludes `namespace` from `process`.
    fn is_excluded(&self, _process: Process, _namespace: &str) -> bool {
        false
    }
    /// Reviews one object as Gatekeeper's audit does (no operation, no user), with its
    /// Namespace when known. Policy sets that cannot audit find nothing.
    fn audit(
        &self,
        _object: &regorus::Value,
        _namespace: Option<&regorus::Value>,
    ) -> Result<Vec<Finding>, ReviewError> {
        Ok(Vec::new())
    }

    /// The mutators served with this policy set on `/v1/mutate`, if it has any.
    fn mutators(&self) -> Option<&crate::mutate::Mutators> {
        None
    }

    /// Every constraint with the kinds it can match, sorted by kind and name.
    fn constraint_scopes(&self) -> Vec<ConstraintScope> {
        Vec::new()
    }

    /// The same policy set with `objects` as `data.inventory`.
    fn with_inventory(&self, _objects: &[regorus::Value]) -> Result<Arc<dyn Reviewer>, String> {
        Err("this policy set cannot take synced data".to_owned())
    }
}
