//! Pass `head_iteration`: iteration in a partial set rule's key.
//!
//! `vols[input.spec.volumes[_].name]` is a rule whose key iterates. OPA
//! evaluates the key as part of the rule, so where the path is undefined
//! (no `volumes`) the rule is simply undefined; regorus evaluates the key
//! after the body and fails with "item cannot be indexed", and its compiled
//! path cannot iterate in a head at all. The key is bound at the end of the
//! body instead: `vols[__regard_key0] { __regard_key0 = input.spec.volumes[_].name }`.

use regorus::unstable::{Expr, LiteralStmt, Module, Rule, RuleHead};

use super::ast::{AstVisitor, walk_expr};
use super::fresh;
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut n = 0;
    for rule in &module.policy {
        let Rule::Spec {
            span,
            head: RuleHead::Set { key: Some(key), .. },
            bodies,
        } = rule.as_ref()
        else {
            continue;
        };
        if !iterates(key) {
            continue;
        }
        let key_text = key.span().text().replace(['\n', '\r'], " ");
        if key_text.contains('`') {
            continue;
        }
        let var = fresh("key", n);
        n += 1;
        let binding = format!("{var} = {key_text}");
        let mut rule_edits = vec![Edit::replace(
            key.span().start as usize,
            key.span().end as usize,
            var.clone(),
        )];
        if bodies.is_empty() {
            let open = if module.rego_v1 { " if {" } else { " {" };
            rule_edits.push(Edit::insert(
                span.end as usize,
                format!("{open} {binding} }}"),
            ));
        } else {
            for body in bodies {
                let q = &body.query;
                let braced = src
                    .get(q.span.start as usize..)
                    .is_some_and(|t| t.starts_with('{'));
                if braced {
                    let at = q.stmts.last().map_or(q.span.start as usize + 1, stmt_end);
                    rule_edits.push(Edit::insert(at, format!("; {binding}")));
                } else {
                    rule_edits.push(Edit::insert(q.span.start as usize, "{ "));
                    rule_edits.push(Edit::insert(q.span.end as usize, format!("; {binding} }}")));
                }
            }
        }
        edits.extend(rule_edits);
    }
    edits
}

/// Where a statement ends, with its `with` modifiers.
fn stmt_end(s: &LiteralStmt) -> usize {
    s.with_mods
        .iter()
        .map(|w| w.span.end as usize)
        .chain([s.span.end as usize])
        .max()
        .unwrap_or(0)
}

/// Whether a key expression iterates (holds a `_`).
fn iterates(key: &Expr) -> bool {
    struct Wildcard(bool);
    impl AstVisitor for Wildcard {
        fn expr(&mut self, e: &Expr) -> bool {
            if matches!(e, Expr::Var { span, .. } if span.text() == "_") {
                self.0 = true;
            }
            // Comprehensions in the key iterate on their own.
            !matches!(
                e,
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. }
            )
        }
    }
    let mut w = Wildcard(false);
    walk_expr(key, &mut w);
    w.0
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn bodyless_key_iteration_moves_into_a_body() {
        let src = "package t\np[input.spec.volumes[_].name]\n";
        assert_eq!(
            prepare(src, false),
            "package t\np[__regard_key0] { __regard_key0 = input.spec.volumes[_].name }\n"
        );
        assert_eq!(eval_with(src, false, r#"{"spec": {}}"#), Value::new_set());
        let v1 = "package t\np contains input.a[_]\n";
        assert_eq!(
            prepare(v1, true),
            "package t\np contains __regard_key0 if { __regard_key0 = input.a[_] }\n"
        );
        assert_eq!(eval_with(v1, true, r#"{"a": 3}"#), Value::new_set());
    }

    #[test]
    fn key_iteration_after_a_body() {
        let src = "package t\np contains x.a[_] if {\n  x := input.x\n}\nq contains input.b[_] if input.c\n";
        assert_eq!(
            prepare(src, true),
            "package t\np contains __regard_key0 if {\n  x := input.x; __regard_key0 = x.a[_]\n}\nq contains __regard_key1 if { input.c; __regard_key1 = input.b[_] }\n"
        );
    }
}
