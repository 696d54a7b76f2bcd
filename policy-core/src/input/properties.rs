//! Java `.properties` files, read by magiconair/properties' rules (conftest's
//! library). Hand-written: the rules are short, and the Rust crates differ
//! in details that change values (escapes, `${}` checks).
//!
//! * `#` or `!` starts a comment line; `key = value`, `key: value` or
//!   `key value`; a backslash before a line end continues the value;
//! * escapes `\t \n \r \f \uXXXX`, any other escaped character is itself;
//! * values are returned raw (conftest uses `Map()`), but a `${key}`
//!   reference that is malformed or circular is an error, as in conftest.

use std::collections::BTreeMap;
use std::path::Path;

use regorus::Value;

use super::support::{error, error_at, object};
use crate::error::Result;

const MAX_EXPANSION_DEPTH: usize = 64;

/// Parses one properties file into `{key: "value"}`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let mut lexer = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        line: 1,
    };
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    loop {
        lexer.skip_blank_and_comments();
        if lexer.peek().is_none() {
            break;
        }
        let key = lexer.key().map_err(|m| error_at(path, lexer.line, 1, m))?;
        let value = lexer
            .value()
            .map_err(|m| error_at(path, lexer.line, 1, m))?;
        map.insert(key, value);
    }
    let mut checked = std::collections::BTreeSet::new();
    for (key, value) in &map {
        check_expansion(value, &mut vec![key.clone()], &map, &mut checked)
            .map_err(|m| error(path, m))?;
        checked.insert(key.clone());
    }
    Ok(object(map.into_iter().map(|(k, v)| (k, Value::from(v)))))
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

fn is_eol(c: char) -> bool {
    matches!(c, '\n' | '\r')
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blank_and_comments(&mut self) {
        while let Some(c) = self.peek() {
            if is_eol(c) || is_whitespace(c) {
                self.next();
            } else if c == '#' || c == '!' {
                while self.peek().is_some_and(|c| !is_eol(c)) {
                    self.next();
                }
            } else {
                break;
            }
        }
    }

    fn key(&mut self) -> Result<String, String> {
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if is_whitespace(c) || is_eol(c) || c == ':' || c == '=' {
                break;
            }
            self.next();
            if c == '\\' {
                self.escape(&mut key)?;
            } else {
                key.push(c);
            }
        }
        // Separator: whitespace, at most one of `:` or `=`, whitespace.
        while self.peek().is_some_and(is_whitespace) {
            self.next();
        }
        if matches!(self.peek(), Some(':' | '=')) {
            self.next();
        }
        while self.peek().is_some_and(is_whitespace) {
            self.next();
        }
        Ok(key)
    }

    fn value(&mut self) -> Result<String, String> {
        let mut value = String::new();
        while let Some(c) = self.next() {
            if is_eol(c) {
                break;
            }
            if c == '\\' {
                if self.peek().is_some_and(is_eol) {
                    // Line continuation: drop the line end and the next line's indentation.
                    self.next();
                    while self.peek().is_some_and(is_whitespace) {
                        self.next();
                    }
                } else {
                    self.escape(&mut value)?;
                }
            } else {
                value.push(c);
            }
        }
        Ok(value)
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        match self.next() {
            None => Err("premature EOF".to_owned()),
            Some('f') => {
                out.push('\u{c}');
                Ok(())
            }
            Some('n') => {
                out.push('\n');
                Ok(())
            }
            Some('r') => {
                out.push('\r');
                Ok(())
            }
            Some('t') => {
                out.push('\t');
                Ok(())
            }
            Some('u') => {
                let mut code = 0_u32;
                for _ in 0..4 {
                    let d = self
                        .next()
                        .and_then(|c| c.to_digit(16))
                        .ok_or_else(|| "invalid unicode literal".to_owned())?;
                    code = code * 16 + d;
                }
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                Ok(())
            }
            Some(c) => {
                out.push(c);
                Ok(())
            }
        }
    }
}

/// magiconair's load-time check of `${key}` references. Keys already found
/// free of cycles (`checked`) are not walked again, which keeps the check
/// linear (a key can be referenced many times).
fn check_expansion(
    s: &str,
    keys: &mut Vec<String>,
    values: &BTreeMap<String, String>,
    checked: &mut std::collections::BTreeSet<String>,
) -> Result<(), String> {
    if keys.len() > MAX_EXPANSION_DEPTH {
        return Err("expansion too deep".to_owned());
    }
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let after = rest.get(start + 2..).unwrap_or("");
        let Some(len) = after.find('}') else {
            return Err("malformed expression".to_owned());
        };
        let key = after.get(..len).unwrap_or("");
        if keys.iter().any(|k| k == key) {
            let mut msg = String::from("circular reference in:\n");
            for k in keys.iter() {
                msg.push_str(&format!(
                    "{k}={}\n",
                    values.get(k).map_or("", String::as_str)
                ));
            }
            return Err(msg.trim_end().to_owned());
        }
        if !checked.contains(key) {
            let val = values
                .get(key)
                .cloned()
                .unwrap_or_else(|| std::env::var(key).unwrap_or_default());
            keys.push(key.to_owned());
            check_expansion(&val, keys, values, checked)?;
            keys.pop();
            checked.insert(key.to_owned());
        }
        rest = after.get(len + 1..).unwrap_or("");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new("a.properties")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn separators_escapes_and_continuations() {
        assert_eq!(
            json(
                "# c\n! c\na=1\nb : two\nc three\nd=multi \\\n    line\ne=\\u0041\\tB\nhost=${a}:80\nf\n"
            ),
            r#"{"a":"1","b":"two","c":"three","d":"multi line","e":"A\tB","f":"","host":"${a}:80"}"#
        );
    }

    #[test]
    fn circular_and_malformed_references_fail() {
        assert!(parse("a=${b}\nb=${a}\n", Path::new("p.properties")).is_err());
        assert!(parse("a=${b\n", Path::new("p.properties")).is_err());
    }
}
