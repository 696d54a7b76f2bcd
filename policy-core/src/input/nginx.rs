//! nginx configuration, in the shape conftest builds from gonginx:
//! `{"directives": [{"name", "parameters": [...], "block": {"directives": [...]}}]}`
//! (`parameters` left out when empty, `block` only for block directives),
//! comments skipped, quoted parameters kept with their quotes, `include`
//! not followed.
//!
//! Hand-written: there is no maintained Rust nginx parser, and the grammar
//! conftest relies on is small (words, quoted strings, `;`, `{`, `}`, `#`
//! comments). Not reproduced: gonginx's raw handling of `*_by_lua_block`
//! bodies, whose Lua text is tokenised like configuration here.

use std::path::Path;

use regorus::Value;

use super::support::{MAX_NESTING, error_at_offset, object};
use crate::error::{Error, Result};

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Semicolon,
    Open,
    Close,
}

/// Parses one nginx configuration file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let tokens = tokenize(text, path)?;
    let mut pos = 0;
    let directives = block(&tokens, &mut pos, text, path, 0)?;
    if let Some((_, at)) = tokens.get(pos) {
        return Err(error_at_offset(path, text, *at, "unexpected \"}\""));
    }
    Ok(object([("directives".to_owned(), Value::from(directives))]))
}

fn block(
    tokens: &[(Token, usize)],
    pos: &mut usize,
    text: &str,
    path: &Path,
    depth: usize,
) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    while let Some((token, at)) = tokens.get(*pos) {
        let name = match token {
            Token::Close => return Ok(out),
            Token::Word(w) => w.clone(),
            Token::Semicolon => return Err(error_at_offset(path, text, *at, "unexpected \";\"")),
            Token::Open => return Err(error_at_offset(path, text, *at, "unexpected \"{\"")),
        };
        let start = *at;
        *pos += 1;
        let mut parameters = Vec::new();
        let mut entries = vec![("name".to_owned(), Value::from(name.as_str()))];
        loop {
            match tokens.get(*pos) {
                Some((Token::Word(w), _)) => {
                    parameters.push(Value::from(w.as_str()));
                    *pos += 1;
                }
                Some((Token::Semicolon, _)) => {
                    *pos += 1;
                    break;
                }
                Some((Token::Open, at)) => {
                    if depth >= MAX_NESTING {
                        return Err(error_at_offset(path, text, *at, "blocks nested too deeply"));
                    }
                    *pos += 1;
                    let inner = block(tokens, pos, text, path, depth + 1)?;
                    match tokens.get(*pos) {
                        Some((Token::Close, _)) => *pos += 1,
                        _ => return Err(unclosed(path, text, start, &name)),
                    }
                    entries.push((
                        "block".to_owned(),
                        object([("directives".to_owned(), Value::from(inner))]),
                    ));
                    break;
                }
                Some((Token::Close, at)) => {
                    return Err(error_at_offset(
                        path,
                        text,
                        *at,
                        format!("directive {name:?} is not terminated by \";\""),
                    ));
                }
                None => {
                    return Err(error_at_offset(
                        path,
                        text,
                        start,
                        format!("directive {name:?} is not terminated by \";\""),
                    ));
                }
            }
        }
        if !parameters.is_empty() {
            entries.push(("parameters".to_owned(), Value::from(parameters)));
        }
        out.push(object(entries));
    }
    if depth > 0 {
        return Err(error_at_offset(
            path,
            text,
            text.len(),
            "unexpected end of file, expecting \"}\"",
        ));
    }
    Ok(out)
}

fn unclosed(path: &Path, text: &str, at: usize, name: &str) -> Error {
    error_at_offset(path, text, at, format!("block {name:?} is not closed"))
}

fn tokenize(text: &str, path: &Path) -> Result<Vec<(Token, usize)>> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' => {
                while chars.peek().is_some_and(|(_, c)| *c != '\n') {
                    chars.next();
                }
            }
            ';' => {
                chars.next();
                tokens.push((Token::Semicolon, i));
            }
            '{' => {
                chars.next();
                tokens.push((Token::Open, i));
            }
            '}' => {
                chars.next();
                tokens.push((Token::Close, i));
            }
            '"' | '\'' => {
                chars.next();
                let mut word = String::from(c);
                let mut closed = false;
                while let Some((_, n)) = chars.next() {
                    word.push(n);
                    if n == '\\' {
                        if let Some((_, e)) = chars.next() {
                            word.push(e);
                        }
                    } else if n == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(error_at_offset(path, text, i, "unterminated quoted string"));
                }
                tokens.push((Token::Word(word), i));
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, n)) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ';' | '{' | '}' | '"' | '\'') {
                        // `${var}` keeps its braces inside a word.
                        if n == '{' && word.ends_with('$') {
                            for (_, m) in chars.by_ref() {
                                word.push(m);
                                if m == '}' {
                                    break;
                                }
                            }
                            continue;
                        }
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                tokens.push((Token::Word(word), i));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_blocks() {
        let text = "user nginx; # who\nhttp {\n  server {\n    listen 80;\n    add_header X-Frame \"SAMEORIGIN\" always;\n    location / { return 200 \"${host}ok\"; }\n  }\n  gzip on;\n}\nevents {}\n";
        let v = parse(text, Path::new("nginx.conf")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            concat!(
                r#"{"directives":[{"name":"user","parameters":["nginx"]},"#,
                r#"{"block":{"directives":[{"block":{"directives":[{"name":"listen","parameters":["80"]},"#,
                r#"{"name":"add_header","parameters":["X-Frame","\"SAMEORIGIN\"","always"]},"#,
                r#"{"block":{"directives":[{"name":"return","parameters":["200","\"${host}ok\""]}]},"name":"location","parameters":["/"]}]},"name":"server"},"#,
                r#"{"name":"gzip","parameters":["on"]}]},"name":"http"},"#,
                r#"{"block":{"directives":[]},"name":"events"}]}"#
            )
        );
    }

    #[test]
    fn errors() {
        let err = |t: &str| {
            parse(t, Path::new("nginx.conf"))
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(
            err("http {\n  listen 80;\n").as_deref(),
            Some("nginx.conf:3:1: unexpected end of file, expecting \"}\"")
        );
        assert_eq!(
            err("user nginx").as_deref(),
            Some("nginx.conf:1:1: directive \"user\" is not terminated by \";\"")
        );
        assert_eq!(
            err("}").as_deref(),
            Some("nginx.conf:1:1: unexpected \"}\"")
        );
    }
}
