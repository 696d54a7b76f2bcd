//! OPA's deprecated v0 builtins: the `cast_*` family and `set_diff`.
//!
//! OPA keeps them for Rego v0 modules only; regard registers them for every
//! module, since a v1 module that calls one fails to compile under OPA
//! anyway and so never reaches regard from a working OPA setup. Each cast
//! returns its operand unchanged when it already has the target type (an
//! array becomes a set for `cast_set` and a set an array for `cast_array`)
//! and is an error otherwise, as in OPA.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use regorus::Value;

use super::{Builtin, type_name, unary};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("cast_array", 1, cast_array),
    ("cast_set", 1, cast_set),
    ("cast_string", 1, cast_string),
    ("cast_boolean", 1, cast_boolean),
    ("cast_null", 1, cast_null),
    ("cast_object", 1, cast_object),
    ("set_diff", 2, set_diff),
];

fn cast_array(args: &[Value]) -> Result<Value> {
    match unary("cast_array", args)? {
        v @ Value::Array(_) => Ok(v.clone()),
        Value::Set(s) => Ok(Value::from(s.iter().cloned().collect::<Vec<_>>())),
        other => bail!(
            "cast_array: operand 1 must be one of {{array, set}} but got {}",
            type_name(other)
        ),
    }
}

fn cast_set(args: &[Value]) -> Result<Value> {
    match unary("cast_set", args)? {
        Value::Array(a) => Ok(Value::from(a.iter().cloned().collect::<BTreeSet<_>>())),
        v @ Value::Set(_) => Ok(v.clone()),
        other => bail!(
            "cast_set: operand 1 must be one of {{array, set}} but got {}",
            type_name(other)
        ),
    }
}

/// The casts to a scalar or an object only check the type.
fn cast_exact(name: &str, want: &str, args: &[Value]) -> Result<Value> {
    let v = unary(name, args)?;
    if type_name(v) == want {
        Ok(v.clone())
    } else {
        bail!("{name}: operand 1 must be {want} but got {}", type_name(v))
    }
}

fn cast_string(args: &[Value]) -> Result<Value> {
    cast_exact("cast_string", "string", args)
}

fn cast_boolean(args: &[Value]) -> Result<Value> {
    cast_exact("cast_boolean", "boolean", args)
}

fn cast_null(args: &[Value]) -> Result<Value> {
    cast_exact("cast_null", "null", args)
}

fn cast_object(args: &[Value]) -> Result<Value> {
    cast_exact("cast_object", "object", args)
}

/// `set_diff(a, b)`: the elements of set `a` not in set `b` (`a - b`).
fn set_diff(args: &[Value]) -> Result<Value> {
    let [a, b] = args else {
        bail!("set_diff: expects 2 arguments");
    };
    let (Value::Set(a), Value::Set(b)) = (a, b) else {
        let (pos, got) = if matches!(a, Value::Set(_)) {
            (2, b)
        } else {
            (1, a)
        };
        bail!(
            "set_diff: operand {pos} must be set but got {}",
            type_name(got)
        );
    };
    Ok(a.difference(b).into_value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> Value {
        Value::from_json_str(s).unwrap()
    }

    #[test]
    fn casts_keep_or_convert_the_value() {
        let set = Value::from(BTreeSet::from([Value::from(2), Value::from(1)]));
        assert_eq!(
            cast_array(std::slice::from_ref(&set)).unwrap(),
            json("[1, 2]")
        );
        assert_eq!(cast_set(&[json("[2, 1, 2]")]).unwrap(), set);
        assert_eq!(cast_string(&[json("\"a\"")]).unwrap(), json("\"a\""));
        assert_eq!(cast_boolean(&[json("false")]).unwrap(), json("false"));
        assert_eq!(cast_null(&[Value::Null]).unwrap(), Value::Null);
        assert_eq!(
            cast_object(&[json("{\"a\": 1}")]).unwrap(),
            json("{\"a\": 1}")
        );
    }

    #[test]
    fn casts_reject_other_types() {
        assert_eq!(
            cast_array(&[json("{}")]).unwrap_err().to_string(),
            "cast_array: operand 1 must be one of {array, set} but got object"
        );
        assert_eq!(
            cast_string(&[json("1")]).unwrap_err().to_string(),
            "cast_string: operand 1 must be string but got number"
        );
        assert_eq!(
            set_diff(&[json("[1]"), json("[2]")])
                .unwrap_err()
                .to_string(),
            "set_diff: operand 1 must be set but got array"
        );
    }

    #[test]
    fn set_diff_subtracts() {
        let a = cast_set(&[json("[1, 2, 3]")]).unwrap();
        let b = cast_set(&[json("[2, 4]")]).unwrap();
        assert_eq!(
            set_diff(&[a, b]).unwrap(),
            cast_set(&[json("[1, 3]")]).unwrap()
        );
    }
}
