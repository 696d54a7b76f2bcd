//! INI files (`rust-ini` reads the line structure; values then get go-ini's
//! treatment, as conftest uses go-ini):
//!
//! * keys before the first section, and a `[DEFAULT]` section, are dropped
//!   (conftest skips go-ini's `DEFAULT` section — a lossy quirk kept so
//!   policies port unchanged);
//! * an inline comment starts at the first `#` or `;` of the value;
//! * one pair of surrounding quotes is removed;
//! * values that parse as a float become numbers, as a Go bool booleans;
//! * a repeated section is merged, a repeated key keeps its last value.

use std::collections::BTreeMap;
use std::path::Path;

use ini::{Ini, ParseOption};
use regorus::Value;

use super::support::{error, error_at, object, typed_scalar};
use crate::error::Result;

/// Parses one INI file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let options = ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: false,
        enabled_preserve_key_leading_whitespace: false,
    };
    let ini = Ini::load_from_str_opt(text, options)
        .map_err(|e| error_at(path, e.line, e.col, e.msg.into_owned()))?;
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (name, props) in ini.iter() {
        let Some(name) = name else { continue };
        if name == "DEFAULT" {
            continue;
        }
        let section = sections.entry(name.to_owned()).or_default();
        for (k, v) in props.iter() {
            section.insert(k.to_owned(), go_ini_value(v));
        }
    }
    let mut out = Vec::with_capacity(sections.len());
    for (name, keys) in sections {
        let mut typed = Vec::with_capacity(keys.len());
        for (k, v) in keys {
            let value = typed_scalar(&v).map_err(|m| error(path, format!("[{name}] {k}: {m}")))?;
            typed.push((k, value));
        }
        out.push((name, object(typed)));
    }
    Ok(object(out))
}

/// go-ini's value clean-up: cut an inline comment, then strip one pair of
/// surrounding quotes when the quote character does not occur inside.
fn go_ini_value(raw: &str) -> String {
    let mut line = raw.trim();
    if let Some(i) = line.find(['#', ';']) {
        line = line.get(..i).unwrap_or(line).trim();
    }
    for q in ['\'', '"'] {
        if let Some(inner) = line.strip_prefix(q).and_then(|l| l.strip_suffix(q))
            && !inner.contains(q)
        {
            return inner.to_owned();
        }
    }
    line.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_typing() {
        let text = "top = dropped\n[server]\nport = 3000\nhttp_addr = \"0.0.0.0\" ; comment\ndebug = true\nname = a#b\nratio=0.5\n[empty]\n";
        let v = parse(text, Path::new("a.ini")).ok();
        let s = v.and_then(|v| serde_json::to_string(&v).ok());
        assert_eq!(
            s.as_deref(),
            Some(
                r#"{"empty":{},"server":{"debug":true,"http_addr":"0.0.0.0","name":"a","port":3000,"ratio":0.5}}"#
            )
        );
    }

    #[test]
    fn missing_delimiter_is_an_error_with_position() {
        let err = parse("[a]\nkey\n", Path::new("a.ini"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("a.ini:")),
            "{err:?}"
        );
    }
}
