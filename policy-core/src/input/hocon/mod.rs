//! HOCON, read exactly as conftest reads it: with go-akka's parser
//! (`github.com/go-akka/configuration`), then walked and typed as conftest's
//! `parser/hocon` walks it.
//!
//! go-akka is not the HOCON specification, and conftest users' files are
//! read by go-akka's rules, so no spec-following crate (hocon-rs, hocon)
//! can give the same answers: there a re-assignment to an unresolved
//! optional substitution keeps the earlier value by the spec's rules, not
//! go-akka's; `${a}` resolves against the whole merged document, not against
//! what `a` held before; `+=` builds arrays, not go-akka's self-reference;
//! `[]` is an array, not "unknown"; unterminated brackets and strings are
//! errors, not the end of the document. So the pipeline is ported from
//! go-akka: `tokenizer` (bytes to tokens) → `parser` (tokens to go-akka's
//! value tree, `tree`) → `resolve` (substitutions, by root path, then the
//! environment) → the walk below, which takes conftest's path through
//! go-akka's `Config` API: objects stay objects, every other value becomes
//! go-akka's string form, typed like an INI value (a float-looking string
//! becomes a number, a Go bool string a boolean). So strings containing a
//! space or tab gain surrounding double quotes (`"\"hello world\""`), an
//! empty string or `null` becomes the two-character string `""`, an array
//! becomes one string such as `"[a,b,c]"`, and a value with nothing in it
//! (an unresolved optional substitution, `[]`) becomes `"<<unknown value>>"`.
//!
//! Where go-akka or conftest crash (a Go panic: an unresolved required
//! substitution, a cycle, a top-level key that does not hold an object, a
//! key containing `.` or `"`), regard reports a parse error naming the file
//! and, where it has one, the line and column. Where go-akka would recurse
//! or loop forever, regard stops with an error: nesting, substitution
//! chains, includes and total work are bounded.

mod parser;
mod resolve;
mod tokenizer;
mod tree;

use std::path::Path;

use regorus::Value;

use super::support::{error, error_at_offset, object, typed_scalar};
use crate::error::Result;
use parser::{Context, parse_document};
use tree::{Tree, ValueId, go_lossy};

/// A go-akka panic (or a limit), with the byte offset it concerns if any.
#[derive(Debug)]
struct Failure {
    message: String,
    offset: Option<usize>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            offset: None,
        }
    }

    fn at(offset: usize, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            offset: Some(offset),
        }
    }
}

/// Parses one HOCON document, with substitutions falling back to the
/// process environment and includes read relative to the working directory
/// (both as conftest does).
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    on_big_stack(path, || {
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let include = |name: &str| std::fs::read(name).map_err(|e| e.to_string());
        parse_with(
            text,
            path,
            &Context {
                env: &env,
                include: &include,
            },
        )
    })
}

/// Stack for one document: the reads recurse up to the depth limits, which
/// a test thread's or a worker's default stack cannot always hold.
const STACK_SIZE: usize = 64 * 1024 * 1024;

/// Runs `f` on a thread of its own with [`STACK_SIZE`] of stack.
fn on_big_stack<F>(path: &Path, f: F) -> Result<Value>
where
    F: FnOnce() -> Result<Value> + Send,
{
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("hocon".to_owned())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, f)
            .map_err(|e| error(path, format!("cannot start the HOCON reader: {e}")))?;
        handle
            .join()
            .unwrap_or_else(|_| Err(error(path, "internal error: the HOCON reader panicked")))
    })
}

fn parse_with(text: &str, path: &Path, context: &Context<'_>) -> Result<Value> {
    let mut tree = Tree::default();
    parse_document(&mut tree, text.as_bytes(), context, 0)
        .and_then(|doc| shape(&tree, doc.root))
        .map_err(|f| match f.offset {
            Some(offset) => error_at_offset(path, text, offset, f.message),
            None => error(path, f.message),
        })
}

/// Deepest object walk (a substitution can make an object contain itself).
const MAX_WALK_DEPTH: usize = 512;

/// conftest's `Unmarshal`: every top-level key must hold an object.
fn shape(tree: &Tree, root: ValueId) -> Result<Value, Failure> {
    let Some(root_object) = tree.get_object(root)? else {
        return Err(Failure::new("the document is not an object"));
    };
    let mut entries = Vec::new();
    for key in &tree.object(root_object)?.keys {
        let node = tree
            .get_node(root, key)?
            .ok_or_else(|| unreachable_key(key))?;
        if !tree.is_object(node)? {
            return Err(Failure::new(format!(
                "top-level key \"{}\" does not hold an object (conftest's HOCON reader \
                 crashes on this)",
                go_lossy(key)
            )));
        }
        entries.push((go_lossy(key), walk(tree, root, node, key, 0)?));
    }
    Ok(object(entries))
}

/// conftest's `getConfig`: each key is looked up again from the root by its
/// dotted path, an object recursed into, anything else typed.
fn walk(
    tree: &Tree,
    root: ValueId,
    node: ValueId,
    path: &[u8],
    depth: usize,
) -> Result<Value, Failure> {
    if depth > MAX_WALK_DEPTH {
        return Err(Failure::new(format!(
            "objects nested deeper than {MAX_WALK_DEPTH} levels (does an object contain itself \
             through a substitution?)"
        )));
    }
    let Some(obj) = tree.get_object(node)? else {
        return Err(Failure::new(format!(
            "\"{}\" is not an object",
            go_lossy(path)
        )));
    };
    let mut entries = Vec::new();
    for key in &tree.object(obj)?.keys {
        let mut full = path.to_vec();
        full.push(b'.');
        full.extend_from_slice(key);
        let child = tree
            .get_node(root, &full)?
            .ok_or_else(|| unreachable_key(&full))?;
        let value = if tree.is_object(child)? {
            walk(tree, root, child, &full, depth + 1)?
        } else {
            let text = go_lossy(&tree.to_go_string(child, 0)?);
            typed_scalar(&text).map_err(Failure::new)?
        };
        entries.push((go_lossy(key), value));
    }
    Ok(object(entries))
}

/// conftest looks keys up by a dotted path that ignores quoting, so a key
/// containing `.` or `"` is not found again, and conftest crashes.
fn unreachable_key(path: &[u8]) -> Failure {
    Failure::new(format!(
        "key path \"{}\" cannot be looked up (a key containing '.' or '\"'; conftest's \
         HOCON reader crashes on this)",
        go_lossy(path)
    ))
}

#[cfg(test)]
mod tests;
