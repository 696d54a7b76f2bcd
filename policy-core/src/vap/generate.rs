//! The ValidatingAdmissionPolicy and bindings Gatekeeper generates from a CEL
//! ConstraintTemplate and its constraints (`regard gk vap`).
//!
//! Gatekeeper 3.21, with `--default-create-vap-for-templates` (a template's
//! `source.generateVAP` overrides it) and
//! `--default-create-vap-binding-for-constraints`, hands each template with
//! `K8sNativeValidation` code to the API server as a policy named
//! `gatekeeper-<template>` whose `paramKind` is the template's constraint kind,
//! and each constraint as a binding named `gatekeeper-<constraint>` with the
//! constraint as its param. The constraint's `spec.match` fields the API server
//! has no place for (kinds, namespaces, excluded namespaces, name) become match
//! conditions reading `params.spec.match`; `labelSelector` and
//! `namespaceSelector` become the binding's selectors; the enforcement action
//! becomes its `validationActions`. The CEL of those conditions and of the
//! `anyObject` and `params` variables is written here to mean what
//! Gatekeeper's does (same names, same results), so the pair can be applied to
//! a cluster, or run by [`super::VapSet`] in CI, and enforce what the template
//! enforces.

use serde_json::{Value, json};

/// What [`generate`] is told to do, as Gatekeeper's flags.
#[derive(Debug, Clone, Copy)]
pub struct VapOptions {
    /// `--default-create-vap-for-templates` (a template's `generateVAP` wins).
    pub templates_default: bool,
    /// `--default-create-vap-binding-for-constraints`.
    pub bindings_default: bool,
}

impl Default for VapOptions {
    fn default() -> Self {
        VapOptions {
            templates_default: true,
            bindings_default: true,
        }
    }
}

/// Why a template or constraint got no policy or binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapError {
    /// The template has no `K8sNativeValidation` code.
    #[error("ConstraintTemplate {0}: no K8sNativeValidation code, no ValidatingAdmissionPolicy")]
    NoCel(String),
    /// `generateVAP: false` (or the default is off).
    #[error(
        "ConstraintTemplate {0}: VAP generation is off (generateVAP / --default-create-vap-for-templates)"
    )]
    Disabled(String),
    /// A field Gatekeeper refuses.
    #[error("ConstraintTemplate {template}: {message}")]
    BadTemplate {
        /// The template's name.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// A constraint whose template has no generated policy.
    #[error(
        "{kind} {name}: cannot generate ValidatingAdmissionPolicyBinding: conditions are not satisfied to generate ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding"
    )]
    NoPolicy {
        /// Constraint kind.
        kind: String,
        /// Constraint name.
        name: String,
    },
    /// An enforcement action with no VAP counterpart.
    #[error(
        "{kind} {name}: invalid enforcement action: unrecognized enforcement action {action}, must be `warn`, `deny` or `dryrun`"
    )]
    BadAction {
        /// Constraint kind.
        kind: String,
        /// Constraint name.
        name: String,
        /// The action.
        action: String,
    },
}

/// The generated documents, in input order (a policy, then the bindings of
/// its constraints), and what was skipped and why.
#[derive(Debug, Default)]
pub struct Generated {
    /// ValidatingAdmissionPolicies and bindings.
    pub documents: Vec<Value>,
    /// Templates and constraints that produced nothing.
    pub skipped: Vec<VapError>,
}

const POLICY_API: &str = "admissionregistration.k8s.io/v1";

/// The value at `path` (null when absent): `serde_json`'s indexing without the lint.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .unwrap_or(&Value::Null)
}

/// `x` is a glob of Gatekeeper's wildcard grammar (`*` only at the ends): as a
/// regex, `*` becomes `.*` and nothing else needs escaping.
fn glob_match(subject: &str, pattern: &str) -> String {
    format!("string({subject}).matches(\"^\" + string({pattern}).replace(\"*\", \".*\") + \"$\")")
}

/// The match conditions standing for `spec.match.excludedNamespaces`,
/// `namespaces`, `name` and `kinds`, under Gatekeeper's names.
fn match_conditions() -> Vec<Value> {
    let unset = |field: &str| {
        format!("!has(params.spec) || !has(params.spec.match) || !has(params.spec.match.{field})")
    };
    let namespaced = |negate: bool, field: &str| {
        format!(
            "{} ||\n[object, oldObject].exists(o, o != null &&\n  (!has(o.metadata.namespace) || o.metadata.namespace == \"\" ||\n   {}params.spec.match.{field}.exists(p, {})))",
            unset(field),
            if negate { "!" } else { "" },
            glob_match("o.metadata.namespace", "p"),
        )
    };
    let name = format!(
        "{} ||\n[object, oldObject].exists(o, o != null && (\n  (has(o.metadata.generateName) && o.metadata.generateName != \"\" &&\n   params.spec.match.name.endsWith(\"*\") && {}) ||\n  (has(o.metadata.name) && {})))",
        unset("name"),
        glob_match("o.metadata.generateName", "params.spec.match.name"),
        glob_match("o.metadata.name", "params.spec.match.name"),
    );
    let kinds = format!(
        "{} ||\nparams.spec.match.kinds.exists(k,\n  (!has(k.kinds) || size(k.kinds) == 0 || \"*\" in k.kinds || request.kind.kind in k.kinds) &&\n  (!has(k.apiGroups) || size(k.apiGroups) == 0 || \"*\" in k.apiGroups || request.kind.group in k.apiGroups))",
        unset("kinds"),
    );
    vec![
        json!({"name": "gatekeeper_internal_match_excluded_namespaces", "expression": namespaced(true, "excludedNamespaces")}),
        json!({"name": "gatekeeper_internal_match_namespaces", "expression": namespaced(false, "namespaces")}),
        json!({"name": "gatekeeper_internal_match_name", "expression": name}),
        json!({"name": "gatekeeper_internal_match_kinds", "expression": kinds}),
    ]
}

/// Gatekeeper's two variables, ahead of the template's own.
fn builtin_variables() -> Vec<Value> {
    vec![
        json!({
            "name": "anyObject",
            "expression": "has(request.operation) && request.operation == \"DELETE\" && object == null ? oldObject : object"
        }),
        json!({
            "name": "params",
            "expression": "has(params.spec) && has(params.spec.parameters) ? params.spec.parameters : null"
        }),
    ]
}

fn name_of(doc: &Value) -> String {
    at(doc, &["metadata", "name"])
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The `K8sNativeValidation` source of a template, if any.
fn cel_source(template: &Value) -> Option<&Value> {
    at(template, &["spec", "targets"])
        .as_array()?
        .iter()
        .flat_map(|t| at(t, &["code"]).as_array().into_iter().flatten())
        .find(|c| at(c, &["engine"]) == "K8sNativeValidation")
        .map(|c| at(c, &["source"]))
}

/// The policy for one template.
fn policy(template: &Value, options: VapOptions) -> Result<(Value, String), VapError> {
    let name = name_of(template);
    let source = cel_source(template).ok_or_else(|| VapError::NoCel(name.clone()))?;
    if !at(source, &["generateVAP"])
        .as_bool()
        .unwrap_or(options.templates_default)
    {
        return Err(VapError::Disabled(name));
    }
    let kind = at(template, &["spec", "crd", "spec", "names", "kind"])
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let failure_policy = match at(source, &["failurePolicy"]).as_str() {
        None => "Fail",
        Some(p @ ("Fail" | "Ignore")) => p,
        Some(other) => {
            return Err(VapError::BadTemplate {
                template: name,
                message: format!("unrecognized failure policy: {other}"),
            });
        }
    };
    let mut conditions: Vec<Value> = at(source, &["matchCondition"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.extend(match_conditions());
    let mut variables = builtin_variables();
    variables.extend(
        at(source, &["variables"])
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    let validations = at(source, &["validations"])
        .as_array()
        .cloned()
        .unwrap_or_default();
    let policy = json!({
        "apiVersion": POLICY_API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": format!("gatekeeper-{name}")},
        "spec": {
            "paramKind": {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind},
            "matchConstraints": {
                "resourceRules": [{
                    "apiGroups": ["*"],
                    "apiVersions": ["*"],
                    "resources": ["*"],
                    "operations": ["CREATE", "UPDATE"]
                }]
            },
            "matchConditions": conditions,
            "validations": validations,
            "failurePolicy": failure_policy,
            "variables": variables
        }
    });
    Ok((policy, kind))
}

/// The VAP validation actions of a constraint, or `None` for no binding.
fn actions(constraint: &Value, options: VapOptions) -> Result<Option<Vec<&'static str>>, VapError> {
    let kind = at(constraint, &["kind"]).as_str().unwrap_or_default();
    let action = at(constraint, &["spec", "enforcementAction"])
        .as_str()
        .unwrap_or("deny");
    let bad = |action: &str| VapError::BadAction {
        kind: kind.to_owned(),
        name: name_of(constraint),
        action: action.to_owned(),
    };
    let one = |a: &str| match a {
        "deny" => Ok("Deny"),
        "warn" => Ok("Warn"),
        "dryrun" => Ok("Audit"),
        other => Err(bad(other)),
    };
    if action != "scoped" {
        return if options.bindings_default {
            Ok(Some(vec![one(action)?]))
        } else {
            Ok(None)
        };
    }
    // Scoped: the actions whose enforcement points name the VAP (or `*`).
    let mut out = Vec::new();
    for entry in at(constraint, &["spec", "scopedEnforcementActions"])
        .as_array()
        .into_iter()
        .flatten()
    {
        let points = at(entry, &["enforcementPoints"])
            .as_array()
            .into_iter()
            .flatten();
        let for_vap = points
            .filter_map(|p| at(p, &["name"]).as_str())
            .any(|p| p == "vap.k8s.io" || p == "*");
        if for_vap {
            let action = one(at(entry, &["action"]).as_str().unwrap_or_default())?;
            if !out.contains(&action) {
                out.push(action);
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn binding(constraint: &Value, actions: Vec<&str>) -> Value {
    let kind = at(constraint, &["kind"]).as_str().unwrap_or_default();
    let name = name_of(constraint);
    let mut resources = serde_json::Map::new();
    for (field, target) in [
        ("labelSelector", "objectSelector"),
        ("namespaceSelector", "namespaceSelector"),
    ] {
        if let Some(selector) = at(constraint, &["spec", "match"])
            .get(field)
            .filter(|s| s.is_object())
        {
            resources.insert(target.to_owned(), selector.clone());
        }
    }
    json!({
        "apiVersion": POLICY_API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": format!("gatekeeper-{name}")},
        "spec": {
            "policyName": format!("gatekeeper-{}", kind.to_lowercase()),
            "paramRef": {"name": name, "parameterNotFoundAction": "Allow"},
            "matchResources": resources,
            "validationActions": actions
        }
    })
}

/// Generates the policies and bindings for the templates and constraints
/// among `documents` (anything else is ignored).
pub fn generate(documents: &[Value], options: VapOptions) -> Generated {
    let mut out = Generated::default();
    let is_template = |d: &Value| {
        at(d, &["kind"]) == "ConstraintTemplate"
            && at(d, &["apiVersion"])
                .as_str()
                .is_some_and(|a| a.starts_with("templates.gatekeeper.sh/"))
    };
    let is_constraint = |d: &Value| {
        at(d, &["apiVersion"])
            .as_str()
            .is_some_and(|a| a.starts_with("constraints.gatekeeper.sh/"))
    };
    for template in documents.iter().filter(|d| is_template(d)) {
        let kind = at(template, &["spec", "crd", "spec", "names", "kind"])
            .as_str()
            .unwrap_or_default();
        let constraints = documents
            .iter()
            .filter(|d| is_constraint(d) && at(d, &["kind"]) == kind);
        match policy(template, options) {
            Ok((policy, _)) => {
                out.documents.push(policy);
                for constraint in constraints {
                    match actions(constraint, options) {
                        Ok(Some(actions)) => out.documents.push(binding(constraint, actions)),
                        Ok(None) => {}
                        Err(e) => out.skipped.push(e),
                    }
                }
            }
            Err(e) => {
                out.skipped.push(e);
                for constraint in constraints {
                    out.skipped.push(VapError::NoPolicy {
                        kind: kind.to_owned(),
                        name: name_of(constraint),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(source: Value) -> Value {
        json!({
            "apiVersion": "templates.gatekeeper.sh/v1",
            "kind": "ConstraintTemplate",
            "metadata": {"name": "k8sdemo"},
            "spec": {
                "crd": {"spec": {"names": {"kind": "K8sDemo"}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [
                    {"engine": "K8sNativeValidation", "source": source}
                ]}]
            }
        })
    }

    fn constraint(name: &str, spec: Value) -> Value {
        json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "K8sDemo",
            "metadata": {"name": name},
            "spec": spec
        })
    }

    #[test]
    fn policy_and_bindings_as_gatekeeper_names_and_shapes_them() {
        let source = json!({
            "validations": [{"expression": "true", "message": "m"}],
            "variables": [{"name": "x", "expression": "1"}],
            "matchCondition": [{"name": "mine", "expression": "true"}]
        });
        let docs = vec![
            template(source),
            constraint(
                "deny-all",
                json!({"match": {"labelSelector": {"matchLabels": {"a": "b"}}}}),
            ),
            constraint(
                "warn-some",
                json!({"enforcementAction": "warn", "match": {"namespaceSelector": {"matchLabels": {"t": "x"}}}}),
            ),
            constraint(
                "scoped",
                json!({"enforcementAction": "scoped", "scopedEnforcementActions": [
                    {"action": "dryrun", "enforcementPoints": [{"name": "vap.k8s.io"}]},
                    {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}
                ]}),
            ),
            constraint(
                "scoped-elsewhere",
                json!({"enforcementAction": "scoped", "scopedEnforcementActions": [
                    {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}
                ]}),
            ),
            constraint("odd", json!({"enforcementAction": "block"})),
        ];
        let generated = generate(&docs, VapOptions::default());
        let names: Vec<&str> = generated
            .documents
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "gatekeeper-k8sdemo",
                "gatekeeper-deny-all",
                "gatekeeper-warn-some",
                "gatekeeper-scoped"
            ]
        );
        let policy = &generated.documents[0]["spec"];
        assert_eq!(
            policy["paramKind"],
            json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo"})
        );
        assert_eq!(policy["failurePolicy"], "Fail");
        let conditions: Vec<&str> = policy["matchConditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            conditions,
            [
                "mine",
                "gatekeeper_internal_match_excluded_namespaces",
                "gatekeeper_internal_match_namespaces",
                "gatekeeper_internal_match_name",
                "gatekeeper_internal_match_kinds"
            ]
        );
        let variables: Vec<&str> = policy["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(variables, ["anyObject", "params", "x"]);
        assert_eq!(
            generated.documents[1]["spec"],
            json!({
                "policyName": "gatekeeper-k8sdemo",
                "paramRef": {"name": "deny-all", "parameterNotFoundAction": "Allow"},
                "matchResources": {"objectSelector": {"matchLabels": {"a": "b"}}},
                "validationActions": ["Deny"]
            })
        );
        assert_eq!(
            generated.documents[2]["spec"]["validationActions"],
            json!(["Warn"])
        );
        assert_eq!(
            generated.documents[2]["spec"]["matchResources"],
            json!({"namespaceSelector": {"matchLabels": {"t": "x"}}})
        );
        assert_eq!(
            generated.documents[3]["spec"]["validationActions"],
            json!(["Audit"])
        );
        assert_eq!(
            generated
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "K8sDemo odd: invalid enforcement action: unrecognized enforcement action block, must be `warn`, `deny` or `dryrun`"
            ]
        );
    }

    #[test]
    fn templates_without_cel_or_with_generation_off_produce_nothing() {
        let mut rego_only = template(json!({}));
        rego_only["spec"]["targets"][0]["code"][0]["engine"] = json!("Rego");
        let off = template(json!({"generateVAP": false, "validations": []}));
        let docs = vec![rego_only, constraint("c", json!({}))];
        let generated = generate(&docs, VapOptions::default());
        assert!(generated.documents.is_empty());
        assert_eq!(
            generated
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "ConstraintTemplate k8sdemo: no K8sNativeValidation code, no ValidatingAdmissionPolicy",
                "K8sDemo c: cannot generate ValidatingAdmissionPolicyBinding: conditions are not satisfied to generate ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding"
            ]
        );
        assert!(generate(&[off], VapOptions::default()).documents.is_empty());
        let on = template(json!({"generateVAP": true, "validations": []}));
        let options = VapOptions {
            templates_default: false,
            bindings_default: false,
        };
        let generated = generate(&[on, constraint("c", json!({}))], options);
        assert_eq!(generated.documents.len(), 1, "the policy, no binding");
    }
}
