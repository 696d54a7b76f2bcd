//! Every definition of a `test_*` rule is a test of its own, as in OPA.
//!
//! OPA runs each definition of a test rule separately: two `test_x` rules in
//! one package (in one file or in several), or one `test_x { A } { B }` with
//! two bodies, are two tests, reported as `data.pkg.test_x` and
//! `data.pkg.test_x#01` (then `#02`, …). regorus merges the definitions into
//! one rule, so a failing definition would hide behind a passing one.
//!
//! [`split`] runs before the test policies are compiled. It parses every
//! module, counts the test definitions of each package in load order, and
//! gives every definition after the first an internal name (`test_x__01`) by
//! editing the source: the head's name is replaced, and a further body gets
//! a head of its own written in front of its `{`. No line is added or
//! removed. The returned [`SplitTest`]s map internal names back to the names
//! OPA reports.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{AssignOp, Expr, Module, Rule, RuleHead};

use super::ast::{package_components, parse_module, rule_name};
use super::text::{Edit, apply_edits};

/// A test definition compiled under an internal name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitTest {
    /// The file defining it.
    pub file: String,
    /// Its package, without `data.` (`main`).
    pub package: String,
    /// The rule name it is compiled as (`test_x__01`).
    pub rule: String,
    /// The name OPA reports (`test_x#01`).
    pub name: String,
    /// 1-based line of the definition (of its body, for a further body).
    pub line: u32,
}

/// Renames the second and later definitions of each `test_*` rule in each
/// package; `sources` are `(file, text)` in load order and are edited in
/// place (`test_x if false` after a `test_x` becomes `test_x__01 if false`).
/// Modules that do not parse are left for the compiler to report.
pub(crate) fn split(sources: &mut [(String, String)], rego_v1: bool) -> Vec<SplitTest> {
    let modules: Vec<Option<Module>> = sources
        .iter()
        .map(|(file, text)| parse_module(file, text, rego_v1).ok())
        .collect();
    // Every rule name per package, so internal names never collide.
    let mut taken: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut found: Vec<(usize, String, Definition)> = Vec::new();
    for (index, module) in modules.iter().enumerate() {
        let Some(module) = module else { continue };
        let mut package = package_components(module);
        if package.first().is_some_and(|p| p == "data") {
            package.remove(0);
        }
        let package = package.join(".");
        let names = taken.entry(package.clone()).or_default();
        for rule in &module.policy {
            if let Some(name) = rule_name(rule) {
                names.insert(name);
            }
            for def in definitions(rule, module.rego_v1) {
                found.push((index, package.clone(), def));
            }
        }
    }

    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); sources.len()];
    let mut out = Vec::new();
    for (index, package, def) in found {
        let count = seen.entry((package.clone(), def.name.clone())).or_insert(0);
        *count += 1;
        let k = *count - 1;
        if k == 0 {
            continue;
        }
        let names = taken.entry(package.clone()).or_default();
        let mut rule = format!("{}__{k:02}", def.name);
        while names.contains(&rule) {
            rule.push('_');
        }
        names.insert(rule.clone());
        let edit = match def.site {
            Site::Head { start, end } => Edit::replace(start, end, rule.clone()),
            Site::Body { at, ref head_tail } => Edit::insert(at, format!("{rule}{head_tail} ")),
        };
        if let Some(list) = edits.get_mut(index) {
            list.push(edit);
        }
        out.push(SplitTest {
            file: sources
                .get(index)
                .map(|(f, _)| f.clone())
                .unwrap_or_default(),
            package,
            rule,
            name: format!("{}#{k:02}", def.name),
            line: def.line,
        });
    }
    for ((_, text), list) in sources.iter_mut().zip(edits) {
        if !list.is_empty() {
            *text = apply_edits(text, list);
        }
    }
    out
}

/// One test definition and where its name is written (or must be).
struct Definition {
    name: String,
    line: u32,
    site: Site,
}

enum Site {
    /// The head's name, at these byte offsets.
    Head { start: usize, end: usize },
    /// A further body starting at `at`, which needs a head: the name
    /// followed by `head_tail` (the value and `if`, as the first head has them).
    Body { at: usize, head_tail: String },
}

fn var_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// The test definitions a rule makes: its head, then one per further
/// (non-`else`) body. Only complete rules named `test_*` are tests; partial
/// sets, functions, ref heads and defaults are left alone.
fn definitions(rule: &Rule, rego_v1: bool) -> Vec<Definition> {
    let Rule::Spec { span, head, bodies } = rule else {
        return Vec::new();
    };
    let RuleHead::Compr { refr, assign, .. } = head else {
        return Vec::new();
    };
    let Some(name) = var_name(refr).filter(|n| n.starts_with("test_")) else {
        return Vec::new();
    };
    let name_span = refr.span();
    if name_span.text() != name {
        return Vec::new();
    }
    let mut defs = vec![Definition {
        name: name.clone(),
        line: span.line,
        site: Site::Head {
            start: name_span.start as usize,
            end: name_span.end as usize,
        },
    }];
    let value = match assign {
        None => Some(String::new()),
        Some(a) => {
            let op = match a.op {
                AssignOp::Eq => "=",
                AssignOp::ColEq => ":=",
            };
            // A value written over several lines cannot be repeated on one.
            let text = a.value.span().text();
            (!text.contains(['\n', '\r', '#'])).then(|| format!(" {op} {text}"))
        }
    };
    let Some(value) = value else {
        return defs;
    };
    let head_tail = if rego_v1 {
        format!("{value} if")
    } else {
        value
    };
    for body in bodies.iter().skip(1) {
        if body.is_else || !body.span.text().starts_with('{') {
            continue;
        }
        defs.push(Definition {
            name: name.clone(),
            line: body.span.line,
            site: Site::Body {
                at: body.span.start as usize,
                head_tail: head_tail.clone(),
            },
        });
    }
    defs
}

#[cfg(test)]
mod tests {
    use super::*;
    use regorus::{Engine, Value};

    fn run(files: &[(&str, &str)], rego_v1: bool) -> (Vec<String>, Vec<(String, String, u32)>) {
        let mut sources: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
            .collect();
        let split = split(&mut sources, rego_v1);
        (
            sources.into_iter().map(|(_, t)| t).collect(),
            split
                .into_iter()
                .map(|s| (format!("{}:{}", s.file, s.rule), s.name, s.line))
                .collect(),
        )
    }

    fn eval(sources: &[(&str, String)], rego_v1: bool, rule: &str) -> Value {
        let mut engine = Engine::new();
        engine.set_rego_v0(!rego_v1);
        for (file, text) in sources {
            engine.add_policy((*file).to_owned(), text.clone()).unwrap();
        }
        engine.eval_rule(rule.to_owned()).unwrap()
    }

    #[test]
    fn later_definitions_in_a_file_are_renamed_in_place() {
        let src = "package t\n\ntest_x if {\n  true\n}\n\ntest_x if {\n  false\n}\n\ntest_x if 1 == 1\ntest_y if true\n";
        let (texts, split) = run(&[("t.rego", src)], true);
        assert_eq!(
            texts[0],
            "package t\n\ntest_x if {\n  true\n}\n\ntest_x__01 if {\n  false\n}\n\ntest_x__02 if 1 == 1\ntest_y if true\n"
        );
        assert_eq!(
            split,
            vec![
                ("t.rego:test_x__01".to_owned(), "test_x#01".to_owned(), 7),
                ("t.rego:test_x__02".to_owned(), "test_x#02".to_owned(), 11),
            ]
        );
        let text = texts[0].clone();
        assert_eq!(
            eval(&[("t.rego", text.clone())], true, "data.t.test_x"),
            Value::from(true)
        );
        assert_eq!(
            eval(&[("t.rego", text.clone())], true, "data.t.test_x__01"),
            Value::Undefined
        );
        assert_eq!(
            eval(&[("t.rego", text)], true, "data.t.test_x__02"),
            Value::from(true)
        );
    }

    #[test]
    fn definitions_are_counted_per_package_across_files() {
        let a = "package p\ntest_x if true\n";
        let b = "package p\ntest_x if false\n";
        let c = "package q\ntest_x if true\n";
        let (texts, split) = run(&[("a.rego", a), ("b.rego", b), ("c.rego", c)], true);
        assert_eq!(texts, vec![a, "package p\ntest_x__01 if false\n", c]);
        assert_eq!(
            split,
            vec![("b.rego:test_x__01".to_owned(), "test_x#01".to_owned(), 2)]
        );
    }

    #[test]
    fn further_bodies_get_a_head_of_their_own() {
        let v0 = "package t\ntest_x { true } {\n  false\n}\ntest_v = true { true } { 1 == 1 }\n";
        let (texts, split) = run(&[("t.rego", v0)], false);
        assert_eq!(
            texts[0],
            "package t\ntest_x { true } test_x__01 {\n  false\n}\ntest_v = true { true } test_v__01 = true { 1 == 1 }\n"
        );
        assert_eq!(
            split,
            vec![
                ("t.rego:test_x__01".to_owned(), "test_x#01".to_owned(), 2),
                ("t.rego:test_v__01".to_owned(), "test_v#01".to_owned(), 5),
            ]
        );
        let text = texts[0].clone();
        assert_eq!(
            eval(&[("t.rego", text.clone())], false, "data.t.test_x"),
            Value::from(true)
        );
        assert_eq!(
            eval(&[("t.rego", text)], false, "data.t.test_x__01"),
            Value::Undefined
        );

        let v1 = "package t\ntest_x if { true } { false }\n";
        let (texts, _) = run(&[("t.rego", v1)], true);
        assert_eq!(
            texts[0],
            "package t\ntest_x if { true } test_x__01 if { false }\n"
        );
        assert_eq!(
            eval(&[("t.rego", texts[0].clone())], true, "data.t.test_x__01"),
            Value::Undefined
        );
    }

    #[test]
    fn else_chains_todos_helpers_and_broken_files_are_left_alone() {
        let src = "package t\ntest_e = 1 if { false } else = 2 if { true }\ntodo_test_a if true\ntodo_test_a if false\nhelper if true\nhelper if false\n";
        assert!(parse_module("t.rego", src, true).is_ok());
        let (texts, split) = run(
            &[("t.rego", src), ("bad.rego", "package t\ntest_e if {")],
            true,
        );
        assert_eq!(texts, vec![src, "package t\ntest_e if {"]);
        assert!(split.is_empty());
    }

    #[test]
    fn internal_names_avoid_existing_rules() {
        let src = "package t\ntest_x__01 if true\ntest_x if true\ntest_x if false\n";
        let (texts, split) = run(&[("t.rego", src)], true);
        assert_eq!(
            texts[0],
            "package t\ntest_x__01 if true\ntest_x if true\ntest_x__01_ if false\n"
        );
        assert_eq!(
            split,
            vec![("t.rego:test_x__01_".to_owned(), "test_x#01".to_owned(), 4)]
        );
    }
}
