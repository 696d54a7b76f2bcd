//! Runs the Rego conformance cases in `tests/rego/*.yaml` (see the README
//! there) through [`PolicySet`], the loading path every regard command uses,
//! on both evaluators: regorus' interpreter and its compiled RVM.

use std::path::{Path, PathBuf};

use policy_core::policy::{PolicySet, RegoVersion};
use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    note: String,
    #[serde(default)]
    rego_version: Option<String>,
    modules: Vec<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    input: Option<serde_json::Value>,
    query: String,
    #[serde(default)]
    want: Option<serde_json::Value>,
    #[serde(default)]
    want_undefined: bool,
    #[serde(default)]
    want_error: Option<String>,
    #[serde(default = "yes")]
    rvm: bool,
}

fn yes() -> bool {
    true
}

/// What a case evaluated to, in a form that compares across evaluators.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Value(serde_json::Value),
    Undefined,
    Error(String),
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/rego")
}

fn to_value(v: &serde_json::Value) -> Value {
    Value::from_json_str(&v.to_string()).expect("JSON from the case file")
}

fn from_value(v: &Value) -> Outcome {
    if *v == Value::Undefined {
        return Outcome::Undefined;
    }
    let text = v.to_json_str().expect("a value serialises");
    Outcome::Value(serde_json::from_str(&text).expect("valid JSON"))
}

fn load(case: &Case) -> Result<PolicySet, String> {
    let version = match case.rego_version.as_deref() {
        Some("v0") => RegoVersion::V0,
        None | Some("v1") => RegoVersion::V1,
        Some(other) => panic!("{}: unknown rego_version {other}", case.note),
    };
    let sources = case
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("case_{i}.rego"), m.clone()))
        .collect();
    let mut set = PolicySet::from_sources(sources, version).map_err(|e| e.to_string())?;
    if let Some(data) = &case.data {
        set.add_data(Path::new("data.json"), to_value(data))
            .map_err(|e| e.to_string())?;
    }
    Ok(set)
}

fn interpret(case: &Case) -> Outcome {
    let set = match load(case) {
        Ok(set) => set,
        Err(e) => return Outcome::Error(e),
    };
    let mut engine = set.engine().clone();
    if let Some(input) = &case.input {
        engine.set_input(to_value(input));
    }
    match engine.eval_rule(case.query.clone()) {
        Ok(v) => from_value(&v),
        Err(e) => Outcome::Error(set.error_text(&e.to_string())),
    }
}

fn compiled(case: &Case) -> Outcome {
    let set = match load(case) {
        Ok(set) => set,
        Err(e) => return Outcome::Error(e),
    };
    let mut engine = set.engine().clone();
    let program = engine
        .compile_with_entrypoint(&case.query.as_str().into())
        .map_err(|e| set.error_text(&e.to_string()))
        .and_then(|policy| {
            Compiler::compile_from_policy(&policy, &[case.query.as_str()])
                .map_err(|e| e.to_string())
        });
    let program = match program {
        Ok(p) => p,
        Err(e) => return Outcome::Error(e),
    };
    let mut vm = RegoVM::new();
    vm.set_max_instructions(usize::MAX);
    vm.set_strict_builtin_errors(false);
    vm.load_program(program);
    let run = vm.set_data(engine.get_data()).and_then(|()| {
        vm.set_input(case.input.as_ref().map_or(Value::Undefined, to_value));
        vm.execute()
    });
    match run {
        Ok(v) => from_value(&v),
        Err(e) => Outcome::Error(set.error_text(&e.to_string())),
    }
}

fn check(case: &Case, engine: &str, got: &Outcome) -> Option<String> {
    let ok = match (got, &case.want, case.want_undefined, &case.want_error) {
        (Outcome::Value(v), Some(want), false, None) => v == want,
        (Outcome::Undefined, None, true, None) => true,
        (Outcome::Error(e), None, false, Some(want)) => e.contains(want.as_str()),
        _ => false,
    };
    (!ok).then(|| {
        format!(
            "{} [{engine}]: got {got:?}; want {}",
            case.note,
            match (&case.want, &case.want_error) {
                (Some(v), _) => v.to_string(),
                (_, Some(e)) => format!("an error containing {e:?}"),
                _ => "undefined".to_owned(),
            }
        )
    })
}

#[test]
fn rego_conformance() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/rego exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case files in tests/rego");
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable case file");
        let parsed: CaseFile =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        for case in &parsed.cases {
            count += 1;
            let counted = [
                case.want.is_some(),
                case.want_undefined,
                case.want_error.is_some(),
            ];
            assert_eq!(
                counted.iter().filter(|b| **b).count(),
                1,
                "{name}: {}: exactly one of want, want_undefined, want_error",
                case.note
            );
            if let Some(f) = check(case, "interpreter", &interpret(case)) {
                failures.push(format!("{name}: {f}"));
            }
            if case.rvm
                && let Some(f) = check(case, "rvm", &compiled(case))
            {
                failures.push(format!("{name}: {f}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} cases differ from OPA:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
