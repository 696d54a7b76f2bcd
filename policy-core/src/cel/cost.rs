//! A runtime cost budget for CEL expressions, as the API server enforces one.
//!
//! The `cel` crate counts nothing and cannot be interrupted, so the cost is
//! charged by the expression itself: [`instrument`] rewrites a parsed
//! expression (after its names are checked) so that the places where work
//! can grow with the input call hidden functions (`@cost_loop`,
//! `@cost_size`: names CEL source cannot spell) which charge a per-thread
//! meter and hand their argument back unchanged (a reference, not a copy).
//! [`metered`] runs one evaluation under a limit; a charge past it fails the
//! evaluation at once, and the caller reports it in cel-go's words
//! ([`LIMIT_EXCEEDED`]).
//!
//! The model approximates cel-go's, it does not reproduce it: an evaluation
//! costs the expression's static node count, plus, for each comprehension
//! (`all`, `exists`, `map`, `filter`, the two-variable macros, ...) the
//! number of elements of its range times the node count of its loop body
//! (charged before the loop runs, so a loop that would exceed the limit does
//! not start, and a loop that stops early is charged in full), plus, for the
//! functions whose work grows with a string or list ([`SIZED_MEMBERS`]), the
//! size of their receiver and of what they return (strings count one per 10
//! bytes as in cel-go; lists and maps one per element; `distinct` the square
//! of its size).

use std::cell::Cell;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{CelInt, CelString, DYN_TYPE, INT_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::FUNCTION_NAMESPACES;
use super::library::take;

/// cel-go's per-expression limit (`PerCallLimit`); Gatekeeper's k8scel
/// driver also uses it as the budget of a whole constraint.
pub(crate) const PER_CALL_LIMIT: u64 = 1_000_000;
/// The API server's budget for the validations of one (policy, binding,
/// param) evaluation (`RuntimeCELCostBudget`).
pub(crate) const VALIDATION_BUDGET: u64 = 10_000_000;
/// The API server's budget for the match conditions of one evaluation
/// (`RuntimeCELCostBudgetMatchConditions`).
pub(crate) const MATCH_CONDITIONS_BUDGET: u64 = 2_500_000;

/// cel-go's error when an expression exceeds its limit.
pub(crate) const LIMIT_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";
/// The API server's error when the budget of an evaluation runs out.
pub(crate) const BUDGET_EXHAUSTED: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

pub(super) const COST_LOOP: &str = "@cost_loop";
pub(super) const COST_SIZE: &str = "@cost_size";

/// How `@cost_size` turns a size into a cost.
const LINEAR: u64 = 1;
const QUADRATIC: u64 = 2;

/// Member functions whose work grows with their receiver (charged its size)
/// and whether they build a value as large (charged the result's size too).
const SIZED_MEMBERS: &[(&str, bool)] = &[
    ("matches", false),
    ("find", false),
    ("findAll", true),
    ("contains", false),
    ("startsWith", false),
    ("endsWith", false),
    ("indexOf", false),
    ("lastIndexOf", false),
    ("lowerAscii", true),
    ("upperAscii", true),
    ("trim", true),
    ("substring", true),
    ("split", true),
    ("join", true),
    ("replace", true),
    ("format", true),
    ("isSorted", false),
    ("sum", false),
    ("min", false),
    ("max", false),
    ("flatten", true),
    ("reverse", true),
    ("slice", true),
    ("sort", true),
    ("distinct", true),
];

/// Qualified functions that build a value: charged the result's size.
const SIZED_NAMESPACED: &[(&str, &str)] = &[("lists", "range"), ("strings", "quote")];

/// Registers the hidden charging functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    env.add_overload(
        COST_LOOP,
        "@cost_loop_dyn_int",
        vec![DYN_TYPE, INT_TYPE],
        cost_loop,
    )?;
    env.add_overload(
        COST_SIZE,
        "@cost_size_dyn_int",
        vec![DYN_TYPE, INT_TYPE],
        cost_size,
    )?;
    Ok(())
}

/// Rewrites `e` to charge its cost as it runs and returns its static cost
/// (the node count), which the caller charges before running it.
pub(crate) fn instrument(e: &mut IdedExpr) -> u64 {
    let mut nodes = 0;
    rewrite(e, &mut nodes);
    nodes
}

fn call(id: u64, func: &str, args: Vec<IdedExpr>) -> IdedExpr {
    IdedExpr {
        id,
        expr: Expr::Call(CallExpr {
            func_name: func.to_owned(),
            target: None,
            args,
        }),
    }
}

fn int(id: u64, n: u64) -> IdedExpr {
    IdedExpr {
        id,
        expr: Expr::Literal(LiteralValue::Int(CelInt::from(
            i64::try_from(n).unwrap_or(i64::MAX),
        ))),
    }
}

/// `wrapper(e, n)` in place of `e`.
fn wrap(e: &mut IdedExpr, wrapper: &str, n: u64) {
    let id = e.id;
    let inner = std::mem::take(e);
    *e = call(id, wrapper, vec![inner, int(id, n)]);
}

/// Whether a comprehension is a binding (`cel.bind`, the optional and
/// two-variable macros' name bindings): its range is the empty list literal.
fn binds_only(c: &ComprehensionExpr) -> bool {
    matches!(&c.iter_range.expr, Expr::List(l) if l.elements.is_empty())
}

/// Counts the nodes of `e` into `nodes` and rewrites it (children first).
fn rewrite(e: &mut IdedExpr, nodes: &mut u64) {
    *nodes += 1;
    match &mut e.expr {
        Expr::Call(c) => {
            let sized = SIZED_MEMBERS.iter().find(|(n, _)| *n == c.func_name);
            let mut builds = false;
            if let Some(target) = c.target.as_deref_mut() {
                rewrite(target, nodes);
                match &target.expr {
                    // `lists.range(n)`, `strings.quote(s)`, `sets.contains(a, b)`:
                    // the target names a namespace, not a value.
                    Expr::Ident(ns) if FUNCTION_NAMESPACES.contains(&ns.as_str()) => {
                        builds = SIZED_NAMESPACED.contains(&(ns.as_str(), c.func_name.as_str()));
                    }
                    _ => {
                        if let Some((name, result_too)) = sized {
                            let factor = if *name == "distinct" {
                                QUADRATIC
                            } else {
                                LINEAR
                            };
                            wrap(target, COST_SIZE, factor);
                            builds = *result_too;
                        }
                    }
                }
            }
            for a in &mut c.args {
                rewrite(a, nodes);
            }
            if builds {
                wrap(e, COST_SIZE, LINEAR);
            }
        }
        Expr::Comprehension(c) => {
            let mut body = 0;
            rewrite(&mut c.iter_range, nodes);
            rewrite(&mut c.accu_init, nodes);
            rewrite(&mut c.loop_cond, &mut body);
            rewrite(&mut c.loop_step, &mut body);
            rewrite(&mut c.result, nodes);
            *nodes += body;
            if !binds_only(c) {
                wrap(&mut c.iter_range, COST_LOOP, body + 1);
            }
        }
        Expr::List(l) => {
            for x in &mut l.elements {
                rewrite(x, nodes);
            }
        }
        Expr::Map(m) => {
            for entry in &mut m.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(me) => {
                        rewrite(&mut me.key, nodes);
                        rewrite(&mut me.value, nodes);
                    }
                    EntryExpr::StructField(f) => rewrite(&mut f.value, nodes),
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                match &mut entry.expr {
                    EntryExpr::MapEntry(me) => {
                        rewrite(&mut me.key, nodes);
                        rewrite(&mut me.value, nodes);
                    }
                    EntryExpr::StructField(f) => rewrite(&mut f.value, nodes),
                }
            }
        }
        Expr::Select(s) => rewrite(&mut s.operand, nodes),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// The meter of the evaluation running on this thread.
#[derive(Clone, Copy)]
struct Meter {
    spent: u64,
    limit: u64,
    exceeded: bool,
}

thread_local! {
    static METER: Cell<Option<Meter>> = const { Cell::new(None) };
}

/// What one metered evaluation cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Spent {
    /// The cost charged.
    pub cost: u64,
    /// Whether a charge went past the limit (the evaluation was stopped).
    pub exceeded: bool,
}

/// Runs `f` (one evaluation) with a meter limited to `limit`, charged `base`
/// first. A meter already running (an evaluation inside another) is put back
/// afterwards.
pub(crate) fn metered<R>(limit: u64, base: u64, f: impl FnOnce() -> R) -> (R, Spent) {
    let outer = METER.with(|m| {
        m.replace(Some(Meter {
            spent: base,
            limit,
            exceeded: base > limit,
        }))
    });
    let result = f();
    let meter = METER.with(|m| m.replace(outer));
    let spent = meter.map_or(
        Spent {
            cost: base,
            exceeded: false,
        },
        |m| Spent {
            cost: m.spent,
            exceeded: m.exceeded,
        },
    );
    (result, spent)
}

/// The state of this thread's meter, to go back to with [`rewind`].
#[derive(Clone, Copy)]
pub(crate) struct Checkpoint(Option<Meter>);

/// The meter as it stands.
pub(crate) fn checkpoint() -> Checkpoint {
    Checkpoint(METER.with(Cell::get))
}

/// Undoes every charge since `checkpoint` (an evaluation that is run again).
pub(crate) fn rewind(checkpoint: Checkpoint) {
    METER.with(|m| m.set(checkpoint.0));
}

/// Charges `cost` to the running meter; fails once it is past its limit
/// (and for every later charge, so the evaluation ends quickly). Without a
/// meter (tests of the libraries alone) nothing is charged.
fn charge(function: &str, cost: u64) -> Result<(), ExecutionError> {
    METER.with(|m| {
        let Some(mut meter) = m.get() else {
            return Ok(());
        };
        // cel-go cancels the evaluation at the first charge past the limit:
        // what runs after (an `all()` going on past a failed step) is free.
        if meter.exceeded {
            return Err(ExecutionError::function_error(function, LIMIT_EXCEEDED));
        }
        meter.spent = meter.spent.saturating_add(cost);
        meter.exceeded |= meter.spent > meter.limit;
        m.set(Some(meter));
        if meter.exceeded {
            Err(ExecutionError::function_error(function, LIMIT_EXCEEDED))
        } else {
            Ok(())
        }
    })
}

/// The size of a value for charging: strings one per 10 bytes (rounded up),
/// lists and maps their element count, anything else 1.
fn size_of(v: &dyn Val) -> u64 {
    if let Some(s) = v.downcast_ref::<CelString<'_>>() {
        return u64::try_from(s.inner().len().div_ceil(10)).unwrap_or(u64::MAX);
    }
    v.as_sizer()
        .map_or(1, |s| u64::try_from(*s.size().inner()).unwrap_or(0))
}

fn weight(function: &str, v: &dyn Val) -> Result<u64, ExecutionError> {
    v.downcast_ref::<CelInt>()
        .and_then(|w| u64::try_from(*w.inner()).ok())
        .ok_or_else(|| ExecutionError::function_error(function, "expected a weight"))
}

/// `@cost_loop(range, weight)`: charges `size(range) × weight`, returns `range`.
pub(super) fn cost_loop<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [range, w] = take(COST_LOOP, args)?;
    let w = weight(COST_LOOP, w.as_ref())?;
    let n = range
        .as_sizer()
        .map_or(0, |s| u64::try_from(*s.size().inner()).unwrap_or(0));
    charge(COST_LOOP, n.saturating_mul(w))?;
    Ok(range)
}

/// `@cost_size(value, factor)`: charges the size of `value` (squared when
/// `factor` is 2), returns `value`.
pub(super) fn cost_size<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [value, factor] = take(COST_SIZE, args)?;
    let n = size_of(value.as_ref());
    let cost = if weight(COST_SIZE, factor.as_ref())? == QUADRATIC {
        n.saturating_mul(n)
    } else {
        n
    };
    charge(COST_SIZE, cost)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cel::common::ast::{Expr, IdedExpr};

    use super::*;
    use crate::cel::{environment, vap_environment};

    fn parse(env: &Env, source: &str) -> IdedExpr {
        env.parser().parse(source).unwrap()
    }

    /// Renders an expression's shape: calls as `f(args)` (a target first),
    /// comprehensions as `loop(range)`.
    fn shape(e: &IdedExpr) -> String {
        match &e.expr {
            Expr::Call(c) => {
                let mut args: Vec<String> = c.target.iter().map(|t| shape(t)).collect();
                args.extend(c.args.iter().map(shape));
                format!("{}({})", c.func_name, args.join(", "))
            }
            Expr::Comprehension(c) => format!("loop({})", shape(&c.iter_range)),
            Expr::Ident(n) => n.clone(),
            Expr::Literal(LiteralValue::Int(i)) => i.inner().to_string(),
            Expr::Literal(_) => "lit".to_owned(),
            Expr::List(l) => format!(
                "[{}]",
                l.elements.iter().map(shape).collect::<Vec<_>>().join(", ")
            ),
            Expr::Select(s) => format!("{}.{}", shape(&s.operand), s.field),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn comprehensions_are_charged_their_range_times_their_body() {
        let mut e = parse(environment(), "[1, 2].all(x, x > 0)");
        // loop 1 + range [1, 2] 3 + init 1 + result 1, and the body:
        // cond `@not_strictly_false(@result)` 2 + step `@result && x > 0` 5.
        assert_eq!(instrument(&mut e), 13);
        assert_eq!(shape(&e), "loop(@cost_loop([1, 2], 8))");
    }

    #[test]
    fn sized_functions_are_charged_their_receiver_and_result() {
        let mut e = parse(environment(), "object.name.split('-').join('')");
        instrument(&mut e);
        assert_eq!(
            shape(&e),
            "@cost_size(join(@cost_size(@cost_size(split(@cost_size(object.name, 1), lit), 1), 1), lit), 1)"
        );
        let mut e = parse(vap_environment(), "lists.range(3).distinct()");
        instrument(&mut e);
        assert_eq!(
            shape(&e),
            "@cost_size(distinct(@cost_size(@cost_size(range(lists, 3), 1), 2)), 1)"
        );
        // Functions that do no work in proportion to a size are left alone.
        let mut e = parse(
            environment(),
            "size(object.items) > 0 && sets.contains([1], [1])",
        );
        instrument(&mut e);
        assert_eq!(
            shape(&e),
            "_&&_(_>_(size(object.items), 0), contains(sets, [1], [1]))"
        );
    }

    fn run(source: &str, limit: u64) -> (Result<String, String>, Spent) {
        let env = vap_environment();
        let mut e = parse(env, source);
        let base = instrument(&mut e);
        metered(limit, base, || {
            let ctx = cel::Context::with_env(Arc::clone(env));
            cel::Value::resolve_val(&e, &ctx)
                .map(|v| format!("{:?}", cel::Value::try_from(v.as_ref()).ok()))
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn evaluation_charges_the_model() {
        // 14 static (a range of 4 nodes) + 3 elements × weight 8.
        let (r, spent) = run("[1, 2, 3].all(x, x > 0)", PER_CALL_LIMIT);
        assert_eq!(r.as_deref(), Ok("Some(Bool(true))"));
        assert_eq!(
            spent,
            Spent {
                cost: 14 + 3 * 8,
                exceeded: false
            }
        );
        // A string of 25 bytes counts 3, its 5 parts 5, the joined string 3.
        let (_, spent) = run(
            "'aaaa-bbbb-cccc-dddd-eeeee'.split('-').join('')",
            PER_CALL_LIMIT,
        );
        // Nodes: join 1, split 1, string 1, '-' 1, '' 1.
        assert_eq!(spent.cost, 5 + 3 + 5 + 5 + 3);
        // `distinct` counts its size squared.
        let (_, spent) = run("lists.range(10).distinct()", PER_CALL_LIMIT);
        // Nodes: distinct 1, range 1, lists 1, 10 1; range's result 10,
        // distinct's receiver 100, its result 10.
        assert_eq!(spent.cost, 4 + 10 + 100 + 10);
    }

    #[test]
    fn a_charge_past_the_limit_stops_the_evaluation() {
        let nested = "lists.range(100).all(x, lists.range(100).all(y, x + y >= 0))";
        let (r, spent) = run(nested, 1_000);
        assert!(spent.exceeded);
        assert!(r.unwrap_err().contains(LIMIT_EXCEEDED));
        let (r, spent) = run(nested, PER_CALL_LIMIT);
        assert_eq!(r.as_deref(), Ok("Some(Bool(true))"));
        assert!(!spent.exceeded);
        // An `all()` that absorbs the error of a stopped step still reports
        // the meter as exceeded, which the validator turns into the error.
        let (r, spent) = run(
            "[1, 2].all(x, x == 1 ? lists.range(5000).size() > 0 : false)",
            1_000,
        );
        assert_eq!(r.as_deref(), Ok("Some(Bool(false))"));
        assert!(spent.exceeded);
        // Without a meter (library tests) nothing is charged.
        assert_eq!(charge(COST_LOOP, u64::MAX), Ok(()));
    }
}
