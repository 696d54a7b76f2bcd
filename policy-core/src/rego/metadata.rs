//! METADATA annotations, `rego.metadata.rule()` and `rego.metadata.chain()`.
//!
//! OPA reads `# METADATA` comment blocks (YAML) as annotations of the
//! statement that follows them, and its compiler replaces each call of
//! the two builtins with a constant: the annotations that apply to the
//! calling rule. regorus reads no annotations, so this pass does the same
//! replacement in the source: each call becomes the JSON literal OPA would
//! compute (on the call's own line, so line numbers do not move).
//!
//! It runs over a whole set of modules, since `document`, `package` and
//! `subpackages` annotations apply across files. Blocks are read in every
//! module that has one: a block that is not valid YAML, or whose scope
//! does not fit the statement it annotates, is a compile error of that
//! module, as in OPA.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Module, Rule};
use serde_json::{Map, Value};

use super::CompileError;
use super::ast::{AstVisitor, package_components, parse_module, rule_ref, walk_rule};
use super::text::{Edit, apply_edits};

/// The statement a block annotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Package,
    Import,
    Rule,
}

/// One METADATA block, read and normalised.
#[derive(Debug, Clone)]
struct Block {
    /// 1-based line of `# METADATA`.
    line: u32,
    /// 1-based line of the annotated statement.
    target_line: u32,
    scope: String,
    /// The annotations as OPA's `toObject` gives them.
    object: Value,
}

/// Replaces `rego.metadata.rule()` / `rego.metadata.chain()` calls in
/// every module of a set; returns, per module, the compile error of a
/// module whose METADATA blocks OPA rejects.
pub(crate) fn rewrite(
    sources: &mut [(String, String)],
    rego_v1: bool,
) -> Vec<Option<CompileError>> {
    let read: Vec<(Vec<Block>, Option<CompileError>)> = sources
        .iter()
        .map(|(_, text)| {
            if !text.contains("METADATA") {
                return (Vec::new(), None);
            }
            match read_blocks(text) {
                Ok(b) => (b, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        })
        .collect();
    let (blocks, errors): (Vec<Vec<Block>>, Vec<Option<CompileError>>) = read.into_iter().unzip();
    if !sources.iter().any(|(_, t)| t.contains("rego.metadata.")) {
        return errors;
    }

    // Parse what takes part: modules with blocks or with calls.
    let modules: Vec<Option<Module>> = sources
        .iter()
        .zip(blocks.iter().zip(&errors))
        .map(|((file, text), (blocks, error))| {
            let wanted = !blocks.is_empty() || text.contains("rego.metadata.");
            if wanted && error.is_none() {
                parse_module(file, text, rego_v1).ok()
            } else {
                None
            }
        })
        .collect();

    let set = AnnotationSet::build(&modules, &blocks);
    for ((module, blocks), (_, text)) in modules.iter().zip(&blocks).zip(sources.iter_mut()) {
        let Some(module) = module else { continue };
        if !text.contains("rego.metadata.") {
            continue;
        }
        let edits = call_edits(module, blocks, &set);
        if !edits.is_empty() {
            *text = apply_edits(text, edits);
        }
    }
    errors
}

/// One METADATA block and the path it documents, as OPA's flattened
/// annotation set lists it (for `regard doc`).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotated {
    /// The document path without `data`: the package for `package` and
    /// `subpackages` scopes, the rule's ground head prefix for `rule` and
    /// `document` scopes.
    pub path: Vec<String>,
    /// The module's file.
    pub file: String,
    /// 1-based line of `# METADATA`.
    pub line: u32,
    /// The annotations, as `rego.metadata.rule()` returns them.
    pub annotations: Value,
}

/// Every METADATA block of a set of modules with its path, sorted as OPA's
/// `AnnotationSet.Flatten` sorts them (by path, then file and line); the
/// first module whose blocks OPA rejects, or that does not parse, is an
/// error with its index.
pub(crate) fn annotated(
    sources: &[(String, String)],
    rego_v1: bool,
) -> Result<Vec<Annotated>, (usize, String)> {
    let mut out = Vec::new();
    for (i, (file, text)) in sources.iter().enumerate() {
        if !text.contains("METADATA") {
            continue;
        }
        let blocks = read_blocks(text).map_err(|e| (i, e.to_string()))?;
        if blocks.is_empty() {
            continue;
        }
        let module = parse_module(file, text, rego_v1).map_err(|e| (i, e.to_string()))?;
        let package = package_path(&module);
        for b in blocks {
            let path = match b.scope.as_str() {
                "package" | "subpackages" => package.clone(),
                _ => {
                    let Some(rule) = module
                        .policy
                        .iter()
                        .find(|r| r.span().line == b.target_line)
                    else {
                        continue;
                    };
                    let mut path = package.clone();
                    path.extend(ground_prefix(rule));
                    path
                }
            };
            out.push(Annotated {
                path,
                file: file.clone(),
                line: b.line,
                annotations: b.object,
            });
        }
    }
    out.sort_by(|a, b| (&a.path, &a.file, a.line).cmp(&(&b.path, &b.file, b.line)));
    Ok(out)
}

/// Reads every METADATA block of a module: a `# METADATA` line at column 1
/// and the comment lines right after it, up to the first other line.
fn read_blocks(text: &str) -> Result<Vec<Block>, CompileError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let is_start = line
            .strip_prefix('#')
            .is_some_and(|rest| rest.trim() == "METADATA");
        if !is_start {
            i += 1;
            continue;
        }
        let start = i;
        let mut yaml = Vec::new();
        i += 1;
        while let Some(rest) = lines.get(i).and_then(|l| l.strip_prefix('#')) {
            yaml.push(rest);
            i += 1;
        }
        let line = line_no(start);
        let (target_line, target) = next_statement(&lines, i);
        out.push(block(line, &yaml, target_line, target)?);
    }
    Ok(out)
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// The first statement at or after line index `from`, and its kind.
fn next_statement(lines: &[&str], from: usize) -> (u32, Option<Target>) {
    for (k, l) in lines.iter().enumerate().skip(from) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let kind = if keyword(t, "package") {
            Target::Package
        } else if keyword(t, "import") {
            Target::Import
        } else {
            Target::Rule
        };
        return (line_no(k), Some(kind));
    }
    (u32::MAX, None)
}

fn keyword(line: &str, word: &str) -> bool {
    line.strip_prefix(word)
        .is_some_and(|rest| rest.starts_with([' ', '\t']))
}

/// Parses one block's YAML into the object OPA's annotations turn into.
fn block(
    line: u32,
    yaml: &[&str],
    target_line: u32,
    target: Option<Target>,
) -> Result<Block, CompileError> {
    // OPA reports annotation problems as parse errors.
    let err = |message: String| CompileError {
        line,
        col: 1,
        kind: "rego_parse_error",
        message,
    };
    let text = yaml.join("\n");
    let raw: Value = if text.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_saphyr::from_str(&text)
            .map_err(|e| err(format!("invalid METADATA block: yaml: {e}")))?
    };
    let Value::Object(raw) = raw else {
        return Err(err(
            "invalid METADATA block: expected a YAML mapping".to_owned()
        ));
    };
    let entrypoint = raw.get("entrypoint").and_then(Value::as_bool) == Some(true);
    let scope = match raw.get("scope") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(err(format!(
                "invalid METADATA block: scope must be a string, not {other}"
            )));
        }
        None => match target {
            Some(Target::Package) => "package".to_owned(),
            Some(Target::Import) => "import".to_owned(),
            _ if entrypoint => "document".to_owned(),
            _ => "rule".to_owned(),
        },
    };
    let wants = match scope.as_str() {
        "rule" | "document" => Target::Rule,
        "package" | "subpackages" => Target::Package,
        other => {
            return Err(err(format!("invalid annotation scope '{other}'")));
        }
    };
    if target != Some(wants) {
        let want = if wants == Target::Rule {
            "rule"
        } else {
            "package"
        };
        let have = match target {
            Some(Target::Package) => " (have package)",
            Some(Target::Import) => " (have import)",
            Some(Target::Rule) => " (have rule)",
            None => "",
        };
        return Err(err(format!(
            "annotation scope '{scope}' must be applied to {want}{have}"
        )));
    }
    if entrypoint && !matches!(scope.as_str(), "document" | "package") {
        return Err(err(format!(
            "annotation entrypoint applied to non-document or package scope '{scope}'"
        )));
    }
    let object = to_object(&raw, &scope, entrypoint).map_err(err)?;
    Ok(Block {
        line,
        target_line,
        scope,
        object,
    })
}

/// The annotations as OPA renders them (`Annotations.toObject`): only
/// non-empty fields, authors and related resources as objects.
fn to_object(raw: &Map<String, Value>, scope: &str, entrypoint: bool) -> Result<Value, String> {
    let mut obj = Map::new();
    obj.insert("scope".to_owned(), Value::from(scope));
    for key in ["title", "description"] {
        if let Some(s) = raw
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            obj.insert(key.to_owned(), Value::from(s));
        }
    }
    if entrypoint {
        obj.insert("entrypoint".to_owned(), Value::Bool(true));
    }
    if let Some(orgs) = non_empty_list(raw, "organizations") {
        let orgs: Vec<Value> = orgs.iter().map(|o| Value::from(scalar(o))).collect();
        obj.insert("organizations".to_owned(), Value::Array(orgs));
    }
    if let Some(items) = non_empty_list(raw, "related_resources") {
        let mut out = Vec::new();
        for item in items {
            let mut rr = Map::new();
            match item {
                Value::Object(o) => {
                    let r = o.get("ref").and_then(Value::as_str).unwrap_or_default();
                    if r.is_empty() {
                        return Err("invalid related-resource definition: ref must be set".into());
                    }
                    rr.insert("ref".to_owned(), Value::from(r));
                    if let Some(d) = o
                        .get("description")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                    {
                        rr.insert("description".to_owned(), Value::from(d));
                    }
                }
                other => {
                    rr.insert("ref".to_owned(), Value::from(scalar(other)));
                }
            }
            out.push(Value::Object(rr));
        }
        obj.insert("related_resources".to_owned(), Value::Array(out));
    }
    if let Some(items) = non_empty_list(raw, "authors") {
        let mut out = Vec::new();
        for item in items {
            let (name, email) = match item {
                Value::Object(o) => (
                    o.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    o.get("email")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                ),
                other => parse_author(&scalar(other)),
            };
            if name.is_empty() && email.is_empty() {
                return Err("invalid author definition: name and/or email must be set".into());
            }
            let mut a = Map::new();
            if !name.is_empty() {
                a.insert("name".to_owned(), Value::from(name));
            }
            if !email.is_empty() {
                a.insert("email".to_owned(), Value::from(email));
            }
            out.push(Value::Object(a));
        }
        obj.insert("authors".to_owned(), Value::Array(out));
    }
    if let Some(items) = non_empty_list(raw, "schemas") {
        let mut out = Vec::new();
        for item in items {
            let Value::Object(entry) = item else { continue };
            // A schema entry is a one-key mapping: `input.x: schema.y` or
            // `input.x: {definition}`.
            for (path, target) in entry {
                let mut s = Map::new();
                s.insert("path".to_owned(), ref_array(path));
                match target {
                    Value::String(schema) => {
                        s.insert("schema".to_owned(), ref_array(schema));
                    }
                    other => {
                        s.insert("definition".to_owned(), other.clone());
                    }
                }
                out.push(Value::Object(s));
            }
        }
        obj.insert("schemas".to_owned(), Value::Array(out));
    }
    if let Some(Value::Object(custom)) = raw
        .get("custom")
        .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()))
    {
        obj.insert("custom".to_owned(), Value::Object(custom.clone()));
    }
    Ok(Value::Object(obj))
}

fn non_empty_list<'a>(raw: &'a Map<String, Value>, key: &str) -> Option<&'a Vec<Value>> {
    raw.get(key)
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Jane Doe <jane@example.com>`, `Jane Doe`, or `jane@example.com`.
fn parse_author(s: &str) -> (String, String) {
    let s = s.trim();
    if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
        let name = s[..open].trim().to_owned();
        let email = s[open + 1..s.len() - 1].trim().to_owned();
        return (name, email);
    }
    if !s.contains(' ') && s.contains('@') {
        return (String::new(), s.to_owned());
    }
    (s.to_owned(), String::new())
}

/// `input.spec["x"]` as `["input", "spec", "x"]`.
fn ref_array(path: &str) -> Value {
    let parts = path
        .split(['.', '['])
        .map(|p| p.trim_end_matches(']').trim_matches('"'))
        .filter(|p| !p.is_empty())
        .map(Value::from)
        .collect();
    Value::Array(parts)
}

/// The annotations of a set, indexed as OPA's `AnnotationSet` indexes them.
#[derive(Debug, Default)]
struct AnnotationSet {
    /// `document` scope, by rule path (without `data`).
    documents: BTreeMap<Vec<String>, Value>,
    /// `package` scope, by package path.
    packages: BTreeMap<Vec<String>, Value>,
    /// `subpackages` scope, by package path.
    subpackages: BTreeMap<Vec<String>, Value>,
}

impl AnnotationSet {
    fn build(modules: &[Option<Module>], blocks: &[Vec<Block>]) -> AnnotationSet {
        let mut set = AnnotationSet::default();
        for (module, blocks) in modules.iter().zip(blocks) {
            let Some(module) = module else { continue };
            let package = package_path(module);
            for b in blocks {
                match b.scope.as_str() {
                    "package" => {
                        set.packages
                            .entry(package.clone())
                            .or_insert_with(|| b.object.clone());
                    }
                    "subpackages" => {
                        set.subpackages
                            .entry(package.clone())
                            .or_insert_with(|| b.object.clone());
                    }
                    "document" => {
                        let rule = module
                            .policy
                            .iter()
                            .find(|r| r.span().line == b.target_line);
                        if let Some(rule) = rule {
                            let mut path = package.clone();
                            path.extend(ground_prefix(rule));
                            set.documents
                                .entry(path)
                                .or_insert_with(|| b.object.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
        set
    }

    /// `rego.metadata.chain()` for a rule: its own annotations (closest
    /// first, or a bare path entry), then document, package and
    /// subpackages scopes, innermost first.
    fn chain(&self, package: &[String], path: &[String], own: &[&Block]) -> Value {
        let entry = |annotations: Option<&Value>, path: &[String]| {
            let mut e = Map::new();
            if let Some(a) = annotations {
                e.insert("annotations".to_owned(), a.clone());
            }
            e.insert(
                "path".to_owned(),
                Value::Array(path.iter().map(|p| Value::from(p.as_str())).collect()),
            );
            Value::Object(e)
        };
        let mut out = Vec::new();
        if own.is_empty() {
            out.push(entry(None, path));
        }
        for b in own {
            out.push(entry(Some(&b.object), path));
        }
        if let Some(a) = self.documents.get(path) {
            out.push(entry(Some(a), path));
        }
        if let Some(a) = self.packages.get(package) {
            out.push(entry(Some(a), package));
        }
        for n in (1..=package.len()).rev() {
            let Some(prefix) = package.get(..n) else {
                continue;
            };
            if let Some(a) = self.subpackages.get(prefix) {
                out.push(entry(Some(a), prefix));
            }
        }
        Value::Array(out)
    }
}

/// The package path of a module, without `data`.
fn package_path(module: &Module) -> Vec<String> {
    let mut p = package_components(module);
    if p.first().is_some_and(|c| c == "data") {
        p.remove(0);
    }
    p
}

/// The ground prefix of a rule's head reference: `a.b["c"]` of `a.b["c"][x]`.
fn ground_prefix(rule: &Rule) -> Vec<String> {
    let mut parts = Vec::new();
    let mut e = rule_ref(rule);
    loop {
        match e {
            Expr::RefDot { refr, field, .. } => {
                parts.push(field.0.text().to_owned());
                e = refr;
            }
            Expr::RefBrack { refr, index, .. } => {
                match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        parts.push(value.as_string().map(|s| s.to_string()).unwrap_or_default());
                    }
                    // Not ground: everything after it is dropped.
                    _ => parts.clear(),
                }
                e = refr;
            }
            Expr::Var { span, .. } => {
                parts.push(span.text().to_owned());
                break;
            }
            _ => break,
        }
    }
    parts.reverse();
    parts
}

/// Finds the spans of `rego.metadata.rule()` / `chain()` calls.
#[derive(Default)]
struct Calls {
    found: Vec<(usize, usize, bool)>,
}

impl AstVisitor for Calls {
    fn expr(&mut self, e: &Expr) -> bool {
        if let Expr::Call {
            span, fcn, params, ..
        } = e
        {
            let name = fcn.span().text();
            if params.is_empty() && matches!(name, "rego.metadata.rule" | "rego.metadata.chain") {
                self.found.push((
                    span.start as usize,
                    span.end as usize,
                    name == "rego.metadata.chain",
                ));
                return false;
            }
        }
        true
    }
}

/// Edits replacing each call in a module with its constant.
fn call_edits(module: &Module, blocks: &[Block], set: &AnnotationSet) -> Vec<Edit> {
    let package = package_path(module);
    let mut edits = Vec::new();
    for rule in &module.policy {
        let mut calls = Calls::default();
        walk_rule(rule, &mut calls);
        if calls.found.is_empty() {
            continue;
        }
        let line = rule.span().line;
        // Rule-scope blocks attach to the first statement after them;
        // closest to the rule first.
        let mut own: Vec<&Block> = blocks
            .iter()
            .filter(|b| b.scope == "rule" && b.target_line == line)
            .collect();
        own.sort_by_key(|b| std::cmp::Reverse(b.line));
        let mut path = package.clone();
        path.extend(ground_prefix(rule));
        let rule_value = own
            .first()
            .map_or_else(|| Value::Object(Map::new()), |b| b.object.clone());
        let chain = set.chain(&package, &path, &own);
        for (start, end, is_chain) in calls.found {
            let value = if is_chain { &chain } else { &rule_value };
            edits.push(Edit::replace(start, end, value.to_string()));
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(files: &[&str]) -> (Vec<String>, Vec<Option<CompileError>>) {
        let mut sources: Vec<(String, String)> = files
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("f{i}.rego"), (*t).to_owned()))
            .collect();
        let errors = rewrite(&mut sources, true);
        (sources.into_iter().map(|(_, t)| t).collect(), errors)
    }

    #[test]
    fn no_metadata_gives_a_bare_chain_and_an_empty_rule() {
        let (out, _) = run(&[
            "package test\n\np if {\n\trego.metadata.chain()[0].path == [\"test\", \"p\"]\n\trego.metadata.rule() == {}\n}\n",
        ]);
        assert_eq!(
            out[0],
            "package test\n\np if {\n\t[{\"path\":[\"test\",\"p\"]}][0].path == [\"test\", \"p\"]\n\t{} == {}\n}\n"
        );
    }

    #[test]
    fn rule_package_and_subpackages_annotations_form_the_chain() {
        let (out, errors) = run(&[
            "# METADATA\n# scope: subpackages\n# title: root\npackage a\n",
            "# METADATA\n# description: the package\npackage a.b\n\n# METADATA\n# title: Deny\n# custom:\n#   severity: HIGH\ndeny contains x if {\n\tx := rego.metadata.chain()\n}\n\nr := rego.metadata.rule()\n",
        ]);
        assert!(errors.iter().all(Option::is_none));
        assert_eq!(
            out[1],
            "# METADATA\n# description: the package\npackage a.b\n\n# METADATA\n# title: Deny\n# custom:\n#   severity: HIGH\ndeny contains x if {\n\tx := [{\"annotations\":{\"custom\":{\"severity\":\"HIGH\"},\"scope\":\"rule\",\"title\":\"Deny\"},\"path\":[\"a\",\"b\",\"deny\"]},{\"annotations\":{\"description\":\"the package\",\"scope\":\"package\"},\"path\":[\"a\",\"b\"]},{\"annotations\":{\"scope\":\"subpackages\",\"title\":\"root\"},\"path\":[\"a\"]}]\n}\n\nr := {}\n"
        );
    }

    #[test]
    fn authors_and_related_resources_take_opa_shapes() {
        let (out, _) = run(&[
            "package p\n\n# METADATA\n# authors:\n# - Jane Doe <jane@example.com>\n# - name: Bob\n# related_resources:\n# - https://example.com\n# - ref: https://example.org\n#   description: docs\nr := rego.metadata.rule()\n",
        ]);
        assert!(out[0].ends_with("r := {\"authors\":[{\"email\":\"jane@example.com\",\"name\":\"Jane Doe\"},{\"name\":\"Bob\"}],\"related_resources\":[{\"ref\":\"https://example.com\"},{\"description\":\"docs\",\"ref\":\"https://example.org\"}],\"scope\":\"rule\"}\n"), "{}", out[0]);
    }

    #[test]
    fn document_scope_applies_to_every_definition() {
        let (out, _) = run(&[
            "package p\n\n# METADATA\n# scope: document\n# title: all of p\nq := 1\n\nq := rego.metadata.chain() if false\n",
        ]);
        assert!(out[0].contains("q := [{\"path\":[\"p\",\"q\"]},{\"annotations\":{\"scope\":\"document\",\"title\":\"all of p\"},\"path\":[\"p\",\"q\"]}] if false"), "{}", out[0]);
    }

    #[test]
    fn bad_blocks_are_compile_errors() {
        let (_, errors) = run(&["package p\n\n# METADATA\n# scope: package\nq := 1\n"]);
        assert_eq!(
            errors[0].as_ref().map(ToString::to_string).as_deref(),
            Some(
                "3: rego_parse_error: annotation scope 'package' must be applied to package (have rule)"
            )
        );
        let (_, errors) = run(&["package p\n\n# METADATA\n# title: [unclosed\nq := 1\n"]);
        assert!(
            errors[0]
                .as_ref()
                .is_some_and(|e| e.message.starts_with("invalid METADATA block: yaml:"))
        );
    }

    #[test]
    fn modules_without_calls_are_untouched() {
        let src = "# METADATA\n# title: x\npackage p\nq := 1\n";
        let (out, errors) = run(&[src]);
        assert_eq!(out[0], src);
        assert!(errors[0].is_none());
    }
}
