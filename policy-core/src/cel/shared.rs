//! Maps and lists of the object under review, shared instead of copied.
//!
//! The `cel` crate copies a value whenever it keeps one: each element a
//! comprehension binds (`containers.all(c, ...)` copies every container),
//! each variable, each operand of a list concatenation. Its maps and lists
//! own their elements, so every copy is a deep one, and those copies were
//! most of the cost of evaluating a Gatekeeper CEL template.
//!
//! [`SharedMap`] and [`SharedList`] sit behind an [`Arc`]: a copy is a
//! reference count. They present themselves as the built-in map and list
//! (`as_builtin`), so every function, operator and equality of the crate
//! treats them exactly as it treats its own; only the crate's hidden "move
//! the built-in value out" path copies the inner value, and then only when
//! it is shared.
//!
//! A [`SharedMap`] keeps the object's entries as they come from regorus,
//! sorted by key, and answers field selection, `has()`, `in` and `size`
//! from them by binary search: the crate's map hashes every key with
//! SipHash, on every lookup and when it is built, which was a sixth of the
//! evaluation of the library's CEL templates. The crate's map is built from
//! the entries only when something needs it (iteration, equality, handing
//! the map to the crate's own functions).

use std::sync::{Arc, OnceLock};

use cel::ExecutionError;
use cel::common::traits::{Adder, Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{CelInt, CelList, CelMap, CelMapKey, CelString, Type};
use cel::common::value::{Builtin, BuiltinRef, CowVal, Val};

/// A map of the reviewed object, shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedMap(Arc<MapEntries>);

/// One entry of a [`SharedMap`]: the key, the regorus value, and that
/// value as a CEL value once something has read it.
#[derive(Debug)]
struct Entry {
    key: Arc<str>,
    source: regorus::Value,
    value: OnceLock<Box<dyn Val + 'static>>,
}

impl Entry {
    fn value(&self) -> &(dyn Val + 'static) {
        self.value
            .get_or_init(|| super::value::to_val(&self.source))
            .as_ref()
    }
}

/// A [`SharedMap`]'s entries.
#[derive(Debug)]
pub(crate) struct MapEntries {
    /// Sorted by key, keys unique.
    entries: Box<[Entry]>,
    /// The same entries as the crate's map, built on first need.
    builtin: OnceLock<CelMap<'static>>,
}

/// A list of the reviewed object, shared.
#[derive(Debug, Clone)]
pub(crate) struct SharedList(Arc<CelList<'static>>);

impl SharedMap {
    /// The map of `entries`, each value converted when it is first read (a
    /// review reads a few fields of an object: its `status` or
    /// `managedFields` are never converted); a key given twice keeps its
    /// last value, as a map built from them would.
    pub(crate) fn new(entries: impl IntoIterator<Item = (Arc<str>, regorus::Value)>) -> Self {
        let mut entries: Vec<Entry> = entries
            .into_iter()
            .map(|(key, source)| Entry {
                key,
                source,
                value: OnceLock::new(),
            })
            .collect();
        if !entries.is_sorted_by(|a, b| a.key < b.key) {
            // Later entries first, so that the stable sort and `dedup`
            // keep the last value of a repeated key.
            entries.reverse();
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            entries.dedup_by(|later, first| later.key == first.key);
        }
        Self(Arc::new(MapEntries {
            entries: entries.into_boxed_slice(),
            builtin: OnceLock::new(),
        }))
    }

    /// The value of the string key `key`.
    pub(crate) fn find(&self, key: &str) -> Option<&(dyn Val + 'static)> {
        let entries = &self.0.entries;
        entries
            .binary_search_by(|e| (*e.key).cmp(key))
            .ok()
            .and_then(|i| entries.get(i))
            .map(Entry::value)
    }

    /// The crate's map of the same entries.
    fn builtin(&self) -> &CelMap<'static> {
        self.0.builtin()
    }
}

impl MapEntries {
    fn builtin(&self) -> &CelMap<'static> {
        self.builtin.get_or_init(|| {
            CelMap::from(
                self.entries
                    .iter()
                    .map(|e| {
                        (
                            CelMapKey::from(e.key.to_string()),
                            e.value().clone_as_boxed(),
                        )
                    })
                    .collect::<std::collections::HashMap<_, _>>(),
            )
        })
    }
}

impl SharedList {
    pub(crate) fn new(list: CelList<'static>) -> Self {
        Self(Arc::new(list))
    }
}

impl Val for SharedMap {
    fn get_type(&self) -> &Type {
        <CelMap<'static> as Val>::cel_type()
    }

    fn cel_type() -> &'static Type {
        <CelMap<'static> as Val>::cel_type()
    }

    fn as_adder<'b, 'v>(&'b self) -> Option<&'b (dyn Adder + 'v)>
    where
        Self: 'v,
    {
        self.builtin().as_adder()
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn into_indexer<'v>(self: Box<Self>) -> Option<Box<dyn Indexer + 'v>>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        self.builtin().as_iterable()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        Some(self)
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.builtin().as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.builtin().equals(other)
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
        BuiltinRef::Map(self.builtin())
    }

    fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
    where
        Self: 'v,
    {
        let map = match Arc::try_unwrap(self.0) {
            Ok(entries) => {
                entries.builtin();
                entries.builtin.into_inner()?
            }
            Err(shared) => shared.builtin().clone(),
        };
        Some(Builtin::Map(map))
    }
}

impl cel::common::value::StaticVal for SharedMap {}

/// String keys are looked up in the sorted entries; any other key is the
/// crate map's question (a number finds nothing, a list is an error).
impl Indexer for SharedMap {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        match idx.downcast_ref::<CelString<'_>>() {
            Some(key) => match self.find(key.inner()) {
                Some(v) => Ok(CowVal::Borrowed(v)),
                None => Err(ExecutionError::NoSuchKey(Arc::new(key.inner().to_owned()))),
            },
            None => self.builtin().get(idx),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

impl Container for SharedMap {
    fn contains(&self, key: &dyn Val) -> Result<bool, ExecutionError> {
        match key.downcast_ref::<CelString<'_>>() {
            Some(key) => Ok(self.find(key.inner()).is_some()),
            None => self.builtin().contains(key),
        }
    }
}

impl Sizer for SharedMap {
    fn size(&self) -> CelInt {
        CelInt::from(i64::try_from(self.0.entries.len()).unwrap_or(i64::MAX))
    }
}

/// A list hands every question to the inner built-in list, except copying
/// (a reference count) and giving the value up (the inner list, copied only
/// when it is shared).
impl Val for SharedList {
    fn get_type(&self) -> &Type {
        self.0.get_type()
    }

    fn cel_type() -> &'static Type {
        <CelList<'static> as Val>::cel_type()
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
        BuiltinRef::List(&self.0)
    }

    fn into_builtin<'v>(self: Box<Self>) -> Option<Builtin<'v>>
    where
        Self: 'v,
    {
        Some(Builtin::List(Arc::unwrap_or_clone(self.0)))
    }
}

impl cel::common::value::StaticVal for SharedList {}

/// Moving an element out of a shared value copies the element, which
/// is itself shared when it is a map or a list.
impl Indexer for SharedList {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        match self.0.as_indexer() {
            Some(indexer) => indexer.get(idx),
            None => Err(ExecutionError::function_error("_[_]", "not indexable")),
        }
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

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
        // Beyond field selection the crate's own map answers, built from
        // the entries: iteration, equality, other key types.
        let more = [
            ("object.m.all(k, k == 'k')", "true"),
            ("object.spec.exists(k, k == 'containers')", "true"),
            ("object.m.map(k, k + '!')", r#"["k!"]"#),
            ("object.m != {'k': 'w'}", "true"),
            ("object.m.k == 'v' && !('x' in object.m)", "true"),
            ("has(object.m.k) && !has(object.m.x)", "true"),
            ("object.m[?'x'].orValue('none')", r#""none""#),
        ];
        for (expr, want) in more {
            let got = eval(expr, object).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(got, want, "{expr}");
        }
        assert_eq!(eval("object.m[1]", object).unwrap_err(), "No such key: 1");
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        use cel::common::types::CelInt;
        let map = super::SharedMap::new([
            (std::sync::Arc::from("b"), regorus::Value::from(1)),
            (std::sync::Arc::from("a"), regorus::Value::from(2)),
            (std::sync::Arc::from("b"), regorus::Value::from(3)),
        ]);
        let get = |k: &str| {
            *map.find(k)
                .and_then(|v| v.downcast_ref::<CelInt>())
                .unwrap()
                .inner()
        };
        assert_eq!((get("a"), get("b")), (2, 3));
    }
}
