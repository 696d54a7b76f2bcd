//! Custom resources: JSON schemas from CustomResourceDefinitions.
//!
//! A CRD's `openAPIV3Schema` is OpenAPI 3.0, close to but not JSON Schema. It
//! is rewritten into a draft 2020-12 schema with the API server's strict
//! reading: objects with `properties` accept no other field unless they say
//! `x-kubernetes-preserve-unknown-fields`, `nullable` admits null,
//! `x-kubernetes-int-or-string` admits both, embedded resources and the root
//! accept `apiVersion`, `kind` and `metadata`.

use serde_json::{Map, Value as Json, json};

/// One served version of a custom resource and its schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CustomResource {
    /// `group/version`.
    pub(crate) api_version: String,
    /// The resource's kind.
    pub(crate) kind: String,
    /// The JSON schema objects of this version are validated against.
    pub(crate) schema: Json,
}

/// The custom resources a document defines: empty unless it is a CRD
/// (`apiextensions.k8s.io/v1` or `v1beta1`) with a schema.
pub(crate) fn custom_resources(doc: &Json) -> Vec<CustomResource> {
    let api = doc.get("apiVersion").and_then(Json::as_str);
    if doc.get("kind").and_then(Json::as_str) != Some("CustomResourceDefinition")
        || !matches!(
            api,
            Some("apiextensions.k8s.io/v1" | "apiextensions.k8s.io/v1beta1")
        )
    {
        return Vec::new();
    }
    let Some(spec) = doc.get("spec") else {
        return Vec::new();
    };
    let text = |path: &[&str]| at(spec, path).and_then(Json::as_str);
    let (Some(group), Some(kind)) = (text(&["group"]), text(&["names", "kind"])) else {
        return Vec::new();
    };
    // v1beta1 may give one schema for every version under spec.validation.
    let shared = at(spec, &["validation", "openAPIV3Schema"]);
    let mut versions: Vec<(&str, Option<&Json>)> = at(spec, &["versions"])
        .and_then(Json::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| {
                    let name = v.get("name").and_then(Json::as_str)?;
                    let schema = at(v, &["schema", "openAPIV3Schema"]).or(shared);
                    Some((name, schema))
                })
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty()
        && let Some(name) = text(&["version"])
    {
        versions.push((name, shared));
    }
    versions
        .into_iter()
        .filter_map(|(version, schema)| {
            Some(CustomResource {
                api_version: format!("{group}/{version}"),
                kind: kind.to_owned(),
                schema: root_schema(schema?),
            })
        })
        .collect()
}

/// The value at `path` of nested objects.
fn at<'a>(value: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn root_schema(schema: &Json) -> Json {
    let mut converted = convert(schema);
    with_object_fields(&mut converted);
    converted
}

/// Adds `apiVersion`, `kind` and `metadata` to an object schema that lists
/// its properties without them (the API server fills these in).
fn with_object_fields(schema: &mut Json) {
    if let Some(props) = schema.get_mut("properties").and_then(Json::as_object_mut) {
        props
            .entry("apiVersion")
            .or_insert_with(|| json!({"type": "string"}));
        props
            .entry("kind")
            .or_insert_with(|| json!({"type": "string"}));
        props
            .entry("metadata")
            .or_insert_with(|| json!({"type": ["object", "null"]}));
    }
}

fn convert(schema: &Json) -> Json {
    let Json::Object(input) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in input {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => match value {
                Json::Object(props) => Json::Object(
                    props
                        .iter()
                        .map(|(name, sub)| (name.clone(), convert(sub)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" | "additionalItems" => convert(value),
            "allOf" | "anyOf" | "oneOf" => match value {
                Json::Array(items) => Json::Array(items.iter().map(convert).collect()),
                other => other.clone(),
            },
            // OpenAPI 3.0's boolean exclusive bounds are numbers in 2020-12.
            "exclusiveMaximum" | "exclusiveMinimum" => continue,
            // Formats are annotations here, as in kubeconform.
            "format" | "nullable" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    for (flag, bound) in [
        ("exclusiveMaximum", "maximum"),
        ("exclusiveMinimum", "minimum"),
    ] {
        if input.get(flag) == Some(&Json::Bool(true))
            && let Some(limit) = out.remove(bound)
        {
            out.insert(flag.to_owned(), limit);
        }
    }
    let flag = |name: &str| input.get(name) == Some(&Json::Bool(true));
    if flag("x-kubernetes-int-or-string") {
        out.insert("type".to_owned(), json!(["integer", "string"]));
        out.remove("anyOf");
    }
    if flag("nullable")
        && let Some(t) = out.get_mut("type")
    {
        let mut types = match t {
            Json::String(s) => vec![Json::String(s.clone())],
            Json::Array(items) => items.clone(),
            _ => Vec::new(),
        };
        types.push(Json::String("null".to_owned()));
        *t = Json::Array(types);
    }
    let mut converted = Json::Object(out);
    if flag("x-kubernetes-embedded-resource") {
        with_object_fields(&mut converted);
    }
    if let Json::Object(out) = &mut converted
        && out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        out.insert("additionalProperties".to_owned(), Json::Bool(false));
    }
    converted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_nullable_int_or_string_and_preserved_objects() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {"group": "example.com", "names": {"kind": "Widget"},
                "versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "note": {"type": "string", "nullable": true},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                        "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": true}
                    }}}}}}]}
        });
        let resources = custom_resources(&crd);
        assert_eq!(resources.len(), 1);
        let r = &resources[0];
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str()),
            ("example.com/v1", "Widget")
        );
        assert_eq!(
            r.schema,
            json!({"type": "object", "additionalProperties": false, "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "metadata": {"type": ["object", "null"]},
            "spec": {"type": "object", "required": ["size"], "additionalProperties": false, "properties": {
                "size": {"type": ["integer", "string"], "x-kubernetes-int-or-string": true},
                "note": {"type": ["string", "null"]},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"a": {"type": "string"}}},
                "ratio": {"type": "number", "exclusiveMaximum": 1}
            }}}})
        );
    }

    #[test]
    fn other_documents_define_nothing() {
        assert!(custom_resources(&json!({"apiVersion": "v1", "kind": "Pod"})).is_empty());
    }
}
