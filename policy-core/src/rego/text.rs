//! Text edits and the token table the layout passes read.
//!
//! Every pass of the compile stage rewrites Rego *source*: regorus compiles
//! only text, and an edited text keeps regorus' own error messages, coverage
//! and line numbers meaningful. A pass returns [`Edit`]s against the text it
//! was given; [`apply_edits`] applies them all at once.

use regorus::unstable::{Lexer, TokenKind};

/// One textual edit: replace `start..end` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Edit {
    /// Inserts `text` at `at`.
    pub(crate) fn insert(at: usize, text: impl Into<String>) -> Edit {
        Edit {
            start: at,
            end: at,
            text: text.into(),
        }
    }

    /// Replaces `start..end` with `text`.
    pub(crate) fn replace(start: usize, end: usize, text: impl Into<String>) -> Edit {
        Edit {
            start,
            end,
            text: text.into(),
        }
    }
}

/// Applies non-overlapping edits. Insertions at one offset keep the order
/// they were made in; an edit overlapping an earlier one is dropped whole,
/// never half-applied.
pub(crate) fn apply_edits(src: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(src.len() + 64);
    let mut pos = 0;
    for e in edits {
        let (Some(keep), true) = (src.get(pos..e.start), e.start <= e.end) else {
            continue;
        };
        if src.get(e.start..e.end).is_none() {
            continue;
        }
        out.push_str(keep);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(src.get(pos..).unwrap_or(""));
    out
}

/// Whether `src` may read `data.<name>`: some `data` outside strings and
/// comments is not followed by `.` and another name (`data.conftest`,
/// `data[k]`, `import data`, `walk(data, …)` all may; `input.data` is a
/// field, not the root), or the text does not lex. Lets an evaluation leave
/// out a `with data.<name>` nobody reads.
pub(crate) fn may_read_data(src: &str, name: &str) -> bool {
    let Some(table) = TokenTable::new(src) else {
        return true;
    };
    let toks = &table.toks;
    toks.iter().enumerate().any(|(i, t)| {
        let field = i
            .checked_sub(1)
            .and_then(|p| toks.get(p))
            .is_some_and(|p| p.kind == TokenKind::Symbol && p.text == ".");
        t.kind == TokenKind::Ident
            && t.text == "data"
            && !field
            && !matches!(
                (toks.get(i + 1), toks.get(i + 2)),
                (Some(dot), Some(next))
                    if dot.kind == TokenKind::Symbol
                        && dot.text == "."
                        && next.kind == TokenKind::Ident
                        && next.text != name
            )
    })
}

/// One token with its byte range and lines.
#[derive(Debug)]
pub(crate) struct Tok {
    pub kind: TokenKind,
    /// The token's text; a string's without its quotes.
    pub text: String,
    /// Where the token starts and ends in the source; a string's range
    /// includes its quotes (regorus' span does not), so an edit at `end`
    /// lands after the closing quote.
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub end_line: u32,
}

/// Rego's keywords: words that start or join statements, never end a term.
pub(crate) const KEYWORDS: &[&str] = &[
    "not", "with", "as", "in", "if", "else", "some", "every", "contains", "default", "import",
    "package",
];

impl Tok {
    /// Whether the token can end a term, so that a following `(` or `[`
    /// would continue it and a statement may end after it.
    pub(crate) fn ends_term(&self) -> bool {
        match self.kind {
            TokenKind::Ident => !KEYWORDS.contains(&self.text.as_str()),
            TokenKind::Number | TokenKind::String | TokenKind::RawString => true,
            TokenKind::Symbol => matches!(self.text.as_str(), ")" | "]" | "}"),
            TokenKind::Eof => false,
        }
    }
}

/// The tokens of a module with their bracket structure.
#[derive(Debug)]
pub(crate) struct TokenTable {
    pub toks: Vec<Tok>,
    /// The innermost open bracket before each token.
    pub innermost: Vec<Option<char>>,
    /// The nesting level each token sits at (a bracket pair shares one level).
    pub level: Vec<usize>,
    /// Each bracket's partner.
    pub partner: Vec<Option<usize>>,
}

impl TokenTable {
    /// Lexes `src`; `None` when it does not lex (the compiler reports why).
    pub(crate) fn new(src: &str) -> Option<TokenTable> {
        let source = super::ast::source("policy.rego", src).ok()?;
        let mut lexer = Lexer::new(&source);
        lexer.set_max_col(super::ast::MAX_COL);
        let mut toks = Vec::new();
        loop {
            let tok = lexer.next_token().ok()?;
            if tok.0 == TokenKind::Eof {
                break;
            }
            let text = tok.1.text().to_owned();
            let newlines = u32::try_from(text.matches('\n').count()).unwrap_or(0);
            let quoted = matches!(tok.0, TokenKind::String | TokenKind::RawString);
            let (start, end) = (tok.1.start as usize, tok.1.end as usize);
            let (start, end) = if quoted {
                (start.saturating_sub(1), (end + 1).min(src.len()))
            } else {
                (start, end)
            };
            toks.push(Tok {
                kind: tok.0,
                start,
                end,
                line: tok.1.line,
                end_line: tok.1.line.saturating_add(newlines),
                text,
            });
        }
        let n = toks.len();
        let mut innermost: Vec<Option<char>> = vec![None; n];
        let mut level: Vec<usize> = vec![0; n];
        let mut partner: Vec<Option<usize>> = vec![None; n];
        let mut stack: Vec<(char, usize)> = Vec::new();
        for (i, t) in toks.iter().enumerate() {
            let (Some(inner), Some(lvl)) = (innermost.get_mut(i), level.get_mut(i)) else {
                break;
            };
            *inner = stack.last().map(|(c, _)| *c);
            let symbol = t.kind == TokenKind::Symbol;
            match t.text.as_str() {
                "{" | "[" | "(" if symbol => {
                    *lvl = stack.len();
                    stack.push((t.text.chars().next().unwrap_or('{'), i));
                }
                "}" | "]" | ")" if symbol => {
                    if let Some((_, open)) = stack.pop() {
                        if let Some(p) = partner.get_mut(i) {
                            *p = Some(open);
                        }
                        if let Some(p) = partner.get_mut(open) {
                            *p = Some(i);
                        }
                    }
                    *lvl = stack.len();
                }
                _ => *lvl = stack.len(),
            }
        }
        Some(TokenTable {
            toks,
            innermost,
            level,
            partner,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.toks.len()
    }

    /// Token `i` (callers index below [`TokenTable::len`]).
    pub(crate) fn tok(&self, i: usize) -> Option<&Tok> {
        self.toks.get(i)
    }

    pub(crate) fn level(&self, i: usize) -> usize {
        self.level.get(i).copied().unwrap_or(0)
    }

    pub(crate) fn partner(&self, i: usize) -> Option<usize> {
        self.partner.get(i).copied().flatten()
    }

    pub(crate) fn innermost(&self, i: usize) -> Option<char> {
        self.innermost.get(i).copied().flatten()
    }

    /// Whether token `i` has this text.
    pub(crate) fn is(&self, i: usize, text: &str) -> bool {
        self.tok(i).is_some_and(|t| t.text == text)
    }
}

/// `text` (a piece of Rego source) on one line: each comment (`#` outside a
/// string, to the end of its line) dropped and each line break a space, so
/// passes that move an expression onto one line do not comment out what
/// follows it.
pub(crate) fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == '\\' && q == '"' {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '`' => {
                    quote = Some(c);
                    out.push(c);
                }
                '#' => {
                    for rest in chars.by_ref() {
                        if rest == '\n' {
                            out.push(' ');
                            break;
                        }
                    }
                }
                '\n' | '\r' => out.push(' '),
                _ => out.push(c),
            },
        }
    }
    out
}

/// Whether no two edits touch the same text: replaced ranges do not
/// overlap, and no insertion falls strictly inside a replaced range.
pub(crate) fn disjoint<'a>(edits: impl Iterator<Item = &'a Edit>) -> bool {
    let mut spans: Vec<(usize, usize)> = edits.map(|e| (e.start, e.end)).collect();
    spans.sort_unstable();
    spans.windows(2).all(|w| match w {
        [(s1, e1), (s2, e2)] => {
            // Two insertions at one point, or ranges that only touch, are fine.
            e1 <= s2 && !(s1 == s2 && s1 != e1 && s2 != e2)
        }
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn one_line_drops_comments_but_not_hashes_in_strings() {
        assert_eq!(
            one_line("f(\n\ta, # the first\n\t\"b#c\", # \"quoted\"\n)"),
            "f( \ta,  \t\"b#c\",  )"
        );
        assert_eq!(one_line("x == \"a\\\"#b\""), "x == \"a\\\"#b\"");
    }
}
