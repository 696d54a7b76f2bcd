//! Converting regorus values (parsed JSON/YAML) into CEL values.
//!
//! Objects under review arrive as [`regorus::Value`]s; CEL expressions read
//! them as dynamic maps and lists, as the API server's unstructured objects
//! are. The conversion is done once per review and the result is borrowed by
//! every expression (see [`super::validator`]), so its cost does not grow
//! with the number of constraints.

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use cel::common::value::Val;
use regorus::Value;

/// `v` as a CEL value: JSON integers become `int` (as Kubernetes' unstructured
/// decoding makes them `int64`), other numbers `double`, undefined `null`.
pub(crate) fn to_val(v: &Value) -> Box<dyn Val + 'static> {
    match v {
        Value::Null | Value::Undefined => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64().filter(|_| n.is_integer()) {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.to_string())),
        Value::Array(a) => Box::new(CelList::from(a.iter().map(to_val).collect::<Vec<_>>())),
        Value::Set(s) => Box::new(CelList::from(s.iter().map(to_val).collect::<Vec<_>>())),
        Value::Object(o) => Box::new(CelMap::from(
            o.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::String(s) => s.to_string(),
                        other => other.to_string(),
                    };
                    (CelMapKey::from(key), to_val(v))
                })
                .collect::<std::collections::HashMap<_, _>>(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_strings_and_nesting_convert() {
        let v =
            Value::from_json_str(r#"{"a": [1, 2.5, "x", null, true], "b": {"c": -3}}"#).unwrap();
        let converted: cel::Value = to_val(&v).as_ref().try_into().unwrap();
        let cel::Value::Map(m) = converted else {
            panic!("not a map")
        };
        let a = m.get(&cel::objects::Key::from("a")).unwrap().clone();
        assert_eq!(
            a,
            cel::Value::List(std::sync::Arc::new(vec![
                cel::Value::Int(1),
                cel::Value::Float(2.5),
                cel::Value::String(std::sync::Arc::new("x".to_owned())),
                cel::Value::Null,
                cel::Value::Bool(true),
            ]))
        );
    }
}
