//! `regard gk mutate`, and mutation before validation in `gk test`,
//! `gk expand` and `test --bundle`, on the fixtures in `tests/mutation/cli`.

use crate::util::{Run, regard};

const DIR: &str = "mutation/cli";

const MUTATED_POD_YAML: &str = "\
apiVersion: v1
kind: Pod
metadata:
  labels:
    owner: platform
  name: web
  namespace: prod
spec:
  containers:
  - image: mirror.example.com/nginx:1.27
    name: nginx
    securityContext:
      capabilities:
        drop:
        - NET_RAW
        - ALL
  securityContext:
    runAsNonRoot: true
";

#[test]
fn mutate_prints_yaml_documents() {
    let out = regard(
        DIR,
        &["gk", "mutate", "-f", "mutators.yaml", "-f", "objects.yaml"],
    );
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        format!(
            "{MUTATED_POD_YAML}---\napiVersion: v1\ndata:\n  mode: fast\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: dev\n"
        )
    );
    assert_eq!(out.code, 0);
}

#[test]
fn mutate_reads_stdin_and_prints_a_json_array() {
    let objects =
        std::fs::read_to_string(crate::util::fixtures().join(DIR).join("objects.yaml")).unwrap();
    let out = Run::new(
        DIR,
        &[
            "gk",
            "mutate",
            "-f",
            "mutators.yaml",
            "-f",
            "-",
            "-o",
            "json",
        ],
    )
    .stdin(objects)
    .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!([
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"labels": {"owner": "platform"}, "name": "web", "namespace": "prod"},
             "spec": {"containers": [{"image": "mirror.example.com/nginx:1.27", "name": "nginx",
                                      "securityContext": {"capabilities": {"drop": ["NET_RAW", "ALL"]}}}],
                      "securityContext": {"runAsNonRoot": true}}},
            {"apiVersion": "v1", "data": {"mode": "fast"}, "kind": "ConfigMap",
             "metadata": {"name": "settings", "namespace": "dev"}}
        ])
    );
}

#[test]
fn mutate_diff_shows_each_changed_object() {
    let out = regard(
        DIR,
        &[
            "gk",
            "mutate",
            "-f",
            "mutators.yaml",
            "-f",
            "objects.yaml",
            "--diff",
        ],
    );
    assert_eq!(
        out.stdout,
        "\
--- objects.yaml: Pod prod/web
+++ objects.yaml: Pod prod/web (mutated)
@@ -1,13 +1,18 @@
 apiVersion: v1
 kind: Pod
 metadata:
+  labels:
+    owner: platform
   name: web
   namespace: prod
 spec:
   containers:
-  - image: nginx:1.27
+  - image: mirror.example.com/nginx:1.27
     name: nginx
     securityContext:
       capabilities:
         drop:
         - NET_RAW
+        - ALL
+  securityContext:
+    runAsNonRoot: true
"
    );
    assert_eq!(out.code, 0);
}

#[test]
fn a_refused_mutator_is_reported_and_the_others_still_apply() {
    let out = regard(
        DIR,
        &[
            "gk",
            "mutate",
            "-f",
            "mutators.yaml",
            "-f",
            "bad.yaml",
            "-f",
            "objects.yaml",
        ],
    );
    assert_eq!(
        out.stderr,
        "regard: bad.yaml: Assign \"broken\": spec.location: invalid location \"spec.containers[name: *].\": trailing separators are forbidden\n"
    );
    assert!(out.stdout.starts_with(MUTATED_POD_YAML), "{}", out.stdout);
    assert_eq!(out.code, 1);
    let none = regard(DIR, &["gk", "mutate", "-f", "objects.yaml"]);
    assert_eq!(
        none.stderr,
        "Error: no mutators (Assign, AssignMetadata, ModifySet, AssignImage) among the inputs\n"
    );
    assert_eq!(none.code, 1);
}

#[test]
fn gk_test_validates_the_mutated_objects() {
    let mutated = regard(
        DIR,
        &[
            "gk",
            "test",
            "-f",
            "policy.yaml",
            "-f",
            "objects.yaml",
            "-f",
            "mutators.yaml",
        ],
    );
    assert_eq!(
        mutated.stdout,
        "0 violations (0 deny, 0 warn, 0 dryrun) in 0 of 8 objects, 1 constraint\n"
    );
    assert_eq!(mutated.code, 0);
    let as_given = regard(
        DIR,
        &[
            "gk",
            "test",
            "-f",
            "policy.yaml",
            "-f",
            "objects.yaml",
            "-f",
            "mutators.yaml",
            "--no-mutate",
        ],
    );
    assert_eq!(
        as_given.stdout,
        "v1/Pod prod/web (objects.yaml)\n  [deny] owner-required: Pod web has no owner label\n\n1 violation (1 deny, 0 warn, 0 dryrun) in 1 of 8 objects, 1 constraint\n"
    );
    assert_eq!(as_given.code, 1);
    let broken = regard(
        DIR,
        &[
            "gk",
            "test",
            "-f",
            "policy.yaml",
            "-f",
            "objects.yaml",
            "-f",
            "bad.yaml",
        ],
    );
    assert_eq!(
        broken.stderr,
        "Error: invalid mutators:\n  bad.yaml: Assign \"broken\": spec.location: invalid location \"spec.containers[name: *].\": trailing separators are forbidden\n"
    );
    assert_eq!(broken.code, 1);
}

#[test]
fn gk_test_mutates_expansion_resultants_as_generated() {
    let args = [
        "gk",
        "test",
        "-f",
        "policy.yaml",
        "-f",
        "../../gk/expansion/expansion.yaml",
        "-f",
        "deployment.yaml",
        "-f",
        "mutators.yaml",
    ];
    let mutated = regard(DIR, &args);
    assert_eq!(
        mutated.stdout,
        "0 violations (0 deny, 0 warn, 0 dryrun) in 0 of 8 objects, 1 constraint\n"
    );
    let mut plain_args = args.to_vec();
    plain_args.push("--no-mutate");
    let plain = regard(DIR, &plain_args);
    assert_eq!(
        plain.stdout,
        "apps/v1/Deployment prod/api (deployment.yaml)\n  [warn] owner-required: [Implied by expand-deployments] Pod api-pod has no owner label\n\n1 violation (0 deny, 1 warn, 0 dryrun) in 1 of 8 objects, 1 constraint\n"
    );
}

#[test]
fn gk_expand_mutates_the_base_and_the_resultants() {
    let out = regard(
        DIR,
        &[
            "gk",
            "expand",
            "-f",
            "../../gk/expansion/expansion.yaml",
            "-f",
            "deployment.yaml",
            "-f",
            "mutators.yaml",
        ],
    );
    assert_eq!(out.stderr, "");
    assert_eq!(
        out.stdout,
        "\
apiVersion: v1
kind: Pod
metadata:
  labels:
    app: api
    owner: platform
  name: api-pod
  namespace: prod
  ownerReferences:
  - apiVersion: apps/v1
    kind: Deployment
    name: api
spec:
  containers:
  - image: mirror.example.com/example/api:2.0
    name: app
    securityContext:
      capabilities:
        drop:
        - ALL
  securityContext:
    runAsNonRoot: true
"
    );
    let plain = regard(
        DIR,
        &[
            "gk",
            "expand",
            "-f",
            "../../gk/expansion/expansion.yaml",
            "-f",
            "deployment.yaml",
            "-f",
            "mutators.yaml",
            "--no-mutate",
        ],
    );
    assert_eq!(
        plain.stdout,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    app: api\n  name: api-pod\n  namespace: prod\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: api\nspec:\n  containers:\n  - image: ghcr.io/example/api:2.0\n    name: app\n"
    );
}

#[test]
fn test_bundle_applies_restricted_defaults_first() {
    let sample = "../../../policies/pss/restricted/run-as-non-root/samples/non-root-unset/pod.yaml";
    let plain = regard(DIR, &["test", "--bundle", "restricted", sample]);
    assert_eq!(plain.code, 1);
    assert!(
        plain
            .stdout
            .ends_with("18 tests, 14 passed, 0 warnings, 4 failures, 0 exceptions\n"),
        "{}",
        plain.stdout
    );
    let defaults = regard(
        DIR,
        &["test", "--bundle", "restricted,restricted-defaults", sample],
    );
    assert_eq!(
        defaults.stdout,
        "\n18 tests, 18 passed, 0 warnings, 0 failures, 0 exceptions\n"
    );
    assert_eq!(defaults.code, 0);
    let off = regard(
        DIR,
        &[
            "test",
            "--bundle",
            "restricted,restricted-defaults",
            "--no-mutate",
            sample,
        ],
    );
    assert_eq!(off.stdout, plain.stdout);
    // Mutators among the inputs count too.
    let inputs = regard(
        DIR,
        &["test", "--bundle", "restricted", sample, "mutators.yaml"],
    );
    assert!(
        inputs.stdout.contains(" - seccomp-restricted - "),
        "{}",
        inputs.stdout
    );
    assert!(
        !inputs.stdout.contains(" - run-as-non-root - "),
        "{}",
        inputs.stdout
    );
}
