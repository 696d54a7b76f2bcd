//! `regard doc DIR...`: Markdown documentation of policies from their
//! `# METADATA` annotations, as `conftest doc` writes it.
//!
//! For each directory, its `.rego` files (not `*_test.rego`) are read,
//! every annotation is listed with the package or rule path it documents
//! (sorted by path, as OPA flattens them), each becomes a section whose
//! heading depth follows the path's depth, and the sections are written to
//! `OUT/<directory name>.md`: in conftest's layout, or through a Go
//! `text/template` given with `-t` (executed over the sections, with
//! conftest's field names).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use policy_core::policy::{Annotated, RegoVersion, annotations, render_go_template};
use serde_json::{Value, json};

/// Arguments of `regard doc`.
#[derive(Debug, Args)]
pub(crate) struct DocArgs {
    /// Policy directories to document
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<String>,
    /// Directory the `<DIR name>.md` files are written to
    #[arg(short = 'o', long = "outDir", default_value = ".", value_name = "DIR")]
    out_dir: PathBuf,
    /// Go text/template to render the sections with, instead of the built-in layout
    #[arg(short = 't', long = "template", value_name = "FILE")]
    template: Option<PathBuf>,
    /// Rego syntax of the policies: v0 or v1 [default: v1]
    #[arg(long = "rego-version", default_value = "v1")]
    rego_version: String,
}

/// One section of the document: conftest's `Section`.
#[derive(Debug)]
struct Section {
    depth: usize,
    name: String,
    annotations: Value,
}

/// Runs `regard doc`.
pub(crate) fn run(args: &DocArgs) -> Result<u8> {
    let version: RegoVersion = args.rego_version.parse()?;
    let template = args
        .template
        .as_ref()
        .map(|t| {
            std::fs::read_to_string(t).with_context(|| format!("reading template {}", t.display()))
        })
        .transpose()?;
    for dir in &args.dirs {
        let path = Path::new(dir);
        if !path.is_dir() {
            bail!("{dir} is not a directory");
        }
        let name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) if n != "." && n != ".." => n.to_owned(),
            _ => "policy".to_owned(),
        };
        let sources = policy_sources(path)?;
        let found = annotations(&sources, version)?;
        if found.is_empty() {
            bail!("{dir}: no annotations found");
        }
        let sections = sections(&found);
        let text = match &template {
            Some(t) => render_go_template(t, &template_data(&sections))?,
            None => markdown(&sections),
        };
        let out = args.out_dir.join(format!("{name}.md"));
        std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(0)
}

/// The `.rego` files under `dir` except tests, sorted by path.
fn policy_sources(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let file = entry.path();
        let name = entry.file_name().to_string_lossy();
        if !entry.file_type().is_file() || !name.ends_with(".rego") || name.ends_with("_test.rego")
        {
            continue;
        }
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        out.push((file.display().to_string(), text));
    }
    Ok(out)
}

/// conftest's sections: a heading depth per path, counted from the first
/// path's depth and never more than one deeper than the section before.
fn sections(found: &[Annotated]) -> Vec<Section> {
    let mut out = Vec::with_capacity(found.len());
    let mut current = 0usize;
    let mut offset = 1usize;
    for (i, a) in found.iter().enumerate() {
        // conftest counts `data` in the path.
        let mut depth = (a.path.len() + 1).saturating_sub(offset);
        if i == 0 && depth > 1 {
            offset = depth;
        }
        if depth > current + 1 {
            depth = current + 1;
        }
        current = depth;
        out.push(Section {
            depth,
            name: policy_core::policy::ref_text("", a.path.iter().map(String::as_str)),
            annotations: a.annotations.clone(),
        });
    }
    out
}

fn text_of<'a>(annotations: &'a Value, key: &str) -> &'a str {
    annotations.get(key).and_then(Value::as_str).unwrap_or("")
}

/// conftest's built-in layout: per section a heading (`#` × depth, the
/// path, the title), the description, and the related resources as a list.
fn markdown(sections: &[Section]) -> String {
    let mut out = String::new();
    for s in sections {
        let a = &s.annotations;
        let _ = write!(
            out,
            "{} {} - {}\n\n{}\n",
            "#".repeat(s.depth),
            s.name,
            text_of(a, "title"),
            text_of(a, "description")
        );
        if let Some(Value::Array(resources)) = a.get("related_resources") {
            out.push_str("\nRelated Resources:\n");
            for r in resources {
                let (link, text) = (text_of(r, "ref"), text_of(r, "description"));
                if text.is_empty() {
                    let _ = write!(out, "\n* {link}");
                } else {
                    let _ = write!(out, "\n* [{text}]({link})");
                }
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The sections as a template sees them: conftest's `Section` and OPA's
/// `Annotations` field names, every field present.
fn template_data(sections: &[Section]) -> Value {
    let list = |v: Option<&Value>| v.cloned().unwrap_or_else(|| json!([]));
    Value::Array(
        sections
            .iter()
            .map(|s| {
                let a = &s.annotations;
                let resources: Vec<Value> = a
                    .get("related_resources")
                    .and_then(Value::as_array)
                    .map(|rs| {
                        rs.iter()
                            .map(|r| {
                                json!({"Ref": text_of(r, "ref"), "Description": text_of(r, "description")})
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let authors: Vec<Value> = a
                    .get("authors")
                    .and_then(Value::as_array)
                    .map(|xs| {
                        xs.iter()
                            .map(|x| json!({"Name": text_of(x, "name"), "Email": text_of(x, "email")}))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "RegoPackageName": s.name,
                    "Depth": s.depth,
                    "MarkdownHeading": "#".repeat(s.depth),
                    "Annotations": {
                        "Scope": text_of(a, "scope"),
                        "Title": text_of(a, "title"),
                        "Description": text_of(a, "description"),
                        "Entrypoint": a.get("entrypoint").and_then(Value::as_bool).unwrap_or(false),
                        "Organizations": list(a.get("organizations")),
                        "RelatedResources": resources,
                        "Authors": authors,
                        "Schemas": list(a.get("schemas")),
                        "Custom": a.get("custom").cloned().unwrap_or_else(|| json!({})),
                    }
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(path: &[&str], annotations: Value) -> Annotated {
        Annotated {
            path: path.iter().map(|p| (*p).to_owned()).collect(),
            file: "p.rego".into(),
            line: 1,
            annotations,
        }
    }

    #[test]
    fn depths_follow_the_first_path_and_step_by_one() {
        let found = [
            annotated(&["a", "b"], json!({})),
            annotated(&["a", "b", "c", "d"], json!({})),
            annotated(&["a", "b", "x-y"], json!({})),
            annotated(&["z"], json!({})),
        ];
        let got: Vec<(usize, String)> = sections(&found)
            .into_iter()
            .map(|s| (s.depth, s.name))
            .collect();
        assert_eq!(
            got,
            [
                (1, "a.b".to_owned()),
                (2, "a.b.c.d".to_owned()),
                (2, "a.b[\"x-y\"]".to_owned()),
                (0, "z".to_owned()),
            ]
        );
    }
}
