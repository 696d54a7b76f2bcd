//! Pass `imports`: `import` statements after rules.
//!
//! OPA accepts imports anywhere at the top level of a module; regorus only
//! right after the package. Each late import is moved onto the package's
//! line (regorus reads `package p import data.x` as two statements), and
//! its old place is blanked, so no line moves.

use super::text::{Edit, TokenTable};

pub(crate) fn edits(src: &str, table: &TokenTable) -> Vec<Edit> {
    let mut edits = Vec::new();
    // The end of the package reference: the last token on the package's line
    // before anything else starts.
    let Some(pkg) = (0..table.len()).find(|&i| table.level(i) == 0 && table.is(i, "package"))
    else {
        return edits;
    };
    let mut pkg_end = pkg;
    while let Some(next) = table.tok(pkg_end + 1) {
        let Some(cur) = table.tok(pkg_end) else { break };
        let continues_ref = next.line == cur.end_line
            && (matches!(next.text.as_str(), "." | "[" | "]")
                || matches!(cur.text.as_str(), "." | "[" | "package")
                || table.level(pkg_end + 1) > 0);
        if !continues_ref {
            break;
        }
        pkg_end += 1;
    }
    let Some(insert_at) = table.tok(pkg_end).map(|t| t.end) else {
        return edits;
    };
    let mut seen_rule = false;
    let mut i = pkg_end + 1;
    while i < table.len() {
        let Some(t) = table.tok(i) else { break };
        if table.level(i) != 0 || t.text != "import" {
            if table.level(i) == 0 && !seen_rule {
                seen_rule = !is_import_part(table, i);
            }
            i += 1;
            continue;
        }
        // The import runs to the last token on its line at the top level.
        let mut end = i;
        while let Some(next) = table.tok(end + 1) {
            if next.line != t.line || (table.level(end + 1) == 0 && next.text == "import") {
                break;
            }
            end += 1;
        }
        if seen_rule
            && let Some(last) = table.tok(end)
            && let Some(text) = src.get(t.start..last.end)
            && !text.contains('\n')
        {
            edits.push(Edit::insert(insert_at, format!(" {text}")));
            edits.push(Edit::replace(t.start, last.end, ""));
        }
        i = end + 1;
    }
    edits
}

/// Whether top-level token `i` belongs to an import statement that starts
/// earlier on its line.
fn is_import_part(table: &TokenTable, i: usize) -> bool {
    let Some(line) = table.tok(i).map(|t| t.line) else {
        return false;
    };
    (0..i)
        .rev()
        .map_while(|j| table.tok(j).filter(|t| t.line == line).map(|t| (j, t)))
        .any(|(j, t)| table.level(j) == 0 && t.text == "import")
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;

    #[test]
    fn late_imports_move_to_the_package_line() {
        let src = "package test\ntest_q if x.y == 1\nimport rego.v1\nx := {\"y\": 1}\nimport input.z as w\n";
        assert_eq!(
            prepare(src, false),
            "package test import rego.v1 import input.z as w\ntest_q if x.y == 1\n\nx := {\"y\": 1}\n\n"
        );
    }

    #[test]
    fn imports_before_rules_stay() {
        let src = "package a.b # c\nimport data.x\nimport rego.v1\np := x\n";
        assert_eq!(prepare(src, true), src);
    }
}
