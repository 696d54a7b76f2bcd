//! Pass `negation`: `not` over a call or comparison with a ref operand.
//!
//! OPA's compiler binds such operands first (`__local0__ = x.y; not
//! f(__local0__)`, its `rewriteDynamics` and `expandExpr` stages), so an
//! undefined operand makes the whole body undefined; regorus negates the
//! undefined call and succeeds. The same binding is written into the source,
//! on the statement's own line.

use regorus::unstable::{AssignOp, BoolOp, Expr, Literal, LiteralStmt, Module};

use super::ast::{AstVisitor, stmt_end, walk_module};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Vec<Edit> {
    let mut hoister = NegationHoister {
        src,
        edits: Vec::new(),
        next_var: 0,
    };
    walk_module(module, &mut hoister);
    hoister.edits
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
            let var = format!("__regard_not{}", self.next_var);
            self.next_var += 1;
            bindings.push_str(&format!(
                "{var} = {}{with_text}; ",
                super::text::one_line(text)
            ));
            replacements.push(Edit::replace(span.start as usize, span.end as usize, var));
        }
        let start = stmt.span.start as usize;
        let end = stmt_end(self.src, stmt);
        // `p if not f(x.y)` has no braces; the bindings need them.
        let before = self.src.get(..start).unwrap_or("").trim_end();
        let braceless = before.ends_with("if")
            && !before
                .get(..before.len().saturating_sub(2))
                .unwrap_or("")
                .ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let (open, close) = if braceless { ("{ ", " }") } else { ("", "") };
        self.edits
            .push(Edit::insert(start, format!("{open}{bindings}")));
        self.edits.extend(replacements);
        if braceless {
            self.edits.push(Edit::insert(end, close));
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
