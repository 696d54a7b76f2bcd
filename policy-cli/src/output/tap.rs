//! Test Anything Protocol: one plan per (file, namespace).
//!
//! conftest stops the whole report at the first result with no tests; we
//! skip that result and go on.

use std::fmt::Write as _;

use policy_core::conftest::CheckResult;

use super::indicators;

pub(super) fn render(results: &[CheckResult]) -> String {
    let mut out = String::new();
    for r in results {
        let total = r.tests();
        if total == 0 {
            continue;
        }
        let (file, ns) = indicators(r);
        let mut n = 1;
        let _ = writeln!(out, "1..{total}");
        let mut line = |out: &mut String, ok: bool, msg: &str| {
            let status = if ok { "ok" } else { "not ok" };
            let _ = writeln!(out, "{status} {n} {file} {ns} {msg}");
            n += 1;
        };
        for f in &r.failures {
            line(&mut out, false, &f.msg);
        }
        if !r.errors.is_empty() {
            out.push_str("# errors\n");
            for e in &r.errors {
                line(&mut out, false, &e.msg);
            }
        }
        if !r.warnings.is_empty() {
            out.push_str("# warnings\n");
            for w in &r.warnings {
                line(&mut out, false, &w.msg);
            }
        }
        if !r.exceptions.is_empty() {
            out.push_str("# exceptions\n");
            for e in &r.exceptions {
                line(&mut out, true, &e.msg);
            }
        }
        if !r.skipped.is_empty() {
            out.push_str("# skip\n");
            for s in &r.skipped {
                line(&mut out, true, &s.msg);
            }
        }
        if r.successes > 0 {
            out.push_str("# successes\n");
            for _ in 0..r.successes {
                line(&mut out, true, "SUCCESS");
            }
        }
    }
    out
}
