//! JSON with comments. conftest's jsonc library removes `//`, `/* */` and
//! `#` comments outside strings and then reads plain JSON (trailing commas
//! stay errors). Comments are blanked rather than removed here, so error
//! positions still point into the original text.

use std::path::Path;

use regorus::Value;

use crate::error::Result;

/// Parses one JSONC document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    super::json::parse(&strip_comments(text), path)
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '#' => blank_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'/') => blank_line(&mut chars, &mut out),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                out.push_str("  ");
                let mut prev = '\0';
                for n in chars.by_ref() {
                    out.push(if n == '\n' { '\n' } else { ' ' });
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn blank_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut String) {
    out.push(' ');
    while let Some(&n) = chars.peek() {
        if n == '\n' {
            break;
        }
        out.push(' ');
        chars.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_ignored_outside_strings() {
        let v = parse(
            "{\n  // line\n  \"a\": \"x//y#z\", # hash\n  /* block\n */ \"b\": 1\n}",
            Path::new("c.jsonc"),
        )
        .ok();
        let s = v.and_then(|v| serde_json::to_string(&v).ok());
        assert_eq!(s.as_deref(), Some(r#"{"a":"x//y#z","b":1}"#));
    }

    #[test]
    fn trailing_commas_stay_errors() {
        let err = parse("{\"a\": 1, // c\n}", Path::new("c.jsonc"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("c.jsonc:2:1: trailing comma"));
    }
}
