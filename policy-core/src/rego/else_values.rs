//! Pass `else_values`: a computed value in a rule with `else`.
//!
//! OPA moves a rule value that is a reference or a call into the body it
//! belongs to (`v := m[k] if { k := "b" } else := 0` runs as `v := x if {
//! k := "b"; x = m[k] } else := 0`), so an undefined value makes that
//! clause's body undefined and the next `else` is tried. regorus evaluates
//! the value after the body and also the `else`, failing the rule with
//! "rules must not produce multiple outputs". The same move is written into
//! the source: the value becomes a fresh variable bound at the end of its
//! clause's body, on the body's last line.

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::ast::stmt_end;
use super::fresh;
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut n = 0;
    for rule in &module.policy {
        let Rule::Spec {
            head:
                RuleHead::Compr {
                    assign: Some(head_value),
                    ..
                },
            bodies,
            ..
        } = rule.as_ref()
        else {
            continue;
        };
        if !bodies.iter().any(|b| b.is_else) {
            continue;
        }
        for (i, body) in bodies.iter().enumerate() {
            // The first body's value is the head's; an else's is its own.
            let value = match (&body.assign, i) {
                (Some(a), _) => &a.value,
                (None, 0) => &head_value.value,
                (None, _) => continue,
            };
            if !matches!(
                value.as_ref(),
                Expr::RefBrack { .. } | Expr::RefDot { .. } | Expr::Call { .. }
            ) {
                continue;
            }
            let q = &body.query;
            let braced = src
                .get(q.span.start as usize..)
                .is_some_and(|t| t.starts_with('{'));
            let Some(last) = q.stmts.last() else { continue };
            let text = value.span().text();
            if !braced || text.contains('`') {
                continue;
            }
            let var = fresh("val", n);
            n += 1;
            let span = value.span();
            edits.push(Edit::replace(
                span.start as usize,
                span.end as usize,
                var.clone(),
            ));
            edits.push(Edit::insert(
                stmt_end(src, last),
                format!("; {var} = {}", super::text::one_line(text)),
            ));
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn value_moves_into_its_body() {
        let src = "package t\nimport rego.v1\nm := {\"a\": 1}\np := m[k] if {\n  k := input.k\n} else := 0\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\nm := {\"a\": 1}\np := __regard_val0 if {\n  k := input.k; __regard_val0 = m[k]\n} else := 0\n"
        );
        assert_eq!(eval_with(src, true, r#"{"k": "a"}"#), Value::from(1));
        assert_eq!(eval_with(src, true, r#"{"k": "z"}"#), Value::from(0));
    }

    #[test]
    fn rules_without_else_untouched() {
        let src = "package t\nimport rego.v1\np := input.m[k] if {\n  k := \"a\"\n}\n";
        assert_eq!(prepare(src, true), src);
    }
}
