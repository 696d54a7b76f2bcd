//! GitHub Actions workflow commands: one `::group::` per (file, namespace),
//! `::error`/`::warning`/`::notice` annotations. Messages are printed as
//! given (conftest treats them as printf formats and mangles `%`), with the
//! characters GitHub needs escaped in message data.

use std::fmt::Write as _;
use std::path::Path;

use policy_core::conftest::{CheckResult, Outcome};

use super::{RenderOptions, Totals};

fn escape_property(v: &str) -> String {
    v.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace(':', "%3A")
        .replace(',', "%2C")
}

fn escape_data(v: &str) -> String {
    v.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Go's `%q` for the group title.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn relative(file: &str) -> String {
    let path = Path::new(file);
    match std::env::current_dir() {
        Ok(cwd) if path.is_absolute() => path
            .strip_prefix(&cwd)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| file.to_owned()),
        _ => file.to_owned(),
    }
}

fn annotate(out: &mut String, level: &str, input: &str, outcome: &Outcome, prefix: &str) {
    let msg = format!("{prefix}{}", outcome.msg);
    let mut line = |file: &str, line: i64, msg: &str| {
        let _ = writeln!(
            out,
            "::{level} file={},line={line}::{}",
            escape_property(file),
            escape_data(msg)
        );
    };
    match &outcome.loc {
        None => line(input, 1, &msg),
        Some(loc) if loc.file == input => line(input, loc.line, &msg),
        Some(loc) => {
            let origin = relative(&loc.file);
            line(&origin, loc.line, &msg);
            line(
                input,
                1,
                &format!("(ORIGINATING FROM {origin} L{}) {msg}", loc.line),
            );
        }
    }
}

pub(super) fn render(results: &[CheckResult], options: &RenderOptions) -> String {
    let mut out = String::new();
    for r in results {
        let only_passed = r.failures.is_empty()
            && r.errors.is_empty()
            && r.warnings.is_empty()
            && r.exceptions.is_empty()
            && r.skipped.is_empty();
        if options.github_hide_passed && only_passed {
            continue;
        }
        let _ = writeln!(
            out,
            "::group::Testing {} against {} policies in namespace {}",
            quote(&r.filename),
            r.tests(),
            quote(&r.namespace)
        );
        for o in &r.failures {
            annotate(&mut out, "error", &r.filename, o, "");
        }
        for o in &r.errors {
            annotate(&mut out, "error", &r.filename, o, "Evaluation error: ");
        }
        for o in &r.warnings {
            annotate(&mut out, "warning", &r.filename, o, "");
        }
        for o in &r.exceptions {
            annotate(&mut out, "notice", &r.filename, o, "");
        }
        for o in &r.skipped {
            annotate(&mut out, "notice", &r.filename, o, "Test was skipped: ");
        }
        let _ = writeln!(
            out,
            "::notice file={},line=1::Number of successful checks: {}",
            escape_property(&r.filename),
            r.successes
        );
        out.push_str("::endgroup::\n");
    }
    let _ = writeln!(out, "{}", Totals::of(results).summary(options.show_skipped));
    out
}
