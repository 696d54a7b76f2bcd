//! Constraints: instances of a template's kind, with `spec.match`,
//! `spec.parameters` and the enforcement action.

use regorus::Value;

use super::matching::MatchCriteria;
use super::object::{is_absent, str_at, value_at};
use super::template::CompiledTemplate;
use crate::error::Error;

/// API group of constraints.
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";

/// What happens when a constraint is violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EnforcementAction {
    /// Reject the request (and fail `gk test`).
    Deny,
    /// Admit with a warning.
    Warn,
    /// Only record.
    Dryrun,
}

impl EnforcementAction {
    /// `"deny"`, `"warn"` or `"dryrun"`.
    ///
    /// ```
    /// use policy_core::gatekeeper::EnforcementAction;
    /// assert_eq!(EnforcementAction::Warn.as_str(), "warn");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            EnforcementAction::Deny => "deny",
            EnforcementAction::Warn => "warn",
            EnforcementAction::Dryrun => "dryrun",
        }
    }

    /// Parses `deny`, `warn` or `dryrun`.
    pub fn parse(s: &str) -> Option<EnforcementAction> {
        match s {
            "deny" => Some(EnforcementAction::Deny),
            "warn" => Some(EnforcementAction::Warn),
            "dryrun" => Some(EnforcementAction::Dryrun),
            _ => None,
        }
    }
}

/// One `scopedEnforcementActions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedAction {
    /// The action.
    pub action: EnforcementAction,
    /// Enforcement point names (`*` = all).
    pub enforcement_points: Vec<String>,
}

/// A loaded constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// Its kind (the template's CRD kind).
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// Where it came from.
    pub file: String,
    /// `spec.match`.
    pub match_criteria: MatchCriteria,
    /// `spec.parameters` (`{}` when absent).
    pub parameters: Value,
    /// `spec.enforcementAction` as written (`deny` by default; may be `scoped`).
    pub enforcement_action: String,
    /// `spec.scopedEnforcementActions` (used when the action is `scoped`).
    pub scoped_actions: Vec<ScopedAction>,
    /// The whole resource, as reports show it.
    pub resource: Value,
}

/// Whether a document is a constraint (any kind in the constraints group).
pub(crate) fn is_constraint(doc: &Value) -> bool {
    str_at(doc, &["apiVersion"])
        .is_some_and(|v| v.split_once('/').map(|(g, _)| g) == Some(CONSTRAINT_GROUP))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

impl Constraint {
    /// Reads and validates a constraint against its compiled template.
    pub(crate) fn from_value(
        file: &str,
        doc: &Value,
        template: &CompiledTemplate,
    ) -> Result<Constraint, Error> {
        let kind = str_at(doc, &["kind"]).unwrap_or("").to_owned();
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned();
        let err = |m: String| Error::Constraint {
            file: file.to_owned(),
            kind: kind.clone(),
            name: name.clone(),
            message: m,
        };
        let api = str_at(doc, &["apiVersion"]).unwrap_or("");
        let version = api.split_once('/').map(|(_, v)| v).unwrap_or("");
        if !matches!(version, "v1alpha1" | "v1beta1") {
            return Err(err(format!(
                "unsupported version {version:?} for Constraint; supported versions: v1alpha1, v1beta1"
            )));
        }
        if !is_dns1123_subdomain(&name) {
            return Err(err(format!(
                "invalid name {name:?}: must be a lowercase RFC 1123 subdomain"
            )));
        }
        if name.len() > 63 {
            return Err(Error::ParametersSchema {
                file: file.to_owned(),
                kind: kind.clone(),
                name: name.clone(),
                field: String::new(),
                message: "metadata.name: must be no more than 63 characters".to_owned(),
            });
        }
        if kind != template.meta.kind {
            return Err(err(format!(
                "wrong kind {kind:?}; want {:?}",
                template.meta.kind
            )));
        }
        let match_criteria =
            MatchCriteria::from_value(value_at(doc, &["spec", "match"])).map_err(err)?;
        let enforcement_action = match value_at(doc, &["spec", "enforcementAction"]) {
            Value::Undefined | Value::Null => "deny".to_owned(),
            Value::String(s) if s.is_empty() => "deny".to_owned(),
            Value::String(s) => s.to_string(),
            _ => {
                return Err(err(
                    "invalid spec.enforcementAction: must be a string".to_owned()
                ));
            }
        };
        let mut scoped_actions = Vec::new();
        if enforcement_action == "scoped" {
            let Value::Array(entries) = value_at(doc, &["spec", "scopedEnforcementActions"]) else {
                return Err(err(
                    "missing required field: spec.scopedEnforcementActions must be defined"
                        .to_owned(),
                ));
            };
            for (i, e) in entries.iter().enumerate() {
                let action_s = str_at(e, &["action"]).unwrap_or("");
                let action = EnforcementAction::parse(action_s).ok_or_else(|| {
                    err(format!(
                        "spec.scopedEnforcementActions[{i}].action: invalid enforcement action {action_s:?} (want deny, warn or dryrun)"
                    ))
                })?;
                let points = match &e["enforcementPoints"] {
                    Value::Array(p) => p
                        .iter()
                        .filter_map(|p| str_at(p, &["name"]).map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                scoped_actions.push(ScopedAction {
                    action,
                    enforcement_points: points,
                });
            }
        } else if EnforcementAction::parse(&enforcement_action).is_none() {
            return Err(err(format!(
                "invalid enforcementAction {enforcement_action:?} (want deny, warn, dryrun or scoped)"
            )));
        }
        let parameters = match value_at(doc, &["spec", "parameters"]) {
            v if is_absent(v) => Value::new_object(),
            v => v.clone(),
        };
        if let Some(schema) = &template.schema
            && !is_absent(value_at(doc, &["spec", "parameters"]))
            && let Some(problem) = schema.check(&parameters)
        {
            if problem.schema {
                return Err(Error::ParametersSchema {
                    file: file.to_owned(),
                    kind,
                    name,
                    field: problem.field,
                    message: problem.message,
                });
            }
            return Err(err(format!(
                "spec.parameters: {}",
                problem.message.replacen("\"/", "\"spec.parameters/", 1)
            )));
        }
        Ok(Constraint {
            kind,
            name,
            file: file.to_owned(),
            match_criteria,
            parameters,
            enforcement_action,
            scoped_actions,
            resource: doc.clone(),
        })
    }

    /// The actions this constraint takes at an enforcement point, strongest
    /// first. Empty means a scoped constraint that does not apply there (it
    /// is then not evaluated at all). An empty point means every point.
    pub fn actions_at(&self, enforcement_point: &str) -> Vec<EnforcementAction> {
        if self.enforcement_action != "scoped" {
            return EnforcementAction::parse(&self.enforcement_action)
                .into_iter()
                .collect();
        }
        let mut out: Vec<EnforcementAction> = self
            .scoped_actions
            .iter()
            .filter(|s| {
                enforcement_point.is_empty()
                    || s.enforcement_points
                        .iter()
                        .any(|p| p == "*" || p == enforcement_point)
            })
            .map(|s| s.action)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("must-have-owner"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("Bad"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain(""));
    }
}
