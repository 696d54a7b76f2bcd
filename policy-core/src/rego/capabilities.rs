//! OPA capabilities files (`--capabilities FILE`): the builtins a policy may
//! call. A call of a builtin the file does not list is OPA's type error
//! "undefined function NAME".
//!
//! Flow: [`Capabilities::from_json`] reads the file's `builtins[].name`;
//! [`Capabilities::check`] walks every call in the parsed modules, skips
//! calls of the policies' own functions (same package, a `data.` path or an
//! import alias) and reports the rest that the file does not list.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::strict::{CompileError, TYPE_ERROR, ref_parts, walk_rule};
use crate::error::{Error, Result};

/// regard rewrites these conftest builtins into hidden ones that also get
/// the policy's directory; the file lists them under their public names.
const HIDDEN_NAMES: &[(&str, &str)] = &[
    ("__regard_parse_config_file", "parse_config_file"),
    (
        "__regard_parse_combined_config_files",
        "parse_combined_config_files",
    ),
];

/// The builtins a capabilities file allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    builtins: BTreeSet<String>,
}

impl Capabilities {
    /// Reads a capabilities file.
    pub fn from_file(path: &Path) -> Result<Capabilities> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Capabilities::from_json(&text).map_err(|message| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message,
        })
    }

    /// Parses a capabilities document (OPA's JSON format).
    ///
    /// ```
    /// use policy_core::rego::capabilities::Capabilities;
    /// let caps = Capabilities::from_json(r#"{"builtins": [{"name": "count"}]}"#).unwrap();
    /// assert!(caps.allows("count"));
    /// assert!(!caps.allows("http.send"));
    /// ```
    pub fn from_json(text: &str) -> std::result::Result<Capabilities, String> {
        let doc: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("capabilities: {e}"))?;
        let list = match doc.get("builtins") {
            None | Some(serde_json::Value::Null) => &Vec::new(),
            Some(serde_json::Value::Array(list)) => list,
            Some(_) => return Err("capabilities: \"builtins\" must be a list".to_owned()),
        };
        let mut builtins = BTreeSet::new();
        for (i, entry) in list.iter().enumerate() {
            match entry.get("name").and_then(serde_json::Value::as_str) {
                Some(name) => {
                    builtins.insert(name.to_owned());
                }
                None => return Err(format!("capabilities: builtins[{i}] has no \"name\"")),
            }
        }
        Ok(Capabilities { builtins })
    }

    /// Whether the builtin `name` (dotted, as called) is allowed.
    pub fn allows(&self, name: &str) -> bool {
        self.builtins.contains(name)
    }

    /// The calls of builtins the file does not list, sorted by file and line.
    pub fn check(&self, modules: &[regorus::unstable::Ref<Module>]) -> Vec<CompileError> {
        // Functions the policies define, by package.
        let mut functions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in modules {
            let package = ref_parts(&m.package.refr)
                .map(|p| p.join("."))
                .unwrap_or_default();
            for rule in &m.policy {
                if let Rule::Spec {
                    head: RuleHead::Func { refr, .. },
                    ..
                } = rule.as_ref()
                    && let Some(name) = ref_parts(refr)
                {
                    functions
                        .entry(package.clone())
                        .or_default()
                        .insert(name.join("."));
                }
            }
        }
        let mut errors = Vec::new();
        for m in modules {
            let file = m.package.span.source.file().clone();
            let package = ref_parts(&m.package.refr)
                .map(|p| p.join("."))
                .unwrap_or_default();
            let aliases: BTreeSet<String> = m
                .imports
                .iter()
                .filter_map(|i| match &i.r#as {
                    Some(a) => Some(a.text().to_owned()),
                    None => ref_parts(&i.refr).and_then(|p| p.last().cloned()),
                })
                .collect();
            let own = functions.get(&package);
            for rule in &m.policy {
                walk_rule(rule, &mut |e| {
                    let Expr::Call { fcn, span, .. } = e else {
                        return;
                    };
                    let Some(parts) = ref_parts(fcn) else {
                        return;
                    };
                    let Some(first) = parts.first() else {
                        return;
                    };
                    let name = parts.join(".");
                    if first == "data"
                        || (parts.len() > 1 && aliases.contains(first))
                        || own.is_some_and(|f| f.contains(&name))
                    {
                        return;
                    }
                    let public = HIDDEN_NAMES
                        .iter()
                        .find(|(hidden, _)| *hidden == name)
                        .map_or(name.as_str(), |(_, public)| public);
                    if !self.allows(public) {
                        errors.push(CompileError {
                            file: file.clone(),
                            line: span.line,
                            kind: TYPE_ERROR,
                            message: format!("undefined function {public}"),
                        });
                    }
                });
            }
        }
        errors.sort();
        errors.dedup();
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicySet, RegoVersion};

    #[test]
    fn unlisted_builtins_are_undefined_functions() {
        let lib = "package lib\nhelper(x) := x\n";
        let src = "package p\nimport data.lib\n\nlocal(x) := count(x)\n\nr if {\n  local([1])\n  lib.helper(1)\n  data.lib.helper(2)\n  v := http.send({})\n  v.body == opa.runtime().env\n}\n";
        let set = PolicySet::from_sources(
            vec![
                ("lib.rego".into(), lib.into()),
                ("p.rego".into(), src.into()),
            ],
            RegoVersion::V1,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let caps = Capabilities::from_json(r#"{"builtins": [{"name": "count"}]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        let errors: Vec<String> = caps
            .check(set.engine().clone().get_modules())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            vec![
                "p.rego:10: rego_type_error: undefined function http.send",
                "p.rego:11: rego_type_error: undefined function opa.runtime",
            ]
        );
    }

    #[test]
    fn malformed_files_are_refused() {
        assert_eq!(
            Capabilities::from_json(r#"{"builtins": [{"decl": {}}]}"#),
            Err("capabilities: builtins[0] has no \"name\"".to_owned())
        );
    }
}
