//! The `location` path grammar of Gatekeeper mutators.
//!
//! A location such as `spec.containers[name: *].securityContext.runAsNonRoot`
//! is scanned into tokens (field names, integers, quoted strings, `.`, `[`,
//! `]`, `:`, `*`) and parsed into a list of [`PathNode`]s: a field of an
//! object, or an element of a list selected by a key field (`[name: foo]`,
//! `[port: 80]`) or every element (`[name: *]`). The grammar and the printed
//! form follow Gatekeeper's parser; the error messages are ours and say where
//! the input went wrong.

use std::fmt;

/// The most steps a location may have (real ones have a handful).
pub const MAX_NODES: usize = 256;

/// The key of a list path node: which elements it selects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListKey {
    /// `[key: *]`: every element.
    Glob,
    /// `[key: value]` or `[key: "value"]`: the element whose key field is this string.
    String(String),
    /// `[key: 80]`: the element whose key field is this integer.
    Int(i64),
}

/// One step of a location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathNode {
    /// A field of an object.
    Object(String),
    /// Elements of a list, selected by `key_field`.
    List {
        /// The field that identifies an element (`name` in `[name: foo]`).
        key_field: String,
        /// Which elements.
        key: ListKey,
    },
}

impl PathNode {
    /// Whether this node is a list node.
    pub fn is_list(&self) -> bool {
        matches!(self, PathNode::List { .. })
    }
}

/// A parsed `location`.
///
/// ```
/// use policy_core::mutation::{ListKey, Location, PathNode};
/// let loc: Location = "spec.containers[name: *].image".parse().unwrap();
/// assert_eq!(loc.nodes().len(), 4);
/// assert_eq!(loc.nodes()[2], PathNode::List { key_field: "name".into(), key: ListKey::Glob });
/// assert_eq!(loc.to_string(), "spec.containers[name: *].image");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Location {
    nodes: Vec<PathNode>,
}

/// Why a location could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// A quoted segment has no closing quote.
    #[error("unterminated string starting at position {position}")]
    UnterminatedString {
        /// Byte offset of the opening quote.
        position: usize,
    },
    /// A character outside the grammar.
    #[error("invalid character {character:?} at position {position}")]
    InvalidCharacter {
        /// The character.
        character: char,
        /// Its byte offset.
        position: usize,
    },
    /// The location ends with `.`.
    #[error("trailing separators are forbidden")]
    TrailingSeparator,
    /// A token where another was expected.
    #[error("unexpected token at position {position}: expected {expected}, got {got}")]
    UnexpectedToken {
        /// What the grammar allows here.
        expected: &'static str,
        /// What was found.
        got: String,
        /// Its byte offset.
        position: usize,
    },
    /// More steps than [`MAX_NODES`]: the walk along a location recurses
    /// once per step, so an absurd location must not exhaust the stack.
    #[error("a location has at most {MAX_NODES} steps")]
    TooLong,
    /// An integer list key that does not fit in 64 bits.
    #[error("integer key value {literal} for key {key_field:?} is out of range")]
    IntegerOverflow {
        /// The digits.
        literal: String,
        /// The list key field.
        key_field: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Int(String),
    Dot,
    LBracket,
    RBracket,
    Colon,
    Glob,
    Eof,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("field name {s:?}"),
            Token::Int(s) => format!("integer {s}"),
            Token::Dot => "'.'".to_owned(),
            Token::LBracket => "'['".to_owned(),
            Token::RBracket => "']'".to_owned(),
            Token::Colon => "':'".to_owned(),
            Token::Glob => "'*'".to_owned(),
            Token::Eof => "end of location".to_owned(),
        }
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Splits the input into tokens with their byte offsets.
fn scan(input: &str) -> Result<Vec<(usize, Token)>, LocationError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                chars.next();
            }
            '0'..='9' => {
                let mut lit = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !d.is_ascii_digit() {
                        break;
                    }
                    lit.push(d);
                    chars.next();
                }
                out.push((pos, Token::Int(lit)));
            }
            c if is_ident_char(c) => {
                let mut lit = String::new();
                while let Some(&(_, d)) = chars.peek() {
                    if !is_ident_char(d) {
                        break;
                    }
                    lit.push(d);
                    chars.next();
                }
                out.push((pos, Token::Ident(lit)));
            }
            '"' | '\'' => {
                chars.next();
                let mut lit = String::new();
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    if d == '\\' {
                        // A backslash escapes the next character, whatever it is.
                        match chars.next() {
                            Some((_, e)) => lit.push(e),
                            None => break,
                        }
                    } else {
                        lit.push(d);
                    }
                }
                if !closed {
                    return Err(LocationError::UnterminatedString { position: pos });
                }
                out.push((pos, Token::Ident(lit)));
            }
            _ => {
                let tok = match c {
                    '.' => Token::Dot,
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    ':' => Token::Colon,
                    '*' => Token::Glob,
                    _ => {
                        return Err(LocationError::InvalidCharacter {
                            character: c,
                            position: pos,
                        });
                    }
                };
                chars.next();
                out.push((pos, tok));
            }
        }
    }
    out.push((input.len(), Token::Eof));
    Ok(out)
}

struct Parser {
    tokens: std::vec::IntoIter<(usize, Token)>,
    end: usize,
}

impl Parser {
    fn next(&mut self) -> (usize, Token) {
        self.tokens.next().unwrap_or((self.end, Token::Eof))
    }

    fn unexpected(expected: &'static str, (position, got): (usize, Token)) -> LocationError {
        LocationError::UnexpectedToken {
            expected,
            got: got.describe(),
            position,
        }
    }

    fn list(&mut self) -> Result<PathNode, LocationError> {
        let key_field = match self.next() {
            (_, Token::Ident(s)) => s,
            other => return Err(Self::unexpected("a key field after '['", other)),
        };
        match self.next() {
            (_, Token::Colon) => {}
            other => return Err(Self::unexpected("':' after the key field", other)),
        }
        let key = match self.next() {
            (_, Token::Glob) => ListKey::Glob,
            (_, Token::Ident(s)) => ListKey::String(s),
            (_, Token::Int(digits)) => match digits.parse::<i64>() {
                Ok(n) => ListKey::Int(n),
                Err(_) => {
                    return Err(LocationError::IntegerOverflow {
                        literal: digits,
                        key_field,
                    });
                }
            },
            other => return Err(Self::unexpected("a key value or '*'", other)),
        };
        match self.next() {
            (_, Token::RBracket) => {}
            other => return Err(Self::unexpected("']' after the key value", other)),
        }
        Ok(PathNode::List { key_field, key })
    }
}

impl Location {
    /// Parses a location. The empty string gives an empty location (which
    /// every mutator kind then refuses).
    ///
    /// ```
    /// use policy_core::mutation::{Location, LocationError};
    /// assert!(Location::parse("spec.'a.b'[port: 80]").is_ok());
    /// assert_eq!(Location::parse("spec."), Err(LocationError::TrailingSeparator));
    /// ```
    pub fn parse(input: &str) -> Result<Location, LocationError> {
        let tokens = scan(input)?;
        let mut p = Parser {
            tokens: tokens.into_iter(),
            end: input.len(),
        };
        let mut nodes = Vec::new();
        let mut tok = p.next();
        loop {
            match tok {
                (_, Token::Ident(name)) => nodes.push(PathNode::Object(name)),
                (_, Token::Eof) if nodes.is_empty() => break,
                other => return Err(Parser::unexpected("a field name", other)),
            }
            tok = p.next();
            if tok.1 == Token::LBracket {
                nodes.push(p.list()?);
                tok = p.next();
            }
            match tok {
                (_, Token::Dot) => {
                    tok = p.next();
                    if tok.1 == Token::Eof {
                        return Err(LocationError::TrailingSeparator);
                    }
                }
                (_, Token::Eof) => break,
                other => return Err(Parser::unexpected("'.' or the end", other)),
            }
            if nodes.len() > MAX_NODES {
                return Err(LocationError::TooLong);
            }
        }
        if nodes.len() > MAX_NODES {
            return Err(LocationError::TooLong);
        }
        Ok(Location { nodes })
    }

    /// The steps, from the root of the object.
    pub fn nodes(&self) -> &[PathNode] {
        &self.nodes
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Whether the first step is the field `metadata`.
    pub fn has_metadata_root(&self) -> bool {
        matches!(self.nodes.first(), Some(PathNode::Object(n)) if n == "metadata")
    }

    /// Whether `self` is a prefix of `other` (node by node).
    pub fn is_prefix_of(&self, other: &Location) -> bool {
        self.nodes.len() <= other.nodes.len()
            && self.nodes.iter().zip(&other.nodes).all(|(a, b)| a == b)
    }
}

impl std::str::FromStr for Location {
    type Err = LocationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Location::parse(s)
    }
}

/// Quotes a name when the bare form would not parse back to it.
fn quote(s: &str) -> String {
    let needs = s.is_empty()
        || s.starts_with(|c: char| c.is_ascii_digit())
        || !s.chars().all(is_ident_char);
    if !needs {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.nodes.iter().enumerate() {
            match n {
                PathNode::Object(name) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(&quote(name))?;
                }
                PathNode::List { key_field, key } => {
                    let k = quote(key_field);
                    match key {
                        ListKey::Glob => write!(f, "[{k}: *]")?,
                        ListKey::String(s) => write!(f, "[{k}: {}]", quote(s))?,
                        ListKey::Int(n) => write!(f, "[{k}: {n}]")?,
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(s: &str) -> PathNode {
        PathNode::Object(s.to_owned())
    }
    fn list(k: &str, key: ListKey) -> PathNode {
        PathNode::List {
            key_field: k.to_owned(),
            key,
        }
    }
    fn parse(s: &str) -> Vec<PathNode> {
        Location::parse(s).unwrap().nodes
    }
    fn err(s: &str) -> String {
        Location::parse(s).unwrap_err().to_string()
    }

    #[test]
    fn path_forms() {
        assert_eq!(parse(""), vec![]);
        assert_eq!(parse("spec"), vec![obj("spec")]);
        assert_eq!(
            parse("spec.template.spec"),
            vec![obj("spec"), obj("template"), obj("spec")]
        );
        assert_eq!(
            parse("spec.containers[name: foo].image"),
            vec![
                obj("spec"),
                obj("containers"),
                list("name", ListKey::String("foo".into())),
                obj("image")
            ]
        );
        assert_eq!(
            parse("spec.containers[name:*]"),
            vec![obj("spec"), obj("containers"), list("name", ListKey::Glob)]
        );
        assert_eq!(
            parse("spec.ports[port: 80].name"),
            vec![
                obj("spec"),
                obj("ports"),
                list("port", ListKey::Int(80)),
                obj("name")
            ]
        );
        assert_eq!(
            parse("spec.ports[port: \"80\"]"),
            vec![
                obj("spec"),
                obj("ports"),
                list("port", ListKey::String("80".into()))
            ]
        );
        assert_eq!(
            parse(r#"metadata.annotations."example.com/x:y""#),
            vec![obj("metadata"), obj("annotations"), obj("example.com/x:y")]
        );
        assert_eq!(parse(r"a.'it\'s'.b"), vec![obj("a"), obj("it's"), obj("b")]);
        assert_eq!(
            parse(" spec . containers [ name : a-b_c ] "),
            vec![
                obj("spec"),
                obj("containers"),
                list("name", ListKey::String("a-b_c".into()))
            ]
        );
        assert_eq!(parse("a.b2"), vec![obj("a"), obj("b2")]);
        assert_eq!(parse("a.\"2b\""), vec![obj("a"), obj("2b")]);
    }

    #[test]
    fn errors() {
        assert_eq!(err("spec."), "trailing separators are forbidden");
        assert_eq!(
            err("spec..a"),
            "unexpected token at position 5: expected a field name, got '.'"
        );
        assert_eq!(
            err("2spec"),
            "unexpected token at position 0: expected a field name, got integer 2"
        );
        assert_eq!(
            err("a.2b"),
            "unexpected token at position 2: expected a field name, got integer 2"
        );
        assert_eq!(err("spec.a$b"), "invalid character '$' at position 6");
        assert_eq!(
            err("spec.\"abc"),
            "unterminated string starting at position 5"
        );
        assert_eq!(
            err("spec[name]"),
            "unexpected token at position 9: expected ':' after the key field, got ']'"
        );
        assert_eq!(
            err("spec[: x]"),
            "unexpected token at position 5: expected a key field after '[', got ':'"
        );
        assert_eq!(
            err("spec[name: x"),
            "unexpected token at position 12: expected ']' after the key value, got end of location"
        );
        assert_eq!(
            err("spec[name: ]"),
            "unexpected token at position 11: expected a key value or '*', got ']'"
        );
        assert_eq!(
            err("spec[a: 1][b: 2]"),
            "unexpected token at position 10: expected '.' or the end, got '['"
        );
        assert_eq!(
            err("spec[a: 99999999999999999999]"),
            "integer key value 99999999999999999999 for key \"a\" is out of range"
        );
        assert_eq!(
            err("[a: 1]"),
            "unexpected token at position 0: expected a field name, got '['"
        );
        let long = vec!["a"; MAX_NODES + 1].join(".");
        assert_eq!(err(&long), "a location has at most 256 steps");
        assert!(Location::parse(&vec!["a"; MAX_NODES].join(".")).is_ok());
        assert_eq!(
            err("a b"),
            "unexpected token at position 2: expected '.' or the end, got field name \"b\""
        );
    }

    #[test]
    fn printing_round_trips() {
        for s in [
            "spec.containers[name: *].securityContext",
            "metadata.annotations.\"a.b/c\"",
            "spec.ports[port: 80].name",
            "spec.ports[port: \"80\"]",
            "a.\"2b\".\"\"",
            "a.\"q\\\"x\"",
            "a[\"k.y\": \"v w\"]",
        ] {
            let loc = Location::parse(s).unwrap();
            assert_eq!(loc.to_string(), s);
            assert_eq!(Location::parse(&loc.to_string()).unwrap(), loc);
        }
        assert_eq!(
            Location::parse("spec . a [ n : 'x' ]").unwrap().to_string(),
            "spec.a[n: x]"
        );
    }

    #[test]
    fn prefixes() {
        let l = Location::parse("spec.containers[name: *].image").unwrap();
        assert!(Location::parse("spec.containers").unwrap().is_prefix_of(&l));
        assert!(
            Location::parse("spec.containers[name: *]")
                .unwrap()
                .is_prefix_of(&l)
        );
        assert!(
            !Location::parse("spec.containers[name: a]")
                .unwrap()
                .is_prefix_of(&l)
        );
        assert!(
            !Location::parse("spec.initContainers")
                .unwrap()
                .is_prefix_of(&l)
        );
        assert!(l.is_prefix_of(&l));
    }
}
