//! `verify`: running Rego unit tests (`test_*` rules), with coverage.
//!
//! Flow: [`Verifier::new`] lists every rule named `test_*` (to run) or
//! `todo_test_*` (reported as skipped) across the loaded modules, in file
//! and source order. [`Verifier::run`] evaluates each test in its own clone
//! of the prepared engine, in parallel, and returns results in that order.
//! With coverage on, each clone records the lines it evaluated and the
//! reports are merged; test files themselves are left out of the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regorus::Value;

use crate::error::{Error, Result};
use crate::policy::PolicySet;

/// One test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCase {
    /// Package without `data.` (`main`).
    pub package: String,
    /// Rule name (`test_deny_root`).
    pub name: String,
    /// File of its first definition.
    pub file: String,
    /// Line of its first definition.
    pub line: u32,
    /// A `todo_test_*` rule: reported, not run.
    pub skip: bool,
}

impl TestCase {
    /// `data.<package>.<name>`.
    pub fn path(&self) -> String {
        format!("data.{}.{}", self.package, self.name)
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
    /// Discovers `test_*` and `todo_test_*` rules.
    pub fn new(policies: &PolicySet) -> Verifier {
        let mut cases: Vec<TestCase> = Vec::new();
        for module in policies.modules() {
            for rule in &module.rules {
                let skip = rule.name.starts_with("todo_test_");
                if !(skip || rule.name.starts_with("test_")) {
                    continue;
                }
                let known = cases
                    .iter()
                    .any(|c| c.package == module.package && c.name == rule.name);
                if !known {
                    cases.push(TestCase {
                        package: module.package.clone(),
                        name: rule.name.clone(),
                        file: module.file.clone(),
                        line: rule.line,
                        skip,
                    });
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

    /// Runs the tests `select` accepts (all when `None`), in parallel.
    /// A runtime error in a test (as opposed to a failure) aborts the run.
    pub fn run(
        &self,
        select: Option<&dyn Fn(&TestCase) -> bool>,
        coverage: bool,
    ) -> Result<VerifyReport> {
        let chosen: Vec<&TestCase> = self
            .cases
            .iter()
            .filter(|c| select.is_none_or(|f| f(c)))
            .collect();
        let mut base = self.policies.engine().clone();
        if coverage {
            base.set_enable_coverage(true);
        }
        let outcomes: Vec<Result<(TestRun, Option<regorus::coverage::Report>)>> = chosen
            .par_iter()
            .map(|case| {
                if case.skip {
                    return Ok((
                        TestRun {
                            case: (*case).clone(),
                            status: TestStatus::Skip,
                            duration: Duration::ZERO,
                            prints: Vec::new(),
                            evaluated: BTreeMap::new(),
                        },
                        None,
                    ));
                }
                let mut engine = base.clone();
                let started = Instant::now();
                let value = engine.eval_rule(case.path()).map_err(|e| Error::Eval {
                    file: case.file.clone(),
                    query: case.path(),
                    message: e.to_string(),
                })?;
                let duration = started.elapsed();
                let status = match value {
                    Value::Undefined | Value::Bool(false) => TestStatus::Fail,
                    _ => TestStatus::Pass,
                };
                let prints = engine.take_prints().unwrap_or_default();
                let report = if coverage {
                    engine.get_coverage_report().ok()
                } else {
                    None
                };
                let evaluated = report
                    .iter()
                    .flat_map(|r| r.files.iter())
                    .filter(|f| !f.covered.is_empty())
                    .map(|f| (f.path.clone(), f.covered.iter().copied().collect()))
                    .collect();
                Ok((
                    TestRun {
                        case: (*case).clone(),
                        status,
                        duration,
                        prints,
                        evaluated,
                    },
                    report,
                ))
            })
            .collect();
        let mut runs = Vec::with_capacity(outcomes.len());
        let mut reports = Vec::new();
        for outcome in outcomes {
            let (run, report) = outcome?;
            runs.push(run);
            reports.extend(report);
        }
        let coverage = coverage.then(|| self.merge_coverage(&reports));
        Ok(VerifyReport { runs, coverage })
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

impl VerifyReport {
    /// The runs as conftest reports them: one result per test, named by its
    /// file, with an empty namespace; a failing or skipped test's message
    /// is its path (`data.main.test_x`).
    pub fn check_results(&self) -> Vec<super::CheckResult> {
        self.runs
            .iter()
            .map(|run| {
                let mut result = super::CheckResult::new(&run.case.file, "");
                let outcome = || super::Outcome::message_only(&run.case.path(), &run.case.name);
                match run.status {
                    TestStatus::Pass => result.successes = 1,
                    TestStatus::Fail => result.failures.push(outcome()),
                    TestStatus::Skip => result.skipped.push(outcome()),
                }
                result.prints.clone_from(&run.prints);
                result
            })
            .collect()
    }
}
