//! Pass `some_in`: `some x in C` over a value that is not a collection.
//!
//! OPA lowers `some k, v in C` to the unification `v = C[k]` (its
//! `rewriteSomeDeclStatement`), so iterating a string or a number is simply
//! undefined. regorus evaluates `some .. in` itself and fails the whole query
//! with "`some .. in collection` expects array/set/object". The statement is
//! written in OPA's lowered form: `some k, v; v = C[k]` (`C[_]` without a key).
//!
//! regorus runs a `some` declaration as a statement, so a declaration after
//! an iteration would run once per value and fail (see [`super::some_decls`]).
//! When the statement is not at the start of its query, the declaration
//! goes to the query's start (`{ some k, v; … true; v = C[k]`, and the same
//! before a comprehension's first statement), so the stage needs no second
//! parse to move it there.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query};

use super::ast::{AstVisitor, var_name, walk_module};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut finder = Finder {
        src,
        edits: Vec::new(),
        late: BTreeSet::new(),
    };
    walk_module(module, &mut finder);
    finder.edits
}

struct Finder<'a> {
    src: &'a str,
    edits: Vec<Edit>,
    /// Start offsets of `some .. in` statements that follow another kind
    /// of statement in a query, each with where a declaration goes at the
    /// start of that query (after `{`, or before a comprehension's first
    /// statement).
    late: BTreeSet<(usize, usize, bool)>,
}

impl AstVisitor for Finder<'_> {
    fn query(&mut self, q: &Query) {
        let start = q.span.start as usize;
        let braced = self.src.get(start..).is_some_and(|t| t.starts_with('{'));
        let Some(first) = q.stmts.first() else { return };
        let at = if braced {
            start + 1
        } else {
            first.span.start as usize
        };
        let mut leading = true;
        for s in &q.stmts {
            match s.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn { .. } if leading => leading = false,
                Literal::SomeIn { .. } => {
                    self.late.insert((s.span.start as usize, at, braced));
                }
                _ => leading = false,
            }
        }
    }

    fn stmt(&mut self, stmt: &LiteralStmt) {
        let Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } = &stmt.literal
        else {
            return;
        };
        if !stmt.with_mods.is_empty() {
            return;
        }
        // The value is a variable or an array pattern of variables
        // (`some [a, b] in pairs`), lowered to the same unification.
        let Some(bound) = pattern_names(value) else {
            return;
        };
        let k = match key {
            Some(k) => match var_name(k) {
                Some(k) => Some(k),
                None => return,
            },
            None => None,
        };
        let coll = collection.span().text();
        if coll.contains('`') || coll.contains('\n') {
            return;
        }
        // The collection must not mention the names being declared.
        let mentions = |name: &str| {
            name != "_"
                && coll
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == name)
        };
        if bound.iter().any(|n| mentions(n)) || k.is_some_and(mentions) {
            return;
        }
        let start = stmt.span.start as usize;
        // A call's result cannot be indexed in Rego: it is bound to a fresh
        // name first (`__regard_in12 := object.keys(o); k = __regard_in12[_]`).
        let (bind, coll) = match collection.as_ref() {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                (String::new(), coll.to_owned())
            }
            Expr::Call { .. } if coll.ends_with(')') => {
                let name = super::fresh("in", start);
                (format!("{name} := {coll}; "), name)
            }
            _ => return,
        };
        let v = value.span().text();
        if v.contains('\n') || (!matches!(value.as_ref(), Expr::Var { .. }) && !v.ends_with(']')) {
            return;
        }
        let declared: Vec<&str> = k
            .into_iter()
            .chain(bound.iter().copied())
            .filter(|n| *n != "_")
            .collect();
        let index = k.unwrap_or("_");
        let hoist_to = self
            .late
            .range((start, 0, false)..=(start, usize::MAX, true))
            .next()
            .map(|&(_, q, braced)| (q, braced));
        let lowered = match (declared.is_empty(), hoist_to) {
            (true, _) => format!("{bind}{coll}[{index}]"),
            (false, Some((q, braced))) => {
                let names = declared.join(", ");
                let decl = if braced {
                    format!(" some {names};")
                } else {
                    format!("some {names}; ")
                };
                self.edits.push(Edit::insert(q, decl));
                format!("true; {bind}{v} = {coll}[{index}]")
            }
            (false, None) => format!("some {}; {bind}{v} = {coll}[{index}]", declared.join(", ")),
        };
        // `p if some x in xs` has no braces; two statements need them.
        let lowered = if braceless(self.src, stmt.span.start as usize) {
            format!("{{ {lowered} }}")
        } else {
            lowered
        };
        self.edits.push(Edit::replace(
            stmt.span.start as usize,
            collection.span().end as usize,
            lowered,
        ));
    }
}

/// The names a `some .. in` value binds: a variable, or an array of
/// variables (`[a, _, b]`); `None` for other patterns.
fn pattern_names(value: &Expr) -> Option<Vec<&str>> {
    match value {
        Expr::Var { .. } => var_name(value).map(|n| vec![n]),
        Expr::Array { items, .. } => items.iter().map(|i| var_name(i)).collect(),
        _ => None,
    }
}

/// Whether the statement at `start` is the whole of a braceless `if` body.
pub(crate) fn braceless(src: &str, start: usize) -> bool {
    let before = src.get(..start).unwrap_or("").trim_end();
    before.ends_with("if")
        && !before
            .get(..before.len().saturating_sub(2))
            .unwrap_or("")
            .ends_with(|c: char| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;

    #[test]
    fn some_in_is_lowered_to_a_ref() {
        let src = "package t\np contains [k, v] if {\n  some c in input.cs\n  some k, v in c\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\np contains [k, v] if { some k, v;\n  some c; c = input.cs[_]\n  true; v = c[k]\n}\n"
        );
    }

    #[test]
    fn late_some_in_a_comprehension_declares_at_its_start() {
        let src = "package t
p := [c | input.ks[k]; some c in input.s[k]]
";
        assert_eq!(
            prepare(src, true),
            "package t
p := [c | some c; input.ks[k]; true; c = input.s[k][_]]
"
        );
        let got = crate::rego::tests::eval_with(
            src,
            true,
            r#"{"ks": {"a": 1, "b": 2}, "s": {"a": [1], "b": [2, 3]}}"#,
        );
        assert_eq!(got, regorus::Value::from_json_str("[1, 2, 3]").unwrap());
    }

    #[test]
    fn braceless_body_gets_braces() {
        let src = "package t\ncs contains c if some c in input.cs\n";
        assert_eq!(
            prepare(src, true),
            "package t\ncs contains c if { some c; c = input.cs[_] }\n"
        );
    }

    #[test]
    fn patterns_and_calls_are_lowered_too() {
        let src = "package t\np if { some [a, b] in input.x; some y in object.keys(input.o) }\n";
        assert_eq!(
            prepare(src, true),
            "package t\np if { some y; some a, b; [a, b] = input.x[_]; true; __regard_in41 := object.keys(input.o); y = __regard_in41[_] }\n"
        );
        // Nested patterns and patterns mentioning the collection stay.
        for kept in [
            "package t\np if { some [a, [b]] in input.x }\n",
            "package t\np if { some [a, b] in input[a] }\n",
        ] {
            assert_eq!(prepare(kept, true), kept);
        }
    }

    #[test]
    fn iterating_a_call_giving_no_collection_is_undefined() {
        let src = "package t\np := [x | some x in json.unmarshal(input.doc)]\n";
        let eval = |doc: &str| crate::rego::tests::eval_with(src, true, doc);
        assert_eq!(
            eval(r#"{"doc": "[1, 2]"}"#),
            regorus::Value::from_json_str("[1, 2]").unwrap()
        );
        assert_eq!(
            eval(r#"{"doc": "5"}"#),
            regorus::Value::from_json_str("[]").unwrap()
        );
    }
}
