//! `.gitignore` / `.dockerignore` files, in the shape of conftest's ignore
//! parser (shteou/go-ignore): `[[{Kind, Value, Original}]]`, one entry per
//! `\n`-separated line (so a trailing newline gives a final `Empty` entry).
//! Hand-written: the shape is the library's own and the rules are a few lines.
//!
//! Kinds: `Empty` (blank after trimming trailing spaces), `Comment` (`#…`,
//! value trimmed), `NegatedPath` (`!…`) and `Path`; backslash escapes are
//! removed from path values. go-ignore mangles non-ASCII bytes while
//! unescaping (it appends bytes as runes); that bug is not reproduced.

use std::path::Path;

use regorus::Value;

use super::support::object;
use crate::error::Result;

/// Parses one ignore file.
pub(crate) fn parse(text: &str, _path: &Path) -> Result<Value> {
    let entries: Vec<Value> = text.split('\n').map(entry).collect();
    Ok(Value::from(vec![Value::from(entries)]))
}

fn entry(line: &str) -> Value {
    let stripped = trim_right_space(line);
    let (kind, value) = if stripped.is_empty() {
        ("Empty", line.to_owned())
    } else if let Some(rest) = line.strip_prefix('#') {
        let rest = stripped.get(1..).unwrap_or(rest);
        ("Comment", rest.trim().to_owned())
    } else if line.starts_with('!') {
        ("NegatedPath", unescape(stripped.get(1..).unwrap_or("")))
    } else {
        ("Path", unescape(stripped))
    };
    object([
        ("Kind".to_owned(), Value::from(kind)),
        ("Value".to_owned(), Value::from(value)),
        ("Original".to_owned(), Value::from(line)),
    ])
}

/// Trailing spaces are dropped unless escaped with a backslash.
fn trim_right_space(s: &str) -> &str {
    let trimmed = s.trim_end_matches(' ');
    if trimmed.ends_with('\\') && trimmed.len() < s.len() {
        s.get(..trimmed.len() + 1).unwrap_or(trimmed)
    } else {
        trimmed
    }
}

/// A backslash escapes the next character; `\\` is a literal backslash.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
        } else if chars.peek() == Some(&'\\') {
            out.push('\\');
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let v = parse(
            "# Deps\nnode_modules/\n!keep.log\nspace\\ \n",
            Path::new(".gitignore"),
        )
        .ok();
        let s = v.and_then(|v| serde_json::to_string(&v).ok());
        assert_eq!(
            s.as_deref(),
            Some(concat!(
                r##"[[{"Kind":"Comment","Original":"# Deps","Value":"Deps"},"##,
                r#"{"Kind":"Path","Original":"node_modules/","Value":"node_modules/"},"#,
                r#"{"Kind":"NegatedPath","Original":"!keep.log","Value":"keep.log"},"#,
                r#"{"Kind":"Path","Original":"space\\ ","Value":"space "},"#,
                r#"{"Kind":"Empty","Original":"","Value":""}]]"#
            ))
        );
    }
}
