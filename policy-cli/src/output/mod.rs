//! Rendering check results in the formats conftest offers.
//!
//! Every renderer takes the results in their final order and returns the
//! exact text to print; nothing here evaluates policy. Where conftest's own
//! output has known bugs (TAP stopping at an empty result, GitHub messages
//! treated as printf formats, JUnit dropping exceptions) we print the
//! corrected form; otherwise the text matches conftest byte for byte.

mod azure;
mod github;
mod json;
mod junit;
mod sarif;
mod stdout;
mod table;
mod tap;

pub(crate) use json::{JsonResult, go_json, report as json_report};

use anyhow::{Result, bail};
use policy_core::conftest::CheckResult;

/// An output format (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Stdout,
    Json,
    Tap,
    Table,
    Junit,
    Github,
    AzureDevops,
    Sarif,
}

impl OutputFormat {
    pub(crate) fn parse(name: &str) -> Result<OutputFormat> {
        Ok(match name {
            "stdout" => OutputFormat::Stdout,
            "json" => OutputFormat::Json,
            "tap" => OutputFormat::Tap,
            "table" => OutputFormat::Table,
            "junit" => OutputFormat::Junit,
            "github" => OutputFormat::Github,
            "azuredevops" => OutputFormat::AzureDevops,
            "sarif" => OutputFormat::Sarif,
            other => bail!(
                "unknown output format {other:?}; valid formats are: stdout, json, tap, table, junit, github, azuredevops, sarif"
            ),
        })
    }
}

/// Options that change how results are shown.
#[derive(Debug, Clone, Default)]
pub(crate) struct RenderOptions {
    pub(crate) color: bool,
    pub(crate) suppress_exceptions: bool,
    pub(crate) junit_hide_message: bool,
    pub(crate) github_hide_passed: bool,
    /// `verify` reports: the summary line gains `, N skipped`.
    pub(crate) show_skipped: bool,
    /// stdout: a `SKIP` line per skipped result (`regard test`'s unknown schemas).
    pub(crate) skipped_lines: bool,
    /// conftest's exit code ignoring `--fail-on-warn` (SARIF records it).
    pub(crate) exit_code: u8,
}

/// Renders results in `format`.
pub(crate) fn render(
    format: OutputFormat,
    results: &[CheckResult],
    options: &RenderOptions,
) -> String {
    match format {
        OutputFormat::Stdout => stdout::render(results, options),
        OutputFormat::Json => json::render(results),
        OutputFormat::Tap => tap::render(results),
        OutputFormat::Table => table::render(results),
        OutputFormat::Junit => junit::render(results, options),
        OutputFormat::Github => github::render(results, options),
        OutputFormat::AzureDevops => azure::render(results),
        OutputFormat::Sarif => sarif::render(results, options),
    }
}

/// Totals across results.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub(crate) tests: usize,
    pub(crate) passed: usize,
    pub(crate) warnings: usize,
    pub(crate) failures: usize,
    pub(crate) exceptions: usize,
    pub(crate) skipped: usize,
    pub(crate) errors: usize,
}

impl Totals {
    pub(crate) fn of(results: &[CheckResult]) -> Totals {
        let mut t = Totals::default();
        for r in results {
            t.passed += r.successes;
            t.warnings += r.warnings.len();
            t.failures += r.failures.len();
            t.exceptions += r.exceptions.len();
            t.skipped += r.skipped.len();
            t.errors += r.errors.len();
        }
        t.tests = t.passed + t.warnings + t.failures + t.exceptions + t.skipped + t.errors;
        t
    }

    /// `N tests, N passed, N warnings, N failures, N exceptions[, N skipped][, N errors]`;
    /// errors are counted only when there are some, so reports without
    /// errors read exactly as conftest's.
    pub(crate) fn summary(&self, show_skipped: bool) -> String {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        let mut line = format!(
            "{} test{}, {} passed, {} warning{}, {} failure{}, {} exception{}",
            self.tests,
            s(self.tests),
            self.passed,
            self.warnings,
            s(self.warnings),
            self.failures,
            s(self.failures),
            self.exceptions,
            s(self.exceptions),
        );
        if show_skipped {
            line.push_str(&format!(", {} skipped", self.skipped));
        }
        if self.errors > 0 {
            line.push_str(&format!(", {} error{}", self.errors, s(self.errors)));
        }
        line
    }
}

/// conftest's `file` and `namespace` columns in line-oriented formats:
/// `- app.yaml` and `- main -`, or a bare `-` for standard input.
pub(crate) fn indicators(result: &CheckResult) -> (String, String) {
    let file = if result.filename == "-" {
        "-".to_owned()
    } else {
        format!("- {}", result.filename)
    };
    let namespace = if result.namespace == "-" {
        "-".to_owned()
    } else {
        format!("- {} -", result.namespace)
    };
    (file, namespace)
}
