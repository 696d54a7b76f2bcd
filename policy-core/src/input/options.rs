//! Settings some formats need beyond the text of the file.

use std::path::PathBuf;

/// Options for [`Format::parse_with`](super::Format::parse_with).
///
/// ```
/// use policy_core::input::ParseOptions;
/// let options = ParseOptions::new(vec!["protos".into()]);
/// assert_eq!(options.proto_file_dirs().len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct ParseOptions {
    proto_file_dirs: Vec<PathBuf>,
    #[cfg_attr(not(feature = "textproto"), allow(dead_code))]
    pub(crate) protos: std::sync::OnceLock<Result<super::textproto::Protos, String>>,
}

impl ParseOptions {
    /// Options with the directories searched recursively for `*.proto`
    /// files (`--proto-file-dirs`), needed by the textproto format.
    pub fn new(proto_file_dirs: Vec<PathBuf>) -> ParseOptions {
        ParseOptions {
            proto_file_dirs,
            protos: std::sync::OnceLock::new(),
        }
    }

    /// The `.proto` search directories.
    pub fn proto_file_dirs(&self) -> &[PathBuf] {
        &self.proto_file_dirs
    }
}
