//! OPA's wording for the errors regorus reports in its own words.
//!
//! Where OPA and regorus both refuse a policy or fail an evaluation, the
//! user should read what `opa test` or conftest would print. Every place
//! that shows an evaluation or compile error (`regard test`, `regard
//! verify`, Gatekeeper reviews on either evaluator) passes regorus' message
//! through [`render`], which rewrites the ones OPA words differently and
//! condenses the rest to one line ([`crate::error::condense`]):
//!
//! | regorus | OPA |
//! |---|---|
//! | `rule conflicts with rule at …`, `rules must not produce multiple outputs` (and its variants), at a complete rule | `file:line: eval_conflict_error: complete rules must not produce multiple outputs` |
//! | the same at an object rule (`p[k] := v`) | `file:line: eval_conflict_error: object keys must be unique` |
//! | ``value for key `k` generated multiple times`` (object comprehension) | `file:line: eval_conflict_error: object keys must be unique` |
//! | `functions must not produce multiple outputs for same inputs`, `function produced multiple outputs …` (at the call) | `file:line: eval_conflict_error: functions must not produce multiple outputs for same inputs` (at the definition) |
//! | ``var `x` used before definition below`` (a `:=` or `some` after a use) | `file:line: rego_compile_error: var x referenced above` (at the declaration) |
//! | ``use of undefined variable `x` is unsafe`` | `file:line: rego_unsafe_var_error: var x is unsafe` |
//!
//! OPA locates an error by file and line only. A conflict is reported at
//! the definition that produced the second, different value, which is the
//! one regorus points at, except for functions: regorus points at the call,
//! so the definition is found from the called name. With one definition it
//! is that one; with several, regorus does not say which one differed, and
//! the second is named (OPA names the first whose value differs from the
//! first value produced).

use regorus::unstable::{Expr, Module, Parser, Ref, Rule, RuleHead};

use super::ast::{AstVisitor, package_components, walk_expr};
use super::strict::CompileError;

const CONFLICT: &str = "eval_conflict_error";
const COMPLETE: &str = "complete rules must not produce multiple outputs";
const OBJECT_KEYS: &str = "object keys must be unique";
const FUNCTIONS: &str = "functions must not produce multiple outputs for same inputs";
/// Prefix of the names `function_modules` gives definitions it moves.
const MOVED_FUNCTION: &str = "__regard_fn";

/// OPA's text for a regorus error message: a compile error or an evaluation
/// conflict in OPA's words (`file:line: kind: message`), any other message
/// on one line. `modules` are the modules of the engine that reported it.
pub(crate) fn render(message: &str, modules: &[Ref<Module>]) -> String {
    if let Some(e) = compile_error(message) {
        return e.to_string();
    }
    conflict(message, modules).unwrap_or_else(|| crate::error::condense(message))
}

/// The compile error OPA reports where regorus reports `message`, when OPA
/// words it differently.
pub(crate) fn compile_error(message: &str) -> Option<CompileError> {
    let text = error_text(message)?;
    let places = locations(message);
    if let Some(name) = quoted(text, "var `", "` used before definition below") {
        // regorus names the use first and the declaration second; OPA
        // reports the declaration.
        let (file, line, _) = places.get(1)?;
        return Some(CompileError {
            file: (*file).to_owned(),
            line: *line,
            kind: super::strict::COMPILE_ERROR,
            message: format!("var {name} referenced above"),
        });
    }
    if let Some(name) = quoted(text, "use of undefined variable `", "` is unsafe") {
        let (file, line, _) = places.first()?;
        return Some(CompileError {
            file: (*file).to_owned(),
            line: *line,
            kind: "rego_unsafe_var_error",
            message: format!("var {name} is unsafe"),
        });
    }
    None
}

/// OPA's text for a conflicting value, or `None` for other messages.
fn conflict(message: &str, modules: &[Ref<Module>]) -> Option<String> {
    let text = error_text(message)?;
    let (file, line, col) = *locations(message).first()?;
    let rule_conflict = text.starts_with("rule conflicts with rule at ")
        || matches!(
            text,
            "rules must not produce multiple outputs"
                | "complete rules should not produce multiple outputs"
                | "rules should not produce multiple outputs."
        );
    let (file, line, what) = if rule_conflict {
        let what = match rule_kind(modules, file, line)? {
            Kind::Complete => COMPLETE,
            Kind::Object => OBJECT_KEYS,
            Kind::Function => FUNCTIONS,
        };
        (file.to_owned(), line, what)
    } else if quoted(text, "value for key `", "` generated multiple times").is_some() {
        (file.to_owned(), line, OBJECT_KEYS)
    } else if text == FUNCTIONS || text.starts_with("function produced multiple outputs ") {
        // Without a definition to name, the call's place is better than none.
        let (def_file, def_line) =
            definition(modules, file, line, col).unwrap_or_else(|| (file.to_owned(), line));
        (def_file, def_line, FUNCTIONS)
    } else {
        return None;
    };
    Some(format!("{file}:{line}: {CONFLICT}: {what}"))
}

/// The text after `error: ` on regorus' message line.
fn error_text(message: &str) -> Option<&str> {
    message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim)
}

/// Every `--> file:line:col` place a regorus message names, in order.
fn locations(message: &str) -> Vec<(&str, u32, u32)> {
    message
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> "))
        .filter_map(|at| {
            let mut parts = at.trim().rsplitn(3, ':');
            let col = parts.next()?.parse().ok()?;
            let line = parts.next()?.parse().ok()?;
            Some((parts.next()?, line, col))
        })
        .collect()
}

/// The text between `before` and `after` when `text` is exactly `before…after`
/// (a trailing `.` allowed).
fn quoted<'t>(text: &'t str, before: &str, after: &str) -> Option<&'t str> {
    let rest = text.strip_prefix(before)?;
    let end = rest.find(after)?;
    let tail = rest.get(end.saturating_add(after.len())..)?;
    (tail.is_empty() || tail == "." || tail.starts_with(':')).then(|| rest.get(..end))?
}

/// What a conflicting definition defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Complete,
    Object,
    Function,
}

/// The kind of the rule defined at `line` of `file` (the last rule starting
/// on or before it); `None` for a set rule, which cannot conflict.
fn rule_kind(modules: &[Ref<Module>], file: &str, line: u32) -> Option<Kind> {
    let module = modules
        .iter()
        .find(|m| m.package.span.source.file() == file)?;
    let rule = module
        .policy
        .iter()
        .filter(|r| rule_line(r) <= line)
        .max_by_key(|r| rule_line(r))?;
    match rule.as_ref() {
        Rule::Default { .. } => Some(Kind::Complete),
        Rule::Spec { head, .. } => match head {
            RuleHead::Set { .. } => None,
            RuleHead::Func { .. } => Some(Kind::Function),
            RuleHead::Compr { refr, .. } => match refr.as_ref() {
                // A key with a variable in it: a rule building an object.
                Expr::RefBrack { index, .. } if has_var(index) => Some(Kind::Object),
                _ => Some(Kind::Complete),
            },
        },
    }
}

fn rule_line(rule: &Rule) -> u32 {
    match rule {
        Rule::Spec { span, .. } | Rule::Default { span, .. } => span.line,
    }
}

fn has_var(e: &Expr) -> bool {
    struct Finder(bool);
    impl AstVisitor for Finder {
        fn expr(&mut self, e: &Expr) -> bool {
            if matches!(e, Expr::Var { .. }) {
                self.0 = true;
            }
            !self.0
        }
    }
    let mut f = Finder(false);
    walk_expr(e, &mut f);
    f.0
}

/// The definition of the function called at `file:line:col` that OPA names
/// for a conflict (see the module comment), as file and line.
fn definition(modules: &[Ref<Module>], file: &str, line: u32, col: u32) -> Option<(String, u32)> {
    let caller = modules
        .iter()
        .find(|m| m.package.span.source.file() == file)?;
    let text = caller.package.span.source.line(line.checked_sub(1)?);
    // regorus places a call at its opening parenthesis.
    let open = usize::try_from(col.checked_sub(1)?).ok()?;
    if !text.get(open..)?.starts_with('(') {
        return None;
    }
    let before = text.get(..open)?.trim_end();
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        .map_or(0, |(i, c)| i.saturating_add(c.len_utf8()));
    let name = before.get(start..)?;
    let path = resolve(caller, name)?;
    let path = &path;
    let defs: Vec<(String, u32)> = modules
        .iter()
        .flat_map(|m| {
            let package = package_path(m);
            m.policy.iter().filter_map(move |r| {
                let Rule::Spec {
                    span,
                    head: RuleHead::Func { refr, .. },
                    ..
                } = r.as_ref()
                else {
                    return None;
                };
                // Forwarders `function_modules` appends are not the author's.
                if span.text().contains(&format!("= {MOVED_FUNCTION}"))
                    || span.text().contains(&format!(":= {MOVED_FUNCTION}"))
                {
                    return None;
                }
                let mut full = package.clone();
                full.extend(components(refr)?);
                if let Some(last) = full.last_mut()
                    && let Some(moved) = moved_name(last)
                {
                    *last = moved;
                }
                (full == *path).then(|| (span.source.file().clone(), span.line))
            })
        })
        .collect();
    match defs.as_slice() {
        [one] => Some(one.clone()),
        [_, second, ..] => Some(second.clone()),
        [] => None,
    }
}

/// `__regard_fn3_check` → `check`.
fn moved_name(name: &str) -> Option<String> {
    let rest = name.strip_prefix(MOVED_FUNCTION)?;
    let digits = rest.find(|c: char| !c.is_ascii_digit())?;
    rest.get(digits..)?.strip_prefix('_').map(str::to_owned)
}

/// The dotted components of a rule head or import reference.
fn components(e: &Ref<Expr>) -> Option<Vec<String>> {
    Parser::get_path_ref_components(e).ok().map(|c| {
        c.iter()
            .map(|s| s.text().trim_matches('"').to_owned())
            .collect()
    })
}

/// The path under `data` a name called in `module` refers to: a full
/// `data.` path, a path through an import, or a name in its package.
fn resolve(module: &Module, name: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
    let (first, rest) = parts.split_first()?;
    if first == "data" {
        return Some(rest.to_vec());
    }
    for import in &module.imports {
        let mut target = components(&import.refr)?;
        let alias = match &import.r#as {
            Some(alias) => alias.text().to_owned(),
            None => target.last()?.clone(),
        };
        if alias == *first && target.first().is_some_and(|t| t == "data") {
            target.remove(0);
            target.extend(rest.iter().cloned());
            return Some(target);
        }
    }
    let mut path = package_path(module);
    path.extend(parts);
    Some(path)
}

/// A module's package as components under `data`.
fn package_path(module: &Module) -> Vec<String> {
    let mut path = package_components(module);
    if path.first().is_some_and(|p| p == "data") {
        path.remove(0);
    }
    path
}

#[cfg(test)]
mod tests {
    use regorus::{Engine, Value};

    use super::*;

    /// The text regard shows for evaluating `rule` over `files` with `input`.
    fn shown(files: &[(&str, &str)], rule: &str, input: &str) -> String {
        let mut e = Engine::new();
        for (name, src) in files {
            e.add_policy((*name).to_owned(), (*src).to_owned()).unwrap();
        }
        e.set_input(Value::from_json_str(input).unwrap());
        let err = e
            .eval_query(rule.to_owned(), false)
            .unwrap_err()
            .to_string();
        render(&err, e.get_modules())
    }

    #[test]
    fn complete_rules() {
        let src =
            "package t\np := 1 if input.a\np := 2 if input.b\nq := x if {\n  some x in [1, 2]\n}\n";
        let both = r#"{"a": true, "b": true}"#;
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.p", both),
            "t.rego:3: eval_conflict_error: complete rules must not produce multiple outputs"
        );
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.q", both),
            "t.rego:4: eval_conflict_error: complete rules must not produce multiple outputs"
        );
        // A ground key is a complete rule at that path.
        let keyed = "package t\no[\"a\"] := 1\no[\"a\"] := 2\n";
        assert_eq!(
            shown(&[("t.rego", keyed)], "data.t.o", "{}"),
            "t.rego:3: eval_conflict_error: complete rules must not produce multiple outputs"
        );
    }

    #[test]
    fn object_rules_and_comprehensions() {
        let src = "package t\no[k] := v if {\n  k := \"a\"\n  some v in [1, 2]\n}\n\
                   r[k] := 1 if k := \"a\"\nr[k] := 2 if k := \"a\"\n\
                   c := {k: v |\n  k := \"a\"\n  some v in [1, 2]\n}\n";
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.o", "{}"),
            "t.rego:2: eval_conflict_error: object keys must be unique"
        );
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.r", "{}"),
            "t.rego:7: eval_conflict_error: object keys must be unique"
        );
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.c", "{}"),
            "t.rego:8: eval_conflict_error: object keys must be unique"
        );
    }

    #[test]
    fn functions_are_named_at_their_definition() {
        let lib = "package lib\nf(x) := 1 if x > 0\nf(x) := 2 if x > 1\ng(x) := y if {\n  some y in [x, 2]\n}\n";
        let caller = "package main\nimport data.lib\nimport data.lib.g as h\n\
                      a := lib.f(5)\nb := data.lib.g(1)\nc := h(1)\n";
        let files = [("lib.rego", lib), ("main.rego", caller)];
        assert_eq!(
            shown(&files, "data.main.a", "{}"),
            "lib.rego:3: eval_conflict_error: functions must not produce multiple outputs for same inputs"
        );
        for rule in ["data.main.b", "data.main.c"] {
            assert_eq!(
                shown(&files, rule, "{}"),
                "lib.rego:4: eval_conflict_error: functions must not produce multiple outputs for same inputs"
            );
        }
        let local = "package lib\nf(x) := 1 if x > 0\nf(x) := 2 if x > 1\np := f(3)\n";
        assert_eq!(
            shown(&[("l.rego", local)], "data.lib.p", "{}"),
            "l.rego:3: eval_conflict_error: functions must not produce multiple outputs for same inputs"
        );
    }

    #[test]
    fn compile_errors() {
        let used = "package t\np if {\n  x == 1\n  x := input.a\n}\n";
        assert_eq!(
            shown(&[("t.rego", used)], "data.t.p", "{}"),
            "t.rego:4: rego_compile_error: var x referenced above"
        );
        let some = "package t\np if {\n  x == 1\n  some x\n  x = 1\n}\n";
        assert_eq!(
            shown(&[("t.rego", some)], "data.t.p", "{}"),
            "t.rego:4: rego_compile_error: var x referenced above"
        );
        let unsafe_var = "package t\np if {\n  y == 1\n}\n";
        assert_eq!(
            shown(&[("t.rego", unsafe_var)], "data.t.p", "{}"),
            "t.rego:3: rego_unsafe_var_error: var y is unsafe"
        );
    }

    #[test]
    fn other_messages_are_condensed() {
        let src = "package t\np := to_number(\"x\")\n";
        assert_eq!(
            shown(&[("t.rego", src)], "data.t.p", "{}"),
            "t.rego:2:17: could not parse string as number"
        );
        assert_eq!(render("plain\n", &[]), "plain");
        assert_eq!(
            quoted(
                "var `x` used before definition below.",
                "var `",
                "` used before definition below"
            ),
            Some("x")
        );
        assert_eq!(
            quoted(
                "var `x` used before definition belowish",
                "var `",
                "` used before definition below"
            ),
            None
        );
        assert_eq!(moved_name("__regard_fn3_check"), Some("check".to_owned()));
        assert_eq!(moved_name("__regard_fnx"), None);
    }
}
