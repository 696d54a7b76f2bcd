//! conftest's JSON report: tab-indented, keys in conftest's order, `<`, `>`
//! and `&` escaped as Go's encoder does. Each result also names the `rule`
//! that produced it (conftest only has `metadata.query`), and evaluation
//! errors, which stop conftest's run, are listed under `errors`.

use std::collections::BTreeMap;

use policy_core::conftest::{AuditAnnotation, CheckResult, Outcome};
use serde::Serialize;

#[derive(Serialize)]
pub(crate) struct JsonResult<'a> {
    filename: &'a str,
    namespace: &'a str,
    successes: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<JsonOutcome<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<JsonOutcome<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failures: Vec<JsonOutcome<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exceptions: Vec<JsonOutcome<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<JsonOutcome<'a>>,
    #[serde(rename = "auditAnnotations", skip_serializing_if = "<[_]>::is_empty")]
    audit_annotations: &'a [AuditAnnotation],
}

#[derive(Serialize)]
struct JsonOutcome<'a> {
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    loc: Option<JsonLoc<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "str::is_empty")]
    rule: &'a str,
}

#[derive(Serialize)]
struct JsonLoc<'a> {
    file: &'a str,
    line: i64,
}

fn outcomes(list: &[Outcome]) -> Vec<JsonOutcome<'_>> {
    list.iter()
        .map(|o| JsonOutcome {
            msg: &o.msg,
            loc: o.loc.as_ref().map(|l| JsonLoc {
                file: &l.file,
                line: l.line,
            }),
            metadata: &o.metadata,
            rule: &o.rule,
        })
        .collect()
}

/// The JSON report's value, for embedding in a larger document.
pub(crate) fn report(results: &[CheckResult]) -> Vec<JsonResult<'_>> {
    results
        .iter()
        .map(|r| JsonResult {
            filename: if r.filename == "-" { "" } else { &r.filename },
            namespace: &r.namespace,
            successes: r.successes,
            skipped: outcomes(&r.skipped),
            warnings: outcomes(&r.warnings),
            failures: outcomes(&r.failures),
            exceptions: outcomes(&r.exceptions),
            errors: outcomes(&r.errors),
            audit_annotations: &r.audit_annotations,
        })
        .collect()
}

pub(super) fn render(results: &[CheckResult]) -> String {
    let mut text = go_json(&report(results), b"\t");
    text.push('\n');
    text
}

/// Serialises like Go's `json.MarshalIndent`: the given indent, and HTML
/// characters escaped (they can only occur inside strings, so a textual
/// replacement is exact).
pub(crate) fn go_json<T: Serialize>(value: &T, indent: &[u8]) -> String {
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    if value.serialize(&mut ser).is_err() {
        return String::from("null");
    }
    let text = String::from_utf8_lossy(&buf);
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}
