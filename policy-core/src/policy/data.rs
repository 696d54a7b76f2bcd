//! `--data`: JSON and YAML files merged into `data`, as conftest (the OPA
//! loader) does: a file directly under a given directory merges at the root
//! of `data`, a file in sub-directory `a/b/` merges under `data.a.b`, and a
//! file named explicitly merges at the root.

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
            out.push((root.clone(), read(root)?));
            continue;
        }
        for path in crate::input::walk_files(root)? {
            let is_data = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"));
            if !is_data {
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
