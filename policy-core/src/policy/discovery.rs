//! What each compiled module defines: its package and its rules, with the
//! source lines conftest-style reports need. Read from regorus' AST once
//! after compilation.

use regorus::unstable::{Expr, Module, Rule, RuleHead};
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
            ModuleInfo {
                file,
                package,
                rego_v1: m.rego_v1,
                rules,
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
