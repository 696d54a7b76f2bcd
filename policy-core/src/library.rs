//! The built-in policy library: the ConstraintTemplates and default
//! Constraints under the repository's `policies/` directory, compiled into
//! the binary, grouped into named bundles (`baseline`, `restricted`,
//! `best-practices`).
//!
//! Flow: `build.rs` embeds `policies/bundles.yaml` and every policy's
//! `template.yaml` and `constraint.yaml`; [`bundles`] reads the manifest,
//! [`select`] turns bundle names into policy directories (each once),
//! [`load`] compiles them into a [`PolicyBundle`] that `regard test` and the
//! webhook evaluate with Gatekeeper's semantics, [`files`] gives the YAML for
//! `regard policies export`, and [`readme`] renders `policies/README.md`
//! from the templates' metadata.
//!
//! ```
//! use policy_core::library;
//! let names = library::default_bundles()?;
//! assert_eq!(names, ["baseline", "best-practices"]);
//! let bundle = library::load(&names)?;
//! assert_eq!(bundle.template_count(), bundle.constraint_count());
//! # Ok::<(), policy_core::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use regorus::Value;

use crate::error::{Error, Result};
use crate::gatekeeper::PolicyBundle;
use crate::input::Format;

include!(concat!(env!("OUT_DIR"), "/library_files.rs"));

/// The bundle manifest's file name (relative to `policies/`).
const MANIFEST: &str = "bundles.yaml";

/// A named group of policies, as listed in `policies/bundles.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleInfo {
    /// The name used with `--bundle`.
    pub name: String,
    /// One line saying what it covers.
    pub description: String,
    /// Whether `regard test` uses it when no policy is given.
    pub default: bool,
    /// Policy directories (relative to `policies/`), in order.
    pub policies: Vec<String>,
}

/// One parameter of a policy, from its template's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// Parameter name (`spec.parameters.<name>`).
    pub name: String,
    /// Schema type (`array`, `integer`, …).
    pub kind: String,
    /// What it does and its default.
    pub description: String,
}

/// A policy of the library, described from its template and constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    /// Directory relative to `policies/` (`pss/baseline/privileged`).
    pub path: String,
    /// Short id (`regard.dev/id`), also the default Constraint's name.
    pub id: String,
    /// `baseline`, `restricted` or `best-practices` (`regard.dev/level`).
    pub level: String,
    /// Title (`metadata.gatekeeper.sh/title`).
    pub title: String,
    /// What it checks (`description` annotation).
    pub description: String,
    /// The constraint kind the template defines.
    pub kind: String,
    /// The default Constraint's enforcementAction.
    pub enforcement_action: String,
    /// Parameters the template accepts.
    pub parameters: Vec<Parameter>,
}

fn file(path: &str) -> Result<&'static str> {
    FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .ok_or_else(|| Error::Library {
            file: path.to_owned(),
            message: "missing from the embedded library".to_owned(),
        })
}

fn parse(path: &str) -> Result<Value> {
    Format::Yaml.parse(file(path)?, Path::new(path))
}

fn get<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur
}

fn text(v: &Value, path: &[&str]) -> String {
    match get(v, path) {
        Value::String(s) => s.to_string(),
        _ => String::new(),
    }
}

fn library_error(file: &str, message: impl Into<String>) -> Error {
    Error::Library {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// The bundles of the library, in manifest order.
pub fn bundles() -> Result<Vec<BundleInfo>> {
    let manifest = parse(MANIFEST)?;
    let Ok(list) = get(&manifest, &["bundles"]).as_array() else {
        return Err(library_error(MANIFEST, "`bundles` must be a list"));
    };
    list.iter()
        .map(|b| {
            let name = text(b, &["name"]);
            if name.is_empty() {
                return Err(library_error(MANIFEST, "a bundle has no name"));
            }
            let policies = match get(b, &["policies"]).as_array() {
                Ok(items) => items
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s.to_string()),
                        _ => Err(library_error(
                            MANIFEST,
                            format!("bundle {name}: policies must be strings"),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?,
                Err(_) => {
                    return Err(library_error(
                        MANIFEST,
                        format!("bundle {name} lists no policies"),
                    ));
                }
            };
            Ok(BundleInfo {
                description: text(b, &["description"]),
                default: get(b, &["default"]) == &Value::Bool(true),
                policies,
                name,
            })
        })
        .collect()
}

/// Names of the bundles `regard test` uses when no policy is given.
pub fn default_bundles() -> Result<Vec<String>> {
    Ok(bundles()?
        .into_iter()
        .filter(|b| b.default)
        .map(|b| b.name)
        .collect())
}

/// The policy directories of the named bundles, each once, in bundle order.
///
/// ```
/// let both = policy_core::library::select(&["baseline", "restricted"])?;
/// let restricted = policy_core::library::select(&["restricted"])?;
/// assert_eq!(both, restricted); // restricted includes every baseline control
/// assert!(policy_core::library::select(&["nope"]).is_err());
/// # Ok::<(), policy_core::Error>(())
/// ```
pub fn select<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>> {
    let all = bundles()?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        let name = name.as_ref();
        let Some(bundle) = all.iter().find(|b| b.name == name) else {
            return Err(Error::UnknownBundle {
                name: name.to_owned(),
                known: all
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        for p in &bundle.policies {
            if seen.insert(p.clone()) {
                out.push(p.clone());
            }
        }
    }
    Ok(out)
}

/// The embedded files of the named bundles: for each policy its
/// `template.yaml`, `constraint.yaml` and, for a referential policy, the
/// `syncset.yaml` naming the kinds it reads from `data.inventory`, as (path
/// relative to `policies/`, contents).
pub fn files<S: AsRef<str>>(names: &[S]) -> Result<Vec<(String, &'static str)>> {
    let mut out = Vec::new();
    for policy in select(names)? {
        // A mutation policy is a `mutators.yaml` of Gatekeeper mutators alone.
        let mutators = format!("{policy}/mutators.yaml");
        if let Ok(text) = file(&mutators) {
            out.push((mutators, text));
            continue;
        }
        for name in ["template.yaml", "constraint.yaml"] {
            let path = format!("{policy}/{name}");
            let text = file(&path)?;
            out.push((path, text));
        }
        let syncset = format!("{policy}/syncset.yaml");
        if let Ok(text) = file(&syncset) {
            out.push((syncset, text));
        }
    }
    Ok(out)
}

/// The parsed templates, constraints and mutators of the named bundles,
/// ready for [`PolicyBundle::from_documents`] and
/// [`MutationSystem::from_documents`](crate::mutation::MutationSystem::from_documents).
pub fn documents<S: AsRef<str>>(names: &[S]) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for (path, text) in files(names)? {
        let value = Format::Yaml.parse(text, Path::new(&path))?;
        let name = format!("<built-in>/{path}");
        // A multi-document file parses to the array of its documents.
        match value {
            Value::Array(docs) if path.ends_with("mutators.yaml") => {
                out.extend(docs.iter().map(|d| (name.clone(), d.clone())));
            }
            v => out.push((name, v)),
        }
    }
    Ok(out)
}

/// Compiles the named bundles into one [`PolicyBundle`].
pub fn load<S: AsRef<str>>(names: &[S]) -> Result<PolicyBundle> {
    PolicyBundle::from_documents(documents(names)?)
}

/// Every policy of the library, each once, in bundle order.
pub fn policies() -> Result<Vec<PolicyInfo>> {
    let names: Vec<String> = bundles()?.into_iter().map(|b| b.name).collect();
    select(&names)?
        .iter()
        .filter(|p| file(&format!("{p}/mutators.yaml")).is_err())
        .map(|p| describe(p))
        .collect()
}

fn describe(policy: &str) -> Result<PolicyInfo> {
    let template_path = format!("{policy}/template.yaml");
    let template = parse(&template_path)?;
    let constraint = parse(&format!("{policy}/constraint.yaml"))?;
    let annotation = |key: &str| text(&template, &["metadata", "annotations", key]);
    let mut parameters = Vec::new();
    let props = get(
        &template,
        &[
            "spec",
            "crd",
            "spec",
            "validation",
            "openAPIV3Schema",
            "properties",
        ],
    );
    if let Ok(map) = props.as_object() {
        for (name, schema) in map.iter() {
            let Value::String(name) = name else { continue };
            parameters.push(Parameter {
                name: name.to_string(),
                kind: text(schema, &["type"]),
                description: text(schema, &["description"]),
            });
        }
    }
    let action = text(&constraint, &["spec", "enforcementAction"]);
    Ok(PolicyInfo {
        path: policy.to_owned(),
        id: annotation("regard.dev/id"),
        level: annotation("regard.dev/level"),
        title: annotation("metadata.gatekeeper.sh/title"),
        description: one_line(&annotation("description")),
        kind: text(&template, &["spec", "crd", "spec", "names", "kind"]),
        enforcement_action: if action.is_empty() {
            "deny".to_owned()
        } else {
            action
        },
        parameters,
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `policies/README.md`: the bundles and a table of every policy (id,
/// level, what it checks, parameters), generated from the templates'
/// metadata so it cannot drift from them.
pub fn readme() -> Result<String> {
    let bundles = bundles()?;
    let policies = policies()?;
    let mut out = String::new();
    out.push_str(
        "# Built-in policy library\n\n\
         <!-- Generated by `regard policies doc > policies/README.md` from the templates' metadata; do not edit. -->\n\n\
         Each policy is a Gatekeeper ConstraintTemplate (`template.yaml`, Rego v1) with a default Constraint\n\
         (`constraint.yaml`), a gator suite (`suite.yaml`) and the sample objects it uses (`samples/`). The same\n\
         files run in CI (`regard test`), in the admission webhook (`regard-webhook --bundle NAME`) and in a\n\
         Gatekeeper cluster (`regard policies export DIR`, then `kubectl apply`).\n\n\
         Workload policies look at every place a pod spec lives (Pod, Deployment, StatefulSet, DaemonSet,\n\
         ReplicaSet, ReplicationController, Job, CronJob) and at containers, init containers and ephemeral\n\
         containers; every message names the resource kind, name, namespace (when set) and container.\n\n\
         ## Bundles\n\n\
         | bundle | default | policies | description |\n|---|---|---|---|\n",
    );
    for b in &bundles {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            b.name,
            if b.default { "yes" } else { "no" },
            b.policies.len(),
            b.description
        );
    }
    out.push_str(
        "\n`regard test` with no `-p` and no `./policy` directory uses the default bundles; `--bundle NAME`\n\
         (repeatable) chooses others. Selecting several bundles loads each policy once.\n\n\
         ## Policies\n\n\
         | id | level | action | what it checks | parameters |\n|---|---|---|---|---|\n",
    );
    for p in &policies {
        let params = if p.parameters.is_empty() {
            "—".to_owned()
        } else {
            p.parameters
                .iter()
                .map(|x| format!("`{}` ({}): {}", x.name, x.kind, one_line(&x.description)))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = writeln!(
            out,
            "| [`{}`]({}/) | {} | {} | **{}.** {} | {} |",
            p.id, p.path, p.level, p.enforcement_action, p.title, p.description, params
        );
    }
    out.push_str(
        "\n## Results and enforcement actions\n\n\
         `regard test` reports each violation under the constraint's name: `deny` violations are failures,\n\
         `warn` violations are warnings (failing the run only with `--fail-on-warn`), and `dryrun` violations\n\
         are not reported; a matched object with no reported violation counts as a passed test. The default\n\
         Constraints deny every Pod Security Standards violation and warn about the best practices, except\n\
         `image-tag`, which denies.\n\n\
         ## Customising\n\n\
         `regard policies export DIR` writes the templates and default Constraints of the default bundles\n\
         (or of each `--bundle NAME`) to `DIR/templates/` and `DIR/constraints/`. Edit a Constraint's\n\
         `parameters`, `match` (namespaces, label selectors) or `enforcementAction`, then run the directory with\n\
         `regard test --bundle DIR`, serve it with `regard-webhook --policy-dir DIR`, or apply it to a Gatekeeper\n\
         cluster (`kubectl apply -f DIR/templates`, then `kubectl apply -f DIR/constraints`).\n\n\
         Cross-resource checks (`pdb`, `replicas`, `automount-token`) read `data.inventory`: in `regard test`\n\
         every checked file is in the inventory; in a cluster, sync the kinds named in each template's\n\
         `metadata.gatekeeper.sh/requires-sync-data` annotation.\n",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_policy_is_embedded_and_described() {
        let all = policies().unwrap();
        assert_eq!(all.len(), 29);
        for p in &all {
            assert!(
                !p.id.is_empty() && !p.title.is_empty() && !p.description.is_empty(),
                "{p:?}"
            );
            assert!(p.path.ends_with(&p.id), "{p:?}");
            assert!(
                ["baseline", "restricted", "best-practices"].contains(&p.level.as_str()),
                "{p:?}"
            );
        }
    }

    #[test]
    fn referential_policies_bring_the_syncsets_for_what_they_read() {
        let bundle = load(&["best-practices"]).unwrap();
        let kinds: Vec<String> = bundle
            .sync_config()
            .kinds()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            kinds,
            [
                "v1 ServiceAccount",
                "autoscaling/v2 HorizontalPodAutoscaler",
                "policy/v1 PodDisruptionBudget"
            ]
        );
        // ...and they meet the templates' requires-sync-data annotations.
        let docs = documents(&["best-practices"]).unwrap();
        let report = crate::gatekeeper::sync_test(&docs, true).unwrap();
        assert!(report.missing.is_empty() && report.template_errors.is_empty());
        assert_eq!(report.skipped.len(), 10, "the constraints");
        assert!(
            load(&["baseline"])
                .unwrap()
                .sync_config()
                .kinds()
                .is_empty()
        );
    }

    #[test]
    fn every_bundle_compiles() {
        for b in bundles().unwrap() {
            let bundle = load(&[b.name.as_str()]).unwrap();
            let (mutators, errors) = crate::mutation::MutationSystem::from_documents(
                &documents(&[b.name.as_str()]).unwrap(),
            );
            assert_eq!(errors, vec![], "{}", b.name);
            assert_eq!(mutators.conflicts(), &[], "{}", b.name);
            if b.name == "restricted-defaults" {
                // A mutation bundle: mutators only.
                assert_eq!(mutators.mutator_count(), 24);
                assert_eq!(bundle.template_count(), 0);
                assert_eq!(bundle.constraint_count(), 0);
                continue;
            }
            assert_eq!(mutators.mutator_count(), 0, "{}", b.name);
            assert_eq!(bundle.template_count(), b.policies.len(), "{}", b.name);
            assert_eq!(bundle.constraint_count(), b.policies.len(), "{}", b.name);
        }
    }

    #[test]
    fn unknown_bundle_names_the_known_ones() {
        let err = select(&["strict"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown bundle \"strict\" (built-in bundles: baseline, restricted, best-practices, deprecated-apis, restricted-defaults)"
        );
    }
}
