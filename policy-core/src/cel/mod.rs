//! CEL, the second policy engine beside Rego.
//!
//! Gatekeeper's `K8sNativeValidation` templates and Kubernetes'
//! ValidatingAdmissionPolicy are written in the Common Expression Language.
//! This module evaluates them on the `cel` crate (cel-rust): [`environment`]
//! is the crate's standard library with the optional types, the strings
//! extension and the Kubernetes libraries ([`library`]: lists, regex, sets;
//! [`quantity`], [`semver`], [`net`] (IP and CIDR), [`url`]; the
//! two-variable macros of [`comprehensions`]);
//! [`validator::Validator`] compiles a policy's match conditions, variables
//! and validations once and evaluates them per request as the API server's
//! validating-policy plugin does (messages, failure policy, lazy-variable
//! errors). Objects are converted once per review by [`value`].
//!
//! Two environments, as the two consumers compile: Gatekeeper templates in
//! Kubernetes 1.33's (what Gatekeeper 3.21 uses), ValidatingAdmissionPolicy
//! in the API server's 1.34 one, which adds cel-go's `ext.Lists` (version 3:
//! `slice`, `flatten`, `distinct`, `reverse`, `sort`, `sortBy`,
//! `lists.range`); [`Dialect`] picks one, with the cost budget that goes
//! with it ([`cost`]).
//!
//! What the `cel` crate lacks, regard adds: a type checker ([`check`], run at
//! load for the types that are known) and a cost tracker ([`cost`] charges
//! the cost from inside the expression); its interpreter ignores a
//! comprehension's second variable, which [`comprehensions`] works around.

mod check;
mod comprehensions;
pub(crate) mod cost;
mod library;
mod net;
mod program;
mod quantity;
mod semver;
mod shared;
mod url;
mod value;

pub(crate) use cel::common::value::Val;
pub(crate) use value::to_val;
pub(crate) mod validator;

use std::sync::{Arc, OnceLock};

use cel::Env;

/// The namespaces of the qualified functions of the environments
/// (`lists.range`, `strings.quote`, `sets.contains`, `optional.of`): a call
/// on one of these names calls that function, it does not read a variable.
pub(crate) const FUNCTION_NAMESPACES: &[&str] = &["lists", "strings", "sets", "optional"];

/// Who compiles an expression, and so its environment and cost budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// A Gatekeeper template (`K8sNativeValidation`): Kubernetes 1.33's
    /// environment, `params` only inside variables, one
    /// [`cost::PER_CALL_LIMIT`] budget for the whole constraint.
    Gatekeeper,
    /// A ValidatingAdmissionPolicy: the 1.34 environment (with the list
    /// extensions), `params` everywhere, the API server's
    /// [`cost::VALIDATION_BUDGET`].
    ValidatingAdmissionPolicy,
}

impl Dialect {
    /// The environment its expressions compile and run in.
    pub(crate) fn environment(self) -> &'static Arc<Env> {
        match self {
            Dialect::Gatekeeper => environment(),
            Dialect::ValidatingAdmissionPolicy => vap_environment(),
        }
    }

    /// Whether `params` is visible outside variables.
    pub(crate) fn params_everywhere(self) -> bool {
        self == Dialect::ValidatingAdmissionPolicy
    }

    /// The cost budget of the validations (and variables) of one evaluation.
    pub(crate) fn validation_budget(self) -> u64 {
        match self {
            Dialect::Gatekeeper => cost::PER_CALL_LIMIT,
            Dialect::ValidatingAdmissionPolicy => cost::VALIDATION_BUDGET,
        }
    }
}

/// Registers the libraries every environment has. Registration fails only on
/// a duplicate overload, a bug caught by the tests below.
fn register_common(env: &mut Env) -> Result<(), cel::DeclarationError> {
    cel::extensions::strings(env)?;
    library::register(env)?;
    quantity::register(env)?;
    semver::register(env)?;
    net::register(env)?;
    url::register(env)?;
    comprehensions::register(env)?;
    cost::register(env)
}

/// The CEL environment of Gatekeeper templates (Kubernetes 1.33's).
pub(crate) fn environment() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // On a registration bug the environment lacks that library.
        let _ = register_common(&mut env);
        Arc::new(env)
    })
}

/// The CEL environment of ValidatingAdmissionPolicy (Kubernetes 1.34's: the
/// same plus cel-go's `ext.Lists` version 3).
pub(crate) fn vap_environment() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        let _ = register_common(&mut env);
        let _ = cel::extensions::lists(&mut env);
        Arc::new(env)
    })
}

/// Evaluates a standalone expression (no variables) and renders the result
/// as JSON, for tests.
#[cfg(test)]
pub(crate) fn evaluate_standalone(source: &str) -> Result<String, String> {
    let env = environment();
    let program = env.compile(source).map_err(|e| e.to_string())?;
    let ctx = cel::Context::with_env(Arc::clone(env));
    let v = program.execute(&ctx).map_err(|e| e.to_string())?;
    Ok(render(&v))
}

#[cfg(test)]
fn render(v: &cel::Value) -> String {
    match v {
        cel::Value::List(l) => format!("[{}]", l.iter().map(render).collect::<Vec<_>>().join(",")),
        cel::Value::Int(i) => i.to_string(),
        cel::Value::UInt(u) => format!("{u}u"),
        cel::Value::Float(f) => f.to_string(),
        cel::Value::String(s) => serde_json::to_string(s.as_str()).unwrap_or_default(),
        cel::Value::Bool(b) => b.to_string(),
        cel::Value::Null => "null".to_owned(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_registers_every_library() {
        let mut env = Env::stdlib();
        register_common(&mut env).unwrap();
        // The list extensions do not collide with the Kubernetes list library.
        cel::extensions::lists(&mut env).unwrap();
    }

    /// cel-go's list extensions (version 3), in the ValidatingAdmissionPolicy
    /// environment: the examples of cel-go's documentation.
    #[test]
    fn list_extensions_table() {
        let cases: &[(&str, &str)] = &[
            ("[1, 2, 2, 3, 3, 3].distinct()", "[1,2,3]"),
            (
                "['b', 'b', 'c', 'a', 'c'].distinct()",
                "[\"b\",\"c\",\"a\"]",
            ),
            ("[1, 'b', 2, 'b'].distinct()", "[1,\"b\",2]"),
            ("lists.range(5)", "[0,1,2,3,4]"),
            ("[5, 3, 1, 2].reverse()", "[2,1,3,5]"),
            ("[1, 2, 3, 4].slice(1, 3)", "[2,3]"),
            ("[1, 2, 3, 4].slice(2, 4)", "[3,4]"),
            ("[1, [2, 3], [4]].flatten()", "[1,2,3,4]"),
            ("[1, [2, [3, 4]]].flatten()", "[1,2,[3,4]]"),
            ("[1, 2, [], [], [3, 4]].flatten()", "[1,2,3,4]"),
            ("[1, [2, [3, [4]]]].flatten(2)", "[1,2,3,[4]]"),
            ("[3, 2, 1].sort()", "[1,2,3]"),
            ("['b', 'c', 'a'].sort()", "[\"a\",\"b\",\"c\"]"),
            (
                "[{'name': 'foo', 'score': 0}, {'name': 'bar', 'score': -10}, {'name': 'baz', 'score': 1000}].sortBy(e, e.score).map(e, e.name)",
                "[\"bar\",\"foo\",\"baz\"]",
            ),
            // The Kubernetes list library beside them.
            ("[1, 2, 3].indexOf(2) + [1, 2, 2].lastIndexOf(2)", "3"),
        ];
        let env = vap_environment();
        for (expr, want) in cases {
            let got = env
                .compile(expr)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    p.execute(&cel::Context::with_env(Arc::clone(env)))
                        .map_err(|e| e.to_string())
                })
                .map(|v| render(&v));
            assert_eq!(got.as_deref(), Ok(*want), "{expr}");
        }
        for (expr, error) in [
            ("[1, 'b'].sort()", "sort"),
            ("[1, [2, [3, [4]]]].flatten(-1)", "flatten"),
        ] {
            let program = env.compile(expr).unwrap();
            let err = program
                .execute(&cel::Context::with_env(Arc::clone(env)))
                .unwrap_err()
                .to_string();
            assert!(err.contains(error), "{expr}: {err}");
        }
        // Gatekeeper templates compile in 1.33's environment, without them.
        assert_eq!(
            evaluate_standalone("[3, 2, 1].sort()"),
            Err("Undeclared reference to 'sort'".to_owned())
        );
    }

    /// The syntax and the cel-go extensions the gatekeeper-library templates use.
    #[test]
    fn kubernetes_environment_table() {
        let cases: &[(&str, &str)] = &[
            ("has({'a': 1}.a)", "true"),
            ("[1, 2, 3].all(x, x > 0)", "true"),
            ("[1, 2, 3].exists_one(x, x == 2)", "true"),
            ("[1, 2, 3].map(x, x * 2)", "[2,4,6]"),
            ("[1, 2, 3].filter(x, x > 1)", "[2,3]"),
            ("{'a': 1}.?b.orValue(5)", "5"),
            ("{'a': {'b': 2}}.?a.?b.orValue(0)", "2"),
            ("optional.none().hasValue()", "false"),
            ("'TacoCat'.lowerAscii()", "\"tacocat\""),
            ("'TacoCat'.upperAscii()", "\"TACOCAT\""),
            ("'hello'.charAt(1)", "\"e\""),
            ("'hello mellow'.indexOf('ello')", "1"),
            ("'hello mellow'.lastIndexOf('ello')", "7"),
            ("'a,b'.split(',')", "[\"a\",\"b\"]"),
            ("'tacocat'.substring(4)", "\"cat\""),
            ("'  x '.trim()", "\"x\""),
            ("['a', 'b'].join('-')", "\"a-b\""),
            ("'aaa'.replace('a', 'b', 2)", "\"bba\""),
            ("strings.quote('x')", "\"\\\"x\\\"\""),
            ("'%s/%d'.format(['a', 1])", "\"a/1\""),
            ("'abc'.matches('^a')", "true"),
            ("'sys'.startsWith('s') && 'sys'.endsWith('ys')", "true"),
            ("size('abc') + size([1])", "4"),
            ("string(1) + dyn('x')", "\"1x\""),
            // Cross-type numeric comparisons, as the Kubernetes environment enables them.
            ("1 < 1.5 && 2u > 1 && 1.0 <= 1", "true"),
            ("1 == 1u && 1 == 1.0", "true"),
        ];
        for (expr, want) in cases {
            assert_eq!(evaluate_standalone(expr).as_deref(), Ok(*want), "{expr}");
        }
    }
}
