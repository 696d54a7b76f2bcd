//! Groovy 2.4 tokens for the Jenkinsfile parser.
//!
//! One pass over the source produces a flat token list; comments and
//! whitespace are dropped, and each token records whether a line break
//! came before it (Groovy ends statements at line breaks). Strings keep
//! their quotes in `text`. A double-quoted string with `${…}` or `$name`
//! is split the way the Go parser conftest uses splits it: `GStringBegin`
//! (opening quote up to and including the `$`), the tokens of each
//! interpolation, `GStringPart` between interpolations and `GStringEnd`
//! (the rest, with the closing quote); without interpolation it is one
//! `GStringFull`. Interpolations are lexed with a stack of open strings
//! rather than by recursion, so nesting cannot exhaust the stack.

use super::cst::ParseError;

/// A token: its kind, its source slice and where it starts.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) kind: &'static str,
    pub(super) start: usize,
    pub(super) end: usize,
    /// A line break (or a comment spanning one) separates this token from
    /// the previous one.
    pub(super) newline_before: bool,
}

/// Multi-character operators, longest first within each prefix.
const OPERATORS: &[(&str, &str)] = &[
    (">>>=", "UnsignedShrAssign"),
    ("...", "Ellipsis"),
    ("..<", "RangeExclusive"),
    ("<=>", "Spaceship"),
    ("==~", "RegexMatch"),
    ("**=", "PowerAssign"),
    ("<<=", "ShlAssign"),
    ("?.", "SafeDot"),
    ("*.", "SpreadDot"),
    (".&", "MethodPointer"),
    ("?:", "Elvis"),
    ("->", "Arrow"),
    ("==", "Eq"),
    ("!=", "NotEq"),
    ("<=", "LtEq"),
    (">=", "GtEq"),
    ("&&", "And"),
    ("||", "Or"),
    ("++", "Inc"),
    ("--", "Dec"),
    ("+=", "PlusAssign"),
    ("-=", "MinusAssign"),
    ("*=", "StarAssign"),
    ("/=", "SlashAssign"),
    ("%=", "PercentAssign"),
    ("&=", "AndAssign"),
    ("|=", "OrAssign"),
    ("^=", "XorAssign"),
    ("<<", "Shl"),
    ("=~", "RegexFind"),
    ("**", "Power"),
    ("..", "Range"),
    ("::", "ColonColon"),
    ("(", "LParen"),
    (")", "RParen"),
    ("[", "LBracket"),
    ("]", "RBracket"),
    (",", "Comma"),
    (".", "Dot"),
    (":", "Colon"),
    (";", "Semicolon"),
    ("?", "Question"),
    ("@", "At"),
    ("=", "Assign"),
    ("+", "Plus"),
    ("-", "Minus"),
    ("*", "Star"),
    ("/", "Slash"),
    ("%", "Percent"),
    ("<", "Lt"),
    // `>` is always a single token so that `List<Map<K, V>>` closes two
    // type arguments; the parser joins adjacent `>` into shifts.
    (">", "Gt"),
    ("!", "Not"),
    ("~", "BitNot"),
    ("&", "BitAnd"),
    ("|", "BitOr"),
    ("^", "BitXor"),
];

/// Keywords and their token kinds.
pub(super) fn keyword(word: &str) -> Option<&'static str> {
    Some(match word {
        "abstract" => "Abstract",
        "as" => "As",
        "assert" => "Assert",
        "break" => "Break",
        "case" => "Case",
        "catch" => "Catch",
        "class" => "Class",
        "continue" => "Continue",
        "def" => "Def",
        "default" => "Default",
        "do" => "Do",
        "else" => "Else",
        "enum" => "Enum",
        "extends" => "Extends",
        "false" => "False",
        "final" => "Final",
        "finally" => "Finally",
        "for" => "For",
        "if" => "If",
        "implements" => "Implements",
        "import" => "Import",
        "in" => "In",
        "instanceof" => "Instanceof",
        "interface" => "Interface",
        "new" => "New",
        "null" => "Null",
        "package" => "Package",
        "private" => "Private",
        "protected" => "Protected",
        "public" => "Public",
        "return" => "Return",
        "static" => "Static",
        "super" => "Super",
        "switch" => "Switch",
        "this" => "This",
        "throw" => "Throw",
        "trait" => "Trait",
        "true" => "True",
        "try" => "Try",
        "while" => "While",
        _ => return None,
    })
}

/// Which string an interpolation returns to when its `}` closes.
#[derive(Clone, Copy, PartialEq)]
enum Quote {
    Double,
    TripleDouble,
}

/// An open `${` of a string: the string kind and the `{` nesting inside it.
struct Interpolation {
    quote: Quote,
    braces: usize,
}

/// Splits `text` into tokens (without comments, whitespace and EOF).
pub(super) fn tokenize(text: &str) -> Result<Vec<Token>, ParseError> {
    Lexer {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
        newline: false,
        open: Vec::new(),
    }
    .run()
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
    newline: bool,
    open: Vec<Interpolation>,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

impl Lexer<'_> {
    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.text.get(at..).and_then(|s| s.chars().next())
    }

    fn starts_with(&self, at: usize, s: &str) -> bool {
        self.text.get(at..).is_some_and(|t| t.starts_with(s))
    }

    fn push(&mut self, kind: &'static str, start: usize, end: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end,
            newline_before: self.newline,
        });
        self.newline = false;
        self.pos = end;
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError::Syntax {
            offset: at,
            message: message.into(),
        }
    }

    fn run(mut self) -> Result<Vec<Token>, ParseError> {
        if self.starts_with(0, "#!") {
            self.pos = self.text.find('\n').unwrap_or(self.text.len());
        }
        while let Some(c) = self.char_at(self.pos) {
            let start = self.pos;
            match c {
                '\n' => {
                    self.newline = true;
                    self.pos += 1;
                }
                ' ' | '\t' | '\r' | '\u{c}' => self.pos += 1,
                '\\' if matches!(self.byte(start + 1), Some(b'\n' | b'\r')) => self.pos += 2,
                '/' if self.byte(start + 1) == Some(b'/') => {
                    self.pos = self
                        .text
                        .get(start..)
                        .and_then(|s| s.find('\n'))
                        .map_or(self.text.len(), |i| start + i);
                }
                '/' if self.byte(start + 1) == Some(b'*') => {
                    let end = self
                        .text
                        .get(start + 2..)
                        .and_then(|s| s.find("*/"))
                        .ok_or_else(|| self.error(start, "unterminated block comment"))?;
                    let body = self.text.get(start..start + 2 + end).unwrap_or("");
                    if body.contains('\n') {
                        self.newline = true;
                    }
                    self.pos = start + 2 + end + 2;
                }
                '\'' => self.single_quoted(start)?,
                '"' => {
                    let quote = if self.starts_with(start, "\"\"\"") {
                        Quote::TripleDouble
                    } else {
                        Quote::Double
                    };
                    let open = if quote == Quote::TripleDouble { 3 } else { 1 };
                    self.string_body(start, start + open, quote, true)?;
                }
                '$' if self.byte(start + 1) == Some(b'/') => self.dollar_slashy(start)?,
                '/' if self.slashy_allowed() => self.slashy(start)?,
                '{' => {
                    if let Some(top) = self.open.last_mut() {
                        top.braces += 1;
                    }
                    self.push("LBrace", start, start + 1);
                }
                '}' => {
                    self.push("RBrace", start, start + 1);
                    match self.open.last_mut() {
                        Some(top) if top.braces == 0 => {
                            let quote = top.quote;
                            self.open.pop();
                            let at = self.pos;
                            self.string_body(at, at, quote, false)?;
                        }
                        Some(top) => top.braces -= 1,
                        None => {}
                    }
                }
                c if c.is_ascii_digit() => self.number(start),
                c if is_ident_start(c) => {
                    let end = self.ident_end(start);
                    let word = self.text.get(start..end).unwrap_or("");
                    self.push(keyword(word).unwrap_or("Identifier"), start, end);
                }
                _ => {
                    let Some((op, kind)) =
                        OPERATORS.iter().find(|(op, _)| self.starts_with(start, op))
                    else {
                        return Err(self.error(start, format!("unexpected character {c:?}")));
                    };
                    self.push(kind, start, start + op.len());
                }
            }
        }
        if !self.open.is_empty() {
            return Err(self.error(self.text.len(), "unterminated string interpolation"));
        }
        Ok(self.tokens)
    }

    fn ident_end(&self, start: usize) -> usize {
        let rest = self.text.get(start..).unwrap_or("");
        rest.char_indices()
            .find(|&(i, c)| if i == 0 { false } else { !is_ident_part(c) })
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    /// `/` starts a slashy string where an operand is expected: not after
    /// something that ends an operand.
    fn slashy_allowed(&self) -> bool {
        match self.tokens.last() {
            None => true,
            Some(t) => !matches!(
                t.kind,
                "Identifier"
                    | "IntLiteral"
                    | "FloatLiteral"
                    | "StringLiteral"
                    | "GStringFull"
                    | "GStringEnd"
                    | "SlashyStringLit"
                    | "DollarSlashyStringLit"
                    | "RParen"
                    | "RBracket"
                    | "RBrace"
                    | "This"
                    | "Super"
                    | "True"
                    | "False"
                    | "Null"
                    | "Inc"
                    | "Dec"
            ),
        }
    }

    fn number(&mut self, start: usize) {
        let mut end = start;
        let mut float = false;
        if self.starts_with(start, "0x") || self.starts_with(start, "0X") {
            end += 2;
            while self
                .byte(end)
                .is_some_and(|b| b.is_ascii_hexdigit() || b == b'_')
            {
                end += 1;
            }
        } else {
            while self
                .byte(end)
                .is_some_and(|b| b.is_ascii_digit() || b == b'_')
            {
                end += 1;
            }
            if self.byte(end) == Some(b'.')
                && self.byte(end + 1).is_some_and(|b| b.is_ascii_digit())
            {
                float = true;
                end += 1;
                while self
                    .byte(end)
                    .is_some_and(|b| b.is_ascii_digit() || b == b'_')
                {
                    end += 1;
                }
            }
            if matches!(self.byte(end), Some(b'e' | b'E')) {
                let mut exp = end + 1;
                if matches!(self.byte(exp), Some(b'+' | b'-')) {
                    exp += 1;
                }
                if self.byte(exp).is_some_and(|b| b.is_ascii_digit()) {
                    float = true;
                    end = exp;
                    while self.byte(end).is_some_and(|b| b.is_ascii_digit()) {
                        end += 1;
                    }
                }
            }
        }
        match self.byte(end) {
            Some(b'l' | b'L' | b'i' | b'I' | b'g' | b'G') => end += 1,
            Some(b'f' | b'F' | b'd' | b'D') => {
                float = true;
                end += 1;
            }
            _ => {}
        }
        let kind = if float { "FloatLiteral" } else { "IntLiteral" };
        self.push(kind, start, end);
    }

    fn single_quoted(&mut self, start: usize) -> Result<(), ParseError> {
        let triple = self.starts_with(start, "'''");
        let mut at = start + if triple { 3 } else { 1 };
        loop {
            match self.byte(at) {
                None => return Err(self.error(start, "unterminated string literal")),
                Some(b'\\') => at += 2,
                Some(b'\'') if !triple => {
                    self.push("StringLiteral", start, at + 1);
                    return Ok(());
                }
                Some(b'\'') if self.starts_with(at, "'''") => {
                    self.push("StringLiteral", start, at + 3);
                    return Ok(());
                }
                Some(b'\n') if !triple => {
                    return Err(self.error(start, "unterminated string literal"));
                }
                Some(_) => at += 1,
            }
        }
    }

    /// Scans a double-quoted string from `at` (after the opening quote, or
    /// after the `}` of an interpolation) up to the next interpolation or
    /// the closing quote, emitting the token that covers `start..`.
    fn string_body(
        &mut self,
        mut start: usize,
        mut at: usize,
        quote: Quote,
        mut first: bool,
    ) -> Result<(), ParseError> {
        loop {
            match self.byte(at) {
                None => return Err(self.error(start, "unterminated string literal")),
                Some(b'\\') => at += 2,
                Some(b'\n') if quote == Quote::Double => {
                    return Err(self.error(start, "unterminated string literal"));
                }
                Some(b'"') if quote == Quote::Double || self.starts_with(at, "\"\"\"") => {
                    let end = at + if quote == Quote::Double { 1 } else { 3 };
                    let kind = if first { "GStringFull" } else { "GStringEnd" };
                    self.push(kind, start, end);
                    return Ok(());
                }
                Some(b'$') if self.byte(at + 1) == Some(b'{') => {
                    let kind = if first { "GStringBegin" } else { "GStringPart" };
                    self.push(kind, start, at + 1);
                    self.push("LBrace", at + 1, at + 2);
                    self.open.push(Interpolation { quote, braces: 0 });
                    return Ok(());
                }
                Some(b'$')
                    if self
                        .char_at(at + 1)
                        .is_some_and(|c| is_ident_start(c) && c != '$') =>
                {
                    let kind = if first { "GStringBegin" } else { "GStringPart" };
                    self.push(kind, start, at + 1);
                    self.path(at + 1);
                    start = self.pos;
                    at = self.pos;
                    first = false;
                }
                // Groovy refuses a `$` that starts neither `${` nor a name.
                Some(b'$') => {
                    return Err(self.error(at, "illegal string body character after dollar sign"));
                }
                Some(_) => at += 1,
            }
        }
    }

    /// `$name.part.part` inside a string: identifiers joined by dots.
    fn path(&mut self, start: usize) {
        let end = self.ident_end(start);
        self.push("Identifier", start, end);
        while self.byte(self.pos) == Some(b'.')
            && self
                .char_at(self.pos + 1)
                .is_some_and(|c| is_ident_start(c) && c != '$')
        {
            let dot = self.pos;
            self.push("Dot", dot, dot + 1);
            let end = self.ident_end(dot + 1);
            self.push("Identifier", dot + 1, end);
        }
    }

    fn slashy(&mut self, start: usize) -> Result<(), ParseError> {
        let mut at = start + 1;
        if self.byte(at) == Some(b'/') {
            return Err(self.error(start, "empty slashy string"));
        }
        loop {
            match self.byte(at) {
                None => return Err(self.error(start, "unterminated slashy string")),
                Some(b'\\') if self.byte(at + 1) == Some(b'/') => at += 2,
                Some(b'/') => {
                    self.push("SlashyStringLit", start, at + 1);
                    return Ok(());
                }
                Some(_) => at += 1,
            }
        }
    }

    fn dollar_slashy(&mut self, start: usize) -> Result<(), ParseError> {
        let mut at = start + 2;
        loop {
            match self.byte(at) {
                None => return Err(self.error(start, "unterminated dollar-slashy string")),
                // `$$` and `$/` are the escapes of a dollar-slashy string.
                Some(b'$') if matches!(self.byte(at + 1), Some(b'$' | b'/')) => at += 2,
                Some(b'/') if self.byte(at + 1) == Some(b'$') => {
                    self.push("DollarSlashyStringLit", start, at + 2);
                    return Ok(());
                }
                Some(_) => at += 1,
            }
        }
    }
}
