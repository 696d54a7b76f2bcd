//! Protocol buffer text format, compiled and read in pure Rust (`protox`
//! compiles the `.proto` files found under `--proto-file-dirs`,
//! `prost-reflect` parses the text and writes protojson), as conftest does
//! with protocompile and protojson:
//!
//! * the message type comes from a `# proto-message: pkg.Message` comment;
//! * the output uses the proto field names, omits fields left at their
//!   default, and writes 64-bit integers as strings (protojson rules).
//!
//! Behind the default-on `textproto` cargo feature (a protobuf compiler is
//! a sizeable dependency); without it, textproto files are refused.

use std::path::Path;

use regorus::Value;

use super::ParseOptions;
use super::support::error;
use crate::error::Result;

/// The compiled `.proto` files.
#[derive(Debug)]
pub(crate) struct Protos {
    #[cfg(feature = "textproto")]
    pool: prost_reflect::DescriptorPool,
}

/// The `# proto-message:` header (the same pattern conftest uses).
fn message_type(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let at = line.find('#')?;
        let rest = line.get(at + 1..)?;
        let rest = rest.strip_prefix(char::is_whitespace)?.trim_start();
        let rest = rest.strip_prefix("proto-message:")?;
        let rest = rest.strip_prefix(char::is_whitespace)?.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .unwrap_or(rest.len());
        rest.get(..end).filter(|s| !s.is_empty())
    })
}

/// Parses one textproto file.
#[cfg(feature = "textproto")]
pub(crate) fn parse(text: &str, path: &Path, options: &ParseOptions) -> Result<Value> {
    use prost_reflect::{DynamicMessage, SerializeOptions};

    super::support::check_nesting(text, path)?;
    let Some(name) = message_type(text) else {
        return Err(error(
            path,
            "extract proto message type: file does not contain necessary proto-message comment",
        ));
    };
    let protos = options
        .protos
        .get_or_init(|| compile(options.proto_file_dirs()))
        .as_ref()
        .map_err(|m| error(path, m.clone()))?;
    let desc = protos
        .pool
        .get_message_by_name(name)
        .ok_or_else(|| error(path, format!("look up message type {name:?}: not found")))?;
    let message = DynamicMessage::parse_text_format(desc, text)
        .map_err(|e| error(path, format!("unmarshal textproto: {e}")))?;
    let mut serializer = serde_json::Serializer::new(Vec::new());
    message
        .serialize_with_options(
            &mut serializer,
            &SerializeOptions::new().use_proto_field_name(true),
        )
        .map_err(|e| error(path, format!("marshal JSON: {e}")))?;
    let json =
        String::from_utf8(serializer.into_inner()).map_err(|e| error(path, e.to_string()))?;
    Value::from_json_str(&json).map_err(|e| error(path, e.to_string()))
}

#[cfg(feature = "textproto")]
fn compile(dirs: &[std::path::PathBuf]) -> Result<Protos, String> {
    let mut files = Vec::new();
    for dir in dirs {
        for entry in walkdir::WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| format!("find proto files: {e}"))?;
            let p = entry.path();
            if entry.file_type().is_file() && p.extension().is_some_and(|e| e == "proto") {
                files.push(p.strip_prefix(dir).unwrap_or(p).to_path_buf());
            }
        }
    }
    let mut compiler = protox::Compiler::new(dirs).map_err(|e| format!("load protos: {e}"))?;
    compiler.include_imports(true);
    for file in &files {
        compiler
            .open_file(file)
            .map_err(|e| format!("load protos: {e}"))?;
    }
    Ok(Protos {
        pool: compiler.descriptor_pool(),
    })
}

/// Without the `textproto` feature, textproto files are refused.
#[cfg(not(feature = "textproto"))]
pub(crate) fn parse(text: &str, path: &Path, _options: &ParseOptions) -> Result<Value> {
    let _ = message_type(text);
    Err(error(
        path,
        "this build of regard has no textproto support (cargo feature `textproto`)",
    ))
}

#[cfg(all(test, feature = "textproto"))]
mod tests {
    use super::*;

    #[test]
    fn reads_with_protos() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("cfg.proto"),
            "syntax = \"proto3\";\npackage demo;\nmessage Server { string host_name = 1; int64 max_conns = 2; repeated int32 ports = 3; bool tls = 4; }\n",
        )?;
        let options = ParseOptions::new(vec![dir.path().to_path_buf()]);
        let text =
            "# proto-message: demo.Server\nhost_name: \"web\"\nmax_conns: 9001\nports: [80, 443]\n";
        let v = parse(text, Path::new("a.textproto"), &options)?;
        assert_eq!(
            serde_json::to_string(&v)?,
            r#"{"host_name":"web","max_conns":"9001","ports":[80,443]}"#
        );
        let err = parse(
            "# proto-message: demo.Nope\n",
            Path::new("a.textproto"),
            &options,
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("a.textproto: look up message type \"demo.Nope\": not found")
        );
        let err = parse(
            "# proto-message: demo.Server\nhost_name: 5 5\n",
            Path::new("a.textproto"),
            &options,
        );
        assert!(err.is_err());
        Ok(())
    }
}
