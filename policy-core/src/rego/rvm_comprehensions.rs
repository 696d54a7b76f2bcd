//! A one-element loop at the start of every comprehension, for the RVM.
//!
//! In regorus' register VM a condition that fails inside a comprehension
//! body is reported to the innermost *loop* of the rule being evaluated;
//! when the comprehension has not started a loop of its own yet, that is
//! the enclosing rule's loop, so the whole iteration of the rule is skipped
//! instead of the comprehension being empty (`q[x] { x := xs[_]; n :=
//! count([1 | x > 1]) }` loses every `x <= 1` on the RVM, not on the
//! interpreter or OPA). Starting each comprehension body with `_ = [0][_]`
//! gives it its own loop first, which changes nothing else: the loop runs
//! its body once. Used for RVM compilation only, after
//! [`super::conflicts`]; edits insert text within a line.

use regorus::unstable::{Expr, Module};

use super::ast::{AstVisitor, walk_module};
use super::text::Edit;

/// What is inserted after a comprehension's `|`.
const LOOP: &str = " _ = [0][_];";

/// The edits that start every comprehension body of `src` (parsed as `m`)
/// with a one-element loop.
pub(crate) fn edits(src: &str, m: &Module) -> Vec<Edit> {
    struct Finder<'s> {
        src: &'s str,
        edits: Vec<Edit>,
    }
    impl AstVisitor for Finder<'_> {
        fn expr(&mut self, e: &Expr) -> bool {
            let (Expr::ArrayCompr { query, .. }
            | Expr::SetCompr { query, .. }
            | Expr::ObjectCompr { query, .. }) = e
            else {
                return true;
            };
            // regorus' span of a comprehension's query starts at its bar.
            let at = query.span.start as usize;
            let after = self.src.get(at.saturating_add(1)..).unwrap_or_default();
            // Comprehensions the conflict checks generate open with the loop already.
            if self.src.get(at..at.saturating_add(1)) == Some("|")
                && !after.trim_start().starts_with(LOOP.trim_start())
            {
                self.edits.push(Edit::insert(at.saturating_add(1), LOOP));
            }
            true
        }
    }
    let mut f = Finder {
        src,
        edits: Vec::new(),
    };
    walk_module(m, &mut f);
    f.edits
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use super::super::test_engines::{self, Pass};

    const PASS: Pass = super::edits;

    /// `src` with every comprehension body starting with a one-element loop.
    fn rewrite(src: &str) -> String {
        test_engines::after(PASS, src, false)
    }

    /// `data.t.p` on the RVM, with or without the rewrite.
    fn rvm(src: &str, input: &str, rewrite: bool) -> Value {
        test_engines::rvm_v0(src, input, rewrite.then_some(PASS))
    }

    fn interpreter(src: &str, input: &str) -> Value {
        test_engines::interpreter_v0(src, input)
    }

    #[test]
    fn a_failed_condition_empties_the_comprehension_not_the_rule() {
        let input = r#"{"xs": [1, 2, 3]}"#;
        for src in [
            "package t\np[x] { x := input.xs[_]; n := count([1 | x > 1]) }",
            "package t\np[[x, n]] { x := input.xs[_]; n := count({y | y := 1; not x > 1}) }",
            "package t\np = {x | x := input.xs[_]; w := {k: 1 | k := \"a\"; x > 2}}",
            "package t\np = [x | x := input.xs[_]; w := [z | x > 1; z := input.xs[_]]]",
        ] {
            let want = interpreter(src, input);
            assert_eq!(rvm(src, input, true), want, "{src}");
            // The reason for the pass: without it the RVM loses results.
            assert_ne!(rvm(src, input, false), want, "{src}");
        }
    }

    #[test]
    fn a_comprehension_that_opens_with_the_loop_gets_no_second_one() {
        let src = "package t\np = [v | _ = [0][_]; v := 1]";
        assert_eq!(rewrite(src), src);
    }

    #[test]
    fn the_loop_goes_after_each_bar() {
        let src = "package t\np = {k: [v | v := 1] | k := \"|\"}";
        assert_eq!(
            rewrite(src),
            "package t\np = {k: [v | _ = [0][_]; v := 1] | _ = [0][_]; k := \"|\"}"
        );
    }
}
