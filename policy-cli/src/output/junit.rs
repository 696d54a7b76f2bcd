//! JUnit XML in the layout of go-junit-report (which conftest uses): one
//! `<testsuite>` per namespace in order of first appearance. Unlike conftest,
//! exceptions are reported (as skipped test cases naming the exception), not
//! dropped.

use std::fmt::Write as _;

use policy_core::conftest::CheckResult;

use super::RenderOptions;

enum Case {
    Failed(String),
    Errored(String),
    Skipped(String),
    Passed,
}

/// Escapes text as Go's `xml.EscapeText` does.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn render(results: &[CheckResult], options: &RenderOptions) -> String {
    let name = |file: &str, msg: &str| -> String {
        if options.junit_hide_message || msg.is_empty() {
            file.to_owned()
        } else {
            let first = msg.lines().next().unwrap_or_default();
            format!("{file} - {first}")
        }
    };
    let mut suites: Vec<(String, Vec<(String, Case)>)> = Vec::new();
    for r in results {
        let mut cases = Vec::new();
        for o in r.warnings.iter().chain(&r.failures) {
            cases.push((name(&r.filename, &o.msg), Case::Failed(o.msg.clone())));
        }
        for o in &r.errors {
            cases.push((name(&r.filename, &o.msg), Case::Errored(o.msg.clone())));
        }
        for o in r.skipped.iter().chain(&r.exceptions) {
            cases.push((name(&r.filename, &o.msg), Case::Skipped(o.msg.clone())));
        }
        for _ in 0..r.successes {
            cases.push((name(&r.filename, ""), Case::Passed));
        }
        if cases.is_empty() {
            continue;
        }
        match suites.iter_mut().find(|(ns, _)| *ns == r.namespace) {
            Some((_, list)) => list.extend(cases),
            None => suites.push((r.namespace.clone(), cases)),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if suites.is_empty() {
        out.push_str("<testsuites></testsuites>\n");
        return out;
    }
    out.push_str("<testsuites>\n");
    for (ns, cases) in suites {
        let class = escape(&format!("conftest.{ns}"));
        let failures = cases
            .iter()
            .filter(|(_, c)| matches!(c, Case::Failed(_)))
            .count();
        let errors = cases
            .iter()
            .filter(|(_, c)| matches!(c, Case::Errored(_)))
            .count();
        // The attribute only when there are errors, so reports without
        // them stay byte-identical to conftest's.
        let errors = if errors > 0 {
            format!(" errors=\"{errors}\"")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\t<testsuite tests=\"{}\" failures=\"{failures}\"{errors} time=\"0.000\" name=\"{class}\">",
            cases.len()
        );
        let _ = writeln!(
            out,
            "\t\t<properties>\n\t\t\t<property name=\"regard.version\" value=\"{}\"></property>\n\t\t</properties>",
            env!("CARGO_PKG_VERSION")
        );
        for (case_name, case) in cases {
            let _ = write!(
                out,
                "\t\t<testcase classname=\"{class}\" name=\"{}\" time=\"0.000\">",
                escape(&case_name)
            );
            match case {
                Case::Failed(msg) => {
                    let _ = write!(
                        out,
                        "\n\t\t\t<failure message=\"Failed\" type=\"\">{}</failure>\n\t\t",
                        escape(&msg)
                    );
                }
                Case::Errored(msg) => {
                    let _ = write!(
                        out,
                        "\n\t\t\t<error message=\"Error\" type=\"\">{}</error>\n\t\t",
                        escape(&msg)
                    );
                }
                Case::Skipped(msg) => {
                    let _ = write!(
                        out,
                        "\n\t\t\t<skipped message=\"{}\"></skipped>\n\t\t",
                        escape(&msg)
                    );
                }
                Case::Passed => {}
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("\t</testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
