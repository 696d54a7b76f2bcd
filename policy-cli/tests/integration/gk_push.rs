//! `regard gk push`: Gatekeeper bundles published to a real registry on
//! loopback (see `registry.rs`) in the layout `oras push REF FILE...` gives
//! gator, read back with `gk test -i`; what is refused before anything is
//! uploaded; and `regard push` pointing Gatekeeper YAML at `gk push`.

use std::path::Path;

use crate::registry::{Registry, sha256};
use crate::util::{Run, assert_text, fixtures};

const FILE_MT: &str = "application/vnd.oci.image.layer.v1.tar";

fn gk(dir: &Path, args: &[&str]) -> crate::util::Output {
    Run::in_dir(dir, args).output()
}

/// The human report of `gk test -i` names each object's file inside the
/// temporary pull directory; keep the path inside the bundle.
fn without_pull_dir(text: &str) -> String {
    let re = regex::Regex::new(r"\(/[^)]*?/content/").expect("regex");
    re.replace_all(text, "(").into_owned()
}

#[test]
fn gk_push_writes_file_layers_that_gk_test_reads() {
    let reg = Registry::start(None);
    let dir = fixtures().join("gk");
    let image = format!("{}/gk/basic:v1", reg.addr);
    let out = gk(&dir, &["gk", "push", &image, "-f", "basic"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));

    // One layer per file, titled by its path, oras' file media type, `{}` config.
    let layers: Vec<String> = ["constraints", "deployments", "objects", "template"]
        .iter()
        .map(|name| {
            let data = std::fs::read(dir.join(format!("basic/{name}.yaml"))).expect("fixture");
            format!(
                r#"{{"mediaType":"{FILE_MT}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.title":"basic/{name}.yaml"}}}}"#,
                sha256(&data),
                data.len()
            )
        })
        .collect();
    let expected = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.unknown.config.v1+json","digest":"{}","size":2}},"layers":[{}]}}"#,
        sha256(b"{}"),
        layers.join(",")
    );
    let manifest = reg.manifest("gk/basic", "v1");
    assert_text(&expected, &manifest);
    let digest = sha256(manifest.as_bytes());
    assert_text(
        &format!("pushing bundle to: {image}\npushed bundle with digest: {digest}\n"),
        &out.stdout,
    );

    // The same files give the same digest: a refreshing webhook sees no change.
    let again = gk(&dir, &["gk", "push", &image, "-f", "basic/"]);
    assert_eq!(again.stdout, out.stdout);

    let from_image = gk(&dir, &["gk", "test", "-i", &image]);
    assert_eq!(from_image.code, 1, "{}", from_image.stderr);
    assert_text(
        r#"apps/v1/Deployment prod/api (basic/deployments.yaml)
  [dryrun] prod-needs-tier: Deployment api is missing labels: {"tier"}

apps/v1/Deployment staging/worker (basic/deployments.yaml)
  [deny] must-have-owner: Deployment worker is missing labels: {"owner"}
  [dryrun] prod-needs-tier: unable to match constraints: error matching the requested object: worker :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace

v1/Pod prod/db (basic/objects.yaml)
  [deny] must-have-owner: Pod db is missing labels: {"owner"}
  [warn] should-have-team: Pod db is missing labels: {"team"}

v1/Pod kube-system/proxy (basic/objects.yaml)
  [warn] should-have-team: Pod proxy is missing labels: {"team"}

6 violations (2 deny, 2 warn, 2 dryrun) in 4 of 10 objects, 3 constraints
"#,
        &without_pull_dir(&from_image.stdout),
    );
    let json_image = gk(&dir, &["gk", "test", "-i", &image, "-o", "json"]);
    let json_files = gk(&dir, &["gk", "test", "-f", "basic", "-o", "json"]);
    assert_text(&json_files.stdout, &json_image.stdout);
}

#[test]
fn gk_push_checks_before_uploading() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().expect("dir");
    let write = |rel: &str, text: &[u8]| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    let image = format!("{}/gk/checked:v1", reg.addr);
    let not_pushed = |what: &str| {
        let (status, _, _) = reg.request("GET", "/v2/gk/checked/manifests/v1", &[], b"");
        assert_eq!(status, 404, "{what} was pushed");
    };

    write(
        "broken/template.yaml",
        &std::fs::read(fixtures().join("gk/bad/no-violation-rule.yaml")).expect("fixture"),
    );
    let out = gk(dir.path(), &["gk", "push", &image, "-f", "broken"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert_text(
        "Error: push bundle: broken/template.yaml: ConstraintTemplate \"k8snoviolation\": invalid rego: missing required rule: violation\n",
        &out.stderr,
    );
    not_pushed("a template that does not compile");

    write(
        "notes/values.yaml",
        b"kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n---\nreplicas: 3\n",
    );
    let out = gk(dir.path(), &["gk", "push", &image, "-f", "notes"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert_text(
        "Error: push bundle: notes/values.yaml: document 2 is not a Kubernetes object (no apiVersion or kind); gator's --image refuses such files\n",
        &out.stderr,
    );
    not_pushed("a file that is not Kubernetes objects");

    write("empty/README.md", b"# nothing here\n");
    let out = gk(dir.path(), &["gk", "push", &image, "-f", "empty"]);
    assert_eq!(out.code, 1);
    assert_text(
        "Error: push bundle: nothing to push: no .yaml, .yml or .json files under empty\n",
        &out.stderr,
    );
    not_pushed("an empty directory");

    write(
        "objects/cm.yaml",
        b"kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n",
    );
    let out = gk(
        dir.path(),
        &["gk", "push", "no-repository", "-f", "objects"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "Error: push bundle: no-repository: invalid source: destination url missing repository\n",
        &out.stderr,
    );

    // A constraint whose template ships in another image is pushed, with a warning.
    write(
        "constraints/orphan.yaml",
        &std::fs::read(fixtures().join("gk/bad/orphan-constraint.yaml")).expect("fixture"),
    );
    let out = gk(dir.path(), &["gk", "push", &image, "-f", "constraints"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_text(
        "warning: constraints/orphan.yaml: K8sNoSuchTemplate \"orphan\": no ConstraintTemplate of kind \"K8sNoSuchTemplate\" among the files; pushed unchecked\n",
        &out.stderr,
    );
    let manifest = reg.manifest("gk/checked", "v1");
    assert!(
        manifest.contains(r#""org.opencontainers.image.title":"constraints/orphan.yaml""#),
        "{manifest}"
    );
}

#[test]
fn conftest_push_of_gatekeeper_yaml_points_at_gk_push() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("policy")).expect("mkdir");
    std::fs::write(dir.path().join("policy/main.rego"), "package main\n").expect("write");
    std::fs::copy(
        fixtures().join("gk/basic/constraints.yaml"),
        dir.path().join("policy/constraints.yaml"),
    )
    .expect("copy");
    // Refused before any connection: no registry needed.
    let out = gk(dir.path(), &["push", "127.0.0.1:9/team/gk:v1"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert_text(
        "Error: push bundle: loading policies: policy/constraints.yaml: data: a data file must contain an object\nhint: policy/constraints.yaml holds Gatekeeper resources, which `regard push` reads as conftest data; publish a Gatekeeper bundle with `regard gk push 127.0.0.1:9/team/gk:v1 -f PATH`\n",
        &out.stderr,
    );
}
