//! The OPA-compatibility compile stage.
//!
//! regard evaluates Rego with regorus, which reads some OPA-valid policies
//! differently from OPA or rejects them. Every path that loads Rego — `regard
//! test`, `regard verify`, `parse_config*`, ConstraintTemplates and the
//! webhook — passes each module's source through [`prepare`] first, so
//! regorus compiles a text that means what OPA makes of the original.
//!
//! The stage is a list of passes. Each pass reads the module (its tokens or
//! its AST) and returns [`text::Edit`]s; edits never add lines, so compiler
//! messages, coverage and `print` keep the author's line numbers.
//!
//! * token passes, applied together: [`layout`] (a newline before `(` or `[`
//!   ends a statement), [`multi_body`] (v0 rules with several bodies),
//!   [`imports`] (imports after rules), [`bodiless_heads`] (a v1 function
//!   head alone is `true`);
//! * AST passes, all on one parse, their edits applied together (when two
//!   passes' edits overlap, the later passes run again on a fresh parse of
//!   the result): [`import_refs`] (refs through a `data` import alias
//!   spelled out), [`with_values`] (a `with` value calling a function is
//!   bound before its statement), [`relations`] (`[p, v] := walk(x)` as `walk(x, [p, v])`),
//!   [`negation`] (operands of
//!   `not` bound first), [`some_in`] (`some x in C` lowered as OPA lowers
//!   it), [`head_iteration`] (iteration in rule heads),
//!   [`else_values`] (a computed value of a rule with `else` bound in its
//!   body),
//!   [`self_unification`] (`c = cs[c]`), [`rule_shadowing`] (`some t`
//!   shadows a rule `t`), [`scoping`] (declarations in
//!   comprehensions shadow), [`bound_indices`] (an index variable another
//!   statement binds is looked up), [`regex_classes`] (Go's ASCII `\d \w \s \b`
//!   in literal regex patterns), [`every_unification`] (a fresh variable unified
//!   inside `every`), [`some_decls`] (`some x` declared once, at the
//!   start of its query).
//! * passes over the whole set: [`metadata`] (`# METADATA` annotations
//!   and `rego.metadata.rule()` / `chain()`), then [`function_modules`] (a
//!   function defined in several files of a package gets one home module),
//!   then [`with_targets`] (`with` naming a rule of the package by its bare
//!   name, or a function of the package by its path), then [`dynamic_refs`]
//!   (`data.checks[name].deny` reads only the `deny` rules).
//!
//! Before the passes, [`future_keywords`] refuses a v0 module whose rule
//! heads parse only with `contains` or `if` imported, as OPA does.
//!
//! A module that does not lex or parse is returned with the edits that could
//! be made, and regorus reports the error against the author's text.
//!
//! [`strict`] (OPA's `--strict` checks) and [`capabilities`] (`--capabilities`)
//! check the prepared modules of a whole set when asked for.
//!
//! [`split_tests`] is not one of these passes: it runs only when policies are
//! loaded to run their unit tests (`verify`), over the prepared modules of a
//! whole set, since it numbers each package's test definitions across files.

mod ast;
mod bodiless_heads;
mod bound_indices;
pub mod capabilities;
pub(crate) mod conflicts;
mod dynamic_refs;
mod else_values;
mod every_unification;
mod function_modules;
mod future_keywords;
mod head_iteration;
mod import_refs;
mod imports;
mod layout;
pub(crate) mod messages;
pub(crate) mod metadata;
mod multi_body;
mod negation;
pub(crate) mod regex_classes;
mod relations;
mod rule_shadowing;
pub(crate) mod rvm_comprehensions;
pub(crate) mod rvm_undefined;
mod scoping;
mod self_unification;
mod some_decls;
mod some_in;
pub(crate) mod split_tests;
pub mod strict;
#[cfg(test)]
mod test_engines;
pub(crate) mod text;
mod triggers;
mod with_targets;
mod with_values;

use regorus::unstable::Module;

pub(crate) use ast::{
    AstVisitor, length_limits, package_components, parse_module, rule_name, walk_expr, walk_module,
    walk_rule,
};
pub(crate) use text::may_read_data;
use text::{Edit, TokenTable, apply_edits};

/// An AST pass: the edits it makes to a parsed module, or the compile
/// error OPA reports for it.
type AstPass = fn(&str, &Module) -> Result<Vec<Edit>, CompileError>;

/// A compile error OPA reports that regorus would not (or would word
/// differently): the module is refused with OPA's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {kind}: {message}")]
pub(crate) struct CompileError {
    pub line: u32,
    pub col: u32,
    /// OPA's error kind: `rego_compile_error` or `rego_parse_error`.
    pub kind: &'static str,
    pub message: String,
}

impl CompileError {
    /// The error as OPA prints it for `file` (`file:line: kind: message`).
    pub(crate) fn in_file(&self, file: &str) -> strict::CompileError {
        strict::CompileError {
            file: file.to_owned(),
            line: self.line,
            kind: self.kind,
            message: self.message.clone(),
        }
    }

    fn at(span: &regorus::unstable::Span, message: String) -> CompileError {
        CompileError {
            line: span.line,
            col: span.col,
            kind: "rego_compile_error",
            message,
        }
    }
}

/// Wraps a pass that never reports errors.
macro_rules! infallible {
    ($pass:path) => {{
        fn run(src: &str, m: &Module) -> Result<Vec<Edit>, CompileError> {
            Ok($pass(src, m))
        }
        run as AstPass
    }};
}

const AST_PASSES: &[AstPass] = &[
    infallible!(import_refs::edits),
    infallible!(with_values::edits),
    infallible!(relations::edits),
    infallible!(negation::edits),
    infallible!(some_in::edits),
    infallible!(head_iteration::edits),
    infallible!(else_values::edits),
    infallible!(self_unification::edits),
    infallible!(rule_shadowing::edits),
    infallible!(scoping::edits),
    infallible!(bound_indices::edits),
    infallible!(regex_classes::edits),
    infallible!(every_unification::edits),
    some_decls::edits,
];

/// Rewrites one module's source so regorus evaluates it as OPA does.
///
/// Compile errors found by the passes are dropped here; [`compile`] reports them.
pub(crate) fn prepare(src: &str, rego_v1: bool) -> String {
    compile(src, rego_v1).unwrap_or_else(|_| src.to_owned())
}

/// Rewrites one module's source so regorus evaluates it as OPA does, or
/// returns the compile error OPA reports for it.
pub(crate) fn compile(src: &str, rego_v1: bool) -> Result<String, CompileError> {
    if !rego_v1
        && triggers::v0_keywords(src)
        && let Some(table) = TokenTable::new(src)
    {
        future_keywords::check(src, &table)?;
        if future_keywords::uses_if(&table)
            && !future_keywords::imports_keyword(&table, "if")
            && let Ok(module) = parse_module("policy.rego", src, false)
        {
            future_keywords::check_bare_heads(&module)?;
        }
    }
    let mut out = if triggers::token_passes(src, rego_v1) {
        match TokenTable::new(src) {
            Some(table) => {
                let mut edits = layout::edits(&table);
                edits.extend(multi_body::edits(src, &table, rego_v1));
                edits.extend(imports::edits(src, &table));
                if rego_v1 {
                    edits.extend(bodiless_heads::edits(&table));
                }
                if edits.is_empty() {
                    src.to_owned()
                } else {
                    apply_edits(src, edits)
                }
            }
            None => return Ok(src.to_owned()),
        }
    } else {
        src.to_owned()
    };
    if !triggers::ast_passes(&out) {
        return Ok(out);
    }
    // One parse serves every pass, and their edits are applied together
    // when they do not overlap. When they do, only the first pass's edits
    // are applied and the passes after it run again on the result.
    let mut first = 0;
    while first < AST_PASSES.len() {
        let Ok(module) = parse_module("policy.rego", &out, rego_v1) else {
            return Ok(out);
        };
        let mut all: Vec<(usize, Vec<Edit>)> = Vec::new();
        for (i, pass) in AST_PASSES.iter().enumerate().skip(first) {
            let edits = pass(&out, &module)?;
            if !edits.is_empty() {
                all.push((i, edits));
            }
        }
        let Some(&(first_changed, _)) = all.first() else {
            break;
        };
        let together = text::disjoint(all.iter().flat_map(|(_, e)| e));
        if !together {
            all.truncate(1);
        }
        out = apply_edits(&out, all.into_iter().flat_map(|(_, e)| e).collect());
        if together {
            break;
        }
        first = first_changed + 1;
    }
    Ok(out)
}

/// The passes over a whole set: reads the METADATA annotations and replaces
/// `rego.metadata.rule()` / `chain()` calls with their values (see
/// [`metadata`]), then gives each function one home module (see
/// [`function_modules`]), then writes `with` targets as regorus reads them
/// (see [`with_targets`]) and dynamic `data` refs as reads of the rules they
/// name (see [`dynamic_refs`]); returns each module's annotation error, if
/// any.
pub(crate) fn annotate(
    sources: &mut [(String, String)],
    rego_v1: bool,
) -> Vec<Option<CompileError>> {
    let errors = metadata::rewrite(sources, rego_v1);
    function_modules::rewrite(sources, rego_v1);
    with_targets::rewrite(sources, rego_v1);
    dynamic_refs::rewrite(sources, rego_v1);
    errors
}

/// A fresh name no policy uses: regard's generated locals start with `__regard_`.
fn fresh(kind: &str, n: usize) -> String {
    format!("__regard_{kind}{n}")
}

#[cfg(test)]
pub(crate) mod tests {
    use regorus::{Engine, Value};

    pub(crate) fn prepare_v0(src: &str) -> String {
        super::prepare(src, false)
    }

    /// Whether a text compiles as it is.
    pub(crate) fn compiles(src: &str, rego_v1: bool) -> bool {
        let mut e = Engine::new();
        e.set_rego_v0(!rego_v1);
        e.add_policy("t.rego".into(), src.into()).is_ok()
    }

    /// Prepares a v0 module `t`, and evaluates `data.t.p` for `input`.
    pub(crate) fn eval(src: &str, input: &str) -> Value {
        eval_with(src, false, input)
    }

    /// `files`, named `m0.rego`, `m1.rego`, …, after a whole-set pass.
    pub(crate) fn rewritten_set(
        pass: fn(&mut [(String, String)], bool),
        files: &[&str],
        rego_v1: bool,
    ) -> Vec<String> {
        let mut sources: Vec<(String, String)> = files
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("m{i}.rego"), (*t).to_owned()))
            .collect();
        pass(&mut sources, rego_v1);
        sources.into_iter().map(|(_, t)| t).collect()
    }

    /// An engine holding `files` as `m0.rego`, `m1.rego`, …
    pub(crate) fn engine_with(files: &[String], rego_v1: bool) -> Engine {
        let mut engine = Engine::new();
        engine.set_rego_v0(!rego_v1);
        for (i, f) in files.iter().enumerate() {
            engine
                .add_policy(format!("m{i}.rego"), f.clone())
                .expect("rewritten module compiles");
        }
        engine
    }

    /// The rule at path `rule` of an engine holding `files` (see [`engine_with`]).
    pub(crate) fn eval_set_rule(files: &[String], rego_v1: bool, rule: &str) -> Value {
        engine_with(files, rego_v1)
            .eval_rule(rule.to_owned())
            .unwrap()
    }

    pub(crate) fn eval_with(src: &str, rego_v1: bool, input: &str) -> Value {
        let mut e = Engine::new();
        e.set_rego_v0(!rego_v1);
        e.add_policy("t.rego".into(), super::prepare(src, rego_v1))
            .unwrap();
        e.set_input(Value::from_json_str(input).unwrap());
        e.eval_rule("data.t.p".into()).unwrap()
    }
}
