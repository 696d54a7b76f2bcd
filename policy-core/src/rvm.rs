//! The default evaluator: regorus' register VM (RVM).
//!
//! With [`Evaluator::Rvm`], a Gatekeeper template's `violation` rule and a
//! conftest namespace's generated rule (`regard test`) run as RVM programs
//! compiled once, on first use, which evaluate the same Rego two to three
//! times faster than the tree-walking interpreter. The RVM differs from OPA
//! in one way that matters here: a complete rule, function or object key
//! that produces **conflicting values** is an evaluation error in OPA
//! (which Gatekeeper reports as a violation and conftest as an error), while
//! the RVM silently takes one of the values or leaves the rule undefined. So
//! the program is compiled from modules that [`crate::rego::conflicts`] has
//! given conflict checks: every rule that can take several values collects
//! them first and stops the program when there is more than one. The
//! evaluation then falls back to the interpreter (below), which reports the
//! conflict with OPA's semantics and the interpreter's text.
//!
//! A policy stays on the interpreter when something in its modules needs
//! it:
//!
//! * calls of the builtins regard adds as regorus extensions that regorus
//!   does not have (`re_match`, `any`, `all`, the `parse_config*` family,
//!   `crypto.*`, `io.jwt.*` and the rest of [`crate::policy::is_extension`]):
//!   the RVM compiler refuses them. Where regard replaces one of regorus'
//!   own builtins (`regex.*`, `sprintf`, `object.subset`, `json.patch`,
//!   `http.send`, `time.parse_rfc3339_ns`), the compiled program calls
//!   regard's implementation instead (`policy::builtins::rvm`), so those
//!   policies run on the RVM with the interpreter's results;
//! * `with`, `print`, `trace`: not supported by the RVM, or their output is
//!   gathered by the interpreter only;
//! * rule heads with constant keys or several key levels (`p["k"] = v`,
//!   `p[a][b]`, `a.b.c := v`), where the RVM's code generation is known to
//!   be incomplete (regorus issue #719);
//! * a rule that may take conflicting values in a shape the conflict
//!   checks do not rewrite (an `else` chain, iteration written in a rule
//!   head's value or key);
//! * anything else the RVM compiler rejects.
//!
//! At evaluation time, an RVM error other than a timeout makes that
//! evaluation fall back to the interpreter, so errors read the same
//! whichever engine ran first.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::unstable::{Expr, LiteralStmt, Module, Rule, RuleHead};
use regorus::utils::limits::ExecutionTimerConfig;

use crate::policy::{RegoVersion, new_engine_for, register_go_sprintf, rvm_builtins};
use crate::rego::text::apply_edits;
use crate::rego::{
    AstVisitor, conflicts, parse_module, rule_name, rvm_comprehensions, rvm_undefined, walk_rule,
};

/// Builtins the interpreter handles itself; so is every builtin regard adds
/// as an extension (see [`crate::policy::is_extension`]) except those whose
/// implementation a compiled program calls (`policy::builtins::rvm`).
const INTERPRETER_ONLY: &[&str] = &[
    "parse_config_file",
    "parse_combined_config_files",
    "print",
    "trace",
];

/// Which evaluator runs Rego: reviews of templates, `regard test` documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Evaluator {
    /// regorus' register VM for every policy it can run (see
    /// [`PolicyBundle::interpreted_templates`](crate::gatekeeper::PolicyBundle::interpreted_templates)
    /// for the templates that it cannot), about 2.4 times faster on
    /// function-heavy templates,
    /// with the same results as the interpreter: conflicting rule values
    /// are detected by the compiled program and reported by the interpreter.
    #[default]
    Rvm,
    /// regorus' interpreter for every policy.
    Interpreter,
}

impl Evaluator {
    /// The names [`Evaluator::as_str`] gives and `parse` reads, default first.
    pub const NAMES: [&'static str; 2] = ["rvm", "interpreter"];

    /// `interpreter` or `rvm`.
    pub fn as_str(self) -> &'static str {
        match self {
            Evaluator::Interpreter => "interpreter",
            Evaluator::Rvm => "rvm",
        }
    }
}

impl std::str::FromStr for Evaluator {
    type Err = String;

    fn from_str(s: &str) -> Result<Evaluator, String> {
        match s {
            "interpreter" => Ok(Evaluator::Interpreter),
            "rvm" => Ok(Evaluator::Rvm),
            other => Err(format!(
                "unknown evaluator {other:?}; expected one of {}",
                Evaluator::NAMES.join(", ")
            )),
        }
    }
}

/// A policy's RVM program (a template's, or a conftest namespace's),
/// compiled on first use: evaluations on the interpreter never pay for it.
#[derive(Debug)]
pub(crate) struct RvmProgram {
    /// Why the policy cannot run on the RVM, found from its source.
    blocked: Option<String>,
    /// The modules as the compile stage prepared them: `(file name, source)`.
    sources: Vec<(String, String)>,
    version: RegoVersion,
    /// `data` the engine holds (the inventory), if any.
    data: Option<Value>,
    program: OnceLock<Result<Arc<Program>, String>>,
}

impl RvmProgram {
    /// Checks the policy's modules for what the RVM cannot run.
    pub(crate) fn new<'a>(
        modules: impl IntoIterator<Item = &'a Module>,
        sources: Vec<(String, String)>,
        version: RegoVersion,
        data: Option<Value>,
    ) -> RvmProgram {
        RvmProgram {
            blocked: modules.into_iter().find_map(blocker),
            sources,
            version,
            data,
            program: OnceLock::new(),
        }
    }

    /// The program for `rule`, or why the policy stays on the interpreter.
    pub(crate) fn get(&self, rule: &str) -> Result<&Arc<Program>, &str> {
        self.get_all(&[rule])
    }

    /// The program with an entry point for each of `rules` (in that order:
    /// [`execute`]'s `entry` indexes them), or why the policy stays on the
    /// interpreter. The first call compiles; every call must name the same
    /// rules.
    pub(crate) fn get_all<S: AsRef<str>>(&self, rules: &[S]) -> Result<&Arc<Program>, &str> {
        if let Some(why) = &self.blocked {
            return Err(why);
        }
        self.program
            .get_or_init(|| {
                // A compiler panic blocks the policy from the RVM for good.
                let rules: Vec<&str> = rules.iter().map(AsRef::as_ref).collect();
                crate::guard::catch(|| self.compile(&rules))
                    .unwrap_or_else(|panic| Err(panic.to_string()))
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Compiles the modules with conflict checks ([`crate::rego::conflicts`]),
    /// checks that assigned values are defined
    /// ([`crate::rego::rvm_undefined`]) and a loop opening every
    /// comprehension ([`crate::rego::rvm_comprehensions`]).
    fn compile(&self, rules: &[&str]) -> Result<Arc<Program>, String> {
        let v1 = self.version == RegoVersion::V1;
        let mut parsed = Vec::with_capacity(self.sources.len());
        for (name, src) in &self.sources {
            parsed.push(parse_module(name, src, v1).map_err(|e| one_line(&e.to_string()))?);
        }
        let pairs: Vec<(&str, &Module)> = self
            .sources
            .iter()
            .zip(&parsed)
            .map(|((_, src), m)| (src.as_str(), m))
            .collect();
        let mut checked = conflicts::rewrite(&pairs, v1)?;
        for (i, text) in checked.iter_mut().enumerate() {
            let name = self
                .sources
                .get(i)
                .map_or("policy.rego", |(n, _)| n.as_str());
            let m = parse_module(name, text, v1).map_err(|e| one_line(&e.to_string()))?;
            let mut edits = rvm_undefined::edits(text, &m);
            edits.extend(rvm_comprehensions::edits(text, &m));
            *text = apply_edits(text, edits);
        }
        let texts: Vec<&str> = checked.iter().map(String::as_str).collect();
        let mut engine = new_engine_for(self.version, &texts).map_err(|e| e.to_string())?;
        register_go_sprintf(&mut engine).map_err(|e| e.to_string())?;
        for ((name, _), src) in self.sources.iter().zip(checked) {
            engine
                .add_policy(name.clone(), src)
                .map_err(|e| one_line(&e.to_string()))?;
        }
        if let Some(data) = &self.data {
            engine.add_data(data.clone()).map_err(|e| e.to_string())?;
        }
        let Some(first) = rules.first() else {
            return Err("no rule to compile".to_owned());
        };
        let policy = engine
            .compile_with_entrypoint(&(*first).into())
            .map_err(|e| one_line(&e.to_string()))?;
        let mut program =
            Compiler::compile_from_policy(&policy, rules).map_err(|e| one_line(&e.to_string()))?;
        let Some(unique) = Arc::get_mut(&mut program) else {
            return Err("the compiled program is shared".to_owned());
        };
        rvm_builtins::install(unique);
        Ok(program)
    }
}

/// regorus' multi-line compiler message on one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first construct of a module that needs the interpreter.
///
/// Unit tests (`test_*`, `todo_test_*`) are not looked at: no compiled
/// entry point reads them, and their `with` mocks would otherwise keep every
/// policy with tests beside it (`regard test -p policy` on a directory of
/// policies and their `_test.rego` files) on the interpreter. A rule that
/// did call one would meet the RVM compiler, which refuses `with`.
fn blocker(m: &Module) -> Option<String> {
    let rules = m.policy.iter().filter(|rule| {
        !rule_name(rule).is_some_and(|n| n.starts_with("test_") || n.starts_with("todo_test_"))
    });
    let mut v = Blocker(None);
    for rule in rules {
        if let Some(why) = head_blocker(rule) {
            return Some(why);
        }
        walk_rule(rule, &mut v);
        if v.0.is_some() {
            break;
        }
    }
    v.0
}

fn head_blocker(rule: &Rule) -> Option<String> {
    let Rule::Spec { head, .. } = rule else {
        return None;
    };
    let (refr, kind) = match head {
        RuleHead::Compr { refr, .. } => (refr, "rule"),
        RuleHead::Set { refr, .. } => (refr, "set rule"),
        RuleHead::Func { .. } => return None,
    };
    let ok = match refr.as_ref() {
        Expr::Var { .. } => true,
        // `p[key] = v` / `p[key]` with a variable or computed key, one level.
        Expr::RefBrack { refr, index, .. } => {
            matches!(refr.as_ref(), Expr::Var { .. }) && !is_literal(index)
        }
        _ => false,
    };
    (!ok).then(|| {
        format!(
            "line {}: {kind} `{}` has a constant or multi-level key",
            refr.span().line,
            rule_name(rule).unwrap_or_default()
        )
    })
}

fn is_literal(e: &Expr) -> bool {
    matches!(
        e,
        Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. }
    )
}

/// `a`, `a.b.c` as a dotted name.
fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        Expr::RefDot { refr, field, .. } => {
            let base = dotted(refr)?;
            let f = field.1.as_string().ok()?;
            Some(format!("{base}.{f}"))
        }
        _ => None,
    }
}

struct Blocker(Option<String>);

impl AstVisitor for Blocker {
    fn expr(&mut self, e: &Expr) -> bool {
        if self.0.is_some() {
            return false;
        }
        if let Expr::Call { fcn, span, .. } = e {
            let name = dotted(fcn).unwrap_or_default();
            if INTERPRETER_ONLY.contains(&name.as_str())
                || (crate::policy::is_extension(&name) && !rvm_builtins::runs_on_rvm(&name))
            {
                self.0 = Some(format!("line {}: calls {name}", span.line));
            }
        }
        true
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        if self.0.is_none()
            && let Some(w) = s.with_mods.first()
        {
            self.0 = Some(format!("line {}: uses `with`", w.refr.span().line));
        }
    }
}

thread_local! {
    /// One VM per thread, reloaded with each policy's program: creating a
    /// VM costs about as much as a small template's evaluation.
    static VM: RefCell<Option<RegoVM>> = const { RefCell::new(None) };
}

/// Runs a program on this thread's VM: its first entry point, or entry
/// point `entry` of a program compiled with several.
pub(crate) fn execute(
    program: &Arc<Program>,
    entry: Option<usize>,
    data: &Value,
    input: Value,
    timer: Option<ExecutionTimerConfig>,
) -> Result<Value, String> {
    VM.with(|cell| {
        let mut fresh = None;
        let mut guard = cell.try_borrow_mut().ok();
        let vm = match guard.as_deref_mut() {
            Some(slot) => slot.get_or_insert_with(new_vm),
            None => fresh.get_or_insert_with(new_vm),
        };
        let out = crate::guard::catch(|| {
            vm.load_program(program.clone());
            vm.set_execution_timer_config(timer);
            let out = vm
                .set_data(data.clone())
                .and_then(|()| {
                    vm.set_input(input);
                    match entry {
                        None => vm.execute(),
                        Some(i) => vm.execute_entry_point_by_index(i),
                    }
                })
                .map_err(|e| e.to_string());
            // Do not keep the request alive in the thread's VM.
            vm.set_input(Value::Null);
            out
        });
        out.unwrap_or_else(|panic| {
            // The VM may be half-updated: the thread starts a fresh one.
            if let Some(slot) = guard.as_deref_mut() {
                *slot = None;
            }
            Err(panic.to_string())
        })
    })
}

fn new_vm() -> RegoVM {
    let mut vm = RegoVM::new();
    // Rego always terminates and the execution timer bounds the time; the
    // default instruction budget (25,000) already stops a 64-container Pod.
    vm.set_max_instructions(usize::MAX);
    vm.set_strict_builtin_errors(false);
    vm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gatekeeper::{PolicyBundle, ReviewOptions};

    fn template(kind: &str, rego: &str) -> Value {
        let name = kind.to_lowercase();
        let doc = serde_json::json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": name},
            "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]}
        });
        Value::from_json_str(&doc.to_string()).unwrap()
    }

    fn constraint(kind: &str) -> Value {
        let doc = serde_json::json!({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
            "metadata": {"name": kind.to_lowercase()},
            "spec": {"parameters": {"labels": ["a", "b"]}}
        });
        Value::from_json_str(&doc.to_string()).unwrap()
    }

    fn bundle(templates: &[(&str, &str)]) -> PolicyBundle {
        let mut docs = Vec::new();
        for (kind, rego) in templates {
            docs.push(("t.yaml".to_owned(), template(kind, rego)));
            docs.push(("c.yaml".to_owned(), constraint(kind)));
        }
        PolicyBundle::from_documents(docs).unwrap()
    }

    fn reasons(b: &PolicyBundle) -> Vec<(String, String)> {
        b.interpreted_templates()
            .map(|(t, why)| (t.kind.clone(), why.to_owned()))
            .collect()
    }

    fn messages(b: &PolicyBundle, object: &str, evaluator: Evaluator) -> Vec<String> {
        let object = Value::from_json_str(object).unwrap();
        let options = ReviewOptions {
            evaluator,
            ..ReviewOptions::default()
        };
        let outcome = b.review_object(&object, &options).unwrap();
        outcome.violations.into_iter().map(|v| v.msg).collect()
    }

    const REQUIRED: &str = r#"package k8srequired
violation[{"msg": msg}] {
  label := input.parameters.labels[_]
  not input.review.object.metadata.labels[label]
  msg := sprintf("missing label %v on %s", [label, input.review.object.metadata.name])
}"#;

    #[test]
    fn what_keeps_a_template_on_the_interpreter() {
        let b = bundle(&[
            ("K8sRequired", REQUIRED),
            (
                "K8sReMatch",
                "package a\nviolation[{\"msg\": \"m\"}] {\n  re_match(\"^x\", input.review.object.metadata.name)\n}",
            ),
            (
                "K8sSprintfCount",
                "package b\nviolation[{\"msg\": msg}] {\n  msg := sprintf(\"%v and %v\", [1])\n}",
            ),
            (
                "K8sSprintfVerb",
                "package c\nviolation[{\"msg\": msg}] {\n  msg := sprintf(\"%d\", [1])\n}",
            ),
            (
                "K8sSprintfDynamic",
                "package d\nviolation[{\"msg\": msg}] {\n  f := \"%v\"\n  msg := sprintf(f, [1])\n}",
            ),
            (
                "K8sConstKey",
                "package e\nobj[\"k\"] = 1 { true }\nviolation[{\"msg\": \"m\"}] {\n  obj.k == 2\n}",
            ),
            (
                "K8sWith",
                "package f\nx { input.y }\nviolation[{\"msg\": \"m\"}] {\n  x with input.y as true\n}",
            ),
            (
                "K8sPrint",
                "package g\nviolation[{\"msg\": \"m\"}] {\n  print(\"hello\")\n}",
            ),
            (
                "K8sValidRegex",
                "package h\nviolation[{\"msg\": \"m\"}] {\n  regex.is_valid(\"a\")\n}",
            ),
        ]);
        // sprintf runs on the RVM as regard's Go-compatible builtin.
        assert_eq!(
            reasons(&b),
            vec![
                (
                    "K8sConstKey".to_owned(),
                    "line 2: rule `obj` has a constant or multi-level key".to_owned()
                ),
                ("K8sPrint".to_owned(), "line 3: calls print".to_owned()),
                ("K8sReMatch".to_owned(), "line 3: calls re_match".to_owned()),
                (
                    "K8sValidRegex".to_owned(),
                    "line 3: calls regex.is_valid".to_owned()
                ),
                ("K8sWith".to_owned(), "line 4: uses `with`".to_owned()),
            ]
        );
        // Interpreted templates give the interpreter's (Go-formatted) output
        // under either setting; the compiled one gives the same messages.
        let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "xp"}}"#;
        let expected = [
            "m",                     // K8sPrint
            "m",                     // K8sReMatch
            "missing label a on xp", // K8sRequired (compiled)
            "missing label b on xp",
            "1 and %!v(MISSING)", // K8sSprintfCount
            "1",                  // K8sSprintfDynamic
            "1",                  // K8sSprintfVerb
            "m",                  // K8sValidRegex
            "m",                  // K8sWith
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(messages(&b, pod, Evaluator::Interpreter), expected);
        assert_eq!(messages(&b, pod, Evaluator::Rvm), expected);
    }

    #[test]
    fn undefined_values_stop_a_compiled_template_as_they_stop_the_interpreter() {
        // An assignment of an undefined value read only under `not`, and a
        // function ignoring its argument: no violation in OPA.
        let b = bundle(&[
            (
                "K8sRegistry",
                "package a\nviolation[{\"msg\": msg}] {\n  c := input.review.object.spec.containers[_]\n  r := registry(c.image)\n  not r == \"quay.io\"\n  msg := sprintf(\"%v from %v\", [c.name, c.image])\n}\nregistry(img) = r {\n  contains(img, \"/\")\n  r := split(img, \"/\")[0]\n}",
            ),
            (
                "K8sIgnored",
                "package b\nviolation[{\"msg\": \"has owner\"}] {\n  present(input.review.object.metadata.owner)\n}\npresent(_) = true",
            ),
        ]);
        assert_eq!(reasons(&b), Vec::new());
        let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "nginx"},
                                    {"name": "b", "image": "x.io/b"},
                                    {"name": "c", "image": "quay.io/c"}]}}"#;
        let expected = vec!["b from x.io/b".to_owned()];
        assert_eq!(messages(&b, pod, Evaluator::Interpreter), expected);
        assert_eq!(messages(&b, pod, Evaluator::Rvm), expected);
    }

    #[test]
    fn regex_builtins_run_on_the_rvm_with_gos_semantics() {
        let b = bundle(&[
            (
                "K8sDigits",
                "package a\nviolation[{\"msg\": \"not digits\"}] {\n  not regex.match(\"^\\\\d+$\", input.review.object.metadata.name)\n}",
            ),
            (
                "K8sParamRegex",
                "package b\nviolation[{\"msg\": \"no match\"}] {\n  not regex.match(input.review.object.metadata.annotations.re, input.review.object.metadata.name)\n}",
            ),
            (
                "K8sSplit",
                "package c\nviolation[{\"msg\": msg}] {\n  parts := regex.split(\"\\\\s\", input.review.object.metadata.name)\n  msg := sprintf(\"%d parts\", [count(parts)])\n}",
            ),
        ]);
        assert_eq!(reasons(&b), Vec::new());
        // `\d` and `\s` are ASCII in Go, whether the pattern is literal or
        // computed: an Arabic-Indic digit is not a digit, U+2003 not a
        // space. An invalid pattern is an error on the RVM: the review
        // re-runs on the interpreter, where the call is undefined.
        let cases = [
            ("123", r"^\d+$", vec!["1 parts"]),
            (
                "\u{0663}",
                r"^\d+$",
                vec!["not digits", "no match", "1 parts"],
            ),
            ("a\u{2003}b c", r"^\S+\s\S+$", vec!["not digits", "2 parts"]),
            ("x", "(", vec!["not digits", "no match", "1 parts"]),
        ];
        for (name, re, want) in cases {
            let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "annotations": {"re": re}}})
            .to_string();
            assert_eq!(messages(&b, &pod, Evaluator::Interpreter), want, "{name}");
            assert_eq!(messages(&b, &pod, Evaluator::Rvm), want, "{name}");
        }
    }

    #[test]
    fn conflicting_values_are_errors_on_both_evaluators() {
        // Two labels give the complete rule `label` two values: the
        // compiled program stops, and the interpreter reports the conflict.
        let b = bundle(&[(
            "K8sConflict",
            "package k\nlabel = v {\n  v := input.review.object.metadata.labels[_]\n}\nviolation[{\"msg\": msg}] {\n  msg := sprintf(\"label %v\", [label])\n}",
        )]);
        assert_eq!(reasons(&b), Vec::new());
        let pod =
            r#"{"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "one", "b": "two"}}}"#;
        assert_eq!(
            messages(&b, pod, Evaluator::Interpreter),
            [
                "k8sconflict/template.rego:2: eval_conflict_error: complete rules must not produce multiple outputs"
            ]
        );
        assert_eq!(
            messages(&b, pod, Evaluator::Rvm),
            [
                "k8sconflict/template.rego:2: eval_conflict_error: complete rules must not produce multiple outputs"
            ]
        );
        let one = r#"{"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "one"}}}"#;
        assert_eq!(messages(&b, one, Evaluator::Rvm), ["label one"]);
        assert_eq!(messages(&b, one, Evaluator::Interpreter), ["label one"]);
    }

    #[test]
    fn conflicting_function_definitions_in_a_library_are_errors_on_both_evaluators() {
        // `f` is defined in the library and again in the template's
        // package of the library: two files, one function.
        let lib_a = "package lib.f\nf(x) = 1 { x > 0 }";
        let lib_b = "package lib.f\nf(x) = 2 { x > 1 }";
        let rego = "package k\nimport data.lib.f.f\nviolation[{\"msg\": msg}] {\n  n := count(input.review.object.metadata.labels)\n  msg := sprintf(\"f %v\", [f(n)])\n}";
        let doc = serde_json::json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8sfn"},
            "spec": {"crd": {"spec": {"names": {"kind": "K8sFn"}}},
                     "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego,
                                  "libs": [lib_a, lib_b]}]}
        });
        let b = PolicyBundle::from_documents(vec![
            (
                "t.yaml".to_owned(),
                Value::from_json_str(&doc.to_string()).unwrap(),
            ),
            ("c.yaml".to_owned(), constraint("K8sFn")),
        ])
        .unwrap();
        assert_eq!(reasons(&b), Vec::new());
        let two = r#"{"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}"#;
        let one = r#"{"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}}}"#;
        for evaluator in [Evaluator::Interpreter, Evaluator::Rvm] {
            assert_eq!(messages(&b, one, evaluator), ["f 1"], "{evaluator:?}");
            assert_eq!(
                messages(&b, two, evaluator),
                [
                    "k8sfn/lib_1.rego:2: eval_conflict_error: functions must not produce multiple outputs for same inputs"
                ],
                "{evaluator:?}"
            );
        }
    }

    #[test]
    fn evaluator_names_round_trip() {
        for name in Evaluator::NAMES {
            assert_eq!(name.parse::<Evaluator>().unwrap().as_str(), name);
        }
        assert_eq!(
            "fast".parse::<Evaluator>(),
            Err("unknown evaluator \"fast\"; expected one of rvm, interpreter".to_owned())
        );
    }
}
