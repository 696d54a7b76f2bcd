//! `regard gk vap`: the ValidatingAdmissionPolicy and bindings Gatekeeper generates
//! for CEL templates, checked byte for byte on a fixture, and checked to enforce what
//! the template enforces on every gatekeeper-library CEL template and sample.

use std::path::Path;

use crate::util::{Run, assert_text, read, regard};

#[test]
fn policy_and_bindings_for_a_template_and_its_constraints() {
    let out = regard(
        "gk/vap-generate",
        &["gk", "vap", "-f", "template.yaml", "-f", "constraints.yaml"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_text(&read("gk/vap-generate/expected.yaml"), &out.stdout);
}

/// The generated pair, run by regard's own VAP engine, gives the template's verdicts.
#[test]
fn generated_policy_enforces_what_the_template_enforces() {
    let direct = regard(
        "gk/vap-generate",
        &[
            "gk",
            "test",
            "-f",
            "template.yaml",
            "-f",
            "constraints.yaml",
            "-f",
            "objects.yaml",
        ],
    );
    let via_vap = regard(
        "gk/vap-generate",
        &[
            "gk",
            "test",
            "-f",
            "expected.yaml",
            "-f",
            "constraints.yaml",
            "-f",
            "objects.yaml",
        ],
    );
    assert_eq!(direct.code, 1);
    assert_eq!(via_vap.code, 1, "{}", via_vap.stderr);
    assert_text(
        "apps/v1/Deployment shop/big (objects.yaml)\n  [deny] gatekeeper-max-ten: ValidatingAdmissionPolicy 'gatekeeper-k8smaxreplicas' with binding 'gatekeeper-max-ten' denied request: replicas 12 above 10\n  [warn] gatekeeper-warn-three: Validation failed for ValidatingAdmissionPolicy 'gatekeeper-k8smaxreplicas' with binding 'gatekeeper-warn-three': replicas 12 above 3\n\napps/v1/Deployment kube-system/system (objects.yaml)\n  [warn] gatekeeper-warn-three: Validation failed for ValidatingAdmissionPolicy 'gatekeeper-k8smaxreplicas' with binding 'gatekeeper-warn-three': replicas 12 above 3\n\n3 violations (1 deny, 2 warn, 0 dryrun) in 2 of 8 objects, 0 constraints\n",
        &via_vap.stdout,
    );
}

#[test]
fn templates_without_cel_and_bad_actions_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.yaml"),
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8sregoonly\nspec:\n  crd:\n    spec:\n      names:\n        kind: K8sRegoOnly\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package k8sregoonly\n        violation[{\"msg\": \"no\"}] { false }\n---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRegoOnly\nmetadata:\n  name: c\n",
    )
    .unwrap();
    let out = Run::in_dir(dir.path(), &["gk", "vap", "-f", "in.yaml"]).output();
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "regard: ConstraintTemplate k8sregoonly: no K8sNativeValidation code, no ValidatingAdmissionPolicy\nregard: K8sRegoOnly c: cannot generate ValidatingAdmissionPolicyBinding: conditions are not satisfied to generate ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding\n"
    );
}

/// The messages of `gk test -o json`, with the API server's VAP prefix taken off.
fn messages(out: &str) -> Vec<(String, String)> {
    let results: serde_json::Value = serde_json::from_str(out).unwrap_or_default();
    let mut found: Vec<(String, String)> = results
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let msg = r["msg"].as_str().unwrap_or_default();
            let msg = msg
                .split_once(" denied request: ")
                .or_else(|| msg.split_once("': "))
                .map_or(msg, |(_, m)| m);
            (
                msg.to_owned(),
                r["enforcementAction"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_library_cel_template_as_a_vap_gives_the_same_verdicts() {
    let root = std::env::var("REGARD_GATEKEEPER_LIBRARY").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/gatekeeper-library"
        )
        .to_owned()
    });
    let library = Path::new(&root).join("library");
    if !library.is_dir() {
        println!("notice: {} is absent; skipping", library.display());
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for template in walkdir(&library) {
        if !std::fs::read_to_string(&template)
            .unwrap()
            .contains("K8sNativeValidation")
        {
            continue;
        }
        let samples = template.parent().unwrap().join("samples");
        for sample in sorted_dirs(&samples) {
            let constraint = sample.join("constraint.yaml");
            let (t, c) = (template.to_str().unwrap(), constraint.to_str().unwrap());
            let vap = Run::in_dir(work.path(), &["gk", "vap", "-f", t, "-f", c]).output();
            assert_eq!(vap.code, 0, "{}: {}", sample.display(), vap.stderr);
            let vap_file = work.path().join("vap.yaml");
            std::fs::write(&vap_file, &vap.stdout).unwrap();
            let v = vap_file.to_str().unwrap();
            for example in sorted_files(&sample, "example_") {
                let e = example.to_str().unwrap();
                let args = |first: &str| {
                    Run::in_dir(
                        work.path(),
                        &["gk", "test", "-f", first, "-f", c, "-f", e, "-o", "json"],
                    )
                    .output()
                };
                let (direct, via_vap) = (args(t), args(v));
                assert_eq!(
                    messages(&direct.stdout),
                    messages(&via_vap.stdout),
                    "{e}\n{}\n{}",
                    direct.stderr,
                    via_vap.stderr
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 70, "only {compared} objects compared");
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for group in sorted_dirs(dir) {
        for policy in sorted_dirs(&group) {
            let t = policy.join("template.yaml");
            if t.is_file() {
                out.push(t);
            }
        }
    }
    out
}

fn sorted_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn sorted_files(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix) && !n.contains("inventory"))
        })
        .collect();
    v.sort();
    v
}
