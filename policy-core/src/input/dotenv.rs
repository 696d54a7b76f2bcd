//! `.env` files, read by gotenv's rules (conftest uses `gotenv.StrictParse`).
//! Hand-written: the Rust dotenv crates differ from gotenv in quoting,
//! `:` separators and expansion, and the result must match conftest's.
//!
//! * `KEY=value`, `KEY: value`, optional `export `; `#` starts a comment;
//! * single quotes keep text literally; double quotes turn `\n`/`\r` into
//!   newlines, drop other backslashes, and may span lines;
//! * `$VAR` / `${VAR}` expand outside single quotes, from the process
//!   environment first, then earlier keys of the file, else empty — as
//!   gotenv does (so the result can depend on the environment, like conftest).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use regorus::Value;

use super::support::{error_at, object};
use crate::error::Result;

// gotenv's line pattern, with Go's ASCII classes spelled out for Rust.
static LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"\A[\t\n\f\r ]*(?:export[\t\n\f\r ]+)?([0-9A-Za-z_.]+)(?:[\t\n\f\r ]*=[\t\n\f\r ]*|:[\t\n\f\r ]+?)('(?:'|[^'])*'|"(?:"|[^"])*"|[^#\n]+)?[\t\n\f\r ]*(?:[\t\n\f\r ]*#.*)?\z"#,
    )
    .ok()
});
static UNESCAPE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\\([^$])").ok());
static VARIABLE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(\\)?(\$)(\{?([A-Z0-9_]+)?\}?)").ok());
static VARIABLE_NAME: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(\$)(\{?([A-Z0-9_]+)\}?)").ok());

/// Parses one dotenv file into `{KEY: "value"}`.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let (Some(line_re), Some(unescape), Some(variable), Some(variable_name)) =
        (&*LINE, &*UNESCAPE, &*VARIABLE, &*VARIABLE_NAME)
    else {
        return Err(error_at(path, 1, 1, "internal error: bad dotenv pattern"));
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = split_lines(text);
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let mut i = 0;
    while let Some(raw) = lines.get(i) {
        let line_no = i + 1;
        i += 1;
        let mut line = raw.trim().to_owned();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A quoted value that does not close on this line continues on the next ones.
        let mut quote = open_quote(&line);
        while let Some(q) = quote {
            let Some(next) = lines.get(i) else { break };
            i += 1;
            line.push('\n');
            line.push_str(next);
            match next.rfind(q) {
                Some(idx) if idx > 0 && next.as_bytes().get(idx - 1) == Some(&b'\\') => {}
                Some(_) => quote = None,
                None => {}
            }
        }
        if quote.is_some() {
            return Err(error_at(path, line_no, 1, "missing quotes"));
        }
        let Some(caps) = line_re.captures(&line) else {
            return Err(error_at(
                path,
                line_no,
                1,
                format!("line `{line}` doesn't match format"),
            ));
        };
        let key = caps.get(1).map_or("", |m| m.as_str()).trim().to_owned();
        let mut val = caps.get(2).map_or("", |m| m.as_str()).trim().to_owned();
        let (mut single, mut double) = (false, false);
        if val.len() >= 2 {
            double = val.starts_with('"') && val.ends_with('"');
            single = val.starts_with('\'') && val.ends_with('\'');
            if single || double {
                val = val.get(1..val.len() - 1).unwrap_or("").to_owned();
            }
        }
        if double {
            val = val.replace("\\n", "\n").replace("\\r", "\r");
            val = unescape.replace_all(&val, "$1").into_owned();
        }
        if !single {
            val = variable
                .replace_all(&val, |c: &regex::Captures<'_>| {
                    let whole = c.get(0).map_or("", |m| m.as_str());
                    if let Some(rest) = whole.strip_prefix('\\') {
                        return rest.to_owned();
                    }
                    let Some(name) = variable_name
                        .captures(whole)
                        .and_then(|n| n.get(3))
                        .map(|m| m.as_str())
                    else {
                        return whole.to_owned();
                    };
                    std::env::var(name)
                        .ok()
                        .or_else(|| env.get(name).cloned())
                        .unwrap_or_default()
                })
                .into_owned();
        }
        env.insert(key, val);
    }
    Ok(object(env.into_iter().map(|(k, v)| (k, Value::from(v)))))
}

/// gotenv splits on `\n`, `\r` or `\r\n`.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        out.push(rest.get(..i).unwrap_or(""));
        let skip = if rest.get(i..i + 2) == Some("\r\n") {
            2
        } else {
            1
        };
        rest = rest.get(i + skip..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// The quote character of a value that opens a quote it does not close.
fn open_quote(line: &str) -> Option<char> {
    let idx = line.find('=').or_else(|| line.find(':'))?;
    if idx == 0 || idx + 1 >= line.len() {
        return None;
    }
    let val = line.get(idx + 1..)?.trim();
    let q = val.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let after = val.get(1..)?.trim();
    // gotenv's check: a closing quote exists and the character of `val` at
    // that index is not a backslash.
    match after.rfind(q) {
        Some(i) if val.as_bytes().get(i) != Some(&b'\\') => None,
        _ => Some(q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new(".env")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn quoting_and_expansion() {
        assert_eq!(
            json(
                "# c\nexport A=1\nB: two # trailing\nC='$A lit'\nD=\"x\\ny ${A}\"\nE=\"multi\nline\"\n"
            ),
            r#"{"A":"1","B":"two","C":"$A lit","D":"x\ny 1","E":"multi\nline"}"#
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let err = parse("A=1\nnot a pair\n", Path::new(".env"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(".env:2:1: line `not a pair` doesn't match format")
        );
        let err = parse("A=\"open\n", Path::new(".env"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(".env:1:1: missing quotes"));
    }
}
