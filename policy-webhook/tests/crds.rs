//! `deploy/crds`: our CRDs in Gatekeeper's groups and versions, and the constraint CRDs the
//! controller generates, checked structurally against every gatekeeper-library template and
//! sample constraint (they must be accepted as `kubectl apply` would send them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use policy_webhook::controller::crd;
use serde_json::{Value, json};

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds");
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/gatekeeper-library"
);

fn documents(path: &Path) -> Vec<Value> {
    let files = policy_core::gatekeeper::read_document_files(&[path.display().to_string()])
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    files
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .map(|d| serde_json::to_value(&d).unwrap())
        .collect()
}

fn our_crds() -> BTreeMap<String, Value> {
    documents(Path::new(CRDS))
        .into_iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| (d["metadata"]["name"].as_str().unwrap().to_owned(), d))
        .collect()
}

/// `(name, served, storage)` of each version.
fn versions(crd: &Value) -> Vec<(String, bool, bool)> {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["served"].as_bool().unwrap(),
                v["storage"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn schema_of<'a>(crd: &'a Value, version: &str) -> &'a Value {
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .map(|v| &v["schema"]["openAPIV3Schema"])
        .unwrap_or_else(|| panic!("{} does not serve {version}", crd["metadata"]["name"]))
}

/// The first field of `v` the structural schema neither declares nor preserves (the API server
/// would prune it: a manifest that relies on it would silently lose it).
fn unknown_field(schema: &Value, v: &Value, path: &str) -> Option<String> {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true)) {
        return None;
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child) in map {
                // metadata is the API server's, checked by it.
                if path.is_empty() && (k == "metadata" || k == "apiVersion" || k == "kind") {
                    continue;
                }
                let sub = match (
                    props.and_then(|p| p.get(k)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) => s,
                    (None, Some(s)) if s.is_object() => s,
                    _ => return Some(format!("{path}/{k}")),
                };
                if let Some(f) = unknown_field(sub, child, &format!("{path}/{k}")) {
                    return Some(f);
                }
            }
            None
        }
        Value::Array(items) => {
            let sub = schema.get("items")?;
            items
                .iter()
                .enumerate()
                .find_map(|(i, item)| unknown_field(sub, item, &format!("{path}/{i}")))
        }
        _ => None,
    }
}

/// Validates `doc` against `schema` as the API server would: types, patterns, enums, required,
/// and no pruned fields.
fn validate(schema: &Value, doc: &Value) -> Result<(), String> {
    let validator = jsonschema::draft4::new(schema).map_err(|e| format!("schema: {e}"))?;
    if let Some(e) = validator.iter_errors(doc).next() {
        return Err(format!("{}: {e}", e.instance_path()));
    }
    match unknown_field(schema, doc, "") {
        Some(f) => Err(format!("unknown field {f}")),
        None => Ok(()),
    }
}

/// (name, group, kind, scope, versions).
type Summary = (String, String, String, String, Vec<(String, bool, bool)>);

#[test]
fn crds_have_gatekeepers_names_versions_and_scopes() {
    let crds = our_crds();
    let summary: Vec<Summary> = crds
        .values()
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_owned(),
                c["spec"]["group"].as_str().unwrap().to_owned(),
                c["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
                c["spec"]["scope"].as_str().unwrap().to_owned(),
                versions(c),
            )
        })
        .collect();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        summary,
        vec![
            (
                s("assign.mutations.gatekeeper.sh"),
                s("mutations.gatekeeper.sh"),
                s("Assign"),
                s("Cluster"),
                vec![
                    (s("v1"), true, true),
                    (s("v1beta1"), true, false),
                    (s("v1alpha1"), true, false)
                ]
            ),
            (
                s("assignimage.mutations.gatekeeper.sh"),
                s("mutations.gatekeeper.sh"),
                s("AssignImage"),
                s("Cluster"),
                vec![(s("v1alpha1"), true, true)]
            ),
            (
                s("assignmetadata.mutations.gatekeeper.sh"),
                s("mutations.gatekeeper.sh"),
                s("AssignMetadata"),
                s("Cluster"),
                vec![
                    (s("v1"), true, true),
                    (s("v1beta1"), true, false),
                    (s("v1alpha1"), true, false)
                ]
            ),
            (
                s("configs.config.gatekeeper.sh"),
                s("config.gatekeeper.sh"),
                s("Config"),
                s("Namespaced"),
                vec![(s("v1alpha1"), true, true)]
            ),
            (
                s("constrainttemplates.templates.gatekeeper.sh"),
                s("templates.gatekeeper.sh"),
                s("ConstraintTemplate"),
                s("Cluster"),
                vec![
                    (s("v1"), true, true),
                    (s("v1alpha1"), true, false),
                    (s("v1beta1"), true, false)
                ]
            ),
            (
                s("expansiontemplate.expansion.gatekeeper.sh"),
                s("expansion.gatekeeper.sh"),
                s("ExpansionTemplate"),
                s("Cluster"),
                vec![(s("v1alpha1"), true, true), (s("v1beta1"), true, false)]
            ),
            (
                s("modifyset.mutations.gatekeeper.sh"),
                s("mutations.gatekeeper.sh"),
                s("ModifySet"),
                s("Cluster"),
                vec![
                    (s("v1"), true, true),
                    (s("v1beta1"), true, false),
                    (s("v1alpha1"), true, false)
                ]
            ),
            (
                s("syncsets.syncset.gatekeeper.sh"),
                s("syncset.gatekeeper.sh"),
                s("SyncSet"),
                s("Cluster"),
                vec![(s("v1alpha1"), true, true)]
            ),
        ]
    );
    // kustomize lists every file.
    let kustomization =
        std::fs::read_to_string(Path::new(CRDS).join("kustomization.yaml")).unwrap();
    for file in [
        "constrainttemplates.yaml",
        "configs.yaml",
        "syncsets.yaml",
        "expansiontemplates.yaml",
    ] {
        assert!(
            kustomization.contains(&format!("- {file}")),
            "{file} missing from kustomization.yaml"
        );
    }
    // Templates and constraints carry the status subresource Gatekeeper writes through.
    for name in [
        "constrainttemplates.templates.gatekeeper.sh",
        "configs.config.gatekeeper.sh",
        "expansiontemplate.expansion.gatekeeper.sh",
    ] {
        for v in crds[name]["spec"]["versions"].as_array().unwrap() {
            assert_eq!(v["subresources"], json!({"status": {}}), "{name}");
        }
    }
}

#[test]
fn schemas_reject_what_the_api_server_would() {
    let crds = our_crds();
    let ct = &crds["constrainttemplates.templates.gatekeeper.sh"];
    let bad = json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "x"},
                     "spec": {"crd": {"spec": {"names": {"kind": "X"}}}, "targets": [{"target": "t", "rego": "r", "operations": ["PATCH"]}]}});
    assert!(
        validate(schema_of(ct, "v1"), &bad)
            .unwrap_err()
            .contains("/spec/targets/0/operations/0")
    );
    let extra = json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "x"},
                       "spec": {"crd": {"spec": {"names": {"kind": "X"}}}, "targetz": []}});
    assert_eq!(
        validate(schema_of(ct, "v1"), &extra),
        Err("unknown field /spec/targetz".to_owned())
    );
}

fn library_root() -> Option<PathBuf> {
    let root = std::env::var("REGARD_GATEKEEPER_LIBRARY").unwrap_or_else(|_| LIBRARY.to_owned());
    let library = Path::new(&root).join("library");
    if library.is_dir() {
        Some(library)
    } else {
        println!(
            "notice: {} is absent; skipping the library check",
            library.display()
        );
        None
    }
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_named(&p, name, out);
        } else if p.file_name().is_some_and(|f| f == name) {
            out.push(p);
        }
    }
}

#[test]
fn every_library_template_and_constraint_fits_the_crds() {
    let Some(library) = library_root() else {
        return;
    };
    let crds = our_crds();
    let ct = &crds["constrainttemplates.templates.gatekeeper.sh"];
    let mut templates = Vec::new();
    files_named(&library, "template.yaml", &mut templates);
    assert!(templates.len() >= 40, "found {} templates", templates.len());
    let mut constraints_checked = 0;
    for path in &templates {
        let [template] = documents(path)
            .try_into()
            .unwrap_or_else(|d: Vec<Value>| panic!("{}: {} documents", path.display(), d.len()));
        let version = template["apiVersion"]
            .as_str()
            .unwrap()
            .strip_prefix("templates.gatekeeper.sh/")
            .unwrap()
            .to_owned();
        validate(schema_of(ct, &version), &template)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let names =
            crd::check_template(&template).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let generated = crd::constraint_crd(&template, &names, Some((&names.name, "uid")));
        assert_eq!(
            generated["metadata"]["name"],
            format!("{}.constraints.gatekeeper.sh", names.kind.to_lowercase())
        );
        let mut samples = Vec::new();
        files_named(path.parent().unwrap(), "constraint.yaml", &mut samples);
        for sample in samples {
            for constraint in documents(&sample) {
                assert_eq!(
                    constraint["kind"],
                    json!(names.kind),
                    "{}",
                    sample.display()
                );
                let (group, version) = constraint["apiVersion"]
                    .as_str()
                    .unwrap()
                    .split_once('/')
                    .unwrap();
                assert_eq!(group, "constraints.gatekeeper.sh", "{}", sample.display());
                validate(schema_of(&generated, version), &constraint)
                    .unwrap_or_else(|e| panic!("{}: {e}", sample.display()));
                constraints_checked += 1;
            }
        }
    }
    assert!(
        constraints_checked >= 60,
        "checked {constraints_checked} constraints"
    );
}

/// `kubectl apply -k deploy/crds` (and `deploy/`) installs every CRD file of the directory.
#[test]
fn the_kustomization_lists_every_crd_file() {
    let mut listed: Vec<String> = documents(&Path::new(CRDS).join("kustomization.yaml"))
        .into_iter()
        .flat_map(|k| {
            k["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(CRDS)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    files.sort();
    listed.sort();
    assert_eq!(
        listed,
        [
            "configs.yaml",
            "constrainttemplates.yaml",
            "expansiontemplates.yaml",
            "mutations.yaml",
            "syncsets.yaml"
        ]
    );
    assert_eq!(listed, files);
}

/// Every gatekeeper-library mutation sample is accepted by our mutation CRDs, nothing pruned,
/// so `kubectl apply` of it reaches the cluster source unchanged.
#[test]
fn every_library_mutator_fits_the_crds() {
    let Some(library) = library_root() else {
        return;
    };
    let mutation = library.parent().unwrap().join("mutation");
    let crds = our_crds();
    let mut files = Vec::new();
    for name in [
        "mutation.yaml",
        "mutation-assign.yaml",
        "mutation-modifyset.yaml",
        "mutation-fsGroup.yaml",
        "mutation-runAsUser.yaml",
        "mutation-runAsGroup.yaml",
        "mutation-supplementalGroups.yaml",
        "mutation-mustRunAsNonRoot.yaml",
    ] {
        files_named(&mutation, name, &mut files);
    }
    let mut checked = BTreeMap::new();
    for path in &files {
        for doc in documents(path) {
            let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
            assert_eq!(group, "mutations.gatekeeper.sh", "{}", path.display());
            let kind = doc["kind"].as_str().unwrap().to_owned();
            let crd = &crds[&format!("{}.{group}", kind.to_lowercase())];
            validate(schema_of(crd, version), &doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            *checked.entry(kind).or_insert(0) += 1;
        }
    }
    assert_eq!(
        checked,
        BTreeMap::from([("Assign".to_owned(), 15), ("ModifySet".to_owned(), 1),])
    );
}
