//! Cheap text checks that tell whether a pass could apply to a module, so
//! that the stage lexes and parses only the modules that need it. Each
//! check is conservative: it may say yes where no pass changes anything,
//! never no where one would.

/// Whether a token pass could apply: a line starting with `(` or `[` (a
/// statement break OPA sees), `} {` (v0 rule bodies, v0 only), an
/// `import` after the first rule, or (v1) an unindented line that ends with
/// `)` (a function head without body).
pub(crate) fn token_passes(src: &str, rego_v1: bool) -> bool {
    let mut in_header = true;
    for line in src.lines() {
        let t = line.trim_start();
        if t.starts_with('(') || t.starts_with('[') {
            return true;
        }
        if rego_v1 && bare_head(line) {
            return true;
        }
        if !rego_v1 && has_body_pair(line) {
            return true;
        }
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let is_header = t.starts_with("package") || t.starts_with("import");
        if in_header && !is_header {
            in_header = false;
        } else if !in_header && t.starts_with("import") && t[6..].starts_with([' ', '\t']) {
            return true;
        }
    }
    // A v0 body opened at the start of a line, after a body on an earlier one.
    !rego_v1 && src.lines().any(|l| l.trim_start().starts_with('{'))
}

/// An unindented `name(…)` line (a dotted name right before `(`) with
/// nothing after the `)` but a comment.
fn bare_head(line: &str) -> bool {
    if !line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return false;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    // A `#` may start a comment or sit in a string: either way, say yes.
    line[name_end..].starts_with('(') && (line.trim_end().ends_with(')') || line.contains('#'))
}

/// `}` followed by optional blanks and `{` on one line.
fn has_body_pair(line: &str) -> bool {
    line.match_indices('}')
        .any(|(i, _)| line[i + 1..].trim_start().starts_with('{'))
}

/// Whether an AST pass could apply: `not`, `some`, a comprehension (`|`),
/// a `data` import, a `walk` call, an `else`, a wildcard in brackets, a composite rule key, a variable unified
/// with a ref indexed by it, a `:=` declaration with brackets somewhere, `with`, a regex
/// builtin near a Perl class escape, or `every`.
pub(crate) fn ast_passes(src: &str) -> bool {
    has_word(src, "not")
        || src.contains("walk(")
        || has_word(src, "else")
        || src.contains("import data.")
        || has_word(src, "some")
        || src.contains('|')
        || src.contains("[_]")
        || src.contains("[ _")
        || src.contains("[{")
        || src.contains("[[")
        || src.contains("contains {")
        || src.contains("contains [")
        || self_unification(src)
        || (src.contains(":=") && src.contains('['))
        || has_word(src, "with")
        || perl_class_in_pattern(src)
        || has_word(src, "every")
}

/// A regex builtin and a Perl class escape (`\d`, `\w`, `\s`, `\b`, negated too).
fn perl_class_in_pattern(src: &str) -> bool {
    (src.contains("regex.") || src.contains("re_match"))
        && src
            .as_bytes()
            .windows(2)
            .any(|w| matches!(w, [b'\\', c] if b"dDwWsSbB".contains(c)))
}

/// Whether the word `contains` or `if` occurs (the v0 keyword checks may apply).
pub(crate) fn v0_keywords(src: &str) -> bool {
    has_word(src, "contains") || has_word(src, "if")
}

fn has_word(src: &str, word: &str) -> bool {
    src.match_indices(word).any(|(i, _)| {
        let before = src[..i].chars().next_back();
        let after = src[i + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `x = ...[x]...` on one line, for a plain `=`.
fn self_unification(src: &str) -> bool {
    src.lines().any(|line| {
        line.match_indices('=').any(|(i, _)| {
            let prev = line[..i].chars().next_back();
            let next = line[i + 1..].chars().next();
            if matches!(prev, Some(':' | '!' | '<' | '>' | '=')) || next == Some('=') {
                return false;
            }
            let lhs: String = line[..i]
                .trim_end()
                .chars()
                .rev()
                .take_while(|c| is_ident(*c))
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let rhs_first: String = line[i + 1..]
                .trim_start()
                .chars()
                .take_while(|c| is_ident(*c))
                .collect();
            [lhs, rhs_first].iter().any(|v| {
                !v.is_empty() && line[i + 1..].contains(&format!("[{v}]"))
                    || !v.is_empty() && line[..i].contains(&format!("[{v}]"))
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers() {
        assert!(!token_passes(
            "package p\nimport rego.v1\np if input.x\n",
            true
        ));
        assert!(token_passes(
            "package p\np if input.x\nimport rego.v1\n",
            true
        ));
        assert!(token_passes("package p\np {\n  x\n  (1)\n}\n", false));
        assert!(token_passes(
            "package p\np[x] { x := 1 } { x := 2 }\n",
            false
        ));
        assert!(!ast_passes("package p\np if input.x == 1\n"));
        assert!(ast_passes("package p\np if not input.x\n"));
        assert!(ast_passes("package p\np[c] { c = cs[c] }\n"));
        assert!(!ast_passes("package p\nnothing := 1\n"));
    }
}
