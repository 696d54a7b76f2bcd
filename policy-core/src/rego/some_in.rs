//! Pass `some_in`: `some x in C` over a value that is not a collection.
//!
//! OPA lowers `some k, v in C` to the unification `v = C[k]` (its
//! `rewriteSomeDeclStatement`), so iterating a string or a number is simply
//! undefined. regorus evaluates `some .. in` itself and fails the whole query
//! with "`some .. in collection` expects array/set/object". The statement is
//! written in OPA's lowered form: `some k, v; v = C[k]` (`C[_]` without a key).

use regorus::unstable::{Expr, Literal, LiteralStmt, Module};

use super::ast::{AstVisitor, var_name, walk_module};
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
        let Some(v) = var_name(value) else { return };
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
        if mentions(v) || k.is_some_and(mentions) {
            return;
        }
        if !matches!(
            collection.as_ref(),
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. }
        ) {
            return;
        }
        let declared: Vec<&str> = k.into_iter().chain([v]).filter(|n| *n != "_").collect();
        let index = k.unwrap_or("_");
        let lowered = if declared.is_empty() {
            format!("{coll}[{index}]")
        } else {
            format!("some {}; {v} = {coll}[{index}]", declared.join(", "))
        };
        self.edits.push(Edit::replace(
            stmt.span.start as usize,
            collection.span().end as usize,
            lowered,
        ));
    }
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
    fn patterns_and_calls_are_left_alone() {
        let src = "package t\np if { some [a, b] in input.x; some y in object.keys(input.o) }\n";
        assert_eq!(prepare(src, true), src);
    }
}
