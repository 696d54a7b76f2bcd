//! `regard gk test | verify | expand` on the fixtures in `tests/gk`, and the
//! gatekeeper-library conformance run.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/gk");
const LIBRARY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/gatekeeper-library"
);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn regard_in(dir: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regard"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run regard");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn regard(args: &[&str]) -> Run {
    regard_in(FIXTURES, args, None)
}

/// Replaces Go-style durations (`(1.5ms)`, `\t2.3s`) with `DUR`.
fn mask_durations(s: &str) -> String {
    let re = regex::Regex::new(r"(\(|\t)[0-9.]+(ns|µs|ms|s|m[0-9.]+s)(\)|\n)").unwrap();
    re.replace_all(s, "${1}DUR${3}").into_owned()
}

#[test]
fn gk_test_reports_violations_grouped_by_object() {
    let r = regard(&["gk", "test", "-f", "basic"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
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
"#
    );
    assert_eq!(r.code, 1, "a deny violation fails the run");
}

#[test]
fn gk_test_warn_and_dryrun_only_exit_zero() {
    let r = regard(&[
        "gk",
        "test",
        "-f",
        "basic/template.yaml",
        "-f",
        "basic/constraints.yaml",
        "-f",
        "basic/objects.yaml",
    ]);
    assert!(
        r.stdout.contains("[deny] must-have-owner: Pod db"),
        "{}",
        r.stdout
    );
    assert_eq!(r.code, 1);
    let warn_only = regard(&["gk", "test", "-f", "expansion"]);
    assert_eq!(warn_only.code, 0, "{}", warn_only.stdout);
}

#[test]
fn gk_test_deny_only() {
    let r = regard(&["gk", "test", "-f", "basic", "--deny-only"]);
    assert_eq!(
        r.stdout,
        r#"apps/v1/Deployment staging/worker (basic/deployments.yaml)
  [deny] must-have-owner: Deployment worker is missing labels: {"owner"}

v1/Pod prod/db (basic/objects.yaml)
  [deny] must-have-owner: Pod db is missing labels: {"owner"}

2 violations (2 deny, 0 warn, 0 dryrun) in 2 of 10 objects, 3 constraints
"#
    );
    assert_eq!(r.code, 1);
}

#[test]
fn gk_test_json_matches_gator_shape() {
    let r = regard(&["gk", "test", "-f", "basic", "-o", "json"]);
    assert_eq!(r.code, 1);
    let results: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows: Vec<(String, String, String, String)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["enforcementAction"].as_str().unwrap().to_owned(),
                x["constraint"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                x["violatingObject"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                x["msg"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |a: &str, c: &str, o: &str, m: &str| {
        (a.to_owned(), c.to_owned(), o.to_owned(), m.to_owned())
    };
    // gator's order: enforcement action, then message.
    assert_eq!(
        rows,
        vec![
            row(
                "deny",
                "must-have-owner",
                "worker",
                r#"Deployment worker is missing labels: {"owner"}"#
            ),
            row(
                "deny",
                "must-have-owner",
                "db",
                r#"Pod db is missing labels: {"owner"}"#
            ),
            row(
                "scoped",
                "prod-needs-tier",
                "api",
                r#"Deployment api is missing labels: {"tier"}"#
            ),
            row(
                "scoped",
                "prod-needs-tier",
                "worker",
                "unable to match constraints: error matching the requested object: worker :failed to run Match criteria: namespace selector for namespace-scoped object but missing Namespace"
            ),
            row(
                "warn",
                "should-have-team",
                "db",
                r#"Pod db is missing labels: {"team"}"#
            ),
            row(
                "warn",
                "should-have-team",
                "proxy",
                r#"Pod proxy is missing labels: {"team"}"#
            ),
        ]
    );
    let first = &results[0];
    assert_eq!(first["target"], "admission.k8s.gatekeeper.sh");
    assert_eq!(
        first["metadata"]["details"],
        serde_json::json!({"missing": ["owner"]})
    );
    assert_eq!(first["trace"], serde_json::Value::Null);
    assert_eq!(results[2]["scopedActions"], serde_json::json!(["dryrun"]));
    assert!(first.get("scopedActions").is_none());
    // Field order and four-space indentation as gator prints them.
    assert!(r.stdout.starts_with(
        "[\n    {\n        \"target\": \"admission.k8s.gatekeeper.sh\",\n        \"msg\": "
    ));
    let keys: Vec<&str> = [
        "\"target\"",
        "\"msg\"",
        "\"metadata\"",
        "\"constraint\"",
        "\"enforcementAction\"",
        "\"violatingObject\"",
        "\"trace\"",
    ]
    .to_vec();
    let first_block = r.stdout.split("\n    },\n").next().unwrap();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            first_block
                .find(&format!("\n        {k}"))
                .unwrap_or_else(|| panic!("{k} missing"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[test]
fn gk_test_json_escapes_like_go() {
    let r = regard(&["gk", "test", "-f", "compat", "-o", "json"]);
    assert!(
        r.stdout
            .contains(r#""msg": "api has 3 replicas, allowed: %!v(MISSING)""#),
        "{}",
        r.stdout
    );
    let html = regard(&["gk", "test", "-f", "expansion", "-o", "json"]);
    assert!(!html.stdout.contains('<'));
}

#[test]
fn gk_test_yaml_output() {
    let r = regard(&["gk", "test", "-f", "expansion", "-o", "yaml"]);
    assert_eq!(
        r.stdout,
        r#"- constraint:
    apiVersion: constraints.gatekeeper.sh/v1beta1
    kind: K8sDisallowLatest
    metadata:
      name: no-latest
    spec:
      match:
        kinds:
        - apiGroups:
          - ""
          kinds:
          - Pod
  enforcementAction: warn
  metadata:
    details: {}
  msg: "[Implied by expand-deployments] container nginx uses the latest tag"
  target: admission.k8s.gatekeeper.sh
  trace: null
  violatingObject:
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
      namespace: shop
    spec:
      replicas: 2
      template:
        metadata:
          labels:
            app: web
        spec:
          containers:
          - image: nginx:latest
            name: nginx
"#
    );
    assert_eq!(
        r.code, 0,
        "the expansion template turns the violation into a warning"
    );
}

#[test]
fn gk_test_regorus_opa_differences_are_handled() {
    // One template per known regorus/OPA difference (see the comments in
    // tests/gk/compat/*.yaml): `not f(undefined)` (and `not x.y == true`,
    // which OPA does not bind first), a line starting with `(`,
    // multi-body v0 rules, sprintf argument mismatches, re_match/any/all.
    let r = regard(&["gk", "test", "-f", "compat"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        r#"v1/Pod default/mixed (compat/objects.yaml)
  [deny] builtins: container app pulls from docker.io
  [deny] builtins: every container runs as root
  [deny] builtins: some container is privileged
  [deny] host-namespaces: hostNetwork is not allowed
  [deny] host-namespaces: hostPID is not allowed
  [deny] registries-set: image docker.io/library/nginx:1.27 is not from an allowed registry
  [deny] writable-root: container app may write to its root filesystem

autoscaling/v2/HorizontalPodAutoscaler default/web (compat/objects.yaml)
  [deny] spread: replica spread 8 is above 3

apps/v1/Deployment default/api (compat/objects.yaml)
  [deny] sprintf: api has 3 replicas, allowed: %!v(MISSING)
  [deny] sprintf: kind Deployment%!(EXTRA string=extra)

10 violations (10 deny, 0 warn, 0 dryrun) in 3 of 16 objects, 7 constraints
"#
    );
    assert_eq!(r.code, 1);
}

#[test]
fn gk_test_applies_expansion() {
    let r = regard(&["gk", "test", "-f", "expansion"]);
    assert_eq!(
        r.stdout,
        "apps/v1/Deployment shop/web (expansion/deployment.yaml)\n  [warn] no-latest: [Implied by expand-deployments] container nginx uses the latest tag\n\n1 violation (0 deny, 1 warn, 0 dryrun) in 1 of 4 objects, 1 constraint\n"
    );
}

#[test]
fn gk_test_reads_stdin() {
    let pod =
        std::fs::read_to_string(Path::new(FIXTURES).join("suites/pass/pod-bad.yaml")).unwrap();
    let r = regard_in(
        FIXTURES,
        &[
            "gk",
            "test",
            "-f",
            "basic/template.yaml",
            "-f",
            "suites/pass/constraint.yaml",
            "-f",
            "-",
        ],
        Some(&pod),
    );
    assert_eq!(
        r.stdout,
        "v1/Pod bad (-)\n  [deny] must-have-owner: Pod bad is missing labels: {\"owner\"}\n\n1 violation (1 deny, 0 warn, 0 dryrun) in 1 of 3 objects, 1 constraint\n"
    );
    assert_eq!(r.code, 1);
}

#[test]
fn gk_test_eval_error_becomes_a_violation() {
    let r = regard(&["gk", "test", "-f", "bad/eval-error.yaml"]);
    assert_eq!(
        r.stdout,
        "v1/ConfigMap default/cm (bad/eval-error.yaml)\n  [warn] conflict: k8sconflict/template.rego:4: eval_conflict_error: complete rules must not produce multiple outputs\n\n1 violation (0 deny, 1 warn, 0 dryrun) in 1 of 3 objects, 1 constraint\n"
    );
    assert_eq!(
        r.code, 0,
        "the constraint's action (warn) applies to the error"
    );
}

#[test]
fn gk_test_bad_inputs_are_clear_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["-f", "bad/reads-data.yaml"],
            "Error: bad/reads-data.yaml: ConstraintTemplate \"k8sreadsdata\": invalid rego: disallowed ref data.secrets: templates may only read data.inventory and data.lib\n",
        ),
        (
            &["-f", "bad/referenced-above.yaml"],
            "Error: bad/referenced-above.yaml: ConstraintTemplate \"k8sreferencedabove\": invalid rego: k8sreferencedabove/template.rego:5: rego_compile_error: var name referenced above\n",
        ),
        (
            &["-f", "bad/no-violation-rule.yaml"],
            "Error: bad/no-violation-rule.yaml: ConstraintTemplate \"k8snoviolation\": invalid rego: missing required rule: violation\n",
        ),
        (
            &["-f", "bad/orphan-constraint.yaml"],
            "Error: bad/orphan-constraint.yaml: K8sNoSuchTemplate \"orphan\": missing ConstraintTemplate: no template defines kind \"K8sNoSuchTemplate\"\n",
        ),
        (
            &["-f", "basic/template.yaml", "-f", "bad/bad-parameters.yaml"],
            "Error: bad/bad-parameters.yaml: K8sRequiredLabels \"labels-as-numbers\": schema validation failed: spec.parameters/labels/0: 1 is not of type \"string\"\n",
        ),
        (
            &["-f", "bad/missing.yaml"],
            "Error: bad/missing.yaml: no such file or directory\n",
        ),
    ];
    for (args, stderr) in cases {
        let mut full = vec!["gk", "test"];
        full.extend_from_slice(args);
        let r = regard(&full);
        assert_eq!(r.stderr, *stderr, "{args:?}");
        assert_eq!(r.stdout, "");
        assert_eq!(r.code, 1, "{args:?}");
    }
    let syntax = regard(&["gk", "test", "-f", "bad/syntax-error.yaml"]);
    assert!(
        syntax.stderr.starts_with(
            "Error: bad/syntax-error.yaml: ConstraintTemplate \"k8sbroken\": invalid rego: "
        ),
        "{}",
        syntax.stderr
    );
    assert!(
        syntax.stderr.contains("k8sbroken/template.rego:4:23"),
        "{}",
        syntax.stderr
    );
    assert_eq!(syntax.code, 1);
}

#[test]
fn gk_expand_prints_resultants() {
    let r = regard(&[
        "gk",
        "expand",
        "-f",
        "expansion/expansion.yaml",
        "-f",
        "expansion/deployment.yaml",
    ]);
    assert_eq!(
        r.stdout,
        r#"apiVersion: v1
kind: Pod
metadata:
  labels:
    app: web
  name: web-pod
  namespace: shop
  ownerReferences:
  - apiVersion: apps/v1
    kind: Deployment
    name: web
spec:
  containers:
  - image: nginx:latest
    name: nginx
"#
    );
    assert_eq!(r.code, 0);
    let json = regard(&["gk", "expand", "-f", "expansion", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[0]["metadata"]["name"], "web-pod");
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[test]
fn gk_verify_reports_like_go_test() {
    let r = regard(&["gk", "verify", "suites"]);
    assert_eq!(
        mask_durations(&r.stdout),
        r#"--- FAIL: missing-template	(DUR)
  suites/broken/does-not-exist.yaml: no such file or directory
    --- FAIL: no-such-object	(DUR)
        suites/broken/nope.yaml: no such file or directory
--- FAIL: missing-object	(DUR)
FAIL	suites/broken/suite.yaml	DUR
    --- FAIL: expects-none	(DUR)
        unexpected number of violations: got 1 violations but want none: got messages [Pod bad is missing labels: {"owner"}]
    --- FAIL: expects-two	(DUR)
        unexpected number of violations: got 1 violations containing "owner" but want exactly 2: got messages [Pod bad is missing labels: {"owner"}]
--- FAIL: owner-label	(DUR)
--- FAIL: valid-constraint-marked-invalid	(DUR)
  constraint should have failed schema validation: got error <nil> but want schema validation failed
FAIL	suites/fail/suite.yaml	DUR
ok	suites/pass/suite.yaml	DUR
FAIL
"#
    );
    assert_eq!(r.code, 1);
}

#[test]
fn gk_verify_verbose_with_filter() {
    let r = regard(&["gk", "verify", "-v", "suites/pass", "--run", "unlabelled"]);
    assert_eq!(
        mask_durations(&r.stdout),
        "=== RUN   owner-label\n    === SKIP  labelled-pod\n    === RUN   unlabelled-pod\n    --- PASS: unlabelled-pod\t(DUR)\n    === SKIP  update-removing-label\n--- PASS: owner-label\t(DUR)\n=== SKIP  bad-parameters\n=== SKIP  template-does-not-compile\nok\tsuites/pass/suite.yaml\tDUR\nPASS\n"
    );
    assert_eq!(r.code, 0);
    let all = regard(&["gk", "verify", "-v", "suites/pass/suite.yaml"]);
    assert_eq!(all.code, 0, "{}", all.stdout);
    assert_eq!(
        all.stdout.matches("    --- PASS").count(),
        3,
        "{}",
        all.stdout
    );
    // Both `invalid: true` tests pass: bad parameters, and a template that does not compile.
    let passed_tests: Vec<&str> = all
        .stdout
        .lines()
        .filter(|l| l.starts_with("--- PASS: "))
        .collect();
    assert_eq!(passed_tests.len(), 3, "{}", all.stdout);
    assert!(
        passed_tests[2].starts_with("--- PASS: template-does-not-compile\t"),
        "{}",
        all.stdout
    );
    let bad_filter = regard(&["gk", "verify", "suites/pass", "--run", "a//b//c"]);
    assert_eq!(
        bad_filter.stderr,
        "Error: invalid test filter: a filter may include at most one \"//\"\n"
    );
    assert_eq!(bad_filter.code, 1);
}

#[test]
fn gk_verify_gatekeeper_library_conformance() {
    // REGARD_GATEKEEPER_LIBRARY points elsewhere (a worktree outside the checkout layout).
    let root = std::env::var("REGARD_GATEKEEPER_LIBRARY").unwrap_or_else(|_| LIBRARY.to_owned());
    let library = Path::new(&root).join("library");
    if !library.is_dir() {
        println!(
            "notice: {} is absent; skipping the gatekeeper-library conformance run",
            library.display()
        );
        return;
    }
    let lib = library.to_str().unwrap();
    // CEL runs the 16 templates that carry K8sNativeValidation code by
    // default; `=false` runs their Rego.
    for (evaluator, cel) in [
        ("interpreter", "true"),
        ("rvm", "true"),
        ("interpreter", "false"),
    ] {
        let cel_flag = format!("--enable-k8s-native-validation={cel}");
        let r = regard(&[
            "gk",
            "verify",
            "-v",
            lib,
            "--evaluator",
            evaluator,
            &cel_flag,
        ]);
        let suites = r.stdout.lines().filter(|l| l.starts_with("ok\t")).count();
        let failed_suites = r.stdout.lines().filter(|l| l.starts_with("FAIL\t")).count();
        let cases = r
            .stdout
            .lines()
            .filter(|l| l.starts_with("    --- PASS: "))
            .count();
        let failed: Vec<&str> = r
            .stdout
            .lines()
            .filter(|l| l.contains("--- FAIL"))
            .collect();
        assert_eq!(
            failed,
            Vec::<&str>::new(),
            "{evaluator} {cel_flag}: {}",
            r.stdout
        );
        assert_eq!(
            (suites, failed_suites),
            (49, 0),
            "{evaluator}: suites passed/failed"
        );
        assert_eq!(cases, 270, "{evaluator}: cases passed");
        assert_eq!(r.stdout.lines().last(), Some("PASS"));
        assert_eq!(r.code, 0);
    }
}

/// One result of `gk test -o json`: (constraint kind, constraint name,
/// reviewed object, message, action), counted.
pub(crate) fn result_counts(json: &str) -> std::collections::BTreeMap<[String; 5], usize> {
    let results: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for r in &results {
        let key = [
            r["constraint"]["kind"].to_string(),
            r["constraint"]["metadata"]["name"].to_string(),
            r["violatingObject"].to_string(),
            r["msg"].as_str().unwrap().to_owned(),
            r["enforcementAction"].to_string(),
        ];
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Every gatekeeper-library constraint against every library sample object,
/// on both evaluators: identical violations, messages and errors, including
/// the library's conflict errors (the RVM program detects them and the
/// interpreter reports them). With CEL off this compares the two Rego
/// evaluators on every template; with CEL on (the default), the 16 templates
/// that carry CEL compare the lowered expressions with the cel crate's
/// interpreter.
#[test]
fn gk_test_rvm_matches_the_interpreter_on_the_library() {
    let root = std::env::var("REGARD_GATEKEEPER_LIBRARY").unwrap_or_else(|_| LIBRARY.to_owned());
    let library = Path::new(&root).join("library");
    if !library.is_dir() {
        println!("notice: {} is absent; skipping", library.display());
        return;
    }
    let lib = library.to_str().unwrap();
    // The templates with conflicting Rego all carry CEL, which runs instead.
    for (cel, conflict_errors) in [("false", 5), ("true", 0)] {
        let cel_flag = format!("--enable-k8s-native-validation={cel}");
        let results = |evaluator: &str| {
            let r = regard(&[
                "gk",
                "test",
                "-f",
                lib,
                "-o",
                "json",
                "--evaluator",
                evaluator,
                &cel_flag,
            ]);
            assert_eq!(r.code, 1, "{evaluator} {cel_flag}: {}", r.stderr);
            result_counts(&r.stdout)
        };
        let (interpreted, compiled) = (results("interpreter"), results("rvm"));
        let total = interpreted.values().sum::<usize>();
        assert!(total > 4000, "{cel_flag}: {total} results");
        let conflicts = |counts: &std::collections::BTreeMap<[String; 5], usize>| {
            counts
                .iter()
                .filter(|(k, _)| k[3].contains(": eval_conflict_error: "))
                .map(|(_, n)| n)
                .sum::<usize>()
        };
        assert_eq!(conflicts(&interpreted), conflict_errors, "{cel_flag}");
        let only_interpreted: Vec<_> = interpreted
            .iter()
            .filter(|(k, n)| compiled.get(*k) != Some(*n))
            .collect();
        let only_compiled: Vec<_> = compiled
            .iter()
            .filter(|(k, n)| interpreted.get(*k) != Some(*n))
            .collect();
        assert_eq!(
            (only_interpreted, only_compiled),
            (Vec::new(), Vec::new()),
            "{cel_flag}: results differ between the evaluators"
        );
    }
}

/// A complete rule, two definitions, a function, an object rule and an
/// object comprehension that each take two values for one ConfigMap: the
/// same conflict errors on both evaluators, and the same values where there
/// is one.
#[test]
fn gk_test_conflicts_are_errors_on_both_evaluators() {
    let expected = "v1/ConfigMap default/one-value (conflicts/conflicts.yaml)\n  [deny] complete: value x\n  [deny] comprehension: lengths 1\n  [deny] definitions: which a\n  [deny] function: first x\n  [deny] objectrule: key a\n\nv1/ConfigMap default/conflicting (conflicts/conflicts.yaml)\n  [deny] complete: k8sconflictcomplete/template.rego:2: eval_conflict_error: complete rules must not produce multiple outputs\n  [deny] comprehension: k8sconflictcomprehension/template.rego:3: eval_conflict_error: object keys must be unique\n  [deny] definitions: k8sconflictdefinitions/template.rego:3: eval_conflict_error: complete rules must not produce multiple outputs\n  [deny] function: k8sconflictfunction/template.rego:2: eval_conflict_error: functions must not produce multiple outputs for same inputs\n  [deny] objectrule: k8sconflictobjectrule/template.rego:2: eval_conflict_error: object keys must be unique\n\n10 violations (10 deny, 0 warn, 0 dryrun) in 2 of 12 objects, 5 constraints\n";
    for evaluator in [None, Some("rvm"), Some("interpreter")] {
        let mut args = vec!["gk", "test", "-f", "conflicts/conflicts.yaml"];
        if let Some(e) = evaluator {
            args.extend(["--evaluator", e]);
        }
        let r = regard(&args);
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (1, expected, ""),
            "{evaluator:?}"
        );
    }
}

const FORCE_OMIT_NOTE: &str = "ignoring absence of supported GVK manifest due to --force-omit-gvk-manifest flag; will assume all synced GVKs are supported by cluster\n";

#[test]
fn gk_sync_test_passes_when_config_and_syncsets_cover_the_requirements() {
    let r = regard(&[
        "gk",
        "sync",
        "test",
        "-f",
        "sync/templates.yaml",
        "-f",
        "sync/config.yaml",
        "-f",
        "sync/syncset.yaml",
        "--force-omit-gvk-manifest",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, FORCE_OMIT_NOTE, "")
    );
}

#[test]
fn gk_sync_test_reports_requirements_the_cluster_cannot_meet() {
    // The manifest does not serve policy/v1 PodDisruptionBudget, so the SyncSet cannot sync it.
    let r = regard(&[
        "gk",
        "sync",
        "test",
        "-f",
        "sync/templates.yaml",
        "-f",
        "sync/config.yaml",
        "-f",
        "sync/syncset.yaml",
        "-f",
        "sync/manifest",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "the following requirements were not met: \nk8srequirepdb:\n- policy/v1:PodDisruptionBudget\n\n"
    );

    // With no Config or SyncSet, every requirement is unmet: alternatives sorted, joined with OR.
    let r = regard(&["gk", "sync", "test", "-f", "sync/templates.yaml", "-o"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, FORCE_OMIT_NOTE);
    assert_eq!(
        r.stderr,
        "the following requirements were not met: \n\
         k8srequirepdb:\n- policy/v1:PodDisruptionBudget\n- apps/v1:Deployment\n\
         k8suniqueingress:\n- extensions/v1beta1:Ingress OR networking.k8s.io/v1:Ingress\n\n"
    );
}

#[test]
fn gk_sync_test_errors() {
    let r = regard(&[
        "gk",
        "sync",
        "test",
        "-f",
        "sync/templates.yaml",
        "-f",
        "sync/config.yaml",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: checking: no GVK manifest found; please provide a manifest enumerating the GVKs supported by the cluster\n"
    );

    let r = regard(&["gk", "sync", "test", "-f", "sync/bad/template.yaml", "-o"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "encountered errors parsing the following templates: \nk8stypo:\nunknown field `group`, expected one of `groups`, `versions`, `kinds` at line 1 column 10\n\n"
    );

    let r = regard(&[
        "gk",
        "sync",
        "test",
        "-f",
        "sync/config.yaml",
        "-f",
        "sync/bad/second-config.yaml",
        "-o",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: checking: sync/bad/second-config.yaml: Config \"another\": multiple configs found; Config is a singleton resource\n"
    );
}

/// The gatekeeper-library's referential templates with their own sync.yaml files.
#[test]
fn gk_sync_test_on_the_library_referential_templates() {
    if !Path::new(LIBRARY).exists() {
        eprintln!("skipping: {LIBRARY} not present");
        return;
    }
    let general = format!("{LIBRARY}/library/general");
    for name in [
        "poddisruptionbudget",
        "storageclass",
        "uniqueingresshost",
        "uniqueserviceselector",
    ] {
        let template = format!("{general}/{name}/template.yaml");
        let sync = format!("{general}/{name}/sync.yaml");
        let r = regard(&["gk", "sync", "test", "-f", &template, "-f", &sync, "-o"]);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{name}");
    }
    // Each template's requirements are not met by another template's sync.yaml.
    let r = regard(&[
        "gk",
        "sync",
        "test",
        "-f",
        &format!("{general}/poddisruptionbudget/template.yaml"),
        "-f",
        &format!("{general}/storageclass/sync.yaml"),
        "-o",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("the following requirements were not met: \nk8spoddisruptionbudget:\n"),
        "{}",
        r.stderr
    );
}

/// A CEL expression that cannot type-check refuses its template (or policy)
/// at load, naming the field and the position as cel-go does; in a suite the
/// other tests still run.
#[test]
fn gk_cel_type_errors_refuse_the_template() {
    let verify = regard(&["gk", "verify", "-v", "cel-check"]);
    assert_eq!(
        mask_durations(&verify.stdout),
        "=== RUN   type-error
--- FAIL: type-error\t(DUR)
  adding template: cel-check/template-bad.yaml: ConstraintTemplate \"k8scelcontainers\": invalid K8sNativeValidation code: validations[1].messageExpression: ERROR: <input>:1:16: found no matching overload for '_+_' applied to '(string, int)'
 | 'containers: ' + size(object.spec.containers)
 | ...............^
=== RUN   well-typed
    === RUN   two-containers
    --- PASS: two-containers\t(DUR)
--- PASS: well-typed\t(DUR)
FAIL\tcel-check/suite.yaml\tDUR
FAIL
"
    );
    assert_eq!(verify.code, 1);
    let cases: &[(&[&str], &str)] = &[
        (
            &["-f", "cel-check/template-bad.yaml", "-f", "cel-check/constraint-bad.yaml", "-f", "cel-check/pod.yaml"],
            "Error: cel-check/template-bad.yaml: ConstraintTemplate \"k8scelcontainers\": invalid K8sNativeValidation code: validations[1].messageExpression: ERROR: <input>:1:16: found no matching overload for '_+_' applied to '(string, int)'
 | 'containers: ' + size(object.spec.containers)
 | ...............^
",
        ),
        (
            &["-f", "cel-check/vap-type-error.yaml", "-f", "cel-check/pod.yaml"],
            "Error: cel-check/vap-type-error.yaml: ValidatingAdmissionPolicy \"needs-uid\": spec.validations[0].expression: compilation failed: ERROR: <input>:1:8: undefined field 'uid'
 | request.uid != ''
 | .......^
",
        ),
    ];
    for (args, stderr) in cases {
        let mut full = vec!["gk", "test"];
        full.extend_from_slice(args);
        let r = regard(&full);
        assert_eq!(r.stderr, *stderr, "{args:?}");
        assert_eq!(r.stdout, "");
        assert_eq!(r.code, 1, "{args:?}");
    }
    let good = regard(&[
        "gk",
        "test",
        "-f",
        "cel-check/template-good.yaml",
        "-f",
        "cel-check/constraint-good.yaml",
        "-f",
        "cel-check/pod.yaml",
    ]);
    assert_eq!(
        good.stdout,
        "v1/Pod default/two (cel-check/pod.yaml)\n  [deny] single-container: containers: 2\n\n1 violation (1 deny, 0 warn, 0 dryrun) in 1 of 3 objects, 1 constraint\n"
    );
}

/// A CEL-only template runs on the K8sNativeValidation engine; its results
/// carry the CEL messages and, as gator prints them, no metadata.
#[test]
fn gk_test_runs_cel_templates() {
    let r = regard(&["gk", "test", "-f", "cel"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "v1/Pod default/crowded (cel/objects.yaml)
  [warn] at-most-two: too many containers: a, b, c (max 2)
  [warn] at-most-two: failed expression: variables.containers.all(c, has(c.resources))

2 violations (0 deny, 2 warn, 0 dryrun) in 1 of 4 objects, 1 constraint
"
    );
    assert_eq!(r.code, 0);
    let json = regard(&["gk", "test", "-f", "cel", "-o", "json"]);
    let results: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    let shapes: Vec<(Vec<&str>, &str)> = results
        .iter()
        .map(|r| {
            (
                r.as_object().unwrap().keys().map(String::as_str).collect(),
                r["msg"].as_str().unwrap(),
            )
        })
        .collect();
    let keys = vec![
        "constraint",
        "enforcementAction",
        "msg",
        "target",
        "trace",
        "violatingObject",
    ];
    assert_eq!(
        shapes,
        [
            (
                keys.clone(),
                "failed expression: variables.containers.all(c, has(c.resources))"
            ),
            (keys, "too many containers: a, b, c (max 2)"),
        ]
    );
    let rego = regard(&[
        "gk",
        "test",
        "-f",
        "cel",
        "--enable-k8s-native-validation=false",
    ]);
    assert!(
        rego.stdout.contains("[warn] at-most-two: No language driver is installed that handles this constraint template"),
        "{}",
        rego.stdout
    );
}

/// A ValidatingAdmissionPolicy compiles in Kubernetes 1.34's environment,
/// with cel-go's list extensions, and runs under the API server's cost
/// limit: an expression of 2.7e10 steps is stopped with its error.
#[test]
fn gk_test_runs_admission_policies_with_list_extensions_and_a_cost_limit() {
    let r = regard(&["gk", "test", "-f", "vap-lists"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "v1/Pod default/repeats (vap-lists/objects.yaml)
  [deny] container-lists: ValidatingAdmissionPolicy 'container-lists' with binding 'container-lists' denied request: container names repeat: main-helper, web, web
  [deny] container-lists: ValidatingAdmissionPolicy 'container-lists' with binding 'container-lists' denied request: container ports repeat: 8080, 8080, 8443
  [deny] container-lists: ValidatingAdmissionPolicy 'container-lists' with binding 'container-lists' denied request: the first container is web, not main; by name: web > web > main-helper
  [deny] container-lists: ValidatingAdmissionPolicy 'container-lists' with binding 'container-lists' denied request: only the first container may be called main*

v1/Pod default/runaway (vap-lists/objects.yaml)
  [deny] runaway: ValidatingAdmissionPolicy 'runaway' with binding 'runaway' denied request: expression 'lists.range(3000).all(a, lists.range(3000).all(b, lists.range(3000).all(c, a + b + c >= 0)))' resulted in error: operation cancelled: actual cost limit exceeded

5 violations (5 deny, 0 warn, 0 dryrun) in 2 of 7 objects, 0 constraints
"
    );
    assert_eq!(r.code, 1);
}

/// ValidatingAdmissionPolicies and bindings among the inputs: params from a
/// ConfigMap, namespace and object selectors, exclusions, match conditions,
/// the three validation actions and a missing param with `Deny`.
#[test]
fn gk_test_runs_validating_admission_policies() {
    let r = regard(&["gk", "test", "-f", "vap"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "apps/v1/Deployment prod/big (vap/objects.yaml)
  [deny] replica-limit-prod: ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-prod' denied request: replicas 5 exceed 3

apps/v1/Deployment prod/unlabelled (vap/objects.yaml)
  [deny] replica-limit-prod: ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-prod' denied request: a team label is required

apps/v1/Deployment dev/big-in-dev (vap/objects.yaml)
  [warn] replica-limit-dev: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-dev': replicas 9 exceed 4
  [warn] replica-limit-dev: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-dev': a team label is required

v1/Pod dev/latest (vap/objects.yaml)
  [dryrun] no-latest-audit: ValidatingAdmissionPolicy 'no-latest' with binding 'no-latest-audit' denied request: failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))

apps/v1/Deployment staging/ns-missing-params (vap/objects.yaml)
  [deny] replica-limit-staging: ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-staging' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction

6 violations (3 deny, 2 warn, 1 dryrun) in 5 of 19 objects, 0 constraints

Audit annotations:
  v1/Pod dev/latest (vap/objects.yaml) no-latest/images: nginx:latest
  v1/Pod dev/latest (vap/objects.yaml) validation.policy.admission.k8s.io/validation_failure: [{\"message\":\"failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))\",\"policy\":\"no-latest\",\"binding\":\"no-latest-audit\",\"expressionIndex\":0,\"validationActions\":[\"Audit\"]}]
"
    );
    assert_eq!(r.code, 1);
}

/// `matchPolicy`: rules on `apps/v1 deployments` reach a Deployment written as `apps/v1beta2` or
/// `extensions/v1beta1` under `Equivalent` (the default) and only `apps/v1` under `Exact`; an
/// exclusion on `autoscaling/v2` also excludes an `autoscaling/v1` HorizontalPodAutoscaler; the
/// policies and bindings among the inputs are exempt from policies, as in the API server; a
/// message uses Kubernetes 1.34's list extensions (`sort`, `reverse`).
#[test]
fn gk_test_matches_validating_admission_policies_through_equivalent_resources() {
    let r = regard(&[
        "gk",
        "test",
        "-f",
        "vap-match-policy/policy",
        "-f",
        "vap-match-policy/objects.yaml",
    ]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "apps/v1/Deployment shop/app-current (vap-match-policy/objects.yaml)
  [deny] replicas-equivalent: ValidatingAdmissionPolicy 'replicas-equivalent' with binding 'replicas-equivalent' denied request: replicas 5 above 3
  [warn] replicas-exact: Validation failed for ValidatingAdmissionPolicy 'replicas-exact' with binding 'replicas-exact': replicas 5 above 3

apps/v1beta2/Deployment shop/app-older-version (vap-match-policy/objects.yaml)
  [deny] replicas-equivalent: ValidatingAdmissionPolicy 'replicas-equivalent' with binding 'replicas-equivalent' denied request: replicas 6 above 3

extensions/v1beta1/Deployment shop/app-moved-group (vap-match-policy/objects.yaml)
  [deny] replicas-equivalent: ValidatingAdmissionPolicy 'replicas-equivalent' with binding 'replicas-equivalent' denied request: replicas 7 above 3

v1/ConfigMap shop/settings (vap-match-policy/objects.yaml)
  [dryrun] named-objects: ValidatingAdmissionPolicy 'named-objects' with binding 'named-objects' denied request: names start with app-

v1/ConfigMap shop/app-config (vap-match-policy/objects.yaml)
  [deny] few-keys: ValidatingAdmissionPolicy 'few-keys' with binding 'few-keys' denied request: keys c, b, a are more than 2

6 violations (4 deny, 1 warn, 1 dryrun) in 5 of 14 objects, 0 constraints

Audit annotations:
  v1/ConfigMap shop/settings (vap-match-policy/objects.yaml) validation.policy.admission.k8s.io/validation_failure: [{\"message\":\"names start with app-\",\"policy\":\"named-objects\",\"binding\":\"named-objects\",\"expressionIndex\":0,\"validationActions\":[\"Audit\"]}]
"
    );
    assert_eq!(r.code, 1);
}

/// `regard test --bundle` with ValidatingAdmissionPolicies alone: conftest's lines per binding,
/// and the audit annotations as `AUDIT` lines of the result `audit.k8s.io`.
#[test]
fn test_bundle_runs_validating_admission_policies_with_audit_annotations() {
    let r = regard(&["test", "--bundle", "vap", "vap/objects.yaml"]);
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "WARN - vap/objects.yaml - replica-limit-dev - Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-dev': replicas 9 exceed 4
WARN - vap/objects.yaml - replica-limit-dev - Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-dev': a team label is required
FAIL - vap/objects.yaml - replica-limit-prod - ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-prod' denied request: replicas 5 exceed 3
FAIL - vap/objects.yaml - replica-limit-prod - ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-prod' denied request: a team label is required
FAIL - vap/objects.yaml - replica-limit-staging - ValidatingAdmissionPolicy 'replica-limit' with binding 'replica-limit-staging' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction
AUDIT - vap/objects.yaml - audit.k8s.io - v1/Pod dev/latest no-latest/images: nginx:latest
AUDIT - vap/objects.yaml - audit.k8s.io - v1/Pod dev/latest validation.policy.admission.k8s.io/validation_failure: [{\"message\":\"failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))\",\"policy\":\"no-latest\",\"binding\":\"no-latest-audit\",\"expressionIndex\":0,\"validationActions\":[\"Audit\"]}]

7 tests, 2 passed, 2 warnings, 3 failures, 0 exceptions
"
    );
    assert_eq!(r.code, 1);
    let json = regard(&["test", "--bundle", "vap", "vap/objects.yaml", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let last = list.as_array().and_then(|l| l.last()).unwrap();
    assert_eq!(
        last,
        &serde_json::json!({
            "filename": "vap/objects.yaml",
            "namespace": "audit.k8s.io",
            "successes": 0,
            "auditAnnotations": [
                {"object": "v1/Pod dev/latest", "key": "no-latest/images", "value": "nginx:latest"},
                {
                    "object": "v1/Pod dev/latest",
                    "key": "validation.policy.admission.k8s.io/validation_failure",
                    "value": r#"[{"message":"failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))","policy":"no-latest","binding":"no-latest-audit","expressionIndex":0,"validationActions":["Audit"]}]"#
                }
            ]
        })
    );
}

/// The policies' audit annotations in `-o json`: after gator's results, one entry per object.
#[test]
fn gk_test_json_lists_audit_annotations_after_the_results() {
    let r = regard(&["gk", "test", "-f", "vap", "-o", "json"]);
    assert_eq!(r.stderr, "");
    let list: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 7);
    assert!(
        list[..6]
            .iter()
            .all(|e| e["target"] == "admission.k8s.gatekeeper.sh")
    );
    assert_eq!(
        list[6],
        serde_json::json!({
            "target": "audit.k8s.io",
            "auditAnnotations": {
                "no-latest/images": "nginx:latest",
                "validation.policy.admission.k8s.io/validation_failure": r#"[{"message":"failed expression: object.spec.containers.all(c, !c.image.endsWith(':latest'))","policy":"no-latest","binding":"no-latest-audit","expressionIndex":0,"validationActions":["Audit"]}]"#
            },
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "latest", "namespace": "dev"},
                "spec": {"containers": [{"image": "nginx:latest", "name": "app"}]}
            },
            "file": "vap/objects.yaml"
        })
    );
}
