//! `regard reformat [FILE]`: render a saved JSON report (`regard test -o
//! json`, or conftest's) in another format, as `conftest reformat` does, so
//! one run can feed several reports.
//!
//! The report is read from FILE or standard input, decoded into check
//! results, and rendered by the same renderers as `regard test`. An unknown
//! `--output` falls back to stdout, as conftest's does.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read, Write};

use anyhow::{Context, Result};
use clap::Args;
use policy_core::conftest::{CheckResult, Location, Outcome};
use serde::Deserialize;

use crate::output::{OutputFormat, RenderOptions, render};

/// Arguments of `regard reformat`.
#[derive(Debug, Args)]
pub(crate) struct ReformatArgs {
    /// JSON report to read [default: standard input]
    #[arg(value_name = "FILE")]
    pub(crate) file: Option<String>,
    /// Output format: stdout, json, tap, table, junit, github, azuredevops, sarif [default: stdout]
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<String>,
}

/// One element of the JSON report, as `-o json` writes it.
#[derive(Debug, Deserialize)]
struct SavedResult {
    #[serde(default)]
    filename: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    successes: usize,
    #[serde(default)]
    skipped: Option<Vec<SavedOutcome>>,
    #[serde(default)]
    warnings: Option<Vec<SavedOutcome>>,
    #[serde(default)]
    failures: Option<Vec<SavedOutcome>>,
    #[serde(default)]
    exceptions: Option<Vec<SavedOutcome>>,
    #[serde(default)]
    errors: Option<Vec<SavedOutcome>>,
}

#[derive(Debug, Deserialize)]
struct SavedOutcome {
    msg: String,
    #[serde(default)]
    loc: Option<SavedLocation>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    rule: String,
}

#[derive(Debug, Deserialize)]
struct SavedLocation {
    file: String,
    line: i64,
}

fn outcomes(list: Option<Vec<SavedOutcome>>) -> Vec<Outcome> {
    list.unwrap_or_default()
        .into_iter()
        .map(|o| Outcome {
            msg: o.msg,
            loc: o.loc.map(|l| Location {
                file: l.file,
                line: l.line,
            }),
            rule: o.rule,
            metadata: o.metadata.unwrap_or_default(),
        })
        .collect()
}

/// Decodes a JSON report into check results.
fn decode(text: &str) -> Result<Vec<CheckResult>> {
    let saved: Vec<SavedResult> =
        serde_json::from_str(text).context("failed to parse JSON input")?;
    Ok(saved
        .into_iter()
        .map(|r| CheckResult {
            filename: r.filename,
            namespace: r.namespace,
            successes: r.successes,
            warnings: outcomes(r.warnings),
            failures: outcomes(r.failures),
            exceptions: outcomes(r.exceptions),
            skipped: outcomes(r.skipped),
            errors: outcomes(r.errors),
            ..CheckResult::default()
        })
        .collect())
}

/// Runs `regard reformat`, writing to `out`; exits 0 whatever the results.
pub(crate) fn run(args: &ReformatArgs, out: &mut dyn Write) -> Result<u8> {
    let text = match &args.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("failed to open input file {path}"))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("failed to read standard input")?;
            text
        }
    };
    let results = decode(&text)?;
    let layers = crate::config::Layers::load(None)?;
    let name = layers.string("output", args.output.clone())?;
    let format = match name.as_deref() {
        None | Some("") => OutputFormat::Stdout,
        Some(name) => OutputFormat::parse(name).unwrap_or_else(|_| {
            eprintln!("unknown output format {name:?}; writing stdout");
            OutputFormat::Stdout
        }),
    };
    let options = RenderOptions {
        color: std::io::stdout().is_terminal(),
        ..RenderOptions::default()
    };
    out.write_all(render(format, &results, &options).as_bytes())?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_decodes_into_results() {
        let text = r#"[{"filename": "a.yaml", "namespace": "main", "successes": 2,
            "failures": [{"msg": "no", "loc": {"file": "a.yaml", "line": 3},
                          "metadata": {"query": "data.main.deny"}, "rule": "deny"}],
            "warnings": null}]"#;
        let results = decode(text).unwrap();
        let [r] = results.as_slice() else {
            panic!("one result: {results:?}")
        };
        assert_eq!(
            (r.filename.as_str(), r.namespace.as_str(), r.successes),
            ("a.yaml", "main", 2)
        );
        assert_eq!(r.warnings, Vec::new());
        assert_eq!(
            r.failures,
            vec![Outcome {
                msg: "no".into(),
                loc: Some(Location {
                    file: "a.yaml".into(),
                    line: 3
                }),
                rule: "deny".into(),
                metadata: BTreeMap::from([("query".into(), serde_json::json!("data.main.deny"))]),
            }]
        );
        assert_eq!(
            format!("{:#}", decode("").unwrap_err()),
            "failed to parse JSON input: EOF while parsing a value at line 1 column 0"
        );
    }
}
