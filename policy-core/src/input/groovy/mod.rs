//! Groovy and Jenkinsfiles as the concrete syntax tree conftest gives
//! policies: `{kind, text?, line, column, children?}` objects. Interior
//! nodes carry a syntax kind (`FileNode`, `ExpressionStmt`, `CallExpr`,
//! `IdentExpr`, `ClosureExpr`, `GStringExpr`, …) and take the position of
//! their first child; tokens carry a token kind (`Identifier`,
//! `StringLiteral`, `GStringBegin`, `LBrace`, …) and their source text,
//! quotes included. Positions are 1-based (columns in characters);
//! comments and whitespace are dropped; trees deeper than 256 levels or
//! larger than 100,000 nodes are refused.
//!
//! Flow: [`lexer`] splits the text into tokens, [`parser`] builds the
//! [`cst`] tree, this module checks its size and converts it to a Rego
//! value. The first syntax error is reported as
//! `parse groovy at LINE:COL: message`, as conftest does.
//!
//! Why a parser of our own: conftest uses the Go library
//! `groovy-parser-go`, whose node kinds and tree shape policies match on.
//! The only Groovy parser on crates.io, `tree-sitter-groovy`, builds a
//! differently shaped tree (juxtaposed calls, string fragments, different
//! nesting), needs a C compiler, and recovers from errors instead of
//! refusing them; re-shaping its tree would mean re-lexing every string
//! and re-deciding most constructs anyway. The part of Groovy 2.4 that
//! Jenkins pipelines use is small enough to parse directly into the shape
//! conftest's policies expect.

mod cst;
mod lexer;
mod parser;

use std::path::Path;

use regorus::Value;

use self::cst::{Node, ParseError};
use super::support::{error, object};
use crate::error::Result;

/// The deepest tree accepted (the root is level 1).
pub(super) const MAX_DEPTH: usize = 256;
/// The most nodes (interior nodes and tokens) accepted.
const MAX_NODES: usize = 100_000;

/// Stack for the parser thread. The parser recurses once per nesting level
/// (bounded in [`parser`]); a debug build needs about 16 KiB a level, and
/// the stacks of callers' threads (2 MiB for spawned threads) are not ours
/// to size. The memory is reserved, not committed, until used.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// Parses one Groovy file, on a thread of its own (see [`PARSER_STACK`]).
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("groovy-parser".to_owned())
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || parse_here(text, path))
            .map_err(|e| error(path, format!("parse groovy: starting the parser: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(error(path, "parse groovy: the parser panicked")))
    })
}

/// Lexes, parses, checks and converts; the tree is also dropped here,
/// since dropping a deeply nested tree recurses too.
fn parse_here(text: &str, path: &Path) -> Result<Value> {
    let positions = Positions::new(text);
    let tree = lexer::tokenize(text)
        .and_then(|tokens| parser::parse(text, tokens))
        .map_err(|e| match e {
            ParseError::TooDeep => error(
                path,
                format!("parse groovy: syntax tree exceeds maximum depth of {MAX_DEPTH}"),
            ),
            ParseError::Syntax { offset, message } => {
                let (line, column) = positions.at(offset);
                error(path, format!("parse groovy at {line}:{column}: {message}"))
            }
        })?;
    check_size(&tree).map_err(|m| error(path, format!("parse groovy: {m}")))?;
    Ok(convert(&tree, text, &positions))
}

/// Refuses trees over the depth or node limits, without recursion.
fn check_size(root: &Node) -> std::result::Result<(), String> {
    let mut stack = vec![(root, 1_usize)];
    let mut nodes = 1_usize;
    while let Some((node, depth)) = stack.pop() {
        if let Node::Tree { children, .. } = node {
            if children.is_empty() {
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(format!("syntax tree exceeds maximum depth of {MAX_DEPTH}"));
            }
            nodes += children.len();
            if nodes > MAX_NODES {
                return Err(format!(
                    "syntax tree exceeds maximum node count of {MAX_NODES}"
                ));
            }
            stack.extend(children.iter().map(|c| (c, depth + 1)));
        }
    }
    Ok(())
}

/// The Rego value of a node; recursion is bounded by [`check_size`].
fn convert(node: &Node, text: &str, positions: &Positions<'_>) -> Value {
    match node {
        Node::Token { kind, start, end } => {
            let (line, column) = positions.at(*start);
            object([
                ("kind".to_owned(), Value::from(*kind)),
                (
                    "text".to_owned(),
                    Value::from(text.get(*start..*end).unwrap_or("")),
                ),
                ("line".to_owned(), Value::from(line as u64)),
                ("column".to_owned(), Value::from(column as u64)),
            ])
        }
        Node::Tree { kind, children } => {
            let children: Vec<Value> = children
                .iter()
                .map(|c| convert(c, text, positions))
                .collect();
            let (line, column) = match children.first() {
                Some(first) => (first["line"].clone(), first["column"].clone()),
                None => (Value::from(1_u64), Value::from(1_u64)),
            };
            let mut entries = vec![
                ("kind".to_owned(), Value::from(*kind)),
                ("line".to_owned(), line),
                ("column".to_owned(), column),
            ];
            if !children.is_empty() {
                entries.push(("children".to_owned(), Value::from(children)));
            }
            object(entries)
        }
    }
}

/// Byte offsets to 1-based lines and character columns.
struct Positions<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Positions { text, line_starts }
    }

    fn at(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        (line, column + 1)
    }
}

#[cfg(test)]
mod tests;
