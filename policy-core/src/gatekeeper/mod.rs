//! Gatekeeper's constraint framework: ConstraintTemplates, Constraints,
//! `spec.match`, `data.inventory`, expansion, and the gator test suites.
//!
//! Flow: [`PolicyBundle::from_documents`] compiles every template once into a
//! prepared regorus engine and validates each constraint against its
//! template. A review ([`PolicyBundle::review_object`] for a plain object as
//! gator and audit see it, [`PolicyBundle::review_request`] for an admission
//! request) converts the object into `input.review` once, matches every
//! constraint, and for each template with matched constraints clones the
//! prepared engine and evaluates `violation` with
//! `input = {review, parameters}` per constraint. Results are deduplicated
//! as a set of `{msg, details}` per constraint; a Rego error becomes one
//! violation per matched constraint carrying the error text, as in
//! Gatekeeper, so a broken template never passes silently. With
//! [`Evaluator::Rvm`] (the default) templates run as programs for regorus'
//! register VM, compiled on first use, with the interpreter as the fallback;
//! [`Evaluator::Interpreter`] runs every template on the interpreter.
//!
//! ```
//! use policy_core::gatekeeper::{PolicyBundle, ReviewOptions};
//! use policy_core::Value;
//! let template = Value::from_json_str(r#"{
//!   "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
//!   "metadata": {"name": "k8srequiredlabels"},
//!   "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"}}},
//!            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego":
//!              "package k8srequiredlabels\nviolation[{\"msg\": msg}] {\n  not input.review.object.metadata.labels[input.parameters.label]\n  msg := sprintf(\"missing label %v\", [input.parameters.label])\n}"}]}
//! }"#)?;
//! let constraint = Value::from_json_str(r#"{
//!   "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
//!   "metadata": {"name": "need-owner"},
//!   "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": {"label": "owner"}}
//! }"#)?;
//! let bundle = PolicyBundle::from_documents(vec![
//!     ("t.yaml".into(), template),
//!     ("c.yaml".into(), constraint),
//! ])?;
//! let pod = Value::from_json_str(r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}"#)?;
//! let outcome = bundle.review_object(&pod, &ReviewOptions::default())?;
//! assert_eq!(outcome.violations[0].msg, "missing label owner");
//! assert_eq!(outcome.violations[0].constraint_name, "need-owner");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod config;
mod constraint;
mod data_access;
mod documents;
mod expansion;
mod inventory;
mod matching;
pub(crate) mod object;
mod review;
mod schema;
pub mod suite;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use regorus::Value;

pub use crate::rvm::Evaluator;
pub use cache::TemplateCache;
pub use config::{
    Process, REQUIRES_SYNC_DATA, SyncConfig, SyncKind, SyncRequirement, SyncTestReport,
    exclusion_namespace, sync_requirements, sync_test,
};
pub use constraint::{CONSTRAINT_GROUP, Constraint, EnforcementAction, ScopedAction};
pub use documents::{DocumentCache, FileDocuments};
pub use expansion::{ApplyTo, ExpansionTemplate, Resultant, expand, expand_with};
pub use inventory::Inventory;
pub use matching::{
    KindSelector, LabelRequirement, LabelSelector, MatchCriteria, SourceType, Wildcard,
};
pub use template::{ConstraintTemplate, Engine, TARGET};

pub(crate) use matching::Matchable;
pub(crate) use object::labels as labels_of;
use review::Review;
use template::CompiledTemplate;

use crate::cel::validator::{Activation, Validator};
use crate::cel::{self, to_val};
use crate::vap::{self, ValidationAction, VapSet};

use crate::error::Error;

/// Enforcement point of the validating webhook.
pub const WEBHOOK_ENFORCEMENT_POINT: &str = "validation.gatekeeper.sh";
/// Enforcement point of `gk test` / `gk verify` (gator's).
pub const GATOR_ENFORCEMENT_POINT: &str = "gator.gatekeeper.sh";
/// Enforcement point of audit.
pub const AUDIT_ENFORCEMENT_POINT: &str = "audit.gatekeeper.sh";

/// Compiled ConstraintTemplates + Constraints (+ ExpansionTemplates). Clone is cheap (Arc inside).
#[derive(Clone, Debug)]
pub struct PolicyBundle {
    inner: Arc<BundleInner>,
}

#[derive(Debug)]
struct BundleInner {
    /// Sorted by kind.
    templates: Vec<CompiledTemplate>,
    /// Sorted by (kind, name); `.0` indexes `templates`.
    constraints: Vec<(usize, Constraint)>,
    expansions: Vec<ExpansionTemplate>,
    inventory: Inventory,
    ignored: Vec<IgnoredDocument>,
    sync: SyncConfig,
    /// ValidatingAdmissionPolicies and their bindings.
    vap: VapSet,
}

/// A document given to [`PolicyBundle::from_documents`] that is not a
/// template, constraint or ExpansionTemplate (an object to review, usually).
#[derive(Clone, Debug)]
pub struct IgnoredDocument {
    /// The file it came from.
    pub source: String,
    /// The document.
    pub value: Value,
}

/// How to run a review.
#[derive(Clone, Debug, Default)]
pub struct ReviewOptions {
    /// Enforcement point for scopedEnforcementActions: "validation.gatekeeper.sh" (webhook), "gator.gatekeeper.sh" (CLI), "audit.gatekeeper.sh".
    /// Empty means every enforcement point.
    pub enforcement_point: String,
    /// Objects available as data.inventory (Namespaces for namespaceSelector, referential policies).
    /// Templates that read the inventory are re-prepared for each review
    /// that passes objects here; for a fixed inventory use
    /// [`PolicyBundle::with_inventory`] once instead.
    pub inventory: Vec<Value>,
    /// Optional wall-clock budget for the whole review; exceeding it returns `Err(Error::Timeout{..})`.
    pub timeout: Option<Duration>,
    /// Which evaluator runs the templates (the RVM by default).
    pub evaluator: Evaluator,
    /// Run templates' Rego even when they have K8sNativeValidation (CEL)
    /// code, as Gatekeeper's `--enable-k8s-native-validation=false` does
    /// (CEL runs first by default). CEL-only templates then cannot run: each
    /// of their matched constraints reports that as a violation.
    pub disable_k8s_native_validation: bool,
    /// Applied to each expansion resultant before it is reviewed: Gatekeeper
    /// and gator mutate resultants (as `Generated`) there.
    pub resultant_hook: Option<ResultantHook>,
}

/// A function applied to each expansion resultant before review (see
/// [`ReviewOptions::resultant_hook`]); an error fails the review.
#[derive(Clone)]
pub struct ResultantHook(pub Arc<ResultantFn>);

/// The function inside a [`ResultantHook`].
pub type ResultantFn = dyn Fn(&mut Value) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for ResultantHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResultantHook")
    }
}

/// The engines that evaluate templates: the Rego evaluator, and whether
/// K8sNativeValidation (CEL) code runs before the Rego (Gatekeeper's
/// `--enable-k8s-native-validation`, on by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Engines {
    /// The Rego evaluator.
    pub evaluator: Evaluator,
    /// Whether CEL runs when a template has it.
    pub k8s_native_validation: bool,
}

impl Default for Engines {
    fn default() -> Engines {
        Engines {
            evaluator: Evaluator::default(),
            k8s_native_validation: true,
        }
    }
}

/// What a review found.
#[derive(Clone, Debug, Default)]
pub struct ReviewOutcome {
    /// Violations, ordered by constraint (kind, name), then message.
    pub violations: Vec<Violation>,
    /// One entry per constraint that matched the object and was evaluated, in evaluation order.
    pub evaluations: Vec<ConstraintEvaluation>,
    /// When a ValidatingAdmissionPolicy denies: the API server's answer (its
    /// first denied decision). The API server runs these policies before any
    /// webhook, so a webhook answers with this alone.
    pub vap_denial: Option<crate::vap::VapDenial>,
    /// The audit annotations the ValidatingAdmissionPolicies set, by the API
    /// server's keys (`<policy>/<key>`,
    /// [`crate::vap::VALIDATION_FAILURE_ANNOTATION`]).
    pub audit_annotations: BTreeMap<String, String>,
}

/// One constraint evaluated during a review.
#[derive(Clone, Debug)]
pub struct ConstraintEvaluation {
    /// Constraint kind.
    pub kind: String,
    /// Constraint name.
    pub name: String,
    /// Time spent evaluating it.
    pub duration: Duration,
    /// Violations it produced.
    pub violations: usize,
}

/// One violation of one constraint by one object.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// Constraint kind.
    pub constraint_kind: String,
    /// Constraint name.
    pub constraint_name: String,
    /// The message (`[Implied by <template>] ` prefixed for expanded resources).
    pub msg: String,
    /// `details` of the violation (`{}` when the template gave none, `null` for errors).
    pub details: Value,
    /// The action, resolved for `ReviewOptions::enforcement_point` (the strongest when several apply).
    pub enforcement_action: EnforcementAction,
    /// The violating object.
    pub object: Value,
    /// Template name.
    pub template: String,
    /// Every action that applies at the enforcement point (for `scoped` constraints it may be several).
    pub actions: Vec<EnforcementAction>,
    /// The constraint's `spec.enforcementAction` as written (`scoped` included).
    pub constraint_action: String,
    /// The constraint resource.
    pub constraint: Value,
}

/// The non-empty documents of a YAML or JSON file.
///
/// Kubernetes manifests are read by Go's YAML parser, which accepts a few
/// layouts the strict YAML 1.2 parser refuses (a quoted scalar continued at
/// its key's indentation, as in gatekeeper-library's httpsonly template);
/// when the strict parse fails, a libyaml-based parse is tried before the
/// error is reported.
pub(crate) fn read_documents(path: &Path) -> Result<Vec<Value>, Error> {
    let docs = match crate::input::read_file(path, None) {
        Ok(file) => file.documents(),
        Err(e @ Error::Parse { .. }) => {
            let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
            let text = std::fs::read_to_string(path).ok();
            match text
                .filter(|_| yaml)
                .and_then(|t| crate::input::yaml::lenient(&t))
            {
                Some(docs) => docs,
                None => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    Ok(docs
        .into_iter()
        .filter(|d| !matches!(d, Value::Null | Value::Undefined))
        .collect())
}

/// Every `.yaml`, `.yml` and `.json` file under `paths` (directories walked
/// in sorted order), each with its documents (empty ones dropped).
pub fn read_document_files(paths: &[String]) -> Result<Vec<(String, Vec<Value>)>, Error> {
    let sources = crate::input::collect(paths, None)?;
    // Standard input is read once, up front; files are parsed on all cores.
    let mut stdin_docs = None;
    if sources.contains(&crate::input::InputSource::Stdin) {
        let file = crate::input::read(
            &crate::input::InputSource::Stdin,
            None,
            &mut std::io::stdin(),
            None,
        )?;
        stdin_docs = Some(
            file.documents()
                .into_iter()
                .filter(|d| !matches!(d, Value::Null | Value::Undefined))
                .collect::<Vec<_>>(),
        );
    }
    sources
        .par_iter()
        .map(|source| match source {
            crate::input::InputSource::File(p) => Ok((p.display().to_string(), read_documents(p)?)),
            crate::input::InputSource::Stdin => {
                Ok(("-".to_owned(), stdin_docs.clone().unwrap_or_default()))
            }
        })
        .collect()
}

/// One ConstraintTemplate compiled on its own, so that a policy set kept up to date object by
/// object (the cluster policy source) compiles each template once, reports each failure on its
/// own, and assembles bundles from what compiled ([`PolicyBundle::from_prepared`]) without
/// compiling anything again. Clone is cheap.
#[derive(Clone, Debug)]
pub struct PreparedTemplate {
    compiled: CompiledTemplate,
}

impl PreparedTemplate {
    /// Reads and compiles a ConstraintTemplate resource with the checks
    /// [`PolicyBundle::from_documents`] applies. `source` names where it came from.
    ///
    /// ```
    /// use policy_core::gatekeeper::PreparedTemplate;
    /// use policy_core::Value;
    /// let doc = Value::from_json_str(r#"{
    ///   "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
    ///   "metadata": {"name": "k8sdemo"},
    ///   "spec": {"crd": {"spec": {"names": {"kind": "K8sDemo"}}},
    ///            "targets": [{"target": "admission.k8s.gatekeeper.sh",
    ///                         "rego": "package k8sdemo\nviolation[{\"msg\": \"no\"}] { true }"}]}
    /// }"#)?;
    /// let t = PreparedTemplate::compile("t.yaml", &doc)?;
    /// assert_eq!(t.template().kind, "K8sDemo");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compile(source: &str, doc: &Value) -> Result<PreparedTemplate, Error> {
        let t = ConstraintTemplate::from_value(source, doc)?;
        let (file, name) = (t.file.clone(), t.name.clone());
        let compiled = crate::guard::catch(|| t.compile(None)).unwrap_or_else(|panic| {
            Err(Error::Template {
                file,
                name,
                message: format!("invalid rego: {panic}"),
            })
        })?;
        Ok(PreparedTemplate { compiled })
    }

    /// The parsed template.
    pub fn template(&self) -> &ConstraintTemplate {
        &self.compiled.meta
    }

    /// Reads and validates a constraint of this template's kind (version, name, kind,
    /// `spec.match`, enforcement action, parameters against the schema).
    pub fn constraint(&self, source: &str, doc: &Value) -> Result<Constraint, Error> {
        Constraint::from_value(source, doc, &self.compiled)
    }
}

impl PolicyBundle {
    /// Builds a bundle from already-parsed Kubernetes-style documents (ConstraintTemplate, constraints of any
    /// `constraints.gatekeeper.sh` kind, ExpansionTemplate; other kinds are kept as [`IgnoredDocument`]s,
    /// see [`PolicyBundle::ignored`], not an error). `source` names the file each came from (for errors).
    ///
    /// A template or constraint given twice (same kind, same name) replaces the earlier one.
    pub fn from_documents(docs: Vec<(String, Value)>) -> Result<PolicyBundle, Error> {
        PolicyBundle::build(docs, false, None).map(|(bundle, _)| bundle)
    }

    /// [`PolicyBundle::from_documents`] for a server that loads its policies again and
    /// again: a template whose document and file are the same as in the last load through
    /// `cache` is taken from it, compiled, instead of being compiled again; `cache` then holds
    /// this load's templates. The bundle is the same either way.
    pub fn from_documents_cached(
        docs: Vec<(String, Value)>,
        cache: &TemplateCache,
    ) -> Result<PolicyBundle, Error> {
        PolicyBundle::build(docs, false, Some(cache)).map(|(bundle, _)| bundle)
    }

    /// [`PolicyBundle::from_documents`] for a bundle that may be used together with others (a
    /// bundle published with `regard gk push`: gator and the webhook read several images at
    /// once): a constraint whose kind no template among `docs` defines is returned apart,
    /// unchecked, instead of being an error. Everything else is checked as `from_documents`
    /// checks it.
    ///
    /// ```
    /// use policy_core::gatekeeper::PolicyBundle;
    /// use policy_core::Value;
    /// let constraint = Value::from_json_str(r#"{
    ///   "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sElsewhere",
    ///   "metadata": {"name": "from-another-bundle"}
    /// }"#)?;
    /// let (bundle, foreign) = PolicyBundle::from_partial_documents(vec![("c.yaml".into(), constraint)])?;
    /// assert_eq!((bundle.constraint_count(), foreign.len()), (0, 1));
    /// assert_eq!(foreign[0].source, "c.yaml");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_partial_documents(
        docs: Vec<(String, Value)>,
    ) -> Result<(PolicyBundle, Vec<IgnoredDocument>), Error> {
        PolicyBundle::build(docs, true, None)
    }

    /// `from_documents`; with `partial`, constraints of kinds no template defines are returned
    /// apart rather than refused.
    fn build(
        docs: Vec<(String, Value)>,
        partial: bool,
        cache: Option<&TemplateCache>,
    ) -> Result<(PolicyBundle, Vec<IgnoredDocument>), Error> {
        let mut foreign = Vec::new();
        // Each template with its (file, document), the key of the cache.
        let mut template_docs: Vec<(ConstraintTemplate, (String, Value))> = Vec::new();
        let mut constraint_docs = Vec::new();
        let mut expansions: Vec<ExpansionTemplate> = Vec::new();
        let mut ignored = Vec::new();
        let mut vap = VapSet::default();
        for (source, doc) in docs {
            if template::is_template(&doc) {
                let t = ConstraintTemplate::from_value(&source, &doc)?;
                template_docs.retain(|(x, _)| x.kind != t.kind);
                template_docs.push((t, (source, doc)));
            } else if constraint::is_constraint(&doc) {
                constraint_docs.push((source, doc));
            } else if vap::is_vap_document(&doc) {
                vap.add(&source, &doc)?;
            } else if expansion::is_expansion_template(&doc) {
                let e = ExpansionTemplate::from_value(&source, &doc)?;
                expansions.retain(|x| x.name != e.name);
                expansions.push(e);
            } else {
                ignored.push(IgnoredDocument { source, value: doc });
            }
        }
        let sync = SyncConfig::from_documents(&ignored)?;
        template_docs.sort_by(|a, b| a.0.kind.cmp(&b.0.kind));
        let compiled: Vec<(CompiledTemplate, (String, Value))> = template_docs
            .into_par_iter()
            .map(|(t, key)| {
                if let Some(hit) = cache.and_then(|c| c.get(&key.0, &key.1)) {
                    return Ok((hit, key));
                }
                let (file, name) = (t.file.clone(), t.name.clone());
                crate::guard::catch(|| t.compile(None))
                    .unwrap_or_else(|panic| {
                        Err(Error::Template {
                            file,
                            name,
                            message: format!("invalid rego: {panic}"),
                        })
                    })
                    .map(|c| (c, key))
            })
            .collect::<Result<_, _>>()?;
        if let Some(cache) = cache {
            cache.replace(
                compiled
                    .iter()
                    .map(|(t, key)| (key.clone(), t.clone()))
                    .collect(),
            );
        }
        let templates: Vec<CompiledTemplate> = compiled.into_iter().map(|(t, _)| t).collect();
        let mut constraints: Vec<(usize, Constraint)> = Vec::new();
        for (source, doc) in constraint_docs {
            let kind = object::str_at(&doc, &["kind"]).unwrap_or("");
            let found = templates
                .binary_search_by(|t| t.meta.kind.as_str().cmp(kind))
                .ok()
                .and_then(|ti| Some((ti, templates.get(ti)?)));
            let Some((ti, template)) = found else {
                // A constraint of a kind no template defines but a ValidatingAdmissionPolicy
                // takes as params (what `gk vap` generates): the API server reads it as a
                // param object, and so do we.
                let api = object::str_at(&doc, &["apiVersion"]).unwrap_or("");
                if vap.is_param_kind(api, kind) {
                    ignored.push(IgnoredDocument { source, value: doc });
                    continue;
                }
                if partial {
                    foreign.push(IgnoredDocument { source, value: doc });
                    continue;
                }
                return Err(Error::Constraint {
                    file: source,
                    kind: kind.to_owned(),
                    name: object::str_at(&doc, &["metadata", "name"])
                        .unwrap_or("")
                        .to_owned(),
                    message: format!(
                        "missing ConstraintTemplate: no template defines kind {kind:?}"
                    ),
                });
            };
            let c = Constraint::from_value(&source, &doc, template)?;
            constraints.retain(|(_, x)| !(x.kind == c.kind && x.name == c.name));
            constraints.push((ti, c));
        }
        constraints.sort_by(|a, b| (&a.1.kind, &a.1.name).cmp(&(&b.1.kind, &b.1.name)));
        expansions.sort_by(|a, b| a.name.cmp(&b.name));
        let vap = vap.with_params(ignored.iter().map(|d| &d.value));
        let bundle = PolicyBundle {
            inner: Arc::new(BundleInner {
                templates,
                constraints,
                expansions,
                inventory: Inventory::default(),
                ignored,
                sync,
                vap,
            }),
        };
        Ok((bundle, foreign))
    }

    /// Assembles a bundle from templates compiled with [`PreparedTemplate::compile`] and
    /// constraints validated with [`PreparedTemplate::constraint`]; `others` are the remaining
    /// documents (`Config`, `SyncSet`, ExpansionTemplates, …) as [`PolicyBundle::from_documents`]
    /// reads them. Nothing is compiled again: the cost is a few clones per object. A constraint
    /// whose kind no template defines is left out (its template failed or went away).
    pub fn from_prepared(
        templates: Vec<PreparedTemplate>,
        constraints: Vec<Constraint>,
        others: Vec<(String, Value)>,
    ) -> Result<PolicyBundle, Error> {
        let mut templates: Vec<CompiledTemplate> =
            templates.into_iter().map(|t| t.compiled).collect();
        templates.sort_by(|a, b| a.meta.kind.cmp(&b.meta.kind));
        templates.dedup_by(|a, b| a.meta.kind == b.meta.kind);
        let mut indexed: Vec<(usize, Constraint)> = constraints
            .into_iter()
            .filter_map(|c| {
                let ti = templates
                    .binary_search_by(|t| t.meta.kind.as_str().cmp(c.kind.as_str()))
                    .ok()?;
                Some((ti, c))
            })
            .collect();
        indexed.sort_by(|a, b| (&a.1.kind, &a.1.name).cmp(&(&b.1.kind, &b.1.name)));
        indexed.dedup_by(|a, b| a.1.kind == b.1.kind && a.1.name == b.1.name);
        let mut expansions: Vec<ExpansionTemplate> = Vec::new();
        let mut ignored = Vec::new();
        let mut vap = VapSet::default();
        for (source, doc) in others {
            if vap::is_vap_document(&doc) {
                vap.add(&source, &doc)?;
            } else if expansion::is_expansion_template(&doc) {
                let e = ExpansionTemplate::from_value(&source, &doc)?;
                expansions.retain(|x| x.name != e.name);
                expansions.push(e);
            } else {
                ignored.push(IgnoredDocument { source, value: doc });
            }
        }
        let sync = SyncConfig::from_documents(&ignored)?;
        expansions.sort_by(|a, b| a.name.cmp(&b.name));
        let vap = vap.with_params(ignored.iter().map(|d| &d.value));
        Ok(PolicyBundle {
            inner: Arc::new(BundleInner {
                templates,
                constraints: indexed,
                expansions,
                inventory: Inventory::default(),
                ignored,
                sync,
                vap,
            }),
        })
    }

    /// Walks a directory (sorted) for .yaml/.yml/.json files and calls from_documents.
    ///
    /// Kubernetes' atomic-writer directories (`..data`, `..2026_…`) in a
    /// mounted ConfigMap are skipped: they hold copies of the visible files.
    pub fn load_dir(dir: &Path) -> Result<PolicyBundle, Error> {
        PolicyBundle::from_documents(PolicyBundle::dir_documents(dir)?)
    }

    /// The files [`PolicyBundle::load_dir`] reads from `dir`: its YAML and
    /// JSON files, without a ConfigMap volume's `..data` copies, in walk order.
    /// At least one, or an error.
    pub(crate) fn dir_files(dir: &Path) -> Result<Vec<String>, Error> {
        let paths: Vec<String> = crate::input::walk_files(dir)?
            .into_iter()
            .filter(|p| {
                let hidden_copy = p.strip_prefix(dir).ok().is_some_and(|rel| {
                    rel.components()
                        .any(|c| c.as_os_str().to_string_lossy().starts_with(".."))
                });
                let yaml_or_json = matches!(
                    crate::input::Format::detect(p),
                    Some(crate::input::Format::Yaml | crate::input::Format::Json)
                );
                !hidden_copy && yaml_or_json
            })
            .map(|p| p.display().to_string())
            .collect();
        if paths.is_empty() {
            return Err(Error::NoFiles {
                paths: dir.display().to_string(),
            });
        }
        Ok(paths)
    }

    /// The documents [`PolicyBundle::load_dir`] reads from `dir`, each with
    /// the file it came from.
    pub fn dir_documents(dir: &Path) -> Result<Vec<(String, Value)>, Error> {
        let files = read_document_files(&Self::dir_files(dir)?)?;
        let docs = files
            .into_iter()
            .flat_map(|(name, docs)| docs.into_iter().map(move |d| (name.clone(), d)))
            .collect();
        Ok(docs)
    }

    /// The same policies with `objects` as `data.inventory` (and as the
    /// Namespaces `namespaceSelector` consults). Templates that read the
    /// inventory are prepared again once, here, not per review.
    pub fn with_inventory(&self, objects: &[Value]) -> Result<PolicyBundle, Error> {
        let inventory = Inventory::new(objects);
        let templates = self
            .inner
            .templates
            .par_iter()
            .map(|t| t.with_inventory(inventory.data()))
            .collect::<Result<_, _>>()?;
        Ok(PolicyBundle {
            inner: Arc::new(BundleInner {
                templates,
                constraints: self.inner.constraints.clone(),
                expansions: self.inner.expansions.clone(),
                inventory,
                ignored: self.inner.ignored.clone(),
                sync: self.inner.sync.clone(),
                vap: self
                    .inner
                    .vap
                    .with_params(self.inner.ignored.iter().map(|d| &d.value).chain(objects)),
            }),
        })
    }

    /// Number of compiled templates.
    pub fn template_count(&self) -> usize {
        self.inner.templates.len()
    }

    /// Number of constraints.
    pub fn constraint_count(&self) -> usize {
        self.inner.constraints.len()
    }

    /// The names of the ValidatingAdmissionPolicyBindings, sorted (their
    /// results carry the kind [`vap::BINDING_KIND`]).
    pub fn admission_policy_bindings(&self) -> Vec<&str> {
        self.inner.vap.binding_names()
    }

    /// The templates, sorted by kind.
    pub fn templates(&self) -> impl Iterator<Item = &ConstraintTemplate> {
        self.inner.templates.iter().map(|t| t.meta.as_ref())
    }

    /// Templates that run on the interpreter even with [`Evaluator::Rvm`],
    /// with the reason (the first construct the RVM cannot run), sorted by
    /// kind. Compiles every other template's RVM program, so calling this
    /// after loading moves that cost out of the first review.
    pub fn interpreted_templates(&self) -> impl Iterator<Item = (&ConstraintTemplate, &str)> {
        self.inner.templates.iter().filter_map(|t| {
            let rego = t.rego.as_ref()?;
            rego.program
                .get(&rego.rule)
                .err()
                .map(|why| (t.meta.as_ref(), why))
        })
    }

    /// The constraints, sorted by (kind, name).
    pub fn constraints(&self) -> impl Iterator<Item = &Constraint> {
        self.inner.constraints.iter().map(|(_, c)| c)
    }

    /// The ExpansionTemplates, sorted by name.
    pub fn expansion_templates(&self) -> &[ExpansionTemplate] {
        &self.inner.expansions
    }

    /// What the policy set's `Config` and `SyncSet` documents say: kinds to sync into
    /// `data.inventory`, namespaces each process skips.
    pub fn sync_config(&self) -> &SyncConfig {
        &self.inner.sync
    }

    /// Documents that were neither templates, constraints nor ExpansionTemplates.
    pub fn ignored(&self) -> &[IgnoredDocument] {
        &self.inner.ignored
    }

    /// Evaluate one admission request. `request` is the AdmissionReview's `request` object exactly as received
    /// (JSON converted to regorus::Value once by the caller). Applies DELETE → oldObject, expansion, match
    /// (incl. namespaceSelector via `request.namespaceObject` if present or the inventory), parameters.
    ///
    /// `input.review.namespaceObject` is the request's `namespaceObject`, or
    /// the request namespace's Namespace from the inventory (none at the gator
    /// enforcement point, as gator leaves it null).
    pub fn review_request(
        &self,
        request: &Value,
        options: &ReviewOptions,
    ) -> Result<ReviewOutcome, Error> {
        let start = Instant::now();
        let review = Review::of_request(request, SourceType::Original)?;
        let operation = object::str_at(&review.value, &["operation"])
            .unwrap_or("")
            .to_owned();
        self.run(&review, options, start, Some(&operation), true)
    }

    /// Evaluate one plain object as gator does (operation "", empty userInfo).
    pub fn review_object(
        &self,
        object: &Value,
        options: &ReviewOptions,
    ) -> Result<ReviewOutcome, Error> {
        let start = Instant::now();
        let review = Review::of_object(object, SourceType::Original);
        self.run(&review, options, start, None, false)
    }

    /// Reviews one object as Gatekeeper's audit does: like [`PolicyBundle::review_object`]
    /// (operation `""`, no userInfo), with `namespace` — the object's Namespace, when known — for
    /// `namespaceSelector` and as `input.review.namespaceObject`. Use the audit enforcement
    /// point ([`AUDIT_ENFORCEMENT_POINT`]) in `options` for scoped enforcement actions.
    pub fn review_object_in(
        &self,
        object: &Value,
        namespace: Option<&Value>,
        options: &ReviewOptions,
    ) -> Result<ReviewOutcome, Error> {
        let start = Instant::now();
        let mut review = Review::of_object(object, SourceType::Original);
        review.namespace_object = namespace.cloned();
        self.run(&review, options, start, None, false)
    }

    /// Reviews many plain objects on all cores; results are in input order.
    pub fn review_objects(
        &self,
        objects: &[Value],
        options: &ReviewOptions,
    ) -> Vec<Result<ReviewOutcome, Error>> {
        objects
            .par_iter()
            .map(|o| self.review_object(o, options))
            .collect()
    }

    fn run(
        &self,
        review: &Review,
        options: &ReviewOptions,
        start: Instant,
        operation: Option<&str>,
        admission: bool,
    ) -> Result<ReviewOutcome, Error> {
        // A per-review inventory replaces the bundle's.
        let owned;
        let (templates, inventory): (&[CompiledTemplate], &Inventory) =
            if options.inventory.is_empty() {
                (&self.inner.templates, &self.inner.inventory)
            } else {
                let inv = Inventory::new(&options.inventory);
                let ts = self
                    .inner
                    .templates
                    .iter()
                    .map(|t| t.with_inventory(inv.data()))
                    .collect::<Result<Vec<_>, _>>()?;
                owned = (ts, inv);
                (&owned.0, &owned.1)
            };
        let match_ns = review
            .namespace_object
            .as_ref()
            .or_else(|| inventory.namespace(&review.namespace));
        let review_ns = if admission && options.enforcement_point != GATOR_ENFORCEMENT_POINT {
            match_ns
        } else {
            review.namespace_object.as_ref()
        };
        let input_review = review.input_review(review_ns);
        let mut outcome = self.evaluate(
            templates,
            review,
            &input_review,
            match_ns,
            options,
            start,
            operation,
        )?;

        if !self.inner.vap.is_empty() {
            let vap = self.vap_violations(review, match_ns, options.evaluator);
            outcome.violations.extend(vap.0);
            for (name, duration, violations) in &vap.1.evaluated {
                outcome.evaluations.push(ConstraintEvaluation {
                    kind: vap::BINDING_KIND.to_owned(),
                    name: name.clone(),
                    duration: *duration,
                    violations: *violations,
                });
            }
            outcome.vap_denial = vap.1.denial;
            outcome.audit_annotations = vap.1.annotations;
        }
        if !self.inner.expansions.is_empty() {
            let resultants = expand_with(
                &self.inner.expansions,
                &review.object,
                match_ns,
                &mut |r: &mut Value| match &options.resultant_hook {
                    Some(hook) => (hook.0)(r),
                    None => Ok(()),
                },
            )?;
            for r in resultants {
                let mut child = Review::of_object(&r.object, SourceType::Generated);
                if let Some(op) = operation
                    && let Ok(o) = child.value.as_object_mut()
                {
                    o.insert(Value::from("operation"), Value::from(op));
                }
                let child_input = child.input_review(review_ns);
                let mut sub = self.evaluate(
                    templates,
                    &child,
                    &child_input,
                    match_ns,
                    options,
                    start,
                    operation,
                )?;
                for v in &mut sub.violations {
                    v.msg = format!("[Implied by {}] {}", r.template, v.msg);
                    v.object = review.object.clone();
                    if let Some(a) = r
                        .enforcement_action
                        .as_deref()
                        .and_then(EnforcementAction::parse)
                    {
                        v.enforcement_action = a;
                        v.actions = vec![a];
                        v.constraint_action = a.as_str().to_owned();
                    }
                }
                outcome.violations.append(&mut sub.violations);
                outcome.evaluations.append(&mut sub.evaluations);
            }
        }
        Ok(outcome)
    }

    /// The ValidatingAdmissionPolicy findings for a review, as violations
    /// of their bindings, with the rest of the policies' outcome.
    fn vap_violations(
        &self,
        review: &Review,
        match_ns: Option<&Value>,
        evaluator: Evaluator,
    ) -> (Vec<Violation>, crate::vap::VapOutcome) {
        let operation = match operation_of(review) {
            "" => "CREATE",
            op => op,
        };
        let object = if operation == "DELETE" {
            &Value::Null
        } else {
            &review.object
        };
        let at = |path: &[&str]| object::str_at(&review.value, path).unwrap_or("");
        let kind = at(&["kind", "kind"]);
        let resource = match at(&["resource", "resource"]) {
            "" => vap::resource_of_kind(kind),
            r => r.to_owned(),
        };
        let request = vap::Request {
            group: at(&["kind", "group"]),
            version: at(&["kind", "version"]),
            kind,
            resource,
            sub_resource: at(&["subResource"]),
            name: at(&["name"]),
            namespace: &review.namespace,
            operation,
            object,
            old_object: &review.old_object,
            namespace_object: match_ns,
        };
        let mut request_value = cel_request(review);
        if let Ok(o) = request_value.as_object_mut() {
            o.insert(Value::from("operation"), Value::from(operation));
        }
        let mut outcome = self.inner.vap.evaluate(&request, &request_value, evaluator);
        let violations = std::mem::take(&mut outcome.findings)
            .into_iter()
            .map(|f| {
                let actions: Vec<EnforcementAction> = f
                    .actions
                    .iter()
                    .map(|a| match a {
                        ValidationAction::Deny => EnforcementAction::Deny,
                        ValidationAction::Warn => EnforcementAction::Warn,
                        ValidationAction::Audit => EnforcementAction::Dryrun,
                    })
                    .collect();
                let first = actions.first().copied().unwrap_or(EnforcementAction::Deny);
                Violation {
                    constraint_kind: vap::BINDING_KIND.to_owned(),
                    constraint_name: f.binding,
                    msg: f.message,
                    details: Value::Undefined,
                    enforcement_action: first,
                    object: review.object.clone(),
                    template: f.policy,
                    actions,
                    constraint_action: first.as_str().to_owned(),
                    constraint: f.resource,
                }
            })
            .collect();
        (violations, outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        templates: &[CompiledTemplate],
        review: &Review,
        input_review: &Value,
        match_ns: Option<&Value>,
        options: &ReviewOptions,
        start: Instant,
        operation: Option<&str>,
    ) -> Result<ReviewOutcome, Error> {
        let mut outcome = ReviewOutcome::default();
        let check_time = || match options.timeout {
            Some(limit) if start.elapsed() > limit => Err(Error::Timeout {
                elapsed: start.elapsed(),
                limit,
            }),
            _ => Ok(()),
        };
        let constraints = &self.inner.constraints;
        // The CEL view of the request, converted on first use.
        let mut activation: Option<Activation> = None;
        for group in constraints.chunk_by(|a, b| a.0 == b.0) {
            let Some(ti) = group.first().map(|(ti, _)| *ti) else {
                continue;
            };
            let Some(template) = templates.get(ti) else {
                continue;
            };
            if options.enforcement_point == WEBHOOK_ENFORCEMENT_POINT
                && let Some(op) = operation
                && !template.meta.operations.is_empty()
                && !template.meta.operations.iter().any(|o| o == op || o == "*")
            {
                continue;
            }
            let mut matched: Vec<(&Constraint, Vec<EnforcementAction>)> = Vec::new();
            for (_, c) in group {
                let actions = c.actions_at(&options.enforcement_point);
                if actions.is_empty() {
                    continue;
                }
                match c.match_criteria.matches_any(
                    &review.object,
                    &review.old_object,
                    match_ns,
                    &review.namespace,
                    review.source,
                ) {
                    Ok(true) => matched.push((c, actions)),
                    Ok(false) => {}
                    Err(m) => outcome.violations.push(violation(
                        template,
                        c,
                        &actions,
                        format!("unable to match constraints: {m}"),
                        Value::Null,
                        &review.object,
                    )),
                }
            }
            if matched.is_empty() {
                continue;
            }
            let per_constraint = match template.engine(!options.disable_k8s_native_validation) {
                Some(Engine::Rego) => match &template.rego {
                    Some(rego) => evaluate_rego(
                        rego,
                        &matched,
                        review,
                        input_review,
                        options,
                        start,
                        &check_time,
                    )?,
                    None => Vec::new(),
                },
                Some(Engine::Cel) => match &template.cel {
                    Some(validator) => {
                        let activation = activation
                            .get_or_insert_with(|| cel_activation(review, input_review));
                        evaluate_cel(
                            validator,
                            &matched,
                            activation,
                            operation_of(review),
                            options.evaluator,
                        )
                    }
                    None => Vec::new(),
                },
                None => matched
                    .iter()
                    .map(|_| {
                        let msg = "No language driver is installed that handles this constraint template (its only code is K8sNativeValidation and CEL is disabled)".to_owned();
                        (vec![(msg, Value::Null)], Duration::ZERO)
                    })
                    .collect(),
            };
            for ((c, actions), (set, duration)) in matched.iter().zip(per_constraint) {
                outcome.evaluations.push(ConstraintEvaluation {
                    kind: c.kind.clone(),
                    name: c.name.clone(),
                    duration,
                    violations: set.len(),
                });
                for (msg, details) in set {
                    outcome.violations.push(violation(
                        template,
                        c,
                        actions,
                        msg,
                        details,
                        &review.object,
                    ));
                }
            }
        }
        // Gatekeeper orders a review's results by constraint kind, then name.
        outcome.violations.sort_by(|a, b| {
            (&a.constraint_kind, &a.constraint_name).cmp(&(&b.constraint_kind, &b.constraint_name))
        });
        Ok(outcome)
    }
}

/// A template's results per matched constraint: `(msg, details)` pairs and
/// the time the constraint took. Both engines produce this shape, so
/// everything after evaluation is engine-neutral.
type PerConstraint = Vec<(Vec<(String, Value)>, Duration)>;

/// Evaluates a template's Rego for its matched constraints.
fn evaluate_rego(
    rego: &template::RegoCode,
    matched: &[(&Constraint, Vec<EnforcementAction>)],
    review: &Review,
    input_review: &Value,
    options: &ReviewOptions,
    start: Instant,
    check_time: &dyn Fn() -> Result<(), Error>,
) -> Result<PerConstraint, Error> {
    let mut engine: Option<regorus::Engine> = None;
    let mut per_constraint: Vec<(BTreeSet<(String, Value)>, Duration)> =
        Vec::with_capacity(matched.len());
    let mut failure: Option<String> = None;
    for (c, _) in matched {
        check_time()?;
        let timer = options.timeout.map(|limit| {
            let remaining = limit.saturating_sub(start.elapsed());
            regorus::utils::limits::ExecutionTimerConfig {
                limit: remaining.max(Duration::from_millis(1)),
                // Reading the clock every step cost ~6% of the
                // webhook's CPU; every 128 steps keeps the
                // deadline within microseconds of its mark.
                check_interval: NonZeroU32::new(128).unwrap_or(NonZeroU32::MIN),
            }
        });
        let t0 = Instant::now();
        let input = object::object(vec![
            ("review", input_review.clone()),
            ("parameters", c.parameters.clone()),
        ]);
        let compiled =
            match options.evaluator {
                Evaluator::Rvm => rego.program.get(&rego.rule).ok().and_then(|p| {
                    crate::rvm::execute(p, None, &rego.data, input.clone(), timer).ok()
                }),
                Evaluator::Interpreter => None,
            };
        // The interpreter runs what the RVM cannot, and re-runs what
        // failed on it, so errors read the same on either engine.
        let result = match compiled {
            Some(v) => Ok(v),
            None => {
                check_time()?;
                let clone = engine.get_or_insert_with(|| rego.engine.clone());
                if let Some(t) = timer {
                    clone.set_execution_timer_config(t);
                }
                clone.set_input(input);
                match crate::guard::catch(|| clone.eval_rule(rego.rule.clone())) {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(panic) => {
                        // The clone may be half-updated: the next
                        // constraint gets a fresh one.
                        engine = None;
                        Err(panic.to_string())
                    }
                }
            }
        };
        let elapsed = t0.elapsed();
        match result {
            Ok(v) => match collect_results(&v) {
                Ok(set) => per_constraint.push((set, elapsed)),
                Err(m) => {
                    return Err(Error::Review {
                        object: review.describe(),
                        message: format!("{} {}: {m}", c.kind, c.name),
                    });
                }
            },
            Err(e) => {
                check_time()?;
                // The engine is gone only after a panic, whose text is regard's.
                failure = Some(match engine.as_mut() {
                    Some(clone) => crate::rego::messages::render(&e, clone.get_modules()),
                    None => crate::error::condense(&e),
                });
                per_constraint.push((BTreeSet::new(), elapsed));
                break;
            }
        }
    }
    if let Some(msg) = failure {
        // Gatekeeper evaluates a template's constraints in one query:
        // an error fails them all, each reporting the error.
        return Ok(matched
            .iter()
            .enumerate()
            .map(|(k, _)| {
                let duration = per_constraint.get(k).map(|p| p.1).unwrap_or_default();
                (vec![(msg.clone(), Value::Null)], duration)
            })
            .collect());
    }
    Ok(per_constraint
        .into_iter()
        .map(|(set, d)| (set.into_iter().collect(), d))
        .collect())
}

/// The operation of a review (`""` for a plain object).
fn operation_of(review: &Review) -> &str {
    object::str_at(&review.value, &["operation"]).unwrap_or("")
}

/// The request as Gatekeeper's CEL driver hands it to the validator: on
/// DELETE `object` is null and the deleted object is `oldObject` (the Rego
/// input keeps `object = oldObject`; each engine gets its own input, so
/// neither sees the other's).
fn cel_activation(review: &Review, input_review: &Value) -> Activation {
    let object = if operation_of(review) == "DELETE" {
        &Value::Null
    } else {
        &review.object
    };
    let namespace = match &input_review["namespaceObject"] {
        v @ Value::Object(_) => Some(v),
        _ => None,
    };
    Activation::new(object, &review.old_object, &cel_request(review), namespace)
}

/// The `request` CEL expressions see: the admission request's fields
/// without the objects.
fn cel_request(review: &Review) -> Value {
    let mut request = Vec::new();
    for key in [
        "kind",
        "resource",
        "subResource",
        "requestKind",
        "requestResource",
        "requestSubResource",
        "name",
        "namespace",
        "operation",
        "userInfo",
        "dryRun",
        "options",
    ] {
        let v = &review.value[key];
        if !matches!(v, Value::Undefined) {
            request.push((key, v.clone()));
        }
    }
    object::object(request)
}

/// Evaluates a template's K8sNativeValidation code for its matched
/// constraints: every deny decision is one violation carrying its message,
/// with no details, as Gatekeeper reports them.
fn evaluate_cel(
    validator: &Validator,
    matched: &[(&Constraint, Vec<EnforcementAction>)],
    activation: &Activation,
    operation: &str,
    evaluator: Evaluator,
) -> PerConstraint {
    matched
        .iter()
        .map(|(c, _)| {
            let t0 = Instant::now();
            // `variables.params` is the constraint's `spec.parameters` (null
            // when absent); `params`, the whole constraint, is converted
            // only when an expression reads it.
            let parameters = to_val(&c.resource["spec"]["parameters"]);
            let whole = if validator.reads_params() {
                to_val(&c.resource)
            } else {
                to_val(&Value::Null)
            };
            let builtins: [(&str, &dyn cel::Val); 2] = [
                ("anyObject", activation.any_object(operation)),
                ("params", parameters.as_ref()),
            ];
            let results = validator
                .validate(activation, whole.as_ref(), &builtins, evaluator)
                .into_iter()
                .map(|d| (d.message, Value::Undefined))
                .collect();
            (results, t0.elapsed())
        })
        .collect()
}

fn violation(
    template: &CompiledTemplate,
    c: &Constraint,
    actions: &[EnforcementAction],
    msg: String,
    details: Value,
    object: &Value,
) -> Violation {
    Violation {
        constraint_kind: c.kind.clone(),
        constraint_name: c.name.clone(),
        msg,
        details,
        enforcement_action: actions.first().copied().unwrap_or(EnforcementAction::Deny),
        object: object.clone(),
        template: template.meta.name.clone(),
        actions: actions.to_vec(),
        constraint_action: c.enforcement_action.clone(),
        constraint: c.resource.clone(),
    }
}

/// `{msg, details}` of each result of `violation`, as Gatekeeper's hook
/// reads them: a result without `msg` is dropped, `details` defaults to `{}`.
fn collect_results(v: &Value) -> Result<BTreeSet<(String, Value)>, String> {
    let items: Vec<&Value> = match v {
        Value::Set(s) => s.iter().collect(),
        Value::Array(a) => a.iter().collect(),
        Value::Undefined => Vec::new(),
        other => {
            return Err(format!(
                "violation must be a set of objects, got {}",
                type_name(other)
            ));
        }
    };
    let mut out = BTreeSet::new();
    for r in items {
        let msg = match &r["msg"] {
            Value::Undefined => continue,
            Value::String(s) => s.to_string(),
            other => {
                return Err(format!(
                    "extracting message binding: msg is a {}, not a string",
                    type_name(other)
                ));
            }
        };
        let details = match &r["details"] {
            Value::Undefined => Value::new_object(),
            d => d.clone(),
        };
        out.insert((msg, details));
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    const TEMPLATE: &str = r#"{
      "apiVersion": "templates.gatekeeper.sh/v1beta1", "kind": "ConstraintTemplate",
      "metadata": {"name": "k8sdemo"},
      "spec": {"crd": {"spec": {"names": {"kind": "K8sDemo"},
               "validation": {"openAPIV3Schema": {"type": "object", "properties": {"word": {"type": "string"}}}}}},
               "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego":
                 "package k8sdemo\nviolation[{\"msg\": msg, \"details\": {\"op\": input.review.operation}}] {\n  input.review.object.metadata.labels[_] == input.parameters.word\n  msg := sprintf(\"%v has %v\", [input.review.object.metadata.name, input.parameters.word])\n}\nviolation[{\"msg\": msg, \"extra\": 2}] {\n  input.review.object.metadata.labels[_] == input.parameters.word\n  msg := sprintf(\"%v has %v\", [input.review.object.metadata.name, input.parameters.word])\n}\nviolation[{\"msg\": msg}] {\n  ns := data.inventory.cluster.v1.Namespace[input.review.object.metadata.namespace]\n  ns.metadata.labels.frozen\n  msg := \"namespace is frozen\"\n}"}]}}"#;

    fn bundle(constraint_spec: &str) -> PolicyBundle {
        let c = format!(
            r#"{{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo", "metadata": {{"name": "demo"}}, "spec": {constraint_spec}}}"#
        );
        PolicyBundle::from_documents(vec![("t".into(), v(TEMPLATE)), ("c".into(), v(&c))]).unwrap()
    }

    const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "dev", "labels": {"a": "bad"}}}"#;

    #[test]
    fn partial_bundles_set_foreign_constraints_apart_and_check_the_rest() {
        let own = r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo", "metadata": {"name": "own"}, "spec": {"parameters": {"word": "x"}}}"#;
        let foreign = r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sOther", "metadata": {"name": "theirs"}}"#;
        let docs = vec![
            ("t.yaml".into(), v(TEMPLATE)),
            ("own.yaml".into(), v(own)),
            ("foreign.yaml".into(), v(foreign)),
        ];
        let err = PolicyBundle::from_documents(docs.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "foreign.yaml: K8sOther \"theirs\": missing ConstraintTemplate: no template defines kind \"K8sOther\""
        );
        let (bundle, apart) = PolicyBundle::from_partial_documents(docs).unwrap();
        assert_eq!((bundle.template_count(), bundle.constraint_count()), (1, 1));
        let apart: Vec<&str> = apart.iter().map(|d| d.source.as_str()).collect();
        assert_eq!(apart, ["foreign.yaml"]);
        // A constraint of a template in the bundle is still checked against its schema.
        let bad = r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo", "metadata": {"name": "bad"}, "spec": {"parameters": {"word": 3}}}"#;
        let err = PolicyBundle::from_partial_documents(vec![
            ("t.yaml".into(), v(TEMPLATE)),
            ("bad.yaml".into(), v(bad)),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad.yaml: K8sDemo \"bad\": schema validation failed: spec.parameters/word: 3 is not of type \"string\""
        );
    }

    #[test]
    fn a_cached_load_reuses_unchanged_templates_and_compiles_the_rest() {
        let constraint = |word: &str| {
            v(&format!(
                r#"{{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo", "metadata": {{"name": "demo"}}, "spec": {{"parameters": {{"word": "{word}"}}}}}}"#
            ))
        };
        let msgs = |b: &PolicyBundle| -> Vec<String> {
            let out = b.review_object(&v(POD), &ReviewOptions::default()).unwrap();
            out.violations.into_iter().map(|x| x.msg).collect()
        };
        let cache = TemplateCache::new();
        let load = |file: &str, template: Value, word: &str| {
            PolicyBundle::from_documents_cached(
                vec![(file.into(), template), ("c".into(), constraint(word))],
                &cache,
            )
        };
        let first = load("t", v(TEMPLATE), "good").unwrap();
        assert_eq!((cache.len(), msgs(&first).len()), (1, 0));
        // Another constraint, the same template from the same file: reused, and it
        // reviews as a template compiled afresh does.
        let second = load("t", v(TEMPLATE), "bad").unwrap();
        let (a, b) = (&first.inner.templates[0], &second.inner.templates[0]);
        assert!(Arc::ptr_eq(&a.meta, &b.meta));
        let fresh = PolicyBundle::from_documents(vec![
            ("t".into(), v(TEMPLATE)),
            ("c".into(), constraint("bad")),
        ])
        .unwrap();
        assert_eq!(msgs(&second), msgs(&fresh));
        assert_eq!(msgs(&second), ["p has bad", "p has bad"]);
        // The same document from another file is compiled again: errors name the file.
        let moved = load("t2", v(TEMPLATE), "bad").unwrap();
        assert!(!Arc::ptr_eq(&b.meta, &moved.inner.templates[0].meta));
        assert_eq!(moved.inner.templates[0].meta.file, "t2");
        // An edited template is compiled again; a load that fails leaves the cache as it was.
        let edited = TEMPLATE.replace("namespace is frozen", "frozen namespace");
        let third = load("t2", v(&edited), "bad").unwrap();
        assert!(!Arc::ptr_eq(
            &moved.inner.templates[0].meta,
            &third.inner.templates[0].meta
        ));
        let broken = TEMPLATE.replace("violation[", "violation(");
        assert!(load("t2", v(&broken), "bad").is_err());
        let fourth = load("t2", v(&edited), "bad").unwrap();
        assert!(Arc::ptr_eq(
            &third.inner.templates[0].meta,
            &fourth.inner.templates[0].meta
        ));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn bundle_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<PolicyBundle>();
        check::<Violation>();
    }

    #[test]
    fn results_are_a_set_of_msg_and_details() {
        let b = bundle(r#"{"parameters": {"word": "bad"}}"#);
        let out = b.review_object(&v(POD), &ReviewOptions::default()).unwrap();
        let got: Vec<(&str, String)> = out
            .violations
            .iter()
            .map(|x| (x.msg.as_str(), serde_json::to_string(&x.details).unwrap()))
            .collect();
        // {msg, extra} and {msg} collapse: details default to {}.
        assert_eq!(
            got,
            vec![
                ("p has bad", "{}".to_owned()),
                ("p has bad", r#"{"op":""}"#.to_owned())
            ]
        );
        assert_eq!(out.evaluations.len(), 1);
        assert_eq!(out.evaluations[0].violations, 2);
    }

    #[test]
    fn request_namespace_is_matched_when_the_object_has_none() {
        let b = bundle(
            r#"{"parameters": {"word": "bad"}, "match": {"excludedNamespaces": ["kube-*"]}}"#,
        );
        let opts = ReviewOptions {
            enforcement_point: WEBHOOK_ENFORCEMENT_POINT.into(),
            ..ReviewOptions::default()
        };
        let request = |ns: &str| {
            v(&format!(
                r#"{{"uid": "1", "operation": "CREATE", "kind": {{"group": "", "version": "v1", "kind": "Pod"}}, "namespace": "{ns}", "name": "p", "object": {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p", "labels": {{"a": "bad"}}}}}}}}"#
            ))
        };
        let msgs = |ns: &str| -> Vec<String> {
            b.review_request(&request(ns), &opts)
                .unwrap()
                .violations
                .into_iter()
                .map(|x| x.msg)
                .collect()
        };
        assert_eq!(msgs("kube-system"), Vec::<String>::new());
        // Two rules of the template report it (with different details).
        assert_eq!(
            msgs("dev"),
            vec!["p has bad".to_owned(), "p has bad".to_owned()]
        );
    }

    #[test]
    fn delete_request_reviews_old_object_and_timeouts() {
        let b = bundle(r#"{"parameters": {"word": "bad"}}"#);
        let req = v(&format!(
            r#"{{"uid": "1", "operation": "DELETE", "kind": {{"group": "", "version": "v1", "kind": "Pod"}}, "namespace": "dev", "name": "p", "object": null, "oldObject": {POD}}}"#
        ));
        let opts = ReviewOptions {
            enforcement_point: WEBHOOK_ENFORCEMENT_POINT.into(),
            ..ReviewOptions::default()
        };
        let out = b.review_request(&req, &opts).unwrap();
        assert_eq!(out.violations.len(), 2);
        assert_eq!(out.violations[1].details, v(r#"{"op": "DELETE"}"#));
        let timed = ReviewOptions {
            timeout: Some(Duration::ZERO),
            ..opts
        };
        assert!(matches!(
            b.review_request(&req, &timed),
            Err(Error::Timeout { .. })
        ));
    }

    #[test]
    fn inventory_per_review_and_per_bundle() {
        let b = bundle(r#"{"parameters": {"word": "none"}}"#);
        let ns = v(
            r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev", "labels": {"frozen": "yes"}}}"#,
        );
        let none = b.review_object(&v(POD), &ReviewOptions::default()).unwrap();
        assert!(none.violations.is_empty());
        let opts = ReviewOptions {
            inventory: vec![ns.clone()],
            ..ReviewOptions::default()
        };
        let per_review = b.review_object(&v(POD), &opts).unwrap();
        assert_eq!(per_review.violations[0].msg, "namespace is frozen");
        let baked = b.with_inventory(&[ns]).unwrap();
        let out = baked
            .review_object(&v(POD), &ReviewOptions::default())
            .unwrap();
        assert_eq!(out.violations[0].msg, "namespace is frozen");
    }

    #[test]
    fn scoped_actions_follow_the_enforcement_point() {
        let b = bundle(
            r#"{"enforcementAction": "scoped", "parameters": {"word": "bad"},
                "scopedEnforcementActions": [{"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
                                             {"action": "deny", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]}]}"#,
        );
        let at = |ep: &str| {
            b.review_object(
                &v(POD),
                &ReviewOptions {
                    enforcement_point: ep.into(),
                    ..ReviewOptions::default()
                },
            )
            .unwrap()
        };
        let webhook = at(WEBHOOK_ENFORCEMENT_POINT);
        assert_eq!(
            webhook.violations[0].enforcement_action,
            EnforcementAction::Deny
        );
        assert_eq!(
            webhook.violations[0].actions,
            vec![EnforcementAction::Deny, EnforcementAction::Warn]
        );
        // Not scoped to audit: not evaluated at all.
        let audit = at(AUDIT_ENFORCEMENT_POINT);
        assert!(audit.violations.is_empty() && audit.evaluations.is_empty());
    }

    #[test]
    fn parameters_are_validated() {
        let c = v(
            r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDemo", "metadata": {"name": "demo"}, "spec": {"parameters": {"word": 3}}}"#,
        );
        let err =
            PolicyBundle::from_documents(vec![("t".into(), v(TEMPLATE)), ("c.yaml".into(), c)])
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.yaml: K8sDemo \"demo\": schema validation failed: spec.parameters/word: 3 is not of type \"string\""
        );
    }

    #[test]
    fn a_panicking_builtin_is_a_violation_on_either_evaluator() {
        // regorus 0.14.1 panics in strings.count with an empty substring.
        let template = r#"{
          "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
          "metadata": {"name": "k8spanic"},
          "spec": {"crd": {"spec": {"names": {"kind": "K8sPanic"}}},
                   "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego":
                     "package k8spanic\nviolation[{\"msg\": \"counted\"}] {\n  strings.count(input.review.object.metadata.name, \"\") > 0\n}"}]}}"#;
        let constraint = r#"{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sPanic", "metadata": {"name": "panics"}, "spec": {}}"#;
        let b = PolicyBundle::from_documents(vec![
            ("t".into(), v(template)),
            ("c".into(), v(constraint)),
        ])
        .unwrap();
        for evaluator in [Evaluator::Interpreter, Evaluator::Rvm] {
            let options = ReviewOptions {
                evaluator,
                ..ReviewOptions::default()
            };
            let out = b.review_object(&v(POD), &options).unwrap();
            let msgs: Vec<&str> = out.violations.iter().map(|x| x.msg.as_str()).collect();
            assert_eq!(
                msgs,
                [
                    "evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629"
                ],
                "{evaluator:?}"
            );
            // The next review runs on a sound engine.
            let again = b.review_object(&v(POD), &options).unwrap();
            assert_eq!(again.violations.len(), 1);
        }
    }

    /// A template with K8sNativeValidation code, and Rego beside it when `rego` is given.
    fn cel_template(kind: &str, cel: &str, rego: Option<&str>) -> Value {
        let mut code = vec![serde_json::json!({
            "engine": "K8sNativeValidation",
            "source": serde_json::from_str::<serde_json::Value>(cel).unwrap(),
        })];
        if let Some(r) = rego {
            code.push(serde_json::json!({"engine": "Rego", "source": {"rego": r}}));
        }
        let doc = serde_json::json!({
            "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": kind.to_lowercase()},
            "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                     "targets": [{"target": TARGET, "code": code}]}
        });
        v(&doc.to_string())
    }

    fn cel_constraint(kind: &str, params: &str) -> Value {
        v(&format!(
            r#"{{"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "{kind}", "metadata": {{"name": "c-{}"}}, "spec": {{"parameters": {params}}}}}"#,
            kind.to_lowercase()
        ))
    }

    const CEL_LABELS: &str = r#"{
        "variables": [{"name": "missing", "expression": "variables.params.labels.filter(l, !has(variables.anyObject.metadata.labels) || !(l in variables.anyObject.metadata.labels))"}],
        "validations": [{"expression": "size(variables.missing) == 0",
                         "messageExpression": "'missing labels: ' + variables.missing.join(', ')",
                         "message": "labels are missing"}]}"#;
    const REGO_LABELS: &str = "package k8scellabels\nviolation[{\"msg\": \"rego: labels are missing\"}] {\n  not input.review.object.metadata.labels.owner\n}";

    #[test]
    fn cel_runs_before_rego_and_cel_only_templates_work() {
        let b = PolicyBundle::from_documents(vec![
            (
                "t".into(),
                cel_template("K8sCelLabels", CEL_LABELS, Some(REGO_LABELS)),
            ),
            (
                "c".into(),
                cel_constraint("K8sCelLabels", r#"{"labels": ["owner", "team"]}"#),
            ),
            (
                "t2".into(),
                cel_template(
                    "K8sCelOnly",
                    r#"{"validations": [{"expression": "object.metadata.name != 'p'"}]}"#,
                    None,
                ),
            ),
            ("c2".into(), cel_constraint("K8sCelOnly", "{}")),
        ])
        .unwrap();
        let msgs = |options: &ReviewOptions| -> Vec<(String, String, Value)> {
            b.review_object(&v(POD), options)
                .unwrap()
                .violations
                .into_iter()
                .map(|x| (x.constraint_name, x.msg, x.details))
                .collect()
        };
        assert_eq!(
            msgs(&ReviewOptions::default()),
            [
                (
                    "c-k8scellabels".to_owned(),
                    "missing labels: owner, team".to_owned(),
                    Value::Undefined
                ),
                (
                    "c-k8scelonly".to_owned(),
                    "failed expression: object.metadata.name != 'p'".to_owned(),
                    Value::Undefined
                ),
            ]
        );
        let rego = ReviewOptions {
            disable_k8s_native_validation: true,
            ..ReviewOptions::default()
        };
        assert_eq!(
            msgs(&rego),
            [
                ("c-k8scellabels".to_owned(), "rego: labels are missing".to_owned(), v("{}")),
                ("c-k8scelonly".to_owned(), "No language driver is installed that handles this constraint template (its only code is K8sNativeValidation and CEL is disabled)".to_owned(), Value::Null),
            ]
        );
    }

    /// Each engine gets its own view of a DELETE: CEL sees `object: null` and
    /// the deleted object as `oldObject`, Rego keeps `object = oldObject`.
    /// The answer is the same every time (Gatekeeper 3.21.1 shares one review
    /// between its drivers and sometimes lets such DELETEs through).
    #[test]
    fn delete_requests_give_each_engine_its_own_input_every_time() {
        let cel = r#"{"validations": [{"expression": "variables.anyObject.metadata.name != 'p'",
            "messageExpression": "'cel: object is ' + (object == null ? 'null' : 'set') + ', oldObject is ' + oldObject.metadata.name"}]}"#;
        let rego_only = v(r#"{
          "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
          "metadata": {"name": "k8sregodelete"},
          "spec": {"crd": {"spec": {"names": {"kind": "K8sRegoDelete"}}},
                   "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego":
                     "package k8sregodelete\nviolation[{\"msg\": msg}] {\n  input.review.object.metadata.name == \"p\"\n  msg := sprintf(\"rego: object is %v\", [input.review.object.metadata.name])\n}"}]}}"#);
        let b = PolicyBundle::from_documents(vec![
            ("t".into(), cel_template("K8sCelDelete", cel, Some("package k8sceldelete\nviolation[{\"msg\": \"rego of the CEL template\"}] { true }"))),
            ("c".into(), cel_constraint("K8sCelDelete", "{}")),
            ("t2".into(), rego_only),
            ("c2".into(), cel_constraint("K8sRegoDelete", "{}")),
        ])
        .unwrap();
        let req = v(&format!(
            r#"{{"uid": "1", "operation": "DELETE", "kind": {{"group": "", "version": "v1", "kind": "Pod"}}, "namespace": "dev", "name": "p", "object": null, "oldObject": {POD}}}"#
        ));
        let options = ReviewOptions {
            enforcement_point: WEBHOOK_ENFORCEMENT_POINT.into(),
            ..ReviewOptions::default()
        };
        let requests: Vec<Value> = (0..200).map(|_| req.clone()).collect();
        let answers: Vec<Vec<String>> = requests
            .par_iter()
            .map(|r| {
                b.review_request(r, &options)
                    .unwrap()
                    .violations
                    .into_iter()
                    .map(|x| x.msg)
                    .collect()
            })
            .collect();
        for a in answers {
            assert_eq!(
                a,
                ["cel: object is null, oldObject is p", "rego: object is p"]
            );
        }
    }

    #[test]
    fn cel_compile_errors_refuse_the_template() {
        let bad = r#"{"validations": [{"expression": "true"}, {"expression": "true", "messageExpression": "'x' + params.y"}]}"#;
        let err = PolicyBundle::from_documents(vec![(
            "t.yaml".into(),
            cel_template("K8sBadCel", bad, None),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: ConstraintTemplate \"k8sbadcel\": invalid K8sNativeValidation code: validations[1].messageExpression: ERROR: <input>:1:7: undeclared reference to 'params' (in container '')\n | 'x' + params.y\n | ......^"
        );
        let typed = r#"{"validations": [{"expression": "request.operation == 'CREATE' && size(request.userInfo.username) > '3'"}]}"#;
        let err = PolicyBundle::from_documents(vec![(
            "t.yaml".into(),
            cel_template("K8sBadType", typed, None),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: ConstraintTemplate \"k8sbadtype\": invalid K8sNativeValidation code: validations[0].expression: ERROR: <input>:1:66: found no matching overload for '_>_' applied to '(int, string)'\n | request.operation == 'CREATE' && size(request.userInfo.username) > '3'\n | .................................................................^"
        );
        let policy = r#"{"failurePolicy": "Sometimes", "validations": []}"#;
        let err = PolicyBundle::from_documents(vec![(
            "t.yaml".into(),
            cel_template("K8sBadPolicy", policy, None),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml: ConstraintTemplate \"k8sbadpolicy\": invalid failure policy: unrecognized failure policy: Sometimes"
        );
    }
}
