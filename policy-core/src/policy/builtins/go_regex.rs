//! The `regex.*` builtins with Go's pattern syntax.
//!
//! OPA compiles patterns with Go's `regexp`, where `\d`, `\w`, `\s` and `\b`
//! are ASCII; regorus' versions compile them as Unicode classes, so
//! `regex.match(patterns[i], v)` gives other answers for non-ASCII text and,
//! for patterns like trivy-checks' IBAN detector (six `\d{4}`), fails with
//! "compiled regex exceeded size limit" where OPA matches. The compile stage
//! already rewrites literal patterns (`rego::regex_classes`); these
//! replacements cover patterns that are computed or read from rules and
//! data, and keep each compiled pattern per thread
//! ([`crate::regex_cache`]). Results otherwise follow regorus' versions:
//! `n < 0` means all matches, an unmatched group is `""`, and an invalid
//! pattern makes `regex.replace` undefined and `regex.is_valid` false.

use anyhow::{Result, bail};
use regorus::Value;

use super::{Builtin, str_operand, type_name};
use crate::regex_cache::with_go_regex;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("regex.match", 2, regex_match),
    ("regex.is_valid", 1, is_valid),
    ("regex.find_n", 3, find_n),
    (
        "regex.find_all_string_submatch_n",
        3,
        find_all_string_submatch_n,
    ),
    ("regex.split", 2, split),
    ("regex.replace", 3, replace),
];

fn regex_match(args: &[Value]) -> Result<Value> {
    let [pattern, value] = args else {
        bail!("regex.match expects 2 arguments");
    };
    let pattern = str_operand("regex.match", 1, pattern)?;
    let value = str_operand("regex.match", 2, value)?;
    Ok(Value::from(with_go_regex(pattern, |re| {
        re.is_match(value)
    })?))
}

fn is_valid(args: &[Value]) -> Result<Value> {
    let [pattern] = args else {
        bail!("regex.is_valid expects 1 argument");
    };
    let valid = match pattern {
        Value::String(p) => with_go_regex(p, |_| ()).is_ok(),
        _ => false,
    };
    Ok(Value::from(valid))
}

/// How many matches `n` asks for: all when negative.
fn count(name: &str, n: &Value) -> Result<usize> {
    let Value::Number(_) = n else {
        bail!("{name}: operand 3 must be number but got {}", type_name(n));
    };
    match n.as_i64() {
        Ok(n) if n < 0 => Ok(usize::MAX),
        Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        Err(_) => bail!("{name}: n must be an integer"),
    }
}

fn find_n(args: &[Value]) -> Result<Value> {
    let [pattern, value, n] = args else {
        bail!("regex.find_n expects 3 arguments");
    };
    let pattern = str_operand("regex.find_n", 1, pattern)?;
    let value = str_operand("regex.find_n", 2, value)?;
    let n = count("regex.find_n", n)?;
    let found = with_go_regex(pattern, |re| {
        re.find_iter(value)
            .take(n)
            .map(|m| Value::from(m.as_str()))
            .collect::<Vec<_>>()
    })?;
    Ok(Value::from(found))
}

fn find_all_string_submatch_n(args: &[Value]) -> Result<Value> {
    const NAME: &str = "regex.find_all_string_submatch_n";
    let [pattern, value, n] = args else {
        bail!("{NAME} expects 3 arguments");
    };
    let pattern = str_operand(NAME, 1, pattern)?;
    let value = str_operand(NAME, 2, value)?;
    let n = count(NAME, n)?;
    let found = with_go_regex(pattern, |re| {
        re.captures_iter(value)
            .take(n)
            .map(|groups| {
                Value::from(
                    groups
                        .iter()
                        .map(|g| Value::from(g.map_or("", |m| m.as_str())))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    })?;
    Ok(Value::from(found))
}

fn split(args: &[Value]) -> Result<Value> {
    let [pattern, value] = args else {
        bail!("regex.split expects 2 arguments");
    };
    let pattern = str_operand("regex.split", 1, pattern)?;
    let value = str_operand("regex.split", 2, value)?;
    let parts = with_go_regex(pattern, |re| {
        re.split(value).map(Value::from).collect::<Vec<_>>()
    })?;
    Ok(Value::from(parts))
}

fn replace(args: &[Value]) -> Result<Value> {
    let [s, pattern, value] = args else {
        bail!("regex.replace expects 3 arguments");
    };
    let s = str_operand("regex.replace", 1, s)?;
    let pattern = str_operand("regex.replace", 2, pattern)?;
    let value = str_operand("regex.replace", 3, value)?;
    match with_go_regex(pattern, |re| re.replace_all(s, value).into_owned()) {
        Ok(out) => Ok(Value::from(out)),
        Err(_) => Ok(Value::Undefined),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::from(v)
    }

    fn json(v: &Value) -> String {
        v.to_json_str().unwrap().split_whitespace().collect()
    }

    #[test]
    fn classes_are_ascii_as_in_go() {
        assert_eq!(
            regex_match(&[s(r"^\d+$"), s("123")]).unwrap(),
            Value::from(true)
        );
        assert_eq!(
            regex_match(&[s(r"^\d+$"), s("\u{663}")]).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            regex_match(&[s(r"^\w+$"), s("é")]).unwrap(),
            Value::from(false)
        );
        let iban = r"[^\.](?:\b[A-Z]{2}\d{2} ?\d{4} ?\d{4} ?\d{4} ?\d{4} ?[\d]{0,2}\b)";
        assert_eq!(
            regex_match(&[s(iban), s("iban: GB82 WEST 1234 5698 7654 32")]).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            regex_match(&[s(iban), s("iban: GB82 1234 5698 7654 3210")]).unwrap(),
            Value::from(true)
        );
    }

    #[test]
    fn find_split_and_replace_follow_regorus() {
        let found = find_n(&[s(r"\$[A-Z]+"), s("$A and $BC, $D"), Value::from(-1)]).unwrap();
        assert_eq!(json(&found), r#"["$A","$BC","$D"]"#);
        let two = find_n(&[s(r"\$[A-Z]+"), s("$A and $BC, $D"), Value::from(2)]).unwrap();
        assert_eq!(json(&two), r#"["$A","$BC"]"#);
        let groups =
            find_all_string_submatch_n(&[s(r"(\w+)=(\d+)?"), s("a=1 b="), Value::from(-1)])
                .unwrap();
        assert_eq!(json(&groups), r#"[["a=1","a","1"],["b=","b",""]]"#);
        let parts = split(&[s(r"\s*=\s*"), s("IMAGE = x")]).unwrap();
        assert_eq!(json(&parts), r#"["IMAGE","x"]"#);
        let replaced = replace(&[s("a1b22"), s(r"\d+"), s("#")]).unwrap();
        assert_eq!(replaced, s("a#b#"));
    }

    #[test]
    fn invalid_patterns() {
        assert!(regex_match(&[s("("), s("x")]).is_err());
        assert_eq!(is_valid(&[s("(")]).unwrap(), Value::from(false));
        assert_eq!(is_valid(&[Value::from(1)]).unwrap(), Value::from(false));
        assert_eq!(is_valid(&[s(r"\d")]).unwrap(), Value::from(true));
        assert_eq!(
            replace(&[s("a"), s("("), s("b")]).unwrap(),
            Value::Undefined
        );
        assert!(find_n(&[s("a"), s("a"), Value::from(1.5)]).is_err());
        assert!(regex_match(&[Value::from(1), s("x")]).is_err());
    }
}
