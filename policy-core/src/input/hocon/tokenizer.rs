//! go-akka's HOCON tokenizer, byte for byte: the parser asks it "is the next
//! thing X?" and "pull an X", as go-akka's parser does. Its quirks are kept
//! because they decide what conftest sees: whitespace is tested per byte (so
//! byte 0xA0, the tail of `à`, counts as whitespace), unquoted keys may
//! contain spaces, a `\uXXXX` escape stays as its six characters (lowered),
//! an unterminated string ends at the end of the text, and the multi-pattern
//! checks (`=`/`:`, comments, `${`, space/tab) never match at the last byte.

use super::Failure;

/// Bytes that end an unquoted value.
const NOT_IN_UNQUOTED_TEXT: &[u8] = b"$\"{}[]:=+,#`^?!@*&\\";
/// Bytes that end an unquoted key: the above and `.`.
const NOT_IN_UNQUOTED_KEY: &[u8] = b"$\"{}[]:=+,#`^?!@*&\\.";

/// A token as go-akka's `PullNext` / `PullValue` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    Dot,
    ObjectStart,
    ObjectEnd,
    Assign,
    PlusAssign,
    Include(Vec<u8>),
    Key(Vec<u8>),
    ArrayStart,
    ArrayEnd,
    Eof,
    Literal(Vec<u8>),
    Substitution { path: Vec<u8>, optional: bool },
}

/// A cursor over the document's bytes.
#[derive(Debug)]
pub(super) struct Tokenizer<'a> {
    text: &'a [u8],
    /// Byte offset of the next unread byte.
    pub(super) index: usize,
}

/// go-akka's `isWhitespace(byte)`: its list of Unicode spaces, compared with
/// `string(byte)`, matches only these code points below 256.
fn is_whitespace_byte(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

impl<'a> Tokenizer<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        Tokenizer { text, index: 0 }
    }

    pub(super) fn eof(&self) -> bool {
        self.index >= self.text.len()
    }

    fn matches(&self, pattern: &[u8]) -> bool {
        self.text
            .get(self.index..)
            .is_some_and(|rest| rest.starts_with(pattern))
    }

    /// go-akka's `MatchesMore`: a pattern ending at the last byte of the text
    /// does not count (its bound check is off by one).
    fn matches_more(&self, patterns: &[&[u8]]) -> bool {
        patterns
            .iter()
            .any(|p| self.index + p.len() < self.text.len() && self.matches(p))
    }

    /// Takes `n` bytes, or nothing (and an empty result) if fewer remain.
    fn take(&mut self, n: usize) -> &'a [u8] {
        let Some(taken) = self.text.get(self.index..self.index + n) else {
            return &[];
        };
        self.index += n;
        taken
    }

    fn peek(&self) -> u8 {
        self.text.get(self.index).copied().unwrap_or(0)
    }

    pub(super) fn take_one(&mut self) -> u8 {
        let c = self.peek();
        if !self.eof() {
            self.index += 1;
        }
        c
    }

    fn is_whitespace(&self) -> bool {
        is_whitespace_byte(self.peek())
    }

    fn is_start_of_comment(&self) -> bool {
        self.matches_more(&[b"#", b"//"])
    }

    pub(super) fn pull_whitespace_and_comments(&mut self) {
        loop {
            while !self.eof() && self.is_whitespace() {
                self.index += 1;
            }
            while self.is_start_of_comment() {
                // The rest of the line, newline included.
                while !self.eof() && self.take_one() != b'\n' {}
            }
            if !self.is_whitespace() {
                break;
            }
        }
    }

    /// go-akka's `PullNext`: the next token where a key may stand.
    pub(super) fn pull_next(&mut self) -> Result<Token, Failure> {
        self.pull_whitespace_and_comments();
        let token = if self.matches(b".") {
            self.take_one();
            Token::Dot
        } else if self.matches(b"{") {
            self.take_one();
            Token::ObjectStart
        } else if self.matches(b"}") {
            self.take_one();
            Token::ObjectEnd
        } else if self.matches_more(&[b"=", b":"]) {
            self.take_one();
            Token::Assign
        } else if self.matches(b"+=") {
            self.take(2);
            Token::PlusAssign
        } else if self.is_include() {
            self.take(b"include".len());
            self.pull_whitespace_and_comments();
            Token::Include(self.pull_quoted()?)
        } else if self.matches(b"\"") {
            Token::Key(self.pull_quoted()?)
        } else if self.is_unquoted_key_start() {
            let start = self.index;
            while !self.eof() && self.is_unquoted_key() {
                self.index += 1;
            }
            let key = self.text.get(start..self.index).unwrap_or_default();
            Token::Key(trim_space(key).to_vec())
        } else if self.matches(b"[") {
            self.take_one();
            Token::ArrayStart
        } else if self.matches(b"]") {
            self.take_one();
            Token::ArrayEnd
        } else if self.eof() {
            Token::Eof
        } else {
            return Err(Failure::at(self.index, "unknown token"));
        };
        Ok(token)
    }

    /// `include` followed by whitespace or a comment and then a
    /// well-formed quoted string; the cursor does not move.
    fn is_include(&mut self) -> bool {
        let saved = self.index;
        let mut found = false;
        if self.matches(b"include") {
            self.take(b"include".len());
            if self.is_whitespace() || self.is_start_of_comment() {
                self.pull_whitespace_and_comments();
                // go-akka recovers a bad escape here and answers "no".
                found = self.matches(b"\"") && self.pull_quoted().is_ok();
            }
        }
        self.index = saved;
        found
    }

    fn is_unquoted_key(&self) -> bool {
        !self.eof() && !self.is_start_of_comment() && !NOT_IN_UNQUOTED_KEY.contains(&self.peek())
    }

    fn is_unquoted_key_start(&self) -> bool {
        !self.is_whitespace() && self.is_unquoted_key()
    }

    fn is_unquoted_text(&self) -> bool {
        !self.eof()
            && !self.is_whitespace()
            && !self.is_start_of_comment()
            && !NOT_IN_UNQUOTED_TEXT.contains(&self.peek())
    }

    fn is_substitution_start(&self) -> bool {
        self.matches_more(&[b"${", b"${?"])
    }

    /// A quoted key or string; unterminated, it ends with the text.
    fn pull_quoted(&mut self) -> Result<Vec<u8>, Failure> {
        let mut buf = Vec::new();
        self.take_one();
        while !self.eof() && !self.matches(b"\"") {
            if self.matches(b"\\") {
                buf.extend(self.pull_escape()?);
            } else {
                buf.push(self.take_one());
            }
        }
        self.take_one();
        Ok(buf)
    }

    fn pull_escape(&mut self) -> Result<Vec<u8>, Failure> {
        let at = self.index;
        self.take_one();
        let escaped = self.take_one();
        let out: &[u8] = match escaped {
            b'"' => b"\"",
            b'\\' => b"\\",
            b'/' => b"/",
            b'b' => b"\x08",
            b'f' => b"\x0c",
            b'n' => b"\n",
            b'r' => b"\r",
            b't' => b"\t",
            b'u' => {
                // go-akka scans "\u" + the next four bytes lowered with
                // `%s`, which yields the text itself up to any whitespace.
                let mut code = b"\\u".to_vec();
                code.extend(go_to_lower(self.take(4)).into_bytes());
                let text = String::from_utf8_lossy(&code).into_owned();
                let end = text.find(char::is_whitespace).unwrap_or(text.len());
                return Ok(text.get(..end).unwrap_or_default().as_bytes().to_vec());
            }
            other => {
                return Err(Failure::at(
                    at,
                    format!("unknown escape code {:?}", char::from(other)),
                ));
            }
        };
        Ok(out.to_vec())
    }

    /// go-akka's `isValue`: something `PullValue` can read.
    pub(super) fn is_value(&self) -> bool {
        self.matches(b"[")
            || self.matches(b"{")
            || self.matches(b"\"\"\"")
            || self.is_substitution_start()
            || self.matches(b"\"")
            || self.is_unquoted_text()
    }

    /// go-akka's `PullValue`.
    pub(super) fn pull_value(&mut self) -> Result<Token, Failure> {
        if self.matches(b"{") {
            self.take_one();
            return Ok(Token::ObjectStart);
        }
        if self.matches(b"\"\"\"") {
            self.take(3);
            let start = self.index;
            while !self.eof() && !self.matches(b"\"\"\"") {
                self.index += 1;
            }
            let text = self.text.get(start..self.index).unwrap_or_default();
            self.take(3);
            return Ok(Token::Literal(text.to_vec()));
        }
        if self.matches(b"\"") {
            return Ok(Token::Literal(self.pull_quoted()?));
        }
        if self.is_unquoted_text() {
            let start = self.index;
            while self.is_unquoted_text() {
                self.index += 1;
            }
            let text = self.text.get(start..self.index).unwrap_or_default();
            return Ok(Token::Literal(text.to_vec()));
        }
        if self.matches(b"[") {
            self.take_one();
            return Ok(Token::ArrayStart);
        }
        if self.matches(b"]") {
            self.take_one();
            return Ok(Token::ArrayEnd);
        }
        if self.is_substitution_start() {
            self.take(2);
            let optional = self.peek() == b'?';
            if optional {
                self.take_one();
            }
            let start = self.index;
            while self.is_unquoted_text() {
                self.index += 1;
            }
            let path = self
                .text
                .get(start..self.index)
                .unwrap_or_default()
                .to_vec();
            // The closing brace, or whatever stands there.
            self.take_one();
            return Ok(Token::Substitution { path, optional });
        }
        Err(Failure::at(self.index, "expected a value"))
    }

    pub(super) fn is_space_or_tab(&self) -> bool {
        self.matches_more(&[b" ", b"\t"])
    }

    pub(super) fn pull_space_or_tab(&mut self) -> Vec<u8> {
        let start = self.index;
        while self.is_space_or_tab() {
            self.index += 1;
        }
        self.text
            .get(start..self.index)
            .unwrap_or_default()
            .to_vec()
    }

    pub(super) fn is_array_end(&self) -> bool {
        self.matches(b"]")
    }

    pub(super) fn is_comma(&self) -> bool {
        self.matches(b",")
    }

    /// go-akka tests for the two characters `\n` here (a raw Go string),
    /// not for a line feed.
    pub(super) fn is_backslash_n(&self) -> bool {
        self.matches(b"\\n")
    }

    pub(super) fn skip(&mut self, n: usize) {
        self.take(n);
    }
}

/// Go's `strings.ToLower`: invalid UTF-8 becomes U+FFFD.
fn go_to_lower(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(c.to_lowercase().next().unwrap_or(c));
        }
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// Go's `strings.TrimSpace` on bytes that may not be valid UTF-8: only
/// whole, valid whitespace characters are trimmed.
pub(super) fn trim_space(bytes: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some((c, len)) = decode_at(bytes, start) {
        if !c.is_whitespace() {
            break;
        }
        start += len;
    }
    let mut end = bytes.len();
    'outer: while end > start {
        for len in 1..=4 {
            let Some(begin) = end.checked_sub(len).filter(|b| *b >= start) else {
                break 'outer;
            };
            if let Some((c, l)) = decode_at(bytes, begin)
                && l == len
            {
                if !c.is_whitespace() {
                    break 'outer;
                }
                end = begin;
                continue 'outer;
            }
        }
        break;
    }
    bytes.get(start..end).unwrap_or_default()
}

/// The valid UTF-8 character starting at `at`, with its length.
fn decode_at(bytes: &[u8], at: usize) -> Option<(char, usize)> {
    let lead = *bytes.get(at)?;
    let len = match lead {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(bytes.get(at..at + len)?).ok()?;
    s.chars().next().map(|c| (c, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        let mut t = Tokenizer::new(text.as_bytes());
        let mut out = Vec::new();
        while !t.eof() {
            match t.pull_next() {
                Ok(Token::Assign) => {
                    out.push(Token::Assign);
                    t.pull_whitespace_and_comments();
                    while t.is_value() {
                        out.push(t.pull_value().unwrap_or(Token::Eof));
                    }
                }
                Ok(tok) => out.push(tok),
                Err(_) => break,
            }
        }
        out
    }

    #[test]
    fn keys_may_hold_spaces_and_values_stop_at_whitespace() {
        assert_eq!(
            tokens("my key . b = x y"),
            vec![
                Token::Key(b"my key".to_vec()),
                Token::Dot,
                Token::Key(b"b".to_vec()),
                Token::Assign,
                Token::Literal(b"x".to_vec()),
                Token::Key(b"y".to_vec()),
            ]
        );
    }

    #[test]
    fn escapes_and_substitutions() {
        assert_eq!(
            tokens(r#"a = "t\tq\"\u00E9" ${?x.y} "#),
            vec![
                Token::Key(b"a".to_vec()),
                Token::Assign,
                Token::Literal(b"t\tq\"\\u00e9".to_vec()),
            ]
        );
        let mut t = Tokenizer::new(b"${?x.y}z");
        assert_eq!(
            t.pull_value().ok(),
            Some(Token::Substitution {
                path: b"x.y".to_vec(),
                optional: true
            })
        );
        assert_eq!(t.index, 7);
    }

    #[test]
    fn byte_a0_is_whitespace() {
        // "à" is C3 A0: the value stops after C3.
        let mut t = Tokenizer::new("à".as_bytes());
        assert_eq!(t.pull_value().ok(), Some(Token::Literal(vec![0xc3])));
    }

    #[test]
    fn last_byte_checks_are_off_by_one() {
        let mut t = Tokenizer::new(b"=");
        assert!(t.pull_next().is_err());
        let mut t = Tokenizer::new(b"= ");
        assert_eq!(t.pull_next().ok(), Some(Token::Assign));
    }

    #[test]
    fn trim_space_keeps_invalid_bytes() {
        assert_eq!(trim_space(b" \t a b\n "), b"a b");
        assert_eq!(trim_space(&[b' ', 0xc3]), &[0xc3]);
        assert_eq!(trim_space("\u{a0}x\u{3000}".as_bytes()), b"x");
    }
}
