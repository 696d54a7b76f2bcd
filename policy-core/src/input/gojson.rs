//! JSON text written the way Go's `encoding/json` writes it, so `regard
//! parse` prints what `conftest parse` prints: object keys sorted, `<`, `>`
//! and `&` escaped as `\u003c`, `\u003e`, `\u0026`, floats in Go's shortest
//! form (`1e+21`, `1e-7`), and `json.MarshalIndent` layout.

use std::fmt::Write;

use regorus::Value;

/// `json.MarshalIndent(value, "", indent)`.
///
/// ```
/// use policy_core::input::gojson;
/// use policy_core::Value;
/// let v = Value::from_json_str(r#"{"b": [1, 2.5], "a": "<x>", "c": {}}"#).unwrap();
/// assert_eq!(
///     gojson::to_string_indent(&v, "  "),
///     "{\n  \"a\": \"\\u003cx\\u003e\",\n  \"b\": [\n    1,\n    2.5\n  ],\n  \"c\": {}\n}"
/// );
/// ```
pub fn to_string_indent(value: &Value, indent: &str) -> String {
    let mut out = String::new();
    write_value(&mut out, value, indent, 0);
    out
}

/// conftest's combined document: `[{"path": …, "contents": …}, …]`
/// (the struct's field order, not sorted), indented with `indent`.
pub fn combined_to_string_indent(entries: &[(String, Value)], indent: &str) -> String {
    if entries.is_empty() {
        return "null".to_owned();
    }
    let mut out = String::from("[");
    for (i, (path, contents)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(&mut out, indent, 1);
        out.push('{');
        newline(&mut out, indent, 2);
        out.push_str("\"path\": ");
        write_string(&mut out, path);
        out.push(',');
        newline(&mut out, indent, 2);
        out.push_str("\"contents\": ");
        write_value(&mut out, contents, indent, 2);
        newline(&mut out, indent, 1);
        out.push('}');
    }
    newline(&mut out, indent, 0);
    out.push(']');
    out
}

fn newline(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

fn write_value(out: &mut String, value: &Value, indent: &str, depth: usize) {
    match value {
        Value::Null | Value::Undefined => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                out.push_str(&go_float(f));
            } else {
                out.push_str(&n.format_decimal());
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => write_list(out, items.iter(), items.len(), indent, depth),
        Value::Set(items) => write_list(out, items.iter(), items.len(), indent, depth),
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, depth + 1);
                match k {
                    Value::String(s) => write_string(out, s),
                    other => write_string(out, &to_string_indent(other, "")),
                }
                out.push_str(": ");
                write_value(out, v, indent, depth + 1);
            }
            newline(out, indent, depth);
            out.push('}');
        }
    }
}

fn write_list<'a>(
    out: &mut String,
    items: impl Iterator<Item = &'a Value>,
    len: usize,
    indent: &str,
    depth: usize,
) {
    if len == 0 {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline(out, indent, depth + 1);
        write_value(out, item, indent, depth + 1);
    }
    newline(out, indent, depth);
    out.push(']');
}

/// A string with Go's escaping (HTML-safe, U+2028/U+2029 escaped).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as encoding/json uses it.
fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        // Rust writes `1e21` / `1e-7`; Go writes `1e+21` / `1e-07` cleaned to `1e-7`.
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.5), "0.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.5e-7), "1.5e-7");
        assert_eq!(go_float(123456789.0), "123456789");
        assert_eq!(go_float(0.000001), "0.000001");
    }

    #[test]
    fn escapes_like_go() {
        let mut s = String::new();
        write_string(&mut s, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }

    #[test]
    fn combined_layout() {
        let entries = vec![("a.yaml".to_owned(), Value::from(1_i64))];
        assert_eq!(
            combined_to_string_indent(&entries, "\t"),
            "[\n\t{\n\t\t\"path\": \"a.yaml\",\n\t\t\"contents\": 1\n\t}\n]"
        );
    }
}
