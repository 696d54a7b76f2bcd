//! Fuzz target: the mutator `location` parser and the walk along a parsed
//! location. Any input must parse or return an error, never panic; a parsed
//! location must print to text that parses back to the same location; an
//! Assign at that location applied to a small Pod must mutate or return an
//! error, and its JSON patch must reproduce the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy_core::Value;
use policy_core::mutation::{Location, MutationContext, MutationSystem, patch};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(location) = Location::parse(text) else {
        return;
    };
    let printed = location.to_string();
    assert_eq!(Location::parse(&printed).as_ref(), Ok(&location), "{printed}");
    let assign = serde_json::json!({
        "apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
        "metadata": {"name": "fuzz"},
        "spec": {"applyTo": [{"groups": [""], "versions": ["v1"], "kinds": ["Pod"]}],
                 "location": text, "parameters": {"assign": {"value": {"name": "x", "port": 1}}}}
    });
    let Ok(doc) = Value::from_json_str(&assign.to_string()) else {
        return;
    };
    let (system, _) = MutationSystem::from_documents(&[("fuzz".to_owned(), doc)]);
    let before = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "x", "ports": [{"port": 1}]}, "scalar"], "a": {"b": [1]}}});
    let mut after = before.clone();
    if system.mutate(&mut after, &MutationContext::default()).is_ok() {
        let mut patched = before.clone();
        assert!(patch::apply(&mut patched, &patch::diff(&before, &after)).is_ok());
        assert_eq!(patched, after);
    }
});
