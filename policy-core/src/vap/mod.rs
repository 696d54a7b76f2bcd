//! Kubernetes `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`
//! (`admissionregistration.k8s.io/v1`), evaluated offline on the CEL engine.
//!
//! Flow: [`VapSet::add`] reads the policies and bindings among a bundle's
//! documents and compiles each policy's CEL once ([`crate::cel::validator`],
//! with `params` visible everywhere, as in the API server);
//! [`VapSet::with_params`] keeps, per binding, the documents of its policy's
//! `paramKind`. For each review [`VapSet::evaluate`] matches every binding
//! (the policy's `matchConstraints`, then the binding's `matchResources`:
//! resource rules with operations, exclusions, namespace and object
//! selectors), resolves its params (`paramRef` name or selector, in the
//! request's namespace or the given one, `parameterNotFoundAction`), runs the
//! validations once per param object and turns each failed validation into a
//! [`Finding`] carrying the message the API server forms and the binding's
//! `validationActions`.
//!
//! Objects reviewed as plain documents (`regard gk test`) have no admission
//! operation: they are matched as `CREATE`. Their resource is derived from
//! the kind (lower case, plural), as the API server's discovery would give it
//! for the built-in kinds.

pub mod generate;

use std::collections::BTreeMap;
use std::sync::Arc;

use regorus::Value;

use crate::cel::Dialect;
use crate::cel::validator::{Activation, FailurePolicy, Validator, ValidatorSource};
use crate::cel::{Val, to_val};
use crate::error::Error;
use crate::gatekeeper::LabelSelector;

const GROUP_VERSION: &str = "admissionregistration.k8s.io/v1";

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    match cur {
        Value::String(s) => Some(s.as_ref()),
        _ => None,
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    list(v)
        .iter()
        .filter_map(|s| match s {
            Value::String(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

fn selector(v: &Value, what: &str) -> Result<Option<LabelSelector>, String> {
    if matches!(v, Value::Undefined | Value::Null) {
        return Ok(None);
    }
    let json = serde_json::to_value(v).map_err(|e| format!("{what}: {e}"))?;
    serde_json::from_value(json)
        .map(Some)
        .map_err(|e| format!("{what}: {e}"))
}

/// Whether `kind` is a document of this API.
fn is(doc: &Value, kind: &str) -> bool {
    str_at(doc, &["kind"]) == Some(kind) && str_at(doc, &["apiVersion"]) == Some(GROUP_VERSION)
}

/// Whether a document is a ValidatingAdmissionPolicy or a binding.
pub(crate) fn is_vap_document(doc: &Value) -> bool {
    is(doc, "ValidatingAdmissionPolicy") || is(doc, "ValidatingAdmissionPolicyBinding")
}

/// One `resourceRules` / `excludeResourceRules` entry.
#[derive(Debug, Clone, Default)]
struct Rule {
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    resources: Vec<String>,
    operations: Vec<String>,
    scope: String,
    resource_names: Vec<String>,
}

impl Rule {
    fn from_value(v: &Value) -> Rule {
        Rule {
            api_groups: strings(&v["apiGroups"]),
            api_versions: strings(&v["apiVersions"]),
            resources: strings(&v["resources"]),
            operations: strings(&v["operations"]),
            scope: str_at(v, &["scope"]).unwrap_or("*").to_owned(),
            resource_names: strings(&v["resourceNames"]),
        }
    }

    fn matches(&self, r: &Request<'_>, with_operation: bool) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
        let resource = if r.sub_resource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.sub_resource)
        };
        let resource_ok = self.resources.iter().any(|x| {
            x == "*"
                || *x == resource
                || (x == "*/*" && !r.sub_resource.is_empty())
                || x.strip_suffix("/*") == Some(r.resource.as_str()) && !r.sub_resource.is_empty()
                || x.strip_prefix("*/") == Some(r.sub_resource) && !r.sub_resource.is_empty()
        });
        let scope_ok = match self.scope.as_str() {
            "Cluster" => r.namespace.is_empty(),
            "Namespaced" => !r.namespace.is_empty(),
            _ => true,
        };
        let operation_ok = !with_operation || any(&self.operations, r.operation);
        let name_ok =
            self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == r.name);
        any(&self.api_groups, r.group)
            && any(&self.api_versions, r.version)
            && resource_ok
            && scope_ok
            && operation_ok
            && name_ok
    }
}

/// `matchConstraints` / `matchResources`.
#[derive(Debug, Clone, Default)]
struct MatchResources {
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    resource_rules: Vec<Rule>,
    exclude: Vec<Rule>,
}

impl MatchResources {
    fn from_value(v: &Value) -> Result<MatchResources, String> {
        Ok(MatchResources {
            namespace_selector: selector(&v["namespaceSelector"], "namespaceSelector")?,
            object_selector: selector(&v["objectSelector"], "objectSelector")?,
            resource_rules: list(&v["resourceRules"])
                .iter()
                .map(Rule::from_value)
                .collect(),
            exclude: list(&v["excludeResourceRules"])
                .iter()
                .map(Rule::from_value)
                .collect(),
        })
    }

    /// The API server's order: namespace selector, object selector,
    /// exclusions, rules. `rules_required`: a policy's rules must match; a
    /// binding without rules adds no limit.
    fn matches(&self, r: &Request<'_>, rules_required: bool) -> bool {
        if let Some(sel) = &self.namespace_selector {
            // Cluster-scoped objects other than Namespaces are not limited;
            // a Namespace is matched by its own labels.
            let labels = if r.kind == "Namespace" && r.group.is_empty() {
                Some(crate::gatekeeper::labels_of(r.object_or_old()))
            } else if r.namespace.is_empty() {
                None
            } else {
                Some(
                    r.namespace_object
                        .map(crate::gatekeeper::labels_of)
                        .unwrap_or_default(),
                )
            };
            if let Some(labels) = labels
                && !sel.matches(&labels)
            {
                return false;
            }
        }
        if let Some(sel) = &self.object_selector {
            let new = crate::gatekeeper::labels_of(r.object);
            let old = crate::gatekeeper::labels_of(r.old_object);
            let absent = |v: &Value| matches!(v, Value::Null | Value::Undefined);
            let new_matches = !absent(r.object) && sel.matches(&new);
            let old_matches = !absent(r.old_object) && sel.matches(&old);
            if !new_matches && !old_matches {
                return false;
            }
        }
        if self.exclude.iter().any(|rule| rule.matches(r, true)) {
            return false;
        }
        if self.resource_rules.is_empty() {
            return !rules_required;
        }
        self.resource_rules.iter().any(|rule| rule.matches(r, true))
    }
}

/// A compiled ValidatingAdmissionPolicy.
#[derive(Debug)]
struct Policy {
    name: String,
    match_constraints: MatchResources,
    /// `(apiVersion, kind)` of `paramKind`.
    param_kind: Option<(String, String)>,
    validator: Validator,
    failure_policy: FailurePolicy,
}

/// `paramRef`.
#[derive(Debug, Clone)]
struct ParamRef {
    name: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    deny_when_missing: bool,
}

/// A validation action of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationAction {
    /// `Deny`: the request is refused.
    Deny,
    /// `Warn`: a warning is returned.
    Warn,
    /// `Audit`: the failure is recorded in the audit log.
    Audit,
}

/// A ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    policy: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    actions: Vec<ValidationAction>,
    resource: Value,
    /// Documents of the policy's `paramKind`.
    params: Vec<Value>,
}

/// The policies and bindings of a bundle.
#[derive(Debug, Clone, Default)]
pub(crate) struct VapSet {
    policies: BTreeMap<String, Arc<Policy>>,
    bindings: Vec<Binding>,
}

/// What the API server reports for one failed validation of one binding.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// The binding's name.
    pub binding: String,
    /// The policy's name.
    pub policy: String,
    /// The message as the API server forms it for the first action.
    pub message: String,
    /// The binding's `validationActions`.
    pub actions: Vec<ValidationAction>,
    /// The binding resource.
    pub resource: Value,
}

/// The request as matching sees it.
pub(crate) struct Request<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: String,
    pub sub_resource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub operation: &'a str,
    pub object: &'a Value,
    pub old_object: &'a Value,
    pub namespace_object: Option<&'a Value>,
}

impl Request<'_> {
    fn object_or_old(&self) -> &Value {
        if matches!(self.object, Value::Null | Value::Undefined) {
            self.old_object
        } else {
            self.object
        }
    }
}

/// The resource name discovery gives a built-in kind: lower case, plural.
pub(crate) fn resource_of_kind(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with("ss")
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        lower
    } else {
        format!("{lower}s")
    }
}

fn vap_error(file: &str, kind: &str, name: &str, message: impl Into<String>) -> Error {
    Error::Constraint {
        file: file.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        message: message.into(),
    }
}

/// The API group of an `apiVersion` (`""` for the core group): the API server
/// serves a kind under every version of its group, converting as needed.
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl VapSet {
    /// Whether some policy takes objects of `kind` in the group of
    /// `api_version` as params.
    pub(crate) fn is_param_kind(&self, api_version: &str, kind: &str) -> bool {
        self.policies.values().any(|p| {
            p.param_kind
                .as_ref()
                .is_some_and(|(a, k)| k == kind && group(a) == group(api_version))
        })
    }

    /// Whether there is nothing to evaluate.
    pub(crate) fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Reads a policy or binding document.
    pub(crate) fn add(&mut self, file: &str, doc: &Value) -> Result<(), Error> {
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned();
        let spec = &doc["spec"];
        if is(doc, "ValidatingAdmissionPolicy") {
            let err = |m: String| vap_error(file, "ValidatingAdmissionPolicy", &name, m);
            let failure_policy = match str_at(spec, &["failurePolicy"]) {
                None | Some("Fail") => FailurePolicy::Fail,
                Some("Ignore") => FailurePolicy::Ignore,
                Some(other) => {
                    return Err(err(format!(
                        "spec.failurePolicy: Unsupported value: {other:?}"
                    )));
                }
            };
            let named = |key: &str| -> Vec<(String, String)> {
                list(&spec[key])
                    .iter()
                    .map(|v| {
                        (
                            str_at(v, &["name"]).unwrap_or("").to_owned(),
                            str_at(v, &["expression"]).unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            };
            let source = ValidatorSource {
                match_conditions: named("matchConditions"),
                variables: named("variables"),
                validations: list(&spec["validations"])
                    .iter()
                    .map(|v| {
                        (
                            str_at(v, &["expression"]).unwrap_or("").to_owned(),
                            str_at(v, &["message"]).map(str::to_owned),
                            str_at(v, &["messageExpression"]).map(str::to_owned),
                        )
                    })
                    .collect(),
                failure_policy,
            };
            let validator = Validator::compile(&source, &[], Dialect::ValidatingAdmissionPolicy)
                .map_err(|e| err(format!("spec.{e}")))?;
            let match_constraints =
                MatchResources::from_value(&spec["matchConstraints"]).map_err(&err)?;
            if match_constraints.resource_rules.is_empty() {
                return Err(err(
                    "spec.matchConstraints.resourceRules: Required value".to_owned()
                ));
            }
            let param_kind = match (
                str_at(spec, &["paramKind", "apiVersion"]),
                str_at(spec, &["paramKind", "kind"]),
            ) {
                (Some(a), Some(k)) => Some((a.to_owned(), k.to_owned())),
                _ => None,
            };
            self.policies.insert(
                name.clone(),
                Arc::new(Policy {
                    name,
                    match_constraints,
                    param_kind,
                    validator,
                    failure_policy,
                }),
            );
        } else {
            let err = |m: String| vap_error(file, "ValidatingAdmissionPolicyBinding", &name, m);
            let actions = strings(&spec["validationActions"])
                .iter()
                .map(|a| match a.as_str() {
                    "Deny" => Ok(ValidationAction::Deny),
                    "Warn" => Ok(ValidationAction::Warn),
                    "Audit" => Ok(ValidationAction::Audit),
                    other => Err(err(format!(
                        "spec.validationActions: Unsupported value: {other:?}: supported values: \"Audit\", \"Deny\", \"Warn\""
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if actions.is_empty() {
                return Err(err("spec.validationActions: Required value".to_owned()));
            }
            if actions.contains(&ValidationAction::Deny)
                && actions.contains(&ValidationAction::Warn)
            {
                return Err(err(
                    "spec.validationActions: Invalid value: Deny and Warn may not be used together"
                        .to_owned(),
                ));
            }
            let param_ref = match &spec["paramRef"] {
                p @ Value::Object(_) => Some(ParamRef {
                    name: str_at(p, &["name"]).map(str::to_owned),
                    namespace: str_at(p, &["namespace"]).map(str::to_owned),
                    selector: selector(&p["selector"], "spec.paramRef.selector").map_err(&err)?,
                    deny_when_missing: str_at(p, &["parameterNotFoundAction"]) == Some("Deny"),
                }),
                _ => None,
            };
            let match_resources = match &spec["matchResources"] {
                m @ Value::Object(_) => Some(MatchResources::from_value(m).map_err(&err)?),
                _ => None,
            };
            self.bindings.retain(|b| b.name != name);
            self.bindings.push(Binding {
                name,
                policy: str_at(spec, &["policyName"]).unwrap_or("").to_owned(),
                param_ref,
                match_resources,
                actions,
                resource: doc.clone(),
                params: Vec::new(),
            });
        }
        Ok(())
    }

    /// Keeps, for each binding, the documents of its policy's `paramKind`.
    pub(crate) fn with_params<'a>(
        &self,
        objects: impl Iterator<Item = &'a Value> + Clone,
    ) -> VapSet {
        let mut set = self.clone();
        set.bindings.sort_by(|a, b| a.name.cmp(&b.name));
        for b in &mut set.bindings {
            let Some((api, kind)) = self
                .policies
                .get(&b.policy)
                .and_then(|p| p.param_kind.clone())
            else {
                continue;
            };
            // By namespace and name: an object given twice (a document that
            // is also in the inventory) is one param.
            let found: BTreeMap<(String, String), Value> = objects
                .clone()
                .filter(|o| {
                    str_at(o, &["apiVersion"]).is_some_and(|a| group(a) == group(&api))
                        && str_at(o, &["kind"]) == Some(&kind)
                })
                .map(|o| {
                    let at = |k: &str| str_at(o, &["metadata", k]).unwrap_or("").to_owned();
                    ((at("namespace"), at("name")), o.clone())
                })
                .collect();
            b.params = found.into_values().collect();
        }
        set
    }

    /// Every failed validation of every matching binding.
    pub(crate) fn evaluate(&self, r: &Request<'_>, request: &Value) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut activation: Option<Activation> = None;
        for b in &self.bindings {
            let Some(policy) = self.policies.get(&b.policy) else {
                continue;
            };
            if !policy.match_constraints.matches(r, true)
                || b.match_resources
                    .as_ref()
                    .is_some_and(|m| !m.matches(r, false))
            {
                continue;
            }
            let activation = activation.get_or_insert_with(|| {
                let ns = if r.namespace.is_empty() || r.kind == "Namespace" {
                    None
                } else {
                    r.namespace_object
                };
                Activation::new(r.object, r.old_object, request, ns)
            });
            let finding = |message: String| Finding {
                binding: b.name.clone(),
                policy: policy.name.clone(),
                message: match b.actions.first() {
                    Some(ValidationAction::Warn) => format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                        policy.name, b.name
                    ),
                    _ => format!(
                        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
                        policy.name, b.name
                    ),
                },
                actions: b.actions.clone(),
                resource: b.resource.clone(),
            };
            let params = match self.params(policy, b, r) {
                Ok(p) => p,
                Err(message) => {
                    if policy.failure_policy == FailurePolicy::Fail {
                        findings.push(finding(format!("failed to configure binding: {message}")));
                    }
                    continue;
                }
            };
            for p in params {
                let p = to_val(&p);
                let param: &dyn Val = p.as_ref();
                for d in policy.validator.validate(activation, param, &[]) {
                    findings.push(finding(d.message));
                }
            }
        }
        findings
    }

    /// The param objects a binding evaluates with (one `null` when the
    /// policy has no `paramKind` or the binding no `paramRef`; none when
    /// nothing is found and the action is `Allow`).
    fn params(&self, policy: &Policy, b: &Binding, r: &Request<'_>) -> Result<Vec<Value>, String> {
        let (Some((_, kind)), Some(param_ref)) = (&policy.param_kind, &b.param_ref) else {
            return Ok(vec![Value::Null]);
        };
        // Cluster-scoped param kinds are found without a namespace; for
        // namespaced ones the binding's namespace or the request's.
        let namespaced = b
            .params
            .iter()
            .any(|p| str_at(p, &["metadata", "namespace"]).is_some());
        let namespace = param_ref.namespace.as_deref().unwrap_or(r.namespace);
        if namespaced && namespace.is_empty() {
            return Err(format!(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources ({kind})"
            ));
        }
        let found: Vec<Value> = b
            .params
            .iter()
            .filter(|p| {
                !namespaced || str_at(p, &["metadata", "namespace"]).unwrap_or("") == namespace
            })
            .filter(|p| match (&param_ref.name, &param_ref.selector) {
                (Some(name), _) => str_at(p, &["metadata", "name"]) == Some(name.as_str()),
                (None, Some(sel)) => sel.matches(&crate::gatekeeper::labels_of(p)),
                (None, None) => false,
            })
            .cloned()
            .collect();
        if found.is_empty() && param_ref.deny_when_missing {
            return Err(
                "no params found for policy binding with `Deny` parameterNotFoundAction".to_owned(),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_of_kinds() {
        let got: Vec<String> = [
            "Pod",
            "Ingress",
            "NetworkPolicy",
            "Deployment",
            "Endpoints",
            "Gateway",
        ]
        .iter()
        .map(|k| resource_of_kind(k))
        .collect();
        assert_eq!(
            got,
            [
                "pods",
                "ingresses",
                "networkpolicies",
                "deployments",
                "endpoints",
                "gateways"
            ]
        );
    }
}
