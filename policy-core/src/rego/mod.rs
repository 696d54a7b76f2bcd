//! The OPA-compatibility compile stage: passes that rewrite Rego source
//! before regorus compiles it, so the text means what it means on OPA. Each
//! pass is a module of its own and never adds or removes lines, so compiler
//! messages, coverage and `print()` locations keep the author's line numbers.

pub mod split_tests;
