//! Builtins regorus does not ship, registered as regorus extensions.
//!
//! The deprecated v0 builtins (`re_match`, `any`, `all`) are still used by
//! older conftest and Gatekeeper policies; OPA keeps them for v0 modules.

use anyhow::{Result as AnyResult, bail};
use regorus::{Engine, Value};

use crate::error::{Error, Result};

/// Adds the extra builtins to an engine.
pub fn register_builtins(engine: &mut Engine) -> Result<()> {
    let add = |engine: &mut Engine, name: &str, nargs: u8, f: Box<dyn regorus::Extension>| {
        engine
            .add_extension(name.to_owned(), nargs, f)
            .map_err(|e| Error::Config(format!("registering builtin {name}: {e}")))
    };
    add(engine, "re_match", 2, Box::new(re_match))?;
    add(engine, "any", 1, Box::new(any))?;
    add(engine, "all", 1, Box::new(all))?;
    Ok(())
}

fn re_match(args: Vec<Value>) -> AnyResult<Value> {
    let [pattern, value] = args.as_slice() else {
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

fn any(args: Vec<Value>) -> AnyResult<Value> {
    let [collection] = args.as_slice() else {
        bail!("any expects 1 argument");
    };
    Ok(Value::from(
        elements(collection)?
            .iter()
            .any(|v| *v == Value::from(true)),
    ))
}

fn all(args: Vec<Value>) -> AnyResult<Value> {
    let [collection] = args.as_slice() else {
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
pub fn register_go_sprintf(engine: &mut Engine) -> Result<()> {
    engine
        .add_extension("sprintf".to_owned(), 2, Box::new(go_sprintf))
        .map_err(|e| Error::Config(format!("registering builtin sprintf: {e}")))
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
    use regorus::unstable::{BUILTINS, Expr, Ref};
    let Some((builtin, _)) = BUILTINS.get("sprintf") else {
        bail!("sprintf builtin is not available");
    };
    let source = regorus::Source::from_contents("sprintf".to_owned(), String::new())?;
    let span = regorus::unstable::Span {
        source,
        line: 1,
        col: 1,
        start: 0,
        end: 0,
    };
    let param = || {
        Ref::new(Expr::Null {
            span: span.clone(),
            value: Value::Null,
            eidx: 0,
        })
    };
    let params = [param(), param()];
    let values = [Value::from(format), Value::from(args)];
    let out = builtin(&span, &params, &values, false)?;
    Ok(out.as_string()?.to_string())
}

fn go_sprintf(args: Vec<Value>) -> AnyResult<Value> {
    let [format, list] = args.as_slice() else {
        bail!("sprintf expects 2 arguments");
    };
    let Ok(format) = format.as_string() else {
        bail!("sprintf: operand 1 must be string");
    };
    let items: Vec<Value> = match list {
        Value::Array(a) => a.iter().cloned().collect(),
        _ => bail!("sprintf: operand 2 must be array"),
    };
    let pieces = format_pieces(format);
    let verbs = pieces
        .iter()
        .filter(|p| matches!(p, FormatPiece::Verb(..)))
        .count();
    if verbs == items.len()
        && let Ok(s) = call_regorus_sprintf(format, items.clone())
    {
        return Ok(Value::from(s));
    }
    // Format verb by verb, as Go does, so one bad verb does not lose the rest.
    let mut out = String::new();
    let mut next = items.iter();
    for piece in &pieces {
        match piece {
            FormatPiece::Text(t) => out.push_str(&t.replace("%%", "%")),
            FormatPiece::Verb(spec, verb) => match next.next() {
                None => out.push_str(&format!("%!{verb}(MISSING)")),
                Some(arg) => match call_regorus_sprintf(spec, vec![arg.clone()]) {
                    Ok(s) => out.push_str(&s),
                    Err(_) => {
                        let shown = call_regorus_sprintf("%v", vec![arg.clone()])?;
                        out.push_str(&format!("%!{verb}({}={shown})", go_type_name(arg)));
                    }
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
}
