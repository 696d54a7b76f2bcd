//! Exact outputs for go-akka's semantics, each derived from its code path.

use std::path::Path;

use super::parser::Context;
use super::{on_big_stack, parse_with};

/// Parses with a fixed environment and include files, as JSON.
fn run_with(text: &str, env: &[(&str, &str)], files: &[(&str, &str)]) -> String {
    let env_fn = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    let include = |name: &str| {
        files
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_bytes().to_vec())
            .ok_or_else(|| format!("open {name}: no such file or directory"))
    };
    let context = Context {
        env: &env_fn,
        include: &include,
    };
    let path = Path::new("a.conf");
    match on_big_stack(path, || parse_with(text, path, &context)) {
        Ok(v) => serde_json::to_string(&v).unwrap_or_default(),
        Err(e) => format!("error: {e}"),
    }
}

fn run(text: &str) -> String {
    run_with(text, &[], &[])
}

#[test]
fn conftest_shape() {
    assert_eq!(
        run(
            "play.server.http {\n  port = 9000\n  address = \"0.0.0.0\"\n}\nplay.name = \"my app\"\nplay.list = [1, two]\nplay.on = true\nplay.base = ${play.server.http.port}\n"
        ),
        r#"{"play":{"base":9000,"list":"[1,two]","name":"\"my app\"","on":true,"server":{"http":{"address":"0.0.0.0","port":9000}}}}"#
    );
}

const PLAY: &str =
    "play {\n  port = 9001\n  port = ${?PLAY_HTTP_PORT}\n  port = ${?http.port}\n}\n";

#[test]
fn reassigned_to_unresolved_optional_reads_the_previous_value() {
    // The last value is an unresolved substitution: go-akka reads the
    // key's previous value instead, and so on down the chain.
    assert_eq!(run(PLAY), r#"{"play":{"port":9001}}"#);
    // The middle one resolves from the environment; the last still
    // falls back to it.
    assert_eq!(
        run_with(PLAY, &[("PLAY_HTTP_PORT", "9000")], &[]),
        r#"{"play":{"port":9000}}"#
    );
    // Root-relative lookup wins over the environment.
    assert_eq!(
        run_with(
            "http { port = 8080 }\nplay {\n  port = 9001\n  port = ${?http.port}\n}\n",
            &[("http.port", "1")],
            &[]
        ),
        r#"{"http":{"port":8080},"play":{"port":8080}}"#
    );
}

#[test]
fn unresolved_optional_is_an_unknown_value() {
    assert_eq!(
        run("x { a = ${?nope}\n b = ${x.a}\n c = [ ]\n d = [] }"),
        r#"{"x":{"a":"<<unknown value>>","b":"<<unknown value>>","c":"[<<unknown value>>]","d":"<<unknown value>>"}}"#
    );
}

#[test]
fn substitution_of_a_reassigned_key_reads_its_previous_value() {
    assert_eq!(
        run("x { a = 1\na = 2\nb = ${x.a} }"),
        r#"{"x":{"a":2,"b":1}}"#
    );
}

#[test]
fn substitutions_resolve_by_root_path_then_environment() {
    assert_eq!(
        run_with(
            "x { a = ${HOCON_TEST_VALUE}, b = ${?HOCON_TEST_VALUE}, c = ${x.a}/bin, d = 5\ne = ${?x.d} }",
            &[("HOCON_TEST_VALUE", " from env ")],
            &[]
        ),
        r#"{"x":{"a":"\"from env\"","b":"\"from env\"","c":"\"from env/bin\"","d":5,"e":5}}"#
    );
}

#[test]
fn process_environment_is_the_default_lookup() {
    let Some(path_var) = std::env::var_os("PATH").map(|v| v.to_string_lossy().into_owned()) else {
        return;
    };
    let trimmed = path_var.trim();
    let expected = if trimmed.is_empty() {
        r#""""#.to_owned()
    } else if trimmed.contains([' ', '\t']) {
        format!("\"{trimmed}\"")
    } else {
        trimmed.to_owned()
    };
    let v = super::parse("x { p = ${PATH} }", Path::new("a.conf"))
        .map(|v| serde_json::to_string(&v).unwrap_or_default());
    let want = serde_json::json!({ "x": { "p": expected } }).to_string();
    assert_eq!(v.ok(), Some(want));
}

#[test]
fn unresolved_required_substitution_and_cycles_are_errors() {
    assert_eq!(
        run("x {\n  a = ${nope}\n}"),
        "error: a.conf:2:7: unresolved substitution ${nope}"
    );
    assert_eq!(
        run("x { a = ${x.b}, b = ${x.a} }"),
        "error: a.conf:1:9: cycle reference in path of x.b"
    );
    // `+=` on a new key refers to itself.
    assert_eq!(
        run("x { b += 1 }"),
        "error: a.conf:1:10: cycle reference in path of x.b"
    );
}

#[test]
fn plus_assign_appends_through_the_previous_value() {
    assert_eq!(
        run("x { a = [1]\na += [2]\nb = [1, 2]\nb += 3 }"),
        r#"{"x":{"a":"[1,2]","b":"[1,2]"}}"#
    );
}

#[test]
fn concatenation_keeps_inner_whitespace() {
    assert_eq!(
        run(
            "x { e = \"x\"  \"y\" z\nn = null\nm = null \nq = \"\"\"tri \"q\" \"\"\"\nv = ${x.q}${x.e} }"
        ),
        r#"{"x":{"e":"\"x  y z\"","m":"null","n":"\"\"","q":"\"tri \"q\"\"","v":"\"tri \"q\"x  y z\""}}"#
    );
}

#[test]
fn objects_merge_and_arrays_concatenate() {
    assert_eq!(
        run(
            "x { a = { p = 1 } { q = 2 }, b = [1] [2,3], c = ${x.b} [4]\nd { r = 1 }\nd { s = 2 }\nd.t = 3 }"
        ),
        r#"{"x":{"a":{"p":1,"q":2},"b":"[1,2,3]","c":"[1,2,3,4]","d":{"r":1,"s":2,"t":3}}}"#
    );
    assert_eq!(
        run("x { a { b { c = 1 } }\nd = ${x.a} }"),
        r#"{"x":{"a":{"b":{"c":1}},"d":{"b":{"c":1}}}}"#
    );
}

#[test]
fn arrays_of_objects_use_go_akkas_string_form() {
    assert_eq!(
        run("x { a = [ [1, 2], {k = v, j = \"w w\"} ] }"),
        r#"{"x":{"a":"[[1,2],{\r\n    k : v\r\n    j : \"w w\"\r\n  }]"}}"#
    );
    assert_eq!(
        run("x { a = [{\"s p\" = 2}] }"),
        "error: a.conf: key \"s p\" of an object inside an array contains a space or tab (conftest's HOCON reader crashes on this)"
    );
}

#[test]
fn comments_quoted_and_dotted_keys() {
    assert_eq!(
        run(
            "# c\nx { a = 1 // c\nb = 2 # c\nc = http://x.y\n\"my key\" = 1, t = true, f = off, n = 1e3\ny.z = 1\ny { w = 2 }\nv = ${x.y.z}${x.y.w} }"
        ),
        r#"{"x":{"a":1,"b":2,"c":"http","f":"off","my key":1,"n":1000,"t":true,"v":12,"y":{"w":2,"z":1}}}"#
    );
    assert_eq!(
        run("x { \"a.b\" = 1 }"),
        "error: a.conf: key path \"x.a.b\" cannot be looked up (a key containing '.' or '\"'; conftest's HOCON reader crashes on this)"
    );
}

#[test]
fn top_level_scalar_is_an_error() {
    assert_eq!(
        run("x { a = 1 }\ny = 2"),
        "error: a.conf: top-level key \"y\" does not hold an object (conftest's HOCON reader crashes on this)"
    );
}

#[test]
fn includes_merge_where_absent_and_resolve_under_their_key() {
    let files = [("inc.conf", "x { i = 1\n j = ${?x.k} }\n")];
    assert_eq!(
        run_with("include \"inc.conf\"\nx.k = 5", &[], &files),
        r#"{"x":{"i":1,"j":5,"k":5}}"#
    );
    assert_eq!(
        run_with("x { include \"inc.conf\" }", &[], &files),
        r#"{"x":{"x":{"i":1,"j":"<<unknown value>>"}}}"#
    );
    assert_eq!(
        run_with("x {\n include \"missing.conf\" }", &[], &files),
        "error: a.conf:2:2: include \"missing.conf\": open missing.conf: no such file or directory"
    );
    let looping = [("self.conf", "include \"self.conf\"\n")];
    assert_eq!(
        run_with("include \"self.conf\"", &[], &looping),
        "error: a.conf:1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": 1:1: include \"self.conf\": includes nested deeper than 16"
    );
}

#[test]
fn truncated_documents_end_where_the_text_ends() {
    // go-akka reads to the end of the text without asking for the closers.
    assert_eq!(
        run("x { a {\nb = 1\nc = \"open"),
        r#"{"x":{"a":{"b":1,"c":"open"}}}"#
    );
    // A top-level `}` ends the document.
    assert_eq!(run("x { a = 1 } } y = 2"), r#"{"x":{"a":1}}"#);
}

#[test]
fn malformed_input_is_an_error_with_position() {
    assert_eq!(run("x {\n a = 1,,\n}"), "error: a.conf:2:8: unknown token");
    assert_eq!(
        run("x { a = \"\\q\" }"),
        "error: a.conf:1:10: unknown escape code 'q'"
    );
    assert_eq!(
        run("x { a = [ } ] }"),
        "error: a.conf:1:11: expected a value or ']' in array"
    );
    // "à" is C3 A0 and go-akka takes A0 for whitespace.
    assert_eq!(
        run("x { a = à, b = 1 }"),
        "error: a.conf:1:10: unknown token"
    );
}

#[test]
fn limits_stop_what_go_akka_never_finishes() {
    assert_eq!(
        run("x { a = ${x} }"),
        "error: a.conf: objects nested deeper than 512 levels (does an object contain itself through a substitution?)"
    );
    let deep = format!("x {{ {} }}", "a {".repeat(300));
    assert_eq!(
        run(&deep),
        "error: a.conf:1:770: nesting deeper than 256 levels"
    );
    assert_eq!(
        run("x { b = [${x.b}] }"),
        "error: a.conf: substitutions or nesting deeper than 1000 levels"
    );
    // Each level doubles the text: 2^40 bytes if nothing stopped it.
    let mut laughs = String::from("x { a0 = ha\n");
    for i in 1..=40 {
        laughs.push_str(&format!("a{i} = ${{x.a{}}}${{x.a{}}}\n", i - 1, i - 1));
    }
    laughs.push('}');
    assert_eq!(
        run(&laughs),
        "error: a.conf: the document expands to too much work (substitutions repeated too often?)"
    );
}

#[test]
fn real_documents_stay_far_below_the_work_limit() {
    let text = include_str!("../../../../tests/formats/hocon/substitutions.hocon");
    let mut tree = super::tree::Tree::default();
    let context = Context {
        env: &|_: &str| None,
        include: &|_: &str| Err(String::new()),
    };
    let parsed = super::parser::parse_document(&mut tree, text.as_bytes(), &context, 0)
        .and_then(|doc| super::shape(&tree, doc.root));
    assert!(parsed.is_ok());
    // 379 when written; the limit leaves three orders of magnitude.
    assert!(tree.steps() < 2_000, "{} steps", tree.steps());
}
