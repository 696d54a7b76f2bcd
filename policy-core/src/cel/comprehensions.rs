//! Two-variable comprehensions (cel-go's `ext.TwoVarComprehensions`, in the
//! Kubernetes environment since 1.33): `all`, `exists`, `existsOne` with two
//! variables, `transformList`, `transformMap`, `transformMapEntry`.
//!
//! On a list the variables are the index and the element; on a map, the key
//! and the value. The `cel` crate's parser keeps a second iteration variable
//! in its AST but its interpreter ignores it, so these are macros that expand
//! into one-variable comprehensions the interpreter runs: the range becomes
//! `@pairs(range)`, a list of `[first, second]` pairs (map keys sorted, so
//! results do not depend on hashing order), and inside the body each of the
//! two names is bound to its half of the pair as `cel.bind` binds a name (a
//! comprehension over an empty list whose accumulator is the name).
//! `transformMap` collects `[key, value]` pairs into a map with `@pairs_map`;
//! `transformMapEntry` merges the entries with `@merge_entries`, which refuses
//! a key produced twice, as cel-go does.

use std::collections::HashMap;

use cel::common::ast::{
    CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue, operators,
};
use cel::common::types::{CelBool, CelInt, CelList, CelMap, CelMapKey, DYN_TYPE, LIST_TYPE};
use cel::common::value::{CowVal, Val};
use cel::parser::{Macro, MacroExprHelper};
use cel::{DeclarationError, Env, ExecutionError, ParseError};

use super::library::take;

const PAIRS: &str = "@pairs";
const PAIRS_MAP: &str = "@pairs_map";
const MERGE_ENTRIES: &str = "@merge_entries";
/// The pair variable; nested comprehensions shadow it, which is harmless:
/// each level binds its two names from its own pair before going deeper.
const PAIR: &str = "@pair";
const RESULT: &str = "@result";

/// Registers the macros and the functions they call on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_macro(Macro::receiver("all", 3, |h, t, a| {
        expand(h, t, a, Kind::All)
    }))?;
    env.add_macro(Macro::receiver("exists", 3, |h, t, a| {
        expand(h, t, a, Kind::Exists)
    }))?;
    for name in ["existsOne", "exists_one"] {
        env.add_macro(Macro::receiver(name, 3, |h, t, a| {
            expand(h, t, a, Kind::ExistsOne)
        }))?;
    }
    env.add_macro(Macro::receiver("transformList", 3, |h, t, a| {
        expand(h, t, a, Kind::TransformList)
    }))?;
    env.add_macro(Macro::receiver("transformList", 4, |h, t, a| {
        expand(h, t, a, Kind::TransformList)
    }))?;
    env.add_macro(Macro::receiver("transformMap", 3, |h, t, a| {
        expand(h, t, a, Kind::TransformMap)
    }))?;
    env.add_macro(Macro::receiver("transformMap", 4, |h, t, a| {
        expand(h, t, a, Kind::TransformMap)
    }))?;
    env.add_macro(Macro::receiver("transformMapEntry", 3, |h, t, a| {
        expand(h, t, a, Kind::TransformMapEntry)
    }))?;
    env.add_macro(Macro::receiver("transformMapEntry", 4, |h, t, a| {
        expand(h, t, a, Kind::TransformMapEntry)
    }))?;
    env.add_overload(PAIRS, "@pairs_dyn", vec![DYN_TYPE], pairs)?;
    env.add_overload(PAIRS_MAP, "@pairs_map_list", vec![LIST_TYPE], pairs_map)?;
    env.add_overload(
        MERGE_ENTRIES,
        "@merge_entries_list",
        vec![LIST_TYPE],
        merge_entries,
    )?;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
    TransformMapEntry,
}

fn call(h: &mut MacroExprHelper<'_>, func: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: func.to_owned(),
        target: None,
        args,
    }))
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    h.next_expr(Expr::Ident(name.to_owned()))
}

fn literal(h: &mut MacroExprHelper<'_>, value: LiteralValue) -> IdedExpr {
    h.next_expr(Expr::Literal(value))
}

fn list(h: &mut MacroExprHelper<'_>, elements: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::List(ListExpr {
        elements,
        optional_indices: Vec::new(),
    }))
}

fn comprehension(h: &mut MacroExprHelper<'_>, c: ComprehensionExpr) -> IdedExpr {
    h.next_expr(Expr::Comprehension(Box::new(c)))
}

/// `name` bound to `value` inside `body` (what `cel.bind` expands to).
fn bind(h: &mut MacroExprHelper<'_>, name: &str, value: IdedExpr, body: IdedExpr) -> IdedExpr {
    let range = list(h, Vec::new());
    let cond = literal(h, LiteralValue::Boolean(CelBool::from(false)));
    let step = ident(h, name);
    comprehension(
        h,
        ComprehensionExpr {
            iter_range: range,
            iter_var: "#unused".to_owned(),
            iter_var2: None,
            accu_var: name.to_owned(),
            accu_init: value,
            loop_cond: cond,
            loop_step: step,
            result: body,
        },
    )
}

/// `body` with `first` and `second` bound to the halves of the current pair.
fn with_pair(h: &mut MacroExprHelper<'_>, first: &str, second: &str, body: IdedExpr) -> IdedExpr {
    let half = |h: &mut MacroExprHelper<'_>, i: i64| {
        let pair = ident(h, PAIR);
        let index = literal(h, LiteralValue::Int(CelInt::from(i)));
        call(h, operators::INDEX, vec![pair, index])
    };
    let second_value = half(h, 1);
    let inner = bind(h, second, second_value, body);
    let first_value = half(h, 0);
    bind(h, first, first_value, inner)
}

fn name_of(h: &mut MacroExprHelper<'_>, e: IdedExpr) -> Result<String, ParseError> {
    match e.expr {
        Expr::Ident(name) => Ok(name),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    }
}

fn expand(
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
    kind: Kind,
) -> Result<Option<IdedExpr>, ParseError> {
    let Some(range) = target.take() else {
        return Ok(None);
    };
    let mut args = std::mem::take(args).into_iter();
    let (Some(first), Some(second)) = (args.next(), args.next()) else {
        return Err(h.new_error(range.id, "expected two variable names"));
    };
    let first = name_of(h, first)?;
    let second = name_of(h, second)?;
    if first == second {
        return Err(h.new_error(range.id, format!("duplicate variable name: {first}")));
    }
    let rest: Vec<IdedExpr> = args.collect();
    let (filter, body) = match <[IdedExpr; 2]>::try_from(rest) {
        Ok([filter, body]) => (Some(filter), body),
        Err(mut one) => match one.pop() {
            Some(body) if one.is_empty() => (None, body),
            _ => return Err(h.new_error(range.id, "wrong number of arguments")),
        },
    };
    let body = with_pair(h, &first, &second, body);
    let filter = filter.map(|f| with_pair(h, &first, &second, f));
    let pairs = call(h, PAIRS, vec![range]);
    let acc = |h: &mut MacroExprHelper<'_>| ident(h, RESULT);
    let (init, cond, step, result) = match kind {
        Kind::All | Kind::Exists => {
            let all = kind == Kind::All;
            let init = literal(h, LiteralValue::Boolean(CelBool::from(all)));
            let a = acc(h);
            let cond = if all {
                call(h, operators::NOT_STRICTLY_FALSE, vec![a])
            } else {
                let not = call(h, operators::LOGICAL_NOT, vec![a]);
                call(h, operators::NOT_STRICTLY_FALSE, vec![not])
            };
            let a = acc(h);
            let op = if all {
                operators::LOGICAL_AND
            } else {
                operators::LOGICAL_OR
            };
            let step = call(h, op, vec![a, body]);
            (init, cond, step, acc(h))
        }
        Kind::ExistsOne => {
            let init = literal(h, LiteralValue::Int(CelInt::from(0)));
            let cond = literal(h, LiteralValue::Boolean(CelBool::from(true)));
            let a = acc(h);
            let one = literal(h, LiteralValue::Int(CelInt::from(1)));
            let plus = call(h, operators::ADD, vec![a, one]);
            let a = acc(h);
            let step = call(h, operators::CONDITIONAL, vec![body, plus, a]);
            let a = acc(h);
            let one = literal(h, LiteralValue::Int(CelInt::from(1)));
            let result = call(h, operators::EQUALS, vec![a, one]);
            (init, cond, step, result)
        }
        Kind::TransformList | Kind::TransformMap | Kind::TransformMapEntry => {
            let init = list(h, Vec::new());
            let cond = literal(h, LiteralValue::Boolean(CelBool::from(true)));
            // What one element contributes: the value, a [key, value] pair, or an entry map.
            let item = if kind == Kind::TransformMap {
                let key = {
                    let pair = ident(h, PAIR);
                    let index = literal(h, LiteralValue::Int(CelInt::from(0)));
                    call(h, operators::INDEX, vec![pair, index])
                };
                list(h, vec![key, body])
            } else {
                body
            };
            let a = acc(h);
            let wrapped = list(h, vec![item]);
            let appended = call(h, operators::ADD, vec![a, wrapped]);
            let step = match filter {
                Some(f) => {
                    let a = acc(h);
                    call(h, operators::CONDITIONAL, vec![f, appended, a])
                }
                None => appended,
            };
            let a = acc(h);
            let result = match kind {
                Kind::TransformMap => call(h, PAIRS_MAP, vec![a]),
                Kind::TransformMapEntry => call(h, MERGE_ENTRIES, vec![a]),
                _ => a,
            };
            (init, cond, step, result)
        }
    };
    Ok(Some(comprehension(
        h,
        ComprehensionExpr {
            iter_range: pairs,
            iter_var: PAIR.to_owned(),
            iter_var2: None,
            accu_var: RESULT.to_owned(),
            accu_init: init,
            loop_cond: cond,
            loop_step: step,
            result,
        },
    )))
}

fn boxed<'v>(v: impl Val + 'v) -> Box<dyn Val + 'v> {
    Box::new(v)
}

/// `[[index, element], …]` of a list, `[[key, value], …]` of a map (keys sorted).
fn pairs<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [range] = take(PAIRS, args)?;
    let range = range.as_ref();
    let is_map = range.get_type().kind() == cel::common::types::Kind::Map;
    let iterable = range.as_iterable().ok_or_else(|| {
        ExecutionError::function_error(PAIRS, "a two-variable comprehension needs a list or a map")
    })?;
    let mut items: Vec<Box<dyn Val + 'v>> = Vec::new();
    let mut it = iterable.iter();
    while let Some(v) = it.next() {
        items.push(v.clone_as_boxed());
    }
    let mut out: Vec<Box<dyn Val + 'v>> = Vec::with_capacity(items.len());
    if is_map {
        let indexer = range
            .as_indexer()
            .ok_or_else(|| ExecutionError::function_error(PAIRS, "map without an index"))?;
        items.sort_by(|a, b| {
            a.as_comparer()
                .and_then(|c| c.compare(b.as_ref()).ok())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for key in items {
            let value = indexer.get(key.as_ref())?.into_owned();
            out.push(boxed(CelList::from(vec![key, value])));
        }
    } else {
        for (i, element) in items.into_iter().enumerate() {
            let index = i64::try_from(i).unwrap_or(i64::MAX);
            out.push(boxed(CelList::from(vec![
                boxed(CelInt::from(index)),
                element,
            ])));
        }
    }
    Ok(CowVal::owned(CelList::from(out)))
}

fn list_items<'b, 'v>(
    function: &str,
    v: &'b (dyn Val + 'v),
) -> Result<Vec<&'b (dyn Val + 'v)>, ExecutionError> {
    let iterable = v
        .as_iterable()
        .ok_or_else(|| ExecutionError::function_error(function, "expected a list"))?;
    let mut out = Vec::new();
    let mut it = iterable.iter();
    while let Some(x) = it.next() {
        out.push(x);
    }
    Ok(out)
}

/// A map of `[key, value]` pairs (`transformMap`).
fn pairs_map<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(PAIRS_MAP, args)?;
    let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::new();
    for pair in list_items(PAIRS_MAP, list.as_ref())? {
        let halves = list_items(PAIRS_MAP, pair)?;
        let [key, value] = halves.as_slice() else {
            return Err(ExecutionError::function_error(PAIRS_MAP, "expected a pair"));
        };
        let key = CelMapKey::try_from(key.clone_as_boxed())
            .map_err(|_| ExecutionError::function_error("transformMap", "unsupported key type"))?;
        map.insert(key, value.clone_as_boxed());
    }
    Ok(CowVal::owned(CelMap::from(map)))
}

/// The union of entry maps (`transformMapEntry`); a key twice is an error.
fn merge_entries<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list] = take(MERGE_ENTRIES, args)?;
    let mut map: HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> = HashMap::new();
    for entry in list_items(MERGE_ENTRIES, list.as_ref())? {
        if entry.get_type().kind() != cel::common::types::Kind::Map {
            return Err(ExecutionError::function_error(
                "transformMapEntry",
                "the expression must give a map",
            ));
        }
        let indexer = entry
            .as_indexer()
            .ok_or_else(|| ExecutionError::function_error(MERGE_ENTRIES, "map without an index"))?;
        for key in list_items(MERGE_ENTRIES, entry)? {
            let value = indexer.get(key)?.into_owned();
            let key = CelMapKey::try_from(key.clone_as_boxed()).map_err(|_| {
                ExecutionError::function_error("transformMapEntry", "unsupported key type")
            })?;
            if map.contains_key(&key) {
                return Err(ExecutionError::function_error(
                    "transformMapEntry",
                    "insert failed: key already exists",
                ));
            }
            map.insert(key, value);
        }
    }
    Ok(CowVal::owned(CelMap::from(map)))
}

#[cfg(test)]
mod tests {
    use crate::cel::evaluate_standalone;

    /// cel-go's documented examples of the two-variable macros, and the edges.
    #[test]
    fn two_variable_comprehensions_table() {
        let cases: &[(&str, &str)] = &[
            ("[1, 2, 3].all(i, v, i < v)", "true"),
            ("[1, 2, 3].all(i, v, i > 0)", "false"),
            ("{'a': 1, 'b': 2}.all(k, v, k.size() == 1 && v > 0)", "true"),
            ("[1, 2, 3].exists(i, v, i == 1 && v == 2)", "true"),
            (
                "{'greeting': 'hello', 'farewell': 'goodbye'}.exists(k, v, k.startsWith('good') || v.endsWith('bye'))",
                "true",
            ),
            ("[1, 2, 1].existsOne(i, v, v == 2)", "true"),
            ("[1, 2, 1].exists_one(i, v, v == 1)", "false"),
            ("[1, 2, 3].transformList(i, v, i * v)", "[0,2,6]"),
            ("[1, 2, 3].transformList(i, v, i > 0, v * 10)", "[20,30]"),
            (
                "{'b': 2, 'a': 1}.transformList(k, v, k + string(v))",
                "[\"a1\",\"b2\"]",
            ),
            (
                "{'a': 1, 'b': 2}.transformMap(k, v, v * 2) == {'a': 2, 'b': 4}",
                "true",
            ),
            (
                "{'a': 1, 'b': 2}.transformMap(k, v, v > 1, v * 2) == {'b': 4}",
                "true",
            ),
            (
                "[10, 20].transformMap(i, v, v + i) == {0: 10, 1: 21}",
                "true",
            ),
            (
                "{'a': 1}.transformMapEntry(k, v, {v: k}) == {1: 'a'}",
                "true",
            ),
            (
                "{'a': 'x', 'b': 'y'}.transformMapEntry(k, v, k == 'a', {v: k}) == {'x': 'a'}",
                "true",
            ),
            // Nested, with the outer names visible inside.
            ("[[1, 2], [3]].all(i, row, row.all(j, v, v > i))", "true"),
            // One-variable forms are untouched.
            ("[1, 2].all(v, v > 0) && [1].exists(v, v == 1)", "true"),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate_standalone(expr).as_deref(), Ok(*want), "{expr}");
        }
        let err = evaluate_standalone("{'a': 'x', 'b': 'x'}.transformMapEntry(k, v, {v: k})")
            .unwrap_err();
        assert!(err.contains("key already exists"), "{err}");
        let err = evaluate_standalone("[1].all(v, v, true)").unwrap_err();
        assert!(err.contains("duplicate variable name: v"), "{err}");
    }
}
