//! The default human-readable format.

use std::fmt::Write as _;

use policy_core::conftest::CheckResult;

use super::{RenderOptions, Totals, indicators};

const RED: u8 = 31;
const GREEN: u8 = 32;
const YELLOW: u8 = 33;
const BLUE: u8 = 34;
const CYAN: u8 = 36;

fn paint(text: &str, color: u8, on: bool) -> String {
    if on {
        format!("\x1b[{color}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

pub(super) fn render(results: &[CheckResult], options: &RenderOptions) -> String {
    let mut out = String::new();
    let on = options.color;
    // print() output comes first; each text already ends with a newline in
    // conftest, hence the blank line after each.
    for r in results {
        for p in &r.prints {
            let _ = writeln!(out, "{}  {p}\n", paint("PRNT ", BLUE, on));
        }
    }
    for r in results {
        let (file, ns) = indicators(r);
        for w in &r.warnings {
            let _ = writeln!(out, "{} {file} {ns} {}", paint("WARN", YELLOW, on), w.msg);
        }
        for f in &r.failures {
            let _ = writeln!(out, "{} {file} {ns} {}", paint("FAIL", RED, on), f.msg);
        }
        if !options.suppress_exceptions {
            for e in &r.exceptions {
                let _ = writeln!(out, "{} {file} {ns} {}", paint("EXCP", CYAN, on), e.msg);
            }
        }
        if options.skipped_lines {
            for s in &r.skipped {
                let _ = writeln!(out, "{} {file} {ns} {}", paint("SKIP", CYAN, on), s.msg);
            }
        }
        for e in &r.errors {
            let _ = writeln!(out, "{} {file} {ns} {}", paint("ERROR", RED, on), e.msg);
        }
        for a in &r.audit_annotations {
            let (object, key, value) = (&a.object, &a.key, &a.value);
            let audit = paint("AUDIT", CYAN, on);
            let _ = writeln!(out, "{audit} {file} {ns} {object} {key}: {value}");
        }
    }
    let totals = Totals::of(results);
    let color = if totals.failures > 0 || totals.errors > 0 {
        RED
    } else if totals.warnings > 0 {
        YELLOW
    } else if totals.exceptions > 0 {
        CYAN
    } else {
        GREEN
    };
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        paint(&totals.summary(options.show_skipped), color, on)
    );
    out
}
