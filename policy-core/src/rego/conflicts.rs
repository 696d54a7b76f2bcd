//! Conflict checks for the compiled evaluator (regorus' RVM).
//!
//! OPA (and regorus' interpreter) raise an evaluation error when a complete
//! rule, a function or a key of an object rule takes two different values
//! for one input. The RVM does not: it takes one of the values or leaves the
//! rule undefined. This pass rewrites, for RVM compilation only, every rule
//! that *can* take several values so that its values are first collected
//! into a set, and a set of more than one value stops the program with a
//! fatal error. The review then reruns the template on the interpreter
//! (`gatekeeper/rvm.rs`), which reports the conflict with its own text, so
//! the error reads exactly as it does without the RVM.
//!
//! A group of definitions (one package, one name) is left as written when
//! it provably has one value: a single definition whose value does not
//! depend on iteration in its body, or definitions that all give the same
//! constant (`p { A }`, `p { B }`). Otherwise:
//!
//! * complete rule `p = V { B }` (each definition) becomes the set rule
//!   `__regard_vals_p[V] { B }`, and `p = __regard_one(__regard_vals_p)`
//!   is appended;
//! * object rule `p[K] = V { B }` becomes `__regard_pairs_p[[K, V]] { B }`,
//!   and `p[k]` is appended, taking for each key the one value its pairs
//!   give;
//! * function definition `f(A) = V { B }` number `i` becomes
//!   `__regard_def{i}_f(A) = {V | B}`, and `f` is appended, calling every
//!   definition and taking the one value of their union;
//! * object comprehension `{K: V | B}` (`V` not a constant) becomes
//!   `__regard_object({[K, V] | B})`, which stops when two pairs share a key.
//!
//! Definitions of one function or complete rule also count as one value
//! when no two can hold for the same input: different constant arguments
//! (`mem_multiple("Ki")`, `mem_multiple("Mi")`), or one body stating what
//! the other negates about the same arguments (`is_number(x)`,
//! `not is_number(x)`).
//!
//! `__regard_one(s)` is the element of a one-element set, undefined for the
//! empty set, and a fatal error otherwise. regorus' RVM turns every error
//! inside a rule body into "undefined" except resource-limit errors, so the
//! check compiles a pattern over regorus' regex size limit: the one error a
//! Rego expression can raise that reaches the caller.
//!
//! Comprehensions generated here start with a one-element loop
//! (`_ = [0][_]`): in a loop-free comprehension body the RVM reports a failed
//! condition to the enclosing rule's loop instead of the comprehension.
//!
//! What the pass cannot rewrite (an `else` chain whose values can differ,
//! iteration written in a rule's value or key itself) is
//! reported, and the template stays on the interpreter. Edits replace text
//! within lines and append rules after the last line, so line numbers stay
//! the author's.

use std::collections::{BTreeMap, BTreeSet};

use regorus::Value;
use regorus::unstable::{
    AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module, Query, Ref, Rule, RuleBody, RuleHead,
};

use super::ast::{AstVisitor, declaration, package_components, rule_name, walk_expr};
use super::text::{Edit, apply_edits};

/// A pattern regorus refuses to compile (its compiled size exceeds
/// regorus' 100 KiB regex limit), so `regex.is_valid` raises the fatal
/// `RegexSizeLimitExceeded`.
const OVERSIZED_REGEX: &str = "((((a{64}){64}){64}){64})";

/// Why a template cannot be given conflict checks.
pub(crate) type Unsupported = String;

/// What kind of rule a group of definitions is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Complete,
    Object,
    Function(usize),
}

/// One definition of a rule.
struct Def<'a> {
    module: usize,
    src: &'a str,
    /// Names that are not local variables in the module: its package's
    /// rules and its imports.
    globals: &'a BTreeSet<String>,
    rule: &'a Rule,
    kind: Kind,
}

/// Rewrites the modules of one policy set (`(source, parsed module)`) so
/// that the RVM stops where a rule or an object comprehension conflicts.
/// Returns the new sources in order, or why a rule cannot be rewritten.
pub(crate) fn rewrite(
    modules: &[(&str, &Module)],
    rego_v1: bool,
) -> Result<Vec<String>, Unsupported> {
    // Object comprehensions first: the rule rewrite copies bodies, and
    // edits inside a copied range would be lost.
    let mut texts = Vec::with_capacity(modules.len());
    let mut changed = false;
    for (src, m) in modules {
        let edits = object_comprehensions(src, m);
        if edits.is_empty() {
            texts.push((*src).to_owned());
        } else {
            changed = true;
            let mut out = apply_edits(src, edits);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&object_helper(rego_v1));
            texts.push(out);
        }
    }
    if !changed {
        return rules(modules, rego_v1);
    }
    let mut parsed = Vec::with_capacity(texts.len());
    for t in &texts {
        parsed.push(
            super::parse_module("policy.rego", t, rego_v1)
                .map_err(|e| format!("object comprehension checks: {e}"))?,
        );
    }
    let pairs: Vec<(&str, &Module)> = texts.iter().map(String::as_str).zip(&parsed).collect();
    rules(&pairs, rego_v1)
}

/// The edits turning `{K: V | B}` into `__regard_object({[K, V] | B})`
/// where `V` is not a constant (with a constant value, keys cannot
/// conflict). Only delimiters change, so nested comprehensions compose.
fn object_comprehensions(src: &str, m: &Module) -> Vec<Edit> {
    struct Finder<'s> {
        src: &'s str,
        edits: Vec<Edit>,
    }
    impl AstVisitor for Finder<'_> {
        fn expr(&mut self, e: &Expr) -> bool {
            let Expr::ObjectCompr {
                span,
                key,
                value,
                query,
                ..
            } = e
            else {
                return true;
            };
            if is_constant(value) {
                return true;
            }
            let (start, end) = (span.start as usize, span.end as usize);
            let colon = self
                .src
                .get(key.span().end as usize..value.span().start as usize)
                .and_then(|t| t.find(':'))
                .map(|i| i.saturating_add(key.span().end as usize));
            let bar = self
                .src
                // The query's span starts at the bar.
                .get(value.span().end as usize..(query.span.start as usize).saturating_add(1))
                .and_then(|t| t.rfind('|'))
                .map(|i| i.saturating_add(value.span().end as usize));
            let (Some(colon), Some(bar)) = (colon, bar) else {
                return true;
            };
            let (Some("{"), Some("}")) = (
                self.src.get(start..start.saturating_add(1)),
                self.src.get(end.saturating_sub(1)..end),
            ) else {
                return true;
            };
            self.edits.extend([
                Edit::replace(start, start.saturating_add(1), "__regard_object({["),
                Edit::replace(colon, colon.saturating_add(1), ","),
                Edit::replace(bar, bar, "] "),
                Edit::replace(end.saturating_sub(1), end, "})"),
            ]);
            true
        }
    }
    let mut f = Finder {
        src,
        edits: Vec::new(),
    };
    super::walk_module(m, &mut f);
    f.edits
}

/// `__regard_object`: the object of a set of `[key, value]` pairs, and a
/// fatal error when two pairs share a key.
fn object_helper(rego_v1: bool) -> String {
    let (op, kw) = if rego_v1 { (":=", " if") } else { ("=", "") };
    format!(
        "__regard_object(s) {op} o{kw} {{ o := {{k: v | _ = [0][_]; [k, v] := s[_]}}; count(o) == count(s) }}\n\
         __regard_object(s) {op} o{kw} {{ o := {{k: v | _ = [0][_]; [k, v] := s[_]}}; count(o) != count(s); o = regex.is_valid(\"{OVERSIZED_REGEX}\") }}\n"
    )
}

/// The rule stage of [`rewrite`].
fn rules(modules: &[(&str, &Module)], rego_v1: bool) -> Result<Vec<String>, Unsupported> {
    let mut rules: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for (_, m) in modules {
        rules
            .entry(package_components(m))
            .or_default()
            .extend(m.policy.iter().filter_map(|r| rule_name(r)));
    }
    let globals: Vec<BTreeSet<String>> = modules
        .iter()
        .map(|(_, m)| {
            let mut names = rules
                .get(&package_components(m))
                .cloned()
                .unwrap_or_default();
            for import in &m.imports {
                let name = match &import.r#as {
                    Some(alias) => alias.text().to_owned(),
                    None => import
                        .refr
                        .span()
                        .text()
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                };
                names.insert(name);
            }
            names
        })
        .collect();
    // Definitions grouped by package and name, in source order.
    let mut groups: BTreeMap<(Vec<String>, String), Vec<Def<'_>>> = BTreeMap::new();
    for (i, ((src, m), globals)) in modules.iter().zip(&globals).enumerate() {
        let pkg = package_components(m);
        for rule in &m.policy {
            let Some((name, kind)) = classify(rule) else {
                continue;
            };
            groups.entry((pkg.clone(), name)).or_default().push(Def {
                module: i,
                src,
                globals,
                rule,
                kind,
            });
        }
    }
    let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); modules.len()];
    let mut appended: Vec<String> = vec![String::new(); modules.len()];
    for ((_, name), defs) in &groups {
        let kinds: BTreeSet<_> = defs.iter().map(|d| d.kind).collect();
        let [kind] = kinds.into_iter().collect::<Vec<_>>()[..] else {
            // Mixed heads are a compile error regorus reports itself.
            continue;
        };
        if single_valued(defs) {
            continue;
        }
        let Some(first) = defs.first() else {
            continue;
        };
        let isolated = isolated(defs);
        let mut collected = Vec::new();
        for ((n, def), isolated) in defs.iter().enumerate().zip(isolated) {
            let Some(list) = edits.get_mut(def.module) else {
                continue;
            };
            if isolated {
                continue;
            }
            list.extend(rewrite_def(def, name, n, rego_v1)?);
            collected.push((n, always_defined(def)));
        }
        if let Some(text) = appended.get_mut(first.module) {
            text.push_str(&wrapper(name, kind, &collected, rego_v1));
        }
    }
    Ok(modules
        .iter()
        .zip(edits.into_iter().zip(appended))
        .map(|((src, _), (edits, tail))| {
            if edits.is_empty() {
                return (*src).to_owned();
            }
            let mut out = apply_edits(src, edits);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&tail);
            out.push_str(&one_helper(rego_v1));
            out
        })
        .collect())
}

/// The name and kind of a rule that could conflict; `None` for set rules,
/// defaults and heads the RVM path refuses anyway.
fn classify(rule: &Rule) -> Option<(String, Kind)> {
    let Rule::Spec { head, .. } = rule else {
        return None;
    };
    if rule_name(rule).is_some_and(|n| n.starts_with("__regard_")) {
        // This pass's own helpers.
        return None;
    }
    match head {
        RuleHead::Compr { refr, assign, .. } => match refr.as_ref() {
            Expr::Var { .. } => Some((var_text(refr)?, Kind::Complete)),
            Expr::RefBrack { refr, .. } if assign.is_some() => match refr.as_ref() {
                Expr::Var { .. } => Some((var_text(refr)?, Kind::Object)),
                _ => None,
            },
            _ => None,
        },
        RuleHead::Func { refr, args, .. } => match refr.as_ref() {
            Expr::Var { .. } => Some((var_text(refr)?, Kind::Function(args.len()))),
            _ => None,
        },
        RuleHead::Set { .. } => None,
    }
}

fn var_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Var { span, .. } => Some(span.text().to_owned()),
        _ => None,
    }
}

/// The value expression of a head (`None`: the value is `true`).
fn head_value(rule: &Rule) -> Option<&Ref<Expr>> {
    match rule {
        Rule::Spec {
            head: RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. },
            ..
        } => assign.as_ref().map(|a| &a.value),
        _ => None,
    }
}

/// The source text of a head's value (`None`: the value is `true`).
///
/// regorus' spans of string literals and bracketed references stop before
/// the closing quote or bracket, so the text runs from the assignment to
/// the body, or for a rule without a body, to the head's end and the
/// closing characters right after it.
fn value_text<'s>(src: &'s str, rule: &Rule) -> Option<&'s str> {
    let Rule::Spec { head, bodies, .. } = rule else {
        return None;
    };
    let (RuleHead::Compr { span, assign, .. } | RuleHead::Func { span, assign, .. }) = head else {
        return None;
    };
    let a = assign.as_ref()?;
    let end = match bodies.first() {
        Some(b) => b.span.start as usize,
        None => closing_end(src, span.end as usize),
    };
    let text = src.get(a.span.start as usize..end)?.trim_start();
    let text = text
        .strip_prefix(":=")
        .or_else(|| text.strip_prefix('='))
        .unwrap_or(text);
    Some(text.trim())
}

/// `end` moved past the quotes and brackets that close an expression
/// there (regorus' spans leave them out).
fn closing_end(src: &str, end: usize) -> usize {
    let tail = src.get(end..).unwrap_or_default();
    let closing = tail
        .chars()
        .take_while(|c| matches!(c, '"' | '`' | ']' | ')'))
        .map(char::len_utf8)
        .sum::<usize>();
    end.saturating_add(closing)
}

/// The source text of an else clause's value.
fn else_value_text<'s>(src: &'s str, b: &RuleBody) -> Option<&'s str> {
    let a = b.assign.as_ref()?;
    let text = src.get(a.span.start as usize..b.query.span.start as usize)?;
    let text = text.trim_start();
    let text = text
        .strip_prefix(":=")
        .or_else(|| text.strip_prefix('='))
        .unwrap_or(text);
    Some(text.trim())
}

/// Whether a group of definitions can only ever have one value.
fn single_valued(defs: &[Def<'_>]) -> bool {
    // Every clause gives one constant, the same for all: no conflict.
    let mut constants = BTreeSet::new();
    let mut all_constant = true;
    for d in defs {
        let Rule::Spec { bodies, .. } = d.rule else {
            continue;
        };
        let values = std::iter::once((head_value(d.rule), value_text(d.src, d.rule))).chain(
            bodies.iter().filter(|b| b.is_else).map(|b| {
                (
                    b.assign.as_ref().map(|a| &a.value),
                    else_value_text(d.src, b),
                )
            }),
        );
        for v in values {
            match v {
                (None, _) => {
                    constants.insert("true".to_owned());
                }
                (Some(e), Some(text)) if is_constant(e) => {
                    constants.insert(text.to_owned());
                }
                _ => all_constant = false,
            }
        }
    }
    if all_constant && constants.len() <= 1 {
        return true;
    }
    // Otherwise each definition must have one value, and no two may hold
    // for the same input.
    if defs.iter().any(may_vary) {
        return false;
    }
    defs.iter().enumerate().all(|(i, a)| {
        defs.iter()
            .skip(i.saturating_add(1))
            .all(|b| a.kind != Kind::Object && compatible(a, b))
    })
}

/// Which definitions of a group that may take several values can stay as
/// written: each has one value and cannot disagree with any other
/// definition, so when it holds, the others are undefined or agree with it
/// (`get_suffix(m) = "" { not is_string(m) }` beside definitions that need
/// `is_string(m)`). Only the others are collected and checked; keys of
/// object rules always are.
fn isolated(defs: &[Def<'_>]) -> Vec<bool> {
    defs.iter()
        .enumerate()
        .map(|(i, d)| {
            d.kind != Kind::Object
                && !may_vary(d)
                && defs
                    .iter()
                    .enumerate()
                    .all(|(j, other)| i == j || compatible(d, other))
        })
        .collect()
}

/// Whether two definitions never give different values for one input:
/// they cannot both hold ([`exclusive`]), or each gives the same constant.
fn compatible(a: &Def<'_>, b: &Def<'_>) -> bool {
    let same_constant = match (constant_value(a), constant_value(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    same_constant || exclusive(a, b)
}

/// The value of a one-body definition when it is a scalar constant written
/// in the head (`f(x) = "" { … }`) or given to the head's variable by the
/// body (`f(x) = s { …; s := "" }`), as [`scalar_key`] gives it.
fn constant_value(def: &Def<'_>) -> Option<(u8, String)> {
    let Rule::Spec { bodies, .. } = def.rule else {
        return None;
    };
    if bodies.len() > 1 {
        return None;
    }
    let value = head_value(def.rule)?;
    if let Some(key) = scalar_key(value) {
        return Some(key);
    }
    let Expr::Var { span: name, .. } = value.as_ref() else {
        return None;
    };
    let mut found = None;
    for s in &bodies.first()?.query.stmts {
        let Literal::Expr { expr, .. } = &s.literal else {
            continue;
        };
        let Expr::AssignExpr { lhs, rhs, .. } = expr.as_ref() else {
            continue;
        };
        if mentions(lhs).contains(name.text()) {
            // Bound twice, or by a pattern: not one constant.
            if found.is_some() || !matches!(lhs.as_ref(), Expr::Var { .. }) {
                return None;
            }
            found = Some(scalar_key(rhs)?);
        }
    }
    found
}

/// A scalar constant by kind and value: strings by their value (a raw
/// string's `\n` and a string's `"\n"` have the same source text), numbers
/// by their text (`1` and `1.0` then differ, which only proves less).
fn scalar_key(e: &Expr) -> Option<(u8, String)> {
    match e {
        Expr::String { value, .. } | Expr::RawString { value, .. } => Some((0, value.to_string())),
        Expr::Number { span, .. } => Some((1, span.text().to_owned())),
        Expr::Bool { value, .. } => Some((2, value.to_string())),
        Expr::Null { .. } => Some((3, String::new())),
        _ => None,
    }
}

fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether two definitions can never both hold for one input: their
/// arguments are different constants at one position (`f("Ki")`,
/// `f("Mi")`), or one body states what the other negates (`is_number(x)`,
/// `not is_number(x)`) about the same arguments.
fn exclusive(a: &Def<'_>, b: &Def<'_>) -> bool {
    let (
        Rule::Spec {
            head: ha,
            bodies: ba,
            ..
        },
        Rule::Spec {
            head: hb,
            bodies: bb,
            ..
        },
    ) = (a.rule, b.rule)
    else {
        return false;
    };
    if ba.len() > 1 || bb.len() > 1 {
        return false;
    }
    let (args_a, args_b): (&[Ref<Expr>], &[Ref<Expr>]) = match (ha, hb) {
        (RuleHead::Func { args: x, .. }, RuleHead::Func { args: y, .. }) => (x, y),
        _ => (&[], &[]),
    };
    let differs = args_a
        .iter()
        .zip(args_b)
        .any(|(x, y)| matches!((constant_key(x), constant_key(y)), (Some(x), Some(y)) if x != y));
    if differs {
        return true;
    }
    // Statements about the arguments mean the same in both only when the
    // arguments are written alike.
    let texts = |args: &[Ref<Expr>]| -> Vec<String> {
        args.iter().map(|e| e.span().text().to_owned()).collect()
    };
    if texts(args_a) != texts(args_b) {
        return false;
    }
    let (Some(qa), Some(qb)) = (ba.first(), bb.first()) else {
        return false;
    };
    let scope_a = Scope::new(a, args_a, &qa.query);
    let scope_b = Scope::new(b, args_b, &qb.query);
    let (pos_a, neg_a) = conditions(&scope_a, &qa.query);
    let (pos_b, neg_b) = conditions(&scope_b, &qb.query);
    if !pos_a.is_disjoint(&neg_b) || !neg_a.is_disjoint(&pos_b) {
        return true;
    }
    // `x == "a"` against `x == "b"` or `x != "a"` (`params.rule = "a"` too).
    let (eq_a, ne_a, ranges_a) = comparisons(&scope_a, &qa.query);
    let (eq_b, ne_b, ranges_b) = comparisons(&scope_b, &qb.query);
    let clash = |eq: &BTreeMap<String, Value>,
                 other_eq: &BTreeMap<String, Value>,
                 other_ne: &BTreeSet<(String, Value)>| {
        eq.iter().any(|(l, c)| {
            other_eq.get(l).is_some_and(|d| d != c) || other_ne.contains(&(l.clone(), c.clone()))
        })
    };
    if clash(&eq_a, &eq_b, &ne_b) || clash(&eq_b, &eq_a, &ne_a) {
        return true;
    }
    // `count(m) > 1` against `count(m) == 1`: no number satisfies both.
    ranges_a.iter().any(|(l, r)| {
        ranges_b
            .get(l)
            .is_some_and(|other| r.intersect(other).is_empty())
    })
}

/// What a body's statements may mention, and the variables it binds once to
/// an expression over those (`suffix := substring(m, 0, 1)`), read as that
/// expression: `mem_multiple(suffix)` in one definition and
/// `not mem_multiple(substring(m, 0, 1))` in another state and negate the
/// same thing.
struct Scope<'d> {
    src: &'d str,
    allowed: BTreeSet<String>,
    bound: BTreeMap<String, String>,
}

impl<'d> Scope<'d> {
    fn new(def: &Def<'d>, args: &[Ref<Expr>], query: &Query) -> Scope<'d> {
        let mut allowed: BTreeSet<String> = def.globals.clone();
        allowed.insert("input".to_owned());
        allowed.insert("data".to_owned());
        for a in args {
            allowed.extend(mentions(a));
        }
        let mut scope = Scope {
            src: def.src,
            allowed,
            bound: BTreeMap::new(),
        };
        let mut assigned: BTreeMap<String, usize> = BTreeMap::new();
        for s in &query.stmts {
            if let Literal::Expr { expr, .. } = &s.literal
                && let Expr::AssignExpr { lhs, .. } = expr.as_ref()
            {
                for v in mentions(lhs) {
                    *assigned.entry(v).or_default() += 1;
                }
            }
        }
        for s in &query.stmts {
            if !s.with_mods.is_empty() {
                continue;
            }
            let Some((_, lhs, rhs)) = declaration(s) else {
                continue;
            };
            let Expr::Var { span, .. } = lhs else {
                continue;
            };
            let name = span.text();
            // Only an operand that binds tighter than any operator can
            // stand in for the variable's text unchanged.
            let atomic = matches!(
                rhs,
                Expr::Call { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } | Expr::Var { .. }
            );
            if name == "_"
                || !atomic
                || assigned.get(name) != Some(&1)
                || scope.allowed.contains(name)
                || scope.bound.contains_key(name)
            {
                continue;
            }
            let end = closing_end(def.src, s.span.end as usize);
            if let Some(text) = scope.text(rhs, end) {
                scope.bound.insert(name.to_owned(), text);
            }
        }
        scope
    }

    /// The text of `e` (ending at `end`, past the closing characters its
    /// span leaves out) with bound variables replaced by their expressions,
    /// whitespace-normalised; `None` when `e` mentions anything else.
    fn text(&self, e: &Expr, end: usize) -> Option<String> {
        struct Vars(Vec<(usize, usize, String)>, bool);
        impl AstVisitor for Vars {
            fn expr(&mut self, e: &Expr) -> bool {
                match e {
                    // A comprehension may declare a local of a bound name.
                    Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                        self.1 = true;
                    }
                    Expr::Var { span, .. } => {
                        self.0.push((
                            span.start as usize,
                            span.end as usize,
                            span.text().to_owned(),
                        ));
                    }
                    // A function's name is no variable.
                    Expr::Call { params, .. } => {
                        for p in params {
                            walk_expr(p, self);
                        }
                        return false;
                    }
                    _ => {}
                }
                true
            }
        }
        let vars = mentions(e);
        if !vars
            .iter()
            .all(|v| self.allowed.contains(v) || self.bound.contains_key(v))
        {
            return None;
        }
        let start = e.span().start as usize;
        let mut found = Vars(Vec::new(), false);
        walk_expr(e, &mut found);
        if found.1 && vars.iter().any(|v| self.bound.contains_key(v)) {
            return None;
        }
        found.0.sort();
        let mut out = String::new();
        let mut at = start;
        for (s, e, name) in found.0 {
            let Some(with) = self.bound.get(&name) else {
                continue;
            };
            if s < at || e > end {
                return None;
            }
            out.push_str(self.src.get(at..s)?);
            out.push_str(with);
            at = e;
        }
        out.push_str(self.src.get(at..end)?);
        Some(normalised(&out))
    }
}

/// The numbers a body allows for one expression, from its comparisons with
/// integer constants: bounds, each inclusive or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    low: Option<(i64, bool)>,
    high: Option<(i64, bool)>,
}

impl Range {
    const ANY: Range = Range {
        low: None,
        high: None,
    };

    /// The numbers `x op n` allows (`!=` gives no range).
    fn of(op: &BoolOp, n: i64) -> Option<Range> {
        let r = Range::ANY;
        Some(match op {
            BoolOp::Eq => Range {
                low: Some((n, true)),
                high: Some((n, true)),
            },
            BoolOp::Lt => Range {
                high: Some((n, false)),
                ..r
            },
            BoolOp::Le => Range {
                high: Some((n, true)),
                ..r
            },
            BoolOp::Gt => Range {
                low: Some((n, false)),
                ..r
            },
            BoolOp::Ge => Range {
                low: Some((n, true)),
                ..r
            },
            BoolOp::Ne => return None,
        })
    }

    fn intersect(&self, other: &Range) -> Range {
        // The larger low bound (exclusive first on a tie), the smaller high one.
        let low = match (self.low, other.low) {
            (Some(a), Some(b)) => Some(if a.0 != b.0 {
                if a.0 > b.0 { a } else { b }
            } else {
                (a.0, a.1 && b.1)
            }),
            (a, b) => a.or(b),
        };
        let high = match (self.high, other.high) {
            (Some(a), Some(b)) => Some(if a.0 != b.0 {
                if a.0 < b.0 { a } else { b }
            } else {
                (a.0, a.1 && b.1)
            }),
            (a, b) => a.or(b),
        };
        Range { low, high }
    }

    /// Whether no number lies in the range (numbers are not only integers:
    /// `> 1` and `< 2` overlap).
    fn is_empty(&self) -> bool {
        match (self.low, self.high) {
            (Some((l, l_in)), Some((h, h_in))) => l > h || (l == h && !(l_in && h_in)),
            _ => false,
        }
    }
}

/// A body's comparisons of an expression over arguments and package names
/// with a constant: with a string, boolean or null as (`l == c` and
/// `l = c` as `l` → `c`, `l != c` as pairs); with an integer as the
/// [`Range`] they leave `l` (`count(x) > 1`). Other numbers are left out:
/// `1` and `1.0` are equal but written differently.
type Comparisons = (
    BTreeMap<String, Value>,
    BTreeSet<(String, Value)>,
    BTreeMap<String, Range>,
);

fn comparisons(scope: &Scope<'_>, query: &Query) -> Comparisons {
    let constant = |e: &Expr| match e {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.clone()),
        _ => None,
    };
    let integer = |e: &Expr| match e {
        Expr::Number { span, .. } => span.text().parse::<i64>().ok(),
        _ => None,
    };
    let mut eq = BTreeMap::new();
    let mut ne = BTreeSet::new();
    let mut ranges: BTreeMap<String, Range> = BTreeMap::new();
    for s in &query.stmts {
        let Literal::Expr { expr, .. } = &s.literal else {
            continue;
        };
        if !s.with_mods.is_empty() {
            continue;
        }
        let (lhs, rhs, op) = match expr.as_ref() {
            Expr::BoolExpr { op, lhs, rhs, .. } => (lhs, rhs, op.clone()),
            Expr::AssignExpr {
                op: AssignOp::Eq,
                lhs,
                rhs,
                ..
            } => (lhs, rhs, BoolOp::Eq),
            _ => continue,
        };
        if let (Some(n), None) | (None, Some(n)) = (integer(lhs), integer(rhs)) {
            // `n < x` reads as `x > n`.
            let (side, op) = if integer(lhs).is_some() {
                let flipped = match op {
                    BoolOp::Lt => BoolOp::Gt,
                    BoolOp::Le => BoolOp::Ge,
                    BoolOp::Gt => BoolOp::Lt,
                    BoolOp::Ge => BoolOp::Le,
                    other => other,
                };
                (rhs, flipped)
            } else {
                (lhs, op)
            };
            let end = closing_end(scope.src, side.span().end as usize);
            if let (Some(range), Some(text)) = (Range::of(&op, n), scope.text(side, end)) {
                let r = ranges.entry(text).or_insert(Range::ANY);
                *r = r.intersect(&range);
            }
            continue;
        }
        let equal = match op {
            BoolOp::Eq => true,
            BoolOp::Ne => false,
            _ => continue,
        };
        let (side, value) = match (constant(lhs), constant(rhs)) {
            (None, Some(v)) => (lhs, v),
            (Some(v), None) => (rhs, v),
            _ => continue,
        };
        let end = closing_end(scope.src, side.span().end as usize);
        let Some(text) = scope.text(side, end) else {
            continue;
        };
        if equal {
            // Two different constants for one expression: the body never holds.
            eq.insert(text, value);
        } else {
            ne.insert((text, value));
        }
    }
    (eq, ne, ranges)
}

/// A constant argument as (kind, text): `"1"` and `1` differ.
fn constant_key(e: &Expr) -> Option<(u8, String)> {
    let kind = match e {
        Expr::String { .. } | Expr::RawString { .. } => 0,
        Expr::Number { .. } => 1,
        Expr::Bool { .. } => 2,
        Expr::Null { .. } => 3,
        _ => return None,
    };
    Some((kind, e.span().text().to_owned()))
}

/// A body's statements that mention only arguments, package names and
/// variables bound to expressions over them (read as those expressions), as
/// whitespace-normalised texts: (stated, negated).
fn conditions(scope: &Scope<'_>, query: &Query) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut pos = BTreeSet::new();
    let mut neg = BTreeSet::new();
    for s in &query.stmts {
        if !s.with_mods.is_empty() {
            continue;
        }
        let (expr, set) = match &s.literal {
            Literal::Expr { expr, .. } => (expr, &mut pos),
            Literal::NotExpr { expr, .. } => (expr, &mut neg),
            _ => continue,
        };
        if matches!(expr.as_ref(), Expr::AssignExpr { .. }) {
            continue;
        }
        let end = closing_end(scope.src, s.span.end as usize);
        if let Some(text) = scope.text(expr, end) {
            set.insert(text);
        }
    }
    (pos, neg)
}

/// Whether one definition's value (or key) may take several values: some
/// clause's value depends on iteration in its body.
fn may_vary(def: &Def<'_>) -> bool {
    let Rule::Spec { head, bodies, .. } = def.rule else {
        return false;
    };
    type Parts<'r> = (
        &'r [Ref<Expr>],
        Option<&'r Ref<Expr>>,
        Option<&'r Ref<Expr>>,
    );
    let (args, key, value): Parts<'_> = match head {
        RuleHead::Func { args, assign, .. } => (args, None, assign.as_ref().map(|a| &a.value)),
        RuleHead::Compr { refr, assign, .. } => {
            let key = match refr.as_ref() {
                Expr::RefBrack { index, .. } => Some(index),
                _ => None,
            };
            (&[], key, assign.as_ref().map(|a| &a.value))
        }
        RuleHead::Set { .. } => return false,
    };
    if bodies.is_empty() {
        let taint = Taint::of_head(def.globals, args);
        return value.is_some_and(|v| taint.varies(v)) || key.is_some_and(|k| taint.varies(k));
    }
    bodies.iter().any(|b| {
        let value = if b.is_else {
            b.assign.as_ref().map(|a| &a.value)
        } else {
            value
        };
        let taint = Taint::of_body(def.globals, args, &b.query);
        value.is_some_and(|v| taint.varies(v)) || key.is_some_and(|k| taint.varies(k))
    })
}

/// Literal scalars and collections of them.
fn is_constant(e: &Expr) -> bool {
    match e {
        Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. } => true,
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().all(|i| is_constant(i)),
        Expr::Object { fields, .. } => fields
            .iter()
            .all(|(_, k, v)| is_constant(k) && is_constant(v)),
        _ => false,
    }
}

/// The variables of one body whose values may vary between its solutions.
#[derive(Default)]
struct Taint {
    /// Variables bound once (function arguments, `x := e`, `x = e`).
    bound: BTreeSet<String>,
    /// Variables that may take several values.
    varying: BTreeSet<String>,
}

impl Taint {
    /// Before any body: the package's names and the function's arguments
    /// are bound.
    fn of_head(globals: &BTreeSet<String>, args: &[Ref<Expr>]) -> Taint {
        let mut t = Taint {
            bound: globals.clone(),
            varying: BTreeSet::new(),
        };
        for a in args {
            t.bound.extend(mentions(a));
        }
        t
    }

    fn of_body(globals: &BTreeSet<String>, args: &[Ref<Expr>], query: &Query) -> Taint {
        let mut t = Taint::of_head(globals, args);
        for s in &query.stmts {
            if let Literal::Expr { expr, .. } = &s.literal
                && let Expr::AssignExpr { lhs, .. } = expr.as_ref()
                && let Expr::Var { span, .. } = lhs.as_ref()
                && span.text() != "_"
            {
                t.bound.insert(span.text().to_owned());
            }
        }
        // Statements that iterate, or read a varying variable, make every
        // variable they mention vary; repeat until nothing changes.
        loop {
            let before = t.varying.len();
            for s in &query.stmts {
                let (iterates, vars) = match &s.literal {
                    Literal::Expr { expr, .. } => (t.iterates(expr), mentions(expr)),
                    Literal::SomeIn {
                        key,
                        value,
                        collection,
                        ..
                    } => {
                        let mut vars = mentions(value);
                        if let Some(k) = key {
                            vars.extend(mentions(k));
                        }
                        vars.extend(mentions(collection));
                        (true, vars)
                    }
                    // `not` and `every` bind nothing outside; `some x`
                    // only declares.
                    _ => continue,
                };
                if iterates || vars.iter().any(|v| t.varying.contains(v)) {
                    t.varying.extend(vars);
                }
            }
            if t.varying.len() == before {
                break;
            }
        }
        t
    }

    /// Whether an expression iterates or reads a varying variable.
    fn varies(&self, e: &Expr) -> bool {
        self.iterates(e) || mentions(e).iter().any(|v| self.varying.contains(v))
    }

    /// Whether an expression iterates outside comprehensions: `x[_]`,
    /// `x[i]` with `i` not bound once, `walk`.
    fn iterates(&self, e: &Expr) -> bool {
        struct Finder<'t>(&'t Taint, bool);
        impl AstVisitor for Finder<'_> {
            fn expr(&mut self, e: &Expr) -> bool {
                match e {
                    Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => {
                        return false;
                    }
                    Expr::RefBrack { index, .. } => {
                        if let Expr::Var { span, .. } = index.as_ref()
                            && (span.text() == "_" || !self.0.bound.contains(span.text()))
                        {
                            self.1 = true;
                        }
                    }
                    Expr::Call { fcn, .. } if fcn.span().text() == "walk" => self.1 = true,
                    _ => {}
                }
                true
            }
        }
        let mut f = Finder(self, false);
        walk_expr(e, &mut f);
        f.1
    }
}

/// Every variable an expression mentions, comprehensions included
/// (function names are not variables).
fn mentions(e: &Expr) -> BTreeSet<String> {
    struct Vars(BTreeSet<String>);
    impl AstVisitor for Vars {
        fn expr(&mut self, e: &Expr) -> bool {
            match e {
                Expr::Var { span, .. } => {
                    self.0.insert(span.text().to_owned());
                }
                Expr::Call { params, .. } => {
                    for p in params {
                        walk_expr(p, self);
                    }
                    return false;
                }
                _ => {}
            }
            true
        }
        fn stmt(&mut self, s: &LiteralStmt) {
            if let Literal::SomeVars { vars, .. } = &s.literal {
                self.0.extend(vars.iter().map(|v| v.text().to_owned()));
            }
        }
    }
    let mut v = Vars(BTreeSet::new());
    walk_expr(e, &mut v);
    v.0.remove("_");
    v.0
}

/// `_` in a name is kept; other characters a rule name cannot have do not occur.
fn vals(name: &str) -> String {
    format!("__regard_vals_{name}")
}

fn pairs(name: &str) -> String {
    format!("__regard_pairs_{name}")
}

fn def_fn(name: &str, n: usize) -> String {
    format!("__regard_def{n}_{name}")
}

/// A set rule head: `s[e]` (v0) or `s contains e` (v1).
fn set_head(set: &str, elem: &str, rego_v1: bool) -> String {
    if rego_v1 {
        format!("{set} contains {elem}")
    } else {
        format!("{set}[{elem}]")
    }
}

/// The edit turning one definition into its contribution to the group's set.
fn rewrite_def(
    def: &Def<'_>,
    name: &str,
    n: usize,
    rego_v1: bool,
) -> Result<Vec<Edit>, Unsupported> {
    let Rule::Spec { head, bodies, span } = def.rule else {
        return Err(format!("rule `{name}`: unexpected default rule"));
    };
    let line = span.line;
    if bodies.iter().any(|b| b.is_else) {
        return Err(format!(
            "line {line}: the values of `{name}`'s else chain may conflict"
        ));
    }
    if bodies.len() > 1 {
        return Err(format!("line {line}: `{name}` has several bodies"));
    }
    let value = match head_value(def.rule) {
        None => "true",
        Some(_) => value_text(def.src, def.rule)
            .ok_or_else(|| format!("line {line}: the value of `{name}` has no text"))?,
    };
    // A complete or object rule's value (and key) become a set element
    // written in a rule head, where iteration would change its meaning;
    // a function's value moves into a comprehension, where it cannot.
    let args: &[Ref<Expr>] = match head {
        RuleHead::Func { args, .. } => args,
        _ => &[],
    };
    let taint = match bodies.first() {
        Some(b) => Taint::of_body(def.globals, args, &b.query),
        None => Taint::of_head(def.globals, args),
    };
    if !matches!(def.kind, Kind::Function(_))
        && head_value(def.rule).is_some_and(|v| taint.iterates(v))
    {
        return Err(format!(
            "line {line}: the value of `{name}` iterates in the rule head"
        ));
    }
    // Where the head ends: at the body, or past the closing characters
    // regorus' span leaves out. In v0 the body's `if` (`future.keywords.if`)
    // goes too: `s[v] if { … }` is an object rule with the value `true`
    // there, `s[v] { … }` the partial set the rewrite means.
    let (head_end, gap) = match (bodies.first(), head) {
        (Some(b), _) if rego_v1 => (b.span.start as usize, " "),
        (Some(b), _) => (b.query.span.start as usize, " "),
        (
            None,
            RuleHead::Compr { span, .. } | RuleHead::Func { span, .. } | RuleHead::Set { span, .. },
        ) => (closing_end(def.src, span.end as usize), ""),
    };
    match (head, def.kind) {
        (RuleHead::Compr { span, .. }, Kind::Complete) => Ok(vec![Edit::replace(
            span.start as usize,
            head_end,
            format!("{}{gap}", set_head(&vals(name), value, rego_v1)),
        )]),
        (RuleHead::Compr { span, refr, .. }, Kind::Object) => {
            let Expr::RefBrack { index, .. } = refr.as_ref() else {
                return Err(format!("line {line}: `{name}` has an unexpected key"));
            };
            if taint.iterates(index) {
                return Err(format!(
                    "line {line}: the key of `{name}` iterates in the rule head"
                ));
            }
            // The key's text: from the bracket after the name to the
            // assignment (regorus' spans leave out the closing bracket).
            let (
                Expr::RefBrack { refr: base, .. },
                RuleHead::Compr {
                    assign: Some(a), ..
                },
            ) = (refr.as_ref(), head)
            else {
                return Err(format!("line {line}: `{name}` has an unexpected key"));
            };
            let key = def
                .src
                .get(base.span().end as usize..a.span.start as usize)
                .map(str::trim)
                .and_then(|t| t.strip_prefix('['))
                .and_then(|t| t.strip_suffix(']'))
                .map(str::trim)
                .ok_or_else(|| format!("line {line}: the key of `{name}` has no text"))?;
            let pair = format!("[{key}, {value}]");
            Ok(vec![Edit::replace(
                span.start as usize,
                head_end,
                format!("{}{gap}", set_head(&pairs(name), &pair, rego_v1)),
            )])
        }
        (
            RuleHead::Func {
                span, refr, assign, ..
            },
            Kind::Function(_),
        ) => {
            // The arguments keep their text; the name and everything after
            // the closing parenthesis are replaced.
            let tail_start = assign.as_ref().map_or(span.end, |a| a.span.start);
            let (inner, end) = match bodies.first() {
                Some(b) => (body_inner(b), b.query.span.end as usize),
                None => ("true", head_end),
            };
            let op = if rego_v1 { ":=" } else { "=" };
            let kw = if rego_v1 { " if" } else { "" };
            let sep = if inner.contains('\n') { "\n" } else { " " };
            Ok(vec![
                Edit::replace(
                    refr.span().start as usize,
                    refr.span().end as usize,
                    def_fn(name, n),
                ),
                Edit::replace(
                    tail_start as usize,
                    end,
                    format!(
                        " {op} __regard_s{kw} {{ __regard_s := {{__regard_x | _ = [0][_]; {inner}{sep}; __regard_x := {value}}} }}"
                    ),
                ),
            ])
        }
        _ => Err(format!("line {line}: `{name}` has an unexpected head")),
    }
}

/// The statements of a body without its braces (v1 bodies may have none).
fn body_inner(b: &RuleBody) -> &str {
    let text = b.query.span.text();
    text.strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text)
}

/// The rule appended for a rewritten group.
///
/// `collected`: the rewritten definitions of a function, by number, each
/// with whether it is defined for every argument (see [`always_defined`]):
/// the wrapper then reads its set directly; the others are read through a
/// comprehension, which is empty when their arguments do not match.
fn wrapper(name: &str, kind: Kind, collected: &[(usize, bool)], rego_v1: bool) -> String {
    let (op, kw) = if rego_v1 { (":=", " if") } else { ("=", "") };
    match kind {
        Kind::Complete => format!(
            "{name} {op} __regard_v{kw} {{ __regard_v := __regard_one({}) }}\n",
            vals(name)
        ),
        Kind::Object => {
            let p = pairs(name);
            format!(
                "{name}[__regard_k] {op} __regard_v{kw} {{ __regard_p := {p}[_]; __regard_k := __regard_p[0]; \
                 __regard_v := __regard_one({{__regard_y | _ = [0][_]; __regard_q := {p}[_]; __regard_q[0] == __regard_k; __regard_y := __regard_q[1]}}) }}\n"
            )
        }
        Kind::Function(arity) => {
            let args: Vec<String> = (0..arity).map(|i| format!("__regard_a{i}")).collect();
            let args = args.join(", ");
            let parts: Vec<String> = collected
                .iter()
                .map(|&(n, total)| {
                    if total {
                        format!("{}({args})", def_fn(name, n))
                    } else {
                        format!(
                            "{{__regard_y | _ = [0][_]; __regard_y := {}({args})[_]}}",
                            def_fn(name, n)
                        )
                    }
                })
                .collect();
            format!(
                "{name}({args}) {op} __regard_v{kw} {{ __regard_v := __regard_one({}) }}\n",
                parts.join(" | ")
            )
        }
    }
}

/// Whether a rewritten function definition is defined whatever its
/// arguments: its parameters are distinct variables (a constant or a repeated
/// name only matches some arguments), and its rewritten body is a
/// comprehension, defined even when empty.
fn always_defined(def: &Def<'_>) -> bool {
    let Rule::Spec {
        head: RuleHead::Func { args, .. },
        ..
    } = def.rule
    else {
        return false;
    };
    let mut seen = BTreeSet::new();
    args.iter().all(|a| match a.as_ref() {
        Expr::Var { span, .. } => span.text() == "_" || seen.insert(span.text().to_owned()),
        _ => false,
    })
}

/// `__regard_one`, appended once to every rewritten module.
fn one_helper(rego_v1: bool) -> String {
    let (op, kw) = if rego_v1 { (":=", " if") } else { ("=", "") };
    format!(
        "__regard_one(s) {op} x{kw} {{ count(s) < 2; x := s[_] }}\n\
         __regard_one(s) {op} x{kw} {{ count(s) > 1; x := regex.is_valid(\"{OVERSIZED_REGEX}\") }}\n"
    )
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use super::super::{parse_module, test_engines};
    use super::{BoolOp, Range};

    /// The rewritten text of one v0 module.
    fn rewritten(src: &str) -> String {
        let m = parse_module("t.rego", src, false).unwrap();
        super::rewrite(&[(src, &m)], false).unwrap().remove(0)
    }

    /// `data.t.p` on the RVM after the rewrite (errors as `Err`).
    fn rvm(src: &str, rego_v1: bool, input: &str) -> Result<Value, String> {
        let m = parse_module("t.rego", src, rego_v1).unwrap();
        let text = super::rewrite(&[(src, &m)], rego_v1)?.remove(0);
        test_engines::rvm(&text, rego_v1, input)
    }

    fn interpreter(src: &str, rego_v1: bool, input: &str) -> Result<Value, String> {
        test_engines::interpreter(src, rego_v1, input)
    }

    const FATAL: &str = "Compiled regex exceeded size limit (102400 bytes, pc=0)";

    /// Same value on both engines, or an error on both.
    fn agree(src: &str, rego_v1: bool, input: &str) -> Result<Value, ()> {
        let i = interpreter(src, rego_v1, input);
        let r = rvm(src, rego_v1, input);
        match (&i, &r) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{src} / {input}");
                Ok(a.clone())
            }
            (Err(_), Err(e)) => {
                assert_eq!(e, FATAL, "{src} / {input}");
                Err(())
            }
            _ => panic!("{src} / {input}: interpreter {i:?}, rvm {r:?}"),
        }
    }

    fn num(n: i64) -> Result<Value, ()> {
        Ok(Value::from(n))
    }

    #[test]
    fn rules_that_cannot_conflict_are_untouched() {
        for src in [
            "package t\np = v { v := input.a }",
            "package t\np { input.xs[_] == 1 }\np { input.y }",
            "package t\np = 1 { input.xs[_] }\np = 1 { input.y }",
            "package t\nf(x) = y { y := x.a[x.i] }",
            "package t\nq[k] = true { k := input.xs[_] }",
            "package t\nq[k] = true { k := input.xs[_] }\nq[k] = true { k := input.ys[_] }",
            "package t\np = v { s := {x | x := input.xs[_]}; v := count(s) }",
            "package t\np[x] { x := input.xs[_] }",
            "package t\nf(x) = 1 { x > 1 } else = 2 { true }",
        ] {
            assert_eq!(rewritten(src), src);
        }
    }

    #[test]
    fn exclusive_definitions_are_untouched() {
        for src in [
            "package t\nm(\"Ki\") = 1024 { true }\nm(\"Mi\") = 1048576 { true }\nm(1) = 1",
            "package t\nc(o) = n { is_number(o); n := o * 1000 }\nc(o) = n { not is_number(o); n := to_number(o) }",
            "package t\nc(o) = n { is_number(o)\n  n := o }\nc(o) = 2 {\n  not is_number(o) }",
            // One expression compared with different constants, or with one
            // constant for equality and inequality.
            "package t\nf(k, c) = 1 { k == \"a\" }\nf(k, c) = c.n { k != \"a\" }",
            "package t\nf(p, c) = c.x { p.rule = \"A\" }\nf(p, c) = c.y { \"B\" = p.rule }",
            "package t\nf(p) = 1 { p[\"r\"] == true }\nf(p) = 2 { p[\"r\"] == null }",
        ] {
            assert_eq!(rewritten(src), src);
        }
        let src = "package t\nf(k, c) = 1 { k == \"a\" }\nf(k, c) = c.n { k != \"a\" }\np = f(input.k, input)";
        assert_eq!(agree(src, false, r#"{"k": "a", "n": 2}"#), num(1));
        assert_eq!(agree(src, false, r#"{"k": "b", "n": 2}"#), num(2));
        // Conditions that are not each other's negation, or that read body
        // variables, or arguments written differently, prove nothing.
        for src in [
            "package t\nf(x) = 1 { endswith(x, \"m\") }\nf(x) = 2 { not endswith(x, \"n\") }",
            "package t\nf(x) = 1 { x[\"a\"] }\nf(x) = 2 { not x[\"b\"] }",
            "package t\nf(x) = 1 { x.a[\"k\"] == 1 }\nf(x) = 2 { not x.a[\"k\"] == 2 }",
            "package t\nf(x) = 1 { y := x.a; y }\nf(x) = 2 { y := x.b; not y }",
            "package t\nf(x) = 1 { x }\nf(z) = 2 { not x }",
            "package t\nm(\"1\") = 1\nm(1) = 2\nm(\"1\") = 3",
            // Numbers are not compared (`1` equals `1.0`), nor body variables.
            "package t\nf(x) = 1 { x == 1 }\nf(x) = 2 { x == 1.0 }",
            "package t\nf(x) = 1 { y := x.a; y == \"a\" }\nf(x) = 2 { y := x.b; y == \"b\" }",
            "package t\nf(x) = 1 { x.a == \"a\" }\nf(x) = 2 { x.b == \"b\" }",
        ] {
            assert_ne!(rewritten(src), src, "{src}");
        }
        let src = "package t\nf(x) = 1 { x[\"a\"] }\nf(x) = 2 { not x[\"b\"] }\np = f(input)";
        assert_eq!(agree(src, false, r#"{"a": true}"#), Err(()));
        assert_eq!(agree(src, false, r#"{"a": true, "b": 1}"#), num(1));
    }

    #[test]
    fn complete_rules_collect_their_values() {
        let src = "package t\np = v { v := input.xs[_] }";
        assert_eq!(
            rewritten(src),
            "package t\n__regard_vals_p[v] { v := input.xs[_] }\n\
             p = __regard_v { __regard_v := __regard_one(__regard_vals_p) }\n\
             __regard_one(s) = x { count(s) < 2; x := s[_] }\n\
             __regard_one(s) = x { count(s) > 1; x := regex.is_valid(\"((((a{64}){64}){64}){64})\") }\n"
        );
        assert_eq!(agree(src, false, r#"{"xs": [1, 2]}"#), Err(()));
        assert_eq!(agree(src, false, r#"{"xs": [1, 1]}"#), num(1));
        assert_eq!(agree(src, false, r#"{"xs": []}"#), Ok(Value::Undefined));
        let two = "package t\ndefault p = 0\np = 1 { input.a }\np = 2 { input.b }";
        assert_eq!(agree(two, false, r#"{"a": true, "b": true}"#), Err(()));
        assert_eq!(agree(two, false, r#"{"a": true}"#), num(1));
        assert_eq!(agree(two, false, r#"{}"#), num(0));
        let strings = "package t\np = \"1\" { input.a }\np = 1 { input.b }\nq = x[\"k\"] { x := input }\nq = \"k\"";
        assert_eq!(agree(strings, false, r#"{"a": true, "b": true}"#), Err(()));
        assert_eq!(
            agree(strings, false, r#"{"a": true}"#),
            Ok(Value::from("1"))
        );
        assert_eq!(
            rewritten(strings).lines().nth(3),
            Some("__regard_vals_q[x[\"k\"]] { x := input }")
        );
        let rv1 = "package t\np := v if { some v in input.xs }";
        assert_eq!(agree(rv1, true, r#"{"xs": [3, 4]}"#), Err(()));
        assert_eq!(agree(rv1, true, r#"{"xs": [3]}"#), num(3));
        // v0 with `future.keywords.if`: the collecting rule drops the `if`,
        // which would make it an object of `true`s (konstraint's
        // `pods.pod` was `true` on the RVM).
        let v0_if = "package t\nimport future.keywords.if\ndefault p := false\np := input.spec if {\n\tinput.kind == [\"a\", \"b\"][_]\n}";
        assert_eq!(
            rewritten(v0_if).lines().nth(3),
            Some("__regard_vals_p[input.spec] {")
        );
        assert_eq!(
            agree(v0_if, false, r#"{"kind": "b", "spec": {"x": 1}}"#),
            Ok(Value::from_json_str(r#"{"x": 1}"#).unwrap())
        );
    }

    /// A memory-suffix function as the library's container-limits template
    /// writes it: definitions that provably never disagree stay as written.
    const SUFFIX: &str = "package t\n\
        m(\"M\") = 1\nm(\"Mi\") = 2\nm(\"\") = 3\n\
        s(x) = r { not is_string(x); r := \"\" }\n\
        s(x) = r { is_string(x); count(x) > 0; r := substring(x, count(x) - 1, -1); m(r) }\n\
        s(x) = r { is_string(x); count(x) > 1; r := substring(x, count(x) - 2, -1); m(r) }\n\
        s(x) = r { is_string(x); count(x) > 1; not m(substring(x, count(x) - 1, -1)); not m(substring(x, count(x) - 2, -1)); r := \"\" }\n\
        s(x) = r { is_string(x); count(x) == 1; not m(substring(x, count(x) - 1, -1)); r := \"\" }\n\
        s(x) = r { is_string(x); count(x) == 0; r := \"\" }\n\
        p = s(input.x)";

    #[test]
    fn definitions_that_never_disagree_stay_as_written() {
        let text = rewritten(SUFFIX);
        let lines: Vec<&str> = text.lines().collect();
        // The first and the last three definitions hold alone or give the
        // same constant; only the two that read a suffix are collected.
        for n in [4, 7, 8, 9] {
            assert_eq!(lines[n], SUFFIX.lines().nth(n).unwrap());
        }
        assert!(
            lines[5].starts_with("__regard_def1_s(x)  = __regard_s {"),
            "{text}"
        );
        assert!(
            lines[6].starts_with("__regard_def2_s(x)  = __regard_s {"),
            "{text}"
        );
        assert_eq!(
            lines[11],
            "s(__regard_a0) = __regard_v { __regard_v := __regard_one(__regard_def1_s(__regard_a0) | __regard_def2_s(__regard_a0)) }"
        );
        for (x, want) in [
            (r#""5Mi""#, "Mi"),
            (r#""5M""#, "M"),
            (r#""5""#, ""),
            (r#""M""#, "M"),
            (r#""5x""#, ""),
            (r#""""#, ""),
            ("5", ""),
        ] {
            assert_eq!(
                agree(SUFFIX, false, &format!(r#"{{"x": {x}}}"#)),
                Ok(Value::from(want)),
                "{x}"
            );
        }
        // A suffix both one and two characters long would conflict: `m("i")`
        // added makes "5Mi" give "i" and "Mi".
        let both = SUFFIX.replace("m(\"\") = 3", "m(\"\") = 3\nm(\"i\") = 4");
        assert_eq!(agree(&both, false, r#"{"x": "5Mi"}"#), Err(()));
    }

    #[test]
    fn bound_variables_read_as_their_expressions() {
        for src in [
            // `r` stands for `input.a`; `not input.a` negates it.
            "package t\nf(x) = 1 { r := x.a; r }\nf(x) = 2 { not x.a }",
            "package t\nf(x) = 1 { r := count(x); r > 2 }\nf(x) = 2 { count(x) < 1 }",
            // Integer ranges that do not meet, constants on either side.
            "package t\nf(x) = 1 { count(x) > 1 }\nf(x) = 2 { count(x) == 1 }\nf(x) = 3 { 0 >= count(x) }",
            "package t\nf(x) = 1 { x.n <= 3 }\nf(x) = 2 { x.n > 3 }",
            // One constant, in the head or given by the body.
            "package t\nf(x) = \"a\" { x.p }\nf(x) = r { x.q; r := \"a\" }",
        ] {
            assert_eq!(rewritten(src), src, "{src}");
        }
        for src in [
            // An operator expression is not substituted into another text.
            "package t\nf(x) = 1 { r := x.a + 1; r }\nf(x) = 2 { not x.a + 1 }",
            // Ranges that meet: numbers are not only integers.
            "package t\nf(x) = 1 { x.n > 1 }\nf(x) = 2 { x.n < 2 }",
            "package t\nf(x) = 1 { x.n >= 1 }\nf(x) = 2 { x.n <= 1 }",
            // `!=` bounds nothing.
            "package t\nf(x) = 1 { x.n != 1 }\nf(x) = 2 { x.n != 2 }",
            // Different constants.
            "package t\nf(x) = \"a\" { x.p }\nf(x) = r { x.q; r := \"b\" }",
            // Not into a comprehension, which may declare its own `r`.
            "package t\nf(x) = 1 { r := x.a; count([r | r := x.b[_]]) > 1 }\nf(x) = 2 { count([r | r := x.b[_]]) <= 1 }",
            // A variable bound twice stands for nothing.
            "package t\nf(x) = 1 { r = x.a; r = x.b; r }\nf(x) = 2 { not x.a }",
        ] {
            assert_ne!(rewritten(src), src, "{src}");
        }
        let ranges = "package t\nf(x) = 1 { x.n > 1 }\nf(x) = 2 { x.n < 2 }\np = f(input)";
        assert_eq!(agree(ranges, false, r#"{"n": 1.5}"#), Err(()));
        assert_eq!(agree(ranges, false, r#"{"n": 2}"#), num(1));
        // A string is greater than every number: `> 1` holds, `== 1` not.
        let strings = "package t\nf(x) = 1 { x.n > 1 }\nf(x) = 2 { x.n == 1 }\np = f(input)";
        assert_eq!(rewritten(strings), strings);
        assert_eq!(agree(strings, false, r#"{"n": "s"}"#), num(1));
    }

    #[test]
    fn ranges_meet_as_numbers_do() {
        let r = |op, n| Range::of(&op, n).unwrap();
        assert!(r(BoolOp::Gt, 1).intersect(&r(BoolOp::Eq, 1)).is_empty());
        assert!(r(BoolOp::Lt, 1).intersect(&r(BoolOp::Ge, 1)).is_empty());
        assert!(r(BoolOp::Eq, 0).intersect(&r(BoolOp::Eq, 1)).is_empty());
        assert!(!r(BoolOp::Ge, 1).intersect(&r(BoolOp::Le, 1)).is_empty());
        assert!(!r(BoolOp::Gt, 1).intersect(&r(BoolOp::Lt, 2)).is_empty());
        assert!(!r(BoolOp::Gt, 1).intersect(&r(BoolOp::Gt, 5)).is_empty());
        assert_eq!(Range::of(&BoolOp::Ne, 1), None);
    }

    #[test]
    fn definitions_with_plain_parameters_are_read_directly() {
        let src = "package t\nf(x, y) = 1 { x > 0 }\nf(x, y) = 2 { y > 0 }\nf(\"k\", y) = 3 { y > 5 }\n\
                   p = f(input.x, input.y)";
        let text = rewritten(src);
        let wrapper = text.lines().find(|l| l.starts_with("f(")).unwrap();
        assert_eq!(
            wrapper,
            "f(__regard_a0, __regard_a1) = __regard_v { __regard_v := __regard_one(\
             __regard_def0_f(__regard_a0, __regard_a1) | __regard_def1_f(__regard_a0, __regard_a1) | \
             {__regard_y | _ = [0][_]; __regard_y := __regard_def2_f(__regard_a0, __regard_a1)[_]}) }"
        );
        assert_eq!(agree(src, false, r#"{"x": 1, "y": 0}"#), num(1));
        assert_eq!(agree(src, false, r#"{"x": 0, "y": 1}"#), num(2));
        assert_eq!(
            agree(src, false, r#"{"x": 0, "y": 0}"#),
            Ok(Value::Undefined)
        );
        assert_eq!(agree(src, false, r#"{"x": 1, "y": 1}"#), Err(()));
        assert_eq!(agree(src, false, r#"{"x": "k", "y": 6}"#), Err(()));
        // A string is greater than any number in Rego: `"k" > 0` holds.
        assert_eq!(agree(src, false, r#"{"x": "k", "y": 0}"#), num(1));
    }

    #[test]
    fn functions_collect_the_values_of_every_definition() {
        let src = "package t\nf(x) = y { y := x[_] }\np = f(input.xs)";
        assert_eq!(agree(src, false, r#"{"xs": [1, 2]}"#), Err(()));
        assert_eq!(agree(src, false, r#"{"xs": [2]}"#), num(2));
        let table = "package t\nm(\"Ki\") = 1024\nm(\"Mi\") = 1048576\nm(u) = 1 { u == \"\" }\n\
                     p = m(input.u)";
        assert_eq!(agree(table, false, r#"{"u": "Mi"}"#), num(1_048_576));
        assert_eq!(agree(table, false, r#"{"u": ""}"#), num(1));
        assert_eq!(agree(table, false, r#"{"u": "x"}"#), Ok(Value::Undefined));
        let overlap = "package t\ng(o, k, d) = v { v := o[k] }\ng(o, k, d) = d { true }\n\
                       p = g(input.o, \"a\", 0)";
        assert_eq!(agree(overlap, false, r#"{"o": {"a": 5}}"#), Err(()));
        assert_eq!(agree(overlap, false, r#"{"o": {"a": 0}}"#), num(0));
        assert_eq!(agree(overlap, false, r#"{"o": {}}"#), num(0));
        let v1 = "package t\nf(x) := 1 if x > 0\nf(x) := 2 if { x > 1 }\np := f(input.n)";
        assert_eq!(agree(v1, true, r#"{"n": 2}"#), Err(()));
        assert_eq!(agree(v1, true, r#"{"n": 1}"#), num(1));
        let v1 = "package t\nf(x) := 1 if { x > 0 }\nf(x) := 2 if { x > 1 }\np := f(input.n)";
        assert_eq!(agree(v1, true, r#"{"n": 2}"#), Err(()));
        assert_eq!(agree(v1, true, r#"{"n": 1}"#), num(1));
        let negated = "package t\nf(x) = y { y := x[_] }\np { not f(input.xs) == 7 }";
        assert_eq!(agree(negated, false, r#"{"xs": [1, 2]}"#), Err(()));
        assert_eq!(
            agree(negated, false, r#"{"xs": [1]}"#),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn object_comprehensions_check_their_keys() {
        let src = "package t\np = {k: v | x := input.xs[_]; k := x.name; v := x.v}";
        assert_eq!(
            rewritten(src),
            "package t\np = __regard_object({[k, v ] | x := input.xs[_]; k := x.name; v := x.v})\n\
             __regard_object(s) = o { o := {k: v | _ = [0][_]; [k, v] := s[_]}; count(o) == count(s) }\n\
             __regard_object(s) = o { o := {k: v | _ = [0][_]; [k, v] := s[_]}; count(o) != count(s); o = regex.is_valid(\"((((a{64}){64}){64}){64})\") }\n"
        );
        let two = r#"{"xs": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}"#;
        assert_eq!(agree(src, false, two), Err(()));
        let same =
            r#"{"xs": [{"name": "a", "v": 1}, {"name": "a", "v": 1}, {"name": "b", "v": 2}]}"#;
        let ok = agree(src, false, same).unwrap();
        assert_eq!(ok.to_json_str().unwrap(), "{\n  \"a\": 1,\n  \"b\": 2\n}");
        // Nested in a rule that is rewritten too, and with string keys.
        let nested = "package t\nf(x) = o { o := {\"k\": v | v := x[_]} }\nf(x) = 1 { x == [] }\np = f(input.xs)";
        assert_eq!(agree(nested, false, r#"{"xs": [1, 2]}"#), Err(()));
        assert_eq!(
            agree(nested, false, r#"{"xs": [1, 1]}"#)
                .unwrap()
                .to_json_str()
                .unwrap(),
            "{\n  \"k\": 1\n}"
        );
        let constant = "package t\np = {k: true | k := input.xs[_]}";
        assert_eq!(rewritten(constant), constant);
    }

    #[test]
    fn object_rules_check_each_key() {
        let src = "package t\nq[k] = v { x := input.xs[_]; k := x.name; v := x.v }\np = q";
        assert_eq!(
            agree(
                src,
                false,
                r#"{"xs": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}"#
            ),
            Err(())
        );
        let ok = agree(
            src,
            false,
            r#"{"xs": [{"name": "a", "v": 1}, {"name": "b", "v": 2}, {"name": "a", "v": 1}]}"#,
        )
        .unwrap();
        assert_eq!(ok.to_json_str().unwrap(), "{\n  \"a\": 1,\n  \"b\": 2\n}");
    }

    #[test]
    fn what_cannot_be_rewritten_is_reported() {
        let src = "package t\nf(x) = y { y := x[_] } else = 2 { true }";
        let m = parse_module("t.rego", src, false).unwrap();
        assert_eq!(
            super::rewrite(&[(src, &m)], false),
            Err("line 2: the values of `f`'s else chain may conflict".to_owned())
        );
        let src = "package t\np = input.xs[_]";
        let m = parse_module("t.rego", src, false).unwrap();
        assert_eq!(
            super::rewrite(&[(src, &m)], false),
            Err("line 2: the value of `p` iterates in the rule head".to_owned())
        );
    }
}
