//! `data.inventory`: objects a referential template may look up, laid out as
//! Gatekeeper's sync does:
//!
//! ```text
//! data.inventory.cluster[<groupVersion>][<Kind>][<name>]
//! data.inventory.namespace[<namespace>][<groupVersion>][<Kind>][<name>]
//! ```
//!
//! Namespace objects are also kept by name: `namespaceSelector` matching
//! looks them up when the review does not carry its Namespace.

use std::collections::BTreeMap;

use regorus::Value;

use super::object::{ObjectMeta, object};

/// Objects made available to templates as `data.inventory`.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// `{"inventory": {...}}`, ready to merge into an engine's data.
    data: Value,
    namespaces: BTreeMap<String, Value>,
    len: usize,
}

type Tree = BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>>;

impl Inventory {
    /// Builds the inventory. Objects without `apiVersion` or `kind` cannot be
    /// placed and are skipped; a later object with the same path replaces an
    /// earlier one.
    ///
    /// ```
    /// use policy_core::gatekeeper::Inventory;
    /// use policy_core::Value;
    /// let ns = Value::from_json_str(r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}"#).unwrap();
    /// let inv = Inventory::new(&[ns]);
    /// assert!(inv.namespace("prod").is_some());
    /// assert_eq!(inv.data()["inventory"]["cluster"]["v1"]["Namespace"]["prod"]["metadata"]["name"], Value::from("prod"));
    /// ```
    pub fn new(objects: &[Value]) -> Inventory {
        let mut cluster: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> =
            BTreeMap::new();
        let mut namespaced: Tree = BTreeMap::new();
        let mut namespaces = BTreeMap::new();
        for obj in objects {
            let meta = ObjectMeta::of(obj);
            if meta.version.is_empty() || meta.kind.is_empty() {
                continue;
            }
            if meta.namespace.is_empty() {
                cluster
                    .entry(meta.api_version.clone())
                    .or_default()
                    .entry(meta.kind.clone())
                    .or_default()
                    .insert(meta.name.clone(), obj.clone());
            } else {
                namespaced
                    .entry(meta.namespace.clone())
                    .or_default()
                    .entry(meta.api_version.clone())
                    .or_default()
                    .entry(meta.kind.clone())
                    .or_default()
                    .insert(meta.name.clone(), obj.clone());
            }
            if meta.is_namespace() {
                namespaces.insert(meta.name.clone(), obj.clone());
            }
        }
        let level3 = |m: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>| {
            to_value(m.into_iter().map(|(k, v)| {
                (
                    k,
                    to_value(v.into_iter().map(|(k, v)| (k, to_value(v.into_iter())))),
                )
            }))
        };
        let namespaced = to_value(namespaced.into_iter().map(|(k, v)| (k, level3(v))));
        let data = object(vec![(
            "inventory",
            object(vec![
                ("cluster", level3(cluster)),
                ("namespace", namespaced),
            ]),
        )]);
        Inventory {
            data,
            namespaces,
            len: objects.len(),
        }
    }

    /// `{"inventory": {"cluster": ..., "namespace": ...}}`.
    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The Namespace object called `name`, if one was given.
    pub fn namespace(&self, name: &str) -> Option<&Value> {
        self.namespaces.get(name)
    }

    /// Whether no objects were given.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            data: Value::new_object(),
            namespaces: BTreeMap::new(),
            len: 0,
        }
    }
}

fn to_value(entries: impl Iterator<Item = (String, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = entries.map(|(k, v)| (Value::from(k), v)).collect();
    Value::from(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_gatekeeper_sync() {
        let objs: Vec<Value> = [
            r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "prod"}}"#,
            r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}"#,
            r#"{"kind": "NoVersion", "metadata": {"name": "x"}}"#,
        ]
        .iter()
        .map(|s| Value::from_json_str(s).unwrap())
        .collect();
        let inv = Inventory::new(&objs);
        let d = inv.data();
        assert_eq!(
            d["inventory"]["namespace"]["prod"]["apps/v1"]["Deployment"]["web"]["kind"],
            Value::from("Deployment")
        );
        assert_eq!(
            d["inventory"]["cluster"]["v1"]["Namespace"]["prod"]["kind"],
            Value::from("Namespace")
        );
        assert_eq!(d["inventory"]["cluster"].as_object().unwrap().len(), 1);
        assert!(inv.namespace("prod").is_some());
        assert!(inv.namespace("dev").is_none());
    }
}
