//! `--data`: JSON and YAML files merged into `data`, as conftest (the OPA
//! loader) does: a file directly under a given directory merges at the root
//! of `data`, a file in sub-directory `a/b/` merges under `data.a.b`, and a
//! file named explicitly merges at the root. Only `.json`, `.yaml` and
//! `.yml` files are data, also when named explicitly: conftest's loader
//! filter drops every other file, so `--data lib.rego` loads nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regorus::Value;

use crate::error::{Error, Result};
use crate::input::Format;

/// Loads the data files, each paired with the value to merge into `data`.
pub(crate) fn load(paths: &[PathBuf]) -> Result<Vec<(PathBuf, Value)>> {
    let mut out = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        if meta.is_file() {
            if is_data(root) {
                out.push((root.clone(), read(root)?));
            }
            continue;
        }
        for path in crate::input::walk_files(root)? {
            if !is_data(&path) {
                continue;
            }
            let path = path.as_path();
            let value = read(path)?;
            let prefix: Vec<String> = path
                .parent()
                .and_then(|p| p.strip_prefix(root).ok())
                .map(|rel| {
                    rel.components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            out.push((path.to_path_buf(), nest(prefix, value)));
        }
    }
    Ok(out)
}

fn is_data(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
}

fn read(path: &Path) -> Result<Value> {
    let parsed = crate::input::read_file(path, Format::detect(path).or(Some(Format::Json)))?;
    if parsed.value.as_object().is_err() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: "a data file must contain an object".to_owned(),
        });
    }
    Ok(parsed.value)
}

fn nest(prefix: Vec<String>, value: Value) -> Value {
    prefix.into_iter().rev().fold(value, |inner, key| {
        let mut map = BTreeMap::new();
        map.insert(Value::from(key), inner);
        Value::from(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_and_yaml_files_are_data_even_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let rego = dir.path().join("lib.rego");
        let yaml = dir.path().join("d.yaml");
        std::fs::write(&rego, "package lib\nx := 1\n").unwrap();
        std::fs::write(&yaml, "a: 1\n").unwrap();
        let loaded = load(&[rego, yaml.clone()]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].0, yaml);
        let all = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(all.len(), 1);
    }
}
