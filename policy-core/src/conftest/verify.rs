//! `verify`: running Rego unit tests (`test_*` rules), with coverage.
//!
//! Flow: [`Verifier::new`] lists every rule named `test_*` (to run) or
//! `todo_test_*` (reported as skipped) across the loaded modules, in file
//! and source order; a test definition that [`PolicySet::load_tests`] split
//! off under an internal name is listed under the name OPA reports
//! (`test_x#01`). [`Verifier::run`] evaluates each test in its own clone of
//! the prepared engine, in parallel, and returns results in that order. A
//! test whose evaluation fails (or panics) is an error of that test only;
//! files the policy set left out because they do not compile are reported
//! as errors before the tests. With coverage on, each clone records the
//! lines it evaluated and the reports are merged; test files themselves are
//! left out of the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regorus::Value;

use crate::policy::{ExcludedFile, PolicySet};

/// One test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Package without `data.` (`main`).
    pub package: String,
    /// Test name as OPA reports it (`test_deny_root`; `test_deny_root#01`
    /// for the second definition of that name in the package).
    pub name: String,
    /// The rule evaluated: `name`, or the internal name a further
    /// definition was compiled under (`test_deny_root__01`).
    pub rule: String,
    /// File of its first definition.
    pub file: String,
    /// Line of its first definition.
    pub line: u32,
    /// A `todo_test_*` rule: reported, not run.
    pub skip: bool,
}

impl TestCase {
    /// `data.<package>.<name>`, the name reports show (a package component
    /// that is not an identifier in brackets, as OPA prints it).
    pub fn path(&self) -> String {
        format!(
            "{}.{}",
            crate::policy::data_ref(&self.package, ""),
            self.name
        )
    }

    /// `data.<package>.<rule>`, the rule evaluated.
    fn rule_path(&self) -> String {
        crate::policy::data_ref(&self.package, &self.rule)
    }
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestStatus {
    /// The rule was defined and not `false`.
    Pass,
    /// The rule was undefined or `false`.
    Fail,
    /// A `todo_test_*` rule.
    Skip,
    /// Evaluating the rule failed or panicked; the message, on one line
    /// (`policy/x.rego:7: eval_conflict_error: complete rules must not produce multiple outputs`).
    Error(String),
}

/// The result of one test.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The test.
    pub case: TestCase,
    /// How it ended.
    pub status: TestStatus,
    /// Wall time of its evaluation.
    pub duration: Duration,
    /// `print()` output, as `file:line: text`.
    pub prints: Vec<String>,
    /// With coverage on: the lines this test evaluated, per policy file.
    pub evaluated: BTreeMap<String, Vec<u32>>,
}

/// Line coverage of one policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCoverage {
    /// The policy file.
    pub file: String,
    /// Lines evaluated at least once.
    pub covered: Vec<u32>,
    /// Lines holding expressions that never ran.
    pub not_covered: Vec<u32>,
}

impl FileCoverage {
    /// Covered lines as a percentage of coverable lines (100 for none).
    pub fn percent(&self) -> f64 {
        percent(
            self.covered.len(),
            self.covered.len() + self.not_covered.len(),
        )
    }
}

/// Line coverage of every non-test policy file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Coverage {
    /// Per file, in load order.
    pub files: Vec<FileCoverage>,
}

impl Coverage {
    /// Covered lines across all files as a percentage.
    pub fn percent(&self) -> f64 {
        let covered: usize = self.files.iter().map(|f| f.covered.len()).sum();
        let total: usize = self
            .files
            .iter()
            .map(|f| f.covered.len() + f.not_covered.len())
            .sum();
        percent(covered, total)
    }
}

#[allow(clippy::cast_precision_loss)] // line counts are far below 2^52
fn percent(part: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

/// Results of a verify run.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Policy files left out because they do not compile; their tests did not run.
    pub excluded: Vec<ExcludedFile>,
    /// One entry per selected test, in discovery order.
    pub runs: Vec<TestRun>,
    /// Present when coverage was requested.
    pub coverage: Option<Coverage>,
}

/// Runs the unit tests of a policy set.
#[derive(Debug, Clone)]
pub struct Verifier {
    policies: PolicySet,
    cases: Vec<TestCase>,
}

impl Verifier {
    /// Discovers `test_*` and `todo_test_*` rules. As in OPA, every
    /// definition of a `todo_test_*` rule is reported as skipped.
    pub fn new(policies: &PolicySet) -> Verifier {
        let mut cases: Vec<TestCase> = Vec::new();
        for module in policies.modules() {
            for rule in &module.rules {
                let skip = rule.name.starts_with("todo_test_");
                if !(skip || rule.name.starts_with("test_")) {
                    continue;
                }
                let split = policies
                    .split_tests()
                    .iter()
                    .find(|s| s.file == module.file && s.rule == rule.name);
                let case = TestCase {
                    package: module.package.clone(),
                    name: split.map_or_else(|| rule.name.clone(), |s| s.name.clone()),
                    rule: rule.name.clone(),
                    file: module.file.clone(),
                    line: rule.line,
                    skip,
                };
                if skip {
                    cases.extend(std::iter::repeat_n(case, rule.definitions.max(1)));
                    continue;
                }
                // Definitions regorus merges into one rule (partial sets,
                // defaults) run once.
                let known = cases
                    .iter()
                    .any(|c| c.package == case.package && c.rule == case.rule);
                if !known {
                    cases.push(case);
                }
            }
        }
        Verifier {
            policies: policies.clone(),
            cases,
        }
    }

    /// Every discovered test.
    pub fn cases(&self) -> &[TestCase] {
        &self.cases
    }

    /// Runs the tests `select` accepts (all when `None`), in parallel. A
    /// test whose evaluation fails or panics ends as [`TestStatus::Error`];
    /// the other tests run regardless.
    pub fn run(&self, select: Option<&dyn Fn(&TestCase) -> bool>, coverage: bool) -> VerifyReport {
        let chosen: Vec<&TestCase> = self
            .cases
            .iter()
            .filter(|c| select.is_none_or(|f| f(c)))
            .collect();
        let mut base = self.policies.engine().clone();
        if coverage {
            base.set_enable_coverage(true);
        }
        // Compile once rather than in every clone; a failure here shows up
        // again, as each test's error, when the tests run.
        let _ = crate::policy::compile(&mut base);
        let outcomes: Vec<(TestRun, Option<regorus::coverage::Report>)> = chosen
            .par_iter()
            .map(|case| run_one(&base, case, coverage))
            .collect();
        let mut runs = Vec::with_capacity(outcomes.len());
        let mut reports = Vec::new();
        for (run, report) in outcomes {
            runs.push(run);
            reports.extend(report);
        }
        let coverage = coverage.then(|| self.merge_coverage(&reports));
        VerifyReport {
            excluded: self.policies.excluded().to_vec(),
            runs,
            coverage,
        }
    }

    /// Unions per-test coverage; files defining tests are left out.
    fn merge_coverage(&self, reports: &[regorus::coverage::Report]) -> Coverage {
        let test_files: BTreeSet<&str> = self.cases.iter().map(|c| c.file.as_str()).collect();
        let mut covered: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
        let mut seen: BTreeMap<&str, BTreeSet<u32>> = BTreeMap::new();
        for report in reports {
            for file in &report.files {
                covered
                    .entry(file.path.as_str())
                    .or_default()
                    .extend(file.covered.iter().copied());
                let all = seen.entry(file.path.as_str()).or_default();
                all.extend(file.covered.iter().copied());
                all.extend(file.not_covered.iter().copied());
            }
        }
        let mut files = Vec::new();
        let mut listed = BTreeSet::new();
        for module in self.policies.modules() {
            let path = module.file.as_str();
            if test_files.contains(path)
                || module.file.ends_with("_test.rego")
                || !listed.insert(path)
            {
                continue;
            }
            let (covered_lines, not_covered) = match seen.get(path) {
                Some(all) => {
                    let c = covered.get(path).cloned().unwrap_or_default();
                    let n: Vec<u32> = all.difference(&c).copied().collect();
                    (c.into_iter().collect(), n)
                }
                // Never evaluated: regorus reports nothing for the file, so
                // every line inside its rules counts as not covered.
                None => (Vec::new(), module.coverable_lines.clone()),
            };
            files.push(FileCoverage {
                file: path.to_owned(),
                covered: covered_lines,
                not_covered,
            });
        }
        Coverage { files }
    }
}

/// Evaluates one test in its own clone of `base`.
fn run_one(
    base: &regorus::Engine,
    case: &TestCase,
    coverage: bool,
) -> (TestRun, Option<regorus::coverage::Report>) {
    let mut run = TestRun {
        case: case.clone(),
        status: TestStatus::Skip,
        duration: Duration::ZERO,
        prints: Vec::new(),
        evaluated: BTreeMap::new(),
    };
    if case.skip {
        return (run, None);
    }
    let mut engine = base.clone();
    let started = Instant::now();
    let value = crate::guard::catch(|| engine.eval_rule(case.rule_path()));
    run.duration = started.elapsed();
    run.status = match value {
        Ok(Ok(Value::Undefined | Value::Bool(false))) => TestStatus::Fail,
        Ok(Ok(_)) => TestStatus::Pass,
        Ok(Err(e)) => TestStatus::Error(crate::rego::messages::render(
            &e.to_string(),
            engine.get_modules(),
        )),
        // The engine may be half-updated: nothing more is read from it.
        Err(panic) => {
            return (
                TestRun {
                    status: TestStatus::Error(panic.to_string()),
                    ..run
                },
                None,
            );
        }
    };
    run.prints = engine.take_prints().unwrap_or_default();
    let report = if coverage {
        engine.get_coverage_report().ok()
    } else {
        None
    };
    run.evaluated = report
        .iter()
        .flat_map(|r| r.files.iter())
        .filter(|f| !f.covered.is_empty())
        .map(|f| (f.path.clone(), f.covered.iter().copied().collect()))
        .collect();
    (run, report)
}

impl VerifyReport {
    /// The results as conftest reports them: one result per test, named by
    /// its file, with an empty namespace; a failing or skipped test's
    /// message is its path (`data.main.test_x`), an erroring test's is its
    /// path and the error (`data.main.test_x: <message>`). Files left out
    /// come first, each one error with the compiler's message.
    pub fn check_results(&self) -> Vec<super::CheckResult> {
        let excluded = self.excluded.iter().map(|e| {
            let mut result = super::CheckResult::new(&e.file, "");
            result
                .errors
                .push(super::Outcome::message_only(&e.message, ""));
            result
        });
        let runs = self.runs.iter().map(|run| {
            let mut result = super::CheckResult::new(&run.case.file, "");
            let outcome = |msg: &str| super::Outcome::message_only(msg, &run.case.name);
            match &run.status {
                TestStatus::Pass => result.successes = 1,
                TestStatus::Fail => result.failures.push(outcome(&run.case.path())),
                TestStatus::Skip => result.skipped.push(outcome(&run.case.path())),
                TestStatus::Error(e) => result
                    .errors
                    .push(outcome(&format!("{}: {e}", run.case.path()))),
            }
            result.prints.clone_from(&run.prints);
            result
        });
        excluded.chain(runs).collect()
    }

    /// Whether any test failed or erred, or any file was left out.
    pub fn failed(&self) -> bool {
        !self.excluded.is_empty()
            || self
                .runs
                .iter()
                .any(|r| matches!(r.status, TestStatus::Fail | TestStatus::Error(_)))
    }
}
