//! `strings.render_template(template, vars)`: Go's `text/template`, as OPA
//! runs it over the variables decoded to Go's JSON types.
//!
//! Supported: text and `{{ }}` actions with `{{-`/`-}}` trimming and
//! comments; `.`, `.a.b`, `$`, `$x.a`; string, raw string, number, `true`,
//! `false` and `nil` literals; pipelines `a | f`; parenthesized pipelines;
//! variable declaration and assignment; `if`/`else if`/`else`, `range`
//! (lists, maps in key order, integers; `else`, `break`, `continue`) and
//! `with`/`else with`; the functions `and`, `or`, `not`, `len`, `index`,
//! `slice`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `print`, `println`,
//! `printf` (verbs `%v %s %d %t %q %%`), `html`, `js` and `urlquery`.
//! `define`, `template` and `block` are reported as unsupported.
//!
//! As in OPA, numbers from the variables are Go `json.Number`s, which
//! text/template treats as strings (so `{{if .n}}` is true for `0`, and
//! comparing one with a number literal is an error); a missing key prints
//! `<undefined>`.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use regorus::Value;

use super::{Builtin, object_operand, str_operand};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] =
    &[("strings.render_template", 2, render_template)];

/// A value during execution, with Go's kinds.
#[derive(Debug, Clone, PartialEq)]
enum V {
    /// A missing map entry (Go's invalid reflect.Value).
    Missing,
    Nil,
    Bool(bool),
    Str(String),
    /// A `json.Number` from the variables: a string kind.
    JsonNum(String),
    Int(i64),
    Float(f64),
    List(Vec<V>),
    Map(BTreeMap<String, V>),
}

impl V {
    fn from_value(v: &Value) -> Result<V> {
        Ok(match v {
            Value::Null => V::Nil,
            Value::Bool(b) => V::Bool(*b),
            Value::Number(_) => V::JsonNum(v.to_json_str()?),
            Value::String(s) => V::Str(s.to_string()),
            Value::Array(a) => V::List(a.iter().map(V::from_value).collect::<Result<_>>()?),
            Value::Set(s) => V::List(s.iter().map(V::from_value).collect::<Result<_>>()?),
            Value::Object(o) => {
                let mut m = BTreeMap::new();
                for (k, v) in o.iter() {
                    let Value::String(k) = k else {
                        bail!("template variables must have string keys");
                    };
                    m.insert(k.to_string(), V::from_value(v)?);
                }
                V::Map(m)
            }
            Value::Undefined => V::Missing,
        })
    }

    /// Go's template truth: false, 0, nil, and empty strings, lists, maps.
    fn truthy(&self) -> bool {
        match self {
            V::Missing | V::Nil => false,
            V::Bool(b) => *b,
            V::Str(s) | V::JsonNum(s) => !s.is_empty(),
            V::Int(i) => *i != 0,
            V::Float(f) => *f != 0.0,
            V::List(l) => !l.is_empty(),
            V::Map(m) => !m.is_empty(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            V::Missing | V::Nil => "nil",
            V::Bool(_) => "bool",
            V::Str(_) => "string",
            V::JsonNum(_) => "json.Number",
            V::Int(_) => "int",
            V::Float(_) => "float64",
            V::List(_) => "[]interface {}",
            V::Map(_) => "map[string]interface {}",
        }
    }

    /// `fmt.Sprint` of the value.
    fn print(&self) -> String {
        match self {
            V::Missing => "<no value>".to_owned(),
            V::Nil => "<nil>".to_owned(),
            V::Bool(b) => b.to_string(),
            V::Str(s) | V::JsonNum(s) => s.clone(),
            V::Int(i) => i.to_string(),
            V::Float(f) => go_float(*f),
            V::List(l) => format!("[{}]", l.iter().map(V::print).collect::<Vec<_>>().join(" ")),
            V::Map(m) => format!(
                "map[{}]",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.print()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e21 {
        return format!("{f}");
    }
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let exp: i32 = e.parse().unwrap_or(0);
            if (-4..21).contains(&exp) {
                format!("{f}")
            } else {
                format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
            }
        }
        None => s,
    }
}

// ---- lexing and parsing ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    Dot,
    Str(String),
    Int(i64),
    Float(f64),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    /// `.a.b` after a parenthesized expression.
    ChainFields(Vec<String>),
}

#[derive(Debug, Clone)]
enum Arg {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Lit(V),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipeline {
    vars: Vec<String>,
    declare: bool,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    Break,
    Continue,
}

/// An action's text and the line it starts on.
#[derive(Debug)]
enum Piece {
    Text(String),
    Action(String, usize),
}

fn err_at(line: usize, msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("template: template:{line}: {msg}")
}

/// Splits the template into text and actions, applying trim markers and
/// dropping comments.
fn split(src: &str) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = src;
    let mut consumed = 0usize;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut t = rest.to_owned();
            if trim_next {
                t = t.trim_start().to_owned();
            }
            pieces.push(Piece::Text(t));
            break;
        };
        let mut text = rest.get(..open).unwrap_or("").to_owned();
        if trim_next {
            text = text.trim_start().to_owned();
        }
        let after = rest.get(open + 2..).unwrap_or("");
        let line = 1 + src
            .get(..consumed + open)
            .unwrap_or("")
            .matches('\n')
            .count();
        let (trim_left, body_start) = match after.strip_prefix('-') {
            Some(b) if b.starts_with([' ', '\t', '\r', '\n']) => (true, b),
            _ => (false, after),
        };
        if trim_left {
            text = text.trim_end().to_owned();
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        let body_trimmed = body_start.trim_start();
        let (inner, close_len, trim_right) = if body_trimmed.starts_with("/*") {
            let end = body_trimmed
                .find("*/")
                .ok_or_else(|| err_at(line, "unclosed comment"))?;
            let after_comment = body_trimmed.get(end + 2..).unwrap_or("");
            let (tr, closing) = if let Some(x) = after_comment.strip_prefix(" -}}") {
                (true, x)
            } else if let Some(x) = after_comment.strip_prefix("}}") {
                (false, x)
            } else {
                return Err(err_at(line, "comment ends before closing delimiter"));
            };
            rest = closing;
            consumed = src.len() - rest.len();
            trim_next = tr;
            continue;
        } else {
            let close = find_close(body_start).ok_or_else(|| err_at(line, "unclosed action"))?;
            let inner = body_start.get(..close).unwrap_or("");
            match inner
                .strip_suffix(" -")
                .or_else(|| inner.strip_suffix("\t-"))
                .or_else(|| inner.strip_suffix("\n-"))
            {
                Some(i) => (i.to_owned(), close + 2, true),
                None => (inner.to_owned(), close + 2, false),
            }
        };
        pieces.push(Piece::Action(inner, line));
        rest = body_start.get(close_len..).unwrap_or("");
        consumed = src.len() - rest.len();
        trim_next = trim_right;
    }
    Ok(pieces)
}

/// The index of the `}}` closing an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => {
                i += 1;
                while let Some(&d) = b.get(i) {
                    if d == b'\\' {
                        i += 1;
                    } else if d == b'"' {
                        break;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while b.get(i).is_some_and(|d| *d != b'`') {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(s: &str, line: usize) -> Result<Vec<Tok>> {
    let chars: Vec<char> = s.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let fields = |i: &mut usize| -> Vec<String> {
        let mut out = Vec::new();
        while chars.get(*i) == Some(&'.') && chars.get(*i + 1).is_some_and(|c| ident_char(*c)) {
            *i += 1;
            let start = *i;
            while chars.get(*i).is_some_and(|c| ident_char(*c)) {
                *i += 1;
            }
            out.push(chars.get(start..*i).unwrap_or(&[]).iter().collect());
        }
        out
    };
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\r' | '\n' => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1;
                let f = fields(&mut i);
                if !f.is_empty() {
                    toks.push(Tok::ChainFields(f));
                }
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1;
            }
            '.' => {
                let f = fields(&mut i);
                if f.is_empty() {
                    toks.push(Tok::Dot);
                    i += 1;
                } else {
                    toks.push(Tok::Field(f));
                }
            }
            '$' => {
                i += 1;
                let start = i;
                while chars.get(i).is_some_and(|c| ident_char(*c)) {
                    i += 1;
                }
                let name: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                toks.push(Tok::Var(format!("${name}"), fields(&mut i)));
            }
            '"' => {
                let mut out = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err_at(line, "unterminated quoted string")),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => out.push('\n'),
                                Some('t') => out.push('\t'),
                                Some('r') => out.push('\r'),
                                Some('\\') => out.push('\\'),
                                Some('"') => out.push('"'),
                                Some('\'') => out.push('\''),
                                _ => {
                                    return Err(err_at(
                                        line,
                                        "unsupported escape in quoted string",
                                    ));
                                }
                            }
                        }
                        Some(&ch) => out.push(ch),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(out));
            }
            '`' => {
                i += 1;
                let start = i;
                while chars.get(i).is_some_and(|c| *c != '`') {
                    i += 1;
                }
                if chars.get(i).is_none() {
                    return Err(err_at(line, "unterminated raw quoted string"));
                }
                toks.push(Tok::Str(
                    chars.get(start..i).unwrap_or(&[]).iter().collect(),
                ));
                i += 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                {
                    i += 1;
                }
                let text: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
                let clean = text.replace('_', "");
                if let Ok(n) = clean.parse::<i64>() {
                    toks.push(Tok::Int(n));
                } else if let Ok(f) = clean.parse::<f64>() {
                    toks.push(Tok::Float(f));
                } else {
                    return Err(err_at(line, format!("bad number syntax: {text:?}")));
                }
            }
            c if ident_char(c) => {
                let start = i;
                while chars.get(i).is_some_and(|c| ident_char(*c)) {
                    i += 1;
                }
                toks.push(Tok::Ident(
                    chars.get(start..i).unwrap_or(&[]).iter().collect(),
                ));
            }
            other => return Err(err_at(line, format!("unexpected {other:?} in command"))),
        }
    }
    Ok(toks)
}

struct TokStream {
    toks: Vec<Tok>,
    pos: usize,
    line: usize,
}

impl TokStream {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn pipeline(&mut self, allow_decl: bool) -> Result<Pipeline> {
        let mut p = Pipeline {
            vars: Vec::new(),
            declare: false,
            cmds: Vec::new(),
        };
        // `$x :=`, `$x =`, `$i, $e :=`.
        if allow_decl {
            let save = self.pos;
            let mut vars = Vec::new();
            while let Some(Tok::Var(name, f)) = self.peek().cloned() {
                if !f.is_empty() {
                    break;
                }
                self.pos += 1;
                vars.push(name);
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    continue;
                }
                break;
            }
            match self.peek() {
                Some(Tok::Declare) if !vars.is_empty() => {
                    self.pos += 1;
                    p.vars = vars;
                    p.declare = true;
                }
                Some(Tok::Assign) if !vars.is_empty() => {
                    self.pos += 1;
                    p.vars = vars;
                }
                _ => self.pos = save,
            }
        }
        loop {
            let mut cmd = Vec::new();
            while let Some(t) = self.peek().cloned() {
                if matches!(t, Tok::Pipe | Tok::RParen) {
                    break;
                }
                self.pos += 1;
                cmd.push(self.operand(t)?);
            }
            if cmd.is_empty() {
                return Err(err_at(self.line, "missing value for command"));
            }
            p.cmds.push(cmd);
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
                continue;
            }
            break;
        }
        Ok(p)
    }

    fn operand(&mut self, t: Tok) -> Result<Arg> {
        Ok(match t {
            Tok::Dot => Arg::Dot,
            Tok::Field(f) => Arg::Field(f),
            Tok::Var(n, f) => Arg::Var(n, f),
            Tok::Str(s) => Arg::Lit(V::Str(s)),
            Tok::Int(i) => Arg::Lit(V::Int(i)),
            Tok::Float(f) => Arg::Lit(V::Float(f)),
            Tok::Ident(name) => match name.as_str() {
                "true" => Arg::Lit(V::Bool(true)),
                "false" => Arg::Lit(V::Bool(false)),
                "nil" => Arg::Lit(V::Nil),
                _ => Arg::Ident(name),
            },
            Tok::LParen => {
                let inner = self.pipeline(false)?;
                if self.next() != Some(Tok::RParen) {
                    return Err(err_at(self.line, "unclosed left paren"));
                }
                let chain = match self.peek() {
                    Some(Tok::ChainFields(f)) => {
                        let f = f.clone();
                        self.pos += 1;
                        f
                    }
                    _ => Vec::new(),
                };
                Arg::Sub(Box::new(inner), chain)
            }
            other => {
                return Err(err_at(
                    self.line,
                    format!("unexpected {other:?} in operand"),
                ));
            }
        })
    }
}

/// What closed a list of nodes.
enum Closer {
    Eof,
    End,
    Else(Vec<Tok>, usize),
}

fn parse_nodes(
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    depth: usize,
) -> Result<(Vec<Node>, Closer)> {
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.next() {
        let (text, line) = match piece {
            Piece::Text(t) => {
                nodes.push(Node::Text(t));
                continue;
            }
            Piece::Action(a, line) => (a, line),
        };
        let toks = lex(&text, line)?;
        let mut ts = TokStream { toks, pos: 0, line };
        let keyword = match ts.peek() {
            Some(Tok::Ident(k)) => k.clone(),
            None => return Err(err_at(line, "missing value for command")),
            _ => String::new(),
        };
        match keyword.as_str() {
            "end" => {
                if depth == 0 {
                    return Err(err_at(line, "unexpected {{end}}"));
                }
                return Ok((nodes, Closer::End));
            }
            "else" => {
                if depth == 0 {
                    return Err(err_at(line, "unexpected {{else}}"));
                }
                ts.pos += 1;
                return Ok((nodes, Closer::Else(ts.toks.split_off(ts.pos), line)));
            }
            "if" | "with" | "range" => {
                ts.pos += 1;
                let pipe = ts.pipeline(keyword != "if")?;
                nodes.push(parse_block(&keyword, pipe, pieces, depth, line)?);
            }
            "break" | "continue" => nodes.push(if keyword == "break" {
                Node::Break
            } else {
                Node::Continue
            }),
            "define" | "template" | "block" => {
                return Err(err_at(
                    line,
                    format!(
                        "{{{{{keyword}}}}} is not supported by strings.render_template in regard"
                    ),
                ));
            }
            _ => nodes.push(Node::Action(ts.pipeline(true)?)),
        }
    }
    Ok((nodes, Closer::Eof))
}

fn parse_block(
    keyword: &str,
    pipe: Pipeline,
    pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece>>,
    depth: usize,
    line: usize,
) -> Result<Node> {
    let (body, closer) = parse_nodes(pieces, depth + 1)?;
    let else_nodes = match closer {
        Closer::End => Vec::new(),
        Closer::Eof => return Err(err_at(line, "unexpected EOF")),
        Closer::Else(rest, else_line) => {
            if rest.is_empty() {
                let (e, closer) = parse_nodes(pieces, depth + 1)?;
                if !matches!(closer, Closer::End) {
                    return Err(err_at(else_line, "expected end; found else"));
                }
                e
            } else {
                // `else if` / `else with`: a nested block sharing our `end`.
                let mut ts = TokStream {
                    toks: rest,
                    pos: 0,
                    line: else_line,
                };
                let Some(Tok::Ident(k)) = ts.next() else {
                    return Err(err_at(else_line, "unexpected tokens after else"));
                };
                if k != keyword || keyword == "range" {
                    return Err(err_at(else_line, format!("expected {keyword} after else")));
                }
                let inner = ts.pipeline(k != "if")?;
                vec![parse_block(&k, inner, pieces, depth, else_line)?]
            }
        }
    };
    Ok(match keyword {
        "if" => Node::If(pipe, body, else_nodes),
        "with" => Node::With(pipe, body, else_nodes),
        _ => Node::Range(pipe, body, else_nodes),
    })
}

// ---- execution ----

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec {
    out: String,
    vars: Vec<(String, V)>,
    steps: usize,
}

/// Bounds loops over huge integers or nesting, which would otherwise run
/// far longer than any policy needs.
const MAX_STEPS: usize = 1_000_000;

fn field_of(v: V, name: &str) -> Result<V> {
    match v {
        V::Map(m) => Ok(m.get(name).cloned().unwrap_or(V::Missing)),
        V::Missing | V::Nil => bail!("nil pointer evaluating interface {{}}.{name}"),
        other => bail!("can't evaluate field {name} in type {}", other.type_name()),
    }
}

fn fields_of(mut v: V, fields: &[String]) -> Result<V> {
    for f in fields {
        v = field_of(v, f)?;
    }
    Ok(v)
}

/// Go's `eq`-family comparison kinds.
fn compare(a: &V, b: &V, name: &str) -> Result<std::cmp::Ordering> {
    use std::cmp::Ordering;
    let num = |v: &V| match v {
        V::Int(i) => Some(*i as f64),
        V::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (V::Str(x) | V::JsonNum(x), V::Str(y) | V::JsonNum(y)) => Ok(x.cmp(y)),
        (V::Int(x), V::Int(y)) => Ok(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) if name == "eq" || name == "ne" => Ok(if x == y {
            Ordering::Equal
        } else {
            Ordering::Less
        }),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) if matches!((a, b), (V::Float(_), V::Float(_))) => x
                .partial_cmp(&y)
                .ok_or_else(|| anyhow!("error calling {name}: invalid comparison")),
            _ if matches!((a, b), (V::Nil | V::Missing, V::Nil | V::Missing))
                && (name == "eq" || name == "ne") =>
            {
                Ok(Ordering::Equal)
            }
            _ => bail!("error calling {name}: incompatible types for comparison"),
        },
    }
}

fn printf(format: &str, args: &[V]) -> Result<String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        match (verb, arg) {
            ('v' | 's', a) => out.push_str(&a.print()),
            ('d', V::Int(i)) => out.push_str(&i.to_string()),
            ('t', V::Bool(b)) => out.push_str(&b.to_string()),
            ('q', V::Str(s) | V::JsonNum(s)) => out.push_str(&format!("{s:?}")),
            (v, a) => out.push_str(&format!("%!{v}({}={})", a.type_name(), a.print())),
        }
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", a.type_name(), a.print()))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(out)
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
fn sprint(args: &[V]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = |v: &V| matches!(v, V::Str(_) | V::JsonNum(_));
        if i > 0 && !is_str(a) && args.get(i - 1).is_some_and(|p| !is_str(p)) {
            out.push(' ');
        }
        out.push_str(&a.print());
    }
    out
}

fn escape_html(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '\'' => "&#39;".to_owned(),
            '"' => "&#34;".to_owned(),
            '\0' => "\u{FFFD}".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn escape_js(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\\' => "\\\\".to_owned(),
            '\'' => "\\'".to_owned(),
            '"' => "\\\"".to_owned(),
            '<' => "\\u003C".to_owned(),
            '>' => "\\u003E".to_owned(),
            '&' => "\\u0026".to_owned(),
            '=' => "\\u003D".to_owned(),
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if (c as u32) < 0x20 => format!("\\u{:04X}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn to_index(v: &V) -> Result<i64> {
    match v {
        V::Int(i) => Ok(*i),
        other => bail!("cannot index slice/array with type {}", other.type_name()),
    }
}

impl Exec {
    fn lookup(&self, name: &str) -> Result<V> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| anyhow!("undefined variable: {name}"))
    }

    fn arg(&mut self, a: &Arg, dot: &V) -> Result<V> {
        match a {
            Arg::Dot => Ok(dot.clone()),
            Arg::Field(f) => fields_of(dot.clone(), f),
            Arg::Var(n, f) => fields_of(self.lookup(n)?, f),
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                fields_of(v, f)
            }
            Arg::Ident(name) => self.call(name, &[], dot, None),
        }
    }

    fn call(&mut self, name: &str, args: &[Arg], dot: &V, piped: Option<V>) -> Result<V> {
        // `and` and `or` evaluate lazily.
        if name == "and" || name == "or" {
            let mut last = V::Nil;
            let n = args.len() + usize::from(piped.is_some());
            if n == 0 {
                bail!("wrong number of args for {name}: want at least 1 got 0");
            }
            for a in args {
                last = self.arg(a, dot)?;
                if last.truthy() != (name == "and") {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut vals = args
            .iter()
            .map(|a| self.arg(a, dot))
            .collect::<Result<Vec<_>>>()?;
        if let Some(p) = piped {
            vals.push(p);
        }
        let want = |n: usize| -> Result<()> {
            if vals.len() == n {
                Ok(())
            } else {
                bail!(
                    "wrong number of args for {name}: want {n} got {}",
                    vals.len()
                )
            }
        };
        let first = |vals: &[V]| vals.first().cloned().unwrap_or(V::Nil);
        match name {
            "not" => {
                want(1)?;
                Ok(V::Bool(!first(&vals).truthy()))
            }
            "len" => {
                want(1)?;
                let n = match first(&vals) {
                    V::Str(s) | V::JsonNum(s) => s.len(),
                    V::List(l) => l.len(),
                    V::Map(m) => m.len(),
                    other => bail!("error calling len: len of type {}", other.type_name()),
                };
                Ok(V::Int(n as i64))
            }
            "index" => {
                let Some((target, keys)) = vals.split_first() else {
                    bail!("wrong number of args for index: want at least 1 got 0");
                };
                let mut cur = target.clone();
                for k in keys {
                    cur = match (cur, k) {
                        (V::Map(m), V::Str(s)) => m.get(s).cloned().unwrap_or(V::Missing),
                        (V::List(l), k) => {
                            let i = to_index(k).map_err(|e| anyhow!("error calling index: {e}"))?;
                            usize::try_from(i)
                                .ok()
                                .and_then(|i| l.get(i).cloned())
                                .ok_or_else(|| {
                                    anyhow!("error calling index: index out of range: {i}")
                                })?
                        }
                        (V::Nil | V::Missing, _) => {
                            bail!("error calling index: index of untyped nil")
                        }
                        (other, _) => bail!(
                            "error calling index: can't index item of type {}",
                            other.type_name()
                        ),
                    };
                }
                Ok(cur)
            }
            "slice" => {
                let Some((target, idx)) = vals.split_first() else {
                    bail!("wrong number of args for slice: want at least 1 got 0");
                };
                let idx: Vec<i64> = idx.iter().map(to_index).collect::<Result<_>>()?;
                let len = match target {
                    V::Str(s) | V::JsonNum(s) => s.len(),
                    V::List(l) => l.len(),
                    other => bail!(
                        "error calling slice: can't slice item of type {}",
                        other.type_name()
                    ),
                } as i64;
                let lo = idx.first().copied().unwrap_or(0);
                let hi = idx.get(1).copied().unwrap_or(len);
                if idx.len() > 2 || lo < 0 || hi < lo || hi > len {
                    bail!("error calling slice: index out of range");
                }
                let (lo, hi) = (lo as usize, hi as usize);
                Ok(match target {
                    V::Str(s) | V::JsonNum(s) => V::Str(
                        s.get(lo..hi)
                            .ok_or_else(|| anyhow!("error calling slice: index out of range"))?
                            .to_owned(),
                    ),
                    V::List(l) => V::List(l.get(lo..hi).unwrap_or(&[]).to_vec()),
                    _ => V::Nil,
                })
            }
            "eq" => {
                let Some((a, rest)) = vals.split_first() else {
                    bail!("missing argument for comparison");
                };
                if rest.is_empty() {
                    bail!("missing argument for comparison");
                }
                for b in rest {
                    if compare(a, b, "eq")? == std::cmp::Ordering::Equal {
                        return Ok(V::Bool(true));
                    }
                }
                Ok(V::Bool(false))
            }
            "ne" | "lt" | "le" | "gt" | "ge" => {
                want(2)?;
                let (a, b) = (first(&vals), vals.get(1).cloned().unwrap_or(V::Nil));
                if matches!(name, "lt" | "le" | "gt" | "ge") && matches!(a, V::Bool(_)) {
                    bail!("error calling {name}: invalid type for comparison");
                }
                let ord = compare(&a, &b, name)?;
                use std::cmp::Ordering::*;
                Ok(V::Bool(match name {
                    "ne" => ord != Equal,
                    "lt" => ord == Less,
                    "le" => ord != Greater,
                    "gt" => ord == Greater,
                    _ => ord != Less,
                }))
            }
            "print" => Ok(V::Str(sprint(&vals))),
            "println" => Ok(V::Str(
                vals.iter().map(V::print).collect::<Vec<_>>().join(" ") + "\n",
            )),
            "printf" => {
                let Some((V::Str(f), rest)) = vals.split_first() else {
                    bail!("error calling printf: format must be a string");
                };
                Ok(V::Str(printf(f, rest)?))
            }
            "html" => Ok(V::Str(escape_html(&sprint(&vals)))),
            "js" => Ok(V::Str(escape_js(&sprint(&vals)))),
            "urlquery" => Ok(V::Str(query_escape(&sprint(&vals)))),
            "call" => bail!("error calling call: the variables hold no functions"),
            other => bail!("function {other:?} not defined"),
        }
    }

    fn command(&mut self, cmd: &[Arg], dot: &V, piped: Option<V>) -> Result<V> {
        match cmd {
            [Arg::Ident(name), args @ ..] => self.call(name, args, dot, piped),
            [single] if piped.is_none() => self.arg(single, dot),
            [first, ..] => {
                let what = match first {
                    Arg::Lit(v) => v.print(),
                    _ => "value".to_owned(),
                };
                bail!("can't give argument to non-function {what}")
            }
            [] => bail!("empty command"),
        }
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &V) -> Result<V> {
        let mut value: Option<V> = None;
        for cmd in &p.cmds {
            value = Some(self.command(cmd, dot, value.take())?);
        }
        let value = value.unwrap_or(V::Nil);
        if let Some(name) = p.vars.first() {
            if p.declare {
                self.vars.push((name.clone(), value.clone()));
            } else {
                let slot = self
                    .vars
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| anyhow!("undefined variable: {name}"))?;
                slot.1 = value.clone();
            }
        }
        Ok(value)
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            bail!("template execution exceeded {MAX_STEPS} steps");
        }
        Ok(())
    }

    fn run(&mut self, nodes: &[Node], dot: &V) -> Result<Flow> {
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&v.print());
                    }
                }
                Node::If(p, then, els) => {
                    let mark = self.vars.len();
                    let cond = self.pipeline(p, dot)?;
                    let flow = self.run(if cond.truthy() { then } else { els }, dot)?;
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let flow = if v.truthy() {
                        self.run(body, &v)?
                    } else {
                        self.run(els, dot)?
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(p, body, els) => {
                    let flow = self.range(p, body, els, dot)?;
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, p: &Pipeline, body: &[Node], els: &[Node], dot: &V) -> Result<Flow> {
        let mark = self.vars.len();
        // The range value is evaluated without binding; the variables
        // take key and element per iteration.
        let bare = Pipeline {
            vars: Vec::new(),
            declare: false,
            cmds: p.cmds.clone(),
        };
        let v = self.pipeline(&bare, dot)?;
        let items: Vec<(V, V)> = match v {
            V::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, e)| (V::Int(i as i64), e))
                .collect(),
            V::Map(m) => m.into_iter().map(|(k, e)| (V::Str(k), e)).collect(),
            V::Int(n) => {
                if n > MAX_STEPS as i64 {
                    bail!("range over {n} exceeds {MAX_STEPS} iterations");
                }
                (0..n.max(0)).map(|i| (V::Int(i), V::Int(i))).collect()
            }
            V::Missing | V::Nil => Vec::new(),
            other => bail!("range can't iterate over {}", other.print()),
        };
        if items.is_empty() {
            let flow = self.run(els, dot)?;
            self.vars.truncate(mark);
            return Ok(flow);
        }
        for (key, elem) in items {
            let iter_mark = self.vars.len();
            match p.vars.as_slice() {
                [] => {}
                [e] => self.bind(e, p.declare, elem.clone())?,
                [k, e, ..] => {
                    self.bind(k, p.declare, key)?;
                    self.bind(e, p.declare, elem.clone())?;
                }
            }
            let flow = self.run(body, &elem)?;
            self.vars.truncate(iter_mark);
            if matches!(flow, Flow::Break) {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn bind(&mut self, name: &str, declare: bool, v: V) -> Result<()> {
        if declare {
            self.vars.push((name.to_owned(), v));
            return Ok(());
        }
        let slot = self
            .vars
            .iter_mut()
            .rev()
            .find(|(n, _)| n == name)
            .ok_or_else(|| anyhow!("undefined variable: {name}"))?;
        slot.1 = v;
        Ok(())
    }
}

/// Renders `template` over `vars` as OPA does.
fn render(template: &str, vars: &Value) -> Result<String> {
    let pieces = split(template)?;
    let mut iter = pieces.into_iter().peekable();
    let (nodes, _) = parse_nodes(&mut iter, 0)?;
    let root = V::from_value(vars)?;
    let mut exec = Exec {
        out: String::new(),
        vars: vec![("$".to_owned(), root.clone())],
        steps: 0,
    };
    exec.run(&nodes, &root)
        .map_err(|e| anyhow!("template: template: executing \"template\": {e}"))?;
    Ok(exec.out.replace("<no value>", "<undefined>"))
}

/// Executes a Go `text/template` over variables given as JSON (for
/// templates outside Rego, such as `regard doc -t`). Errors read as Go's.
pub(crate) fn render_json(template: &str, vars: &serde_json::Value) -> Result<String> {
    let vars = Value::from_json_str(&vars.to_string())?;
    render(template, &vars)
}

fn render_template(args: &[Value]) -> Result<Value> {
    let name = "strings.render_template";
    let [template, vars] = args else {
        bail!("{name}: expects 2 arguments");
    };
    let template = str_operand(name, 1, template)?;
    object_operand(name, 2, vars)?;
    render(template, vars)
        .map(Value::from)
        .map_err(|e| anyhow!("{name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, vars: &str) -> String {
        render(t, &Value::from_json_str(vars).unwrap()).unwrap()
    }

    fn e(t: &str, vars: &str) -> String {
        render(t, &Value::from_json_str(vars).unwrap())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn fields_and_missing_keys() {
        assert_eq!(
            r("Hello {{.name}}!", r#"{"name": "world"}"#),
            "Hello world!"
        );
        assert_eq!(
            r("{{.a.b}}-{{.missing}}", r#"{"a": {"b": 1.5}}"#),
            "1.5-<undefined>"
        );
        assert_eq!(
            r(
                "{{.m}} {{.l}} {{.n}}",
                r#"{"m": {"b": 2, "a": "x"}, "l": [1, "a", null], "n": null}"#
            ),
            "map[a:x b:2] [1 a <nil>] <nil>"
        );
    }

    #[test]
    fn control_flow() {
        let vars =
            r#"{"items": ["a", "b", "c"], "flag": true, "empty": [], "m": {"y": 2, "x": 1}}"#;
        assert_eq!(r("{{range .items}}[{{.}}]{{end}}", vars), "[a][b][c]");
        assert_eq!(
            r("{{range $i, $e := .items}}{{$i}}={{$e}} {{end}}", vars),
            "0=a 1=b 2=c "
        );
        assert_eq!(r("{{range $k, $v := .m}}{{$k}}{{$v}}{{end}}", vars), "x1y2");
        assert_eq!(r("{{range .empty}}x{{else}}none{{end}}", vars), "none");
        assert_eq!(
            r(
                "{{range .items}}{{if eq . \"b\"}}{{break}}{{end}}{{.}}{{end}}",
                vars
            ),
            "a"
        );
        assert_eq!(r("{{if .flag}}yes{{else}}no{{end}}", vars), "yes");
        assert_eq!(
            r("{{if .nope}}1{{else if .flag}}2{{else}}3{{end}}", vars),
            "2"
        );
        assert_eq!(r("{{with .m}}{{.x}}{{end}}", vars), "1");
        assert_eq!(r("{{$x := len .items}}{{$x}}", vars), "3");
        assert_eq!(r("a  {{- /* c */ -}}  b", vars), "ab");
        assert_eq!(r("{{range 3}}{{.}}{{end}}", vars), "012");
    }

    #[test]
    fn functions() {
        let vars = r#"{"s": "a<b", "n": 0, "l": [1, 2, 3]}"#;
        assert_eq!(r("{{.s | html}}", vars), "a&lt;b");
        assert_eq!(r("{{printf \"%s-%d\" .s 7}}", vars), "a<b-7");
        assert_eq!(r("{{index .l 1}} {{slice .l 1 2}}", vars), "2 [2]");
        assert_eq!(
            r("{{and 1 0}} {{or 0 \"x\"}} {{not true}}", vars),
            "0 x false"
        );
        // json.Number is a string kind, as in OPA.
        assert_eq!(
            r("{{if .n}}truthy{{end}} {{eq .n \"0\"}}", vars),
            "truthy true"
        );
        assert_eq!(r("{{print 1 2 \"a\" \"b\"}}", vars), "1 2ab");
    }

    #[test]
    fn errors_are_clear() {
        assert_eq!(
            e("{{if .a}}x", "{}"),
            "template: template:1: unexpected EOF"
        );
        assert_eq!(
            e("{{end}}", "{}"),
            "template: template:1: unexpected {{end}}"
        );
        assert_eq!(
            e("{{template \"x\"}}", "{}"),
            "template: template:1: {{template}} is not supported by strings.render_template in regard"
        );
        assert_eq!(
            e("{{eq .n 1}}", r#"{"n": 1}"#),
            "template: template: executing \"template\": error calling eq: incompatible types for comparison"
        );
        assert_eq!(
            e("{{nofunc 1}}", "{}"),
            "template: template: executing \"template\": function \"nofunc\" not defined"
        );
    }
}
