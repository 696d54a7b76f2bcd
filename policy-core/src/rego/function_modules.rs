//! A function defined in several files of one package is defined in one.
//!
//! OPA treats every definition of a function in a package alike, whichever
//! file holds it. regorus records, for each function, the module of its first
//! definition and evaluates every definition against that module's tables of
//! local variables, so a later file's body that binds locals reads the wrong
//! table: a panic in debug builds, `node_idx … out of bounds` otherwise
//! (regula's `check_report(_, _) { true }` in one file and the real checks in
//! `check_report_test.rego`).
//!
//! [`rewrite`] runs over a whole set, after the per-module passes. For each
//! package with a function defined in more than one module, every definition
//! outside the first defining module gets an internal name
//! (`__regard_fn3_check`, the number being the module's place in the set),
//! and the first module gets, appended after its last line, one forwarding
//! definition per internal name (`check(a0, a1) = v { v :=
//! __regard_fn3_check(a0, a1) }`). Every definition then lives in the module
//! regorus evaluates it in; callers, `with` mocks and conflicting outputs
//! behave as before. No line of any module moves.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::ast::{package_components, parse_module, var_name};
use super::text::{Edit, apply_edits};

/// Gives every function defined in several modules of a package one home
/// module; `sources` are `(file, text)` in load order, edited in place.
/// Modules that do not parse are left alone.
pub(crate) fn rewrite(sources: &mut [(String, String)], rego_v1: bool) {
    // Parsing is the cost: only packages where two modules write a head
    // with the same function name can have a function split across modules
    // (read from the text, a superset of the real heads), and a conftest
    // policy directory is one package, `main`, of many files.
    let packages: Vec<Option<&str>> = sources.iter().map(|(_, t)| declared_package(t)).collect();
    let mut seen: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for ((_, text), package) in sources.iter().zip(&packages) {
        let Some(package) = package else { continue };
        for name in head_names(text) {
            *seen.entry((package, name)).or_insert(0) += 1;
        }
    }
    let split: std::collections::BTreeSet<&str> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((p, _), _)| p)
        .collect();
    if split.is_empty() {
        return;
    }
    let modules: Vec<Option<Module>> = sources
        .iter()
        .zip(&packages)
        .map(|((file, text), package)| {
            if package.is_some_and(|p| split.contains(p)) {
                parse_module(file, text, rego_v1).ok()
            } else {
                None
            }
        })
        .collect();

    // (package, function) -> its definitions, in load order.
    let mut functions: BTreeMap<(String, String), Vec<Definition>> = BTreeMap::new();
    for (index, module) in modules.iter().enumerate() {
        let Some(module) = module else { continue };
        let package = package_components(module).join(".");
        for rule in &module.policy {
            if let Some((name, start, end, arity)) = function_head(rule) {
                functions
                    .entry((package.clone(), name))
                    .or_default()
                    .push(Definition {
                        module: index,
                        start,
                        end,
                        arity,
                    });
            }
        }
    }

    let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); sources.len()];
    let mut forwarders: Vec<String> = vec![String::new(); sources.len()];
    for ((_, name), defs) in &functions {
        let Some(home) = defs.first() else { continue };
        let arity = home.arity;
        // Differing arities are a compile error regorus reports as it is.
        if defs.iter().all(|d| d.module == home.module) || defs.iter().any(|d| d.arity != arity) {
            continue;
        }
        let home_v1 = modules
            .get(home.module)
            .and_then(Option::as_ref)
            .is_some_and(|m| m.rego_v1);
        let mut renamed_modules: Vec<usize> = Vec::new();
        for def in defs.iter().filter(|d| d.module != home.module) {
            let internal = internal_name(def.module, name);
            if let Some(list) = edits.get_mut(def.module) {
                list.push(Edit::replace(def.start, def.end, internal));
            }
            if !renamed_modules.contains(&def.module) {
                renamed_modules.push(def.module);
            }
        }
        if let Some(text) = forwarders.get_mut(home.module) {
            for module in renamed_modules {
                text.push_str(&forwarder(
                    name,
                    &internal_name(module, name),
                    arity,
                    home_v1,
                ));
            }
        }
    }

    for (((_, text), list), extra) in sources.iter_mut().zip(edits).zip(forwarders) {
        if !list.is_empty() {
            *text = apply_edits(text, list);
        }
        if !extra.is_empty() {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&extra);
        }
    }
}

/// One definition of a function: its module and where its name is written.
struct Definition {
    module: usize,
    start: usize,
    end: usize,
    arity: usize,
}

/// The name (written as a plain variable), its byte range and the arity of
/// a function definition; ref heads (`a.f(x)`) and defaults are left alone.
fn function_head(rule: &Rule) -> Option<(String, usize, usize, usize)> {
    let Rule::Spec {
        head: RuleHead::Func { refr, args, .. },
        ..
    } = rule
    else {
        return None;
    };
    let Expr::Var { span, .. } = refr.as_ref() else {
        return None;
    };
    let name = var_name(refr)?;
    Some((
        name.to_owned(),
        span.start as usize,
        span.end as usize,
        args.len(),
    ))
}

fn internal_name(module: usize, name: &str) -> String {
    format!("__regard_fn{module}_{name}")
}

/// `name(a0, …) = v { v := internal(a0, …) }`, in the home module's syntax.
fn forwarder(name: &str, internal: &str, arity: usize, rego_v1: bool) -> String {
    let args: Vec<String> = (0..arity).map(|i| format!("__regard_fa{i}")).collect();
    let args = args.join(", ");
    let keyword = if rego_v1 { " if" } else { "" };
    format!("{name}({args}) = __regard_fv{keyword} {{ __regard_fv := {internal}({args}) }}\n")
}

/// The names a module may define functions under: every identifier that
/// starts a line (or follows `default`) outside any bracket, string or
/// comment and is written right before `(`, which is where function heads
/// (`f(x) := …`, `default f(_) := …`) are; a call there is the body of an
/// `if` without braces, kept as a harmless extra. Read without lexing.
fn head_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut depth: usize = 0;
    // Whether only blanks (or `default`) came before on this line.
    let mut line_start = true;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let at_start = line_start;
        line_start = b == b'\n' || (line_start && (b == b' ' || b == b'\t' || b == b'\r'));
        match b {
            b'#' => {
                while bytes.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while bytes.get(i).is_some_and(|&c| c != b'`') {
                    i += 1;
                }
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                let mut j = i;
                while bytes.get(j).is_some_and(u8::is_ascii_whitespace) {
                    j += 1;
                }
                let name = text.get(start..i).unwrap_or("");
                if depth == 0 && at_start && bytes.get(j) == Some(&b'(') {
                    names.insert(name.to_owned());
                }
                // `default f(_) := …`: the head follows on the same line.
                line_start = at_start && name == "default";
            }
            _ => i += 1,
        }
    }
    names
}

/// The package a module declares, read from its first statement without
/// parsing (comments and blank lines skipped).
pub(crate) fn declared_package(text: &str) -> Option<&str> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let rest = line.strip_prefix("package")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start();
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '#')
        .unwrap_or(rest.len());
    rest.get(..end).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regorus::Value;

    fn rewritten(files: &[&str], rego_v1: bool) -> Vec<String> {
        crate::rego::tests::rewritten_set(rewrite, files, rego_v1)
    }

    fn eval(files: &[String], rego_v1: bool, query: &str) -> String {
        let mut engine = crate::rego::tests::engine_with(files, rego_v1);
        match engine.eval_rule(query.to_owned()) {
            Ok(Value::Undefined) => "undefined".to_owned(),
            Ok(v) => v.to_json_str().expect("json"),
            Err(e) => format!("error: {e}"),
        }
    }

    const HOME_V0: &str = "package lib\ncheck(_) {\n  true\n}\n";
    const SECOND_V0: &str = "package lib\ncheck(r) {\n  x := r[_]\n  x > 10\n}\n\nt1 { check([1]) }\nt2 { check([11]) }\n";

    #[test]
    fn head_names_are_read_at_the_top_level_only() {
        let src = "package main\n# f(x) in a comment\nimport rego.v1\n\ng(x) := y if {\n  y := h(x)\n  s := \"k(\"\n}\n\ndefault f(_) := false\nf(x) if startswith(x, \"a\")\nr := `m(` if true\nq contains v if { v := count([1]) }\n";
        let names: Vec<String> = head_names(src).into_iter().collect();
        assert_eq!(names, ["f", "g"]);
    }

    #[test]
    fn packages_without_a_shared_function_name_are_left_alone() {
        // Two modules of `main`, no function in both: nothing is parsed,
        // even a module that would not parse.
        let a = "package main\nf(x) := x\n";
        let b = "package main\ng(x) := x\nbroken {{{\n";
        assert_eq!(rewritten(&[a, b], true), vec![a.to_owned(), b.to_owned()]);
    }

    #[test]
    fn later_definitions_are_renamed_and_forwarded_from_the_first_module() {
        let out = rewritten(&[HOME_V0, SECOND_V0], false);
        assert_eq!(
            out,
            vec![
                "package lib\ncheck(_) {\n  true\n}\n\
                 check(__regard_fa0) = __regard_fv { __regard_fv := __regard_fn1_check(__regard_fa0) }\n"
                    .to_owned(),
                "package lib\n__regard_fn1_check(r) {\n  x := r[_]\n  x > 10\n}\n\nt1 { check([1]) }\nt2 { check([11]) }\n"
                    .to_owned(),
            ]
        );
        assert_eq!(eval(&out, false, "data.lib.t1"), "true");
        assert_eq!(eval(&out, false, "data.lib.t2"), "true");
    }

    #[test]
    fn outputs_of_all_definitions_still_combine() {
        let a = "package lib\nf(x) := 1 if x > 0\n";
        let b = "package lib\nf(x) := y if {\n  some y in [x]\n  y < 0\n}\n\
                 pos := f(5)\nneg := f(-3)\n";
        let out = rewritten(&[a, b], true);
        assert_eq!(
            out.first().map(String::as_str),
            Some(
                "package lib\nf(x) := 1 if x > 0\n\
                 f(__regard_fa0) = __regard_fv if { __regard_fv := __regard_fn1_f(__regard_fa0) }\n"
            )
        );
        assert_eq!(eval(&out, true, "data.lib.pos"), "1");
        assert_eq!(eval(&out, true, "data.lib.neg"), "-3");
    }

    #[test]
    fn functions_of_one_module_or_of_different_packages_are_left_alone() {
        let one = "package lib\nf(x) := 1 if x > 0\nf(x) := 2 if x < 0\n";
        let other = "package other\nf(x) := 3 if x == 0\n";
        assert_eq!(rewritten(&[one, other], true), vec![one, other]);
    }

    #[test]
    fn each_renamed_module_gets_one_forwarder() {
        let a = "package p\ng(x) := 1 if x == 1\n";
        let b = "package p\ng(x) := 2 if x == 2\ng(x) := 3 if x == 3\n";
        let c = "# header\npackage p # comment\ng(x) := 4 if x == 4\n";
        let out = rewritten(&[a, b, c], true);
        assert_eq!(
            out,
            vec![
                "package p\ng(x) := 1 if x == 1\n\
                 g(__regard_fa0) = __regard_fv if { __regard_fv := __regard_fn1_g(__regard_fa0) }\n\
                 g(__regard_fa0) = __regard_fv if { __regard_fv := __regard_fn2_g(__regard_fa0) }\n"
                    .to_owned(),
                "package p\n__regard_fn1_g(x) := 2 if x == 2\n__regard_fn1_g(x) := 3 if x == 3\n"
                    .to_owned(),
                "# header\npackage p # comment\n__regard_fn2_g(x) := 4 if x == 4\n".to_owned(),
            ]
        );
    }

    #[test]
    fn differing_arities_are_left_for_the_compiler() {
        let a = "package p\ng(x) := 1 if x == 1\n";
        let b = "package p\ng(x, y) := 2 if x == y\n";
        assert_eq!(rewritten(&[a, b], true), vec![a, b]);
    }

    #[test]
    fn declared_package_reads_the_first_statement() {
        assert_eq!(declared_package("# c\n\npackage a.b # x\n"), Some("a.b"));
        assert_eq!(declared_package("package\tx\n"), Some("x"));
        assert_eq!(declared_package("packages x\n"), None);
        assert_eq!(declared_package("import data.x\n"), None);
    }
}
