//! Pass `scoping`: declarations inside a comprehension shadow.
//!
//! In OPA a comprehension opens a new scope: `some i` or `x := ...` inside
//! it declares a new variable even when the enclosing body has one of the
//! same name (OPA's `rewriteLocalVars` stage pushes a scope per
//! comprehension). regorus resolves the inner name to the outer variable,
//! so `some i; input.a[i]; n := count([j | some i; j := input.b[i]])` counts
//! one element instead of all. Every occurrence of such a variable from its
//! declaration on (and in the comprehension's head) is renamed to a fresh
//! name, so the two can no longer meet.

use regorus::unstable::{AssignOp, Expr, Literal, LiteralStmt, Module, Query};

use super::ast::{AstVisitor, walk_rule};
use super::fresh;
use super::text::Edit;

/// A variable occurrence: name and byte range.
struct Occurrence {
    name: String,
    start: usize,
    end: usize,
}

/// A comprehension: its range, where its body starts (its head is all
/// before), and what its body declares (name, declaration offset).
struct Comprehension {
    start: usize,
    end: usize,
    body_start: usize,
    declared: Vec<(String, usize)>,
}

#[derive(Default)]
struct Collector {
    vars: Vec<Occurrence>,
    comprehensions: Vec<Comprehension>,
}

impl AstVisitor for Collector {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Var { span, .. } => self.vars.push(Occurrence {
                name: span.text().to_owned(),
                start: span.start as usize,
                end: span.end as usize,
            }),
            Expr::ArrayCompr { span, query, .. } | Expr::SetCompr { span, query, .. } => {
                self.comprehensions.push(Comprehension {
                    start: span.start as usize,
                    end: span.end as usize,
                    body_start: query.span.start as usize,
                    declared: declared(query),
                })
            }
            Expr::ObjectCompr { span, query, .. } => self.comprehensions.push(Comprehension {
                start: span.start as usize,
                end: span.end as usize,
                body_start: query.span.start as usize,
                declared: declared(query),
            }),
            _ => {}
        }
        true
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        if let Literal::SomeVars { vars, .. } = &s.literal {
            for v in vars {
                self.vars.push(Occurrence {
                    name: v.text().to_owned(),
                    start: v.start as usize,
                    end: v.end as usize,
                });
            }
        }
    }
}

/// What a comprehension body's own statements declare: `some` variables,
/// `some .. in` variables and the variables on the left of `:=`.
fn declared(q: &Query) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for s in &q.stmts {
        match &s.literal {
            Literal::SomeVars { vars, .. } => {
                out.extend(vars.iter().map(|v| (v.text().to_owned(), v.start as usize)));
            }
            Literal::SomeIn { key, value, .. } => {
                for e in key.iter().chain([value]) {
                    pattern_vars(e, &mut out);
                }
            }
            Literal::Expr { expr, .. } => {
                if let Expr::AssignExpr {
                    op: AssignOp::ColEq,
                    lhs,
                    ..
                } = expr.as_ref()
                {
                    pattern_vars(lhs, &mut out);
                }
            }
            Literal::NotExpr { .. } | Literal::Every { .. } => {}
        }
    }
    out.retain(|(name, _)| name != "_");
    out
}

fn pattern_vars(e: &Expr, out: &mut Vec<(String, usize)>) {
    match e {
        Expr::Var { span, .. } => out.push((span.text().to_owned(), span.start as usize)),
        Expr::Array { items, .. } => items.iter().for_each(|i| pattern_vars(i, out)),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| pattern_vars(v, out)),
        _ => {}
    }
}

pub(crate) fn edits(_src: &str, module: &Module) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut n = 0;
    for rule in &module.policy {
        let mut c = Collector::default();
        walk_rule(rule, &mut c);
        for (ci, comp) in c.comprehensions.iter().enumerate() {
            let inside = |o: &Occurrence| o.start >= comp.start && o.end <= comp.end;
            for (name, at) in &comp.declared {
                if !c.vars.iter().any(|o| o.name == *name && !inside(o)) {
                    continue;
                }
                // Nested comprehensions that declare the name again keep their own.
                let nested: Vec<(usize, usize)> = c
                    .comprehensions
                    .iter()
                    .enumerate()
                    .filter(|(i, d)| {
                        *i != ci
                            && d.start >= comp.start
                            && d.end <= comp.end
                            && d.declared.iter().any(|(m, _)| m == name)
                    })
                    .map(|(_, d)| (d.start, d.end))
                    .collect();
                let new_name = fresh(&format!("{name}_"), n);
                n += 1;
                for o in c.vars.iter().filter(|o| o.name == *name && inside(o)) {
                    // The head: everything before the body (regorus' spans of
                    // object literals do not cover the whole literal).
                    let in_term = o.start >= comp.start && o.end <= comp.body_start;
                    let after_decl = o.start >= comp.body_start && o.start >= *at;
                    let shadowed = nested.iter().any(|(s, e)| o.start >= *s && o.end <= *e);
                    if (in_term || after_decl) && !shadowed {
                        edits.push(Edit::replace(o.start, o.end, new_name.clone()));
                    }
                }
            }
        }
    }
    edits.sort_by_key(|e| e.start);
    edits.dedup_by_key(|e| e.start);
    edits
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn some_in_a_comprehension_shadows_the_body() {
        let src = "package t\np := n if {\n  some i\n  input.a[i]\n  n := count([j | some i; j := input.b[i]])\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\np := n if {\n  some i\n  input.a[i]\n  n := count([j | some __regard_i_0; j := input.b[__regard_i_0]])\n}\n"
        );
        assert_eq!(
            eval_with(src, true, r#"{"a": [7], "b": [1, 2, 3]}"#),
            Value::from(3)
        );
    }

    #[test]
    fn unrelated_names_are_untouched() {
        let src = "package t\np := [x | some i; x := input.a[i]]\n";
        assert_eq!(prepare(src, true), src);
    }
}
