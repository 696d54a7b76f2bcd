//! `regard gk mutate`: applies the Gatekeeper mutators among the inputs to
//! the objects among them, as the mutating webhook would before the API
//! server stores them, and prints the results (YAML documents, a JSON array,
//! or with `--diff` a unified diff per changed object).
//!
//! Gatekeeper's own documents (templates, constraints, mutators, expansion
//! templates, config) are not objects here. Each object gets the context
//! gator gives it (its Namespace from the inputs, `default` synthesised).
//! Exit codes: 0 = done, 1 = a mutator was refused, two mutators conflict,
//! or an object could not be mutated (the other objects are still printed).

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use policy_core::Value;
use policy_core::mutation::{MutationContext, MutationSystem};

/// Output formats of `gk mutate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MutateOutput {
    /// YAML documents separated by `---`.
    Yaml,
    /// A JSON array.
    Json,
}

/// `regard gk mutate`
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// File or directory with mutators and objects (repeatable; `-` = stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filenames: Vec<String>,
    /// Output format of the mutated objects.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = MutateOutput::Yaml)]
    pub output: MutateOutput,
    /// Print a unified diff (of the YAML) for each object the mutators changed, instead of the objects.
    #[arg(long)]
    pub diff: bool,
}

/// Whether a document belongs to Gatekeeper itself rather than being an object to mutate.
pub(crate) fn is_gatekeeper_document(doc: &Value) -> bool {
    match &doc["apiVersion"] {
        Value::String(s) => s.split_once('/').is_some_and(|(group, _)| {
            group == "gatekeeper.sh" || group.ends_with(".gatekeeper.sh")
        }),
        _ => false,
    }
}

/// The Namespaces among the documents (the context of the objects).
pub(crate) fn namespaces(docs: &[(String, Value)]) -> Vec<Value> {
    docs.iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == Value::from("Namespace") && d["apiVersion"] == Value::from("v1"))
        .cloned()
        .collect()
}

/// Reads the mutators among `docs`; refused mutators and schema conflicts are errors.
pub(crate) fn load_mutators(docs: &[(String, Value)]) -> Result<MutationSystem> {
    let (system, errors) = MutationSystem::from_documents(docs);
    let mut messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    messages.extend(system.conflicts().iter().map(ToString::to_string));
    if !messages.is_empty() {
        bail!("invalid mutators:\n  {}", messages.join("\n  "));
    }
    Ok(system)
}

/// Mutates every object among `docs` (not Gatekeeper's own documents).
pub(crate) fn mutate_documents(
    system: &MutationSystem,
    mut docs: Vec<(String, Value)>,
) -> Result<Vec<(String, Value)>> {
    let namespaces = namespaces(&docs);
    for (file, doc) in &mut docs {
        if is_gatekeeper_document(doc) {
            continue;
        }
        let ctx = MutationContext::gator(doc, &namespaces);
        system
            .mutate_value(doc, &ctx)
            .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    }
    Ok(docs)
}

fn describe(v: &serde_json::Value) -> String {
    let field = |k: &str| v["metadata"][k].as_str().unwrap_or("");
    let kind = v["kind"].as_str().unwrap_or("object");
    match field("namespace") {
        "" => format!("{kind} {}", field("name")),
        ns => format!("{kind} {ns}/{}", field("name")),
    }
}

/// Runs `gk mutate`; messages about refused mutators and failed objects go to `err`.
pub fn run(args: &MutateArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let docs = crate::gk_cmd::load_inputs(&args.filenames)?;
    if docs.is_empty() {
        bail!("no input data identified");
    }
    let (system, errors) = MutationSystem::from_documents(&docs);
    let mut failed = false;
    for e in &errors {
        writeln!(err, "regard: {e}")?;
        failed = true;
    }
    for c in system.conflicts() {
        writeln!(err, "regard: {c}")?;
        failed = true;
    }
    if system.is_empty() && errors.is_empty() {
        bail!("no mutators (Assign, AssignMetadata, ModifySet, AssignImage) among the inputs");
    }
    let namespaces = namespaces(&docs);
    let mut results = Vec::new();
    for (file, doc) in docs.iter().filter(|(_, d)| !is_gatekeeper_document(d)) {
        let before = serde_json::to_value(doc)?;
        let mut after = before.clone();
        let ctx = MutationContext::gator(doc, &namespaces);
        if let Err(e) = system.mutate(&mut after, &ctx) {
            writeln!(err, "regard: {file}: {e}")?;
            failed = true;
            continue;
        }
        results.push((file, before, after));
    }
    if args.diff {
        for (file, before, after) in &results {
            if before == after {
                continue;
            }
            let (a, b) = (
                serde_saphyr::to_string(before)?,
                serde_saphyr::to_string(after)?,
            );
            let name = describe(before);
            let diff = similar::TextDiff::from_lines(&a, &b);
            write!(
                out,
                "{}",
                diff.unified_diff().context_radius(3).header(
                    &format!("{file}: {name}"),
                    &format!("{file}: {name} (mutated)")
                )
            )?;
        }
    } else {
        match args.output {
            MutateOutput::Json => {
                let all: Vec<&serde_json::Value> = results.iter().map(|(_, _, a)| a).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&all)?)?;
            }
            MutateOutput::Yaml => {
                for (i, (_, _, after)) in results.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b"---\n")?;
                    }
                    write!(out, "{}", serde_saphyr::to_string(after)?)?;
                }
            }
        }
    }
    Ok(u8::from(failed))
}
