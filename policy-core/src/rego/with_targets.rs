//! `with` targets named as OPA resolves them, across the files of a package.
//!
//! OPA resolves the target of `with` like any other reference: a bare name
//! that is a rule of the package (`ignore with affected as false`) means
//! `data.<package>.affected`, and a package's own function may be named by
//! its full path (`with data.<package>.f as mock`). regorus looks bare
//! targets up only among functions (a rule gives `undefined rule`) and takes
//! a full path only as a document (a function named so is not replaced).
//! Tests written for `opa test` mock rules by their bare names all the time,
//! often from a `_test.rego` file while the rule lives in the policy file.
//!
//! [`rewrite`] runs over a whole set, after the per-module passes: for each
//! package with a module whose `with` names something other than `input` or
//! `data`, or names its own package's path, every module of that package is
//! parsed to know its rules and functions, and each such target is written
//! the way regorus reads it: a rule's bare name gets its `data.<package>.`
//! prefix, a function's full path loses it. Names that are neither (builtins,
//! import aliases, typos OPA refuses) are left as they are. Edits stay on
//! their line.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, LiteralStmt, Module, Rule, RuleHead};

use super::ast::{AstVisitor, package_components, parse_module, rule_name, walk_module};
use super::function_modules::declared_package;
use super::text::{Edit, apply_edits};

/// Rewrites the `with` targets of `sources` (`(file, text)` in load order,
/// edited in place). Modules that do not parse are left alone.
pub(crate) fn rewrite(sources: &mut [(String, String)], rego_v1: bool) {
    let packages: Vec<Option<&str>> = sources.iter().map(|(_, t)| declared_package(t)).collect();
    let wanted: BTreeSet<&str> = sources
        .iter()
        .zip(&packages)
        .filter(|((_, text), package)| {
            package.is_some_and(|p| may_need_rewrite(text, &format!("data.{p}.")))
        })
        .filter_map(|(_, p)| *p)
        .collect();
    if wanted.is_empty() {
        return;
    }

    let modules: Vec<Option<Module>> = sources
        .iter()
        .zip(&packages)
        .map(|((file, text), package)| {
            package
                .filter(|p| wanted.contains(p))
                .and_then(|_| parse_module(file, text, rego_v1).ok())
        })
        .collect();

    // package -> (rule names, function names), over all its modules.
    let mut names: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for module in modules.iter().flatten() {
        let entry = names
            .entry(package_components(module).join("."))
            .or_default();
        for rule in &module.policy {
            let Some(name) = rule_name(rule) else {
                continue;
            };
            if is_function(rule) {
                entry.1.insert(name);
            } else {
                entry.0.insert(name);
            }
        }
    }

    for ((_, text), module) in sources.iter_mut().zip(&modules) {
        let Some(module) = module else { continue };
        let package = package_components(module).join(".");
        let Some((rules, functions)) = names.get(&package) else {
            continue;
        };
        let aliases: BTreeSet<String> = module
            .imports
            .iter()
            .filter_map(|i| i.r#as.as_ref().map(|s| s.text().to_owned()))
            .collect();
        let mut finder = Targets {
            src: text,
            prefix: format!("data.{package}."),
            rules,
            functions,
            aliases: &aliases,
            edits: Vec::new(),
        };
        walk_module(module, &mut finder);
        if !finder.edits.is_empty() {
            let edits = std::mem::take(&mut finder.edits);
            *text = apply_edits(text, edits);
        }
    }
}

/// Whether a module's text has a `with` whose target is neither `input` nor
/// `data`, or is the module's own package path (`prefix`, `data.p.`):
/// conservative, never no where [`rewrite`] would change something.
fn may_need_rewrite(text: &str, prefix: &str) -> bool {
    super::ast::word_positions(text, "with")
        .into_iter()
        .any(|at| {
            let rest = text.get(at + 4..).unwrap_or("").trim_start();
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            !word.is_empty()
                && (!matches!(word.as_str(), "input" | "data") || rest.starts_with(prefix))
        })
}

fn is_function(rule: &Rule) -> bool {
    matches!(
        rule,
        Rule::Spec {
            head: RuleHead::Func { .. },
            ..
        }
    )
}

struct Targets<'a> {
    src: &'a str,
    /// `data.<package>.`
    prefix: String,
    rules: &'a BTreeSet<String>,
    functions: &'a BTreeSet<String>,
    aliases: &'a BTreeSet<String>,
    edits: Vec<Edit>,
}

impl AstVisitor for Targets<'_> {
    fn stmt(&mut self, stmt: &LiteralStmt) {
        for w in &stmt.with_mods {
            let target = w.refr.as_ref();
            let Some(root) = root_var(target) else {
                continue;
            };
            let start = root.span().start as usize;
            let name = root.span().text();
            if self.rules.contains(name)
                && !self.functions.contains(name)
                && !self.aliases.contains(name)
                && !matches!(name, "input" | "data")
            {
                self.edits.push(Edit::insert(start, self.prefix.clone()));
                continue;
            }
            // `data.<package>.f` naming one of the package's functions.
            if name == "data" {
                let end = target.span().end as usize;
                let Some(written) = self.src.get(start..end) else {
                    continue;
                };
                if let Some(rest) = written.strip_prefix(self.prefix.as_str())
                    && self.functions.contains(rest)
                {
                    self.edits
                        .push(Edit::replace(start, start + self.prefix.len(), ""));
                }
            }
        }
    }
}

/// The variable a reference starts from (`a` of `a.b[c]`).
fn root_var(e: &Expr) -> Option<&Expr> {
    let mut e = e;
    loop {
        match e {
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => e = refr.as_ref(),
            Expr::Var { .. } => return Some(e),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regorus::Value;

    use crate::rego::tests::eval_set_rule as eval;

    fn rewritten(files: &[&str], rego_v1: bool) -> Vec<String> {
        crate::rego::tests::rewritten_set(rewrite, files, rego_v1)
    }

    const POLICY: &str = "package s\n\naffected {\n\tinput.files[_] == \"main.tf\"\n}\n\nignore {\n\tnot affected\n}\n";

    #[test]
    fn a_bare_rule_name_in_another_file_of_the_package_gets_its_path() {
        let test = "package s\n\ntest_ignore {\n\tignore with affected as false\n}\n\ntest_not_ignore {\n\tnot ignore with affected as true\n}\n";
        let out = rewritten(&[POLICY, test], false);
        assert_eq!(out[0], POLICY);
        assert_eq!(
            out[1],
            "package s\n\ntest_ignore {\n\tignore with data.s.affected as false\n}\n\ntest_not_ignore {\n\tnot ignore with data.s.affected as true\n}\n"
        );
        assert_eq!(eval(&out, false, "data.s.test_ignore"), Value::from(true));
        assert_eq!(
            eval(&out, false, "data.s.test_not_ignore"),
            Value::from(true)
        );
    }

    #[test]
    fn a_rule_path_below_a_bare_name_is_qualified_too() {
        let src = "package s\nimport rego.v1\n\ncfg := {\"a\": {\"b\": 1}}\n\nv := cfg.a.b\n\ntest_v if v == 2 with cfg.a.b as 2\n";
        let out = rewritten(&[src], true);
        // regorus then replaces part of a rule's value wrongly ("complete
        // rules should not produce multiple outputs"), a difference the
        // README lists; the bare path alone is `undefined rule`.
        assert!(out[0].contains("with data.s.cfg.a.b as 2"), "{}", out[0]);
    }

    #[test]
    fn a_package_function_named_by_its_path_is_mocked_by_name() {
        let src = "package q\nimport rego.v1\n\nf(x) := x + 1\n\ng := f(1)\n\nmock(_) := 10\n\ntest_fn if g == 10 with data.q.f as mock\n";
        let out = rewritten(&[src], true);
        assert!(out[0].contains("with f as mock"), "{}", out[0]);
        assert_eq!(eval(&out, true, "data.q.test_fn"), Value::from(true));
    }

    #[test]
    fn builtins_functions_aliases_input_and_data_stay() {
        let src = "package q\nimport rego.v1\nimport data.q as x\n\nf(x) := x + 1\n\nmock(_) := 10\n\ng := f(1)\n\nh if startswith(\"abc\", \"a\")\n\nt1 if g == 10 with f as mock\nt2 if not h with startswith as false\nt3 if x.g == 4 with x.g as 4\nt4 if g with input as {}\nt5 if g with data.other as 1\n";
        assert_eq!(rewritten(&[src], true), vec![src.to_owned()]);
    }

    #[test]
    fn packages_without_such_targets_are_not_parsed_or_changed() {
        let other = "package other\n\nbroken {{{\n";
        let test = "package s\n\ntest_ignore {\n\tignore with affected as false\n}\n";
        let out = rewritten(&[POLICY, other, test], false);
        assert_eq!(out[1], other);
        assert!(out[2].contains("with data.s.affected"));
    }
}
