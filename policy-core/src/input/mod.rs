//! Reading configuration files into Rego values.
//!
//! Flow: [`collect`] turns the paths a user gave into an ordered list of
//! [`InputSource`]s (directories walked in sorted order, `--ignore` applied),
//! [`read`] loads and parses one source into a [`ParsedFile`], and
//! [`ParsedFile::documents`] splits it into the documents that are each
//! evaluated as `input` (a multi-document YAML file, or any file whose top
//! level is an array, is several documents, as in conftest).

mod json;
mod walk;
mod yaml;

use std::path::{Path, PathBuf};

use regorus::Value;

use crate::error::{Error, Result};

pub use walk::{InputSource, collect};

/// A configuration-file format regard can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// YAML, multi-document streams included.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// Every format, in the order `--parser` help lists them.
    pub const ALL: &'static [Format] = &[Format::Json, Format::Yaml];

    /// The name used by `--parser` and `parse_config`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }

    /// Looks a format up by its `--parser` name.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// assert_eq!(Format::from_name("yaml").ok(), Some(Format::Yaml));
    /// assert!(Format::from_name("klingon").is_err());
    /// ```
    pub fn from_name(name: &str) -> Result<Format> {
        let lower = name.to_ascii_lowercase();
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name() == lower || (lower == "yml" && *f == Format::Yaml))
            .ok_or_else(|| Error::UnknownParser {
                name: name.to_owned(),
                known: Format::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Chooses a format from a file name, as conftest does (`-` is YAML).
    /// `None` means the file is not a supported configuration file.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// use std::path::Path;
    /// assert_eq!(Format::detect(Path::new("deploy/app.yml")), Some(Format::Yaml));
    /// assert_eq!(Format::detect(Path::new("README.md")), None);
    /// ```
    pub fn detect(path: &Path) -> Option<Format> {
        if path == Path::new("-") {
            return Some(Format::Yaml);
        }
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Parses `text` in this format. `path` is only used in error messages.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// use std::path::Path;
    /// let v = Format::Yaml.parse("a: 1\n---\nb: 2\n", Path::new("x.yaml")).unwrap();
    /// assert_eq!(v.as_array().unwrap().len(), 2);
    /// ```
    pub fn parse(self, text: &str, path: &Path) -> Result<Value> {
        match self {
            Format::Yaml => yaml::parse(text, path),
            Format::Json => json::parse(text, path),
        }
    }
}

/// A parsed input file.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    /// The file name as reported in results (the path as walked, `-` for stdin
    /// or the `--stdin-filename`).
    pub name: String,
    /// The directory and base name exposed to policies as `data.conftest.file`.
    pub file_info: FileInfo,
    /// The parsed value: for a multi-document YAML file, the array of documents.
    pub value: Value,
}

/// `data.conftest.file`: where the input being evaluated came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Base name (`-` for standard input).
    pub name: String,
    /// Absolute directory.
    pub dir: String,
}

impl FileInfo {
    /// The file information for a path, made absolute against the working directory.
    pub fn for_path(path: &Path) -> FileInfo {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        FileInfo {
            name: abs
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            dir: abs
                .parent()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The file information conftest gives standard input and combined runs.
    pub fn synthetic(name: &str) -> FileInfo {
        FileInfo {
            name: name.to_owned(),
            dir: std::env::current_dir()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }

    /// The value of `data.conftest.file`.
    pub fn to_value(&self) -> Value {
        let mut map = std::collections::BTreeMap::new();
        map.insert(Value::from("name"), Value::from(self.name.as_str()));
        map.insert(Value::from("dir"), Value::from(self.dir.as_str()));
        Value::from(map)
    }
}

impl ParsedFile {
    /// The documents evaluated one by one as `input`: the elements of a
    /// top-level array, otherwise the value itself.
    pub fn documents(&self) -> Vec<Value> {
        match &self.value {
            Value::Array(items) => items.iter().cloned().collect(),
            other => vec![other.clone()],
        }
    }
}

/// Decodes file bytes as UTF-8 text, refusing binary content.
pub fn decode(bytes: Vec<u8>, path: &Path) -> Result<String> {
    if bytes.contains(&0) {
        return Err(Error::NotUtf8 {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Reads and parses one input. `forced` overrides detection by name (`--parser`).
///
/// `stdin` is read only for [`InputSource::Stdin`]; `stdin_name` replaces `-` in
/// results (`--stdin-filename`).
pub fn read(
    source: &InputSource,
    forced: Option<Format>,
    stdin: &mut dyn std::io::Read,
    stdin_name: Option<&str>,
) -> Result<ParsedFile> {
    match source {
        InputSource::Stdin => {
            let mut bytes = Vec::new();
            let display = PathBuf::from(stdin_name.unwrap_or("-"));
            stdin
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io("-", e))?;
            let text = decode(bytes, &display)?;
            let format = forced.unwrap_or(Format::Yaml);
            Ok(ParsedFile {
                name: display.to_string_lossy().into_owned(),
                file_info: match stdin_name {
                    Some(n) => FileInfo::for_path(Path::new(n)),
                    None => FileInfo::synthetic("-"),
                },
                value: format.parse(&text, &display)?,
            })
        }
        InputSource::File(path) => read_file(path, forced),
    }
}

/// Reads and parses one file.
pub fn read_file(path: &Path, forced: Option<Format>) -> Result<ParsedFile> {
    let Some(format) = forced.or_else(|| Format::detect(path)) else {
        return Err(Error::UnknownFormat {
            path: path.to_path_buf(),
            ext: path
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = decode(bytes, path)?;
    Ok(ParsedFile {
        name: path.to_string_lossy().into_owned(),
        file_info: FileInfo::for_path(path),
        value: format.parse(&text, path)?,
    })
}

impl ParsedFile {
    /// Parses in-memory text as if it were the file `name`.
    pub fn from_text(name: &str, text: &str, format: Format) -> Result<ParsedFile> {
        let path = Path::new(name);
        Ok(ParsedFile {
            name: name.to_owned(),
            file_info: FileInfo::for_path(path),
            value: format.parse(text, path)?,
        })
    }
}
