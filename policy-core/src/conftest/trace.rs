//! Rule-level evaluation traces (`--trace`, `verify --report`), in the
//! vocabulary of OPA's traces: `Enter`, `Exit`, `Fail` and `Note` lines
//! indented with `| ` per level.
//!
//! regorus has no step tracer, so a trace is built from evaluations:
//! [`RuleTracer::new`] copies every rule definition (one body, or one
//! `else` chain) of the policies into a hidden rule of the same package and
//! imports (`__regard_def_N`), so that each definition can be evaluated on
//! its own, and records which rules and functions each definition refers to.
//! [`RuleTracer::trace`] then walks from the queried rule: each definition
//! is `Enter`ed, the rules it refers to are traced beneath it (first
//! reference only, as OPA evaluates a rule once per query), the definition
//! is evaluated and reported as `Exit` (its body succeeded) or `Fail`, and
//! the notes of the `trace()` calls made during its evaluation are shown as
//! `Note` lines. Rules referred to under `with` modifiers are evaluated
//! with those modifiers when their values can be written out (constants, or
//! variables the body assigns from constants); otherwise they are left out.
//! Expressions inside a body are not traced.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use regorus::unstable::{AssignOp, Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};
use regorus::{Engine, Value};

use crate::error::{Error, Result};
use crate::policy::{PolicySet, record_trace_notes, take_trace_notes};
use crate::rego::strict::{ref_parts, var_name, walk_expr, walk_query};

/// A trace line's operation, as OPA names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceOp {
    /// A rule definition (or the query) starts being evaluated.
    Enter,
    /// It succeeded.
    Exit,
    /// It produced nothing.
    Fail,
    /// A `trace(note)` call.
    Note,
}

impl TraceOp {
    fn word(self) -> &'static str {
        match self {
            TraceOp::Enter => "Enter",
            TraceOp::Exit => "Exit",
            TraceOp::Fail => "Fail",
            TraceOp::Note => "Note",
        }
    }
}

/// Which lines of a trace to show (conftest's `--report` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFilter {
    /// Every line.
    All,
    /// `Fail` lines and the `Enter` lines leading to them.
    Fails,
    /// `Note` lines and the `Enter` lines leading to them.
    Notes,
}

/// One evaluated rule definition (or the query), with what it referred to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceNode {
    /// `data.pkg.rule` (the query's node adds ` = _`, as OPA prints queries).
    pub subject: String,
    /// `file:line` of the definition; `None` for the query.
    pub location: Option<(String, u32)>,
    /// `Exit` or `Fail`.
    pub outcome: TraceOp,
    /// Notes of `trace()` calls in this definition, with their lines.
    pub notes: Vec<(String, Option<(String, u32)>)>,
    /// Definitions of the rules this one referred to, in reference order.
    pub children: Vec<TraceNode>,
}

/// One rendered line: operation, depth (number of `| `), text, location.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    op: TraceOp,
    depth: usize,
    text: String,
    location: Option<(String, u32)>,
}

impl TraceNode {
    fn lines(&self, depth: usize, filter: TraceFilter, out: &mut Vec<Line>) -> bool {
        let mut own = Vec::new();
        let mut keep = filter == TraceFilter::All;
        for child in &self.children {
            keep |= child.lines(depth + 1, filter, &mut own);
        }
        if filter != TraceFilter::Fails {
            for (note, location) in &self.notes {
                keep = true;
                own.push(Line {
                    op: TraceOp::Note,
                    depth,
                    text: json_quote(note),
                    location: location.clone(),
                });
            }
        }
        let outcome_shown = match filter {
            TraceFilter::All => true,
            TraceFilter::Fails => self.outcome == TraceOp::Fail,
            TraceFilter::Notes => false,
        };
        if outcome_shown {
            keep = true;
            own.push(Line {
                op: self.outcome,
                depth,
                text: self.subject.clone(),
                location: self.location.clone(),
            });
        }
        if keep {
            out.push(Line {
                op: TraceOp::Enter,
                depth: depth.saturating_sub(1),
                text: self.subject.clone(),
                location: self.location.clone(),
            });
            out.extend(own);
        }
        keep
    }

    /// The trace as OPA's pretty trace prints it (`Enter data.p.q`,
    /// `| Exit data.p.q`, …).
    ///
    /// ```
    /// use policy_core::conftest::{TraceFilter, TraceNode, TraceOp};
    /// let node = TraceNode {
    ///     subject: "data.p.allow = _".into(),
    ///     location: None,
    ///     outcome: TraceOp::Exit,
    ///     notes: vec![],
    ///     children: vec![TraceNode {
    ///         subject: "data.p.allow".into(),
    ///         location: Some(("p.rego".into(), 3)),
    ///         outcome: TraceOp::Exit,
    ///         notes: vec![("hi".into(), Some(("p.rego".into(), 4)))],
    ///         children: vec![],
    ///     }],
    /// };
    /// assert_eq!(
    ///     node.render(TraceFilter::All, false),
    ///     vec![
    ///         "Enter data.p.allow = _",
    ///         "| Enter data.p.allow",
    ///         "| | Note \"hi\"",
    ///         "| | Exit data.p.allow",
    ///         "| Exit data.p.allow = _",
    ///     ]
    /// );
    /// assert_eq!(
    ///     node.render(TraceFilter::Notes, true),
    ///     vec![
    ///         "query:1      Enter data.p.allow = _",
    ///         "p.rego:3     | Enter data.p.allow",
    ///         "p.rego:4     | | Note \"hi\"",
    ///     ]
    /// );
    /// ```
    pub fn render(&self, filter: TraceFilter, locations: bool) -> Vec<String> {
        let mut lines = Vec::new();
        self.lines(1, filter, &mut lines);
        let place = |l: &Line| match &l.location {
            Some((file, line)) => format!("{file}:{line}"),
            None => "query:1".to_owned(),
        };
        // OPA pads the location column to the widest entry plus four.
        let width = lines.iter().map(|l| place(l).len()).max().unwrap_or(0) + 4;
        lines
            .iter()
            .map(|l| {
                let mut s = String::new();
                if locations {
                    let _ = write!(s, "{:<width$} ", place(l));
                }
                let _ = write!(s, "{}{} {}", "| ".repeat(l.depth), l.op.word(), l.text);
                s
            })
            .collect()
    }
}

/// A rule or function a definition refers to, and the `with` modifiers in
/// force where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    target: String,
    function: bool,
    with: String,
}

#[derive(Debug, Clone)]
struct Definition {
    file: String,
    line: u32,
    /// Ref of the hidden copy evaluating only this definition; `None` when
    /// the rule could not be copied (then the whole rule is evaluated).
    copy: Option<String>,
    /// Whether an empty set or object means the body produced nothing.
    multi_value: bool,
    refs: Vec<Reference>,
    /// Line of the first `trace()` call in the body.
    note_line: Option<u32>,
}

/// Traces rule evaluations for one policy set (see the module documentation).
#[derive(Debug, Clone)]
pub struct RuleTracer {
    engine: Engine,
    rules: BTreeMap<String, Vec<Definition>>,
    functions: BTreeMap<String, Vec<Reference>>,
}

/// What a module can name without `data.`: its package's rules and
/// functions, and its imports.
struct Scope<'a> {
    package: Vec<String>,
    rule_names: &'a BTreeSet<String>,
    imports: BTreeMap<String, Vec<String>>,
    rules: &'a BTreeSet<String>,
    functions: &'a BTreeSet<String>,
}

impl RuleTracer {
    /// Prepares tracing of `policies` (compiles the per-definition copies).
    pub fn new(policies: &PolicySet) -> Result<RuleTracer> {
        let mut engine = policies.engine().clone();
        let modules: Vec<regorus::unstable::Ref<Module>> = engine.get_modules().clone();

        // Every rule and function path, and the rule names of each package.
        let mut rule_paths = BTreeSet::new();
        let mut function_paths = BTreeSet::new();
        let mut names_by_package: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
        for m in &modules {
            let package = package_parts(m);
            for rule in &m.policy {
                let (refr, function) = head_ref(rule);
                let Some(parts) = ref_parts(refr) else {
                    continue;
                };
                let mut path = package.clone();
                path.extend(parts.iter().cloned());
                if function {
                    function_paths.insert(path.join("."));
                } else {
                    rule_paths.insert(path.join("."));
                }
                if let Some(first) = parts.first() {
                    names_by_package
                        .entry(package.clone())
                        .or_default()
                        .insert(first.clone());
                }
            }
        }

        let empty = BTreeSet::new();
        let mut rules: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
        let mut functions: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
        let mut counter = 0_usize;
        for m in &modules {
            let package = package_parts(m);
            let file = m.package.span.source.file().clone();
            let scope = Scope {
                rule_names: names_by_package.get(&package).unwrap_or(&empty),
                imports: imports(m),
                rules: &rule_paths,
                functions: &function_paths,
                package: package.clone(),
            };
            let mut copies = String::new();
            let ends = rule_ends(m);
            for (index, rule) in m.policy.iter().enumerate() {
                let Rule::Spec { span, head, bodies } = rule.as_ref() else {
                    continue;
                };
                let (refr, function) = head_ref(rule);
                let Some(parts) = ref_parts(refr) else {
                    continue;
                };
                let mut path = package.clone();
                path.extend(parts);
                let path = path.join(".");
                let mut refs = Vec::new();
                let mut note_line = None;
                let mut locals = BTreeSet::new();
                if let RuleHead::Func { args, .. } = head {
                    for a in args {
                        walk_expr(a, &mut |e| {
                            if let Some(n) = var_name(e) {
                                locals.insert(n);
                            }
                        });
                    }
                }
                for body in bodies {
                    let mut body_locals = locals.clone();
                    collect_locals(&body.query, &mut body_locals);
                    query_refs(&body.query, &scope, &body_locals, &mut refs);
                    if let Some(a) = &body.assign {
                        expr_refs(&a.value, &scope, &body_locals, "", &mut refs);
                    }
                    walk_query(&body.query, &mut |e| {
                        if let Expr::Call { fcn, span, .. } = e
                            && var_name(fcn).as_deref() == Some("trace")
                            && note_line.is_none()
                        {
                            note_line = Some(span.line);
                        }
                    });
                }
                head_refs(head, &scope, &mut refs);
                if function {
                    functions.entry(path).or_default().extend(refs);
                    continue;
                }
                let end = ends.get(index).copied().unwrap_or(span.end as usize);
                let copy = copy_rule(span, refr, end).map(|text| {
                    counter += 1;
                    let name = format!("__regard_def_{counter}");
                    let _ = writeln!(copies, "{}", text.replacen("\u{0}", &name, 1));
                    let mut parts = package.clone();
                    parts.push(name);
                    rego_ref(&parts)
                });
                rules.entry(path).or_default().push(Definition {
                    file: file.clone(),
                    line: span.line,
                    copy,
                    multi_value: matches!(head, RuleHead::Set { .. })
                        || matches!(head, RuleHead::Compr { refr, .. } if matches!(refr.as_ref(), Expr::RefBrack { .. })),
                    refs,
                    note_line,
                });
            }
            if !copies.is_empty() {
                let mut text = format!(
                    "package {}\n",
                    package.get(1..).unwrap_or_default().join(".")
                );
                for i in &m.imports {
                    let _ = write!(text, "import {}", i.refr.span().text());
                    if let Some(alias) = &i.r#as {
                        let _ = write!(text, " as {}", alias.text());
                    }
                    text.push('\n');
                }
                text.push_str(&copies);
                engine
                    .add_policy(format!("{file}#trace"), text)
                    .map_err(|e| Error::Policy {
                        path: file.clone().into(),
                        message: format!("preparing the trace: {e}"),
                    })?;
            }
        }
        Ok(RuleTracer {
            engine,
            rules,
            functions,
        })
    }

    /// Traces the query `data.<rule path>` on `input` (none for `verify`),
    /// with `with` modifiers (`" with data.x as 1"`) applied to every
    /// evaluation.
    pub fn trace(&self, rule: &str, input: Option<Value>, with: &str) -> Result<TraceNode> {
        let mut engine = self.engine.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        let mut state = State {
            visited: BTreeSet::new(),
            notes_of: BTreeMap::new(),
        };
        state.visited.insert(rule.to_owned());
        let children = self.definitions(&mut engine, rule, with, &mut state)?;
        let query = format!("{}{with}", rego_ref(&split_path(rule)));
        let value = eval(&mut engine, &query)?;
        Ok(TraceNode {
            subject: format!("{rule} = _"),
            location: None,
            outcome: if value == Value::Undefined {
                TraceOp::Fail
            } else {
                TraceOp::Exit
            },
            notes: Vec::new(),
            children,
        })
    }

    fn definitions(
        &self,
        engine: &mut Engine,
        rule: &str,
        with: &str,
        state: &mut State,
    ) -> Result<Vec<TraceNode>> {
        let Some(defs) = self.rules.get(rule) else {
            return Ok(Vec::new());
        };
        let mut nodes = Vec::new();
        for def in defs {
            let mut children = Vec::new();
            let mut referenced = Vec::new();
            let mut guard = BTreeSet::new();
            self.expand(&def.refs, &mut guard, &mut |r| referenced.push(r.clone()));
            for r in &referenced {
                if state.visited.insert(r.target.clone()) {
                    let w = format!("{with}{}", r.with);
                    children.extend(self.definitions(engine, &r.target, &w, state)?);
                }
            }
            let target = def
                .copy
                .clone()
                .unwrap_or_else(|| rego_ref(&split_path(rule)));
            record_trace_notes();
            let value = eval(engine, &format!("{target}{with}"));
            let recorded = take_trace_notes();
            let value = value?;
            // Notes of the rules it refers to were shown under them.
            let mut notes = recorded.clone();
            for r in &referenced {
                for n in state.notes_of.get(&r.target).into_iter().flatten() {
                    if let Some(i) = notes.iter().position(|x| x == n) {
                        notes.remove(i);
                    }
                }
            }
            state
                .notes_of
                .entry(rule.to_owned())
                .or_default()
                .extend(recorded);
            let empty = match &value {
                Value::Set(s) => s.is_empty(),
                Value::Object(o) => o.is_empty(),
                _ => false,
            };
            let produced = value != Value::Undefined && !(def.multi_value && empty);
            let note_location = Some((def.file.clone(), def.note_line.unwrap_or(def.line)));
            nodes.push(TraceNode {
                subject: rule.to_owned(),
                location: Some((def.file.clone(), def.line)),
                outcome: if produced {
                    TraceOp::Exit
                } else {
                    TraceOp::Fail
                },
                notes: notes
                    .into_iter()
                    .map(|n| (n, note_location.clone()))
                    .collect(),
                children,
            });
        }
        Ok(nodes)
    }

    /// The rule references of `refs`, with functions replaced by the rules
    /// their bodies refer to.
    fn expand(
        &self,
        refs: &[Reference],
        guard: &mut BTreeSet<String>,
        out: &mut dyn FnMut(&Reference),
    ) {
        for r in refs {
            if !r.function {
                out(r);
            } else if guard.insert(r.target.clone())
                && let Some(inner) = self.functions.get(&r.target)
            {
                let inner: Vec<Reference> = inner
                    .iter()
                    .map(|i| Reference {
                        with: format!("{}{}", r.with, i.with),
                        ..i.clone()
                    })
                    .collect();
                self.expand(&inner, guard, out);
            }
        }
    }
}

struct State {
    visited: BTreeSet<String>,
    notes_of: BTreeMap<String, Vec<String>>,
}

fn eval(engine: &mut Engine, query: &str) -> Result<Value> {
    let results = engine
        .eval_query(query.to_owned(), false)
        .map_err(|e| Error::Eval {
            file: "trace".to_owned(),
            query: query.to_owned(),
            message: e.to_string(),
        })?;
    Ok(results
        .result
        .into_iter()
        .next()
        .and_then(|r| r.expressions.into_iter().next())
        .map_or(Value::Undefined, |e| e.value))
}

/// The package path, always starting with `data`.
fn package_parts(m: &Module) -> Vec<String> {
    let parts = ref_parts(&m.package.refr).unwrap_or_default();
    if parts.first().map(String::as_str) == Some("data") {
        parts
    } else {
        std::iter::once("data".to_owned()).chain(parts).collect()
    }
}

fn split_path(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

/// `data["a"]["b"]` for `["data", "a", "b"]`: valid for any part text.
fn rego_ref(parts: &[String]) -> String {
    let mut out = String::from("data");
    for p in parts.iter().skip(1) {
        out.push('[');
        out.push_str(&json_quote(p));
        out.push(']');
    }
    out
}

fn json_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn head_ref(rule: &Rule) -> (&Expr, bool) {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
            RuleHead::Func { refr, .. } => (refr, true),
        },
        Rule::Default { refr, .. } => (refr, false),
    }
}

/// The rule's source with its name replaced by a NUL placeholder, for a
/// copy under another name; `None` when the head is not a plain name. The
/// text runs to where the next rule starts (`end`): regorus' rule spans stop
/// short of a closing string quote.
fn copy_rule(span: &regorus::unstable::Span, refr: &Expr, end: usize) -> Option<String> {
    let Expr::Var { span: name, .. } = refr else {
        return None;
    };
    let source = span.source.contents();
    let before = source.get(span.start as usize..name.start as usize)?;
    let after = source.get(name.end as usize..end)?;
    Some(format!("{before}\u{0}{after}"))
}

/// Where each rule's text ends: at the start of the next rule, or at the
/// end of the source.
fn rule_ends(m: &Module) -> Vec<usize> {
    let mut starts: Vec<usize> = m.policy.iter().map(|r| r.span().start as usize).collect();
    starts.sort_unstable();
    let len = m.package.span.source.contents().len();
    m.policy
        .iter()
        .map(|r| {
            let start = r.span().start as usize;
            starts.iter().copied().find(|s| *s > start).unwrap_or(len)
        })
        .collect()
}

fn imports(m: &Module) -> BTreeMap<String, Vec<String>> {
    m.imports
        .iter()
        .filter_map(|i| {
            let parts = ref_parts(&i.refr)?;
            if parts.first().map(String::as_str) != Some("data") {
                return None;
            }
            let name = match &i.r#as {
                Some(a) => a.text().to_owned(),
                None => parts.last()?.clone(),
            };
            Some((name, parts))
        })
        .collect()
}

/// Variables a body declares (`:=`, `some`, `every`), which hide rules of
/// the same name.
fn collect_locals(q: &Query, out: &mut BTreeSet<String>) {
    for s in &q.stmts {
        match &s.literal {
            Literal::SomeVars { vars, .. } => {
                out.extend(vars.iter().map(|v| v.text().to_owned()));
            }
            Literal::SomeIn { key, value, .. } => {
                for e in key.iter().chain(std::iter::once(value)) {
                    walk_expr(e, &mut |x| {
                        if let Some(n) = var_name(x) {
                            out.insert(n);
                        }
                    });
                }
            }
            Literal::Every {
                key, value, query, ..
            } => {
                out.extend(key.iter().map(|k| k.text().to_owned()));
                out.insert(value.text().to_owned());
                collect_locals(query, out);
            }
            Literal::Expr { .. } | Literal::NotExpr { .. } => {}
        }
    }
    walk_query(q, &mut |e| {
        if let Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            ..
        } = e
        {
            walk_expr(lhs, &mut |x| {
                if let Some(n) = var_name(x) {
                    out.insert(n);
                }
            });
        }
    });
}

fn query_refs(q: &Query, scope: &Scope<'_>, locals: &BTreeSet<String>, out: &mut Vec<Reference>) {
    // Right-hand sides of `v := e`, for writing out `with ... as v`.
    let mut assigned: BTreeMap<String, &Expr> = BTreeMap::new();
    for s in &q.stmts {
        if let Literal::Expr { expr, .. } = &s.literal
            && let Expr::AssignExpr {
                op: AssignOp::ColEq,
                lhs,
                rhs,
                ..
            } = expr.as_ref()
            && let Some(name) = var_name(lhs)
        {
            assigned.insert(name, rhs);
        }
    }
    for s in &q.stmts {
        let Some(with) = with_text(s, locals, &assigned) else {
            continue;
        };
        let mut stmt_refs = Vec::new();
        stmt_exprs(s, &mut |e| {
            expr_refs(e, scope, locals, &with, &mut stmt_refs)
        });
        for r in stmt_refs {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
}

fn stmt_exprs<'a>(s: &'a LiteralStmt, f: &mut dyn FnMut(&'a Expr)) {
    match &s.literal {
        Literal::SomeVars { .. } => {}
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                f(k);
            }
            f(value);
            f(collection);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => f(expr),
        Literal::Every { domain, .. } => f(domain),
    }
}

/// The statement's `with` modifiers as text (`" with input as {...}"`), its
/// local variables written out; `None` when a value cannot be written out.
fn with_text(
    s: &LiteralStmt,
    locals: &BTreeSet<String>,
    assigned: &BTreeMap<String, &Expr>,
) -> Option<String> {
    let mut out = String::new();
    for w in &s.with_mods {
        let value = inline(&w.r#as, locals, assigned, true)?;
        let _ = write!(out, " with {} as {value}", w.refr.span().text());
    }
    Some(out)
}

/// An expression's text with its local variables replaced by the
/// (parenthesised) expressions assigned to them, one level deep. Objects,
/// arrays and sets are rebuilt from their parts (their spans do not cover
/// the braces).
fn inline(
    e: &Expr,
    locals: &BTreeSet<String>,
    assigned: &BTreeMap<String, &Expr>,
    outer: bool,
) -> Option<String> {
    let list = |items: &[regorus::unstable::Ref<Expr>]| -> Option<Vec<String>> {
        items
            .iter()
            .map(|i| inline(i, locals, assigned, outer))
            .collect()
    };
    match e {
        Expr::Var { .. } => {
            let name = var_name(e)?;
            if !locals.contains(&name) {
                return Some(name);
            }
            let rhs = assigned.get(&name).filter(|_| outer)?;
            Some(format!("({})", inline(rhs, locals, assigned, false)?))
        }
        Expr::Object { fields, .. } => {
            let mut parts = Vec::new();
            for (_, k, v) in fields {
                parts.push(format!(
                    "{}: {}",
                    inline(k, locals, assigned, outer)?,
                    inline(v, locals, assigned, outer)?
                ));
            }
            Some(format!("{{{}}}", parts.join(", ")))
        }
        Expr::Array { items, .. } => Some(format!("[{}]", list(items)?.join(", "))),
        Expr::Set { items, .. } if items.is_empty() => Some("set()".to_owned()),
        Expr::Set { items, .. } => Some(format!("{{{}}}", list(items)?.join(", "))),
        // Scalar spans do not cover string quotes: write the value out.
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => serde_json::to_string(value).ok(),
        _ => {
            let mut local = false;
            walk_expr(e, &mut |x| {
                local |= var_name(x).is_some_and(|n| locals.contains(&n));
            });
            (!local).then(|| e.span().text().to_owned())
        }
    }
}

fn head_refs(head: &RuleHead, scope: &Scope<'_>, out: &mut Vec<Reference>) {
    let none = BTreeSet::new();
    let exprs: Vec<&Expr> = match head {
        RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
            assign.iter().map(|a| a.value.as_ref()).collect()
        }
        RuleHead::Set { key, .. } => key.iter().map(AsRef::as_ref).collect(),
    };
    for e in exprs {
        expr_refs(e, scope, &none, "", out);
    }
}

fn expr_refs(
    e: &Expr,
    scope: &Scope<'_>,
    locals: &BTreeSet<String>,
    with: &str,
    out: &mut Vec<Reference>,
) {
    walk_expr(e, &mut |x| {
        let (parts, function) = match x {
            Expr::Call { fcn, .. } => (ref_parts(fcn), true),
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                (ref_prefix(x), false)
            }
            _ => (None, false),
        };
        let Some(parts) = parts else {
            return;
        };
        if let Some(target) = resolve(&parts, scope, locals, function) {
            let r = Reference {
                target,
                function,
                with: with.to_owned(),
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    });
}

/// The constant prefix of a ref (`a.b[x].c` → `["a", "b"]`).
fn ref_prefix(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::RefBrack { refr, .. } => ref_parts(e).or_else(|| ref_prefix(refr)),
        _ => ref_parts(e),
    }
}

/// The rule (or function) path a ref names, if any.
fn resolve(
    parts: &[String],
    scope: &Scope<'_>,
    locals: &BTreeSet<String>,
    function: bool,
) -> Option<String> {
    let first = parts.first()?;
    let full: Vec<String> = if first == "data" {
        parts.to_vec()
    } else if let Some(path) = scope.imports.get(first) {
        path.iter().chain(parts.iter().skip(1)).cloned().collect()
    } else if !locals.contains(first) && scope.rule_names.contains(first) {
        scope.package.iter().chain(parts.iter()).cloned().collect()
    } else {
        return None;
    };
    let known = if function {
        scope.functions
    } else {
        scope.rules
    };
    (2..=full.len())
        .rev()
        .map(|n| full.get(..n).map(|p| p.join(".")).unwrap_or_default())
        .find(|p| known.contains(p))
}
