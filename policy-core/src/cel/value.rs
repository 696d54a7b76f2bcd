//! Converting regorus values (parsed JSON/YAML) into CEL values.
//!
//! Objects under review arrive as [`regorus::Value`]s; CEL expressions read
//! them as dynamic maps and lists, as the API server's unstructured objects
//! are. The conversion is done once per review and the result is borrowed by
//! every expression (see [`super::validator`]), so its cost does not grow
//! with the number of constraints.

use std::sync::LazyLock;

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelNull, CelString};
use cel::common::value::{CowVal, Val};
use regorus::Value;

use super::shared::{SharedList, SharedMap};

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
        Value::Array(a) => Box::new(SharedList::new(CelList::from(
            a.iter().map(to_val).collect::<Vec<_>>(),
        ))),
        Value::Set(s) => Box::new(SharedList::new(CelList::from(
            s.iter().map(to_val).collect::<Vec<_>>(),
        ))),
        Value::Object(o) => Box::new(SharedMap::new(o.iter().map(|(k, v)| {
            // The key is shared with regorus' value, not copied.
            let key: std::sync::Arc<str> = match k {
                Value::String(s) => s.clone(),
                other => std::sync::Arc::from(other.to_string()),
            };
            (key, v.clone())
        }))),
    }
}

/// A `'static` copy of a value computed by an expression (a variable's
/// value outlives the bindings it was computed from). One walk over the
/// built-in types; `None` for what it does not know (opaque library values),
/// which the caller copies through [`cel::Value`] instead.
pub(crate) fn to_static(v: &dyn Val) -> Option<Box<dyn Val + 'static>> {
    use cel::common::types::{CelDouble, CelInt, CelUInt};
    use cel::common::value::BuiltinRef;
    if let Some(m) = v.downcast_ref::<SharedMap>() {
        return Some(Box::new(m.clone()));
    }
    if let Some(l) = v.downcast_ref::<SharedList>() {
        return Some(Box::new(l.clone()));
    }
    if let Some(b) = v.downcast_ref::<CelBool>() {
        return Some(Box::new(*b));
    }
    if let Some(i) = v.downcast_ref::<CelInt>() {
        return Some(Box::new(*i));
    }
    if let Some(u) = v.downcast_ref::<CelUInt>() {
        return Some(Box::new(*u));
    }
    if let Some(d) = v.downcast_ref::<CelDouble>() {
        return Some(Box::new(*d));
    }
    if v.downcast_ref::<CelNull>().is_some() {
        return Some(Box::new(CelNull));
    }
    match v.as_builtin() {
        BuiltinRef::String(s) => Some(Box::new(s.clone().into_static())),
        BuiltinRef::List(l) => {
            let items = l
                .inner()
                .iter()
                .map(|i| to_static(i.as_ref()))
                .collect::<Option<Vec<_>>>()?;
            Some(Box::new(CelList::from(items)))
        }
        BuiltinRef::Map(m) => {
            let entries = m
                .inner()
                .iter()
                .map(|(k, v)| Some((k.clone().into_static(), to_static(v.as_ref())?)))
                .collect::<Option<std::collections::HashMap<_, _>>>()?;
            Some(Box::new(CelMap::from(entries)))
        }
        _ => None,
    }
}

/// `true` and `false`, lent rather than boxed for every result.
static TRUE: LazyLock<CelBool> = LazyLock::new(|| CelBool::from(true));
static FALSE: LazyLock<CelBool> = LazyLock::new(|| CelBool::from(false));

/// `b` as a value that needs no allocation.
pub(crate) fn lent_bool<'b, 'v>(b: bool) -> CowVal<'b, 'v> {
    CowVal::Borrowed(if b { &*TRUE } else { &*FALSE })
}

/// A `'static` copy of `v`: [`to_static`], else through [`cel::Value`].
pub(crate) fn detach(v: &dyn Val) -> Option<Box<dyn Val + 'static>> {
    if let Some(owned) = to_static(v) {
        return Some(owned);
    }
    let owned = cel::Value::try_from(v).ok()?;
    Box::<dyn Val>::try_from(owned).ok()
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
