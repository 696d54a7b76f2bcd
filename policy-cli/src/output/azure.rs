//! Azure DevOps logging commands.

use std::fmt::Write as _;

use policy_core::conftest::CheckResult;

use super::Totals;

pub(super) fn render(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        let f = &r.filename;
        let _ = writeln!(
            out,
            "##[section]Testing '{f}' against {} policies in namespace '{}'",
            r.tests(),
            r.namespace
        );
        out.push_str("##[group]See conftest results\n");
        for o in r.failures.iter().chain(&r.errors) {
            let _ = writeln!(
                out,
                "##vso[task.logissue type=error] file={f} --> {}",
                o.msg
            );
        }
        for o in r.warnings.iter().chain(&r.exceptions) {
            let _ = writeln!(
                out,
                "##vso[task.logissue type=warning] file={f} --> {}",
                o.msg
            );
        }
        for o in &r.skipped {
            let _ = writeln!(out, "skipped file={f} {}", o.msg);
        }
        if r.successes > 0 {
            let _ = writeln!(out, "success file={f} {}", r.successes);
        }
        out.push_str("##[endgroup]\n");
    }
    let _ = writeln!(out, "{}", Totals::of(results).summary(false));
    out
}
