//! Pass `layout`: a newline before `(` or `[` ends the statement.
//!
//! In OPA a call or a ref must touch the term before it, so
//! `input.a⏎(input.b - 1) >= 1` is two statements; regorus continues the
//! term and reads a call. A `;` is inserted where OPA sees the break.

use regorus::unstable::TokenKind;

use super::text::{Edit, TokenTable};

pub(crate) fn edits(table: &TokenTable) -> Vec<Edit> {
    let mut edits = Vec::new();
    for i in 1..table.len() {
        let (Some(prev), Some(tok)) = (table.tok(i - 1), table.tok(i)) else {
            continue;
        };
        if tok.kind == TokenKind::Symbol
            && matches!(tok.text.as_str(), "(" | "[")
            && tok.line > prev.end_line
            && prev.ends_term()
            && table.innermost(i) == Some('{')
        {
            edits.push(Edit::insert(prev.end, ";"));
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use crate::rego::tests::{eval, prepare_v0};
    use regorus::Value;

    #[test]
    fn newline_before_paren_ends_the_statement() {
        let src = "package t\np {\n  input.a\n  (input.b - 1) >= 1\n}\n";
        assert_eq!(
            prepare_v0(src),
            "package t\np {\n  input.a;\n  (input.b - 1) >= 1\n}\n"
        );
        assert_eq!(eval(src, r#"{"a": true, "b": 5}"#), Value::from(true));
        assert_eq!(eval(src, r#"{"a": true, "b": 1}"#), Value::Undefined);
    }

    #[test]
    fn the_break_goes_after_a_string_not_inside_it() {
        let src = "package t\np = n {\n  c := input[_]\n  c.cmd == \"arg\"\n  [n, _] = split(c.v, \"=\")\n}\n";
        assert_eq!(
            prepare_v0(src),
            "package t\np = n {\n  c := input[_]\n  c.cmd == \"arg\";\n  [n, _] = split(c.v, \"=\")\n}\n"
        );
        let raw = "package t\np = n {\n  c := input[_]\n  c.cmd == `arg`\n  [n, _] = split(c.v, \"=\")\n}\n";
        assert!(prepare_v0(raw).contains("c.cmd == `arg`;\n"));
        let input = r#"[{"cmd": "from", "v": "a=b"}, {"cmd": "arg", "v": "IMAGE=x"}]"#;
        assert_eq!(eval(src, input), Value::from("IMAGE"));
        assert_eq!(eval(raw, input), Value::from("IMAGE"));
    }

    #[test]
    fn call_on_the_same_line_is_untouched() {
        let src = "package t\np { x := count([1])\n y := [1][0] }\n";
        assert_eq!(prepare_v0(src), src);
        let args = "package t\np { f(\n 1) }\nf(x) { x }\n";
        assert_eq!(prepare_v0(args), args);
    }
}
