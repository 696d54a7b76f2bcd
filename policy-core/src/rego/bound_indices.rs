//! Pass `bound_indices`: an index variable bound by another statement is a
//! lookup, not an iteration.
//!
//! regorus' statement scheduler counts every variable written as a ref
//! index (`s[c]`) as bound by that statement, even under `not` and even when
//! another statement binds it. A statement such as `not s[c]` then looks
//! like a binder of `c` with no dependencies and is scheduled before the
//! real binder (`c := a`), giving `var c used before definition` or, with
//! `c = a`, an unbound `c` and a wrong result. In OPA a negated expression
//! never binds (its variables must be bound elsewhere and are ordered
//! after their binders), and a variable declared with `:=` is only looked
//! up by later statements.
//!
//! Such an index is rewritten to `[c][0]`: the same value, which regorus'
//! scheduler reads as a use of `c`. It applies to an index variable of a
//! `not` statement that a positive statement of the same query mentions, and
//! to an index variable of any statement declared with `:=` by an earlier
//! statement of the same query (`:=` later in the query is OPA's `var c
//! referenced above` error, left as regorus reports it).
//!
//! A negated ref whose index is an expression over such a variable
//! (`not s[r.p]`, `not s[r[0]]` after `r := {"p": k}`) goes wrong in regorus
//! too (the body fails where OPA's `not` succeeds), also once [`negation`]
//! has bound the index first as OPA does (`__regard_not0 = r.p; not
//! s[__regard_not0]`, in the same round, so this pass sees the original).
//! There the negation is written as `count([1 | s[r.p]]) == 0`, which holds
//! exactly when the expression, as a statement, would fail (undefined or
//! `false`), as `not` does.
//!
//! [`negation`]: super::negation

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query};

use super::ast::{AstVisitor, declaration, walk_expr, walk_module};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut pass = BoundIndices {
        src,
        edits: Vec::new(),
    };
    walk_module(module, &mut pass);
    pass.edits
}

struct BoundIndices<'a> {
    src: &'a str,
    edits: Vec<Edit>,
}

impl AstVisitor for BoundIndices<'_> {
    fn query(&mut self, q: &Query) {
        // Statement index of each `:=` declaration, and the statements
        // (positive ones) mentioning each variable.
        let mut declared: BTreeMap<String, usize> = BTreeMap::new();
        let mut mentioned: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, stmt) in q.stmts.iter().enumerate() {
            if let Some((_, lhs, _)) = declaration(stmt) {
                for name in vars_of(lhs) {
                    declared.entry(name).or_insert(i);
                }
            }
            for name in positive_vars(stmt) {
                mentioned.entry(name).or_default().push(i);
            }
        }
        let bound_elsewhere = |name: &str, i: usize| match declared.get(name) {
            Some(&at) => at < i,
            None => mentioned
                .get(name)
                .is_some_and(|stmts| stmts.iter().any(|&j| j != i)),
        };
        for (i, stmt) in q.stmts.iter().enumerate() {
            let negated = matches!(stmt.literal, Literal::NotExpr { .. });
            if let Literal::NotExpr { expr, .. } = &stmt.literal {
                let composite = composite_index_vars(expr);
                if composite.iter().any(|name| bound_elsewhere(name, i)) {
                    self.count_instead_of_not(stmt, expr);
                    continue;
                }
            }
            for (name, start, end) in index_vars(stmt) {
                let lookup = match declared.get(&name) {
                    Some(&at) => at < i,
                    None => {
                        negated
                            && mentioned
                                .get(&name)
                                .is_some_and(|stmts| stmts.iter().any(|&j| j != i))
                    }
                };
                if lookup && self.src.get(start..end) == Some(name.as_str()) {
                    self.edits
                        .push(Edit::replace(start, end, format!("[{name}][0]")));
                }
            }
        }
    }
}

impl BoundIndices<'_> {
    /// `not E` → `count([1 | E]) == 0`.
    fn count_instead_of_not(&mut self, stmt: &LiteralStmt, expr: &Expr) {
        let start = stmt.span.start as usize;
        let expr_start = expr.span().start as usize;
        let mut end = expr.span().end as usize;
        // regorus ends a string literal's span before its closing quote.
        if matches!(self.src.as_bytes().get(end), Some(b'"' | b'`')) {
            end = end.saturating_add(1);
        }
        if !self.src.get(start..expr_start).is_some_and(|t| {
            t.starts_with("not") && t.get(3..).is_some_and(|r| r.trim().is_empty())
        }) {
            return;
        }
        self.edits
            .push(Edit::replace(start, expr_start, "count([1 | "));
        self.edits.push(Edit::insert(end, "]) == 0"));
    }
}

/// Variables inside a ref index that is not a plain variable (`s[r.p]`,
/// `s[r[0]]`); comprehensions are not entered.
fn composite_index_vars(e: &Expr) -> Vec<String> {
    #[derive(Default)]
    struct Composite {
        names: Vec<String>,
    }
    impl AstVisitor for Composite {
        fn expr(&mut self, e: &Expr) -> bool {
            match e {
                Expr::RefBrack { index, .. } => {
                    if !matches!(index.as_ref(), Expr::Var { .. }) {
                        self.names.extend(vars_of(index));
                    }
                    true
                }
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
                _ => true,
            }
        }
    }
    let mut c = Composite::default();
    walk_expr(e, &mut c);
    c.names
}

/// Collects variables, not looking into comprehensions (their own queries).
#[derive(Default)]
struct Vars {
    names: Vec<String>,
}

impl AstVisitor for Vars {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Var { span, .. } => {
                let name = span.text();
                if name != "_" {
                    self.names.push(name.to_owned());
                }
                false
            }
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
            _ => true,
        }
    }
}

fn vars_of(e: &Expr) -> Vec<String> {
    let mut v = Vars::default();
    walk_expr(e, &mut v);
    v.names
}

/// Variables a positive statement mentions (none for `not`, `some x`
/// declarations and `every`, whose body is a query of its own).
fn positive_vars(stmt: &LiteralStmt) -> Vec<String> {
    match &stmt.literal {
        Literal::Expr { expr, .. } => vars_of(expr),
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            let mut names = key.as_deref().map(vars_of).unwrap_or_default();
            names.extend(vars_of(value));
            names.extend(vars_of(collection));
            names
        }
        Literal::Every { domain, .. } => vars_of(domain),
        Literal::NotExpr { .. } | Literal::SomeVars { .. } => Vec::new(),
    }
}

/// Variables written as a whole ref index (`s[c]`) in a statement's
/// expression, with their byte ranges; comprehensions are not entered.
#[derive(Default)]
struct Indices {
    found: Vec<(String, usize, usize)>,
}

impl AstVisitor for Indices {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::RefBrack { index, .. } => {
                if let Expr::Var { span, .. } = index.as_ref() {
                    let name = span.text();
                    if !matches!(name, "_" | "input" | "data") {
                        self.found
                            .push((name.to_owned(), span.start as usize, span.end as usize));
                    }
                }
                true
            }
            Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
            _ => true,
        }
    }
}

fn index_vars(stmt: &LiteralStmt) -> Vec<(String, usize, usize)> {
    let mut v = Indices::default();
    match &stmt.literal {
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk_expr(expr, &mut v),
        Literal::SomeIn { collection, .. } => walk_expr(collection, &mut v),
        Literal::Every { domain, .. } => walk_expr(domain, &mut v),
        Literal::SomeVars { .. } => {}
    }
    v.found
}

#[cfg(test)]
mod tests {
    use super::super::prepare;
    use super::super::tests::eval_with;

    fn json(src: &str, input: &str) -> String {
        // Compact JSON, so expected values read on one line.
        let v = eval_with(src, true, input);
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn a_negated_index_bound_by_a_chain_of_assignments_is_a_lookup() {
        let src = "package t\ns := set()\np := [c | a := \"a\"; c := a; not s[c]]\n";
        assert_eq!(
            prepare(src, true),
            "package t\ns := set()\np := [c | a := \"a\"; c := a; not s[[c][0]]]\n"
        );
        assert_eq!(json(src, "{}"), r#"["a"]"#);
    }

    #[test]
    fn a_negated_index_bound_by_unification_after_a_lookup() {
        let src = "package t\ns := {\"b\"}\n\
                   p contains r if {\n  input.r[k]\n  r = {\"p\": k}\n  x = r.p\n  not s[x]\n}\n";
        assert!(prepare(src, true).contains("  not s[[x][0]]\n"));
        assert_eq!(json(src, r#"{"r": {"a": 1, "b": 2}}"#), r#"[{"p":"a"}]"#);
    }

    #[test]
    fn an_index_declared_earlier_with_colon_eq_is_a_lookup() {
        let src = "package t\nt := {\"a\": 1}\np := [c | a := \"a\"; c := a; t[c]]\n";
        assert_eq!(
            prepare(src, true),
            "package t\nt := {\"a\": 1}\np := [c | a := \"a\"; c := a; t[[c][0]]]\n"
        );
        assert_eq!(json(src, "{}"), r#"["a"]"#);
    }

    #[test]
    fn a_negated_index_after_its_iteration_keeps_its_meaning() {
        let src = "package t\np := [k | input.r[k]; not input.s[k]]\n";
        assert_eq!(
            prepare(src, true),
            "package t\np := [k | input.r[k]; not input.s[[k][0]]]\n"
        );
        assert_eq!(
            json(src, r#"{"r": {"a": 1, "b": 2}, "s": {"b": true}}"#),
            r#"["a"]"#
        );
    }

    #[test]
    fn a_negated_ref_with_a_composite_index_over_a_bound_variable_counts() {
        let src = "package t\ns := {\"b\"}\n\
                   p contains r if {\n  some k in [\"a\", \"b\"]\n  r := {\"p\": k}\n  not s[r.p]\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\ns := {\"b\"}\n\
             p contains r if {\n  some k in [\"a\", \"b\"]\n  r := {\"p\": k}\n  \
             __regard_not0 = r.p; count([1 | s[__regard_not0]]) == 0\n}\n"
        );
        assert_eq!(json(src, "{}"), r#"[{"p":"a"}]"#);
        let src = "package t\np contains k if {\n  some k in [\"a\", \"b\"]\n  r := [k]\n  not input.x[r[0]]\n}\n";
        assert_eq!(json(src, r#"{"x": {"a": false, "b": 1}}"#), r#"["a"]"#);
    }

    #[test]
    fn late_declarations_and_unsafe_negations_are_left_alone() {
        // `c := …` after its use is OPA's "referenced above" error; a
        // negated index nothing else mentions is unsafe in OPA.
        for src in [
            "package t\nt := {\"a\": 1}\np := [c | t[c]; c := \"a\"]\n",
            "package t\np := [1 | not input.s[c]]\n",
        ] {
            assert_eq!(prepare(src, true), src);
        }
    }
}
