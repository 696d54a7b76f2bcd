//! `regard gk`: gator-compatible commands for Gatekeeper policies in CI.
//!
//! * `gk test -f PATH...` reviews every object among the inputs against the
//!   templates and constraints among them (with expansion when
//!   ExpansionTemplates are given) and prints the violations.
//! * `gk verify PATH...` runs gator Suite files.
//! * `gk expand -f PATH...` prints the resources ExpansionTemplates imply.
//! * `gk vap -f PATH...` prints the ValidatingAdmissionPolicy and bindings Gatekeeper would
//!   generate for the CEL templates and constraints (module [`crate::gk_vap`]).
//! * `gk push REPOSITORY -f PATH...` publishes a bundle for `-i`, gator and the webhook
//!   (module [`crate::source_cmd`]).
//! * `gk sync test -f PATH...` checks that a `Config`/`SyncSet` syncs the kinds the templates'
//!   `requires-sync-data` annotations ask for.
//!
//! Exit codes: 0 = clean, 1 = a deny violation, a failed suite, or an error.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use policy_core::Value;
use policy_core::conftest::CheckResult;
use policy_core::gatekeeper::{
    EnforcementAction, Engines, GATOR_ENFORCEMENT_POINT, PolicyBundle, ReviewOptions, SyncKind,
    TARGET, Violation, expand_with, read_document_files,
    suite::{self, Filter, SuiteResult},
    sync_test,
};
use policy_core::kube::KubeFile;
use policy_core::mutation::{MutationContext, MutationSystem, SourceType};
use serde::Serialize;

/// `regard gk ...`
#[derive(Debug, Args)]
pub struct GkArgs {
    #[command(subcommand)]
    pub command: GkCommand,
}

/// The gk subcommands.
#[derive(Debug, Subcommand)]
pub enum GkCommand {
    /// Review objects against the ConstraintTemplates and Constraints among the inputs (like `gator test`).
    Test(TestArgs),
    /// Run gator test Suite files (like `gator verify`).
    Verify(VerifyArgs),
    /// Print the resources that ExpansionTemplates derive from the inputs (like `gator expand`).
    Expand(ExpandArgs),
    /// Apply the mutators (Assign, AssignMetadata, ModifySet, AssignImage) among the inputs to the objects among them.
    Mutate(crate::mutate_cmd::MutateArgs),
    /// Referential data: check the kinds a Config/SyncSet syncs (like `gator sync`).
    Sync(SyncArgs),
    /// Print the ValidatingAdmissionPolicy and bindings Gatekeeper generates for CEL templates and their constraints.
    Vap(crate::gk_vap::VapArgs),
    /// Check, then upload templates, constraints, mutators and objects to an OCI registry as a bundle `gk test -i`, gator's `--image` and `regard-webhook --bundle` read.
    Push(crate::source_cmd::GkPushArgs),
}

/// `regard gk sync ...`
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    pub command: SyncCommand,
}

/// The gk sync subcommands.
#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Check that the Config/SyncSets among the inputs sync every kind the templates' requires-sync-data annotations need (like `gator sync test`).
    Test(SyncTestArgs),
}

/// `regard gk sync test`
#[derive(Debug, Args)]
pub struct SyncTestArgs {
    /// File or directory with ConstraintTemplates, Config/SyncSets and a GVKManifest (repeatable; `-` = stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filenames: Vec<String>,
    /// Without a GVKManifest (the kinds the cluster serves), assume every synced kind is served.
    #[arg(short = 'o', long = "force-omit-gvk-manifest")]
    pub force_omit_gvk_manifest: bool,
}

/// Output formats of `gk test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TestOutput {
    /// Human-readable, grouped by object.
    Default,
    /// gator's JSON result list.
    Json,
    /// gator's result list as YAML.
    Yaml,
}

/// `regard gk test`
#[derive(Debug, Args)]
pub struct TestArgs {
    /// File or directory with templates, constraints and objects (repeatable; `-` = stdin).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        required_unless_present = "images"
    )]
    pub filenames: Vec<String>,
    #[command(flatten)]
    pub images: ImageArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = TestOutput::Default)]
    pub output: TestOutput,
    /// Only report violations whose action is deny.
    #[arg(long)]
    pub deny_only: bool,
    #[command(flatten)]
    pub evaluator: EvaluatorArg,
    #[command(flatten)]
    pub kube: crate::cli::KubeArgs,
    /// Review the objects as given: do not apply the mutators among the inputs first.
    #[arg(long)]
    pub no_mutate: bool,
}

/// `-i/--image`, shared by `gk test` and `gk verify` (gator's `--image`).
#[derive(Debug, Args)]
pub struct ImageArgs {
    /// OCI image of templates, constraints, objects or suites, in gator's layout: titled files
    /// and oras directory layers (repeatable; `oci://` optional)
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub source: crate::source_cmd::SourceArgs,
}

impl ImageArgs {
    /// Pulls each image into a temporary directory; the directories live
    /// as long as the returned bundles.
    fn pull(&self) -> Result<Vec<policy_source::TempBundle>> {
        let opts = self.source.options();
        crate::source_cmd::block_on(async {
            let mut out = Vec::new();
            for image in &self.images {
                // gator takes plain references; any registry host is OCI here.
                let source = if image.contains("://") {
                    image.clone()
                } else {
                    format!("oci://{image}")
                };
                let bundle = policy_source::pull_temp(&source, &opts)
                    .await
                    .with_context(|| format!("pulling image {image}"))?;
                out.push(bundle);
            }
            Ok::<_, anyhow::Error>(out)
        })?
    }
}

/// The paths given plus the roots of the pulled images.
fn with_images(paths: &[String], images: &[policy_source::TempBundle]) -> Vec<String> {
    paths
        .iter()
        .cloned()
        .chain(
            images
                .iter()
                .map(|b| b.root().to_string_lossy().into_owned()),
        )
        .collect()
}

/// `--evaluator` and `--enable-k8s-native-validation`, shared by `gk test` and `gk verify`.
#[derive(Debug, Args)]
pub struct EvaluatorArg {
    #[command(flatten)]
    pub(crate) rego: crate::cli::EvaluatorFlag,
    #[command(flatten)]
    pub(crate) cel: crate::cli::CelArg,
}

impl EvaluatorArg {
    /// The engines these flags select.
    pub fn engines(&self) -> Engines {
        Engines {
            evaluator: self.rego.evaluator,
            k8s_native_validation: self.cel.k8s_native_validation,
        }
    }
}

/// `regard gk verify`
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Suite files or directories (searched recursively; gator's `dir/...` also works).
    #[arg(value_name = "PATH", required_unless_present = "images")]
    pub paths: Vec<String>,
    #[command(flatten)]
    pub images: ImageArgs,
    /// Only run tests/cases matching REGEX (`TEST//CASE` to filter both).
    #[arg(short = 'r', long = "run", value_name = "REGEX", default_value = "")]
    pub run: String,
    /// Print every test and case, not only failures.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[command(flatten)]
    pub evaluator: EvaluatorArg,
}

/// Output formats of `gk expand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExpandFormat {
    /// YAML documents separated by `---`.
    Yaml,
    /// A JSON array.
    Json,
}

/// `regard gk expand`
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// File or directory with resources and ExpansionTemplates (repeatable; `-` = stdin).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub filenames: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ExpandFormat::Yaml)]
    pub format: ExpandFormat,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Do not apply the mutators among the inputs to the base objects and resultants.
    #[arg(long)]
    pub no_mutate: bool,
}

/// Runs a gk subcommand and returns the exit code.
pub fn run(args: &GkArgs, out: &mut dyn Write) -> Result<u8> {
    match &args.command {
        GkCommand::Test(a) => test(a, out),
        GkCommand::Verify(a) => verify(a, out),
        GkCommand::Expand(a) => expand_cmd(a, out),
        GkCommand::Vap(a) => crate::gk_vap::run(a, out, &mut std::io::stderr().lock()),
        GkCommand::Push(a) => crate::source_cmd::run_gk_push(a, out, &mut std::io::stderr().lock()),
        GkCommand::Mutate(a) => crate::mutate_cmd::run(a, out, &mut std::io::stderr().lock()),
        GkCommand::Sync(SyncArgs {
            command: SyncCommand::Test(a),
        }) => sync_test_cmd(a, out, &mut std::io::stderr().lock()),
    }
}

/// gator's `sync test`: notes on stdout; unmet requirements (or unreadable templates) on
/// stderr, exit 1. Templates and alternatives are sorted (gator prints Go map order).
fn sync_test_cmd(args: &SyncTestArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<u8> {
    let docs = load_inputs(&args.filenames)?;
    if docs.is_empty() {
        bail!("no input data identified");
    }
    let report = sync_test(&docs, args.force_omit_gvk_manifest).context("checking")?;
    for name in &report.skipped {
        writeln!(
            out,
            "skipping unstructured {name:?} because it is not a syncset, config, gvk manifest, or template"
        )?;
    }
    if report.manifest_omitted {
        writeln!(
            out,
            "ignoring absence of supported GVK manifest due to --force-omit-gvk-manifest flag; will assume all synced GVKs are supported by cluster"
        )?;
    }
    out.flush()?;
    if !report.missing.is_empty() {
        let mut text = String::from("the following requirements were not met: \n");
        for (template, unmet) in &report.missing {
            text.push_str(template);
            text.push_str(":\n");
            let lines: Vec<String> = unmet
                .iter()
                .map(|alternatives| {
                    let kinds: Vec<String> =
                        alternatives.iter().map(SyncKind::gator_string).collect();
                    format!("- {}", kinds.join(" OR "))
                })
                .collect();
            text.push_str(&lines.join("\n"));
            text.push('\n');
        }
        writeln!(err, "{text}")?;
        return Ok(1);
    }
    if !report.template_errors.is_empty() {
        let mut text = String::from("encountered errors parsing the following templates: \n");
        for (template, e) in &report.template_errors {
            text.push_str(&format!("{template}:\n{e}\n"));
        }
        writeln!(err, "{text}")?;
        return Ok(1);
    }
    Ok(0)
}

pub(crate) fn load_inputs(paths: &[String]) -> Result<Vec<(String, Value)>> {
    let files = read_document_files(paths)?;
    Ok(files
        .into_iter()
        .flat_map(|(name, docs)| docs.into_iter().map(move |d| (name.clone(), d)))
        .collect())
}

/// One reported violation and the file of its object.
struct Reported<'a> {
    file: &'a str,
    object_index: usize,
    violation: &'a Violation,
}

fn is_deny(v: &Violation) -> bool {
    v.actions.contains(&EnforcementAction::Deny)
}

fn test(args: &TestArgs, out: &mut dyn Write) -> Result<u8> {
    let mut kube = crate::config::Layers::load(None)?.kube_options(args.kube.clone(), false)?;
    if let Some(settings) = kube.as_mut() {
        settings.options.skip_gatekeeper_kinds = true;
    }
    let images = args.images.pull()?;
    let files = read_document_files(&with_images(&args.filenames, &images))?;
    let kube_results = match &kube {
        Some(settings) => {
            let kube_files: Vec<KubeFile<'_>> = files
                .iter()
                .map(|(name, docs)| {
                    let path = (name != "-").then(|| std::path::Path::new(name.as_str()));
                    KubeFile::from_documents(name, path, docs.clone())
                })
                .collect();
            crate::kube_run::check(settings, &kube_files)?
        }
        None => Vec::new(),
    };
    let docs: Vec<(String, Value)> = files
        .into_iter()
        .flat_map(|(name, docs)| docs.into_iter().map(move |d| (name.clone(), d)))
        .collect();
    if docs.is_empty() {
        bail!("no input data identified");
    }
    // The cluster stores (and validates) objects as the mutating webhook left them.
    let mutators = if args.no_mutate {
        None
    } else {
        Some(crate::mutate_cmd::load_mutators(&docs)?).filter(|m| !m.is_empty())
    };
    let docs = match &mutators {
        Some(system) => crate::mutate_cmd::mutate_documents(system, docs)?,
        None => docs,
    };
    let bundle = PolicyBundle::from_documents(docs.clone())?;
    let objects: Vec<Value> = docs.iter().map(|(_, d)| d.clone()).collect();
    // gator adds every input object to data.inventory and reviews every one.
    let bundle = bundle.with_inventory(&objects)?;
    let options = ReviewOptions {
        enforcement_point: GATOR_ENFORCEMENT_POINT.to_owned(),
        evaluator: args.evaluator.rego.evaluator,
        disable_k8s_native_validation: !args.evaluator.cel.k8s_native_validation,
        resultant_hook: mutators.map(|m| m.resultant_hook(crate::mutate_cmd::namespaces(&docs))),
        ..ReviewOptions::default()
    };
    let outcomes = bundle.review_objects(&objects, &options);
    let mut reported = Vec::new();
    let mut annotated = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let outcome = outcome
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reviewing {}", docs[i].0))?;
        if !outcome.audit_annotations.is_empty() {
            annotated.push(Annotated {
                target: AUDIT_TARGET,
                audit_annotations: &outcome.audit_annotations,
                object: &objects[i],
                file: &docs[i].0,
            });
        }
        for v in &outcome.violations {
            if args.deny_only && !is_deny(v) {
                continue;
            }
            reported.push(Reported {
                file: &docs[i].0,
                object_index: i,
                violation: v,
            });
        }
    }
    let kube_failed = kube_results
        .iter()
        .any(|r| !r.failures.is_empty() || !r.errors.is_empty());
    match args.output {
        TestOutput::Default => {
            print_human(out, &reported, objects.len(), bundle.constraint_count())?;
            print_annotations(out, &annotated)?;
            if let Some(settings) = &kube {
                print_kube_human(out, &kube_results, settings)?;
            }
        }
        TestOutput::Json | TestOutput::Yaml if !kube_results.is_empty() => {
            let mut sorted: Vec<&Reported<'_>> = reported.iter().collect();
            sorted.sort_by(|a, b| {
                (
                    a.violation.constraint_action.as_str(),
                    a.violation.msg.as_str(),
                )
                    .cmp(&(
                        b.violation.constraint_action.as_str(),
                        b.violation.msg.as_str(),
                    ))
            });
            let mut all: Vec<serde_json::Value> = sorted
                .iter()
                .map(|r| serde_json::to_value(GatorResult::of(r.violation)))
                .collect::<Result<_, _>>()?;
            for a in &annotated {
                all.push(serde_json::to_value(a)?);
            }
            all.extend(kube_json(&kube_results));
            if args.output == TestOutput::Json {
                writeln!(out, "{}", go_json(&all)?)?;
            } else {
                write!(
                    out,
                    "{}",
                    serde_saphyr::to_string(&serde_json::Value::Array(all))?
                )?;
            }
        }
        TestOutput::Json | TestOutput::Yaml => {
            let mut sorted: Vec<&Reported<'_>> = reported.iter().collect();
            // gator's order: by enforcement action, then message.
            sorted.sort_by(|a, b| {
                (
                    a.violation.constraint_action.as_str(),
                    a.violation.msg.as_str(),
                )
                    .cmp(&(
                        b.violation.constraint_action.as_str(),
                        b.violation.msg.as_str(),
                    ))
            });
            // The policies' audit annotations follow gator's results (none: gator's list).
            let results: Vec<Entry<'_>> = sorted
                .iter()
                .map(|r| Entry::Result(GatorResult::of(r.violation)))
                .chain(annotated.into_iter().map(Entry::Annotations))
                .collect();
            if args.output == TestOutput::Json {
                write_results_json(out, &results)?;
            } else {
                let value = serde_json::to_value(&results)?;
                write!(out, "{}", serde_saphyr::to_string(&value)?)?;
            }
        }
    }
    Ok(u8::from(
        reported.iter().any(|r| is_deny(r.violation)) || kube_failed,
    ))
}

/// The Kubernetes checks' findings after gator's report: one line per finding
/// (`[deny]` for schema errors and removed APIs, `[warn]` for deprecated ones,
/// `[skip]` for kinds without a schema) and a count.
fn print_kube_human(
    out: &mut dyn Write,
    results: &[CheckResult],
    settings: &crate::kube_run::KubeSettings,
) -> Result<()> {
    writeln!(out)?;
    writeln!(out, "Kubernetes {} checks:", settings.options.version)?;
    let (mut fails, mut warns, mut skips, mut passed) = (0, 0, 0, 0);
    for r in results {
        passed += r.successes;
        for (tag, list) in [
            ("deny", &r.failures),
            ("deny", &r.errors),
            ("warn", &r.warnings),
            ("skip", &r.skipped),
        ] {
            for o in list {
                writeln!(out, "  [{tag}] {}: {}", r.namespace, o.msg)?;
            }
        }
        fails += r.failures.len() + r.errors.len();
        warns += r.warnings.len();
        skips += r.skipped.len();
    }
    writeln!(
        out,
        "{passed} passed, {fails} failure{}, {warns} warning{}, {skips} skipped",
        plural(fails),
        plural(warns)
    )?;
    Ok(())
}

/// The Kubernetes checks' findings as entries of the JSON/YAML result list.
fn kube_json(results: &[CheckResult]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for r in results {
        for (action, list) in [
            ("deny", &r.failures),
            ("deny", &r.errors),
            ("warn", &r.warnings),
            ("skip", &r.skipped),
        ] {
            for o in list {
                out.push(serde_json::json!({
                    "target": r.namespace,
                    "msg": o.msg,
                    "enforcementAction": action,
                    "file": r.filename,
                    "line": o.loc.as_ref().map(|l| l.line),
                    "metadata": o.metadata,
                }));
            }
        }
    }
    out
}

/// The `target` of the audit annotation entries of `gk test -o json|yaml`.
const AUDIT_TARGET: &str = "audit.k8s.io";

/// One object's audit annotations (ValidatingAdmissionPolicy `auditAnnotations` and
/// `validation_failure`) in `gk test -o json|yaml`: after gator's results, one entry per
/// object, `{"target": "audit.k8s.io", "auditAnnotations": {key: value}, "object", "file"}`.
#[derive(Serialize)]
struct Annotated<'a> {
    target: &'static str,
    #[serde(rename = "auditAnnotations")]
    audit_annotations: &'a std::collections::BTreeMap<String, String>,
    object: &'a Value,
    file: &'a str,
}

/// An entry of `gk test`'s JSON/YAML list.
#[derive(Serialize)]
#[serde(untagged)]
enum Entry<'a> {
    Result(GatorResult<'a>),
    Annotations(Annotated<'a>),
}

/// The audit annotations after the summary, one line each, led by the object:
/// `  <object> (<file>) <key>: <value>`. Nothing when there are none.
fn print_annotations(out: &mut dyn Write, annotated: &[Annotated<'_>]) -> Result<()> {
    if annotated.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "Audit annotations:")?;
    for a in annotated {
        let object = describe_object(a.object);
        for (key, value) in a.audit_annotations {
            writeln!(out, "  {object} ({}) {key}: {value}", a.file)?;
        }
    }
    Ok(())
}

/// gator's JSON result object.
#[derive(Serialize)]
struct GatorResult<'a> {
    target: &'static str,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    constraint: &'a Value,
    #[serde(rename = "enforcementAction")]
    enforcement_action: &'static str,
    #[serde(rename = "scopedActions", skip_serializing_if = "Vec::is_empty")]
    scoped_actions: Vec<&'static str>,
    #[serde(rename = "violatingObject")]
    violating_object: &'a Value,
    trace: Option<String>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    details: &'a Value,
}

impl<'a> GatorResult<'a> {
    fn of(v: &'a Violation) -> GatorResult<'a> {
        let scoped = v.constraint_action == "scoped";
        GatorResult {
            target: TARGET,
            msg: &v.msg,
            // CEL results carry no details, and gator prints no metadata for them.
            metadata: (!matches!(v.details, Value::Undefined)).then_some(Metadata {
                details: &v.details,
            }),
            constraint: &v.constraint,
            enforcement_action: if scoped {
                "scoped"
            } else {
                v.enforcement_action.as_str()
            },
            scoped_actions: if scoped {
                v.actions.iter().map(EnforcementAction::as_str).collect()
            } else {
                Vec::new()
            },
            violating_object: &v.object,
            trace: None,
        }
    }
}

/// The result list as gator prints it, each result rendered on its own core.
fn write_results_json<T: Serialize + Sync>(out: &mut dyn Write, results: &[T]) -> Result<()> {
    use rayon::prelude::*;
    if results.is_empty() {
        writeln!(out, "[]")?;
        return Ok(());
    }
    let rendered: Vec<Vec<u8>> = results
        .par_iter()
        .map(|r| {
            let json = indented_json(r)?;
            // One level deeper inside the array. Newlines only occur as
            // formatting: inside strings they are escaped.
            let mut indented = Vec::with_capacity(json.len() + json.len() / 8);
            go_escape(&json, b"    ", &mut indented);
            Ok(indented)
        })
        .collect::<Result<_>>()?;
    out.write_all(b"[\n")?;
    let last = rendered.len().saturating_sub(1);
    for (i, r) in rendered.iter().enumerate() {
        out.write_all(b"    ")?;
        out.write_all(r)?;
        out.write_all(if i == last { b"\n" } else { b",\n" })?;
    }
    out.write_all(b"]\n")?;
    Ok(())
}

/// JSON as Go's `json.MarshalIndent(v, "", "    ")` writes it (HTML-safe escapes included).
fn go_json<T: Serialize>(v: &T) -> Result<String> {
    let json = indented_json(v)?;
    let mut out = Vec::with_capacity(json.len());
    go_escape(&json, b"", &mut out);
    Ok(String::from_utf8(out)?)
}

/// serde_json's text with Go's `MarshalIndent` layout (four spaces), before
/// [`go_escape`].
fn indented_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    v.serialize(&mut serde_json::Serializer::with_formatter(&mut buf, fmt))?;
    Ok(buf)
}

/// The bytes [`go_escape`] stops at: `<`, `>`, `&`, the first byte of
/// U+2028 and U+2029, and newlines.
const GO_ESCAPE_STOPS: [bool; 256] = {
    let mut t = [false; 256];
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'&' as usize] = true;
    t[0xE2] = true;
    t[b'\n' as usize] = true;
    t
};

/// Copies serde_json's text to `out` with the escapes Go's encoder adds
/// (`<`, `>`, `&`, U+2028, U+2029; they only occur inside strings) and
/// `indent` after every newline (newlines only occur as formatting).
/// Escaping byte by byte through a `Write` adapter was 11 % of
/// `regard gk test -o json` on the reference corpus: most results need no
/// escape, which vectorised searches find, and then only lines are copied.
fn go_escape(json: &[u8], indent: &[u8], out: &mut Vec<u8>) {
    let escapes =
        memchr::memchr3(b'<', b'>', b'&', json).is_some() || memchr::memchr(0xE2, json).is_some();
    if escapes {
        go_escape_each(json, indent, out);
        return;
    }
    let mut start = 0;
    for newline in memchr::memchr_iter(b'\n', json) {
        out.extend_from_slice(&json[start..=newline]);
        out.extend_from_slice(indent);
        start = newline + 1;
    }
    out.extend_from_slice(&json[start..]);
}

/// [`go_escape`] for text that has something to escape: one table lookup
/// per byte.
fn go_escape_each(json: &[u8], indent: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        if !GO_ESCAPE_STOPS[usize::from(b)] {
            i += 1;
            continue;
        }
        let (text, len): (&[u8], usize) = match (b, json.get(i + 1..i + 3)) {
            (b'<', _) => (b"\\u003c", 1),
            (b'>', _) => (b"\\u003e", 1),
            (b'&', _) => (b"\\u0026", 1),
            (b'\n', _) => (b"\n", 1),
            (0xE2, Some([0x80, 0xA8])) => (b"\\u2028", 3),
            (0xE2, Some([0x80, 0xA9])) => (b"\\u2029", 3),
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&json[start..i]);
        out.extend_from_slice(text);
        if b == b'\n' {
            out.extend_from_slice(indent);
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&json[start..]);
}

fn describe_object(v: &Value) -> String {
    let s = |path: &[&str]| {
        let mut cur = v;
        for p in path {
            cur = &cur[*p];
        }
        cur.as_string().map(|s| s.to_string()).unwrap_or_default()
    };
    let (api, kind, name, ns) = (
        s(&["apiVersion"]),
        s(&["kind"]),
        s(&["metadata", "name"]),
        s(&["metadata", "namespace"]),
    );
    if ns.is_empty() {
        format!("{api}/{kind} {name}")
    } else {
        format!("{api}/{kind} {ns}/{name}")
    }
}

fn print_human(
    out: &mut dyn Write,
    reported: &[Reported<'_>],
    objects: usize,
    constraints: usize,
) -> Result<()> {
    let mut last = None;
    let mut violating_objects = 0;
    for r in reported {
        if last != Some(r.object_index) {
            if last.is_some() {
                writeln!(out)?;
            }
            last = Some(r.object_index);
            violating_objects += 1;
            writeln!(out, "{} ({})", describe_object(&r.violation.object), r.file)?;
        }
        let v = r.violation;
        writeln!(
            out,
            "  [{}] {}: {}",
            v.enforcement_action.as_str(),
            v.constraint_name,
            v.msg
        )?;
    }
    if !reported.is_empty() {
        writeln!(out)?;
    }
    let count = |a: EnforcementAction| {
        reported
            .iter()
            .filter(|r| r.violation.enforcement_action == a)
            .count()
    };
    writeln!(
        out,
        "{} violation{} ({} deny, {} warn, {} dryrun) in {} of {} object{}, {} constraint{}",
        reported.len(),
        plural(reported.len()),
        count(EnforcementAction::Deny),
        count(EnforcementAction::Warn),
        count(EnforcementAction::Dryrun),
        violating_objects,
        objects,
        plural(objects),
        constraints,
        plural(constraints),
    )?;
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn verify(args: &VerifyArgs, out: &mut dyn Write) -> Result<u8> {
    let filter = Filter::new(&args.run)?;
    let images = args.images.pull()?;
    let files = suite::find_suite_files(&with_images(&args.paths, &images))?;
    let results = suite::run_files(&files, &filter, args.evaluator.engines());
    if results.is_empty() {
        bail!("no test suites found in {}", args.paths.join(", "));
    }
    let mut failed = false;
    for r in &results {
        print_suite(out, r, args.verbose)?;
        failed |= r.failed();
    }
    writeln!(out, "{}", if failed { "FAIL" } else { "PASS" })?;
    Ok(u8::from(failed))
}

fn print_suite(out: &mut dyn Write, r: &SuiteResult, verbose: bool) -> Result<()> {
    for t in &r.tests {
        if verbose {
            if t.skipped {
                writeln!(out, "=== SKIP  {}", t.name)?;
                continue;
            }
            writeln!(out, "=== RUN   {}", t.name)?;
        }
        for c in &t.cases {
            if verbose {
                if c.skipped {
                    writeln!(out, "    === SKIP  {}", c.name)?;
                    continue;
                }
                writeln!(out, "    === RUN   {}", c.name)?;
            }
            if let Some(e) = &c.error {
                writeln!(
                    out,
                    "    --- FAIL: {}\t({})\n        {e}",
                    c.name,
                    go_duration(c.duration)
                )?;
            } else if verbose && !c.skipped {
                writeln!(
                    out,
                    "    --- PASS: {}\t({})",
                    c.name,
                    go_duration(c.duration)
                )?;
            }
        }
        if t.failed() {
            writeln!(out, "--- FAIL: {}\t({})", t.name, go_duration(t.duration))?;
            if let Some(e) = &t.error {
                writeln!(out, "  {e}")?;
            }
        } else if verbose && !t.skipped {
            writeln!(out, "--- PASS: {}\t({})", t.name, go_duration(t.duration))?;
        }
    }
    let path = r.path.display();
    if r.failed() {
        writeln!(out, "FAIL\t{path}\t{}", go_duration(r.duration))?;
        if let Some(e) = &r.error {
            writeln!(out, "  {e}")?;
        }
    } else {
        writeln!(out, "ok\t{path}\t{}", go_duration(r.duration))?;
    }
    Ok(())
}

/// A duration as Go's `time.Duration.String()` prints it (`1.5ms`, `2.001s`, `1m3s`).
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_owned();
    }
    let frac = |value: u128, unit: u128, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            return format!("{whole}{suffix}");
        }
        let digits = unit.to_string().len() - 1;
        let s = format!("{rest:0digits$}");
        format!("{whole}.{}{suffix}", s.trim_end_matches('0'))
    };
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return frac(ns, 1_000, "µs");
    }
    if ns < 1_000_000_000 {
        return frac(ns, 1_000_000, "ms");
    }
    let secs_ns = ns % 60_000_000_000;
    let mins = ns / 60_000_000_000;
    let secs = frac(secs_ns, 1_000_000_000, "s");
    match (mins / 60, mins % 60) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

fn expand_cmd(args: &ExpandArgs, out: &mut dyn Write) -> Result<u8> {
    let docs = load_inputs(&args.filenames)?;
    let bundle = PolicyBundle::from_documents(docs.clone())?;
    let templates = bundle.expansion_templates();
    if templates.is_empty() {
        bail!("no ExpansionTemplates among the inputs");
    }
    let namespaces: Vec<&Value> = bundle
        .ignored()
        .iter()
        .map(|d| &d.value)
        .filter(|v| v["kind"] == Value::from("Namespace") && v["apiVersion"] == Value::from("v1"))
        .collect();
    // As gator expand: mutators apply to the base object (Original) and to
    // each resultant (Generated) before it is expanded further.
    let mutators = (!args.no_mutate)
        .then(|| crate::mutate_cmd::load_mutators(&docs))
        .transpose()?
        .filter(|m| !m.is_empty());
    let all_namespaces: Vec<Value> = namespaces.iter().map(|v| (*v).clone()).collect();
    let mut resultants = Vec::new();
    for doc in bundle.ignored() {
        if MutationSystem::is_mutator(&doc.value) {
            continue;
        }
        let ns_name = doc.value["metadata"]["namespace"].clone();
        let ns = namespaces
            .iter()
            .copied()
            .find(|n| n["metadata"]["name"] == ns_name);
        let mut base = doc.value.clone();
        if let Some(system) = &mutators {
            let ctx = MutationContext::gator(&base, &all_namespaces);
            system
                .mutate_value(&mut base, &ctx)
                .with_context(|| format!("mutating {}", doc.source))?;
        }
        let mut fix = |r: &mut Value| -> std::result::Result<(), String> {
            if let Some(system) = &mutators {
                let ctx = MutationContext {
                    source: SourceType::Generated,
                    ..MutationContext::gator(r, &all_namespaces)
                };
                system.mutate_value(r, &ctx).map_err(|e| e.to_string())?;
            }
            Ok(())
        };
        for r in expand_with(templates, &base, ns, &mut fix)? {
            resultants.push(serde_json::to_value(&r.object)?);
        }
    }
    let text = match args.format {
        ExpandFormat::Json => go_json(&resultants)? + "\n",
        ExpandFormat::Yaml => {
            let mut s = String::new();
            for (i, r) in resultants.iter().enumerate() {
                if i > 0 {
                    s.push_str("---\n");
                }
                s.push_str(&serde_saphyr::to_string(r)?);
            }
            s
        }
    };
    match &args.output_file {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => out.write_all(text.as_bytes())?,
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escape_adds_gos_escapes_and_the_indent() {
        let json = "{\n    \"a\": \"<b> & \u{2028}\u{2029}\u{2027}\u{e9}\u{20ac}\"\n}";
        let mut out = Vec::new();
        go_escape(json.as_bytes(), b"  ", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n      \"a\": \"\\u003cb\\u003e \\u0026 \\u2028\\u2029\u{2027}\u{e9}\u{20ac}\"\n  }"
        );
        let mut plain = Vec::new();
        go_escape("{\n  \"a\": \"\u{e9}\"\n}".as_bytes(), b"  ", &mut plain);
        assert_eq!(plain, "{\n    \"a\": \"\u{e9}\"\n  }".as_bytes());
        assert_eq!(
            go_json(&serde_json::json!({"k": ["<&>"]})).unwrap(),
            "{\n    \"k\": [\n        \"\\u003c\\u0026\\u003e\"\n    ]\n}"
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_micros(2_340)), "2.34ms");
        assert_eq!(go_duration(Duration::from_millis(1_000)), "1s");
        assert_eq!(go_duration(Duration::from_millis(63_500)), "1m3.5s");
        assert_eq!(go_duration(Duration::from_secs(3_600)), "1h0m0s");
    }
}
