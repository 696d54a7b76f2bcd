//! `regard test`: conftest compatibility on real files.

use crate::util::{Run, assert_text, read, regard};

const FORMATS: &[&str] = &[
    "stdout",
    "json",
    "tap",
    "table",
    "junit",
    "github",
    "azuredevops",
    "sarif",
];

#[test]
fn every_output_format_matches_its_expected_report() {
    for format in FORMATS {
        let out = regard(
            "conftest/report",
            &["test", "app.yaml", "--no-color", "-o", format],
        );
        assert_eq!(out.code, 1, "{format}: {}", out.stderr);
        assert_text(
            &read(&format!("conftest/report/expected/{format}.txt")),
            &out.stdout,
        );
    }
}

#[test]
fn unknown_output_format_is_an_error() {
    let out = regard("conftest/report", &["test", "app.yaml", "-o", "yaml"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("Error: unknown output format \"yaml\""),
        "{}",
        out.stderr
    );
}

#[test]
fn stdout_is_coloured_only_on_request_of_a_terminal() {
    // Not a terminal here: no escape codes even without --no-color.
    let out = regard("conftest/report", &["test", "app.yaml"]);
    assert!(!out.stdout.contains('\x1b'));
}

#[test]
fn exit_codes_follow_conftest() {
    let code = |args: &[&str]| regard("conftest/exitcodes", args).code;
    assert_eq!(code(&["test", "pass.yaml"]), 0);
    assert_eq!(code(&["test", "warn.yaml"]), 0);
    assert_eq!(code(&["test", "both.yaml"]), 1);
    assert_eq!(code(&["test", "--fail-on-warn", "pass.yaml"]), 0);
    assert_eq!(code(&["test", "--fail-on-warn", "warn.yaml"]), 1);
    assert_eq!(code(&["test", "--fail-on-warn", "both.yaml"]), 2);
    assert_eq!(code(&["test", "--no-fail", "both.yaml"]), 0);
    assert_eq!(
        code(&["test", "--no-fail", "--fail-on-warn", "both.yaml"]),
        0
    );
}

#[test]
fn quiet_prints_nothing_only_when_passing() {
    let out = regard("conftest/exitcodes", &["test", "--quiet", "warn.yaml"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    let out = regard(
        "conftest/exitcodes",
        &["test", "--quiet", "--no-color", "both.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "WARN - both.yaml - main - warning\nFAIL - both.yaml - main - failure\n\n2 tests, 0 passed, 1 warning, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn suppress_exceptions_hides_lines_but_counts_them() {
    let out = regard(
        "conftest/report",
        &["test", "app.yaml", "--no-color", "--suppress-exceptions"],
    );
    assert_text(
        "WARN - app.yaml - main - image uses latest tag\nFAIL - app.yaml - main - legacy runs as root\n\n4 tests, 1 passed, 1 warning, 1 failure, 1 exception\n",
        &out.stdout,
    );
}

#[test]
fn literal_glob_and_all_namespaces() {
    let run = |args: &[&str]| {
        let mut full = vec!["test", "input.yaml", "--no-color"];
        full.extend_from_slice(args);
        regard("conftest/namespaces", &full).stdout
    };
    assert_text(
        "FAIL - input.yaml - main - main: name is missing\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &run(&[]),
    );
    // Globs match loaded packages, `.` included: main and main.gke.
    assert_text(
        "FAIL - input.yaml - main - main: name is missing\nWARN - input.yaml - main.gke - gke: no zone\n\n2 tests, 0 passed, 1 warning, 1 failure, 0 exceptions\n",
        &run(&["-n", "m*"]),
    );
    // Comma lists and repeated flags run in the order given.
    assert_text(
        "FAIL - input.yaml - commands - commands: no shells\nWARN - input.yaml - main.gke - gke: no zone\n\n2 tests, 0 passed, 1 warning, 1 failure, 0 exceptions\n",
        &run(&["-n", "commands,main.gke"]),
    );
    assert_text(
        "FAIL - input.yaml - commands - commands: no shells\nFAIL - input.yaml - main - main: name is missing\nWARN - input.yaml - main.gke - gke: no zone\n\n3 tests, 0 passed, 1 warning, 2 failures, 0 exceptions\n",
        &run(&["--all-namespaces"]),
    );
    assert_text(
        "FAIL - input.yaml - commands - commands: no shells\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &run(&["-n", "[c]*"]),
    );
    // A namespace with no package has no tests and passes.
    let out = regard(
        "conftest/namespaces",
        &["test", "input.yaml", "-n", "nothing"],
    );
    assert_eq!(out.code, 0);
    assert_text(
        "\n0 tests, 0 passed, 0 warnings, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn combine_evaluates_all_documents_as_one_input() {
    let out = regard(
        "conftest/combine",
        &[
            "test",
            "--combine",
            "--no-color",
            "deployments.yaml",
            "service.yaml",
        ],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - Combined - main - deployments.yaml: deployment api has no service\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn data_files_merge_by_sub_directory() {
    let out = regard(
        "conftest/data",
        &["test", "-d", "data", "--no-color", "pod.yaml"],
    );
    assert_text(
        "WARN - pod.yaml - main - owner should be platform\nFAIL - pod.yaml - main - image docker.io/library/nginx:1.25 is not from an allowed registry (registry.example.com/, ghcr.io/example/)\n\n2 tests, 0 passed, 1 warning, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn stdin_and_stdin_filename() {
    let out = Run::new("conftest/exitcodes", &["test", "--no-color", "-"])
        .stdin("fail: true\n")
        .output();
    assert_text(
        "FAIL - - main - failure\n\n2 tests, 1 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
    let out = Run::new(
        "conftest/exitcodes",
        &[
            "test",
            "--no-color",
            "--stdin-filename",
            "from-pipe.yaml",
            "-",
            "-o",
            "json",
        ],
    )
    .stdin("{\"warn\": true}")
    .output();
    assert!(
        out.stdout.contains("\"filename\": \"from-pipe.yaml\""),
        "{}",
        out.stdout
    );
}

#[test]
fn rego_v0_policies_with_legacy_builtins() {
    let out = regard(
        "conftest/v0",
        &["test", "--rego-version", "v0", "--no-color", "deploy.yaml"],
    );
    assert_text(
        "WARN - deploy.yaml - main - debugging enabled\nFAIL - deploy.yaml - main - latest tag\nFAIL - deploy.yaml - main - replicas must be set\n\n3 tests, 0 passed, 1 warning, 2 failures, 0 exceptions\n",
        &out.stdout,
    );
    // The same policy is not valid v1.
    let out = regard("conftest/v0", &["test", "deploy.yaml"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("policy/legacy.rego"), "{}", out.stderr);
    let out = regard(
        "conftest/v0",
        &["test", "--rego-version", "v9", "deploy.yaml"],
    );
    assert_eq!(out.stderr, "Error: invalid Rego version: v9\n");
}

#[test]
fn yaml_streams_are_read_completely() {
    let out = regard(
        "conftest/yaml",
        &["test", "--no-color", "stream.yaml", "merge.yaml"],
    );
    assert_text(
        "WARN - stream.yaml - main - doc {\"a\": 1}\n\
         WARN - stream.yaml - main - doc {\"b\": 2}\n\
         WARN - stream.yaml - main - doc {\"c\": 3}\n\
         WARN - stream.yaml - main - doc null\n\
         WARN - stream.yaml - main - doc {\"d\": true}\n\
         WARN - merge.yaml - main - doc {\"base\": {\"cpu\": 1}, \"derived\": {\"cpu\": 1, \"mem\": 2}, \"flags\": [true, false, true, false], \"mode\": 493}\n\
         \n6 tests, 0 passed, 6 warnings, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn bad_inputs_name_file_and_line_and_do_not_stop_the_run() {
    let out = regard(
        "conftest/yaml",
        &[
            "test",
            "--no-color",
            "duplicate.yaml",
            "bomb.yaml",
            "malformed.yaml",
            "malformed.json",
            "notes.txt",
            "binary.yaml",
            "stream.yaml",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .ends_with("\n5 tests, 0 passed, 5 warnings, 0 failures, 0 exceptions\n")
    );
    assert_text(
        "Error: duplicate.yaml:3:3: duplicate mapping key: name\n\
         Error: bomb.yaml:6:20: document too large or too many aliases (an alias bomb?): budget breached: Nodes { nodes: 250001 }\n\
         Error: malformed.yaml:3:9: unclosed bracket '['\n\
         Error: malformed.json:1:16: trailing comma\n\
         Error: notes.txt: unknown file type \"txt\"; use --parser to choose one\n\
         Error: binary.yaml: not valid UTF-8 text (binary files are not supported)\n",
        &out.stderr,
    );
}

#[test]
fn forced_parser_and_ignore() {
    let out = regard(
        "conftest/yaml",
        &["test", "--parser", "yaml", "--no-color", "notes.txt"],
    );
    assert_text(
        "WARN - notes.txt - main - doc {\"kind\": \"Pod\"}\n\n1 test, 0 passed, 1 warning, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
    // --ignore applies to walked and explicitly named files alike.
    let out = regard(
        "conftest/yaml",
        &[
            "test",
            "--ignore",
            "(bomb|binary|duplicate|malformed|merge)",
            "--no-color",
            ".",
            "merge.yaml",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("./stream.yaml"), "{}", out.stdout);
    assert!(!out.stdout.contains("merge.yaml"), "{}", out.stdout);
    let out = regard("conftest/yaml", &["test", "--ignore", "(", "stream.yaml"]);
    assert!(
        out.stderr
            .starts_with("Error: invalid --ignore pattern \"(\""),
        "{}",
        out.stderr
    );
    let out = regard(
        "conftest/yaml",
        &["test", "--parser", "klingon", "stream.yaml"],
    );
    assert!(
        out.stderr.starts_with("Error: unknown parser \"klingon\""),
        "{}",
        out.stderr
    );
}

#[test]
fn print_location_metadata_and_ignored_values() {
    let out = regard("conftest/features", &["test", "--no-color", "pod.yaml"]);
    assert_text(
        "PRNT   policy/features.rego:4: checking bare from pod.yaml\n\n\
         FAIL - pod.yaml - main - bare has no securityContext\n\
         FAIL - pod.yaml - main - message 1\n\
         FAIL - pod.yaml - main - message 2\n\
         FAIL - pod.yaml - main - message 3\n\
         \n5 tests, 1 passed, 0 warnings, 4 failures, 0 exceptions\n",
        &out.stdout,
    );
    let out = regard("conftest/features", &["test", "-o", "github", "pod.yaml"]);
    assert!(
        out.stdout
            .contains("::error file=pod.yaml,line=4::bare has no securityContext\n"),
        "{}",
        out.stdout
    );
    let out = regard("conftest/features", &["test", "-o", "json", "pod.yaml"]);
    assert!(
        out.stdout.contains(
            "\"msg\": \"bare has no securityContext\",\n\t\t\t\t\"loc\": {\n\t\t\t\t\t\"file\": \"pod.yaml\",\n\t\t\t\t\t\"line\": 4\n\t\t\t\t},\n\t\t\t\t\"metadata\": {\n\t\t\t\t\t\"query\": \"data.main.deny\",\n\t\t\t\t\t\"severity\": \"high\"\n\t\t\t\t},\n\t\t\t\t\"rule\": \"deny\""
        ),
        "{}",
        out.stdout
    );
}

/// A variable used before its `:=` declaration: OPA's compile error, in
/// OPA's words and at the declaration's line, for `test` and `verify`.
#[test]
fn a_use_before_a_declaration_is_opas_compile_error() {
    let out = regard("conftest/referenced-above", &["test", "in.yaml"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (
            1,
            "",
            "Error: 1 error occurred: policy/p.rego:5: rego_compile_error: var name referenced above\n"
        )
    );
    let out = regard("conftest/referenced-above", &["verify", "--no-color"]);
    assert_eq!(out.code, 1);
    assert_text(
        "ERROR - policy/p.rego -  - policy/p.rego:5: rego_compile_error: var name referenced above\n\
         \n1 test, 0 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped, 1 error\n",
        &out.stdout,
    );
}

#[test]
fn policy_errors_name_the_file() {
    let out = regard("conftest/badpolicy", &["test", "in.yaml"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("Error: policy/p.rego: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("policy/p.rego:4:"), "{}", out.stderr);
    let out = regard("conftest/problematic", &["test", "in.yaml"]);
    assert_eq!(
        out.stderr,
        "Error: policy/p.rego: rule is using 'if' keyword without 'contains' keyword: rule in policy/p.rego at line 3\n"
    );
    let out = regard(
        "conftest/exitcodes",
        &["test", "-p", "nowhere", "pass.yaml"],
    );
    assert_eq!(out.stderr, "Error: nowhere: no such file or directory\n");
    let out = regard("conftest/exitcodes", &["test", "missing.yaml"]);
    assert_eq!(
        out.stderr,
        "Error: missing.yaml: no such file or directory\n"
    );
    let out = regard("conftest/exitcodes", &["test"]);
    assert_eq!(
        out.code, 1,
        "missing arguments is a usage error with exit 1"
    );
}

#[test]
fn config_file_and_environment_set_flag_defaults() {
    let out = regard("conftest/configfile", &["test", "--no-color", "in.yaml"]);
    // policy = "custom", namespace = "conftest", fail-on-warn = true
    assert_eq!(out.code, 1);
    assert_text(
        "WARN - in.yaml - conftest - from config\n\n1 test, 0 passed, 1 warning, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
    // The environment beats the config file; flags beat both.
    let out = Run::new("conftest/configfile", &["test", "in.yaml"])
        .env("CONFTEST_NAMESPACE", "other")
        .output();
    assert!(
        out.stdout
            .ends_with("\n0 tests, 0 passed, 0 warnings, 0 failures, 0 exceptions\n")
    );
    let out = Run::new(
        "conftest/configfile",
        &["test", "-n", "conftest", "in.yaml"],
    )
    .env("REGARD_NAMESPACE", "other")
    .output();
    assert!(out.stdout.contains("from config"));
}

#[test]
fn symlink_loops_terminate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("policy")).expect("mkdir");
    std::fs::write(
        root.join("policy/p.rego"),
        "package main\n\ndeny contains \"x\" if input.x\n",
    )
    .expect("write policy");
    std::fs::create_dir_all(root.join("in/sub")).expect("mkdir");
    std::fs::write(root.join("in/sub/a.yaml"), "x: true\n").expect("write input");
    std::os::unix::fs::symlink(root.join("in"), root.join("in/sub/loop")).expect("symlink");
    let out = Run::in_dir(root, &["test", "--no-color", "in"]).output();
    assert_text(
        "FAIL - in/sub/a.yaml - main - x\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn output_is_identical_across_runs() {
    let first = regard(
        "conftest/namespaces",
        &["test", "--all-namespaces", "-o", "json", "."],
    );
    for _ in 0..5 {
        let again = regard(
            "conftest/namespaces",
            &["test", "--all-namespaces", "-o", "json", "."],
        );
        assert_eq!(first.stdout, again.stdout);
    }
}

#[test]
fn trace_reports_each_rule_definition() {
    let out = regard(
        "conftest/report",
        &["test", "--trace", "--no-color", "app.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(&read("conftest/report/expected/stdout.txt"), &out.stdout);
    let mut expected = String::new();
    for (rule, outcome) in [
        ("deny_root", "Exit"),
        ("warn_latest", "Exit"),
        ("deny_replicas", "Exit"),
        ("deny_ports", "Fail"),
    ] {
        expected.push_str(&format!(
            "file: app.yaml | query: data.main.{rule}\n\
             TRAC   Enter data.main.{rule} = _\n\
             TRAC   | Enter data.main.{rule}\n\
             TRAC   | | {outcome} data.main.{rule}\n\
             TRAC   | Exit data.main.{rule} = _\n"
        ));
    }
    assert_text(&expected, &out.stderr);
}

#[test]
fn every_rule_definition_counts_as_a_test() {
    // conftest's service.yaml arithmetic: 3 deny bodies + violation + warn.
    let out = regard("conftest/counting", &["test", "--no-color", "service.yaml"]);
    assert_text(
        "WARN - service.yaml - main - NodePort services are discouraged\n\n5 tests, 4 passed, 1 warning, 0 failures, 0 exceptions\n",
        &out.stdout,
    );
}

#[test]
fn builtin_errors_are_undefined_unless_shown() {
    let out = regard(
        "conftest/builtin-errors",
        &["test", "--no-color", "deploy.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - deploy.yaml - main - replicas many is not a number\n\n2 tests, 1 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
    let out = regard(
        "conftest/builtin-errors",
        &["test", "--no-color", "--show-builtin-errors", "deploy.yaml"],
    );
    // The error is `deny`'s alone: `deny_bad_number` still reports.
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - deploy.yaml - main - replicas many is not a number\n\
         ERROR - deploy.yaml - main - data.main.deny: policy/numbers.rego:4:20: could not parse string as number\n\
         \n2 tests, 0 passed, 0 warnings, 1 failure, 0 exceptions, 1 error\n",
        &out.stdout,
    );
    assert_eq!(out.stderr, "");
}

/// Boolean flags take Go's optional value as conftest's do: `--x=true` is
/// `--x`, and `--x=false` turns off what a lower layer turned on.
#[test]
fn boolean_flags_take_an_optional_value() {
    let dir = "conftest/builtin-errors";
    let shown = regard(
        dir,
        &["test", "--no-color", "--show-builtin-errors", "deploy.yaml"],
    );
    let hidden = regard(dir, &["test", "--no-color", "deploy.yaml"]);
    for (value, want) in [
        ("true", &shown),
        ("1", &shown),
        ("false", &hidden),
        ("F", &hidden),
    ] {
        let flag = format!("--show-builtin-errors={value}");
        let out = regard(dir, &["test", "--no-color=true", &flag, "deploy.yaml"]);
        assert_eq!(out.code, want.code, "{flag}");
        assert_text(&want.stdout, &out.stdout);
    }
    // A warning fails the run only while --fail-on-warn is on.
    let run = |args: &[&str]| {
        let mut full = vec!["test"];
        full.extend_from_slice(args);
        full.push("service.yaml");
        crate::util::Run::new("conftest/counting", &full)
            .env("CONFTEST_FAIL_ON_WARN", "true")
            .output()
            .code
    };
    assert_eq!(run(&[]), 1);
    assert_eq!(run(&["--fail-on-warn=false"]), 0);
    assert_eq!(run(&["--fail-on-warn=true"]), 1);
    let out = regard(dir, &["test", "--show-builtin-errors=yes", "deploy.yaml"]);
    assert_eq!(out.code, 1);
    assert_text(
        "error: invalid value 'yes' for '--show-builtin-errors[=<BOOL>]': expected true or false (or 1, 0, t, f)\n\n\
         For more information, try '--help'.\n",
        &out.stderr,
    );
    // The value must follow `=`: a separate word is a path, as in conftest.
    let out = regard(
        dir,
        &["test", "--no-color", "--show-builtin-errors", "true"],
    );
    assert_eq!(out.code, 1);
    assert_text("Error: true: no such file or directory\n", &out.stderr);
}

/// `tests/conftest/keywords` is Rego v1 (`contains` and `if` without an
/// import): as v0 it does not parse in OPA, so neither `test` nor `verify`
/// may run it.
#[test]
fn v1_policies_read_as_v0_are_refused() {
    let dir = "conftest/keywords";
    let out = regard(dir, &["test", "--no-color", "app.yaml"]);
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - app.yaml - main - port 80 is privileged\n\n1 test, 0 passed, 0 warnings, 1 failure, 0 exceptions\n",
        &out.stdout,
    );
    let out = regard(dir, &["test", "--rego-version", "v0", "app.yaml"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    let error = "Error: 1 error occurred: policy/ports.rego:4: rego_parse_error: `contains` is a keyword in Rego v0 \
                 only after `import future.keywords.contains`, `import future.keywords` or `import \
                 rego.v1` (without one, OPA does not parse this rule: var cannot be used for rule name)";
    // regorus prints its own warnings about `if` before it.
    assert!(out.stderr.lines().any(|l| l == error), "{}", out.stderr);
    let out = regard(dir, &["verify", "--no-color", "--rego-version=v0"]);
    assert_eq!(out.code, 1);
    assert_text(
        "ERROR - policy/ports.rego -  - policy/ports.rego:4: rego_parse_error: `contains` is a keyword \
         in Rego v0 only after `import future.keywords.contains`, `import future.keywords` or `import \
         rego.v1` (without one, OPA does not parse this rule: var cannot be used for rule name)\n\
         ERROR - policy/ports_test.rego -  - policy/ports_test.rego:3: rego_parse_error: var cannot \
         be used for rule name (`test_low_port_denied if { … }` needs `import future.keywords.if`, \
         `import future.keywords` or `import rego.v1` in Rego v0)\n\
         \n2 tests, 0 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped, 2 errors\n",
        &out.stdout,
    );
    let out = regard(dir, &["verify", "--no-color"]);
    assert_eq!(out.code, 0);
    assert_text(
        "\n1 test, 1 passed, 0 warnings, 0 failures, 0 exceptions, 0 skipped\n",
        &out.stdout,
    );
}

/// `reformat` renders a saved JSON report exactly as `test` renders the
/// results in that format.
#[test]
fn reformat_renders_a_saved_report_as_test_would() {
    let dir = "conftest/exitcodes";
    let files = ["both.yaml", "warn.yaml", "pass.yaml"];
    let mut json_args = vec!["test", "-o", "json"];
    json_args.extend(files);
    let saved = regard(dir, &json_args).stdout;
    for format in ["stdout", "table", "junit", "tap", "json", "github"] {
        let mut args = vec!["test", "--no-color", "-o", format];
        args.extend(files);
        let want = regard(dir, &args);
        let out = crate::util::Run::new(dir, &["reformat", "-o", format])
            .stdin(saved.clone())
            .output();
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{format}");
        assert_text(&want.stdout, &out.stdout);
    }
    // An unknown format falls back to stdout, as conftest's reformat does.
    let out = crate::util::Run::new(dir, &["reformat", "-o", "nope"])
        .stdin(saved)
        .output();
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stderr,
        "unknown output format \"nope\"; writing stdout\n"
    );
    let out = regard(dir, &["reformat", "missing.json"]);
    assert_eq!(out.code, 1);
    assert_text(
        "Error: failed to open input file missing.json: No such file or directory (os error 2)\n",
        &out.stderr,
    );
    let out = crate::util::Run::new(dir, &["reformat"])
        .stdin("not json")
        .output();
    assert_eq!(out.code, 1);
    assert_text(
        "Error: failed to parse JSON input: expected ident at line 1 column 2\n",
        &out.stderr,
    );
}

/// `tests/conftest/eval-errors`: in `app.yaml`, document 1 gives `team` two
/// values (an error of `deny_team`) and document 3 makes `warn_pattern`
/// panic regorus (`strings.count` with an empty substring).
#[test]
fn a_rule_erroring_for_one_document_hides_no_other_result() {
    let out = regard(
        "conftest/eval-errors",
        &["test", "--no-color", "app.yaml", "other.yaml"],
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "");
    assert_text(
        "WARN - app.yaml - main - settings repeats t\n\
         FAIL - app.yaml - main - web: pods are not allowed\n\
         FAIL - app.yaml - main - nobody owns this\n\
         ERROR - app.yaml - main - data.main.deny_team (document 1): policy/rules.rego:12: eval_conflict_error: complete rules must not produce multiple outputs\n\
         ERROR - app.yaml - main - data.main.warn_pattern (document 3): evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629\n\
         FAIL - other.yaml - main - db: pods are not allowed\n\
         \n12 tests, 6 passed, 1 warning, 3 failures, 0 exceptions, 2 errors\n",
        &out.stdout,
    );
    // An error exits 1 whatever --no-fail and --fail-on-warn say.
    for flag in ["--no-fail", "--fail-on-warn"] {
        let out = regard("conftest/eval-errors", &["test", flag, "app.yaml"]);
        assert_eq!(out.code, 1, "{flag}");
    }
}

#[test]
fn rule_errors_in_structured_formats() {
    let out = regard("conftest/eval-errors", &["test", "-o", "json", "app.yaml"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        doc[0]["errors"],
        serde_json::json!([
            {
                "msg": "data.main.deny_team (document 1): policy/rules.rego:12: eval_conflict_error: complete rules must not produce multiple outputs",
                "metadata": {"query": "data.main.deny_team"},
                "rule": "deny_team"
            },
            {
                "msg": "data.main.warn_pattern (document 3): evaluation panicked: window size must be non-zero at regorus-0.14.1/src/builtins/strings.rs:629",
                "metadata": {"query": "data.main.warn_pattern"},
                "rule": "warn_pattern"
            }
        ])
    );
    let out = regard("conftest/eval-errors", &["test", "-o", "sarif", "app.yaml"]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("sarif");
    let run = &doc["runs"][0];
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    assert_eq!(
        run["invocations"][0]["exitCodeDescription"],
        "Policy evaluation errors found"
    );
    let errors: Vec<&serde_json::Value> = run["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["ruleId"]
                .as_str()
                .is_some_and(|id| id.ends_with("/error"))
        })
        .map(|r| &r["ruleId"])
        .collect();
    assert_eq!(errors, ["main/deny_team/error", "main/warn_pattern/error"]);
    let out = regard(
        "conftest/eval-errors",
        &["test", "-o", "tap", "other.yaml", "app.yaml"],
    );
    assert!(
        out.stdout
            .contains("# errors\nnot ok 3 - app.yaml - main - data.main.deny_team (document 1): "),
        "{}",
        out.stdout
    );
}

#[test]
fn an_object_that_cannot_be_reviewed_hides_no_other_object() {
    let out = regard(
        "conftest/bundle-errors",
        &[
            "test",
            "--no-color",
            "--bundle",
            "bundle",
            "bad.yaml",
            "good.yaml",
        ],
    );
    assert_eq!(out.code, 1);
    assert_text(
        "FAIL - good.yaml - no-team - good has no team\n\
         ERROR - bad.yaml -  - reviewing ConfigMap bad: K8sNumberMsg number-msg: extracting message binding: msg is a number, not a string\n\
         \n3 tests, 1 passed, 0 warnings, 1 failure, 0 exceptions, 1 error\n",
        &out.stdout,
    );
}
