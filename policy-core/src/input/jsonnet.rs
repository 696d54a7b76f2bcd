//! WIP
use std::path::Path;
use regorus::Value;
use super::support::error;
use crate::error::Result;
pub(crate) fn parse(_text: &str, path: &Path) -> Result<Value> {
    Err(error(path, "WIP"))
}
