//! Pass `multi_body`: v0 rules with several bodies.
//!
//! `p[x] { A } { B }` defines `p` incrementally in OPA, one definition per
//! body, for every kind of rule; regorus accepts it only for complete rules
//! and functions ("else cannot be used with set rules"). The head is
//! repeated in front of each further body, on the same line, so line numbers
//! do not move.

use super::text::{Edit, TokenTable};

pub(crate) fn edits(src: &str, table: &TokenTable, rego_v1: bool) -> Vec<Edit> {
    let mut edits = Vec::new();
    if rego_v1 {
        return edits;
    }
    for i in 1..table.len() {
        if is_body_open(table, i)
            && table.is(i - 1, "}")
            && table.level(i - 1) == 0
            && table.partner(i - 1).is_some_and(|o| is_body_open(table, o))
            && let (Some(head), Some(tok)) = (rule_head_text(src, table, i - 1), table.tok(i))
        {
            edits.push(Edit::insert(tok.start, format!("{head} ")));
        }
    }
    edits
}

/// Whether token `i` opens a rule body: a top-level `{` that is not the
/// value of `=`/`:=` (`p = {"a": 1} { ... }` has a value literal, then a body).
fn is_body_open(table: &TokenTable, i: usize) -> bool {
    table.is(i, "{")
        && table.level(i) == 0
        && !(i > 0 && (table.is(i - 1, "=") || table.is(i - 1, ":=")))
}

/// The head of the rule whose body ends at token `close` (a top-level `}`),
/// on one line; `None` when the rule is an `else` chain or cannot be found.
fn rule_head_text(src: &str, table: &TokenTable, close: usize) -> Option<String> {
    // Walk back over the chain of bodies to the first one.
    let mut open = table.partner(close)?;
    while open > 0
        && table.is(open - 1, "}")
        && table.level(open - 1) == 0
        && table
            .partner(open - 1)
            .is_some_and(|o| is_body_open(table, o))
    {
        open = table.partner(open - 1)?;
    }
    // Walk back over the head: top-level tokens on the head's lines, with
    // bracketed groups skipped whole.
    let mut start = open;
    let mut j = open;
    while j > 0 {
        let k = j - 1;
        let t = table.tok(k)?;
        if table.level(k) == 0 && t.text == "else" {
            return None;
        }
        let body_end = t.text == "}" && table.partner(k).is_some_and(|o| is_body_open(table, o));
        if table.level(k) == 0 && body_end {
            break;
        }
        let first = if table.level(k) == 0 && matches!(t.text.as_str(), "]" | ")" | "}") {
            table.partner(k)?
        } else {
            k
        };
        if t.end_line < table.tok(start)?.line {
            break;
        }
        start = first;
        j = first;
    }
    if start == open {
        return None;
    }
    let text = src
        .get(table.tok(start)?.start..table.tok(open)?.start)?
        .trim_end();
    if text.contains('`') {
        return None;
    }
    Some(super::text::one_line(text))
}

#[cfg(test)]
mod tests {
    use crate::rego::tests::{compiles, eval, prepare_v0};
    use regorus::Value;

    #[test]
    fn multi_body_set_rule_becomes_one_rule_per_body() {
        let src = "package t\np[x] {\n  x := 1\n} {\n  x := 2\n}\n";
        assert_eq!(
            prepare_v0(src),
            "package t\np[x] {\n  x := 1\n} p[x] {\n  x := 2\n}\n"
        );
        let set: std::collections::BTreeSet<Value> = [Value::from(1), Value::from(2)].into();
        assert_eq!(eval(src, "{}"), Value::from(set));
    }

    #[test]
    fn multi_body_head_with_object_key() {
        let src = "package t\nviolation[{\"msg\": m}] { m := \"a\" } { m := \"b\" }\n";
        let out = prepare_v0(src);
        assert_eq!(
            out,
            "package t\nviolation[{\"msg\": m}] { m := \"a\" } violation[{\"msg\": m}] { m := \"b\" }\n"
        );
        assert!(compiles(&out, false));
    }

    #[test]
    fn value_literal_then_body_is_one_body() {
        let src = "package t\nf(x) = {\"a\": y} {\n  y := x\n}\nf(x) = {\"a\": 1} { x }\n";
        assert_eq!(prepare_v0(src), src);
        let multi = "package t\np = {\"a\": 1} { false } { true }\n";
        assert_eq!(
            prepare_v0(multi),
            "package t\np = {\"a\": 1} { false } p = {\"a\": 1} { true }\n"
        );
        assert!(compiles(&prepare_v0(multi), false));
    }

    #[test]
    fn else_chains_are_left_alone() {
        let src = "package t\np = 1 { false } else = 2 { true }\n";
        assert_eq!(prepare_v0(src), src);
    }
}
