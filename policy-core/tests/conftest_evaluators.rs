//! `regard test` on both evaluators: every conftest-style fixture of the
//! repository (each directory with a `policy` folder, its inputs beside it)
//! and the bundled example give the same results, to the byte, on regorus'
//! interpreter and on the RVM programs the checker compiles.

use std::path::{Path, PathBuf};

use policy_core::conftest::{CheckResult, Checker, Evaluator, NamespaceSelection};
use policy_core::input::{self, Format, ParsedFile};
use policy_core::policy::{LoadOptions, PolicySet, RegoVersion};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every directory under `dir` holding a `policy` folder, sorted.
fn fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        if d.join("policy").is_dir() {
            out.push(d.clone());
        }
        fixtures(&d, out);
    }
}

/// The inputs directly in `dir` that parse.
fn inputs(dir: &Path) -> Vec<ParsedFile> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| input::read_file(p, None).ok())
        .collect()
}

fn check(checker: &mut Checker, evaluator: Evaluator, files: &[ParsedFile]) -> Vec<CheckResult> {
    checker.set_evaluator(evaluator);
    checker.check_files(files).expect("check")
}

/// Loads `policy` (and `data`) of a fixture; `None` when the fixture's
/// policies are meant not to load.
fn checker(dir: &Path, strict_builtin_errors: bool) -> Option<Checker> {
    let data = dir.join("data");
    let options = LoadOptions {
        policy_paths: vec![dir.join("policy")],
        data_paths: if data.is_dir() {
            vec![data]
        } else {
            Vec::new()
        },
        rego_version: if dir.ends_with("v0") {
            RegoVersion::V0
        } else {
            RegoVersion::V1
        },
        strict_builtin_errors,
        ..LoadOptions::default()
    };
    let policies = PolicySet::load(&options).ok()?;
    Checker::new(&policies, &NamespaceSelection::All).ok()
}

#[test]
fn every_fixture_gives_the_same_results_on_both_evaluators() {
    let mut dirs = Vec::new();
    fixtures(&root().join("tests"), &mut dirs);
    let (mut compared, mut on_rvm) = (0, 0);
    for dir in &dirs {
        let files = inputs(dir);
        for strict in [false, true] {
            let Some(mut checker) = checker(dir, strict) else {
                continue;
            };
            let interpreted = check(&mut checker, Evaluator::Interpreter, &files);
            let compiled = check(&mut checker, Evaluator::Rvm, &files);
            assert_eq!(
                compiled,
                interpreted,
                "{} (strict builtin errors: {strict})",
                dir.display()
            );
            compared += 1;
            let namespaces = checker.namespaces().len();
            if !strict && checker.interpreted_namespaces().len() < namespaces {
                on_rvm += 1;
            }
        }
    }
    // Not a vacuous comparison: most fixtures run on the RVM.
    assert!(compared >= 40, "compared {compared} fixtures");
    assert!(on_rvm >= 20, "only {on_rvm} fixtures ran on the RVM");
}

#[test]
fn the_bundled_example_runs_on_the_rvm_with_the_interpreters_results() {
    let dir = root().join("examples");
    let policies = PolicySet::load(&LoadOptions {
        policy_paths: vec![dir.join("policy")],
        ..LoadOptions::default()
    })
    .expect("example policy loads");
    let mut checker = Checker::new(&policies, &NamespaceSelection::default()).expect("checker");
    assert_eq!(
        checker.interpreted_namespaces(),
        Vec::<(&str, String)>::new()
    );
    let files = inputs(&dir.join("k8s"));
    assert_eq!(files.len(), 4);
    let interpreted = check(&mut checker, Evaluator::Interpreter, &files);
    let compiled = check(&mut checker, Evaluator::Rvm, &files);
    assert_eq!(compiled, interpreted);
    // Every document ran on the RVM: none fell back to the interpreter.
    assert_eq!(checker.rvm_fallbacks(), 0);
    assert!(interpreted.iter().any(|r| !r.failures.is_empty()));
}

/// Inputs with and without the fields the policies read.
const INPUTS: &[&str] = &[
    r#"{"kind":"Pod","metadata":{"name":"p","labels":{"a":"1"}},"spec":{"containers":[{"name":"c","image":"nginx","securityContext":{"privileged":true}},{"name":"d","image":"quay.io/x:1","ports":[{"containerPort":80}]}]}}"#,
    r#"{"kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c"}]}}}}"#,
    r#"{"kind":"Service","metadata":{},"spec":{"type":"NodePort","ports":[{"port":1},{"port":"x"}]}}"#,
    r#"[1, "a", null, {"x": [1,2,3]}]"#,
    r#"{}"#,
    r#"null"#,
    r#"{"a": {"b": {"c": false}}, "n": 3.5, "s": "Hello, World", "l": [3,1,2], "o": {"k1": 1, "k2": 2}}"#,
];

/// v0 policies of package `main`.
const V0: &[&str] = &[
    // `future.keywords.if` in v0, a default and iteration in the body (the
    // shape of konstraint's `pods.pod`).
    "import future.keywords.if\ndefault pod := false\npod := input.spec if {\n\tinput.kind == [\"Pod\", \"Deployment\"][_]\n}\ndeny[x] { x := pod }",
    "deny[msg] { c := input.spec.containers[_]; not c.securityContext.privileged == false; msg := c.name }",
    "deny[msg] { c := input.spec.containers[_]; p := c.ports[_].containerPort; p < 100; msg := sprintf(\"%v %v\", [c.name, p]) }",
    "deny[msg] { some i; c := input.spec.containers[i]; not startswith(c.image, \"quay.io/\"); msg := sprintf(\"%d %v\", [i, c.image]) }",
    "default allow = false\nallow { input.kind == \"Pod\" }\ndeny[\"no\"] { not allow }",
    "name = n { n := input.metadata.name } else = \"unknown\" { true }\ndeny[name] { true }",
    "f(x) = y { y := x * 2 } \ndeny[msg] { v := input.n; msg := f(v) }",
    "deny[k] { input.o[k] > 1 }",
    "deny[x] { x := {v | v := input.l[_]; v > 1} }",
    "deny[x] { x := count([v | v := input.l[_]]) }",
    "deny[x] { x := object.get(input, [\"a\", \"b\", \"c\"], \"def\") }",
    "deny[x] { x := input.a.b.c }",
    "deny[x] { not input.a.b.c; x := \"falsy\" }",
    "deny[x] { x := input[_]; is_number(x) }",
    "deny[x] { x := lower(input.s) }",
    "labels[k] = v { v := input.metadata.labels[k] }\ndeny[x] { x := labels.a }",
    "deny[msg] { not input.metadata.labels.b; msg := \"missing b\" }",
    "deny[msg] { input.spec.type == \"NodePort\"; p := input.spec.ports[_]; not is_number(p.port); msg := sprintf(\"bad %v\", [p.port]) }",
    "deny[{\"msg\": m, \"details\": {\"n\": 1}}] { m := input.kind }",
    "warn[m] { m := concat(\",\", [k | input.o[k]]) }",
    "deny[m] { xs := [x | x := input.l[_]; x > 5]; count(xs) == 0; m := \"none\" }",
    "deny[m] { r := regex.match(\"^H\", input.s); m := sprintf(\"%v\", [r]) }",
    "deny[m] { parts := split(input.s, \", \"); m := parts[1] }",
    "deny[m] { m := input.l[count(input.l) - 1] }",
    "deny[m] { m := input.missing[_] }",
    "deny[m] { x := input.missing; m := \"never\" }",
    "deny[m] { m := [x | x := input.missing] }",
    "exception[rules] { input.kind == \"Pod\"; rules := [\"x\"] }\ndeny_x[m] { m := \"x\" }\ndeny[m] { m := \"plain\" }",
    "g(a, b) = a + b\ndeny[m] { m := g(input.n, 1) }",
    "deny[m] { m := sum(input.l) }\ndeny[m] { m := max(input.l) }",
    "h(x) { x > 2 }\nh(x) { x < 0 }\ndeny[m] { v := input.l[_]; h(v); m := v }",
    "deny[m] { input.kind == \"Pod\"; m := input.spec.containers[_].name }",
    "s := {x | x := input.l[_]}\ndeny[m] { s[2]; m := \"has 2\" }",
    "deny[m] { not input.l[5]; m := \"no 6th\" }",
    "deny[m] { input.o.k1 == 1; input.o.k2 == 2; m := \"both\" }",
    "deny[m] { x := input.n; y := floor(x); m := y }",
    "q := input.missing.deep\ndeny[m] { not q; m := \"q undefined\" }",
    "q := input.missing.deep\ndeny[m] { q == null; m := \"q null\" }",
    "obj := {\"a\": input.missing}\ndeny[m] { not obj; m := \"obj undefined\" }",
    "deny[m] { c := input.spec.containers[_]; image := c.image; not contains(image, \":\"); m := image }",
    "deny[m] { c := input.spec.containers[_]; ctx := c.securityContext; m := ctx.privileged }",
    "deny[m] { arr := [input.missing, 1]; m := \"array\" }",
    "deny[m] { [a, b] := input.l; m := a }",
    "deny[m] { {\"k1\": a} := input.o; m := a }",
    "deny[m] { x := input.n; x > 3; not x > 4; m := x }",
];

/// v1 policies of package `main`.
const V1: &[&str] = &[
    // A unit test beside the rules, with a `with` mock the RVM cannot run:
    // it is not compiled, and the rules run on the RVM.
    "deny contains \"pod\" if input.kind == \"Pod\"\ntest_pod if { deny[\"pod\"] with input as {\"kind\": \"Pod\"} }",
    "deny contains x if { every v in input.l { v > 0 }; x := \"all positive\" }",
    "deny contains x if { some v in input.l; v == 2; x := v }",
    "deny contains x if { some k, v in input.o; v > 1; x := k }",
    "deny contains x if { not 5 in input.l; x := \"no 5\" }",
    "deny contains x if { 2 in input.l; x := \"has 2\" }",
    "deny contains x if x := input.metadata.name",
    "deny contains x if x := input.missing",
    "deny contains \"w\" if input.kind == \"Pod\"",
    "mode := \"a\" if input.kind == \"Pod\"\nelse := \"b\" if input.kind == \"Deployment\"\nelse := \"c\"\ndeny contains mode",
    "default f(_) := false\nf(x) if x > 2\ndeny contains v if { some v in input.l; f(v) }",
    "deny contains m if { c := input.spec.containers[_]; r := reg(c.image); not r in {\"quay.io\"}; m := c.image }\nreg(i) := split(i, \"/\")[0] if contains(i, \"/\")",
    "deny contains m if { some c in input.spec.containers; m := object.keys(c)[_] }",
    "deny contains m if { m := {k | some k, _ in input.o} }",
    "deny contains m if { x := [y | some y in input.l; y > 1]; m := count(x) }",
    "deny contains m if { m := input.l[_] * 2; m > 3 }",
    "p[k] := v if { some k, v in input.o }\ndeny contains m if { m := p.k2 }",
    "deny contains m if { m := sprintf(\"%v-%v\", [input.kind, input.metadata.name]) }",
    "deny contains m if { cs := input.spec.containers; count(cs) > 1; m := \"many\" }",
    "deny contains m if { some i, c in input.spec.containers; i > 0; m := c.name }",
    "deny contains m if { m := input.metadata.labels[_] }",
    "check(c) if c.securityContext.privileged\ndeny contains m if { some c in input.spec.containers; not check(c); m := c.name }",
];

#[test]
fn small_policies_give_the_same_results_on_both_evaluators_all_on_the_rvm() {
    let files: Vec<ParsedFile> = INPUTS
        .iter()
        .enumerate()
        .map(|(i, t)| ParsedFile::from_text(&format!("i{i}.json"), t, Format::Json).unwrap())
        .collect();
    let cases = V0
        .iter()
        .map(|p| (RegoVersion::V0, p))
        .chain(V1.iter().map(|p| (RegoVersion::V1, p)));
    for (version, policy) in cases {
        let src = format!("package main\n{policy}\n");
        let set = PolicySet::from_sources(vec![("p.rego".to_owned(), src)], version)
            .unwrap_or_else(|e| panic!("{policy}: {e}"));
        let mut checker = Checker::new(&set, &NamespaceSelection::default()).unwrap();
        let interpreted = check(&mut checker, Evaluator::Interpreter, &files);
        let compiled = check(&mut checker, Evaluator::Rvm, &files);
        assert_eq!(compiled, interpreted, "{policy}");
        assert_eq!(
            checker.interpreted_namespaces(),
            Vec::<(&str, String)>::new(),
            "{policy}"
        );
        assert_eq!(checker.rvm_fallbacks(), 0, "{policy}");
    }
}
