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
