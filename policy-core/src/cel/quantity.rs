//! Kubernetes' CEL quantity library: `quantity("1.5Gi")` and its methods.
//!
//! A resource quantity (`500m`, `1.5Gi`, `2e3`) is read as the API server
//! reads it (apimachinery's `ParseQuantity`): an optional sign, a decimal
//! number (`1`, `1.5`, `.5`, `5.`), then one suffix, binary (`Ki` … `Ei`),
//! decimal (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or a decimal exponent
//! (`e3`, `E-2`). The value is kept exactly, as a count of nano-units (the
//! finest precision Kubernetes keeps; finer values round away from zero), in
//! a big integer because quantities such as `9999999999999999999999G` exceed
//! every machine integer. Written here: `kube-cel` (kube-rs' Kubernetes CEL
//! library) is built on `cel` 0.13, whose value API `cel` 0.15 replaced, and
//! `k8s-openapi`'s `Quantity` is only the string.
//!
//! Functions, as the API server's library declares them: `quantity(string)`,
//! `isQuantity(string)`, and on a quantity `sign()`, `isInteger()`,
//! `asInteger()`, `asApproximateFloat()`, `compareTo(q)`, `isGreaterThan(q)`,
//! `isLessThan(q)`, `add(q|int)`, `sub(q|int)`; `==` compares values
//! (`quantity("1k") == quantity("1000")`).

use std::any::Any;
use std::cmp::Ordering;

use cel::common::types::{CelBool, CelDouble, CelInt, INT_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use num_bigint::BigInt;

use super::library::{string_arg, take};

/// The CEL type of quantities (a `const` to make overload declarations from,
/// a `static` for values to point to).
const QUANTITY: Type = Type::new_unspecified_type("kubernetes.Quantity");
static QUANTITY_TYPE: Type = QUANTITY;

/// The message apimachinery gives for a string that is not a quantity.
const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Nano-units per unit.
const NANO: i64 = 1_000_000_000;

/// A quantity, in nano-units.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Quantity(BigInt);

impl Val for Quantity {
    fn get_type(&self) -> &Type {
        &QUANTITY_TYPE
    }

    fn cel_type() -> &'static Type {
        &QUANTITY_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Quantity>().is_some_and(|o| o == self)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Quantity {}

impl Quantity {
    /// Parses `text` as apimachinery's `ParseQuantity` does.
    pub(crate) fn parse(text: &str) -> Result<Quantity, String> {
        let bytes = text.as_bytes();
        let mut pos = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                pos = 1;
                true
            }
            Some(b'+') => {
                pos = 1;
                false
            }
            _ => false,
        };
        let whole_start = pos;
        while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let whole = &text[whole_start..pos];
        let mut fraction = "";
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            let start = pos;
            while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            fraction = &text[start..pos];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(FORMAT_WRONG.to_owned());
        }
        let (scale, binary) = suffix(&text[pos..]).ok_or_else(|| match &text[pos..] {
            s if is_suffix_shaped(s) => "unable to parse quantity's suffix".to_owned(),
            _ => FORMAT_WRONG.to_owned(),
        })?;
        // digits × 10^(exponent - fraction digits) × 2^binary, in nano-units.
        let digits: BigInt = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| FORMAT_WRONG.to_owned())?;
        let mut value = digits * (BigInt::from(1) << binary);
        let fraction_len = i64::try_from(fraction.len()).map_err(|_| FORMAT_WRONG.to_owned())?;
        let exponent = scale + 9 - fraction_len;
        if exponent >= 0 {
            value *= pow10(exponent)?;
        } else {
            // Finer than a nano-unit: round away from zero, as Kubernetes rounds up.
            let divisor = pow10(-exponent)?;
            let (quotient, remainder) = (&value / &divisor, &value % &divisor);
            value = quotient;
            if remainder != BigInt::from(0) {
                value += 1;
            }
        }
        Ok(Quantity(if negative { -value } else { value }))
    }

    fn from_int(i: i64) -> Quantity {
        Quantity(BigInt::from(i) * NANO)
    }

    /// The value as an `i64`, when it is a whole number that fits.
    fn as_i64(&self) -> Option<i64> {
        let nano = BigInt::from(NANO);
        if &self.0 % &nano != BigInt::from(0) {
            return None;
        }
        i64::try_from(&self.0 / &nano).ok()
    }
}

/// `(decimal exponent, binary exponent)` of a quantity suffix.
fn suffix(s: &str) -> Option<(i64, usize)> {
    let decimal = |e| Some((e, 0));
    match s {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => Some((0, 10)),
        "Mi" => Some((0, 20)),
        "Gi" => Some((0, 30)),
        "Ti" => Some((0, 40)),
        "Pi" => Some((0, 50)),
        "Ei" => Some((0, 60)),
        _ => {
            let rest = s.strip_prefix(['e', 'E'])?;
            let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // apimachinery refuses exponents beyond what an int32 holds; so do we,
            // and far sooner, to keep the numbers a machine can compute with.
            let e: i64 = rest.parse().ok()?;
            (e.abs() <= 1000).then_some((e, 0))
        }
    }
}

/// Whether `s` has the shape apimachinery's scanner takes for a suffix
/// (letters of `eEinumkKMGTP`, then an optional sign and digits), so a bad
/// suffix gets its own message rather than the format one.
fn is_suffix_shaped(s: &str) -> bool {
    let letters = s.trim_start_matches(|c| "eEinumkKMGTP".contains(c));
    let rest = letters.strip_prefix(['+', '-']).unwrap_or(letters);
    rest.bytes().all(|b| b.is_ascii_digit())
}

fn pow10(e: i64) -> Result<BigInt, String> {
    let e = u32::try_from(e).map_err(|_| FORMAT_WRONG.to_owned())?;
    Ok(BigInt::from(10).pow(e))
}

/// Registers the quantity functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let q = || QUANTITY;
    env.add_overload(
        "quantity",
        "string_to_quantity",
        vec![STRING_TYPE],
        quantity,
    )?;
    env.add_overload(
        "isQuantity",
        "is_quantity_string",
        vec![STRING_TYPE],
        is_quantity,
    )?;
    env.add_member_overload("sign", "quantity_sign", q(), vec![], sign)?;
    env.add_member_overload("isInteger", "quantity_is_integer", q(), vec![], is_integer)?;
    env.add_member_overload("asInteger", "quantity_get_integer", q(), vec![], as_integer)?;
    env.add_member_overload(
        "asApproximateFloat",
        "quantity_get_float",
        q(),
        vec![],
        as_approximate_float,
    )?;
    env.add_member_overload(
        "compareTo",
        "quantity_compare_to",
        q(),
        vec![q()],
        compare_to,
    )?;
    env.add_member_overload(
        "isGreaterThan",
        "quantity_is_greater_than",
        q(),
        vec![q()],
        is_greater_than,
    )?;
    env.add_member_overload(
        "isLessThan",
        "quantity_is_less_than",
        q(),
        vec![q()],
        is_less_than,
    )?;
    env.add_member_overload("add", "quantity_add", q(), vec![q()], add)?;
    env.add_member_overload("add", "quantity_add_int", q(), vec![INT_TYPE], add)?;
    env.add_member_overload("sub", "quantity_sub", q(), vec![q()], sub)?;
    env.add_member_overload("sub", "quantity_sub_int", q(), vec![INT_TYPE], sub)?;
    Ok(())
}

fn quantity_arg<'a>(function: &str, v: &'a dyn Val) -> Result<&'a Quantity, ExecutionError> {
    v.downcast_ref::<Quantity>()
        .ok_or_else(|| ExecutionError::function_error(function, "argument is not a quantity"))
}

/// A quantity, or an int read as one (`add(1)`).
fn operand(function: &str, v: &dyn Val) -> Result<Quantity, ExecutionError> {
    if let Some(i) = v.downcast_ref::<CelInt>() {
        return Ok(Quantity::from_int(*i.inner()));
    }
    quantity_arg(function, v).cloned()
}

fn quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("quantity", args)?;
    let q = Quantity::parse(string_arg("quantity", s.as_ref())?)
        .map_err(|e| ExecutionError::function_error("quantity", e))?;
    Ok(CowVal::owned(q))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [s] = take("isQuantity", args)?;
    let ok = Quantity::parse(string_arg("isQuantity", s.as_ref())?).is_ok();
    Ok(CowVal::owned(CelBool::from(ok)))
}

fn sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [q] = take("sign", args)?;
    let q = quantity_arg("sign", q.as_ref())?;
    let sign = match q.0.cmp(&BigInt::from(0)) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    };
    Ok(CowVal::owned(CelInt::from(sign)))
}

fn is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [q] = take("isInteger", args)?;
    let q = quantity_arg("isInteger", q.as_ref())?;
    Ok(CowVal::owned(CelBool::from(q.as_i64().is_some())))
}

fn as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [q] = take("asInteger", args)?;
    let q = quantity_arg("asInteger", q.as_ref())?;
    let i = q.as_i64().ok_or_else(|| {
        ExecutionError::function_error("asInteger", "cannot convert value to integer")
    })?;
    Ok(CowVal::owned(CelInt::from(i)))
}

fn as_approximate_float<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [q] = take("asApproximateFloat", args)?;
    let q = quantity_arg("asApproximateFloat", q.as_ref())?;
    // The decimal text parses as f64 with correct rounding; a BigInt has no
    // exact conversion of its own in this crate's trimmed feature set.
    let nanos: f64 = q.0.to_string().parse().unwrap_or(f64::NAN);
    Ok(CowVal::owned(CelDouble::from(nanos / 1e9)))
}

fn ordering<'b, 'v>(function: &str, args: Vec<CowVal<'b, 'v>>) -> Result<Ordering, ExecutionError> {
    let [a, b] = take(function, args)?;
    Ok(quantity_arg(function, a.as_ref())?.cmp(quantity_arg(function, b.as_ref())?))
}

fn compare_to<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let order = ordering("compareTo", args)?;
    Ok(CowVal::owned(CelInt::from(order as i64)))
}

fn is_greater_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let order = ordering("isGreaterThan", args)?;
    Ok(CowVal::owned(CelBool::from(order == Ordering::Greater)))
}

fn is_less_than<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let order = ordering("isLessThan", args)?;
    Ok(CowVal::owned(CelBool::from(order == Ordering::Less)))
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take("add", args)?;
    let sum = &quantity_arg("add", a.as_ref())?.0 + operand("add", b.as_ref())?.0;
    Ok(CowVal::owned(Quantity(sum)))
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [a, b] = take("sub", args)?;
    let difference = &quantity_arg("sub", a.as_ref())?.0 - operand("sub", b.as_ref())?.0;
    Ok(CowVal::owned(Quantity(difference)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cel::evaluate_standalone;

    #[test]
    fn parses_as_apimachinery_does() {
        let nanos = |s: &str| Quantity::parse(s).map(|q| q.0.to_string());
        let cases: &[(&str, &str)] = &[
            ("1", "1000000000"),
            ("500m", "500000000"),
            ("1.5Gi", "1610612736000000000"),
            ("1Ki", "1024000000000"),
            (".5", "500000000"),
            ("5.", "5000000000"),
            ("-1k", "-1000000000000"),
            ("+2", "2000000000"),
            ("1e3", "1000000000000"),
            ("1E-3", "1000000"),
            ("2E", "2000000000000000000000000000"),
            ("1n", "1"),
            ("0.1n", "1"),
            ("-0.1n", "-1"),
            ("12u", "12000"),
        ];
        for (text, want) in cases {
            assert_eq!(nanos(text).as_deref(), Ok(*want), "{text}");
        }
        for bad in ["", "Ki", ".", "1.2.3", "1 Gi", "abc", "1x", "--1", "1Kb"] {
            assert_eq!(nanos(bad), Err(FORMAT_WRONG.to_owned()), "{bad:?}");
        }
        for bad in ["1K", "1i", "1e"] {
            assert_eq!(
                nanos(bad),
                Err("unable to parse quantity's suffix".to_owned()),
                "{bad:?}"
            );
        }
    }

    /// The examples of the Kubernetes CEL documentation, and the edges around them.
    #[test]
    fn kubernetes_quantity_library_table() {
        let cases: &[(&str, &str)] = &[
            ("quantity('50k') == quantity('50000')", "true"),
            ("quantity('200M') == quantity('0.2G')", "true"),
            ("quantity('1Ki') == quantity('1k')", "false"),
            ("isQuantity('1.3G')", "true"),
            ("isQuantity('1.3Gi')", "true"),
            ("isQuantity('1,3Gi')", "false"),
            ("isQuantity('10000k')", "true"),
            ("isQuantity('200K')", "false"),
            ("isQuantity('Three')", "false"),
            ("isQuantity('Mi')", "false"),
            ("quantity('50000000G').isInteger()", "true"),
            ("quantity('50000000000G').isInteger()", "false"),
            ("quantity('50k').isInteger()", "true"),
            ("quantity('1.5').isInteger()", "false"),
            ("quantity('50k').asInteger()", "50000"),
            ("quantity('50k').sub(20000).asInteger()", "30000"),
            (
                "quantity('50k').add(20).sub(quantity('100k')).sub(-50000).asInteger()",
                "20",
            ),
            ("quantity('50k').add(20k)", "error"),
            ("quantity('50k').sign()", "1"),
            ("quantity('-50k').sign()", "-1"),
            ("quantity('0').sign()", "0"),
            (
                "quantity('9999999999999999999999999999999999999G').asApproximateFloat() > 9.99e45",
                "true",
            ),
            ("quantity('1.5').asApproximateFloat()", "1.5"),
            ("quantity('50M').compareTo(quantity('50Mi'))", "-1"),
            ("quantity('50Mi').compareTo(quantity('50Mi'))", "0"),
            ("quantity('50Mi').compareTo(quantity('50M'))", "1"),
            ("quantity('1Gi').isGreaterThan(quantity('1G'))", "true"),
            ("quantity('1Gi').isLessThan(quantity('1G'))", "false"),
            ("quantity('100m').isLessThan(quantity('1'))", "true"),
            (
                "quantity('1.5Gi').add(quantity('512Mi')) == quantity('2Gi')",
                "true",
            ),
        ];
        for (expr, want) in cases {
            let got = evaluate_standalone(expr);
            if *want == "error" {
                assert!(got.is_err(), "{expr}: {got:?}");
            } else {
                assert_eq!(got.as_deref(), Ok(*want), "{expr}");
            }
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let err = evaluate_standalone("quantity('12 cores')").unwrap_err();
        assert!(err.contains(FORMAT_WRONG), "{err}");
        let err = evaluate_standalone("quantity('1.5').asInteger()").unwrap_err();
        assert!(err.contains("cannot convert value to integer"), "{err}");
    }
}
