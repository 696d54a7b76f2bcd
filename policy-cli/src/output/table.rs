//! A box-drawn table, laid out as conftest's tablewriter does: upper-case
//! centred headers (extra padding on the right), left-aligned cells, one
//! space of padding. Written by hand: the layout is small and must match
//! byte for byte.

use policy_core::conftest::CheckResult;

pub(super) fn render(results: &[CheckResult]) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for r in results {
        let row = |kind: &str, msg: &str| {
            [
                kind.to_owned(),
                r.filename.clone(),
                r.namespace.clone(),
                msg.to_owned(),
            ]
        };
        for _ in 0..r.successes {
            rows.push(row("success", "SUCCESS"));
        }
        rows.extend(r.exceptions.iter().map(|o| row("exception", &o.msg)));
        rows.extend(r.warnings.iter().map(|o| row("warning", &o.msg)));
        rows.extend(r.skipped.iter().map(|o| row("skipped", &o.msg)));
        rows.extend(r.failures.iter().map(|o| row("failure", &o.msg)));
        rows.extend(r.errors.iter().map(|o| row("error", &o.msg)));
    }
    if rows.is_empty() {
        return String::new();
    }
    let headers = ["RESULT", "FILE", "NAMESPACE", "MESSAGE"];
    let width = |s: &str| s.chars().count();
    let mut widths = headers.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(width(cell));
        }
    }
    let rule = |left: &str, mid: &str, right: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{left}{}{right}\n", parts.join(mid))
    };
    let mut out = rule("┌", "┬", "┐");
    out.push('│');
    for (h, w) in headers.iter().zip(widths) {
        let total = w + 2;
        let left = (total - width(h)) / 2;
        let right = total - width(h) - left;
        out.push_str(&format!("{}{h}{}│", " ".repeat(left), " ".repeat(right)));
    }
    out.push('\n');
    out.push_str(&rule("├", "┼", "┤"));
    for row in &rows {
        out.push('│');
        for (cell, w) in row.iter().zip(widths) {
            out.push_str(&format!(" {cell}{} │", " ".repeat(w - width(cell))));
        }
        out.push('\n');
    }
    out.push_str(&rule("└", "┴", "┘"));
    out
}
