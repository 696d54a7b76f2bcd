//! JSON documents (a UTF-8 byte-order mark is ignored, as conftest does).

use std::path::Path;

use regorus::Value;

use crate::error::{Error, Result};

/// Parses one JSON document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str::<Value>(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        column: Some(e.column()),
        message: strip_position(&e.to_string()),
    })
}

/// serde_json ends its messages with " at line L column C"; the position is
/// printed in front instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message.get(..i).unwrap_or(message).to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse("{\n  \"a\": 1,\n}", Path::new("x.json"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("x.json:3:1: trailing comma"));
    }

    #[test]
    fn bom_is_ignored() {
        let v = parse("\u{feff}[1]", Path::new("x.json")).ok();
        assert_eq!(v, Some(Value::from(vec![Value::from(1_i64)])));
    }
}
