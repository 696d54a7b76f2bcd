//! Pass `rule_shadowing`: a `some` declaration shadows a rule of the same
//! name.
//!
//! In OPA `some t` (or `some t in C`) declares a local `t` for its query
//! even when the package has a rule `t`: every `t` in that query, in its
//! comprehensions and in the head it binds, is the local. regorus resolves
//! the name to the rule instead (regula's `some resource_type;
//! taggable_resource_types[resource_type]` read the rule
//! `resource_type = "MULTIPLE"` and found nothing), or rejects the query
//! (`var t used before definition`). The local is renamed
//! (`__regard_local_t`) over the range where OPA resolves to it: the whole
//! rule when every body of the rule declares it, the comprehension when a
//! comprehension's own query does.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead, Span};

use super::ast::{AstVisitor, rule_name, rule_ref, walk_expr, walk_rule};
use super::text::Edit;

pub(crate) fn edits(_src: &str, module: &Module) -> Vec<Edit> {
    let rules: BTreeSet<String> = module
        .policy
        .iter()
        .filter(|r| !is_function(r))
        .filter_map(|r| rule_name(r))
        .collect();
    if rules.is_empty() {
        return Vec::new();
    }
    let mut edits: Vec<Edit> = Vec::new();
    let mut renamed: BTreeSet<usize> = BTreeSet::new();
    for rule in &module.policy {
        let Rule::Spec { span, bodies, .. } = rule.as_ref() else {
            continue;
        };
        let mut scopes = Scopes::default();
        // A name every body declares is the local throughout the rule,
        // head included.
        let mut per_body = bodies
            .iter()
            .map(|b| declared(&b.query, &rules))
            .collect::<Vec<_>>()
            .into_iter();
        if let Some(first) = per_body.next() {
            let common: BTreeSet<String> = per_body.fold(first, |acc, d| &acc & &d);
            for name in common {
                scopes
                    .ranges
                    .push((name, span.start as usize, span.end as usize));
            }
        }
        let mut finder = ComprehensionScopes {
            rules: &rules,
            scopes: &mut scopes,
        };
        walk_rule(rule, &mut finder);
        if scopes.ranges.is_empty() {
            continue;
        }
        let mut occurrences = Occurrences::default();
        walk_rule(rule, &mut occurrences);
        let head_name = head_name_start(rule);
        for (name, start, end) in occurrences.found {
            if Some(start) == head_name {
                continue;
            }
            let in_scope = scopes
                .ranges
                .iter()
                .any(|(n, s, e)| *n == name && *s <= start && end <= *e);
            if in_scope && renamed.insert(start) {
                edits.push(Edit::replace(start, end, local_name(&name)));
            }
        }
    }
    edits
}

fn is_function(rule: &Rule) -> bool {
    match rule {
        Rule::Spec { head, .. } => matches!(head, RuleHead::Func { .. }),
        Rule::Default { args, .. } => !args.is_empty(),
    }
}

/// Where the root name of a rule's head is written (never renamed).
fn head_name_start(rule: &Rule) -> Option<usize> {
    let mut e = rule_ref(rule);
    loop {
        match e {
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => e = refr.as_ref(),
            Expr::Var { span, .. } => return Some(span.start as usize),
            _ => return None,
        }
    }
}

fn local_name(name: &str) -> String {
    format!("__regard_local_{name}")
}

/// Names of rules a query declares with `some` (not looking into nested
/// queries).
fn declared(q: &Query, rules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for stmt in &q.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                names.extend(vars.iter().map(|v| v.text().to_owned()));
            }
            Literal::SomeIn { key, value, .. } => {
                for e in key.iter().chain([value]) {
                    let mut v = Occurrences::default();
                    walk_expr(e, &mut v);
                    names.extend(v.found.into_iter().map(|(n, _, _)| n));
                }
            }
            _ => {}
        }
    }
    names.retain(|n| rules.contains(n));
    names
}

/// Ranges (name, start, end) where a name is a local.
#[derive(Default)]
struct Scopes {
    ranges: Vec<(String, usize, usize)>,
}

struct ComprehensionScopes<'a> {
    rules: &'a BTreeSet<String>,
    scopes: &'a mut Scopes,
}

impl AstVisitor for ComprehensionScopes<'_> {
    fn expr(&mut self, e: &Expr) -> bool {
        let (span, query): (&Span, &Query) = match e {
            Expr::ArrayCompr { span, query, .. }
            | Expr::SetCompr { span, query, .. }
            | Expr::ObjectCompr { span, query, .. } => (span, query),
            _ => return true,
        };
        for name in declared(query, self.rules) {
            self.scopes
                .ranges
                .push((name, span.start as usize, span.end as usize));
        }
        true
    }
}

/// Every variable occurrence, `some` declarations included.
#[derive(Default)]
struct Occurrences {
    found: Vec<(String, usize, usize)>,
}

impl AstVisitor for Occurrences {
    fn expr(&mut self, e: &Expr) -> bool {
        if let Expr::Var { span, .. } = e {
            self.found.push((
                span.text().to_owned(),
                span.start as usize,
                span.end as usize,
            ));
        }
        true
    }
    fn stmt(&mut self, s: &LiteralStmt) {
        if let Literal::SomeVars { vars, .. } = &s.literal {
            for v in vars {
                self.found
                    .push((v.text().to_owned(), v.start as usize, v.end as usize));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::prepare;
    use super::super::tests::eval_with;

    fn json(src: &str, rego_v1: bool) -> String {
        let v = eval_with(src, rego_v1, "{}");
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn some_declaration_shadows_a_rule_in_the_whole_rule() {
        let src = "package t\nx = \"X\"\ns = {\"a\", \"b\"}\np[x] { some x; s[x] }\n";
        assert_eq!(
            prepare(src, false),
            "package t\nx = \"X\"\ns = {\"a\", \"b\"}\n\
             p[__regard_local_x] { some __regard_local_x; s[__regard_local_x] }\n"
        );
        assert_eq!(json(src, false), r#"["a","b"]"#);
    }

    #[test]
    fn some_in_inside_a_comprehension_shadows_a_rule() {
        let src = "package t\nx := \"X\"\np := [x | some x in [\"a\"]]\n";
        assert!(!prepare(src, true).contains("[x |"));
        assert_eq!(json(src, true), r#"["a"]"#);
    }

    #[test]
    fn the_rule_stays_visible_where_no_local_is_declared() {
        let src = "package t\nx := \"X\"\np := [y, x] if {\n  y := [x | some x in [\"a\"]]\n}\n";
        assert_eq!(json(src, true), r#"[["a"],"X"]"#);
    }

    #[test]
    fn names_that_are_not_rules_are_left_alone() {
        let src = "package t\ns := {\"a\"}\np contains x if { some x; s[x] }\n";
        assert_eq!(prepare(src, true), src);
    }
}
