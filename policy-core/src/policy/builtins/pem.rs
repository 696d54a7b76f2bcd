//! PEM blocks as Go's `encoding/pem.Decode` reads them, which OPA's crypto
//! and JWT builtins rely on: text before `-----BEGIN` is skipped, headers
//! (`Proc-Type: ...`) are skipped, and the rest after the block's end line
//! is handed back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One decoded block.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Block {
    /// The label, `CERTIFICATE` in `-----BEGIN CERTIFICATE-----`.
    pub label: String,
    /// The decoded body.
    pub der: Vec<u8>,
}

/// The first well-formed block in `input` and the text after it, or `None`
/// when there is none.
pub(super) fn decode(input: &str) -> Option<(Block, &str)> {
    let mut search = input;
    loop {
        let begin = search.find("-----BEGIN ")?;
        let after_begin = search.get(begin + "-----BEGIN ".len()..)?;
        if let Some(found) = decode_at(after_begin) {
            return Some(found);
        }
        search = after_begin;
    }
}

/// Decodes a block whose `-----BEGIN ` prefix ends just before `s`.
fn decode_at(s: &str) -> Option<(Block, &str)> {
    let line_end = s.find('\n').unwrap_or(s.len());
    let first_line = s.get(..line_end)?.trim_end_matches('\r');
    let label = first_line.strip_suffix("-----")?;
    let body_start = s.get(line_end..)?.strip_prefix('\n').unwrap_or("");
    let end_marker = format!("-----END {label}-----");
    let end = body_start.find(&end_marker)?;
    let body = body_start.get(..end)?;
    let mut rest = body_start.get(end + end_marker.len()..)?;
    // The rest of the end line goes with the block.
    rest = match rest.find('\n') {
        Some(n) if rest.get(..n)?.trim().is_empty() => rest.get(n + 1..)?,
        None if rest.trim().is_empty() => "",
        _ => return None,
    };
    // Headers end at the first empty line; a body without one has none.
    let body = match body.find(':') {
        Some(colon) if body.get(..colon).is_some_and(|h| !h.contains('\n')) => {
            let blank = body.find("\n\n").or_else(|| body.find("\r\n\r\n"))?;
            body.get(blank..)?
        }
        _ => body,
    };
    let text: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(text).ok()?;
    Some((
        Block {
            label: label.to_owned(),
            der,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_blocks_and_returns_the_rest() {
        let input = "junk\n-----BEGIN TEST-----\naGVs\nbG8=\n-----END TEST-----\nafter";
        let (block, rest) = decode(input).unwrap();
        assert_eq!(block.label, "TEST");
        assert_eq!(block.der, b"hello");
        assert_eq!(rest, "after");
        assert_eq!(decode("no pem here"), None);
        assert_eq!(decode("-----BEGIN A-----\n!!\n-----END A-----\n"), None);
    }
}
