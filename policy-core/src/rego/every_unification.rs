//! Pass `every_unification`: a fresh variable unified inside `every`.
//!
//! In OPA, `every x in xs { y = x; y > 0 }` introduces `y` by unification
//! as any query does. regorus refuses the module ("incompatible destructuring
//! patterns") when the variable is new inside an `every` body. The pass
//! rewrites such a statement into the declaration it means, `y := x`, when
//! that is certain within the module: the name is no rule or import of the
//! module, occurs nowhere in the enclosing rule outside the `every` (so it is
//! no argument or outer variable), and its first occurrence in the body is
//! that statement's bare variable. (A rule of the same name in another file
//! of the package is not seen here.)
//!
//! A unification inside `every` whose two sides are already bound is a
//! comparison in OPA, but regorus lets such a statement pass whatever the
//! values (`every x in [1, 2] { x = 5 }` held), and binds a new local for
//! a rule's name (`every x in xs { y = x }` with a rule `y`). Such a
//! statement is written as the comparison it is (`x == 5`) when every
//! variable in it is certainly bound: a loop variable, a rule or import of
//! the module, `input` or `data`, or a name the enclosing rule uses outside
//! the `every` (an argument or an outer variable, which OPA binds before
//! the `every` runs). A bracket's bare index may be new (`x = ys[i]`): the
//! comparison iterates it as the unification does. Sides holding a
//! comprehension are left alone.

use regorus::unstable::{Expr, Literal, LiteralStmt, Module};

use super::ast::{AstVisitor, rule_name, unification, walk_expr, walk_rule, word_positions};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    // Names a bare variable may mean besides a local: the module's rules and imports.
    let mut global: Vec<String> = module.policy.iter().filter_map(|r| rule_name(r)).collect();
    for import in &module.imports {
        match &import.r#as {
            Some(alias) => global.push(alias.text().to_owned()),
            None => {
                if let Some(last) = import.refr.span().text().rsplit('.').next() {
                    global.push(last.to_owned());
                }
            }
        }
    }
    let mut edits = Vec::new();
    for rule in &module.policy {
        let span = rule.span();
        let mut finder = Finder {
            src,
            rule: (span.start as usize, span.end as usize),
            global: &global,
            edits: Vec::new(),
        };
        walk_rule(rule, &mut finder);
        edits.append(&mut finder.edits);
    }
    edits
}

struct Finder<'s> {
    src: &'s str,
    /// The enclosing rule's byte range: locals are the rule's.
    rule: (usize, usize),
    global: &'s [String],
    edits: Vec<Edit>,
}

impl AstVisitor for Finder<'_> {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        let Literal::Every {
            span,
            key,
            value,
            query,
            ..
        } = &stmt.literal
        else {
            return;
        };
        let (start, end) = (span.start as usize, span.end as usize);
        let bound: Vec<&str> = key.iter().chain([value]).map(|s| s.text()).collect();
        for s in &query.stmts {
            let Some((expr, lhs, rhs)) = unification(s) else {
                continue;
            };
            let (l, r) = (lhs.span(), rhs.span());
            let fresh = |e: &Expr| match e {
                Expr::Var { span, .. } => self.fresh(span, start, end, &bound),
                _ => false,
            };
            if self.bound_sides(lhs, rhs, start, end, &bound) {
                // `a = b` with both sides bound → `a == b`.
                let between = (l.end as usize, r.start as usize);
                if let Some(at) = self.src.get(between.0..between.1).and_then(|t| t.find('=')) {
                    let at = between.0 + at;
                    self.edits.push(Edit::replace(at, at + 1, "==".to_owned()));
                }
            } else if fresh(lhs) {
                // `y = v` → `y := v`: only the operator changes (the value's
                // span leaves out a string's quotes, so its text is not reused).
                let between = (l.end as usize, r.start as usize);
                if let Some(at) = self.src.get(between.0..between.1).and_then(|t| t.find('=')) {
                    let at = between.0 + at;
                    self.edits.push(Edit::replace(at, at + 1, ":=".to_owned()));
                }
            } else if fresh(rhs) {
                // `v = y` → `y := v`, when `v`'s span is its whole text (no
                // string quote cut off at either end).
                let (a, b) = (l.start as usize, l.end as usize);
                let quote = |c: Option<char>| matches!(c, Some('"' | '`'));
                let before = self.src.get(..a).and_then(|t| t.chars().next_back());
                let after = self.src.get(b..).and_then(|t| t.chars().next());
                if quote(before) || quote(after) {
                    continue;
                }
                let e = expr.span();
                self.edits.push(Edit::replace(
                    e.start as usize,
                    e.end as usize,
                    format!("{} := {}", r.text(), l.text()),
                ));
            }
        }
    }
}

impl Finder<'_> {
    /// Whether every variable of `lhs = rhs` (an `every` body statement in
    /// `start..end`) is bound before it runs or is a bracket's index;
    /// `false` when a side holds a comprehension.
    fn bound_sides(
        &self,
        lhs: &Expr,
        rhs: &Expr,
        start: usize,
        end: usize,
        bound: &[&str],
    ) -> bool {
        struct Vars {
            /// Each variable, and whether it is a bracket's bare index
            /// (`a[i]`), which a comparison iterates as a unification does.
            names: Vec<(String, bool)>,
            indices: Vec<u32>,
            closure: bool,
        }
        impl AstVisitor for Vars {
            fn expr(&mut self, e: &Expr) -> bool {
                match e {
                    Expr::RefBrack { index, .. } => {
                        if let Expr::Var { span, .. } = index.as_ref() {
                            self.indices.push(span.start);
                        }
                    }
                    Expr::Var { span, .. } => {
                        let index = self.indices.contains(&span.start);
                        self.names.push((span.text().to_owned(), index));
                    }
                    Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                        self.closure = true;
                    }
                    _ => {}
                }
                !self.closure
            }
        }
        let mut vars = Vars {
            names: Vec::new(),
            indices: Vec::new(),
            closure: false,
        };
        walk_expr(lhs, &mut vars);
        walk_expr(rhs, &mut vars);
        if vars.closure {
            return false;
        }
        let (rule_start, rule_end) = self.rule;
        vars.names.iter().all(|(name, index)| {
            *index
                || name != "_"
                    && (bound.contains(&name.as_str())
                        || matches!(name.as_str(), "input" | "data")
                        || self.global.iter().any(|g| g == name)
                        || word_positions(self.src, name).into_iter().any(|p| {
                            (rule_start..rule_end).contains(&p) && !(start..end).contains(&p)
                        }))
        })
    }

    /// Whether the variable at `v` is new in the `every` spanning
    /// `start..end`: not `_`, not the loop's own variables, no rule or
    /// import of the module, absent from the enclosing rule outside the
    /// `every`, and first seen at `v` inside it.
    fn fresh(&self, v: &regorus::unstable::Span, start: usize, end: usize, bound: &[&str]) -> bool {
        let name = v.text();
        if matches!(name, "_" | "input" | "data")
            || name.starts_with("__")
            || bound.contains(&name)
            || self.global.iter().any(|g| g == name)
        {
            return false;
        }
        let (rule_start, rule_end) = self.rule;
        let occurrences: Vec<usize> = word_positions(self.src, name)
            .into_iter()
            .filter(|p| (rule_start..rule_end).contains(p))
            .collect();
        occurrences.iter().all(|p| (start..end).contains(p))
            && occurrences.first() == Some(&(v.start as usize))
    }
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn a_fresh_variable_unified_in_every_is_declared() {
        let src = "package t\nimport rego.v1\nxs := [1, 1]\n\
                   p if every x in xs { y = x; y == 1 }\n\
                   q if every x in xs { 1 = z; x == z }\n\
                   s if every x in [\"a\"] { w = \"a\"; x == w }\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\nxs := [1, 1]\n\
             p if every x in xs { y := x; y == 1 }\n\
             q if every x in xs { z := 1; x == z }\n\
             s if every x in [\"a\"] { w := \"a\"; x == w }\n"
        );
        assert_eq!(eval_with(src, true, "{}"), Value::from(true));
    }

    #[test]
    fn names_used_elsewhere_stay_comparisons() {
        // `y` is a rule, `z` an outer variable, `x` the loop's own, `input` a
        // root document: each `=` compares, and is written so.
        let src = "package t\nimport rego.v1\ny := 5\n\
                   p if every x in input.xs { y = x }\n\
                   q if { z := 5; every x in input.xs { x = z } }\n\
                   r if every x in input.xs { [x] = [5] }\n\
                   s if every x in input.xs { input.five = x }\n\
                   t if every x in input.xs { x = input.ys[i]; i >= 0 }\n\
                   u if every x in input.xs { x = [v | v := 5][0] }\n\
                   m if every x in input.xs { [x, w] = [5, 1] }\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\ny := 5\n\
             p if every x in input.xs { y == x }\n\
             q if { z := 5; every x in input.xs { x == z } }\n\
             r if every x in input.xs { [x] == [5] }\n\
             s if every x in input.xs { input.five == x }\n\
             t if every x in input.xs { x == input.ys[i]; i >= 0 }\n\
             u if every x in input.xs { x = [v | v := 5][0] }\n\
             m if every x in input.xs { [x, w] = [5, 1] }\n"
        );
        for rule in ["p", "q", "r", "s", "t"] {
            let eval = |xs: &str| {
                let input = format!("{{\"xs\": {xs}, \"five\": 5, \"ys\": [0, 5]}}");
                let mut e = regorus::Engine::new();
                e.add_policy("t.rego".into(), prepare(src, true)).unwrap();
                e.set_input(Value::from_json_str(&input).unwrap());
                e.eval_rule(format!("data.t.{rule}")).unwrap()
            };
            assert_eq!(eval("[1, 2]"), Value::Undefined, "{rule}");
            assert_eq!(eval("[5, 5]"), Value::from(true), "{rule}");
        }
        // The same fresh name in two rules is a local of each.
        let src = "package t\nimport rego.v1\n\
                   p if every x in [1] { w = x; w == 1 }\n\
                   q if every x in [2] { w = x; w == 2 }\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\n\
             p if every x in [1] { w := x; w == 1 }\n\
             q if every x in [2] { w := x; w == 2 }\n"
        );
    }
}
