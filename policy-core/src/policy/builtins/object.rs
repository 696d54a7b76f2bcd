//! `object.subset`, replacing regorus' own, which panics when the pattern
//! is an empty array (`slice::windows(0)` in its array case) and compares
//! mismatched operand types instead of rejecting them.
//!
//! OPA's rules: two objects recurse key by key (a nested pair of objects,
//! sets or arrays is compared with the same rule, anything else must be
//! equal); sets compare by membership; arrays by contiguous occurrence; an
//! array and a set by counting the array's elements that the set contains.
//! Any other pair of types is an error.

use anyhow::{Result, bail};
use regorus::Value;

use super::Builtin;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("object.subset", 2, subset)];

fn subset(args: &[Value]) -> Result<Value> {
    let [sup, sub] = args else {
        bail!("object.subset: expects 2 arguments");
    };
    let result = match (sup, sub) {
        (Value::Object(_), Value::Object(_))
        | (Value::Set(_), Value::Set(_))
        | (Value::Array(_), Value::Array(_)) => nested_subset(sup, sub),
        (Value::Array(sup), Value::Set(sub)) => {
            // OPA counts matches down from the set's size and stops at zero,
            // so an empty set is a subset of any non-empty array but not of
            // `[]`, and a repeated array element counts twice.
            let mut unmatched = sub.len();
            sup.iter().any(|v| {
                if sub.contains(v) {
                    unmatched = unmatched.saturating_sub(1);
                }
                unmatched == 0
            })
        }
        _ => bail!(
            "object.subset: both arguments object.subset must be of the same type or array and set"
        ),
    };
    Ok(Value::from(result))
}

/// Subset for two values of the same collection type; `false` otherwise.
fn nested_subset(sup: &Value, sub: &Value) -> bool {
    match (sup, sub) {
        (Value::Object(sup), Value::Object(sub)) => sub.iter().all(|(k, vsub)| {
            sup.get(k).is_some_and(|vsup| {
                vsup == vsub
                    || matches!(
                        (vsup, vsub),
                        (Value::Object(_), Value::Object(_))
                            | (Value::Set(_), Value::Set(_))
                            | (Value::Array(_), Value::Array(_))
                    ) && nested_subset(vsup, vsub)
            })
        }),
        (Value::Set(sup), Value::Set(sub)) => sub.is_subset(sup),
        (Value::Array(sup), Value::Array(sub)) => {
            sub.is_empty()
                || sup
                    .as_slice()
                    .windows(sub.len())
                    .any(|w| w == sub.as_slice())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sup: &str, sub: &str) -> Result<Value> {
        let v = |s: &str| Value::from_json_str(s).unwrap();
        subset(&[v(sup), v(sub)])
    }

    fn set(items: &str) -> Value {
        let a = Value::from_json_str(items).unwrap();
        Value::from(
            a.as_array()
                .unwrap()
                .iter()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>(),
        )
    }

    #[test]
    fn empty_array_pattern_does_not_panic() {
        assert_eq!(check("[1, 2]", "[]").unwrap(), Value::from(true));
        assert_eq!(check("[]", "[]").unwrap(), Value::from(true));
        assert_eq!(
            check("{\"a\": [1]}", "{\"a\": []}").unwrap(),
            Value::from(true)
        );
    }

    #[test]
    fn arrays_match_contiguously() {
        assert_eq!(check("[1, 2, 3]", "[2, 3]").unwrap(), Value::from(true));
        assert_eq!(check("[1, 2, 3]", "[1, 3]").unwrap(), Value::from(false));
        assert_eq!(check("[1]", "[1, 2]").unwrap(), Value::from(false));
    }

    #[test]
    fn objects_recurse_into_same_typed_values() {
        assert_eq!(
            check(
                r#"{"a": {"b": 1, "c": 2}, "d": [1, 2]}"#,
                r#"{"a": {"b": 1}, "d": [2]}"#
            )
            .unwrap(),
            Value::from(true)
        );
        assert_eq!(
            check(r#"{"a": 1}"#, r#"{"a": 2}"#).unwrap(),
            Value::from(false)
        );
        assert_eq!(
            check(r#"{"a": 1}"#, r#"{"b": 1}"#).unwrap(),
            Value::from(false)
        );
        assert_eq!(check(r#"{"a": 1}"#, "{}").unwrap(), Value::from(true));
    }

    #[test]
    fn array_and_set_follow_opa_counting() {
        let arr = |s: &str| Value::from_json_str(s).unwrap();
        assert_eq!(
            subset(&[arr("[1, 2, 3]"), set("[3, 1]")]).unwrap(),
            Value::from(true)
        );
        assert_eq!(
            subset(&[arr("[1, 2]"), set("[3]")]).unwrap(),
            Value::from(false)
        );
        assert_eq!(subset(&[arr("[1]"), set("[]")]).unwrap(), Value::from(true));
        assert_eq!(subset(&[arr("[]"), set("[]")]).unwrap(), Value::from(false));
        assert_eq!(
            subset(&[arr("[1, 1]"), set("[1, 2]")]).unwrap(),
            Value::from(true)
        );
    }

    #[test]
    fn mismatched_types_are_an_error() {
        assert_eq!(
            check("{}", "[]").unwrap_err().to_string(),
            "object.subset: both arguments object.subset must be of the same type or array and set"
        );
    }
}
