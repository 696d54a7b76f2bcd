//! Gatekeeper's `Config` (`config.gatekeeper.sh`) and `SyncSet` (`syncset.gatekeeper.sh`)
//! documents: which kinds are synced from the cluster into `data.inventory`, and which
//! namespaces each Gatekeeper process skips.
//!
//! ```yaml
//! apiVersion: config.gatekeeper.sh/v1alpha1
//! kind: Config
//! metadata: {name: config, namespace: gatekeeper-system}
//! spec:
//!   sync:
//!     syncOnly: [{group: "", version: v1, kind: Namespace}]
//!   match:
//!     - excludedNamespaces: ["kube-*"]
//!       processes: ["*"]            # audit, webhook, sync, mutation-webhook or *
//! ---
//! apiVersion: syncset.gatekeeper.sh/v1alpha1
//! kind: SyncSet
//! metadata: {name: ingress}
//! spec:
//!   gvks: [{group: networking.k8s.io, version: v1, kind: Ingress}]
//! ```
//!
//! In a cluster Gatekeeper reads the one `Config` named `config` in its own namespace; here
//! every `Config` and `SyncSet` among the policy documents counts, and the synced kinds are the
//! union of all of them.

use std::collections::{BTreeMap, BTreeSet};

use regorus::Value;
use serde::Deserialize;

use super::IgnoredDocument;
use super::matching::Wildcard;
use super::object;
use crate::Error;

/// One kind to sync: `group` is `""` for the core API.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct SyncKind {
    /// API group (`""`, `apps`, `networking.k8s.io`).
    #[serde(default)]
    pub group: String,
    /// API version (`v1`).
    #[serde(default)]
    pub version: String,
    /// Kind (`Ingress`).
    #[serde(default)]
    pub kind: String,
}

impl SyncKind {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl SyncKind {
    /// `group/version:Kind`, as gator prints a kind (`/v1:Namespace` for the core group).
    pub fn gator_string(&self) -> String {
        format!("{}/{}:{}", self.group, self.version, self.kind)
    }
}

impl std::fmt::Display for SyncKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version(), self.kind)
    }
}

/// The Gatekeeper processes a `Config` exclusion can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The audit controller.
    Audit,
    /// The validating admission webhook.
    Webhook,
    /// Syncing objects into `data.inventory`.
    Sync,
    /// The mutating admission webhook.
    MutationWebhook,
}

impl Process {
    fn name(self) -> &'static str {
        match self {
            Process::Audit => "audit",
            Process::Webhook => "webhook",
            Process::Sync => "sync",
            Process::MutationWebhook => "mutation-webhook",
        }
    }
}

const PROCESS_NAMES: [&str; 5] = ["audit", "webhook", "sync", "mutation-webhook", "*"];

/// One `spec.match` entry of a `Config`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Exclusion {
    namespaces: Vec<Wildcard>,
    /// Process names, `*` for all.
    processes: Vec<String>,
}

/// What the `Config` and `SyncSet` documents of a policy set say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncConfig {
    kinds: Vec<SyncKind>,
    exclusions: Vec<Exclusion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigSpec {
    #[serde(default)]
    sync: Option<SyncSpec>,
    #[serde(default, rename = "match")]
    matches: Option<Vec<MatchEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncSpec {
    #[serde(default)]
    sync_only: Option<Vec<SyncKind>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MatchEntry {
    #[serde(default)]
    excluded_namespaces: Option<Vec<String>>,
    #[serde(default)]
    processes: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct SyncSetSpec {
    #[serde(default)]
    gvks: Option<Vec<SyncKind>>,
}

fn is_kind(doc: &Value, group: &str, kind: &str) -> bool {
    let api_version = object::str_at(doc, &["apiVersion"]).unwrap_or("");
    api_version.split_once('/').map(|(g, _)| g) == Some(group)
        && object::str_at(doc, &["kind"]) == Some(kind)
}

impl SyncConfig {
    /// Reads every `Config` and `SyncSet` among `docs` (other documents are skipped).
    ///
    /// ```
    /// use policy_core::gatekeeper::{IgnoredDocument, Process, SyncConfig};
    /// use policy_core::Value;
    /// let doc = Value::from_json_str(r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
    ///   "metadata": {"name": "config"},
    ///   "spec": {"sync": {"syncOnly": [{"group": "", "version": "v1", "kind": "Namespace"}]},
    ///            "match": [{"excludedNamespaces": ["kube-*"], "processes": ["sync"]}]}}"#).unwrap();
    /// let config = SyncConfig::from_documents(&[IgnoredDocument { source: "sync.yaml".into(), value: doc }]).unwrap();
    /// assert_eq!(config.kinds()[0].to_string(), "v1 Namespace");
    /// assert!(config.is_excluded(Process::Sync, "kube-system"));
    /// assert!(!config.is_excluded(Process::Webhook, "kube-system"));
    /// ```
    pub fn from_documents(docs: &[IgnoredDocument]) -> Result<SyncConfig, Error> {
        let mut config = SyncConfig::default();
        for doc in docs {
            let value = &doc.value;
            let (is_config, is_syncset) = (
                is_kind(value, "config.gatekeeper.sh", "Config"),
                is_kind(value, "syncset.gatekeeper.sh", "SyncSet"),
            );
            if !is_config && !is_syncset {
                continue;
            }
            let err = |message: String| Error::SyncConfig {
                file: doc.source.clone(),
                kind: if is_config { "Config" } else { "SyncSet" }.to_owned(),
                name: object::str_at(value, &["metadata", "name"])
                    .unwrap_or("")
                    .to_owned(),
                message,
            };
            let spec = &value["spec"];
            let json = if object::is_absent(spec) {
                serde_json::Value::Object(serde_json::Map::new())
            } else {
                serde_json::to_value(spec).map_err(|e| err(format!("spec: {e}")))?
            };
            let kinds = if is_config {
                let spec: ConfigSpec =
                    serde_json::from_value(json).map_err(|e| err(format!("spec: {e}")))?;
                for (i, entry) in spec.matches.unwrap_or_default().into_iter().enumerate() {
                    let processes = entry.processes.unwrap_or_default();
                    if let Some(bad) = processes
                        .iter()
                        .find(|p| !PROCESS_NAMES.contains(&p.as_str()))
                    {
                        return Err(err(format!(
                            "spec.match[{i}].processes: unknown process {bad:?} (known: {})",
                            PROCESS_NAMES.join(", ")
                        )));
                    }
                    config.exclusions.push(Exclusion {
                        namespaces: entry
                            .excluded_namespaces
                            .unwrap_or_default()
                            .into_iter()
                            .map(Wildcard)
                            .collect(),
                        processes,
                    });
                }
                spec.sync.and_then(|s| s.sync_only).unwrap_or_default()
            } else {
                let spec: SyncSetSpec =
                    serde_json::from_value(json).map_err(|e| err(format!("spec: {e}")))?;
                spec.gvks.unwrap_or_default()
            };
            let field = if is_config {
                "spec.sync.syncOnly"
            } else {
                "spec.gvks"
            };
            for (i, k) in kinds.into_iter().enumerate() {
                if k.version.is_empty() || k.kind.is_empty() {
                    return Err(err(format!("{field}[{i}]: version and kind are required")));
                }
                config.kinds.push(k);
            }
        }
        config.kinds.sort();
        config.kinds.dedup();
        Ok(config)
    }

    /// The kinds to sync into `data.inventory`, sorted, without duplicates.
    pub fn kinds(&self) -> &[SyncKind] {
        &self.kinds
    }

    /// Whether `process` skips `namespace` (an object's namespace, or a Namespace's own name).
    pub fn is_excluded(&self, process: Process, namespace: &str) -> bool {
        self.exclusions.iter().any(|e| {
            e.processes.iter().any(|p| p == "*" || p == process.name())
                && e.namespaces.iter().any(|w| w.matches(namespace))
        })
    }
}

/// The namespace a `Config` exclusion is checked against for `object`: its namespace, or a
/// Namespace's own name (`""` for other cluster-scoped objects).
pub fn exclusion_namespace(object: &Value) -> String {
    let meta = object::ObjectMeta::of(object);
    if meta.is_namespace() {
        meta.name
    } else {
        meta.namespace
    }
}

/// The annotation a ConstraintTemplate declares the kinds it reads from `data.inventory` with.
pub const REQUIRES_SYNC_DATA: &str = "metadata.gatekeeper.sh/requires-sync-data";

/// One requirement of a template: any one of these kinds, synced, meets it.
pub type SyncRequirement = BTreeSet<SyncKind>;

/// One `{groups, versions, kinds}` clause of the annotation: every combination is a kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Clause {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
}

/// The requirements a ConstraintTemplate document declares in its
/// `metadata.gatekeeper.sh/requires-sync-data` annotation (none without it). The annotation is a
/// JSON list of requirements, each a list of clauses whose combinations are alternatives; as
/// Gatekeeper does, surrounding quotes and newlines are trimmed first (the library writes the
/// JSON inside a quoted YAML block).
///
/// ```
/// use policy_core::gatekeeper::sync_requirements;
/// use policy_core::Value;
/// let t = Value::from_json_str(r#"{"metadata": {"annotations": {"metadata.gatekeeper.sh/requires-sync-data":
///   "\"[[{\"groups\": [\"apps\"], \"versions\": [\"v1\"], \"kinds\": [\"Deployment\"]}]]\"\n"}}}"#).unwrap();
/// let reqs = sync_requirements(&t).unwrap();
/// assert_eq!(reqs[0].iter().next().unwrap().gator_string(), "apps/v1:Deployment");
/// ```
pub fn sync_requirements(template: &Value) -> Result<Vec<SyncRequirement>, String> {
    let Some(annotation) =
        object::str_at(template, &["metadata", "annotations", REQUIRES_SYNC_DATA])
    else {
        return Ok(Vec::new());
    };
    let trimmed = annotation.trim_matches(|c| c == '\n' || c == '"');
    let compact: Vec<Vec<Clause>> = serde_json::from_str(trimmed).map_err(|e| e.to_string())?;
    Ok(compact
        .into_iter()
        .map(|clauses| {
            let mut alternatives = SyncRequirement::new();
            for c in clauses {
                for group in &c.groups {
                    for version in &c.versions {
                        for kind in &c.kinds {
                            alternatives.insert(SyncKind {
                                group: group.clone(),
                                version: version.clone(),
                                kind: kind.clone(),
                            });
                        }
                    }
                }
            }
            alternatives
        })
        .collect())
}

/// What `regard gk sync test` found (gator's `sync test`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncTestReport {
    /// Per template name, the requirements no synced (and supported) kind meets.
    pub missing: BTreeMap<String, Vec<SyncRequirement>>,
    /// Per template name, why its requirements could not be read.
    pub template_errors: BTreeMap<String, String>,
    /// `metadata.name` of the inputs that are none of template, Config, SyncSet, GVKManifest.
    pub skipped: Vec<String>,
    /// No GVKManifest was given and `omit_manifest` said to assume every kind is served.
    pub manifest_omitted: bool,
}

/// Checks that the kinds the `Config` and `SyncSet`s among `docs` sync meet the
/// `requires-sync-data` requirements of the ConstraintTemplates among them, counting only kinds
/// a `GVKManifest` (`gvkmanifest.gatekeeper.sh`, the kinds the cluster serves) lists, unless
/// `omit_manifest` says to assume every kind is served. As gator: several Configs, several
/// manifests, or no manifest without `omit_manifest` are errors; when a template's
/// requirements cannot be read, only those errors are reported.
pub fn sync_test(docs: &[(String, Value)], omit_manifest: bool) -> Result<SyncTestReport, Error> {
    let mut report = SyncTestReport::default();
    let mut templates: Vec<(String, Vec<SyncRequirement>)> = Vec::new();
    let mut synced: BTreeSet<SyncKind> = BTreeSet::new();
    let mut configs = 0;
    let mut manifest: Option<BTreeSet<SyncKind>> = None;
    for (source, doc) in docs {
        let name = object::str_at(doc, &["metadata", "name"])
            .unwrap_or("")
            .to_owned();
        if is_kind(doc, "config.gatekeeper.sh", "Config")
            || is_kind(doc, "syncset.gatekeeper.sh", "SyncSet")
        {
            if is_kind(doc, "config.gatekeeper.sh", "Config") {
                configs += 1;
                if configs > 1 {
                    return Err(Error::SyncConfig {
                        file: source.clone(),
                        kind: "Config".to_owned(),
                        name,
                        message: "multiple configs found; Config is a singleton resource"
                            .to_owned(),
                    });
                }
            }
            let one = SyncConfig::from_documents(&[IgnoredDocument {
                source: source.clone(),
                value: doc.clone(),
            }])?;
            synced.extend(one.kinds);
        } else if super::template::is_template(doc) {
            match sync_requirements(doc) {
                Ok(reqs) => templates.push((name, reqs)),
                Err(e) => {
                    report.template_errors.insert(name, e);
                }
            }
        } else if is_kind(doc, "gvkmanifest.gatekeeper.sh", "GVKManifest") {
            if manifest.is_some() {
                return Err(Error::SyncConfig {
                    file: source.clone(),
                    kind: "GVKManifest".to_owned(),
                    name,
                    message: "multiple GVK manifests found; please provide one manifest enumerating the GVKs supported by the cluster".to_owned(),
                });
            }
            manifest = Some(manifest_kinds(doc).map_err(|message| Error::SyncConfig {
                file: source.clone(),
                kind: "GVKManifest".to_owned(),
                name: name.clone(),
                message,
            })?);
        } else {
            report.skipped.push(name);
        }
    }
    if !report.template_errors.is_empty() {
        return Ok(report);
    }
    match manifest {
        Some(served) => synced.retain(|k| served.contains(k)),
        None if omit_manifest => report.manifest_omitted = true,
        None => {
            return Err(Error::Config(
                "no GVK manifest found; please provide a manifest enumerating the GVKs supported by the cluster".to_owned(),
            ));
        }
    }
    for (name, requirements) in templates {
        let unmet: Vec<SyncRequirement> = requirements
            .into_iter()
            .filter(|alternatives| alternatives.is_disjoint(&synced))
            .collect();
        if !unmet.is_empty() {
            report.missing.entry(name).or_default().extend(unmet);
        }
    }
    Ok(report)
}

/// The kinds a GVKManifest lists: `spec.groups: {group: {version: [kind, ...]}}`.
fn manifest_kinds(doc: &Value) -> Result<BTreeSet<SyncKind>, String> {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        groups: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    }
    let spec = &doc["spec"];
    if object::is_absent(spec) {
        return Ok(BTreeSet::new());
    }
    let json = serde_json::to_value(spec).map_err(|e| format!("spec: {e}"))?;
    let spec: Spec = serde_json::from_value(json).map_err(|e| format!("spec: {e}"))?;
    let mut kinds = BTreeSet::new();
    for (group, versions) in spec.groups {
        for (version, names) in versions {
            for kind in names {
                kinds.insert(SyncKind {
                    group: group.clone(),
                    version: version.clone(),
                    kind,
                });
            }
        }
    }
    Ok(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml_like_json: &[&str]) -> Vec<IgnoredDocument> {
        yaml_like_json
            .iter()
            .map(|j| IgnoredDocument {
                source: "sync.yaml".to_owned(),
                value: Value::from_json_str(j).unwrap(),
            })
            .collect()
    }

    #[test]
    fn kinds_from_configs_and_syncsets_are_merged() {
        let config = SyncConfig::from_documents(&docs(&[
            r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"},
                "spec": {"sync": {"syncOnly": [{"group": "policy", "version": "v1", "kind": "PodDisruptionBudget"},
                                               {"version": "v1", "kind": "Namespace"}]}}}"#,
            r#"{"apiVersion": "syncset.gatekeeper.sh/v1alpha1", "kind": "SyncSet", "metadata": {"name": "ing"},
                "spec": {"gvks": [{"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
                                  {"group": "", "version": "v1", "kind": "Namespace"}]}}"#,
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}"#,
        ]))
        .unwrap();
        let names: Vec<String> = config.kinds().iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "v1 Namespace",
                "networking.k8s.io/v1 Ingress",
                "policy/v1 PodDisruptionBudget"
            ]
        );
    }

    #[test]
    fn exclusions_apply_to_the_processes_they_name() {
        let config = SyncConfig::from_documents(&docs(&[
            r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"},
                "spec": {"match": [{"excludedNamespaces": ["kube-*"], "processes": ["*"]},
                                   {"excludedNamespaces": ["*-sandbox"], "processes": ["webhook", "audit"]}]}}"#,
        ]))
        .unwrap();
        assert!(config.is_excluded(Process::Sync, "kube-system"));
        assert!(config.is_excluded(Process::Webhook, "kube-public"));
        assert!(config.is_excluded(Process::Webhook, "team-sandbox"));
        assert!(!config.is_excluded(Process::Sync, "team-sandbox"));
        assert!(!config.is_excluded(Process::MutationWebhook, "team-sandbox"));
        assert!(!config.is_excluded(Process::Webhook, "default"));
    }

    #[test]
    fn bad_documents_are_errors_naming_the_file_and_field() {
        let err = |json: &str| {
            SyncConfig::from_documents(&docs(&[json]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(
                r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"},
                    "spec": {"sync": {"syncOnly": [{"group": "apps", "kind": "Deployment"}]}}}"#
            ),
            "sync.yaml: Config \"config\": spec.sync.syncOnly[0]: version and kind are required"
        );
        assert_eq!(
            err(
                r#"{"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config", "metadata": {"name": "config"},
                    "spec": {"match": [{"excludedNamespaces": ["x"], "processes": ["webhooks"]}]}}"#
            ),
            "sync.yaml: Config \"config\": spec.match[0].processes: unknown process \"webhooks\" (known: audit, webhook, sync, mutation-webhook, *)"
        );
        assert!(
            err(
                r#"{"apiVersion": "syncset.gatekeeper.sh/v1alpha1", "kind": "SyncSet", "metadata": {"name": "s"},
                    "spec": {"gvks": "Ingress"}}"#
            )
            .starts_with("sync.yaml: SyncSet \"s\": spec: invalid type: string \"Ingress\", expected a sequence")
        );
    }
}
