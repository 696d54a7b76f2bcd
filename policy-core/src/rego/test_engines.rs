//! Test support for the RVM-only passes: a module's `data.t.p` on the RVM
//! and on the interpreter, errors as text.

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::unstable::Module;
use regorus::{Engine, Value};

use super::parse_module;
use super::text::{Edit, apply_edits};

/// The text edits of one RVM-only pass.
pub(crate) type Pass = fn(&str, &Module) -> Vec<Edit>;

/// `src` after `pass`.
pub(crate) fn after(pass: Pass, src: &str, rego_v1: bool) -> String {
    let m = parse_module("t.rego", src, rego_v1).expect("the test module parses");
    apply_edits(src, pass(src, &m))
}

/// `data.t.p` of the v0 module `src` on the RVM, after `pass` when given.
pub(crate) fn rvm_v0(src: &str, input: &str, pass: Option<Pass>) -> Value {
    let text = match pass {
        Some(pass) => after(pass, src, false),
        None => src.to_owned(),
    };
    rvm(&text, false, input).unwrap()
}

/// `data.t.p` of the v0 module `src` on the interpreter.
pub(crate) fn interpreter_v0(src: &str, input: &str) -> Value {
    interpreter(src, false, input).unwrap()
}

/// `data.t.p` of the module `text` on the RVM, as written.
pub(crate) fn rvm(text: &str, rego_v1: bool, input: &str) -> Result<Value, String> {
    let mut e = Engine::new();
    e.set_rego_v0(!rego_v1);
    e.add_policy("t.rego".into(), text.to_owned())
        .map_err(|e| format!("{e}\n{text}"))?;
    let policy = e
        .compile_with_entrypoint(&"data.t.p".into())
        .map_err(|e| e.to_string())?;
    let program =
        Compiler::compile_from_policy(&policy, &["data.t.p"]).map_err(|e| e.to_string())?;
    let mut vm = RegoVM::new();
    vm.load_program(program);
    vm.set_data(Value::new_object())
        .map_err(|e| e.to_string())?;
    vm.set_input(Value::from_json_str(input).expect("the test input parses"));
    vm.execute().map_err(|e| e.to_string())
}

/// `data.t.p` of the module `src` on the interpreter; the module and the
/// input must parse.
pub(crate) fn interpreter(src: &str, rego_v1: bool, input: &str) -> Result<Value, String> {
    let mut e = Engine::new();
    e.set_rego_v0(!rego_v1);
    e.add_policy("t.rego".into(), src.into())
        .expect("the test module parses");
    e.set_input(Value::from_json_str(input).expect("the test input parses"));
    e.eval_rule("data.t.p".into()).map_err(|e| e.to_string())
}
