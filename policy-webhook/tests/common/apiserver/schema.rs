//! What the real API server does with CRD schemas: it refuses CRDs whose schema is not
//! structural (or that lack one, or name no single storage version), prunes fields a custom
//! resource's schema does not declare, and refuses objects that fail the schema (types,
//! `required`, `enum`), with its `Invalid` messages.

use serde_json::{Map, Value};

/// A field error: path and text, as in `spec.x: Invalid value: ...`.
pub type FieldError = String;

fn preserves(schema: &Value) -> bool {
    schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true)
}

fn int_or_string(schema: &Value) -> bool {
    schema["x-kubernetes-int-or-string"] == Value::Bool(true)
}

/// Structural-schema errors of one version's `openAPIV3Schema` at `path`.
fn structural(schema: &Value, path: &str, root: bool, errors: &mut Vec<FieldError>) {
    let has_type = schema["type"].as_str().is_some_and(|t| !t.is_empty());
    if !has_type && !preserves(schema) && !int_or_string(schema) {
        let what = if root {
            "must not be empty at the root"
        } else {
            "must not be empty for specified object fields"
        };
        errors.push(format!("{path}.type: Required value: {what}"));
    }
    if root && schema["type"].as_str().is_some_and(|t| t != "object") {
        errors.push(format!(
            "{path}.type: Invalid value: {}: must be object at the root",
            schema["type"]
        ));
    }
    if schema.get("properties").is_some() && schema["additionalProperties"].is_object() {
        errors.push(format!(
            "{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
        ));
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, sub) in props {
            structural(sub, &format!("{path}.properties[{name}]"), false, errors);
        }
    }
    if schema["items"].is_object() {
        structural(&schema["items"], &format!("{path}.items"), false, errors);
    }
    if schema["additionalProperties"].is_object() {
        structural(
            &schema["additionalProperties"],
            &format!("{path}.additionalProperties"),
            false,
            errors,
        );
    }
}

/// Errors that make the real server refuse a v1 CRD (the checks kube-rs and kubectl users
/// meet most: names, versions, schemas).
pub fn validate_crd(crd: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("");
    let plural = spec["names"]["plural"].as_str().unwrap_or("");
    let name = crd["metadata"]["name"].as_str().unwrap_or("");
    if name != format!("{plural}.{group}") {
        errors.push(format!(
            "metadata.name: Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
        ));
    }
    if spec["names"]["kind"].as_str().is_none_or(str::is_empty) {
        errors.push("spec.names.kind: Required value".to_owned());
    }
    if plural.is_empty() || plural.chars().any(|c| c.is_ascii_uppercase()) {
        errors.push(format!("spec.names.plural: Invalid value: \"{plural}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"));
    }
    let scope = spec["scope"].as_str().unwrap_or("");
    if scope != "Cluster" && scope != "Namespaced" {
        errors.push(format!("spec.scope: Unsupported value: \"{scope}\": supported values: \"Cluster\", \"Namespaced\""));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errors.push("spec.versions: Invalid value: []: must have exactly one version marked as storage version".to_owned());
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"] == Value::Bool(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errors.push(format!(
            "spec.versions: Invalid value: {}: must have exactly one version marked as storage version",
            Value::Array(versions.clone())
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        let path = format!("spec.versions[{i}].schema.openAPIV3Schema");
        match version["schema"].get("openAPIV3Schema") {
            Some(schema) => structural(schema, &path, true, &mut errors),
            None => errors.push(format!("{path}: Required value: schemas are required")),
        }
    }
    errors
}

/// The `openAPIV3Schema` of `version` in `crd`.
pub fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == Value::String(version.to_owned()))?
        .get("schema")?
        .get("openAPIV3Schema")
}

/// Drops fields the schema does not declare (structural pruning).
fn prune(value: &mut Value, schema: &Value) {
    if preserves(schema)
        && schema.get("properties").is_none()
        && !schema["additionalProperties"].is_object()
    {
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                if !preserves(schema) {
                    map.retain(|k, _| props.contains_key(k));
                }
                for (k, v) in map.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        prune(v, sub);
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for v in map.values_mut() {
                    prune(v, &schema["additionalProperties"]);
                }
            } else if schema["additionalProperties"] != Value::Bool(true) && !preserves(schema) {
                map.clear();
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                prune(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Schema errors of `value` at `path`.
fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let shown = || match value {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) | Value::Array(_) => format!("\"{}\"", type_name(value)),
        other => other.to_string(),
    };
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true)
            && !preserves(schema)
            && schema.get("type").is_some()
        {
            errors.push(format!(
                "{path}: Invalid value: \"null\": {path} in body must be of type {}: \"null\"",
                schema["type"].as_str().unwrap_or("")
            ));
        }
        return;
    }
    if int_or_string(schema) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(format!(
                "{path}: Invalid value: {}: {path} in body must be of type integer,string: \"{}\"",
                shown(),
                type_name(value)
            ));
        }
        return;
    }
    if let Some(expected) = schema["type"].as_str() {
        let actual = type_name(value);
        let ok = actual == expected || (expected == "number" && actual == "integer");
        if !ok {
            errors.push(format!(
                "{path}: Invalid value: {}: {path} in body must be of type {expected}: \"{actual}\"",
                shown()
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        errors.push(format!(
            "{path}: Unsupported value: {value}: supported values: {}",
            list.join(", ")
        ));
    }
    match value {
        Value::Object(map) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if let Some(field) = required.as_str()
                    && !map.contains_key(field)
                {
                    errors.push(format!("{path}.{field}: Required value"));
                }
            }
            let props = schema["properties"].as_object();
            for (k, v) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => check(v, sub, &format!("{path}.{k}"), errors),
                    None if schema["additionalProperties"].is_object() => check(
                        v,
                        &schema["additionalProperties"],
                        &format!("{path}.{k}"),
                        errors,
                    ),
                    None => {}
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter().enumerate() {
                check(item, &schema["items"], &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// Prunes `obj` (all but apiVersion, kind and metadata) to `schema` and returns its errors.
pub fn prune_and_validate(obj: &mut Value, schema: &Value) -> Vec<FieldError> {
    let Some(map) = obj.as_object_mut() else {
        return vec!["<root>: Invalid value: must be an object".to_owned()];
    };
    let kept: Map<String, Value> = ["apiVersion", "kind", "metadata"]
        .into_iter()
        .filter_map(|k| map.remove(k).map(|v| (k.to_owned(), v)))
        .collect();
    let mut body = Value::Object(std::mem::take(map));
    prune(&mut body, schema);
    let mut errors = Vec::new();
    if let Value::Object(fields) = &body {
        let props = schema["properties"].as_object();
        for (k, v) in fields {
            if let Some(sub) = props.and_then(|p| p.get(k)) {
                check(v, sub, k, &mut errors);
            }
        }
        for required in schema["required"].as_array().into_iter().flatten() {
            if let Some(field) = required.as_str()
                && !fields.contains_key(field)
                && !["apiVersion", "kind", "metadata"].contains(&field)
            {
                errors.push(format!("{field}: Required value"));
            }
        }
    }
    if let (Value::Object(fields), Some(map)) = (body, obj.as_object_mut()) {
        map.extend(kept);
        map.extend(fields);
    }
    errors
}
