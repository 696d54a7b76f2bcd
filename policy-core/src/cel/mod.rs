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
//! The crate has no type checker: [`check`] is regard's, run at load for the
//! types that are known. What the crate lacks, and so regard lacks: a
//! runtime cost budget (an expression's cost is bounded only by the size of
//! the object it reads: CEL has no unbounded loops, and a comprehension
//! iterates over a list of the object); its interpreter ignores a
//! comprehension's second variable, which [`comprehensions`] works around.

mod check;
mod comprehensions;
mod library;
mod net;
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

/// The CEL environment every expression is compiled and run in.
pub(crate) fn environment() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Env::stdlib();
        // Registration fails only on a duplicate overload, a bug caught by
        // the tests below; the environment then lacks that library.
        let _ = cel::extensions::strings(&mut env);
        let _ = library::register(&mut env);
        let _ = quantity::register(&mut env);
        let _ = semver::register(&mut env);
        let _ = net::register(&mut env);
        let _ = url::register(&mut env);
        let _ = comprehensions::register(&mut env);
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
        cel::extensions::strings(&mut env).unwrap();
        library::register(&mut env).unwrap();
        quantity::register(&mut env).unwrap();
        semver::register(&mut env).unwrap();
        net::register(&mut env).unwrap();
        url::register(&mut env).unwrap();
        comprehensions::register(&mut env).unwrap();
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
