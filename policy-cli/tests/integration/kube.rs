//! `--kube-version`: schema validation and deprecated-API checks on real files
//! under `tests/kube`.

use crate::util::{assert_text, read, regard};

/// `regard test FILE --kube-version V -p policy` plus `extra`, in tests/kube.
fn kube(file: &str, version: &str, extra: &[&str]) -> crate::util::Output {
    let mut args = vec![
        "test",
        file,
        "--kube-version",
        version,
        "-p",
        "policy",
        "--no-color",
    ];
    args.extend_from_slice(extra);
    regard("kube", &args)
}

#[test]
fn each_class_of_schema_error_names_file_line_column_object_and_path() {
    let cases = [
        (
            "schema/unknown-field.yaml",
            "FAIL - schema/unknown-field.yaml - schema - schema/unknown-field.yaml:10:7: Service/web: spec.ports[0].targetPortt: unknown field",
        ),
        (
            "schema/wrong-type.yaml",
            "FAIL - schema/wrong-type.yaml - schema - schema/wrong-type.yaml:6:3: Deployment/web: spec.replicas: expected integer, got string \"3\"",
        ),
        (
            "schema/missing-required.yaml",
            "FAIL - schema/missing-required.yaml - schema - schema/missing-required.yaml:7:7: Pod/web: spec.containers[0].name: required field is missing",
        ),
        (
            "schema/bad-enum.yaml",
            "FAIL - schema/bad-enum.yaml - schema - schema/bad-enum.yaml:18:11: Deployment/prod/web: spec.template.spec.containers[0].imagePullPolicy: \"always\" is not one of Always, IfNotPresent, Never",
        ),
    ];
    for (file, line) in cases {
        let out = kube(file, "1.37", &[]);
        assert_eq!(out.code, 1, "{file}: {}", out.stderr);
        assert_text(
            &format!("{line}\n\n3 tests, 2 passed, 0 warnings, 1 failure, 0 exceptions\n"),
            &out.stdout,
        );
    }
}

#[test]
fn positions_inside_a_json_array_of_objects() {
    let out = kube("schema/valid.json", "1.37", &[]);
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - schema/valid.json - schema - schema/valid.json:3:81: ConfigMap/b: data.k: expected string, got number 1\n\n6 tests, 5 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn no_schema_and_none_turn_checks_off() {
    let out = kube("schema/wrong-type.yaml", "1.37", &["--no-schema"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_text(
        "\n2 tests, 2 passed, 0 warnings, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
    let out = kube("schema/wrong-type.yaml", "none", &[]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
    let out = kube(
        "removed/1.22-ingress.yaml",
        "1.22",
        &["--no-deprecations", "--no-schema"],
    );
    assert_eq!(out.code, 0);
}

#[test]
fn a_version_without_schemas_is_an_error_unless_only_deprecations_run() {
    let out = kube("schema/wrong-type.yaml", "1.28", &[]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error: no embedded schemas for Kubernetes 1.28 (embedded: 1.32, 1.33, 1.34, 1.35, 1.36, 1.37); use --no-schema to check deprecated APIs only\n"
    );
    let out = kube("schema/wrong-type.yaml", "1.x", &[]);
    assert_eq!(
        out.stderr,
        "Error: invalid Kubernetes version \"1.x\": expected MAJOR.MINOR, e.g. 1.33\n"
    );
}

/// Every removal fixture is named `1.N-...`: deprecated (a warning) at 1.N-1,
/// removed (a failure) at 1.N.
#[test]
fn removed_apis_at_their_boundary_versions() {
    let dir = crate::util::fixtures().join("kube/removed");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("removed fixtures")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names.len(), 10);
    for name in names {
        let minor: u32 = name
            .strip_prefix("1.")
            .and_then(|rest| rest.split('-').next())
            .and_then(|m| m.parse().ok())
            .expect("1.N- prefix");
        let file = format!("removed/{name}");
        let doc = read(&format!("kube/{file}"));
        let api = doc
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("apiVersion: "))
            .expect("apiVersion");
        let kind = doc
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("kind: "))
            .expect("kind");
        let before = kube(&file, &format!("1.{}", minor - 1), &["--no-schema"]);
        assert_eq!(before.code, 0, "{file}");
        let warn = format!("WARN - {file} - deprecated-api - {file}:1:1: ");
        let first = before.stdout.lines().next().unwrap_or_default();
        assert!(first.starts_with(&warn), "{first}");
        assert!(
            first.contains(&format!("{api} {kind} is deprecated since Kubernetes ")),
            "{first}"
        );
        assert!(
            first.contains(&format!(
                " and removed in 1.{minor} (target 1.{}); ",
                minor - 1
            )),
            "{first}"
        );
        let at = kube(&file, &format!("1.{minor}"), &["--no-schema"]);
        assert_eq!(at.code, 1, "{file}");
        let first = at.stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("FAIL - {file} - deprecated-api - {file}:1:1: ")),
            "{first}"
        );
        assert!(
            first.contains(&format!(
                "{api} {kind} is no longer served since Kubernetes 1.{minor} (target 1.{minor}); "
            )),
            "{first}"
        );
    }
}

#[test]
fn removed_api_exact_report() {
    let out = kube("removed/1.22-ingress.yaml", "1.37", &[]);
    assert_eq!(out.code, 1);
    assert_text(
        "SKIP - removed/1.22-ingress.yaml - schema - removed/1.22-ingress.yaml:2:1: Ingress/web: no schema for networking.k8s.io/v1beta1 Ingress in Kubernetes 1.37 (the API is no longer served)\n\
FAIL - removed/1.22-ingress.yaml - deprecated-api - removed/1.22-ingress.yaml:1:1: Ingress/web: networking.k8s.io/v1beta1 Ingress is no longer served since Kubernetes 1.22 (target 1.37); use networking.k8s.io/v1\n\
\n3 tests, 1 passed, 0 warnings, 1 failure, 0 exceptions, 1 skipped\n",
        &out.stdout,
    );
}

#[test]
fn custom_resources_are_validated_against_their_crd() {
    let expected = "FAIL - crd/widgets.yaml - schema - crd/widgets.yaml:14:3: Widget/bad: spec.size: 0 is less than the minimum of 1\n\
FAIL - crd/widgets.yaml - schema - crd/widgets.yaml:15:3: Widget/bad: spec.colour: \"blue\" is not one of red, green\n\
FAIL - crd/widgets.yaml - schema - crd/widgets.yaml:16:3: Widget/bad: spec.shape: unknown field\n";
    // From --crd-dir ...
    let out = kube(
        "crd/widgets.yaml",
        "1.37",
        &["--crd-dir", "crd/crds", "--no-deprecations"],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_text(
        &format!("{expected}\n6 tests, 3 passed, 0 warnings, 3 failures, 0 exceptions\n"),
        &out.stdout,
    );
    // ... or among the inputs.
    let out = regard(
        "kube",
        &[
            "test",
            "crd/crds/widget-crd.yaml",
            "crd/widgets.yaml",
            "--kube-version",
            "1.35",
            "-p",
            "policy",
            "--no-deprecations",
        ],
    );
    assert_eq!(out.code, 1);
    assert_text(
        &format!("{expected}\n8 tests, 5 passed, 0 warnings, 3 failures, 0 exceptions\n"),
        &out.stdout,
    );
}

#[test]
fn unknown_kinds_are_skipped_once_or_fail_each() {
    let out = kube("unknown/mixed.yaml", "1.37", &["--no-deprecations"]);
    assert_eq!(out.code, 0);
    assert_text(
        "SKIP - unknown/mixed.yaml - schema - unknown/mixed.yaml:2:1: Gadget/one: no schema for example.com/v1 Gadget in Kubernetes 1.37 (not a built-in kind, and no CRD among the inputs or under --crd-dir)\n\
\n5 tests, 4 passed, 0 warnings, 0 failures, 0 exceptions, 1 skipped\n",
        &out.stdout,
    );
    let out = kube(
        "unknown/mixed.yaml",
        "1.37",
        &["--no-deprecations", "--schema-unknown", "fail"],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains(
            "FAIL - unknown/mixed.yaml - schema - unknown/mixed.yaml:7:1: Gadget/two: no schema"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .ends_with("\n6 tests, 4 passed, 0 warnings, 2 failures, 0 exceptions\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn every_output_format_reports_schema_and_deprecated_api() {
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
        let out = regard(
            "kube/formats",
            &[
                "test",
                "app.yaml",
                "--kube-version",
                "1.36",
                "--no-color",
                "-o",
                format,
            ],
        );
        assert_eq!(out.code, 1, "{format}: {}", out.stderr);
        assert_text(
            &read(&format!("kube/formats/expected/{format}.txt")),
            &out.stdout,
        );
    }
}

#[test]
fn kube_version_from_regard_toml_and_default_with_builtin_bundles() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        crate::util::fixtures().join("kube/schema/wrong-type.yaml"),
        dir.path().join("app.yaml"),
    )
    .expect("copy");
    // No policy: the built-in bundles run, and with them the checks at the newest version.
    let out = crate::util::Run::in_dir(dir.path(), &["test", "app.yaml", "--no-color"]).output();
    assert!(out.stderr.contains("regard: checking Kubernetes schemas and deprecated APIs for 1.37 (--kube-version none turns this off)\n"), "{}", out.stderr);
    assert!(out.stdout.contains("FAIL - app.yaml - schema - app.yaml:6:3: Deployment/web: spec.replicas: expected integer, got string \"3\"\n"), "{}", out.stdout);
    std::fs::write(
        dir.path().join("regard.toml"),
        "kube_version = \"1.32\"\nno-deprecations = true\n",
    )
    .expect("write");
    let out = crate::util::Run::in_dir(dir.path(), &["test", "app.yaml", "--no-color"]).output();
    assert!(
        !out.stderr.contains("checking Kubernetes"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("- schema - app.yaml:6:3:"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("deprecated-api"), "{}", out.stdout);
    let out = crate::util::Run::in_dir(dir.path(), &["test", "app.yaml", "--kube-version", "none"])
        .output();
    assert!(!out.stdout.contains("- schema -"), "{}", out.stdout);
}

#[test]
fn gk_test_reports_the_checks_after_the_violations() {
    let out = regard(
        "kube",
        &[
            "gk",
            "test",
            "-f",
            "schema/bad-enum.yaml",
            "-f",
            "removed/1.25-cronjob.yaml",
            "--kube-version",
            "1.37",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let expected = [
        "0 violations (0 deny, 0 warn, 0 dryrun) in 0 of 2 objects, 0 constraints",
        "",
        "Kubernetes 1.37 checks:",
        "  [deny] schema: schema/bad-enum.yaml:18:11: Deployment/prod/web: spec.template.spec.containers[0].imagePullPolicy: \"always\" is not one of Always, IfNotPresent, Never",
        "  [skip] schema: removed/1.25-cronjob.yaml:2:1: CronJob/nightly: no schema for batch/v1beta1 CronJob in Kubernetes 1.37 (the API is no longer served)",
        "  [deny] deprecated-api: removed/1.25-cronjob.yaml:1:1: CronJob/nightly: batch/v1beta1 CronJob is no longer served since Kubernetes 1.25 (target 1.37); use batch/v1",
        "1 passed, 2 failures, 0 warnings, 1 skipped",
        "",
    ];
    assert_text(&expected.join("\n"), &out.stdout);
    let out = regard(
        "kube",
        &[
            "gk",
            "test",
            "-f",
            "removed/1.25-cronjob.yaml",
            "--kube-version",
            "1.24",
            "--no-schema",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_text(
        "[\n    {\n        \"enforcementAction\": \"warn\",\n        \"file\": \"removed/1.25-cronjob.yaml\",\n        \"line\": 1,\n        \"metadata\": {\n            \"column\": 1,\n            \"document\": 0,\n            \"object\": \"CronJob/nightly\"\n        },\n        \"msg\": \"removed/1.25-cronjob.yaml:1:1: CronJob/nightly: batch/v1beta1 CronJob is deprecated since Kubernetes 1.21 and removed in 1.25 (target 1.24); use batch/v1\",\n        \"target\": \"deprecated-api\"\n    }\n]\n",
        &out.stdout,
    );
}

/// The library's `deprecated-apis` template with a `kubernetesVersion` parameter.
#[test]
fn deprecated_apis_template_follows_its_kubernetes_version_parameter() {
    let out = regard(
        "kube",
        &[
            "gk",
            "test",
            "-f",
            "template/",
            "-f",
            "../../policies/best-practices/deprecated-apis/template.yaml",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = [
        "extensions/v1beta1/Ingress shop/web (template/objects.yaml)",
        "  [warn] deprecated-apis-1-21: Ingress/web in namespace shop: extensions/v1beta1 Ingress is deprecated since Kubernetes 1.14 and removed in 1.22 (target 1.21); use networking.k8s.io/v1",
        "",
        "apps/v1beta1/Deployment old (template/objects.yaml)",
        "  [warn] deprecated-apis-1-21: Deployment/old: apps/v1beta1 Deployment is no longer served since Kubernetes 1.16 (target 1.21); use apps/v1",
        "",
        "batch/v1beta1/CronJob nightly (template/objects.yaml)",
        "  [warn] deprecated-apis-1-21: CronJob/nightly: batch/v1beta1 CronJob is deprecated since Kubernetes 1.21 and removed in 1.25 (target 1.21); use batch/v1",
        "",
        "3 violations (0 deny, 3 warn, 0 dryrun) in 3 of 6 objects, 1 constraint",
        "",
    ];
    assert_text(&expected.join("\n"), &out.stdout);
}

/// Closed sets of values the API server enforces, on several kinds and on list items;
/// an empty value, which the API server defaults, is accepted.
#[test]
fn enum_values_of_fields_across_kinds_and_list_items() {
    let out = kube("schema/bad-enums-many.yaml", "1.37", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let expected = [
        "FAIL - schema/bad-enums-many.yaml - schema - schema/bad-enums-many.yaml:8:5: Pod/prod/api: spec.os.name: \"Linux\" is not one of linux, windows",
        "FAIL - schema/bad-enums-many.yaml - schema - schema/bad-enums-many.yaml:11:7: Pod/prod/api: spec.tolerations[0].operator: \"Equals\" is not one of Equal, Exists",
        "FAIL - schema/bad-enums-many.yaml - schema - schema/bad-enums-many.yaml:15:7: Pod/prod/api: spec.securityContext.seccompProfile.type: \"runtime/default\" is not one of Localhost, RuntimeDefault, Unconfined",
        "FAIL - schema/bad-enums-many.yaml - schema - schema/bad-enums-many.yaml:22:11: Pod/prod/api: spec.containers[0].ports[0].protocol: \"tcp\" is not one of SCTP, TCP, UDP",
        "FAIL - schema/bad-enums-many.yaml - schema - schema/bad-enums-many.yaml:30:32: PersistentVolumeClaim/prod/data: spec.accessModes[1]: \"ReadWriteOnly\" is not one of ReadOnlyMany, ReadWriteMany, ReadWriteOnce, ReadWriteOncePod",
        "",
        "9 tests, 4 passed, 0 warnings, 5 failures, 0 exceptions",
        "",
    ];
    assert_text(&expected.join("\n"), &out.stdout);
}

/// A `kind: List` is checked item by item, each item named and located in the file.
#[test]
fn list_items_are_checked_one_by_one() {
    let out = kube("schema/list.yaml", "1.37", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let expected = [
        "FAIL - schema/list.yaml - schema - schema/list.yaml:9:7: ConfigMap/a: data.k: expected string, got number 1",
        "SKIP - schema/list.yaml - schema - schema/list.yaml:11:5: Ingress/old: no schema for extensions/v1beta1 Ingress in Kubernetes 1.37 (the API is no longer served)",
        "FAIL - schema/list.yaml - deprecated-api - schema/list.yaml:10:5: Ingress/old: extensions/v1beta1 Ingress is no longer served since Kubernetes 1.22 (target 1.37); use networking.k8s.io/v1",
        "",
        "5 tests, 2 passed, 0 warnings, 2 failures, 0 exceptions, 1 skipped",
        "",
    ];
    assert_text(&expected.join("\n"), &out.stdout);
}

/// Under `gk test`, templates and constraints are Gatekeeper's to check (compile,
/// parameters against the template's schema): the Kubernetes checks leave them out
/// instead of calling them kinds without a schema.
#[test]
fn gk_test_leaves_gatekeeper_kinds_to_gatekeeper() {
    let out = regard(
        "kube",
        &[
            "gk",
            "test",
            "-f",
            "template/",
            "-f",
            "../../policies/best-practices/deprecated-apis/template.yaml",
            "--kube-version",
            "1.37",
            "--no-deprecations",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.ends_with(
            "Kubernetes 1.37 checks:\n  [skip] schema: template/objects.yaml:2:1: Ingress/shop/web: no schema for extensions/v1beta1 Ingress in Kubernetes 1.37 (the API is no longer served)\n  [skip] schema: template/objects.yaml:8:1: Deployment/old: no schema for apps/v1beta1 Deployment in Kubernetes 1.37 (the API is no longer served)\n  [skip] schema: template/objects.yaml:13:1: CronJob/nightly: no schema for batch/v1beta1 CronJob in Kubernetes 1.37 (the API is no longer served)\n1 passed, 0 failures, 0 warnings, 3 skipped\n"
        ),
        "{}",
        out.stdout
    );
}
