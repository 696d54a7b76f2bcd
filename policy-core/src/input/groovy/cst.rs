//! The concrete syntax tree the parser builds: interior nodes with a kind
//! and children, token leaves with a kind and a source range. Converting it
//! to the Rego envelope (and the size checks) happens in the parent module.

/// A node of the concrete syntax tree.
#[derive(Debug)]
pub(super) enum Node {
    /// An interior node (`CallExpr`, `ClosureExpr`, …).
    Tree {
        kind: &'static str,
        children: Vec<Node>,
    },
    /// A token (`Identifier`, `StringLiteral`, `LBrace`, …) covering
    /// `start..end` of the source.
    Token {
        kind: &'static str,
        start: usize,
        end: usize,
    },
}

impl Node {
    pub(super) fn tree(kind: &'static str, children: Vec<Node>) -> Node {
        Node::Tree { kind, children }
    }
}

/// Why parsing stopped.
#[derive(Debug)]
pub(super) enum ParseError {
    /// The first syntax error: a byte offset and what is wrong there.
    Syntax { offset: usize, message: String },
    /// Nesting deeper than the tree may be (reported without a position,
    /// as the size checks on the finished tree are).
    TooDeep,
}
