//! A reference into `data` with a dynamic key reads only the rules it names.
//!
//! OPA evaluates `data.checks[name].deny` by walking the rule tree under
//! `data.checks`: for each package below it (or only the one `name` binds),
//! it evaluates that package's `deny` and nothing else. regorus evaluates the
//! whole document `data.checks` first — every rule of every package under it
//! — and then indexes it. When the rule being evaluated is itself under
//! `data.checks` (a test in `checks.a` that calls a helper which dispatches
//! on package names, as Forseti's policy-library does for its 150 tests),
//! that is a cycle: "recursion detected when evaluating rule".
//!
//! [`rewrite`] runs over a whole set, after the per-module passes. A ref
//! `data.P[k].r…` whose prefix `P` is a path of loaded packages, whose key
//! `k` is not a literal and which names at least one component `r` after the
//! key is written `__regard_dyn<m>_<n>[k].…`, with a rule appended to the
//! module that reads `data.P.<child>.r` for each package child of `P`:
//!
//! ```text
//! __regard_dyn3_0[__regard_k] = __regard_v { __regard_k := "a"; __regard_v := data.checks.a.deny }
//! __regard_dyn3_0[__regard_k] = __regard_v { __regard_k := "b"; __regard_v := data.checks.b.deny }
//! ```
//!
//! Each body reads one rule by its full path, which regorus resolves rule by
//! rule; a child without `r` leaves its key undefined, as in OPA. No line of
//! the module moves. A prefix that some `with` in the set replaces (`with
//! data.rules as mock_rules`, regula's tests) is left as written, since its
//! keys are then the mock's, not the packages'. Not covered: a key of
//! `data.P` that comes from a data file rather than a package (the rule
//! only knows packages), and a ref used as a `with` target.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, LiteralStmt};

use super::ast::{AstVisitor, parse_module, walk_module};
use super::function_modules::declared_package;
use super::text::{Edit, apply_edits};

/// Rewrites the dynamic `data` refs of `sources` (`(file, text)` in load
/// order, edited in place). Modules that do not parse are left alone.
pub(crate) fn rewrite(sources: &mut [(String, String)], rego_v1: bool) {
    let packages: Vec<Vec<String>> = sources
        .iter()
        .filter_map(|(_, t)| declared_package(t))
        .map(|p| p.split('.').map(str::to_owned).collect())
        .collect();
    if packages.is_empty() {
        return;
    }
    let mocked: Vec<Vec<String>> = sources.iter().flat_map(|(_, t)| mocked_paths(t)).collect();
    for (index, (file, text)) in sources.iter_mut().enumerate() {
        if !may_have_dynamic_ref(text) {
            continue;
        }
        let Ok(module) = parse_module(file, text, rego_v1) else {
            continue;
        };
        let mut finder = Finder {
            src: text,
            packages: &packages,
            mocked: &mocked,
            module_index: index,
            rego_v1: module.rego_v1,
            with_targets: BTreeSet::new(),
            edits: Vec::new(),
            rules: String::new(),
            next: 0,
        };
        walk_module(&module, &mut finder);
        if finder.edits.is_empty() {
            continue;
        }
        let (edits, rules) = (finder.edits, finder.rules);
        *text = apply_edits(text, edits);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&rules);
    }
}

/// Whether the text has `data.a.b[` (a bracket after a dotted `data` path):
/// conservative, never no where [`rewrite`] would change something.
fn may_have_dynamic_ref(text: &str) -> bool {
    super::ast::word_positions(text, "data")
        .into_iter()
        .any(|at| {
            let rest = text.get(at + 4..).unwrap_or("");
            let Some(path) = rest.strip_prefix('.') else {
                return false;
            };
            let end = path
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(path.len());
            end > 0 && path[end..].starts_with('[') && !path[end + 1..].starts_with('"')
        })
}

/// The dotted `data` paths written after `with` in a text (`with
/// data.rules as …` gives `["rules"]`), read without parsing.
fn mocked_paths(text: &str) -> Vec<Vec<String>> {
    super::ast::word_positions(text, "with")
        .into_iter()
        .filter_map(|at| {
            let rest = text.get(at + 4..)?.trim_start().strip_prefix("data.")?;
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            let path: Vec<String> = rest
                .get(..end)?
                .split('.')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            (!path.is_empty()).then_some(path)
        })
        .collect()
}

/// One component of a ref: a name, or a key computed at evaluation.
enum Part<'a> {
    Name(String),
    Key(&'a Expr),
}

/// The base and components of a ref chain, outermost last, with the node
/// each component ends.
fn flatten(e: &Expr) -> Option<(&Expr, Vec<(Part<'_>, &Expr)>)> {
    let mut parts = Vec::new();
    let mut node = e;
    loop {
        match node {
            Expr::RefDot { refr, field, .. } => {
                parts.push((Part::Name(field.0.text().to_owned()), node));
                node = refr.as_ref();
            }
            Expr::RefBrack { refr, index, .. } => {
                let part = match index.as_ref() {
                    Expr::String { value, .. } => {
                        Part::Name(value.as_string().ok()?.as_ref().to_owned())
                    }
                    Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. } => return None,
                    other => Part::Key(other),
                };
                parts.push((part, node));
                node = refr.as_ref();
            }
            Expr::Var { .. } => {
                parts.reverse();
                return Some((node, parts));
            }
            _ => return None,
        }
    }
}

struct Finder<'a> {
    src: &'a str,
    packages: &'a [Vec<String>],
    /// `data` paths some `with` in the set replaces.
    mocked: &'a [Vec<String>],
    module_index: usize,
    rego_v1: bool,
    /// Start offsets of `with` targets, which stay as written.
    with_targets: BTreeSet<u32>,
    edits: Vec<Edit>,
    /// The generated rules, appended to the module.
    rules: String,
    next: usize,
}

/// The package children of `prefix`, sorted.
fn children<'p>(packages: &'p [Vec<String>], prefix: &[String]) -> BTreeSet<&'p str> {
    packages
        .iter()
        .filter(|p| p.len() > prefix.len() && p.starts_with(prefix))
        .filter_map(|p| p.get(prefix.len()).map(String::as_str))
        .collect()
}

impl AstVisitor for Finder<'_> {
    fn stmt(&mut self, s: &LiteralStmt) {
        for w in &s.with_mods {
            self.with_targets.insert(w.refr.span().start);
        }
    }

    fn expr(&mut self, e: &Expr) -> bool {
        if !matches!(e, Expr::RefDot { .. } | Expr::RefBrack { .. }) {
            return true;
        }
        if self.with_targets.contains(&e.span().start) {
            return false;
        }
        let Some((base, parts)) = flatten(e) else {
            return true;
        };
        if base.span().text() != "data" {
            return true;
        }
        // data.P[k].r: a static prefix, the first computed key, one name after it.
        let Some(key_at) = parts.iter().position(|(p, _)| matches!(p, Part::Key(_))) else {
            return false;
        };
        let prefix: Vec<String> = parts
            .iter()
            .take(key_at)
            .filter_map(|(p, _)| match p {
                Part::Name(n) => Some(n.clone()),
                Part::Key(_) => None,
            })
            .collect();
        let (Some((Part::Key(key), _)), Some((Part::Name(rule), rule_node))) =
            (parts.get(key_at), parts.get(key_at + 1))
        else {
            return true;
        };
        if prefix.is_empty()
            || self
                .mocked
                .iter()
                .any(|m| m.starts_with(&prefix) || prefix.starts_with(m))
        {
            return true;
        }
        let children = children(self.packages, &prefix);
        if children.is_empty() {
            return true;
        }
        let (start, end) = (base.span().start as usize, rule_node.span().end as usize);
        let (ks, ke) = (key.span().start as usize, key.span().end as usize);
        let Some(key_text) = self.src.get(ks..ke).filter(|t| !t.is_empty()) else {
            return true;
        };
        if self.src.get(start..end).is_none() {
            return true;
        }
        let name = format!("__regard_dyn{}_{}", self.module_index, self.next);
        self.next += 1;
        for child in children {
            let mut path: Vec<&str> = prefix.iter().map(String::as_str).collect();
            path.push(child);
            path.push(rule);
            let read = crate::policy::ref_text("data", path);
            let key = serde_json::to_string(child).unwrap_or_default();
            // A variable key: the RVM compiles no constant-key object rules.
            let body = format!("__regard_k := {key}; __regard_v := {read}");
            if self.rego_v1 {
                self.rules.push_str(&format!(
                    "{name}[__regard_k] := __regard_v if {{ {body} }}\n"
                ));
            } else {
                self.rules
                    .push_str(&format!("{name}[__regard_k] = __regard_v {{ {body} }}\n"));
            }
        }
        self.edits
            .push(Edit::replace(start, end, format!("{name}[{key_text}]")));
        // The key may itself hold refs; they are left as written.
        false
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

    const LIB: &str = "package lib\nrun(name) = v { v := data.checks[name].deny }\nkinds[t] { some pkg; t := data.checks[pkg].kind }\n";
    const A: &str = "package checks.a\nkind := \"a\"\ndeny[\"a\"] { input.x == 1 }\ntest_a { data.lib.run(\"a\") == {\"a\"} with input as {\"x\": 1} }\ntest_kinds { data.lib.kinds == {\"a\", \"b\"} }\n";
    const B: &str = "package checks.b\nkind := \"b\"\ndeny[\"b\"] { true }\n";

    #[test]
    fn a_test_under_the_prefix_reads_only_the_named_rules() {
        let out = rewritten(&[LIB, A, B], false);
        assert_eq!(
            out[0],
            "package lib\nrun(name) = v { v := __regard_dyn0_0[name] }\nkinds[t] { some pkg; t := __regard_dyn0_1[pkg] }\n\
             __regard_dyn0_0[__regard_k] = __regard_v { __regard_k := \"a\"; __regard_v := data.checks.a.deny }\n\
             __regard_dyn0_0[__regard_k] = __regard_v { __regard_k := \"b\"; __regard_v := data.checks.b.deny }\n\
             __regard_dyn0_1[__regard_k] = __regard_v { __regard_k := \"a\"; __regard_v := data.checks.a.kind }\n\
             __regard_dyn0_1[__regard_k] = __regard_v { __regard_k := \"b\"; __regard_v := data.checks.b.kind }\n"
        );
        assert_eq!(out[1], A);
        assert_eq!(eval(&out, false, "data.checks.a.test_a"), Value::from(true));
        assert_eq!(
            eval(&out, false, "data.checks.a.test_kinds"),
            Value::from(true)
        );
    }

    #[test]
    fn the_rest_of_the_ref_stays_and_v1_gets_v1_rules() {
        let lib = "package lib\nimport rego.v1\nmsg(name) := data.checks[name].meta.title\n";
        let a = "package checks.a\nimport rego.v1\nmeta := {\"title\": \"A\"}\n";
        let out = rewritten(&[lib, a], true);
        assert_eq!(
            out[0],
            "package lib\nimport rego.v1\nmsg(name) := __regard_dyn0_0[name].title\n\
             __regard_dyn0_0[__regard_k] := __regard_v if { __regard_k := \"a\"; __regard_v := data.checks.a.meta }\n"
        );
        let r = crate::rego::tests::engine_with(&out, true)
            .eval_query("data.lib.msg(\"a\")".to_owned(), false)
            .unwrap();
        assert_eq!(r.result[0].expressions[0].value, Value::from("A"));
    }

    #[test]
    fn a_prefix_some_with_replaces_stays() {
        let test = "package checks_test\nmock := {\"x\": {\"deny\": {\"m\"}}}\ntest_m { data.lib.run(\"x\") == {\"m\"} with data.checks as mock }\n";
        let out = rewritten(&[LIB, A, B, test], false);
        assert_eq!(out[0], LIB);
        assert_eq!(
            eval(&out, false, "data.checks_test.test_m"),
            Value::from(true)
        );
    }

    #[test]
    fn literal_keys_whole_documents_data_only_prefixes_and_with_targets_stay() {
        let lib = "package lib\n\
                   p { data.checks[\"a\"].deny }\n\
                   q { some k; data.checks[k] }\n\
                   r { data.fixtures[input.k].x }\n\
                   s { data.checks.a.deny with data.checks[input.k].deny as {} }\n";
        let out = rewritten(&[lib, B], false);
        assert_eq!(out[0], lib);
    }
}
