//! `regard verify`: Rego unit tests, coverage, reports.

use crate::util::{Run, assert_text, regard};

fn verify(args: &[&str]) -> crate::util::Output {
    let mut full = vec!["verify", "-d", "data", "--no-color"];
    full.extend_from_slice(args);
    regard("verify", &full)
}

/// Durations differ from run to run; tests compare the rest.
fn without_durations(text: &str) -> String {
    let re = regex::Regex::new(r"\([0-9.]+(ns|µs|ms|s)\)").expect("regex");
    re.replace_all(text, "(T)").into_owned()
}

#[test]
fn counts_failures_and_skips_like_conftest() {
    let out = verify(&[]);
    assert_eq!(out.code, 1);
    assert_text(
        "PRNT   policy/deployment_test.rego:9: checking the label rule\n\n\
         FAIL - policy/deployment_test.rego -  - data.main.test_label_missing_fails_on_purpose\n\
         \n5 tests, 3 passed, 0 warnings, 1 failure, 0 exceptions, 1 skipped\n",
        &out.stdout,
    );
}

#[test]
fn namespace_and_run_filters() {
    let out = verify(&["-n", "k8s.*"]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
    let out = verify(&["--run", "replicas$"]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
    let out = verify(&["--run", "("]);
    assert!(
        out.stderr.starts_with("Error: invalid --run pattern"),
        "{}",
        out.stderr
    );
}

#[test]
fn every_output_format() {
    let out = verify(&["-o", "json", "-n", "k8s.service"]);
    assert_text(
        "[\n\t{\n\t\t\"filename\": \"policy/other/service_test.rego\",\n\t\t\"namespace\": \"\",\n\t\t\"successes\": 1\n\t}\n]\n",
        &out.stdout,
    );
    let out = verify(&["-o", "tap"]);
    assert_text(
        "1..1\n# successes\nok 1 - policy/deployment_test.rego -  - SUCCESS\n\
         1..1\n# successes\nok 1 - policy/deployment_test.rego -  - SUCCESS\n\
         1..1\nnot ok 1 - policy/deployment_test.rego -  - data.main.test_label_missing_fails_on_purpose\n\
         1..1\n# skip\nok 1 - policy/deployment_test.rego -  - data.main.todo_test_statefulsets\n\
         1..1\n# successes\nok 1 - policy/other/service_test.rego -  - SUCCESS\n",
        &out.stdout,
    );
    let out = verify(&["-o", "table", "-n", "k8s.service"]);
    assert_text(
        "┌─────────┬────────────────────────────────┬───────────┬─────────┐\n\
         │ RESULT  │              FILE              │ NAMESPACE │ MESSAGE │\n\
         ├─────────┼────────────────────────────────┼───────────┼─────────┤\n\
         │ success │ policy/other/service_test.rego │           │ SUCCESS │\n\
         └─────────┴────────────────────────────────┴───────────┴─────────┘\n",
        &out.stdout,
    );
    let out = verify(&["-o", "github", "-n", "main", "--run", "fails"]);
    assert_text(
        "::group::Testing \"policy/deployment_test.rego\" against 1 policies in namespace \"\"\n\
         ::error file=policy/deployment_test.rego,line=1::data.main.test_label_missing_fails_on_purpose\n\
         ::notice file=policy/deployment_test.rego,line=1::Number of successful checks: 0\n\
         ::endgroup::\n\
         1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
    for format in ["junit", "azuredevops", "sarif"] {
        let out = verify(&["-o", format]);
        assert_eq!(out.code, 1, "{format}");
        assert!(
            out.stdout
                .contains("data.main.test_label_missing_fails_on_purpose"),
            "{format}: {}",
            out.stdout
        );
    }
}

#[test]
fn pretty_report_lists_every_test_with_durations() {
    let out = verify(&["--report", "full"]);
    assert_eq!(out.code, 1);
    assert_text(
        "FAILURES\n\
         --------------------------------------------------------------------------------\n\
         data.main.test_label_missing_fails_on_purpose: FAIL (T)\n\n\
         \x20 query:1                            Enter data.main.test_label_missing_fails_on_purpose = _\n\
         \x20 policy/deployment_test.rego:13     | Enter data.main.test_label_missing_fails_on_purpose\n\
         \x20 policy/deployment.rego:5           | | Enter data.main.deny\n\
         \x20 policy/deployment.rego:5           | | | Fail data.main.deny\n\
         \x20 policy/deployment.rego:11          | | Enter data.main.deny\n\
         \x20 policy/deployment.rego:11          | | | Exit data.main.deny\n\
         \x20 policy/deployment_test.rego:13     | | Fail data.main.test_label_missing_fails_on_purpose\n\
         \x20 query:1                            | Fail data.main.test_label_missing_fails_on_purpose = _\n\n\
         SUMMARY\n\
         --------------------------------------------------------------------------------\n\
         policy/deployment_test.rego:\n\
         data.main.test_too_many_replicas: PASS (T)\n\
         data.main.test_label_present: PASS (T)\n\n\
         \x20 policy/deployment_test.rego:9: checking the label rule\n\n\
         data.main.test_label_missing_fails_on_purpose: FAIL (T)\n\
         data.main.todo_test_statefulsets: SKIPPED\n\n\
         policy/other/service_test.rego:\n\
         data.k8s.service.test_nodeport: PASS (T)\n\
         --------------------------------------------------------------------------------\n\
         PASS: 3/5\nFAIL: 1/5\nSKIPPED: 1/5\n",
        &without_durations(&out.stdout),
    );
    // `fails` keeps Fail lines and the Enter lines leading to them.
    let fails = verify(&["--report", "fails"]);
    assert!(fails.stdout.contains("| | | Fail data.main.deny\n"));
    assert!(!fails.stdout.contains("Exit data.main.deny"));
    let out = verify(&["--report", "full", "-o", "json"]);
    assert_eq!(
        out.stderr,
        "Error: report flag is supported with stdout only\n"
    );
}

#[test]
fn coverage_table_json_and_minimum() {
    let out = verify(&["--coverage", "-n", "k8s.service"]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n\
         \nCOVERAGE\n\
         --------------------------------------------------------------------------------\n\
         FILE                           LINES  PERCENT\n\
         policy/deployment.rego          0/10    0.00%\n\
         \x20                          not covered: 5-8, 11-14, 19-20\n\
         policy/other/service.rego        1/1  100.00%\n\
         --------------------------------------------------------------------------------\n\
         TOTAL                           1/11    9.09%\n",
        &out.stdout,
    );
    // All tests: only the helper nothing calls stays uncovered.
    let out = verify(&["--coverage", "-o", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        doc["coverage"]["files"][0],
        serde_json::json!({
            "file": "policy/deployment.rego",
            "covered": [5, 6, 7, 8, 11, 12, 13, 14],
            "not_covered": [19, 20],
            "percent": 80.0
        })
    );
    assert_eq!(doc["coverage"]["percent"], serde_json::json!(81.82));
    assert_eq!(doc["results"].as_array().map(Vec::len), Some(5));
    // Test files are never part of coverage.
    assert!(
        !out.stdout
            .contains("\"file\": \"policy/deployment_test.rego\"")
    );

    let out = verify(&["--coverage-min", "80", "-n", "k8s.service"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error: coverage 9.09% is below the minimum 80%\n"
    );
    let out = verify(&["--coverage-min", "5", "-n", "k8s.service"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
}

#[test]
fn trace_goes_to_stderr() {
    let out = verify(&["--trace", "-n", "k8s.service"]);
    assert_text(
        "file: policy/other/service_test.rego | query: test_nodeport\n\
         TRAC   Enter data.k8s.service.test_nodeport = _\n\
         TRAC   | Enter data.k8s.service.test_nodeport\n\
         TRAC   | | Enter data.k8s.service.deny\n\
         TRAC   | | | Exit data.k8s.service.deny\n\
         TRAC   | | Exit data.k8s.service.test_nodeport\n\
         TRAC   | Exit data.k8s.service.test_nodeport = _\n",
        &out.stderr,
    );
    assert!(!out.stdout.contains("COVERAGE"));
}

#[test]
fn verify_needs_policies() {
    let out = Run::new("verify", &["verify", "-p", "absent"]).output();
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error: absent: no such file or directory\n");
}

#[test]
fn tests_run_against_a_constraint_template() {
    let out = regard(
        "verify-template",
        &[
            "verify",
            "--template",
            "template.yaml",
            "-p",
            "tests",
            "--no-color",
            "--coverage",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_text(
        "\n3 tests, 3 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n\
         \nCOVERAGE\n\
         --------------------------------------------------------------------------------\n\
         FILE                              LINES  PERCENT\n\
         demoownerlabel/template.rego        7/7  100.00%\n\
         demoownerlabel/lib_0.rego           1/1  100.00%\n\
         --------------------------------------------------------------------------------\n\
         TOTAL                               8/8  100.00%\n",
        &out.stdout,
    );
    let out = regard(
        "verify-template",
        &[
            "verify",
            "--template",
            "tests/owner_test.rego",
            "-p",
            "tests",
        ],
    );
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "Error: tests/owner_test.rego: unknown file type \"rego\"; use --parser to choose one\n"
    );
}

/// `tests/verify-errors`: `broken.rego` does not parse, `lib.rego` has a rule
/// whose two definitions conflict, `main_test.rego` has a test erroring on
/// that conflict and one that panics regorus (`strings.count` with an empty
/// substring), `dup_test.rego` defines `test_violation` three times.
fn verify_errors(args: &[&str]) -> crate::util::Output {
    let mut full = vec!["verify", "--no-color"];
    full.extend_from_slice(args);
    regard("verify-errors", &full)
}

#[test]
fn an_erroring_test_or_broken_file_hides_no_other_result() {
    let out = verify_errors(&[]);
    assert_eq!(out.code, 1);
    // The panic is reported as that test's error, not printed by a hook.
    assert_eq!(out.stderr, "");
    assert_text(
        "ERROR - policy/broken.rego -  - policy/broken.rego:4:7: expecting `}` while parsing set\n\
         FAIL - policy/dup_test.rego -  - data.dup.test_violation#01\n\
         ERROR - policy/main_test.rego -  - data.main.test_level_conflict: policy/lib.rego:9: eval_conflict_error: complete rules must not produce multiple outputs\n\
         ERROR - policy/main_test.rego -  - data.main.test_count_panics: evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629\n\
         FAIL - policy/main_test.rego -  - data.main.test_double_fails\n\
         \n9 tests, 4 passed, 0 warnings, 2 failures, 0 exceptions, 0 skipped, 3 errors\n",
        &out.stdout,
    );
}

#[test]
fn pretty_report_lists_errors_as_opa_does() {
    let out = verify_errors(&["--report", "fails"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    assert_text(
        "FAILURES\n\
         --------------------------------------------------------------------------------\n\
         data.dup.test_violation#01: FAIL (T)\n\n\
         \x20 query:1                    Enter data.dup.test_violation#01 = _\n\
         \x20 policy/dup_test.rego:7     | Enter data.dup.test_violation#01\n\
         \x20 policy/dup_test.rego:7     | | Fail data.dup.test_violation#01\n\
         \x20 query:1                    | Fail data.dup.test_violation#01 = _\n\n\
         data.main.test_double_fails: FAIL (T)\n\n\
         \x20 query:1                      Enter data.main.test_double_fails = _\n\
         \x20 policy/main_test.rego:18     | Enter data.main.test_double_fails\n\
         \x20 policy/main_test.rego:18     | | Fail data.main.test_double_fails\n\
         \x20 query:1                      | Fail data.main.test_double_fails = _\n\n\
         SUMMARY\n\
         --------------------------------------------------------------------------------\n\
         policy/broken.rego:\n\
         policy/broken.rego: ERROR\n\
         \x20 policy/broken.rego:4:7: expecting `}` while parsing set\n\n\
         policy/dup_test.rego:\n\
         data.dup.test_violation: PASS (T)\n\
         data.dup.test_violation#01: FAIL (T)\n\
         data.dup.test_violation#02: PASS (T)\n\n\
         policy/main_test.rego:\n\
         data.main.test_double: PASS (T)\n\
         data.main.test_level_conflict: ERROR (T)\n\
         \x20 policy/lib.rego:9: eval_conflict_error: complete rules must not produce multiple outputs\n\
         data.main.test_level_low: PASS (T)\n\
         data.main.test_count_panics: ERROR (T)\n\
         \x20 evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629\n\
         data.main.test_double_fails: FAIL (T)\n\
         --------------------------------------------------------------------------------\n\
         PASS: 4/9\nFAIL: 2/9\nERROR: 3/9\n",
        &without_durations(&out.stdout),
    );
}

#[test]
fn errors_in_structured_formats() {
    let out = verify_errors(&[
        "-p",
        "policy/lib.rego",
        "-p",
        "policy/main_test.rego",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        doc[1],
        serde_json::json!({
            "filename": "policy/main_test.rego",
            "namespace": "",
            "successes": 0,
            "errors": [{
                "msg": "data.main.test_level_conflict: policy/lib.rego:9: eval_conflict_error: complete rules must not produce multiple outputs",
                "rule": "test_level_conflict"
            }]
        })
    );
    let out = verify_errors(&[
        "-p",
        "policy/main_test.rego",
        "-p",
        "policy/lib.rego",
        "--run",
        "panics",
        "-o",
        "junit",
    ]);
    assert_text(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n\
         \t<testsuite tests=\"1\" failures=\"0\" errors=\"1\" time=\"0.000\" name=\"conftest.\">\n\
         \t\t<properties>\n\t\t\t<property name=\"regard.version\" value=\"0.1.0\"></property>\n\t\t</properties>\n\
         \t\t<testcase classname=\"conftest.\" name=\"policy/main_test.rego - data.main.test_count_panics: evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629\" time=\"0.000\">\n\
         \t\t\t<error message=\"Error\" type=\"\">data.main.test_count_panics: evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629</error>\n\
         \t\t</testcase>\n\t</testsuite>\n</testsuites>\n",
        &out.stdout,
    );
    let out = verify_errors(&[
        "-p",
        "policy/lib.rego",
        "-p",
        "policy/main_test.rego",
        "--trace",
        "--run",
        "conflict",
    ]);
    let re = regex::Regex::new(r" in [0-9.]+(ns|µs|ms|s)").expect("regex");
    assert_text(
        "file: policy/main_test.rego | query: test_level_conflict\n\
         TRAC   ERROR: policy/lib.rego:9: eval_conflict_error: complete rules must not produce multiple outputs\n",
        &re.replace_all(&out.stderr, " in T"),
    );
}

#[test]
fn each_duplicate_test_definition_is_its_own_test() {
    let out = verify_errors(&["-p", "policy/dup_test.rego", "--report", "full"]);
    assert_eq!(out.code, 1);
    assert_text(
        "FAILURES\n\
         --------------------------------------------------------------------------------\n\
         data.dup.test_violation#01: FAIL (T)\n\n\
         \x20 query:1                    Enter data.dup.test_violation#01 = _\n\
         \x20 policy/dup_test.rego:7     | Enter data.dup.test_violation#01\n\
         \x20 policy/dup_test.rego:7     | | Fail data.dup.test_violation#01\n\
         \x20 query:1                    | Fail data.dup.test_violation#01 = _\n\n\
         SUMMARY\n\
         --------------------------------------------------------------------------------\n\
         policy/dup_test.rego:\n\
         data.dup.test_violation: PASS (T)\n\
         data.dup.test_violation#01: FAIL (T)\n\
         data.dup.test_violation#02: PASS (T)\n\
         --------------------------------------------------------------------------------\n\
         PASS: 2/3\nFAIL: 1/3\n",
        &without_durations(&out.stdout),
    );
    // `--run` matches the reported name; the trace gives each its own line.
    let out = verify_errors(&["-p", "policy/dup_test.rego", "--run", "#02$", "--trace"]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
    assert_text(
        "file: policy/dup_test.rego | query: test_violation#02\n\
         TRAC   Enter data.dup.test_violation#02 = _\n\
         TRAC   | Enter data.dup.test_violation#02\n\
         TRAC   | | Exit data.dup.test_violation#02\n\
         TRAC   | Exit data.dup.test_violation#02 = _\n",
        &out.stderr,
    );
}

#[test]
fn a_policy_path_without_rego_files_is_an_error() {
    // conftest: `no policies found in [...]`, exit 1.
    let out = regard("verify", &["verify", "-p", "data", "--no-color"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("no policies found in [data]"),
        "{}",
        out.stderr
    );
}

/// `tests/verify-quoted`: a package named `rules["image-tag_test"]` is run and
/// reported by the reference OPA prints for it.
#[test]
fn packages_that_are_not_identifiers_are_quoted() {
    let out = regard("verify-quoted", &["verify", "--no-color"]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    assert_text(
        "FAIL - policy/check_test.rego -  - data.rules[\"image-tag_test\"].test_fails_on_purpose\n\
         \n2 tests, 1 passed, 0 warnings, 1 failure, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
}
