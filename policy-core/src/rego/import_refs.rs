//! Pass `import_refs`: references through an import alias, spelled out.
//!
//! `import data.fugue` then `fugue.input_type` reads one rule in OPA. regorus
//! evaluates the alias as the whole imported document first (every rule of
//! every package under `data.fugue`) and indexes the result, so an unrelated
//! rule under that prefix can fail the lookup with "recursion detected" or an
//! error of its own. A ref whose base is a `data` import alias is rewritten
//! to the imported path (`data.fugue.input_type`), which regorus resolves
//! rule by rule. A function called through an alias is spelled out as well,
//! so that regorus sees its arity and binds an output argument
//! (`lib.get_params(c, params)`). Every rule where the alias also appears on
//! its own (a function argument, a `some` variable) is left as written,
//! since there the name may be a local.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, LiteralStmt, Module};

use super::ast::{AstVisitor, walk_expr, walk_rule};
use super::text::Edit;

pub(crate) fn edits(_src: &str, module: &Module) -> Vec<Edit> {
    let aliases = data_aliases(module);
    if aliases.is_empty() {
        return Vec::new();
    }
    let mut edits = Vec::new();
    for rule in &module.policy {
        let mut uses = Uses {
            aliases: &aliases,
            ref_bases: BTreeSet::new(),
            found: Vec::new(),
            bare: false,
        };
        walk_rule(rule, &mut uses);
        if uses.bare {
            continue;
        }
        for (start, end, path) in uses.found {
            edits.push(Edit::replace(start, end, path.to_owned()));
        }
    }
    edits
}

/// Alias → imported path, for imports of `data` documents.
fn data_aliases(module: &Module) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut twice = BTreeSet::new();
    for imp in &module.imports {
        let path = imp.refr.span().text();
        if !path.starts_with("data.") || path.contains(['[', '`', '"']) {
            continue;
        }
        let alias = match &imp.r#as {
            Some(a) => a.text(),
            None => match path.rsplit_once('.') {
                Some((_, last)) => last,
                None => continue,
            },
        };
        if out.insert(alias.to_owned(), path.to_owned()).is_some() {
            twice.insert(alias.to_owned());
        }
    }
    // One alias imported twice is OPA's "import must not shadow" error;
    // the text is left for that check to report.
    out.retain(|alias, _| !twice.contains(alias));
    out
}

struct Uses<'a> {
    aliases: &'a BTreeMap<String, String>,
    /// Start offsets of variables that are the base of a ref.
    ref_bases: BTreeSet<u32>,
    /// (start, end, imported path) of each alias to spell out.
    found: Vec<(usize, usize, &'a str)>,
    /// The alias appears outside a ref: the rule is left alone.
    bare: bool,
}

impl AstVisitor for Uses<'_> {
    fn expr(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Call { fcn, params, .. } => {
                // A function named through an alias is spelled out too:
                // regorus resolves the call either way, but binds an output
                // argument (`lib.f(x, out)`, v0's `out = lib.f(x)`) only
                // when it can see the function's arity, through the path.
                if let Some(Expr::Var { span, .. }) = ref_base(fcn)
                    && let Some(path) = self.aliases.get(span.text())
                {
                    self.found
                        .push((span.start as usize, span.end as usize, path.as_str()));
                }
                for p in params {
                    walk_expr(p, self);
                }
                false
            }
            Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                if let Some(base) = ref_base(e) {
                    self.ref_bases.insert(base.span().start);
                }
                true
            }
            Expr::Var { span, .. } => {
                if let Some(path) = self.aliases.get(span.text()) {
                    if self.ref_bases.contains(&span.start) {
                        self.found
                            .push((span.start as usize, span.end as usize, path.as_str()));
                    } else {
                        self.bare = true;
                    }
                }
                true
            }
            _ => true,
        }
    }

    fn stmt(&mut self, s: &LiteralStmt) {
        let declared = match &s.literal {
            Literal::SomeVars { vars, .. } => vars.iter().map(|v| v.text()).collect(),
            // `some k, v in xs` is walked as expressions, like any variable.
            Literal::Every { key, value, .. } => key
                .iter()
                .chain([value])
                .map(|v| v.text())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        if declared.iter().any(|v| self.aliases.contains_key(*v)) {
            self.bare = true;
        }
    }
}

/// The variable a ref chain starts from.
fn ref_base(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => ref_base(refr),
        Expr::Var { .. } => Some(e),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rego::prepare;

    #[test]
    fn alias_refs_spelled_out() {
        let src = "package t\nimport data.lib.fugue\nimport data.x.y as z\np { fugue.kind == \"a\"; z[\"k\"] }\n";
        assert_eq!(
            prepare(src, false),
            "package t\nimport data.lib.fugue\nimport data.x.y as z\np { data.lib.fugue.kind == \"a\"; data.x.y[\"k\"] }\n"
        );
    }

    #[test]
    fn shadowing_rules_untouched() {
        let src =
            "package t\nimport data.lib.fugue\nf(fugue) = fugue.a\nq { some fugue; fugue.x }\n";
        assert_eq!(prepare(src, false), src);
    }

    #[test]
    fn calls_through_an_alias_are_spelled_out() {
        let src =
            "package t\nimport data.lib.fugue\np { fugue.f(1) }\nq { fugue.g(1, out); out > 1 }\n";
        assert_eq!(
            prepare(src, false),
            "package t\nimport data.lib.fugue\np { data.lib.fugue.f(1) }\nq { data.lib.fugue.g(1, out); out > 1 }\n"
        );
    }

    #[test]
    fn input_imports_untouched() {
        let src = "package t\nimport input.spec\np { spec.x }\n";
        assert_eq!(prepare(src, false), src);
    }
}
