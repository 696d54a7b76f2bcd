//! Gatekeeper's restrictions on what template Rego may read from `data`.
//!
//! A template may read `data.inventory` (the synced cluster objects) and
//! `data.lib` (its libs) only; anything else is refused at compile time as
//! Gatekeeper refuses it.

use regorus::unstable::{Expr, Import, Module, Parser};

use crate::rego::{AstVisitor, walk_expr, walk_module};

/// What a module reads from `data`, checked against Gatekeeper's rules.
#[derive(Debug, Default)]
pub(crate) struct DataAccess {
    /// The module reads `data.inventory`.
    pub inventory: bool,
    /// The first disallowed reference, as written.
    pub disallowed: Option<String>,
}

impl AstVisitor for DataAccess {
    fn expr(&mut self, e: &Expr) -> bool {
        let (refr, first) = match e {
            Expr::RefDot { refr, field, .. } => {
                (refr, field.1.as_string().ok().map(|s| s.to_string()))
            }
            Expr::RefBrack { refr, index, .. } => (
                refr,
                match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        value.as_string().ok().map(|s| s.to_string())
                    }
                    _ => None,
                },
            ),
            Expr::Var { value, span, .. } => {
                if value.as_string().is_ok_and(|s| s.as_ref() == "data") {
                    self.flag(span.text());
                }
                return true;
            }
            _ => return true,
        };
        let is_data = matches!(refr.as_ref(), Expr::Var { value, .. } if value.as_string().is_ok_and(|s| s.as_ref() == "data"));
        if !is_data {
            return true;
        }
        match first.as_deref() {
            Some("inventory") => self.inventory = true,
            Some("lib") => {}
            _ => self.flag(e.span().text()),
        }
        // The index of `data[...]` may itself contain refs.
        if let Expr::RefBrack { index, .. } = e {
            walk_expr(index, self);
        }
        false
    }
}

impl DataAccess {
    fn flag(&mut self, text: &str) {
        if self.disallowed.is_none() {
            self.disallowed = Some(text.to_owned());
        }
    }

    /// Checks a module's imports and body.
    pub(crate) fn check_module(&mut self, m: &Module) {
        for import in &m.imports {
            self.check_import(import);
        }
        walk_module(m, self);
    }

    fn check_import(&mut self, import: &Import) {
        let Ok(comps) = Parser::get_path_ref_components(&import.refr) else {
            return;
        };
        let names: Vec<&str> = comps.iter().map(|c| c.text()).collect();
        match names.as_slice() {
            ["data", "inventory", ..] => self.inventory = true,
            ["data", "lib", ..] => {}
            ["data", ..] => self.flag(&names.join(".")),
            ["input", ..] if self.disallowed.is_none() => {
                self.disallowed = Some(format!("import {} (cannot import input)", names.join(".")));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rego::parse_module;

    #[test]
    fn data_access_rules() {
        let check = |src: &str| {
            let m = parse_module("t.rego", src, false).unwrap();
            let mut d = DataAccess::default();
            d.check_module(&m);
            d
        };
        let ok = check("package t\nimport data.lib.x.y\np { data.inventory.cluster[_] }\n");
        assert!(ok.disallowed.is_none());
        assert!(ok.inventory);
        let bad = check("package t\np { data.other.thing }\n");
        assert_eq!(bad.disallowed.as_deref(), Some("data.other"));
        let bare = check("package t\np { x := data }\n");
        assert_eq!(bare.disallowed.as_deref(), Some("data"));
        let dyn_key = check("package t\np { data[input.k] }\n");
        assert_eq!(dyn_key.disallowed.as_deref(), Some("data[input.k]"));
        let import = check("package t\nimport data.foo\np { true }\n");
        assert_eq!(import.disallowed.as_deref(), Some("data.foo"));
    }
}
