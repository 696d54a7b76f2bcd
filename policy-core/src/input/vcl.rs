//! Varnish VCL, shaped as conftest's go-vcl decoding into a map shapes it.
//! Hand-written: there is no Rust VCL parser, and the shape is go-vcl's own.
//!
//! * top level: `backend app { … }` → `{"backend": {"app": {…}}}` (blocks
//!   keyed by type, then by first label); a block with no attributes and
//!   no inner blocks becomes the list of its bare values instead
//!   (`acl purge { "127.0.0.1"; }` → `{"acl": {"purge": ["127.0.0.1"]}}`);
//! * inside a block: `.field = "v";` → `"field": "v"`, where, as in go-vcl,
//!   a field whose value is not a quoted string becomes `null`
//!   (`.connect_timeout = 60s;`); `name = value;` (also `set name = value;`)
//!   keeps strings, integers, booleans and identifiers; an inner block type
//!   occurring once is an object, several times a list of objects wrapped
//!   by their labels;
//! * `if`/`elsif`/`else` bodies, `return (…)`, `call …;`, `unset …;` and
//!   comments contribute nothing, as in go-vcl.
//!
//! Anything else (for example `x = a + b;`, which makes go-vcl panic) is an
//! error with its position.

use std::collections::BTreeMap;
use std::path::Path;

use regorus::Value;

use super::support::{MAX_NESTING, error_at_offset, object};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Other(char),
}

#[derive(Default)]
struct Body {
    attrs: BTreeMap<String, Value>,
    blocks: Vec<Block>,
    flats: Vec<Value>,
}

struct Block {
    kind: String,
    labels: Vec<String>,
    body: Body,
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    text: &'a str,
    path: &'a Path,
}

/// Parses one VCL file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let toks = tokenize(text, path)?;
    let mut p = Parser {
        toks,
        pos: 0,
        text,
        path,
    };
    let body = p.body(0, true)?;
    Ok(top_level(body))
}

fn top_level(body: Body) -> Value {
    let mut out: BTreeMap<String, Value> = body.attrs;
    let mut by_type: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for block in body.blocks {
        let label = block.labels.first().cloned().unwrap_or_default();
        let value = if block.body.attrs.is_empty() && block.body.blocks.is_empty() {
            Value::from(block.body.flats)
        } else {
            let mut v = nested(block.body);
            for extra in block.labels.iter().skip(1) {
                v = object([(extra.clone(), v)]);
            }
            v
        };
        by_type.entry(block.kind).or_default().insert(label, value);
    }
    for (kind, map) in by_type {
        out.insert(kind, object(map));
    }
    object(out)
}

fn nested(body: Body) -> Value {
    let mut out: BTreeMap<String, Value> = body
        .attrs
        .into_iter()
        .map(|(k, v)| (k.strip_prefix('.').map(str::to_owned).unwrap_or(k), v))
        .collect();
    let mut by_type: BTreeMap<String, Vec<Block>> = BTreeMap::new();
    for block in body.blocks {
        by_type.entry(block.kind.clone()).or_default().push(block);
    }
    for (kind, mut blocks) in by_type {
        let value = if blocks.len() == 1 {
            blocks.pop().map_or(Value::Null, |b| nested(b.body))
        } else {
            Value::from(
                blocks
                    .into_iter()
                    .map(|b| {
                        let mut v = nested(b.body);
                        for label in b.labels {
                            v = object([(label, v)]);
                        }
                        v
                    })
                    .collect::<Vec<_>>(),
            )
        };
        out.insert(kind, value);
    }
    object(out)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |(_, a)| *a)
    }

    fn err(&self, message: impl Into<String>) -> Error {
        error_at_offset(self.path, self.text, self.at(), message)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.peek() == Some(&Tok::Other(c)) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(format!("expected {c:?}")))
        }
    }

    fn body(&mut self, depth: usize, top: bool) -> Result<Body> {
        if depth > MAX_NESTING {
            return Err(self.err("blocks nested too deeply"));
        }
        let mut body = Body::default();
        loop {
            match self.peek().cloned() {
                None if top => return Ok(body),
                None => return Err(self.err("unexpected end of file, expecting \"}\"")),
                Some(Tok::Other('}')) if !top => return Ok(body),
                Some(Tok::Other(';')) => self.pos += 1,
                Some(Tok::Str(s)) => {
                    self.pos += 1;
                    let mut v = s;
                    if self.peek() == Some(&Tok::Other('/')) {
                        self.pos += 1;
                        match self.next() {
                            Some(Tok::Int(n)) => v = format!("{v}/{n}"),
                            _ => return Err(self.err("expected a prefix length")),
                        }
                    }
                    self.expect(';')?;
                    body.flats.push(Value::from(v));
                }
                Some(Tok::Int(n)) => {
                    self.pos += 1;
                    self.expect(';')?;
                    body.flats.push(Value::from(n));
                }
                Some(Tok::Other('!')) => {
                    // A negated ACL entry: go-vcl records nothing for it.
                    self.skip_statement()?;
                }
                Some(Tok::Ident(word)) => self.statement(&word, &mut body, depth)?,
                Some(Tok::Other(c)) => return Err(self.err(format!("unexpected {c:?}"))),
            }
        }
    }

    fn statement(&mut self, word: &str, body: &mut Body, depth: usize) -> Result<()> {
        self.pos += 1;
        match word {
            "if" => {
                self.skip_parens()?;
                self.skip_block()?;
                while matches!(self.peek(), Some(Tok::Ident(w)) if w == "else" || w == "elsif" || w == "elseif")
                {
                    let is_else = matches!(self.peek(), Some(Tok::Ident(w)) if w == "else");
                    self.pos += 1;
                    if is_else && matches!(self.peek(), Some(Tok::Ident(w)) if w == "if") {
                        self.pos += 1;
                    }
                    if self.peek() == Some(&Tok::Other('(')) {
                        self.skip_parens()?;
                    }
                    self.skip_block()?;
                }
                return Ok(());
            }
            "return" | "call" | "unset" | "include" | "import" | "synthetic" | "error"
            | "restart" | "new" | "vcl" => {
                return self.skip_statement();
            }
            "set" => {
                return match self.next() {
                    Some(Tok::Ident(name)) => self.assignment(name, body, depth),
                    _ => Err(self.err("expected a variable after set")),
                };
            }
            _ => {}
        }
        match self.peek() {
            Some(Tok::Other('=')) => self.assignment(word.to_owned(), body, depth),
            _ => {
                let mut labels = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Ident(l) | Tok::Str(l)) => labels.push(l),
                        Some(Tok::Other('{')) => break,
                        _ => {
                            self.pos = self.pos.saturating_sub(1);
                            return Err(self.err(format!("unexpected token after {word:?}")));
                        }
                    }
                }
                let inner = self.body(depth + 1, false)?;
                self.expect('}')?;
                body.blocks.push(Block {
                    kind: word.to_owned(),
                    labels,
                    body: inner,
                });
                Ok(())
            }
        }
    }

    fn assignment(&mut self, name: String, body: &mut Body, depth: usize) -> Result<()> {
        self.expect('=')?;
        let field = name.starts_with('.');
        let value = match self.next() {
            Some(Tok::Other('{')) => {
                let inner = self.body(depth + 1, false)?;
                self.expect('}')?;
                body.blocks.push(Block {
                    kind: name,
                    labels: Vec::new(),
                    body: inner,
                });
                if self.peek() == Some(&Tok::Other(';')) {
                    self.pos += 1;
                }
                return Ok(());
            }
            Some(Tok::Str(s)) => Value::from(s),
            _ if field => {
                // go-vcl keeps only quoted strings in `.field = …`.
                self.pos = self.pos.saturating_sub(1);
                self.skip_statement()?;
                body.attrs.insert(name, Value::Null);
                return Ok(());
            }
            Some(Tok::Int(n)) => Value::from(n),
            Some(Tok::Ident(w)) if w == "true" || w == "false" => Value::from(w == "true"),
            Some(Tok::Ident(w)) => Value::from(w),
            _ => {
                self.pos = self.pos.saturating_sub(1);
                return Err(
                    self.err("unsupported value (only literals and identifiers can be assigned)")
                );
            }
        };
        if self.peek() != Some(&Tok::Other(';')) {
            return Err(self.err("unsupported expression: expected \";\" after the value"));
        }
        self.pos += 1;
        body.attrs.insert(name, value);
        Ok(())
    }

    fn skip_statement(&mut self) -> Result<()> {
        let mut depth = 0_usize;
        loop {
            match self.next() {
                None => return Err(self.err("unexpected end of file, expecting \";\"")),
                Some(Tok::Other('(')) => depth += 1,
                Some(Tok::Other(')')) => depth = depth.saturating_sub(1),
                Some(Tok::Other(';')) if depth == 0 => return Ok(()),
                Some(_) => {}
            }
        }
    }

    fn skip_parens(&mut self) -> Result<()> {
        self.expect('(')?;
        let mut depth = 1_usize;
        while depth > 0 {
            match self.next() {
                None => return Err(self.err("unexpected end of file, expecting \")\"")),
                Some(Tok::Other('(')) => depth += 1,
                Some(Tok::Other(')')) => depth -= 1,
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn skip_block(&mut self) -> Result<()> {
        self.expect('{')?;
        let mut depth = 1_usize;
        while depth > 0 {
            match self.next() {
                None => return Err(self.err("unexpected end of file, expecting \"}\"")),
                Some(Tok::Other('{')) => depth += 1,
                Some(Tok::Other('}')) => depth -= 1,
                Some(_) => {}
            }
        }
        Ok(())
    }
}

fn tokenize(text: &str, path: &Path) -> Result<Vec<(Tok, usize)>> {
    let mut toks = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '#' || (c == '/' && text.get(i..).is_some_and(|r| r.starts_with("//"))) {
            while chars.peek().is_some_and(|(_, c)| *c != '\n') {
                chars.next();
            }
        } else if c == '/' && text.get(i..).is_some_and(|r| r.starts_with("/*")) {
            let end = text
                .get(i + 2..)
                .and_then(|r| r.find("*/"))
                .ok_or_else(|| error_at_offset(path, text, i, "unterminated comment"))?;
            let stop = i + 2 + end + 2;
            while chars.peek().is_some_and(|(j, _)| *j < stop) {
                chars.next();
            }
        } else if c == '{' && text.get(i..).is_some_and(|r| r.starts_with("{\"")) {
            // Long string {"…"}.
            let end = text
                .get(i + 2..)
                .and_then(|r| r.find("\"}"))
                .ok_or_else(|| error_at_offset(path, text, i, "unterminated long string"))?;
            let s = text.get(i + 2..i + 2 + end).unwrap_or("").to_owned();
            let stop = i + 2 + end + 2;
            while chars.peek().is_some_and(|(j, _)| *j < stop) {
                chars.next();
            }
            toks.push((Tok::Str(s), i));
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            for (_, n) in chars.by_ref() {
                if n == '"' {
                    closed = true;
                    break;
                }
                if n == '\n' {
                    break;
                }
                s.push(n);
            }
            if !closed {
                return Err(error_at_offset(path, text, i, "unterminated string"));
            }
            toks.push((Tok::Str(s), i));
        } else if c.is_ascii_digit() {
            let mut s = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '.' || n == '_' {
                    s.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            match s.parse::<i64>() {
                Ok(n) => toks.push((Tok::Int(n), i)),
                Err(_) => toks.push((Tok::Ident(s), i)),
            }
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let mut s = String::new();
            while let Some(&(_, n)) = chars.peek() {
                if n.is_alphanumeric() || matches!(n, '_' | '.' | '-' | ':') {
                    s.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            toks.push((Tok::Ident(s), i));
        } else {
            chars.next();
            toks.push((Tok::Other(c), i));
        }
    }
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_vcl_shape() {
        let text = "vcl 4.1;\nbackend app {\n  .host = \"127.0.0.1\";\n  .port = \"8081\";\n  .connect_timeout = 60s;\n  .probe = { .url = \"/\"; }\n}\nacl purge {\n  \"127.0.0.1\";\n  \"10.0.0.0\"/8;\n}\nsub vcl_recv {\n  if (req.method == \"PURGE\") { return (synth(405)); }\n  set req.backend_hint = app;\n}\n";
        let v = parse(text, Path::new("varnish.vcl")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            concat!(
                r#"{"acl":{"purge":["127.0.0.1","10.0.0.0/8"]},"#,
                r#""backend":{"app":{".probe":{"url":"/"},"connect_timeout":null,"host":"127.0.0.1","port":"8081"}},"#,
                r#""sub":{"vcl_recv":{"req.backend_hint":"app"}}}"#
            )
        );
    }

    #[test]
    fn errors() {
        let err = |t: &str| parse(t, Path::new("a.vcl")).err().map(|e| e.to_string());
        assert_eq!(
            err("backend a {\n .host = \"x\";\n").as_deref(),
            Some("a.vcl:3:1: unexpected end of file, expecting \"}\"")
        );
        assert!(err("sub x { y = a + b; }").is_some());
        assert!(err("acl a { \"x }").is_some());
    }
}
