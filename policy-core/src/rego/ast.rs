//! Parsing modules with regorus' parser, and a read-only walk over its AST.

use std::num::{NonZeroU32, NonZeroUsize};

use regorus::unstable::{
    AssignOp, Expr, Literal, LiteralStmt, Module, Parser, Query, Rule, RuleHead,
};

/// Real policies carry data tables of tens of thousands of characters on
/// one line and files of several megabytes; OPA has no such limits.
pub(crate) const MAX_COL: NonZeroU32 = NonZeroU32::new(16 * 1024 * 1024).unwrap();
pub(crate) const MAX_FILE_BYTES: NonZeroUsize = NonZeroUsize::new(256 * 1024 * 1024).unwrap();
pub(crate) const MAX_LINES: NonZeroUsize = NonZeroUsize::new(10_000_000).unwrap();

/// The length limits regard gives regorus' engines.
pub(crate) fn length_limits() -> regorus::utils::limits::PolicyLengthConfig {
    regorus::utils::limits::PolicyLengthConfig {
        max_col: MAX_COL,
        max_file_bytes: MAX_FILE_BYTES,
        max_lines: MAX_LINES,
    }
}

pub(crate) fn source(name: &str, src: &str) -> anyhow::Result<regorus::Source> {
    regorus::Source::from_contents_with_limits(
        name.to_owned(),
        src.to_owned(),
        MAX_FILE_BYTES,
        MAX_LINES,
    )
}

/// Parses a module with regorus' parser (v0 or v1).
pub(crate) fn parse_module(name: &str, src: &str, rego_v1: bool) -> anyhow::Result<Module> {
    let source = source(name, src)?;
    let mut parser = Parser::new(&source)?;
    parser.set_max_col(MAX_COL);
    if rego_v1 {
        parser.enable_rego_v1()?;
    }
    parser.parse()
}

/// A read-only walk over a module's AST.
pub(crate) trait AstVisitor {
    /// Called for every expression; return `false` to skip its children.
    fn expr(&mut self, _e: &Expr) -> bool {
        true
    }
    /// Called for every statement of every query, before its parts.
    fn stmt(&mut self, _s: &LiteralStmt) {}
    /// Called for every query (rule body, comprehension, `every`), before
    /// its statements.
    fn query(&mut self, _q: &Query) {}
}

pub(crate) fn walk_module(m: &Module, v: &mut impl AstVisitor) {
    for rule in &m.policy {
        walk_rule(rule, v);
    }
}

pub(crate) fn walk_rule(rule: &Rule, v: &mut impl AstVisitor) {
    {
        match rule {
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

pub(crate) fn walk_query(q: &Query, v: &mut impl AstVisitor) {
    v.query(q);
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

/// The head reference of a rule.
/// Where a statement ends in `src`, with its `with` modifiers. regorus ends
/// a string literal's span before its closing quote, so a statement whose
/// last token is a string gets that quote back.
pub(crate) fn stmt_end(src: &str, s: &LiteralStmt) -> usize {
    let end = s
        .with_mods
        .iter()
        .map(|w| w.span.end as usize)
        .chain([s.span.end as usize])
        .max()
        .unwrap_or(0);
    match src.as_bytes().get(end) {
        Some(b'"' | b'`') => end.saturating_add(1),
        _ => end,
    }
}

/// A statement that is a unification (`a = b`): the expression and its operands.
pub(crate) fn unification(stmt: &LiteralStmt) -> Option<(&Expr, &Expr, &Expr)> {
    let Literal::Expr { expr, .. } = &stmt.literal else {
        return None;
    };
    match expr.as_ref() {
        e @ Expr::AssignExpr {
            op: AssignOp::Eq,
            lhs,
            rhs,
            ..
        } => Some((e, lhs, rhs)),
        _ => None,
    }
}

/// A statement that is a declaration (`x := e`): the expression and its
/// operands.
pub(crate) fn declaration(stmt: &LiteralStmt) -> Option<(&Expr, &Expr, &Expr)> {
    let Literal::Expr { expr, .. } = &stmt.literal else {
        return None;
    };
    match expr.as_ref() {
        e @ Expr::AssignExpr {
            op: AssignOp::ColEq,
            lhs,
            rhs,
            ..
        } => Some((e, lhs, rhs)),
        _ => None,
    }
}

pub(crate) fn rule_ref(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

/// The name of a rule: the first part of its head reference.
pub(crate) fn rule_name(rule: &Rule) -> Option<String> {
    let mut e = rule_ref(rule);
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

/// The name of a variable expression.
pub(crate) fn var_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Var { span, .. } => Some(span.text()),
        _ => None,
    }
}

/// Byte offsets where `word` occurs as a whole identifier.
pub(crate) fn word_positions(src: &str, word: &str) -> Vec<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    src.match_indices(word)
        .filter(|(i, _)| {
            let before = src.get(..*i).and_then(|s| s.chars().next_back());
            let after = src.get(i + word.len()..).and_then(|s| s.chars().next());
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
        .map(|(i, _)| i)
        .collect()
}
