//! Pass `relations`: `walk` called for its value.
//!
//! `walk` is a relation in OPA: it yields one `[path, value]` pair per node.
//! OPA's compiler turns `[p, v] := walk(x)` (and `=`, either side) into the
//! call with an output operand, `walk(x, [p, v])`, so both forms enumerate
//! every node. regorus evaluates the one-operand call as a function whose
//! value never unifies with a pair, so the body is silently empty. The
//! statement is rewritten into the output form, on its own line.

use regorus::unstable::{AssignOp, Expr, Literal, LiteralStmt, Module};

use super::ast::{AstVisitor, walk_module};
use super::text::Edit;

pub(crate) fn edits(_src: &str, module: &Module) -> Vec<Edit> {
    let mut finder = Finder { edits: Vec::new() };
    walk_module(module, &mut finder);
    finder.edits
}

struct Finder {
    edits: Vec<Edit>,
}

impl AstVisitor for Finder {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        let Literal::Expr { expr, .. } = &stmt.literal else {
            return;
        };
        let Expr::AssignExpr { op, lhs, rhs, .. } = expr.as_ref() else {
            return;
        };
        let (call, pattern) = match (walk_operand(rhs), walk_operand(lhs)) {
            (Some(arg), _) => (arg, lhs),
            // `walk(x) := p` is not valid Rego; `walk(x) = p` is.
            (None, Some(arg)) if matches!(op, AssignOp::Eq) => (arg, rhs),
            _ => return,
        };
        let (arg, pattern) = (call.span().text(), pattern.span().text());
        if arg.contains('`') || pattern.contains('`') {
            // Raw strings keep their quotes out of spans; leave them be.
            return;
        }
        let span = expr.span();
        self.edits.push(Edit::replace(
            span.start as usize,
            span.end as usize,
            format!("walk({arg}, {pattern})"),
        ));
    }
}

/// The operand of a one-operand `walk` call.
fn walk_operand(e: &Expr) -> Option<&Expr> {
    let Expr::Call { fcn, params, .. } = e else {
        return None;
    };
    match (fcn.span().text().trim(), params.as_slice()) {
        ("walk", [arg]) => Some(arg),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn assignment_becomes_output_operand() {
        let src = "package t\nimport rego.v1\np := [k | [k, _] := walk(input)]\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\np := [k | walk(input, [k, _])]\n"
        );
        let got = eval_with(src, true, r#"{"a": {"b": 1}}"#);
        assert_eq!(
            got,
            Value::from_json_str(r#"[[], ["a"], ["a", "b"]]"#).unwrap()
        );
    }

    #[test]
    fn unification_either_side() {
        let src = "package t\np = n { n := count([v | walk(input) = [_, v]]) }\n";
        assert_eq!(
            prepare(src, false),
            "package t\np = n { n := count([v | walk(input, [_, v])]) }\n"
        );
        assert_eq!(eval_with(src, false, r#"{"a": [1, 2]}"#), Value::from(4));
    }

    #[test]
    fn output_form_and_other_calls_untouched() {
        let src = "package t\np { walk(input, [k, v]); x := count(k) }\n";
        assert_eq!(prepare(src, false), src);
    }
}
