//! Input formats: `regard parse` output for a realistic file of every
//! format, a conftest-style policy per format, malformed input per parser,
//! and the `parse_config*` builtins.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use policy_core::conftest::{Checker, NamespaceSelection};
use policy_core::input::{self, Format, ParseOptions};
use policy_core::policy::{LoadOptions, PolicySet};

const FORMATS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/formats");

fn formats_dir() -> PathBuf {
    PathBuf::from(FORMATS)
}

/// Runs `regard` in `tests/formats` (so paths in output are short).
fn regard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_regard"))
        .args(args)
        .current_dir(formats_dir())
        // The dotenv fixture expands $APP_PORT; gotenv prefers the process
        // environment, so make sure it is not set.
        .env_remove("APP_PORT")
        .env_remove("APP_NAME")
        .output()
        .unwrap_or_else(|e| panic!("running regard: {e}"))
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// (expected output file, regard parse arguments)
const PARSE_CASES: &[(&str, &[&str])] = &[
    ("toml/expected.json", &["toml/config.toml"]),
    ("jsonc/expected.json", &["jsonc/devcontainer.jsonc"]),
    ("hcl2/expected.json", &["hcl2/main.tf"]),
    ("hcl1/expected.json", &["hcl1/gke.hcl1"]),
    ("ini/expected.json", &["ini/grafana.ini"]),
    ("dotenv/expected.json", &["dotenv/.env"]),
    (
        "properties/expected.json",
        &["properties/application.properties"],
    ),
    ("xml/expected.json", &["xml/pom.xml"]),
    ("dockerfile/expected.json", &["dockerfile/Dockerfile"]),
    ("ignore/expected.json", &["ignore/.dockerignore"]),
    ("jsonnet/expected.json", &["jsonnet/app.jsonnet"]),
    ("hocon/expected.json", &["hocon/application.hocon"]),
    (
        "hocon/expected-substitutions.json",
        &["hocon/substitutions.hocon"],
    ),
    ("edn/expected.json", &["edn/config.edn"]),
    ("vcl/expected.json", &["vcl/varnish.vcl"]),
    ("nginx/expected.json", &["nginx/nginx.conf"]),
    ("spdx/expected.json", &["spdx/sbom.spdx"]),
    ("cyclonedx/expected.json", &["cyclonedx/bom.cyclonedx"]),
    (
        "cyclonedx/expected-xml.json",
        &["--parser", "cyclonedx", "cyclonedx/bom.xml"],
    ),
    (
        "textproto/expected.json",
        &[
            "--proto-file-dirs",
            "textproto/protos",
            "textproto/server.textproto",
        ],
    ),
    ("groovy/expected.json", &["groovy/Jenkinsfile"]),
    ("yaml/expected.json", &["yaml/deployment.yaml"]),
    ("json/expected.json", &["json/package.json"]),
];

#[test]
fn parse_prints_each_format_exactly() {
    let mut failures = Vec::new();
    for (expected_file, args) in PARSE_CASES {
        let mut full = vec!["parse"];
        full.extend_from_slice(args);
        let out = regard(&full);
        let expected = std::fs::read_to_string(formats_dir().join(expected_file))
            .unwrap_or_else(|e| panic!("{expected_file}: {e}"));
        if !out.status.success() || stdout(&out) != expected {
            failures.push(format!(
                "{expected_file}: status {:?}\nstderr: {}\nstdout:\n{}",
                out.status.code(),
                stderr(&out),
                stdout(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// (file, forced parser, exact stderr)
const MALFORMED: &[(&str, Option<&str>, &str)] = &[
    (
        "toml/malformed.toml",
        None,
        "toml/malformed.toml:3:16: invalid basic string, expected `\"`",
    ),
    (
        "jsonc/malformed.jsonc",
        None,
        "jsonc/malformed.jsonc:4:1: trailing comma",
    ),
    (
        "hcl2/malformed.tf",
        None,
        "hcl2/malformed.tf:3:11: invalid expression; expected `\"`, `[`, `{`, `-`, `!`, `(`, `_`, `<`, letter or digit",
    ),
    (
        "hcl1/malformed.hcl1",
        None,
        "hcl1/malformed.hcl1:2:24: invalid block body; expected `}`, newline or identifier",
    ),
    (
        "ini/malformed.ini",
        None,
        "ini/malformed.ini:5:1: expecting \"[Some(']')]\" but found EOF.",
    ),
    (
        "dotenv/malformed.env",
        None,
        "dotenv/malformed.env:2:1: line `this line is not a variable` doesn't match format",
    ),
    (
        "properties/malformed.properties",
        None,
        "properties/malformed.properties: circular reference in:\na=${b}\nb=${a}",
    ),
    (
        "xml/malformed.xml",
        None,
        "xml/malformed.xml:2:23: ill-formed document: expected `</artifactId>`, but `</version>` was found",
    ),
    (
        "dockerfile/malformed.Dockerfile",
        None,
        "dockerfile/malformed.Dockerfile:2:1: unknown instruction: RUNN",
    ),
    (
        "jsonnet/malformed.jsonnet",
        None,
        "jsonnet/malformed.jsonnet:3:13: expected one of {Expr}, found Simple(Comma)",
    ),
    (
        "hocon/malformed.hocon",
        None,
        "hocon/malformed.hocon:3:17: unresolved substitution ${play.server.https.port}",
    ),
    (
        "edn/malformed.edn",
        None,
        "edn/malformed.edn: Unexpected end of input",
    ),
    (
        "vcl/malformed.vcl",
        None,
        "vcl/malformed.vcl:3:1: unexpected end of file, expecting \"}\"",
    ),
    (
        "nginx/malformed/nginx.conf",
        None,
        "nginx/malformed/nginx.conf:4:5: directive \"listen\" is not terminated by \";\"",
    ),
    (
        "spdx/malformed.spdx",
        None,
        "spdx/malformed.spdx:2:1: expected \"Tag: value\", found \"DataLicense CC0-1.0\"",
    ),
    (
        "cyclonedx/malformed.cyclonedx",
        None,
        "cyclonedx/malformed.cyclonedx: decode CycloneDX BOM: Failed to deserialize XML while reading component: 4:6 Unexpected closing tag: {http://cyclonedx.org/schema/bom/1.4}bom != {http://cyclonedx.org/schema/bom/1.4}component",
    ),
    (
        "textproto/malformed.textproto",
        None,
        "textproto/malformed.textproto: unmarshal textproto: expected an integer, but found '\"not a number\"'",
    ),
    (
        "groovy/malformed.groovy",
        None,
        "groovy/malformed.groovy: parse groovy at 3:23: unexpected \"{\", expected `)`",
    ),
    (
        "yaml/malformed.yaml",
        None,
        "yaml/malformed.yaml:3:10: mapping values are not allowed in this context",
    ),
    (
        "json/malformed.json",
        None,
        "json/malformed.json:3:17: expected `,` or `}`",
    ),
    (
        "cue/deployment.cue",
        None,
        "cue/deployment.cue: the cue parser is not supported by regard (no Rust CUE evaluator exists); run `cue export --out json` and check the JSON instead",
    ),
    // A file forced through the wrong parser fails the same way.
    (
        "hcl2/main.tf",
        Some("toml"),
        "hcl2/main.tf:1:10: key with no value, expected `=`",
    ),
];

#[test]
fn malformed_input_is_a_clear_error_per_parser() {
    let mut failures = Vec::new();
    for (file, parser, message) in MALFORMED {
        let mut args = vec!["parse", "--proto-file-dirs", "textproto/protos"];
        if let Some(p) = parser {
            args.extend(["--parser", p]);
        }
        args.push(file);
        let out = regard(&args);
        let want = format!("Error: parse configurations: {message}\n");
        if out.status.code() != Some(1) || stderr(&out) != want || !stdout(&out).is_empty() {
            failures.push(format!(
                "{file}: status {:?}\nwant: {want}got:  {}",
                out.status.code(),
                stderr(&out)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn binary_and_invalid_utf8_files_are_refused() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let bin = dir.path().join("blob.json");
    std::fs::write(&bin, [0x7b, 0x00, 0x01, 0x7d])?;
    let latin1 = dir.path().join("latin1.ini");
    std::fs::write(&latin1, b"[s]\nname = caf\xe9\n")?;
    for path in [&bin, &latin1] {
        let out = regard(&["parse", &path.to_string_lossy()]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            format!(
                "Error: parse configurations: {}: not valid UTF-8 text (binary files are not supported)\n",
                path.display()
            )
        );
    }
    Ok(())
}

#[test]
fn several_files_combine_and_stdin() -> Result<(), Box<dyn std::error::Error>> {
    let out = regard(&["parse", "edn/config.edn", "ini/grafana.ini"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let edn = std::fs::read_to_string(formats_dir().join("edn/expected.json"))?;
    let ini = std::fs::read_to_string(formats_dir().join("ini/expected.json"))?;
    let indent = |s: &str| s.trim_end().replace('\n', "\n  ");
    assert_eq!(
        stdout(&out),
        format!(
            "{{\n  \"edn/config.edn\": {},\n  \"ini/grafana.ini\": {}\n}}\n",
            indent(&edn),
            indent(&ini)
        )
    );

    // --combine: one entry per document, sorted by path, tab-indented,
    // then a blank line; the struct's key order (path, contents).
    let out = regard(&[
        "parse",
        "--combine",
        "yaml/deployment.yaml",
        "jsonc/devcontainer.jsonc",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("[\n\t{\n\t\t\"path\": \"jsonc/devcontainer.jsonc\",\n\t\t\"contents\": {\n\t\t\t\"features\": {"), "{text}");
    assert!(text.ends_with("\t\t}\n\t}\n]\n\n"), "{text:?}");
    assert_eq!(
        text.matches("\"path\": \"yaml/deployment.yaml\"").count(),
        2
    );

    // `-` is standard input, YAML unless --parser says otherwise.
    let mut child = Command::new(env!("CARGO_BIN_EXE_regard"))
        .args(["parse", "--parser", "toml", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(b"[a]\nb = \"<&>\"\n")?;
    }
    let out = child.wait_with_output()?;
    assert_eq!(
        stdout(&out),
        "{\n  \"a\": {\n    \"b\": \"\\u003c\\u0026\\u003e\"\n  }\n}\n"
    );

    let out = regard(&["parse"]);
    assert_eq!(
        stderr(&out),
        "Error: must supply path to at least one file\n"
    );
    let out = regard(&["parse", "--parser", "klingon", "toml/config.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(
            "Error: unknown parser \"klingon\" (known parsers: cue, cyclonedx, dockerfile,"
        ),
        "{}",
        stderr(&out)
    );
    Ok(())
}

/// Runs `regard test` with `<format>/policy` on one input file and returns
/// (failures, warnings) messages, sorted.
fn check(
    format: &str,
    file: &str,
    parser: Option<Format>,
    options: &ParseOptions,
) -> (Vec<String>, Vec<String>) {
    let policy = format!("{format}/policy");
    let mut args = vec!["test", "-o", "json", "-p", policy.as_str()];
    if let Some(p) = parser {
        args.extend(["--parser", p.name()]);
    }
    let dirs: Vec<String> = options
        .proto_file_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    for d in &dirs {
        args.extend(["--proto-file-dirs", d.as_str()]);
    }
    args.push(file);
    let out = regard(&args);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{format}: {e}: {}", stderr(&out)));
    let messages = |key: &str| -> Vec<String> {
        let mut found: Vec<String> = report
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r[key].as_array().cloned().unwrap_or_default())
            .filter_map(|o| o["msg"].as_str().map(str::to_owned))
            .collect();
        found.sort();
        found
    };
    (messages("failures"), messages("warnings"))
}

/// (policy directory, input, forced parser, options, failures, warnings)
type PolicyCase<'a> = (
    &'a str,
    &'a str,
    Option<Format>,
    &'a ParseOptions,
    &'a [&'a str],
    &'a [&'a str],
);

#[test]
fn a_conftest_style_policy_per_format() {
    let protos = ParseOptions::new(vec![formats_dir().join("textproto/protos")]);
    let none = ParseOptions::default();
    let cases: &[PolicyCase<'_>] = &[
        (
            "toml",
            "toml/config.toml",
            None,
            &none,
            &["server 0.0.0.0:8080 must use TLS"],
            &["worker refunds has a single replica"],
        ),
        (
            "jsonc",
            "jsonc/devcontainer.jsonc",
            None,
            &none,
            &["dev container must not run as root"],
            &[],
        ),
        (
            "hcl2",
            "hcl2/main.tf",
            None,
            &none,
            &[
                "S3 bucket logs must not be public",
                "security group rule ssh opens SSH to the world",
            ],
            &[],
        ),
        (
            "hcl1",
            "hcl1/gke.hcl1",
            None,
            &none,
            &["node pool preemptible uses preemptible nodes"],
            &[],
        ),
        (
            "ini",
            "ini/grafana.ini",
            None,
            &none,
            &[
                "Grafana admin password is the default",
                "anonymous access must be disabled",
            ],
            &["cookies should be secure"],
        ),
        (
            "dotenv",
            "dotenv/.env",
            None,
            &none,
            &["DATABASE_URL embeds a password", "DEBUG must be off"],
            &[],
        ),
        (
            "properties",
            "properties/application.properties",
            None,
            &none,
            &["spring.datasource.password must come from a secret store"],
            &["all actuator endpoints are exposed"],
        ),
        (
            "xml",
            "xml/pom.xml",
            None,
            &none,
            &["log4j-core 2.14.1 is vulnerable to Log4Shell"],
            &[],
        ),
        (
            "dockerfile",
            "dockerfile/Dockerfile",
            None,
            &none,
            &[
                "stage 1 uses a latest tag: alpine:latest",
                "the final image runs as root",
            ],
            &[],
        ),
        (
            "ignore",
            "ignore/.dockerignore",
            None,
            &none,
            &[".env files must be excluded from the build context"],
            &[],
        ),
        (
            "jsonnet",
            "jsonnet/app.jsonnet",
            None,
            &none,
            &["payments must not be privileged"],
            &[],
        ),
        (
            "hocon",
            "hocon/application.hocon",
            None,
            &none,
            &["Play http server bind address should be 0.0.0.0"],
            &[],
        ),
        (
            "hocon",
            "hocon/substitutions.hocon",
            None,
            &none,
            &["Play http server port should be 9000"],
            &[],
        ),
        (
            "edn",
            "edn/config.edn",
            None,
            &none,
            &["production should log errors only"],
            &[],
        ),
        (
            "vcl",
            "vcl/varnish.vcl",
            None,
            &none,
            &["purge ACL entry 10.0.0.0/8 is too broad"],
            &[],
        ),
        (
            "nginx",
            "nginx/nginx.conf",
            None,
            &none,
            &["TLSv1 is deprecated", "server_tokens must be off"],
            &[],
        ),
        (
            "spdx",
            "spdx/sbom.spdx",
            None,
            &none,
            &["package left-pad is licensed under GPL-3.0-only"],
            &[],
        ),
        (
            "cyclonedx",
            "cyclonedx/bom.cyclonedx",
            None,
            &none,
            &["log4j-core 2.14.1 is vulnerable"],
            &[],
        ),
        (
            "cyclonedx",
            "cyclonedx/bom.xml",
            Some(Format::CycloneDx),
            &none,
            &["log4j-core 2.14.1 is vulnerable"],
            &[],
        ),
        (
            "textproto",
            "textproto/server.textproto",
            None,
            &protos,
            &[
                "debug must be off in production",
                "listener on port 8080 binds all interfaces",
            ],
            &[],
        ),
        (
            "groovy",
            "groovy/Jenkinsfile",
            None,
            &none,
            &["line 11 passes a token on the command line"],
            &[],
        ),
        (
            "yaml",
            "yaml/deployment.yaml",
            None,
            &none,
            &["app uses a latest image"],
            &["payments has a single replica"],
        ),
        (
            "json",
            "json/package.json",
            None,
            &none,
            &["postinstall scripts must not download code"],
            &[],
        ),
    ];
    let mut failures = Vec::new();
    for (format, file, parser, options, want_failures, want_warnings) in cases {
        let (got_f, got_w) = check(format, file, *parser, options);
        if got_f != *want_failures || got_w != *want_warnings {
            failures.push(format!("{file}: failures {got_f:?}, warnings {got_w:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn builtin_messages(strict: bool) -> Result<Vec<String>, String> {
    let dir = formats_dir().join("builtins");
    let policies = PolicySet::load(&LoadOptions {
        policy_paths: vec![dir.join("a"), dir.join("b")],
        strict_builtin_errors: strict,
        ..LoadOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let checker =
        Checker::new(&policies, &NamespaceSelection::default()).map_err(|e| e.to_string())?;
    let parsed = input::read_file(&dir.join("input.yaml"), None).map_err(|e| e.to_string())?;
    let results = checker.check_files(&[parsed]).map_err(|e| e.to_string())?;
    let mut msgs: Vec<String> = results
        .iter()
        .flat_map(|r| r.failures.iter().map(|o| o.msg.clone()))
        .collect();
    msgs.sort();
    for r in &results {
        msgs.extend(r.errors.iter().map(|o| format!("ERROR {}", o.msg)));
    }
    Ok(msgs)
}

#[test]
fn builtins_resolve_paths_against_the_calling_policy() {
    // Two policies in two directories call parse_config_file("settings.yaml")
    // and each reads its own file.
    assert_eq!(
        builtin_messages(false),
        Ok(vec![
            "a: combined [\"team-a\", \"team-b\"]".to_owned(),
            "a: owner is team-a".to_owned(),
            "b: owner is team-b".to_owned(),
            "b: parse_config keeps the dockerfile nesting: alpine:latest".to_owned(),
            "b: parse_config read HCL".to_owned(),
        ])
    );
    // With strict builtin errors (--show-builtin-errors), the missing file is
    // an error of the rule that reads it, worded as conftest words builtin
    // errors: every message here comes from `data.main.deny`, so that one
    // error is all there is.
    let msgs = builtin_messages(true).unwrap_or_default();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].starts_with("ERROR data.main.deny: built-in error: [")
            && msgs[0].contains(": eval_builtin_error: parse_config_file: ")
            && msgs[0].ends_with("missing.yaml: no such file or directory]"),
        "{msgs:?}"
    );
}

#[test]
fn builtins_use_absolute_paths_as_given_and_combine_sorted()
-> Result<(), Box<dyn std::error::Error>> {
    let data = tempfile::tempdir()?;
    let z = data.path().join("z.yaml");
    let a = data.path().join("a.yaml");
    std::fs::write(&z, "v: 1\n---\nv: 2\n")?;
    std::fs::write(&a, "v: 0\n")?;
    let policy = format!(
        "package main\nimport rego.v1\ndeny contains msg if {{\n  one := parse_config_file({z:?})\n  docs := parse_combined_config_files([{z:?}, {a:?}])\n  msg := sprintf(\"%v %v\", [count(one), [[d.path, d.contents.v] | some d in docs]])\n}}\n",
        z = z.to_string_lossy(),
        a = a.to_string_lossy(),
    );
    let policies = PolicySet::from_sources(
        vec![("elsewhere/p.rego".to_owned(), policy)],
        Default::default(),
    )?;
    let checker = Checker::new(&policies, &NamespaceSelection::default())?;
    let parsed = input::read_file(Path::new(&formats_dir().join("builtins/input.yaml")), None)?;
    let results = checker.check_files(&[parsed])?;
    let msgs: Vec<&str> = results
        .iter()
        .flat_map(|r| r.failures.iter().map(|o| o.msg.as_str()))
        .collect();
    let (a, z) = (a.to_string_lossy(), z.to_string_lossy());
    assert_eq!(
        msgs,
        vec![format!("2 [[\"{a}\", 0], [\"{z}\", 1], [\"{z}\", 2]]")]
    );
    Ok(())
}

/// A Jenkinsfile policy that matches conftest's Groovy node kinds
/// (`CallExpr`, `IdentExpr`, `Identifier`, the string token kinds) finds the
/// piped download, passes the safe pipeline, and its own unit tests (which
/// parse Groovy with `parse_config`) pass under `verify`.
#[test]
fn jenkinsfile_policy_on_conftest_node_kinds() {
    let policy = "groovy/jenkins/policy";
    let out = regard(&[
        "test",
        "-o",
        "json",
        "-p",
        policy,
        "groovy/jenkins/Jenkinsfile.piped",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    assert_eq!(
        report[0]["failures"],
        serde_json::json!([{
            "msg": "line 7 pipes a download into a shell",
            "metadata": {"query": "data.main.deny"},
            "rule": "deny"
        }])
    );

    let out = regard(&["test", "-p", policy, "groovy/jenkins/Jenkinsfile.safe"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = regard(&["verify", "-p", policy]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("5 tests, 5 passed, 0 warnings, 0 failures, 0 exceptions"),
        "{}",
        stdout(&out)
    );
}

/// `regard parse --parser groovy -` reads a Jenkinsfile from standard input.
#[test]
fn groovy_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_regard"))
        .args(["parse", "--parser", "groovy", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(b"sh 'make'\n")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let tree: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tree["kind"], "FileNode");
    assert_eq!(tree["children"][0]["children"][0]["kind"], "CallExpr");
}
