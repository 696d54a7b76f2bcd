//! Conftest semantics: which rules are queried, how their values become
//! failures, warnings, exceptions and successes, and how tests are counted.
//!
//! Flow: [`Checker::new`] picks the namespaces, discovers their `deny*`,
//! `violation*` and `warn*` rules and compiles one generated rule per
//! namespace that reads all of them (plus the exception counts) in a single
//! evaluation, so helper rules are evaluated once per document rather than
//! once per rule. [`Checker::check_files`] evaluates documents in parallel
//! and returns results in input order.
//!
//! The generated rule runs as an RVM program ([`Evaluator::Rvm`], the
//! default; see [`crate::rvm`]) when the policies allow it, and on regorus'
//! interpreter otherwise: when some policy reads `data.conftest` (given
//! per document with `with`), with `--trace`, with builtin errors made
//! strict, or when the program cannot be compiled. A document whose
//! program stops with an error (a rule with conflicting values, a builtin
//! regard implements failing) is evaluated again on the interpreter, so
//! its results and errors are the interpreter's.
//!
//! When that combined evaluation fails (an error or a panic in one rule),
//! the document's rules are evaluated again one by one, so the failing
//! rule is reported as an error for that document and every other rule
//! still reports; nothing changes on the fast path.

mod bundle;
mod namespaces;
mod result;
mod trace;
mod verify;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use regorus::{Engine, Value};

use crate::error::{Error, Result};
use crate::input::{FileInfo, ParsedFile};
use crate::policy::PolicySet;
pub use crate::rvm::Evaluator;
use crate::rvm::RvmProgram;

pub use bundle::{check_bundle, check_bundle_mutated};
pub use namespaces::{NamespaceSelection, select_namespaces};
pub use result::{AUDIT_NAMESPACE, AuditAnnotation, CheckResult, Location, Outcome};
pub use trace::{RuleTracer, TraceFilter, TraceNode, TraceOp};
pub use verify::{Coverage, FileCoverage, TestCase, TestRun, TestStatus, Verifier, VerifyReport};

/// Package holding the generated per-namespace evaluation rules.
const GENERATED_PACKAGE: &str = "__regard__";

/// Whether a rule reports failures or warnings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `deny`, `violation` and their `_suffix` variants.
    Failure,
    /// `warn` and its `_suffix` variants.
    Warning,
}

impl RuleKind {
    /// Classifies a rule name as conftest does: `^(deny|violation)(_[a-zA-Z0-9]+)*$`
    /// fails, `^warn(_[a-zA-Z0-9]+)*$` warns, anything else is not queried.
    ///
    /// ```
    /// use policy_core::conftest::RuleKind;
    /// assert_eq!(RuleKind::of("deny_root_user"), Some(RuleKind::Failure));
    /// assert_eq!(RuleKind::of("warn"), Some(RuleKind::Warning));
    /// assert_eq!(RuleKind::of("deny_"), None);
    /// assert_eq!(RuleKind::of("denyX"), None);
    /// ```
    pub fn of(name: &str) -> Option<RuleKind> {
        let (kind, rest) = if let Some(rest) = name.strip_prefix("deny") {
            (RuleKind::Failure, rest)
        } else if let Some(rest) = name.strip_prefix("violation") {
            (RuleKind::Failure, rest)
        } else if let Some(rest) = name.strip_prefix("warn") {
            (RuleKind::Warning, rest)
        } else {
            return None;
        };
        let suffix_ok = rest.is_empty()
            || rest.strip_prefix('_').is_some_and(|r| {
                r.split('_')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
            });
        suffix_ok.then_some(kind)
    }
}

/// The name exceptions use for a rule: the rule name without its
/// `deny_`/`violation_`/`warn_` prefix (`""` for the bare names).
pub fn exception_name(rule: &str) -> &str {
    for prefix in ["deny", "violation", "warn"] {
        if let Some(rest) = rule.strip_prefix(prefix) {
            return rest.strip_prefix('_').unwrap_or(rest);
        }
    }
    rule
}

/// A queried rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueriedRule {
    /// Rule name (`deny_root`).
    pub name: String,
    /// Failure or warning.
    pub kind: RuleKind,
}

/// One namespace's evaluation plan.
#[derive(Debug, Clone)]
struct Plan {
    namespace: String,
    rules: Vec<QueriedRule>,
    /// Definitions of queried rules, for conftest's success padding.
    rule_count: usize,
    /// Rule path of the generated rule that evaluates everything at once.
    entry: Option<String>,
    /// The generated rule's entry point in [`Checker::program`] (`entry`
    /// with `_rvm`), by position.
    rvm_entry: Option<usize>,
}

/// Evaluates documents against the deny/warn rules of chosen namespaces.
#[derive(Debug, Clone)]
pub struct Checker {
    engine: Engine,
    plans: Vec<Plan>,
    /// Records per-document rule traces when set.
    tracer: Option<RuleTracer>,
    /// Whether some policy may read `data.conftest` (the file being
    /// checked), which each evaluation then provides with `with`.
    reads_file_info: bool,
    /// Which evaluator runs the generated rules.
    evaluator: Evaluator,
    /// Whether builtin errors abort evaluation: the RVM programs make
    /// them undefined, so the interpreter runs everything then.
    strict_builtins: bool,
    /// `data` the engine holds, for the RVM program.
    data: Value,
    /// One RVM program for every plan's generated rule, compiled on first
    /// use; `None` when some policy reads `data.conftest`.
    program: Option<Arc<RvmProgram>>,
    /// The program's entry points, in order.
    rvm_entries: Vec<String>,
    /// Documents whose RVM program stopped with an error and were
    /// evaluated again on the interpreter.
    fallbacks: Arc<AtomicUsize>,
}

impl Checker {
    /// Prepares evaluation of the namespaces `selection` chooses.
    ///
    /// Fails if a v1 deny/warn rule is written `deny[x] if { ... }` (a partial
    /// object, which never reports anything), as conftest does.
    pub fn new(policies: &PolicySet, selection: &NamespaceSelection) -> Result<Checker> {
        for module in policies.modules() {
            for rule in &module.rules {
                if rule.object_ref_head && RuleKind::of(&rule.name).is_some() {
                    return Err(Error::Policy {
                        path: module.file.clone().into(),
                        message: format!(
                            "rule is using 'if' keyword without 'contains' keyword: rule in {} at line {}",
                            module.file, rule.line
                        ),
                    });
                }
            }
        }
        let namespaces = select_namespaces(&policies.packages(), selection);
        let mut plans = Vec::with_capacity(namespaces.len());
        let mut generated = String::new();
        let _ = writeln!(generated, "package {GENERATED_PACKAGE}");
        for (index, namespace) in namespaces.into_iter().enumerate() {
            let mut rules: Vec<QueriedRule> = Vec::new();
            let mut rule_count = 0;
            for module in policies.modules().iter().filter(|m| m.package == namespace) {
                for rule in &module.rules {
                    let Some(kind) = RuleKind::of(&rule.name) else {
                        continue;
                    };
                    rule_count += rule.definitions;
                    if !rules
                        .iter()
                        .any(|r| r.name.eq_ignore_ascii_case(&rule.name))
                    {
                        rules.push(QueriedRule {
                            name: rule.name.clone(),
                            kind,
                        });
                    }
                }
            }
            let entry = if rules.is_empty() {
                None
            } else {
                let rule = format!("ns{index}");
                let base = rego_ref(&namespace);
                let entries: Vec<(String, String)> = rules
                    .iter()
                    .map(|r| {
                        (
                            format!("[x | x := {base}[{}]]", json_string(&r.name)),
                            format!(
                                "count([1 | {base}[\"exception\"][_][_] == {}])",
                                json_string(exception_name(&r.name))
                            ),
                        )
                    })
                    .collect();
                // For the interpreter, one object of every value: the
                // fewest rules to look up and cache per document.
                let _ = writeln!(generated, "{rule} := {{");
                for (i, (values, exceptions)) in entries.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    // One entry per line: regorus limits line length.
                    let _ = writeln!(
                        generated,
                        "{sep}\"r{i}\": {values},\n\"e{i}\": {exceptions}"
                    );
                }
                generated.push_str("}\n");
                // For the RVM, each value in a rule of its own: the object
                // above needs more registers than an RVM rule has (255) once
                // a namespace has nine rules.
                for (i, (values, exceptions)) in entries.iter().enumerate() {
                    let _ = writeln!(
                        generated,
                        "{rule}_r{i} := {values}\n{rule}_e{i} := {exceptions}"
                    );
                }
                let _ = writeln!(generated, "{rule}_rvm := {{");
                for i in 0..entries.len() {
                    let sep = if i == 0 { "" } else { "," };
                    let _ = writeln!(
                        generated,
                        "{sep}\"r{i}\": {rule}_r{i}, \"e{i}\": {rule}_e{i}"
                    );
                }
                generated.push_str("}\n");
                Some(format!("data.{GENERATED_PACKAGE}.{rule}"))
            };
            plans.push(Plan {
                namespace,
                rules,
                rule_count,
                entry,
                rvm_entry: None,
            });
        }
        let mut engine = policies.engine().clone();
        let reads_file_info = engine.get_policies().map_or(true, |sources| {
            sources
                .iter()
                .any(|s| crate::rego::may_read_data(s.contents(), "conftest"))
        });
        if plans.iter().any(|p| p.entry.is_some()) {
            engine
                .add_policy("<regard>".to_owned(), generated)
                .map_err(|e| Error::Policy {
                    path: "<regard>".into(),
                    message: e.to_string(),
                })?;
        }
        // Compile now so every clone starts prepared.
        if let Err(message) = crate::policy::compile(&mut engine) {
            if let Some(e) = crate::rego::messages::compile_error(&message) {
                return Err(Error::Compile { errors: vec![e] });
            }
            let path = crate::error::location(&message).map_or("<policies>", |(file, _, _)| file);
            return Err(Error::Policy {
                path: path.into(),
                message,
            });
        }
        let data = engine.get_data();
        let mut rvm_entries = Vec::new();
        for plan in &mut plans {
            if let Some(entry) = &plan.entry {
                plan.rvm_entry = Some(rvm_entries.len());
                rvm_entries.push(format!("{entry}_rvm"));
            }
        }
        let program = (!reads_file_info && !rvm_entries.is_empty()).then(|| {
            let sources: Vec<(String, String)> = engine
                .get_policies()
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.file().clone(), s.contents().clone()))
                .collect();
            let modules = engine.get_modules().clone();
            Arc::new(RvmProgram::new(
                modules.iter().map(|m| &**m),
                sources,
                policies.rego_version(),
                Some(data.clone()),
            ))
        });
        Ok(Checker {
            engine,
            plans,
            tracer: None,
            reads_file_info,
            evaluator: Evaluator::default(),
            strict_builtins: policies.strict_builtin_errors(),
            data,
            program,
            rvm_entries,
            fallbacks: Arc::default(),
        })
    }

    /// Chooses the evaluator ([`Evaluator::Rvm`] by default); results are
    /// the same with either.
    pub fn set_evaluator(&mut self, evaluator: Evaluator) {
        self.evaluator = evaluator;
    }

    /// Namespaces whose generated rule cannot run on the RVM, with the
    /// reason; empty with [`Evaluator::Interpreter`]. Compiles the programs
    /// not compiled yet.
    pub fn interpreted_namespaces(&self) -> Vec<(&str, String)> {
        if self.evaluator == Evaluator::Interpreter {
            return Vec::new();
        }
        self.plans
            .iter()
            .filter_map(|plan| {
                plan.entry.as_ref()?;
                let why = self.rvm_program().err()?;
                Some((plan.namespace.as_str(), why.to_owned()))
            })
            .collect()
    }

    /// Turns tracing on: each result then carries, per document and queried
    /// rule, a `file: … | query: …` line and the rule trace (see
    /// [`RuleTracer`]) as conftest prints it.
    pub fn enable_tracing(&mut self, policies: &PolicySet) -> Result<()> {
        self.tracer = Some(RuleTracer::new(policies)?);
        Ok(())
    }

    /// The namespaces that will be evaluated, in order.
    pub fn namespaces(&self) -> Vec<&str> {
        self.plans.iter().map(|p| p.namespace.as_str()).collect()
    }

    /// Checks files: one result per namespace and file, namespace-major
    /// (all files for the first namespace, then the second, …), files in the
    /// order given. Documents are evaluated in parallel. A rule whose
    /// evaluation fails for a document is an error in that file's result;
    /// the `Err` case is left for internal failures.
    pub fn check_files(&self, files: &[ParsedFile]) -> Result<Vec<CheckResult>> {
        let jobs: Vec<(usize, usize)> = (0..self.plans.len())
            .flat_map(|p| (0..files.len()).map(move |f| (p, f)))
            .collect();
        jobs.par_iter()
            .map_init(
                || self.engine.clone(),
                |engine, &(p, f)| match (self.plans.get(p), files.get(f)) {
                    (Some(plan), Some(file)) => self.check_file(engine, plan, file),
                    _ => Err(Error::Config("internal: job index out of range".to_owned())),
                },
            )
            .collect()
    }

    /// Checks all files as one combined input: `input` is an array of
    /// `{"path", "contents"}`, one per document, sorted by path.
    pub fn check_combined(&self, files: &[ParsedFile]) -> Result<Vec<CheckResult>> {
        let combined = combine(files);
        let file = ParsedFile {
            name: "Combined".to_owned(),
            file_info: FileInfo::synthetic("Combined"),
            value: Value::Null,
        };
        let mut engine = self.engine.clone();
        self.plans
            .iter()
            .map(|plan| {
                let mut result = CheckResult::new(&file.name, &plan.namespace);
                let doc = Document {
                    file: &file,
                    value: combined.clone(),
                    number: None,
                };
                self.check_document(&mut engine, plan, &doc, &mut result)?;
                Ok(result)
            })
            .collect()
    }

    fn check_file(
        &self,
        engine: &mut Engine,
        plan: &Plan,
        file: &ParsedFile,
    ) -> Result<CheckResult> {
        let mut result = CheckResult::new(&file.name, &plan.namespace);
        let documents = file.documents();
        let several = documents.len() > 1;
        for (i, value) in documents.into_iter().enumerate() {
            let doc = Document {
                file,
                value,
                number: several.then_some(i + 1),
            };
            self.check_document(engine, plan, &doc, &mut result)?;
        }
        Ok(result)
    }

    /// Evaluates `query` for the document; an error or panic comes back as
    /// its message on one line. After a panic the engine is replaced by a
    /// fresh clone, since it may have been left half-updated.
    /// Evaluates `query`, or the rule at path `query` when `rule` is set
    /// (no query to parse and schedule per document).
    fn eval(
        &self,
        engine: &mut Engine,
        doc: &Document<'_>,
        query: &str,
        rule: bool,
    ) -> Result<Value, String> {
        let run = || {
            if rule {
                engine.eval_rule(query.to_owned())
            } else {
                engine.eval_query(query.to_owned(), false).map(|results| {
                    results
                        .result
                        .into_iter()
                        .next()
                        .and_then(|r| r.expressions.into_iter().next())
                        .map_or(Value::Undefined, |e| e.value)
                })
            }
        };
        match crate::guard::catch(run) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                let message = crate::rego::messages::render(&e.to_string(), engine.get_modules());
                // conftest's wording for a builtin's error (`--show-builtin-errors`).
                let builtin = format!("{}: ", crate::policy::builtins::BUILTIN_ERROR);
                if message.contains(&builtin) {
                    Err(format!("built-in error: [{message}]"))
                } else {
                    Err(message)
                }
            }
            Err(panic) => {
                *engine = self.engine.clone();
                engine.set_input(doc.value.clone());
                Err(panic.to_string())
            }
        }
    }

    /// The generated rule's value from the plan's RVM program, or `None`
    /// when the interpreter is to evaluate it: the program is blocked or
    /// stopped with an error (see the module's documentation).
    fn compiled(&self, plan: &Plan, doc: &Document<'_>) -> Option<Value> {
        if self.evaluator != Evaluator::Rvm || self.tracer.is_some() {
            return None;
        }
        let program = self.rvm_program().ok()?;
        let entry = Some(plan.rvm_entry?);
        let value = crate::rvm::execute(program, entry, &self.data, doc.value.clone(), None).ok();
        if value.is_none() {
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        value
    }

    /// The RVM program of every plan, or why the plans stay on the
    /// interpreter.
    fn rvm_program(&self) -> std::result::Result<&Arc<regorus::rvm::Program>, &str> {
        if self.strict_builtins {
            return Err("builtin errors are strict");
        }
        let program = self
            .program
            .as_ref()
            .ok_or("a policy may read data.conftest")?;
        program.get_all(&self.rvm_entries)
    }

    /// How many documents a compiled program could not evaluate (an error,
    /// such as conflicting rule values) and the interpreter evaluated again.
    pub fn rvm_fallbacks(&self) -> usize {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn check_document(
        &self,
        engine: &mut Engine,
        plan: &Plan,
        doc: &Document<'_>,
        result: &mut CheckResult,
    ) -> Result<()> {
        let Some(entry) = &plan.entry else {
            return Ok(());
        };
        let file = doc.file;
        if let Some(tracer) = &self.tracer {
            self.record_trace(tracer, plan, file, &doc.value, result)?;
        }
        engine.set_input(doc.value.clone());
        // `data.conftest.file` differs per document; `with` provides it
        // without touching the shared data. A query with `with` is parsed and
        // scheduled per document (5 % of `regard test` on the corpus), so
        // when no policy can read it the generated rule is evaluated by path.
        // Written only for a query that needs it.
        let with = || -> Result<String> {
            let info =
                serde_json::to_string(&file.file_info.to_value()).map_err(|e| Error::Eval {
                    file: file.name.clone(),
                    query: crate::policy::data_ref(&plan.namespace, ""),
                    message: e.to_string(),
                })?;
            Ok(format!(" with data.conftest.file as {info}"))
        };
        let first = if self.reads_file_info {
            self.eval(engine, doc, &format!("{entry}{}", with()?), false)
        } else if let Some(value) = self.compiled(plan, doc) {
            Ok(value)
        } else {
            self.eval(engine, doc, entry, true)
        };
        let values: Vec<RuleValue> = match first {
            Ok(value) => (0..plan.rules.len())
                .map(|i| RuleValue::Found {
                    values: value[&Value::from(format!("r{i}"))].clone(),
                    exceptions: count(&value[&Value::from(format!("e{i}"))]),
                })
                .collect(),
            Err(_) => {
                // Drop what the failed evaluation printed; each rule's own
                // evaluation prints again.
                let _ = engine.take_prints();
                let with = with()?;
                let base = rego_ref(&plan.namespace);
                plan.rules
                    .iter()
                    .map(|rule| {
                        let query = format!(
                            "{{\"r\": [x | x := {base}[{name}]], \"e\": count([1 | {base}[\"exception\"][_][_] == {exc}])}}{with}",
                            name = json_string(&rule.name),
                            exc = json_string(exception_name(&rule.name)),
                        );
                        match self.eval(engine, doc, &query, false) {
                            Ok(v) => RuleValue::Found {
                                values: v[&Value::from("r")].clone(),
                                exceptions: count(&v[&Value::from("e")]),
                            },
                            Err(message) => RuleValue::Failed(message),
                        }
                    })
                    .collect()
            }
        };
        result
            .prints
            .extend(engine.take_prints().unwrap_or_default());

        let mut doc_counts = Counts::default();
        for (rule, value) in plan.rules.iter().zip(values) {
            let query = crate::policy::data_ref(&plan.namespace, &rule.name);
            let error =
                |message: &str| Outcome::error(&doc.label(&query), message, &rule.name, &query);
            let (found, exceptions) = match value {
                RuleValue::Found { values, exceptions } => (values, exceptions),
                RuleValue::Failed(message) => {
                    result.errors.push(error(&message));
                    doc_counts.errors += 1;
                    continue;
                }
            };
            if exceptions > 0 {
                let msg = format!(
                    "{}.exception[_][_] == {}",
                    crate::policy::data_ref(&plan.namespace, ""),
                    json_string(exception_name(&rule.name))
                );
                for _ in 0..exceptions {
                    result
                        .exceptions
                        .push(Outcome::message_only(&msg, &rule.name));
                    doc_counts.exceptions += 1;
                }
                continue;
            }
            let Ok(found) = found.as_array() else {
                continue;
            };
            // Undefined rule: no result at all.
            let Some(rule_value) = found.first() else {
                continue;
            };
            let elements: Vec<Value> = match rule_value {
                Value::Set(s) => s.iter().cloned().collect(),
                Value::Array(a) => a.iter().cloned().collect(),
                _ => Vec::new(),
            };
            let messages: std::result::Result<Vec<Outcome>, String> = elements
                .iter()
                .filter_map(|element| Outcome::from_value(element, &rule.name, &query).transpose())
                .collect();
            let messages = match messages {
                Ok(m) => m,
                Err(message) => {
                    result.errors.push(error(&message));
                    doc_counts.errors += 1;
                    continue;
                }
            };
            if messages.is_empty() {
                doc_counts.successes += 1;
                continue;
            }
            match rule.kind {
                RuleKind::Failure => {
                    doc_counts.failures += messages.len();
                    result.failures.extend(messages);
                }
                RuleKind::Warning => {
                    doc_counts.warnings += messages.len();
                    result.warnings.extend(messages);
                }
            }
        }
        // Conftest's padding: every queried rule definition counts as a test.
        let counted =
            doc_counts.failures + doc_counts.warnings + doc_counts.exceptions + doc_counts.errors;
        let padding = plan
            .rule_count
            .saturating_sub(counted.saturating_add(doc_counts.successes));
        result.successes += doc_counts.successes + padding;
        Ok(())
    }
}

/// One document being checked.
struct Document<'a> {
    file: &'a ParsedFile,
    value: Value,
    /// 1-based position in its file, when the file has several documents.
    number: Option<usize>,
}

impl Document<'_> {
    /// `data.main.deny`, or `data.main.deny (document 2)` in a multi-document file.
    fn label(&self, query: &str) -> String {
        match self.number {
            Some(n) => format!("{query} (document {n})"),
            None => query.to_owned(),
        }
    }
}

/// What one queried rule gave for one document.
enum RuleValue {
    /// `[value]`, or `[]` when the rule is undefined, and how many
    /// exceptions name the rule.
    Found { values: Value, exceptions: u64 },
    /// Evaluating the rule failed or panicked: the message.
    Failed(String),
}

fn count(v: &Value) -> u64 {
    v.as_number().ok().and_then(|n| n.as_u64()).unwrap_or(0)
}

impl Checker {
    fn record_trace(
        &self,
        tracer: &RuleTracer,
        plan: &Plan,
        file: &ParsedFile,
        doc: &Value,
        result: &mut CheckResult,
    ) -> Result<()> {
        let info = serde_json::to_string(&file.file_info.to_value()).map_err(|e| Error::Eval {
            file: file.name.clone(),
            query: crate::policy::data_ref(&plan.namespace, ""),
            message: e.to_string(),
        })?;
        let with = format!(" with data.conftest.file as {info}");
        for rule in &plan.rules {
            let query = crate::policy::data_ref(&plan.namespace, &rule.name);
            result
                .trace
                .push(format!("file: {} | query: {query}", file.name));
            let node = tracer.trace(&query, Some(doc.clone()), &with)?;
            for line in node.render(TraceFilter::All, false) {
                result.trace.push(format!("TRAC   {line}"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Counts {
    successes: usize,
    failures: usize,
    warnings: usize,
    exceptions: usize,
    errors: usize,
}

/// Builds the `--combine` input: `[{"path", "contents"}]`, one entry per
/// document, stably sorted by path.
pub fn combine(files: &[ParsedFile]) -> Value {
    let mut entries: Vec<(String, Value)> = Vec::new();
    for file in files {
        for doc in file.documents() {
            entries.push((file.name.clone(), doc));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Value::from(
        entries
            .into_iter()
            .map(|(path, contents)| {
                let mut map = BTreeMap::new();
                map.insert(Value::from("path"), Value::from(path));
                map.insert(Value::from("contents"), contents);
                Value::from(map)
            })
            .collect::<Vec<_>>(),
    )
}

/// A package path as a Rego ref that works for any component text.
fn rego_ref(namespace: &str) -> String {
    let mut out = String::from("data");
    for part in namespace.split('.') {
        let _ = write!(out, "[{}]", json_string(part));
    }
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}
