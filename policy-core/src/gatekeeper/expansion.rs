//! ExpansionTemplates (`expansion.gatekeeper.sh`): a workload such as a
//! Deployment implies the Pods it will create, so Pod constraints can judge
//! the Deployment before any Pod exists. Resultants are built as
//! Gatekeeper builds them: the source field (`spec.template`) becomes the
//! object, with the generated kind, the parent's namespace, the name
//! `<parent>-<kind>` lower-cased and an owner reference to the parent;
//! expansion recurses (CronJob → Job → Pod) up to 30 levels.

use regorus::Value;

use super::object::{ObjectMeta, object, split_api_version, str_at, value_at};
use crate::error::Error;

/// One `applyTo` entry: exact groups × versions × kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyTo {
    /// API groups (`""` = core).
    pub groups: Vec<String>,
    /// Versions.
    pub versions: Vec<String>,
    /// Kinds.
    pub kinds: Vec<String>,
}

/// A loaded ExpansionTemplate.
#[derive(Debug, Clone)]
pub struct ExpansionTemplate {
    /// `metadata.name`.
    pub name: String,
    /// Where it came from.
    pub file: String,
    /// Kinds it expands.
    pub apply_to: Vec<ApplyTo>,
    /// Dotted path of the embedded object (`spec.template`).
    pub template_source: String,
    /// (group, version, kind) of the resultant.
    pub generated: (String, String, String),
    /// Overrides the enforcement action of violations found on resultants.
    pub enforcement_action: Option<String>,
}

/// A resource implied by another.
#[derive(Debug, Clone)]
pub struct Resultant {
    /// The generated object.
    pub object: Value,
    /// The ExpansionTemplate that produced it.
    pub template: String,
    /// Its enforcement action override.
    pub enforcement_action: Option<String>,
}

const MAX_DEPTH: usize = 30;

pub(crate) fn is_expansion_template(doc: &Value) -> bool {
    str_at(doc, &["kind"]) == Some("ExpansionTemplate")
        && str_at(doc, &["apiVersion"]).is_some_and(|v| v.starts_with("expansion.gatekeeper.sh/"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_string().ok().map(|s| s.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

impl ApplyTo {
    fn matches(&self, group: &str, version: &str, kind: &str) -> bool {
        self.groups.iter().any(|g| g == group)
            && self.versions.iter().any(|v| v == version)
            && self.kinds.iter().any(|k| k == kind)
    }
}

impl ExpansionTemplate {
    /// Reads and validates an ExpansionTemplate.
    pub fn from_value(file: &str, doc: &Value) -> Result<ExpansionTemplate, Error> {
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned();
        let err = |m: &str| Error::Expansion {
            file: file.to_owned(),
            name: name.clone(),
            message: m.to_owned(),
        };
        if name.is_empty() {
            return Err(err("ExpansionTemplate has empty name field"));
        }
        if name.len() >= 64 {
            return Err(err(
                "ExpansionTemplate name must be less than 64 characters",
            ));
        }
        let spec = &doc["spec"];
        let template_source = str_at(spec, &["templateSource"]).unwrap_or("").to_owned();
        if template_source.is_empty() {
            return Err(err("empty templateSource field"));
        }
        let gvk = &spec["generatedGVK"];
        let generated = (
            str_at(gvk, &["group"]).unwrap_or("").to_owned(),
            str_at(gvk, &["version"]).unwrap_or("").to_owned(),
            str_at(gvk, &["kind"]).unwrap_or("").to_owned(),
        );
        if generated.1.is_empty() && generated.2.is_empty() && generated.0.is_empty() {
            return Err(err("empty generatedGVK field"));
        }
        let apply_to: Vec<ApplyTo> = match &spec["applyTo"] {
            Value::Array(a) => a
                .iter()
                .map(|e| ApplyTo {
                    groups: strings(&e["groups"]),
                    versions: strings(&e["versions"]),
                    kinds: strings(&e["kinds"]),
                })
                .collect(),
            _ => Vec::new(),
        };
        if apply_to.is_empty() {
            return Err(err("must specify applyTo"));
        }
        if apply_to
            .iter()
            .any(|a| a.matches(&generated.0, &generated.1, &generated.2))
        {
            return Err(err("generates a kind it also applies to"));
        }
        let enforcement_action = str_at(spec, &["enforcementAction"])
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(ExpansionTemplate {
            name,
            file: file.to_owned(),
            apply_to,
            template_source,
            generated,
            enforcement_action,
        })
    }

    fn applies_to(&self, meta: &ObjectMeta) -> bool {
        self.apply_to
            .iter()
            .any(|a| a.matches(&meta.group, &meta.version, &meta.kind))
    }

    fn expand_one(&self, obj: &Value, namespace: Option<&Value>) -> Result<Value, String> {
        let parent = ObjectMeta::of(obj);
        let path: Vec<&str> = self.template_source.split('.').collect();
        let src = value_at(obj, &path);
        let Value::Object(_) = src else {
            return Err(format!(
                "could not find source field {:?} in resource {}",
                self.template_source, parent.name
            ));
        };
        let mut res = src.clone();
        let (group, version, kind) = &self.generated;
        let api_version = if group.is_empty() {
            version.clone()
        } else {
            format!("{group}/{version}")
        };
        let ns = namespace
            .and_then(|n| str_at(n, &["metadata", "name"]))
            .map(str::to_owned)
            .or_else(|| str_at(obj, &["metadata", "namespace"]).map(str::to_owned));
        let mut name = parent.name.clone();
        if !kind.is_empty() {
            name.push('-');
        }
        name.push_str(kind);
        let name = name.to_lowercase();
        let root = res.as_object_mut().map_err(|e| e.to_string())?;
        root.insert(Value::from("apiVersion"), Value::from(api_version));
        root.insert(Value::from("kind"), Value::from(kind.as_str()));
        let meta_key = Value::from("metadata");
        let mut meta = match root.get(&meta_key) {
            Some(m @ Value::Object(_)) => m.clone(),
            _ => Value::new_object(),
        };
        let m = meta.as_object_mut().map_err(|e| e.to_string())?;
        if let Some(ns) = ns {
            m.insert(Value::from("namespace"), Value::from(ns));
        }
        m.insert(Value::from("name"), Value::from(name));
        if !parent.api_version.is_empty() && !parent.kind.is_empty() && !parent.name.is_empty() {
            let owner = object(vec![
                ("apiVersion", Value::from(parent.api_version.as_str())),
                ("kind", Value::from(parent.kind.as_str())),
                ("name", Value::from(parent.name.as_str())),
            ]);
            let key = Value::from("ownerReferences");
            let mut refs: Vec<Value> = match m.get(&key) {
                Some(Value::Array(a)) => a.iter().cloned().collect(),
                _ => Vec::new(),
            };
            let present = refs.iter().any(|r| {
                r["apiVersion"] == owner["apiVersion"]
                    && r["kind"] == owner["kind"]
                    && r["name"] == owner["name"]
            });
            if !present {
                refs.push(owner);
            }
            m.insert(key, Value::from(refs));
        }
        root.insert(meta_key, meta);
        Ok(res)
    }
}

/// Expands `obj` with every applicable template, recursively; deeper
/// resultants come first, as in Gatekeeper.
pub fn expand(
    templates: &[ExpansionTemplate],
    obj: &Value,
    namespace: Option<&Value>,
) -> Result<Vec<Resultant>, Error> {
    expand_with(templates, obj, namespace, &mut |_| Ok(()))
}

/// [`expand`], with `fix` applied to each resultant as soon as it is built
/// and before it is expanded further: gator mutates resultants there (as
/// `Generated`). An error from `fix` names the resultant's template.
pub fn expand_with(
    templates: &[ExpansionTemplate],
    obj: &Value,
    namespace: Option<&Value>,
    fix: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<Vec<Resultant>, Error> {
    let mut out = Vec::new();
    expand_into(templates, obj, namespace, 0, &mut out, fix)?;
    Ok(out)
}

fn expand_into(
    templates: &[ExpansionTemplate],
    obj: &Value,
    namespace: Option<&Value>,
    depth: usize,
    out: &mut Vec<Resultant>,
    fix: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), Error> {
    let meta = ObjectMeta::of(obj);
    if depth >= MAX_DEPTH {
        return Err(Error::Expansion {
            file: meta.display(),
            name: String::new(),
            message: format!("maximum recursion depth of {MAX_DEPTH} reached"),
        });
    }
    let (g, v) = split_api_version(&meta.api_version);
    if meta.kind.is_empty() && g.is_empty() && v.is_empty() {
        return Ok(());
    }
    let mut level = Vec::new();
    for t in templates.iter().filter(|t| t.applies_to(&meta)) {
        let res = t
            .expand_one(obj, namespace)
            .and_then(|mut r| fix(&mut r).map(|()| r))
            .map_err(|m| Error::Expansion {
                file: meta.display(),
                name: t.name.clone(),
                message: m,
            })?;
        level.push(Resultant {
            object: res,
            template: t.name.clone(),
            enforcement_action: t.enforcement_action.clone(),
        });
    }
    for r in &level {
        expand_into(templates, &r.object, namespace, depth + 1, out, fix)?;
    }
    out.extend(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_implies_pod() {
        let t = ExpansionTemplate::from_value(
            "e.yaml",
            &Value::from_json_str(
                r#"{"apiVersion": "expansion.gatekeeper.sh/v1beta1", "kind": "ExpansionTemplate", "metadata": {"name": "expand-deployments"},
                    "spec": {"applyTo": [{"groups": ["apps"], "kinds": ["Deployment"], "versions": ["v1"]}],
                             "templateSource": "spec.template", "generatedGVK": {"kind": "Pod", "group": "", "version": "v1"}}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        let d = Value::from_json_str(
            r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "Web", "namespace": "prod"},
                "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}"#,
        )
        .unwrap();
        let r = expand(&[t], &d, None).unwrap();
        assert_eq!(r.len(), 1);
        let pod = &r[0].object;
        assert_eq!(pod["kind"], Value::from("Pod"));
        assert_eq!(pod["apiVersion"], Value::from("v1"));
        assert_eq!(pod["metadata"]["name"], Value::from("web-pod"));
        assert_eq!(pod["metadata"]["namespace"], Value::from("prod"));
        assert_eq!(pod["metadata"]["labels"]["app"], Value::from("web"));
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["kind"],
            Value::from("Deployment")
        );
        assert_eq!(pod["spec"]["containers"][0]["image"], Value::from("nginx"));
    }
}
