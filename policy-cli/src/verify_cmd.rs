//! `regard verify`: Rego unit tests, conftest-compatible, with coverage.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use policy_core::Value;
use policy_core::conftest::{
    Coverage, NamespaceSelection, RuleTracer, TestCase, TestRun, TestStatus, TraceFilter, Verifier,
    select_namespaces,
};
use policy_core::gatekeeper::ConstraintTemplate;
use policy_core::input;
use policy_core::policy::{ExcludedFile, LoadOptions, PolicySet, find_policy_files};
use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::config::Layers;
use crate::output::{self, OutputFormat, RenderOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Full,
    Fails,
    Notes,
}

pub(crate) fn run(args: VerifyArgs) -> Result<u8> {
    let layers = Layers::load(args.policy.config_file.as_deref())?;
    if !args.ignored.is_empty() {
        eprintln!(
            "regard verify: ignoring {} (verify runs the tests found under --policy)",
            args.ignored.join(" ")
        );
    }
    let load = layers.load_options(args.policy)?;
    let format = layers.output_format(args.output.output)?;
    let report = match layers.string("report", args.report)?.as_deref() {
        None | Some("") => None,
        Some("full") => Some(Report::Full),
        Some("fails") => Some(Report::Fails),
        Some("notes") => Some(Report::Notes),
        Some(other) => bail!("invalid --report {other:?}: use full, fails or notes"),
    };
    if report.is_some() && format != OutputFormat::Stdout {
        bail!("report flag is supported with stdout only");
    }
    let coverage_min = args.coverage_min;
    let coverage = args.coverage || coverage_min.is_some();
    if coverage && !matches!(format, OutputFormat::Stdout | OutputFormat::Json) {
        bail!("--coverage is shown with the stdout and json formats only");
    }
    if let Some(min) = coverage_min
        && !(0.0..=100.0).contains(&min)
    {
        bail!("--coverage-min must be between 0 and 100, got {min}");
    }
    let run_filter = args
        .run
        .as_deref()
        .map(|re| regex::Regex::new(re).with_context(|| format!("invalid --run pattern {re:?}")))
        .transpose()?;
    let namespaces = layers.list("namespace", args.namespace)?;

    let policies = if args.template.is_empty() {
        PolicySet::load_tests(&load)?
    } else {
        template_policies(&args.template, &load)?
    };
    let verifier = Verifier::new(&policies);
    // `-n` filters what is reported; `--run` filters what runs.
    let allowed: Option<Vec<String>> = (!namespaces.is_empty()).then(|| {
        select_namespaces(
            &policies.packages(),
            &NamespaceSelection::Patterns(namespaces),
        )
    });
    let select = |case: &TestCase| {
        allowed.as_ref().is_none_or(|ns| ns.contains(&case.package))
            && run_filter
                .as_ref()
                .is_none_or(|re| re.is_match(&case.path()))
    };
    let result = verifier.run(Some(&select), coverage);
    let tracer = if args.trace || report.is_some() {
        Some(RuleTracer::new(&policies)?)
    } else {
        None
    };
    if let (true, Some(tracer)) = (args.trace, &tracer) {
        eprint!("{}", trace(tracer, &result.runs)?);
    }
    let results = result.check_results();
    let failed = result.failed();
    let mut code = u8::from(failed);
    let mut below_min = None;
    if let (Some(min), Some(cov)) = (coverage_min, &result.coverage)
        && cov.percent() < min
    {
        below_min = Some(format!(
            "coverage {:.2}% is below the minimum {min}%",
            cov.percent()
        ));
        code = 1;
    }
    let quiet = layers.flag("quiet", args.output.quiet)?;
    if !(quiet && code == 0) {
        let color =
            !layers.flag("no-color", args.output.no_color)? && std::io::stdout().is_terminal();
        let text = match (report, format) {
            (Some(kind), _) => match &tracer {
                Some(tracer) => pretty_report(&result.excluded, tracer, &result.runs, kind)?,
                None => String::new(),
            },
            (None, OutputFormat::Json) if coverage => {
                let doc = CoveredJson {
                    results: output::json_report(&results),
                    coverage: result.coverage.as_ref().map(coverage_json),
                };
                format!("{}\n", output::go_json(&doc, b"\t"))
            }
            _ => output::render(
                format,
                &results,
                &RenderOptions {
                    color,
                    show_skipped: true,
                    junit_hide_message: layers
                        .flag("junit-hide-message", args.output.junit_hide_message)?,
                    github_hide_passed: layers
                        .flag("github-hide-passed", args.output.github_hide_passed)?,
                    exit_code: u8::from(failed),
                    ..RenderOptions::default()
                },
            ),
        };
        let mut text = text;
        if let (true, Some(cov), OutputFormat::Stdout) = (coverage, &result.coverage, format) {
            text.push_str(&coverage_table(cov));
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    if let Some(message) = below_min {
        eprintln!("Error: {message}");
    }
    Ok(code)
}

/// `--template`: the templates' Rego (as admission compiles it) plus the
/// test files under `--policy`, with `--data`.
fn template_policies(templates: &[String], load: &LoadOptions) -> Result<PolicySet> {
    let mut found = Vec::new();
    for path in templates {
        let file = input::read_file(Path::new(path), None)?;
        let before = found.len();
        for doc in file.documents() {
            if doc["kind"] == Value::from("ConstraintTemplate") {
                found.push(ConstraintTemplate::from_value(path, &doc)?);
            }
        }
        if found.len() == before {
            bail!("{path}: no ConstraintTemplate found");
        }
    }
    let Some((first, rest)) = found.split_first() else {
        bail!("--template: no ConstraintTemplate given");
    };
    if let Some(other) = rest.iter().find(|t| t.version != first.version) {
        bail!(
            "{} and {} use different Rego versions; verify them separately",
            first.file,
            other.file
        );
    }
    let mut extra: Vec<(String, String)> = rest.iter().flat_map(|t| t.rego_modules()).collect();
    extra.extend(PolicySet::read_sources(&find_policy_files(
        &load.policy_paths,
    )?)?);
    let mut set = first.test_policy_set_with(extra)?;
    set.check_compat(load)?;
    set.set_strict_builtin_errors(load.strict_builtin_errors);
    set.add_data_paths(&load.data_paths)?;
    Ok(set)
}

#[derive(Serialize)]
struct CoveredJson<'a> {
    results: Vec<output::JsonResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<CoverageJson>,
}

#[derive(Serialize)]
struct CoverageJson {
    files: Vec<FileJson>,
    covered_lines: usize,
    total_lines: usize,
    percent: f64,
}

#[derive(Serialize)]
struct FileJson {
    file: String,
    covered: Vec<u32>,
    not_covered: Vec<u32>,
    percent: f64,
}

/// Percentages rounded to two decimals so JSON is stable and readable.
fn round2(p: f64) -> f64 {
    (p * 100.0).round() / 100.0
}

fn coverage_json(cov: &Coverage) -> CoverageJson {
    let covered_lines = cov.files.iter().map(|f| f.covered.len()).sum();
    let total_lines = cov
        .files
        .iter()
        .map(|f| f.covered.len() + f.not_covered.len())
        .sum();
    CoverageJson {
        files: cov
            .files
            .iter()
            .map(|f| FileJson {
                file: f.file.clone(),
                covered: f.covered.clone(),
                not_covered: f.not_covered.clone(),
                percent: round2(f.percent()),
            })
            .collect(),
        covered_lines,
        total_lines,
        percent: round2(cov.percent()),
    }
}

fn dashes() -> String {
    "-".repeat(80)
}

fn coverage_table(cov: &Coverage) -> String {
    let width = cov
        .files
        .iter()
        .map(|f| f.file.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!("\nCOVERAGE\n{}\n", dashes());
    let _ = writeln!(out, "{:<width$}  {:>9}  {:>7}", "FILE", "LINES", "PERCENT");
    let mut covered = 0;
    let mut total = 0;
    for f in &cov.files {
        let n = f.covered.len() + f.not_covered.len();
        covered += f.covered.len();
        total += n;
        let lines = format!("{}/{n}", f.covered.len());
        let _ = writeln!(out, "{:<width$}  {lines:>9}  {:>6.2}%", f.file, f.percent());
        if !f.not_covered.is_empty() {
            let _ = writeln!(
                out,
                "{:<width$}  not covered: {}",
                "",
                ranges(&f.not_covered)
            );
        }
    }
    let _ = writeln!(out, "{}", dashes());
    let lines = format!("{covered}/{total}");
    let _ = writeln!(
        out,
        "{:<width$}  {lines:>9}  {:>6.2}%",
        "TOTAL",
        cov.percent()
    );
    out
}

/// `3-5, 9` from `[3, 4, 5, 9]`.
fn ranges(lines: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = lines.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(", ")
}

/// Durations as Go prints them (`523.4µs`, `1.234ms`), as OPA's report does.
fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        format!("{}µs", trim(format!("{:.3}", d.as_secs_f64() * 1e6)))
    } else if nanos < 1_000_000_000 {
        format!("{}ms", trim(format!("{:.3}", d.as_secs_f64() * 1e3)))
    } else {
        format!("{}s", trim(format!("{:.3}", d.as_secs_f64())))
    }
}

fn trim(s: String) -> String {
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn status_word(run: &TestRun) -> &'static str {
    match run.status {
        TestStatus::Pass => "PASS",
        TestStatus::Fail => "FAIL",
        TestStatus::Skip => "SKIPPED",
        TestStatus::Error(_) => "ERROR",
    }
}

fn test_line(run: &TestRun) -> String {
    match run.status {
        TestStatus::Skip => format!("{}: SKIPPED", run.case.path()),
        _ => format!(
            "{}: {} ({})",
            run.case.path(),
            status_word(run),
            go_duration(run.duration)
        ),
    }
}

/// The `--report` layout of `opa test -v`: failures first with their rule
/// trace (filtered by the report kind), then every test grouped by file
/// (an erroring test followed by its error, indented) with its `print()`
/// output, then counts. Files left out because they do not compile come
/// first in the summary, as `<file>: ERROR` with the compiler's message.
fn pretty_report(
    excluded: &[ExcludedFile],
    tracer: &RuleTracer,
    runs: &[TestRun],
    kind: Report,
) -> Result<String> {
    let filter = match kind {
        Report::Full => TraceFilter::All,
        Report::Fails => TraceFilter::Fails,
        Report::Notes => TraceFilter::Notes,
    };
    let mut out = String::new();
    let failures: Vec<&TestRun> = runs
        .iter()
        .filter(|r| r.status == TestStatus::Fail)
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "FAILURES\n{}", dashes());
        for run in &failures {
            let _ = writeln!(out, "{}\n", test_line(run));
            match tracer.trace(&rule_path(&run.case), None, "") {
                Ok(node) => {
                    let (internal, shown) = (rule_path(&run.case), run.case.path());
                    for line in node.render(filter, true) {
                        let _ = writeln!(out, "  {}", line.replace(&internal, &shown));
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "  {}", one_line(&e.to_string()));
                }
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "SUMMARY\n{}", dashes());
    // A `<file>:` line before the first result of each file.
    fn header<'a>(out: &mut String, current: &mut Option<&'a str>, file: &'a str) {
        if *current != Some(file) {
            if current.is_some() {
                out.push('\n');
            }
            let _ = writeln!(out, "{file}:");
            *current = Some(file);
        }
    }
    let mut current: Option<&str> = None;
    for e in excluded {
        header(&mut out, &mut current, &e.file);
        let _ = writeln!(out, "{}: ERROR\n  {}", e.file, e.message);
    }
    for run in runs {
        header(&mut out, &mut current, &run.case.file);
        let _ = writeln!(out, "{}", test_line(run));
        if let TestStatus::Error(e) = &run.status {
            let _ = writeln!(out, "  {e}");
        }
        if !run.prints.is_empty() {
            out.push('\n');
            for p in &run.prints {
                let _ = writeln!(out, "  {p}");
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "{}", dashes());
    let total = runs.len() + excluded.len();
    let count = |want: fn(&TestStatus) -> bool| runs.iter().filter(|r| want(&r.status)).count();
    for (word, n) in [
        ("PASS", count(|s| *s == TestStatus::Pass)),
        ("FAIL", count(|s| *s == TestStatus::Fail)),
        ("SKIPPED", count(|s| *s == TestStatus::Skip)),
        (
            "ERROR",
            count(|s| matches!(s, TestStatus::Error(_))) + excluded.len(),
        ),
    ] {
        if n > 0 {
            let _ = writeln!(out, "{word}: {n}/{total}");
        }
    }
    Ok(out)
}

/// `--trace`: each test's rule trace, as conftest prints OPA's
/// (`file: … | query: …`, then `TRAC` lines).
fn trace(tracer: &RuleTracer, runs: &[TestRun]) -> Result<String> {
    let mut out = String::new();
    for run in runs.iter().filter(|r| r.status != TestStatus::Skip) {
        let _ = writeln!(out, "file: {} | query: {}", run.case.file, run.case.name);
        // An erroring test would err again when traced: its trace is the error.
        if let TestStatus::Error(e) = &run.status {
            let _ = writeln!(out, "TRAC   ERROR: {e}");
            continue;
        }
        match tracer.trace(&rule_path(&run.case), None, "") {
            Ok(node) => {
                let (internal, shown) = (rule_path(&run.case), run.case.path());
                for line in node.render(TraceFilter::All, false) {
                    let _ = writeln!(out, "TRAC   {}", line.replace(&internal, &shown));
                }
            }
            Err(e) => {
                let _ = writeln!(out, "TRAC   {}", one_line(&e.to_string()));
            }
        }
    }
    Ok(out)
}

/// The rule a test runs under (a split duplicate has an internal name).
fn rule_path(case: &policy_core::conftest::TestCase) -> String {
    format!("data.{}.{}", case.package, case.rule)
}

/// A multi-line engine message on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}
