//! Pass `some_decls`: `some x` declarations after other statements.
//!
//! In OPA `some x` only declares `x` local to its query; where it stands
//! matters only to the compiler's scope checks. regorus executes the
//! declaration, and when an earlier statement of the query iterates, it
//! runs it again for the next value and fails with "duplicated definition of
//! local variable x". Each such declaration is moved to the start of its
//! query (its old place becomes `true`), where it runs once.
//!
//! Before moving anything, OPA's scope errors are reported: a name declared
//! twice in a query ("var x declared above"), and a name an earlier
//! statement of the same body uses ("var x referenced above"), which
//! regorus would report itself were the declaration not moved. A
//! function's parameters are OPA's "arg redeclared" case and are left to
//! regorus; in a comprehension or `every` body, a name the rule also uses
//! outside it may be an outer variable and is not counted.

use regorus::unstable::{AssignOp, Expr, Literal, LiteralStmt, Module, Query, Rule, RuleHead};

use super::CompileError;
use super::ast::{AstVisitor, walk_expr, walk_query, walk_rule, word_positions};
use super::text::Edit;

pub(crate) fn edits(src: &str, module: &Module) -> Result<Vec<Edit>, CompileError> {
    let mut finder = Finder {
        src,
        edits: Vec::new(),
        error: None,
        rule: (0, 0),
    };
    for rule in &module.policy {
        if let Rule::Spec { head, bodies, .. } = rule.as_ref() {
            let params: Vec<String> = match head {
                RuleHead::Func { args, .. } => args.iter().flat_map(|a| names(a)).collect(),
                _ => Vec::new(),
            };
            for b in bodies {
                if finder.error.is_none() {
                    finder.error = referenced_above(&b.query, &params);
                }
                finder.query(&b.query);
            }
        }
    }
    // Comprehension and `every` bodies, rule by rule.
    for rule in &module.policy {
        let span = rule.span();
        finder.rule = (span.start as usize, span.end as usize);
        walk_rule(rule, &mut finder);
    }
    match finder.error {
        Some(e) => Err(e),
        None => Ok(finder.edits),
    }
}

struct Finder<'a> {
    src: &'a str,
    edits: Vec<Edit>,
    error: Option<CompileError>,
    /// The byte range of the rule being walked.
    rule: (usize, usize),
}

impl Finder<'_> {
    /// [`referenced_above`] for a comprehension or `every` body spanning
    /// `start..end`: a name the enclosing rule also uses outside it may be
    /// an outer variable, which OPA lets the body declare anew, so only
    /// names seen nowhere else in the rule count.
    fn nested(&mut self, q: &Query, start: usize, end: usize) {
        // Only a `some` after another statement can be late; most bodies
        // have none, and the scan below reads the whole rule.
        let late = q
            .stmts
            .iter()
            .skip(1)
            .any(|s| matches!(s.literal, Literal::SomeVars { .. }));
        if self.error.is_some() || !late {
            return;
        }
        let (rule_start, rule_end) = self.rule;
        let rule_text = self.src.get(rule_start..rule_end).unwrap_or_default();
        let outer: Vec<String> = names_in_query(q)
            .into_iter()
            .filter(|name| {
                word_positions(rule_text, name).into_iter().any(|p| {
                    let at = rule_start.saturating_add(p);
                    !(start..end).contains(&at)
                })
            })
            .collect();
        self.error = referenced_above(q, &outer);
    }
}

/// Every variable a query's statements mention.
fn names_in_query(q: &Query) -> Vec<String> {
    struct All(Vec<String>);
    impl AstVisitor for All {
        fn expr(&mut self, e: &Expr) -> bool {
            if let Expr::Var { span, .. } = e {
                self.0.push(span.text().to_owned());
            }
            true
        }
        fn stmt(&mut self, s: &LiteralStmt) {
            if let Literal::SomeVars { vars, .. } = &s.literal {
                self.0.extend(vars.iter().map(|v| v.text().to_owned()));
            }
        }
    }
    let mut all = All(Vec::new());
    walk_query(q, &mut all);
    all.0
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

/// OPA's error for a `some x` after a statement of the same body that
/// uses `x` (comprehension and `every` bodies are scopes of their own);
/// `params` are names bound outside the body (a function's parameters),
/// which OPA reports otherwise or not at all.
fn referenced_above(q: &Query, params: &[String]) -> Option<CompileError> {
    // Names an earlier statement uses, and names declared so far (a use
    // of a declared name is no use of a new one: `some i; a[i]; some i` is
    // OPA's "declared above").
    let mut used: Vec<String> = Vec::new();
    let mut declared: Vec<String> = Vec::new();
    for s in &q.stmts {
        let mut mentioned = Vec::new();
        match &s.literal {
            Literal::SomeVars { vars, .. } => {
                let late = vars.iter().find(|v| {
                    let name = v.text();
                    used.iter().any(|u| u == name) && !params.iter().any(|p| p == name)
                });
                if let Some(v) = late {
                    return Some(CompileError::at(
                        v,
                        format!("var {} referenced above", v.text()),
                    ));
                }
                declared.extend(vars.iter().map(|v| v.text().to_owned()));
            }
            Literal::SomeIn {
                key,
                value,
                collection,
                ..
            } => {
                mentioned.extend(key.iter().flat_map(|k| names(k)));
                mentioned.extend(names(value));
                mentioned.extend(names(collection));
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => {
                if let Expr::AssignExpr {
                    op: AssignOp::ColEq,
                    lhs,
                    rhs,
                    ..
                } = expr.as_ref()
                {
                    mentioned.extend(names(rhs));
                    declared.extend(names(lhs));
                } else {
                    mentioned.extend(names(expr));
                }
            }
            Literal::Every { domain, .. } => mentioned.extend(names(domain)),
        }
        for w in &s.with_mods {
            mentioned.extend(names(&w.r#as));
        }
        used.extend(mentioned.into_iter().filter(|m| !declared.contains(m)));
    }
    None
}

/// The variables an expression mentions outside nested comprehensions.
fn names(e: &Expr) -> Vec<String> {
    struct Names(Vec<String>);
    impl AstVisitor for Names {
        fn expr(&mut self, e: &Expr) -> bool {
            match e {
                Expr::Var { span, .. } if span.text() != "_" => {
                    self.0.push(span.text().to_owned());
                    true
                }
                Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
                _ => true,
            }
        }
    }
    let mut n = Names(Vec::new());
    walk_expr(e, &mut n);
    n.0
}

impl AstVisitor for Finder<'_> {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::ArrayCompr { span, query, .. }
            | Expr::SetCompr { span, query, .. }
            | Expr::ObjectCompr { span, query, .. } => {
                self.nested(query, span.start as usize, span.end as usize);
                self.query(query);
            }
            _ => {}
        }
        true
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        if let Literal::Every { span, query, .. } = &s.literal {
            self.nested(query, span.start as usize, span.end as usize);
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

    #[test]
    fn a_declaration_after_a_use_is_refused() {
        let used = "package t\np if {\n  x == 1\n  some x\n  x = 1\n}\n";
        assert_eq!(
            crate::rego::compile(used, true).unwrap_err().to_string(),
            "4: rego_compile_error: var x referenced above"
        );
        let nested = "package t\np := [x | x == 1; some x; x = 1]\n";
        assert_eq!(
            crate::rego::compile(nested, true).unwrap_err().to_string(),
            "2: rego_compile_error: var x referenced above"
        );
        // A use inside a comprehension is in its own scope; a parameter
        // is left to regorus; an outer variable may be declared anew.
        for ok in [
            "package t\np if {\n  [y | y := 1]\n  some y\n  y = 2\n}\n",
            "package t\nf(x) if {\n  x == 1\n  some y\n  y = x\n}\n",
            "package t\np if {\n  x := 1\n  r := [x | x == 1; some x; x = 2]\n}\n",
        ] {
            assert!(crate::rego::compile(ok, true).is_ok(), "{ok}");
        }
    }
}
