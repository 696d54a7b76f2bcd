//! Check results in conftest's shape.

use std::collections::BTreeMap;

use regorus::Value;

/// Results for one (input file, namespace) pair.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckResult {
    /// The input file name (`-` for stdin, `Combined` for `--combine`).
    pub filename: String,
    /// The namespace (package) evaluated; empty for `verify` results.
    pub namespace: String,
    /// Passed tests, with conftest's padding applied.
    pub successes: usize,
    /// Warning results.
    pub warnings: Vec<Outcome>,
    /// Failure results.
    pub failures: Vec<Outcome>,
    /// Exception results.
    pub exceptions: Vec<Outcome>,
    /// Skipped tests (`verify` only).
    pub skipped: Vec<Outcome>,
    /// Evaluations that failed or panicked: for `test`, one per rule and
    /// document (the rule's other documents and the other rules still
    /// report); for `verify`, one per erroring test or uncompilable file.
    /// The message names the rule or test and carries the error.
    pub errors: Vec<Outcome>,
    /// `print()` output gathered while evaluating, as `file:line: text`.
    pub prints: Vec<String>,
    /// With tracing on: what each rule evaluated to and which policy lines ran.
    pub trace: Vec<String>,
    /// ValidatingAdmissionPolicy audit annotations of the file's objects
    /// (bundles only, in a result of the namespace [`AUDIT_NAMESPACE`]).
    pub audit_annotations: Vec<AuditAnnotation>,
}

/// The namespace of the result carrying a file's audit annotations.
pub const AUDIT_NAMESPACE: &str = "audit.k8s.io";

/// One audit annotation a ValidatingAdmissionPolicy set for one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditAnnotation {
    /// The object: `apiVersion/Kind [namespace/]name`.
    pub object: String,
    /// The API server's key (`<policy>/<key>`,
    /// `validation.policy.admission.k8s.io/validation_failure`).
    pub key: String,
    /// The value.
    pub value: String,
}

impl CheckResult {
    pub(crate) fn new(filename: &str, namespace: &str) -> CheckResult {
        CheckResult {
            filename: filename.to_owned(),
            namespace: namespace.to_owned(),
            ..CheckResult::default()
        }
    }

    /// Number of tests this result counts: successes plus every reported result.
    pub fn tests(&self) -> usize {
        self.successes
            + self.warnings.len()
            + self.failures.len()
            + self.exceptions.len()
            + self.skipped.len()
            + self.errors.len()
    }
}

/// A source location supplied by a policy through `_loc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// File the location refers to.
    pub file: String,
    /// 1-based line.
    pub line: i64,
}

/// One reported result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The message.
    pub msg: String,
    /// Location from `_loc`, if the policy gave one.
    pub loc: Option<Location>,
    /// The rule that produced it (`deny_root`); for an exception, the rule it excepted.
    pub rule: String,
    /// Metadata: every key of an object result except `msg` and `_loc`, plus
    /// `query` (`data.main.deny_root`). Empty for exceptions.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

impl Outcome {
    /// Interprets one element of a rule's value. Strings and objects with a
    /// string `msg` are results; other element types are ignored (`Ok(None)`),
    /// as conftest does; an object without a string `msg` is an error.
    pub(crate) fn from_value(
        value: &Value,
        rule: &str,
        query: &str,
    ) -> std::result::Result<Option<Outcome>, String> {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "query".to_owned(),
            serde_json::Value::String(query.to_owned()),
        );
        match value {
            Value::String(s) => Ok(Some(Outcome {
                msg: s.to_string(),
                loc: None,
                rule: rule.to_owned(),
                metadata,
            })),
            Value::Object(fields) => {
                let msg = match fields.get(&Value::from("msg")) {
                    Some(Value::String(s)) => s.to_string(),
                    _ => return Err("\"msg\" field must be present and a string".to_owned()),
                };
                let mut loc = None;
                for (key, v) in fields.iter_sorted() {
                    let Ok(key) = key.as_string() else { continue };
                    match key.as_ref() {
                        "msg" => {}
                        "_loc" => loc = location(v),
                        other => {
                            let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
                            metadata.insert(other.to_owned(), json);
                        }
                    }
                }
                Ok(Some(Outcome {
                    msg,
                    loc,
                    rule: rule.to_owned(),
                    metadata,
                }))
            }
            _ => Ok(None),
        }
    }

    /// A result with only a message and the rule it concerns (no metadata).
    pub(crate) fn message_only(msg: &str, rule: &str) -> Outcome {
        Outcome {
            msg: msg.to_owned(),
            loc: None,
            rule: rule.to_owned(),
            metadata: BTreeMap::new(),
        }
    }

    /// An evaluation error of `rule` (its query `data.main.deny`): the
    /// message is `label: message`, the label naming the rule and, in a
    /// multi-document file, the document.
    pub(crate) fn error(label: &str, message: &str, rule: &str, query: &str) -> Outcome {
        let mut metadata = BTreeMap::new();
        metadata.insert(
            "query".to_owned(),
            serde_json::Value::String(query.to_owned()),
        );
        Outcome {
            msg: format!("{label}: {message}"),
            loc: None,
            rule: rule.to_owned(),
            metadata,
        }
    }

    /// The query that produced this result (`data.main.deny_root`), if any.
    pub fn query(&self) -> Option<&str> {
        self.metadata.get("query").and_then(|q| q.as_str())
    }
}

fn location(v: &Value) -> Option<Location> {
    let file = v[&Value::from("file")].as_string().ok()?.to_string();
    let line = v[&Value::from("line")].as_number().ok()?.as_i64()?;
    Some(Location { file, line })
}
