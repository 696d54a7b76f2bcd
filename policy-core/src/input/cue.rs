//! CUE. There is no Rust implementation of CUE's evaluator (unification,
//! constraints, defaults), and a partial one would give wrong inputs, so
//! CUE files are refused with an explanation instead. Export them to JSON
//! or YAML (`cue export`) and check that.

use std::path::Path;

use regorus::Value;

use super::support::error;
use crate::error::Result;

/// Always an error: CUE is not supported.
pub(crate) fn parse(_text: &str, path: &Path) -> Result<Value> {
    Err(error(
        path,
        "the cue parser is not supported by regard (no Rust CUE evaluator exists); \
         run `cue export --out json` and check the JSON instead",
    ))
}
