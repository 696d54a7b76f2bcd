//! ConstraintTemplate bundles reported in conftest's shape, for
//! `regard test --bundle`: each object a constraint matched counts one test;
//! `deny` violations are failures, `warn` violations warnings, `dryrun`
//! violations are not reported. Objects are reviewed as `gator test`
//! reviews them, with every checked document in `data.inventory`. An object
//! that cannot be reviewed is an error result of its file; the other
//! objects still report.

use std::collections::BTreeMap;

use regorus::Value;

use super::{AUDIT_NAMESPACE, AuditAnnotation, CheckResult, Outcome};
use crate::error::Result;
use crate::gatekeeper::{
    EnforcementAction, Engines, GATOR_ENFORCEMENT_POINT, PolicyBundle, ReviewOptions, Violation,
};
use crate::input::ParsedFile;
use crate::mutation::{MutationContext, MutationSystem};

/// Reviews every document of `files` and returns conftest-shaped results,
/// constraint-major (all files for the first constraint, then the next),
/// files in the order given. `engines` picks the Rego evaluator and whether
/// K8sNativeValidation (CEL) code runs first.
pub fn check_bundle(
    bundle: &PolicyBundle,
    files: &[ParsedFile],
    engines: Engines,
) -> Result<Vec<CheckResult>> {
    check_bundle_mutated(bundle, files, engines, None)
}

/// [`check_bundle`], with each object first mutated by `mutators` as the
/// cluster would store it (gator's context: Namespaces among the files).
/// An object the mutators fail on is an error of its file.
pub fn check_bundle_mutated(
    bundle: &PolicyBundle,
    files: &[ParsedFile],
    engines: Engines,
    mutators: Option<&MutationSystem>,
) -> Result<Vec<CheckResult>> {
    let mut owners = Vec::new();
    let mut objects = Vec::new();
    for (index, file) in files.iter().enumerate() {
        for doc in file.documents() {
            if matches!(doc, Value::Object(_)) {
                owners.push(index);
                objects.push(doc);
            }
        }
    }
    // An object the mutators fail on is reported as an error of its file.
    let mut mutation_errors: BTreeMap<usize, String> = BTreeMap::new();
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|d| d["kind"] == Value::from("Namespace") && d["apiVersion"] == Value::from("v1"))
        .cloned()
        .collect();
    if let Some(system) = mutators.filter(|m| !m.is_empty()) {
        for (i, object) in objects.iter_mut().enumerate() {
            if MutationSystem::is_mutator(object) {
                continue;
            }
            let ctx = MutationContext::gator(object, &namespaces);
            if let Err(e) = system.mutate_value(object, &ctx) {
                mutation_errors.insert(i, e.to_string());
            }
        }
    }
    let bundle = bundle.with_inventory(&objects)?;
    let options = ReviewOptions {
        enforcement_point: GATOR_ENFORCEMENT_POINT.to_owned(),
        evaluator: engines.evaluator,
        disable_k8s_native_validation: !engines.k8s_native_validation,
        // Resultants of expansion are mutated too, as `Generated`.
        resultant_hook: mutators
            .filter(|m| !m.is_empty())
            .map(|m| m.resultant_hook(namespaces.clone())),
        ..ReviewOptions::default()
    };
    let outcomes = bundle.review_objects(&objects, &options);

    // (constraint kind, name) → its position in the bundle's order.
    // ValidatingAdmissionPolicyBindings follow the constraints, by name.
    let bindings = bundle
        .admission_policy_bindings()
        .into_iter()
        .map(|b| (crate::vap::BINDING_KIND.to_owned(), b.to_owned()));
    let order: BTreeMap<(String, String), usize> = bundle
        .constraints()
        .map(|c| (c.kind.clone(), c.name.clone()))
        .chain(bindings)
        .enumerate()
        .map(|(i, key)| (key, i))
        .collect();
    let mut results: BTreeMap<(usize, usize), CheckResult> = BTreeMap::new();
    for (object_index, (&file_index, outcome)) in owners.iter().zip(outcomes).enumerate() {
        let Some(file) = files.get(file_index) else {
            continue;
        };
        if let Some(message) = mutation_errors.get(&object_index) {
            results
                .entry((usize::MAX, file_index))
                .or_insert_with(|| CheckResult::new(&file.name, ""))
                .errors
                .push(Outcome::message_only(message, ""));
            continue;
        }
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // One object that cannot be reviewed is an error of its
                // file, listed after the constraints' results.
                results
                    .entry((usize::MAX, file_index))
                    .or_insert_with(|| CheckResult::new(&file.name, ""))
                    .errors
                    .push(Outcome::message_only(&e.to_string(), ""));
                continue;
            }
        };
        if !outcome.audit_annotations.is_empty() {
            let object = describe(&objects, object_index);
            // After the constraints' and bindings' results, before the errors.
            results
                .entry((usize::MAX - 1, file_index))
                .or_insert_with(|| CheckResult::new(&file.name, AUDIT_NAMESPACE))
                .audit_annotations
                .extend(
                    outcome
                        .audit_annotations
                        .iter()
                        .map(|(key, value)| AuditAnnotation {
                            object: object.clone(),
                            key: key.clone(),
                            value: value.clone(),
                        }),
                );
        }
        for evaluation in &outcome.evaluations {
            let key = (evaluation.kind.clone(), evaluation.name.clone());
            let Some(&position) = order.get(&key) else {
                continue;
            };
            let result = results
                .entry((position, file_index))
                .or_insert_with(|| CheckResult {
                    filename: file.name.clone(),
                    namespace: evaluation.name.clone(),
                    ..CheckResult::default()
                });
            let mut reported = false;
            for v in outcome.violations.iter().filter(|v| {
                v.constraint_kind == evaluation.kind && v.constraint_name == evaluation.name
            }) {
                match v.enforcement_action {
                    EnforcementAction::Deny => result.failures.push(to_outcome(v)),
                    EnforcementAction::Warn => result.warnings.push(to_outcome(v)),
                    EnforcementAction::Dryrun => continue,
                }
                reported = true;
            }
            if !reported {
                result.successes += 1;
            }
        }
    }
    Ok(results.into_values().collect())
}

/// `apiVersion/Kind [namespace/]name` of the object at `index`.
fn describe(objects: &[Value], index: usize) -> String {
    let Some(o) = objects.get(index) else {
        return String::new();
    };
    let s = |v: &Value| v.as_string().map(|s| s.to_string()).unwrap_or_default();
    let namespace = s(&o["metadata"]["namespace"]);
    let name = s(&o["metadata"]["name"]);
    let name = if namespace.is_empty() {
        name
    } else {
        format!("{namespace}/{name}")
    };
    format!("{}/{} {name}", s(&o["apiVersion"]), s(&o["kind"]))
}

fn to_outcome(v: &Violation) -> Outcome {
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "constraint".to_owned(),
        serde_json::Value::String(format!("{}/{}", v.constraint_kind, v.constraint_name)),
    );
    metadata.insert(
        "enforcementAction".to_owned(),
        serde_json::Value::String(v.enforcement_action.as_str().to_owned()),
    );
    let details = serde_json::to_value(&v.details).unwrap_or(serde_json::Value::Null);
    if details.as_object().is_some_and(|o| !o.is_empty()) {
        metadata.insert("details".to_owned(), details);
    }
    Outcome {
        msg: v.msg.clone(),
        loc: None,
        rule: v.constraint_kind.clone(),
        metadata,
    }
}
