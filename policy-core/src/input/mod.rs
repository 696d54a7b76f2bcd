//! Reading configuration files into Rego values.
//!
//! Flow: [`collect`] turns the paths a user gave into an ordered list of
//! [`InputSource`]s (directories walked in sorted order, `--ignore` applied),
//! [`read`] loads and parses one source into a [`ParsedFile`], and
//! [`ParsedFile::documents`] splits it into the documents that are each
//! evaluated as `input` (a multi-document YAML file, or any file whose top
//! level is an array, is several documents, as in conftest).

mod cue;
mod cyclonedx;
mod dockerfile;
mod dotenv;
mod edn;
pub mod gojson;
mod groovy;
mod hcl1;
mod hcl2;
mod hocon;
mod ignore;
mod ini;
mod json;
mod jsonc;
mod jsonnet;
mod nginx;
mod options;
mod properties;
mod spdx;
mod support;
mod textproto;
mod toml;
mod vcl;
mod walk;
mod xml;
pub(crate) mod yaml;

use std::path::{Path, PathBuf};

use regorus::Value;

use crate::error::{Error, Result};

pub use options::ParseOptions;
pub use walk::{InputSource, collect, walk_files};
pub use yaml::{PathStep, Position, locate, stream_shape};

/// A configuration-file format regard can read: one per conftest parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Format {
    /// CUE (not supported: there is no Rust CUE evaluator; parsing gives an error).
    Cue,
    /// CycloneDX SBOM, JSON or XML.
    CycloneDx,
    /// Dockerfile, as BuildKit's instruction list.
    Dockerfile,
    /// `.env` files.
    Dotenv,
    /// EDN (Clojure data), with scalars stringified as conftest does.
    Edn,
    /// Groovy, including Jenkinsfiles, as a concrete syntax tree.
    Groovy,
    /// HCL 1 (old Terraform syntax).
    Hcl1,
    /// HCL 2 (Terraform), in the hcl2json shape.
    Hcl2,
    /// HOCON.
    Hocon,
    /// `.gitignore` / `.dockerignore` files.
    Ignore,
    /// INI files.
    Ini,
    /// JSON.
    Json,
    /// JSON with comments.
    Jsonc,
    /// Jsonnet, evaluated.
    Jsonnet,
    /// nginx configuration.
    Nginx,
    /// Java properties.
    Properties,
    /// SPDX tag-value SBOM.
    Spdx,
    /// Protocol buffer text format (needs `.proto` files).
    Textproto,
    /// TOML.
    Toml,
    /// Varnish configuration language.
    Vcl,
    /// XML.
    Xml,
    /// YAML, multi-document streams included.
    Yaml,
}

impl Format {
    /// Every format, in the order `--parser` help lists them (conftest's
    /// order, with `jsonc`, which conftest accepts but does not list).
    pub const ALL: &'static [Format] = &[
        Format::Cue,
        Format::CycloneDx,
        Format::Dockerfile,
        Format::Edn,
        Format::Groovy,
        Format::Hcl1,
        Format::Hcl2,
        Format::Hocon,
        Format::Ignore,
        Format::Ini,
        Format::Json,
        Format::Jsonc,
        Format::Jsonnet,
        Format::Nginx,
        Format::Properties,
        Format::Spdx,
        Format::Textproto,
        Format::Toml,
        Format::Vcl,
        Format::Xml,
        Format::Yaml,
        Format::Dotenv,
    ];

    /// The name used by `--parser` and `parse_config`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Cue => "cue",
            Format::CycloneDx => "cyclonedx",
            Format::Dockerfile => "dockerfile",
            Format::Dotenv => "dotenv",
            Format::Edn => "edn",
            Format::Groovy => "groovy",
            Format::Hcl1 => "hcl1",
            Format::Hcl2 => "hcl2",
            Format::Hocon => "hocon",
            Format::Ignore => "ignore",
            Format::Ini => "ini",
            Format::Json => "json",
            Format::Jsonc => "jsonc",
            Format::Jsonnet => "jsonnet",
            Format::Nginx => "nginx",
            Format::Properties => "properties",
            Format::Spdx => "spdx",
            Format::Textproto => "textproto",
            Format::Toml => "toml",
            Format::Vcl => "vcl",
            Format::Xml => "xml",
            Format::Yaml => "yaml",
        }
    }

    /// Looks a format up by its `--parser` name.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// assert_eq!(Format::from_name("yaml").ok(), Some(Format::Yaml));
    /// assert_eq!(Format::from_name("hcl2").ok(), Some(Format::Hcl2));
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

    /// Chooses a format from a file name, following conftest's ordered rules
    /// (the first match wins, names compared lower-cased):
    ///
    /// 1. `-` → yaml;
    /// 2. `dockerfile`, `dockerfile.*`, `*.dockerfile` → dockerfile;
    /// 3. `.yaml`, `.yml` → yaml;
    /// 4. `.hcl`, `.tf`, `.tfvars` → hcl2;
    /// 5. `.gitignore`, `.dockerignore` extensions → ignore;
    /// 6. `.env`, `.env.*`, `*.env` → dotenv;
    /// 7. `nginx.conf` → nginx;
    /// 8. `jenkinsfile`, `jenkinsfile.*` → groovy;
    /// 9. `.textproto`, `.textpb` → textproto;
    /// 10. an extension equal to a parser name (`.toml`, `.ini`, `.xml`, …).
    ///
    /// `None` means the file is not a supported configuration file.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// use std::path::Path;
    /// assert_eq!(Format::detect(Path::new("deploy/app.yml")), Some(Format::Yaml));
    /// assert_eq!(Format::detect(Path::new("Dockerfile.prod")), Some(Format::Dockerfile));
    /// assert_eq!(Format::detect(Path::new("main.tf")), Some(Format::Hcl2));
    /// assert_eq!(Format::detect(Path::new(".env.local")), Some(Format::Dotenv));
    /// assert_eq!(Format::detect(Path::new("README.md")), None);
    /// ```
    pub fn detect(path: &Path) -> Option<Format> {
        if path == Path::new("-") {
            return Some(Format::Yaml);
        }
        let name = path.file_name()?.to_string_lossy().to_lowercase();
        // Go's filepath.Ext: the suffix from the last dot of the base name,
        // so ".env" has extension "env".
        let ext = name
            .rfind('.')
            .and_then(|i| name.get(i + 1..))
            .unwrap_or("");
        if name == "dockerfile" || name.starts_with("dockerfile.") || ext == "dockerfile" {
            return Some(Format::Dockerfile);
        }
        match ext {
            "yml" | "yaml" => return Some(Format::Yaml),
            "hcl" | "tf" | "tfvars" => return Some(Format::Hcl2),
            "gitignore" | "dockerignore" => return Some(Format::Ignore),
            _ => {}
        }
        if name == ".env" || name.starts_with(".env.") || ext == "env" {
            return Some(Format::Dotenv);
        }
        if name == "nginx.conf" {
            return Some(Format::Nginx);
        }
        if name == "jenkinsfile" || name.starts_with("jenkinsfile.") {
            return Some(Format::Groovy);
        }
        if ext == "textproto" || ext == "textpb" {
            return Some(Format::Textproto);
        }
        // conftest looks the extension up as a parser name; `yml` is handled
        // above, so only exact names match here.
        Format::ALL.iter().copied().find(|f| f.name() == ext)
    }

    /// Parses `text` in this format with default options. `path` is used in
    /// error messages, and by Jsonnet to resolve imports.
    ///
    /// ```
    /// use policy_core::input::Format;
    /// use std::path::Path;
    /// let v = Format::Yaml.parse("a: 1\n---\nb: 2\n", Path::new("x.yaml")).unwrap();
    /// assert_eq!(v.as_array().unwrap().len(), 2);
    /// let v = Format::Toml.parse("[server]\nport = 8080\n", Path::new("x.toml")).unwrap();
    /// assert_eq!(v["server"]["port"], policy_core::Value::from(8080));
    /// ```
    pub fn parse(self, text: &str, path: &Path) -> Result<Value> {
        self.parse_with(text, path, &ParseOptions::default())
    }

    /// Parses `text` in this format. `path` is used in error messages, and by
    /// Jsonnet to resolve imports; `options` carries what some formats need
    /// beyond the text (the `.proto` directories for textproto).
    /// A panic in a parser (most are third-party crates) is a parse error
    /// of this file, not a crash.
    pub fn parse_with(self, text: &str, path: &Path, options: &ParseOptions) -> Result<Value> {
        crate::guard::catch(|| self.parse_unguarded(text, path, options)).unwrap_or_else(|panic| {
            Err(Error::Parse {
                path: path.to_path_buf(),
                line: None,
                column: None,
                message: panic.to_string(),
            })
        })
    }

    fn parse_unguarded(self, text: &str, path: &Path, options: &ParseOptions) -> Result<Value> {
        match self {
            Format::Cue => cue::parse(text, path),
            Format::CycloneDx => cyclonedx::parse(text, path),
            Format::Dockerfile => dockerfile::parse(text, path),
            Format::Dotenv => dotenv::parse(text, path),
            Format::Edn => edn::parse(text, path),
            Format::Groovy => groovy::parse(text, path),
            Format::Hcl1 => hcl1::parse(text, path),
            Format::Hcl2 => hcl2::parse(text, path),
            Format::Hocon => hocon::parse(text, path),
            Format::Ignore => ignore::parse(text, path),
            Format::Ini => ini::parse(text, path),
            Format::Json => json::parse(text, path),
            Format::Jsonc => jsonc::parse(text, path),
            Format::Jsonnet => jsonnet::parse(text, path),
            Format::Nginx => nginx::parse(text, path),
            Format::Properties => properties::parse(text, path),
            Format::Spdx => spdx::parse(text, path),
            Format::Textproto => textproto::parse(text, path, options),
            Format::Toml => toml::parse(text, path),
            Format::Vcl => vcl::parse(text, path),
            Format::Xml => xml::parse(text, path),
            Format::Yaml => yaml::parse(text, path),
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
    read_with(source, forced, stdin, stdin_name, &ParseOptions::default())
}

/// [`read`] with parse options (for example `--proto-file-dirs`).
pub fn read_with(
    source: &InputSource,
    forced: Option<Format>,
    stdin: &mut dyn std::io::Read,
    stdin_name: Option<&str>,
    options: &ParseOptions,
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
                value: format.parse_with(&text, &display, options)?,
            })
        }
        InputSource::File(path) => read_file_with(path, forced, options),
    }
}

/// Reads and parses one file.
pub fn read_file(path: &Path, forced: Option<Format>) -> Result<ParsedFile> {
    read_file_with(path, forced, &ParseOptions::default())
}

/// [`read_file`] with parse options.
pub fn read_file_with(
    path: &Path,
    forced: Option<Format>,
    options: &ParseOptions,
) -> Result<ParsedFile> {
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
        value: format.parse_with(&text, path, options)?,
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

/// Reads and parses many sources in parallel, keeping their order. Standard
/// input, if among them, is read once up front from `stdin`. Each source
/// gets its own result so one bad file does not hide the others.
pub fn read_all(
    sources: &[InputSource],
    forced: Option<Format>,
    stdin: &mut dyn std::io::Read,
    stdin_name: Option<&str>,
    options: &ParseOptions,
) -> Vec<Result<ParsedFile>> {
    use rayon::prelude::*;
    let mut stdin_bytes = Vec::new();
    let stdin_error = if sources.contains(&InputSource::Stdin) {
        stdin.read_to_end(&mut stdin_bytes).err()
    } else {
        None
    };
    let stdin_error = stdin_error.map(|e| e.to_string());
    sources
        .par_iter()
        .map(|source| match (source, &stdin_error) {
            (InputSource::Stdin, Some(message)) => {
                Err(Error::io("-", std::io::Error::other(message.clone())))
            }
            _ => read_with(
                source,
                forced,
                &mut stdin_bytes.as_slice(),
                stdin_name,
                options,
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_follows_conftests_ordered_rules() {
        let cases: &[(&str, Option<Format>)] = &[
            ("-", Some(Format::Yaml)),
            ("Dockerfile", Some(Format::Dockerfile)),
            ("dockerfile.prod", Some(Format::Dockerfile)),
            ("build/app.Dockerfile", Some(Format::Dockerfile)),
            // Rule 2 comes before rule 3.
            ("Dockerfile.yaml", Some(Format::Dockerfile)),
            ("a.YML", Some(Format::Yaml)),
            ("terragrunt.hcl", Some(Format::Hcl2)),
            ("vars.tfvars", Some(Format::Hcl2)),
            ("main.tf", Some(Format::Hcl2)),
            (".gitignore", Some(Format::Ignore)),
            ("x/.dockerignore", Some(Format::Ignore)),
            (".env", Some(Format::Dotenv)),
            (".env.local", Some(Format::Dotenv)),
            ("prod.env", Some(Format::Dotenv)),
            ("nginx.conf", Some(Format::Nginx)),
            ("site.conf", None),
            ("Jenkinsfile", Some(Format::Groovy)),
            ("jenkinsfile.release", Some(Format::Groovy)),
            ("a.textproto", Some(Format::Textproto)),
            ("a.textpb", Some(Format::Textproto)),
            ("a.toml", Some(Format::Toml)),
            ("a.json", Some(Format::Json)),
            ("a.jsonc", Some(Format::Jsonc)),
            ("a.cue", Some(Format::Cue)),
            ("a.ini", Some(Format::Ini)),
            ("a.hocon", Some(Format::Hocon)),
            ("a.hcl1", Some(Format::Hcl1)),
            ("a.jsonnet", Some(Format::Jsonnet)),
            ("a.edn", Some(Format::Edn)),
            ("a.groovy", Some(Format::Groovy)),
            ("a.vcl", Some(Format::Vcl)),
            ("a.xml", Some(Format::Xml)),
            ("a.properties", Some(Format::Properties)),
            ("a.spdx", Some(Format::Spdx)),
            ("a.cyclonedx", Some(Format::CycloneDx)),
            ("a.nginx", Some(Format::Nginx)),
            ("a.ignore", Some(Format::Ignore)),
            ("a.dotenv", Some(Format::Dotenv)),
            ("Makefile", None),
            ("a.yml.j2", None),
            (".yamllint", None),
            ("a.libsonnet", None),
        ];
        for (name, want) in cases {
            assert_eq!(Format::detect(Path::new(name)), *want, "{name}");
        }
        for f in Format::ALL {
            assert_eq!(Format::from_name(f.name()).ok(), Some(*f));
        }
    }
}
