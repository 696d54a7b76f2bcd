//! `regard pull`, `regard push` and `test --update` end to end against a
//! real registry on loopback (see `registry.rs`), a local HTTPS server and a
//! local git repository.

use std::path::Path;

use crate::registry::{Registry, list_files, tar_gz};
use crate::util::{Run, assert_text, fixtures};

/// A layer to push: media type, annotations (JSON), bytes.
type Layer<'a> = (&'a str, &'a str, Vec<u8>);

const POLICY_MT: &str = "application/vnd.cncf.openpolicyagent.policy.layer.v1+rego";
const DATA_MT: &str = "application/vnd.cncf.openpolicyagent.data.layer.v1+json";

/// A working directory holding a copy of `tests/distribution`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("workdir");
    for rel in ["policy/deny.rego", "policy/owner.yaml", "input/pod.yaml"] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(fixtures().join("distribution").join(rel), &to).expect("copy fixture");
    }
    dir
}

fn run(dir: &Path, args: &[&str]) -> crate::util::Output {
    Run::in_dir(dir, args).output()
}

fn push(reg: &Registry, dir: &Path, tag: &str) -> String {
    let target = format!("{}/team/policies:{tag}", reg.addr);
    let out = run(dir, &["push", &target]);
    assert_eq!(out.code, 0, "push: {}", out.stderr);
    let digest = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("pushed bundle with digest: "))
        .expect("digest line")
        .to_owned();
    assert_text(
        &format!("pushing bundle to: {target}\npushed bundle with digest: {digest}\n"),
        &out.stdout,
    );
    digest
}

const DENY_REGO: &str = "package main\n\ndeny contains msg if {\n\tinput.kind == \"Pod\"\n\tnot input.metadata.labels.team\n\tmsg := sprintf(\"pod %s has no team label (required by %s)\", [input.metadata.name, data.owner])\n}\n";

#[test]
fn push_writes_conftests_layout() {
    let reg = Registry::start(None);
    let dir = workdir();
    let digest = push(&reg, dir.path(), "v1");
    let manifest = reg.manifest("team/policies", "v1");
    assert_eq!(crate::registry::sha256(manifest.as_bytes()), digest);
    let expected = format!(
        concat!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.unknown.config.v1+json","digest":"{}","size":2}},"layers":["#,
            r#"{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.title":"policy/deny.rego"}}}},"#,
            r#"{{"mediaType":"{}","digest":"{}","size":16,"annotations":{{"org.opencontainers.image.title":"policy/owner.yaml"}}}}]}}"#
        ),
        crate::registry::sha256(b"{}"),
        POLICY_MT,
        crate::registry::sha256(DENY_REGO.as_bytes()),
        DENY_REGO.len(),
        DATA_MT,
        crate::registry::sha256(b"owner: platform\n"),
    );
    assert_text(&expected, &manifest);
}

#[test]
fn push_then_pull_by_tag_and_digest_then_test() {
    let reg = Registry::start(None);
    let src = workdir();
    let digest = push(&reg, src.path(), "v1");

    let dst = tempfile::tempdir().expect("dst");
    std::fs::create_dir(dst.path().join("input")).expect("mkdir");
    std::fs::copy(
        src.path().join("input/pod.yaml"),
        dst.path().join("input/pod.yaml"),
    )
    .expect("copy input");
    // `localhost` is read as 127.0.0.1, as conftest does.
    let by_tag = format!(
        "oci://{}/team/policies:v1",
        reg.addr.replace("127.0.0.1", "localhost")
    );
    let out = run(dst.path(), &["pull", &by_tag]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "", "")
    );
    // Titles are the pushed paths, under the destination (conftest's layout).
    assert_eq!(
        list_files(&dst.path().join("policy")),
        ["policy/deny.rego", "policy/owner.yaml"]
    );
    assert_eq!(
        std::fs::read_to_string(dst.path().join("policy/policy/deny.rego")).expect("read"),
        DENY_REGO
    );
    let out = run(
        dst.path(),
        &[
            "test",
            "-d",
            "policy/policy/owner.yaml",
            "input/pod.yaml",
            "--no-color",
        ],
    );
    assert_text(
        "FAIL - input/pod.yaml - main - pod web has no team label (required by platform)\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );

    let by_digest = format!("{}/team/policies@{digest}", reg.addr);
    let out = run(dst.path(), &["pull", "-p", "pinned", &by_digest]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        list_files(&dst.path().join("pinned")),
        ["policy/deny.rego", "policy/owner.yaml"]
    );
}

#[test]
fn missing_tag_and_digest_name_the_source() {
    let reg = Registry::start(None);
    let dir = workdir();
    push(&reg, dir.path(), "v1");
    let missing = format!("{}/team/policies:v9", reg.addr);
    let out = run(dir.path(), &["pull", "-p", "out", &missing]);
    assert_eq!(out.code, 1);
    assert_text(
        &format!("Error: download policies: {missing}: not found: manifest unknown\n"),
        &out.stderr,
    );
    assert!(!dir.path().join("out").exists());
    let repo = format!("oci://{}/nobody/here", reg.addr);
    let out = run(dir.path(), &["pull", "-p", "out", &repo]);
    assert_text(
        &format!("Error: download policies: {repo}: not found: manifest unknown\n"),
        &out.stderr,
    );
}

#[test]
fn htpasswd_registry_needs_docker_config_credentials() {
    let reg = Registry::start(Some(("alice", "s3cret")));
    let dir = workdir();
    let target = format!("{}/team/policies:v1", reg.addr);

    let out = run(dir.path(), &["push", &target]);
    assert_eq!(out.code, 1);
    assert_text(&format!("pushing bundle to: {target}\n"), &out.stdout);
    assert!(
        out.stderr.starts_with(&format!(
            "Error: push bundle: {target}: authentication failed"
        )),
        "{}",
        out.stderr
    );

    let good = reg.docker_config("alice", "s3cret");
    let out = Run::in_dir(dir.path(), &["push", &target])
        .env("DOCKER_CONFIG", good.to_str().expect("utf-8"))
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);

    let bad = reg.docker_config("alice", "wrong");
    let out = Run::in_dir(dir.path(), &["pull", "-p", "out", &target])
        .env("DOCKER_CONFIG", bad.to_str().expect("utf-8"))
        .output();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "Error: download policies: {target}: authentication failed"
        )),
        "{}",
        out.stderr
    );
    let out = Run::in_dir(dir.path(), &["pull", "-p", "out", &target])
        .env("DOCKER_CONFIG", good.to_str().expect("utf-8"))
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        list_files(&dir.path().join("out")),
        ["policy/deny.rego", "policy/owner.yaml"]
    );
}

#[test]
fn corrupted_layer_is_a_digest_mismatch_and_writes_nothing() {
    let reg = Registry::start(None);
    let dir = workdir();
    push(&reg, dir.path(), "v1");
    let layer = crate::registry::sha256(DENY_REGO.as_bytes());
    let blob = reg.blob_path(&layer);
    let tampered = DENY_REGO.replace("Pod", "Job");
    std::fs::write(&blob, &tampered).expect("tamper with the blob");
    std::fs::create_dir(dir.path().join("out")).expect("mkdir");
    std::fs::write(dir.path().join("out/keep.rego"), "package keep\n").expect("write");
    let src = format!("{}/team/policies:v1", reg.addr);
    let out = run(dir.path(), &["pull", "-p", "out", &src]);
    assert_eq!(out.code, 1);
    assert_text(
        &format!(
            "Error: download policies: {src}: digest mismatch for layer \"policy/deny.rego\": expected {layer}, got {}\n",
            crate::registry::sha256(tampered.as_bytes())
        ),
        &out.stderr,
    );
    assert_eq!(list_files(&dir.path().join("out")), ["keep.rego"]);
    assert_no_staging_left(dir.path());
}

fn assert_no_staging_left(dir: &Path) {
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".regard-pull-"))
        .collect();
    assert!(left.is_empty(), "staging directories left: {left:?}");
}

#[test]
fn hostile_titles_and_archives_are_refused() {
    let reg = Registry::start(None);
    let dir = tempfile::tempdir().expect("dir");
    let cases: Vec<(&str, Vec<Layer<'_>>, String)> = vec![
        (
            "dotdot",
            vec![(
                POLICY_MT,
                r#"{"org.opencontainers.image.title":"../escape.rego"}"#,
                b"package x".to_vec(),
            )],
            "refusing entry \"../escape.rego\": the path leaves the destination".to_owned(),
        ),
        (
            "absolute",
            vec![(
                POLICY_MT,
                r#"{"org.opencontainers.image.title":"/tmp/abs.rego"}"#,
                b"package x".to_vec(),
            )],
            "refusing entry \"/tmp/abs.rego\": absolute paths are not extracted".to_owned(),
        ),
        (
            "tarslip",
            vec![(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                r#"{"org.opencontainers.image.title":"lib","io.deis.oras.content.unpack":"true"}"#,
                tar_gz(&[("lib/../../escape.rego", b"package x")]),
            )],
            "refusing entry \"lib/../../escape.rego\": the path leaves the destination".to_owned(),
        ),
        (
            "duplicate",
            vec![
                (
                    POLICY_MT,
                    r#"{"org.opencontainers.image.title":"a.rego"}"#,
                    b"package a".to_vec(),
                ),
                (
                    POLICY_MT,
                    r#"{"org.opencontainers.image.title":"a.rego"}"#,
                    b"package b".to_vec(),
                ),
            ],
            "refusing entry \"a.rego\": two entries have this name".to_owned(),
        ),
    ];
    for (tag, layers, message) in cases {
        reg.push_artifact(
            "evil/bundle",
            tag,
            "application/vnd.unknown.config.v1+json",
            &layers,
        );
        let src = format!("{}/evil/bundle:{tag}", reg.addr);
        let out = run(dir.path(), &["pull", "-p", "out", &src]);
        assert_eq!(out.code, 1, "{tag}");
        assert_text(
            &format!("Error: download policies: {src}: {message}\n"),
            &out.stderr,
        );
        assert!(
            !dir.path().join("out").exists(),
            "{tag}: destination created"
        );
        assert_no_staging_left(dir.path());
    }
    assert!(!Path::new("/tmp/abs.rego").exists());
}

#[test]
fn size_cap_refuses_large_bundles() {
    let reg = Registry::start(None);
    let dir = workdir();
    push(&reg, dir.path(), "v1");
    let src = format!("{}/team/policies:v1", reg.addr);
    let out = run(
        dir.path(),
        &["pull", "-p", "out", "--max-bundle-bytes", "100", &src],
    );
    assert_eq!(out.code, 1);
    assert_text(
        &format!(
            "Error: download policies: {src}: bundle exceeds the size limit of 100 bytes (--max-bundle-bytes)\n"
        ),
        &out.stderr,
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn gator_directory_layers_are_unpacked() {
    let reg = Registry::start(None);
    let layer = tar_gz(&[
        ("constraints/", b""),
        ("constraints/labels.yaml", b"kind: K8sRequiredLabels\n"),
    ]);
    reg.push_artifact(
        "gk/bundle",
        "v1",
        "application/vnd.oci.image.config.v1+json",
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            r#"{"org.opencontainers.image.title":"constraints","io.deis.oras.content.unpack":"true"}"#,
            layer,
        )],
    );
    let dir = tempfile::tempdir().expect("dir");
    let out = run(
        dir.path(),
        &["pull", "-p", "out", &format!("{}/gk/bundle:v1", reg.addr)],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        list_files(&dir.path().join("out")),
        ["constraints/labels.yaml"]
    );
}

#[test]
fn unknown_scheme_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let out = run(dir.path(), &["pull", "s3::https://bucket/key"]);
    assert_eq!(out.code, 1);
    assert_text(
        "Error: download policies: s3::https://bucket/key: unsupported source scheme \"s3\" (supported: oci://, https://, http://, git::, file://, local paths)\n",
        &out.stderr,
    );
}

#[test]
fn test_update_pulls_then_tests_and_config_file_sources() {
    let reg = Registry::start(None);
    let src = workdir();
    push(&reg, src.path(), "v1");
    let src_ref = format!("{}/team/policies:v1", reg.addr);

    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("input")).expect("mkdir");
    std::fs::copy(
        src.path().join("input/pod.yaml"),
        dir.path().join("input/pod.yaml"),
    )
    .expect("copy");
    let expected = "FAIL - input/pod.yaml - main - pod web has no team label (required by platform)\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n";
    let out = run(
        dir.path(),
        &[
            "test",
            "--update",
            &src_ref,
            "-p",
            "shared",
            "-d",
            "shared/policy/owner.yaml",
            "input/pod.yaml",
            "--no-color",
        ],
    );
    assert_text(expected, &out.stdout);
    assert_eq!(out.code, 1);
    // A second run overwrites (conftest HEAD's behaviour).
    let out = run(
        dir.path(),
        &[
            "test",
            "-u",
            &src_ref,
            "-p",
            "shared",
            "-d",
            "shared/policy/owner.yaml",
            "input/pod.yaml",
            "--no-color",
        ],
    );
    assert_text(expected, &out.stdout);
    assert_eq!(
        list_files(&dir.path().join("shared")),
        ["policy/deny.rego", "policy/owner.yaml"]
    );

    // `update` in conftest.toml, as conftest reads any flag from its config.
    std::fs::write(
        dir.path().join("conftest.toml"),
        format!("policy = \"fromconfig\"\ndata = \"fromconfig/policy/owner.yaml\"\nupdate = [\"{src_ref}\"]\n"),
    )
    .expect("write config");
    let out = run(dir.path(), &["test", "input/pod.yaml", "--no-color"]);
    assert_text(expected, &out.stdout);
    assert_eq!(
        list_files(&dir.path().join("fromconfig")),
        ["policy/deny.rego", "policy/owner.yaml"]
    );
}

fn gk_fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("gk").join(rel)).expect("gk fixture")
}

#[test]
fn gk_test_and_verify_read_gator_images() {
    let reg = Registry::start(None);
    // gator's recommended build: `oras push` of directories (tar.gz layers
    // unpacked under their title) plus plain titled files.
    let library = tar_gz(&[
        ("library/", b""),
        ("library/template.yaml", &gk_fixture("basic/template.yaml")),
        (
            "library/constraints.yaml",
            &gk_fixture("basic/constraints.yaml"),
        ),
    ]);
    reg.push_artifact(
        "gk/basic",
        "v1",
        "application/vnd.oci.image.config.v1+json",
        &[
            (
                "application/vnd.oci.image.layer.v1.tar+gzip",
                r#"{"org.opencontainers.image.title":"library","io.deis.oras.content.unpack":"true"}"#,
                library,
            ),
            (
                "application/vnd.oci.image.layer.v1.tar",
                r#"{"org.opencontainers.image.title":"objects.yaml"}"#,
                gk_fixture("basic/objects.yaml"),
            ),
            (
                "application/vnd.oci.image.layer.v1.tar",
                r#"{"org.opencontainers.image.title":"deployments.yaml"}"#,
                gk_fixture("basic/deployments.yaml"),
            ),
        ],
    );
    let from_files = Run::in_dir(
        &fixtures().join("gk"),
        &["gk", "test", "-f", "basic", "-o", "json"],
    )
    .output();
    let image = format!("{}/gk/basic:v1", reg.addr);
    let from_image = Run::in_dir(
        &fixtures().join("gk"),
        &["gk", "test", "-i", &image, "-o", "json"],
    )
    .output();
    assert_eq!(from_image.code, 1, "{}", from_image.stderr);
    assert_text(&from_files.stdout, &from_image.stdout);

    // The suites refer to ../../basic and ../../bad: ship those directories too.
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for sub in ["basic", "bad", "suites/pass"] {
        for rel in list_files(&fixtures().join("gk").join(sub)) {
            entries.push((
                format!("gk/{sub}/{rel}"),
                gk_fixture(&format!("{sub}/{rel}")),
            ));
        }
    }
    let entries: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    reg.push_artifact(
        "gk/suites",
        "v1",
        "application/vnd.oci.image.config.v1+json",
        &[(
            "application/vnd.oci.image.layer.v1.tar+gzip",
            r#"{"org.opencontainers.image.title":"gk","io.deis.oras.content.unpack":"true"}"#,
            tar_gz(&entries),
        )],
    );
    let out = Run::in_dir(
        &fixtures().join("gk"),
        &["gk", "verify", "-i", &format!("{}/gk/suites:v1", reg.addr)],
    )
    .output();
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.ends_with("PASS\n"), "{}", out.stdout);
    let out = Run::in_dir(
        &fixtures().join("gk"),
        &["gk", "verify", "-i", &format!("{}/gk/none:v1", reg.addr)],
    )
    .output();
    assert_text(
        &format!(
            "Error: pulling image {0}/gk/none:v1: oci://{0}/gk/none:v1: not found: manifest unknown\n",
            reg.addr
        ),
        &out.stderr,
    );
}
