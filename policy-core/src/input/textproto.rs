//! WIP
use std::path::Path;
use regorus::Value;
use super::support::error;
use crate::error::Result;
#[derive(Debug)]
pub(crate) struct Protos;
pub(crate) fn parse(_text: &str, path: &Path, _o: &super::ParseOptions) -> Result<Value> {
    Err(error(path, "WIP"))
}
