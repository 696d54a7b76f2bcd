//! The built-in policy library (`policies/`): every control fails on a
//! violating workload of every kind it covers and passes on compliant ones,
//! the gator suites generated from the same cases pass, the README table and
//! the shared Rego library copies are up to date, and `regard test` with no
//! policy reports on `examples/k8s` exactly as the README shows.
//!
//! Cases live in `tests/policies/<id>.yaml` (format in its README). Run with
//! `REGARD_BLESS=1` to rewrite the generated suites, samples, libs and README.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::{Run, fixtures};

/// Workload kinds and their apiVersions, in the order samples use.
const KINDS: [(&str, &str); 8] = [
    ("Pod", "v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("ReplicaSet", "apps/v1"),
    ("ReplicationController", "v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
];

/// Kinds a suite covers for every case after the first violating one.
const SUITE_KINDS: [&str; 3] = ["Pod", "Deployment", "CronJob"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn bless() -> bool {
    std::env::var_os("REGARD_BLESS").is_some()
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One case of a spec file.
#[derive(Debug, Clone)]
struct Case {
    name: String,
    kinds: Vec<String>,
    namespace: String,
    labels: Value,
    pod_labels: Value,
    pod_annotations: Value,
    replicas: Option<i64>,
    inventory: Vec<Value>,
    pod: Option<Value>,
    object: Option<Value>,
    messages: Vec<String>,
}

/// A spec file: the policy directory and its cases.
#[derive(Debug)]
struct Spec {
    id: String,
    policy: String,
    cases: Vec<Case>,
}

impl Spec {
    fn dir(&self) -> PathBuf {
        repo().join("policies").join(&self.policy)
    }
}

fn parse_case(v: &Value, default_kinds: &[String]) -> Case {
    let name = v["name"].as_str().expect("case name").to_owned();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("string").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let kinds = if v.get("kinds").is_some() {
        strings(&v["kinds"])
    } else if v.get("object").is_some() {
        Vec::new()
    } else {
        default_kinds.to_vec()
    };
    Case {
        kinds,
        namespace: v
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("demo")
            .to_owned(),
        labels: v
            .get("labels")
            .cloned()
            .unwrap_or_else(|| json!({"app.kubernetes.io/name": name})),
        pod_labels: v.get("pod_labels").cloned().unwrap_or_else(|| json!({})),
        pod_annotations: v.get("pod_annotations").cloned().unwrap_or(Value::Null),
        replicas: v.get("replicas").and_then(Value::as_i64),
        inventory: v
            .get("inventory")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        pod: v.get("pod").cloned(),
        object: v.get("object").cloned(),
        messages: strings(&v["messages"]),
        name,
    }
}

fn all_kinds() -> Vec<String> {
    KINDS.iter().map(|(k, _)| (*k).to_owned()).collect()
}

/// Every spec under `tests/policies/`, with the shared compliant workload
/// added as the first case of each policy that covers workloads.
fn specs() -> Vec<Spec> {
    let dir = fixtures().join("policies");
    let compliant = read_yaml(&dir.join("compliant.yaml"));
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/policies")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("compliant.yaml"))
        .collect();
    entries.sort();
    for path in entries {
        let doc = read_yaml(&path);
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("stem")
            .to_owned();
        let kinds = match doc.get("kinds") {
            Some(k) => k
                .as_array()
                .expect("kinds list")
                .iter()
                .map(|s| s.as_str().expect("kind").to_owned())
                .collect(),
            None => all_kinds(),
        };
        let mut cases = Vec::new();
        if !kinds.is_empty() {
            let mut c = compliant.clone();
            c["name"] = json!("compliant");
            c["messages"] = json!([]);
            cases.push(parse_case(&c, &kinds));
        }
        for c in doc["cases"].as_array().expect("cases") {
            cases.push(parse_case(c, &kinds));
        }
        out.push(Spec {
            id,
            policy: doc["policy"].as_str().expect("policy").to_owned(),
            cases,
        });
    }
    out
}

fn api_version(kind: &str) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("unknown kind {kind}"))
}

fn merge(a: &Value, b: &Value) -> Value {
    let mut out = a.clone();
    if let (Some(o), Some(extra)) = (out.as_object_mut(), b.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

/// The case's pod spec wrapped as `kind`, named after the case.
fn workload(case: &Case, kind: &str) -> Value {
    let name = case.name.as_str();
    let pod = case.pod.clone().expect("pod case");
    let mut metadata = json!({"name": name});
    if !case.namespace.is_empty() {
        metadata["namespace"] = json!(case.namespace);
    }
    let selector = json!({"app": name});
    let mut template_meta = json!({"labels": merge(&selector, &case.pod_labels)});
    if !case.pod_annotations.is_null() {
        template_meta["annotations"] = case.pod_annotations.clone();
    }
    let template = |pod: Value| json!({"metadata": template_meta.clone(), "spec": pod});
    let batch_pod = || {
        let mut p = pod.clone();
        if p.get("restartPolicy").is_none() {
            p["restartPolicy"] = json!("Never");
        }
        p
    };
    let mut spec = match kind {
        "Pod" => {
            metadata["labels"] = merge(&case.labels, &template_meta["labels"]);
            if !case.pod_annotations.is_null() {
                metadata["annotations"] = case.pod_annotations.clone();
            }
            pod.clone()
        }
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            let mut s =
                json!({"selector": {"matchLabels": selector}, "template": template(pod.clone())});
            if kind == "StatefulSet" {
                s["serviceName"] = json!(name);
            }
            s
        }
        "ReplicationController" => json!({"selector": selector, "template": template(pod.clone())}),
        "Job" => json!({"template": template(batch_pod())}),
        "CronJob" => json!({
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": template(batch_pod())}}
        }),
        other => panic!("unknown kind {other}"),
    };
    if kind != "Pod" {
        metadata["labels"] = case.labels.clone();
    }
    if let Some(r) = case.replicas
        && matches!(
            kind,
            "Deployment" | "StatefulSet" | "ReplicaSet" | "ReplicationController"
        )
    {
        spec["replicas"] = json!(r);
    }
    json!({"apiVersion": api_version(kind), "kind": kind, "metadata": metadata, "spec": spec})
}

fn subject(object: &Value) -> String {
    let kind = object["kind"].as_str().unwrap_or("");
    let name = object["metadata"]["name"].as_str().unwrap_or("");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() => format!("{kind}/{name} in namespace {ns}"),
        _ => format!("{kind}/{name}"),
    }
}

/// The expected messages for `object`, sorted.
fn expected(case: &Case, object: &Value) -> Vec<String> {
    let subject = subject(object);
    let mut m: Vec<String> = case
        .messages
        .iter()
        .map(|m| m.replace("{subject}", &subject))
        .collect();
    m.sort();
    m
}

fn inventory(case: &Case) -> Vec<Value> {
    case.inventory
        .iter()
        .map(|v| {
            let text = serde_json::to_string(v)
                .expect("json")
                .replace("{name}", &case.name);
            serde_json::from_str(&text).expect("json")
        })
        .collect()
}

/// The objects a case produces: (file stem, object), one per kind or the
/// case's own object.
fn objects(case: &Case, kinds: Option<&[&str]>) -> Vec<(String, Value)> {
    if let Some(o) = &case.object {
        return vec![("object".to_owned(), o.clone())];
    }
    case.kinds
        .iter()
        .filter(|k| kinds.is_none_or(|ks| ks.contains(&k.as_str())))
        .map(|k| (k.to_lowercase(), workload(case, k)))
        .collect()
}

fn to_yaml(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_saphyr::to_string(d).expect("yaml"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The suite and sample files generated for a spec: (path relative to the
/// policy directory, contents).
fn generated_files(spec: &Spec) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut cases = String::new();
    let mut first_violation = true;
    for case in &spec.cases {
        // The compliant case and the first violating case cover every kind;
        // the others the three places a pod spec can sit.
        let all = case.name == "compliant" || (first_violation && !case.messages.is_empty());
        if !case.messages.is_empty() {
            first_violation = false;
        }
        let kinds: Option<&[&str]> = if all { None } else { Some(&SUITE_KINDS) };
        let mut objs = objects(case, kinds);
        if objs.is_empty() {
            // A case for kinds outside the three: keep its first kind.
            objs = objects(case, None).into_iter().take(1).collect();
        }
        let inv = inventory(case);
        let inv_path = format!("samples/{}/inventory.yaml", case.name);
        if !inv.is_empty() {
            files.insert(inv_path.clone(), to_yaml(&inv));
        }
        for (stem, obj) in objs {
            let path = format!("samples/{}/{stem}.yaml", case.name);
            files.insert(path.clone(), to_yaml(std::slice::from_ref(&obj)));
            let msgs = expected(case, &obj);
            cases.push_str(&format!(
                "      - name: {}-{stem}\n        object: {path}\n",
                case.name
            ));
            if !inv.is_empty() {
                cases.push_str(&format!("        inventory:\n          - {inv_path}\n"));
            }
            cases.push_str("        assertions:\n");
            if msgs.is_empty() {
                cases.push_str("          - violations: no\n");
            } else {
                cases.push_str(&format!("          - violations: {}\n", msgs.len()));
                for m in &msgs {
                    let re =
                        serde_json::to_string(&format!("^{}$", regex::escape(m))).expect("json");
                    cases.push_str(&format!(
                        "          - violations: 1\n            message: {re}\n"
                    ));
                }
            }
        }
    }
    let suite = format!(
        "# Generated from tests/policies/{id}.yaml by policy-cli/tests/integration/policies.rs\n\
         # (REGARD_BLESS=1 cargo test --test integration policies); do not edit.\n\
         kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\nmetadata:\n  name: {id}\ntests:\n  - name: {id}\n    \
         template: template.yaml\n    constraint: constraint.yaml\n    cases:\n{cases}",
        id = spec.id
    );
    files.insert("suite.yaml".to_owned(), suite);
    files
}

/// Compares generated files with the tree (or writes them when blessing),
/// including stale files under `samples/`.
fn check_files(
    root: &Path,
    files: &BTreeMap<String, String>,
    stale_under: &Path,
    problems: &mut Vec<String>,
) {
    if bless() {
        let _ = std::fs::remove_dir_all(stale_under);
    }
    for (rel, text) in files {
        let path = root.join(rel);
        if bless() {
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).expect("write");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            problems.push(format!("{} is out of date", path.display()));
        }
    }
    if stale_under.is_dir() {
        for entry in walk(stale_under) {
            let rel = entry
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            if !files.contains_key(&rel) {
                problems.push(format!("{} is not generated by any case", entry.display()));
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn suites_and_samples_are_generated_from_the_cases() {
    let mut problems = Vec::new();
    let specs = specs();
    let mut listed: Vec<String> = specs.iter().map(|s| s.policy.clone()).collect();
    listed.sort();
    let mut dirs: Vec<String> = walk(&repo().join("policies"))
        .into_iter()
        .filter(|p| p.ends_with("template.yaml"))
        .map(|p| {
            p.parent()
                .expect("dir")
                .strip_prefix(repo().join("policies"))
                .expect("under policies")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    dirs.sort();
    assert_eq!(
        listed, dirs,
        "every policy has exactly one case file in tests/policies"
    );
    for spec in &specs {
        let files = generated_files(spec);
        check_files(
            &spec.dir(),
            &files,
            &spec.dir().join("samples"),
            &mut problems,
        );
    }
    assert!(
        problems.is_empty(),
        "{}\nrun `REGARD_BLESS=1 cargo test --test integration policies` to regenerate",
        problems.join("\n")
    );
}

#[test]
fn library_copies_in_templates_match_policies_lib() {
    let lib = std::fs::read_to_string(repo().join("policies/lib/workloads.rego")).expect("lib");
    let indented: String = lib
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_owned()
            } else {
                format!("                {l}\n")
            }
        })
        .collect();
    let marker = "            libs:\n              - |\n";
    let mut problems = Vec::new();
    for path in walk(&repo().join("policies"))
        .into_iter()
        .filter(|p| p.ends_with("template.yaml"))
    {
        let text = std::fs::read_to_string(&path).expect("template");
        let Some(at) = text.find(marker) else {
            problems.push(format!("{}: no libs block", path.display()));
            continue;
        };
        let want = format!("{}{marker}{indented}", &text[..at]);
        if text != want {
            if bless() {
                std::fs::write(&path, want).expect("write");
            } else {
                problems.push(format!(
                    "{}: libs differ from policies/lib/workloads.rego",
                    path.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn gk_verify_passes_every_library_suite() {
    for evaluator in ["interpreter", "rvm"] {
        let out = Run::in_dir(
            &repo(),
            &["gk", "verify", "policies/...", "--evaluator", evaluator],
        )
        .output();
        assert_eq!(out.code, 0, "{evaluator}: {}{}", out.stdout, out.stderr);
        assert_eq!(out.stdout.lines().last(), Some("PASS"), "{}", out.stdout);
        let suites = out.stdout.lines().filter(|l| l.starts_with("ok\t")).count();
        assert_eq!(suites, specs().len(), "{evaluator}: {}", out.stdout);
    }
}

/// Every built-in template against every sample of the library, on both
/// evaluators: identical violations and messages.
#[test]
fn gk_test_rvm_matches_the_interpreter_on_the_samples() {
    let results = |evaluator: &str| {
        let out = Run::in_dir(
            &repo(),
            &[
                "gk",
                "test",
                "-f",
                "policies",
                "-o",
                "json",
                "--evaluator",
                evaluator,
                // The samples as written: policies/ also holds the restricted-defaults mutators.
                "--no-mutate",
            ],
        )
        .output();
        assert_eq!(out.code, 1, "{evaluator}: {}", out.stderr);
        crate::gk::result_counts(&out.stdout)
    };
    let (interpreted, compiled) = (results("interpreter"), results("rvm"));
    assert!(
        interpreted.values().sum::<usize>() > 3000,
        "{}",
        interpreted.len()
    );
    assert_eq!(interpreted, compiled);
}

#[test]
fn readme_is_generated_from_the_templates() {
    let out = Run::in_dir(&repo(), &["policies", "doc"]).output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let path = repo().join("policies/README.md");
    if bless() {
        std::fs::write(&path, &out.stdout).expect("write README");
    }
    let on_disk = std::fs::read_to_string(&path).expect("policies/README.md");
    assert!(
        on_disk == out.stdout,
        "policies/README.md is out of date: run `regard policies doc > policies/README.md`"
    );
}

/// Messages reported per file (failures and warnings, sorted), and whether
/// the policy's constraint matched the file at all.
fn reported(json: &str, root: &Path) -> BTreeMap<String, (bool, Vec<String>)> {
    let results: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut out: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
    for r in results.as_array().expect("results") {
        let file = r["filename"].as_str().expect("filename");
        let rel = Path::new(file)
            .strip_prefix(root)
            .unwrap_or(Path::new(file))
            .to_string_lossy()
            .replace('\\', "/");
        let entry = out.entry(rel).or_default();
        entry.0 = true;
        for key in ["failures", "warnings"] {
            for o in r[key].as_array().into_iter().flatten() {
                entry.1.push(o["msg"].as_str().expect("msg").to_owned());
            }
        }
        entry.1.sort();
    }
    out
}

#[test]
fn every_control_fails_on_every_workload_kind_and_passes_compliant_ones() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for spec in specs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for case in &spec.cases {
            let inv = inventory(case);
            if !inv.is_empty() {
                let path = tmp.path().join(format!("{}/inventory.yaml", case.name));
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, to_yaml(&inv)).expect("write");
            }
            for (stem, obj) in objects(case, None) {
                let rel = format!("{}/{stem}.yaml", case.name);
                let path = tmp.path().join(&rel);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
                std::fs::write(&path, to_yaml(std::slice::from_ref(&obj))).expect("write");
                want.insert(rel, expected(case, &obj));
            }
        }
        let bundle = spec.dir();
        let out = Run::in_dir(
            tmp.path(),
            &[
                "test",
                "--bundle",
                bundle.to_str().expect("utf-8 path"),
                "-o",
                "json",
                "--no-fail",
                tmp.path().to_str().expect("utf-8 path"),
            ],
        )
        .output();
        assert_eq!(out.code, 0, "{}: {}", spec.id, out.stderr);
        let got = reported(&out.stdout, tmp.path());
        for (file, messages) in &want {
            checked += 1;
            match got.get(file) {
                None => problems.push(format!("{}: {file}: the constraint did not match", spec.id)),
                Some((_, m)) if m != messages => problems.push(format!(
                    "{}: {file}:\n  want {messages:#?}\n  got  {m:#?}",
                    spec.id
                )),
                Some(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every case of every policy on every kind it covers.
    assert!(checked > 500, "only {checked} objects checked");
}

/// The README's "main job": `regard test` with no policy on a folder of
/// manifests uses the default bundles, in every output format.
#[test]
fn regard_test_without_policy_uses_the_default_bundles_in_every_format() {
    let dir = fixtures().join("policies/expected");
    let mut problems = Vec::new();
    for format in [
        "stdout",
        "json",
        "tap",
        "table",
        "junit",
        "github",
        "azuredevops",
        "sarif",
    ] {
        let out = Run::in_dir(&repo(), &["test", "-o", format, "examples/k8s"]).output();
        assert_eq!(out.code, 1, "{format}: {}", out.stderr);
        assert_eq!(
            out.stderr,
            "regard: no policy given and no ./policy directory; using the built-in bundles baseline, best-practices\n\
             regard: checking Kubernetes schemas and deprecated APIs for 1.37 (--kube-version none turns this off)\n"
        );
        let path = dir.join(format!("examples-k8s.{format}"));
        if bless() {
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::write(&path, &out.stdout).expect("write");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(out.stdout.as_str()) {
            problems.push(format!(
                "{format}: output differs from {}:\n{}",
                path.display(),
                out.stdout
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn bundles_are_selected_by_name_and_policy_flags_do_not_mix() {
    let out = Run::in_dir(
        &repo(),
        &["test", "--bundle", "restricted", "examples/k8s/web.yaml"],
    )
    .output();
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        out.stdout,
        "\n18 tests, 18 passed, 0 warnings, 0 failures, 0 exceptions\n"
    );

    let out = Run::in_dir(&repo(), &["test", "--bundle", "strict", "examples/k8s"]).output();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error: --bundle strict: neither a built-in bundle (baseline, restricted, best-practices, deprecated-apis, restricted-defaults) nor an existing directory\n"
    );

    let out = Run::in_dir(
        &repo(),
        &[
            "test",
            "--bundle",
            "baseline",
            "-p",
            "examples/policy",
            "examples/k8s",
        ],
    )
    .output();
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error: --bundle and --policy cannot be combined\n"
    );
}

#[test]
fn export_writes_templates_and_constraints_that_load_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("out");
    let out = Run::in_dir(
        tmp.path(),
        &["policies", "export", "out", "--bundle", "restricted"],
    )
    .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "wrote 18 templates to out/templates, 18 constraints to out/constraints (bundles: restricted)\n"
    );
    let templates = std::fs::read_dir(dir.join("templates"))
        .expect("templates")
        .count();
    let constraints = std::fs::read_dir(dir.join("constraints"))
        .expect("constraints")
        .count();
    assert_eq!((templates, constraints), (18, 18));
    let privileged = std::fs::read_to_string(dir.join("templates/privileged.yaml")).expect("file");
    let source =
        std::fs::read_to_string(repo().join("policies/pss/baseline/privileged/template.yaml"))
            .expect("file");
    assert_eq!(privileged, source);
    // The exported directory is a bundle of its own.
    let web = repo().join("examples/k8s/web.yaml");
    let out = Run::in_dir(
        tmp.path(),
        &["test", "--bundle", "out", web.to_str().expect("utf-8")],
    )
    .output();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout,
        "\n18 tests, 18 passed, 0 warnings, 0 failures, 0 exceptions\n"
    );
}

#[test]
fn export_writes_the_syncsets_of_referential_policies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = Run::in_dir(
        tmp.path(),
        &["policies", "export", "out", "--bundle", "best-practices"],
    )
    .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "wrote 10 templates to out/templates, 10 constraints to out/constraints and 3 SyncSets to out/syncsets (bundles: best-practices)\n"
    );
    let mut syncsets: Vec<String> = std::fs::read_dir(tmp.path().join("out/syncsets"))
        .expect("syncsets")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    syncsets.sort();
    assert_eq!(
        syncsets,
        ["automount-token.yaml", "pdb.yaml", "replicas.yaml"]
    );
    // What they sync meets what the templates require.
    let out = Run::in_dir(
        tmp.path(),
        &[
            "gk",
            "sync",
            "test",
            "-f",
            "out/templates",
            "-f",
            "out/syncsets",
            "-o",
        ],
    )
    .output();
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}
