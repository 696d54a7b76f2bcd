//! Pass `head_iteration`: iteration in a partial set rule's key.
//!
//! `vols[input.spec.volumes[_].name]` is a rule whose key iterates. OPA
//! evaluates the key as part of the rule, so where the path is undefined
//! (no `volumes`) the rule is simply undefined; regorus evaluates the key
//! after the body and fails with "item cannot be indexed", and its compiled
//! path cannot iterate in a head at all. The key is bound at the end of the
//! body instead: `vols[__regard_key0] { __regard_key0 = input.spec.volumes[_].name }`.
//!
//! Keys that are object, array or set literals move the same way: regorus
//! reports two such definitions (`allowed[{"ns": "a"}]`, `allowed[{"ns": "b"}]`)
//! as conflicting rules when one is looked up by key, while OPA, for a set,
//! simply has both elements.

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::ast::{AstVisitor, stmt_end, walk_expr};
use super::fresh;
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut n = 0;
    for rule in &module.policy {
        // regorus reads a later body-less `p[{...}]` of a set rule as a
        // rule with a ref head (`p[{...}] = true`); both are set elements.
        let (refr, key, bodies) = match rule.as_ref() {
            Rule::Spec {
                head:
                    RuleHead::Set {
                        refr,
                        key: Some(key),
                        ..
                    },
                bodies,
                ..
            } => (refr, key, bodies),
            Rule::Spec {
                head: RuleHead::Compr {
                    refr, assign: None, ..
                },
                bodies,
                ..
            } if bodies.is_empty() && !module.rego_v1 => match refr.as_ref() {
                Expr::RefBrack { refr, index, .. } if matches!(refr.as_ref(), Expr::Var { .. }) => {
                    (refr, index, bodies)
                }
                _ => continue,
            },
            _ => continue,
        };
        let composite = matches!(
            key.as_ref(),
            Expr::Object { .. } | Expr::Array { .. } | Expr::Set { .. }
        );
        let range = if iterates(key) && !composite {
            Some((key.span().start as usize, key.span().end as usize))
        } else if composite && bodies.is_empty() {
            // regorus' spans of object literals do not cover the whole
            // literal: the key is found from the rule's own text instead.
            bodyless_key(src, refr.span().end as usize)
        } else {
            None
        };
        let Some((key_start, key_end)) = range else {
            continue;
        };
        let Some(key_text) = src.get(key_start..key_end) else {
            continue;
        };
        let key_text = super::text::one_line(key_text);
        if key_text.contains('`') {
            continue;
        }
        let var = fresh("key", n);
        n += 1;
        let binding = format!("{var} = {key_text}");
        let mut rule_edits = vec![Edit::replace(key_start, key_end, var.clone())];
        if bodies.is_empty() {
            let open = if module.rego_v1 { " if {" } else { " {" };
            // After the key's `]` (v0) or the key itself (v1); a rule's own
            // span may run on over the comments after it.
            let rest = src.get(key_end..).unwrap_or("");
            let trimmed = rest.trim_start();
            let at = match trimmed.strip_prefix(']') {
                Some(_) => key_end + (rest.len() - trimmed.len()) + 1,
                None => key_end,
            };
            rule_edits.push(Edit::insert(at, format!("{open} {binding} }}")));
        } else {
            for body in bodies {
                let q = &body.query;
                let braced = src
                    .get(q.span.start as usize..)
                    .is_some_and(|t| t.starts_with('{'));
                if braced {
                    let at = q
                        .stmts
                        .last()
                        .map_or(q.span.start as usize + 1, |s| stmt_end(src, s));
                    rule_edits.push(Edit::insert(at, format!("; {binding}")));
                } else {
                    // regorus starts a string literal's span after its
                    // opening quote: a body starting with one opens before it.
                    let start = q.span.start as usize;
                    let start = match src.get(..start).and_then(|b| b.chars().next_back()) {
                        Some('"' | '`') => start - 1,
                        _ => start,
                    };
                    rule_edits.push(Edit::insert(start, "{ "));
                    let at = q
                        .stmts
                        .last()
                        .map_or(q.span.end as usize, |s| stmt_end(src, s));
                    rule_edits.push(Edit::insert(at, format!("; {binding} }}")));
                }
            }
        }
        edits.extend(rule_edits);
    }
    edits
}

/// The key of a body-less set rule whose key is a composite literal: the
/// literal after the rule's name, in `[KEY]` (v0) or `contains KEY` (v1).
fn bodyless_key(src: &str, after_name: usize) -> Option<(usize, usize)> {
    let text = src.get(after_name..)?;
    let rest = text.trim_start();
    let mut at = after_name + (text.len() - rest.len());
    let rest = if let Some(r) = rest.strip_prefix('[') {
        at += 1;
        r
    } else {
        let r = rest.strip_prefix("contains")?;
        at += "contains".len();
        r
    };
    let literal = rest.trim_start();
    let start = at + (rest.len() - literal.len());
    Some((start, start + literal_len(literal)?))
}

/// The length of the bracketed literal `text` starts with (strings skipped).
fn literal_len(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' if q == '"' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '`' => quote = Some(c),
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

/// Whether a key expression iterates (holds a `_`).
fn iterates(key: &Expr) -> bool {
    struct Wildcard(bool);
    impl AstVisitor for Wildcard {
        fn expr(&mut self, e: &Expr) -> bool {
            if matches!(e, Expr::Var { span, .. } if span.text() == "_") {
                self.0 = true;
            }
            // Comprehensions in the key iterate on their own.
            !matches!(
                e,
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. }
            )
        }
    }
    let mut w = Wildcard(false);
    walk_expr(key, &mut w);
    w.0
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn bodyless_key_iteration_moves_into_a_body() {
        let src = "package t\np[input.spec.volumes[_].name]\n";
        assert_eq!(
            prepare(src, false),
            "package t\np[__regard_key0] { __regard_key0 = input.spec.volumes[_].name }\n"
        );
        assert_eq!(eval_with(src, false, r#"{"spec": {}}"#), Value::new_set());
        let v1 = "package t\np contains input.a[_]\n";
        assert_eq!(
            prepare(v1, true),
            "package t\np contains __regard_key0 if { __regard_key0 = input.a[_] }\n"
        );
        assert_eq!(eval_with(v1, true, r#"{"a": 3}"#), Value::new_set());
    }

    #[test]
    fn object_keys_move_into_a_body() {
        let src = "package t\nallowed[{\"ns\": \"a]\"}]\n\n# comment\nallowed[{\"ns\": \"b\"}]\n";
        assert_eq!(
            prepare(src, false),
            "package t\nallowed[__regard_key0] { __regard_key0 = {\"ns\": \"a]\"} }\n\n# comment\nallowed[__regard_key1] { __regard_key1 = {\"ns\": \"b\"} }\n"
        );
    }

    #[test]
    fn key_iteration_after_a_body() {
        let src = "package t\np contains x.a[_] if {\n  x := input.x\n}\nq contains input.b[_] if input.c\n";
        assert_eq!(
            prepare(src, true),
            "package t\np contains __regard_key0 if {\n  x := input.x; __regard_key0 = x.a[_]\n}\nq contains __regard_key1 if { input.c; __regard_key1 = input.b[_] }\n"
        );
    }

    #[test]
    fn an_unbraced_body_starting_with_a_string_opens_before_its_quote() {
        let src = "package t
n.all contains input.g[_][_] if \"lint\" in input.ops
";
        assert_eq!(
            prepare(src, true),
            "package t
n.all contains __regard_key0 if { \"lint\" in input.ops; __regard_key0 = input.g[_][_] }
"
        );
        let input = r#"{"g": {"a": {"b": 1}}, "ops": ["lint"]}"#;
        let mut e = regorus::Engine::new();
        e.add_policy("t.rego".into(), prepare(src, true)).unwrap();
        e.set_input(Value::from_json_str(input).unwrap());
        let want = Value::from(std::collections::BTreeSet::from([Value::from(1)]));
        assert_eq!(e.eval_rule("data.t.n.all".into()).unwrap(), want);
    }
}
