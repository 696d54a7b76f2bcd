//! `regard test`: conftest-compatible checks of configuration files.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result, bail};
use policy_core::conftest::{CheckResult, Checker, NamespaceSelection};
use policy_core::input::{self, Format};
use policy_core::policy::{LoadOptions, PolicySet};

use crate::bundle_run::Selection;
use crate::cli::TestArgs;
use crate::config::Layers;
use crate::output::{self, OutputFormat, RenderOptions};

/// Fully resolved settings for one run.
#[derive(Debug)]
struct Settings {
    paths: Vec<String>,
    /// ConstraintTemplate bundles to run instead of Rego policies.
    bundles: Option<Selection>,
    /// Whether bundles' K8sNativeValidation (CEL) code runs before their Rego.
    k8s_native_validation: bool,
    /// Which evaluator runs the Rego.
    evaluator: policy_core::gatekeeper::Evaluator,
    load: LoadOptions,
    namespaces: NamespaceSelection,
    output: OutputFormat,
    fail_on_warn: bool,
    no_fail: bool,
    quiet: bool,
    color: bool,
    suppress_exceptions: bool,
    combine: bool,
    ignore: Option<regex::Regex>,
    parser: Option<Format>,
    stdin_filename: Option<String>,
    junit_hide_message: bool,
    github_hide_passed: bool,
    trace: bool,
    parse_options: input::ParseOptions,
    /// Kubernetes schema and deprecated-API checks, when on.
    kube: Option<crate::kube_run::KubeSettings>,
    /// Validate objects as given, without the bundles' mutators.
    no_mutate: bool,
}

impl Settings {
    fn resolve(args: TestArgs) -> Result<Settings> {
        let layers = Layers::load(args.policy.config_file.as_deref())?;
        let update = layers.list("update", args.update)?;
        if !update.is_empty() {
            // conftest downloads into the first policy directory, before anything else is read.
            let dest = layers
                .list("policy", args.policy.policy.clone())?
                .into_iter()
                .next()
                .unwrap_or_else(|| "policy".to_owned());
            crate::source_cmd::pull_all(
                &update,
                std::path::Path::new(&dest),
                policy_source::PullMode::Overwrite,
                &args.source.options(),
            )
            .context("update policies")?;
        }
        let policy_flags = layers.list("policy", args.policy.policy.clone())?;
        let bundle = layers.list("bundle", args.bundle)?;
        let bundles = if !bundle.is_empty() {
            if !policy_flags.is_empty() {
                bail!("--bundle and --policy cannot be combined");
            }
            Some(Selection {
                entries: bundle,
                implicit: false,
            })
        } else if policy_flags.is_empty() && !std::path::Path::new("policy").exists() {
            Some(Selection::defaults()?)
        } else {
            None
        };
        if bundles.is_some() {
            if layers.flag("combine", args.combine)? {
                bail!("--combine cannot be used with ConstraintTemplate bundles");
            }
            if !args.namespace.is_empty() || args.all_namespaces == Some(true) {
                bail!(
                    "--namespace and --all-namespaces do not apply to ConstraintTemplate bundles"
                );
            }
            if !args.policy.data.is_empty() {
                bail!("--data does not apply to ConstraintTemplate bundles");
            }
            if args.trace == Some(true) {
                bail!("--trace does not apply to ConstraintTemplate bundles");
            }
        }
        let load = layers.load_options(args.policy)?;
        let namespaces = if layers.flag("all-namespaces", args.all_namespaces)? {
            NamespaceSelection::All
        } else {
            let list = layers.list("namespace", args.namespace)?;
            if list.is_empty() {
                NamespaceSelection::default()
            } else {
                NamespaceSelection::Patterns(list)
            }
        };
        let output = layers.output_format(args.output.output)?;
        let ignore = layers
            .string("ignore", args.ignore)?
            .filter(|s| !s.is_empty())
            .map(|re| {
                regex::Regex::new(&re).with_context(|| format!("invalid --ignore pattern {re:?}"))
            })
            .transpose()?;
        let parser = layers
            .string("parser", args.parser)?
            .filter(|s| !s.is_empty())
            .map(|p| Format::from_name(&p))
            .transpose()?;
        let no_color = layers.flag("no-color", args.output.no_color)?;
        // On by default only for the default bundles: a conftest run stays a conftest run.
        let kube_default = bundles.as_ref().is_some_and(|b| b.implicit);
        let kube = layers.kube_options(args.kube, kube_default)?;
        Ok(Settings {
            paths: args.paths,
            bundles,
            k8s_native_validation: args.cel.k8s_native_validation,
            evaluator: args.rego.evaluator,
            load,
            namespaces,
            output,
            fail_on_warn: layers.flag("fail-on-warn", args.fail_on_warn)?,
            no_fail: layers.flag("no-fail", args.no_fail)?,
            quiet: layers.flag("quiet", args.output.quiet)?,
            color: !no_color && std::io::stdout().is_terminal(),
            suppress_exceptions: layers.flag("suppress-exceptions", args.suppress_exceptions)?,
            combine: layers.flag("combine", args.combine)?,
            ignore,
            parser,
            stdin_filename: layers.string("stdin-filename", args.stdin_filename)?,
            junit_hide_message: layers
                .flag("junit-hide-message", args.output.junit_hide_message)?,
            github_hide_passed: layers
                .flag("github-hide-passed", args.output.github_hide_passed)?,
            trace: layers.flag("trace", args.trace)?,
            parse_options: input::ParseOptions::new(
                layers
                    .list("proto-file-dirs", args.proto_file_dirs)?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ),
            kube,
            no_mutate: layers.flag("no-mutate", args.no_mutate)?,
        })
    }
}

/// What evaluates the files: conftest-style Rego policies or Gatekeeper bundles.
enum Engine {
    Conftest(Box<Checker>),
    /// A bundle, and the mutators among its documents.
    Bundle(
        policy_core::gatekeeper::PolicyBundle,
        Vec<(String, policy_core::Value)>,
    ),
}

pub(crate) fn run(args: TestArgs) -> Result<u8> {
    let settings = Settings::resolve(args)?;
    let sources = input::collect(&settings.paths, settings.ignore.as_ref())?;
    let engine = match &settings.bundles {
        Some(selection) => {
            if let Some(line) = selection.announcement() {
                eprintln!("{line}");
            }
            let (bundle, mutators) = selection.load()?;
            Engine::Bundle(bundle, mutators)
        }
        None => {
            let policies = PolicySet::load(&settings.load)?;
            let mut checker = Checker::new(&policies, &settings.namespaces)?;
            checker.set_evaluator(settings.evaluator);
            if settings.trace {
                checker.enable_tracing(&policies)?;
            }
            Engine::Conftest(Box::new(checker))
        }
    };

    let parsed = input::read_all(
        &sources,
        settings.parser,
        &mut std::io::stdin().lock(),
        settings.stdin_filename.as_deref(),
        &settings.parse_options,
    );
    let mut files = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    for item in parsed {
        match item {
            Ok(file) => files.push(file),
            Err(e) => errors.push(e),
        }
    }
    let results = match &engine {
        Engine::Bundle(bundle, bundle_mutators) => {
            let engines = policy_core::gatekeeper::Engines {
                k8s_native_validation: settings.k8s_native_validation,
                evaluator: settings.evaluator,
            };
            // Mutators from the bundles and from the inputs: objects are
            // validated as the cluster would store them.
            let mutators = if settings.no_mutate {
                None
            } else {
                let mut docs = bundle_mutators.clone();
                for file in &files {
                    docs.extend(
                        file.documents()
                            .into_iter()
                            .filter(policy_core::mutation::MutationSystem::is_mutator)
                            .map(|d| (file.name.clone(), d)),
                    );
                }
                Some(crate::mutate_cmd::load_mutators(&docs)?)
            };
            policy_core::conftest::check_bundle_mutated(bundle, &files, engines, mutators.as_ref())?
        }
        Engine::Conftest(checker) if settings.combine => {
            if errors.is_empty() {
                checker.check_combined(&files)?
            } else {
                Vec::new()
            }
        }
        Engine::Conftest(checker) => checker.check_files(&files)?,
    };
    let mut results = results;
    if let Some(kube) = &settings.kube {
        let kube_files: Vec<policy_core::kube::KubeFile<'_>> = files
            .iter()
            .map(policy_core::kube::KubeFile::from_parsed)
            .collect();
        results.extend(crate::kube_run::check(kube, &kube_files)?);
    }
    if settings.trace {
        let mut stderr = std::io::stderr().lock();
        for line in results.iter().flat_map(|r| &r.trace) {
            writeln!(stderr, "{line}")?;
        }
    }
    let code = exit_code(&results, &settings);
    if !(settings.quiet && code == 0 && errors.is_empty()) {
        let options = RenderOptions {
            color: settings.color,
            suppress_exceptions: settings.suppress_exceptions,
            junit_hide_message: settings.junit_hide_message,
            github_hide_passed: settings.github_hide_passed,
            show_skipped: results.iter().any(|r| !r.skipped.is_empty()),
            skipped_lines: true,
            exit_code: u8::from(
                results
                    .iter()
                    .any(|r| !r.failures.is_empty() || !r.errors.is_empty()),
            ),
        };
        let text = output::render(settings.output, &results, &options);
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("Error: {e}");
        }
        return Ok(1);
    }
    Ok(code)
}

/// conftest's exit code rules. An evaluation error exits 1, as any error
/// does in conftest (where it stops the run), whatever the other flags say.
fn exit_code(results: &[CheckResult], settings: &Settings) -> u8 {
    if results.iter().any(|r| !r.errors.is_empty()) {
        return 1;
    }
    if settings.no_fail {
        return 0;
    }
    let failures = results.iter().any(|r| !r.failures.is_empty());
    let warnings = results.iter().any(|r| !r.warnings.is_empty());
    match (settings.fail_on_warn, failures, warnings) {
        (true, true, _) => 2,
        (true, false, true) => 1,
        (false, true, _) => 1,
        _ => 0,
    }
}
