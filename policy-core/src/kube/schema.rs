//! Schema validation of Kubernetes objects.
//!
//! A [`SchemaSet`] knows the built-in kinds of one version (from the embedded
//! [`Catalog`]) and the custom resources of the CRDs it was given. The first
//! object of a kind compiles that kind's schema (the kind's definition and
//! every definition it references) with the `jsonschema` crate; later objects
//! reuse it, also across threads. Validation errors become [`SchemaError`]s: a
//! path into the object and a message in Kubernetes' words.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::{Map, Value as Json};

use super::KubeError;
use super::catalog::Catalog;
use crate::input::PathStep;

/// A compiled schema, or the reason it could not be compiled.
type Compiled = Result<Arc<jsonschema::Validator>, String>;

/// The schemas of one Kubernetes version plus known CRDs.
#[derive(Debug)]
pub(crate) struct SchemaSet {
    catalog: Catalog,
    /// `"apiVersion kind"` → JSON schema of a custom resource.
    crds: HashMap<String, Json>,
    compiled: Mutex<HashMap<String, Arc<OnceLock<Compiled>>>>,
}

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaError {
    /// The field the message is about.
    pub(crate) path: Vec<PathStep>,
    /// Where to point in the source: `path`, or its parent for a missing field.
    pub(crate) at: Vec<PathStep>,
    /// What is wrong.
    pub(crate) message: String,
}

/// The outcome of validating one object.
#[derive(Debug)]
pub(crate) enum Validation {
    /// The object matches its schema.
    Valid,
    /// The object does not match.
    Invalid(Vec<SchemaError>),
    /// No schema for this apiVersion/kind.
    Unknown,
    /// The schema itself does not compile (a broken CRD schema).
    BadSchema(String),
}

impl SchemaSet {
    pub(crate) fn new(catalog: Catalog) -> SchemaSet {
        SchemaSet {
            catalog,
            crds: HashMap::new(),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn source(&self) -> &str {
        &self.catalog.source
    }

    /// Adds the schema of a custom resource; a later CRD for the same kind replaces it.
    pub(crate) fn add_crd(&mut self, api_version: &str, kind: &str, schema: Json) {
        self.crds.insert(format!("{api_version} {kind}"), schema);
    }

    /// Validates `object`, whose `apiVersion` and `kind` are given.
    pub(crate) fn validate(&self, api_version: &str, kind: &str, object: &Json) -> Validation {
        let key = format!("{api_version} {kind}");
        let builtin = self.catalog.kind(api_version, kind);
        if builtin.is_none() && !self.crds.contains_key(&key) {
            return Validation::Unknown;
        }
        let cell = {
            let mut compiled = match self.compiled.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            Arc::clone(compiled.entry(key.clone()).or_default())
        };
        let compiled = cell.get_or_init(|| {
            let schema = match (self.crds.get(&key), builtin) {
                (Some(schema), _) => Ok(schema.clone()),
                (None, Some(name)) => self.builtin_schema(name).map_err(|e| e.to_string()),
                (None, None) => Err("no schema".to_owned()),
            }?;
            jsonschema::draft202012::new(&schema)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        let validator = match compiled {
            Ok(v) => v,
            Err(e) => return Validation::BadSchema(e.clone()),
        };
        let errors: Vec<SchemaError> = validator.iter_errors(object).flat_map(describe).collect();
        if errors.is_empty() {
            Validation::Valid
        } else {
            Validation::Invalid(errors)
        }
    }

    /// A self-contained schema for a built-in kind: its definition as the root
    /// and every definition it reaches under `$defs`.
    fn builtin_schema(&self, name: &str) -> Result<Json, KubeError> {
        let mut defs = Map::new();
        let mut todo = vec![name.to_owned()];
        while let Some(next) = todo.pop() {
            if defs.contains_key(&next) {
                continue;
            }
            let def = self.catalog.definition(&next)?;
            references(&def, &mut todo);
            defs.insert(next, def);
        }
        Ok(serde_json::json!({
            "$defs": defs,
            "$ref": format!("#/$defs/{name}"),
        }))
    }
}

/// Collects the definition names `schema` refers to.
fn references(schema: &Json, out: &mut Vec<String>) {
    match schema {
        Json::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Json::String(r)) => {
                        if let Some(name) = r.strip_prefix("#/$defs/") {
                            out.push(name.to_owned());
                        }
                    }
                    _ => references(value, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| references(i, out)),
        _ => {}
    }
}

/// One `jsonschema` error as messages about fields.
fn describe(error: jsonschema::ValidationError<'_>) -> Vec<SchemaError> {
    let at: Vec<PathStep> = error
        .instance_path()
        .iter()
        .map(|segment| match segment {
            LocationSegment::Property(name) => PathStep::Key(name.into_owned()),
            LocationSegment::Index(i) => PathStep::Index(i),
        })
        .collect();
    let field = |name: &str| {
        let mut path = at.clone();
        path.push(PathStep::Key(name.to_owned()));
        path
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| SchemaError {
                path: field(name),
                at: field(name),
                message: "unknown field".to_owned(),
            })
            .collect(),
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![SchemaError {
                path: field(name),
                at,
                message: "required field is missing".to_owned(),
            }]
        }
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            let expected: Vec<String> = expected.into_iter().filter(|t| t != "null").collect();
            vec![SchemaError {
                path: at.clone(),
                at,
                message: format!(
                    "expected {}, got {}",
                    expected.join(" or "),
                    value_text(error.instance())
                ),
            }]
        }
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        // null and "" are accepted where the API server defaults the
                        // field; naming them would not help anyone fix the value.
                        .filter(|o| !o.is_null() && o.as_str() != Some(""))
                        .map(|o| match o {
                            Json::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![SchemaError {
                path: at.clone(),
                at,
                message: format!("{} is not one of {}", error.instance(), allowed.join(", ")),
            }]
        }
        _ => vec![SchemaError {
            path: at.clone(),
            at,
            message: error.to_string(),
        }],
    }
}

fn value_text(value: &Json) -> String {
    match value {
        Json::String(_) => format!("string {value}"),
        Json::Number(_) => format!("number {value}"),
        Json::Bool(_) => format!("boolean {value}"),
        Json::Array(_) => "an array".to_owned(),
        Json::Object(_) => "an object".to_owned(),
        Json::Null => "null".to_owned(),
    }
}

/// A path as `spec.containers[0].image`, keys that are not plain words quoted
/// in brackets (`metadata.labels["app.kubernetes.io/name"]`).
pub(crate) fn display_path(path: &[PathStep]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            PathStep::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathStep::Key(k) => {
                out.push('[');
                out.push_str(&Json::String(k.clone()).to_string());
                out.push(']');
            }
            PathStep::Index(i) => {
                out.push_str(&format!("[{i}]"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::KubeVersion;

    fn set() -> SchemaSet {
        SchemaSet::new(Catalog::load(KubeVersion::new(1, 37)).unwrap_or_else(|e| panic!("{e}")))
    }

    fn errors(object: Json) -> Vec<String> {
        let api = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        match set().validate(&api, &kind, &object) {
            Validation::Invalid(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", display_path(&e.path), e.message))
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn each_class_of_error() {
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": 3}},
            "spec": {
                "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "always",
                                 "ports": [{"containerPort": "80"}], "imagePullPolicyy": 1}],
                "restartPolicy": "Always",
                "volumes": [{}]
            }
        });
        assert_eq!(
            errors(pod),
            [
                r#"metadata.labels["app.kubernetes.io/name"]: expected string, got number 3"#,
                r#"spec.containers[0].imagePullPolicy: "always" is not one of Always, IfNotPresent, Never"#,
                r#"spec.containers[0].ports[0].containerPort: expected integer, got string "80""#,
                "spec.containers[0].imagePullPolicyy: unknown field",
                "spec.volumes[0].name: required field is missing",
            ]
        );
    }

    #[test]
    fn int_or_string_and_nulls_pass() {
        let deploy = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "creationTimestamp": null},
            "spec": {
                "selector": {"matchLabels": {"a": "b"}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}}}]}}
            }
        });
        let result = set().validate("apps/v1", "Deployment", &deploy);
        assert!(matches!(result, Validation::Valid), "{result:?}");
        assert!(matches!(
            set().validate("example.com/v1", "Widget", &deploy),
            Validation::Unknown
        ));
    }
}
