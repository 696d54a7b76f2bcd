//! Pass `bodiless_heads`: a v1 function head on its own is `true`.
//!
//! OPA 1.x reads a function head with neither body nor value
//! (`_is_name("var", 0)` on its own line) as a definition whose value is
//! `true` for those arguments; Regal writes its small fact tables that way.
//! regorus refuses it ("rule must have a body or assignment"), and with it
//! the whole module. ` := true` is appended to such a head; no line moves.
//!
//! A head is recognised on the tokens: at the top level, a name (or dotted
//! name) that starts a statement, then `(…)`, then nothing more on that
//! line, the next statement starting on a later line with something that
//! cannot continue a head (`:=`, `=`, `if`, `{`, `else`, `contains`).

use regorus::unstable::TokenKind;

use super::text::{Edit, KEYWORDS, TokenTable};

/// Tokens that continue a head when they open the next line.
const CONTINUATIONS: &[&str] = &[":=", "=", "if", "{", "else", "contains", "."];

pub(crate) fn edits(table: &TokenTable) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut i = 0;
    while i < table.len() {
        let Some(head) = table.tok(i) else { break };
        let starts = i == 0
            || table
                .tok(i - 1)
                .is_some_and(|p| p.end_line < head.line && p.ends_term());
        if table.level(i) != 0
            || head.kind != TokenKind::Ident
            || KEYWORDS.contains(&head.text.as_str())
            || !starts
        {
            i += 1;
            continue;
        }
        // name(.name)* then `(`
        let mut j = i;
        while table.is(j + 1, ".") && table.tok(j + 2).is_some_and(|t| t.kind == TokenKind::Ident) {
            j += 2;
        }
        let open = j + 1;
        if !table.is(open, "(") {
            i += 1;
            continue;
        }
        let Some(close) = table.partner(open) else {
            i += 1;
            continue;
        };
        let Some(close_tok) = table.tok(close) else {
            break;
        };
        let alone = match table.tok(close + 1) {
            None => true,
            Some(next) => {
                next.line > close_tok.end_line && !CONTINUATIONS.contains(&next.text.as_str())
            }
        };
        if alone {
            edits.push(Edit::insert(close_tok.end, " := true"));
        }
        i = close + 1;
    }
    edits
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use regorus::{Engine, Value};

    fn eval(src: &str, query: &str) -> Value {
        let mut e = Engine::new();
        e.add_policy("t.rego".into(), prepare(src, true)).unwrap();
        let r = e.eval_query(query.to_owned(), false).unwrap();
        r.result
            .first()
            .and_then(|r| r.expressions.first())
            .map_or(Value::Undefined, |x| x.value.clone())
    }

    const FACTS: &str = "package t\n\n_is_name(\"var\", 0)\n_is_name(\"string\", pos) if pos > 0\n\n\
                         kw([\"future\", \"keywords\"], _)\nkw([\"future\", \"keywords\", k], k)\n";

    #[test]
    fn a_head_alone_is_true() {
        assert_eq!(
            prepare(FACTS, true),
            "package t\n\n_is_name(\"var\", 0) := true\n_is_name(\"string\", pos) if pos > 0\n\n\
             kw([\"future\", \"keywords\"], _) := true\nkw([\"future\", \"keywords\", k], k) := true\n"
        );
        assert_eq!(
            eval(FACTS, "data.t._is_name(\"var\", 0)"),
            Value::from(true)
        );
        assert_eq!(
            eval(FACTS, "data.t._is_name(\"string\", 2)"),
            Value::from(true)
        );
        assert_eq!(
            eval(FACTS, "x := data.t._is_name(\"var\", 1)"),
            Value::Undefined
        );
        assert_eq!(
            eval(
                FACTS,
                "data.t.kw([\"future\", \"keywords\", \"in\"], \"in\")"
            ),
            Value::from(true)
        );
    }

    #[test]
    fn calls_in_bodies_and_continued_heads_stay() {
        let src = "package t\n\np if\n\tstartswith(input.x, \"a\")\n\nq := v if {\n\tv := count([1])\n}\n\nf(x)\n\t:= x\n";
        assert_eq!(prepare(src, true), src);
    }
}
