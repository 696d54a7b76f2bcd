//! conftest/OPA compatibility features: the global `-c` flag, OPA strict
//! mode, capabilities files, rule traces and `trace()` notes.

use crate::util::{assert_text, regard};

#[test]
fn config_file_flag_before_the_command() {
    let out = regard(
        "conftest/compat",
        &["-c", "team.toml", "test", "--no-color", "job.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - job.yaml - team - job nightly has no backoffLimit\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
    let out = regard(
        "conftest/compat",
        &["-c", "team.toml", "test", "-c", "team.toml", "job.yaml"],
    );
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: --config-file is given twice, before and after the command\n"
        )
    );
    let out = regard("conftest/compat", &["-c", "team.toml", "parse", "job.yaml"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "Error: --config-file applies to the test and verify commands only\n"
        )
    );
}

const STRICT_ERRORS: &str = "Error: 3 errors occurred:\n\
    strict/loose.rego:3: rego_compile_error: import data.unused.lib unused\n\
    strict/loose.rego:7: rego_compile_error: assigned var limit unused\n\
    strict/loose.rego:11: rego_compile_error: unused argument b. (hint: use _ (wildcard variable) instead)\n";

#[test]
fn strict_mode_refuses_unused_names() {
    let out = regard(
        "conftest/compat",
        &["test", "--strict", "-p", "strict", "job.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert_text(STRICT_ERRORS, &out.stderr);
    let out = regard("conftest/compat", &["verify", "--strict", "-p", "strict"]);
    assert_eq!(out.code, 1);
    assert_text(STRICT_ERRORS, &out.stderr);
    // Without --strict the same policy loads and runs.
    let out = regard(
        "conftest/compat",
        &["test", "--no-color", "-p", "strict", "job.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - job.yaml - main - jobs are not allowed\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn capabilities_file_limits_builtins() {
    let out = regard(
        "conftest/compat",
        &[
            "test",
            "-p",
            "capabilities",
            "--capabilities",
            "capabilities/caps.json",
            "job.yaml",
        ],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "Error: 1 error occurred: capabilities/fetch.rego:4: rego_type_error: undefined function http.send\n",
        &out.stderr,
    );
    let out = regard(
        "conftest/compat",
        &[
            "test",
            "-p",
            "capabilities",
            "--capabilities",
            "absent.json",
            "job.yaml",
        ],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "Error: absent.json: no such file or directory\n",
        &out.stderr,
    );
}

#[test]
fn trace_shows_rule_definitions_and_notes() {
    let out = regard(
        "conftest/compat/trace",
        &["test", "--trace", "--no-color", "job.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "file: job.yaml | query: data.main.deny\n\
         TRAC   Enter data.main.deny = _\n\
         TRAC   | Enter data.main.deny\n\
         TRAC   | | Enter data.kinds.is_job\n\
         TRAC   | | | Exit data.kinds.is_job\n\
         TRAC   | | Note \"checking the job\"\n\
         TRAC   | | Exit data.main.deny\n\
         TRAC   | Enter data.main.deny\n\
         TRAC   | | Enter data.kinds.is_cron\n\
         TRAC   | | | Fail data.kinds.is_cron\n\
         TRAC   | | Fail data.main.deny\n\
         TRAC   | Exit data.main.deny = _\n",
        &out.stderr,
    );
}

#[test]
fn report_notes_show_trace_calls_which_return_true() {
    let out = regard(
        "conftest/compat/notes",
        &["verify", "-p", ".", "--report", "notes"],
    );
    assert_eq!(out.code, 1);
    let re = regex::Regex::new(r"\([0-9.]+(ns|µs|ms|s)\)").expect("regex");
    assert_text(
        "FAILURES\n\
         --------------------------------------------------------------------------------\n\
         data.main.test_owner_required: FAIL (T)\n\n\
         \x20 query:1                  Enter data.main.test_owner_required = _\n\
         \x20 ./policy_test.rego:3     | Enter data.main.test_owner_required\n\
         \x20 ./policy.rego:3          | | Enter data.main.deny\n\
         \x20 ./policy.rego:5          | | | Note \"owner missing\"\n\n\
         SUMMARY\n\
         --------------------------------------------------------------------------------\n\
         ./policy_test.rego:\n\
         data.main.test_owner_required: FAIL (T)\n\
         data.main.test_owner_given: PASS (T)\n\
         --------------------------------------------------------------------------------\n\
         PASS: 1/2\nFAIL: 1/2\n",
        &re.replace_all(&out.stdout, "(T)"),
    );
}
