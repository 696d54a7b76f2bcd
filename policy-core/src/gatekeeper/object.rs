//! Reading the standard fields of a Kubernetes object held as a regorus [`Value`].

use std::collections::BTreeMap;

use regorus::Value;

/// The string at `path` inside `v`, if every step exists and the leaf is a string.
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = field(cur, key)?;
    }
    cur.as_string().ok().map(|s| s.as_ref())
}

/// `v[key]` when `v` is an object that has it. regorus looks keys up by
/// value, and making a key value allocates; matching reads `kind`,
/// `apiVersion` and `metadata.*` several times per object and constraint
/// (3 % of `regard gk test` on the reference corpus), so a small object,
/// as these are, is searched for the key in place.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Object(o) = v else {
        return None;
    };
    if o.len() > 16 {
        return o.get(&Value::from(key));
    }
    o.iter()
        .find(|(k, _)| matches!(k, Value::String(s) if s.as_ref() == key))
        .map(|(_, v)| v)
}

/// The value at `path` inside `v` (`Undefined` when a step is missing).
pub(crate) fn value_at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur
}

/// Type and identity of an object: what matching and inventory need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObjectMeta {
    pub api_version: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub generate_name: String,
    pub namespace: String,
}

impl ObjectMeta {
    pub(crate) fn of(v: &Value) -> ObjectMeta {
        let api_version = str_at(v, &["apiVersion"]).unwrap_or("").to_owned();
        let (group, version) = split_api_version(&api_version);
        ObjectMeta {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: str_at(v, &["kind"]).unwrap_or("").to_owned(),
            name: str_at(v, &["metadata", "name"]).unwrap_or("").to_owned(),
            generate_name: str_at(v, &["metadata", "generateName"])
                .unwrap_or("")
                .to_owned(),
            namespace: str_at(v, &["metadata", "namespace"])
                .unwrap_or("")
                .to_owned(),
            api_version,
        }
    }

    /// A core-group `Namespace`.
    pub(crate) fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.group.is_empty()
    }

    /// `Kind namespace/name` (or `Kind name`) for messages.
    pub(crate) fn display(&self) -> String {
        let kind = if self.kind.is_empty() {
            "object"
        } else {
            &self.kind
        };
        if self.namespace.is_empty() {
            format!("{kind} {}", self.name)
        } else {
            format!("{kind} {}/{}", self.namespace, self.name)
        }
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// `metadata.labels` as strings (non-string values are ignored, as the API server would refuse them).
pub(crate) fn labels(v: &Value) -> BTreeMap<String, String> {
    match value_at(v, &["metadata", "labels"]) {
        Value::Object(o) => o
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_string().ok()?.to_string(),
                    v.as_string().ok()?.to_string(),
                ))
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// Builds an object value from string keys.
pub(crate) fn object(entries: Vec<(&str, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = entries
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    Value::from(map)
}

/// Whether a value is absent for Kubernetes purposes (missing or null).
pub(crate) fn is_absent(v: &Value) -> bool {
    matches!(v, Value::Undefined | Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn str_at_reads_small_and_large_objects() {
        let mut big = serde_json::Map::new();
        for i in 0..40 {
            big.insert(format!("k{i:02}"), serde_json::json!(format!("v{i}")));
        }
        let doc = serde_json::json!({
            "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1"}, "generation": 2},
            "big": big,
        });
        let v = Value::from_json_str(&doc.to_string()).unwrap();
        assert_eq!(str_at(&v, &["kind"]), Some("Pod"));
        assert_eq!(str_at(&v, &["metadata", "name"]), Some("p"));
        assert_eq!(str_at(&v, &["metadata", "labels", "a"]), Some("1"));
        assert_eq!(str_at(&v, &["big", "k07"]), Some("v7"));
        assert_eq!(str_at(&v, &["big", "k39"]), Some("v39"));
        assert_eq!(str_at(&v, &["big", "k40"]), None);
        assert_eq!(str_at(&v, &["metadata", "generation"]), None);
        assert_eq!(str_at(&v, &["metadata", "namespace"]), None);
        assert_eq!(str_at(&v, &["kind", "x"]), None);
        assert_eq!(str_at(&v, &[]), None);
    }
}
