//! Kubernetes' CEL semver library: `semver("1.2.3")` and its methods.
//!
//! Versions are strict Semantic Versioning 2.0 (`MAJOR.MINOR.PATCH`, an
//! optional pre-release and build metadata, no leading zeros), as the API
//! server's library reads them, with the `semver` crate. With the second
//! argument `true` (`semver(s, true)`, `isSemver(s, true)`) a version is
//! normalized first as the API server does: a leading `v` dropped, missing
//! minor and patch filled with `0`, leading zeros removed (`v01.2` is
//! `1.2.0`). Ordering and `==` follow SemVer precedence: build metadata does
//! not count.
//!
//! Functions: `semver(string[, bool])`, `isSemver(string[, bool])`, and on a
//! version `major()`, `minor()`, `patch()`, `compareTo(v)`,
//! `isGreaterThan(v)`, `isLessThan(v)`.

use std::any::Any;
use std::cmp::Ordering;

use cel::common::types::{BOOL_TYPE, CelBool, CelInt, STRING_TYPE, Type};
use cel::common::value::{CowVal, StaticVal, Val};
use cel::{DeclarationError, Env, ExecutionError};

use super::library::{string_arg, take};

/// The CEL type of versions (`const` for declarations, `static` for values).
const SEMVER: Type = Type::new_unspecified_type("kubernetes.Semver");
static SEMVER_TYPE: Type = SEMVER;

/// A semantic version.
#[derive(Debug, Clone)]
pub(crate) struct Semver(semver::Version);

impl Val for Semver {
    fn get_type(&self) -> &Type {
        &SEMVER_TYPE
    }

    fn cel_type() -> &'static Type {
        &SEMVER_TYPE
    }

    fn equals(&self, other: &dyn Val) -> bool {
        other
            .downcast_ref::<Semver>()
            .is_some_and(|o| o.0.cmp_precedence(&self.0) == Ordering::Equal)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(self.clone())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Semver {}

/// Parses `text`, normalized first when `normalize` is set.
fn parse(text: &str, normalize: bool) -> Result<Semver, String> {
    let text = if normalize {
        normalized(text)?
    } else {
        text.to_owned()
    };
    semver::Version::parse(&text)
        .map(Semver)
        .map_err(|e| format!("could not parse {text:?} as semver: {e}"))
}

/// `v1.02` → `1.2.0`: the API server's normalization.
fn normalized(text: &str) -> Result<String, String> {
    let text = text.strip_prefix('v').unwrap_or(text);
    let (core, extra) = match text.find(['-', '+']) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let mut parts: Vec<String> = core.split('.').map(str::to_owned).collect();
    if parts.len() > 3 {
        return Err(format!(
            "could not parse {text:?} as semver: too many dot-separated parts"
        ));
    }
    parts.resize(3, "0".to_owned());
    for part in &mut parts {
        let trimmed = part.trim_start_matches('0');
        *part = if trimmed.is_empty() && !part.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        };
    }
    Ok(format!("{}{extra}", parts.join(".")))
}

/// Registers the semver functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), DeclarationError> {
    let v = || SEMVER;
    env.add_overload("semver", "string_to_semver", vec![STRING_TYPE], semver_of)?;
    env.add_overload(
        "semver",
        "string_bool_to_semver",
        vec![STRING_TYPE, BOOL_TYPE],
        semver_of,
    )?;
    env.add_overload("isSemver", "is_semver_string", vec![STRING_TYPE], is_semver)?;
    env.add_overload(
        "isSemver",
        "is_semver_string_bool",
        vec![STRING_TYPE, BOOL_TYPE],
        is_semver,
    )?;
    env.add_member_overload("major", "semver_major", v(), vec![], major)?;
    env.add_member_overload("minor", "semver_minor", v(), vec![], minor)?;
    env.add_member_overload("patch", "semver_patch", v(), vec![], patch)?;
    env.add_member_overload("compareTo", "semver_compare_to", v(), vec![v()], compare_to)?;
    env.add_member_overload(
        "isGreaterThan",
        "semver_is_greater_than",
        v(),
        vec![v()],
        is_greater_than,
    )?;
    env.add_member_overload(
        "isLessThan",
        "semver_is_less_than",
        v(),
        vec![v()],
        is_less_than,
    )?;
    Ok(())
}

/// The string and the normalize flag of `semver(s[, b])` / `isSemver(s[, b])`.
fn text_and_flag<'a>(
    function: &str,
    args: &'a [CowVal<'_, '_>],
) -> Result<(&'a str, bool), ExecutionError> {
    let text = match args.first() {
        Some(s) => string_arg(function, s.as_ref())?,
        None => {
            return Err(ExecutionError::function_error(
                function,
                "expected a string",
            ));
        }
    };
    let normalize = match args.get(1) {
        Some(b) => *b
            .downcast_ref::<CelBool>()
            .ok_or_else(|| ExecutionError::function_error(function, "expected a bool"))?
            .inner(),
        None => false,
    };
    Ok((text, normalize))
}

fn semver_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (text, normalize) = text_and_flag("semver", &args)?;
    let v = parse(text, normalize).map_err(|e| ExecutionError::function_error("semver", e))?;
    Ok(CowVal::owned(v))
}

fn is_semver<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (text, normalize) = text_and_flag("isSemver", &args)?;
    Ok(CowVal::owned(CelBool::from(parse(text, normalize).is_ok())))
}

fn version<'a>(function: &str, v: &'a dyn Val) -> Result<&'a semver::Version, ExecutionError> {
    v.downcast_ref::<Semver>()
        .map(|s| &s.0)
        .ok_or_else(|| ExecutionError::function_error(function, "argument is not a semver"))
}

fn component<'b, 'v>(
    function: &str,
    args: Vec<CowVal<'b, 'v>>,
    pick: fn(&semver::Version) -> u64,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [v] = take(function, args)?;
    let n = pick(version(function, v.as_ref())?);
    let n = i64::try_from(n)
        .map_err(|_| ExecutionError::function_error(function, "component out of int range"))?;
    Ok(CowVal::owned(CelInt::from(n)))
}

fn major<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    component("major", args, |v| v.major)
}

fn minor<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    component("minor", args, |v| v.minor)
}

fn patch<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    component("patch", args, |v| v.patch)
}

fn ordering<'b, 'v>(function: &str, args: Vec<CowVal<'b, 'v>>) -> Result<Ordering, ExecutionError> {
    let [a, b] = take(function, args)?;
    Ok(version(function, a.as_ref())?.cmp_precedence(version(function, b.as_ref())?))
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

#[cfg(test)]
mod tests {
    use crate::cel::evaluate_standalone;

    /// The examples of the Kubernetes CEL documentation, and the edges around them.
    #[test]
    fn kubernetes_semver_library_table() {
        let cases: &[(&str, &str)] = &[
            ("isSemver('1.0.0')", "true"),
            ("isSemver('1.0')", "false"),
            ("isSemver('v1.0.0')", "false"),
            ("isSemver('01.0.0')", "false"),
            ("isSemver('1.0', true)", "true"),
            ("isSemver('v1.0.0', true)", "true"),
            ("isSemver('v01.02.003', true)", "true"),
            ("isSemver('1.2.3.4', true)", "false"),
            ("isSemver('1.0.0-rc.1+build.5')", "true"),
            ("semver('1.0.0') == semver('1.0.0')", "true"),
            ("semver('1.0.0+a') == semver('1.0.0+b')", "true"),
            ("semver('v1.2', true) == semver('1.2.0')", "true"),
            ("semver('1.2.3').major()", "1"),
            ("semver('1.2.3').minor()", "2"),
            ("semver('1.2.3').patch()", "3"),
            ("semver('1.2.3').compareTo(semver('1.2.3'))", "0"),
            ("semver('1.2.3').compareTo(semver('2.0.0'))", "-1"),
            ("semver('1.2.3').compareTo(semver('0.1.2'))", "1"),
            ("semver('1.2.3').isGreaterThan(semver('1.0.0'))", "true"),
            ("semver('1.2.3').isLessThan(semver('1.3.0'))", "true"),
            (
                "semver('1.0.0-alpha').isLessThan(semver('1.0.0-alpha.1'))",
                "true",
            ),
            ("semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))", "true"),
            ("semver('1.0.0-2').isLessThan(semver('1.0.0-10'))", "true"),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate_standalone(expr).as_deref(), Ok(*want), "{expr}");
        }
        let err = evaluate_standalone("semver('1.0')").unwrap_err();
        assert!(err.contains("could not parse \"1.0\" as semver"), "{err}");
    }
}
