//! OPA's strict mode (`--strict`): the compile errors OPA's compiler adds
//! when strict mode is on, found by walking regorus' parsed modules.
//!
//! The checks and their messages are OPA's: duplicate imports ("import must
//! not shadow …"), unused imports ("import … unused"), `input`/`data`
//! shadowing by rules or assignments, calls of deprecated builtins (a type
//! error, as in OPA), assigned variables that are never used ("assigned var
//! x unused") and function arguments no body uses ("unused argument x").
//! A variable counts as used when it occurs anywhere else in the body that
//! assigns it, in a nested comprehension or `every` body, or in the rule's
//! head, as OPA counts it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use regorus::unstable::{Expr, Import, Literal, Module, Query, Rule, RuleHead};

use super::ast::declaration;

/// One compile error, printed as OPA prints it: `file:line: kind: message`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CompileError {
    /// The policy file.
    pub file: String,
    /// 1-based line of the offending statement, rule or import.
    pub line: u32,
    /// OPA's error category: `rego_compile_error` or `rego_type_error`.
    pub kind: &'static str,
    /// OPA's message.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file, self.line, self.kind, self.message
        )
    }
}

/// OPA's error category for compile errors.
pub const COMPILE_ERROR: &str = "rego_compile_error";
/// OPA's error category for type errors.
pub const TYPE_ERROR: &str = "rego_type_error";

/// Builtins OPA deprecates; strict mode rejects calls of them.
const DEPRECATED_BUILTINS: &[&str] = &[
    "any",
    "all",
    "re_match",
    "net.cidr_overlap",
    "set_diff",
    "cast_array",
    "cast_set",
    "cast_string",
    "cast_boolean",
    "cast_null",
    "cast_object",
];

/// The strict-mode errors of the given modules, sorted by file and line.
///
/// ```
/// use policy_core::policy::{PolicySet, RegoVersion};
/// use policy_core::rego::strict;
/// let src = "package p\nallow if {\n  x := 1\n  input.a\n}\n";
/// let set = PolicySet::from_sources(vec![("p.rego".into(), src.into())], RegoVersion::V1)?;
/// let errors = strict::check(set.engine().clone().get_modules());
/// assert_eq!(errors[0].to_string(), "p.rego:3: rego_compile_error: assigned var x unused");
/// # Ok::<(), policy_core::Error>(())
/// ```
pub fn check(modules: &[regorus::unstable::Ref<Module>]) -> Vec<CompileError> {
    let mut errors = Vec::new();
    for module in modules {
        check_module(module, &mut errors);
    }
    errors.sort();
    errors
}

fn check_module(module: &Module, errors: &mut Vec<CompileError>) {
    let file = module.package.span.source.file().clone();
    let err = |line: u32, kind: &'static str, message: String| CompileError {
        file: file.clone(),
        line,
        kind,
        message,
    };

    // Imports: duplicates, then unused ones.
    let mut seen: BTreeMap<String, &Import> = BTreeMap::new();
    for import in &module.imports {
        let Some(name) = import_name(import) else {
            continue;
        };
        if let Some(first) = seen.get(&name) {
            errors.push(err(
                import.span.line,
                COMPILE_ERROR,
                format!("import must not shadow {}", import_text(first)),
            ));
        } else {
            seen.insert(name, import);
        }
    }
    let mut used_names = NameCounter::default();
    let mut data_refs: BTreeSet<String> = BTreeSet::new();
    for rule in &module.policy {
        walk_rule(rule, &mut |e| {
            used_names.expr(e);
            if matches!(e, Expr::RefDot { .. } | Expr::RefBrack { .. }) {
                data_refs.insert(e.span().text().to_owned());
            }
        });
    }
    for import in &module.imports {
        let root = ref_parts(&import.refr)
            .and_then(|p| p.into_iter().next())
            .unwrap_or_default();
        if root == "future" || root == "rego" {
            continue;
        }
        // The compile stage spells `alias.x` out as the imported path
        // (`import_refs`), so a ref under that path is a use too.
        let path = import.refr.span().text();
        let spelled_out = data_refs.iter().any(|r| {
            r.strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
        if let Some(name) = import_name(import)
            && used_names.count(&name) == 0
            && !spelled_out
        {
            errors.push(err(
                import.span.line,
                COMPILE_ERROR,
                format!("{} unused", import_text(import)),
            ));
        }
    }

    let functions = user_functions(module);
    for rule in &module.policy {
        // Rules named after a root document.
        if let Some(name) = rule_name(rule)
            && (name == "input" || name == "data")
        {
            errors.push(err(
                rule.span().line,
                COMPILE_ERROR,
                format!("rules must not shadow {name} (use a different rule name)"),
            ));
        }
        // Deprecated builtins (unless a policy function has the name).
        walk_rule(rule, &mut |e| {
            if let Expr::Call { fcn, span, .. } = e
                && let Some(name) = ref_parts(fcn).map(|p| p.join("."))
                && DEPRECATED_BUILTINS.contains(&name.as_str())
                && !functions.contains(&name)
            {
                errors.push(err(
                    span.line,
                    TYPE_ERROR,
                    format!("deprecated built-in function calls in expression: {name}"),
                ));
            }
        });
        if let Rule::Spec { head, bodies, .. } = rule.as_ref() {
            let head_exprs = head_uses(head);
            for body in bodies {
                let mut uses: Vec<&Expr> = head_exprs.clone();
                if let Some(a) = &body.assign {
                    uses.push(&a.value);
                }
                check_scope(&body.query, &uses, &err, errors);
            }
            if let RuleHead::Func { args, span, .. } = head {
                let mut counter = NameCounter::default();
                for body in bodies {
                    walk_query(&body.query, &mut |e| counter.expr(e));
                    if let Some(a) = &body.assign {
                        walk_expr(&a.value, &mut |e| counter.expr(e));
                    }
                }
                for e in &head_exprs {
                    walk_expr(e, &mut |x| counter.expr(x));
                }
                let mut names = Vec::new();
                for arg in args {
                    walk_expr(arg, &mut |x| {
                        if let Some(n) = var_name(x)
                            && n != "_"
                            && !names.contains(&n)
                        {
                            names.push(n);
                        }
                    });
                }
                for name in names {
                    if counter.count(&name) == 0 {
                        errors.push(err(
                            span.line,
                            COMPILE_ERROR,
                            format!(
                                "unused argument {name}. (hint: use _ (wildcard variable) instead)"
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Checks one scope (a body, comprehension or `every` body): each variable
/// assigned with `:=` here must occur again in the scope, in a nested scope
/// or in `outer_uses` (the head, or a comprehension's term).
fn check_scope(
    query: &Query,
    outer_uses: &[&Expr],
    err: &impl Fn(u32, &'static str, String) -> CompileError,
    errors: &mut Vec<CompileError>,
) {
    let mut counter = NameCounter::default();
    walk_query(query, &mut |e| counter.expr(e));
    for e in outer_uses {
        walk_expr(e, &mut |x| counter.expr(x));
    }
    for stmt in &query.stmts {
        if let Some((_, lhs, _)) = declaration(stmt) {
            let mut assigned = Vec::new();
            walk_expr(lhs, &mut |x| {
                if let Some(n) = var_name(x)
                    && n != "_"
                {
                    assigned.push(n);
                }
            });
            for name in assigned {
                if name == "input" || name == "data" {
                    errors.push(err(
                        stmt.span.line,
                        COMPILE_ERROR,
                        format!("variables must not shadow {name} (use a different variable name)"),
                    ));
                } else if counter.count(&name) <= 1 {
                    errors.push(err(
                        stmt.span.line,
                        COMPILE_ERROR,
                        format!("assigned var {name} unused"),
                    ));
                }
            }
        }
        // Nested scopes.
        for_each_nested_scope(stmt, &mut |q, uses| check_scope(q, &uses, err, errors));
    }
}

/// Calls `f` with each comprehension or `every` body directly inside a
/// statement (not inside further nested scopes), and the expressions that
/// use its variables from outside it (the comprehension's term).
fn for_each_nested_scope<'a>(
    stmt: &'a regorus::unstable::LiteralStmt,
    f: &mut dyn FnMut(&'a Query, Vec<&'a Expr>),
) {
    match &stmt.literal {
        Literal::SomeVars { .. } => {}
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                nested_in_expr(k, f);
            }
            nested_in_expr(value, f);
            nested_in_expr(collection, f);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => nested_in_expr(expr, f),
        Literal::Every { domain, query, .. } => {
            nested_in_expr(domain, f);
            f(query, Vec::new());
        }
    }
    for w in &stmt.with_mods {
        nested_in_expr(&w.r#as, f);
    }
}

fn nested_in_expr<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Query, Vec<&'a Expr>)) {
    match e {
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            f(query, vec![term]);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => f(query, vec![key, value]),
        _ => children(e, &mut |c| nested_in_expr(c, f)),
    }
}

/// Counts occurrences of variable names.
#[derive(Default)]
struct NameCounter {
    counts: BTreeMap<String, usize>,
}

impl NameCounter {
    fn expr(&mut self, e: &Expr) {
        if let Some(n) = var_name(e) {
            *self.counts.entry(n).or_default() += 1;
        }
    }
    fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }
}

/// Expressions of a rule head that may use body variables.
fn head_uses(head: &RuleHead) -> Vec<&Expr> {
    let mut out: Vec<&Expr> = Vec::new();
    match head {
        RuleHead::Compr { refr, assign, .. } => {
            ref_indexes(refr, &mut out);
            if let Some(a) = assign {
                out.push(&a.value);
            }
        }
        RuleHead::Set { refr, key, .. } => {
            ref_indexes(refr, &mut out);
            if let Some(k) = key {
                out.push(k);
            }
        }
        RuleHead::Func { assign, .. } => {
            if let Some(a) = assign {
                out.push(&a.value);
            }
        }
    }
    out
}

/// The bracket indexes of a head ref (`p[x].q[y]` gives `x`, `y`).
fn ref_indexes<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::RefBrack { refr, index, .. } => {
            ref_indexes(refr, out);
            out.push(index);
        }
        Expr::RefDot { refr, .. } => ref_indexes(refr, out),
        _ => {}
    }
}

/// Names of the functions a module defines.
fn user_functions(module: &Module) -> Vec<String> {
    module
        .policy
        .iter()
        .filter_map(|r| match r.as_ref() {
            Rule::Spec {
                head: RuleHead::Func { refr, .. },
                ..
            } => ref_parts(refr).map(|p| p.join(".")),
            _ => None,
        })
        .collect()
}

/// The name a rule defines (the first part of its head).
pub(crate) fn rule_name(rule: &Rule) -> Option<String> {
    let refr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    ref_parts(refr).and_then(|p| p.into_iter().next())
}

/// The name an import binds: its alias, or its last path part.
fn import_name(import: &Import) -> Option<String> {
    match &import.r#as {
        Some(alias) => Some(alias.text().to_owned()),
        None => ref_parts(&import.refr).and_then(|p| p.last().cloned()),
    }
}

/// An import as OPA prints it: `import data.foo` or `import data.foo as bar`.
fn import_text(import: &Import) -> String {
    let path = ref_parts(&import.refr)
        .map_or_else(|| import.refr.span().text().to_owned(), |p| p.join("."));
    match &import.r#as {
        Some(alias) => format!("import {path} as {}", alias.text()),
        None => format!("import {path}"),
    }
}

/// The parts of a ref made of a variable and constant fields
/// (`data.lib.f` → `["data", "lib", "f"]`, `x["y"]` → `["x", "y"]`).
pub(crate) fn ref_parts(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Var { value, .. } => Some(vec![value.as_string().ok()?.to_string()]),
        Expr::RefDot { refr, field, .. } => {
            let mut parts = ref_parts(refr)?;
            parts.push(field.1.as_string().ok()?.to_string());
            Some(parts)
        }
        Expr::RefBrack { refr, index, .. } => match index.as_ref() {
            Expr::String { value, .. } | Expr::RawString { value, .. } => {
                let mut parts = ref_parts(refr)?;
                parts.push(value.as_string().ok()?.to_string());
                Some(parts)
            }
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn var_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// Calls `f` on every expression of a rule (head and bodies), outermost first.
pub(crate) fn walk_rule(rule: &Rule, f: &mut dyn FnMut(&Expr)) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    walk_expr(refr, f);
                    if let Some(a) = assign {
                        walk_expr(&a.value, f);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    walk_expr(refr, f);
                    if let Some(k) = key {
                        walk_expr(k, f);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    walk_expr(refr, f);
                    args.iter().for_each(|a| walk_expr(a, f));
                    if let Some(a) = assign {
                        walk_expr(&a.value, f);
                    }
                }
            }
            for body in bodies {
                if let Some(a) = &body.assign {
                    walk_expr(&a.value, f);
                }
                walk_query(&body.query, f);
            }
        }
        Rule::Default {
            refr, args, value, ..
        } => {
            walk_expr(refr, f);
            args.iter().for_each(|a| walk_expr(a, f));
            walk_expr(value, f);
        }
    }
}

/// Calls `f` on every expression of a query, nested queries included.
pub(crate) fn walk_query(q: &Query, f: &mut dyn FnMut(&Expr)) {
    for s in &q.stmts {
        match &s.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    walk_expr(k, f);
                }
                walk_expr(value, f);
                walk_expr(collection, f);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk_expr(expr, f),
            Literal::Every { domain, query, .. } => {
                walk_expr(domain, f);
                walk_query(query, f);
            }
        }
        for w in &s.with_mods {
            walk_expr(&w.refr, f);
            walk_expr(&w.r#as, f);
        }
    }
}

/// Calls `f` on an expression and everything inside it, nested queries included.
pub(crate) fn walk_expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match e {
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            walk_expr(term, f);
            walk_query(query, f);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => {
            walk_expr(key, f);
            walk_expr(value, f);
            walk_query(query, f);
        }
        _ => children(e, &mut |c| walk_expr(c, f)),
    }
}

/// Calls `f` on the direct sub-expressions of `e`, comprehensions excepted.
fn children<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().for_each(|i| f(i)),
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                f(k);
                f(v);
            }
        }
        Expr::Call { fcn, params, .. } => {
            f(fcn);
            params.iter().for_each(|p| f(p));
        }
        Expr::UnaryExpr { expr, .. } => f(expr),
        Expr::RefDot { refr, .. } => f(refr),
        Expr::RefBrack { refr, index, .. } => {
            f(refr);
            f(index);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            f(lhs);
            f(rhs);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                f(k);
            }
            f(value);
            f(collection);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicySet, RegoVersion};

    fn errors(src: &str) -> Vec<String> {
        let set = PolicySet::from_sources(vec![("p.rego".into(), src.into())], RegoVersion::V1)
            .unwrap_or_else(|e| panic!("{e}"));
        check(set.engine().clone().get_modules())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn unused_assignments_and_arguments() {
        let src = "package p\n\nallow if {\n  a := 1\n  b := 2\n  x := {\"k\": a}\n  input.z\n}\n\nf(x, y) := x if {\n  input.q\n} else := false if {\n  input.r\n}\n";
        assert_eq!(
            errors(src),
            vec![
                "p.rego:5: rego_compile_error: assigned var b unused",
                "p.rego:6: rego_compile_error: assigned var x unused",
                "p.rego:10: rego_compile_error: unused argument y. (hint: use _ (wildcard variable) instead)",
            ]
        );
    }

    #[test]
    fn uses_in_heads_and_comprehensions_count() {
        let src = "package p\n\nr := v if {\n  v := 1\n}\n\ns contains m if {\n  m := 2\n}\n\nt := [y | some z in input.l; y := z]\n\ng(a, _) := b if {\n  b := a\n}\n";
        assert_eq!(errors(src), Vec::<String>::new());
    }

    #[test]
    fn imports_shadowing_and_deprecated_calls() {
        let src = "package p\n\nimport data.lib.x\nimport data.other.x\nimport data.unused\n\nq if {\n  any([input.a])\n  x.y\n}\n";
        assert_eq!(
            errors(src),
            vec![
                "p.rego:4: rego_compile_error: import must not shadow import data.lib.x",
                "p.rego:5: rego_compile_error: import data.unused unused",
                "p.rego:8: rego_type_error: deprecated built-in function calls in expression: any",
            ]
        );
    }
}
