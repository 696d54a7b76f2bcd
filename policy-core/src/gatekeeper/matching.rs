//! `spec.match`: which objects a constraint applies to.
//!
//! Semantics follow Gatekeeper's matcher: every criterion present must hold,
//! an absent one matches everything; the object and the old object of an
//! UPDATE are tried in turn; cluster-scoped objects pass the namespace
//! criteria; a namespaced object whose Namespace is unknown makes a
//! `namespaceSelector` fail with an error, which the caller reports as an
//! "unable to match constraints" violation.

use std::collections::BTreeMap;

use regorus::Value;
use serde::Deserialize;

use super::object::{is_absent, labels};

/// A `*`-glob as Gatekeeper uses for namespaces and names: exact, `prefix*`,
/// `*suffix` or `*infix*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(pub String);

impl Wildcard {
    /// Whether `candidate` matches.
    ///
    /// ```
    /// use policy_core::gatekeeper::Wildcard;
    /// assert!(Wildcard("kube-*".into()).matches("kube-system"));
    /// assert!(Wildcard("*-system".into()).matches("kube-system"));
    /// assert!(Wildcard("*be-sy*".into()).matches("kube-system"));
    /// assert!(!Wildcard("kube".into()).matches("kube-system"));
    /// ```
    pub fn matches(&self, candidate: &str) -> bool {
        let w = self.0.as_str();
        match (w.strip_prefix('*'), w.strip_suffix('*')) {
            (Some(_), Some(_)) => {
                let inner = w.trim_start_matches('*');
                let inner = inner.strip_suffix('*').unwrap_or(inner);
                candidate.contains(inner)
            }
            (Some(suffix), None) => candidate.ends_with(suffix),
            (None, Some(prefix)) => candidate.starts_with(prefix),
            (None, None) => w == candidate,
        }
    }

    /// Matching against `metadata.generateName`: only prefix and infix globs can match.
    fn matches_generate_name(&self, candidate: &str) -> bool {
        let w = self.0.as_str();
        match (w.starts_with('*'), w.strip_suffix('*')) {
            (true, Some(_)) => self.matches(candidate),
            (false, Some(prefix)) => candidate.starts_with(prefix),
            _ => false,
        }
    }
}

/// One `kinds` entry: any of `api_groups` × any of `kinds` (`*` or empty = any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KindSelector {
    /// API groups (`""` is the core group).
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Kinds.
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// A Kubernetes label selector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default)]
    pub match_expressions: Vec<LabelRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LabelRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default)]
    pub values: Vec<String>,
}

impl LabelSelector {
    fn validate(&self, field: &str) -> Result<(), String> {
        for (i, r) in self.match_expressions.iter().enumerate() {
            let at = format!("{field}.matchExpressions[{i}]");
            match r.operator.as_str() {
                "In" | "NotIn" if r.values.is_empty() => {
                    return Err(format!(
                        "{at}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
                    ));
                }
                "Exists" | "DoesNotExist" if !r.values.is_empty() => {
                    return Err(format!(
                        "{at}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    ));
                }
                "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
                other => {
                    return Err(format!(
                        "{at}.operator: Unsupported value: {other:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                    ));
                }
            }
            if r.key.is_empty() {
                return Err(format!(
                    "{at}.key: Invalid value: \"\": name part must be non-empty"
                ));
            }
        }
        Ok(())
    }

    /// Whether a label set satisfies the selector (an empty selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// Where a reviewed object came from (`spec.match.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceType {
    /// Any source (the default).
    #[default]
    All,
    /// Objects as submitted.
    Original,
    /// Objects generated by expansion.
    Generated,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchSpec {
    kinds: Option<Vec<KindSelector>>,
    scope: Option<String>,
    namespaces: Option<Vec<String>>,
    excluded_namespaces: Option<Vec<String>>,
    label_selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    name: Option<String>,
    source: Option<String>,
}

/// A constraint's `spec.match`, parsed and validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchCriteria {
    /// `kinds` (empty = any).
    pub kinds: Vec<KindSelector>,
    /// `scope`: `Cluster`, `Namespaced`, or anything else for both.
    pub scope: String,
    /// `namespaces`.
    pub namespaces: Vec<Wildcard>,
    /// `excludedNamespaces`.
    pub excluded_namespaces: Vec<Wildcard>,
    /// `labelSelector`.
    pub label_selector: Option<LabelSelector>,
    /// `namespaceSelector`.
    pub namespace_selector: Option<LabelSelector>,
    /// `name`.
    pub name: Option<Wildcard>,
    /// `source`.
    pub source: SourceType,
}

/// The object under review, as matching sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matchable<'a> {
    pub object: &'a Value,
    /// The object's Namespace, when known.
    pub namespace: Option<&'a Value>,
    /// The admission request's `namespace`: the object's namespace when its own
    /// `metadata.namespace` is empty (Gatekeeper looks the request's Namespace up).
    pub request_namespace: &'a str,
    pub source: SourceType,
}

impl MatchCriteria {
    /// Parses `spec.match` (`Undefined`/`null` = match everything).
    ///
    /// ```
    /// use policy_core::gatekeeper::MatchCriteria;
    /// use policy_core::Value;
    /// let m = MatchCriteria::from_value(&Value::from_json_str(
    ///     r#"{"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}], "excludedNamespaces": ["kube-*"]}"#,
    /// ).unwrap()).unwrap();
    /// assert_eq!(m.excluded_namespaces.len(), 1);
    /// ```
    pub fn from_value(v: &Value) -> Result<MatchCriteria, String> {
        if is_absent(v) {
            return Ok(MatchCriteria::default());
        }
        let json = serde_json::to_value(v).map_err(|e| e.to_string())?;
        let spec: MatchSpec =
            serde_json::from_value(json).map_err(|e| format!("spec.match: {e}"))?;
        if let Some(s) = &spec.label_selector {
            s.validate("spec.match.labelSelector")?;
        }
        if let Some(s) = &spec.namespace_selector {
            s.validate("spec.match.namespaceSelector")?;
        }
        let source = match spec.source.as_deref() {
            None | Some("") | Some("All") => SourceType::All,
            Some("Original") => SourceType::Original,
            Some("Generated") => SourceType::Generated,
            Some(other) => {
                return Err(format!("spec.match.source: invalid source field {other:?}"));
            }
        };
        let wild =
            |v: Option<Vec<String>>| v.unwrap_or_default().into_iter().map(Wildcard).collect();
        Ok(MatchCriteria {
            kinds: spec.kinds.unwrap_or_default(),
            scope: spec.scope.unwrap_or_default(),
            namespaces: wild(spec.namespaces),
            excluded_namespaces: wild(spec.excluded_namespaces),
            label_selector: spec.label_selector,
            namespace_selector: spec.namespace_selector,
            name: spec.name.filter(|n| !n.is_empty()).map(Wildcard),
            source,
        })
    }

    /// Matches one object. `Err` is a match error (an unknown Namespace for
    /// `namespaceSelector`), reported by Gatekeeper as an autoreject.
    pub(crate) fn matches_one(&self, t: &Matchable<'_>) -> Result<bool, String> {
        // kinds first, read in place: most constraints stop here, before the
        // copies `ObjectMeta::of` makes.
        let kind = super::object::str_at(t.object, &["kind"]).unwrap_or("");
        let api_version = super::object::str_at(t.object, &["apiVersion"]).unwrap_or("");
        let (group, _) = super::object::split_api_version(api_version);
        if !self.kinds.is_empty()
            && !self.kinds.iter().any(|k| {
                let kind_ok = k.kinds.is_empty() || k.kinds.iter().any(|x| x == "*" || x == kind);
                let group_ok =
                    k.api_groups.is_empty() || k.api_groups.iter().any(|g| g == "*" || g == group);
                kind_ok && group_ok
            })
        {
            return Ok(false);
        }
        // The metadata read in place, not copied out (`ObjectMeta::of`): this
        // runs for every constraint whose kinds match.
        let meta =
            |field: &str| super::object::str_at(t.object, &["metadata", field]).unwrap_or("");
        let (name, own_namespace) = (meta("name"), meta("namespace"));
        let ns_name = t
            .namespace
            .and_then(|n| super::object::str_at(n, &["metadata", "name"]));
        let is_ns = kind == "Namespace" && group.is_empty();
        // An object created in a namespace need not carry `metadata.namespace`: the request's
        // namespace is where it lives.
        let object_ns = if own_namespace.is_empty() {
            t.request_namespace
        } else {
            own_namespace
        };

        // scope
        let has_namespace = !object_ns.is_empty() || t.namespace.is_some();
        match self.scope.as_str() {
            "Cluster" if !is_ns && has_namespace => return Ok(false),
            "Namespaced" if is_ns || !has_namespace => return Ok(false),
            _ => {}
        }
        // The namespace the namespace criteria look at; None for cluster-scoped non-Namespace objects.
        let namespace: Option<&str> = if is_ns {
            Some(name)
        } else if let Some(n) = ns_name {
            Some(n)
        } else if !object_ns.is_empty() {
            Some(object_ns)
        } else {
            None
        };
        if !self.namespaces.is_empty()
            && let Some(ns) = namespace
            && !self.namespaces.iter().any(|w| w.matches(ns))
        {
            return Ok(false);
        }
        if let Some(ns) = namespace
            && self.excluded_namespaces.iter().any(|w| w.matches(ns))
        {
            return Ok(false);
        }
        if let Some(sel) = &self.label_selector
            && !sel.matches(&labels(t.object))
        {
            return Ok(false);
        }
        if let Some(sel) = &self.namespace_selector {
            if is_ns {
                if !sel.matches(&labels(t.object)) {
                    return Ok(false);
                }
            } else if let Some(ns) = t.namespace {
                if !sel.matches(&labels(ns)) {
                    return Ok(false);
                }
            } else if !object_ns.is_empty() {
                return Err(format!(
                    "error matching the requested object: {name} :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace"
                ));
            }
        }
        if let Some(w) = &self.name
            && !(w.matches(name) || w.matches_generate_name(meta("generateName")))
        {
            return Ok(false);
        }
        Ok(match (self.source, t.source) {
            (SourceType::All, _) => true,
            (want, got) => want == got,
        })
    }

    /// Gatekeeper's `matchAny`: the object or the old object must match; an
    /// error on the first object tried is returned as is.
    pub(crate) fn matches_any(
        &self,
        object: &Value,
        old_object: &Value,
        namespace: Option<&Value>,
        request_namespace: &str,
        source: SourceType,
    ) -> Result<bool, String> {
        let mut present = 0;
        for obj in [object, old_object] {
            if is_absent(obj) {
                continue;
            }
            present += 1;
            let t = Matchable {
                object: obj,
                namespace,
                request_namespace,
                source,
            };
            if self.matches_one(&t)? {
                return Ok(true);
            }
        }
        if present == 0 {
            return Err(
                "invalid request object: neither object nor old object are defined".to_owned(),
            );
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn m(json: &str) -> MatchCriteria {
        MatchCriteria::from_value(&v(json)).unwrap()
    }

    fn one(c: &MatchCriteria, obj: &str, ns: Option<&str>) -> Result<bool, String> {
        let o = v(obj);
        let n = ns.map(v);
        c.matches_one(&Matchable {
            object: &o,
            namespace: n.as_ref(),
            request_namespace: "",
            source: SourceType::Original,
        })
    }

    const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "namespace": "prod", "labels": {"app": "web"}}}"#;
    const ROLE: &str = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "admin"}}"#;
    const NS: &str = r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"env": "prod"}}}"#;

    #[test]
    fn kinds_and_groups() {
        assert_eq!(
            one(
                &m(r#"{"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}"#),
                POD,
                None
            ),
            Ok(true)
        );
        assert_eq!(
            one(
                &m(r#"{"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]}"#),
                POD,
                None
            ),
            Ok(false)
        );
        assert_eq!(
            one(
                &m(r#"{"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}"#),
                ROLE,
                None
            ),
            Ok(true)
        );
        assert_eq!(
            one(&m(r#"{"kinds": [{"kinds": ["ClusterRole"]}]}"#), ROLE, None),
            Ok(true)
        );
        assert_eq!(one(&m(r#"{"kinds": []}"#), ROLE, None), Ok(true));
    }

    #[test]
    fn namespaces_and_cluster_scope() {
        let c = m(r#"{"namespaces": ["pr*"]}"#);
        assert_eq!(one(&c, POD, None), Ok(true));
        assert_eq!(
            one(&c, ROLE, None),
            Ok(true),
            "cluster-scoped objects pass namespace criteria"
        );
        let ex = m(r#"{"excludedNamespaces": ["*od"]}"#);
        assert_eq!(one(&ex, POD, None), Ok(false));
        assert_eq!(one(&ex, ROLE, None), Ok(true));
        assert_eq!(
            one(&ex, NS, None),
            Ok(false),
            "a Namespace is in its own namespace"
        );
        assert_eq!(one(&m(r#"{"scope": "Cluster"}"#), POD, None), Ok(false));
        assert_eq!(one(&m(r#"{"scope": "Cluster"}"#), ROLE, None), Ok(true));
        assert_eq!(one(&m(r#"{"scope": "Namespaced"}"#), NS, None), Ok(false));
        assert_eq!(
            one(&m(r#"{"scope": "cluster"}"#), POD, None),
            Ok(true),
            "typos match all"
        );
    }

    #[test]
    fn selectors() {
        let c = m(
            r#"{"labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}}"#,
        );
        assert_eq!(one(&c, POD, None), Ok(true));
        let c = m(r#"{"labelSelector": {"matchLabels": {"app": "db"}}}"#);
        assert_eq!(one(&c, POD, None), Ok(false));
        let c = m(
            r#"{"labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["x"]}]}}"#,
        );
        assert_eq!(one(&c, POD, None), Ok(true));
        let ns = m(r#"{"namespaceSelector": {"matchLabels": {"env": "prod"}}}"#);
        assert_eq!(one(&ns, POD, Some(NS)), Ok(true));
        assert_eq!(one(&ns, NS, None), Ok(true));
        assert_eq!(one(&ns, ROLE, None), Ok(true));
        assert_eq!(
            one(&ns, POD, None),
            Err("error matching the requested object: web-1 :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace".into())
        );
        assert!(
            MatchCriteria::from_value(&v(
                r#"{"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}"#
            ))
            .is_err()
        );
        assert!(
            MatchCriteria::from_value(&v(
                r#"{"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Has"}]}}"#
            ))
            .is_err()
        );
    }

    #[test]
    fn names_and_sources() {
        assert_eq!(one(&m(r#"{"name": "web-*"}"#), POD, None), Ok(true));
        assert_eq!(one(&m(r#"{"name": "api"}"#), POD, None), Ok(false));
        let generated =
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-"}}"#;
        assert_eq!(one(&m(r#"{"name": "web-*"}"#), generated, None), Ok(true));
        assert_eq!(one(&m(r#"{"source": "Generated"}"#), POD, None), Ok(false));
        assert_eq!(one(&m(r#"{"source": "Original"}"#), POD, None), Ok(true));
        assert!(MatchCriteria::from_value(&v(r#"{"source": "Sometimes"}"#)).is_err());
    }

    #[test]
    fn old_object_can_match() {
        let c = m(r#"{"labelSelector": {"matchLabels": {"app": "web"}}}"#);
        let new = v(
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "prod"}}"#,
        );
        let old = v(POD);
        assert_eq!(
            c.matches_any(&new, &old, None, "", SourceType::Original),
            Ok(true)
        );
        assert_eq!(
            c.matches_any(&new, &Value::Null, None, "", SourceType::Original),
            Ok(false)
        );
        assert!(
            c.matches_any(&Value::Null, &Value::Null, None, "", SourceType::Original)
                .is_err()
        );
    }

    #[test]
    fn request_namespace_stands_in_for_a_missing_metadata_namespace() {
        let bare = v(r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}"#);
        let excluded = m(r#"{"excludedNamespaces": ["kube-*"]}"#);
        let run = |c: &MatchCriteria, request_ns: &str| {
            c.matches_any(&bare, &Value::Null, None, request_ns, SourceType::Original)
        };
        assert_eq!(run(&excluded, "kube-system"), Ok(false));
        assert_eq!(run(&excluded, "prod"), Ok(true));
        assert_eq!(run(&excluded, ""), Ok(true), "cluster-scoped: no namespace");
        assert_eq!(run(&m(r#"{"namespaces": ["prod"]}"#), "dev"), Ok(false));
        assert_eq!(run(&m(r#"{"scope": "Namespaced"}"#), "dev"), Ok(true));
        assert_eq!(run(&m(r#"{"scope": "Cluster"}"#), "dev"), Ok(false));
        assert_eq!(
            run(
                &m(r#"{"namespaceSelector": {"matchLabels": {"a": "b"}}}"#),
                "dev"
            ),
            Err("error matching the requested object: p :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace".into())
        );
    }
}
