//! A minimal RFC 6902 JSON patch from an object to its mutated form.
//!
//! Written here rather than taken from `json-patch` because that crate's
//! diff compares arrays index by index: pruning the first of three
//! capabilities gives two `replace` and one `remove` where one `remove`
//! suffices. This diff keeps the common prefix and suffix of an array and
//! only patches the middle, recurses into objects (keys in sorted order),
//! and replaces a value whose type changed. The result is deterministic.
//! [`apply`] applies a patch, so tests (and callers) can check that the patch
//! turns the original into the mutated object.

use serde::Serialize;
use serde_json::Value as Json;

/// One RFC 6902 operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Add a member or insert an array element.
    Add {
        /// JSON pointer.
        path: String,
        /// The value.
        value: Json,
    },
    /// Remove a member or an array element.
    Remove {
        /// JSON pointer.
        path: String,
    },
    /// Replace a value.
    Replace {
        /// JSON pointer.
        path: String,
        /// The new value.
        value: Json,
    },
}

/// Why a patch does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("patch operation {index} ({path}): {message}")]
pub struct PatchError {
    /// Index of the operation in the patch.
    pub index: usize,
    /// Its path.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The operations turning `before` into `after`.
///
/// ```
/// use policy_core::mutation::patch::{diff, PatchOp};
/// use serde_json::json;
/// let ops = diff(&json!({"a": [1, 2, 3]}), &json!({"a": [2, 3], "b/c": true}));
/// assert_eq!(ops, vec![
///     PatchOp::Remove { path: "/a/0".into() },
///     PatchOp::Add { path: "/b~1c".into(), value: json!(true) },
/// ]);
/// ```
pub fn diff(before: &Json, after: &Json) -> Vec<PatchOp> {
    let mut out = Vec::new();
    let mut path = String::new();
    diff_into(before, after, &mut path, &mut out);
    out
}

fn push_token(path: &mut String, token: &str) {
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
}

fn diff_into(before: &Json, after: &Json, path: &mut String, out: &mut Vec<PatchOp>) {
    match (before, after) {
        (Json::Object(b), Json::Object(a)) => {
            let len = path.len();
            for (k, bv) in b {
                push_token(path, k);
                match a.get(k) {
                    Some(av) => diff_into(bv, av, path, out),
                    None => out.push(PatchOp::Remove { path: path.clone() }),
                }
                path.truncate(len);
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    push_token(path, k);
                    out.push(PatchOp::Add {
                        path: path.clone(),
                        value: av.clone(),
                    });
                    path.truncate(len);
                }
            }
        }
        (Json::Array(b), Json::Array(a)) => diff_array(b, a, path, out),
        _ if before == after => {}
        _ => out.push(PatchOp::Replace {
            path: path.clone(),
            value: after.clone(),
        }),
    }
}

fn diff_array(b: &[Json], a: &[Json], path: &mut String, out: &mut Vec<PatchOp>) {
    let prefix = b.iter().zip(a).take_while(|(x, y)| x == y).count();
    let max_suffix = b.len().min(a.len()) - prefix;
    let suffix = b
        .iter()
        .rev()
        .zip(a.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let b_mid = b.get(prefix..b.len() - suffix).unwrap_or(&[]);
    let a_mid = a.get(prefix..a.len() - suffix).unwrap_or(&[]);
    let len = path.len();
    let common = b_mid.len().min(a_mid.len());
    for (i, (x, y)) in b_mid.iter().zip(a_mid).enumerate() {
        push_token(path, &(prefix + i).to_string());
        diff_into(x, y, path, out);
        path.truncate(len);
    }
    for (i, y) in a_mid.iter().enumerate().skip(common) {
        push_token(path, &(prefix + i).to_string());
        out.push(PatchOp::Add {
            path: path.clone(),
            value: y.clone(),
        });
        path.truncate(len);
    }
    for _ in common..b_mid.len() {
        push_token(path, &(prefix + common).to_string());
        out.push(PatchOp::Remove { path: path.clone() });
        path.truncate(len);
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Applies `ops` to `doc` (add, remove, replace only: what [`diff`] emits).
pub fn apply(doc: &mut Json, ops: &[PatchOp]) -> Result<(), PatchError> {
    for (index, op) in ops.iter().enumerate() {
        let (path, value) = match op {
            PatchOp::Add { path, value } | PatchOp::Replace { path, value } => (path, Some(value)),
            PatchOp::Remove { path } => (path, None),
        };
        let fail = |message: &str| PatchError {
            index,
            path: path.clone(),
            message: message.to_owned(),
        };
        if path.is_empty() {
            match op {
                PatchOp::Remove { .. } => return Err(fail("cannot remove the whole document")),
                _ => *doc = value.cloned().unwrap_or(Json::Null),
            }
            continue;
        }
        let Some((parent, last)) = path.rsplit_once('/') else {
            return Err(fail("a JSON pointer starts with '/'"));
        };
        let parent = doc
            .pointer_mut(parent)
            .ok_or_else(|| fail("parent does not exist"))?;
        let last = unescape(last);
        match (parent, op) {
            (Json::Object(o), PatchOp::Add { value, .. }) => {
                o.insert(last, value.clone());
            }
            (Json::Object(o), PatchOp::Replace { value, .. }) => {
                let slot = o.get_mut(&last).ok_or_else(|| fail("no such member"))?;
                *slot = value.clone();
            }
            (Json::Object(o), PatchOp::Remove { .. }) => {
                o.remove(&last).ok_or_else(|| fail("no such member"))?;
            }
            (Json::Array(a), op) => {
                let i = if last == "-" {
                    a.len()
                } else {
                    last.parse::<usize>()
                        .map_err(|_| fail("not an array index"))?
                };
                match op {
                    PatchOp::Add { value, .. } if i <= a.len() => a.insert(i, value.clone()),
                    PatchOp::Replace { value, .. } if i < a.len() => {
                        if let Some(slot) = a.get_mut(i) {
                            *slot = value.clone();
                        }
                    }
                    PatchOp::Remove { .. } if i < a.len() => {
                        a.remove(i);
                    }
                    _ => return Err(fail("array index out of range")),
                }
            }
            _ => return Err(fail("parent is neither an object nor an array")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(before: Json, after: Json, expected: Json) {
        let ops = diff(&before, &after);
        assert_eq!(serde_json::to_value(&ops).unwrap(), expected);
        let mut patched = before;
        apply(&mut patched, &ops).unwrap();
        assert_eq!(patched, after);
    }

    #[test]
    fn objects() {
        check(json!({"a": 1}), json!({"a": 1}), json!([]));
        check(
            json!({"a": 1, "b": {"c": 2}, "d": 0}),
            json!({"a": 2, "b": {"c": 2, "e": [1]}, "f": null}),
            json!([
                {"op": "replace", "path": "/a", "value": 2},
                {"op": "add", "path": "/b/e", "value": [1]},
                {"op": "remove", "path": "/d"},
                {"op": "add", "path": "/f", "value": null}
            ]),
        );
        check(
            json!({"m": {"a~b": 1}}),
            json!({"m": {"a~b": 2, "x/y": 3}}),
            json!([
                {"op": "replace", "path": "/m/a~0b", "value": 2},
                {"op": "add", "path": "/m/x~1y", "value": 3}
            ]),
        );
        check(
            json!({"a": [1]}),
            json!({"a": {"b": 1}}),
            json!([{"op": "replace", "path": "/a", "value": {"b": 1}}]),
        );
    }

    #[test]
    fn arrays() {
        check(
            json!(["a", "b"]),
            json!(["a", "b", "c"]),
            json!([{"op": "add", "path": "/2", "value": "c"}]),
        );
        check(
            json!(["a", "b", "c"]),
            json!(["b", "c"]),
            json!([{"op": "remove", "path": "/0"}]),
        );
        check(
            json!(["a", "b", "c"]),
            json!(["a", "c"]),
            json!([{"op": "remove", "path": "/1"}]),
        );
        check(
            json!(["a", "c"]),
            json!(["a", "b", "c"]),
            json!([{"op": "add", "path": "/1", "value": "b"}]),
        );
        check(
            json!(["a", "b", "c", "d"]),
            json!(["a", "d"]),
            json!([
                {"op": "remove", "path": "/1"}, {"op": "remove", "path": "/1"}
            ]),
        );
        check(
            json!([{"n": 1}, {"n": 2}]),
            json!([{"n": 1, "x": true}, {"n": 2, "x": true}]),
            json!([
                {"op": "add", "path": "/0/x", "value": true}, {"op": "add", "path": "/1/x", "value": true}
            ]),
        );
        check(
            json!([1, 2, 3]),
            json!([4, 5]),
            json!([
                {"op": "replace", "path": "/0", "value": 4},
                {"op": "replace", "path": "/1", "value": 5},
                {"op": "remove", "path": "/2"}
            ]),
        );
        check(
            json!([1, 1]),
            json!([1, 1, 1]),
            json!([{"op": "add", "path": "/2", "value": 1}]),
        );
        check(
            json!([]),
            json!([1]),
            json!([{"op": "add", "path": "/0", "value": 1}]),
        );
    }

    #[test]
    fn apply_errors() {
        let mut d = json!({"a": [1]});
        let e = apply(&mut d, &[PatchOp::Remove { path: "/b".into() }]).unwrap_err();
        assert_eq!(e.to_string(), "patch operation 0 (/b): no such member");
        let e = apply(
            &mut d,
            &[PatchOp::Replace {
                path: "/a/3".into(),
                value: json!(1),
            }],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "patch operation 0 (/a/3): array index out of range"
        );
        let e = apply(
            &mut d,
            &[PatchOp::Add {
                path: "/x/y".into(),
                value: json!(1),
            }],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "patch operation 0 (/x/y): parent does not exist"
        );
    }
}
