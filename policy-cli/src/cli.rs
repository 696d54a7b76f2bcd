//! Command-line flags (clap derive). Flags that conftest users may also set
//! in `conftest.toml` or `CONFTEST_*` variables are optional here and
//! resolved against those layers in [`crate::config`].
//!
//! Boolean flags take an optional value as conftest's (Go pflag) do:
//! `--strict`, `--strict=true` and `--strict=false` ([`go_bool`]); an
//! explicit `=false` overrides a `true` from the lower layers.

use std::ffi::OsString;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Parser, Subcommand};
use policy_core::gatekeeper::Evaluator;

/// Policy checks for configuration files and Kubernetes, conftest- and Gatekeeper-compatible.
#[derive(Debug, Parser)]
#[command(name = "regard", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Config file with flag defaults for test and verify (conftest's global `-c`, given before the command)
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub(crate) config_file: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Test configuration files against Rego policies (conftest test).
    Test(Box<TestArgs>),
    /// Run Rego unit tests (`test_*` rules), with optional coverage (conftest verify).
    Verify(Box<VerifyArgs>),
    /// Print input files as policies see them (conftest parse).
    Parse(crate::parse_cmd::ParseArgs),
    /// Gatekeeper ConstraintTemplates and Constraints (gator-compatible: test, verify, expand).
    Gk(crate::gk_cmd::GkArgs),
    /// The built-in policy library: list bundles, export them, print their README.
    Policies(crate::policies_cmd::PoliciesArgs),
    /// Write Markdown documentation of policies from their METADATA annotations (conftest doc).
    Doc(crate::doc_cmd::DocArgs),
    /// Render a saved JSON report (`test -o json`) in another format (conftest reformat).
    Reformat(crate::reformat_cmd::ReformatArgs),
    /// Install conftest plugins (conftest plugin install).
    Plugin(crate::plugin_cmd::PluginArgs),
    /// An installed plugin, run with the arguments that follow (`regard NAME ARGS…`).
    #[command(external_subcommand)]
    External(Vec<OsString>),
    /// Download policies from OCI registries, HTTPS archives, git or paths (conftest pull).
    Pull(crate::source_cmd::PullArgs),
    /// Upload policies and data to an OCI registry in conftest's layout (conftest push).
    Push(crate::source_cmd::PushArgs),
}

/// Flags shared by commands that load policies.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PolicyArgs {
    /// Policy files or directories (walked for .rego files) [default: policy]
    #[arg(short = 'p', long = "policy", value_delimiter = ',')]
    pub(crate) policy: Vec<String>,
    /// Data files or directories (.json, .yaml, .yml) merged into `data`
    #[arg(short = 'd', long = "data", value_delimiter = ',')]
    pub(crate) data: Vec<String>,
    /// Rego syntax of the policies: v0 or v1 [default: v1]
    #[arg(long = "rego-version")]
    pub(crate) rego_version: Option<String>,
    /// Abort on the first builtin error instead of treating it as undefined
    #[arg(long = "show-builtin-errors", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) show_builtin_errors: Option<bool>,
    /// Config file with flag defaults [default: conftest.toml or regard.toml in the working directory]
    #[arg(short = 'c', long = "config-file")]
    pub(crate) config_file: Option<String>,
    /// OPA strict mode: refuse unused assignments, arguments and imports, duplicate imports,
    /// input/data shadowing and deprecated builtins
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) strict: Option<bool>,
    /// OPA capabilities file (JSON): refuse policies calling builtins it does not list
    #[arg(long, value_name = "FILE")]
    pub(crate) capabilities: Option<String>,
}

/// Flags that choose and shape the report.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct OutputArgs {
    /// Output format: stdout, json, tap, table, junit, github, azuredevops, sarif [default: stdout]
    #[arg(short = 'o', long = "output")]
    pub(crate) output: Option<String>,
    /// Disable colours in stdout output
    #[arg(long = "no-color", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) no_color: Option<bool>,
    /// Print nothing when the exit code is 0
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) quiet: Option<bool>,
    /// Name only the file in JUnit test case names, not the message
    #[arg(long = "junit-hide-message", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) junit_hide_message: Option<bool>,
    /// Leave files whose checks all passed out of GitHub output
    #[arg(long = "github-hide-passed", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) github_hide_passed: Option<bool>,
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Files or directories to test; `-` reads standard input
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<String>,
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    /// Built-in bundle (baseline, restricted, best-practices, deprecated-apis, restricted-defaults) or directory
    /// of Gatekeeper ConstraintTemplates and Constraints (and mutators) to run instead of Rego policies; repeatable
    /// [default when no policy is given and ./policy does not exist: baseline, best-practices]
    #[arg(long = "bundle", value_delimiter = ',', value_name = "NAME|DIR")]
    pub(crate) bundle: Vec<String>,
    #[command(flatten)]
    pub(crate) cel: CelArg,
    #[command(flatten)]
    pub(crate) rego: EvaluatorFlag,
    /// With --bundle: validate objects as given, without applying the mutators in the bundles and inputs first
    #[arg(long = "no-mutate", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) no_mutate: Option<bool>,
    /// Namespaces (packages) to query; comma lists and globs (`*?[`) allowed [default: main]
    #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
    pub(crate) namespace: Vec<String>,
    /// Query every package found in the policies
    #[arg(long = "all-namespaces", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) all_namespaces: Option<bool>,
    /// Exit 1 on warnings and 2 on failures
    #[arg(long = "fail-on-warn", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) fail_on_warn: Option<bool>,
    /// Always exit 0 once results are printed
    #[arg(long = "no-fail", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) no_fail: Option<bool>,
    /// Hide exception lines in stdout output (they are still counted)
    #[arg(long = "suppress-exceptions", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) suppress_exceptions: Option<bool>,
    /// Evaluate all inputs together as one `input` array of {path, contents}
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) combine: Option<bool>,
    /// Regular expression of paths to skip
    #[arg(long)]
    pub(crate) ignore: Option<String>,
    /// Parse every input with this parser instead of choosing by file name
    #[arg(long)]
    pub(crate) parser: Option<String>,
    /// Name to report for standard input
    #[arg(long = "stdin-filename")]
    pub(crate) stdin_filename: Option<String>,
    /// Directories searched for .proto files (textproto inputs)
    #[arg(long = "proto-file-dirs", value_delimiter = ',')]
    pub(crate) proto_file_dirs: Vec<String>,
    /// Print each rule's value and the policy lines evaluated, per document, to standard error
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub(crate) trace: Option<bool>,
    #[command(flatten)]
    pub(crate) kube: KubeArgs,
    /// Download policies from these sources into the first --policy directory before testing
    /// (as `regard pull`, overwriting files it brings); repeatable
    #[arg(short = 'u', long, value_delimiter = ',', value_name = "URL")]
    pub(crate) update: Vec<String>,
    #[command(flatten)]
    pub(crate) source: crate::source_cmd::SourceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    pub(crate) policy: PolicyArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    /// Report only tests in these namespaces (packages); globs allowed
    #[arg(short = 'n', long = "namespace", value_delimiter = ',')]
    pub(crate) namespace: Vec<String>,
    /// Per-test report with durations (stdout only): full, fails or notes
    #[arg(long)]
    pub(crate) report: Option<String>,
    /// Run only tests whose path (data.pkg.test_name) matches this regular expression
    #[arg(long)]
    pub(crate) run: Option<String>,
    /// Report line coverage of the non-test policy files
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set, value_parser = go_bool)]
    pub(crate) coverage: bool,
    /// Fail when total coverage is below this percentage (implies --coverage)
    #[arg(long = "coverage-min", value_name = "PERCENT")]
    pub(crate) coverage_min: Option<f64>,
    /// Print each test's outcome, print() output and evaluated lines to standard error
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = clap::ArgAction::Set, value_parser = go_bool)]
    pub(crate) trace: bool,
    /// Run tests (from --policy) against this ConstraintTemplate's Rego; repeatable
    #[arg(long, value_name = "FILE")]
    pub(crate) template: Vec<String>,
    /// Paths are ignored (conftest accepts and ignores them)
    #[arg(hide = true)]
    pub(crate) ignored: Vec<String>,
}

/// Kubernetes schema and deprecated-API checks (`regard test`, `regard gk test`).
#[derive(Debug, Args, Clone, Default)]
pub struct KubeArgs {
    /// Check Kubernetes objects against the schemas and API deprecations of this version (X.Y),
    /// or `none` [default: the newest embedded version when the default bundles run, else none]
    #[arg(long = "kube-version", value_name = "X.Y|none")]
    pub kube_version: Option<String>,
    /// Skip schema validation (deprecated-API checks still run)
    #[arg(long = "no-schema", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub no_schema: Option<bool>,
    /// Skip deprecated-API checks (schema validation still runs)
    #[arg(long = "no-deprecations", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = go_bool)]
    pub no_deprecations: Option<bool>,
    /// Directory of CustomResourceDefinitions whose objects are validated too; repeatable
    #[arg(long = "crd-dir", value_name = "DIR")]
    pub crd_dir: Vec<String>,
    /// Objects of kinds without a schema: `skip` (reported once per kind) or `fail` [default: skip]
    #[arg(long = "schema-unknown", value_name = "fail|skip")]
    pub schema_unknown: Option<String>,
}

/// `--evaluator`, shared by `test`, `gk test` and `gk verify`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct EvaluatorFlag {
    /// Evaluator: `rvm` (Rego on regorus' compiled VM, 2-3x faster, and CEL expressions lowered
    /// at load; policies it cannot run, and evaluations where a rule produces conflicting values,
    /// fall back to the interpreters) or `interpreter` (regorus' interpreter for all Rego, the
    /// cel crate's for all CEL); same results either way
    #[arg(
        long = "evaluator",
        default_value = Evaluator::NAMES[0],
        value_parser = PossibleValuesParser::new(Evaluator::NAMES).try_map(|s| s.parse::<Evaluator>())
    )]
    pub(crate) evaluator: Evaluator,
}

/// `--enable-k8s-native-validation`, shared by `test --bundle`, `gk test` and `gk verify`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct CelArg {
    /// Run a template's K8sNativeValidation (CEL) code when it has some, before its Rego, as
    /// Gatekeeper and gator do by default; `=false` runs the Rego (CEL-only templates then fail).
    #[arg(
        long = "enable-k8s-native-validation",
        value_name = "BOOL",
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub(crate) k8s_native_validation: bool,
}

/// A boolean flag's value, spelled as Go's `strconv.ParseBool` accepts it
/// (conftest's flags go through it): `1 t T true TRUE True` and
/// `0 f F false FALSE False`.
pub(crate) fn go_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false (or 1, 0, t, f)".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::go_bool;

    #[test]
    fn booleans_as_go_spells_them() {
        for yes in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(go_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(go_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "yes", "on", "tRUE", "2"] {
            assert_eq!(
                go_bool(bad),
                Err("expected true or false (or 1, 0, t, f)".to_owned()),
                "{bad}"
            );
        }
    }
}
