//! Kubernetes checks for a target version: schema validation (as kubeconform
//! `-strict` does) and deprecated or removed API versions (as Pluto does).
//!
//! A [`KubeChecker`] is built for one [`KubeVersion`] from [`KubeOptions`]; it
//! loads that version's embedded schemas ([`catalog`]) and learns the custom
//! resources of CRDs ([`KubeChecker::add_crds`], [`KubeChecker::add_crd_dir`]).
//! [`KubeChecker::check`] then looks at every Kubernetes object (a document
//! with a string `apiVersion` and `kind`) of the given files, on all cores, and
//! returns conftest-shaped results in two namespaces, `schema` and
//! `deprecated-api`, so every output format shows and counts them like policy
//! results. Positions of offending fields come from a second look at the
//! file's text ([`crate::input::locate`]), only for objects with findings.
//!
//! ```
//! use policy_core::kube::{KubeChecker, KubeFile, KubeOptions, KubeVersion};
//! use policy_core::input::{Format, ParsedFile};
//!
//! let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: two\n";
//! let file = ParsedFile::from_text("web.yaml", text, Format::Yaml)?;
//! let checker = KubeChecker::new(KubeOptions::new(KubeVersion::new(1, 37)))?;
//! let results = checker.check(&[KubeFile::with_text(&file, text)]);
//! assert_eq!(results[0].namespace, "schema");
//! let messages: Vec<&str> = results[0].failures.iter().map(|f| f.msg.as_str()).collect();
//! assert_eq!(messages, [
//!     "web.yaml:5:1: Deployment/web: spec.selector: required field is missing",
//!     "web.yaml:5:1: Deployment/web: spec.template: required field is missing",
//!     "web.yaml:6:3: Deployment/web: spec.replicas: expected integer, got string \"two\"",
//! ]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod catalog;
mod crd;
pub mod deprecations;
mod schema;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use rayon::prelude::*;
use regorus::Value;
use serde_json::Value as Json;

use crate::conftest::{CheckResult, Location, Outcome};
use crate::input::{ParsedFile, PathStep, Position};
use deprecations::Status;
use schema::{SchemaSet, Validation, display_path};

/// The namespace of schema results.
pub const SCHEMA_NAMESPACE: &str = "schema";
/// The namespace of deprecated-API results.
pub const DEPRECATION_NAMESPACE: &str = "deprecated-api";

/// Errors of the Kubernetes checks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KubeError {
    /// A version string is not `MAJOR.MINOR` (optionally `v`-prefixed, with a patch).
    #[error("invalid Kubernetes version {0:?}: expected MAJOR.MINOR, e.g. 1.33")]
    BadVersion(String),
    /// Schema validation was asked for a version the embedded data lacks.
    #[error(
        "no embedded schemas for Kubernetes {version} (embedded: {available}); use --no-schema to check deprecated APIs only"
    )]
    NoSchemas {
        /// The requested version.
        version: KubeVersion,
        /// The embedded versions, comma-separated.
        available: String,
    },
    /// The embedded data is damaged (a build problem, not an input problem).
    #[error("embedded Kubernetes schemas: {0}")]
    Data(String),
    /// A file under `--crd-dir` could not be read or parsed.
    #[error("reading CRDs: {0}")]
    Crd(#[from] crate::Error),
}

/// A Kubernetes minor release, `1.33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl KubeVersion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> KubeVersion {
        KubeVersion { major, minor }
    }

    /// The newest version the embedded schemas cover.
    ///
    /// ```
    /// assert_eq!(policy_core::kube::KubeVersion::newest()?.to_string(), "1.37");
    /// # Ok::<(), policy_core::kube::KubeError>(())
    /// ```
    pub fn newest() -> Result<KubeVersion, KubeError> {
        embedded_versions()?
            .last()
            .copied()
            .ok_or_else(|| KubeError::Data("no versions".to_owned()))
    }
}

/// The versions the embedded schemas cover, oldest first.
pub fn embedded_versions() -> Result<Vec<KubeVersion>, KubeError> {
    catalog::versions()
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for KubeVersion {
    type Err = KubeError;

    /// `1.33`, `v1.33` or `1.33.2` (the patch is ignored).
    fn from_str(s: &str) -> Result<KubeVersion, KubeError> {
        let bad = || KubeError::BadVersion(s.to_owned());
        let trimmed = s.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        match parts.next() {
            Some(patch) if patch.parse::<u32>().is_err() => return Err(bad()),
            _ => {}
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(KubeVersion { major, minor })
    }
}

/// What to do with an object whose schema is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownSchema {
    /// Report each unknown apiVersion/kind once as skipped (kubeconform `-ignore-missing-schemas`).
    #[default]
    Skip,
    /// Report every such object as a failure.
    Fail,
}

/// Which checks to run, for which version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeOptions {
    /// The target Kubernetes version.
    pub version: KubeVersion,
    /// Validate objects against their schemas.
    pub schema: bool,
    /// Report deprecated and removed API versions.
    pub deprecations: bool,
    /// Objects without a schema.
    pub unknown_schema: UnknownSchema,
    /// Leave out objects of Gatekeeper's API groups (`*.gatekeeper.sh`): templates,
    /// constraints, mutators, Config. `regard gk` checks those itself (a template
    /// must compile, a constraint's parameters must fit its template's schema), so
    /// reporting them as kinds without a schema would only be noise there.
    pub skip_gatekeeper_kinds: bool,
}

impl KubeOptions {
    /// Both checks at `version`, unknown kinds skipped.
    pub fn new(version: KubeVersion) -> KubeOptions {
        KubeOptions {
            version,
            schema: true,
            deprecations: true,
            unknown_schema: UnknownSchema::Skip,
            skip_gatekeeper_kinds: false,
        }
    }
}

/// One input file's documents, as the checks see them.
#[derive(Debug, Clone)]
pub struct KubeFile<'a> {
    /// The name reported in results.
    pub name: &'a str,
    /// The documents (null documents are ignored).
    pub documents: Vec<Value>,
    /// Where to read the text from for positions: a path, or the text itself.
    text: TextSource<'a>,
}

#[derive(Debug, Clone)]
enum TextSource<'a> {
    Path(PathBuf),
    Text(&'a str),
    None,
}

impl<'a> KubeFile<'a> {
    /// A file read from disk (or standard input, `-`, which has no positions).
    pub fn from_parsed(file: &'a ParsedFile) -> KubeFile<'a> {
        KubeFile {
            name: &file.name,
            documents: file.documents(),
            text: if file.name == "-" {
                TextSource::None
            } else {
                TextSource::Path(PathBuf::from(&file.name))
            },
        }
    }

    /// A parsed file whose source text is at hand.
    pub fn with_text(file: &'a ParsedFile, text: &'a str) -> KubeFile<'a> {
        KubeFile {
            name: &file.name,
            documents: file.documents(),
            text: TextSource::Text(text),
        }
    }

    /// Documents read from `path` (named `name` in results), e.g. by the Gatekeeper reader.
    pub fn from_documents(
        name: &'a str,
        path: Option<&Path>,
        documents: Vec<Value>,
    ) -> KubeFile<'a> {
        KubeFile {
            name,
            documents,
            text: path.map_or(TextSource::None, |p| TextSource::Path(p.to_path_buf())),
        }
    }
}

/// Schema and deprecation checks for one target version.
#[derive(Debug)]
pub struct KubeChecker {
    options: KubeOptions,
    schemas: Option<SchemaSet>,
}

impl KubeChecker {
    /// Loads the embedded schemas of the target version when schema validation is on.
    pub fn new(options: KubeOptions) -> Result<KubeChecker, KubeError> {
        let schemas = if options.schema {
            Some(SchemaSet::new(catalog::Catalog::load(options.version)?))
        } else {
            None
        };
        Ok(KubeChecker { options, schemas })
    }

    /// The options this checker runs with.
    pub fn options(&self) -> &KubeOptions {
        &self.options
    }

    /// Where the schemas came from (package and licence), when validating.
    pub fn schema_source(&self) -> Option<&str> {
        self.schemas.as_ref().map(SchemaSet::source)
    }

    /// Learns the custom resources of the CRDs among `documents`; returns how many versions were added.
    pub fn add_crds(&mut self, documents: &[Value]) -> usize {
        let Some(schemas) = self.schemas.as_mut() else {
            return 0;
        };
        let mut added = 0;
        for doc in documents {
            if !matches!(doc, Value::Object(_)) {
                continue;
            }
            let Ok(json) = serde_json::to_value(doc) else {
                continue;
            };
            for r in crd::custom_resources(&json) {
                schemas.add_crd(&r.api_version, &r.kind, r.schema);
                added += 1;
            }
        }
        added
    }

    /// Learns the CRDs of every YAML and JSON file under `dir`.
    pub fn add_crd_dir(&mut self, dir: &Path) -> Result<usize, KubeError> {
        let sources = crate::input::collect(&[dir.display().to_string()], None)?;
        let mut added = 0;
        for source in sources {
            let crate::input::InputSource::File(path) = source else {
                continue;
            };
            let yaml_or_json = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
            if !yaml_or_json {
                continue;
            }
            let file = crate::input::read_file(&path, None)?;
            added += self.add_crds(&file.documents());
        }
        Ok(added)
    }

    /// Checks every Kubernetes object of `files`. Results come per file and
    /// namespace (`schema`, then `deprecated-api`), for files with at least
    /// one object, in the order of `files`.
    pub fn check(&self, files: &[KubeFile<'_>]) -> Vec<CheckResult> {
        let per_file: Vec<FileReport> = files.par_iter().map(|f| self.check_file(f)).collect();
        // An unknown kind is reported once, at its first object in input order.
        let mut seen_unknown = HashSet::new();
        let mut results = Vec::new();
        for report in per_file {
            if let Some(mut schema) = report.schema {
                for (key, outcome) in report.unknown {
                    if self.options.unknown_schema == UnknownSchema::Fail {
                        schema.failures.push(outcome);
                    } else if seen_unknown.insert(key) {
                        schema.skipped.push(outcome);
                    }
                }
                results.push(schema);
            }
            if let Some(deprecated) = report.deprecated {
                results.push(deprecated);
            }
        }
        results
    }

    fn check_file(&self, file: &KubeFile<'_>) -> FileReport {
        let mut report = FileReport::default();
        let locator = Locator::new(file);
        let mut index = 0usize;
        for doc in &file.documents {
            if matches!(doc, Value::Null | Value::Undefined) {
                continue;
            }
            let this = index;
            index += 1;
            match list_items(doc) {
                // `kind: List` (what `kubectl get -o yaml` writes) is no kind of its own:
                // kubectl and kubeconform check each item, and so do we.
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let prefix = [PathStep::Key("items".to_owned()), PathStep::Index(i)];
                        self.check_object(&mut report, &locator, file.name, this, &prefix, item);
                    }
                }
                None => self.check_object(&mut report, &locator, file.name, this, &[], doc),
            }
        }
        report
    }

    /// Checks one object: a document, or an item of a `kind: List` document
    /// (`prefix` is the item's path in the document).
    fn check_object(
        &self,
        report: &mut FileReport,
        locator: &Locator<'_>,
        file: &str,
        this: usize,
        prefix: &[PathStep],
        doc: &Value,
    ) {
        let target = self.options.version;
        let (Some(api_version), Some(kind)) =
            (string_field(doc, "apiVersion"), string_field(doc, "kind"))
        else {
            return;
        };
        if self.options.skip_gatekeeper_kinds && is_gatekeeper_group(&api_version) {
            return;
        }
        let object = ObjectRef {
            file,
            doc: this,
            label: object_label(doc, &kind),
        };
        if let Some(schemas) = &self.schemas {
            let result = report
                .schema
                .get_or_insert_with(|| CheckResult::new(file, SCHEMA_NAMESPACE));
            let json = serde_json::to_value(doc).unwrap_or(Json::Null);
            match schemas.validate(&api_version, &kind, &json) {
                Validation::Valid => result.successes += 1,
                Validation::Invalid(mut errors) => {
                    let mut located: Vec<(Option<Position>, schema::SchemaError)> = errors
                        .drain(..)
                        .map(|e| (locator.locate(this, &[prefix, &e.at[..]].concat()), e))
                        .collect();
                    located.sort_by_key(|(p, _)| p.map(|p| (p.line, p.column)));
                    for (position, error) in located {
                        let path = display_path(&error.path);
                        let text = if path.is_empty() {
                            error.message.clone()
                        } else {
                            format!("{path}: {}", error.message)
                        };
                        let mut outcome = object.outcome(position, &text, SCHEMA_NAMESPACE);
                        outcome
                            .metadata
                            .insert("path".to_owned(), Json::String(path));
                        result.failures.push(outcome);
                    }
                }
                Validation::Unknown => {
                    let position = locator.locate(this, &at(prefix, "kind"));
                    let why = match deprecations::lookup(&api_version, &kind, target) {
                        Some(Status::Removed(_)) => "the API is no longer served",
                        _ => "not a built-in kind, and no CRD among the inputs or under --crd-dir",
                    };
                    let text = format!(
                        "no schema for {api_version} {kind} in Kubernetes {target} ({why})"
                    );
                    report.unknown.push((
                        format!("{api_version} {kind}"),
                        object.outcome(position, &text, SCHEMA_NAMESPACE),
                    ));
                }
                Validation::BadSchema(e) => {
                    let text = format!("the schema of {api_version} {kind} does not compile: {e}");
                    result
                        .errors
                        .push(object.outcome(None, &text, SCHEMA_NAMESPACE));
                }
            }
        }
        if self.options.deprecations {
            let result = report
                .deprecated
                .get_or_insert_with(|| CheckResult::new(file, DEPRECATION_NAMESPACE));
            match deprecations::lookup(&api_version, &kind, target) {
                None => result.successes += 1,
                Some(status) => {
                    let position = locator.locate(this, &at(prefix, "apiVersion"));
                    let text = status.message(&kind, target);
                    let outcome = object.outcome(position, &text, DEPRECATION_NAMESPACE);
                    match status {
                        Status::Removed(_) => result.failures.push(outcome),
                        Status::Deprecated(_) => result.warnings.push(outcome),
                    }
                }
            }
        }
    }
}

/// The items of a `v1 List` document.
fn list_items(doc: &Value) -> Option<&[Value]> {
    if string_field(doc, "apiVersion").as_deref() != Some("v1")
        || string_field(doc, "kind").as_deref() != Some("List")
    {
        return None;
    }
    match doc {
        Value::Object(fields) => match fields.get(&Value::from("items")) {
            Some(Value::Array(items)) => Some(items.as_slice()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `api_version` is in one of Gatekeeper's API groups (`templates.gatekeeper.sh`,
/// `constraints.gatekeeper.sh`, `mutations.gatekeeper.sh`, ...).
fn is_gatekeeper_group(api_version: &str) -> bool {
    api_version
        .split_once('/')
        .is_some_and(|(group, _)| group == "gatekeeper.sh" || group.ends_with(".gatekeeper.sh"))
}

/// `prefix` then the key `key`.
fn at(prefix: &[PathStep], key: &str) -> Vec<PathStep> {
    let mut path = prefix.to_vec();
    path.push(PathStep::Key(key.to_owned()));
    path
}

#[derive(Default)]
struct FileReport {
    schema: Option<CheckResult>,
    deprecated: Option<CheckResult>,
    /// Objects of unknown kinds: (`"apiVersion kind"`, outcome).
    unknown: Vec<(String, Outcome)>,
}

/// The object a finding is about.
struct ObjectRef<'a> {
    file: &'a str,
    doc: usize,
    label: String,
}

impl ObjectRef<'_> {
    /// `file:line:col: Kind/name: text`, with the line as the outcome's location.
    fn outcome(&self, position: Option<Position>, text: &str, rule: &str) -> Outcome {
        let mut metadata = BTreeMap::new();
        metadata.insert("object".to_owned(), Json::String(self.label.clone()));
        metadata.insert("document".to_owned(), Json::from(self.doc));
        let (msg, loc) = match position {
            Some(p) => {
                metadata.insert("column".to_owned(), Json::from(p.column));
                (
                    format!(
                        "{}:{}:{}: {}: {text}",
                        self.file, p.line, p.column, self.label
                    ),
                    Some(Location {
                        file: self.file.to_owned(),
                        line: i64::try_from(p.line).unwrap_or(i64::MAX),
                    }),
                )
            }
            None => (format!("{}: {}: {text}", self.file, self.label), None),
        };
        Outcome {
            msg,
            loc,
            rule: rule.to_owned(),
            metadata,
        }
    }
}

fn string_field(doc: &Value, key: &str) -> Option<String> {
    match doc {
        Value::Object(fields) => match fields.get(&Value::from(key)) {
            Some(Value::String(s)) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// `Kind/name` (or `Kind/namespace/name`), as kubectl names objects.
fn object_label(doc: &Value, kind: &str) -> String {
    let metadata = match doc {
        Value::Object(fields) => fields.get(&Value::from("metadata")).cloned(),
        _ => None,
    };
    let name = metadata
        .as_ref()
        .and_then(|m| string_field(m, "name").or_else(|| string_field(m, "generateName")))
        .unwrap_or_else(|| "(unnamed)".to_owned());
    match metadata.as_ref().and_then(|m| string_field(m, "namespace")) {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// Finds positions in one file's text, read once and only when needed.
struct Locator<'a> {
    file: &'a KubeFile<'a>,
    text: OnceLock<Option<(String, usize, bool)>>,
}

impl<'a> Locator<'a> {
    fn new(file: &'a KubeFile<'a>) -> Locator<'a> {
        Locator {
            file,
            text: OnceLock::new(),
        }
    }

    fn locate(&self, doc: usize, path: &[PathStep]) -> Option<Position> {
        let loaded = self.text.get_or_init(|| {
            let text = match &self.file.text {
                TextSource::Path(p) => std::fs::read_to_string(p).ok()?,
                TextSource::Text(t) => (*t).to_owned(),
                TextSource::None => return None,
            };
            let (count, first_is_sequence) = crate::input::stream_shape(&text)?;
            Some((text, count, first_is_sequence))
        });
        let (text, count, first_is_sequence) = loaded.as_ref()?;
        if *count == 1 && *first_is_sequence {
            // One top-level list whose items are the documents.
            let mut full = vec![PathStep::Index(doc)];
            full.extend_from_slice(path);
            crate::input::locate(text, 0, &full)
        } else {
            crate::input::locate(text, doc, path)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let parse = |s: &str| {
            s.parse::<KubeVersion>()
                .map(|v| v.to_string())
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("1.33"), Ok("1.33".to_owned()));
        assert_eq!(parse("v1.29.4"), Ok("1.29".to_owned()));
        assert_eq!(
            parse("1"),
            Err("invalid Kubernetes version \"1\": expected MAJOR.MINOR, e.g. 1.33".to_owned())
        );
        assert!(parse("1.2.x").is_err());
        assert!(KubeVersion::new(1, 9) < KubeVersion::new(1, 10));
    }
}
