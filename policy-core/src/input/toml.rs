//! TOML (the `toml` crate). Date-times come out as the strings Go's
//! `time.Time` marshals to, because conftest decodes TOML with BurntSushi/toml
//! into `time.Time` values that then go through JSON: local date-times,
//! dates and times carry a zero UTC offset (`Z`), a bare time is on
//! 0000-01-01.

use std::path::Path;

use regorus::Value;
use toml::value::{Datetime, Offset};

use super::support::{check_nesting, error, error_at_offset, object};
use crate::error::Result;

/// Parses one TOML document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    // Nested arrays and inline tables recurse in the parser.
    check_nesting(text, path)?;
    let table: toml::Table = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => error_at_offset(path, text, span.start, e.message().trim_end()),
        None => error(path, e.message().trim_end()),
    })?;
    table_value(table, path)
}

fn table_value(table: toml::Table, path: &Path) -> Result<Value> {
    let mut entries = Vec::with_capacity(table.len());
    for (k, v) in table {
        entries.push((k, value(v, path)?));
    }
    Ok(object(entries))
}

fn value(v: toml::Value, path: &Path) -> Result<Value> {
    Ok(match v {
        toml::Value::String(s) => Value::from(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) if f.is_finite() => Value::from(f),
        toml::Value::Float(f) => {
            return Err(error(path, format!("json: unsupported value: {f}")));
        }
        toml::Value::Boolean(b) => Value::from(b),
        toml::Value::Datetime(d) => Value::from(go_time(&d)),
        toml::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(value(item, path)?);
            }
            Value::from(out)
        }
        toml::Value::Table(t) => table_value(t, path)?,
    })
}

/// RFC 3339 with trailing zeros of the fraction trimmed (Go's RFC3339Nano).
fn go_time(d: &Datetime) -> String {
    let date = d.date.map_or_else(
        || "0000-01-01".to_owned(),
        |date| format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
    );
    let time = d.time.map_or_else(
        || "00:00:00".to_owned(),
        |t| {
            let mut s = format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second.unwrap_or(0));
            let nanos = t.nanosecond.unwrap_or(0);
            if nanos > 0 {
                let frac = format!("{nanos:09}");
                s.push('.');
                s.push_str(frac.trim_end_matches('0'));
            }
            s
        },
    );
    let offset = match d.offset {
        None | Some(Offset::Z) => "Z".to_owned(),
        Some(Offset::Custom { minutes: 0 }) => "Z".to_owned(),
        Some(Offset::Custom { minutes }) => {
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.unsigned_abs();
            format!("{sign}{:02}:{:02}", m / 60, m % 60)
        }
    };
    format!("{date}T{time}{offset}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn dates_look_like_go_times() {
        assert_eq!(
            json(
                "a = 1979-05-27T07:32:00-08:00\nb = 1979-05-27\nc = 07:32:00.500\nd = 1979-05-27T07:32:00"
            ),
            r#"{"a":"1979-05-27T07:32:00-08:00","b":"1979-05-27T00:00:00Z","c":"0000-01-01T07:32:00.5Z","d":"1979-05-27T07:32:00Z"}"#
        );
    }

    #[test]
    fn errors_have_positions() {
        let err = parse("a = 1\nb = \n", Path::new("t.toml"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("t.toml:2:")),
            "{err:?}"
        );
    }
}
