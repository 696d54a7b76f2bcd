//! `regard test` on both evaluators: every conftest-style fixture of the
//! repository (each directory with a `policy` folder, its inputs beside it)
//! and the bundled example give the same results, to the byte, on regorus'
//! interpreter and on the RVM programs the checker compiles.

use std::path::{Path, PathBuf};

use policy_core::conftest::{CheckResult, Checker, Evaluator, NamespaceSelection};
use policy_core::input::{self, ParsedFile};
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
