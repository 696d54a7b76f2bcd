//! Pass `self_unification`: a variable on both sides of a unification.
//!
//! `c = cs[c]` is valid in OPA: the ref iterates `cs`, binding `c` to each
//! key, and the unification keeps the keys whose value equals the key.
//! regorus reports `c` as unsafe. The value is bound to a fresh variable
//! first: `__regard_unify0 = cs[c]; c = __regard_unify0`.

use regorus::unstable::{Expr, LiteralStmt, Module};

use super::ast::{AstVisitor, stmt_end, unification, var_name, walk_expr, walk_module};
use super::fresh;
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut finder = Finder {
        src,
        edits: Vec::new(),
        n: 0,
    };
    walk_module(module, &mut finder);
    finder.edits
}

struct Finder<'a> {
    src: &'a str,
    edits: Vec<Edit>,
    n: usize,
}

impl AstVisitor for Finder<'_> {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        let Some((_, lhs, rhs)) = unification(stmt) else {
            return;
        };
        if !stmt.with_mods.is_empty() {
            return;
        }
        let (var, other) = match (var_name(lhs), var_name(rhs)) {
            (Some(v), _) if v != "_" && is_indexed_by(rhs, v) => (lhs, rhs),
            (_, Some(v)) if v != "_" && is_indexed_by(lhs, v) => (rhs, lhs),
            _ => return,
        };
        let other_text = other.span().text();
        if other_text.contains('`') {
            return;
        }
        let fresh_var = fresh("unify", self.n);
        self.n += 1;
        let start = stmt.span.start as usize;
        let end = stmt_end(self.src, stmt);
        let text = format!(
            "{fresh_var} = {}; {} = {fresh_var}",
            super::text::one_line(other_text),
            var.span().text()
        );
        // `p if c = cs[c]` has no braces; two statements need them.
        let before = self.src.get(..start).unwrap_or("").trim_end();
        let braceless = before.ends_with(" if") || before.ends_with("\tif");
        let text = if braceless {
            format!("{{ {text} }}")
        } else {
            text
        };
        self.edits.push(Edit::replace(start, end, text));
    }
}

/// Whether `e` is a reference with `var` in an index.
fn is_indexed_by(e: &Expr, var: &str) -> bool {
    struct Uses<'v> {
        var: &'v str,
        found: bool,
    }
    impl AstVisitor for Uses<'_> {
        fn expr(&mut self, e: &Expr) -> bool {
            if let Expr::RefBrack { index, .. } = e
                && var_name(index) == Some(self.var)
            {
                self.found = true;
            }
            true
        }
    }
    if !matches!(e, Expr::RefBrack { .. } | Expr::RefDot { .. }) {
        return false;
    }
    let mut uses = Uses { var, found: false };
    walk_expr(e, &mut uses);
    uses.found
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn variable_on_both_sides() {
        let src = "package t\np[c] {\n  cs := input.cs\n  c = cs[c]\n}\n";
        assert_eq!(
            prepare(src, false),
            "package t\np[c] {\n  cs := input.cs\n  __regard_unify0 = cs[c]; c = __regard_unify0\n}\n"
        );
        let got = eval_with(src, false, r#"{"cs": {"a": "a", "b": "c"}}"#);
        assert_eq!(
            got,
            Value::from_json_str(r#"["a"]"#)
                .unwrap()
                .as_array()
                .map(|a| Value::from(a.iter().cloned().collect::<std::collections::BTreeSet<_>>()))
                .unwrap()
        );
    }

    #[test]
    fn plain_unifications_are_untouched() {
        let src = "package t\np { x = input.a[i]; y = input.b[x] }\n";
        assert_eq!(prepare(src, false), src);
    }
}
