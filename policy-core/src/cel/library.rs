//! The Kubernetes CEL libraries that the `cel` crate does not provide.
//!
//! The API server (and Gatekeeper, which compiles templates with the API
//! server's environment) adds functions of its own to CEL's standard library
//! and cel-go's extensions. The `cel` crate brings the standard library, the
//! optional types and the strings extension (`charAt`, `indexOf`, `join`,
//! `lowerAscii`, `replace`, `split`, `substring`, `trim`, `format`, ...); this
//! module adds, through the crate's overload registration, the Kubernetes
//! libraries the policies in use rely on:
//!
//! * lists: `isSorted()`, `sum()`, `min()`, `max()`, `indexOf(x)`, `lastIndexOf(x)`;
//! * regex: `string.find(re)`, `string.findAll(re)`, `string.findAll(re, n)`,
//!   and the standard `matches`, both as `s.matches(re)` and `matches(s, re)`:
//!   the crate's own (its `regex` feature, off) compiled the pattern on every
//!   call, 10 % of `regard gk test` on the library templates, and with
//!   Rust's Unicode `\d \w \s` where cel-go has Go's ASCII classes;
//! * sets: `sets.contains(a, b)`, `sets.equivalent(a, b)`, `sets.intersects(a, b)`.
//!
//! The quantity, semver, IP/CIDR and URL libraries, which bring types of their
//! own, are in their own modules beside this one.

use std::cmp::Ordering;

use cel::common::types::{CelBool, CelInt, CelList, CelString, INT_TYPE, LIST_TYPE, STRING_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

/// The function `has(x.f)` is rewritten into (see [`super::validator`]): an
/// `@` name, which CEL source cannot call.
pub(crate) const PRESENCE_TEST: &str = "@has";

/// Registers the Kubernetes functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        PRESENCE_TEST,
        "@has_dyn_dyn",
        vec![cel::common::types::DYN_TYPE, cel::common::types::DYN_TYPE],
        presence_test,
    )?;
    env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted)?;
    env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum)?;
    env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min)?;
    env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max)?;
    env.add_member_overload(
        "indexOf",
        "list_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        index_of,
    )?;
    env.add_member_overload(
        "lastIndexOf",
        "list_last_index_of",
        LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        last_index_of,
    )?;
    env.add_overload(
        "matches",
        "matches",
        vec![STRING_TYPE, STRING_TYPE],
        matches,
    )?;
    env.add_member_overload(
        "matches",
        "matches_string",
        STRING_TYPE,
        vec![STRING_TYPE],
        matches,
    )?;
    env.add_member_overload("find", "string_find", STRING_TYPE, vec![STRING_TYPE], find)?;
    env.add_member_overload(
        "findAll",
        "string_find_all",
        STRING_TYPE,
        vec![STRING_TYPE],
        find_all,
    )?;
    env.add_member_overload(
        "findAll",
        "string_find_all_n",
        STRING_TYPE,
        vec![STRING_TYPE, INT_TYPE],
        find_all_n,
    )?;
    env.add_overload(
        "sets.contains",
        "list_sets_contains_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "list_sets_equivalent_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "list_sets_intersects_list",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(())
}

/// `has(x.a.b.f)` as cel-go evaluates it by default (and so the API
/// server): the path is followed from `x` and the answer is `false` as soon
/// as a field is missing or a value on the way is not a map, where the `cel`
/// crate follows cel-go's stricter conformance mode and fails.
/// Gatekeeper-library templates rely on it
/// (`has(variables.anyObject.spec.securityContext.seccompProfile.type)` on a
/// Pod without a security context, `has(variables.params.x)` with no
/// parameters). The arguments are `x` and the list of field names.
pub(super) fn presence_test<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [root, path] = take(PRESENCE_TEST, args)?;
    let present = match path.downcast_ref::<CelString<'_>>() {
        Some(joined) => joined_path_present(root.as_ref(), joined.inner())?,
        None => {
            let fields = elements(PRESENCE_TEST, path.as_ref())?;
            path_present(root.as_ref(), &fields)?
        }
    };
    Ok(super::value::lent_bool(present))
}

/// Whether `fields` lead from `value` through maps to a value. Recursive so
/// that each step borrows from the one before: an owned copy of every map
/// on the path (the whole `spec` of an object, for `has(object.spec.x)`)
/// was most of the cost of a Gatekeeper CEL template.
fn path_present(value: &dyn Val, fields: &[&dyn Val]) -> Result<bool, ExecutionError> {
    let Some((field, rest)) = fields.split_first() else {
        return Ok(true);
    };
    match field_of(value, *field)? {
        Some(next) => path_present(next.as_ref(), rest),
        None => Ok(false),
    }
}

/// [`path_present`] for the fields joined with NUL into one string, the form
/// the rewrite writes (see [`PATH_SEPARATOR`]).
fn joined_path_present(value: &dyn Val, path: &str) -> Result<bool, ExecutionError> {
    // A char pattern: a &str one runs the two-way string search.
    let (field, rest) = match path.split_once('\0') {
        Some((field, rest)) => (field, Some(rest)),
        None => (path, None),
    };
    match field_of(value, &CelString::from(field))? {
        Some(next) => match rest {
            Some(rest) => joined_path_present(next.as_ref(), rest),
            None => Ok(true),
        },
        None => Ok(false),
    }
}

/// [`path_present`] for a path split when the expression was compiled.
pub(super) fn fields_present(
    value: &dyn Val,
    fields: &[CelString<'_>],
) -> Result<bool, ExecutionError> {
    let Some((field, rest)) = fields.split_first() else {
        return Ok(true);
    };
    match field_of(value, field)? {
        Some(next) => fields_present(next.as_ref(), rest),
        None => Ok(false),
    }
}

/// `value.field` when `value` is a map that has it.
fn field_of<'b>(
    value: &'b dyn Val,
    field: &dyn Val,
) -> Result<Option<CowVal<'b, 'b>>, ExecutionError> {
    // The object's own maps answer without building a missing key's error.
    if let (Some(map), Some(key)) = (
        value.downcast_ref::<super::shared::SharedMap>(),
        field.downcast_ref::<CelString<'_>>(),
    ) {
        return Ok(map.find(key.inner()).map(CowVal::Borrowed));
    }
    let is_map = value.get_type().kind() == cel::common::types::Kind::Map;
    let Some(indexer) = value.as_indexer().filter(|_| is_map) else {
        return Ok(None);
    };
    match indexer.get(field) {
        Ok(next) => Ok(Some(next)),
        Err(ExecutionError::NoSuchKey(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// What joins the fields of a presence test's path into one string literal:
/// one constant string per test instead of a list of strings, which CEL
/// builds anew (a list and a copy of each string) on every evaluation. A
/// CEL field name is an identifier and never holds it; a path that somehow
/// did is written as a list.
pub(crate) const PATH_SEPARATOR: &str = "\0";

pub(super) fn take<'b, 'v, const N: usize>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
) -> Result<[CowVal<'b, 'v>; N], ExecutionError> {
    args.try_into().map_err(|args: Vec<_>| {
        ExecutionError::function_error(
            function,
            format!("expected {N} arguments, got {}", args.len()),
        )
    })
}

/// The elements of a list argument.
fn elements<'b, 'v>(
    function: &str,
    list: &'b (dyn Val + 'v),
) -> Result<Vec<&'b (dyn Val + 'v)>, ExecutionError> {
    let iterable = list
        .as_iterable()
        .ok_or_else(|| ExecutionError::function_error(function, "argument is not a list"))?;
    let mut out = Vec::new();
    let mut it = iterable.iter();
    while let Some(v) = it.next() {
        out.push(v);
    }
    Ok(out)
}

fn compare(function: &str, a: &dyn Val, b: &dyn Val) -> Result<Ordering, ExecutionError> {
    a.as_comparer()
        .ok_or_else(|| {
            ExecutionError::function_error(
                function,
                format!("{} is not comparable", a.get_type().name()),
            )
        })?
        .compare(b)
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take("isSorted", args)?;
    let items = elements("isSorted", list.as_ref())?;
    for pair in items.windows(2) {
        if let [a, b] = pair
            && compare("isSorted", *a, *b)? == Ordering::Greater
        {
            return Ok(CowVal::owned(CelBool::from(false)));
        }
    }
    Ok(CowVal::owned(CelBool::from(true)))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take("sum", args)?;
    let items = elements("sum", list.as_ref())?;
    let mut iter = items.into_iter();
    // An empty list sums to the int zero (the dyn element type's zero).
    let Some(first) = iter.next() else {
        return Ok(CowVal::owned(CelInt::from(0)));
    };
    let mut total: Box<dyn Val + 'v> = first.clone_as_boxed();
    for item in iter {
        let adder = total
            .as_adder()
            .ok_or_else(|| ExecutionError::function_error("sum", "elements cannot be added"))?;
        let next = adder.add(item)?.into_owned();
        total = next;
    }
    Ok(CowVal::Owned(total))
}

fn extreme<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    keep: Ordering,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(function, args)?;
    let items = elements(function, list.as_ref())?;
    let mut best: Option<&(dyn Val + 'v)> = None;
    for item in items {
        best = match best {
            Some(b) if compare(function, item, b)? != keep => Some(b),
            _ => Some(item),
        };
    }
    match best {
        Some(b) => Ok(CowVal::Owned(b.clone_as_boxed())),
        None => Err(ExecutionError::function_error(
            function,
            format!("{function} called on empty list"),
        )),
    }
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("min", args, Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    extreme("max", args, Ordering::Greater)
}

fn position<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    last: bool,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list, needle] = take(function, args)?;
    let items = elements(function, list.as_ref())?;
    let found = if last {
        items.iter().rposition(|v| v.equals(needle.as_ref()))
    } else {
        items.iter().position(|v| v.equals(needle.as_ref()))
    };
    let index = found.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1);
    Ok(CowVal::owned(CelInt::from(index)))
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position("indexOf", args, false)
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    position("lastIndexOf", args, true)
}

pub(super) fn string_arg<'a>(function: &str, v: &'a dyn Val) -> Result<&'a str, ExecutionError> {
    v.downcast_ref::<CelString<'_>>()
        .map(|s| s.inner())
        .ok_or_else(|| ExecutionError::function_error(function, "argument is not a string"))
}

/// `f` applied to `pattern` compiled with Go's meaning, as cel-go compiles
/// it (once per thread, see [`crate::regex_cache`]).
fn with_regex<T>(
    function: &str,
    pattern: &str,
    f: impl FnOnce(&regex::Regex) -> T,
) -> Result<T, ExecutionError> {
    crate::regex_cache::with_go_regex(pattern, f).map_err(|e| {
        ExecutionError::function_error(function, format!("invalid regular expression: {e}"))
    })
}

/// `s.matches(re)` / `matches(s, re)`: whether `re` matches anywhere in `s`.
fn matches<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s, re] = take("matches", args)?;
    let text = string_arg("matches", s.as_ref())?;
    let found = with_regex("matches", string_arg("matches", re.as_ref())?, |re| {
        re.is_match(text)
    })?;
    Ok(CowVal::owned(CelBool::from(found)))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s, re] = take("find", args)?;
    let text = string_arg("find", s.as_ref())?;
    let found = with_regex("find", string_arg("find", re.as_ref())?, |re| {
        re.find(text)
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default()
    })?;
    Ok(CowVal::owned(CelString::from(found)))
}

fn find_all_limited<'b, 'v>(
    s: &dyn Val,
    re: &dyn Val,
    limit: Option<i64>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let text = string_arg("findAll", s)?;
    // A negative limit means no limit, as in Go's FindAllString.
    let limit = limit
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    let found: Vec<Box<dyn Val + 'v>> = with_regex("findAll", string_arg("findAll", re)?, |re| {
        re.find_iter(text)
            .take(limit)
            .map(|m| Box::new(CelString::from(m.as_str().to_owned())) as Box<dyn Val + 'v>)
            .collect()
    })?;
    Ok(CowVal::owned(CelList::from(found)))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s, re] = take("findAll", args)?;
    find_all_limited(s.as_ref(), re.as_ref(), None)
}

fn find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s, re, n] = take("findAll", args)?;
    let n = n
        .downcast_ref::<CelInt>()
        .map(|i| *i.inner())
        .ok_or_else(|| ExecutionError::function_error("findAll", "limit is not an int"))?;
    find_all_limited(s.as_ref(), re.as_ref(), Some(n))
}

/// Whether every element of `b` is in `a`.
fn contains_all(function: &str, a: &dyn Val, b: &dyn Val) -> Result<bool, ExecutionError> {
    let (a, b) = (elements(function, a)?, elements(function, b)?);
    Ok(b.iter().all(|x| a.iter().any(|y| y.equals(*x))))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take("sets.contains", args)?;
    let r = contains_all("sets.contains", a.as_ref(), b.as_ref())?;
    Ok(CowVal::owned(CelBool::from(r)))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take("sets.equivalent", args)?;
    let r = contains_all("sets.equivalent", a.as_ref(), b.as_ref())?
        && contains_all("sets.equivalent", b.as_ref(), a.as_ref())?;
    Ok(CowVal::owned(CelBool::from(r)))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take("sets.intersects", args)?;
    let (a, b) = (
        elements("sets.intersects", a.as_ref())?,
        elements("sets.intersects", b.as_ref())?,
    );
    let r = b.iter().any(|x| a.iter().any(|y| y.equals(*x)));
    Ok(CowVal::owned(CelBool::from(r)))
}

#[cfg(test)]
mod tests {
    use super::super::evaluate_standalone as eval;

    /// The rewrite of `has(x.a.b)` passes the path joined into one string;
    /// a list of fields reads the same.
    #[test]
    fn presence_test_reads_a_joined_path_or_a_list() {
        use super::*;
        let object = crate::cel::value::to_val(
            &regorus::Value::from_json_str(r#"{"a": {"b": 1}}"#).unwrap(),
        );
        let test = |path: CowVal<'_, '_>| -> bool {
            let out = presence_test(vec![CowVal::Borrowed(object.as_ref()), path]).unwrap();
            *out.downcast_ref::<CelBool>().unwrap().inner()
        };
        let joined = |p: &'static str| CowVal::owned(CelString::from(p));
        assert!(test(joined("a")));
        assert!(test(joined("a\0b")));
        assert!(!test(joined("a\0c")));
        assert!(!test(joined("a\0b\0c")));
        assert!(!test(joined("z\0b")));
        let list = CelList::from(vec![
            Box::new(CelString::from("a")) as Box<dyn Val>,
            Box::new(CelString::from("b")),
        ]);
        assert!(test(CowVal::owned(list)));
    }

    /// Results as the Kubernetes CEL documentation gives them.
    #[test]
    fn kubernetes_library_table() {
        let cases: &[(&str, &str)] = &[
            ("[1, 2, 3].isSorted()", "true"),
            ("['a', 'c', 'b'].isSorted()", "false"),
            ("[].isSorted()", "true"),
            ("[1, 2, 3].sum()", "6"),
            ("[1.0, 2.5].sum()", "3.5"),
            ("[].sum()", "0"),
            ("[1, 3, 2].min()", "1"),
            ("[1, 3, 2].max()", "3"),
            ("['b', 'a'].min()", "\"a\""),
            ("[1, 2, 2, 3].indexOf(2)", "1"),
            ("[1, 2, 2, 3].lastIndexOf(2)", "2"),
            ("[1, 2].indexOf(5)", "-1"),
            ("'abc 123'.matches('[0-9]+')", "true"),
            ("matches('abc', '^[a-z]+$')", "true"),
            ("'abc'.matches('^b')", "false"),
            // Go's classes are ASCII: an Arabic-Indic digit is no `\\d`.
            ("'\u{0663}'.matches('^\\\\d$')", "false"),
            ("'abc 123'.find('[0-9]+')", "\"123\""),
            ("'xyz'.find('[0-9]+')", "\"\""),
            ("'123 abc 456'.findAll('[0-9]+')", "[\"123\",\"456\"]"),
            ("'123 abc 456'.findAll('[0-9]+', 1)", "[\"123\"]"),
            ("sets.contains([1, 2, 3], [2, 3])", "true"),
            ("sets.contains([1, 2], [2, 4])", "false"),
            ("sets.contains([], [])", "true"),
            ("sets.equivalent([1, 2, 3], [3, 2, 1, 1])", "true"),
            ("sets.equivalent([1], [1, 2])", "false"),
            ("sets.intersects([1, 2], [2, 5])", "true"),
            ("sets.intersects([1], [])", "false"),
        ];
        for (expr, want) in cases {
            assert_eq!(eval(expr).as_deref(), Ok(*want), "{expr}");
        }
    }

    #[test]
    fn library_errors() {
        assert_eq!(
            eval("[].min()"),
            Err("Error executing function 'min': min called on empty list".to_owned())
        );
        assert_eq!(
            eval("'a'.matches('(')")
                .map_err(|e| e
                    .starts_with("Error executing function 'matches': invalid regular expression")),
            Err(true)
        );
        assert_eq!(
            eval("'a'.find('(')")
                .map_err(|e| e
                    .starts_with("Error executing function 'find': invalid regular expression")),
            Err(true)
        );
    }
}
