//! Admission-time validation of the policy resources themselves (`--policy-source cluster`), as
//! Gatekeeper's validating webhook does, so `kubectl apply` of a broken policy fails at once
//! instead of only showing up in status.
//!
//! Requests for Gatekeeper's API groups are checked before any constraint is evaluated:
//! ConstraintTemplates must pass the CRD-generation checks ([`super::crd::check_template`]) and
//! compile; constraints must be valid for their compiled template (name, `spec.match`,
//! parameters against the schema) and carry a known `enforcementAction`; a `Config` must be
//! named `config` and readable, as must SyncSets and ExpansionTemplates; mutators must pass
//! policy-core's mutator validation ([`super::mutators::check`]). A failure is a 422 with
//! Gatekeeper's text where it has one. Requests from regard's own service account, and DELETEs,
//! are not checked.

use policy_core::gatekeeper::{ExpansionTemplate, IgnoredDocument, PreparedTemplate, SyncConfig};
use regorus::Value;

use super::Catalog;

/// The groups whose objects are checked.
const GROUPS: [&str; 6] = [
    "templates.gatekeeper.sh",
    "constraints.gatekeeper.sh",
    "config.gatekeeper.sh",
    "syncset.gatekeeper.sh",
    "expansion.gatekeeper.sh",
    policy_core::mutation::MUTATIONS_GROUP,
];

/// Enforcement actions a constraint may name (Gatekeeper's list, in its order).
const ACTIONS: &str = "[deny dryrun warn scoped]";
/// Actions a scoped entry may name.
const SCOPED_ACTIONS: &str = "[deny dryrun warn]";
/// Enforcement points Gatekeeper knows.
const POINTS: [&str; 5] = [
    "validation.gatekeeper.sh",
    "audit.gatekeeper.sh",
    "gator.gatekeeper.sh",
    "vap.k8s.io",
    "*",
];

/// The self-validation's inputs.
#[derive(Debug, Clone)]
pub struct SelfValidation {
    catalog: Catalog,
    own_user: Option<String>,
}

/// What the self-validation says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a policy resource, or a DELETE: review it as usual.
    NotChecked,
    /// regard's own request: admit without review.
    Own,
    /// Valid: review it as usual.
    Valid,
    /// Invalid, with the message (HTTP 422).
    Invalid(String),
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for k in path {
        cur = &cur[*k];
    }
    match cur {
        Value::String(s) => s,
        _ => "",
    }
}

impl SelfValidation {
    /// Checks against the compiled templates of `catalog`; `own_user` is never checked.
    pub fn new(catalog: Catalog, own_user: Option<String>) -> Self {
        SelfValidation { catalog, own_user }
    }

    /// Whether `group` is one of the policy groups.
    pub fn covers(group: &str) -> bool {
        GROUPS.contains(&group)
    }

    /// Checks one raw AdmissionRequest. Compiles templates: call it off the async runtime.
    pub fn check(&self, request: &Value) -> Verdict {
        let group = str_at(request, &["kind", "group"]);
        if !Self::covers(group) {
            return Verdict::NotChecked;
        }
        let user = str_at(request, &["userInfo", "username"]);
        if self.own_user.as_deref().is_some_and(|own| own == user) {
            return Verdict::Own;
        }
        if str_at(request, &["operation"]) == "DELETE" {
            return Verdict::NotChecked;
        }
        let name = str_at(request, &["name"]);
        let object = &request["object"];
        let name = if name.is_empty() {
            str_at(object, &["metadata", "name"])
        } else {
            name
        };
        if name.len() > 63 {
            return Verdict::Invalid(format!(
                "resource cannot have metadata.name larger than 63 char; length: {}",
                name.len()
            ));
        }
        let kind = str_at(request, &["kind", "kind"]);
        let result = match (group, kind) {
            ("templates.gatekeeper.sh", "ConstraintTemplate") => check_template(object),
            ("constraints.gatekeeper.sh", _) => self.check_constraint(kind, object),
            ("config.gatekeeper.sh", "Config") if name != "config" => {
                Err("config resource must have name 'config'".to_owned())
            }
            ("config.gatekeeper.sh", "Config") | ("syncset.gatekeeper.sh", "SyncSet") => {
                SyncConfig::from_documents(&[IgnoredDocument {
                    source: format!("{}/{name}", kind.to_lowercase()),
                    value: object.clone(),
                }])
                .map(|_| ())
                .map_err(|e| e.to_string())
            }
            ("expansion.gatekeeper.sh", "ExpansionTemplate") => {
                ExpansionTemplate::from_value(&format!("expansiontemplate/{name}"), object)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            (policy_core::mutation::MUTATIONS_GROUP, _) => super::mutators::check(name, object),
            _ => Ok(()),
        };
        match result {
            Ok(()) => Verdict::Valid,
            Err(message) => Verdict::Invalid(message),
        }
    }

    fn check_constraint(&self, kind: &str, object: &Value) -> Result<(), String> {
        let prepared = self
            .catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(kind)
            .cloned();
        check_enforcement_action(object)?;
        // Without a compiled template the API server only accepts the object if the CRD
        // exists; its schema has checked it then.
        let Some(prepared) = prepared else {
            return Ok(());
        };
        let name = str_at(object, &["metadata", "name"]);
        prepared
            .constraint(&format!("{}/{name}", kind.to_lowercase()), object)
            .map(|_| ())
            .map_err(|e| super::core_message(&e))
    }
}

fn check_template(object: &Value) -> Result<(), String> {
    let json: serde_json::Value =
        serde_json::to_value(object).map_err(|e| format!("reading the template: {e}"))?;
    super::crd::check_template(&json)?;
    let name = str_at(object, &["metadata", "name"]);
    PreparedTemplate::compile(&format!("constrainttemplate/{name}"), object)
        .map(|_| ())
        .map_err(|e| format!("Could not ingest Rego: {}", super::core_message(&e)))
}

/// Gatekeeper's `ValidateEnforcementAction`, with its messages.
fn check_enforcement_action(object: &Value) -> Result<(), String> {
    let action = match &object["spec"]["enforcementAction"] {
        Value::Undefined | Value::Null => return Ok(()),
        Value::String(s) if s.is_empty() => return Ok(()),
        Value::String(s) => s.to_string(),
        _ => return Err("spec.enforcementAction must be a string".to_owned()),
    };
    match action.as_str() {
        "deny" | "dryrun" | "warn" => Ok(()),
        "scoped" => {
            let Value::Array(entries) = &object["spec"]["scopedEnforcementActions"] else {
                return Err(
                    "error fetching scopedEnforcementActions: scopedEnforcementActions is required"
                        .to_owned(),
                );
            };
            let mut bad_points = Vec::new();
            let mut bad_actions = Vec::new();
            for e in entries.iter() {
                let a = str_at(e, &["action"]);
                if !matches!(a, "deny" | "dryrun" | "warn") {
                    bad_actions.push(a.to_owned());
                }
                match &e["enforcementPoints"] {
                    Value::Array(points) if !points.is_empty() => {
                        for p in points.iter() {
                            let n = str_at(p, &["name"]);
                            if !POINTS.contains(&n) {
                                bad_points.push(n.to_owned());
                            }
                        }
                    }
                    _ => bad_points.push(String::new()),
                }
            }
            let mut errors = Vec::new();
            if !bad_points.is_empty() {
                errors.push(format!(
                    "unrecognized enforcement points: constraint will not be enforced for enforcement points [{}], supported enforcement points are [{}]",
                    bad_points.join(" "),
                    POINTS[..4].join(" ")
                ));
            }
            if !bad_actions.is_empty() {
                errors.push(format!(
                    "unrecognized enforcementAction: [{}] is not within the supported list {SCOPED_ACTIONS}",
                    bad_actions.join(" ")
                ));
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors.join("\n"))
            }
        }
        other => Err(format!(
            "unrecognized enforcementAction: {other:?} is not within the supported list {ACTIONS}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"{"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
      "metadata": {"name": "k8srequiredlabels"},
      "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"},
        "validation": {"openAPIV3Schema": {"type": "object", "properties": {"labels": {"type": "array", "items": {"type": "string"}}}}}}},
        "targets": [{"target": "admission.k8s.gatekeeper.sh",
          "rego": "package k8srequiredlabels\nviolation[{\"msg\": \"x\"}] { true }"}]}}"#;

    fn v(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    fn request(group: &str, kind: &str, user: &str, object: &str) -> Value {
        v(&format!(
            r#"{{"uid": "1", "operation": "CREATE", "kind": {{"group": "{group}", "version": "v1", "kind": "{kind}"}},
               "userInfo": {{"username": "{user}"}}, "object": {object}}}"#
        ))
    }

    fn validation() -> SelfValidation {
        let catalog = Catalog::default();
        let t = PreparedTemplate::compile("t", &v(TEMPLATE)).unwrap();
        catalog
            .write()
            .unwrap()
            .insert("K8sRequiredLabels".to_owned(), t);
        SelfValidation::new(
            catalog,
            Some("system:serviceaccount:regard:regard".to_owned()),
        )
    }

    fn constraint(spec: &str) -> String {
        format!(
            r#"{{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels", "metadata": {{"name": "need-owner"}}, "spec": {spec}}}"#
        )
    }

    #[test]
    fn mutators() {
        let sv = validation();
        let assign = |location: &str| {
            format!(
                r#"{{"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign", "metadata": {{"name": "a"}},
                     "spec": {{"applyTo": [{{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}}],
                               "location": "{location}", "parameters": {{"assign": {{"value": 1}}}}}}}}"#
            )
        };
        let check =
            |obj: &str| sv.check(&request("mutations.gatekeeper.sh", "Assign", "alice", obj));
        assert_eq!(check(&assign("spec.priority")), Verdict::Valid);
        assert_eq!(
            check(&assign("metadata.labels.x")),
            Verdict::Invalid("spec.location: assign a can't change metadata".to_owned())
        );
        assert_eq!(
            check(&assign("spec.containers[name: x")),
            Verdict::Invalid(
                "spec.location: invalid location \"spec.containers[name: x\": unexpected token at \
                 position 23: expected ']' after the key value, got end of location"
                    .to_owned()
            )
        );
        assert_eq!(
            sv.check(&request(
                "mutations.gatekeeper.sh",
                "Assign",
                "system:serviceaccount:regard:regard",
                &assign("metadata.labels.x")
            )),
            Verdict::Own
        );
    }

    #[test]
    fn templates() {
        let sv = validation();
        let check = |obj: &str| {
            sv.check(&request(
                "templates.gatekeeper.sh",
                "ConstraintTemplate",
                "alice",
                obj,
            ))
        };
        assert_eq!(check(TEMPLATE), Verdict::Valid);
        let broken = TEMPLATE.replace("{ true }", "{ true");
        assert!(
            matches!(check(&broken), Verdict::Invalid(m) if m.starts_with("Could not ingest Rego: "))
        );
        let renamed = TEMPLATE.replace(r#""name": "k8srequiredlabels""#, r#""name": "other""#);
        assert_eq!(
            check(&renamed),
            Verdict::Invalid("invalid ConstraintTemplate: the ConstraintTemplate's name \"other\" is not equal to the lowercase of CRD's Kind: \"k8srequiredlabels\"".to_owned())
        );
        assert_eq!(
            sv.check(&request(
                "templates.gatekeeper.sh",
                "ConstraintTemplate",
                "system:serviceaccount:regard:regard",
                &broken
            )),
            Verdict::Own
        );
    }

    #[test]
    fn constraints() {
        let sv = validation();
        let check = |spec: &str| {
            sv.check(&request(
                "constraints.gatekeeper.sh",
                "K8sRequiredLabels",
                "alice",
                &constraint(spec),
            ))
        };
        assert_eq!(
            check(r#"{"parameters": {"labels": ["owner"]}}"#),
            Verdict::Valid
        );
        assert_eq!(
            check(r#"{"enforcementAction": "block"}"#),
            Verdict::Invalid("unrecognized enforcementAction: \"block\" is not within the supported list [deny dryrun warn scoped]".to_owned())
        );
        assert_eq!(
            check(r#"{"enforcementAction": "scoped"}"#),
            Verdict::Invalid(
                "error fetching scopedEnforcementActions: scopedEnforcementActions is required"
                    .to_owned()
            )
        );
        assert_eq!(
            check(r#"{"enforcementAction": "scoped", "scopedEnforcementActions": [{"action": "nope", "enforcementPoints": [{"name": "x"}]}]}"#),
            Verdict::Invalid("unrecognized enforcement points: constraint will not be enforced for enforcement points [x], supported enforcement points are [validation.gatekeeper.sh audit.gatekeeper.sh gator.gatekeeper.sh vap.k8s.io]\nunrecognized enforcementAction: [nope] is not within the supported list [deny dryrun warn]".to_owned())
        );
        assert!(
            matches!(check(r#"{"parameters": {"labels": "owner"}}"#), Verdict::Invalid(m) if m.contains("labels"))
        );
    }

    #[test]
    fn configs_names_and_other_groups() {
        let sv = validation();
        assert_eq!(
            sv.check(&request("config.gatekeeper.sh", "Config", "alice", r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "cfg"}}"#)),
            Verdict::Invalid("config resource must have name 'config'".to_owned())
        );
        assert_eq!(
            sv.check(&request("config.gatekeeper.sh", "Config", "alice", r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"}, "spec": {"sync": {"syncOnly": [{"group": "", "version": "v1", "kind": "Namespace"}]}}}"#)),
            Verdict::Valid
        );
        let long = "a".repeat(64);
        assert_eq!(
            sv.check(&request(
                "syncset.gatekeeper.sh",
                "SyncSet",
                "alice",
                &format!(r#"{{"metadata": {{"name": "{long}"}}}}"#)
            )),
            Verdict::Invalid(
                "resource cannot have metadata.name larger than 63 char; length: 64".to_owned()
            )
        );
        assert_eq!(
            sv.check(&request("", "Pod", "alice", "{}")),
            Verdict::NotChecked
        );
    }
}
