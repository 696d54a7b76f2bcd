//! go-akka's HOCON parser: builds the value tree from tokens, one function
//! for each of go-akka's (`parseObject`, `parseKeyContent`, `ParseValue`,
//! `ParseArray`), then resolves substitutions (see `resolve`). Its rules:
//! `=`/`:` starts a fresh value that remembers the key's previous one; an
//! object assigned again merges the previous objects in; `+=` appends a
//! substitution of the key itself before each value; values on one line
//! concatenate with the spaces between them; `a.b` opens one key of a
//! nested object; `include "file"` parses the file (relative to the working
//! directory, as conftest does) and merges its keys in where absent.
//! Tokens that are out of place where a key is expected are skipped, as
//! go-akka skips them; a `}` at the top level ends the document.

use super::Failure;
use super::resolve::resolve;
use super::tokenizer::{Token, Tokenizer};
use super::tree::{Elem, Tree, ValueId};
use crate::input::support::MAX_NESTING;

/// Includes followed before giving up (go-akka recurses without limit).
const MAX_INCLUDE_DEPTH: usize = 16;

/// How the parser reaches the outside: environment variables for
/// unresolved substitutions, files for `include`.
pub(super) struct Context<'a> {
    pub(super) env: &'a (dyn Fn(&str) -> Option<String> + Sync),
    pub(super) include: &'a (dyn Fn(&str) -> Result<Vec<u8>, String> + Sync),
}

/// A parsed (and resolved) document: its root value and its substitutions.
pub(super) struct Document {
    pub(super) root: ValueId,
    pub(super) subs: Vec<usize>,
}

/// Parses and resolves one document into `tree`.
pub(super) fn parse_document(
    tree: &mut Tree,
    text: &[u8],
    context: &Context<'_>,
    include_depth: usize,
) -> Result<Document, Failure> {
    let root = tree.new_value();
    let mut parser = Parser {
        tok: Tokenizer::new(text),
        tree,
        subs: Vec::new(),
        context,
        include_depth,
        depth: 0,
    };
    parser.tok.pull_whitespace_and_comments();
    parser.parse_object(root, true, b"")?;
    let subs = parser.subs;
    resolve(tree, root, &subs, context.env)?;
    Ok(Document { root, subs })
}

struct Parser<'p, 'c> {
    tok: Tokenizer<'p>,
    tree: &'p mut Tree,
    subs: Vec<usize>,
    context: &'p Context<'c>,
    include_depth: usize,
    depth: usize,
}

fn join_path(path: &[u8], key: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return key.to_vec();
    }
    let mut out = path.to_vec();
    out.push(b'.');
    out.extend_from_slice(key);
    out
}

impl Parser<'_, '_> {
    fn deeper(&mut self) -> Result<(), Failure> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Failure::at(
                self.tok.index,
                format!("nesting deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn parse_object(&mut self, owner: ValueId, root: bool, path: &[u8]) -> Result<(), Failure> {
        self.deeper()?;
        let result = self.parse_object_body(owner, root, path);
        self.depth -= 1;
        result
    }

    fn parse_object_body(
        &mut self,
        owner: ValueId,
        root: bool,
        path: &[u8],
    ) -> Result<(), Failure> {
        if !self.tree.is_object(owner)? {
            let obj = self.tree.new_object();
            self.tree.clear(owner)?;
            self.tree.append(owner, Elem::Object(obj))?;
        }
        // A key assigned an object again merges what it held before.
        let mut current = owner;
        while let Some(old) = self.tree.value(current)?.old {
            let (Some(old_obj), Some(obj)) =
                (self.tree.get_object(old)?, self.tree.get_object(current)?)
            else {
                break;
            };
            self.tree.merge(obj, old_obj)?;
            current = old;
        }
        let Some(object) = self.tree.get_object(owner)? else {
            return Err(Failure::at(self.tok.index, "expected an object"));
        };

        while !self.tok.eof() {
            self.tok.pull_whitespace_and_comments();
            let at = self.tok.index;
            match self.tok.pull_next()? {
                Token::Include(name) => self.include(owner, &name, path, at)?,
                Token::Key(key) => {
                    let value = self.tree.get_or_create_key(object, &key)?;
                    self.parse_key_content(value, &join_path(path, &key))?;
                    if !root {
                        return Ok(());
                    }
                }
                Token::ObjectEnd => return Ok(()),
                _ => {}
            }
        }
        Ok(())
    }

    fn parse_key_content(&mut self, value: ValueId, path: &[u8]) -> Result<(), Failure> {
        while !self.tok.eof() {
            match self.tok.pull_next()? {
                Token::Dot => return self.parse_object(value, false, path),
                token @ (Token::Assign | Token::PlusAssign) => {
                    if !self.tree.is_object(value)? {
                        self.tree.clear(value)?;
                    }
                    return self.parse_value(value, token == Token::PlusAssign, path);
                }
                Token::ObjectStart => return self.parse_object(value, true, path),
                _ => {}
            }
        }
        Ok(())
    }

    fn parse_value(&mut self, owner: ValueId, plus: bool, path: &[u8]) -> Result<(), Failure> {
        self.deeper()?;
        let result = self.parse_value_body(owner, plus, path);
        self.depth -= 1;
        result
    }

    fn parse_value_body(&mut self, owner: ValueId, plus: bool, path: &[u8]) -> Result<(), Failure> {
        if self.tok.eof() {
            return Err(Failure::at(
                self.tok.index,
                "end of file reached while trying to read a value",
            ));
        }
        self.tok.pull_whitespace_and_comments();
        while self.tok.is_value() {
            let at = self.tok.index;
            let token = self.tok.pull_value()?;
            if plus {
                // `a += x` reads as `a = ${a} x`, once per value read.
                let sub = self.tree.new_sub(path.to_vec(), false, at);
                self.subs.push(sub);
                self.tree.append(owner, Elem::Sub(sub))?;
            }
            match token {
                Token::Literal(text) => {
                    if self.tree.is_object(owner)? {
                        self.tree.clear(owner)?;
                    }
                    self.tree.append(owner, Elem::Literal(text))?;
                }
                Token::ObjectStart => self.parse_object(owner, true, path)?,
                Token::ArrayStart => {
                    let items = self.parse_array(path)?;
                    self.tree.append(owner, Elem::Array(items))?;
                }
                Token::Substitution {
                    path: target,
                    optional,
                } => {
                    let sub = self.tree.new_sub(target, optional, at);
                    self.subs.push(sub);
                    self.tree.append(owner, Elem::Sub(sub))?;
                }
                _ => {}
            }
            if self.tok.is_space_or_tab() {
                let ws = self.tok.pull_space_or_tab();
                if !ws.is_empty() {
                    self.tree.append(owner, Elem::Literal(ws))?;
                }
            }
        }
        if self.tok.is_comma() {
            self.tok.skip(1);
        }
        if self.tok.is_backslash_n() {
            self.tok.skip(2);
        }
        Ok(())
    }

    fn parse_array(&mut self, path: &[u8]) -> Result<Vec<ValueId>, Failure> {
        let mut items = Vec::new();
        while !self.tok.eof() && !self.tok.is_array_end() {
            let before = self.tok.index;
            let item = self.tree.new_value();
            self.parse_value(item, false, path)?;
            items.push(item);
            self.tok.pull_whitespace_and_comments();
            if self.tok.index == before {
                // go-akka loops forever here.
                return Err(Failure::at(before, "expected a value or ']' in array"));
            }
        }
        self.tok.skip(1);
        Ok(items)
    }

    /// go-akka's include: the file is parsed (and resolved) on its own, its
    /// substitutions are re-resolved here under the including key's path,
    /// and its keys merge in where this object has none.
    fn include(
        &mut self,
        owner: ValueId,
        name: &[u8],
        path: &[u8],
        at: usize,
    ) -> Result<(), Failure> {
        let name = String::from_utf8_lossy(name).into_owned();
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(Failure::at(
                at,
                format!("include \"{name}\": includes nested deeper than {MAX_INCLUDE_DEPTH}"),
            ));
        }
        let text = (self.context.include)(&name)
            .map_err(|e| Failure::at(at, format!("include \"{name}\": {e}")))?;
        let document = parse_document(self.tree, &text, self.context, self.include_depth + 1)
            .map_err(|f| {
                let inner = match f.offset {
                    Some(offset) => {
                        let text = String::from_utf8_lossy(&text);
                        let (line, column) = crate::input::support::line_col(&text, offset);
                        format!("{line}:{column}: {}", f.message)
                    }
                    None => f.message,
                };
                Failure::at(at, format!("include \"{name}\": {inner}"))
            })?;
        for &sub in &document.subs {
            let s = self.tree.sub_mut(sub)?;
            let mut prefixed = path.to_vec();
            prefixed.push(b'.');
            prefixed.extend_from_slice(&s.path);
            s.path = prefixed;
            // Errors about it point at the include directive.
            s.offset = at;
        }
        self.subs.extend(document.subs);
        let (Some(other), Some(mine)) = (
            self.tree.get_object(document.root)?,
            self.tree.get_object(owner)?,
        ) else {
            return Err(Failure::at(
                at,
                format!("include \"{name}\": not an object"),
            ));
        };
        self.tree.merge(mine, other)
    }
}
