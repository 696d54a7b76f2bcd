//! OPA's operators under their builtin names: `plus(1, 2)`, `minus(s1, s2)`,
//! `equal(a, b)`, `and(s1, s2)`, ….
//!
//! OPA registers every infix operator as a builtin, so a policy may call it
//! by name, and older libraries do (Forseti's policy-library computes
//! `minus(allowed, found)`); regorus knows the operators only as syntax
//! ("could not find function minus"). Each one here evaluates with regorus'
//! own operator code, so `minus(a, b)` means exactly `a - b`. Not covered:
//! the output-argument form (`minus(a, b, out)`), which regorus binds for
//! its own builtins only.

use anyhow::{Result, bail};
use regorus::Value;
use regorus::unstable::{ArithOp, BoolOp, comparison, numbers, sets};

use super::{Builtin, with_call_site};

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("plus", 2, plus),
    ("minus", 2, minus),
    ("mul", 2, mul),
    ("div", 2, div),
    ("rem", 2, rem),
    ("and", 2, and),
    ("or", 2, or),
    ("equal", 2, equal),
    ("neq", 2, neq),
    ("lt", 2, lt),
    ("lte", 2, lte),
    ("gt", 2, gt),
    ("gte", 2, gte),
];

/// The two operands.
fn operands<'a>(name: &str, args: &'a [Value]) -> Result<(&'a Value, &'a Value)> {
    let [a, b] = args else {
        bail!("{name} expects 2 arguments");
    };
    Ok((a, b))
}

// regorus' operator code takes a span and operand expressions only to point
// its errors at them: this thread's call site for the name (`with_call_site`).
fn arith(name: &str, op: ArithOp, args: &[Value]) -> Result<Value> {
    let (a, b) = operands(name, args)?;
    with_call_site(name, |span, e| {
        let [e, ..] = e else {
            bail!("{name}: no operand expression");
        };
        if matches!(op, ArithOp::Sub) && (matches!(a, Value::Set(_)) || matches!(b, Value::Set(_)))
        {
            return sets::difference(e, e, a.clone(), b.clone());
        }
        numbers::arithmetic_operation(span, &op, e, e, a.clone(), b.clone(), true)
    })
}

fn compare(name: &str, op: BoolOp, args: &[Value]) -> Result<Value> {
    let (a, b) = operands(name, args)?;
    comparison::compare(&op, a, b)
}

/// `fn name(args)` calling `via(stringify!(name), op, args)`: the builtin
/// table takes plain function pointers, one per operator.
macro_rules! by_name {
    ($($name:ident => $via:ident($op:expr);)*) => {
        $(fn $name(args: &[Value]) -> Result<Value> {
            $via(stringify!($name), $op, args)
        })*
    };
}

by_name! {
    plus => arith(ArithOp::Add);
    minus => arith(ArithOp::Sub);
    mul => arith(ArithOp::Mul);
    div => arith(ArithOp::Div);
    rem => arith(ArithOp::Mod);
    equal => compare(BoolOp::Eq);
    neq => compare(BoolOp::Ne);
    lt => compare(BoolOp::Lt);
    lte => compare(BoolOp::Le);
    gt => compare(BoolOp::Gt);
    gte => compare(BoolOp::Ge);
}

fn and(args: &[Value]) -> Result<Value> {
    let (a, b) = operands("and", args)?;
    with_call_site("and", |_, e| match e {
        [e, ..] => sets::intersection(e, e, a.clone(), b.clone()),
        [] => bail!("and: no operand expression"),
    })
}

fn or(args: &[Value]) -> Result<Value> {
    let (a, b) = operands("or", args)?;
    with_call_site("or", |_, e| match e {
        [e, ..] => sets::union(e, e, a.clone(), b.clone()),
        [] => bail!("or: no operand expression"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[i64]) -> Value {
        Value::from(
            items
                .iter()
                .map(|i| Value::from(*i))
                .collect::<std::collections::BTreeSet<_>>(),
        )
    }

    #[test]
    fn operators_by_name_mean_the_operators() {
        let n = |v: i64| Value::from(v);
        assert_eq!(plus(&[n(1), n(2)]).unwrap(), n(3));
        assert_eq!(minus(&[n(5), n(2)]).unwrap(), n(3));
        assert_eq!(minus(&[set(&[1, 2, 3]), set(&[2])]).unwrap(), set(&[1, 3]));
        assert_eq!(mul(&[n(4), n(3)]).unwrap(), n(12));
        assert_eq!(div(&[n(9), n(3)]).unwrap(), n(3));
        assert_eq!(rem(&[n(7), n(3)]).unwrap(), n(1));
        assert_eq!(and(&[set(&[1, 2]), set(&[2, 3])]).unwrap(), set(&[2]));
        assert_eq!(or(&[set(&[1]), set(&[2])]).unwrap(), set(&[1, 2]));
        assert_eq!(equal(&[n(1), n(1)]).unwrap(), Value::from(true));
        assert_eq!(neq(&[n(1), n(1)]).unwrap(), Value::from(false));
        assert_eq!(lt(&[n(1), n(2)]).unwrap(), Value::from(true));
        assert_eq!(lte(&[n(2), n(2)]).unwrap(), Value::from(true));
        assert_eq!(
            gt(&[Value::from("b"), Value::from("a")]).unwrap(),
            Value::from(true)
        );
        assert_eq!(gte(&[n(1), n(2)]).unwrap(), Value::from(false));
        assert!(div(&[n(1), n(0)]).is_err());
        assert!(plus(&[n(1), Value::from("a")]).is_err());
    }

    #[test]
    fn only_calls_register_them() {
        assert!(super::super::calls("x := minus(a, b)", "minus"));
        assert!(super::super::calls("x := or ({1}, s)", "or"));
        assert!(!super::super::calls("msg := error(x)", "or"));
        assert!(!super::super::calls("x := filter(y)", "lt"));
        assert!(!super::super::calls("x := lib.minus(a)", "minus"));
        assert!(super::super::calls("io.jwt.decode(t)", "io.jwt.decode"));
    }
}
