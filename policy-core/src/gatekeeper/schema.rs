//! Validating a Constraint's `spec.parameters` against its template's
//! `openAPIV3Schema`, as the API server validates a custom resource.
//!
//! The schema is checked as JSON Schema draft 4 (OpenAPI 3.0's base);
//! Kubernetes' `x-kubernetes-*` extensions are ignored except
//! `x-kubernetes-preserve-unknown-fields`. Fields that a structural schema
//! does not declare are reported too, as Gatekeeper's pruning check does.

use regorus::Value;

/// A compiled parameters schema.
#[derive(Debug)]
pub(crate) struct ParametersSchema {
    validator: jsonschema::Validator,
    raw: serde_json::Value,
}

/// A failed check: where (`/ranges/0/min`, empty for the root) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SchemaViolation {
    pub field: String,
    pub message: String,
    /// Schema validation (Gatekeeper's ErrSchema) rather than an unknown field.
    pub schema: bool,
}

impl ParametersSchema {
    pub(crate) fn new(schema: &Value) -> Result<ParametersSchema, String> {
        let raw = serde_json::to_value(schema).map_err(|e| e.to_string())?;
        let validator = jsonschema::draft4::new(&raw).map_err(|e| e.to_string())?;
        Ok(ParametersSchema { validator, raw })
    }

    /// The first problem with `parameters`, if any.
    pub(crate) fn check(&self, parameters: &Value) -> Option<SchemaViolation> {
        let instance = serde_json::to_value(parameters).ok()?;
        if let Some(e) = self.validator.iter_errors(&instance).next() {
            return Some(SchemaViolation {
                field: e.instance_path().to_string(),
                message: e.to_string(),
                schema: true,
            });
        }
        let mut path = String::new();
        unknown_field(&self.raw, &instance, &mut path).map(|field| SchemaViolation {
            message: format!("unknown field {field:?}"),
            field,
            schema: false,
        })
    }
}

/// The first field of `v` that a structural schema does not declare.
fn unknown_field(
    schema: &serde_json::Value,
    v: &serde_json::Value,
    path: &mut String,
) -> Option<String> {
    use serde_json::Value as J;
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&J::Bool(true)) {
        return None;
    }
    match v {
        J::Object(map) => {
            let props = schema.get("properties").and_then(J::as_object);
            let additional = schema.get("additionalProperties");
            for (k, child) in map {
                let sub = match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) => s,
                    (None, Some(J::Object(s))) => &J::Object(s.clone()),
                    (None, Some(J::Bool(true))) => continue,
                    // Without declared properties the schema says nothing about fields.
                    (None, _) if props.is_none_or(|p| p.is_empty()) => continue,
                    (None, _) => return Some(format!("{path}/{k}")),
                };
                let len = path.len();
                path.push('/');
                path.push_str(k);
                let found = unknown_field(sub, child, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        J::Array(items) => {
            let sub = schema.get("items")?;
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                let found = unknown_field(sub, item, path);
                path.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> ParametersSchema {
        ParametersSchema::new(
            &Value::from_json_str(
                r#"{"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}}}}, "any": {"x-kubernetes-preserve-unknown-fields": true}}}"#,
            )
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn type_errors_name_the_field() {
        let v = Value::from_json_str(r#"{"labels": [{"key": 5}]}"#).unwrap();
        let e = schema().check(&v).unwrap();
        assert_eq!(e.field, "/labels/0/key");
        assert!(e.schema);
        assert!(e.message.contains("string"), "{}", e.message);
    }

    #[test]
    fn unknown_fields_are_reported() {
        let v = Value::from_json_str(r#"{"labels": [{"key": "a", "extra": 1}]}"#).unwrap();
        let e = schema().check(&v).unwrap();
        assert_eq!(e.field, "/labels/0/extra");
        assert!(!e.schema);
        let ok = Value::from_json_str(r#"{"labels": [], "any": {"whatever": 1}}"#).unwrap();
        assert_eq!(schema().check(&ok), None);
    }
}
