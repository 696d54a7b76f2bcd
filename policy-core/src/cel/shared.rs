//! Maps and lists of the object under review, shared instead of copied.
//!
//! The `cel` crate copies a value whenever it keeps one: each element a
//! comprehension binds (`containers.all(c, ...)` copies every container),
//! each variable, each operand of a list concatenation. Its maps and lists
//! own their elements, so every copy is a deep one, and those copies were
//! most of the cost of evaluating a Gatekeeper CEL template.
//!
//! [`SharedMap`] and [`SharedList`] hold the crate's own map and list behind
//! an [`Arc`]: a copy is a reference count. They present themselves as the
//! built-in map and list (`as_builtin`), so every function, operator and
//! equality of the crate treats them exactly as it treats its own; only the
//! crate's hidden "move the built-in value out" path copies the inner value,
//! and then only when it is shared.

use std::sync::Arc;

use cel::ExecutionError;
use cel::common::traits::{Adder, Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{CelList, CelMap, Type};
use cel::common::value::{Builtin, BuiltinRef, CowVal, Val};

/// A map of the reviewed object, shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedMap(Arc<CelMap<'static>>);

/// A list of the reviewed object, shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedList(Arc<CelList<'static>>);

impl SharedMap {
    pub(crate) fn new(map: CelMap<'static>) -> Self {
        Self(Arc::new(map))
    }
}

impl SharedList {
    pub(crate) fn new(list: CelList<'static>) -> Self {
        Self(Arc::new(list))
    }
}

/// Implements [`Val`] by handing every question to the inner built-in value,
/// except copying (a reference count) and giving the value up (the inner
/// value, copied only when it is shared).
macro_rules! shared_val {
    ($shared:ident, $inner:ident, $variant:ident) => {
        impl Val for $shared {
            fn get_type(&self) -> &Type {
                self.0.get_type()
            }

            fn cel_type() -> &'static Type {
                <$inner<'static> as Val>::cel_type()
            }

            fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
            where
                Self: 'v,
            {
                self.0.as_adder()
            }

            fn as_container(&self) -> Option<&dyn Container> {
                self.0.as_container()
            }

            fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
            where
                Self: 'v,
            {
                self.0.as_indexer()
            }

            fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
            where
                Self: 'v,
            {
                self.0.as_indexer()?;
                Some(self)
            }

            fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
            where
                Self: 'v,
            {
                self.0.as_iterable()
            }

            fn as_sizer(&self) -> Option<&dyn Sizer> {
                self.0.as_sizer()
            }

            fn as_zeroer(&self) -> Option<&dyn Zeroer> {
                self.0.as_zeroer()
            }

            fn equals(&self, other: &dyn Val) -> bool {
                self.0.equals(other)
            }

            fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
            where
                Self: 'v,
            {
                Box::new(self.clone())
            }

            fn as_any(&self) -> Option<&dyn std::any::Any> {
                Some(self)
            }

            fn as_builtin<'b, 'v>(&'b self) -> BuiltinRef<'b, 'v>
            where
                Self: 'v,
            {
                BuiltinRef::$variant(&self.0)
            }

            fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
            where
                Self: 'v,
            {
                Some(Builtin::$variant(Arc::unwrap_or_clone(self.0)))
            }
        }

        impl cel::common::value::StaticVal for $shared {}

        /// Moving an element out of a shared value copies the element, which
        /// is itself shared when it is a map or a list.
        impl Indexer for $shared {
            fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
            where
                Self: 'v,
            {
                match self.0.as_indexer() {
                    Some(indexer) => indexer.get(idx),
                    None => Err(ExecutionError::function_error("_[_]", "not indexable")),
                }
            }

            fn steal<'v>(
                self: Box<Self>,
                idx: &dyn Val,
            ) -> Result<Box<dyn Val + 'v>, ExecutionError>
            where
                Self: 'v,
            {
                self.get(idx).map(CowVal::into_owned)
            }
        }
    };
}

shared_val!(SharedMap, CelMap, Map);
shared_val!(SharedList, CelList, List);

#[cfg(test)]
mod tests {
    use super::super::to_val;

    fn eval(expr: &str, object: &str) -> Result<String, String> {
        let env = super::super::environment();
        let program = env.compile(expr).map_err(|e| e.to_string())?;
        let mut ctx = cel::Context::with_env(std::sync::Arc::clone(env));
        let object = regorus::Value::from_json_str(object).map_err(|e| e.to_string())?;
        ctx.add_variable_as_val("object", to_val(&object));
        program
            .execute(&ctx)
            .map(|v| super::super::render(&v))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn shared_values_behave_as_the_crate_values() {
        let object = r#"{"spec": {"containers": [{"name": "a", "ports": [1, 2]}, {"name": "b"}]},
                         "m": {"k": "v"}, "l": [1, 2, 3]}"#;
        let cases = [
            ("object.spec.containers.map(c, c.name)", r#"["a","b"]"#),
            ("object.spec.containers.all(c, has(c.name))", "true"),
            ("object.spec.containers[0].ports + [3]", "[1,2,3]"),
            ("[0] + object.l", "[0,1,2,3]"),
            ("object.m == {'k': 'v'}", "true"),
            ("{'k': 'v'} == object.m", "true"),
            ("object.l == [1, 2, 3]", "true"),
            ("[1, 2, 3] == object.l", "true"),
            (
                "size(object.spec.containers) == 2 && size(object.m) == 1",
                "true",
            ),
            ("'k' in object.m && 2 in object.l", "true"),
            (
                "object.spec.containers.filter(c, c.name == 'b')[0].name",
                r#""b""#,
            ),
            ("object.?m.k.orValue('none')", r#""v""#),
            ("object.m.k", r#""v""#),
            ("type(object.m) == map && type(object.l) == list", "true"),
            ("object.l.exists_one(x, x == 2)", "true"),
        ];
        for (expr, want) in cases {
            let got = eval(expr, object).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(got, want, "{expr}");
        }
        assert_eq!(
            eval("object.m.missing", object).unwrap_err(),
            "No such key: missing"
        );
    }
}
