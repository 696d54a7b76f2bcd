//! Check `future_keywords` (Rego v0 only): rule heads that parse only with
//! a future keyword imported.
//!
//! In Rego v0, OPA's lexer knows `contains` and `if` as keywords only after
//! `import future.keywords.<kw>`, `import future.keywords` or `import
//! rego.v1`. Without one, `deny contains msg if { … }` and `allow if { … }`
//! do not parse: OPA takes `deny` (`allow`) for a statement of its own, and
//! a bare name is no rule ("var cannot be used for rule name"). regorus
//! reads `contains` as a keyword in v0 regardless, and takes a bare name for
//! a rule that is true (the `if { … }` after it becoming a rule named `if`),
//! so a v1 policy loaded with `--rego-version v0` ran where OPA and conftest
//! refuse it. [`check`] refuses `contains` heads at the token level;
//! [`check_bare_heads`] refuses bare names on the parsed module. A
//! `contains(…)` call, and `contains` or `if` as names, stay what they are.

use regorus::unstable::{Expr, Module, Rule, RuleHead, TokenKind};

use super::CompileError;
use super::text::{Tok, TokenTable};

/// The parse error OPA gives a v0 module that uses `contains` in a rule
/// head without importing the keyword, if any.
pub(crate) fn check(src: &str, table: &TokenTable) -> Result<(), CompileError> {
    if imports_keyword(table, "contains") {
        return Ok(());
    }
    for i in 0..table.len() {
        let Some(t) = table.tok(i) else { break };
        if t.kind != TokenKind::Ident
            || t.text != "contains"
            || table.level(i) != 0
            || !follows_head(table, i)
        {
            continue;
        }
        let next = table.tok(i + 1).map(|n| n.text.as_str());
        if matches!(next, None | Some("(" | ":=" | "=" | "." | "[")) {
            continue;
        }
        let head = table.tok(head_start(table, i)).unwrap_or(t);
        let (line, col) = position(src, head);
        return Err(CompileError {
            line,
            col,
            kind: "rego_parse_error",
            message: "`contains` is a keyword in Rego v0 only after `import \
                      future.keywords.contains`, `import future.keywords` or `import \
                      rego.v1` (without one, OPA does not parse this rule: var cannot be \
                      used for rule name)"
                .to_owned(),
        });
    }
    Ok(())
}

/// Whether the module imports keyword `kw`.
pub(crate) fn imports_keyword(table: &TokenTable, kw: &str) -> bool {
    (0..table.len()).any(|i| {
        let Some(t) = table.tok(i) else { return false };
        if table.level(i) != 0 || t.text != "import" {
            return false;
        }
        let path: String = (i + 1..table.len())
            .map_while(|j| {
                table
                    .tok(j)
                    .filter(|n| n.line == t.line && n.text != "import")
            })
            .map(|n| n.text.as_str())
            .collect();
        path == "future.keywords"
            || path == "rego.v1"
            || path.strip_prefix("future.keywords.") == Some(kw)
    })
}

/// Whether `if` stands between rules (where a head could be left bare).
pub(crate) fn uses_if(table: &TokenTable) -> bool {
    (0..table.len()).any(|i| table.level(i) == 0 && table.is(i, "if"))
}

/// The parse error OPA gives a v0 rule that is a bare name, with neither
/// value nor body (`allow` before an `if { … }` that was not imported).
pub(crate) fn check_bare_heads(module: &Module) -> Result<(), CompileError> {
    for rule in &module.policy {
        if let Rule::Spec { head, bodies, .. } = rule.as_ref()
            && let RuleHead::Compr {
                refr, assign: None, ..
            } = head
            && let Expr::Var { span, .. } = refr.as_ref()
            && bodies.is_empty()
        {
            return Err(CompileError {
                line: span.line,
                col: span.col,
                kind: "rego_parse_error",
                message: format!(
                    "var cannot be used for rule name (`{} if {{ … }}` needs `import \
                     future.keywords.if`, `import future.keywords` or `import rego.v1` in \
                     Rego v0)",
                    span.text()
                ),
            });
        }
    }
    Ok(())
}

/// Whether token `i` stands right after a rule head's name on its line
/// (`deny contains`, `a.b contains`), not after `default`, `as`, an
/// operator or the end of another statement.
fn follows_head(table: &TokenTable, i: usize) -> bool {
    let (Some(prev), Some(t)) = (i.checked_sub(1).and_then(|p| table.tok(p)), table.tok(i)) else {
        return false;
    };
    prev.end_line == t.line
        && prev.kind == TokenKind::Ident
        && !matches!(
            prev.text.as_str(),
            "package" | "import" | "as" | "default" | "not" | "some" | "with" | "else"
        )
}

/// The index of the first token of the head that token `i` (its
/// `contains`) belongs to: back along its line to the start of the statement.
fn head_start(table: &TokenTable, i: usize) -> usize {
    let line = table.tok(i).map_or(0, |t| t.line);
    let mut start = i;
    while let Some(p) = start.checked_sub(1) {
        let Some(prev) = table.tok(p) else { break };
        if prev.end_line != line || (table.level(p) == 0 && prev.text == ";") {
            break;
        }
        start = p;
    }
    start
}

/// The 1-based line and column of a token.
fn position(src: &str, tok: &Tok) -> (u32, u32) {
    let before = src.get(..tok.start).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count());
    (
        tok.line,
        u32::try_from(col).unwrap_or(u32::MAX).saturating_add(1),
    )
}

#[cfg(test)]
mod tests {
    use crate::rego::compile;

    const REFUSED: &str = "`contains` is a keyword in Rego v0 only after `import \
        future.keywords.contains`, `import future.keywords` or `import rego.v1` (without one, \
        OPA does not parse this rule: var cannot be used for rule name)";

    #[test]
    fn contains_without_import_is_refused_in_v0() {
        let src = "package main\n\ndeny contains msg if {\n  msg := \"x\"\n}\n";
        let err = compile(src, false).unwrap_err();
        assert_eq!(err.to_string(), format!("3: rego_parse_error: {REFUSED}"));
        let src = "package main\nx := 1; a.b contains 7\n";
        let err = compile(src, false).unwrap_err();
        assert_eq!(err.to_string(), format!("2: rego_parse_error: {REFUSED}"));
    }

    #[test]
    fn imports_make_contains_a_keyword() {
        for import in ["future.keywords", "future.keywords.contains", "rego.v1"] {
            let src = format!("package main\nimport {import}\ndeny contains \"x\"\n");
            assert_eq!(
                compile(&src, false).as_deref(),
                Ok(src.as_str()),
                "{import}"
            );
        }
        // Another keyword's import does not.
        let src = "package main\nimport future.keywords.if\ndeny contains \"x\"\n";
        assert!(compile(src, false).is_err());
    }

    #[test]
    fn a_bare_name_before_an_unimported_if_is_refused_in_v0() {
        let src = "package main\n\ntest_ok if {\n  true\n}\n";
        let err = compile(src, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3: rego_parse_error: var cannot be used for rule name (`test_ok if { … }` \
             needs `import future.keywords.if`, `import future.keywords` or `import rego.v1` \
             in Rego v0)"
        );
        // With the import, or after a head OPA reads as a rule of its own
        // (`p[x]`, `q = 1`), there is no error.
        let src = "package main\nimport future.keywords.if\ntest_ok if {\n  true\n}\n";
        assert_eq!(compile(src, false).as_deref(), Ok(src));
        let src = "package main\np[\"a\"] if { true }\nq = 1 if { true }\n";
        assert_eq!(compile(src, false).as_deref(), Ok(src));
    }

    #[test]
    fn contains_as_a_call_or_a_name_and_v1_are_untouched() {
        let src = "package main\n\
                   p { contains(\"abc\", \"b\") }\n\
                   default contains = false\n\
                   q = contains\n\
                   r := data.x.contains[0]\n";
        assert_eq!(compile(src, false).as_deref(), Ok(src));
        let src = "package main\ndeny contains \"x\"\n";
        assert_eq!(compile(src, true).as_deref(), Ok(src));
    }
}
