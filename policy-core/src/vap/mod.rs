//! Kubernetes `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding`
//! (`admissionregistration.k8s.io/v1`), evaluated offline on the CEL engine.
//!
//! Flow: [`VapSet::add`] reads the policies and bindings among a bundle's
//! documents and compiles each policy's CEL once ([`crate::cel::validator`],
//! with `params` visible everywhere, as in the API server);
//! [`VapSet::with_params`] keeps, per binding, the documents of its policy's
//! `paramKind`. For each review [`VapSet::evaluate`] matches every binding
//! (the policy's `matchConstraints`, then the binding's `matchResources`:
//! resource rules with operations, exclusions, namespace and object
//! selectors, and `matchPolicy: Equivalent` through [`equivalent`]), resolves its params (`paramRef` name or selector, in the
//! request's namespace or the given one, `parameterNotFoundAction`), runs the
//! validations once per param object and turns each failed validation into a
//! [`Finding`] carrying the message the API server forms and the binding's
//! `validationActions`.
//!
//! Objects reviewed as plain documents (`regard gk test`) have no admission
//! operation: they are matched as `CREATE`. Their resource is derived from
//! the kind (lower case, plural), as the API server's discovery would give it
//! for the built-in kinds. A request matched through an equivalent resource
//! is evaluated as written: the API server would first convert the object to
//! the rule's version, and regard has no conversions between versions.

mod equivalent;
pub mod generate;

use std::collections::BTreeMap;
use std::sync::Arc;

use regorus::Value;

use crate::cel::Dialect;
use crate::cel::validator::{
    Activation, AnnotationValue, FailurePolicy, Validator, ValidatorSource,
};
use crate::cel::{Val, to_val};
use crate::error::Error;
use crate::gatekeeper::LabelSelector;

const GROUP_VERSION: &str = "admissionregistration.k8s.io/v1";

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    match cur {
        Value::String(s) => Some(s.as_ref()),
        _ => None,
    }
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    list(v)
        .iter()
        .filter_map(|s| match s {
            Value::String(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

fn selector(v: &Value, what: &str) -> Result<Option<LabelSelector>, String> {
    if matches!(v, Value::Undefined | Value::Null) {
        return Ok(None);
    }
    let json = serde_json::to_value(v).map_err(|e| format!("{what}: {e}"))?;
    serde_json::from_value(json)
        .map(Some)
        .map_err(|e| format!("{what}: {e}"))
}

/// Whether `kind` is a document of this API.
fn is(doc: &Value, kind: &str) -> bool {
    str_at(doc, &["kind"]) == Some(kind) && str_at(doc, &["apiVersion"]) == Some(GROUP_VERSION)
}

/// Whether a document is a ValidatingAdmissionPolicy or a binding.
pub(crate) fn is_vap_document(doc: &Value) -> bool {
    is(doc, "ValidatingAdmissionPolicy") || is(doc, "ValidatingAdmissionPolicyBinding")
}

/// One `resourceRules` / `excludeResourceRules` entry.
#[derive(Debug, Clone, Default)]
struct Rule {
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    resources: Vec<String>,
    operations: Vec<String>,
    scope: String,
    resource_names: Vec<String>,
}

impl Rule {
    fn from_value(v: &Value) -> Rule {
        Rule {
            api_groups: strings(&v["apiGroups"]),
            api_versions: strings(&v["apiVersions"]),
            resources: strings(&v["resources"]),
            operations: strings(&v["operations"]),
            scope: str_at(v, &["scope"]).unwrap_or("*").to_owned(),
            resource_names: strings(&v["resourceNames"]),
        }
    }

    fn matches(&self, r: &Request<'_>, with_operation: bool) -> bool {
        self.matches_as(r, r.group, r.version, with_operation)
    }

    /// [`Rule::matches`] for the request made through `group`/`version`
    /// (an equivalent resource; [`equivalent::ANY_VERSION`] matches any version).
    fn matches_as(
        &self,
        r: &Request<'_>,
        group: &str,
        version: &str,
        with_operation: bool,
    ) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
        let version_ok = if version == equivalent::ANY_VERSION {
            !self.api_versions.is_empty()
        } else {
            any(&self.api_versions, version)
        };
        let resource = if r.sub_resource.is_empty() {
            r.resource.clone()
        } else {
            format!("{}/{}", r.resource, r.sub_resource)
        };
        let resource_ok = self.resources.iter().any(|x| {
            x == "*"
                || *x == resource
                || (x == "*/*" && !r.sub_resource.is_empty())
                || x.strip_suffix("/*") == Some(r.resource.as_str()) && !r.sub_resource.is_empty()
                || x.strip_prefix("*/") == Some(r.sub_resource) && !r.sub_resource.is_empty()
        });
        let scope_ok = match self.scope.as_str() {
            "Cluster" => r.namespace.is_empty(),
            "Namespaced" => !r.namespace.is_empty(),
            _ => true,
        };
        let operation_ok = !with_operation || any(&self.operations, r.operation);
        let name_ok =
            self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == r.name);
        any(&self.api_groups, group)
            && version_ok
            && resource_ok
            && scope_ok
            && operation_ok
            && name_ok
    }
}

/// `matchPolicy`: whether a rule also matches a request made through an
/// equivalent group or version of the resource it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum MatchPolicy {
    Exact,
    /// The API server's default.
    #[default]
    Equivalent,
}

/// The API server's rule matching: any rule matching the request as made, or,
/// under `Equivalent`, any rule matching it through an equivalent resource
/// (rules first, then equivalents, as the API server loops).
fn rules_match(rules: &[Rule], policy: MatchPolicy, r: &Request<'_>) -> bool {
    if rules.iter().any(|rule| rule.matches(r, true)) {
        return true;
    }
    if policy == MatchPolicy::Exact {
        return false;
    }
    let equivalents = equivalent::equivalents(r.group, r.version, r.kind);
    rules.iter().any(|rule| {
        equivalents
            .iter()
            .any(|(g, v)| rule.matches_as(r, g, v, true))
    })
}

/// `matchConstraints` / `matchResources`.
#[derive(Debug, Clone, Default)]
struct MatchResources {
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    resource_rules: Vec<Rule>,
    exclude: Vec<Rule>,
    match_policy: MatchPolicy,
}

impl MatchResources {
    /// `field`: where the block is, for errors (`spec.matchConstraints`).
    fn from_value(v: &Value, field: &str) -> Result<MatchResources, String> {
        let match_policy = match str_at(v, &["matchPolicy"]) {
            None | Some("Equivalent") => {
                equivalent::warm();
                MatchPolicy::Equivalent
            }
            Some("Exact") => MatchPolicy::Exact,
            Some(other) => {
                return Err(format!(
                    "{field}.matchPolicy: Unsupported value: {other:?}: supported values: \"Equivalent\", \"Exact\""
                ));
            }
        };
        Ok(MatchResources {
            match_policy,
            namespace_selector: selector(&v["namespaceSelector"], "namespaceSelector")?,
            object_selector: selector(&v["objectSelector"], "objectSelector")?,
            resource_rules: list(&v["resourceRules"])
                .iter()
                .map(Rule::from_value)
                .collect(),
            exclude: list(&v["excludeResourceRules"])
                .iter()
                .map(Rule::from_value)
                .collect(),
        })
    }

    /// The API server's order: namespace selector, object selector,
    /// exclusions, rules. `rules_required`: a policy's rules must match; a
    /// binding without rules adds no limit.
    fn matches(&self, r: &Request<'_>, rules_required: bool) -> bool {
        if let Some(sel) = &self.namespace_selector {
            // Cluster-scoped objects other than Namespaces are not limited;
            // a Namespace is matched by its own labels.
            let labels = if r.kind == "Namespace" && r.group.is_empty() {
                Some(crate::gatekeeper::labels_of(r.object_or_old()))
            } else if r.namespace.is_empty() {
                None
            } else {
                Some(
                    r.namespace_object
                        .map(crate::gatekeeper::labels_of)
                        .unwrap_or_default(),
                )
            };
            if let Some(labels) = labels
                && !sel.matches(&labels)
            {
                return false;
            }
        }
        if let Some(sel) = &self.object_selector {
            let new = crate::gatekeeper::labels_of(r.object);
            let old = crate::gatekeeper::labels_of(r.old_object);
            let absent = |v: &Value| matches!(v, Value::Null | Value::Undefined);
            let new_matches = !absent(r.object) && sel.matches(&new);
            let old_matches = !absent(r.old_object) && sel.matches(&old);
            if !new_matches && !old_matches {
                return false;
            }
        }
        if rules_match(&self.exclude, self.match_policy, r) {
            return false;
        }
        if self.resource_rules.is_empty() {
            return !rules_required;
        }
        rules_match(&self.resource_rules, self.match_policy, r)
    }
}

/// A compiled ValidatingAdmissionPolicy.
#[derive(Debug)]
struct Policy {
    name: String,
    match_constraints: MatchResources,
    /// `(apiVersion, kind)` of `paramKind`.
    param_kind: Option<(String, String)>,
    validator: Validator,
    failure_policy: FailurePolicy,
    /// Each validation's `reason` (`Invalid` when unset).
    reasons: Vec<String>,
}

/// `paramRef`.
#[derive(Debug, Clone)]
struct ParamRef {
    name: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    deny_when_missing: bool,
}

/// A validation action of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationAction {
    /// `Deny`: the request is refused.
    Deny,
    /// `Warn`: a warning is returned.
    Warn,
    /// `Audit`: the failure is recorded in the audit log.
    Audit,
}

/// A ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    policy: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    actions: Vec<ValidationAction>,
    resource: Value,
    /// Documents of the policy's `paramKind`.
    params: Vec<Value>,
}

/// The policies and bindings of a bundle.
#[derive(Debug, Clone, Default)]
pub(crate) struct VapSet {
    policies: BTreeMap<String, Arc<Policy>>,
    bindings: Vec<Binding>,
}

/// What the API server reports for one failed validation of one binding.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    /// The binding's name.
    pub binding: String,
    /// The policy's name.
    pub policy: String,
    /// The message as the API server forms it for the first action.
    pub message: String,
    /// The binding's `validationActions`.
    pub actions: Vec<ValidationAction>,
    /// The binding resource.
    pub resource: Value,
}

/// The Status reasons a validation may name, and the HTTP code the API
/// server answers each with (`reasonToCode`).
const REASONS: [(&str, u16); 4] = [
    ("Forbidden", 403),
    ("Invalid", 422),
    ("RequestEntityTooLarge", 413),
    ("Unauthorized", 401),
];

/// The key of the audit annotation listing the failures of bindings with
/// the `Audit` action.
pub const VALIDATION_FAILURE_ANNOTATION: &str =
    "validation.policy.admission.k8s.io/validation_failure";

/// The constraint kind of ValidatingAdmissionPolicy results: their binding
/// stands where a constraint would.
pub const BINDING_KIND: &str = "ValidatingAdmissionPolicyBinding";

/// The key under which a webhook sends the audit annotation the API server
/// records as `key`, or `None` when it has no such key. The API server files
/// a webhook's annotation `k` as `<webhook name>/k` and refuses keys that
/// are then not a qualified name with one `/`: so
/// [`VALIDATION_FAILURE_ANNOTATION`] is sent as `validation_failure`, and a
/// policy's `<policy>/<key>` as `<policy>_<key>` (policy names have no `_`,
/// so the first one splits it back), when at most 63 characters.
///
/// ```
/// use policy_core::vap::webhook_annotation_key;
/// assert_eq!(
///     webhook_annotation_key("validation.policy.admission.k8s.io/validation_failure").as_deref(),
///     Some("validation_failure")
/// );
/// assert_eq!(webhook_annotation_key("needs-owner/owner").as_deref(), Some("needs-owner_owner"));
/// assert_eq!(webhook_annotation_key(&format!("{}/k", "p".repeat(62))), None);
/// ```
pub fn webhook_annotation_key(key: &str) -> Option<String> {
    let sent = match key.strip_prefix("validation.policy.admission.k8s.io/") {
        Some(rest) => rest.to_owned(),
        None => key.replacen('/', "_", 1),
    };
    is_qualified_name(&sent).then_some(sent)
}

/// The API server's cap on a policy's audit annotation value, in bytes.
const MAX_ANNOTATION_VALUE_BYTES: usize = 10 * 1024;

/// How the API server refuses a request when a ValidatingAdmissionPolicy
/// denies it: only the first denied decision counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapDenial {
    /// `ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: <message>`.
    pub message: String,
    /// The Status reason: the validation's `reason`, `Invalid` when unset.
    pub reason: String,
    /// The HTTP code of that reason (Invalid 422, Forbidden 403,
    /// Unauthorized 401, RequestEntityTooLarge 413).
    pub code: u16,
}

/// Everything the policies found for one request.
#[derive(Debug, Default)]
pub(crate) struct VapOutcome {
    /// Every failed validation and error, in evaluation order (policies by
    /// name, their bindings by name).
    pub findings: Vec<Finding>,
    /// The first denied decision, as the API server reports it.
    pub denial: Option<VapDenial>,
    /// Audit annotations by the API server's keys: `<policy>/<key>` and
    /// [`VALIDATION_FAILURE_ANNOTATION`].
    pub annotations: BTreeMap<String, String>,
    /// Each binding that matched: its name, the time it took and its findings.
    pub evaluated: Vec<(String, std::time::Duration, usize)>,
}

/// One entry of the [`VALIDATION_FAILURE_ANNOTATION`] list (the API
/// server's `ValidationFailureValue`, its JSON field order).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidationFailure<'a> {
    message: &'a str,
    policy: &'a str,
    binding: &'a str,
    expression_index: usize,
    validation_actions: Vec<&'static str>,
}

impl ValidationAction {
    fn as_str(self) -> &'static str {
        match self {
            ValidationAction::Deny => "Deny",
            ValidationAction::Warn => "Warn",
            ValidationAction::Audit => "Audit",
        }
    }
}

/// JSON as Go's `encoding/json` writes it: `<`, `>`, `&`, U+2028 and U+2029
/// escaped (they only occur inside strings, so replacing them is safe).
fn go_json(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The API server's denial for the first denied decision.
fn denial(prefix: &str, message: &str, reason: &str) -> VapDenial {
    VapDenial {
        message: format!("{prefix}{message}"),
        reason: reason.to_owned(),
        code: REASONS
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(422, |(_, c)| *c),
    }
}

/// Whether `key` is a Kubernetes qualified name's name part.
fn is_qualified_name(key: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !key.is_empty()
        && key.len() <= 63
        && alnum(key.chars().next())
        && alnum(key.chars().last())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The request as matching sees it.
pub(crate) struct Request<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: String,
    pub sub_resource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub operation: &'a str,
    pub object: &'a Value,
    pub old_object: &'a Value,
    pub namespace_object: Option<&'a Value>,
}

impl Request<'_> {
    fn object_or_old(&self) -> &Value {
        if matches!(self.object, Value::Null | Value::Undefined) {
            self.old_object
        } else {
            self.object
        }
    }
}

/// The admission configuration kinds no policy applies to: the API server
/// exempts them so that a policy can never lock its own configuration.
fn is_exempt_configuration(r: &Request<'_>) -> bool {
    const EXEMPT: &[&str] = &[
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    ];
    r.group == "admissionregistration.k8s.io" && EXEMPT.contains(&r.kind)
}

/// The resource name discovery gives a built-in kind: lower case, plural.
pub(crate) fn resource_of_kind(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower.ends_with("ss")
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        lower
    } else {
        format!("{lower}s")
    }
}

fn vap_error(file: &str, kind: &str, name: &str, message: impl Into<String>) -> Error {
    Error::Constraint {
        file: file.to_owned(),
        kind: kind.to_owned(),
        name: name.to_owned(),
        message: message.into(),
    }
}

/// The API group of an `apiVersion` (`""` for the core group): the API server
/// serves a kind under every version of its group, converting as needed.
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

impl VapSet {
    /// Whether some policy takes objects of `kind` in the group of
    /// `api_version` as params.
    pub(crate) fn is_param_kind(&self, api_version: &str, kind: &str) -> bool {
        self.policies.values().any(|p| {
            p.param_kind
                .as_ref()
                .is_some_and(|(a, k)| k == kind && group(a) == group(api_version))
        })
    }

    /// Whether there is nothing to evaluate.
    pub(crate) fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// The bindings' names, sorted.
    pub(crate) fn binding_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.bindings.iter().map(|b| b.name.as_str()).collect();
        names.sort_unstable();
        names
    }

    /// Reads a policy or binding document.
    pub(crate) fn add(&mut self, file: &str, doc: &Value) -> Result<(), Error> {
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned();
        let spec = &doc["spec"];
        if is(doc, "ValidatingAdmissionPolicy") {
            let err = |m: String| vap_error(file, "ValidatingAdmissionPolicy", &name, m);
            let failure_policy = match str_at(spec, &["failurePolicy"]) {
                None | Some("Fail") => FailurePolicy::Fail,
                Some("Ignore") => FailurePolicy::Ignore,
                Some(other) => {
                    return Err(err(format!(
                        "spec.failurePolicy: Unsupported value: {other:?}"
                    )));
                }
            };
            let named = |key: &str| -> Vec<(String, String)> {
                list(&spec[key])
                    .iter()
                    .map(|v| {
                        (
                            str_at(v, &["name"]).unwrap_or("").to_owned(),
                            str_at(v, &["expression"]).unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            };
            let mut reasons = Vec::new();
            for (i, v) in list(&spec["validations"]).iter().enumerate() {
                let reason = str_at(v, &["reason"]).unwrap_or("Invalid");
                if !REASONS.iter().any(|(r, _)| *r == reason) {
                    return Err(err(format!(
                        "spec.validations[{i}].reason: Unsupported value: {reason:?}: supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\", \"Unauthorized\""
                    )));
                }
                reasons.push(reason.to_owned());
            }
            let mut audit_annotations: Vec<(String, String)> = Vec::new();
            for (i, a) in list(&spec["auditAnnotations"]).iter().enumerate() {
                let key = str_at(a, &["key"]).unwrap_or("");
                let field = format!("spec.auditAnnotations[{i}]");
                if !is_qualified_name(key) {
                    return Err(err(format!(
                        "{field}.key: Invalid value: {key:?}: must be a qualified name of at most 63 characters: alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
                    )));
                }
                if audit_annotations.iter().any(|(k, _)| k == key) {
                    return Err(err(format!("{field}.key: Duplicate value: {key:?}")));
                }
                let expression = str_at(a, &["valueExpression"]).unwrap_or("");
                if expression.trim().is_empty() {
                    return Err(err(format!(
                        "{field}.valueExpression: Required value: valueExpression is not specified"
                    )));
                }
                audit_annotations.push((key.to_owned(), expression.to_owned()));
            }
            let source = ValidatorSource {
                match_conditions: named("matchConditions"),
                variables: named("variables"),
                validations: list(&spec["validations"])
                    .iter()
                    .map(|v| {
                        (
                            str_at(v, &["expression"]).unwrap_or("").to_owned(),
                            str_at(v, &["message"]).map(str::to_owned),
                            str_at(v, &["messageExpression"]).map(str::to_owned),
                        )
                    })
                    .collect(),
                failure_policy,
                audit_annotations,
            };
            let validator = Validator::compile(&source, &[], Dialect::ValidatingAdmissionPolicy)
                .map_err(|e| err(format!("spec.{}", e.api_server_message())))?;
            let match_constraints =
                MatchResources::from_value(&spec["matchConstraints"], "spec.matchConstraints")
                    .map_err(&err)?;
            if match_constraints.resource_rules.is_empty() {
                return Err(err(
                    "spec.matchConstraints.resourceRules: Required value".to_owned()
                ));
            }
            let param_kind = match (
                str_at(spec, &["paramKind", "apiVersion"]),
                str_at(spec, &["paramKind", "kind"]),
            ) {
                (Some(a), Some(k)) => Some((a.to_owned(), k.to_owned())),
                _ => None,
            };
            self.policies.insert(
                name.clone(),
                Arc::new(Policy {
                    name,
                    match_constraints,
                    param_kind,
                    validator,
                    failure_policy,
                    reasons,
                }),
            );
        } else {
            let err = |m: String| vap_error(file, "ValidatingAdmissionPolicyBinding", &name, m);
            let actions = strings(&spec["validationActions"])
                .iter()
                .map(|a| match a.as_str() {
                    "Deny" => Ok(ValidationAction::Deny),
                    "Warn" => Ok(ValidationAction::Warn),
                    "Audit" => Ok(ValidationAction::Audit),
                    other => Err(err(format!(
                        "spec.validationActions: Unsupported value: {other:?}: supported values: \"Audit\", \"Deny\", \"Warn\""
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if actions.is_empty() {
                return Err(err("spec.validationActions: Required value".to_owned()));
            }
            if actions.contains(&ValidationAction::Deny)
                && actions.contains(&ValidationAction::Warn)
            {
                return Err(err(
                    "spec.validationActions: Invalid value: Deny and Warn may not be used together"
                        .to_owned(),
                ));
            }
            let param_ref = match &spec["paramRef"] {
                p @ Value::Object(_) => Some(ParamRef {
                    name: str_at(p, &["name"]).map(str::to_owned),
                    namespace: str_at(p, &["namespace"]).map(str::to_owned),
                    selector: selector(&p["selector"], "spec.paramRef.selector").map_err(&err)?,
                    deny_when_missing: str_at(p, &["parameterNotFoundAction"]) == Some("Deny"),
                }),
                _ => None,
            };
            let match_resources = match &spec["matchResources"] {
                m @ Value::Object(_) => {
                    Some(MatchResources::from_value(m, "spec.matchResources").map_err(&err)?)
                }
                _ => None,
            };
            self.bindings.retain(|b| b.name != name);
            self.bindings.push(Binding {
                name,
                policy: str_at(spec, &["policyName"]).unwrap_or("").to_owned(),
                param_ref,
                match_resources,
                actions,
                resource: doc.clone(),
                params: Vec::new(),
            });
        }
        Ok(())
    }

    /// Keeps, for each binding, the documents of its policy's `paramKind`.
    pub(crate) fn with_params<'a>(
        &self,
        objects: impl Iterator<Item = &'a Value> + Clone,
    ) -> VapSet {
        let mut set = self.clone();
        set.bindings.sort_by(|a, b| a.name.cmp(&b.name));
        for b in &mut set.bindings {
            let Some((api, kind)) = self
                .policies
                .get(&b.policy)
                .and_then(|p| p.param_kind.clone())
            else {
                continue;
            };
            // By namespace and name: an object given twice (a document that
            // is also in the inventory) is one param.
            let found: BTreeMap<(String, String), Value> = objects
                .clone()
                .filter(|o| {
                    str_at(o, &["apiVersion"]).is_some_and(|a| group(a) == group(&api))
                        && str_at(o, &["kind"]) == Some(&kind)
                })
                .map(|o| {
                    let at = |k: &str| str_at(o, &["metadata", k]).unwrap_or("").to_owned();
                    ((at("namespace"), at("name")), o.clone())
                })
                .collect();
            b.params = found.into_values().collect();
        }
        set
    }

    /// Every failed validation of every matching binding, the first denial
    /// and the audit annotations, as the API server's dispatcher forms them.
    /// The API server visits policies and bindings in its caches' order;
    /// here it is by policy name, then binding name, so the first denial is
    /// the same on every run.
    pub(crate) fn evaluate(
        &self,
        r: &Request<'_>,
        request: &Value,
        evaluator: crate::rvm::Evaluator,
    ) -> VapOutcome {
        let mut out = VapOutcome::default();
        if is_exempt_configuration(r) {
            return out;
        }
        let mut failures: Vec<(usize, &Binding, String)> = Vec::new();
        let mut activation: Option<Activation> = None;
        for policy in self.policies.values() {
            if !policy.match_constraints.matches(r, true) {
                continue;
            }
            // Per policy: identical values from several bindings (or params)
            // are one, distinct ones are joined with ", ".
            let mut annotations: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut bindings: Vec<&Binding> = self
                .bindings
                .iter()
                .filter(|b| b.policy == policy.name)
                .collect();
            bindings.sort_by(|a, b| a.name.cmp(&b.name));
            for b in bindings {
                if b.match_resources
                    .as_ref()
                    .is_some_and(|m| !m.matches(r, false))
                {
                    continue;
                }
                let (start, found) = (std::time::Instant::now(), out.findings.len());
                let activation = activation.get_or_insert_with(|| {
                    let ns = if r.namespace.is_empty() || r.kind == "Namespace" {
                        None
                    } else {
                        r.namespace_object
                    };
                    Activation::new(r.object, r.old_object, request, ns)
                });
                let denied = format!(
                    "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: ",
                    policy.name, b.name
                );
                let finding = |message: &str, actions: Vec<ValidationAction>| Finding {
                    binding: b.name.clone(),
                    policy: policy.name.clone(),
                    message: match actions.first() {
                        Some(ValidationAction::Warn) => format!(
                            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                            policy.name, b.name
                        ),
                        _ => format!("{denied}{message}"),
                    },
                    actions,
                    resource: b.resource.clone(),
                };
                // Configuration and audit annotation errors deny whatever
                // the binding's actions (the dispatcher's `addConfigError`).
                let deny = |out: &mut VapOutcome, message: &str, reason: &str| {
                    out.findings
                        .push(finding(message, vec![ValidationAction::Deny]));
                    out.denial
                        .get_or_insert_with(|| denial(&denied, message, reason));
                };
                let params = match self.params(policy, b, r) {
                    Ok(p) => p,
                    Err(message) => {
                        if policy.failure_policy == FailurePolicy::Fail {
                            let m = format!("failed to configure binding: {message}");
                            deny(&mut out, &m, "Invalid");
                        }
                        Vec::new()
                    }
                };
                for p in params {
                    let p = to_val(&p);
                    let param: &dyn Val = p.as_ref();
                    let evaluation = policy.validator.evaluate(activation, param, &[], evaluator);
                    for d in evaluation.decisions {
                        let index = d.expression_index.unwrap_or(0);
                        if b.actions.contains(&ValidationAction::Deny) {
                            // Errors carry no reason: the dispatcher's default.
                            let reason = d
                                .expression_index
                                .filter(|_| !d.is_error)
                                .and_then(|i| policy.reasons.get(i))
                                .map_or("Invalid", String::as_str);
                            out.denial
                                .get_or_insert_with(|| denial(&denied, &d.message, reason));
                        }
                        if b.actions.contains(&ValidationAction::Audit) {
                            failures.push((index, b, d.message.clone()));
                        }
                        out.findings.push(finding(&d.message, b.actions.clone()));
                    }
                    for (key, value) in evaluation.annotations {
                        match value {
                            AnnotationValue::Publish(mut v) => {
                                if v.len() > MAX_ANNOTATION_VALUE_BYTES {
                                    let mut end = MAX_ANNOTATION_VALUE_BYTES;
                                    while !v.is_char_boundary(end) {
                                        end -= 1;
                                    }
                                    v.truncate(end);
                                }
                                let values = annotations.entry(key).or_default();
                                if !values.contains(&v) {
                                    values.push(v);
                                }
                            }
                            AnnotationValue::Error(e) => deny(&mut out, &e, "Invalid"),
                        }
                    }
                }
                let count = out.findings.len() - found;
                out.evaluated.push((b.name.clone(), start.elapsed(), count));
            }
            for (key, values) in annotations {
                out.annotations
                    .insert(format!("{}/{key}", policy.name), values.join(", "));
            }
        }
        if !failures.is_empty() {
            let list: Vec<ValidationFailure<'_>> = failures
                .iter()
                .map(|(index, b, message)| ValidationFailure {
                    message,
                    policy: &b.policy,
                    binding: &b.name,
                    expression_index: *index,
                    validation_actions: b.actions.iter().map(|a| a.as_str()).collect(),
                })
                .collect();
            out.annotations
                .insert(VALIDATION_FAILURE_ANNOTATION.to_owned(), go_json(&list));
        }
        out
    }

    /// The param objects a binding evaluates with (one `null` when the
    /// policy has no `paramKind` or the binding no `paramRef`; none when
    /// nothing is found and the action is `Allow`).
    fn params(&self, policy: &Policy, b: &Binding, r: &Request<'_>) -> Result<Vec<Value>, String> {
        let (Some((_, kind)), Some(param_ref)) = (&policy.param_kind, &b.param_ref) else {
            return Ok(vec![Value::Null]);
        };
        // Cluster-scoped param kinds are found without a namespace; for
        // namespaced ones the binding's namespace or the request's.
        let namespaced = b
            .params
            .iter()
            .any(|p| str_at(p, &["metadata", "namespace"]).is_some());
        let namespace = param_ref.namespace.as_deref().unwrap_or(r.namespace);
        if namespaced && namespace.is_empty() {
            return Err(format!(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources ({kind})"
            ));
        }
        let found: Vec<Value> = b
            .params
            .iter()
            .filter(|p| {
                !namespaced || str_at(p, &["metadata", "namespace"]).unwrap_or("") == namespace
            })
            .filter(|p| match (&param_ref.name, &param_ref.selector) {
                (Some(name), _) => str_at(p, &["metadata", "name"]) == Some(name.as_str()),
                (None, Some(sel)) => sel.matches(&crate::gatekeeper::labels_of(p)),
                (None, None) => false,
            })
            .cloned()
            .collect();
        if found.is_empty() && param_ref.deny_when_missing {
            return Err(
                "no params found for policy binding with `Deny` parameterNotFoundAction".to_owned(),
            );
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_of_kinds() {
        let got: Vec<String> = [
            "Pod",
            "Ingress",
            "NetworkPolicy",
            "Deployment",
            "Endpoints",
            "Gateway",
        ]
        .iter()
        .map(|k| resource_of_kind(k))
        .collect();
        assert_eq!(
            got,
            [
                "pods",
                "ingresses",
                "networkpolicies",
                "deployments",
                "endpoints",
                "gateways"
            ]
        );
    }

    fn v(json: serde_json::Value) -> Value {
        Value::from_json_str(&json.to_string()).unwrap()
    }

    /// A policy on Pods with `spec` merged into its spec.
    fn policy(name: &str, spec: serde_json::Value) -> Value {
        let mut doc = serde_json::json!({
            "apiVersion": GROUP_VERSION, "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {"matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["pods"]}]}}
        });
        for (k, value) in spec.as_object().unwrap() {
            doc["spec"][k] = value.clone();
        }
        v(doc)
    }

    fn binding(name: &str, policy: &str, actions: &[&str], param_ref: serde_json::Value) -> Value {
        v(serde_json::json!({
            "apiVersion": GROUP_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {"policyName": policy, "validationActions": actions, "paramRef": param_ref}
        }))
    }

    fn set(docs: &[Value], params: &[Value]) -> VapSet {
        let mut set = VapSet::default();
        for d in docs {
            set.add("policies.yaml", d).unwrap();
        }
        set.with_params(params.iter())
    }

    fn run(set: &VapSet, object: serde_json::Value) -> VapOutcome {
        review(set, "v1", "Pod", object)
    }

    /// A CREATE of `object` in `shop`, sent as `api_version` `kind`.
    fn review(
        set: &VapSet,
        api_version: &str,
        kind: &str,
        object: serde_json::Value,
    ) -> VapOutcome {
        let object = v(object);
        let (group, version) = crate::gatekeeper::object::split_api_version(api_version);
        let request = Request {
            group,
            version,
            kind,
            resource: resource_of_kind(kind),
            sub_resource: "",
            name: "web",
            namespace: "shop",
            operation: "CREATE",
            object: &object,
            old_object: &Value::Null,
            namespace_object: None,
        };
        set.evaluate(
            &request,
            &v(serde_json::json!({"operation": "CREATE"})),
            crate::rvm::Evaluator::Rvm,
        )
    }

    fn messages(outcome: &VapOutcome) -> Vec<(String, Vec<ValidationAction>)> {
        outcome
            .findings
            .iter()
            .map(|f| (f.message.clone(), f.actions.clone()))
            .collect()
    }

    #[test]
    fn audit_annotations_are_published_excluded_or_deny() {
        let annotations = serde_json::json!([
            {"key": "image", "valueExpression": "'  ' + object.image + '  '"},
            {"key": "none", "valueExpression": "null"},
            {"key": "blank", "valueExpression": "' '"},
            {"key": "count", "valueExpression": "dyn(size(object.image))"},
            {"key": "missing", "valueExpression": "object.missing"},
        ]);
        let docs = [
            policy("p", serde_json::json!({"auditAnnotations": annotations})),
            policy(
                "q",
                serde_json::json!({"auditAnnotations": annotations, "failurePolicy": "Ignore"}),
            ),
            binding("audit-only", "p", &["Audit"], serde_json::Value::Null),
            binding("ignoring", "q", &["Warn"], serde_json::Value::Null),
        ];
        let outcome = run(&set(&docs, &[]), serde_json::json!({"image": "nginx"}));
        assert_eq!(
            outcome.annotations,
            BTreeMap::from([
                ("p/image".to_owned(), "nginx".to_owned()),
                ("q/image".to_owned(), "nginx".to_owned()),
            ])
        );
        // A wrong type always denies; an error only under `failurePolicy: Fail`. Both whatever
        // the binding's actions.
        let denied = "ValidatingAdmissionPolicy 'p' with binding 'audit-only' denied request: ";
        let type_error = "valueExpression 'dyn(size(object.image))' resulted in unsupported return type: int. Return type must be either string or null.";
        assert_eq!(
            messages(&outcome),
            [
                (
                    format!("{denied}{type_error}"),
                    vec![ValidationAction::Deny]
                ),
                (
                    format!(
                        "{denied}expression 'object.missing' resulted in error: no such key: missing"
                    ),
                    vec![ValidationAction::Deny]
                ),
                (
                    format!(
                        "ValidatingAdmissionPolicy 'q' with binding 'ignoring' denied request: {type_error}"
                    ),
                    vec![ValidationAction::Deny]
                ),
            ]
        );
        assert_eq!(
            outcome.denial,
            Some(VapDenial {
                message: format!("{denied}{type_error}"),
                reason: "Invalid".to_owned(),
                code: 422,
            })
        );
    }

    #[test]
    fn annotation_values_merge_across_bindings_and_params_and_are_capped() {
        let docs = [
            policy(
                "tiers",
                serde_json::json!({
                    "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                    "auditAnnotations": [
                        {"key": "tier", "valueExpression": "params.data.tier"},
                        {"key": "long", "valueExpression": "has(params.data.long) ? params.data.long : null"},
                    ]
                }),
            ),
            binding(
                "both",
                "tiers",
                &["Deny"],
                serde_json::json!({"selector": {"matchLabels": {"kind": "tier"}}}),
            ),
            binding(
                "gold",
                "tiers",
                &["Deny"],
                serde_json::json!({"name": "gold"}),
            ),
        ];
        let config = |name: &str, data: serde_json::Value| {
            v(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "shop", "labels": {"kind": "tier"}},
                "data": data
            }))
        };
        let gold = config(
            "gold",
            serde_json::json!({"tier": "gold", "long": "é".repeat(6000)}),
        );
        let set = set(
            &docs,
            &[
                gold,
                config("silver", serde_json::json!({"tier": "silver"})),
            ],
        );
        let outcome = run(&set, serde_json::json!({}));
        assert_eq!(messages(&outcome), []);
        assert_eq!(outcome.annotations["tiers/tier"], "gold, silver");
        // 10 KiB, cut at a character boundary ('é' is two bytes).
        assert_eq!(outcome.annotations["tiers/long"], "é".repeat(5120));
    }

    #[test]
    fn the_first_denial_gives_the_reason_and_audit_failures_are_listed() {
        let docs = [
            policy(
                "b-limits",
                serde_json::json!({"validations": [
                    {"expression": "true"},
                    {"expression": "object.n < 3", "message": "n <3 & >0", "reason": "RequestEntityTooLarge"},
                ]}),
            ),
            policy(
                "a-config",
                serde_json::json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}),
            ),
            binding(
                "needs-config",
                "a-config",
                &["Warn"],
                serde_json::json!({"name": "absent", "parameterNotFoundAction": "Deny"}),
            ),
            binding(
                "limits",
                "b-limits",
                &["Deny", "Audit"],
                serde_json::Value::Null,
            ),
            binding(
                "limits-audit",
                "b-limits",
                &["Audit"],
                serde_json::Value::Null,
            ),
        ];
        let limits = set(&docs, &[]);
        let outcome = run(&limits, serde_json::json!({"n": 5}));
        // A binding's configuration error denies even when its action is Warn.
        let config_error = "ValidatingAdmissionPolicy 'a-config' with binding 'needs-config' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction";
        assert_eq!(
            outcome.denial,
            Some(VapDenial {
                message: config_error.to_owned(),
                reason: "Invalid".to_owned(),
                code: 422,
            })
        );
        assert_eq!(
            outcome.annotations[VALIDATION_FAILURE_ANNOTATION],
            r#"[{"message":"n \u003c3 \u0026 \u003e0","policy":"b-limits","binding":"limits","expressionIndex":1,"validationActions":["Deny","Audit"]},{"message":"n \u003c3 \u0026 \u003e0","policy":"b-limits","binding":"limits-audit","expressionIndex":1,"validationActions":["Audit"]}]"#
        );
        // Without the configuration error, the validation's reason and its code.
        let outcome = run(
            &set_without(&docs, "needs-config"),
            serde_json::json!({"n": 5}),
        );
        assert_eq!(
            outcome.denial,
            Some(VapDenial {
                message: "ValidatingAdmissionPolicy 'b-limits' with binding 'limits' denied request: n <3 & >0".to_owned(),
                reason: "RequestEntityTooLarge".to_owned(),
                code: 413,
            })
        );
        // An evaluation error carries no reason: Invalid, whatever the validation names.
        let broken = [
            policy(
                "broken",
                serde_json::json!({"validations": [
                    {"expression": "object.missing == 1", "reason": "Forbidden"}]}),
            ),
            binding("broken", "broken", &["Deny"], serde_json::Value::Null),
        ];
        assert_eq!(
            run(&set(&broken, &[]), serde_json::json!({})).denial,
            Some(VapDenial {
                message: "ValidatingAdmissionPolicy 'broken' with binding 'broken' denied request: expression 'object.missing == 1' resulted in error: no such key: missing".to_owned(),
                reason: "Invalid".to_owned(),
                code: 422,
            })
        );
    }

    fn set_without(docs: &[Value], binding: &str) -> VapSet {
        let kept: Vec<Value> = docs
            .iter()
            .filter(|d| str_at(d, &["metadata", "name"]) != Some(binding))
            .cloned()
            .collect();
        set(&kept, &[])
    }

    #[test]
    fn invalid_audit_annotations_and_reasons_are_refused() {
        let err = |spec: serde_json::Value| {
            VapSet::default()
                .add("p.yaml", &policy("p", spec))
                .unwrap_err()
                .to_string()
        };
        let annotation = |key: &str, expr: &str| serde_json::json!({"auditAnnotations": [{"key": key, "valueExpression": expr}]});
        let messages = [
            err(annotation("k", "object.x +")),
            err(annotation("k", "variables.nope")),
            err(annotation("bad key", "'x'")),
            err(annotation("k", "  ")),
            err(serde_json::json!({"auditAnnotations": [
                {"key": "k", "valueExpression": "'a'"}, {"key": "k", "valueExpression": "'b'"}]})),
            err(serde_json::json!({"validations": [{"expression": "true", "reason": "Conflict"}]})),
        ];
        let first_lines: Vec<&str> = messages.iter().filter_map(|m| m.lines().next()).collect();
        let at = "p.yaml: ValidatingAdmissionPolicy \"p\": spec.";
        assert_eq!(
            first_lines,
            [
                format!(
                    "{at}auditAnnotations[0].valueExpression: compilation failed: ERROR: <input>:1:11: Syntax error: mismatched input '<EOF>' expecting {{'[', '{{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}}"
                ),
                format!(
                    "{at}auditAnnotations[0].valueExpression: compilation failed: ERROR: <input>:1:10: undefined field 'nope' of variables"
                ),
                format!(
                    "{at}auditAnnotations[0].key: Invalid value: \"bad key\": must be a qualified name of at most 63 characters: alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character"
                ),
                format!(
                    "{at}auditAnnotations[0].valueExpression: Required value: valueExpression is not specified"
                ),
                format!("{at}auditAnnotations[1].key: Duplicate value: \"k\""),
                format!(
                    "{at}validations[0].reason: Unsupported value: \"Conflict\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\", \"Unauthorized\""
                ),
            ]
        );
    }

    /// Policies on `apps/v1 deployments` with the given `matchPolicy` (none:
    /// the default), one denying binding each, reviewing a Deployment sent as
    /// `api_version`.
    fn deployment_matches(match_policy: Option<&str>, exclude: bool, api_version: &str) -> bool {
        let rules = serde_json::json!([{
            "apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["deployments"]}]);
        let mut constraints = serde_json::json!({"resourceRules": [{
            "apiGroups": ["*"], "apiVersions": ["*"],
            "operations": ["*"], "resources": ["*"]}]});
        if exclude {
            constraints["excludeResourceRules"] = rules;
        } else {
            constraints["resourceRules"] = rules;
        }
        if let Some(p) = match_policy {
            constraints["matchPolicy"] = serde_json::json!(p);
        }
        let docs = [
            policy(
                "p",
                serde_json::json!({"matchConstraints": constraints,
                    "validations": [{"expression": "false", "message": "matched"}]}),
            ),
            binding("p", "p", &["Deny"], serde_json::Value::Null),
        ];
        let object = serde_json::json!({"apiVersion": api_version, "kind": "Deployment"});
        let outcome = review(&set(&docs, &[]), api_version, "Deployment", object);
        outcome.denial.is_some()
    }

    #[test]
    fn match_policy_equivalent_matches_other_groups_and_versions_of_the_resource() {
        let sent = ["apps/v1", "apps/v1beta2", "extensions/v1beta1", "batch/v1"];
        let matched = |policy: Option<&str>, exclude: bool| -> Vec<bool> {
            sent.iter()
                .map(|a| deployment_matches(policy, exclude, a))
                .collect()
        };
        // Equivalent is the default: the moved and older versions match, another group does not.
        assert_eq!(matched(None, false), [true, true, true, false]);
        assert_eq!(
            matched(Some("Equivalent"), false),
            [true, true, true, false]
        );
        assert_eq!(matched(Some("Exact"), false), [true, false, false, false]);
        // Exclusions follow the same policy.
        assert_eq!(matched(None, true), [false, false, false, true]);
        assert_eq!(matched(Some("Exact"), true), [false, true, true, true]);
        let err = VapSet::default()
            .add(
                "p.yaml",
                &policy(
                    "p",
                    serde_json::json!({"matchConstraints": {"matchPolicy": "Fuzzy",
                        "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                            "operations": ["CREATE"], "resources": ["pods"]}]}}),
                ),
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "p.yaml: ValidatingAdmissionPolicy \"p\": spec.matchConstraints.matchPolicy: Unsupported value: \"Fuzzy\": supported values: \"Equivalent\", \"Exact\""
        );
    }
}
