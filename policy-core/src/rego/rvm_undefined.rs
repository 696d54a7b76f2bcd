//! Undefined values stop a body on the RVM as they do in OPA.
//!
//! In regorus' register VM two things that are undefined in OPA (and on
//! the interpreter) go on as if they were defined:
//!
//! * an assignment `x := e` whose `e` is undefined does not fail the body
//!   when nothing after it reads `x` positively (`r := f(img); not
//!   known(r)` reported every image for which `f` is undefined — found on
//!   redhat-cop's `container_image_unknownregistries`; `[x | x :=
//!   input.missing]` held one undefined element);
//! * a function whose parameter is the wildcard `_` is called with an
//!   undefined argument (`f(_) = true` gave `f(input.missing) == true`);
//!   a named parameter is checked.
//!
//! So, for RVM compilation only (after [`super::conflicts`]), each such
//! assignment is followed by `_ = x` for every variable it declares, which
//! fails when `x` is undefined and does nothing else, and each wildcard
//! parameter of a function head gets a name of its own. A one-statement
//! body after `if` without braces gets braces to hold the check.

use regorus::unstable::{Expr, LiteralStmt, Module, Rule, RuleHead};

use super::ast::{AstVisitor, declaration, walk_module};
use super::text::Edit;

/// The name a function's `n`th wildcard parameter gets.
const WILDCARD: &str = "__regard_any";

/// The edits that make `src` (parsed as `m`) fail on undefined values on
/// the RVM as it does on the interpreter.
pub(crate) fn edits(src: &str, m: &Module) -> Vec<Edit> {
    let mut f = Finder {
        src,
        edits: Vec::new(),
    };
    for rule in &m.policy {
        if let Rule::Spec {
            head: RuleHead::Func { args, .. },
            ..
        } = rule.as_ref()
        {
            for (i, arg) in args.iter().enumerate() {
                let span = arg.span();
                let (start, end) = (span.start as usize, span.end as usize);
                if matches!(arg.as_ref(), Expr::Var { .. }) && src.get(start..end) == Some("_") {
                    f.edits
                        .push(Edit::replace(start, end, format!("{WILDCARD}{i}")));
                }
            }
        }
    }
    walk_module(m, &mut f);
    f.edits
}

struct Finder<'s> {
    src: &'s str,
    edits: Vec<Edit>,
}

impl AstVisitor for Finder<'_> {
    fn stmt(&mut self, s: &LiteralStmt) {
        let Some((expr, lhs, rhs)) = declaration(s) else {
            return;
        };
        if always_defined(rhs) {
            return;
        }
        let mut vars = Vec::new();
        declared(lhs, &mut vars);
        if vars.is_empty() {
            return;
        }
        let start = s.span.start as usize;
        let end = s
            .with_mods
            .iter()
            .map(|w| w.span.end)
            .chain([s.span.end, expr.span().end])
            .max()
            .unwrap_or(s.span.end) as usize;
        let checks: String = vars.iter().map(|v| format!("; _ = {v}")).collect();
        if self.after_if(start) {
            self.edits.push(Edit::insert(start, "{ "));
            self.edits.push(Edit::insert(end, format!("{checks} }}")));
        } else {
            self.edits.push(Edit::insert(end, checks));
        }
    }
}

impl Finder<'_> {
    /// Whether the statement at `start` is an unbraced body after `if`.
    fn after_if(&self, start: usize) -> bool {
        let before = self.src.get(..start).unwrap_or_default().trim_end();
        before.ends_with("if")
            && !before[..before.len() - 2]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
    }
}

/// Values that cannot be undefined here: constants, comprehensions, and a
/// variable (checked where it is assigned, or bound by a loop or as a
/// parameter; the RVM compiler also takes `y := x` as another name for
/// `x` and refuses a check of `y`).
fn always_defined(e: &Expr) -> bool {
    match e {
        Expr::Var { .. } => true,
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. }
        | Expr::ArrayCompr { .. }
        | Expr::SetCompr { .. }
        | Expr::ObjectCompr { .. } => true,
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().all(|i| always_defined(i))
        }
        Expr::Object { fields, .. } => fields
            .iter()
            .all(|(_, k, v)| always_defined(k) && always_defined(v)),
        _ => false,
    }
}

/// The variables an assignment's left side declares (`x`, `[a, b]`,
/// `{"k": v}`), without `_`.
fn declared(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Var { value, .. } => {
            if let Ok(name) = value.as_string()
                && name.as_ref() != "_"
                && !out.iter().any(|v| v == name.as_ref())
            {
                out.push(name.to_string());
            }
        }
        Expr::Array { items, .. } => items.iter().for_each(|i| declared(i, out)),
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| declared(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use super::super::test_engines::{self, Pass};

    const PASS: Pass = super::edits;

    fn rewritten(src: &str, v1: bool) -> String {
        test_engines::after(PASS, src, v1)
    }

    /// `data.t.p` on the RVM, with or without the rewrite.
    fn rvm(src: &str, input: &str, rewrite: bool) -> Value {
        test_engines::rvm_v0(src, input, rewrite.then_some(PASS))
    }

    fn interpreter(src: &str, input: &str) -> Value {
        test_engines::interpreter_v0(src, input)
    }

    #[test]
    fn undefined_assignments_and_wildcard_arguments_fail_as_in_opa() {
        let input = r#"{"images": ["nginx", "quay.io/a", "x.io/b"]}"#;
        for src in [
            // redhat-cop's container_image_unknownregistries, reduced.
            "package t\np[img] { img := input.images[_]; r := reg(img); not known(r) }\n\
             reg(img) = r { contains(img, \"/\"); r := split(img, \"/\")[0] }\n\
             known(r) { r == \"quay.io\" }",
            "package t\np[m] { r := input.missing; m := \"bad\" }",
            "package t\np = [x | x := input.missing]",
            "package t\np[m] { r := input.missing; r2 := r; m := \"bad\" }",
            "package t\np[m] { [a, b] := [input.missing, 1]; m := \"bad\" }",
            "package t\nf(_) = true\np[m] { f(input.missing); m := \"bad\" }",
            "package t\nf(a, _) { a == 1 }\np[m] { f(1, input.missing); m := \"bad\" }",
        ] {
            let want = interpreter(src, input);
            assert_eq!(rvm(src, input, true), want, "{src}");
        }
        // The reasons for the pass: without it the RVM reports these.
        for src in [
            "package t\np[m] { r := input.missing; m := \"bad\" }",
            "package t\nf(_) = true\np[m] { f(input.missing); m := \"bad\" }",
        ] {
            assert_ne!(rvm(src, input, false), interpreter(src, input), "{src}");
        }
    }

    #[test]
    fn checks_follow_each_assignment_and_brace_an_unbraced_body() {
        assert_eq!(
            rewritten(
                "package t\np { x := input.a; [y, _] := input.b; z := 1 }\nf(_, b) = b",
                false
            ),
            "package t\np { x := input.a; _ = x; [y, _] := input.b; _ = y; z := 1 }\nf(__regard_any0, b) = b"
        );
        assert_eq!(
            rewritten(
                "package t\np if x := input.a\nq contains v if { v := input.b with input as {} }",
                true
            ),
            "package t\np if { x := input.a; _ = x }\nq contains v if { v := input.b with input as {}; _ = v }"
        );
    }
}
