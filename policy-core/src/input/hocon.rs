//! HOCON, read with `hocon-rs` (substitutions and merges resolved), then
//! shaped as conftest's go-akka based parser shapes it — a lossy shape kept
//! so policies port unchanged:
//!
//! * objects stay objects;
//! * every other value is first turned into go-akka's string form and then
//!   typed like an INI value (a float-looking string becomes a number, a Go
//!   bool string a boolean): so strings containing a space or tab gain
//!   surrounding double quotes (`"hello world"` → `"\"hello world\""`), an
//!   empty string or `null` becomes the two-character string `""`, and an
//!   array becomes one string such as `"[a,b,c]"`.
//!
//! Differences: conftest crashes on a top-level non-object value, which is
//! typed the same way here; keys of objects nested in arrays are written in
//! sorted order (go-akka keeps file order). hocon-rs reports no positions.

use std::path::Path;

use hocon_rs::Value as Hocon;
use regorus::Value;

use super::support::{error, error_at_offset, object, typed_scalar};
use crate::error::Result;

/// Parses one HOCON document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    check_balanced(text).map_err(|(offset, m)| error_at_offset(path, text, offset, m))?;
    let root: Hocon =
        hocon_rs::Config::parse_str(text, None).map_err(|e| error(path, e.to_string()))?;
    convert(&root).map_err(|m| error(path, m))
}

fn convert(value: &Hocon) -> Result<Value, String> {
    match value {
        Hocon::Object(map) => {
            let mut entries = Vec::with_capacity(map.len());
            for (k, v) in map {
                entries.push((k.clone(), convert(v)?));
            }
            Ok(object(entries))
        }
        other => typed_scalar(&go_string(other, 0)),
    }
}

/// hocon-rs accepts some truncated documents (an unclosed `{`, `[` or
/// string gives an empty object), so brackets and quotes are checked first.
fn check_balanced(text: &str) -> Result<(), (usize, String)> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        match c {
            '#' => skip_line(&mut iter),
            '/' if iter.peek().is_some_and(|(_, n)| *n == '/') => skip_line(&mut iter),
            '"' => {
                if text.get(i..).is_some_and(|r| r.starts_with("\"\"\"")) {
                    let Some(end) = text.get(i + 3..).and_then(|r| r.find("\"\"\"")) else {
                        return Err((i, "unterminated triple-quoted string".to_owned()));
                    };
                    let stop = i + 3 + end + 3;
                    while iter.peek().is_some_and(|(j, _)| *j < stop) {
                        iter.next();
                    }
                    continue;
                }
                loop {
                    match iter.next() {
                        Some((_, '\\')) => {
                            iter.next();
                        }
                        Some((_, '"')) => break,
                        Some((_, '\n')) | None => {
                            return Err((i, "unterminated string".to_owned()));
                        }
                        Some(_) => {}
                    }
                }
            }
            '{' | '[' => {
                stack.push((c, i));
                if stack.len() > super::support::MAX_NESTING {
                    return Err((i, "nesting too deep".to_owned()));
                }
            }
            '}' | ']' => {
                let want = if c == '}' { '{' } else { '[' };
                match stack.pop() {
                    Some((open, _)) if open == want => {}
                    _ => return Err((i, format!("unexpected {c:?}"))),
                }
            }
            _ => {}
        }
    }
    match stack.pop() {
        Some((open, at)) => Err((at, format!("{open:?} is not closed"))),
        None => Ok(()),
    }
}

fn skip_line(iter: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    while iter.peek().is_some_and(|(_, c)| *c != '\n') {
        iter.next();
    }
}

/// go-akka's `HoconValue.ToString(indent)`.
fn go_string(value: &Hocon, indent: usize) -> String {
    match value {
        Hocon::String(s) => quote_if_needed(s.trim()),
        Hocon::Null => quote_if_needed(""),
        Hocon::Boolean(b) => b.to_string(),
        Hocon::Number(n) => n.to_string(),
        Hocon::Array(items) => {
            let parts: Vec<String> = items.iter().map(|v| go_string(v, indent + 1)).collect();
            format!("[{}]", parts.join(","))
        }
        Hocon::Object(map) => {
            let pad = " ".repeat((indent + 1) * 2);
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut body = String::new();
            for k in keys {
                if let Some(v) = map.get(k) {
                    body.push_str(&format!(
                        "{pad}{} : {}\r\n",
                        quote_if_needed(k),
                        go_string(v, indent + 1)
                    ));
                }
            }
            format!("{{\r\n{body}{}}}", " ".repeat(indent * 2))
        }
    }
}

fn quote_if_needed(text: &str) -> String {
    if text.is_empty() {
        return "\"\"".to_owned();
    }
    if text.contains([' ', '\t']) {
        return format!("\"{text}\"");
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conftest_shape() {
        let text = "play.server.http {\n  port = 9000\n  address = \"0.0.0.0\"\n}\nplay.name = \"my app\"\nplay.list = [1, two]\nplay.on = true\nplay.base = ${play.server.http.port}\n";
        let v = parse(text, Path::new("a.hocon")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            r#"{"play":{"base":9000,"list":"[1,two]","name":"\"my app\"","on":true,"server":{"http":{"address":"0.0.0.0","port":9000}}}}"#
        );
    }

    #[test]
    fn malformed_is_an_error() {
        let err = |t: &str| parse(t, Path::new("a.hocon")).err().map(|e| e.to_string());
        assert_eq!(
            err("a {\n  b = 1\n").as_deref(),
            Some("a.hocon:1:3: '{' is not closed")
        );
        assert_eq!(
            err("a = [1,").as_deref(),
            Some("a.hocon:1:5: '[' is not closed")
        );
        assert_eq!(
            err("a {\n b = \"x\n}").as_deref(),
            Some("a.hocon:2:6: unterminated string")
        );
        assert!(err("a = }").is_some());
        assert!(err("a = ${missing}").is_some());
        assert!(err("a = \"# not a comment {\"").is_none());
    }
}
