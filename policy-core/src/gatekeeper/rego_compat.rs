//! Making template Rego mean on regorus what it means on OPA.
//!
//! Gatekeeper compiles templates with OPA. Three places where regorus reads
//! the same text differently are fixed here by rewriting the source before it
//! is compiled, each rewrite preserving what OPA would do:
//!
//! 1. **A newline before `(` or `[`** ends the statement in OPA (a call or a
//!    ref must touch the term before it), but regorus continues the term. A
//!    `;` is inserted where OPA sees a statement break.
//! 2. **v0 rules with several bodies** (`p { A } { B }`) are incremental
//!    definitions in OPA; regorus rejects them for partial set rules. The
//!    head is repeated in front of each further body.
//! 3. **`not` over a call or comparison with a ref operand**: OPA's compiler
//!    binds the operand first (`__local0__ = x.y; not f(__local0__)`), so an
//!    undefined operand makes the whole body undefined; regorus negates the
//!    undefined call and succeeds. The same binding is written into the
//!    source.
//!
//! Edits never add lines, so compiler messages keep their line numbers.
//! This module also walks the AST for Gatekeeper's `data` restrictions.

use regorus::unstable::{
    AssignOp, BoolOp, Expr, Import, Lexer, Literal, LiteralStmt, Module, Parser, Query, Rule,
    RuleHead, TokenKind,
};

/// One textual edit: replace `start..end` with `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Edit {
    start: usize,
    end: usize,
    text: String,
}

fn apply_edits(src: &str, mut edits: Vec<Edit>) -> String {
    // A stable sort keeps insertions at one offset in the order they were made.
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(src.len() + 64);
    let mut pos = 0;
    for e in edits {
        let (Some(keep), true) = (src.get(pos..e.start), e.start <= e.end) else {
            // Overlapping or out-of-range edits are dropped, never half-applied.
            continue;
        };
        if src.get(e.start..e.end).is_none() {
            continue;
        }
        out.push_str(keep);
        out.push_str(&e.text);
        pos = e.end;
    }
    out.push_str(src.get(pos..).unwrap_or(""));
    out
}

/// Applies every rewrite to one module's source. Returns the source to
/// compile; when the text does not lex or parse, it is returned with only the
/// rewrites that could be made, and the compiler reports the error.
pub(crate) fn rewrite(src: &str, rego_v1: bool) -> String {
    let laid_out = fix_token_layout(src, rego_v1);
    hoist_negated_operands(&laid_out, rego_v1)
}

struct Tok {
    kind: TokenKind,
    text: String,
    start: usize,
    end: usize,
    line: u32,
    end_line: u32,
}

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let source = regorus::Source::from_contents("template.rego".to_owned(), src.to_owned()).ok()?;
    let mut lexer = Lexer::new(&source);
    let mut toks = Vec::new();
    loop {
        let tok = lexer.next_token().ok()?;
        if tok.0 == TokenKind::Eof {
            break;
        }
        let text = tok.1.text().to_owned();
        let newlines = u32::try_from(text.matches('\n').count()).unwrap_or(0);
        toks.push(Tok {
            kind: tok.0,
            start: tok.1.start as usize,
            end: tok.1.end as usize,
            line: tok.1.line,
            end_line: tok.1.line.saturating_add(newlines),
            text,
        });
    }
    Some(toks)
}

const KEYWORDS: &[&str] = &[
    "not", "with", "as", "in", "if", "else", "some", "every", "contains", "default", "import",
    "package",
];

/// Whether a token can end a term, so that a following `(` or `[` would
/// continue it.
fn ends_term(t: &Tok) -> bool {
    match t.kind {
        TokenKind::Ident => !KEYWORDS.contains(&t.text.as_str()),
        TokenKind::Number | TokenKind::String | TokenKind::RawString => true,
        TokenKind::Symbol => matches!(t.text.as_str(), ")" | "]" | "}"),
        TokenKind::Eof => false,
    }
}

/// Rewrites 1 and 2: statement breaks before `(`/`[`, and multi-body rules.
// Indexing below is over token tables built in `fix_token_layout`: every
// index is a token index (< toks.len()), and `level`/`partner` hold one entry
// per token, so the accesses are in bounds by construction.
#[allow(clippy::indexing_slicing)]
fn fix_token_layout(src: &str, rego_v1: bool) -> String {
    let Some(toks) = tokenize(src) else {
        return src.to_owned();
    };
    // For each token: the innermost open bracket before it, the nesting level
    // it sits at (a bracket pair shares one level) and its partner bracket.
    let n = toks.len();
    let mut innermost: Vec<Option<char>> = vec![None; n];
    let mut level: Vec<usize> = vec![0; n];
    let mut partner: Vec<Option<usize>> = vec![None; n];
    let mut stack: Vec<(char, usize)> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        innermost[i] = stack.last().map(|(c, _)| *c);
        match (t.kind == TokenKind::Symbol, t.text.as_str()) {
            (true, "{") | (true, "[") | (true, "(") => {
                level[i] = stack.len();
                stack.push((t.text.chars().next().unwrap_or('{'), i));
            }
            (true, "}") | (true, "]") | (true, ")") => {
                if let Some((_, open)) = stack.pop() {
                    partner[i] = Some(open);
                    partner[open] = Some(i);
                }
                level[i] = stack.len();
            }
            _ => level[i] = stack.len(),
        }
    }

    let mut edits = Vec::new();
    for i in 1..n {
        let (prev, tok) = (&toks[i - 1], &toks[i]);
        // 1: `x⏎(y)` inside a body is two statements in OPA.
        if tok.kind == TokenKind::Symbol
            && matches!(tok.text.as_str(), "(" | "[")
            && tok.line > prev.end_line
            && ends_term(prev)
            && innermost[i] == Some('{')
        {
            edits.push(Edit {
                start: prev.end,
                end: prev.end,
                text: ";".to_owned(),
            });
        }
        // 2: `head { A } { B }` at the top level of a v0 module.
        if !rego_v1
            && is_body_open(&toks, &level, i)
            && prev.text == "}"
            && level[i - 1] == 0
            && partner[i - 1].is_some_and(|o| is_body_open(&toks, &level, o))
            && let Some(head) = rule_head_text(src, &toks, &level, &partner, i - 1)
        {
            edits.push(Edit {
                start: tok.start,
                end: tok.start,
                text: format!("{head} "),
            });
        }
    }
    if edits.is_empty() {
        return src.to_owned();
    }
    apply_edits(src, edits)
}

/// Whether token `i` opens a rule body: a top-level `{` that is not the
/// value of `=`/`:=` (`p = {"a": 1} { ... }` has a value literal, then a body).
// Indexing below is over token tables built in `fix_token_layout`: every
// index is a token index (< toks.len()), and `level`/`partner` hold one entry
// per token, so the accesses are in bounds by construction.
#[allow(clippy::indexing_slicing)]
fn is_body_open(toks: &[Tok], level: &[usize], i: usize) -> bool {
    toks[i].text == "{"
        && level[i] == 0
        && !(i > 0 && matches!(toks[i - 1].text.as_str(), "=" | ":="))
}

/// The head of the rule whose body ends at token `close` (a top-level `}`),
/// on one line; `None` when the rule is an `else` chain or cannot be found.
// Indexing below is over token tables built in `fix_token_layout`: every
// index is a token index (< toks.len()), and `level`/`partner` hold one entry
// per token, so the accesses are in bounds by construction.
#[allow(clippy::indexing_slicing)]
fn rule_head_text(
    src: &str,
    toks: &[Tok],
    level: &[usize],
    partner: &[Option<usize>],
    close: usize,
) -> Option<String> {
    // Walk back over the chain of bodies to the first one.
    let mut open = partner.get(close).copied().flatten()?;
    while open > 0
        && toks[open - 1].text == "}"
        && level[open - 1] == 0
        && partner[open - 1].is_some_and(|o| is_body_open(toks, level, o))
    {
        open = partner.get(open - 1).copied().flatten()?;
    }
    // Walk back over the head: top-level tokens on the head's lines, with
    // bracketed groups skipped whole.
    let mut start = open;
    let mut j = open;
    while j > 0 {
        let k = j - 1;
        let t = &toks[k];
        if level[k] == 0 && t.text == "else" {
            return None;
        }
        let body_end = t.text == "}" && partner[k].is_some_and(|o| is_body_open(toks, level, o));
        if level[k] == 0 && body_end {
            break;
        }
        let first = if level[k] == 0 && matches!(t.text.as_str(), "]" | ")" | "}") {
            partner.get(k).copied().flatten()?
        } else {
            k
        };
        if toks[k].end_line < toks[start].line {
            break;
        }
        start = first;
        j = first;
    }
    if start == open {
        return None;
    }
    let text = src.get(toks[start].start..toks[open].start)?.trim_end();
    if text.contains('`') {
        return None;
    }
    Some(text.replace(['\n', '\r'], " "))
}

/// Parses a module with regorus' parser (v0 or v1) for AST-based rewrites and checks.
pub(crate) fn parse_module(name: &str, src: &str, rego_v1: bool) -> anyhow::Result<Module> {
    let source = regorus::Source::from_contents(name.to_owned(), src.to_owned())?;
    let mut parser = Parser::new(&source)?;
    if rego_v1 {
        parser.enable_rego_v1()?;
    }
    parser.parse()
}

/// Rewrite 3: binds the dynamic operands of negated expressions first.
fn hoist_negated_operands(src: &str, rego_v1: bool) -> String {
    let Ok(module) = parse_module("template.rego", src, rego_v1) else {
        return src.to_owned();
    };
    let mut hoister = NegationHoister {
        src,
        edits: Vec::new(),
        next_var: 0,
    };
    walk_module(&module, &mut hoister);
    if hoister.edits.is_empty() {
        return src.to_owned();
    }
    apply_edits(src, hoister.edits)
}

struct NegationHoister<'a> {
    src: &'a str,
    edits: Vec<Edit>,
    next_var: usize,
}

impl AstVisitor for NegationHoister<'_> {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        let Literal::NotExpr { expr, .. } = &stmt.literal else {
            return;
        };
        let mut operands = Vec::new();
        negated_operands(expr, &mut operands);
        if operands.is_empty() {
            return;
        }
        let with_text: String = stmt
            .with_mods
            .iter()
            .map(|w| format!(" with {} as {}", w.refr.span().text(), w.r#as.span().text()))
            .collect();
        let mut bindings = String::new();
        let mut replacements = Vec::new();
        for op in operands {
            let span = op.span();
            let text = span.text();
            if text.contains('`') {
                // A multi-line raw string cannot be flattened onto one line.
                return;
            }
            let var = format!("__gk_not{}", self.next_var);
            self.next_var += 1;
            bindings.push_str(&format!(
                "{var} = {}{with_text}; ",
                text.replace(['\n', '\r'], " ")
            ));
            replacements.push(Edit {
                start: span.start as usize,
                end: span.end as usize,
                text: var,
            });
        }
        let start = stmt.span.start as usize;
        let end = stmt
            .with_mods
            .iter()
            .map(|w| w.span.end as usize)
            .chain([stmt.span.end as usize])
            .max()
            .unwrap_or(start);
        // `p if not f(x.y)` has no braces; the bindings need them.
        let before = self.src.get(..start).unwrap_or("").trim_end();
        let braceless = before.ends_with("if")
            && !before
                .get(..before.len().saturating_sub(2))
                .unwrap_or("")
                .ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let (open, close) = if braceless { ("{ ", " }") } else { ("", "") };
        self.edits.push(Edit {
            start,
            end: start,
            text: format!("{open}{bindings}"),
        });
        self.edits.extend(replacements);
        if braceless {
            self.edits.push(Edit {
                start: end,
                end,
                text: close.to_owned(),
            });
        }
    }
}

/// The operands OPA binds before evaluating a negated expression
/// (`rewriteDynamics` and `expandExpr` in OPA's compiler).
fn negated_operands<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Call { params, .. } => params.iter().for_each(|p| dynamic_operand(p, out)),
        // OPA compiles `a == b` as the unification `a = b` (its RewriteEquals
        // stage), so `not x.y == true` is true when x.y is undefined.
        Expr::BoolExpr {
            op: BoolOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            unification_side(lhs, out);
            unification_side(rhs, out);
        }
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. } => {
            dynamic_operand(lhs, out);
            dynamic_operand(rhs, out);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                dynamic_operand(k, out);
            }
            dynamic_operand(value, out);
            dynamic_operand(collection, out);
        }
        Expr::UnaryExpr { expr, .. } => dynamic_operand(expr, out),
        // `a = b` is unification: only computed parts of refs are bound.
        Expr::AssignExpr {
            op: AssignOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            unification_side(lhs, out);
            unification_side(rhs, out);
        }
        Expr::RefDot { .. } | Expr::RefBrack { .. } => ref_keys(e, out),
        _ => {}
    }
}

fn unification_side<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => ref_keys(e, out),
        // Nested calls are bound first (OPA's expandExpr).
        Expr::Call { .. }
        | Expr::ArithExpr { .. }
        | Expr::BinExpr { .. }
        | Expr::BoolExpr { .. }
        | Expr::Membership { .. }
        | Expr::UnaryExpr { .. } => out.push(e),
        _ => {}
    }
}

/// Computed keys of a ref (`obj[input.key]` binds `input.key`).
fn ref_keys<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::RefBrack { refr, index, .. } => {
            ref_keys(refr, out);
            dynamic_operand(index, out);
        }
        Expr::RefDot { refr, .. } => ref_keys(refr, out),
        Expr::Call { .. } => out.push(e),
        _ => {}
    }
}

fn dynamic_operand<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::RefDot { .. }
        | Expr::RefBrack { .. }
        | Expr::Call { .. }
        | Expr::ArithExpr { .. }
        | Expr::BinExpr { .. }
        | Expr::BoolExpr { .. }
        | Expr::UnaryExpr { .. }
        | Expr::Membership { .. } => out.push(e),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| dynamic_operand(i, out));
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                dynamic_operand(k, out);
                dynamic_operand(v, out);
            }
        }
        _ => {}
    }
}

/// A read-only walk over a module's AST.
pub(crate) trait AstVisitor {
    /// Called for every expression; return `false` to skip its children.
    fn expr(&mut self, _e: &Expr) -> bool {
        true
    }
    /// Called for every statement of every query, before its parts.
    fn stmt(&mut self, _s: &LiteralStmt) {}
}

pub(crate) fn walk_module(m: &Module, v: &mut impl AstVisitor) {
    for rule in &m.policy {
        match rule.as_ref() {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        walk_expr(refr, v);
                        if let Some(a) = assign {
                            walk_expr(&a.value, v);
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        walk_expr(refr, v);
                        if let Some(k) = key {
                            walk_expr(k, v);
                        }
                    }
                    RuleHead::Func {
                        refr, args, assign, ..
                    } => {
                        walk_expr(refr, v);
                        args.iter().for_each(|a| walk_expr(a, v));
                        if let Some(a) = assign {
                            walk_expr(&a.value, v);
                        }
                    }
                }
                for body in bodies {
                    if let Some(a) = &body.assign {
                        walk_expr(&a.value, v);
                    }
                    walk_query(&body.query, v);
                }
            }
            Rule::Default {
                refr, args, value, ..
            } => {
                walk_expr(refr, v);
                args.iter().for_each(|a| walk_expr(a, v));
                walk_expr(value, v);
            }
        }
    }
}

fn walk_query(q: &Query, v: &mut impl AstVisitor) {
    for s in &q.stmts {
        v.stmt(s);
        match &s.literal {
            Literal::SomeVars { .. } => {}
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    walk_expr(k, v);
                }
                walk_expr(value, v);
                walk_expr(collection, v);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => walk_expr(expr, v),
            Literal::Every { domain, query, .. } => {
                walk_expr(domain, v);
                walk_query(query, v);
            }
        }
        for w in &s.with_mods {
            walk_expr(&w.refr, v);
            walk_expr(&w.r#as, v);
        }
    }
}

pub(crate) fn walk_expr(e: &Expr, v: &mut impl AstVisitor) {
    if !v.expr(e) {
        return;
    }
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| walk_expr(i, v));
        }
        Expr::Object { fields, .. } => {
            for (_, k, val) in fields {
                walk_expr(k, v);
                walk_expr(val, v);
            }
        }
        Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
            walk_expr(term, v);
            walk_query(query, v);
        }
        Expr::ObjectCompr {
            key, value, query, ..
        } => {
            walk_expr(key, v);
            walk_expr(value, v);
            walk_query(query, v);
        }
        Expr::Call { fcn, params, .. } => {
            walk_expr(fcn, v);
            params.iter().for_each(|p| walk_expr(p, v));
        }
        Expr::UnaryExpr { expr, .. } => walk_expr(expr, v),
        Expr::RefDot { refr, .. } => walk_expr(refr, v),
        Expr::RefBrack { refr, index, .. } => {
            walk_expr(refr, v);
            walk_expr(index, v);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            walk_expr(lhs, v);
            walk_expr(rhs, v);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                walk_expr(k, v);
            }
            walk_expr(value, v);
            walk_expr(collection, v);
        }
        _ => {}
    }
}

/// What a module reads from `data`, checked against Gatekeeper's rules.
#[derive(Debug, Default)]
pub(crate) struct DataAccess {
    /// The module reads `data.inventory`.
    pub inventory: bool,
    /// The first disallowed reference, as written.
    pub disallowed: Option<String>,
}

impl AstVisitor for DataAccess {
    fn expr(&mut self, e: &Expr) -> bool {
        let (refr, first) = match e {
            Expr::RefDot { refr, field, .. } => {
                (refr, field.1.as_string().ok().map(|s| s.to_string()))
            }
            Expr::RefBrack { refr, index, .. } => (
                refr,
                match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        value.as_string().ok().map(|s| s.to_string())
                    }
                    _ => None,
                },
            ),
            Expr::Var { value, span, .. } => {
                if value.as_string().is_ok_and(|s| s.as_ref() == "data") {
                    self.flag(span.text());
                }
                return true;
            }
            _ => return true,
        };
        let is_data = matches!(refr.as_ref(), Expr::Var { value, .. } if value.as_string().is_ok_and(|s| s.as_ref() == "data"));
        if !is_data {
            return true;
        }
        match first.as_deref() {
            Some("inventory") => self.inventory = true,
            Some("lib") => {}
            _ => self.flag(e.span().text()),
        }
        // The index of `data[...]` may itself contain refs.
        if let Expr::RefBrack { index, .. } = e {
            walk_expr(index, self);
        }
        false
    }
}

impl DataAccess {
    fn flag(&mut self, text: &str) {
        if self.disallowed.is_none() {
            self.disallowed = Some(text.to_owned());
        }
    }

    /// Checks a module's imports and body.
    pub(crate) fn check_module(&mut self, m: &Module) {
        for import in &m.imports {
            self.check_import(import);
        }
        walk_module(m, self);
    }

    fn check_import(&mut self, import: &Import) {
        let Ok(comps) = Parser::get_path_ref_components(&import.refr) else {
            return;
        };
        let names: Vec<&str> = comps.iter().map(|c| c.text()).collect();
        match names.as_slice() {
            ["data", "inventory", ..] => self.inventory = true,
            ["data", "lib", ..] => {}
            ["data", ..] => self.flag(&names.join(".")),
            ["input", ..] if self.disallowed.is_none() => {
                self.disallowed = Some(format!("import {} (cannot import input)", names.join(".")));
            }
            _ => {}
        }
    }
}

/// The name of a rule: the first part of its head reference.
pub(crate) fn rule_name(rule: &Rule) -> Option<String> {
    let refr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    let mut e = refr.as_ref();
    loop {
        match e {
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => e = refr.as_ref(),
            Expr::Var { value, .. } => return value.as_string().ok().map(|s| s.to_string()),
            _ => return None,
        }
    }
}

/// The package of a module as its dotted components (`lib.exempt_container`).
pub(crate) fn package_components(m: &Module) -> Vec<String> {
    Parser::get_path_ref_components(&m.package.refr)
        .map(|c| {
            c.iter()
                .map(|s| s.text().trim_matches('"').to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A scratch engine parse, used by tests to check that rewritten text compiles.
#[cfg(test)]
fn compiles(src: &str, rego_v1: bool) -> bool {
    let mut e = regorus::Engine::new();
    e.set_rego_v0(!rego_v1);
    e.add_policy("t.rego".into(), src.into()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use regorus::{Engine, Value};

    fn eval(src: &str, input: &str) -> Value {
        let mut e = Engine::new();
        e.set_rego_v0(true);
        e.add_policy("t.rego".into(), rewrite(src, false)).unwrap();
        e.set_input(Value::from_json_str(input).unwrap());
        e.eval_rule("data.t.p".into()).unwrap()
    }

    #[test]
    fn newline_before_paren_ends_the_statement() {
        let src = "package t\np {\n  input.a\n  (input.b - 1) >= 1\n}\n";
        let out = rewrite(src, false);
        assert_eq!(out, "package t\np {\n  input.a;\n  (input.b - 1) >= 1\n}\n");
        assert_eq!(eval(src, r#"{"a": true, "b": 5}"#), Value::from(true));
        assert_eq!(eval(src, r#"{"a": true, "b": 1}"#), Value::Undefined);
    }

    #[test]
    fn call_on_the_same_line_is_untouched() {
        let src = "package t\np { x := count([1])\n y := [1][0] }\n";
        assert_eq!(rewrite(src, false), src);
        let args = "package t\np { f(\n 1) }\nf(x) { x }\n";
        assert_eq!(rewrite(args, false), args);
    }

    #[test]
    fn multi_body_set_rule_becomes_one_rule_per_body() {
        let src = "package t\np[x] {\n  x := 1\n} {\n  x := 2\n}\n";
        let out = rewrite(src, false);
        assert_eq!(out, "package t\np[x] {\n  x := 1\n} p[x] {\n  x := 2\n}\n");
        let v = eval(src, "{}");
        assert_eq!(
            v,
            Value::from_json_str("[1, 2]")
                .map(|a| {
                    Value::from(
                        a.as_array()
                            .unwrap()
                            .iter()
                            .cloned()
                            .collect::<std::collections::BTreeSet<_>>(),
                    )
                })
                .unwrap()
        );
    }

    #[test]
    fn multi_body_head_with_object_key() {
        let src = "package t\nviolation[{\"msg\": m}] { m := \"a\" } { m := \"b\" }\n";
        let out = rewrite(src, false);
        assert_eq!(
            out,
            "package t\nviolation[{\"msg\": m}] { m := \"a\" } violation[{\"msg\": m}] { m := \"b\" }\n"
        );
        assert!(compiles(&out, false));
    }

    #[test]
    fn value_literal_then_body_is_one_body() {
        let src = "package t\nf(x) = {\"a\": y} {\n  y := x\n}\nf(x) = {\"a\": 1} { x }\n";
        assert_eq!(rewrite(src, false), src);
        let multi = "package t\np = {\"a\": 1} { false } { true }\n";
        assert_eq!(
            rewrite(multi, false),
            "package t\np = {\"a\": 1} { false } p = {\"a\": 1} { true }\n"
        );
        assert!(compiles(&rewrite(multi, false), false));
    }

    #[test]
    fn else_chains_are_left_alone() {
        let src = "package t\np = 1 { false } else = 2 { true }\n";
        assert_eq!(rewrite(src, false), src);
    }

    #[test]
    fn negated_call_on_undefined_ref_is_undefined() {
        let src = "package t\np { not f(input.missing) }\nf(x) { x == 1 }\n";
        assert_eq!(
            rewrite(src, false),
            "package t\np { __gk_not0 = input.missing; not f(__gk_not0) }\nf(x) { x == 1 }\n"
        );
        assert_eq!(eval(src, "{}"), Value::Undefined);
        assert_eq!(eval(src, r#"{"missing": 2}"#), Value::from(true));
        assert_eq!(eval(src, r#"{"missing": 1}"#), Value::Undefined);
    }

    #[test]
    fn negated_comparison_and_computed_key() {
        // `==` is unification in OPA: the ref is not bound first.
        let eq = "package t\np { not input.a == true }\n";
        assert_eq!(rewrite(eq, false), eq);
        assert_eq!(eval(eq, "{}"), Value::from(true));
        assert_eq!(eval(eq, r#"{"a": true}"#), Value::Undefined);
        let counted = "package t\np { not count(input.a) == 0 }\n";
        assert_eq!(eval(counted, "{}"), Value::Undefined);
        // Other comparisons are calls: their ref operands are bound first.
        let src = "package t\np { not input.a != 1 }\n";
        assert_eq!(eval(src, "{}"), Value::Undefined);
        assert_eq!(eval(src, r#"{"a": 1}"#), Value::from(true));
        let lt = "package t\np { not input.a < 1 }\n";
        assert_eq!(eval(lt, "{}"), Value::Undefined);
        // A plain negated ref is not rewritten: `not input.x` is true when x is missing.
        let plain = "package t\np { not input.x }\n";
        assert_eq!(rewrite(plain, false), plain);
        assert_eq!(eval(plain, "{}"), Value::from(true));
        let keyed = "package t\nobj := {}\np { not obj[input.k] }\n";
        assert_eq!(eval(keyed, "{}"), Value::Undefined);
        assert_eq!(eval(keyed, r#"{"k": "z"}"#), Value::from(true));
    }

    #[test]
    fn negation_with_local_var_operands_is_untouched() {
        let src = "package t\np { x := input.a\n not f(x) }\nf(y) { y == 1 }\n";
        assert_eq!(rewrite(src, false), src);
    }

    #[test]
    fn braceless_v1_body_gets_braces() {
        let src = "package t\np if not f(input.m)\nf(x) if x == 1\n";
        let out = rewrite(src, true);
        assert_eq!(
            out,
            "package t\np if { __gk_not0 = input.m; not f(__gk_not0) }\nf(x) if x == 1\n"
        );
        assert!(compiles(&out, true));
    }

    #[test]
    fn data_access_rules() {
        let check = |src: &str| {
            let m = parse_module("t.rego", src, false).unwrap();
            let mut d = DataAccess::default();
            d.check_module(&m);
            d
        };
        let ok = check("package t\nimport data.lib.x.y\np { data.inventory.cluster[_] }\n");
        assert!(ok.disallowed.is_none());
        assert!(ok.inventory);
        let bad = check("package t\np { data.other.thing }\n");
        assert_eq!(bad.disallowed.as_deref(), Some("data.other"));
        let bare = check("package t\np { x := data }\n");
        assert_eq!(bare.disallowed.as_deref(), Some("data"));
        let dyn_key = check("package t\np { data[input.k] }\n");
        assert_eq!(dyn_key.disallowed.as_deref(), Some("data[input.k]"));
        let import = check("package t\nimport data.foo\np { true }\n");
        assert_eq!(import.disallowed.as_deref(), Some("data.foo"));
    }
}
