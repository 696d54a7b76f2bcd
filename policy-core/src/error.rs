//! Errors returned by `policy-core`.
//!
//! Every variant names what it concerns (a file, a line, a resource) so a user
//! reading a CI log knows where to look without re-running anything.

use std::path::PathBuf;

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading inputs or policies, or evaluating them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A path given on the command line does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// A file is not valid UTF-8 text (binary files are refused).
    #[error("{path}: not valid UTF-8 text (binary files are not supported)")]
    NotUtf8 {
        /// The offending file.
        path: PathBuf,
    },
    /// A file named explicitly has no parser for its name or extension.
    #[error("{path}: unknown file type {ext:?}; use --parser to choose one")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The extension that was not recognised (empty when there is none).
        ext: String,
    },
    /// A parser name (from `--parser` or `parse_config`) is not known.
    #[error("unknown parser {name:?} (known parsers: {known})")]
    UnknownParser {
        /// The requested name.
        name: String,
        /// The supported names, comma-separated.
        known: String,
    },
    /// A bundle name is not one of the built-in library's bundles.
    #[error("unknown bundle {name:?} (built-in bundles: {known})")]
    UnknownBundle {
        /// The requested name.
        name: String,
        /// The built-in bundle names, comma-separated.
        known: String,
    },
    /// A file of the built-in policy library could not be read.
    #[error("built-in policy library: {file}: {message}")]
    Library {
        /// The library file (relative to `policies/`).
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// A configuration file could not be parsed.
    #[error("{path}{}: {message}", location_suffix(*line, *column))]
    Parse {
        /// The file (`-` for standard input).
        path: PathBuf,
        /// 1-based line, when the parser reports one.
        line: Option<usize>,
        /// 1-based column, when the parser reports one.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// Directory walking found no input files.
    #[error("no files found in {paths}")]
    NoFiles {
        /// The paths that were searched, as given.
        paths: String,
    },
    /// No `.rego` files were found under the policy paths.
    #[error("no policies found in [{paths}]")]
    NoPolicies {
        /// The policy paths, as given.
        paths: String,
    },
    /// A policy failed to parse or compile.
    #[error("{path}: {message}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The compiler's message (it includes line and column).
        message: String,
    },
    /// OPA-compatibility checks (strict mode, capabilities) refused the
    /// policies; printed as OPA prints compile errors.
    #[error("{}", compile_errors(errors))]
    Compile {
        /// Every error found, sorted by file and line.
        errors: Vec<crate::rego::strict::CompileError>,
    },
    /// A data file could not be merged into `data`.
    #[error("{path}: data: {message}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Evaluating a rule failed.
    #[error("evaluating {query} for {file}: {}", message.trim_start())]
    Eval {
        /// The input file being evaluated.
        file: String,
        /// The query or rule being evaluated.
        query: String,
        /// The evaluator's message.
        message: String,
    },
    /// Evaluating a rule or test panicked inside the engine or a builtin.
    /// The panic was caught: only this evaluation's results are lost.
    #[error("evaluating {query} for {file}: evaluation panicked: {message}")]
    Panic {
        /// The input file (or test file) being evaluated.
        file: String,
        /// The rule, test or query being evaluated.
        query: String,
        /// The panic's message and where it happened.
        message: String,
    },
    /// A policy returned a result conftest cannot interpret (for example an object without `msg`).
    #[error("{query} for {file}: {message}")]
    InvalidResult {
        /// The input file being evaluated.
        file: String,
        /// The rule that produced the result.
        query: String,
        /// What is wrong with it.
        message: String,
    },
    /// An invalid setting (bad regular expression, bad Rego version, …).
    #[error("{0}")]
    Config(String),
    /// A ConstraintTemplate could not be loaded: bad structure, or Rego that
    /// does not compile or reads `data` outside `data.inventory` and `data.lib`.
    #[error("{file}: ConstraintTemplate {name:?}: {message}")]
    Template {
        /// The file the template came from.
        file: String,
        /// `metadata.name` (or the CRD kind when the name is missing).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A Constraint could not be loaded (unknown kind, bad `match`, bad
    /// enforcement action, unknown fields, ...).
    #[error("{file}: {kind} {name:?}: {message}")]
    Constraint {
        /// The file the constraint came from.
        file: String,
        /// The constraint's kind (its template's CRD kind).
        kind: String,
        /// `metadata.name`.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A Gatekeeper `Config` or `SyncSet` document is malformed.
    #[error("{file}: {kind} {name:?}: {message}")]
    SyncConfig {
        /// The file the document came from.
        file: String,
        /// `Config` or `SyncSet`.
        kind: String,
        /// `metadata.name`.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A Constraint's `spec.parameters` fail the template's `openAPIV3Schema`
    /// (Gatekeeper's "schema validation failed").
    #[error("{file}: {kind} {name:?}: schema validation failed: spec.parameters{field}: {message}")]
    ParametersSchema {
        /// The file the constraint came from.
        file: String,
        /// The constraint's kind.
        kind: String,
        /// `metadata.name`.
        name: String,
        /// JSON pointer of the offending field inside `spec.parameters` (empty for the root).
        field: String,
        /// What the schema requires.
        message: String,
    },
    /// An ExpansionTemplate could not be loaded or applied.
    #[error("{file}: ExpansionTemplate {name:?}: {message}")]
    Expansion {
        /// The file the template came from (or the object being expanded).
        file: String,
        /// `metadata.name`.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// An object or admission request cannot be reviewed (for example a
    /// DELETE request without `oldObject`).
    #[error("reviewing {object}: {message}")]
    Review {
        /// The object, as `Kind namespace/name`.
        object: String,
        /// What is wrong.
        message: String,
    },
    /// A review ran past its time budget.
    #[error("review timed out after {elapsed:?} (budget {limit:?})")]
    Timeout {
        /// Time spent when the review was abandoned.
        elapsed: std::time::Duration,
        /// The budget from `ReviewOptions::timeout`.
        limit: std::time::Duration,
    },
    /// A gator test Suite file is invalid or refers to files that cannot be read.
    #[error("{path}: {message}")]
    Suite {
        /// The suite file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn location_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// regorus' multi-line error (`--> file:line:col`, a source excerpt, then
/// `error: message`) as one line: `file:line:col: message`. Other text is
/// returned trimmed.
pub(crate) fn condense(message: &str) -> String {
    let location = message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .map(str::trim);
    let text = message
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::trim);
    match (location, text) {
        // A message ending in `:` introduces nested locations (a recursion
        // chain); its last line says what they amount to.
        (Some(loc), Some(msg)) if msg.ends_with(':') => {
            let last = message.lines().next_back().unwrap_or_default();
            let last = last.trim().trim_start_matches("depends on:").trim();
            format!("{loc}: {msg} {last}")
        }
        (Some(loc), Some(msg)) => format!("{loc}: {msg}"),
        _ => message.trim().to_owned(),
    }
}

/// The `file`, line and column a regorus error points at (its `--> file:line:col` line).
pub(crate) fn location(message: &str) -> Option<(&str, u32, u32)> {
    let at = message
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))?
        .trim();
    let mut parts = at.rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, col))
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, source }
        }
    }
}

/// OPA's layout: `1 error occurred: E` or `N errors occurred:` and one per line.
fn compile_errors(errors: &[crate::rego::strict::CompileError]) -> String {
    match errors {
        [one] => format!("1 error occurred: {one}"),
        many => {
            let mut out = format!("{} errors occurred:", many.len());
            for e in many {
                out.push('\n');
                out.push_str(&e.to_string());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGORUS: &str = "\n--> policy/a.rego:4:20\n  |\n4 | \tx := to_number(input.r)\n  |                    ^\nerror: could not parse string as number";

    #[test]
    fn condensed_errors_and_locations() {
        assert_eq!(
            condense(REGORUS),
            "policy/a.rego:4:20: could not parse string as number"
        );
        assert_eq!(condense("  plain text\n"), "plain text");
        let recursion = "\n--> a.rego:3:1\n  |\nerror: recursion detected when evaluating rule:\n--> a.rego:4:1\ndepends on: cyclic evaluation";
        assert_eq!(
            condense(recursion),
            "a.rego:3:1: recursion detected when evaluating rule: cyclic evaluation"
        );
        assert_eq!(location(REGORUS), Some(("policy/a.rego", 4, 20)));
        assert_eq!(
            location("\n--> C:\\p\\a.rego:7:1\nerror: x"),
            Some(("C:\\p\\a.rego", 7, 1))
        );
        assert_eq!(location("no location"), None);
    }
}
