//! regard's builtins on regorus' register VM (RVM).
//!
//! The RVM compiler accepts calls of regorus' own builtins only, and a
//! compiled program calls them through its table of plain function pointers
//! (`Program::resolved_builtins`), never through an engine's extensions. For
//! the builtins where regard replaces regorus' version (Go's regular
//! expressions, Go's `sprintf`, OPA's `object.subset`, `json.patch`,
//! `http.send`, `time.parse_rfc3339_ns`; not `regex.is_valid`, see
//! [`FROM_TABLES`]), [`install`] points the program's
//! entries at regard's implementations, so a template that calls them runs
//! on the RVM with the interpreter's results. It also keeps the RVM off
//! regorus' `regex.*`, which takes each pattern from a shared cache by
//! cloning it, and a cloned `regex::Regex` builds its matching caches again
//! on every call (~21,000 instructions each, measured); regard's keep one
//! compiled pattern per thread.
//!
//! An error of one of these builtins stops the program instead of making
//! the call undefined: it is raised as a regorus [`LimitError`], the one
//! kind of builtin error the RVM does not swallow, and the review then
//! falls back to the interpreter (see [`crate::gatekeeper`]), which applies
//! OPA's rules for builtin errors and words them as everywhere else. Errors
//! are rare, so the second evaluation costs nothing in practice.

use anyhow::Result as AnyResult;
use regorus::rvm::Program;
use regorus::unstable::{Expr, Ref, Span};
use regorus::{LimitError, Value};

use super::{Builtin, TABLES, go_sprintf};

/// A builtin as a compiled RVM program calls it.
type RvmFn = fn(&Span, &[Ref<Expr>], &[Value], bool) -> AnyResult<Value>;

/// The implementation named `name` in [`TABLES`]. Only called to define
/// constants, so a missing name fails the build, never a run.
#[allow(clippy::panic)]
const fn find(name: &str) -> Builtin {
    let mut tables = TABLES;
    while let [table, rest @ ..] = tables {
        let mut entries = *table;
        while let [(n, _, f), more @ ..] = entries {
            if same(n.as_bytes(), name.as_bytes()) {
                return *f;
            }
            entries = more;
        }
        tables = rest;
    }
    panic!("an RVM override names a builtin that is not in TABLES")
}

/// `a == b` for a const fn.
const fn same(a: &[u8], b: &[u8]) -> bool {
    match (a, b) {
        ([x, xs @ ..], [y, ys @ ..]) => *x == *y && same(xs, ys),
        ([], []) => true,
        _ => false,
    }
}

/// One RVM entry point per named builtin of [`TABLES`]: a plain function
/// pointer cannot carry which builtin it calls, so each gets its own.
macro_rules! on_rvm {
    ($($name:literal),* $(,)?) => {
        &[$(($name, {
            fn call(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> AnyResult<Value> {
                const F: Builtin = find($name);
                stop_on_error(F(args))
            }
            call as RvmFn
        })),*]
    };
}

/// Every builtin of [`TABLES`] that is also one of regorus' (the others the
/// RVM compiler refuses, and the template stays on the interpreter), except
/// `regex.is_valid`: the conflict checks of [`crate::rego::conflicts`] stop a
/// program by calling regorus' own with a pattern over its size limit, so a
/// template that calls `regex.is_valid` itself stays on the interpreter.
const FROM_TABLES: &[(&str, RvmFn)] = on_rvm![
    "regex.match",
    "regex.find_n",
    "regex.find_all_string_submatch_n",
    "regex.split",
    "regex.replace",
    "object.subset",
    "json.patch",
    "http.send",
    "time.parse_rfc3339_ns",
];

fn sprintf(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> AnyResult<Value> {
    stop_on_error(go_sprintf(args))
}

/// regard's implementation of `name` for the RVM, if regard replaces
/// regorus' builtin of that name.
fn override_for(name: &str) -> Option<RvmFn> {
    if name == "sprintf" {
        return Some(sprintf);
    }
    FROM_TABLES
        .iter()
        .find_map(|&(n, f)| (n == name).then_some(f))
}

/// Whether a call of extension `name` can run on the RVM: regard's
/// implementation is installed in its place by [`install`].
pub fn runs_on_rvm(name: &str) -> bool {
    override_for(name).is_some()
}

/// Points every builtin `program` calls that regard replaces at regard's
/// implementation.
pub fn install(program: &mut Program) {
    let Program {
        builtin_info_table,
        resolved_builtins,
        ..
    } = program;
    for (info, slot) in builtin_info_table.iter().zip(resolved_builtins.iter_mut()) {
        if let Some(f) = override_for(&info.name) {
            slot.0 = f;
        }
    }
}

fn stop_on_error(result: AnyResult<Value>) -> AnyResult<Value> {
    // The limit's value is never shown: the review re-runs on the
    // interpreter, whose result and error text are the ones reported.
    result.map_err(|_| anyhow::Error::new(LimitError::RegexSizeLimitExceeded { limit: 0 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replaced_regorus_builtin_has_an_rvm_entry() {
        for table in TABLES {
            for &(name, ..) in *table {
                let replaced = regorus::unstable::BUILTINS.contains_key(name);
                assert_eq!(
                    runs_on_rvm(name),
                    replaced && name != "regex.is_valid",
                    "{name}"
                );
            }
        }
        assert!(runs_on_rvm("sprintf"));
    }

    #[test]
    fn an_entry_calls_regards_implementation_and_stops_on_its_errors() {
        let f = override_for("regex.match").unwrap();
        let call = |args: &[Value]| {
            super::super::with_call_site("regex.match", |span, _| f(span, &[], args, false))
        };
        // Go's \d is ASCII only; regorus' builtin would match the Arabic digit.
        let args = [Value::from(r"^\d$"), Value::from("٣")];
        assert_eq!(call(&args).unwrap(), Value::from(false));
        let bad = [Value::from("("), Value::from("x")];
        let err = call(&bad).unwrap_err();
        assert!(err.downcast_ref::<LimitError>().is_some());
    }
}
