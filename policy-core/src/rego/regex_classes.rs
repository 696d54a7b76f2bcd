//! Pass `regex_classes`: Go's ASCII Perl classes in literal regex patterns.
//!
//! OPA compiles patterns with Go's `regexp` (RE2 syntax), where `\d`, `\w`,
//! `\s` and `\b` are ASCII: `[0-9]`, `[0-9A-Za-z_]`, `[\t\n\f\r ]` and an ASCII
//! word boundary. regorus compiles them with Rust's `regex`, where they are
//! Unicode classes: `é` is a `\w` there and not in OPA, and a Unicode `\w`
//! compiles so large that three copies (`\w{3}`) pass regorus' 100 KiB limit,
//! so `regex.match("^\\w{3}$", x)` is an error instead of a match. This pass
//! rewrites each such class in a literal pattern of the regex builtins into
//! its ASCII spelling, inside and outside brackets (`[\w.-]` → `[0-9A-Za-z_.-]`,
//! `[\D]` → `[[^0-9]]`, a nested class Rust accepts). A pattern that is not a
//! literal (read from `input` or computed) is left to regard's `regex.*`
//! builtins, which give it the same meaning when they compile it
//! (`policy::builtins::go_regex`, on both evaluators).

use regorus::unstable::{Expr, Module};

use super::ast::{AstVisitor, walk_module};
use super::text::Edit;

/// The regex builtins and the (0-based) operand that is the pattern.
const PATTERN_OPERAND: &[(&str, usize)] = &[
    ("regex.match", 0),
    ("regex.is_valid", 0),
    ("regex.find_n", 0),
    ("regex.find_all_string_submatch_n", 0),
    ("regex.split", 0),
    ("regex.replace", 1),
    ("re_match", 0),
];

pub(crate) fn edits(_src: &str, module: &Module) -> Vec<Edit> {
    let mut finder = Finder { edits: Vec::new() };
    walk_module(module, &mut finder);
    finder.edits
}

struct Finder {
    edits: Vec<Edit>,
}

impl AstVisitor for Finder {
    fn expr(&mut self, e: &Expr) -> bool {
        let Expr::Call { fcn, params, .. } = e else {
            return true;
        };
        let name = fcn.span().text();
        let Some(&(_, at)) = PATTERN_OPERAND.iter().find(|(n, _)| *n == name.trim()) else {
            return true;
        };
        let Some(pattern) = params.get(at) else {
            return true;
        };
        match pattern.as_ref() {
            Expr::String { span, value, .. } => {
                // A string's span is its source text between the quotes; Rego
                // strings escape as JSON does.
                if let Ok(text) = value.as_string()
                    && let Some(ascii) = ascii_classes(text)
                    && let Ok(literal) = serde_json::to_string(&ascii)
                    && let Some(inner) = literal.get(1..literal.len() - 1)
                {
                    self.edits.push(Edit::replace(
                        span.start as usize,
                        span.end as usize,
                        inner.to_owned(),
                    ));
                }
            }
            Expr::RawString { span, value, .. } => {
                // A raw string's span is its text between the backquotes.
                if let Ok(text) = value.as_string()
                    && span.text() == text.as_ref()
                    && let Some(ascii) = ascii_classes(text)
                {
                    self.edits
                        .push(Edit::replace(span.start as usize, span.end as usize, ascii));
                }
            }
            _ => {}
        }
        true
    }
}

const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";
const SPACE: &str = "\\t\\n\\f\\r ";

/// The pattern with Go's meaning of `\d \D \w \W \s \S \b \B` spelled out,
/// or `None` when it has none of them.
pub(crate) fn ascii_classes(pattern: &str) -> Option<String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut changed = false;
    let mut chars = pattern.chars().peekable();
    // Inside `[...]`; `first` while a `]` would still be a literal (right
    // after `[` or `[^`).
    let mut in_class = false;
    let mut first = false;
    while let Some(c) = chars.next() {
        if c == '\\' {
            let Some(next) = chars.next() else {
                out.push(c);
                break;
            };
            let replacement = match (in_class, next) {
                (false, 'd') => Some(format!("[{DIGIT}]")),
                (false, 'D') => Some(format!("[^{DIGIT}]")),
                (false, 'w') => Some(format!("[{WORD}]")),
                (false, 'W') => Some(format!("[^{WORD}]")),
                (false, 's') => Some(format!("[{SPACE}]")),
                (false, 'S') => Some(format!("[^{SPACE}]")),
                (false, 'b') => Some("(?-u:\\b)".to_owned()),
                (false, 'B') => Some("(?-u:\\B)".to_owned()),
                (true, 'd') => Some(DIGIT.to_owned()),
                (true, 'w') => Some(WORD.to_owned()),
                (true, 's') => Some(SPACE.to_owned()),
                (true, 'D') => Some(format!("[^{DIGIT}]")),
                (true, 'W') => Some(format!("[^{WORD}]")),
                (true, 'S') => Some(format!("[^{SPACE}]")),
                _ => None,
            };
            match replacement {
                Some(r) => {
                    out.push_str(&r);
                    changed = true;
                }
                None => {
                    out.push(c);
                    out.push(next);
                }
            }
            first = false;
            continue;
        }
        out.push(c);
        if !in_class {
            if c == '[' {
                in_class = true;
                first = true;
            }
        } else if c == '^' && first && out.ends_with("[^") {
            // Still first: `[^]a]` holds a literal `]`.
        } else if c == ']' && !first {
            in_class = false;
        } else if c == '[' && chars.peek() == Some(&':') {
            // A POSIX class (`[:alpha:]`), copied through its `:]`.
            let mut prev = ' ';
            for d in chars.by_ref() {
                out.push(d);
                if prev == ':' && d == ']' {
                    break;
                }
                prev = d;
            }
            first = false;
        } else {
            first = false;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::ascii_classes;
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;
    use regorus::Value;

    #[test]
    fn perl_classes_become_ascii_inside_and_outside_brackets() {
        let cases = [
            (r"^\d+$", Some(r"^[0-9]+$")),
            (r"^\w{3}$", Some(r"^[0-9A-Za-z_]{3}$")),
            (r"\s\S", Some(r"[\t\n\f\r ][^\t\n\f\r ]")),
            (r"[\w.-]+", Some(r"[0-9A-Za-z_.-]+")),
            (r"[^\d]", Some(r"[^0-9]")),
            (r"[\D]", Some(r"[[^0-9]]")),
            (r"\bword\b", Some(r"(?-u:\b)word(?-u:\b)")),
            (r"[]\d]", Some(r"[]0-9]")),
            (r"[[:alpha:]\d]", Some(r"[[:alpha:]0-9]")),
            (r"\\d", None),
            (r"\.\*[a-z]", None),
            (r"\p{L}+", None),
        ];
        for (pattern, want) in cases {
            assert_eq!(ascii_classes(pattern).as_deref(), want, "{pattern}");
        }
    }

    #[test]
    fn literal_patterns_of_the_regex_builtins_are_rewritten() {
        let src = "package t\nimport rego.v1\n\
                   a if regex.match(`^\\w{3}$`, input.a)\n\
                   b if regex.match(\"^\\\\d+$\", input.b)\n\
                   c := regex.replace(input.c, `\\s+`, \"-\")\n\
                   d if regex.match(input.p, \"x\")\n";
        assert_eq!(
            prepare(src, true),
            "package t\nimport rego.v1\n\
             a if regex.match(`^[0-9A-Za-z_]{3}$`, input.a)\n\
             b if regex.match(\"^[0-9]+$\", input.b)\n\
             c := regex.replace(input.c, `[\\t\\n\\f\\r ]+`, \"-\")\n\
             d if regex.match(input.p, \"x\")\n"
        );
    }

    #[test]
    fn bounded_word_classes_match_as_in_opa() {
        let src = "package t\nimport rego.v1\n\
                   p := [\n\
                     regex.match(`^\\w{3}$`, \"abc\"),\n\
                     regex.match(`^\\w{3}$`, \"abé\"),\n\
                     regex.match(`^\\d{2}$`, \"٣٣\"),\n\
                     regex.match(`\\bcat\\b`, \"a cat!\"),\n\
                     regex.match(`^[\\w-]{1,63}$`, \"my-label_1\"),\n\
                   ]\n";
        assert_eq!(
            eval_with(src, true, "{}"),
            Value::from_json_str("[true, false, false, true, true]").unwrap()
        );
    }
}
