//! `regard parse FILE...`: print the parsed input the way `conftest parse`
//! prints it, so users can see the `input` their policies receive.
//!
//! * one file: its value as indented JSON (2 spaces);
//! * several files: one object keyed by path;
//! * `--combine`: the combined array `[{"path", "contents"}]`, tab-indented
//!   and followed by a blank line.
//!
//! JSON is written with Go's rules (sorted keys, `<>&` escaped), so the
//! bytes match conftest's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use policy_core::Value;
use policy_core::input::{self, Format, InputSource, ParseOptions, gojson};

/// Arguments of `regard parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Files to parse (`-` reads standard input, as YAML unless --parser is given)
    pub files: Vec<String>,
    /// Parser to use instead of detection by file name
    #[arg(long)]
    pub parser: Option<String>,
    /// Print all files combined, as `--combine` gives them to policies
    #[arg(long)]
    pub combine: bool,
    /// Directories searched for *.proto files (textproto inputs)
    #[arg(long = "proto-file-dirs", value_delimiter = ',')]
    pub proto_file_dirs: Vec<PathBuf>,
}

/// Runs `regard parse`, writing to `out`.
pub fn run(args: &ParseArgs, out: &mut dyn Write) -> Result<()> {
    if args.files.is_empty() {
        bail!("must supply path to at least one file");
    }
    let forced = args.parser.as_deref().map(Format::from_name).transpose()?;
    let options = ParseOptions::new(args.proto_file_dirs.clone());
    let mut stdin = std::io::stdin();
    // conftest keys results by path, so a file named twice appears once.
    let mut configurations: BTreeMap<String, Value> = BTreeMap::new();
    for file in &args.files {
        let source = if file == "-" {
            InputSource::Stdin
        } else {
            let path = Path::new(file);
            if path.is_dir() {
                bail!("{file}: is a directory (regard parse takes files)");
            }
            InputSource::File(path.to_path_buf())
        };
        let parsed = input::read_with(&source, forced, &mut stdin, None, &options)
            .context("parse configurations")?;
        configurations.insert(file.clone(), parsed.value);
    }
    let text = if args.combine {
        let mut entries: Vec<(String, Value)> = Vec::new();
        for (path, value) in &configurations {
            match value {
                Value::Array(docs) => {
                    entries.extend(docs.iter().map(|d| (path.clone(), d.clone())))
                }
                other => entries.push((path.clone(), other.clone())),
            }
        }
        format!("{}\n", gojson::combined_to_string_indent(&entries, "\t"))
    } else if let [(_, only)] = configurations.iter().collect::<Vec<_>>().as_slice() {
        gojson::to_string_indent(only, "  ")
    } else {
        let map: BTreeMap<Value, Value> = configurations
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect();
        gojson::to_string_indent(&Value::from(map), "  ")
    };
    writeln!(out, "{text}")?;
    Ok(())
}
