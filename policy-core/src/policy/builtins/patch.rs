//! `json.patch`, in front of regorus' own: a `move` whose `from` is the
//! whole document makes OPA's result undefined (OPA's move is a remove then
//! an add, and removing the root yields nothing), where regorus moves the
//! document onto itself and returns it. Policies rely on this: regula's ARM
//! resource view drops its top-level entry that way. Every other patch is
//! regorus' (it agrees with OPA there, including `remove` of the root).

use anyhow::{Result, bail};
use regorus::Value;

use super::{Builtin, call_regorus};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[("json.patch", 2, patch)];

fn patch(args: &[Value]) -> Result<Value> {
    let [_, Value::Array(ops)] = args else {
        bail!("json.patch: operand 2 must be array");
    };
    if ops.iter().any(moves_root) {
        return Ok(Value::Undefined);
    }
    call_regorus("json.patch", args)
}

/// `{"op": "move", "from": ""}` or `"from": []`.
fn moves_root(op: &Value) -> bool {
    let Value::Object(fields) = op else {
        return false;
    };
    let is_move = fields
        .get(&Value::from("op"))
        .is_some_and(|v| *v == Value::from("move"));
    let from_root = match fields.get(&Value::from("from")) {
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    is_move && from_root
}

#[cfg(test)]
mod tests {
    use super::patch;
    use regorus::Value;

    fn run(target: &str, ops: &str) -> Value {
        let args = [
            Value::from_json_str(target).unwrap(),
            Value::from_json_str(ops).unwrap(),
        ];
        patch(&args).unwrap()
    }

    #[test]
    fn move_from_root_is_undefined() {
        assert_eq!(
            run(r#"{"a": 1}"#, r#"[{"op": "move", "path": [], "from": []}]"#),
            Value::Undefined
        );
        assert_eq!(
            run(
                r#"{"a": 1}"#,
                r#"[{"op": "move", "path": "/b", "from": ""}]"#
            ),
            Value::Undefined
        );
    }

    #[test]
    fn other_patches_are_regorus() {
        assert_eq!(
            run(
                r#"{"a": {"b": 1}}"#,
                r#"[{"op": "move", "path": [], "from": ["a"]}]"#
            ),
            Value::from_json_str(r#"{"b": 1}"#).unwrap()
        );
        assert_eq!(
            run(
                r#"{"a": 1}"#,
                r#"[{"op": "add", "path": "/c", "value": 2}]"#
            ),
            Value::from_json_str(r#"{"a": 1, "c": 2}"#).unwrap()
        );
        assert_eq!(
            run(r#"{"a": 1}"#, r#"[{"op": "remove", "path": []}]"#),
            Value::Undefined
        );
    }
}
