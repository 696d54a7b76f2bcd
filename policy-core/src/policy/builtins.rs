//! Builtins regorus does not ship, registered as regorus extensions.
//!
//! The deprecated v0 builtins (`re_match`, `any`, `all`) are still used by
//! older conftest and Gatekeeper policies; OPA keeps them for v0 modules.
//!
//! conftest's builtins: `parse_config(parser, text)`,
//! `parse_config_file(path)` and `parse_combined_config_files(paths)`. The
//! last two resolve relative paths against the directory of the policy file
//! that calls them, which a regorus extension cannot see. So, when a policy
//! is loaded, [`bind_policy_dir`] rewrites each call in its source into a
//! call of a hidden two-argument extension that also receives that file's
//! directory (`parse_config_file(p)` →
//! `__regard_parse_config_file("/dir", p)`). The rewrite skips strings,
//! raw strings and comments, touches only whole identifiers followed by
//! `(`, and adds no line, so line numbers in messages are unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result as AnyResult, bail};
use regorus::{Engine, Value};

use crate::error::{Error, Result};
use crate::input::{self, Format};

/// Adds the extra builtins to an engine. Errors of the `parse_config*`
/// builtins make the call undefined (OPA's default); see
/// [`register_builtins_with`] to make them abort evaluation.
pub fn register_builtins(engine: &mut Engine) -> Result<()> {
    register_builtins_with(engine, &Arc::new(AtomicBool::new(false)))
}

/// Adds the extra builtins; while `strict` is true, an error of the
/// `parse_config*` builtins aborts evaluation (`--show-builtin-errors`),
/// otherwise the call is undefined. regorus applies its own strictness
/// setting to builtins but not to extensions, hence the shared flag.
pub fn register_builtins_with(engine: &mut Engine, strict: &Arc<AtomicBool>) -> Result<()> {
    let add = |engine: &mut Engine, name: &str, nargs: u8, f: Box<dyn regorus::Extension>| {
        engine
            .add_extension(name.to_owned(), nargs, f)
            .map_err(|e| Error::Config(format!("registering builtin {name}: {e}")))
    };
    add(
        engine,
        "re_match",
        2,
        Box::new(|a: Vec<Value>| re_match(&a)),
    )?;
    add(engine, "any", 1, Box::new(|a: Vec<Value>| any(&a)))?;
    add(engine, "all", 1, Box::new(|a: Vec<Value>| all(&a)))?;
    add(engine, "parse_config", 2, lenient(strict, parse_config))?;
    add(
        engine,
        HIDDEN_PARSE_CONFIG_FILE,
        2,
        lenient(strict, parse_config_file),
    )?;
    add(
        engine,
        HIDDEN_PARSE_COMBINED,
        2,
        lenient(strict, parse_combined_config_files),
    )?;
    Ok(())
}

/// Wraps a builtin so its errors give `undefined` unless `strict` is set.
fn lenient(
    strict: &Arc<AtomicBool>,
    f: fn(&[Value]) -> AnyResult<Value>,
) -> Box<dyn regorus::Extension> {
    let strict = Arc::clone(strict);
    Box::new(move |args: Vec<Value>| match f(&args) {
        Ok(v) => Ok(v),
        Err(e) if strict.load(Ordering::Relaxed) => Err(e),
        Err(_) => Ok(Value::Undefined),
    })
}

const HIDDEN_PARSE_CONFIG_FILE: &str = "__regard_parse_config_file";
const HIDDEN_PARSE_COMBINED: &str = "__regard_parse_combined_config_files";

/// Rewrites calls of `parse_config_file` and `parse_combined_config_files`
/// in a policy's source so they know the policy file's directory (see the
/// module documentation). `policy_path` is the policy file as loaded; its
/// directory is used as given, as conftest does (`filepath.Dir`).
///
/// ```
/// use policy_core::policy::bind_policy_dir;
/// let src = "x := parse_config_file(\"a.yaml\") # parse_config_file(\"b\")";
/// assert_eq!(
///     bind_policy_dir(src, "policies/p.rego"),
///     "x := __regard_parse_config_file(\"policies\", \"a.yaml\") # parse_config_file(\"b\")"
/// );
/// ```
pub fn bind_policy_dir(source: &str, policy_path: &str) -> String {
    if !source.contains("parse_config_file") && !source.contains("parse_combined_config_files") {
        return source.to_owned();
    }
    let dir = std::path::Path::new(policy_path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = if dir.is_empty() { ".".to_owned() } else { dir };
    let dir_literal = serde_json::to_string(&dir).unwrap_or_else(|_| "\".\"".to_owned());
    let mut out = String::with_capacity(source.len() + 64);
    let bytes = source.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'#' => {
                let end = source
                    .get(i..)
                    .and_then(|r| r.find('\n'))
                    .map_or(source.len(), |n| i + n);
                out.push_str(source.get(i..end).unwrap_or(""));
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while let Some(&c) = bytes.get(j) {
                    j += 1;
                    if c == b'\\' {
                        j += 1;
                    } else if c == b'"' || c == b'\n' {
                        break;
                    }
                }
                let j = j.min(source.len());
                out.push_str(source.get(i..j).unwrap_or(""));
                i = j;
            }
            b'`' => {
                let end = source
                    .get(i + 1..)
                    .and_then(|r| r.find('`'))
                    .map_or(source.len(), |n| i + 1 + n + 1);
                out.push_str(source.get(i..end).unwrap_or(""));
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i;
                while bytes
                    .get(j)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    j += 1;
                }
                let word = source.get(i..j).unwrap_or("");
                let preceded_by_dot = i > 0 && bytes.get(i - 1) == Some(&b'.');
                let mut k = j;
                while bytes.get(k).is_some_and(|c| *c == b' ' || *c == b'\t') {
                    k += 1;
                }
                let is_call = bytes.get(k) == Some(&b'(');
                let hidden = match word {
                    "parse_config_file" => Some(HIDDEN_PARSE_CONFIG_FILE),
                    "parse_combined_config_files" => Some(HIDDEN_PARSE_COMBINED),
                    _ => None,
                };
                match hidden {
                    Some(name) if is_call && !preceded_by_dot => {
                        out.push_str(name);
                        out.push('(');
                        out.push_str(&dir_literal);
                        out.push_str(", ");
                        i = k + 1;
                    }
                    _ => {
                        out.push_str(word);
                        i = j;
                    }
                }
            }
            _ => {
                // Copy one whole character.
                let len = source
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .map_or(1, char::len_utf8);
                out.push_str(source.get(i..i + len).unwrap_or(""));
                i += len;
            }
        }
    }
    out
}

fn string_arg<'a>(name: &str, v: &'a Value) -> AnyResult<&'a str> {
    match v.as_string() {
        Ok(s) => Ok(s.as_ref()),
        Err(_) => bail!("{name}: operand must be a string"),
    }
}

/// `parse_config(parser, text)`: the value is not unwrapped (a Dockerfile
/// gives `[[…]]`, multi-document YAML an array), as in conftest.
fn parse_config(args: &[Value]) -> AnyResult<Value> {
    let [parser, text] = args else {
        bail!("parse_config expects 2 arguments");
    };
    let format = Format::from_name(string_arg("parse_config", parser)?)?;
    let text = string_arg("parse_config", text)?;
    Ok(format.parse(text, Path::new("parse_config"))?)
}

fn resolve(dir: &str, path: &str) -> PathBuf {
    let p = Path::new(path);
    // An absolute path is used as is (conftest joins it onto the policy
    // directory, a bug not reproduced).
    if p.is_absolute() || dir.is_empty() || dir == "." {
        clean(p)
    } else {
        clean(&Path::new(dir).join(p))
    }
}

/// Lexical clean-up as Go's `filepath.Join` does (`a/../b` → `b`), so the
/// paths reported by `parse_combined_config_files` and their sort order
/// match conftest's.
fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

fn parse_config_file(args: &[Value]) -> AnyResult<Value> {
    let [dir, path] = args else {
        bail!("parse_config_file expects 1 argument");
    };
    let full = resolve(
        string_arg("parse_config_file", dir)?,
        string_arg("parse_config_file", path)?,
    );
    Ok(input::read_file(&full, None)?.value)
}

fn parse_combined_config_files(args: &[Value]) -> AnyResult<Value> {
    let [dir, paths] = args else {
        bail!("parse_combined_config_files expects 1 argument");
    };
    let dir = string_arg("parse_combined_config_files", dir)?;
    let mut entries: Vec<(String, Value)> = Vec::new();
    for p in elements(paths)? {
        let full = resolve(dir, string_arg("parse_combined_config_files", &p)?);
        let parsed = input::read_file(&full, None)?;
        let name = full.to_string_lossy().into_owned();
        for doc in parsed.documents() {
            entries.push((name.clone(), doc));
        }
    }
    // Stable, so documents of one file keep their order.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::from(
        entries
            .into_iter()
            .map(|(path, contents)| {
                let mut map = std::collections::BTreeMap::new();
                map.insert(Value::from("path"), Value::from(path));
                map.insert(Value::from("contents"), contents);
                Value::from(map)
            })
            .collect::<Vec<_>>(),
    ))
}

fn re_match(args: &[Value]) -> AnyResult<Value> {
    let [pattern, value] = args else {
        bail!("re_match expects 2 arguments");
    };
    let (Ok(pattern), Ok(value)) = (pattern.as_string(), value.as_string()) else {
        bail!("re_match: operands must be strings");
    };
    let re = regex::Regex::new(pattern)?;
    Ok(Value::from(re.is_match(value)))
}

fn elements(v: &Value) -> AnyResult<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a.iter().cloned().collect()),
        Value::Set(s) => Ok(s.iter().cloned().collect()),
        _ => bail!("operand must be an array or a set"),
    }
}

fn any(args: &[Value]) -> AnyResult<Value> {
    let [collection] = args else {
        bail!("any expects 1 argument");
    };
    Ok(Value::from(
        elements(collection)?
            .iter()
            .any(|v| *v == Value::from(true)),
    ))
}

fn all(args: &[Value]) -> AnyResult<Value> {
    let [collection] = args else {
        bail!("all expects 1 argument");
    };
    Ok(Value::from(
        elements(collection)?
            .iter()
            .all(|v| *v == Value::from(true)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_entries() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("z.yaml"), "v: 1\n---\nv: 2\n")?;
        std::fs::write(dir.path().join("a.yaml"), "v: 0\n")?;
        let d = dir.path().to_string_lossy().into_owned();
        let v = parse_combined_config_files(&[
            Value::from(d.as_str()),
            Value::from(vec![Value::from("z.yaml"), Value::from("a.yaml")]),
        ])?;
        let got = serde_json::to_string(&v)?.replace(&d, "D");
        assert_eq!(
            got,
            r#"[{"contents":{"v":0},"path":"D/a.yaml"},{"contents":{"v":1},"path":"D/z.yaml"},{"contents":{"v":2},"path":"D/z.yaml"}]"#
        );
        Ok(())
    }
}
