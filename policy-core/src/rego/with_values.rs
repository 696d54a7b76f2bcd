//! Pass `with_values`: a `with` value that calls a function or iterates is
//! computed before its statement.
//!
//! OPA evaluates the value of `with input as V` in the enclosing query,
//! before the replacement applies. regorus goes wrong when the value calls
//! a user-defined function that the replaced evaluation calls too:
//! `check.deny with input as build_input({"v": datetime.days_to_ns(100)})`,
//! where `deny` also calls `datetime.days_to_ns`, left `deny` empty where
//! the same value bound first gives its result (trivy-checks' IAM tests).
//! A value that iterates (`with input.asset as assets[_]`) is one regorus
//! refuses ("var _ is unsafe"); OPA binds it before the statement too, so
//! the statement runs once per element. A value that reads a rule
//! (`{"client": clients.vscode}`, through an import) regorus reads under
//! the replaced input, where that lookup came out undefined (Regal's code
//! action tests); it is bound first as well. The value is bound to a fresh local
//! in front of the statement (`__regard_with0 := V; … with input as
//! __regard_with0`). Its text moves
//! with it, so a value written over several lines moves the rest of that
//! statement down by as many lines; lines after the statement keep their
//! numbers.

use regorus::unstable::{Expr, LiteralStmt, Module};

use super::ast::{AstVisitor, walk_expr, walk_module};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    // `data` and the names `data` imports bind (`import data.lib.clients`
    // binds `clients`): a value reading them reads rules.
    let mut documents: Vec<&str> = vec!["data"];
    for imp in &module.imports {
        let path = imp.refr.span().text();
        if !path.starts_with("data.") {
            continue;
        }
        match &imp.r#as {
            Some(alias) => documents.push(alias.text()),
            None => documents.extend(path.rsplit('.').next()),
        }
    }
    let mut pass = WithValues {
        src,
        documents,
        edits: Vec::new(),
        next_var: 0,
    };
    walk_module(module, &mut pass);
    pass.edits
}

struct WithValues<'a> {
    src: &'a str,
    /// Names that stand for documents under `data`.
    documents: Vec<&'a str>,
    edits: Vec<Edit>,
    next_var: usize,
}

impl AstVisitor for WithValues<'_> {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        let values: Vec<(usize, &Expr)> = stmt
            .with_mods
            .iter()
            .filter(|w| needs_binding(&w.r#as, &self.documents))
            .map(|w| (w.refr.span().end as usize, w.r#as.as_ref()))
            .collect();
        if values.is_empty() {
            return;
        }
        let start = stmt.span.start as usize;
        // `p if f(x) with …` has no braces to hold a second statement.
        let before = self.src.get(..start).unwrap_or("").trim_end();
        if before.ends_with("if") || before.ends_with(":=") || before.ends_with('=') {
            return;
        }
        let mut bindings = String::new();
        let mut replacements = Vec::new();
        for (target_end, value) in values {
            // The value starts after `as`: regorus' span of an object
            // literal with several keys starts at its last key, and ends
            // strings and bracketed values before their closing quote or
            // bracket.
            let after = self.src.get(target_end..).unwrap_or("");
            let Some(rest) = after.trim_start().strip_prefix("as") else {
                return;
            };
            let vs = self.src.len() - rest.trim_start().len();
            let end = (value.span().end as usize).max(vs.saturating_add(1));
            let Some(ve) = balanced_end(self.src, vs, end) else {
                return;
            };
            let Some(text) = self.src.get(vs..ve) else {
                return;
            };
            let var = format!("__regard_with{}", self.next_var);
            self.next_var += 1;
            bindings.push_str(&format!("{var} := {text}; "));
            replacements.push(Edit::replace(vs, ve, var));
        }
        self.edits.push(Edit::insert(start, bindings));
        self.edits.extend(replacements);
    }
}

/// The end of the expression that starts at `start` and whose span ends at
/// `end`: `end`, or past the quotes and brackets still open there. `None`
/// when the text does not close.
fn balanced_end(src: &str, start: usize, end: usize) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut depth: i32 = 0;
    let mut quote: Option<u8> = None;
    let mut i = start;
    while i < bytes.len() {
        let b = *bytes.get(i)?;
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 2;
                    continue;
                }
                if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'`' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth < 0 {
                        return None;
                    }
                }
                _ => {}
            },
        }
        i += 1;
        if i >= end && depth == 0 && quote.is_none() {
            return Some(i);
        }
    }
    None
}

/// Whether an expression calls a function, iterates with `_` or reads a
/// document under `data` (through `documents`: `data` and its import
/// aliases), outside comprehensions, which are evaluated in their own query.
fn needs_binding(e: &Expr, documents: &[&str]) -> bool {
    struct Calls<'d>(bool, &'d [&'d str]);
    impl AstVisitor for Calls<'_> {
        fn expr(&mut self, e: &Expr) -> bool {
            match e {
                Expr::Call { .. } => {
                    self.0 = true;
                    false
                }
                Expr::Var { span, .. } if span.text() == "_" || self.1.contains(&span.text()) => {
                    self.0 = true;
                    false
                }
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
                _ => !self.0,
            }
        }
    }
    let mut c = Calls(false, documents);
    walk_expr(e, &mut c);
    c.0
}

#[cfg(test)]
mod tests {
    use super::super::prepare;
    use regorus::{Engine, Value};

    const LIB: &str = "package lib\nk := 1000\nscale(n) := n * k\n";

    fn eval(src: &str) -> Value {
        let mut e = Engine::new();
        e.add_policy("lib.rego".into(), LIB.into())
            .unwrap_or_default();
        e.add_policy("t.rego".into(), prepare(src, true))
            .unwrap_or_default();
        e.eval_rule("data.t.p".into()).unwrap_or(Value::Undefined)
    }

    #[test]
    fn a_value_calling_a_function_is_bound_first() {
        let src = "package t\nimport data.lib\nbig if input.v > 5000\n\
                   p if {\n  big with input as {\"v\": lib.scale(\n    6)}\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport data.lib\nbig if input.v > 5000\n\
             p if {\n  __regard_with0 := {\"v\": data.lib.scale(\n    6)}; big with input as __regard_with0\n}\n"
        );
        assert_eq!(eval(src), Value::from(true));
    }

    #[test]
    fn the_whole_value_moves_when_its_span_stops_short() {
        // regorus' span of this object ends before its last brace.
        let src = "package t\nreview(l) := {\"labels\": l}\nbig if input.review.labels.v > 5\n\
                   p if {\n  big with input as {\"review\": review({\"v\": 6}), \"k\": {\"a\": \"}\"}}\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\nreview(l) := {\"labels\": l}\nbig if input.review.labels.v > 5\n\
             p if {\n  __regard_with0 := {\"review\": review({\"v\": 6}), \"k\": {\"a\": \"}\"}}; big with input as __regard_with0\n}\n"
        );
        assert_eq!(eval(src), Value::from(true));
    }

    #[test]
    fn values_without_calls_and_braceless_bodies_are_left_alone() {
        for src in [
            "package t\nbig if input.v > 5000\np if {\n  big with input as {\"v\": 6000}\n}\n",
            "package t\nbig if input.v > 5000\np if big with input as {\"v\": count([1])}\n",
        ] {
            assert_eq!(prepare(src, true), src);
        }
    }
}
