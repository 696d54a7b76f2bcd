//! EDN, read with `edn-format` and shaped as conftest shapes it (a lossy
//! shape kept so policies port unchanged): maps become objects whose keys
//! are Go's `%v` of the key (`:env` → `":env"`), vectors and lists become
//! arrays, strings stay strings, and **every other value is replaced by its
//! Go `%v` text**: `5432` → `"5432"`, `true` → `"true"`, `nil` → `"<nil>"`,
//! a character → its code point (`\a` → `"97"`), a set →
//! `"map[:a:true :b:true]"`, `#inst` → Go's time format, another tagged
//! value → `"{tag value}"`.

use std::path::Path;

use edn_format::Value as Edn;
use regorus::Value;

use super::support::{check_nesting, error, error_at, object};
use crate::error::Result;

/// Parses one EDN document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    // edn-format recurses once per nesting level.
    check_nesting(text, path)?;
    let value = edn_format::parse_str(text).map_err(|e| {
        let message = e.error.to_string();
        if e.row > 0 {
            error_at(path, e.row, e.col.max(1), message)
        } else {
            error(path, message)
        }
    })?;
    Ok(clean(&value))
}

fn clean(value: &Edn) -> Value {
    match value {
        Edn::String(s) => Value::from(s.as_str()),
        Edn::List(items) | Edn::Vector(items) => {
            Value::from(items.iter().map(clean).collect::<Vec<_>>())
        }
        Edn::Map(map) => object(map.iter().map(|(k, v)| (go_v(k), clean(v)))),
        other => Value::from(go_v(other)),
    }
}

/// Go's `fmt.Sprintf("%v", x)` of the value olympos/edn decodes.
fn go_v(value: &Edn) -> String {
    match value {
        Edn::Nil => "<nil>".to_owned(),
        Edn::Boolean(b) => b.to_string(),
        Edn::Character(c) => u32::from(*c).to_string(),
        Edn::String(s) => s.clone(),
        Edn::Symbol(s) => s.to_string(),
        Edn::Keyword(k) => k.to_string(),
        Edn::Integer(i) => i.to_string(),
        Edn::Float(f) => go_g(f.into_inner()),
        Edn::BigInt(i) => i.to_string(),
        Edn::BigDec(d) => d.to_string(),
        Edn::List(items) | Edn::Vector(items) => {
            format!("[{}]", items.iter().map(go_v).collect::<Vec<_>>().join(" "))
        }
        Edn::Map(map) => {
            let mut parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", go_v(k), go_v(v)))
                .collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
        Edn::Set(items) => {
            let mut parts: Vec<String> =
                items.iter().map(|k| format!("{}:true", go_v(k))).collect();
            parts.sort();
            format!("map[{}]", parts.join(" "))
        }
        Edn::Inst(t) => {
            let offset = t.offset().local_minus_utc();
            let zone = if offset == 0 {
                "+0000 UTC".to_owned()
            } else {
                let z = t.format("%z").to_string();
                format!("{z} {z}")
            };
            let nanos = t.timestamp_subsec_nanos();
            let frac = if nanos == 0 {
                String::new()
            } else {
                format!(".{}", format!("{nanos:09}").trim_end_matches('0'))
            };
            format!("{}{frac} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        Edn::Uuid(u) => format!("{{uuid {u}}}"),
        Edn::TaggedElement(tag, inner) => format!("{{{tag} {}}}", go_v(inner)),
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the
/// shortest digits, in exponent form when the exponent is below -4 or at
/// least 21.
fn go_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let exp = f.abs().log10().floor();
    if !(-4.0..21.0).contains(&exp) {
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_stringified() {
        let text = "{:db {:port 5432 :ssl true :user \"me\"}\n :features #{:b :a} :env :production\n :ratio 0.5 :none nil :tags [\"x\" 1]\n :at #inst \"2032-01-01T12:20:50.52Z\" :d #duration \"20m\"}";
        let v = parse(text, Path::new("a.edn")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            concat!(
                r#"{":at":"2032-01-01 12:20:50.52 +0000 UTC",":d":"{duration 20m}",":db":{":port":"5432",":ssl":"true",":user":"me"},"#,
                r#"":env":":production",":features":"map[:a:true :b:true]",":none":"<nil>",":ratio":"0.5",":tags":["x","1"]}"#
            )
        );
    }

    #[test]
    fn floats_like_go_v() {
        assert_eq!(go_g(1e21), "1e+21");
        assert_eq!(go_g(0.00001), "1e-05");
        assert_eq!(go_g(123456.0), "123456");
    }

    #[test]
    fn errors_and_deep_nesting() {
        assert!(parse("{:a", Path::new("a.edn")).is_err());
        let deep = "[".repeat(100_000);
        assert!(parse(&deep, Path::new("a.edn")).is_err());
    }
}
