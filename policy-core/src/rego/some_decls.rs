//! Pass `some_decls`: `some x` declarations after other statements.
//!
//! In OPA `some x` only declares `x` local to its query; where it stands
//! matters only to the compiler's scope checks. regorus executes the
//! declaration, and when an earlier statement of the query iterates, it
//! runs it again for the next value and fails with "duplicated definition of
//! local variable x". Each such declaration is moved to the start of its
//! query (its old place becomes `true`), where it runs once.

use regorus::unstable::{Expr, Literal, LiteralStmt, Module, Query, Rule};

use super::CompileError;
use super::ast::{AstVisitor, walk_module};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Result<Vec<Edit>, CompileError> {
    let mut finder = Finder {
        src,
        edits: Vec::new(),
        error: None,
    };
    for rule in &module.policy {
        if let Rule::Spec { bodies, .. } = rule.as_ref() {
            for b in bodies {
                finder.query(&b.query);
            }
        }
    }
    // Comprehension and `every` bodies.
    walk_module(module, &mut finder);
    match finder.error {
        Some(e) => Err(e),
        None => Ok(finder.edits),
    }
}

struct Finder<'a> {
    src: &'a str,
    edits: Vec<Edit>,
    error: Option<CompileError>,
}

impl Finder<'_> {
    fn query(&mut self, q: &Query) {
        // OPA refuses a name declared twice in one query.
        let mut names: Vec<&str> = Vec::new();
        for s in &q.stmts {
            if let Literal::SomeVars { vars, .. } = &s.literal {
                for v in vars {
                    if names.contains(&v.text()) && self.error.is_none() {
                        self.error = Some(CompileError::at(
                            v,
                            format!("var {} declared above", v.text()),
                        ));
                    }
                    names.push(v.text());
                }
            }
        }
        let leading = q
            .stmts
            .iter()
            .take_while(|s| matches!(s.literal, Literal::SomeVars { .. }))
            .count();
        let late: Vec<&LiteralStmt> = q
            .stmts
            .iter()
            .skip(leading)
            .filter(|s| matches!(s.literal, Literal::SomeVars { .. }))
            .collect();
        if late.is_empty() {
            return;
        }
        let start = q.span.start as usize;
        // Only braced queries: a braceless body is one statement.
        if !self.src.get(start..).is_some_and(|t| t.starts_with('{')) {
            return;
        }
        let mut moved = String::new();
        for s in late {
            let text = s.span.text();
            if text.contains('\n') {
                return;
            }
            moved.push_str(&format!(" {text};"));
            self.edits.push(Edit::replace(
                s.span.start as usize,
                s.span.end as usize,
                "true",
            ));
        }
        self.edits.push(Edit::insert(start + 1, moved));
    }
}

impl AstVisitor for Finder<'_> {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::ArrayCompr { query, .. }
            | Expr::SetCompr { query, .. }
            | Expr::ObjectCompr { query, .. } => self.query(query),
            _ => {}
        }
        true
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        if let Literal::Every { query, .. } = &s.literal {
            self.query(query);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;
    use crate::rego::tests::eval_with;

    #[test]
    fn late_some_moves_to_the_start() {
        let src = "package t\np contains [k, v] if {\n  some c\n  c = input.cs[_]\n  some k, v\n  v = c[k]\n}\n";
        assert_eq!(
            prepare(src, true),
            "package t\np contains [k, v] if { some k, v;\n  some c\n  c = input.cs[_]\n  true\n  v = c[k]\n}\n"
        );
        let got = eval_with(src, true, r#"{"cs": [{"a": 1}, [2]]}"#);
        assert_eq!(got.as_set().map(|s| s.len()).ok(), Some(2));
    }
}
