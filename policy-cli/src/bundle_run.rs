//! `regard test` on ConstraintTemplate bundles: the built-in library's
//! bundles (`--bundle baseline`, or the default bundles when no policy is
//! given) and directories of templates and constraints (`--bundle DIR`).
//!
//! Objects are reviewed as `gator test` reviews them (enforcement point
//! `gator.gatekeeper.sh`, every checked document in `data.inventory`), and
//! each review is mapped onto conftest's result shape so every output format
//! and the summary line work unchanged: one result per (constraint, file)
//! whose constraint matched a document of the file, named after the
//! constraint (`namespace`); `deny` violations are failures, `warn`
//! violations warnings, `dryrun` violations are not reported; a matched
//! document with nothing reported for a constraint counts as one success.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use policy_core::Value;
use policy_core::conftest::{CheckResult, Outcome};
use policy_core::gatekeeper::{
    EnforcementAction, GATOR_ENFORCEMENT_POINT, PolicyBundle, ReviewOptions, Violation,
    read_document_files,
};
use policy_core::input::ParsedFile;
use policy_core::library;

/// Which bundles a run uses.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// Built-in bundle names or directories, as given.
    pub(crate) entries: Vec<String>,
    /// Chosen because no policy was given (announced on stderr).
    pub(crate) implicit: bool,
}

impl Selection {
    /// The library's default bundles.
    pub(crate) fn defaults() -> Result<Selection> {
        Ok(Selection {
            entries: library::default_bundles()?,
            implicit: true,
        })
    }

    /// The line `regard test` prints to stderr when it picked the defaults.
    pub(crate) fn announcement(&self) -> Option<String> {
        self.implicit.then(|| {
            format!(
                "regard: no policy given and no ./policy directory; using the built-in bundles {}",
                self.entries.join(", ")
            )
        })
    }

    /// Compiles the selection: built-in names from the embedded library,
    /// anything else as a directory of templates and constraints.
    pub(crate) fn load(&self) -> Result<PolicyBundle> {
        let known: Vec<String> = library::bundles()?.into_iter().map(|b| b.name).collect();
        let (names, dirs): (Vec<&String>, Vec<&String>) =
            self.entries.iter().partition(|e| known.contains(e));
        let mut docs = library::documents(&names)?;
        for dir in dirs {
            if !std::path::Path::new(dir).exists() {
                bail!(
                    "--bundle {dir}: neither a built-in bundle ({}) nor an existing directory",
                    known.join(", ")
                );
            }
            for (source, values) in read_document_files(std::slice::from_ref(dir))? {
                docs.extend(values.into_iter().map(|v| (source.clone(), v)));
            }
        }
        let bundle = PolicyBundle::from_documents(docs)?;
        if bundle.constraint_count() == 0 {
            bail!("--bundle {}: no Constraints found", self.entries.join(","));
        }
        Ok(bundle)
    }
}

/// Reviews every document of `files` and returns conftest-shaped results,
/// constraint-major (all files for the first constraint, then the next),
/// files in the order given.
pub(crate) fn check(bundle: &PolicyBundle, files: &[ParsedFile]) -> Result<Vec<CheckResult>> {
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
    let bundle = bundle.with_inventory(&objects)?;
    let options = ReviewOptions {
        enforcement_point: GATOR_ENFORCEMENT_POINT.to_owned(),
        ..ReviewOptions::default()
    };
    let outcomes = bundle.review_objects(&objects, &options);

    // (constraint kind, name) → its position in the bundle's order.
    let order: BTreeMap<(String, String), usize> = bundle
        .constraints()
        .enumerate()
        .map(|(i, c)| ((c.kind.clone(), c.name.clone()), i))
        .collect();
    let mut results: BTreeMap<(usize, usize), CheckResult> = BTreeMap::new();
    for (&file_index, outcome) in owners.iter().zip(outcomes) {
        let Some(file) = files.get(file_index) else {
            continue;
        };
        let outcome = outcome.with_context(|| format!("reviewing {}", file.name))?;
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
