//! Groovy and Jenkinsfiles as a syntax tree, in the envelope conftest
//! uses: `{kind, text?, line, column, children?}` where tokens carry their
//! `text`, an inner node takes the position of its first child, positions
//! are 1-based, comments and zero-width nodes are dropped, and trees deeper
//! than 256 levels or larger than 100,000 nodes are refused.
//!
//! Parsed with the tree-sitter Groovy grammar (`tree-sitter-groovy`), the
//! only Groovy parser on crates.io. Its node kinds are tree-sitter's
//! (`source_file`, `identifier`, `closure`, `string`, …), not the kinds of
//! the Go parser conftest uses (`FileNode`, `Identifier`, `ClosureExpr`,
//! …): policies that match on `kind` need adapting; `text`, `line` and
//! `column` mean the same. tree-sitter recovers from syntax errors; any
//! error or missing node is reported as a parse error here.
//!
//! Behind the default-on `groovy` cargo feature (it compiles C code).

use std::path::Path;

use regorus::Value;

use super::support::error;
use crate::error::Result;

const MAX_DEPTH: usize = 256;
const MAX_NODES: usize = 100_000;

/// Parses one Groovy file.
#[cfg(feature = "groovy")]
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    use super::support::error_at;

    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_groovy::LANGUAGE.into())
        .map_err(|e| error(path, format!("loading the Groovy grammar: {e}")))?;
    let tree = parser
        .parse(text, None)
        .ok_or_else(|| error(path, "parse groovy: the parser gave no tree"))?;
    let root = tree.root_node();
    if root.has_error() {
        let (node, what) = first_error(root);
        let (line, column) = position(text, node.start_position());
        return Err(error_at(
            path,
            line,
            column,
            format!("parse groovy: {what}"),
        ));
    }
    let mut count = 0_usize;
    convert(root, text, 1, &mut count).map_err(|m| error(path, format!("parse groovy: {m}")))
}

#[cfg(feature = "groovy")]
fn first_error(node: tree_sitter::Node<'_>) -> (tree_sitter::Node<'_>, String) {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.is_missing() {
            return (n, format!("missing {}", n.kind()));
        }
        if n.is_error() {
            return (n, "syntax error".to_owned());
        }
        let mut cursor = n.walk();
        let children: Vec<_> = n.children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    (node, "syntax error".to_owned())
}

/// 1-based line and character column of a tree-sitter point.
#[cfg(feature = "groovy")]
fn position(text: &str, point: tree_sitter::Point) -> (usize, usize) {
    let line_text = text.lines().nth(point.row).unwrap_or("");
    let column = line_text
        .get(..point.column.min(line_text.len()))
        .map_or(0, |s| s.chars().count());
    (point.row + 1, column + 1)
}

#[cfg(feature = "groovy")]
fn convert(
    node: tree_sitter::Node<'_>,
    text: &str,
    depth: usize,
    count: &mut usize,
) -> Result<Value, String> {
    use super::support::object;

    *count += 1;
    if *count > MAX_NODES {
        return Err(format!(
            "syntax tree exceeds maximum node count of {MAX_NODES}"
        ));
    }
    if depth > MAX_DEPTH {
        return Err(format!("syntax tree exceeds maximum depth of {MAX_DEPTH}"));
    }
    let (line, column) = position(text, node.start_position());
    if node.child_count() == 0 {
        let token = text.get(node.byte_range()).unwrap_or("");
        return Ok(object([
            ("kind".to_owned(), Value::from(node.kind())),
            ("text".to_owned(), Value::from(token)),
            ("line".to_owned(), Value::from(line as u64)),
            ("column".to_owned(), Value::from(column as u64)),
        ]));
    }
    let mut children = Vec::new();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.is_extra() || child.start_byte() == child.end_byte() {
            continue;
        }
        children.push(convert(child, text, depth + 1, count)?);
    }
    let (line, column) = match children.first() {
        Some(first) => (first["line"].clone(), first["column"].clone()),
        None => (Value::from(line as u64), Value::from(column as u64)),
    };
    let mut entries = vec![
        ("kind".to_owned(), Value::from(node.kind())),
        ("line".to_owned(), line),
        ("column".to_owned(), column),
    ];
    if !children.is_empty() {
        entries.push(("children".to_owned(), Value::from(children)));
    }
    Ok(object(entries))
}

/// Without the `groovy` feature, Groovy files are refused.
#[cfg(not(feature = "groovy"))]
pub(crate) fn parse(_text: &str, path: &Path) -> Result<Value> {
    let _ = (MAX_DEPTH, MAX_NODES);
    Err(error(
        path,
        "this build of regard has no Groovy support (cargo feature `groovy`)",
    ))
}

#[cfg(all(test, feature = "groovy"))]
mod tests {
    use super::*;

    fn find<'a>(v: &'a Value, kind: &str, text: &str, out: &mut Vec<&'a Value>) {
        if v["kind"] == Value::from(kind) && v["text"] == Value::from(text) {
            out.push(v);
        }
        if let Ok(children) = v["children"].as_array() {
            for c in children {
                find(c, kind, text, out);
            }
        }
    }

    #[test]
    fn pipeline_tokens_have_positions() {
        let text = "pipeline {\n  agent any\n  stages {\n    stage('Build') {\n      steps {\n        sh 'make build'\n      }\n    }\n  }\n}\n";
        let v = parse(text, Path::new("Jenkinsfile")).unwrap_or_else(|e| panic!("{e}"));
        let mut hits = Vec::new();
        find(&v, "identifier", "sh", &mut hits);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["line"], Value::from(6_u64));
        assert_eq!(hits[0]["column"], Value::from(9_u64));
        assert_eq!(v["line"], Value::from(1_u64));
    }

    #[test]
    fn syntax_errors_are_errors() {
        let err = parse("pipeline {\n  stage('x' {\n", Path::new("Jenkinsfile"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("Jenkinsfile:")),
            "{err:?}"
        );
    }
}
