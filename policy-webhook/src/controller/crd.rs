//! The constraint CRD a ConstraintTemplate defines, generated as Gatekeeper's constraint
//! framework generates it, and the template checks that come before it.
//!
//! [`check_template`] applies Gatekeeper's `CreateCRD` checks in its order and with its error
//! text (kind set, name equal to the lowercase kind, exactly one known target);
//! [`constraint_crd`] then builds the `<lower(kind)>.constraints.gatekeeper.sh` definition:
//! Cluster scope, categories `constraint`/`constraints`, `v1beta1` (storage) and `v1alpha1`
//! served with one schema (`spec.match`, `spec.enforcementAction`,
//! `spec.scopedEnforcementActions`, and `spec.parameters` from the template's
//! `openAPIV3Schema`), the status subresource and the two printer columns. Both the controller
//! (which applies it) and the admission self-validation (which only checks it) use them.

use serde_json::{Value, json};

/// The API group of every constraint kind.
pub const CONSTRAINT_GROUP: &str = "constraints.gatekeeper.sh";
/// The version constraints are stored in.
pub const CONSTRAINT_STORAGE_VERSION: &str = "v1beta1";
/// The only target Gatekeeper knows.
const TARGET: &str = "admission.k8s.gatekeeper.sh";

/// What a ConstraintTemplate's CRD is made from, once the template passed [`check_template`].
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateNames {
    /// `metadata.name`.
    pub name: String,
    /// `spec.crd.spec.names.kind`.
    pub kind: String,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// Gatekeeper's checks before it creates a template's CRD, with its messages.
pub fn check_template(template: &Value) -> Result<TemplateNames, String> {
    let name = str_at(template, &["metadata", "name"]).unwrap_or("");
    let kind = str_at(template, &["spec", "crd", "spec", "names", "kind"]).unwrap_or("");
    if kind.is_empty() {
        return Err(format!(
            "invalid ConstraintTemplate: ConstraintTemplate {name:?} does not specify CRD Kind"
        ));
    }
    if !name.eq_ignore_ascii_case(kind) {
        return Err(format!(
            "invalid ConstraintTemplate: the ConstraintTemplate's name {name:?} is not equal to the lowercase of CRD's Kind: {:?}",
            kind.to_lowercase()
        ));
    }
    let targets = template
        .get("spec")
        .and_then(|s| s.get("targets"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let [target] = targets else {
        return Err("invalid ConstraintTemplate: must declare exactly one target".to_owned());
    };
    let target_name = str_at(target, &["target"]).unwrap_or("");
    if target_name.is_empty() {
        return Err("invalid ConstraintTemplate: target name must not be empty".to_owned());
    }
    if target_name != TARGET {
        return Err(format!(
            "invalid ConstraintTemplate: target {target_name:?} not recognized, known targets [{TARGET}]"
        ));
    }
    let operations: Vec<&str> = target
        .get("operations")
        .and_then(Value::as_array)
        .map(|ops| ops.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if operations.contains(&"*") && operations.len() > 1 {
        return Err("if '*' is present, must not specify other operations".to_owned());
    }
    Ok(TemplateNames {
        name: name.to_owned(),
        kind: kind.to_owned(),
    })
}

/// The name of the CRD for constraints of `kind`.
pub fn crd_name(kind: &str) -> String {
    format!("{}.{CONSTRAINT_GROUP}", kind.to_lowercase())
}

/// The schema of `spec.match` (Gatekeeper's target match schema).
fn match_schema() -> Value {
    let glob = json!({"type": "string", "pattern": "^\\*?[-:a-z0-9]*\\*?$"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let selector = json!({
        "type": "object",
        "properties": {
            "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
            "matchExpressions": {"type": "array", "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"type": "string"},
                    "values": strings,
                },
            }},
        },
    });
    json!({
        "type": "object",
        "properties": {
            "kinds": {"type": "array", "items": {"type": "object", "properties": {
                "apiGroups": strings,
                "kinds": strings,
            }}},
            "scope": {"type": "string"},
            "namespaces": {"type": "array", "items": glob},
            "excludedNamespaces": {"type": "array", "items": glob},
            "labelSelector": selector,
            "namespaceSelector": selector,
            "name": glob,
            "source": {"type": "string", "enum": ["All", "Generated", "Original"]},
        },
    })
}

/// Gatekeeper's legacy-schema transform: every node of type `object` (or no type) keeps unknown
/// fields, and an array without `items` gets items that do.
fn add_preserve_unknown_fields(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let ty = map
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if ty.is_empty() || ty == "object" {
        map.insert(
            "x-kubernetes-preserve-unknown-fields".to_owned(),
            Value::Bool(true),
        );
    }
    if ty == "array" && !map.contains_key("items") {
        map.insert(
            "items".to_owned(),
            json!({"x-kubernetes-preserve-unknown-fields": true}),
        );
    }
    for key in ["properties", "patternProperties", "definitions"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(add_preserve_unknown_fields);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = map.get_mut(key) {
            match child {
                Value::Array(list) => list.iter_mut().for_each(add_preserve_unknown_fields),
                other => add_preserve_unknown_fields(other),
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            list.iter_mut().for_each(add_preserve_unknown_fields);
        }
    }
}

/// `spec.parameters`' schema: the template's `openAPIV3Schema`, through the legacy transform when
/// `validation.legacySchema` is true (the default of the v1beta1 and v1alpha1 APIs). `None` when
/// the template declares none and is not legacy.
pub fn parameters_schema(template: &Value) -> Option<Value> {
    let validation = template
        .get("spec")
        .and_then(|s| s.get("crd"))
        .and_then(|c| c.get("spec"))
        .and_then(|s| s.get("validation"));
    let api = str_at(template, &["apiVersion"]).unwrap_or("");
    let legacy = validation
        .and_then(|v| v.get("legacySchema"))
        .and_then(Value::as_bool)
        .unwrap_or(api != "templates.gatekeeper.sh/v1");
    let schema = validation.and_then(|v| v.get("openAPIV3Schema")).cloned();
    match (schema, legacy) {
        (Some(mut s), true) => {
            add_preserve_unknown_fields(&mut s);
            Some(s)
        }
        (Some(s), false) => Some(s),
        (None, true) => {
            let mut s = json!({});
            add_preserve_unknown_fields(&mut s);
            Some(s)
        }
        (None, false) => None,
    }
}

/// The `openAPIV3Schema` of constraints of a template.
fn constraint_schema(parameters: Option<Value>) -> Value {
    let mut spec = json!({
        "type": "object",
        "properties": {
            "match": match_schema(),
            "enforcementAction": {"type": "string", "default": "deny"},
            "scopedEnforcementActions": {"type": "array", "items": {
                "type": "object",
                "properties": {
                    "action": {"type": "string"},
                    "enforcementPoints": {"type": "array", "items": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                    }},
                },
            }},
        },
    });
    if let (Some(p), Some(props)) = (
        parameters,
        spec.get_mut("properties").and_then(Value::as_object_mut),
    ) {
        props.insert("parameters".to_owned(), p);
    }
    json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    })
}

/// The CustomResourceDefinition Gatekeeper creates for a template (which must have passed
/// [`check_template`]); `owner` is the template's `(name, uid)` for the controller reference.
pub fn constraint_crd(
    template: &Value,
    names: &TemplateNames,
    owner: Option<(&str, &str)>,
) -> Value {
    let lower = names.kind.to_lowercase();
    let short_names: Vec<Value> = template
        .get("spec")
        .and_then(|s| s.get("crd"))
        .and_then(|c| c.get("spec"))
        .and_then(|s| s.get("names"))
        .and_then(|n| n.get("shortNames"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let schema = constraint_schema(parameters_schema(template));
    let columns = json!([
        {"name": "enforcement-action", "type": "string", "description": "Type of enforcement action", "jsonPath": ".spec.enforcementAction"},
        {"name": "total-violations", "type": "integer", "description": "Total number of violations", "jsonPath": ".status.totalViolations"},
    ]);
    let version = |name: &str, storage: bool| {
        json!({
            "name": name,
            "served": true,
            "storage": storage,
            "schema": {"openAPIV3Schema": schema.clone()},
            "subresources": {"status": {}},
            "additionalPrinterColumns": columns.clone(),
        })
    };
    let mut labels = template
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert("gatekeeper.sh/constraint".to_owned(), json!("yes"));
    let mut names_json = json!({
        "kind": names.kind,
        "listKind": format!("{}List", names.kind),
        "plural": lower,
        "singular": lower,
        "categories": ["constraint", "constraints"],
    });
    if !short_names.is_empty()
        && let Some(map) = names_json.as_object_mut()
    {
        map.insert("shortNames".to_owned(), Value::Array(short_names));
    }
    let mut metadata = json!({"name": crd_name(&names.kind), "labels": labels});
    if let (Some((name, uid)), Some(map)) = (owner, metadata.as_object_mut()) {
        map.insert(
            "ownerReferences".to_owned(),
            json!([{
                "apiVersion": "templates.gatekeeper.sh/v1",
                "kind": "ConstraintTemplate",
                "name": name,
                "uid": uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }]),
        );
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": metadata,
        "spec": {
            "group": CONSTRAINT_GROUP,
            "names": names_json,
            "scope": "Cluster",
            "versions": [version(CONSTRAINT_STORAGE_VERSION, true), version("v1alpha1", false)],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(name: &str, kind: &str, targets: Value) -> Value {
        json!({
            "apiVersion": "templates.gatekeeper.sh/v1",
            "kind": "ConstraintTemplate",
            "metadata": {"name": name, "labels": {"team": "a"}},
            "spec": {"crd": {"spec": {"names": {"kind": kind, "shortNames": ["rl"]},
                "validation": {"openAPIV3Schema": {"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}}}},
                "targets": targets},
        })
    }

    fn target() -> Value {
        json!([{"target": "admission.k8s.gatekeeper.sh", "rego": "package x"}])
    }

    #[test]
    fn template_checks_use_gatekeepers_messages() {
        let check = |t: Value| check_template(&t);
        assert_eq!(
            check(template("x", "", target())),
            Err(
                "invalid ConstraintTemplate: ConstraintTemplate \"x\" does not specify CRD Kind"
                    .to_owned()
            )
        );
        assert_eq!(
            check(template("x", "K8sY", target())),
            Err("invalid ConstraintTemplate: the ConstraintTemplate's name \"x\" is not equal to the lowercase of CRD's Kind: \"k8sy\"".to_owned())
        );
        assert_eq!(
            check(template("k8sy", "K8sY", json!([]))),
            Err("invalid ConstraintTemplate: must declare exactly one target".to_owned())
        );
        assert_eq!(
            check(template("k8sy", "K8sY", json!([{"target": "other"}]))),
            Err("invalid ConstraintTemplate: target \"other\" not recognized, known targets [admission.k8s.gatekeeper.sh]".to_owned())
        );
        assert_eq!(
            check(template(
                "k8sy",
                "K8sY",
                json!([{"target": "admission.k8s.gatekeeper.sh", "operations": ["*", "CREATE"]}])
            )),
            Err("if '*' is present, must not specify other operations".to_owned())
        );
        assert_eq!(
            check(template("k8sy", "K8sY", target())),
            Ok(TemplateNames {
                name: "k8sy".into(),
                kind: "K8sY".into()
            })
        );
    }

    #[test]
    fn crd_is_what_gatekeeper_generates() {
        let t = template("k8sy", "K8sY", target());
        let names = check_template(&t).unwrap();
        let crd = constraint_crd(&t, &names, Some(("k8sy", "uid-1")));
        assert_eq!(crd["metadata"]["name"], "k8sy.constraints.gatekeeper.sh");
        assert_eq!(
            crd["metadata"]["labels"],
            json!({"team": "a", "gatekeeper.sh/constraint": "yes"})
        );
        assert_eq!(crd["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(
            crd["spec"]["names"],
            json!({"kind": "K8sY", "listKind": "K8sYList", "plural": "k8sy", "singular": "k8sy",
                   "categories": ["constraint", "constraints"], "shortNames": ["rl"]})
        );
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let versions: Vec<(&str, bool)> = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v["storage"].as_bool().unwrap()))
            .collect();
        assert_eq!(versions, vec![("v1beta1", true), ("v1alpha1", false)]);
        let v = &crd["spec"]["versions"][0];
        assert_eq!(v["subresources"], json!({"status": {}}));
        assert_eq!(
            v["additionalPrinterColumns"][0]["jsonPath"],
            ".spec.enforcementAction"
        );
        assert_eq!(
            v["additionalPrinterColumns"][1]["jsonPath"],
            ".status.totalViolations"
        );
        let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(
            spec["parameters"],
            json!({"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}})
        );
        assert_eq!(
            spec["enforcementAction"],
            json!({"type": "string", "default": "deny"})
        );
        assert!(spec["match"]["properties"]["excludedNamespaces"].is_object());
    }

    #[test]
    fn legacy_schema_keeps_unknown_fields() {
        let mut t = template("k8sy", "K8sY", target());
        t["apiVersion"] = json!("templates.gatekeeper.sh/v1beta1");
        assert_eq!(
            parameters_schema(&t),
            Some(
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                        "properties": {"labels": {"type": "array", "items": {"type": "string"}}}})
            )
        );
        t["spec"]["crd"]["spec"]["validation"] = json!({"legacySchema": true});
        assert_eq!(
            parameters_schema(&t),
            Some(json!({"x-kubernetes-preserve-unknown-fields": true}))
        );
        t["apiVersion"] = json!("templates.gatekeeper.sh/v1");
        t["spec"]["crd"]["spec"]["validation"] = json!({});
        assert_eq!(parameters_schema(&t), None);
    }
}
