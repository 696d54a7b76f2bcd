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
//!
//! The submodules close the gap between OPA's builtin table and regorus':
//! each exports a table of `(name, arity, function)` that
//! [`register_builtins_with`] adds as lenient extensions, so their errors
//! make the call undefined unless builtin errors are strict, as in OPA.
//! regorus looks extensions up before its own builtins, which is how
//! `object.subset`, `json.patch`, `http.send` and the `regex.*` builtins
//! replace regorus' versions.

mod aws;
mod cast;
mod crypto;
mod der;
mod globs;
mod go_regex;
mod gofloat;
mod goshape;
mod gotime;
mod jwt;
mod keys;
mod net;
mod object;
mod operators;
mod patch;
mod pem;
mod purl;
pub(crate) mod rvm;
pub(crate) mod template;
mod x509;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result as AnyResult, bail};
use regorus::unstable::{Expr, Ref, Span};
use regorus::{Engine, Value};

use crate::error::{Error, Result};
use crate::input::{self, Format};

/// Adds the extra builtins to an engine. Errors of the `parse_config*`
/// builtins make the call undefined (OPA's default); see
/// [`register_builtins_with`] to make them abort evaluation.
pub fn register_builtins(engine: &mut Engine) -> Result<()> {
    register_builtins_with(engine, &Arc::new(AtomicBool::new(false)))
}

/// Adds the extra builtins; while `strict` is true, an error of regard's
/// builtins aborts evaluation (`--show-builtin-errors`), otherwise the call
/// is undefined. regorus applies its own strictness setting to builtins but
/// not to extensions, hence the shared flag.
pub fn register_builtins_with(engine: &mut Engine, strict: &Arc<AtomicBool>) -> Result<()> {
    register(engine, strict, |_| true)
}

/// Like [`register_builtins_with`], but of the OPA builtins in the
/// submodules only those one of `sources` calls (a call spells the name out,
/// followed by `(`; see [`called_names`]). Every extension is copied on each engine
/// clone, and evaluators clone per file or review, so unused ones cost.
pub fn register_builtins_for(
    engine: &mut Engine,
    strict: &Arc<AtomicBool>,
    sources: &[&str],
) -> Result<()> {
    // One scan of each source instead of one search per builtin name: a
    // load of 500 modules spent ~9 % of its time searching ~150 names.
    let mut called = HashSet::new();
    for src in sources {
        called_names(src, &mut called);
    }
    register(engine, strict, |name| called.contains(name))
}

/// Adds to `out` every name `src` calls: each maximal run of identifier
/// characters and `.` right before a `(` (blanks and tabs between allowed).
/// So `or(` in `error(` is the call `error`, and `lib.minus(` the call
/// `lib.minus`, never `minus`.
fn called_names<'a>(src: &'a str, out: &mut HashSet<&'a str>) {
    let bytes = src.as_bytes();
    let before = |at: usize| at.checked_sub(1).and_then(|i| bytes.get(i)).copied();
    for (open, _) in src.match_indices('(') {
        let mut end = open;
        while matches!(before(end), Some(b' ' | b'\t')) {
            end -= 1;
        }
        let mut start = end;
        while before(start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
            start -= 1;
        }
        // Both ends sit next to ASCII bytes, so they are char boundaries.
        if let Some(name) = src.get(start..end)
            && !name.is_empty()
        {
            out.insert(name);
        }
    }
}

/// Whether `src` calls `name` (see [`called_names`]).
#[cfg(test)]
fn calls(src: &str, name: &str) -> bool {
    let mut called = HashSet::new();
    called_names(src, &mut called);
    called.contains(name)
}

fn register(
    engine: &mut Engine,
    strict: &Arc<AtomicBool>,
    wanted: impl Fn(&str) -> bool,
) -> Result<()> {
    let add = |engine: &mut Engine, name: &str, nargs: u8, f: Box<dyn regorus::Extension>| {
        engine
            .add_extension(name.to_owned(), nargs, f)
            .map_err(|e| Error::Config(format!("registering builtin {name}: {e}")))
    };
    // Like every builtin, a type error (`re_match(p, 22)`) makes the call
    // undefined unless builtin errors are strict (OPA's default).
    add(engine, "re_match", 2, lenient(strict, "re_match", re_match))?;
    add(engine, "any", 1, lenient(strict, "any", any))?;
    for table in TABLES {
        for &(name, nargs, f) in *table {
            if wanted(name) {
                add(engine, name, nargs, lenient(strict, name, f))?;
            }
        }
    }
    add(engine, "all", 1, lenient(strict, "all", all))?;
    if wanted("sprintf") {
        register_go_sprintf(engine)?;
    }
    add(
        engine,
        "parse_config",
        2,
        lenient(strict, "parse_config", parse_config),
    )?;
    add(
        engine,
        HIDDEN_PARSE_CONFIG_FILE,
        2,
        lenient(strict, "parse_config_file", parse_config_file),
    )?;
    add(
        engine,
        HIDDEN_PARSE_COMBINED,
        2,
        lenient(
            strict,
            "parse_combined_config_files",
            parse_combined_config_files,
        ),
    )?;
    register_trace(engine)?;
    Ok(())
}

/// A builtin as the submodules define it.
type Builtin = fn(&[Value]) -> AnyResult<Value>;

/// The tables of the submodules, in registration order.
const TABLES: &[&[(&str, u8, Builtin)]] = &[
    aws::BUILTINS,
    cast::BUILTINS,
    crypto::BUILTINS,
    globs::BUILTINS,
    gotime::BUILTINS,
    jwt::BUILTINS,
    net::BUILTINS,
    object::BUILTINS,
    operators::BUILTINS,
    patch::BUILTINS,
    purl::BUILTINS,
    go_regex::BUILTINS,
    template::BUILTINS,
    x509::BUILTINS,
];

/// Whether `name` is a builtin [`register_builtins`] adds as a regorus
/// extension. regorus' RVM cannot call extensions; a compiled program calls
/// regard's implementation only where it replaces one of regorus' own
/// builtins (see `policy::builtins::rvm`). (`sprintf`, replaced by
/// [`register_go_sprintf`], is left out.)
///
/// ```
/// assert!(policy_core::policy::is_extension("io.jwt.decode"));
/// assert!(!policy_core::policy::is_extension("count"));
/// ```
pub fn is_extension(name: &str) -> bool {
    matches!(
        name,
        "re_match"
            | "any"
            | "all"
            | "parse_config"
            | HIDDEN_PARSE_CONFIG_FILE
            | HIDDEN_PARSE_COMBINED
    ) || TABLES.iter().any(|t| t.iter().any(|(n, ..)| *n == name))
}

thread_local! {
    /// Notes of `trace()` calls made on this thread while recording is on.
    static TRACE_NOTES: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// OPA's `trace(note)`: always true. While [`record_trace_notes`] is on for
/// the evaluating thread the note is kept for that evaluation's trace;
/// otherwise nothing is kept. (regorus' own `trace` returns the note string
/// and keeps notes where callers cannot read them.)
fn register_trace(engine: &mut Engine) -> Result<()> {
    engine
        .add_extension(
            "trace".to_owned(),
            1,
            Box::new(|args: Vec<Value>| {
                let note = match args.first() {
                    Some(v) => string_arg("trace", v)?,
                    None => bail!("trace: expects one argument"),
                };
                TRACE_NOTES.with(|notes| {
                    if let Some(list) = notes.borrow_mut().as_mut() {
                        list.push(note.to_owned());
                    }
                });
                Ok(Value::from(true))
            }),
        )
        .map_err(|e| Error::Config(format!("registering builtin trace: {e}")))
}

/// Starts keeping the notes of `trace()` calls evaluated on this thread,
/// dropping any kept before.
pub fn record_trace_notes() {
    TRACE_NOTES.with(|notes| *notes.borrow_mut() = Some(Vec::new()));
}

/// Stops keeping `trace()` notes on this thread and returns those kept since
/// [`record_trace_notes`], in call order.
pub fn take_trace_notes() -> Vec<String> {
    TRACE_NOTES.with(|notes| notes.borrow_mut().take().unwrap_or_default())
}

/// The kind OPA gives a builtin's error (`eval_builtin_error: name: …`);
/// conftest reports such errors as `built-in error: […]`.
pub(crate) const BUILTIN_ERROR: &str = "eval_builtin_error";

/// Wraps a builtin so its errors give `undefined` unless `strict` is set;
/// a strict error reads as OPA's (`eval_builtin_error: name: message`).
/// A panic in a parser is such an error too, rather than the failure of the
/// whole evaluation.
fn lenient(
    strict: &Arc<AtomicBool>,
    name: &'static str,
    f: Builtin,
) -> Box<dyn regorus::Extension> {
    let strict = Arc::clone(strict);
    Box::new(move |args: Vec<Value>| {
        let result = crate::guard::catch(|| f(&args))
            .unwrap_or_else(|panic| Err(anyhow::anyhow!("{panic}")));
        match result {
            Ok(v) => Ok(v),
            Err(e) if strict.load(Ordering::Relaxed) => {
                let message = e.to_string();
                let named = message
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(':'));
                if named {
                    Err(anyhow::anyhow!("{BUILTIN_ERROR}: {message}"))
                } else {
                    Err(anyhow::anyhow!("{BUILTIN_ERROR}: {name}: {message}"))
                }
            }
            Err(_) => Ok(Value::Undefined),
        }
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

/// OPA's name for a value's type, as its error messages print it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

/// The only argument of a one-argument builtin.
fn unary<'a>(name: &str, args: &'a [Value]) -> AnyResult<&'a Value> {
    match args {
        [v] => Ok(v),
        _ => bail!("{name}: expects 1 argument"),
    }
}

/// Operand `pos` (1-based) as a string, with OPA's message otherwise.
fn str_operand<'a>(name: &str, pos: usize, v: &'a Value) -> AnyResult<&'a str> {
    match v {
        Value::String(s) => Ok(s.as_ref()),
        other => bail!(
            "{name}: operand {pos} must be string but got {}",
            type_name(other)
        ),
    }
}

/// Operand `pos` (1-based) as an object, with OPA's message otherwise.
fn object_operand<'a>(
    name: &str,
    pos: usize,
    v: &'a Value,
) -> AnyResult<&'a regorus::value::Object> {
    match v {
        Value::Object(o) => Ok(o.as_ref()),
        other => bail!(
            "{name}: operand {pos} must be object but got {}",
            type_name(other)
        ),
    }
}

/// An object value from string keys.
fn object_of<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::from(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k.into()), v))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

/// A value as Go's `json.Marshal` prints OPA's JSON form of it: object
/// keys sorted, sets as arrays, `<`, `>`, `&`, U+2028 and U+2029 escaped.
/// OPA signs and hashes these bytes (JWT headers, AWS request bodies).
fn go_json(v: &Value) -> AnyResult<String> {
    let mut out = String::new();
    write_go_json(v, &mut out)?;
    Ok(out)
}

fn write_go_json(v: &Value, out: &mut String) -> AnyResult<()> {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(_) => out.push_str(&v.to_json_str()?),
        Value::String(s) => write_go_string(s, out),
        Value::Array(a) => write_go_list(a.iter(), out)?,
        Value::Set(s) => write_go_list(s.iter(), out)?,
        Value::Object(o) => {
            let mut entries: Vec<(String, &Value)> = Vec::with_capacity(o.len());
            for (k, v) in o.iter() {
                let key = match k {
                    Value::String(s) => s.to_string(),
                    other => go_json(other)?,
                };
                entries.push((key, v));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(v, out)?;
            }
            out.push('}');
        }
        Value::Undefined => bail!("cannot marshal an undefined value"),
    }
    Ok(())
}

fn write_go_list<'a>(items: impl Iterator<Item = &'a Value>, out: &mut String) -> AnyResult<()> {
    out.push('[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_go_json(v, out)?;
    }
    out.push(']');
    Ok(())
}

fn write_go_string(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    let matched = crate::regex_cache::with_go_regex(pattern, |re| re.is_match(value))?;
    Ok(Value::from(matched))
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

/// Replaces `sprintf` with a version that formats like Go's `fmt.Sprintf`,
/// which OPA uses, when the argument count does not match the format verbs:
/// a verb without an argument prints `%!v(MISSING)` and surplus arguments are
/// listed as `%!(EXTRA type=value, ...)`, where regorus raises an error.
/// When the counts match, regorus' own `sprintf` does the formatting, so
/// well-formed calls print exactly as before.
///
/// Gatekeeper templates rely on this (a template with one argument too few
/// still produces its violation under Gatekeeper).
///
/// Every engine regard makes for policies that call `sprintf` has it
/// already (OPA's `sprintf` is Go's wherever it runs); calling this again
/// is harmless.
pub fn register_go_sprintf(engine: &mut Engine) -> Result<()> {
    let sprintf = |args: Vec<Value>| go_sprintf(&args);
    match engine.add_extension("sprintf".to_owned(), 2, Box::new(sprintf)) {
        Ok(()) => Ok(()),
        // regorus refuses a second registration of a name; ours is in place.
        Err(e) if e.to_string().contains("already added") => Ok(()),
        Err(e) => Err(Error::Config(format!("registering builtin sprintf: {e}"))),
    }
}

/// One piece of a Go format string.
#[derive(Debug, PartialEq)]
enum FormatPiece<'a> {
    Text(&'a str),
    /// A complete verb (`%5.2f`), and its verb character.
    Verb(&'a str, char),
}

/// Splits a format string into literal text and verbs (`%%` stays text).
fn format_pieces(format: &str) -> Vec<FormatPiece<'_>> {
    let mut pieces = Vec::new();
    let mut text_start = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        if let Some(&(_, '%')) = chars.peek() {
            chars.next();
            continue;
        }
        if text_start < i {
            pieces.push(FormatPiece::Text(&format[text_start..i]));
        }
        // Flags, width, precision, then the verb.
        let mut end = format.len();
        let mut verb = None;
        for (j, d) in chars.by_ref() {
            if matches!(d, '+' | '-' | '#' | ' ' | '0'..='9' | '.') {
                continue;
            }
            end = j + d.len_utf8();
            verb = Some(d);
            break;
        }
        match verb {
            Some(v) => pieces.push(FormatPiece::Verb(&format[i..end], v)),
            None => pieces.push(FormatPiece::Text(&format[i..])),
        }
        text_start = end;
    }
    if text_start < format.len() {
        pieces.push(FormatPiece::Text(&format[text_start..]));
    }
    pieces
}

/// Go's name for the type OPA hands to `fmt.Sprintf` for a value.
fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Number(n) => {
            if n.as_i64().is_some() {
                "int"
            } else if n.is_integer() {
                "*big.Int"
            } else {
                "float64"
            }
        }
        _ => "string",
    }
}

fn call_regorus_sprintf(format: &str, args: Vec<Value>) -> AnyResult<String> {
    let out = call_regorus("sprintf", &[Value::from(format), Value::from(args)])?;
    Ok(out.as_string()?.to_string())
}

/// Calls regorus' own implementation of a builtin that an extension of the
/// same name replaces (extensions shadow builtins), for the cases where
/// regorus already agrees with OPA.
pub(super) fn call_regorus(name: &str, args: &[Value]) -> AnyResult<Value> {
    let Some((builtin, _)) = regorus::unstable::BUILTINS.get(name) else {
        bail!("{name} builtin is not available");
    };
    with_call_site(name, |span, operands| {
        let Some(operands) = operands.get(..args.len()) else {
            bail!("{name}: too many arguments");
        };
        builtin(span, operands, args, false)
    })
}

/// Operand expressions of a call site; regard hands regorus two at most.
const MAX_OPERANDS: usize = 4;

/// A span at line 1 of an empty source named for the builtin, and operand
/// expressions there: what regorus' builtin and operator code takes, only
/// to word its errors (`name:1:1: error: ...`).
type CallSite = (Span, Vec<Ref<Expr>>);

thread_local! {
    /// Call sites by builtin name, made once per thread: making one on each
    /// call cost more than a plain `sprintf` itself.
    static CALL_SITES: std::cell::RefCell<Vec<(String, std::rc::Rc<CallSite>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's call site for `name` (see [`CallSite`]).
pub(super) fn with_call_site<T>(
    name: &str,
    f: impl FnOnce(&Span, &[Ref<Expr>]) -> AnyResult<T>,
) -> AnyResult<T> {
    let site = CALL_SITES.with(|sites| -> AnyResult<std::rc::Rc<CallSite>> {
        let mut sites = sites.borrow_mut();
        if let Some((_, site)) = sites.iter().find(|(n, _)| n == name) {
            return Ok(std::rc::Rc::clone(site));
        }
        let source = regorus::Source::from_contents(name.to_owned(), String::new())?;
        let span = Span {
            source,
            line: 1,
            col: 1,
            start: 0,
            end: 0,
        };
        let operands = (0..MAX_OPERANDS)
            .map(|_| {
                Ref::new(Expr::Null {
                    span: span.clone(),
                    value: Value::Null,
                    eidx: 0,
                })
            })
            .collect();
        let site = std::rc::Rc::new((span, operands));
        sites.push((name.to_owned(), std::rc::Rc::clone(&site)));
        Ok(site)
    })?;
    // The borrow is released: `f` may make calls of its own.
    f(&site.0, &site.1)
}

/// A number OPA passes to Go as a `float64`: one that is not an integer.
fn non_integer(v: &Value) -> Option<f64> {
    let Value::Number(n) = v else { return None };
    let x = n.as_f64()?;
    (x.fract() != 0.0 || !x.is_finite()).then_some(x)
}

pub(super) fn go_sprintf(args: &[Value]) -> AnyResult<Value> {
    let [format, list] = args else {
        bail!("sprintf expects 2 arguments");
    };
    let Ok(format) = format.as_string() else {
        bail!("sprintf: operand 1 must be string");
    };
    let Value::Array(items) = list else {
        bail!("sprintf: operand 2 must be array");
    };
    let pieces = format_pieces(format);
    let verbs = pieces
        .iter()
        .filter(|p| matches!(p, FormatPiece::Verb(..)))
        .count();
    // A non-integer number under a float verb is Go's float64 formatting.
    let go_floats = pieces
        .iter()
        .filter(|p| matches!(p, FormatPiece::Verb(..)))
        .zip(items.iter())
        .any(|(p, arg)| {
            matches!(p, FormatPiece::Verb(_, 'e' | 'E' | 'f' | 'F' | 'g' | 'G'))
                && non_integer(arg).is_some()
        });
    if verbs == items.len()
        && !go_floats
        && let Ok(s) = call_regorus("sprintf", args)
    {
        return Ok(s);
    }
    // Format verb by verb, as Go does, so one bad verb does not lose the rest.
    let mut out = String::new();
    let mut next = items.iter();
    for piece in &pieces {
        match piece {
            FormatPiece::Text(t) => out.push_str(&t.replace("%%", "%")),
            FormatPiece::Verb(spec, verb) => match next.next() {
                None => out.push_str(&format!("%!{verb}(MISSING)")),
                Some(arg) => match non_integer(arg).and_then(|x| gofloat::format(spec, *verb, x)) {
                    Some(s) => out.push_str(&s),
                    None => match call_regorus_sprintf(spec, vec![arg.clone()]) {
                        Ok(s) => out.push_str(&s),
                        Err(_) => {
                            let shown = call_regorus_sprintf("%v", vec![arg.clone()])?;
                            out.push_str(&format!("%!{verb}({}={shown})", go_type_name(arg)));
                        }
                    },
                },
            },
        }
    }
    let extra: Vec<String> = next
        .map(|arg| {
            call_regorus_sprintf("%v", vec![arg.clone()])
                .map(|shown| format!("{}={shown}", go_type_name(arg)))
        })
        .collect::<AnyResult<_>>()?;
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str) -> Value {
        let mut engine = Engine::new();
        register_go_sprintf(&mut engine).unwrap();
        engine
            .add_policy(
                "t.rego".into(),
                format!("package t\nimport rego.v1\nx := {expr}\n"),
            )
            .unwrap();
        engine.eval_rule("data.t.x".into()).unwrap()
    }

    #[test]
    fn go_sprintf_matches_go_on_argument_mismatch() {
        assert_eq!(
            eval(r#"sprintf("%v and %v", ["a"])"#),
            Value::from("a and %!v(MISSING)")
        );
        assert_eq!(
            eval(r#"sprintf("%v", ["a", 1])"#),
            Value::from("a%!(EXTRA int=1)")
        );
        assert_eq!(
            eval(r#"sprintf("%d%% of %s", [50, "x"])"#),
            Value::from("50% of x")
        );
        assert_eq!(
            eval(r#"sprintf("%v %% %v", [{"a"}])"#),
            Value::from("{\"a\"} % %!v(MISSING)")
        );
    }

    #[test]
    fn format_pieces_split_verbs() {
        assert_eq!(
            format_pieces("a%5.2fb%%c%v"),
            vec![
                FormatPiece::Text("a"),
                FormatPiece::Verb("%5.2f", 'f'),
                FormatPiece::Text("b%%c"),
                FormatPiece::Verb("%v", 'v'),
            ]
        );
    }

    /// Evaluates `data.t.x` of a one-module policy set, as regard loads it.
    fn eval_set(src: &str, version: crate::policy::RegoVersion, strict: bool) -> regorus::Value {
        let mut set =
            crate::policy::PolicySet::from_sources(vec![("t.rego".into(), src.into())], version)
                .unwrap();
        set.set_strict_builtin_errors(strict);
        set.engine().clone().eval_rule("data.t.x".into()).unwrap()
    }

    fn eval_v1(body: &str) -> regorus::Value {
        eval_set(
            &format!("package t\n{body}\n"),
            crate::policy::RegoVersion::V1,
            false,
        )
    }

    #[test]
    fn builtins_through_a_policy_set() {
        let json = |s: &str| regorus::Value::from_json_str(s).unwrap();
        assert_eq!(eval_v1("x := object.subset([1, 2], [])"), Value::from(true));
        assert_eq!(
            eval_v1(r#"x := object.subset({"a": {"b": [1, 2, 3]}}, {"a": {"b": [2, 3]}})"#),
            Value::from(true)
        );
        assert_eq!(
            eval_v1(r#"x := crypto.sha256("abc")"#),
            Value::from("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            eval_v1(
                r#"x := crypto.hmac.equal(crypto.hmac.sha1("m", "k"), crypto.hmac.sha1("m", "k"))"#
            ),
            Value::from(true)
        );
        assert_eq!(
            eval_v1(
                r#"x := strings.render_template("{{range .xs}}<{{.}}>{{end}} {{.who}}", {"xs": [1, 2], "who": "me"})"#
            ),
            Value::from("<1><2> me")
        );
        assert_eq!(
            eval_v1(r#"x := regex.globs_match("a.b*", "ab+")"#),
            Value::from(true)
        );
        assert_eq!(
            eval_v1(r#"x := net.cidr_merge(["10.0.0.0/25", "10.0.0.128/25"])"#),
            regorus::Value::from(std::collections::BTreeSet::from([Value::from(
                "10.0.0.0/24"
            )]))
        );
        let token = r#"io.jwt.encode_sign({"alg": "HS256"}, {"sub": "a"}, {"kty": "oct", "k": "c2VjcmV0"})"#;
        assert_eq!(
            eval_v1(&format!(
                r#"x := io.jwt.decode_verify({token}, {{"secret": "secret"}})"#
            )),
            json(r#"[true, {"alg": "HS256"}, {"sub": "a"}]"#)
        );
        assert_eq!(
            eval_set(
                "package t\nx = cast_set([1, 1, 2])\n",
                crate::policy::RegoVersion::V0,
                false
            ),
            regorus::Value::from(std::collections::BTreeSet::from([
                Value::from(1),
                Value::from(2)
            ]))
        );
    }

    #[test]
    fn builtin_errors_are_undefined_unless_strict() {
        let src = "package t\nx := net.lookup_ip_addr(\"example.com\")\n";
        assert_eq!(
            eval_set(src, crate::policy::RegoVersion::V1, false),
            Value::Undefined
        );
        let mut set = crate::policy::PolicySet::from_sources(
            vec![("t.rego".into(), src.into())],
            crate::policy::RegoVersion::V1,
        )
        .unwrap();
        set.set_strict_builtin_errors(true);
        let err = set
            .engine()
            .clone()
            .eval_rule("data.t.x".into())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("net.lookup_ip_addr: example.com: DNS lookups are disabled in regard"),
            "{err}"
        );
    }

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
