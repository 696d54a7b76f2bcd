//! `regard gk vap -f PATH...`: the ValidatingAdmissionPolicy and bindings that
//! Gatekeeper generates for the CEL templates and constraints among the inputs
//! (see [`policy_core::vap::generate`]), so a policy can move into the API
//! server and CI keeps testing the same thing.
//!
//! Output: YAML documents (default) or a JSON array on standard output; a note
//! on standard error for each template or constraint that produced nothing.
//! Exit 1 when a template or constraint is invalid for generation, or when
//! nothing was generated.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{ArgAction, Args};
use policy_core::gatekeeper::read_document_files;
use policy_core::vap::generate::{VapError, VapOptions, generate};

use crate::gk_cmd::ExpandFormat;

/// `regard gk vap`
#[derive(Debug, Args)]
pub struct VapArgs {
    /// File or directory with ConstraintTemplates and constraints (repeatable; `-` = stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filenames: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ExpandFormat::Yaml)]
    pub format: ExpandFormat,
    /// Generate a policy for templates that do not say (`source.generateVAP`), as Gatekeeper's flag.
    #[arg(long, action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    pub default_create_vap_for_templates: bool,
    /// Generate a binding for each constraint, as Gatekeeper's flag.
    #[arg(long, action = ArgAction::Set, default_value_t = true, value_name = "BOOL")]
    pub default_create_vap_binding_for_constraints: bool,
}

/// Runs `gk vap`; returns the exit code.
pub fn run(args: &VapArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let files = read_document_files(&args.filenames)?;
    let mut documents = Vec::new();
    for (_, docs) in files {
        for doc in docs {
            documents.push(serde_json::to_value(&doc)?);
        }
    }
    let generated = generate(
        &documents,
        VapOptions {
            templates_default: args.default_create_vap_for_templates,
            bindings_default: args.default_create_vap_binding_for_constraints,
        },
    );
    let mut failed = false;
    for skipped in &generated.skipped {
        failed |= matches!(
            skipped,
            VapError::BadTemplate { .. } | VapError::BadAction { .. }
        );
        writeln!(err, "regard: {skipped}")?;
    }
    if generated.documents.is_empty() {
        if generated.skipped.is_empty() {
            bail!("no ConstraintTemplates among the inputs");
        }
        return Ok(1);
    }
    match args.format {
        crate::gk_cmd::ExpandFormat::Json => {
            out.write_all(serde_json::to_string_pretty(&generated.documents)?.as_bytes())?;
            out.write_all(b"\n")?;
        }
        crate::gk_cmd::ExpandFormat::Yaml => {
            for (i, doc) in generated.documents.iter().enumerate() {
                if i > 0 {
                    out.write_all(b"---\n")?;
                }
                out.write_all(serde_saphyr::to_string(doc)?.as_bytes())?;
            }
        }
    }
    Ok(u8::from(failed))
}
