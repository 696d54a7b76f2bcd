//! What each compiled module defines: its package and its rules, with the
//! source lines conftest-style reports need. Read from regorus' AST once
//! after compilation.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};
use regorus::{Rc, Value};

/// One loaded Rego module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The file it came from.
    pub file: String,
    /// Its package, without the `data.` prefix (`main`, `k8s.pods`).
    pub package: String,
    /// Whether it was parsed as Rego v1.
    pub rego_v1: bool,
    /// Its rules in source order (functions excluded).
    pub rules: Vec<RuleInfo>,
    /// The lines regorus' coverage report would list for this module (the
    /// lines of expressions in rule heads and bodies). regorus reports
    /// nothing for a module no evaluation touched, so coverage uses this
    /// set as that module's "not covered" lines.
    pub coverable_lines: Vec<u32>,
}

/// One rule definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// The rule's name; empty for a multi-part ref head such as `a.b.c`.
    pub name: String,
    /// 1-based line of the definition.
    pub line: u32,
    /// How many definitions it counts as: one per body (`p { } { }` is two),
    /// one for a `default` rule.
    pub definitions: usize,
    /// A Rego v1 `name[key] if { ... }` rule: a partial object, which is
    /// almost always a mistaken partial set (conftest refuses these for
    /// deny/warn rules).
    pub object_ref_head: bool,
}

/// The reference `data.<package>.<rule>` as OPA prints it: a component
/// that is not an identifier is quoted in brackets
/// (`data.regal.rules.bugs["leaked-internal-reference"].report`), so the
/// text is also a valid query. `package` is dotted, as [`ModuleInfo`]
/// holds it; an empty `rule` gives the package's own reference.
///
/// ```
/// use policy_core::policy::data_ref;
/// assert_eq!(data_ref("main", "deny"), "data.main.deny");
/// assert_eq!(data_ref("rules.my-check_test", "test_a"), r#"data.rules["my-check_test"].test_a"#);
/// assert_eq!(data_ref("rules.my-check_test", ""), r#"data.rules["my-check_test"]"#);
/// ```
pub fn data_ref(package: &str, rule: &str) -> String {
    let parts = package.split('.').chain(std::iter::once(rule));
    ref_text("data", parts.filter(|p| !p.is_empty()))
}

/// A reference as OPA prints it: `base`, then each part as `.name` when it
/// is an identifier and `["…"]` otherwise; after an empty `base` the first
/// name has no dot.
///
/// ```
/// use policy_core::policy::ref_text;
/// assert_eq!(ref_text("data", ["a", "b-c", "d"]), r#"data.a["b-c"].d"#);
/// assert_eq!(ref_text("", ["a", "b"]), "a.b");
/// ```
pub fn ref_text<'a>(base: &str, parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(base);
    for part in parts {
        let ident = part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ident {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        } else {
            out.push('[');
            out.push_str(&serde_json::to_string(part).unwrap_or_default());
            out.push(']');
        }
    }
    out
}

pub(crate) fn describe(modules: &[regorus::unstable::Ref<Module>]) -> Vec<ModuleInfo> {
    modules
        .iter()
        .map(|m| {
            let file = m.package.span.source.file().clone();
            let package = ref_path(&m.package.refr)
                .map(|mut parts| {
                    if parts.first().is_some_and(|p| p == "data") {
                        parts.remove(0);
                    }
                    parts.join(".")
                })
                .unwrap_or_default();
            let rules = m
                .policy
                .iter()
                .filter_map(|r| rule_info(r, m.rego_v1))
                .collect();
            let mut lines = BTreeSet::new();
            for rule in &m.policy {
                rule_lines(rule, &mut lines);
            }
            ModuleInfo {
                file,
                package,
                rego_v1: m.rego_v1,
                rules,
                coverable_lines: lines.into_iter().collect(),
            }
        })
        .collect()
}

fn rule_info(rule: &Rule, rego_v1: bool) -> Option<RuleInfo> {
    match rule {
        Rule::Default { span, refr, .. } => Some(RuleInfo {
            name: var_name(refr).unwrap_or_default(),
            line: span.line,
            definitions: 1,
            object_ref_head: false,
        }),
        Rule::Spec { span, head, bodies } => {
            let definitions = bodies.iter().filter(|b| !b.is_else).count().max(1);
            let (name, object_ref_head) = match head {
                RuleHead::Func { .. } => return None,
                RuleHead::Set { refr, .. } => (var_name(refr).unwrap_or_default(), false),
                RuleHead::Compr { refr, assign, .. } => match var_name(refr) {
                    Some(n) => (n, false),
                    None => match refr.as_ref() {
                        // `deny[x] if { ... }` in v1: a partial object whose values are `true`.
                        Expr::RefBrack { refr: base, .. } if rego_v1 && assign.is_none() => {
                            (var_name(base).unwrap_or_default(), true)
                        }
                        _ => (String::new(), false),
                    },
                },
            };
            Some(RuleInfo {
                name,
                line: span.line,
                definitions,
                object_ref_head,
            })
        }
    }
}

fn var_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

fn ref_path(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::Var { value, .. } => Some(vec![value.as_string().ok()?.to_string()]),
        Expr::RefDot { refr, field, .. } => {
            let mut parts = ref_path(refr)?;
            parts.push(field.1.as_string().ok()?.to_string());
            Some(parts)
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut parts = ref_path(refr)?;
            match index.as_ref() {
                Expr::String { value, .. } | Expr::RawString { value, .. } => {
                    parts.push(string(value)?);
                }
                _ => return None,
            }
            Some(parts)
        }
        _ => None,
    }
}

fn string(v: &Value) -> Option<String> {
    v.as_string().ok().map(|s: &Rc<str>| s.to_string())
}

// Mirrors which expressions regorus' coverage report visits (heads' values
// and keys, body statements, comprehension queries but not the
// comprehension's own line), so figures for untouched files agree with
// figures for touched ones.
fn rule_lines(rule: &Rule, lines: &mut BTreeSet<u32>) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    if let Some(a) = assign {
                        expr_lines(&a.value, lines);
                    }
                }
                RuleHead::Set { key, .. } => {
                    if let Some(k) = key {
                        expr_lines(k, lines);
                    }
                }
            }
            for body in bodies {
                query_lines(&body.query, lines);
            }
        }
        Rule::Default { value, .. } => expr_lines(value, lines),
    }
}

fn query_lines(query: &Query, lines: &mut BTreeSet<u32>) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                value, collection, ..
            } => {
                expr_lines(value, lines);
                expr_lines(collection, lines);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => expr_lines(expr, lines),
            Literal::Every { domain, query, .. } => {
                expr_lines(domain, lines);
                query_lines(query, lines);
            }
        }
    }
}

fn expr_lines(expr: &Expr, lines: &mut BTreeSet<u32>) {
    match expr {
        Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } => {
            query_lines(query, lines);
            return;
        }
        _ => {}
    }
    lines.insert(expr.span().line);
    match expr {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| expr_lines(i, lines));
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                expr_lines(k, lines);
                expr_lines(v, lines);
            }
        }
        Expr::Call { params, .. } => params.iter().for_each(|p| expr_lines(p, lines)),
        Expr::UnaryExpr { expr, .. } | Expr::RefDot { refr: expr, .. } => expr_lines(expr, lines),
        Expr::RefBrack { refr, index, .. } => {
            expr_lines(refr, lines);
            expr_lines(index, lines);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            expr_lines(lhs, lines);
            expr_lines(rhs, lines);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                expr_lines(k, lines);
            }
            expr_lines(value, lines);
            expr_lines(collection, lines);
        }
        _ => {}
    }
}
