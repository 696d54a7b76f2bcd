//! gator test suites (`kind: Suite`, `test.gatekeeper.sh/v1alpha1`).
//!
//! A suite lists tests; each test names a template and a constraint (paths
//! relative to the suite file) and cases; each case names one object to
//! review (a Kubernetes object or an `AdmissionReview`), optional inventory
//! files, and assertions on the violations: `violations: yes | no | N`,
//! optionally only counting messages that match a `message` regex. A test
//! marked `invalid: true` passes when the policy is refused: the constraint
//! fails schema validation or is otherwise invalid, or the template does not
//! compile (files that cannot be read still fail the test). The template and constraint are compiled once per test; each
//! case gets its own inventory. Messages follow gator's wording.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::Regex;
use regorus::Value;
use serde::Deserialize;

use super::object::str_at;
use super::{Engines, GATOR_ENFORCEMENT_POINT, PolicyBundle, ReviewOptions};
use crate::error::Error;

/// A parsed Suite file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The file.
    pub path: PathBuf,
    /// `metadata.name`.
    pub name: String,
    /// `skip: true` skips every test.
    pub skip: bool,
    /// The tests.
    pub tests: Vec<SuiteTest>,
}

/// One test: a template, a constraint and cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteTest {
    /// Name (for `--run` and output).
    #[serde(default)]
    pub name: String,
    /// Template file, relative to the suite.
    #[serde(default)]
    pub template: String,
    /// Constraint file, relative to the suite.
    #[serde(default)]
    pub constraint: String,
    /// ExpansionTemplate file, relative to the suite.
    #[serde(default)]
    pub expansion: String,
    /// The constraint must fail schema validation.
    #[serde(default)]
    pub invalid: bool,
    /// Skip this test.
    #[serde(default)]
    pub skip: bool,
    /// The cases.
    #[serde(default)]
    pub cases: Vec<SuiteCase>,
}

/// One case: an object and what reviewing it must produce.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuiteCase {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// The object file (exactly one object).
    #[serde(default)]
    pub object: String,
    /// Files whose objects form `data.inventory`.
    #[serde(default)]
    pub inventory: Vec<String>,
    /// Skip this case.
    #[serde(default)]
    pub skip: bool,
    /// What must hold.
    #[serde(default)]
    pub assertions: Vec<Assertion>,
}

/// One assertion.
#[derive(Debug, Clone, Deserialize)]
pub struct Assertion {
    /// `yes` (default), `no`, or an exact count.
    #[serde(default)]
    pub violations: Option<serde_json::Value>,
    /// Only count violations whose message matches this (unanchored) regex.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SuiteDoc {
    #[serde(default)]
    skip: bool,
    #[serde(default)]
    tests: Vec<SuiteTest>,
}

/// Outcome of one suite file.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// The suite file.
    pub path: PathBuf,
    /// The whole suite was skipped.
    pub skipped: bool,
    /// A problem with the suite itself.
    pub error: Option<String>,
    /// Wall time.
    pub duration: Duration,
    /// Per test.
    pub tests: Vec<TestResult>,
}

/// Outcome of one test.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// Test name.
    pub name: String,
    /// Skipped (by `skip` or the filter).
    pub skipped: bool,
    /// Why the test failed as a whole (template or constraint problems).
    pub error: Option<String>,
    /// Wall time.
    pub duration: Duration,
    /// Per case.
    pub cases: Vec<CaseResult>,
}

/// Outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// Skipped.
    pub skipped: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// Wall time.
    pub duration: Duration,
}

impl CaseResult {
    /// Whether the case failed.
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

impl TestResult {
    /// Whether the test or any of its cases failed.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.cases.iter().any(CaseResult::failed)
    }
}

impl SuiteResult {
    /// Whether anything in the suite failed.
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.tests.iter().any(TestResult::failed)
    }
}

/// gator's `--run` filter: `REGEX` selects tests or cases whose name
/// matches; `TEST_REGEX//CASE_REGEX` selects cases matching both.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    test: Option<Regex>,
    case: Option<Regex>,
    and: bool,
}

impl Filter {
    /// Parses a filter (empty = everything).
    ///
    /// ```
    /// use policy_core::gatekeeper::suite::Filter;
    /// let f = Filter::new("labels//missing").unwrap();
    /// assert!(f.matches_case("required-labels", "missing-label"));
    /// assert!(!f.matches_case("other", "missing-label"));
    /// assert!(Filter::new("a//b//c").is_err());
    /// ```
    pub fn new(filter: &str) -> Result<Filter, Error> {
        if filter.is_empty() {
            return Ok(Filter::default());
        }
        let re =
            |s: &str| Regex::new(s).map_err(|e| Error::Config(format!("invalid test filter: {e}")));
        let parts: Vec<&str> = filter.split("//").collect();
        match parts.as_slice() {
            [one] => Ok(Filter {
                test: Some(re(one)?),
                case: None,
                and: false,
            }),
            [t, c] => Ok(Filter {
                test: Some(re(t)?),
                case: Some(re(c)?),
                and: true,
            }),
            _ => Err(Error::Config(
                "invalid test filter: a filter may include at most one \"//\"".to_owned(),
            )),
        }
    }

    /// Whether a test runs at all.
    pub fn matches_test(&self, test: &SuiteTest) -> bool {
        match (&self.test, self.and) {
            (None, _) => true,
            (Some(t), true) => t.is_match(&test.name),
            (Some(t), false) => {
                t.is_match(&test.name)
                    || test
                        .cases
                        .iter()
                        .any(|c| self.matches_case(&test.name, &c.name))
            }
        }
    }

    /// Whether a case runs.
    pub fn matches_case(&self, test: &str, case: &str) -> bool {
        match (&self.test, &self.case) {
            (None, _) => true,
            (Some(t), Some(c)) => t.is_match(test) && c.is_match(case),
            (Some(t), None) => t.is_match(case) || t.is_match(test),
        }
    }
}

/// Suite candidates under the given paths: files as given, directories
/// walked recursively in sorted order for `.yaml`/`.yml` files. A trailing
/// `/...` (gator's recursive form) is accepted.
pub fn find_suite_files(paths: &[String]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        let trimmed = p.strip_suffix("/...").unwrap_or(p);
        let trimmed = if trimmed.is_empty() { "." } else { trimmed };
        let path = Path::new(trimmed);
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_file() {
            out.push(path.to_path_buf());
            continue;
        }
        for entry in walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| Error::Suite {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            let is_yaml = entry
                .path()
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml");
            if entry.file_type().is_file() && is_yaml {
                out.push(entry.path().to_path_buf());
            }
        }
    }
    Ok(out)
}

/// Reads a file as a Suite; `Ok(None)` when it is some other YAML file.
pub fn read_suite(path: &Path) -> Result<Option<Suite>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    // Most YAML files next to suites are manifests: skip them unparsed.
    if !text.contains("Suite") {
        return Ok(None);
    }
    let docs = super::read_documents(path)?;
    let Some(doc) = docs.iter().find(|d| {
        str_at(d, &["kind"]) == Some("Suite")
            && str_at(d, &["apiVersion"]).is_some_and(|v| v.starts_with("test.gatekeeper.sh/"))
    }) else {
        return Ok(None);
    };
    let json = serde_json::to_value(doc).map_err(|e| Error::Suite {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let parsed: SuiteDoc = serde_json::from_value(json).map_err(|e| Error::Suite {
        path: path.to_path_buf(),
        message: format!("invalid Suite: {e}"),
    })?;
    Ok(Some(Suite {
        path: path.to_path_buf(),
        name: str_at(doc, &["metadata", "name"]).unwrap_or("").to_owned(),
        skip: parsed.skip,
        tests: parsed.tests,
    }))
}

/// Runs every test of a suite.
pub fn run_suite(suite: &Suite, filter: &Filter, engines: Engines) -> SuiteResult {
    let start = Instant::now();
    if suite.skip {
        return SuiteResult {
            path: suite.path.clone(),
            skipped: true,
            error: None,
            duration: Duration::ZERO,
            tests: Vec::new(),
        };
    }
    let dir = suite.path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let tests = suite
        .tests
        .iter()
        .map(|t| {
            if t.skip || !filter.matches_test(t) {
                return TestResult {
                    name: t.name.clone(),
                    skipped: true,
                    error: None,
                    duration: Duration::ZERO,
                    cases: Vec::new(),
                };
            }
            run_test(&dir, t, filter, engines)
        })
        .collect();
    SuiteResult {
        path: suite.path.clone(),
        skipped: false,
        error: None,
        duration: start.elapsed(),
        tests,
    }
}

/// Reads and runs every suite file on all cores. Files that are not suites
/// are skipped; a suite that cannot be read is a failed result, and the other
/// suites still run. Results are in file order.
pub fn run_files(files: &[PathBuf], filter: &Filter, engines: Engines) -> Vec<SuiteResult> {
    use rayon::prelude::*;
    files
        .par_iter()
        .filter_map(|f| match read_suite(f) {
            Ok(Some(suite)) => Some(run_suite(&suite, filter, engines)),
            Ok(None) => None,
            Err(e) => Some(SuiteResult {
                path: f.clone(),
                skipped: false,
                error: Some(e.to_string()),
                duration: Duration::ZERO,
                tests: Vec::new(),
            }),
        })
        .collect()
}

fn read_objects(dir: &Path, rel: &str) -> Result<Vec<Value>, String> {
    let path = dir.join(rel);
    let docs = super::read_documents(&path).map_err(|e| e.to_string())?;
    if docs.is_empty() {
        return Err(format!(
            "missing objects: path {:?} defines no YAML objects",
            path.display().to_string()
        ));
    }
    Ok(docs)
}

fn run_test(dir: &Path, t: &SuiteTest, filter: &Filter, engines: Engines) -> TestResult {
    let start = Instant::now();
    let fail = |m: String| TestResult {
        name: t.name.clone(),
        skipped: false,
        error: Some(m),
        duration: start.elapsed(),
        cases: Vec::new(),
    };
    if t.template.is_empty() {
        return fail("invalid Suite: missing template".to_owned());
    }
    if t.constraint.is_empty() {
        return fail("invalid Suite: missing constraint".to_owned());
    }
    let template_docs = match read_objects(dir, &t.template) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let template_file = dir.join(&t.template).display().to_string();
    let template_only: Vec<(String, Value)> = template_docs
        .iter()
        .filter(|d| super::template::is_template(d))
        .map(|d| (template_file.clone(), d.clone()))
        .collect();
    if template_only.len() != 1 {
        return fail(format!(
            "adding template: {template_file}: not a ConstraintTemplate"
        ));
    }
    if let Err(e) = PolicyBundle::from_documents(template_only.clone()) {
        // `invalid: true` expects the policy to be refused; a template that
        // does not compile is refused too.
        if t.invalid && matches!(e, Error::Template { .. }) {
            return TestResult {
                name: t.name.clone(),
                skipped: false,
                error: None,
                duration: start.elapsed(),
                cases: Vec::new(),
            };
        }
        return fail(format!("adding template: {e}"));
    }
    let constraint_file = dir.join(&t.constraint).display().to_string();
    let constraint_docs = match read_objects(dir, &t.constraint) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let Some(constraint_doc) = constraint_docs
        .iter()
        .find(|d| super::constraint::is_constraint(d))
    else {
        return fail(format!("{constraint_file}: not a Constraint"));
    };
    let mut docs = template_only;
    docs.push((constraint_file, constraint_doc.clone()));
    if !t.expansion.is_empty() {
        let file = dir.join(&t.expansion).display().to_string();
        match read_objects(dir, &t.expansion) {
            Ok(d) => docs.extend(
                d.into_iter()
                    .filter(super::expansion::is_expansion_template)
                    .map(|d| (file.clone(), d)),
            ),
            Err(e) => return fail(e),
        }
    }
    let bundle = PolicyBundle::from_documents(docs);
    if t.invalid {
        let error = match bundle {
            Err(Error::ParametersSchema { .. } | Error::Constraint { .. }) => None,
            Err(e) => Some(format!(
                "constraint should have failed schema validation: got error {e} but want schema validation failed"
            )),
            Ok(_) => Some(
                "constraint should have failed schema validation: got error <nil> but want schema validation failed"
                    .to_owned(),
            ),
        };
        return TestResult {
            name: t.name.clone(),
            skipped: false,
            error,
            duration: start.elapsed(),
            cases: Vec::new(),
        };
    }
    let bundle = match bundle {
        Ok(b) => b,
        Err(e) => return fail(format!("adding constraint: {e}")),
    };
    let cases = t
        .cases
        .iter()
        .map(|c| {
            if c.skip || !filter.matches_case(&t.name, &c.name) {
                return CaseResult {
                    name: c.name.clone(),
                    skipped: true,
                    error: None,
                    duration: Duration::ZERO,
                };
            }
            let case_start = Instant::now();
            let error = run_case(dir, &bundle, c, engines).err();
            CaseResult {
                name: c.name.clone(),
                skipped: false,
                error,
                duration: case_start.elapsed(),
            }
        })
        .collect();
    TestResult {
        name: t.name.clone(),
        skipped: false,
        error: None,
        duration: start.elapsed(),
        cases,
    }
}

fn run_case(
    dir: &Path,
    bundle: &PolicyBundle,
    c: &SuiteCase,
    engines: Engines,
) -> Result<(), String> {
    if c.object.is_empty() {
        return Err("invalid Case: must define object".to_owned());
    }
    if c.assertions.is_empty() {
        return Err("invalid Case: assertions must be non-empty".to_owned());
    }
    let objects = read_objects(dir, &c.object)?;
    let [object] = objects.as_slice() else {
        return Err(format!(
            "object file must contain exactly one object: {:?} defines {} objects",
            dir.join(&c.object).display().to_string(),
            objects.len()
        ));
    };
    let mut inventory = Vec::new();
    for p in &c.inventory {
        inventory.extend(read_objects(dir, p)?);
    }
    let bundle = if inventory.is_empty() {
        bundle.clone()
    } else {
        bundle
            .with_inventory(&inventory)
            .map_err(|e| e.to_string())?
    };
    let options = ReviewOptions {
        enforcement_point: GATOR_ENFORCEMENT_POINT.to_owned(),
        evaluator: engines.evaluator,
        disable_k8s_native_validation: !engines.k8s_native_validation,
        ..ReviewOptions::default()
    };
    let is_admission_review = str_at(object, &["kind"]) == Some("AdmissionReview")
        && str_at(object, &["apiVersion"]).is_some_and(|v| v.starts_with("admission.k8s.io/"));
    let outcome = if is_admission_review {
        let request = &object["request"];
        if matches!(request, Value::Undefined | Value::Null) {
            return Err("missing an AdmissionRequest object: request did not actually pass in an AdmissionRequest".to_owned());
        }
        bundle.review_request(request, &options)
    } else {
        bundle.review_object(object, &options)
    }
    .map_err(|e| e.to_string())?;
    let mut results: Vec<(&'static str, &str)> = outcome
        .violations
        .iter()
        .map(|v| (v.constraint_action_str(), v.msg.as_str()))
        .collect();
    results.sort();
    let messages: Vec<&str> = results.iter().map(|(_, m)| *m).collect();
    for a in &c.assertions {
        check_assertion(a, &messages)?;
    }
    Ok(())
}

fn check_assertion(a: &Assertion, messages: &[&str]) -> Result<(), String> {
    let re = match &a.message {
        Some(m) => Some(
            Regex::new(m)
                .map_err(|e| format!("message contains invalid regular expression: {e}"))?,
        ),
        None => None,
    };
    let matching = messages
        .iter()
        .filter(|m| re.as_ref().is_none_or(|r| r.is_match(m)))
        .count();
    let containing = a
        .message
        .as_ref()
        .map(|m| format!(" containing {}", go_quote(m)))
        .unwrap_or_default();
    let invalid = || {
        "invalid yaml: assertion.violation, if set, must be a nonnegative integer, \"yes\", or \"no\"".to_owned()
    };
    let problem = match &a.violations {
        None => (matching == 0)
            .then(|| format!("got {matching} violations{containing} but want at least 1")),
        Some(serde_json::Value::String(s)) if s == "yes" => (matching == 0)
            .then(|| format!("got {matching} violations{containing} but want at least 1")),
        Some(serde_json::Value::String(s)) if s == "no" => {
            (matching > 0).then(|| format!("got {matching} violations{containing} but want none"))
        }
        Some(serde_json::Value::Bool(b)) => {
            // YAML 1.1 reads a bare yes/no as a boolean.
            if *b {
                (matching == 0)
                    .then(|| format!("got {matching} violations{containing} but want at least 1"))
            } else {
                (matching > 0)
                    .then(|| format!("got {matching} violations{containing} but want none"))
            }
        }
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(want) if want as usize != matching => Some(format!(
                "got {matching} violations{containing} but want exactly {want}"
            )),
            Some(_) => None,
            None => return Err(invalid()),
        },
        Some(_) => return Err(invalid()),
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "unexpected number of violations: {p}: got messages [{}]",
            messages.join(" ")
        )),
    }
}

/// Go's `%q` for the strings suites use.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl super::Violation {
    /// gator's `enforcementAction` field: the constraint's action as written.
    pub(crate) fn constraint_action_str(&self) -> &'static str {
        match self.constraint_action.as_str() {
            "scoped" => "scoped",
            _ => self.enforcement_action.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: serde_json::Value, m: Option<&str>) -> Assertion {
        Assertion {
            violations: Some(v),
            message: m.map(str::to_owned),
        }
    }

    #[test]
    fn assertion_messages_match_gator() {
        let msgs = [
            "container <a> has no limits",
            "initContainer <b> has no limits",
        ];
        assert_eq!(
            check_assertion(&a(serde_json::json!(2), None), &msgs),
            Ok(())
        );
        assert_eq!(
            check_assertion(&a(serde_json::json!(1), Some("^init")), &msgs),
            Ok(())
        );
        assert_eq!(
            check_assertion(&a(serde_json::json!("no"), None), &msgs),
            Err("unexpected number of violations: got 2 violations but want none: got messages [container <a> has no limits initContainer <b> has no limits]".into())
        );
        assert_eq!(
            check_assertion(&a(serde_json::json!("yes"), Some("zzz")), &[]),
            Err("unexpected number of violations: got 0 violations containing \"zzz\" but want at least 1: got messages []".into())
        );
        assert!(check_assertion(&a(serde_json::json!("maybe"), None), &[]).is_err());
    }
}
