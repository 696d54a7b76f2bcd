//! `--data`: JSON and YAML files merged into `data`, as conftest (the OPA
//! loader) does: a file directly under a given directory merges at the root
//! of `data`, a file in sub-directory `a/b/` merges under `data.a.b`, and a
//! file named explicitly merges at the root. A file merged at the root must
//! hold an object; one under a directory may hold any value (`a/b/data.json`
//! holding a list makes `data.a.b` that list). Only `.json`, `.yaml` and
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
                out.push((root.clone(), root_object(root, read(root)?)?));
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
            let value = if prefix.is_empty() {
                root_object(path, value)?
            } else {
                nest(prefix, value)
            };
            out.push((path.to_path_buf(), value));
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
    Ok(parsed.value)
}

/// A value merged at the root of `data`, which only an object can be.
fn root_object(path: &Path, value: Value) -> Result<Value> {
    if value.as_object().is_err() {
        return Err(Error::Data {
            path: path.to_path_buf(),
            message: "a data file must contain an object".to_owned(),
        });
    }
    Ok(value)
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

    #[test]
    fn a_file_under_a_directory_may_hold_any_value() {
        let dir = tempfile::tempdir().unwrap();
        let assets = dir.path().join("fixtures/bucket/assets");
        std::fs::create_dir_all(&assets).unwrap();
        std::fs::write(assets.join("data.json"), r#"[{"name": "b1"}]"#).unwrap();
        let loaded = load(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(
            loaded[0].1,
            Value::from_json_str(r#"{"fixtures": {"bucket": {"assets": [{"name": "b1"}]}}}"#)
                .unwrap()
        );
        // At the root, a list has nowhere to go.
        std::fs::write(dir.path().join("top.json"), "[1]").unwrap();
        let err = load(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("a data file must contain an object"),
            "{err}"
        );
        let err = load(&[assets.join("data.json")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("a data file must contain an object"),
            "{err}"
        );
    }
}
