//! Helpers shared by the format readers: error construction with positions,
//! object building, and Go's scalar parsing rules (`strconv.ParseFloat` and
//! `ParseBool`), which several conftest parsers use to type values.

use std::collections::BTreeMap;
use std::path::Path;

use regorus::Value;

use crate::error::Error;

/// A parse error at a 1-based line and column.
pub(crate) fn error_at(
    path: &Path,
    line: usize,
    column: usize,
    message: impl Into<String>,
) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line: Some(line),
        column: Some(column),
        message: message.into(),
    }
}

/// A parse error whose position the parser does not report.
pub(crate) fn error(path: &Path, message: impl Into<String>) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: message.into(),
    }
}

/// A parse error at a byte offset of `text`.
pub(crate) fn error_at_offset(
    path: &Path,
    text: &str,
    offset: usize,
    message: impl Into<String>,
) -> Error {
    let (line, column) = line_col(text, offset);
    error_at(path, line, column, message)
}

/// The 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset = offset.saturating_sub(1);
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// An object from string keys.
pub(crate) fn object<I: IntoIterator<Item = (String, Value)>>(entries: I) -> Value {
    let map: BTreeMap<Value, Value> = entries
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    Value::from(map)
}

/// Go's `strconv.ParseFloat(s, 64)`: decimal notation and `inf`/`nan`
/// spellings. Out-of-range values fail, as in Go. (Hexadecimal floats such
/// as `0x1p-2` and underscore-separated digits are not accepted; Go accepts
/// them only with a base prefix, and they do not occur in configuration.)
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().ok();
    }
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let mut digits = 0;
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
        digits += 1;
    }
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    let v = s.parse::<f64>().ok()?;
    // Go reports a range error instead of returning ±Inf.
    v.is_finite().then_some(v)
}

/// Go's `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// conftest's INI/HOCON value typing: a string that parses as a float
/// becomes a number, one that parses as a bool becomes a boolean, anything
/// else stays a string. NaN and infinities cannot go through JSON, so
/// conftest fails on them; so do we.
pub(crate) fn typed_scalar(s: &str) -> Result<Value, String> {
    if let Some(f) = go_parse_float(s) {
        if !f.is_finite() {
            return Err(format!("json: unsupported value: {s}"));
        }
        return Ok(number(f));
    }
    if let Some(b) = go_parse_bool(s) {
        return Ok(Value::from(b));
    }
    Ok(Value::from(s))
}

/// A float64 as a Rego number: integral values become integers, so they
/// print and compare as the JSON round trip in conftest makes them.
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        // Exact: |f| < 2^53 and integral.
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        Value::from(i)
    } else {
        Value::from(f)
    }
}

/// The deepest bracket nesting accepted by readers whose parser recurses
/// once per level (a deeper document could overflow the stack).
pub(crate) const MAX_NESTING: usize = 256;

/// Refuses documents nested deeper than [`MAX_NESTING`] brackets. Strings
/// (`"…"`) and `;`/`#` line comments are skipped; other bracket characters
/// are counted, which can only over-count.
pub(crate) fn check_nesting(text: &str, path: &Path) -> Result<(), Error> {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(error_at_offset(
                        path,
                        text,
                        i,
                        format!("nesting deeper than {MAX_NESTING} levels"),
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_rules() {
        assert_eq!(go_parse_float("1"), Some(1.0));
        assert_eq!(go_parse_float("-1.5e3"), Some(-1500.0));
        assert_eq!(go_parse_float(".5"), Some(0.5));
        assert_eq!(go_parse_float("1."), Some(1.0));
        assert_eq!(go_parse_float("1e400"), None);
        assert_eq!(go_parse_float("1_000"), None);
        assert_eq!(go_parse_float("0x10"), None);
        assert_eq!(go_parse_float("e5"), None);
        assert_eq!(go_parse_float(""), None);
        assert!(go_parse_float("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn typing_follows_conftest() {
        assert_eq!(typed_scalar("3000"), Ok(Value::from(3000_i64)));
        assert_eq!(typed_scalar("t"), Ok(Value::from(true)));
        assert_eq!(typed_scalar("yes"), Ok(Value::from("yes")));
        assert!(typed_scalar("NaN").is_err());
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("a = {}", "[".repeat(100_000));
        for format in [
            super::super::Format::Hcl2,
            super::super::Format::Hcl1,
            super::super::Format::Toml,
            super::super::Format::Jsonnet,
            super::super::Format::Edn,
        ] {
            let err = format
                .parse(&deep, Path::new("deep"))
                .err()
                .map(|e| e.to_string());
            assert_eq!(
                err.as_deref(),
                Some("deep:1:261: nesting deeper than 256 levels"),
                "{format:?}"
            );
        }
    }

    #[test]
    fn positions_count_characters() {
        assert_eq!(line_col("ab\ncé\nx", 6), (2, 3));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
